//! The proxy tier: nginx in front of the WAS, serving images from the shared volume.

pub mod app_files;
mod deployment;
pub mod nginx_conf;
mod service;

pub use deployment::{CONFIG_CHECKSUM_ANNOTATION, deployment, pod_template};
pub use service::service;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;

use super::meta::{Lifetime, child_name, object_meta};
use super::scaling::{self, Tier};
use super::{Children, Observed};
use crate::api::ValidatedStack;
use nginx_conf::{NginxLayout, nginx_conf};

/// Name of the ConfigMap holding `nginx.conf`.
pub fn config_map_name(stack: &ValidatedStack) -> String {
    child_name(stack, "proxy-config")
}

/// The ConfigMap with the in-cluster `nginx.conf`, and with monitoring the access
/// log exporter's configuration.
pub fn config_map(stack: &ValidatedStack, conf: &str) -> ConfigMap {
    let mut data = BTreeMap::from([("nginx.conf".to_string(), conf.to_string())]);
    if crate::render::monitoring::spec(stack).is_some() {
        use crate::render::monitoring::access_log_exporter::{CONFIG_KEY, in_cluster_config};
        data.insert(CONFIG_KEY.to_string(), in_cluster_config());
    }
    ConfigMap {
        metadata: object_meta(stack, config_map_name(stack), "proxy", Lifetime::WithStack),
        data: Some(data),
        ..Default::default()
    }
}

/// The proxy pod template the spec gives.
pub fn spec_template(stack: &ValidatedStack) -> k8s_openapi::api::core::v1::PodTemplateSpec {
    pod_template(stack, &nginx_conf(stack, &NginxLayout::in_cluster(stack)))
}

/// Adds the proxy objects to `children`.
pub fn build(stack: &ValidatedStack, observed: &Observed, children: &mut Children) {
    let conf = nginx_conf(stack, &NginxLayout::in_cluster(stack));
    children.config_maps.push(config_map(stack, &conf));
    children.services.push(service(stack));
    children
        .deployments
        .push(deployment(stack, observed, &conf));
    children
        .horizontal_pod_autoscalers
        .extend(scaling::autoscaler(stack, Tier::Proxy, observed.now));
    children
        .pod_disruption_budgets
        .push(scaling::disruption_budget(stack, Tier::Proxy));
}
