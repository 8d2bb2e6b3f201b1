//! Re-binding the NFS PersistentVolume of a re-created stack.
//!
//! The NFS volume is cluster-scoped, so the stack cannot own it, and its reclaim
//! policy is Retain, so the exported files outlive any claim. When the claim goes
//! (the stack deleted under `deletionPolicy: Delete`), Kubernetes marks the volume
//! Released and keeps the old claim's UID in `claimRef`, and no new claim can bind
//! it. A stack created again with the same name wants that volume and its files
//! back: the operator clears the stale UID so the new claim binds.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use crate::api::ValidatedStack;
use crate::render::storage::{images_claim_name, nfs_volume_name};
use crate::{Error, Result};

/// Frees the stack's Released NFS volume for its current claim; returns the writes.
pub async fn rebind_released(client: &Client, stack: &ValidatedStack) -> Result<usize> {
    if stack.spec.storage.nfs.is_none() {
        return Ok(0);
    }
    let name = nfs_volume_name(stack);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let Some(volume) = volumes
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube("read", "PersistentVolume", &name, e))?
    else {
        return Ok(0);
    };
    let released = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
    let Some(claim_ref) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return Ok(0);
    };
    let claim = images_claim_name(stack);
    let ours = claim_ref.namespace.as_deref() == Some(stack.namespace.as_str())
        && claim_ref.name.as_deref() == Some(claim.as_str());
    let Some(stale_uid) = claim_ref.uid.as_deref() else {
        return Ok(0);
    };
    if !released || !ours {
        return Ok(0);
    }
    // A claim that exists now and carries that UID is the binding, not a stale one.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &stack.namespace);
    let current = claims
        .get_opt(&claim)
        .await
        .map_err(|e| Error::kube("read", "PersistentVolumeClaim", &claim, e))?;
    if current.is_some_and(|c| c.metadata.uid.as_deref() == Some(stale_uid)) {
        return Ok(0);
    }
    let patch = serde_json::json!({
        "spec": {"claimRef": {"uid": null, "resourceVersion": null}}
    });
    volumes
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube("re-bind", "PersistentVolume", &name, e))?;
    tracing::info!(volume = %name, claim = %claim, "cleared the claim UID of a released NFS volume so the stack's claim binds it again");
    Ok(1)
}
