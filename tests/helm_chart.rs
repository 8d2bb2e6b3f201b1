//! The Helm chart through the real Helm engine (`helm` built from `helm.sh/helm/v4`):
//! it lints; it renders, with default and non-default values, objects that are valid
//! for the oldest and newest Kubernetes we claim and do what the values say; its
//! values schema refuses misspelt and mistyped values, naming them; and the CRD and
//! RBAC it installs are the generated ones.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::{TempDir, root, venv_tool};
use serde_json::Value;

const CHART: &str = "charts/webtoon-operator";

fn helm() -> PathBuf {
    let path = std::env::var("WEBTOON_HELM").map(PathBuf::from).unwrap_or_else(|_| {
        panic!("WEBTOON_HELM is not set: run the tests with tests/run.sh, or set it to the path `e2e/tools/build.sh helm` prints")
    });
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn run_helm(args: &[&str]) -> Output {
    Command::new(helm())
        .current_dir(root())
        .args(args)
        .output()
        .expect("helm runs")
}

/// `helm template` with `sets`; every document, parsed.
fn template(sets: &[&str]) -> Vec<Value> {
    let mut args = vec!["template", "wto", CHART, "--namespace", "webtoon-system"];
    for set in sets {
        args.extend(["--set", set]);
    }
    let out = run_helm(&args);
    assert!(
        out.status.success(),
        "helm template {sets:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.split("\n---")
        .filter(|d| d.lines().any(|l| l.starts_with("kind:")))
        .map(|d| serde_saphyr::from_str::<Value>(d).unwrap_or_else(|e| panic!("{e}:\n{d}")))
        .collect()
}

/// `value` with every number as a float: Helm writes `3600.0` as `3600`.
fn numbers_as_floats(value: &Value) -> Value {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), numbers_as_floats(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn args(docs: &[Value]) -> Vec<String> {
    let deployment = find(docs, "Deployment")[0];
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

#[test]
fn the_chart_lints() {
    let out = run_helm(&["lint", "--strict", CHART]);
    assert!(
        out.status.success(),
        "helm lint failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn defaults_install_one_operator_with_the_generated_crd_and_cluster_role() {
    let docs = template(&[]);
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
        "Pod",
    ] {
        assert!(kinds.contains(&kind), "{kind} is missing from {kinds:?}");
    }
    assert!(
        find(&docs, "PodDisruptionBudget").is_empty(),
        "one replica needs no budget"
    );
    assert!(find(&docs, "NetworkPolicy").is_empty(), "off by default");
    let args = args(&docs);
    assert!(!args.iter().any(|a| a == "--leader-elect"), "{args:?}");
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "{args:?}"
    );

    let chart: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join(CHART).join("Chart.yaml")).expect("Chart.yaml"),
    )
    .expect("Chart.yaml parses");
    assert_eq!(
        chart["appVersion"],
        env!("CARGO_PKG_VERSION"),
        "the chart's appVersion is the operator's version"
    );
    let deployment = find(&docs, "Deployment")[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["image"],
        format!(
            "ghcr.io/webtoon-operator/webtoon-operator:{}",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");

    // The CRD is the generated one, kept when the release goes.
    let crd = find(&docs, "CustomResourceDefinition")[0];
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let generated = serde_json::to_value(webtoon_operator::api::crd()).expect("the CRD as JSON");
    assert_eq!(
        numbers_as_floats(&crd["spec"]),
        numbers_as_floats(&generated["spec"]),
        "the chart's CRD is the generated one"
    );
    let cluster_role = find(&docs, "ClusterRole")[0];
    let generated =
        serde_json::to_value(webtoon_operator::controller::rbac::cluster_role()).expect("JSON");
    assert_eq!(cluster_role["rules"], generated["rules"]);
}

#[test]
fn non_default_values_do_what_they_say() {
    let digest = format!("sha256:{}", "a".repeat(64));
    let docs = template(&[
        "replicaCount=3",
        "watchNamespace=webtoon",
        &format!("image.digest={digest}"),
        "logFormat=text",
        "extraArgs={--lease-name=ignored-by-test}",
        "crds.enabled=false",
        "networkPolicy.enabled=true",
        "networkPolicy.apiServerCIDRs={10.96.0.1/32,172.18.0.2/32}",
        "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=monitoring",
    ]);
    assert!(find(&docs, "CustomResourceDefinition").is_empty());
    assert!(
        find(&docs, "ClusterRole").is_empty(),
        "a namespaced operator"
    );
    let roles = find(&docs, "Role");
    let watched = roles
        .iter()
        .find(|r| r["metadata"]["namespace"] == "webtoon")
        .expect("a Role in the watched namespace");
    let generated =
        serde_json::to_value(webtoon_operator::controller::rbac::role("webtoon")).expect("JSON");
    assert_eq!(watched["rules"], generated["rules"]);
    let lease = roles
        .iter()
        .find(|r| r["metadata"]["namespace"] == "webtoon-system")
        .expect("the leader-election Role in the release's namespace");
    let generated = serde_json::to_value(webtoon_operator::controller::rbac::leader_election_role(
        "webtoon-system",
    ))
    .expect("JSON");
    assert_eq!(lease["rules"], generated["rules"]);
    assert_eq!(find(&docs, "RoleBinding").len(), 2);

    let args = args(&docs);
    for expected in [
        "--namespace=webtoon",
        "--log-format=text",
        "--leader-elect",
        "--lease-namespace=webtoon-system",
        "--lease-name=wto-webtoon-operator",
        "--lease-name=ignored-by-test",
    ] {
        assert!(
            args.iter().any(|a| a == expected),
            "{expected} is missing from {args:?}"
        );
    }
    let deployment = find(&docs, "Deployment")[0];
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("ghcr.io/webtoon-operator/webtoon-operator@{digest}")
    );
    assert_eq!(find(&docs, "PodDisruptionBudget").len(), 1);
    let policy = find(&docs, "NetworkPolicy")[0];
    assert_eq!(
        policy["spec"]["ingress"][0]["ports"][0]["port"], 8080,
        "metrics are scraped on their port only"
    );
    assert_eq!(
        policy["spec"]["egress"][0]["to"][1]["ipBlock"]["cidr"],
        "172.18.0.2/32"
    );
}

#[test]
fn rendered_objects_are_valid_for_the_oldest_and_newest_kubernetes() {
    let dir = TempDir::new("helm-chart");
    let mut files = Vec::new();
    for (i, sets) in [
        vec![],
        vec![
            "replicaCount=2",
            "watchNamespace=webtoon",
            "networkPolicy.enabled=true",
            "networkPolicy.metricsFrom[0].podSelector.matchLabels.app=prometheus",
        ],
    ]
    .into_iter()
    .enumerate()
    {
        for (j, doc) in template(&sets).into_iter().enumerate() {
            let path = dir.0.join(format!("{i}-{j}.yaml"));
            std::fs::write(&path, serde_json::to_string(&doc).expect("JSON"))
                .expect("the document is written");
            files.push(path);
        }
    }
    for version in ["1.32.0", "1.37.0"] {
        let out = Command::new(venv_tool(
            "WEBTOON_KUBERNETES_VALIDATE",
            "kubernetes-validate",
        ))
        .args(["--strict", "-k", version])
        .args(&files)
        .output()
        .expect("kubernetes-validate runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "kubernetes-validate {version}:\n{text}"
        );
        let passed = text
            .lines()
            .filter(|l| l.contains(" passed for resource "))
            .count();
        assert_eq!(
            passed,
            files.len(),
            "every object was validated against {version}:\n{text}"
        );
    }
}

#[test]
fn the_values_schema_refuses_misspelt_and_mistyped_values_naming_them() {
    for (set, names) in [
        ("replicaCont=2", "replicaCont"),
        ("replicaCount=0", "replicaCount"),
        ("logFormat=xml", "logFormat"),
        ("image.digest=latest", "digest"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("metrics.port=80", "port"),
        ("watchNamespace=Web_Toon", "watchNamespace"),
        ("networkPolicy.apiServerPorts={}", "apiServerPorts"),
        ("crds.enable=true", "enable"),
    ] {
        let out = run_helm(&["template", "wto", CHART, "--set", set]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{set} was accepted");
        assert!(
            stderr.contains("values don't meet the specifications of the schema")
                && stderr.contains(names),
            "{set}: the error does not name {names}:\n{stderr}"
        );
    }
}

#[test]
fn the_chart_files_are_the_generated_crd() {
    let stored = std::fs::read_to_string(
        root()
            .join(CHART)
            .join("files/webtoonstacks.webtoon.io.yaml"),
    )
    .expect("the chart's CRD file is readable");
    let generated = std::fs::read_to_string(root().join("crds/webtoonstacks.webtoon.io.yaml"))
        .expect("crds/ is readable");
    assert!(
        stored == generated,
        "charts/webtoon-operator/files/webtoonstacks.webtoon.io.yaml is out of date: run `cargo run -- crd > charts/webtoon-operator/files/webtoonstacks.webtoon.io.yaml`"
    );
}
