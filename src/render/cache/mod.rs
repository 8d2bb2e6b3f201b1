//! The Redis tier: a password-protected cache whose default user is disabled and
//! whose application user cannot run dangerous commands.

pub mod acl_rotation;
pub mod redis_conf;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, ExecAction, Probe, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Children;
use super::credentials::{
    CACHE_ADMIN_PASSWORD_KEY, CACHE_MONITOR_PASSWORD_KEY, CACHE_PASSWORD_KEY,
    CACHE_PREVIOUS_PASSWORD_KEY, env_from_secret, next_key, secret_name,
};
use super::meta::{Lifetime, child_name, object_meta, selector_labels};
use super::security::{container_security_context, scratch_volume};
use super::stateful::{self, DataTier};
use super::volumes::{config_map_volume, mount};
use crate::api::{ServiceMode, ValidatedStack};
use redis_conf::{ACL_DIR, CONFIG_DIR, redis_conf, start_script};

/// The Redis port.
pub const PORT: i32 = 6379;
/// The Redis user the WAS connects as.
pub const APP_USER: &str = "webtoon";
/// The Redis user credential rotations connect as: it may run `ACL SETUSER` and
/// `PING`, and read or write no key.
pub const ADMIN_USER: &str = "webtoon-admin";

/// Name of the headless Service of the cache.
pub fn service_name(stack: &ValidatedStack) -> String {
    child_name(stack, "cache")
}

/// Host and port the WAS connects to: the external Redis, or the stack's own.
pub fn address(stack: &ValidatedStack) -> (String, i32) {
    match (&stack.spec.cache.mode, &stack.spec.cache.external) {
        (ServiceMode::External, Some(external)) => (external.host.clone(), external.port),
        _ => (
            format!("{}.{}.svc", service_name(stack), stack.namespace),
            PORT,
        ),
    }
}

fn ping_probe(period: i32, initial_delay: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                // The password goes through the environment, not the command line,
                // where any process in the pod could read it.
                format!(
                    "REDISCLI_AUTH=\"$REDIS_PASSWORD\" redis-cli --user {APP_USER} ping | grep -q PONG"
                ),
            ]),
        }),
        period_seconds: Some(period),
        initial_delay_seconds: Some(initial_delay),
        timeout_seconds: Some(3),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

/// The Redis container's passwords, by Secret reference: the application's current
/// one, and while a rotation is under way its new or previous one; the administrative
/// user's current one and new one. Optional references, so that the pod template stays
/// the same whichever of them the Secret holds at the moment, and a restart takes
/// what it holds then.
fn redis_env(stack: &ValidatedStack, monitoring: bool) -> Vec<k8s_openapi::api::core::v1::EnvVar> {
    let secret = secret_name(stack);
    let mut env = vec![
        env_from_secret("REDIS_PASSWORD", &secret, CACHE_PASSWORD_KEY, false),
        env_from_secret(
            "REDIS_PASSWORD_NEXT",
            &secret,
            &next_key(CACHE_PASSWORD_KEY),
            true,
        ),
        env_from_secret(
            "REDIS_PASSWORD_PREVIOUS",
            &secret,
            CACHE_PREVIOUS_PASSWORD_KEY,
            true,
        ),
        env_from_secret(
            "REDIS_ADMIN_PASSWORD",
            &secret,
            CACHE_ADMIN_PASSWORD_KEY,
            true,
        ),
        env_from_secret(
            "REDIS_ADMIN_PASSWORD_NEXT",
            &secret,
            &next_key(CACHE_ADMIN_PASSWORD_KEY),
            true,
        ),
    ];
    if monitoring {
        env.push(env_from_secret(
            "REDIS_MONITOR_PASSWORD",
            &secret,
            CACHE_MONITOR_PASSWORD_KEY,
            false,
        ));
    }
    env
}

/// Adds the cache objects to `children`; nothing in external mode.
pub fn build(stack: &ValidatedStack, children: &mut Children) {
    let spec = &stack.spec.cache;
    if spec.mode == ServiceMode::External {
        return;
    }
    let conf = redis_conf(spec);
    let monitoring = crate::render::monitoring::spec(stack);
    let script = start_script(APP_USER, ADMIN_USER, monitoring.is_some());
    let config_name = child_name(stack, "cache-config");
    children.config_maps.push(ConfigMap {
        metadata: object_meta(stack, config_name.clone(), "cache", Lifetime::WithStack),
        data: Some(BTreeMap::from([
            ("redis.conf".to_string(), conf.clone()),
            ("start.sh".to_string(), script.clone()),
        ])),
        ..Default::default()
    });
    children.services.push(Service {
        metadata: object_meta(stack, service_name(stack), "cache", Lifetime::WithStack),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(false),
            selector: Some(selector_labels(stack, "cache")),
            ports: Some(vec![ServicePort {
                name: Some("redis".to_string()),
                port: PORT,
                target_port: Some(IntOrString::String("redis".to_string())),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
    let container = Container {
        name: "redis".to_string(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(vec!["sh".to_string(), format!("{CONFIG_DIR}/start.sh")]),
        ports: Some(vec![ContainerPort {
            name: Some("redis".to_string()),
            container_port: PORT,
            protocol: Some("TCP".to_string()),
            ..Default::default()
        }]),
        env: Some(redis_env(stack, monitoring.is_some())),
        resources: Some(spec.resources.clone()),
        readiness_probe: Some(ping_probe(5, 0)),
        liveness_probe: Some(ping_probe(15, 10)),
        security_context: Some(container_security_context(true)),
        volume_mounts: Some(vec![
            mount("config", CONFIG_DIR, true),
            mount("acl", ACL_DIR, false),
            mount("data", "/data", false),
            mount("tmp", "/tmp", false),
        ]),
        ..Default::default()
    };
    let mut volumes = vec![
        config_map_volume("config", &config_name, false),
        scratch_volume("acl", "1Mi", true),
        scratch_volume("tmp", "64Mi", false),
    ];
    if spec.persistence.is_none() {
        volumes.push(scratch_volume("data", "64Mi", false));
    }
    if monitoring.is_some() {
        volumes.push(crate::render::monitoring::tmp_volume());
    }
    children.stateful_sets.push(stateful::statefulset(
        stack,
        DataTier {
            component: "cache",
            init_containers: Vec::new(),
            container,
            sidecars: monitoring
                .map(|m| {
                    crate::render::monitoring::redis_exporter::container(stack, &m.images.redis)
                })
                .into_iter()
                .collect(),
            volumes,
            data: spec.persistence.as_ref(),
            config: &format!("{conf}{script}"),
            termination_grace_seconds: 30,
        },
    ));
}
