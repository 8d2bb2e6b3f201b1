//! The proxy Deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, PersistentVolumeClaimVolumeSource, PodSpec,
    PodTemplateSpec, Probe, SecretVolumeSource, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::app_files;
use super::config_map_name;
use super::nginx_conf::{
    APP_DIR, CONFIG_DIR, HEALTH_PATH, HEALTH_PORT, HTTP_PORT, HTTPS_PORT, IMAGES_DIR, TLS_DIR,
};
use crate::api::quantity::quantity_bytes;
use crate::api::{ValidatedStack, WasProtocol};
use crate::render::Observed;
use crate::render::drain::sleep_before_stop;
use crate::render::meta::{Lifetime, checksum, child_name, labels, object_meta, selector};
use crate::render::placement::spread_constraints;
use crate::render::release::resolve;
use crate::render::scaling::{Tier, deployment_replicas};
use crate::render::security::{container_security_context, pod_security_context, scratch_volume};
use crate::render::storage::images_claim_name;
use crate::render::volumes::{config_map_volume, mount};

/// Pod annotation holding the hash of `nginx.conf`: a changed config rolls the pods.
pub const CONFIG_CHECKSUM_ANNOTATION: &str = "webtoon.io/config-checksum";

/// The uid of the unprivileged nginx images.
const NGINX_UID: i64 = 101;

/// Seconds a terminating pod keeps serving while load balancers drop it.
const DRAIN_SECONDS: i64 = 5;

fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_string()),
        container_port: port,
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }
}

fn health_probe(period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(HEALTH_PATH.to_string()),
            port: IntOrString::String("health".to_string()),
            scheme: Some("HTTP".to_string()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

/// The proxy Deployment: the pod template running `conf`, or the one the controller
/// holds it at.
pub fn deployment(stack: &ValidatedStack, observed: &Observed, conf: &str) -> Deployment {
    Deployment {
        metadata: object_meta(
            stack,
            child_name(stack, "proxy"),
            "proxy",
            Lifetime::WithStack,
        ),
        spec: Some(DeploymentSpec {
            replicas: deployment_replicas(stack, Tier::Proxy, observed.now),
            selector: selector(stack, "proxy"),
            progress_deadline_seconds: Some(stack.spec.proxy.rollout.progress_deadline_seconds),
            min_ready_seconds: Some(5),
            revision_history_limit: Some(10),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: resolve(pod_template(stack, conf), &observed.proxy_template),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The proxy pod template of the spec, running `conf`.
pub fn pod_template(stack: &ValidatedStack, conf: &str) -> PodTemplateSpec {
    let proxy = &stack.spec.proxy;
    let mut ports = vec![port("http", HTTP_PORT)];
    if stack.spec.tls.is_some() {
        ports.push(port("https", HTTPS_PORT));
    }
    ports.push(port("health", HEALTH_PORT));

    let mut mounts = vec![
        mount("config", CONFIG_DIR, true),
        mount("images", IMAGES_DIR, true),
        mount("cache", "/var/cache/nginx", false),
        mount("tmp", "/tmp", false),
    ];
    // The cache volume holds the response cache plus nginx's own working files.
    let cache_bytes = quantity_bytes(&proxy.cache.size).unwrap_or(512 << 20);
    let cache_limit = format!("{}Mi", cache_bytes / (1 << 20) + 64);
    let mut volumes = vec![
        config_map_volume("config", &config_map_name(stack), false),
        Volume {
            name: "images".to_string(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: images_claim_name(stack),
                read_only: Some(true),
            }),
            ..Default::default()
        },
        scratch_volume("cache", &cache_limit, false),
        scratch_volume("tmp", "256Mi", false),
    ];
    // PHP: the application's public files, copied from the WAS image at start.
    let php = stack.spec.was.protocol == WasProtocol::Fastcgi;
    if php {
        mounts.push(mount(app_files::VOLUME, APP_DIR, true));
        volumes.push(app_files::volume());
    }
    if let Some(tls) = &stack.spec.tls {
        mounts.push(mount("tls", TLS_DIR, true));
        volumes.push(Volume {
            name: "tls".to_string(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(tls.secret_name.clone()),
                // The kubelet writes the files as root:root and gives them a group
                // only through fsGroup, which the proxy cannot have (see below): nginx
                // (uid 101) reads them as "other". Only nginx's container mounts them.
                default_mode: Some(0o444),
                ..Default::default()
            }),
            ..Default::default()
        });
    }

    let container = Container {
        name: "nginx".to_string(),
        image: Some(proxy.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(vec![
            "nginx".to_string(),
            "-c".to_string(),
            format!("{CONFIG_DIR}/nginx.conf"),
            "-g".to_string(),
            "daemon off;".to_string(),
        ]),
        ports: Some(ports),
        resources: Some(proxy.resources.clone()),
        readiness_probe: Some(health_probe(5, 2)),
        liveness_probe: Some(health_probe(10, 6)),
        lifecycle: Some(sleep_before_stop(DRAIN_SECONDS)),
        security_context: Some(container_security_context(true)),
        volume_mounts: Some(mounts),
        ..Default::default()
    };

    let mut containers = vec![container];
    // The configuration whose change must restart the pods: nginx's, and with
    // monitoring the access log exporter's, which it reads only when it starts.
    let mut config = conf.to_string();
    if let Some(monitoring) = crate::render::monitoring::spec(stack) {
        use crate::render::monitoring::{access_log_exporter, nginx_exporter};
        config.push_str(&access_log_exporter::in_cluster_config());
        containers.push(nginx_exporter::container(&monitoring.images.nginx));
        containers.push(access_log_exporter::container(
            &monitoring.images.nginx_log,
            "config",
        ));
        volumes.push(crate::render::monitoring::tmp_volume());
    }

    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(stack, "proxy")),
            annotations: Some(BTreeMap::from([(
                CONFIG_CHECKSUM_ANNOTATION.to_string(),
                checksum(&config),
            )])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            init_containers: php.then(|| vec![app_files::init_container(stack)]),
            containers,
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            // No fsGroup: it would make the kubelet chown every file of the
            // shared image volume.
            security_context: Some(pod_security_context(NGINX_UID, None)),
            termination_grace_period_seconds: Some(30 + DRAIN_SECONDS),
            topology_spread_constraints: Some(spread_constraints(stack, "proxy")),
            volumes: Some(volumes),
            ..Default::default()
        }),
    }
}
