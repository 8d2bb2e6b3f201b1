//! Monitoring on the local cluster, with the Prometheus Operator's CRDs installed: a
//! stack with `spec.monitoring` gets a PodMonitor that the API server accepts and
//! whose selector and ports find the stack's running pods and their exporters, the
//! NetworkPolicies that admit Prometheus to the metrics ports, and the operator's
//! per-stack gauges; turning monitoring off removes the PodMonitor and the exporters.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use webtoon_e2e::crd::{ensure_crd, ensure_monitoring_crds};
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack;
use webtoon_operator::api::{MonitoringSpec, WasMetricsSpec};
use webtoon_operator::render::monitoring::pod_monitor::PodMonitor;

const LIMIT: Duration = Duration::from_secs(300);

fn selector_string(monitor: &PodMonitor) -> String {
    monitor
        .spec
        .selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn port_names(pod: &Pod) -> BTreeSet<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| p.name.clone())
        .collect()
}

fn container_names(template: Option<&k8s_openapi::api::core::v1::PodSpec>) -> Vec<String> {
    template
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

async fn monitoring_on_and_off(client: Client, namespace: String) {
    ensure_crd(&client).await;
    ensure_monitoring_crds(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let mut minimal = stack::example("minimal", &namespace);
    minimal.spec.monitoring = Some(MonitoringSpec {
        pod_monitor_labels: [("release".to_string(), "prometheus".to_string())].into(),
        was: Some(WasMetricsSpec {
            port: 9090,
            path: "/internal/metrics".to_string(),
        }),
        ..MonitoringSpec::default()
    });
    let ready = stack::deploy(&client, minimal.clone()).await;
    let name = ready.name_any();

    // The PodMonitor the API server accepted, checked against the CRD's schema.
    let monitors: Api<PodMonitor> = Api::namespaced(client.clone(), &namespace);
    let monitor = monitors
        .get(&format!("{name}-metrics"))
        .await
        .expect("the stack's PodMonitor exists");
    assert_eq!(
        monitor.labels().get("release").map(String::as_str),
        Some("prometheus"),
        "the PodMonitor carries the labels a Prometheus selects it by"
    );
    let endpoints: BTreeSet<(String, String)> = monitor
        .spec
        .pod_metrics_endpoints
        .iter()
        .map(|e| (e.port.clone(), e.path.clone()))
        .collect();
    assert_eq!(
        endpoints,
        [
            ("metrics-access", "/metrics"),
            ("metrics-mysqld", "/metrics"),
            ("metrics-nginx", "/metrics"),
            ("metrics-redis", "/metrics"),
            ("metrics-was", "/internal/metrics"),
        ]
        .into_iter()
        .map(|(p, q)| (p.to_string(), q.to_string()))
        .collect()
    );

    // Its selector finds the stack's running pods, and every port it scrapes is
    // served by one of them: the exporters run beside their servers.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let selected = pods
        .list(&ListParams::default().labels(&selector_string(&monitor)))
        .await
        .expect("pods can be listed");
    let mut served = BTreeSet::new();
    let mut tiers = BTreeSet::new();
    for pod in &selected.items {
        let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
        assert_eq!(phase.as_deref(), Some("Running"), "{}", pod.name_any());
        served.extend(port_names(pod));
        tiers.extend(pod.labels().get("app.kubernetes.io/component").cloned());
    }
    for tier in ["proxy", "was", "database", "cache"] {
        assert!(
            tiers.contains(tier),
            "the PodMonitor selects the {tier} pods"
        );
    }
    for (port, _) in &endpoints {
        assert!(served.contains(port), "a selected pod serves {port}");
    }

    // Prometheus's namespace reaches the metrics ports through one policy per tier.
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &namespace);
    for tier in ["proxy", "was", "database", "cache"] {
        policies
            .get(&format!("{name}-metrics-{tier}"))
            .await
            .unwrap_or_else(|e| panic!("the {tier} metrics policy: {e}"));
    }

    // The monitoring passwords were generated into the credentials Secret.
    let secret = Api::<Secret>::namespaced(client.clone(), &namespace)
        .get(&format!("{name}-credentials"))
        .await
        .expect("the credentials Secret");
    for key in ["database-monitor-password", "cache-monitor-password"] {
        assert!(
            secret.data.as_ref().is_some_and(|d| d.contains_key(key)),
            "{key} is generated"
        );
    }

    // The operator's own gauges of the stack.
    let gauge = |tier: &str, state: &str| {
        format!(
            r#"webtoon_tier_replicas{{namespace="{namespace}",stack="{name}",tier="{tier}",state="{state}"}}"#
        )
    };
    assert_eq!(operator.metric(&gauge("was", "desired")).await, Some(2.0));
    assert_eq!(
        operator.metric(&gauge("database", "ready")).await,
        Some(1.0)
    );

    // Monitoring off: the PodMonitor, the exporters and the metrics policies go.
    let mut off = minimal;
    off.spec.monitoring = None;
    stack::apply(&client, &off).await;
    stack::wait_until_none(
        &monitors,
        &stack::children_selector(&name),
        Duration::from_secs(120),
    )
    .await;
    let ready = stack::wait_ready(&client, &namespace, &name, Duration::from_secs(180)).await;
    assert!(ready.spec.monitoring.is_none());
    let proxy = Api::<Deployment>::namespaced(client.clone(), &namespace)
        .get(&format!("{name}-proxy"))
        .await
        .expect("the proxy Deployment");
    assert_eq!(
        container_names(proxy.spec.and_then(|s| s.template.spec).as_ref()),
        ["nginx"]
    );
    let database = Api::<StatefulSet>::namespaced(client.clone(), &namespace)
        .get(&format!("{name}-database"))
        .await
        .expect("the database StatefulSet");
    assert_eq!(
        container_names(database.spec.and_then(|s| s.template.spec).as_ref()),
        ["mariadb"]
    );
    let left: Vec<String> = policies
        .list(&ListParams::default())
        .await
        .expect("policies can be listed")
        .items
        .iter()
        .map(|p| p.name_any())
        .filter(|n| n.contains("-metrics-"))
        .collect();
    assert!(left.is_empty(), "metrics policies left: {left:?}");
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stacks_pod_monitor_selects_its_exporters_and_goes_with_monitoring() {
    within_namespace("monitoring", LIMIT, |client, namespace| {
        monitoring_on_and_off(client, namespace)
    })
    .await;
}
