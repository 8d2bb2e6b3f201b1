//! The shared ReadWriteMany volume for comic images: a dynamically provisioned claim,
//! a PersistentVolume and claim for an NFS export, or a claim the user already has.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    NFSVolumeSource, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Children;
use super::meta::{Lifetime, child_name, labels, object_meta};
use crate::api::ValidatedStack;

/// Name of the claim the proxy and WAS mount for images.
pub fn images_claim_name(stack: &ValidatedStack) -> String {
    stack
        .spec
        .storage
        .existing_claim
        .clone()
        .unwrap_or_else(|| child_name(stack, "images"))
}

/// Name of the NFS PersistentVolume. Volumes are cluster-wide, so the name carries a
/// hash of the namespace: readable, unique across namespaces, and a DNS label.
pub fn nfs_volume_name(stack: &ValidatedStack) -> String {
    let namespace_hash = crate::render::meta::checksum(&stack.namespace);
    format!("{}-images-{}", stack.name, &namespace_hash[..10])
}

/// A claim request for `size` with the given access mode.
pub fn claim_spec(
    size: &str,
    storage_class: Option<&String>,
    access_mode: &str,
) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec![access_mode.to_string()]),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([(
                "storage".to_string(),
                Quantity(size.to_string()),
            )])),
            ..Default::default()
        }),
        storage_class_name: storage_class.cloned(),
        ..Default::default()
    }
}

/// Adds the image volume objects to `children`.
pub fn build(stack: &ValidatedStack, children: &mut Children) {
    let storage = &stack.spec.storage;
    if storage.existing_claim.is_some() {
        return;
    }
    let mut spec = claim_spec(
        &storage.size,
        storage.storage_class_name.as_ref(),
        "ReadWriteMany",
    );
    if let Some(nfs) = &storage.nfs {
        let volume_name = nfs_volume_name(stack);
        // An empty class keeps the default StorageClass from provisioning a second volume.
        spec.storage_class_name = Some(String::new());
        spec.volume_name = Some(volume_name.clone());
        let mut volume_labels = labels(stack, "storage");
        volume_labels.insert("webtoon.io/namespace".to_string(), stack.namespace.clone());
        children.persistent_volumes.push(PersistentVolume {
            // Cluster-scoped objects cannot be owned by a namespaced stack; the
            // Retain reclaim policy keeps the exported files whatever happens.
            metadata: ObjectMeta {
                name: Some(volume_name),
                labels: Some(volume_labels),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.clone()),
                )])),
                access_modes: Some(vec!["ReadWriteMany".to_string()]),
                persistent_volume_reclaim_policy: Some("Retain".to_string()),
                storage_class_name: Some(String::new()),
                mount_options: Some(vec!["nfsvers=4.1".to_string(), "hard".to_string()]),
                nfs: Some(NFSVolumeSource {
                    server: nfs.server.clone(),
                    path: nfs.path.clone(),
                    read_only: Some(false),
                }),
                claim_ref: Some(k8s_openapi::api::core::v1::ObjectReference {
                    namespace: Some(stack.namespace.clone()),
                    name: Some(images_claim_name(stack)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    children
        .persistent_volume_claims
        .push(PersistentVolumeClaim {
            metadata: object_meta(stack, images_claim_name(stack), "storage", Lifetime::Data),
            spec: Some(spec),
            ..Default::default()
        });
}
