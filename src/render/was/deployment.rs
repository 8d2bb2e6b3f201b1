//! The WAS Deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, PersistentVolumeClaimVolumeSource, PodSpec,
    PodTemplateSpec, Probe, TCPSocketAction, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::PORT_NAME;
use super::env::was_env;
use crate::api::{ValidatedStack, WasProtocol};
use crate::render::Observed;
use crate::render::credentials::GENERATION_ANNOTATION;
use crate::render::drain::sleep_before_stop;
use crate::render::meta::{Lifetime, child_name, labels, object_meta, selector};
use crate::render::placement::spread_constraints;
use crate::render::proxy::nginx_conf::RESOLVE_VALID_SECONDS;
use crate::render::release::resolve;
use crate::render::scaling::{Tier, deployment_replicas};
use crate::render::security::{
    container_security_context, pod_security_context_image_user, scratch_volume,
};
use crate::render::storage::images_claim_name;
use crate::render::volumes::mount;

/// TTL of the cluster DNS answers for Service names (CoreDNS's default).
const CLUSTER_DNS_TTL_SECONDS: i64 = 5;

/// Seconds within which every proxy learns of a change in the ready WAS pods: the
/// endpoint update (2 s), the cluster DNS TTL and nginx's own re-resolution interval.
/// While no WAS pod was ready the name did not resolve, and both caches hold that
/// answer just as long.
pub const DISCOVERY_SECONDS: i64 = 2 + CLUSTER_DNS_TTL_SECONDS + RESOLVE_VALID_SECONDS;

/// Seconds a terminating pod keeps serving while endpoints and nginx drop it:
/// [`DISCOVERY_SECONDS`] plus a margin, so that nginx has stopped picking the pod
/// before it stops accepting connections.
pub const DRAIN_SECONDS: i64 = DISCOVERY_SECONDS + 3;

fn probe(stack: &ValidatedStack, period: i32, failures: i32, initial_delay: i32) -> Probe {
    let was = &stack.spec.was;
    let port = IntOrString::String(PORT_NAME.to_string());
    let (http_get, tcp_socket) = match was.protocol {
        WasProtocol::Http => (
            Some(HTTPGetAction {
                path: Some(was.health_path.clone()),
                port,
                scheme: Some("HTTP".to_string()),
                ..Default::default()
            }),
            None,
        ),
        WasProtocol::Fastcgi => (
            None,
            Some(TCPSocketAction {
                port,
                ..Default::default()
            }),
        ),
    };
    Probe {
        http_get,
        tcp_socket,
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        initial_delay_seconds: Some(initial_delay),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

/// The WAS Deployment: rolling updates that never drop below the desired count,
/// the pod template of the spec or the one the controller holds it at.
pub fn deployment(stack: &ValidatedStack, observed: &Observed) -> Deployment {
    let was = &stack.spec.was;
    let name = child_name(stack, "was");
    Deployment {
        metadata: object_meta(stack, name, "was", Lifetime::WithStack),
        spec: Some(DeploymentSpec {
            replicas: deployment_replicas(stack, Tier::Was, observed.now),
            selector: selector(stack, "was"),
            progress_deadline_seconds: Some(was.rollout.progress_deadline_seconds),
            min_ready_seconds: Some(5),
            revision_history_limit: Some(10),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::String("25%".to_string())),
                }),
            }),
            template: resolve(pod_template(stack), &observed.was_template),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The generation of the credentials the pods start with, after the first rotation
/// only: a rotation changes it, which rolls the WAS onto the new passwords, and the
/// pods of a stack that never rotated keep the template they had before.
fn credentials_annotation(stack: &ValidatedStack) -> Option<BTreeMap<String, String>> {
    (stack.credentials_generation > 0).then(|| {
        BTreeMap::from([(
            GENERATION_ANNOTATION.to_string(),
            stack.credentials_generation.to_string(),
        )])
    })
}

/// The WAS container's ports: its own, and its metrics port when that differs.
fn ports(stack: &ValidatedStack) -> Vec<ContainerPort> {
    let port = |name: &str, number: i32| ContainerPort {
        name: Some(name.to_string()),
        container_port: number,
        protocol: Some("TCP".to_string()),
        ..Default::default()
    };
    let mut ports = vec![port(PORT_NAME, stack.spec.was.port)];
    let metrics = stack.spec.monitoring.as_ref().and_then(|m| m.was.as_ref());
    if let Some(metrics) = metrics.filter(|m| m.port != stack.spec.was.port) {
        ports.push(port(
            crate::render::monitoring::WAS_METRICS_PORT_NAME,
            metrics.port,
        ));
    }
    ports
}

/// The WAS pod template of the spec: per-pod probes, spread over nodes and zones,
/// images mounted read-write.
pub fn pod_template(stack: &ValidatedStack) -> PodTemplateSpec {
    let was = &stack.spec.was;
    let container = Container {
        name: "was".to_string(),
        image: Some(was.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        ports: Some(ports(stack)),
        env: Some(was_env(stack)),
        resources: Some(was.resources.clone()),
        readiness_probe: Some(probe(stack, 5, 3, 0)),
        liveness_probe: Some(probe(stack, 10, 6, 0)),
        startup_probe: Some(probe(stack, 5, 60, 0)),
        lifecycle: Some(sleep_before_stop(DRAIN_SECONDS)),
        security_context: Some(container_security_context(!was.writable_root_filesystem)),
        volume_mounts: Some(vec![
            mount("images", &stack.spec.storage.mount_path, false),
            mount("tmp", "/tmp", false),
        ]),
        ..Default::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(stack, "was")),
            annotations: credentials_annotation(stack),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            security_context: Some(pod_security_context_image_user()),
            termination_grace_period_seconds: Some(30 + DRAIN_SECONDS),
            topology_spread_constraints: Some(spread_constraints(stack, "was")),
            volumes: Some(vec![
                Volume {
                    name: "images".to_string(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: images_claim_name(stack),
                        read_only: Some(false),
                    }),
                    ..Default::default()
                },
                scratch_volume("tmp", "1Gi", false),
            ]),
            ..Default::default()
        }),
    }
}
