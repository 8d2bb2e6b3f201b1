//! The `WebtoonStack` API: spec and status types, the generated CRD, and the
//! validation that both `validate` and the controller run.

pub mod cron;
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
            adapt_for_api_server(schema);
        }
    }
    crd
}

/// Moves defaults into descriptions (see [`crd`]) and names integer formats as the
/// API server knows them: it warns on every apply of a CRD with a format it does not
/// recognise, such as schemars' `uint32` for a `u32`.
fn adapt_for_api_server(schema: &mut JSONSchemaProps) {
    schema.format = match schema.format.take().as_deref() {
        Some("uint8" | "uint16" | "int8" | "int16") => Some("int32".to_string()),
        Some("uint32" | "uint64" | "uint") => Some("int64".to_string()),
        other => other.map(str::to_string),
    };
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
        adapt_for_api_server(child);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) = schema.items.as_mut() {
        adapt_for_api_server(items);
    }
    if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(extra)) = schema.additional_properties.as_mut() {
        adapt_for_api_server(extra);
    }
}

/// The CRD as YAML, exactly as `crds/webtoonstacks.webtoon.io.yaml` holds it.
pub fn crd_yaml() -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(&crd())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formats(schema: &JSONSchemaProps, found: &mut Vec<String>) {
        found.extend(schema.format.clone());
        for child in schema.properties.iter().flat_map(|p| p.values()) {
            formats(child, found);
        }
        if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
            formats(items, found);
        }
        if let Some(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(extra)) = &schema.additional_properties {
            formats(extra, found);
        }
    }

    #[test]
    fn every_format_in_the_crd_is_one_the_api_server_knows() {
        // The formats kube-apiserver's CRD validation recognises without a warning
        // (k8s.io/apiextensions-apiserver, supportedFormats) that a Rust type can yield.
        let known = [
            "int32",
            "int64",
            "float",
            "double",
            "byte",
            "date",
            "date-time",
            "duration",
            "password",
        ];
        let mut found = Vec::new();
        for version in crd().spec.versions {
            if let Some(schema) = version.schema.and_then(|s| s.open_api_v3_schema) {
                formats(&schema, &mut found);
            }
        }
        let unknown: Vec<_> = found
            .iter()
            .filter(|f| !known.contains(&f.as_str()))
            .collect();
        assert!(
            unknown.is_empty(),
            "formats the API server warns about: {unknown:?}"
        );
        assert!(
            found.iter().any(|f| f == "int64"),
            "the u32 fields keep an integer format"
        );
    }
}
