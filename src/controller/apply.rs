//! Server-side apply of the rendered children, with one field manager, in
//! dependency order, and without a write when the cluster already matches.
//!
//! A child needs an apply when the cluster object is missing, when any field we
//! render differs (drift, such as a hand edit), or when what we render changed since
//! the last apply (the `webtoon.io/applied-hash` annotation), which also catches
//! fields we stopped rendering.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::render::Children;
use crate::render::meta::{MANAGER, checksum};
use crate::{Error, Result};

/// Annotation with the hash of the object as last applied by the operator.
pub const APPLIED_HASH_ANNOTATION: &str = "webtoon.io/applied-hash";

/// Whether every field of `desired` is present with the same value in `actual`.
/// Lists must have the same length; maps may hold more keys (server defaults).
pub fn is_subset(desired: &serde_json::Value, actual: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (desired, actual) {
        (Value::Object(d), Value::Object(a)) => d
            .iter()
            .all(|(k, dv)| a.get(k).is_some_and(|av| is_subset(dv, av))),
        (Value::Array(d), Value::Array(a)) => {
            d.len() == a.len() && d.iter().zip(a).all(|(dv, av)| is_subset(dv, av))
        }
        (d, a) => d == a,
    }
}

/// The object with its applied-hash annotation, and whether `actual` already matches it.
fn prepare<K>(mut desired: K, actual: Option<&K>) -> Result<(K, bool)>
where
    K: Resource + Serialize,
{
    let serialize = |value: &K| {
        serde_json::to_value(value).map_err(|e| Error::Serialize {
            what: "child object".to_string(),
            message: e.to_string(),
        })
    };
    let hash = checksum(&serialize(&desired)?.to_string());
    desired
        .meta_mut()
        .annotations
        .get_or_insert_with(Default::default)
        .insert(APPLIED_HASH_ANNOTATION.to_string(), hash);
    let up_to_date = match actual {
        Some(actual) => is_subset(&serialize(&desired)?, &serialize(actual)?),
        None => false,
    };
    Ok((desired, up_to_date))
}

/// Applies namespaced children of one kind; returns how many were written.
async fn apply_namespaced<K>(client: &Client, namespace: &str, objects: &[K]) -> Result<usize>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    apply_with(&api, objects).await
}

/// Applies cluster-scoped children of one kind; returns how many were written.
async fn apply_cluster<K>(client: &Client, objects: &[K]) -> Result<usize>
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    apply_with(&api, objects).await
}

async fn apply_with<K>(api: &Api<K>, objects: &[K]) -> Result<usize>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let mut written = 0;
    for object in objects {
        let name = object.meta().name.clone().unwrap_or_default();
        let actual = api
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube("read", K::kind(&()), &name, e))?;
        let (desired, up_to_date) = prepare(object.clone(), actual.as_ref())?;
        if up_to_date {
            continue;
        }
        api.patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&desired),
        )
        .await
        .map_err(|e| Error::kube("apply", K::kind(&()), &name, e))?;
        written += 1;
    }
    Ok(written)
}

/// Applies every child in dependency order: network policies, configuration,
/// secrets and volumes, then services, the data tier and its backup schedule, the
/// WAS and the proxy, then
/// autoscalers and budgets.
/// Returns the number of objects written.
pub async fn apply_all(client: &Client, namespace: &str, children: &Children) -> Result<usize> {
    // Destructured without `..`: a kind that render builds but apply forgets will not compile.
    let Children {
        network_policies,
        secrets,
        config_maps,
        persistent_volumes,
        persistent_volume_claims,
        services,
        stateful_sets,
        cron_jobs,
        deployments,
        horizontal_pod_autoscalers,
        pod_disruption_budgets,
    } = children;
    let mut written = 0;
    // Isolation first, so that no pod of the stack ever runs unprotected.
    written += apply_namespaced(client, namespace, network_policies).await?;
    written += apply_namespaced(client, namespace, secrets).await?;
    written += apply_namespaced(client, namespace, config_maps).await?;
    written += apply_cluster(client, persistent_volumes).await?;
    written += apply_namespaced(client, namespace, persistent_volume_claims).await?;
    written += apply_namespaced(client, namespace, services).await?;
    written += apply_namespaced(client, namespace, stateful_sets).await?;
    // Backups run against the database, so their schedule starts after it.
    written += apply_namespaced(client, namespace, cron_jobs).await?;
    // The WAS Deployment comes before the proxy's in render order.
    written += apply_namespaced(client, namespace, deployments).await?;
    written += apply_namespaced(client, namespace, horizontal_pod_autoscalers).await?;
    written += apply_namespaced(client, namespace, pod_disruption_budgets).await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_allows_server_defaults_but_not_changes() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}});
        assert!(is_subset(
            &desired,
            &json!({"spec": {"replicas": 2, "ports": [{"port": 80, "protocol": "TCP"}], "x": 1}})
        ));
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"replicas": 3, "ports": [{"port": 80}]}})
        ));
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"replicas": 2, "ports": [{"port": 80}, {"port": 443}]}})
        ));
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"ports": [{"port": 80}]}})
        ));
    }
}
