//! checkov, the infrastructure-as-code scanner, over the rendered manifests of every
//! example: every check passes but those listed in `tests/checkov_skips.yaml`, each
//! with its reason, and each of those still fails (a skip that no longer applies
//! must go).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::{TempDir, example_files, root, stacks_in, venv_tool};
use webtoon_operator::manifest::{render_yaml, validated};
use webtoon_operator::render::Observed;

#[derive(serde::Deserialize)]
struct Skip {
    id: String,
    name: String,
    reason: String,
}

#[test]
fn rendered_manifests_pass_every_checkov_check_but_the_reasoned_skips() {
    let skips: Vec<Skip> = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("tests/checkov_skips.yaml")).expect("skips file"),
    )
    .expect("skips parse");
    for skip in &skips {
        assert!(
            skip.reason.split_whitespace().count() >= 10,
            "{} needs its reason written out",
            skip.id
        );
    }
    let skipped: BTreeMap<&str, &str> = skips
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str()))
        .collect();

    let dir = TempDir::new("checkov");
    for file in example_files() {
        let mut yaml = String::new();
        for stack in stacks_in(&file) {
            let stack = validated(&stack).expect("example is valid");
            yaml.push_str(&render_yaml(&stack, &Observed::default()).expect("render"));
        }
        let name = file.file_name().expect("file name");
        std::fs::write(dir.0.join(name), yaml).expect("write manifests");
    }
    let output = Command::new(venv_tool("WEBTOON_CHECKOV", "checkov"))
        .args([
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "-o",
            "json",
        ])
        .arg("-d")
        .arg(&dir.0)
        .output()
        .expect("run checkov");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let summary = &report["summary"];
    assert_eq!(summary["parsing_errors"], 0, "{summary}");
    let resources = summary["resource_count"].as_u64().unwrap_or_default();
    let passed = summary["passed"].as_u64().unwrap_or_default();
    assert!(
        resources >= 40,
        "checkov saw every rendered object: {summary}"
    );
    assert!(passed >= 500, "checkov ran its checks: {summary}");

    let failed = report["results"]["failed_checks"]
        .as_array()
        .expect("failed checks");
    let mut unexpected = Vec::new();
    let mut failing_ids = BTreeSet::new();
    for check in failed {
        let id = check["check_id"].as_str().unwrap_or_default();
        failing_ids.insert(id.to_string());
        if !skipped.contains_key(id) {
            unexpected.push(format!(
                "{id} {} on {} in {}",
                check["check_name"].as_str().unwrap_or_default(),
                check["resource"].as_str().unwrap_or_default(),
                check["file_path"].as_str().unwrap_or_default()
            ));
        }
    }
    assert!(
        unexpected.is_empty(),
        "checks failed without a reasoned skip:\n{}",
        unexpected.join("\n")
    );
    let stale: Vec<&&str> = skipped
        .keys()
        .filter(|id| !failing_ids.contains(**id))
        .collect();
    assert!(stale.is_empty(), "skips that no longer fail: {stale:?}");
    eprintln!(
        "checkov: {passed} passed, 0 failed, {} skipped with reasons ({} checks), over {resources} objects",
        failed.len(),
        skipped.len()
    );
}
