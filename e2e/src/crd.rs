//! The WebtoonStack CRD, installed once per cluster and shared by every scenario.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::wait::conditions;
use kube::{Api, Client};
use serde_json::Value;
use webtoon_operator::api::WebtoonStack;

/// The field manager of every write the suite makes.
pub const FIELD_MANAGER: &str = "webtoon-e2e";

/// How long a single API request may take before the scenario fails.
pub const API_TIMEOUT: Duration = Duration::from_secs(30);

/// Applies the CRD that `webtoon-operator crd` prints with server-side apply and
/// waits until it is Established. Idempotent, so every scenario calls it first.
///
/// The API server compiles every CEL rule and checks its cost budget on apply; when
/// one fails, the panic names the rule and its message, not only a schema path.
pub async fn ensure_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = webtoon_operator::api::crd();
    let name = crd
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| panic!("the generated CRD has no name"));
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match tokio::time::timeout(API_TIMEOUT, crds.patch(&name, &params, &Patch::Apply(&crd))).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => panic!("{}", rejection(&crd, &crate::dry_run::error_text(&error))),
        Err(_) => panic!("applying CRD {name}: no answer within {API_TIMEOUT:?}"),
    }
    established(&crds, &name).await;
}

/// Waits until the CRD `name` is Established.
async fn established(crds: &Api<CustomResourceDefinition>, name: &str) {
    crate::wait::until(
        crds,
        name,
        Duration::from_secs(60),
        conditions::is_crd_established(),
    )
    .await;
}

/// A dynamic API for WebtoonStacks in `namespace`, to send objects exactly as a user
/// writes them: the typed struct would fill in every serde default first.
pub fn stacks(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<WebtoonStack>(&()),
    )
}

/// Every CEL rule of `crd` with the field path the API server uses for it in
/// validation errors (`properties[spec].properties[was].x-kubernetes-validations[0]`),
/// its expression and its message.
pub fn rules_with_server_paths(crd: &CustomResourceDefinition) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for version in &crd.spec.versions {
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .and_then(|s| serde_json::to_value(s).ok());
        if let Some(schema) = schema {
            collect(&schema, "openAPIV3Schema", &mut found);
        }
    }
    found
}

fn collect(node: &Value, path: &str, found: &mut Vec<(String, String, String)>) {
    for (i, rule) in node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        found.push((
            format!("{path}.x-kubernetes-validations[{i}]"),
            rule["rule"].as_str().unwrap_or_default().to_string(),
            rule["message"].as_str().unwrap_or_default().to_string(),
        ));
    }
    for (name, child) in node["properties"].as_object().into_iter().flatten() {
        collect(child, &format!("{path}.properties[{name}]"), found);
    }
    if node.get("items").is_some() {
        collect(&node["items"], &format!("{path}.items"), found);
    }
}

/// Why the API server refused the CRD, with each rule it names spelt out.
pub fn rejection(crd: &CustomResourceDefinition, error: &str) -> String {
    let named: Vec<String> = rules_with_server_paths(crd)
        .into_iter()
        // The path ends in `[i]`, so `[1]` never matches `[10]`.
        .filter(|(path, _, _)| error.contains(path.as_str()))
        .map(|(path, rule, message)| {
            format!("  - rule at {path}\n      rule: {rule}\n      message: {message}")
        })
        .collect();
    if named.is_empty() {
        format!("the API server refused the WebtoonStack CRD: {error}")
    } else {
        format!(
            "the API server refused the WebtoonStack CRD because of these CEL rules (they do not compile, or exceed the cost budget):\n{}\nserver said: {error}",
            named.join("\n")
        )
    }
}

/// Environment variable naming the directory of the Prometheus Operator's CRDs
/// (`e2e/tools/monitoring-crds.sh` prints it).
pub const MONITORING_CRDS_ENV: &str = "WEBTOON_MONITORING_CRDS";

/// Installs the Prometheus Operator's ServiceMonitor, PodMonitor and PrometheusRule
/// CRDs and waits until they are Established. Idempotent; once installed they stay
/// for the whole cluster, as they would where the Prometheus Operator runs.
pub async fn ensure_monitoring_crds(client: &Client) {
    let dir = std::env::var(MONITORING_CRDS_ENV).unwrap_or_else(|_| {
        panic!("set {MONITORING_CRDS_ENV}: `e2e/tools/monitoring-crds.sh` prints it")
    });
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for kind in ["servicemonitors", "podmonitors", "prometheusrules"] {
        let path = format!("{dir}/monitoring.coreos.com_{kind}.yaml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path} is unreadable: {e}"));
        let mut crd: CustomResourceDefinition =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        crd.metadata.annotations = None;
        let name = format!("{kind}.monitoring.coreos.com");
        crds.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot install the CRD {name}: {e}"));
        established(&crds, &name).await;
    }
}
