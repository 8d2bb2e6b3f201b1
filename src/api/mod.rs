//! The `WebtoonStack` API: spec and status types, the generated CRD, and the
//! validation that both `validate` and the controller run.

pub mod patterns;
pub mod quantity;
mod spec;
mod status;
pub mod validation;

pub use spec::*;
pub use status::*;
pub use validation::{FieldError, ValidatedStack, validate};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;

/// The CustomResourceDefinition generated from the Rust types.
///
/// Defaults live in the operator, not in the schema: a default stored into every
/// object by the API server would pin that object to the default of the operator
/// version that created it (an image tag, say) across upgrades, and would show up
/// as drift in GitOps diffs. Each default is named in its field's description instead.
pub fn crd() -> CustomResourceDefinition {
    let mut crd = WebtoonStack::crd();
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            move_defaults_to_descriptions(schema);
        }
    }
    crd
}

fn move_defaults_to_descriptions(schema: &mut JSONSchemaProps) {
    if let Some(default) = schema.default.take() {
        let shown = match &default.0 {
            serde_json::Value::Object(_) => None,
            serde_json::Value::String(s) => Some(format!("`{s}`")),
            other => Some(format!("`{other}`")),
        };
        if let Some(shown) = shown {
            let description = schema.description.take().unwrap_or_default();
            schema.description = Some(
                format!("{description}\nDefault: {shown}.")
                    .trim()
                    .to_string(),
            );
        }
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        move_defaults_to_descriptions(child);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        move_defaults_to_descriptions(items);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
        move_defaults_to_descriptions(extra);
    }
}

/// The CRD as YAML, exactly as `crds/webtoonstacks.webtoon.io.yaml` holds it.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(&crd())
}
