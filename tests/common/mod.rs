//! Fixtures shared by the integration tests.
#![allow(dead_code)]

pub mod api_requests;
pub mod clients;
pub mod dns;
pub mod fake_api;
pub mod hardening;
pub mod http_get;
pub mod metrics;
pub mod migration;
pub mod nginx;
pub mod php_fpm;
pub mod process;
pub mod reachability;
pub mod s3;
pub mod servers;
pub mod stub_api_server;
pub mod test_was;
mod variants;

// Like every fixture here, used by some test crates only.
#[allow(unused_imports)]
pub use variants::VARIANTS;

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::EnvVar;
use webtoon_operator::api::{ValidatedStack, WebtoonStack};
use webtoon_operator::manifest::{parse_stacks, validated};
use webtoon_operator::render::{Children, Credentials};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Passwords as the controller would observe them, each distinct so a test can
/// tell where one ends up.
pub fn test_credentials() -> Credentials {
    Credentials {
        database_root_password: "root-secret-value-0123456789abcdef".to_string(),
        database_password: "app-secret-value-0123456789abcdefg".to_string(),
        database_backup_password: "backup-secret-value-0123456789abcd".to_string(),
        cache_password: "cache-secret-value-0123456789abcde".to_string(),
    }
}

/// A tool from the test venv: `$<env_var>`, or `.venv/bin/<name>`, which
/// tests/run.sh installs.
pub fn venv_tool(env_var: &str, name: &str) -> PathBuf {
    let path = std::env::var(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".venv/bin").join(name));
    assert!(
        path.exists(),
        "{} is missing: tests/run.sh installs it into .venv",
        path.display()
    );
    path
}

/// The text under `key` in the rendered ConfigMap `config_map`.
pub fn config_file(children: &Children, config_map: &str, key: &str) -> String {
    children
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(config_map))
        .and_then(|c| c.data.as_ref())
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("{config_map} holds {key}"))
        .clone()
}

/// A rendered container environment as (name, value): Secret references resolved
/// from `secrets` (a key it lacks fails the test: the container was not meant to get
/// it), then `overrides` applied.
pub fn resolved_env(
    env: &[EnvVar],
    secrets: &[(&str, &str)],
    overrides: &[(&str, String)],
) -> Vec<(String, String)> {
    env.iter()
        .map(|e| {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => v.clone(),
                (None, Some(from)) => {
                    let key = &from.secret_key_ref.as_ref().expect("secret ref").key;
                    secrets
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.to_string())
                        .unwrap_or_else(|| panic!("the container gets {key}"))
                }
                _ => String::new(),
            };
            let value = overrides
                .iter()
                .find(|(k, _)| *k == e.name)
                .map_or(value, |(_, v)| v.clone());
            (e.name.clone(), value)
        })
        .collect()
}

/// A JSON-schema validator for the generated CRD's structural schema: what the API
/// server checks before any CEL rule runs.
pub fn crd_schema_validator() -> jsonschema::Validator {
    let crd = webtoon_operator::api::crd();
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("the CRD has a schema"),
    )
    .expect("the schema serializes");
    jsonschema::validator_for(&schema).expect("the CRD schema is a JSON schema")
}

/// Every file in `examples/` ending in `.yaml`, sorted.
pub fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .expect("examples/ is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "examples/ holds the three documented examples"
    );
    files
}

/// The stacks of one manifest file.
pub fn stacks_in(path: &Path) -> Vec<WebtoonStack> {
    let text = std::fs::read_to_string(path).expect("example is readable");
    parse_stacks(&path.display().to_string(), &text).expect("example parses")
}

/// A validated stack from inline YAML.
pub fn stack_from_yaml(yaml: &str) -> ValidatedStack {
    let stacks = parse_stacks("inline", yaml).expect("fixture parses");
    validated(&stacks[0]).expect("fixture is valid")
}

/// A fresh temporary directory under the target directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `target/test-tmp/<name>-<pid>`.
    pub fn new(name: &str) -> Self {
        let dir = root()
            .join("target/test-tmp")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
