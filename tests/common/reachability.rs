//! Kubernetes NetworkPolicy semantics, evaluated over policy objects: may a
//! connection from one endpoint reach another on a port?
//!
//! - A pod is isolated for ingress (egress) when any policy in its namespace selects
//!   it and lists `Ingress` (`Egress`) in `policyTypes`; an isolated pod accepts
//!   (sends) only what some selecting policy's rules allow. Policies only add up.
//! - A connection needs both: the sender's egress and the receiver's ingress.
//! - A peer is an `ipBlock` (CIDR minus `except`), a `podSelector` (pods of the
//!   policy's own namespace), a `namespaceSelector` (every pod of matching
//!   namespaces), or both selectors (matching pods in matching namespaces). A rule
//!   with no peers matches every peer, and a rule with no ports every port.
//! - `ipBlock` is matched against pod addresses too, as the common CNIs do.
//! - Label selectors: `matchLabels` and `matchExpressions` (In, NotIn, Exists,
//!   DoesNotExist); an empty selector selects everything.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A party to a connection: a pod, or an address outside the cluster.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// Short name for reports.
    pub name: String,
    /// The address.
    pub ip: IpAddr,
    /// For a pod: its namespace, that namespace's labels, and its own labels.
    pub pod: Option<Pod>,
}

/// Where a pod is and what it is labelled.
#[derive(Clone, Debug)]
pub struct Pod {
    /// Namespace name.
    pub namespace: String,
    /// Labels of the namespace.
    pub namespace_labels: BTreeMap<String, String>,
    /// Labels of the pod.
    pub labels: BTreeMap<String, String>,
}

impl Endpoint {
    /// An address outside the cluster.
    pub fn external(name: &str, ip: &str) -> Self {
        Self {
            name: name.to_string(),
            ip: ip.parse().expect("an IP address"),
            pod: None,
        }
    }

    /// A pod in `namespace` (whose `kubernetes.io/metadata.name` label Kubernetes sets).
    pub fn pod(name: &str, ip: &str, namespace: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_string(),
            ip: ip.parse().expect("an IP address"),
            pod: Some(Pod {
                namespace: namespace.to_string(),
                namespace_labels: BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_string(),
                    namespace.to_string(),
                )]),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }),
        }
    }
}

/// A destination port and its protocol (`TCP`, `UDP`, `SCTP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    /// Port number.
    pub number: i32,
    /// Protocol.
    pub protocol: &'static str,
}

impl Port {
    /// A TCP port.
    pub fn tcp(number: i32) -> Self {
        Self {
            number,
            protocol: "TCP",
        }
    }

    /// A UDP port.
    pub fn udp(number: i32) -> Self {
        Self {
            number,
            protocol: "UDP",
        }
    }
}

/// Whether `selector` selects `labels`.
pub fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("unknown selector operator {other}"),
        }
    });
    by_labels && by_expressions
}

fn in_cidr(ip: IpAddr, cidr: &str) -> bool {
    let (network, bits) = cidr.split_once('/').expect("CIDR with a prefix length");
    let network: IpAddr = network.parse().expect("CIDR address");
    let bits: u32 = bits.parse().expect("CIDR prefix length");
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

fn peer_matches(peer: &NetworkPolicyPeer, policy_namespace: &str, other: &Endpoint) -> bool {
    if let Some(block) = &peer.ip_block {
        return in_cidr(other.ip, &block.cidr)
            && !block.except.iter().flatten().any(|e| in_cidr(other.ip, e));
    }
    let Some(pod) = &other.pod else {
        return false;
    };
    let namespace_ok = match &peer.namespace_selector {
        Some(selector) => selects(selector, &pod.namespace_labels),
        None => pod.namespace == policy_namespace,
    };
    let pod_ok = peer
        .pod_selector
        .as_ref()
        .is_none_or(|selector| selects(selector, &pod.labels));
    namespace_ok && pod_ok
}

fn port_matches(ports: Option<&Vec<NetworkPolicyPort>>, port: Port) -> bool {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return true;
    };
    ports.iter().any(|p| {
        let protocol_ok = p.protocol.as_deref().unwrap_or("TCP") == port.protocol;
        let number_ok = match &p.port {
            None => true,
            Some(IntOrString::Int(first)) => {
                let last = p.end_port.unwrap_or(*first);
                (*first..=last).contains(&port.number)
            }
            Some(IntOrString::String(name)) => panic!("named port {name} is not modelled"),
        };
        protocol_ok && number_ok
    })
}

fn peers_match(
    peers: Option<&Vec<NetworkPolicyPeer>>,
    policy_namespace: &str,
    other: &Endpoint,
) -> bool {
    match peers.filter(|p| !p.is_empty()) {
        None => true,
        Some(peers) => peers
            .iter()
            .any(|p| peer_matches(p, policy_namespace, other)),
    }
}

/// The policies that select `pod` and isolate it in `direction` (`Ingress`/`Egress`).
fn isolating<'a>(
    policies: &'a [NetworkPolicy],
    pod: &'a Pod,
    direction: &'a str,
) -> impl Iterator<Item = &'a NetworkPolicy> + 'a {
    policies.iter().filter(move |policy| {
        let spec = policy.spec.as_ref().expect("policy spec");
        let namespace = policy.metadata.namespace.as_deref().unwrap_or("default");
        let selected = namespace == pod.namespace
            && selects(
                spec.pod_selector.as_ref().expect("podSelector"),
                &pod.labels,
            );
        // Without policyTypes, Ingress always applies and Egress when rules exist.
        let types = spec.policy_types.clone().unwrap_or_else(|| {
            let mut t = vec!["Ingress".to_string()];
            if spec.egress.is_some() {
                t.push("Egress".to_string());
            }
            t
        });
        selected && types.iter().any(|t| t == direction)
    })
}

/// The peers and ports of one rule; `None` means every peer or every port.
type Rule<'a> = (
    Option<&'a Vec<NetworkPolicyPeer>>,
    Option<&'a Vec<NetworkPolicyPort>>,
);

/// The rules of `policy` for `direction`.
fn rules<'a>(policy: &'a NetworkPolicy, direction: &str) -> Vec<Rule<'a>> {
    let Some(spec) = policy.spec.as_ref() else {
        return Vec::new();
    };
    match direction {
        "Ingress" => spec
            .ingress
            .iter()
            .flatten()
            .map(|r| (r.from.as_ref(), r.ports.as_ref()))
            .collect(),
        _ => spec
            .egress
            .iter()
            .flatten()
            .map(|r| (r.to.as_ref(), r.ports.as_ref()))
            .collect(),
    }
}

/// Whether `pod` lets a connection with `other` through in `direction`.
fn admits(
    policies: &[NetworkPolicy],
    pod: &Pod,
    direction: &str,
    other: &Endpoint,
    port: Port,
) -> bool {
    let mut selecting = isolating(policies, pod, direction).peekable();
    selecting.peek().is_none()
        || selecting.any(|policy| {
            let namespace = policy.metadata.namespace.as_deref().unwrap_or("default");
            rules(policy, direction).into_iter().any(|(peers, ports)| {
                peers_match(peers, namespace, other) && port_matches(ports, port)
            })
        })
}

/// Whether `from` may open a connection to `to` on `port` under `policies`.
pub fn allowed(policies: &[NetworkPolicy], from: &Endpoint, to: &Endpoint, port: Port) -> bool {
    let egress_ok = from
        .pod
        .as_ref()
        .is_none_or(|pod| admits(policies, pod, "Egress", to, port));
    let ingress_ok = to
        .pod
        .as_ref()
        .is_none_or(|pod| admits(policies, pod, "Ingress", from, port));
    egress_ok && ingress_ok
}
