//! Deleting children the spec no longer wants (turning autoscaling off removes its
//! autoscaler, turning network policies off removes them), only among objects that carry this stack's labels and its owner
//! reference. Data kinds (volume claims, the credentials Secret) are never pruned:
//! nothing a user stored is lost because a spec changed.

use std::collections::BTreeSet;
use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;

use super::apply::is_not_served;
use crate::api::ValidatedStack;
use crate::render::Children;
use crate::render::meta::{INSTANCE_LABEL, MANAGER};
use crate::render::monitoring::pod_monitor::PodMonitor;
use crate::{Error, Result};

fn names<K: Resource>(objects: &[K]) -> BTreeSet<String> {
    objects
        .iter()
        .filter_map(|o| o.meta().name.clone())
        .collect()
}

/// The label selector of every child of a stack.
pub fn stack_selector(stack: &ValidatedStack) -> String {
    format!(
        "{INSTANCE_LABEL}={},app.kubernetes.io/managed-by={MANAGER}",
        stack.name
    )
}

async fn prune_kind<K>(
    client: &Client,
    stack: &ValidatedStack,
    wanted: BTreeSet<String>,
) -> Result<usize>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let Some(uid) = stack.uid.as_deref() else {
        return Ok(0);
    };
    let api: Api<K> = Api::namespaced(client.clone(), &stack.namespace);
    let list = api
        .list(&ListParams::default().labels(&stack_selector(stack)))
        .await
        .map_err(|e| Error::kube("list", K::kind(&()), "", e))?;
    let mut deleted = 0;
    for object in list.items {
        let meta = object.meta();
        let name = meta.name.clone().unwrap_or_default();
        let owned = meta.owner_references.iter().flatten().any(|o| o.uid == uid);
        if owned && !wanted.contains(&name) && meta.deletion_timestamp.is_none() {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted += 1,
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(Error::kube("delete", K::kind(&()), &name, e)),
            }
        }
    }
    Ok(deleted)
}

/// Prunes PodMonitors where the Prometheus Operator's CRDs are installed.
async fn prune_pod_monitors(
    client: &Client,
    stack: &ValidatedStack,
    wanted: BTreeSet<String>,
) -> Result<usize> {
    match prune_kind::<PodMonitor>(client, stack, wanted).await {
        Err(Error::Kube { source, .. }) if is_not_served(&source) => Ok(0),
        other => other,
    }
}

/// Deletes owned stateless children that `children` no longer holds; returns how many.
pub async fn prune(client: &Client, stack: &ValidatedStack, children: &Children) -> Result<usize> {
    let mut deleted = 0;
    deleted += prune_kind::<HorizontalPodAutoscaler>(
        client,
        stack,
        names(&children.horizontal_pod_autoscalers),
    )
    .await?;
    deleted +=
        prune_kind::<PodDisruptionBudget>(client, stack, names(&children.pod_disruption_budgets))
            .await?;
    deleted += prune_kind::<Deployment>(client, stack, names(&children.deployments)).await?;
    // Turning backups off stops the schedule; the claim and its backups stay.
    deleted += prune_kind::<CronJob>(client, stack, names(&children.cron_jobs)).await?;
    // The Jobs of the newest migration stay for their logs; older ones go. Jobs the
    // backup schedule starts are owned by the CronJob, not the stack, and stay.
    deleted += prune_kind::<Job>(client, stack, names(&children.jobs)).await?;
    deleted += prune_kind::<StatefulSet>(client, stack, names(&children.stateful_sets)).await?;
    deleted += prune_kind::<Service>(client, stack, names(&children.services)).await?;
    deleted += prune_kind::<ConfigMap>(client, stack, names(&children.config_maps)).await?;
    deleted += prune_pod_monitors(client, stack, names(&children.pod_monitors)).await?;
    // Last, so that a pod being pruned is never left without its isolation.
    deleted +=
        prune_kind::<NetworkPolicy>(client, stack, names(&children.network_policies)).await?;
    Ok(deleted)
}
