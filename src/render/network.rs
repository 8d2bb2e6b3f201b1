//! NetworkPolicies: every pod of the stack is isolated for ingress and egress, and
//! each tier is reachable only from the tier that needs it:
//!
//! | from                         | to                 | port            |
//! |------------------------------|--------------------|-----------------|
//! | client networks, namespaces  | proxy              | HTTP, HTTPS     |
//! | proxy                        | WAS                | the WAS port    |
//! | WAS                          | MariaDB, Redis     | 3306, 6379      |
//! | WAS                          | `wasEgress`, external database and Redis | as listed |
//! | migration job                | as the WAS         | as the WAS      |
//! | backup job                   | MariaDB            | 3306            |
//! | credentials rotation jobs    | MariaDB, Redis (one each) | 3306, 6379 |
//! | backup job, verify job       | the backup bucket's `egressCIDRs` | its endpoint's port |
//! | MariaDB, restoring a bucket's backup | that bucket's `egressCIDRs` | its endpoint's port |
//! | every pod of the stack       | cluster DNS        | 53 UDP and TCP  |
//! | Prometheus (`spec.monitoring`) | proxy, WAS, MariaDB, Redis | their metrics ports only |
//!
//! Policies only add up, so a default-deny policy selects every pod of the stack and
//! one policy per component opens exactly its own paths.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{ExternalServiceSpec, ObjectStoreSpec, ServiceMode, ValidatedStack};
use crate::render::Children;
use crate::render::cache::acl_rotation::CACHE_ROTATION_COMPONENT;
use crate::render::database::backup_cronjob::BACKUP_COMPONENT;
use crate::render::database::rotation_job::DATABASE_ROTATION_COMPONENT;
use crate::render::database::verify_cronjob::VERIFY_COMPONENT;
use crate::render::database::{RestoreSource, object_store};
use crate::render::meta::{
    INSTANCE_LABEL, Lifetime, NAME, NAME_LABEL, child_name, object_meta, selector,
};
use crate::render::proxy::nginx_conf::{HTTP_PORT, HTTPS_PORT};
use crate::render::was::MIGRATION_COMPONENT;
use crate::render::{cache, database};

/// Namespace label that Kubernetes sets to the namespace's own name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Where the cluster DNS runs: CoreDNS (or kube-dns) keeps this label in kube-system
/// on kubeadm, kind and the managed clusters alike.
const DNS_NAMESPACE: &str = "kube-system";
const DNS_POD_LABEL: (&str, &str) = ("k8s-app", "kube-dns");

fn tcp(port: i32) -> NetworkPolicyPort {
    NetworkPolicyPort {
        protocol: Some("TCP".to_string()),
        port: Some(IntOrString::Int(port)),
        end_port: None,
    }
}

fn pods(stack: &ValidatedStack, component: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(selector(stack, component)),
        ..Default::default()
    }
}

fn network(cidr: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.to_string(),
            except: None,
        }),
        ..Default::default()
    }
}

fn namespace(name: &str) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_string(),
                name.to_string(),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn cluster_dns() -> NetworkPolicyEgressRule {
    let mut dns = namespace(DNS_NAMESPACE);
    dns.pod_selector = Some(LabelSelector {
        match_labels: Some(BTreeMap::from([(
            DNS_POD_LABEL.0.to_string(),
            DNS_POD_LABEL.1.to_string(),
        )])),
        ..Default::default()
    });
    let port = |protocol: &str| NetworkPolicyPort {
        protocol: Some(protocol.to_string()),
        port: Some(IntOrString::Int(53)),
        end_port: None,
    };
    NetworkPolicyEgressRule {
        to: Some(vec![dns]),
        ports: Some(vec![port("UDP"), port("TCP")]),
    }
}

/// The network of an external service: the host itself when it is an address. A
/// NetworkPolicy cannot name a DNS name, so a named host is reachable on its port at
/// any address; give an IP address to narrow it.
fn external_egress(external: &ExternalServiceSpec) -> NetworkPolicyEgressRule {
    let cidr = match external.host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => format!("{ip}/32"),
        Ok(IpAddr::V6(ip)) => format!("{ip}/128"),
        Err(_) => "0.0.0.0/0".to_string(),
    };
    NetworkPolicyEgressRule {
        to: Some(vec![network(&cidr)]),
        ports: Some(vec![tcp(external.port)]),
    }
}

/// Egress to a bucket's endpoint port, in the networks the spec lists for it.
fn object_store_egress(store: &ObjectStoreSpec) -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(store.egress_cidrs.iter().map(|c| network(c)).collect()),
        ports: Some(vec![tcp(object_store::endpoint_port(store))]),
    }
}

fn policy(
    stack: &ValidatedStack,
    name: String,
    pod_selector: LabelSelector,
    ingress: Vec<NetworkPolicyIngressRule>,
    egress: Vec<NetworkPolicyEgressRule>,
) -> NetworkPolicy {
    NetworkPolicy {
        metadata: object_meta(stack, name, "network", Lifetime::WithStack),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pod_selector),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            // No rules and an empty list mean the same, but the API server stores an
            // empty list as absent, which would read back as drift.
            ingress: Some(ingress).filter(|r| !r.is_empty()),
            egress: Some(egress).filter(|r| !r.is_empty()),
        }),
    }
}

/// Adds the NetworkPolicies to `children` when `spec.network.policies` is on.
pub fn build(stack: &ValidatedStack, children: &mut Children) {
    let spec = &stack.spec;
    if !spec.network.policies {
        return;
    }
    let embedded_database = spec.database.mode == ServiceMode::Embedded;
    let embedded_cache = spec.cache.mode == ServiceMode::Embedded;
    let was_port = spec.was.port;
    let mut policies = Vec::new();

    // Selects every pod of the stack and allows nothing: isolation for pods that no
    // other policy names, including any added later.
    policies.push(policy(
        stack,
        child_name(stack, "default-deny"),
        LabelSelector {
            match_labels: Some(BTreeMap::from([
                (NAME_LABEL.to_string(), NAME.to_string()),
                (INSTANCE_LABEL.to_string(), stack.name.clone()),
            ])),
            ..Default::default()
        },
        Vec::new(),
        Vec::new(),
    ));

    let clients = spec
        .network
        .ingress_from_cidrs
        .iter()
        .map(|c| network(c))
        .chain(
            spec.network
                .ingress_from_namespaces
                .iter()
                .map(|n| namespace(n)),
        )
        .collect();
    policies.push(policy(
        stack,
        child_name(stack, "proxy"),
        selector(stack, "proxy"),
        vec![NetworkPolicyIngressRule {
            from: Some(clients),
            ports: Some(vec![tcp(HTTP_PORT), tcp(HTTPS_PORT)]),
        }],
        vec![
            NetworkPolicyEgressRule {
                to: Some(vec![pods(stack, "was")]),
                ports: Some(vec![tcp(was_port)]),
            },
            cluster_dns(),
        ],
    ));

    let mut was_egress = vec![cluster_dns()];
    match (&spec.database.external, embedded_database) {
        (_, true) => was_egress.push(NetworkPolicyEgressRule {
            to: Some(vec![pods(stack, "database")]),
            ports: Some(vec![tcp(database::PORT)]),
        }),
        (Some(external), false) => was_egress.push(external_egress(external)),
        (None, false) => {}
    }
    match (&spec.cache.external, embedded_cache) {
        (_, true) => was_egress.push(NetworkPolicyEgressRule {
            to: Some(vec![pods(stack, "cache")]),
            ports: Some(vec![tcp(cache::PORT)]),
        }),
        (Some(external), false) => was_egress.push(external_egress(external)),
        (None, false) => {}
    }
    was_egress.extend(
        spec.network
            .was_egress
            .iter()
            .map(|e| NetworkPolicyEgressRule {
                to: Some(vec![network(&e.cidr)]),
                ports: Some(e.ports.iter().copied().map(tcp).collect()),
            }),
    );
    let migrations = spec.was.migration.is_some();
    if migrations {
        // The migration reaches what the WAS reaches, and nothing reaches it.
        policies.push(policy(
            stack,
            child_name(stack, MIGRATION_COMPONENT),
            selector(stack, MIGRATION_COMPONENT),
            Vec::new(),
            was_egress.clone(),
        ));
    }
    policies.push(policy(
        stack,
        child_name(stack, "was"),
        selector(stack, "was"),
        vec![NetworkPolicyIngressRule {
            from: Some(vec![pods(stack, "proxy")]),
            ports: Some(vec![tcp(was_port)]),
        }],
        was_egress,
    ));
    // The WAS's data services also serve its migration.
    let was_clients = || {
        let mut clients = vec![pods(stack, "was")];
        if migrations {
            clients.push(pods(stack, MIGRATION_COMPONENT));
        }
        clients
    };

    if embedded_database {
        let backup = spec.database.backup.as_ref();
        let mut clients = was_clients();
        if backup.is_some() {
            clients.push(pods(stack, BACKUP_COMPONENT));
        }
        clients.push(pods(stack, DATABASE_ROTATION_COMPONENT));
        let mut database_egress = vec![cluster_dns()];
        if let Some(RestoreSource::ObjectStore(store)) = database::restore_source(stack) {
            database_egress.push(object_store_egress(store));
        }
        policies.push(policy(
            stack,
            child_name(stack, "database"),
            selector(stack, "database"),
            vec![NetworkPolicyIngressRule {
                from: Some(clients),
                ports: Some(vec![tcp(database::PORT)]),
            }],
            database_egress,
        ));
        if let Some(backup) = backup {
            let mut backup_egress = vec![
                NetworkPolicyEgressRule {
                    to: Some(vec![pods(stack, "database")]),
                    ports: Some(vec![tcp(database::PORT)]),
                },
                cluster_dns(),
            ];
            let mut verify_egress = vec![cluster_dns()];
            if let Some(store) = &backup.object_store {
                backup_egress.push(object_store_egress(store));
                if backup.volume().is_none() {
                    verify_egress.push(object_store_egress(store));
                }
            }
            policies.push(policy(
                stack,
                child_name(stack, BACKUP_COMPONENT),
                selector(stack, BACKUP_COMPONENT),
                Vec::new(),
                backup_egress,
            ));
            policies.push(policy(
                stack,
                child_name(stack, VERIFY_COMPONENT),
                selector(stack, VERIFY_COMPONENT),
                Vec::new(),
                verify_egress,
            ));
        }
    }
    if embedded_cache {
        policies.push(policy(
            stack,
            child_name(stack, "cache"),
            selector(stack, "cache"),
            vec![NetworkPolicyIngressRule {
                from: Some(
                    was_clients()
                        .into_iter()
                        .chain([pods(stack, CACHE_ROTATION_COMPONENT)])
                        .collect(),
                ),
                ports: Some(vec![tcp(cache::PORT)]),
            }],
            vec![cluster_dns()],
        ));
    }
    policies.extend(metrics_policies(stack));
    children.network_policies = policies;
}

/// With monitoring, one policy per component that serves metrics: Prometheus's pods
/// reach exactly that component's metrics ports.
fn metrics_policies(stack: &ValidatedStack) -> Vec<NetworkPolicy> {
    let Some(monitoring) = crate::render::monitoring::spec(stack) else {
        return Vec::new();
    };
    let mut prometheus = namespace(&monitoring.prometheus_namespace);
    if !monitoring.prometheus_pod_labels.is_empty() {
        prometheus.pod_selector = Some(LabelSelector {
            match_labels: Some(monitoring.prometheus_pod_labels.clone()),
            ..Default::default()
        });
    }
    let mut by_component: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for port in crate::render::monitoring::metrics_ports(stack) {
        by_component
            .entry(port.component)
            .or_default()
            .push(port.number);
    }
    by_component
        .into_iter()
        .map(|(component, ports)| {
            policy(
                stack,
                child_name(stack, &format!("metrics-{component}")),
                selector(stack, component),
                vec![NetworkPolicyIngressRule {
                    from: Some(vec![prometheus.clone()]),
                    ports: Some(ports.into_iter().map(tcp).collect()),
                }],
                Vec::new(),
            )
        })
        .collect()
}

/// The policies of a credentials rotation's Job pods, rendered while they exist: each
/// reaches its own server and the cluster DNS, and nothing reaches it.
pub fn rotation_policies(stack: &ValidatedStack) -> Vec<NetworkPolicy> {
    if !stack.spec.network.policies {
        return Vec::new();
    }
    let mut policies = Vec::new();
    for (mode, component, server, port) in [
        (
            stack.spec.database.mode,
            DATABASE_ROTATION_COMPONENT,
            "database",
            database::PORT,
        ),
        (
            stack.spec.cache.mode,
            CACHE_ROTATION_COMPONENT,
            "cache",
            cache::PORT,
        ),
    ] {
        if mode == ServiceMode::Embedded {
            policies.push(policy(
                stack,
                child_name(stack, component),
                selector(stack, component),
                Vec::new(),
                vec![
                    NetworkPolicyEgressRule {
                        to: Some(vec![pods(stack, server)]),
                        ports: Some(vec![tcp(port)]),
                    },
                    cluster_dns(),
                ],
            ));
        }
    }
    policies
}
