//! On the real node: the stack's NetworkPolicies, enforced by kube-router's firewall,
//! let exactly the connections through that the reachability evaluator lists
//! (tests/network_policies.rs), measured with real connection attempts from inside
//! each tier's pod, from a pod of another namespace, and to a stand-in internet.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::{Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::{with_namespace, within_namespace};
use webtoon_e2e::node::{
    INTERNET_ADDRESS, INTERNET_PORT, Internet, TOOLS_CONTAINER, attach_probe, connects,
    running_pods, stack_from_yaml, start_tools_pod,
};
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack;

const LIMIT: Duration = Duration::from_secs(360);

const STACK: &str = r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: nettoon}
spec:
  hosts: [nettoon.example]
  proxy:
    resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: "1", memory: 256Mi}}
  was:
    image: demo-was:1.0.0
    healthPath: /healthz
    resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: "1", memory: 512Mi}}
  database:
    resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {cpu: "1", memory: 1Gi}}
"#;

/// The cluster DNS Service, which `e2e/local-cluster.sh up --node real` creates.
const CLUSTER_DNS: &str = "10.96.0.10";

/// A party to a connection: where it connects from (a pod and its container) and
/// where it listens.
struct Party {
    name: &'static str,
    namespace: String,
    pod: String,
    container: &'static str,
    listen: Option<(String, u16)>,
}

#[tokio::test]
async fn real_node_enforces_the_network_policy_matrix() {
    within_namespace("node-net", LIMIT, |_, namespace| async move {
        with_namespace("node-net-other", |client, other| async move {
            measure(client, namespace, other).await;
        })
        .await;
    })
    .await;
}

async fn measure(client: Client, namespace: String, other: String) {
    ensure_crd(&client).await;
    let _operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let _internet = Internet::start();
    let client_pod = start_tools_pod(&client, &other, "client").await.name_any();
    let ready = stack::deploy(&client, stack_from_yaml(STACK, &namespace)).await;
    let name = ready.name_any();

    let mut parties = Vec::new();
    for (tier, port) in [
        ("proxy", 8080),
        ("was", 8080),
        ("database", 3306),
        ("cache", 6379),
    ] {
        let selector =
            format!("app.kubernetes.io/instance={name},app.kubernetes.io/component={tier}");
        let pod = running_pods(&client, &namespace, &selector)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("a running {tier} pod"));
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_else(|| panic!("the {tier} pod has an address"));
        attach_probe(&namespace, &pod.name_any()).await;
        parties.push(Party {
            name: tier,
            namespace: namespace.clone(),
            pod: pod.name_any(),
            container: "probe",
            listen: Some((ip, port)),
        });
    }
    parties.push(Party {
        name: "another-namespace",
        namespace: other.clone(),
        pod: client_pod,
        container: TOOLS_CONTAINER,
        listen: None,
    });
    let targets: Vec<(&str, String, u16)> = parties
        .iter()
        .filter_map(|p| p.listen.clone().map(|(ip, port)| (p.name, ip, port)))
        .chain([
            ("internet", INTERNET_ADDRESS.to_string(), INTERNET_PORT),
            ("cluster-dns", CLUSTER_DNS.to_string(), 53),
        ])
        .collect();

    // Every stack pod resolves names; the rest is what the evaluator lists for a
    // stack without backups (tests/network_policies.rs), and what nothing governs:
    // the other namespace's own traffic.
    let mut expected: BTreeSet<String> = [
        "proxy -> was:8080",
        "was -> database:3306",
        "was -> cache:6379",
        "another-namespace -> proxy:8080",
        "another-namespace -> internet:443",
        "another-namespace -> cluster-dns:53",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    for tier in ["proxy", "was", "database", "cache"] {
        expected.insert(format!("{tier} -> cluster-dns:53"));
    }

    // kube-router programs a new pod's rules within seconds: wait until the
    // allowed pairs connect, so the refusals measured next are the policies', not
    // an unprogrammed pod's.
    for pair in &expected {
        let (from, to, host, port) = pair_parts(&parties, &targets, pair);
        let mut open = false;
        for _ in 0..20 {
            if connects(&from.namespace, &from.pod, from.container, &host, port).await {
                open = true;
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert!(open, "{} -> {to}:{port} never connected", from.name);
    }

    let mut measured = BTreeSet::new();
    let mut table = String::new();
    for from in &parties {
        let probes = targets.iter().filter(|(to, _, _)| *to != from.name).map(
            |(to, host, port)| async move {
                let open = connects(&from.namespace, &from.pod, from.container, host, *port).await;
                (format!("{} -> {to}:{port}", from.name), open)
            },
        );
        for (pair, open) in futures::future::join_all(probes).await {
            table.push_str(&format!(
                "{pair:<40} {}\n",
                if open { "connects" } else { "refused" }
            ));
            if open {
                measured.insert(pair);
            }
        }
    }
    eprintln!("measured on the real node:\n{table}");
    let unexpected: Vec<&String> = measured.difference(&expected).collect();
    let missing: Vec<&String> = expected.difference(&measured).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "connected but not allowed: {unexpected:#?}\nallowed but refused: {missing:#?}\n{table}"
    );
}

/// The party and target a pair `from -> to:port` names.
fn pair_parts<'a>(
    parties: &'a [Party],
    targets: &[(&str, String, u16)],
    pair: &str,
) -> (&'a Party, String, String, u16) {
    let (from, rest) = pair.split_once(" -> ").expect("a pair");
    let (to, _) = rest.split_once(':').expect("a port");
    let party = parties
        .iter()
        .find(|p| p.name == from)
        .unwrap_or_else(|| panic!("party {from}"));
    let (_, host, port) = targets
        .iter()
        .find(|(name, _, _)| *name == to)
        .unwrap_or_else(|| panic!("target {to}"));
    (party, to.to_string(), host.clone(), *port)
}
