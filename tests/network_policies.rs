//! NetworkPolicies: the reachability evaluator's own semantics on hand-written
//! policies, then the whole (from, to, port) matrix over the policies render
//! produces, with every pod labelled as its rendered pod template labels it (the
//! pods of a migration's Jobs included, when the controller observed them).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::migration::{MIGRATION_STACK, migrating};
use common::reachability::{Endpoint, Port, allowed};
use common::stack_from_yaml;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::json;
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::render::database::backup_cronjob::BACKUP_COMPONENT;
use webtoon_operator::render::database::verify_cronjob::VERIFY_COMPONENT;
use webtoon_operator::render::meta::COMPONENT_LABEL;
use webtoon_operator::render::was::MIGRATION_COMPONENT;
use webtoon_operator::render::{Children, Observed, render};

fn policy(value: serde_json::Value) -> NetworkPolicy {
    serde_json::from_value(value).expect("a NetworkPolicy")
}

fn pod(name: &str, ip: &str, namespace: &str, labels: &[(&str, &str)]) -> Endpoint {
    Endpoint::pod(name, ip, namespace, labels)
}

#[test]
fn evaluator_isolates_only_selected_pods_in_the_selected_direction() {
    let web = pod("web", "10.0.0.1", "a", &[("app", "web")]);
    let db = pod("db", "10.0.0.2", "a", &[("app", "db")]);
    let outside = Endpoint::external("outside", "198.51.100.7");
    assert!(
        allowed(&[], &outside, &db, Port::tcp(5432)),
        "no policy, no isolation"
    );

    let deny_db_ingress = policy(json!({
        "metadata": {"name": "deny", "namespace": "a"},
        "spec": {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"]},
    }));
    let policies = [deny_db_ingress];
    assert!(!allowed(&policies, &web, &db, Port::tcp(5432)));
    assert!(
        allowed(&policies, &db, &web, Port::tcp(80)),
        "egress is not isolated"
    );
    assert!(
        allowed(&policies, &web, &outside, Port::tcp(443)),
        "web is not selected"
    );

    let open_db = policy(json!({
        "metadata": {"name": "open", "namespace": "a"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 5432}]}],
        },
    }));
    let policies = [policies[0].clone(), open_db];
    assert!(
        allowed(&policies, &web, &db, Port::tcp(5432)),
        "policies add up"
    );
    assert!(!allowed(&policies, &web, &db, Port::tcp(5433)));
    assert!(
        !allowed(&policies, &web, &db, Port::udp(5432)),
        "TCP is the default protocol"
    );
    let web_elsewhere = pod("web-b", "10.0.1.1", "b", &[("app", "web")]);
    assert!(
        !allowed(&policies, &web_elsewhere, &db, Port::tcp(5432)),
        "a podSelector alone means the policy's own namespace"
    );
}

#[test]
fn evaluator_peers_blocks_selectors_ports_and_expressions() {
    let target = pod("target", "10.0.0.9", "a", &[("app", "t")]);
    let policies = [policy(json!({
        "metadata": {"name": "p", "namespace": "a"},
        "spec": {
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["t", "u"]}]},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}], "ports": [{"port": 8000, "endPort": 8010}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "b"}}, "podSelector": {"matchLabels": {"role": "scraper"}}}]},
                {"from": [{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}, {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["a", "b"]}]}}], "ports": [{"port": 53, "protocol": "UDP"}]},
            ],
        },
    }))];
    let low = Endpoint::external("low", "192.0.2.10");
    let high = Endpoint::external("high", "192.0.2.200");
    assert!(allowed(&policies, &low, &target, Port::tcp(8005)));
    assert!(
        !allowed(&policies, &low, &target, Port::tcp(8011)),
        "beyond endPort"
    );
    assert!(
        !allowed(&policies, &high, &target, Port::tcp(8005)),
        "in except"
    );
    let scraper_b = pod("scraper-b", "10.0.2.1", "b", &[("role", "scraper")]);
    let other_b = pod("other-b", "10.0.2.2", "b", &[("role", "other")]);
    let scraper_a = pod("scraper-a", "10.0.0.3", "a", &[("role", "scraper")]);
    assert!(
        allowed(&policies, &scraper_b, &target, Port::tcp(9999)),
        "no ports: every port"
    );
    assert!(
        !allowed(&policies, &other_b, &target, Port::tcp(9999)),
        "both selectors must match"
    );
    assert!(!allowed(&policies, &scraper_a, &target, Port::tcp(9999)));
    let c = pod("c", "10.0.3.1", "c", &[]);
    assert!(allowed(&policies, &c, &target, Port::udp(53)));
    assert!(!allowed(&policies, &c, &target, Port::tcp(53)));
    let untouched = pod("untouched", "10.0.0.4", "a", &[("app", "v")]);
    assert!(
        allowed(&policies, &high, &untouched, Port::tcp(1)),
        "not selected"
    );
}

/// The pods of a stack, labelled as rendered, and the parties around it.
fn endpoints(stack: &ValidatedStack, children: &Children) -> Vec<Endpoint> {
    let template = |component: &str| -> Option<PodTemplateSpec> {
        let name = format!("{}-{component}", stack.name);
        children
            .deployments
            .iter()
            .filter(|d| d.metadata.name.as_deref() == Some(name.as_str()))
            .filter_map(|d| d.spec.as_ref().map(|s| s.template.clone()))
            .chain(
                children
                    .stateful_sets
                    .iter()
                    .filter(|s| s.metadata.name.as_deref() == Some(name.as_str()))
                    .filter_map(|s| s.spec.as_ref().map(|s| s.template.clone())),
            )
            .next()
    };
    let from_template = |component: &str, ip: &str| -> Option<Endpoint> {
        let labels = template(component)?.metadata?.labels?;
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Some(pod(component, ip, &stack.namespace, &labels))
    };
    let mut all: Vec<Endpoint> = [
        from_template("proxy", "10.244.0.10"),
        from_template("was", "10.244.0.11"),
        from_template("database", "10.244.0.12"),
        from_template("cache", "10.244.0.13"),
    ]
    .into_iter()
    .flatten()
    .collect();
    // The pods of the backup and verify CronJobs.
    for (cron_job, ip) in children
        .cron_jobs
        .iter()
        .zip(["10.244.0.14", "10.244.0.17"])
    {
        let labels = cron_job
            .spec
            .as_ref()
            .and_then(|s| s.job_template.spec.as_ref())
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .expect("a CronJob's pod template has labels");
        let name = labels
            .get(COMPONENT_LABEL)
            .cloned()
            .expect("a component label");
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.push(pod(&name, ip, &stack.namespace, &labels));
    }
    // The pods of the migration's Jobs, when they exist: the migration, and the backup
    // taken before it (named apart from the scheduled backup's pod).
    for (job, ip) in children.jobs.iter().zip(["10.244.0.15", "10.244.0.16"]) {
        let labels = job
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .expect("a Job's pod template has labels");
        let name = match labels.get(COMPONENT_LABEL).map(String::as_str) {
            Some(MIGRATION_COMPONENT) => MIGRATION_COMPONENT,
            Some(BACKUP_COMPONENT) => PRE_MIGRATION_BACKUP,
            other => panic!("a Job of an unexpected component {other:?}"),
        };
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.push(pod(name, ip, &stack.namespace, &labels));
    }
    all.push(pod(
        "cluster-dns",
        "10.244.1.2",
        "kube-system",
        &[("k8s-app", "kube-dns")],
    ));
    all.push(pod(
        "another-namespace",
        "10.244.2.7",
        "intruders",
        &[("app", "scanner")],
    ));
    all.push(Endpoint::external("internet", "198.51.100.23"));
    all
}

const PORTS: [Port; 7] = [
    Port {
        number: 8080,
        protocol: "TCP",
    },
    Port {
        number: 8443,
        protocol: "TCP",
    },
    Port {
        number: 3306,
        protocol: "TCP",
    },
    Port {
        number: 6379,
        protocol: "TCP",
    },
    Port {
        number: 443,
        protocol: "TCP",
    },
    Port {
        number: 53,
        protocol: "UDP",
    },
    Port {
        number: 53,
        protocol: "TCP",
    },
];

/// Every allowed (from, to, port) among `endpoints`, as `from -> to:port/proto`.
fn matrix(policies: &[NetworkPolicy], endpoints: &[Endpoint], ports: &[Port]) -> BTreeSet<String> {
    let mut open = BTreeSet::new();
    for from in endpoints {
        for to in endpoints {
            if from.name == to.name {
                continue;
            }
            for port in ports {
                if allowed(policies, from, to, *port) {
                    open.insert(format!(
                        "{} -> {}:{}/{}",
                        from.name, to.name, port.number, port.protocol
                    ));
                }
            }
        }
    }
    open
}

fn stack_and_children(yaml: &str) -> (ValidatedStack, Children) {
    let stack = stack_from_yaml(yaml);
    let children = render(&stack, &Observed::default());
    (stack, children)
}

const STACK_PODS: [&str; 6] = [
    "proxy",
    "was",
    "database",
    "cache",
    BACKUP_COMPONENT,
    VERIFY_COMPONENT,
];

/// Endpoint name of the pod of the backup Job taken before a migration.
const PRE_MIGRATION_BACKUP: &str = "pre-migration-backup";

fn dns_from_every_stack_pod() -> Vec<String> {
    dns_from(&STACK_PODS)
}

fn dns_from(pods: &[&str]) -> Vec<String> {
    pods.iter()
        .flat_map(|p| {
            [
                format!("{p} -> cluster-dns:53/UDP"),
                format!("{p} -> cluster-dns:53/TCP"),
            ]
        })
        .collect()
}

/// Pods outside the stack send as they like (nothing isolates them), so what they
/// may reach is decided by the stack's ingress rules alone.
fn clients_to_proxy(clients: &[&str]) -> Vec<String> {
    clients
        .iter()
        .flat_map(|c| {
            [
                format!("{c} -> proxy:8080/TCP"),
                format!("{c} -> proxy:8443/TCP"),
            ]
        })
        .collect()
}

/// Connections among the parties outside the stack, which its policies do not govern.
fn outside_the_stack() -> Vec<String> {
    let outside = ["cluster-dns", "another-namespace", "internet"];
    let mut open = Vec::new();
    for from in outside {
        for to in outside {
            if from == to || (from == "internet" && to == "internet") {
                continue;
            }
            for port in PORTS {
                open.push(format!("{from} -> {to}:{}/{}", port.number, port.protocol));
            }
        }
    }
    open
}

const STACK: &str = r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: megatoon, namespace: webtoon}
spec:
  hosts: [megatoon.example]
  was: {image: "registry.example/megatoon/was:1.4.2", port: 8080}
  database: {backup: {schedule: "0 3 * * *"}}
"#;

#[test]
fn each_tier_is_reachable_only_from_the_tier_that_needs_it() {
    let (stack, children) = stack_and_children(STACK);
    let endpoints = endpoints(&stack, &children);
    let open = matrix(&children.network_policies, &endpoints, &PORTS);

    let mut expected: BTreeSet<String> = [
        "proxy -> was:8080/TCP",
        "was -> database:3306/TCP",
        "was -> cache:6379/TCP",
        "database-backup -> database:3306/TCP",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    expected.extend(dns_from_every_stack_pod());
    expected.extend(clients_to_proxy(&[
        "internet",
        "another-namespace",
        "cluster-dns",
    ]));
    expected.extend(outside_the_stack());
    let unexpected: Vec<&String> = open.difference(&expected).collect();
    let missing: Vec<&String> = expected.difference(&open).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "allowed but not expected: {unexpected:#?}\nexpected but denied: {missing:#?}"
    );

    // The pairs the threat model names, spelled out.
    let find = |name: &str| {
        endpoints
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("endpoint {name}"))
    };
    let policies = &children.network_policies;
    for (from, to, port, verdict) in [
        ("proxy", "database", 3306, false),
        ("proxy", "cache", 6379, false),
        ("was", "database", 3306, true),
        ("internet", "cache", 6379, false),
        ("internet", "database", 3306, false),
        ("internet", "was", 8080, false),
        ("another-namespace", "was", 8080, false),
        ("another-namespace", "database", 3306, false),
        ("database-backup", "was", 8080, false),
        ("database-backup", "cache", 6379, false),
        ("database-backup", "internet", 443, false),
        ("database-verify", "database", 3306, false),
        ("database-verify", "internet", 443, false),
        ("was", "internet", 443, false),
        ("database", "internet", 443, false),
        ("was", "proxy", 8080, false),
    ] {
        assert_eq!(
            allowed(policies, find(from), find(to), Port::tcp(port)),
            verdict,
            "{from} -> {to}:{port}"
        );
    }
}

#[test]
fn client_networks_namespaces_external_services_and_egress_follow_the_spec() {
    let (stack, children) = stack_and_children(
        r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: exttoon, namespace: webtoon}
spec:
  hosts: [exttoon.example]
  was: {image: "registry.example/exttoon/was:2.0.0"}
  database: {mode: external, external: {host: 192.0.2.50, port: 3307, secretName: db}}
  cache: {mode: external, external: {host: redis.example.net, port: 6380, secretName: cache}}
  network:
    ingressFromCIDRs: [10.20.0.0/16]
    ingressFromNamespaces: [ingress-nginx]
    wasEgress: [{cidr: 203.0.113.0/24, ports: [443]}]
"#,
    );
    let mut endpoints = endpoints(&stack, &children);
    endpoints.push(pod(
        "ingress-controller",
        "172.16.0.5",
        "ingress-nginx",
        &[("app", "ingress")],
    ));
    endpoints.push(Endpoint::external("office", "10.20.30.40"));
    endpoints.push(Endpoint::external("external-db", "192.0.2.50"));
    endpoints.push(Endpoint::external("external-redis", "198.51.100.80"));
    endpoints.push(Endpoint::external("payment-api", "203.0.113.7"));
    let names: BTreeMap<&str, &Endpoint> = endpoints.iter().map(|e| (e.name.as_str(), e)).collect();
    assert!(
        !["database", "cache", "database-backup"]
            .iter()
            .any(|n| names.contains_key(n)),
        "external mode runs no data pods"
    );
    let policies = &children.network_policies;
    let check = |from: &str, to: &str, port: Port, verdict: bool| {
        assert_eq!(
            allowed(policies, names[from], names[to], port),
            verdict,
            "{from} -> {to}:{port:?}"
        );
    };
    check("office", "proxy", Port::tcp(8443), true);
    check("ingress-controller", "proxy", Port::tcp(8080), true);
    check("internet", "proxy", Port::tcp(8443), false);
    check("another-namespace", "proxy", Port::tcp(8443), false);
    check("was", "external-db", Port::tcp(3307), true);
    check("was", "external-db", Port::tcp(3306), false);
    check("proxy", "external-db", Port::tcp(3307), false);
    // A host name cannot be narrowed to an address: its port is open at any address.
    check("was", "external-redis", Port::tcp(6380), true);
    check("was", "external-redis", Port::tcp(6379), false);
    check("was", "payment-api", Port::tcp(443), true);
    check("was", "payment-api", Port::tcp(80), false);
    check("was", "internet", Port::tcp(443), false);
}

#[test]
fn turning_policies_off_renders_none_and_every_child_name_is_unique() {
    let (_, children) = stack_and_children(&format!("{STACK}  network: {{policies: false}}\n"));
    assert!(children.network_policies.is_empty());
    let (_, children) = stack_and_children(STACK);
    let names: BTreeSet<_> = children
        .network_policies
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "megatoon-cache",
            "megatoon-database",
            "megatoon-database-backup",
            "megatoon-database-verify",
            "megatoon-default-deny",
            "megatoon-proxy",
            "megatoon-was",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    for policy in &children.network_policies {
        let types = policy.spec.as_ref().and_then(|s| s.policy_types.clone());
        assert_eq!(
            types,
            Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            "every policy isolates both directions"
        );
    }
}

#[test]
fn the_migration_reaches_the_data_tier_and_nothing_reaches_it() {
    let stack = stack_from_yaml(MIGRATION_STACK);
    let children = render(&stack, &migrating(&stack));
    assert_eq!(children.jobs.len(), 2, "the backup and the migration Job");
    let endpoints = endpoints(&stack, &children);
    for name in [MIGRATION_COMPONENT, PRE_MIGRATION_BACKUP] {
        assert!(
            endpoints.iter().any(|e| e.name == name),
            "{name} is an endpoint"
        );
    }
    let open = matrix(&children.network_policies, &endpoints, &PORTS);

    let mut expected: BTreeSet<String> = [
        "proxy -> was:8080/TCP",
        "was -> database:3306/TCP",
        "was -> cache:6379/TCP",
        "database-backup -> database:3306/TCP",
        "pre-migration-backup -> database:3306/TCP",
        "was-migration -> database:3306/TCP",
        "was-migration -> cache:6379/TCP",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let mut stack_pods = STACK_PODS.to_vec();
    stack_pods.extend([MIGRATION_COMPONENT, PRE_MIGRATION_BACKUP]);
    expected.extend(dns_from(&stack_pods));
    expected.extend(clients_to_proxy(&[
        "internet",
        "another-namespace",
        "cluster-dns",
    ]));
    expected.extend(outside_the_stack());
    let unexpected: Vec<&String> = open.difference(&expected).collect();
    let missing: Vec<&String> = expected.difference(&open).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "allowed but not expected: {unexpected:#?}\nexpected but denied: {missing:#?}"
    );

    // The migration pod's own paths, spelled out.
    let find = |name: &str| {
        endpoints
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("endpoint {name}"))
    };
    let policies = &children.network_policies;
    for (from, to, port, verdict) in [
        ("was-migration", "database", Port::tcp(3306), true),
        ("was-migration", "cache", Port::tcp(6379), true),
        ("was-migration", "cluster-dns", Port::udp(53), true),
        ("was-migration", "cluster-dns", Port::tcp(53), true),
        ("was-migration", "proxy", Port::tcp(8080), false),
        ("was-migration", "was", Port::tcp(8080), false),
        ("was-migration", "internet", Port::tcp(443), false),
        ("was-migration", "another-namespace", Port::tcp(8080), false),
        ("proxy", "was-migration", Port::tcp(8080), false),
        ("was", "was-migration", Port::tcp(8080), false),
        ("internet", "was-migration", Port::tcp(8080), false),
        ("another-namespace", "was-migration", Port::tcp(8080), false),
        ("database", "was-migration", Port::tcp(3306), false),
        ("pre-migration-backup", "database", Port::tcp(3306), true),
        ("pre-migration-backup", "cache", Port::tcp(6379), false),
        ("pre-migration-backup", "was", Port::tcp(8080), false),
        ("pre-migration-backup", "internet", Port::tcp(443), false),
    ] {
        assert_eq!(
            allowed(policies, find(from), find(to), port),
            verdict,
            "{from} -> {to}:{port:?}"
        );
    }
    // No port at all reaches the migration pod from anyone.
    let migration = find(MIGRATION_COMPONENT);
    for from in endpoints.iter().filter(|e| e.name != migration.name) {
        for port in [
            Port::tcp(1),
            Port::tcp(8080),
            Port::tcp(65535),
            Port::udp(53),
        ] {
            assert!(
                !allowed(policies, from, migration, port),
                "{} -> was-migration:{port:?}",
                from.name
            );
        }
    }
    assert!(
        policies
            .iter()
            .any(|p| p.metadata.name == Some(format!("{}-was-migration", stack.name))),
        "the migration has its own policy"
    );
}

#[test]
fn the_migration_shares_the_was_egress_to_external_services() {
    let yaml = format!(
        "{MIGRATION_STACK}  network:\n    wasEgress: [{{cidr: 203.0.113.0/24, ports: [443]}}]\n"
    );
    let stack = stack_from_yaml(&yaml);
    let children = render(&stack, &migrating(&stack));
    let mut endpoints = endpoints(&stack, &children);
    endpoints.push(Endpoint::external("payment-api", "203.0.113.7"));
    let names: BTreeMap<&str, &Endpoint> = endpoints.iter().map(|e| (e.name.as_str(), e)).collect();
    let policies = &children.network_policies;
    for (from, to, port, verdict) in [
        ("was", "payment-api", 443, true),
        ("was-migration", "payment-api", 443, true),
        ("was-migration", "payment-api", 80, false),
        ("was-migration", "internet", 443, false),
        ("pre-migration-backup", "payment-api", 443, false),
        ("payment-api", "was-migration", 443, false),
    ] {
        assert_eq!(
            allowed(policies, names[from], names[to], Port::tcp(port)),
            verdict,
            "{from} -> {to}:{port}"
        );
    }
}

#[test]
fn without_a_migration_spec_a_pod_labelled_as_one_gets_nothing() {
    // The stack has no `was.migration`: even observing a migration renders no Job,
    // and a pod someone labels as a migration is held by the default deny alone.
    let stack = stack_from_yaml(STACK);
    assert!(stack.spec.was.migration.is_none());
    let children = render(&stack, &migrating(&stack));
    assert!(children.jobs.is_empty(), "no migration without its spec");
    let not_migrating = Observed {
        migration: None,
        ..migrating(&stack)
    };
    assert_eq!(children, render(&stack, &not_migrating));
    assert!(
        !children
            .network_policies
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some("megatoon-was-migration"))
    );

    let mut endpoints = endpoints(&stack, &children);
    let mut labels = children
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("megatoon-was"))
        .and_then(|d| d.spec.as_ref()?.template.metadata.as_ref()?.labels.clone())
        .expect("WAS pod labels");
    labels.insert(COMPONENT_LABEL.to_string(), MIGRATION_COMPONENT.to_string());
    let labels: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    endpoints.push(pod("impostor", "10.244.0.30", &stack.namespace, &labels));
    let open = matrix(&children.network_policies, &endpoints, &PORTS);
    let impostor: Vec<&String> = open.iter().filter(|c| c.contains("impostor")).collect();
    assert!(
        impostor.is_empty(),
        "a pod labelled as a migration is open: {impostor:#?}"
    );
    let policies = &children.network_policies;
    let find = |name: &str| {
        endpoints
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("endpoint {name}"))
    };
    assert!(!allowed(
        policies,
        find("impostor"),
        find("database"),
        Port::tcp(3306)
    ));
    assert!(!allowed(
        policies,
        find("impostor"),
        find("cache"),
        Port::tcp(6379)
    ));
    assert!(
        allowed(policies, find("was"), find("database"), Port::tcp(3306)),
        "the WAS itself still reaches the database"
    );
}

#[test]
fn backups_to_a_bucket_reach_its_networks_on_its_port_and_nothing_else() {
    let (stack, children) = stack_and_children(
        r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: megatoon, namespace: webtoon}
spec:
  hosts: [megatoon.example]
  was: {image: "registry.example/megatoon/was:1.4.2", port: 8080}
  database:
    backup:
      objectStore:
        endpoint: https://s3.example:8443
        bucket: megatoon-backups
        secretName: backup-s3
        egressCIDRs: [52.95.0.0/16]
"#,
    );
    let mut endpoints = endpoints(&stack, &children);
    endpoints.push(Endpoint::external("bucket", "52.95.10.20"));
    let find = |name: &str| {
        endpoints
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("endpoint {name}"))
    };
    let policies = &children.network_policies;
    for (from, to, port, verdict) in [
        ("database-backup", "bucket", 8443, true),
        ("database-backup", "bucket", 443, false),
        ("database-backup", "internet", 8443, false),
        ("database-backup", "database", 3306, true),
        // Without a volume the verify job reads the bucket, and nothing else.
        ("database-verify", "bucket", 8443, true),
        ("database-verify", "database", 3306, false),
        ("database-verify", "internet", 8443, false),
        // Only a restore from the bucket lets the database reach it.
        ("database", "bucket", 8443, false),
        ("was", "bucket", 8443, false),
    ] {
        assert_eq!(
            allowed(policies, find(from), find(to), Port::tcp(port)),
            verdict,
            "{from} -> {to}:{port}"
        );
    }
}

#[test]
fn prometheus_reaches_every_metrics_port_and_no_other_port() {
    let (stack, children) = stack_and_children(
        r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: megatoon, namespace: webtoon}
spec:
  hosts: [megatoon.example]
  was: {image: "registry.example/megatoon/was:1.4.2", port: 8080}
  network: {ingressFromCIDRs: [203.0.113.0/24]}
  monitoring:
    prometheusNamespace: monitoring
    prometheusPodLabels: {app.kubernetes.io/name: prometheus}
    was: {port: 9090}
"#,
    );
    let mut all = endpoints(&stack, &children);
    all.push(pod(
        "prometheus",
        "10.244.3.5",
        "monitoring",
        &[("app.kubernetes.io/name", "prometheus")],
    ));
    all.push(pod(
        "grafana",
        "10.244.3.6",
        "monitoring",
        &[("app.kubernetes.io/name", "grafana")],
    ));
    all.push(pod(
        "prometheus-elsewhere",
        "10.244.4.5",
        "intruders",
        &[("app.kubernetes.io/name", "prometheus")],
    ));
    // Every port any pod of the stack listens on, and the metrics ports.
    let ports: Vec<Port> = [8080, 8443, 8081, 3306, 6379, 9113, 4040, 9104, 9121, 9090]
        .into_iter()
        .map(Port::tcp)
        .collect();
    let scrapers = ["prometheus", "grafana", "prometheus-elsewhere"];
    let stack_pods = ["proxy", "was", "database", "cache"];
    let sources: Vec<Endpoint> = all
        .iter()
        .filter(|e| scrapers.contains(&e.name.as_str()))
        .cloned()
        .collect();
    let open: BTreeSet<String> = matrix(&children.network_policies, &all, &ports)
        .into_iter()
        .filter(|line| {
            sources
                .iter()
                .any(|s| line.starts_with(&format!("{} ->", s.name)))
                && stack_pods
                    .iter()
                    .any(|p| line.contains(&format!("-> {p}:")))
        })
        .collect();
    let expected: BTreeSet<String> = [
        "prometheus -> proxy:9113/TCP",
        "prometheus -> proxy:4040/TCP",
        "prometheus -> database:9104/TCP",
        "prometheus -> cache:9121/TCP",
        "prometheus -> was:9090/TCP",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        open, expected,
        "only Prometheus, only its namespace, only the metrics ports"
    );

    // Without monitoring, no metrics port is open to anyone.
    let (plain, plain_children) = stack_and_children(STACK);
    let mut all = endpoints(&plain, &plain_children);
    all.push(pod(
        "prometheus",
        "10.244.3.5",
        "monitoring",
        &[("app.kubernetes.io/name", "prometheus")],
    ));
    let open = matrix(&plain_children.network_policies, &all, &ports);
    assert!(
        !open.iter().any(|l| l.starts_with("prometheus ->")
            && stack_pods.iter().any(|p| l.contains(&format!("-> {p}:")))
            && !l.contains(":8080/")
            && !l.contains(":8443/")),
        "{open:#?}"
    );
}
