//! The MariaDB tier: a single-replica StatefulSet with generated credentials, an
//! application user limited to the application database, and a tuned my.cnf.

pub mod my_cnf;
mod statefulset;

pub use statefulset::statefulset;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Children;
use super::meta::{Lifetime, child_name, object_meta, selector_labels};
use crate::api::{ServiceMode, ValidatedStack};

/// The MariaDB port.
pub const PORT: i32 = 3306;

/// Name of the headless Service that also governs the StatefulSet.
pub fn service_name(stack: &ValidatedStack) -> String {
    child_name(stack, "database")
}

/// Host and port the WAS connects to: the external database, or the stack's own.
pub fn address(stack: &ValidatedStack) -> (String, i32) {
    match (&stack.spec.database.mode, &stack.spec.database.external) {
        (ServiceMode::External, Some(external)) => (external.host.clone(), external.port),
        _ => (
            format!("{}.{}.svc", service_name(stack), stack.namespace),
            PORT,
        ),
    }
}

/// Adds the database objects to `children`; nothing in external mode.
pub fn build(stack: &ValidatedStack, children: &mut Children) {
    if stack.spec.database.mode == ServiceMode::External {
        return;
    }
    let cnf = my_cnf::my_cnf(&stack.spec.database);
    children.config_maps.push(ConfigMap {
        metadata: object_meta(
            stack,
            child_name(stack, "database-config"),
            "database",
            Lifetime::WithStack,
        ),
        data: Some(BTreeMap::from([("webtoon.cnf".to_string(), cnf.clone())])),
        ..Default::default()
    });
    children.services.push(Service {
        metadata: object_meta(stack, service_name(stack), "database", Lifetime::WithStack),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            publish_not_ready_addresses: Some(false),
            selector: Some(selector_labels(stack, "database")),
            ports: Some(vec![ServicePort {
                name: Some("mysql".to_string()),
                port: PORT,
                target_port: Some(IntOrString::String("mysql".to_string())),
                protocol: Some("TCP".to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    });
    children.stateful_sets.push(statefulset(stack, &cnf));
}
