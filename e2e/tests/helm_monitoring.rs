//! With the Prometheus Operator's CRDs installed (taken from its Go module), the
//! API server accepts the chart's ServiceMonitor, PodMonitor and PrometheusRule, and
//! the dashboard ConfigMap.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use webtoon_e2e::crd::ensure_monitoring_crds;
use webtoon_e2e::helm::{chart, documents, helm};
use webtoon_e2e::namespace::within_namespace;

const LIMIT: Duration = Duration::from_secs(180);
async fn monitors_are_accepted(client: Client, namespace: String) {
    ensure_monitoring_crds(&client).await;
    let chart = chart();
    let chart = chart.to_str().expect("a UTF-8 path");
    let mut accepted = Vec::new();
    for sets in [
        &[
            "serviceMonitor.enabled=true",
            "prometheusRule.enabled=true",
            "grafanaDashboard.enabled=true",
        ][..],
        &["podMonitor.enabled=true"][..],
    ] {
        let mut args = vec![
            "template",
            "wto",
            chart,
            "--namespace",
            &namespace,
            "--set",
            "crds.enabled=false",
        ];
        for set in sets {
            args.extend(["--set", set]);
        }
        for doc in documents(&helm(&args).await) {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            if ![
                "ServiceMonitor",
                "PodMonitor",
                "PrometheusRule",
                "ConfigMap",
            ]
            .contains(&kind.as_str())
            {
                continue;
            }
            let (group, version) = doc["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .split_once('/')
                .unwrap_or(("", doc["apiVersion"].as_str().unwrap_or_default()));
            let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &kind));
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &namespace, &resource);
            let object: DynamicObject =
                serde_json::from_value(doc.clone()).expect("a Kubernetes object");
            api.create(&PostParams::default(), &object)
                .await
                .unwrap_or_else(|e| panic!("the API server refused the chart's {kind}: {e}"));
            accepted.push(kind);
        }
    }
    accepted.sort();
    assert_eq!(
        accepted,
        [
            "ConfigMap",
            "PodMonitor",
            "PrometheusRule",
            "ServiceMonitor"
        ],
        "every monitoring object of the chart was created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_charts_monitors_rule_and_dashboard_are_accepted() {
    within_namespace("helm-monitoring", LIMIT, |client, namespace| {
        monitors_are_accepted(client, namespace)
    })
    .await;
}
