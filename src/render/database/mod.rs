//! The MariaDB tier: a single-replica StatefulSet with generated credentials, an
//! application user limited to the application database, a tuned my.cnf, scheduled
//! backups and a restore on first start.

pub mod backup_cronjob;
pub mod backup_script;
pub mod init_script;
pub mod my_cnf;
pub mod object_store;
pub mod restore_script;
pub mod rotation_job;
mod statefulset;
pub mod verify_cronjob;
pub mod verify_script;

pub use statefulset::statefulset;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Children;
use super::meta::{Lifetime, child_name, object_meta, selector_labels};
use crate::api::{ObjectStoreSpec, ServiceMode, ValidatedStack};

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

/// Where a restore reads its backup from.
#[derive(Clone, Debug, PartialEq)]
pub enum RestoreSource<'a> {
    /// The backup files on this claim.
    Claim(String),
    /// The described backups in this bucket, under the prefix the spec gives.
    ObjectStore(&'a ObjectStoreSpec),
}

/// The source of the stack's restore, if it asks for one: the claim or bucket it
/// names, else this stack's backup volume, else this stack's backup bucket.
pub fn restore_source(stack: &ValidatedStack) -> Option<RestoreSource<'_>> {
    let db = &stack.spec.database;
    let restore = db.restore.as_ref()?;
    Some(
        match (&restore.claim_name, &restore.object_store, &db.backup) {
            (Some(claim), _, _) => RestoreSource::Claim(claim.clone()),
            (None, Some(store), _) => RestoreSource::ObjectStore(store),
            (None, None, Some(backup)) if backup.volume().is_none() => match &backup.object_store {
                Some(store) => RestoreSource::ObjectStore(store),
                None => RestoreSource::Claim(backup_cronjob::backup_name(stack)),
            },
            (None, None, _) => RestoreSource::Claim(backup_cronjob::backup_name(stack)),
        },
    )
}

/// Adds the database objects to `children`; nothing in external mode. Backups to a
/// bucket and restores from one run `tool_image`, the operator's own.
pub fn build(stack: &ValidatedStack, tool_image: &str, children: &mut Children) {
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
        init_script::init_script(&stack.spec.database, stack.credentials_generation),
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
    let volume = db.backup.as_ref().and_then(|b| b.volume());
    let restore_from_own_claim = matches!(
        restore_source(stack),
        Some(RestoreSource::Claim(claim)) if claim == backup_cronjob::backup_name(stack)
    );
    if volume.is_some() || restore_from_own_claim {
        children
            .persistent_volume_claims
            .push(backup_cronjob::backup_claim(stack, volume));
    }
    if let Some(backup) = &db.backup {
        children
            .config_maps
            .push(backup_cronjob::backup_config_map(stack));
        children
            .cron_jobs
            .push(backup_cronjob::backup_cronjob(stack, backup, tool_image));
        children
            .cron_jobs
            .push(verify_cronjob::verify_cronjob(stack, backup, tool_image));
    }
    // Only webtoon.cnf rolls the pod: the init scripts run on an empty data
    // directory alone, so a new version of them must not restart a live database.
    children
        .stateful_sets
        .push(statefulset(stack, &cnf, tool_image));
}

/// Name of the ConfigMap with the first-start scripts.
pub fn init_config_map_name(stack: &ValidatedStack) -> String {
    child_name(stack, "database-init")
}
