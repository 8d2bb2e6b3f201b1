//! Schema layer: every object rendered from every example (and from variants that
//! switch on the optional parts, and from a stack whose migration's Jobs exist) is
//! valid Kubernetes for the oldest (1.32) and the newest version
//! `kubernetes-validate` knows, in strict mode; the generated CRD is a valid CRD.
//! Every example also validates against the CRD's own schema. PodMonitors, which
//! kubernetes-validate has no schema for, validate against the Prometheus Operator's
//! own CRD.

mod common;

use std::process::Command;

use common::migration::{MIGRATION_STACK, migrating};
use common::{
    TempDir, VARIANTS, example_files, root, stack_from_yaml, stacks_in, test_credentials, venv_tool,
};
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::manifest::{render_yaml, validated};
use webtoon_operator::render::Observed;
use webtoon_operator::render::database::backup_cronjob::pre_migration_backup_job_name;
use webtoon_operator::render::was::migration_job_name;

const OLDEST: &str = "1.32.0";
const NEWEST: &str = "1.37.0";

fn observed() -> Observed {
    Observed {
        credentials: Some(test_credentials()),
        now: "2026-12-01T12:00:00+09:00".parse().ok(),
        ..Default::default()
    }
}

/// The Jobs of the migration `observed` records, as kubernetes-validate names them.
fn job_resources(stack: &ValidatedStack, observed: &Observed) -> Vec<String> {
    let Some(migration) = &observed.migration else {
        return Vec::new();
    };
    let mut jobs = Vec::new();
    if stack.spec.database.backup.is_some() && migration.backup.is_some() {
        jobs.push(format!(
            "job/{}",
            pre_migration_backup_job_name(stack, &migration.image)
        ));
    }
    if migration.migrate {
        jobs.push(format!(
            "job/{}",
            migration_job_name(stack, &migration.image)
        ));
    }
    jobs
}

/// The PodMonitors of a rendered multi-document YAML, and the other documents.
fn split_pod_monitors(yaml: &str) -> (Vec<serde_json::Value>, String) {
    let mut monitors = Vec::new();
    let mut rest = String::new();
    // render_yaml starts every document with a `---` line.
    for document in yaml.split("---\n").filter(|d| !d.trim().is_empty()) {
        let value: serde_json::Value = serde_saphyr::from_str(document).expect("rendered YAML");
        if value["kind"] == "PodMonitor" {
            monitors.push(value);
        } else {
            rest.push_str("---\n");
            rest.push_str(document);
        }
    }
    (monitors, rest)
}

/// A JSON-schema validator for the Prometheus Operator's PodMonitor CRD (v1).
fn pod_monitor_validator() -> jsonschema::Validator {
    let dir = std::env::var("WEBTOON_MONITORING_CRDS")
        .expect("WEBTOON_MONITORING_CRDS names the Prometheus Operator's CRDs: run e2e/tools/monitoring-crds.sh");
    let text = std::fs::read_to_string(
        std::path::Path::new(&dir).join("monitoring.coreos.com_podmonitors.yaml"),
    )
    .expect("the PodMonitor CRD is readable");
    let crd: serde_json::Value = serde_saphyr::from_str(&text).expect("the CRD is YAML");
    let schema = crd["spec"]["versions"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "v1"))
        .map(|v| v["schema"]["openAPIV3Schema"].clone())
        .expect("the CRD has a v1 schema");
    jsonschema::validator_for(&schema).expect("the PodMonitor schema is a JSON schema")
}

#[test]
fn rendered_objects_are_valid_kubernetes_for_oldest_and_newest_versions() {
    let dir = TempDir::new("schema-layer");
    let mut files = Vec::new();
    let mut stacks = Vec::new();
    for file in example_files() {
        for stack in stacks_in(&file) {
            stacks.push(validated(&stack).expect("example is valid"));
        }
    }
    for yaml in VARIANTS {
        stacks.push(stack_from_yaml(yaml));
    }
    stacks.push(stack_from_yaml(MIGRATION_STACK));
    let mut jobs = Vec::new();
    let mut pod_monitors = Vec::new();
    for stack in &stacks {
        for (suffix, observed) in [
            ("offline", Observed::default()),
            ("observed", observed()),
            (
                "migrating",
                Observed {
                    now: observed().now,
                    ..migrating(stack)
                },
            ),
        ] {
            let path = dir.0.join(format!("{}-{suffix}.yaml", stack.name));
            let rendered = render_yaml(stack, &observed).expect("render");
            let (monitors, yaml) = split_pod_monitors(&rendered);
            pod_monitors.extend(monitors);
            if stack.spec.was.migration.is_some() {
                for job in job_resources(stack, &observed) {
                    let name = job.trim_start_matches("job/");
                    assert!(name.len() <= 63, "{name} is a valid Job name");
                    assert!(yaml.contains(&format!("name: {name}\n")), "{name} rendered");
                    jobs.push(job);
                }
            }
            std::fs::write(&path, yaml).expect("write");
            files.push(path);
        }
    }
    assert!(jobs.len() >= 2, "a migration's Jobs are rendered");
    assert!(
        !pod_monitors.is_empty(),
        "a stack with monitoring has a PodMonitor"
    );
    let validator = pod_monitor_validator();
    for monitor in &pod_monitors {
        let errors: Vec<String> = validator
            .iter_errors(monitor)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "PodMonitor {monitor}: {errors:#?}");
    }
    files.push(root().join("crds/webtoonstacks.webtoon.io.yaml"));

    for version in [OLDEST, NEWEST] {
        let out = Command::new(venv_tool(
            "WEBTOON_KUBERNETES_VALIDATE",
            "kubernetes-validate",
        ))
        .args(["--strict", "-k", version])
        .args(&files)
        .output()
        .expect("kubernetes-validate runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kubernetes-validate {version} failed:\n{stdout}\n{stderr}"
        );
        let passed = stdout
            .lines()
            .chain(stderr.lines())
            .filter(|l| l.contains(" passed for resource "))
            .count();
        // Every rendered object and the CRD were checked, none skipped for lack of a schema.
        assert!(
            passed >= stacks.len() * 8,
            "only {passed} objects validated against {version}"
        );
        assert!(
            !stdout.contains("Couldn't find schema") && !stderr.contains("Couldn't find schema"),
            "an object had no schema in {version}:\n{stderr}"
        );
        for resource in [
            "customresourcedefinition/webtoonstacks.webtoon.io",
            "cronjob/megatoon-database-backup",
            "persistentvolumeclaim/megatoon-database-backup",
            "persistentvolumeclaim/phptoon-database-backup",
        ]
        .into_iter()
        .chain(jobs.iter().map(String::as_str))
        {
            assert!(
                stdout.contains(resource) || stderr.contains(resource),
                "{resource} was not validated against {version}"
            );
        }
    }
}

#[test]
fn the_validator_rejects_an_invalid_object() {
    // Guards the layer itself: a wrong field must fail, or the test above proves nothing.
    let dir = TempDir::new("schema-negative");
    let path = dir.0.join("bad.yaml");
    std::fs::write(
        &path,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two, selector: {}, template: {}}\n",
    )
    .expect("write");
    let out = Command::new(venv_tool(
        "WEBTOON_KUBERNETES_VALIDATE",
        "kubernetes-validate",
    ))
    .args(["--strict", "-k", OLDEST])
    .arg(&path)
    .output()
    .expect("kubernetes-validate runs");
    assert!(!out.status.success());
}

#[test]
fn every_example_validates_against_the_crd_schema() {
    let validator = common::crd_schema_validator();
    for file in example_files() {
        let text = std::fs::read_to_string(&file).expect("read");
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_str_multiple(&text).expect("yaml");
        for document in documents.iter().filter(|d| d["kind"] == "WebtoonStack") {
            let errors: Vec<String> = validator
                .iter_errors(document)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        }
    }
    let bad = serde_json::json!({
        "apiVersion": "webtoon.io/v1alpha1", "kind": "WebtoonStack",
        "metadata": {"name": "x"},
        "spec": {"hosts": ["a.example; include /etc/passwd"], "was": {"image": "x:1"}}
    });
    assert!(
        !validator.is_valid(&bad),
        "the host pattern is in the CRD schema"
    );
}
