//! The `helm` command that `$WEBTOON_HELM` names (built from `helm.sh/helm/v4` by
//! `e2e/tools/build.sh helm`), run against `$KUBECONFIG`.

use std::path::PathBuf;

use tokio::process::Command;

/// Environment variable naming the helm binary.
pub const HELM_ENV: &str = "WEBTOON_HELM";

/// The operator's chart in this repository.
pub fn chart() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/webtoon-operator")
}

/// Runs `helm ARGS`; panics with its output when it fails. Returns its standard output.
pub async fn helm(args: &[&str]) -> String {
    let binary = std::env::var(HELM_ENV).unwrap_or_else(|_| {
        panic!("set {HELM_ENV} to the helm binary: `e2e/tools/build.sh helm` prints its path")
    });
    let out = Command::new(&binary)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The documents of a YAML stream, parsed.
pub fn documents(yaml: &str) -> Vec<serde_json::Value> {
    yaml.split("\n---")
        .filter(|d| d.lines().any(|l| l.starts_with("kind:")))
        .map(|d| serde_saphyr::from_str(d).unwrap_or_else(|e| panic!("{e}:\n{d}")))
        .collect()
}
