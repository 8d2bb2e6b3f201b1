//! The MariaDB tier: a single-replica StatefulSet with generated credentials, an
//! application user limited to the application database, a tuned my.cnf, scheduled
//! backups and a restore on first start.

pub mod backup_cronjob;
pub mod backup_script;
pub mod init_script;
pub mod my_cnf;
pub mod restore_script;
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
    let mut init = BTreeMap::from([(
        init_script::INIT_SCRIPT.to_string(),
        init_script::init_script(&stack.spec.database),
    )]);
    if stack.spec.database.restore.is_some() {
        init.insert(
            restore_script::RESTORE_SCRIPT.to_string(),
            restore_script::restore_script(),
        );
    }
    children.config_maps.push(ConfigMap {
        metadata: object_meta(
            stack,
            init_config_map_name(stack),
            "database",
            Lifetime::WithStack,
        ),
        data: Some(init),
        ..Default::default()
    });
    let db = &stack.spec.database;
    let restore_from_own_claim = db.restore.as_ref().is_some_and(|r| r.claim_name.is_none());
    if db.backup.is_some() || restore_from_own_claim {
        children
            .persistent_volume_claims
            .push(backup_cronjob::backup_claim(stack, db.backup.as_ref()));
    }
    if let Some(backup) = &db.backup {
        children
            .config_maps
            .push(backup_cronjob::backup_config_map(stack));
        children
            .cron_jobs
            .push(backup_cronjob::backup_cronjob(stack, backup));
    }
    // Only webtoon.cnf rolls the pod: the init scripts run on an empty data
    // directory alone, so a new version of them must not restart a live database.
    children.stateful_sets.push(statefulset(stack, &cnf));
}

/// Name of the ConfigMap with the first-start scripts.
pub fn init_config_map_name(stack: &ValidatedStack) -> String {
    child_name(stack, "database-init")
}
