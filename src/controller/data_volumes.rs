//! The data volumes of a StatefulSet once it exists. Its `volumeClaimTemplates`
//! cannot change, so applying a new size or class from the spec would fail every
//! reconcile and leave the whole stack stuck. The StatefulSet instead keeps the
//! templates it was created with; a larger size is asked of its live claims (volume
//! expansion, done where the StorageClass allows it), and a change no claim can take
//! (a smaller size, another class) is reported and left undone.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

use super::release::get_opt;
use crate::api::quantity::quantity_bytes;
use crate::{Error, Result};

/// A live claim whose storage request should grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resize {
    /// The claim, `<template>-<statefulset>-<ordinal>`.
    pub claim: String,
    /// The size the spec asks for.
    pub size: String,
}

/// What the live StatefulSet allows of the rendered one's data volumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Claims to grow.
    pub resizes: Vec<Resize>,
    /// Changes no claim can take: an event reason and a message for people.
    pub refused: Vec<(&'static str, String)>,
}

/// The storage a claim (or a claim template) asks for.
pub fn size(claim: &PersistentVolumeClaim) -> Option<String> {
    claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

fn class(claim: &PersistentVolumeClaim) -> Option<String> {
    claim.spec.as_ref()?.storage_class_name.clone()
}

/// Gives `rendered` the claim templates of `live` (the only ones the API server
/// accepts) and plans what the spec's sizes and classes ask of the live claims.
pub fn keep_live_templates(rendered: &mut StatefulSet, live: &StatefulSet) -> Plan {
    let mut plan = Plan::default();
    let name = rendered.metadata.name.clone().unwrap_or_default();
    let replicas = live
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
        .max(0);
    let live_templates = live
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default();
    let Some(templates) = rendered
        .spec
        .as_mut()
        .and_then(|s| s.volume_claim_templates.as_mut())
    else {
        return plan;
    };
    for template in templates.iter_mut() {
        let template_name = template.metadata.name.clone().unwrap_or_default();
        let Some(current) = live_templates
            .iter()
            .find(|t| t.metadata.name.as_deref() == Some(template_name.as_str()))
        else {
            continue;
        };
        let (wanted_size, live_size) = (size(template), size(current));
        if class(template) != class(current) {
            plan.refused.push((
                "StorageClassChangeRefused",
                format!(
                    "the {template_name} volumes of StatefulSet {name} stay in StorageClass {}: a claim cannot move to {}; restore a backup into a new stack to move the data",
                    class(current).as_deref().unwrap_or("(the default)"),
                    class(template).as_deref().unwrap_or("the default class"),
                ),
            ));
        }
        if let (Some(wanted), Some(live_size)) = (&wanted_size, &live_size)
            && wanted != live_size
        {
            match (quantity_bytes(wanted), quantity_bytes(live_size)) {
                (Some(w), Some(l)) if w > l => plan.resizes.extend((0..replicas).map(|i| Resize {
                    claim: format!("{template_name}-{name}-{i}"),
                    size: wanted.clone(),
                })),
                (Some(w), Some(l)) if w < l => plan.refused.push((
                    "VolumeShrinkRefused",
                    format!(
                        "the {template_name} volumes of StatefulSet {name} stay at {live_size}: a claim cannot shrink to {wanted}"
                    ),
                )),
                _ => {}
            }
        }
        // The live values, so that the apply leaves the immutable field as it is.
        if let (Some(spec), Some(live_spec)) = (template.spec.as_mut(), current.spec.as_ref()) {
            spec.storage_class_name = live_spec.storage_class_name.clone();
            if let (Some(requests), Some(live_size)) = (
                spec.resources.as_mut().and_then(|r| r.requests.as_mut()),
                live_size,
            ) {
                requests.insert("storage".to_string(), Quantity(live_size));
            }
        }
    }
    plan
}

/// Asks each claim of `plan` for its new size, where it asks for less; returns the
/// number of claims written and the API server's refusals, as [`Plan::refused`].
pub async fn resize(
    client: &Client,
    namespace: &str,
    plan: &Plan,
) -> Result<(usize, Vec<(&'static str, String)>)> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let mut written = 0;
    let mut refused = Vec::new();
    for resize in &plan.resizes {
        let Some(claim) =
            get_opt::<PersistentVolumeClaim>(client, namespace, &resize.claim).await?
        else {
            continue;
        };
        let (Some(current), Some(wanted)) = (
            size(&claim).as_deref().and_then(quantity_bytes),
            quantity_bytes(&resize.size),
        ) else {
            continue;
        };
        if current >= wanted {
            continue;
        }
        let patch =
            serde_json::json!({"spec": {"resources": {"requests": {"storage": resize.size}}}});
        match api
            .patch(
                &resize.claim,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => written += 1,
            Err(kube::Error::Api(status)) if matches!(status.code, 403 | 422) => refused.push((
                "VolumeGrowthRefused",
                format!(
                    "claim {} cannot grow to {}: {}",
                    resize.claim, resize.size, status.message
                ),
            )),
            Err(e) => {
                return Err(Error::kube(
                    "resize",
                    "PersistentVolumeClaim",
                    &resize.claim,
                    e,
                ));
            }
        }
    }
    Ok((written, refused))
}

/// Reads the live StatefulSet of `rendered`, if it exists.
pub async fn live(
    client: &Client,
    namespace: &str,
    rendered: &StatefulSet,
) -> Result<Option<StatefulSet>> {
    let name = rendered.metadata.name.clone().unwrap_or_default();
    get_opt::<StatefulSet>(client, namespace, &name).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimSpec, VolumeResourceRequirements};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn statefulset(size: &str, class: Option<&str>) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("megatoon-database".to_string()),
                ..Default::default()
            },
            spec: Some(StatefulSetSpec {
                replicas: Some(1),
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".to_string()),
                        ..Default::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec {
                        storage_class_name: class.map(str::to_string),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([(
                                "storage".to_string(),
                                Quantity(size.to_string()),
                            )])),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_larger_size_grows_the_live_claims_and_leaves_the_template() {
        let mut rendered = statefulset("30Gi", None);
        let plan = keep_live_templates(&mut rendered, &statefulset("20Gi", None));
        assert_eq!(
            plan.resizes,
            [Resize {
                claim: "data-megatoon-database-0".to_string(),
                size: "30Gi".to_string()
            }]
        );
        assert!(plan.refused.is_empty());
        assert_eq!(rendered, statefulset("20Gi", None));
    }

    #[test]
    fn a_smaller_size_or_another_class_is_refused_and_left_undone() {
        let mut rendered = statefulset("10Gi", Some("fast"));
        let plan = keep_live_templates(&mut rendered, &statefulset("20Gi", None));
        assert!(plan.resizes.is_empty());
        assert_eq!(plan.refused.len(), 2, "{:?}", plan.refused);
        assert_eq!(plan.refused[0].0, "StorageClassChangeRefused");
        assert!(plan.refused[0].1.contains("cannot move to fast"));
        assert_eq!(plan.refused[1].0, "VolumeShrinkRefused");
        assert!(plan.refused[1].1.contains("cannot shrink to 10Gi"));
        assert_eq!(rendered, statefulset("20Gi", None));
    }

    #[test]
    fn an_unchanged_spec_plans_nothing() {
        let mut rendered = statefulset("20Gi", None);
        let plan = keep_live_templates(&mut rendered, &statefulset("20Gi", None));
        assert_eq!(plan, Plan::default());
    }
}
