//! The stack's PodMonitor: the Prometheus Operator's description of what to scrape.
//! One per stack selects the stack's pods and scrapes each metrics port by name; a
//! pod without that port is skipped. Each series gains the `stack` and `tier` labels
//! from the pod's labels, which the chart's dashboard and alerts select on.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::{metrics_ports, spec};
use crate::api::ValidatedStack;
use crate::render::meta::{
    COMPONENT_LABEL, INSTANCE_LABEL, Lifetime, NAME, NAME_LABEL, child_name, object_meta,
};

/// The part of the Prometheus Operator's PodMonitor spec the operator writes.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "monitoring.coreos.com",
    version = "v1",
    kind = "PodMonitor",
    namespaced,
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct PodMonitorSpec {
    /// The pods to scrape.
    pub selector: LabelSelector,
    /// The ports to scrape on them.
    pub pod_metrics_endpoints: Vec<PodMetricsEndpoint>,
}

/// One metrics port of the selected pods.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodMetricsEndpoint {
    /// Container port name.
    pub port: String,
    /// HTTP path of the metrics.
    pub path: String,
    /// Scrape interval.
    pub interval: String,
    /// Target relabelings, applied before the scrape.
    pub relabelings: Vec<Relabeling>,
}

/// A Prometheus relabeling that copies source labels into a target label.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Relabeling {
    /// Labels whose values are joined.
    pub source_labels: Vec<String>,
    /// Label written.
    pub target_label: String,
    /// Always `replace`.
    pub action: String,
}

/// The label Prometheus's Kubernetes discovery gives a pod label `name`.
fn pod_label_meta(name: &str) -> String {
    let sanitized: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("__meta_kubernetes_pod_label_{sanitized}")
}

fn copy_label(from: &str, to: &str) -> Relabeling {
    Relabeling {
        source_labels: vec![pod_label_meta(from)],
        target_label: to.to_string(),
        action: "replace".to_string(),
    }
}

/// Name of the stack's PodMonitor.
pub fn name(stack: &ValidatedStack) -> String {
    child_name(stack, "metrics")
}

/// The stack's PodMonitor, when monitoring is on.
pub fn pod_monitor(stack: &ValidatedStack) -> Option<PodMonitor> {
    let monitoring = spec(stack)?;
    let mut metadata = object_meta(stack, name(stack), "metrics", Lifetime::WithStack);
    // The operator's own labels win: prune finds its children by them.
    let mut labels = monitoring.pod_monitor_labels.clone();
    labels.extend(metadata.labels.take().unwrap_or_default());
    metadata.labels = Some(labels);
    let was_path = monitoring.was.as_ref().map(|w| w.path.clone());
    let endpoints = metrics_ports(stack)
        .into_iter()
        .map(|port| PodMetricsEndpoint {
            port: port.name.to_string(),
            path: match (port.component, &was_path) {
                ("was", Some(path)) => path.clone(),
                _ => "/metrics".to_string(),
            },
            interval: monitoring.interval.clone(),
            relabelings: vec![
                copy_label(INSTANCE_LABEL, "stack"),
                copy_label(COMPONENT_LABEL, "tier"),
            ],
        })
        .collect();
    let mut monitor = PodMonitor::new(
        &name(stack),
        PodMonitorSpec {
            selector: LabelSelector {
                match_labels: Some(BTreeMap::from([
                    (NAME_LABEL.to_string(), NAME.to_string()),
                    (INSTANCE_LABEL.to_string(), stack.name.clone()),
                ])),
                ..Default::default()
            },
            pod_metrics_endpoints: endpoints,
        },
    );
    monitor.metadata = metadata;
    Some(monitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_labels_never_replace_the_operators() {
        let yaml = "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {name: t, namespace: ns}\nspec:\n  hosts: [t.example]\n  was: {image: 'r.example/app:3'}\n  monitoring: {podMonitorLabels: {release: prom, app.kubernetes.io/instance: other}}\n";
        let stack = crate::manifest::validated(
            &crate::manifest::parse_stacks("inline", yaml).expect("parses")[0],
        )
        .expect("valid");
        let monitor = pod_monitor(&stack).expect("monitoring is on");
        let labels = monitor.metadata.labels.expect("labels");
        assert_eq!(labels["release"], "prom");
        assert_eq!(labels[INSTANCE_LABEL], "t");
        assert_eq!(monitor.metadata.namespace.as_deref(), Some("ns"));
    }

    #[test]
    fn pod_labels_become_prometheus_discovery_labels() {
        assert_eq!(
            pod_label_meta("app.kubernetes.io/instance"),
            "__meta_kubernetes_pod_label_app_kubernetes_io_instance"
        );
    }
}
