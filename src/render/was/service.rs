//! Services of the WAS: a ClusterIP one for in-cluster clients and a headless one
//! whose DNS name lists every ready pod, so nginx balances and fails over per pod.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::PORT_NAME;
use crate::api::ValidatedStack;
use crate::render::meta::{Lifetime, child_name, object_meta, selector_labels};

/// Name of the headless Service that resolves to every ready WAS pod.
pub fn headless_service_name(stack: &ValidatedStack) -> String {
    child_name(stack, "was-pods")
}

fn ports(stack: &ValidatedStack) -> Vec<ServicePort> {
    vec![ServicePort {
        name: Some(PORT_NAME.to_string()),
        port: stack.spec.was.port,
        target_port: Some(IntOrString::String(PORT_NAME.to_string())),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }]
}

/// The ClusterIP Service of the WAS.
pub fn service(stack: &ValidatedStack) -> Service {
    Service {
        metadata: object_meta(stack, child_name(stack, "was"), "was", Lifetime::WithStack),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(selector_labels(stack, "was")),
            ports: Some(ports(stack)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The headless Service the proxy resolves for per-pod upstreams.
pub fn headless_service(stack: &ValidatedStack) -> Service {
    Service {
        metadata: object_meta(
            stack,
            headless_service_name(stack),
            "was",
            Lifetime::WithStack,
        ),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            cluster_ip: Some("None".to_string()),
            // Only ready pods may receive traffic from nginx.
            publish_not_ready_addresses: Some(false),
            selector: Some(selector_labels(stack, "was")),
            ports: Some(ports(stack)),
            ..Default::default()
        }),
        ..Default::default()
    }
}
