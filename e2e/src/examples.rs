//! The stacks users start from: every `examples/*.yaml`, and the variants the offline
//! tests render (tests/common/variants.rs, shared rather than copied).

use std::path::{Path, PathBuf};

use serde_json::Value;
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::manifest::{parse_stacks, validated};

#[path = "../../tests/common/variants.rs"]
mod variants;

pub use variants::VARIANTS;

/// The repository root, where `examples/` lives.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("the e2e crate lives inside the repository"))
}

/// Every `examples/*.yaml`, sorted.
pub fn example_files() -> Vec<PathBuf> {
    let dir = repository_root().join("examples");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no example", dir.display());
    files
}

/// The documents of a YAML stream as JSON values, exactly as written.
pub fn documents(source: &str, text: &str) -> Vec<Value> {
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(text)
        .unwrap_or_else(|error| panic!("{source} is not YAML: {error}"));
    documents.into_iter().filter(|d| !d.is_null()).collect()
}

/// (where it comes from, raw WebtoonStack document) for every example and variant.
pub fn stacks() -> Vec<(String, Value)> {
    let mut stacks = Vec::new();
    for file in example_files() {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", file.display()));
        let source = file.display().to_string();
        for document in documents(&source, &text) {
            if document["kind"] == "WebtoonStack" {
                stacks.push((source.clone(), document));
            }
        }
    }
    for (i, yaml) in VARIANTS.iter().enumerate() {
        let source = format!("tests/common/variants.rs VARIANTS[{i}]");
        stacks.extend(
            documents(&source, yaml)
                .into_iter()
                .map(|d| (source.clone(), d)),
        );
    }
    stacks
}

/// Moves a manifest into `namespace`, the scenario's own.
pub fn in_namespace(mut document: Value, namespace: &str) -> Value {
    document["metadata"]["namespace"] = Value::String(namespace.to_string());
    document
}

/// What `webtoon-operator validate` says about one raw WebtoonStack document: the
/// validated stack, or the command's error message.
pub fn validate_document(document: &Value) -> Result<ValidatedStack, String> {
    let text = serde_json::to_string(document).map_err(|e| e.to_string())?;
    let stacks = parse_stacks("generated", &text).map_err(|e| e.to_string())?;
    let [stack] = stacks.as_slice() else {
        return Err(format!("expected one WebtoonStack, found {}", stacks.len()));
    };
    validated(stack).map_err(|e| e.to_string())
}
