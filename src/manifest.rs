//! Reading `WebtoonStack` manifests from files and writing rendered children as
//! multi-document YAML, for the `render` and `validate` commands.

use crate::api::validation::unknown_fields;
use crate::api::{FieldError, ValidatedStack, WebtoonStack, validate};
use crate::render::{Observed, render};
use crate::{Error, Result};

/// Reads every `WebtoonStack` document in `text`; other kinds are skipped.
/// Fields the API does not know are errors, so a misspelt key is never ignored.
pub fn parse_stacks(source_name: &str, text: &str) -> Result<Vec<WebtoonStack>> {
    let parse_error = |message: String| Error::Parse {
        source_name: source_name.to_string(),
        message,
    };
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_str_multiple(text).map_err(|e| parse_error(e.to_string()))?;
    let mut stacks = Vec::new();
    for (index, document) in documents.into_iter().enumerate() {
        if document.is_null()
            || document.get("kind").and_then(|k| k.as_str()) != Some("WebtoonStack")
        {
            continue;
        }
        let api_version = document.get("apiVersion").and_then(|v| v.as_str());
        if api_version != Some("webtoon.io/v1alpha1") {
            return Err(parse_error(format!(
                "document {}: apiVersion is {api_version:?}; write apiVersion: webtoon.io/v1alpha1",
                index + 1
            )));
        }
        let stack: WebtoonStack = serde_path_to_error::deserialize(&document).map_err(|e| {
            let path = e.path().to_string();
            parse_error(format!(
                "document {}: {path}: {}",
                index + 1,
                e.into_inner()
            ))
        })?;
        let typed = serde_json::to_value(&stack).map_err(|e| parse_error(e.to_string()))?;
        let unknown: Vec<FieldError> = unknown_fields(&document, &typed)
            .into_iter()
            .filter(|path| !path.starts_with("metadata.") && !path.starts_with("status"))
            .map(|path| FieldError {
                message: "is not a field of WebtoonStack: check the spelling against `kubectl explain webtoonstack.spec`".to_string(),
                path,
            })
            .collect();
        if !unknown.is_empty() {
            return Err(Error::InvalidSpec(unknown));
        }
        stacks.push(stack);
    }
    if stacks.is_empty() {
        return Err(parse_error(
            "no document of kind WebtoonStack (apiVersion webtoon.io/v1alpha1) found".to_string(),
        ));
    }
    Ok(stacks)
}

/// Validates a stack, turning field errors into [`Error::InvalidSpec`].
pub fn validated(stack: &WebtoonStack) -> Result<ValidatedStack> {
    validate(stack).map_err(Error::InvalidSpec)
}

/// Renders the children of `stack` as multi-document YAML, in apply order.
pub fn render_yaml(stack: &ValidatedStack, observed: &Observed) -> Result<String> {
    let mut out = String::new();
    for document in render(stack, observed).to_documents()? {
        let yaml = serde_saphyr::to_string(&document).map_err(|e| Error::Serialize {
            what: "rendered object".to_string(),
            message: e.to_string(),
        })?;
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}
