//! The single-replica StatefulSet shape shared by the data tiers (MariaDB, Redis):
//! stable identity, a data claim that `deletionPolicy` governs, restricted pods that
//! roll when their configuration changes.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, PodSpec, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::meta::{Lifetime, checksum, child_name, labels, object_meta, selector};
use super::proxy::CONFIG_CHECKSUM_ANNOTATION;
use super::security::pod_security_context;
use super::storage::claim_spec;
use crate::api::{DeletionPolicy, ValidatedStack, VolumeSpec};

/// The uid and gid the official MariaDB and Redis images run as.
pub const DATA_UID: i64 = 999;

/// What differs between the data tiers.
pub struct DataTier<'a> {
    /// Component name: `database` or `cache`.
    pub component: &'a str,
    /// Containers that run to completion before the server starts.
    pub init_containers: Vec<Container>,
    /// The server container.
    pub container: Container,
    /// Containers beside the server, such as its metrics exporter.
    pub sidecars: Vec<Container>,
    /// Volumes besides the `data` claim.
    pub volumes: Vec<Volume>,
    /// The `data` claim; `None` for a tier that keeps no data on disk.
    pub data: Option<&'a VolumeSpec>,
    /// Configuration whose change must restart the pod.
    pub config: &'a str,
    /// Seconds the server gets to shut down cleanly.
    pub termination_grace_seconds: i64,
}

/// The StatefulSet `<stack>-<component>` for one data tier.
pub fn statefulset(stack: &ValidatedStack, tier: DataTier<'_>) -> StatefulSet {
    let name = child_name(stack, tier.component);
    let retention = match stack.spec.deletion_policy {
        DeletionPolicy::Retain => "Retain",
        DeletionPolicy::Delete => "Delete",
    };
    let claims = tier.data.map(|volume| {
        vec![PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".to_string()),
                labels: Some(labels(stack, tier.component)),
                ..Default::default()
            },
            spec: Some(claim_spec(
                &volume.size,
                volume.storage_class_name.as_ref(),
                "ReadWriteOnce",
            )),
            ..Default::default()
        }]
    });
    StatefulSet {
        metadata: object_meta(stack, name.clone(), tier.component, Lifetime::WithStack),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(name),
            selector: selector(stack, tier.component),
            pod_management_policy: Some("OrderedReady".to_string()),
            persistent_volume_claim_retention_policy: claims.as_ref().map(|_| {
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(retention.to_string()),
                    when_scaled: Some("Retain".to_string()),
                }
            }),
            volume_claim_templates: claims,
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(stack, tier.component)),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_CHECKSUM_ANNOTATION.to_string(),
                        checksum(tier.config),
                    )])),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    init_containers: (!tier.init_containers.is_empty())
                        .then_some(tier.init_containers),
                    containers: std::iter::once(tier.container)
                        .chain(tier.sidecars)
                        .collect(),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(pod_security_context(DATA_UID, Some(DATA_UID))),
                    termination_grace_period_seconds: Some(tier.termination_grace_seconds),
                    volumes: Some(tier.volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}
