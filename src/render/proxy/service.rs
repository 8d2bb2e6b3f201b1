//! The Service in front of the proxy.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{ServiceType, ValidatedStack};
use crate::render::meta::{Lifetime, child_name, object_meta, selector_labels};

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }
}

/// The proxy Service. Node-facing types keep the client address
/// (`externalTrafficPolicy: Local`) so the admin allow-list and rate limits see it.
pub fn service(stack: &ValidatedStack) -> Service {
    let spec = &stack.spec.proxy.service;
    let mut ports = vec![port("http", 80)];
    if stack.spec.tls.is_some() {
        ports.push(port("https", 443));
    }
    let type_ = match spec.type_ {
        ServiceType::ClusterIP => "ClusterIP",
        ServiceType::NodePort => "NodePort",
        ServiceType::LoadBalancer => "LoadBalancer",
    };
    let mut metadata = object_meta(
        stack,
        child_name(stack, "proxy"),
        "proxy",
        Lifetime::WithStack,
    );
    if !spec.annotations.is_empty() {
        metadata.annotations = Some(spec.annotations.clone());
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(type_.to_string()),
            external_traffic_policy: (spec.type_ != ServiceType::ClusterIP)
                .then(|| "Local".to_string()),
            selector: Some(selector_labels(stack, "proxy")),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    }
}
