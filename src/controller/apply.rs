//! Server-side apply of the rendered children, with one field manager, in
//! dependency order, and without a write when the cluster already matches.
//!
//! A child needs an apply when the cluster object is missing, when any field we
//! render differs (drift, such as a hand edit), or when what we render changed since
//! the last apply (the `webtoon.io/applied-hash` annotation), which also catches
//! fields we stopped rendering.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::render::Children;
use crate::render::meta::{INSTANCE_LABEL, MANAGER, checksum};
use crate::render::monitoring::pod_monitor::PodMonitor;
use crate::{Error, Result};

/// Annotation with the hash of the object as last applied by the operator.
pub const APPLIED_HASH_ANNOTATION: &str = "webtoon.io/applied-hash";

/// Whether every field of `desired` is present with the same value in `actual`.
/// Lists must have the same length; maps may hold more keys (server defaults).
/// Quantities compare by value: the API server stores them in canonical form
/// (`cpu: "1.5"` comes back as `1500m`, `1.5Gi` as `1536Mi`), and comparing the
/// text would re-apply such an object on every reconcile.
pub fn is_subset(desired: &serde_json::Value, actual: &serde_json::Value) -> bool {
    subset(desired, actual, false)
}

/// Keys whose value is a map of quantities (a `ResourceList`) in every kind we
/// render: container and claim `requests` and `limits`, volume `capacity`.
const QUANTITY_MAPS: &[&str] = &["requests", "limits", "capacity"];
/// Keys whose value is one quantity.
const QUANTITY_FIELDS: &[&str] = &["sizeLimit"];

/// Fields we render with their zero value that the API server leaves out of what it
/// returns (Go `omitempty` on a plain, not pointer, field): absent means that value.
const OMITTED_WHEN_ZERO: &[&str] = &[
    "publishNotReadyAddresses",
    "initialDelaySeconds",
    "readOnly",
    "storageClassName",
];

fn is_zero(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn subset(desired: &serde_json::Value, actual: &serde_json::Value, quantities: bool) -> bool {
    use serde_json::Value;
    match (desired, actual) {
        (Value::Object(d), Value::Object(a)) => d.iter().all(|(k, dv)| {
            let inner = QUANTITY_MAPS.contains(&k.as_str());
            let Some(av) = a.get(k) else {
                return is_zero(dv) && OMITTED_WHEN_ZERO.contains(&k.as_str());
            };
            match (dv, av) {
                (Value::String(ds), Value::String(avs))
                    if quantities || QUANTITY_FIELDS.contains(&k.as_str()) =>
                {
                    ds == avs || same_quantity(ds, avs)
                }
                _ => subset(dv, av, inner),
            }
        }),
        (Value::Array(d), Value::Array(a)) => {
            d.len() == a.len() && d.iter().zip(a).all(|(dv, av)| subset(dv, av, false))
        }
        (d, a) => d == a,
    }
}

/// Whether two Kubernetes quantities are the same amount.
fn same_quantity(a: &str, b: &str) -> bool {
    matches!((nano_units(a), nano_units(b)), (Some(x), Some(y)) if x == y)
}

/// A quantity (`1.5`, `1500m`, `1.5Gi`, `1e3`) in billionths, rounded up as the
/// API server rounds; `None` when it is not a quantity.
fn nano_units(quantity: &str) -> Option<i128> {
    let (negative, rest) = match quantity.as_bytes().first()? {
        b'-' => (true, &quantity[1..]),
        b'+' => (false, &quantity[1..]),
        _ => (false, quantity),
    };
    let number_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > 18 {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    // value = digits * numerator / denominator, all in billionths.
    let mut numerator: i128 = 1_000_000_000;
    let mut denominator: i128 = 10i128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let binary = |power: u32| 1i128 << power;
    let decimal = |power: i32, numerator: &mut i128, denominator: &mut i128| -> Option<()> {
        let factor = 10i128.checked_pow(power.unsigned_abs())?;
        if power >= 0 {
            *numerator = numerator.checked_mul(factor)?;
        } else {
            *denominator = denominator.checked_mul(factor)?;
        }
        Some(())
    };
    match suffix {
        "Ki" => numerator *= binary(10),
        "Mi" => numerator *= binary(20),
        "Gi" => numerator *= binary(30),
        "Ti" => numerator *= binary(40),
        "Pi" => numerator *= binary(50),
        "Ei" => numerator *= binary(60),
        "n" => decimal(-9, &mut numerator, &mut denominator)?,
        "u" => decimal(-6, &mut numerator, &mut denominator)?,
        "m" => decimal(-3, &mut numerator, &mut denominator)?,
        "" => {}
        "k" => decimal(3, &mut numerator, &mut denominator)?,
        "M" => decimal(6, &mut numerator, &mut denominator)?,
        "G" => decimal(9, &mut numerator, &mut denominator)?,
        "T" => decimal(12, &mut numerator, &mut denominator)?,
        "P" => decimal(15, &mut numerator, &mut denominator)?,
        "E" => decimal(18, &mut numerator, &mut denominator)?,
        exponent => {
            let power: i32 = exponent
                .strip_prefix('e')
                .or_else(|| exponent.strip_prefix('E'))?
                .parse()
                .ok()?;
            if power.abs() > 18 {
                return None;
            }
            decimal(power, &mut numerator, &mut denominator)?;
        }
    }
    let scaled = digits.checked_mul(numerator)?;
    let value = scaled / denominator + i128::from(scaled % denominator != 0);
    Some(if negative { -value } else { value })
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

/// Creates the Jobs that do not exist yet; returns how many. A Job runs once: its
/// template is immutable and a Job that exists, running or finished, is left as is.
async fn create_missing_jobs(client: &Client, namespace: &str, jobs: &[Job]) -> Result<usize> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let mut created = 0;
    for job in jobs {
        let name = job.meta().name.clone().unwrap_or_default();
        let exists = api
            .get_opt(&name)
            .await
            .map_err(|e| Error::kube("read", "Job", &name, e))?
            .is_some();
        if exists {
            continue;
        }
        match api.create(&PostParams::default(), job).await {
            Ok(_) => created += 1,
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(e) => return Err(Error::kube("create", "Job", &name, e)),
        }
    }
    Ok(created)
}

/// Applies the PodMonitors where the Prometheus Operator's CRDs are installed. Where
/// they are not, the API server has no such resource: a list answers 404, and no
/// write is sent that could only fail.
async fn apply_pod_monitors(
    client: &Client,
    namespace: &str,
    monitors: &[PodMonitor],
) -> Result<usize> {
    let Some(first) = monitors.first() else {
        return Ok(0);
    };
    let api: Api<PodMonitor> = Api::namespaced(client.clone(), namespace);
    let selector = first
        .meta()
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() == INSTANCE_LABEL)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    match api.list(&ListParams::default().labels(&selector)).await {
        Err(e) if is_not_served(&e) => {
            tracing::debug!("no PodMonitor resource in this cluster; the stack's is not applied");
            return Ok(0);
        }
        Err(e) => return Err(Error::kube("list", "PodMonitor", "", e)),
        Ok(_) => {}
    }
    apply_with(&api, monitors).await
}

/// Whether an error means the API server does not serve the resource at all, as for
/// the kinds of a CRD that is not installed.
pub fn is_not_served(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}

/// Applies every child in dependency order: network policies, configuration,
/// secrets and volumes, then services, the data tier and its backup schedule, the
/// migration Jobs, the WAS and the proxy, then autoscalers and budgets, then the
/// PodMonitor. Returns the number of objects written.
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
        jobs,
        deployments,
        horizontal_pod_autoscalers,
        pod_disruption_budgets,
        pod_monitors,
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
    // A migration runs before the WAS Deployment is allowed its new image.
    written += create_missing_jobs(client, namespace, jobs).await?;
    // The WAS Deployment comes before the proxy's in render order.
    written += apply_namespaced(client, namespace, deployments).await?;
    written += apply_namespaced(client, namespace, horizontal_pod_autoscalers).await?;
    written += apply_namespaced(client, namespace, pod_disruption_budgets).await?;
    written += apply_pod_monitors(client, namespace, pod_monitors).await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_the_server_rewrites_are_not_drift() {
        // As written in the spec, and as the API server stores them.
        let desired = json!({"spec": {"containers": [{"resources": {
            "requests": {"cpu": "1.5", "memory": "1.5Gi"},
            "limits": {"cpu": "2", "memory": "1536Mi", "ephemeral-storage": "1e3"},
        }}], "volumes": [{"emptyDir": {"sizeLimit": "0.5Gi"}}]}});
        let stored = json!({"spec": {"containers": [{"resources": {
            "requests": {"cpu": "1500m", "memory": "1536Mi"},
            "limits": {"cpu": "2", "memory": "1536Mi", "ephemeral-storage": "1k"},
        }}], "volumes": [{"emptyDir": {"sizeLimit": "512Mi"}}]}});
        assert!(is_subset(&desired, &stored));
        let changed = json!({"spec": {"containers": [{"resources": {
            "requests": {"cpu": "1501m", "memory": "1536Mi"},
            "limits": {"cpu": "2", "memory": "1536Mi", "ephemeral-storage": "1k"},
        }}], "volumes": [{"emptyDir": {"sizeLimit": "512Mi"}}]}});
        assert!(!is_subset(&desired, &changed));
        // Only quantity fields compare by value; any other text must match exactly.
        assert!(!is_subset(
            &json!({"env": [{"name": "N", "value": "1.5"}]}),
            &json!({"env": [{"name": "N", "value": "1500m"}]})
        ));
        assert_eq!(nano_units("100m"), Some(100_000_000));
        assert_eq!(nano_units("1Ki"), Some(1024 * 1_000_000_000));
        assert_eq!(nano_units("-2.5k"), Some(-2_500_000_000_000));
        assert_eq!(nano_units("1.5Xi"), None);
        assert_eq!(nano_units("abc"), None);
        assert_eq!(nano_units("."), None);
    }

    #[test]
    fn zero_values_the_server_omits_are_not_drift() {
        // As rendered, and as a 1.37 API server returns them (omitempty drops them).
        let desired = json!({"spec": {
            "publishNotReadyAddresses": false,
            "storageClassName": "",
            "nfs": {"server": "nfs", "readOnly": false},
            "containers": [{"readinessProbe": {"initialDelaySeconds": 0, "periodSeconds": 5}}],
        }});
        let stored = json!({"spec": {
            "nfs": {"server": "nfs"},
            "containers": [{"readinessProbe": {"periodSeconds": 5}}],
        }});
        assert!(is_subset(&desired, &stored));
        // Only a zero value may be absent, and only where the server omits it.
        assert!(!is_subset(
            &json!({"spec": {"publishNotReadyAddresses": true}}),
            &json!({"spec": {}})
        ));
        assert!(!is_subset(
            &json!({"spec": {"automountServiceAccountToken": false}}),
            &json!({"spec": {}})
        ));
    }

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
