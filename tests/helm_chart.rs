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

fn promtool() -> PathBuf {
    let path = std::env::var("WEBTOON_PROMTOOL").map(PathBuf::from).unwrap_or_else(|_| {
        panic!("WEBTOON_PROMTOOL is not set: run the tests with tests/run.sh, or set it to the path `e2e/tools/build.sh prometheus` prints")
    });
    assert!(path.exists(), "{} is missing", path.display());
    path
}

fn run_promtool(args: &[&str]) -> String {
    let out = Command::new(promtool())
        .current_dir(root())
        .args(args)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
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

fn chart_file(name: &str) -> String {
    std::fs::read_to_string(root().join(CHART).join("files").join(name))
        .unwrap_or_else(|e| panic!("{name} is unreadable: {e}"))
}

/// The anchor GitHub gives a Markdown heading: lower case, spaces to `-`, punctuation
/// other than `-` and `_` dropped.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn github_anchors_follow_githubs_rules() {
    assert_eq!(
        github_anchor("WebtoonProxyErrorRatio"),
        "webtoonproxyerrorratio"
    );
    assert_eq!(
        github_anchor("Releases: automatic rollback and migrations that run once"),
        "releases-automatic-rollback-and-migrations-that-run-once"
    );
    assert_eq!(
        github_anchor("GitOps health: Argo CD, Flux and kubectl"),
        "gitops-health-argo-cd-flux-and-kubectl"
    );
}

#[test]
fn every_alert_passes_promtool_with_a_firing_and_a_silent_test() {
    let checked = run_promtool(&[
        "check",
        "rules",
        "charts/webtoon-operator/files/alerts.yaml",
    ]);
    assert!(checked.contains("SUCCESS"), "{checked}");
    let tested = run_promtool(&["test", "rules", "tests/prometheus/alerts_test.yaml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    let rules: Value = serde_saphyr::from_str(&chart_file("alerts.yaml")).expect("alerts parse");
    let tests: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("tests/prometheus/alerts_test.yaml"))
            .expect("the alert tests are readable"),
    )
    .expect("the alert tests parse");
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
        .collect();
    let alerts: Vec<&str> = rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter_map(|r| r["alert"].as_str())
        .collect();
    assert_eq!(
        alerts.len(),
        12,
        "operator down, reconcile errors, not Ready, backup failed and stale, a failed release; \
         proxy errors and no healthy upstream, database connections, cache evictions, \
         tiers below their replicas, an exporter down"
    );
    for alert in alerts {
        let of_alert = cases.iter().filter(|c| c["alertname"] == alert);
        let (firing, silent): (Vec<&&Value>, Vec<&&Value>) =
            of_alert.partition(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()));
        assert!(
            !firing.is_empty() && !silent.is_empty(),
            "{alert} needs a firing and a silent test"
        );
    }

    // Every alert links its runbook: a heading of README.md, by GitHub's anchor rules.
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md is readable");
    let mut in_code = false;
    let anchors: Vec<String> = readme
        .lines()
        .filter(|l| {
            if l.starts_with("```") {
                in_code = !in_code;
            }
            !in_code && l.starts_with('#')
        })
        .filter_map(|l| l.trim_start_matches('#').strip_prefix(' '))
        .map(github_anchor)
        .collect();
    for rule in rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .filter(|r| r["alert"].is_string())
    {
        let alert = rule["alert"].as_str().unwrap_or_default();
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{alert} has no runbook_url annotation"));
        let anchor = url
            .strip_prefix(
                "https://github.com/webtoon-operator/webtoon-operator/blob/main/README.md#",
            )
            .unwrap_or_else(|| panic!("{alert}: {url} is not a heading of README.md"));
        assert!(
            anchors.iter().any(|a| a == anchor),
            "{alert}: README.md has no heading with the anchor #{anchor}"
        );
    }

    // The chart's PrometheusRule carries exactly these groups.
    let docs = template(&["prometheusRule.enabled=true"]);
    let rule = find(&docs, "PrometheusRule")[0];
    assert_eq!(rule["spec"]["groups"], rules["groups"]);
}

#[test]
fn every_dashboard_query_parses() {
    let dashboard: Value =
        serde_json::from_str(&chart_file("dashboard.json")).expect("the dashboard is JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str())
        .collect();
    assert!(exprs.len() >= 34, "{exprs:?}");
    // promtool parses PromQL in rule files: each query becomes a recording rule.
    let rules = serde_json::json!({"groups": [{
        "name": "dashboard",
        "rules": exprs.iter().enumerate().map(|(i, e)| serde_json::json!({
            "record": format!("webtoon:dashboard:query{i}"),
            "expr": e,
        })).collect::<Vec<_>>(),
    }]});
    let dir = TempDir::new("dashboard-queries");
    let path = dir.0.join("queries.yaml");
    std::fs::write(&path, rules.to_string()).expect("the queries are written");
    let checked = run_promtool(&["check", "rules", &path.to_string_lossy()]);
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{checked}"
    );
    let docs = template(&["grafanaDashboard.enabled=true"]);
    let config_map = find(&docs, "ConfigMap")[0];
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value = serde_json::from_str(
        config_map["data"]["webtoon-operator.json"]
            .as_str()
            .expect("the dashboard is in the ConfigMap"),
    )
    .expect("the shipped dashboard is JSON");
    assert_eq!(shipped, dashboard);
}

#[test]
fn the_stack_row_filters_every_query_by_the_chosen_namespace_and_stack() {
    let dashboard: Value =
        serde_json::from_str(&chart_file("dashboard.json")).expect("the dashboard is JSON");
    let variables: Vec<&Value> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .collect();
    for name in ["namespace", "stack"] {
        let variable = variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"));
        assert!(
            variable["definition"].as_str().is_some_and(
                |q| q.starts_with("label_values(") && q.ends_with(&format!(", {name})"))
            ),
            "{variable}"
        );
    }
    let panels = dashboard["panels"].as_array().expect("panels");
    let row = panels
        .iter()
        .position(|p| p["type"] == "row")
        .expect("a row of per-stack panels");
    let stack_panels = &panels[row + 1..];
    assert!(stack_panels.len() >= 13, "{stack_panels:?}");
    for panel in stack_panels {
        assert_ne!(panel["type"], "row", "one per-stack row");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{panel}");
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            assert!(
                expr.contains(r#"{namespace="$namespace", stack="$stack""#),
                "{} does not select the chosen stack: {expr}",
                panel["title"]
            );
            assert!(!expr.contains("$__"), "Grafana-only interval: {expr}");
        }
    }
}

#[test]
fn a_service_monitor_or_a_pod_monitor_scrapes_the_metrics_port_but_not_both() {
    let docs = template(&["serviceMonitor.enabled=true"]);
    let monitor = find(&docs, "ServiceMonitor")[0];
    let service = find(&docs, "Service")[0];
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"],
        service["metadata"]["labels"]["app.kubernetes.io/instance"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    // The operator's gauges carry their stacks' own `namespace` and `stack` labels:
    // without honorLabels Prometheus renames them `exported_namespace`, and the
    // dashboard's and alerts' `by (namespace, stack)` find nothing.
    assert_eq!(monitor["spec"]["endpoints"][0]["honorLabels"], true);
    assert!(find(&docs, "PodMonitor").is_empty());
    let docs = template(&["podMonitor.enabled=true"]);
    let endpoint = &find(&docs, "PodMonitor")[0]["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["port"], "metrics");
    assert_eq!(endpoint["honorLabels"], true);
    let out = run_helm(&[
        "template",
        "wto",
        CHART,
        "--set",
        "serviceMonitor.enabled=true",
        "--set",
        "podMonitor.enabled=true",
    ]);
    assert!(!out.status.success(), "both monitors were accepted");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("enable one of them"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
