//! Prometheus exporters beside each tier, and the PodMonitor that has the Prometheus
//! Operator scrape them. Every exporter is a sidecar of the pod it watches, so it
//! reaches its server on 127.0.0.1 and nothing else needs a path to the server; it
//! runs under the restricted profile and reads its password by Secret reference.
//!
//! | tier     | exporter                                   | port name          |
//! |----------|--------------------------------------------|--------------------|
//! | proxy    | nginx-prometheus-exporter (`stub_status`)  | `metrics-nginx`    |
//! | proxy    | prometheus-nginxlog-exporter (access log)  | `metrics-access`   |
//! | database | mysqld_exporter                            | `metrics-mysqld`   |
//! | cache    | redis_exporter                             | `metrics-redis`    |
//! | was      | the application's own, when configured     | `metrics-was`      |

pub mod access_log_exporter;
pub mod mysqld_exporter;
pub mod nginx_exporter;
pub mod pod_monitor;
pub mod redis_exporter;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, Probe, TCPSocketAction, Volume,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{MonitoringSpec, ValidatedStack, resources};
use crate::render::security::{container_security_context, scratch_volume};
use crate::render::volumes::mount;

/// UDP port on 127.0.0.1 where the access log exporter receives nginx's syslog.
pub const ACCESS_LOG_SYSLOG_PORT: i32 = 5514;

/// The scratch volume the exporters of a pod share as `/tmp`.
pub const TMP_VOLUME: &str = "exporter-tmp";

/// The exporters' `/tmp`, for pods that run one.
pub fn tmp_volume() -> Volume {
    scratch_volume(TMP_VOLUME, "16Mi", true)
}

/// The uid the exporters run as: `nobody`, which owns nothing in the pod.
const EXPORTER_UID: i64 = 65534;

/// A metrics port of the stack: the port name the PodMonitor scrapes, the number the
/// NetworkPolicies open to Prometheus, and the container that serves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsPort {
    /// Container port name, scraped by the PodMonitor.
    pub name: &'static str,
    /// Port number.
    pub number: i32,
    /// The component whose pods serve it.
    pub component: &'static str,
}

/// nginx-prometheus-exporter on the proxy pods.
pub const NGINX_METRICS: MetricsPort = MetricsPort {
    name: "metrics-nginx",
    number: 9113,
    component: "proxy",
};
/// The access log exporter on the proxy pods.
pub const ACCESS_LOG_METRICS: MetricsPort = MetricsPort {
    name: "metrics-access",
    number: 4040,
    component: "proxy",
};
/// mysqld_exporter on the database pod.
pub const MYSQLD_METRICS: MetricsPort = MetricsPort {
    name: "metrics-mysqld",
    number: 9104,
    component: "database",
};
/// redis_exporter on the cache pod.
pub const REDIS_METRICS: MetricsPort = MetricsPort {
    name: "metrics-redis",
    number: 9121,
    component: "cache",
};
/// Port name of the WAS's own metrics endpoint when it is not the WAS's port.
pub const WAS_METRICS_PORT_NAME: &str = "metrics-was";

/// The stack's monitoring settings, when monitoring is on.
pub fn spec(stack: &ValidatedStack) -> Option<&MonitoringSpec> {
    stack.spec.monitoring.as_ref()
}

/// Every metrics port the stack's pods serve, with the component serving it: the
/// exporters of the tiers the operator runs, and the WAS's own when configured.
pub fn metrics_ports(stack: &ValidatedStack) -> Vec<MetricsPort> {
    let Some(monitoring) = spec(stack) else {
        return Vec::new();
    };
    let mut ports = vec![NGINX_METRICS, ACCESS_LOG_METRICS];
    if stack.spec.database.mode == crate::api::ServiceMode::Embedded {
        ports.push(MYSQLD_METRICS);
    }
    if stack.spec.cache.mode == crate::api::ServiceMode::Embedded {
        ports.push(REDIS_METRICS);
    }
    if let Some(was) = &monitoring.was {
        ports.push(MetricsPort {
            name: was_metrics_port_name(stack),
            number: was.port,
            component: "was",
        });
    }
    ports
}

/// The WAS container's port name of its metrics: its own port's name when the
/// metrics share it, since a container may not list one port twice.
pub fn was_metrics_port_name(stack: &ValidatedStack) -> &'static str {
    match &stack.spec.monitoring {
        Some(m)
            if m.was
                .as_ref()
                .is_some_and(|w| w.port == stack.spec.was.port) =>
        {
            crate::render::was::PORT_NAME
        }
        _ => WAS_METRICS_PORT_NAME,
    }
}

/// A probe that the exporter listens on its port.
fn listening(port: MetricsPort, period: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port.name.to_string()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

/// An exporter sidecar: `nobody`, read-only root, no capabilities, small and bounded.
fn exporter_container(
    name: &str,
    image: &str,
    args: Vec<String>,
    env: Vec<EnvVar>,
    port: MetricsPort,
) -> Container {
    let mut security = container_security_context(true);
    security.run_as_user = Some(EXPORTER_UID);
    security.run_as_group = Some(EXPORTER_UID);
    Container {
        name: name.to_string(),
        image: Some(image.to_string()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        args: Some(args),
        env: Some(env).filter(|e| !e.is_empty()),
        ports: Some(vec![ContainerPort {
            name: Some(port.name.to_string()),
            container_port: port.number,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }]),
        // The probes ask only whether the exporter listens, never about the server
        // behind it: a slow database must not take its own pod out of its Service.
        // Prometheus's `up` and the exporters' `*_up` report the rest.
        readiness_probe: Some(listening(port, 10)),
        liveness_probe: Some(listening(port, 20)),
        resources: Some(resources("10m", "32Mi", "200m", "64Mi")),
        security_context: Some(security),
        volume_mounts: Some(vec![mount(TMP_VOLUME, "/tmp", false)]),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{parse_stacks, validated};
    use crate::render::{Observed, render};

    fn stack(spec: &str) -> ValidatedStack {
        let yaml = format!(
            "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {{name: t, namespace: ns}}\nspec:\n  hosts: [t.example]\n  was: {{image: 'r.example/app:3', port: 8080}}\n{spec}"
        );
        validated(&parse_stacks("inline", &yaml).expect("parses")[0]).expect("valid")
    }

    fn containers(children: &crate::render::Children) -> Vec<String> {
        let deployments = children
            .deployments
            .iter()
            .filter_map(|d| d.spec.as_ref()?.template.spec.clone());
        let stateful_sets = children
            .stateful_sets
            .iter()
            .filter_map(|s| s.spec.as_ref()?.template.spec.clone());
        deployments
            .chain(stateful_sets)
            .flat_map(|p| p.containers)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn without_monitoring_nothing_is_added() {
        let plain = stack("");
        let children = render(&plain, &Observed::default());
        assert!(metrics_ports(&plain).is_empty());
        assert!(children.pod_monitors.is_empty());
        assert_eq!(containers(&children), ["was", "nginx", "mariadb", "redis"]);
    }

    #[test]
    fn each_tier_the_operator_runs_gets_its_exporter() {
        let monitored = stack("  monitoring: {}\n");
        let children = render(&monitored, &Observed::default());
        assert_eq!(
            containers(&children),
            [
                "was",
                "nginx",
                "nginx-exporter",
                "access-log-exporter",
                "mariadb",
                "mysqld-exporter",
                "redis",
                "redis-exporter"
            ]
        );
        assert_eq!(children.pod_monitors.len(), 1);

        // External data services are someone else's to watch.
        let external = stack(
            "  monitoring: {}\n  database: {mode: external, external: {host: db.example, port: 3306, secretName: db}}\n  cache: {mode: external, external: {host: cache.example, port: 6379, secretName: cache}}\n",
        );
        let ports: Vec<&str> = metrics_ports(&external).iter().map(|p| p.name).collect();
        assert_eq!(ports, ["metrics-nginx", "metrics-access"]);
    }

    #[test]
    fn was_metrics_on_its_own_port_are_scraped_by_that_ports_name() {
        let shared = stack("  monitoring: {was: {port: 8080, path: /internal/metrics}}\n");
        let port = metrics_ports(&shared)
            .into_iter()
            .find(|p| p.component == "was")
            .expect("the WAS is scraped");
        assert_eq!((port.name, port.number), ("app", 8080));
        let own = stack("  monitoring: {was: {port: 9090}}\n");
        assert_eq!(was_metrics_port_name(&own), WAS_METRICS_PORT_NAME);
    }
}
