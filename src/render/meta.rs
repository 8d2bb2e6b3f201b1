//! Names, labels and owner references shared by every child object.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use crate::api::ValidatedStack;

/// Field manager and `app.kubernetes.io/managed-by` value of the operator.
pub const MANAGER: &str = "webtoon-operator";

/// Label naming the component of a child (`proxy`, `was`, `database`, ...).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// Label naming the application, the same for every stack.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// Value of [`NAME_LABEL`].
pub const NAME: &str = "webtoon";
/// Label naming the stack a child belongs to.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// Name of the child `<stack>-<component>`.
pub fn child_name(stack: &ValidatedStack, component: &str) -> String {
    format!("{}-{component}", stack.name)
}

/// The labels that select the pods of one component.
pub fn selector_labels(stack: &ValidatedStack, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), NAME.to_string()),
        (INSTANCE_LABEL.to_string(), stack.name.clone()),
        (COMPONENT_LABEL.to_string(), component.to_string()),
    ])
}

/// The recommended labels of every child of one component.
pub fn labels(stack: &ValidatedStack, component: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(stack, component);
    labels.insert(
        "app.kubernetes.io/part-of".to_string(),
        "webtoon".to_string(),
    );
    labels.insert(
        "app.kubernetes.io/managed-by".to_string(),
        MANAGER.to_string(),
    );
    labels
}

/// A label selector matching the pods of one component.
pub fn selector(stack: &ValidatedStack, component: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(stack, component)),
        ..Default::default()
    }
}

/// The controller owner reference to the stack, when the stack has a UID.
pub fn owner_reference(stack: &ValidatedStack) -> Option<OwnerReference> {
    stack.uid.as_ref().map(|uid| OwnerReference {
        api_version: "webtoon.io/v1alpha1".to_string(),
        kind: "WebtoonStack".to_string(),
        name: stack.name.clone(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// Whether a child holds data that `deletionPolicy: Retain` keeps after the stack is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    /// Deleted with the stack (garbage collected through the owner reference).
    WithStack,
    /// Data: owned by the stack only under `deletionPolicy: Delete`.
    Data,
}

/// Metadata of a namespaced child: name, namespace, labels and owner reference.
pub fn object_meta(
    stack: &ValidatedStack,
    name: String,
    component: &str,
    lifetime: Lifetime,
) -> ObjectMeta {
    let owned = match lifetime {
        Lifetime::WithStack => true,
        Lifetime::Data => stack.spec.deletion_policy == crate::api::DeletionPolicy::Delete,
    };
    ObjectMeta {
        name: Some(name),
        namespace: Some(stack.namespace.clone()),
        labels: Some(labels(stack, component)),
        owner_references: owner_reference(stack).filter(|_| owned).map(|o| vec![o]),
        ..Default::default()
    }
}

/// Hex SHA-256 of a text: pod annotations carry it so a changed config rolls pods.
pub fn checksum(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
