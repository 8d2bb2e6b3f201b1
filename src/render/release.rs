//! Releases of the proxy and WAS Deployments: the hash that names a pod template,
//! the template the controller holds a Deployment at instead of the spec's (after a
//! failed rollout, or while a migration runs), and the Jobs of a WAS release.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;

use super::meta::checksum;

/// Pod template annotation with the hash of the template as rendered from the spec:
/// it names a release in the Deployment, its ReplicaSets and its pods.
pub const TEMPLATE_HASH_ANNOTATION: &str = "webtoon.io/template-hash";

/// The label the Deployment controller adds to each ReplicaSet's template.
const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// The template a Deployment runs, when it is not simply the spec's.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Template {
    /// The template the spec gives.
    #[default]
    Spec,
    /// This template instead: the last known good one after a failed rollout, or the
    /// running one while the new image's migration has not succeeded.
    Pinned(Box<PodTemplateSpec>),
    /// No Deployment yet: a new stack's first migration has not succeeded.
    Withheld,
}

/// The migration whose Jobs exist, as the stack's status records it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MigrationJobs {
    /// The WAS image the migration runs in.
    pub image: String,
    /// The file name of the backup taken first, when backups are configured.
    pub backup: Option<String>,
    /// Whether the migration itself started (after the backup, if any, succeeded).
    pub migrate: bool,
}

/// Hash of a pod template without its own hash annotation: 16 hex digits of SHA-256.
pub fn template_hash(template: &PodTemplateSpec) -> String {
    let mut template = template.clone();
    if let Some(metadata) = template.metadata.as_mut()
        && let Some(annotations) = metadata.annotations.as_mut()
    {
        annotations.remove(TEMPLATE_HASH_ANNOTATION);
        if annotations.is_empty() {
            metadata.annotations = None;
        }
    }
    let json = serde_json::to_string(&template).unwrap_or_default();
    checksum(&json)[..16].to_string()
}

/// The template with its hash annotation.
pub fn stamped(mut template: PodTemplateSpec) -> PodTemplateSpec {
    let hash = template_hash(&template);
    template
        .metadata
        .get_or_insert_with(Default::default)
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(TEMPLATE_HASH_ANNOTATION.to_string(), hash);
    template
}

/// The hash annotation of a template, when it has one.
pub fn hash_of(template: &PodTemplateSpec) -> Option<&str> {
    template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(TEMPLATE_HASH_ANNOTATION)
        .map(String::as_str)
}

/// The template a Deployment gets from the spec's and the controller's choice. A
/// pinned template comes from a ReplicaSet or a Deployment: the ReplicaSet's
/// `pod-template-hash` label is the Deployment controller's, not ours, and goes.
pub fn resolve(spec: PodTemplateSpec, choice: &Template) -> PodTemplateSpec {
    match choice {
        Template::Spec | Template::Withheld => stamped(spec),
        Template::Pinned(pinned) => {
            let mut pinned = (**pinned).clone();
            if let Some(labels) = pinned.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                labels.remove(POD_TEMPLATE_HASH_LABEL);
            }
            pinned
        }
    }
}

/// The image of a template's first container, the tier's own.
pub fn image_of(template: &PodTemplateSpec) -> Option<&str> {
    template.spec.as_ref()?.containers.first()?.image.as_deref()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta::default()),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "was".to_string(),
                    image: Some(image.to_string()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_hash_names_the_template_and_ignores_its_own_annotation() {
        let one = stamped(template("was:1"));
        let two = stamped(template("was:2"));
        assert_eq!(hash_of(&one).map(str::len), Some(16));
        assert_ne!(hash_of(&one), hash_of(&two));
        assert_eq!(template_hash(&one), template_hash(&template("was:1")));
        assert_eq!(stamped(one.clone()), one, "stamping twice changes nothing");
    }

    #[test]
    fn a_pinned_template_loses_the_replica_set_label_and_keeps_its_hash() {
        let mut pinned = stamped(template("was:1"));
        pinned.metadata.as_mut().and_then(|m| {
            m.labels
                .get_or_insert_with(BTreeMap::new)
                .insert(POD_TEMPLATE_HASH_LABEL.to_string(), "5d4f8c7b9".to_string())
        });
        let resolved = resolve(
            template("was:2"),
            &Template::Pinned(Box::new(pinned.clone())),
        );
        assert_eq!(image_of(&resolved), Some("was:1"));
        assert_eq!(hash_of(&resolved), hash_of(&pinned));
        assert!(
            resolved
                .metadata
                .and_then(|m| m.labels)
                .is_some_and(|l| !l.contains_key(POD_TEMPLATE_HASH_LABEL))
        );
        assert_eq!(
            image_of(&resolve(template("was:2"), &Template::Spec)),
            Some("was:2")
        );
    }
}
