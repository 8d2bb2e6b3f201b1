//! The chart installed with `helm` into a fresh namespace: it creates the operator's
//! account, role and Deployment; the operator, run with the chart's ServiceAccount and
//! the chart's own arguments, reconciles a stack to Ready; `helm upgrade` changes the
//! Deployment's arguments; `helm uninstall` removes the chart's objects and leaves the
//! stack and its data. The CRD's own lifecycle through the chart is `helm_crd.rs`.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ServiceAccount};
use k8s_openapi::api::rbac::v1::Role;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::helm::{chart, documents, helm};
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, SERVICE_ACCOUNT, Scope};
use webtoon_e2e::stack;
use webtoon_operator::api::WebtoonStack;

const LIMIT: Duration = Duration::from_secs(300);
const RELEASE: &str = "wto";

/// The `run` arguments of the chart's Deployment as installed, without `run` itself
/// and the listen address, which the fixture chooses.
async fn chart_arguments(namespace: &str) -> Vec<String> {
    let manifest = helm(&["get", "manifest", RELEASE, "--namespace", namespace]).await;
    let docs = documents(&manifest);
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the release has a Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("the operator has arguments")
        .iter()
        .filter_map(|a| a.as_str())
        .filter(|a| *a != "run" && !a.starts_with("--metrics-address"))
        .map(str::to_string)
        .collect()
}

async fn installed_operator_reconciles(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let chart = chart();
    let chart = chart.to_string_lossy();
    let values = [
        "--set",
        &format!("watchNamespace={namespace}"),
        "--set",
        &format!("serviceAccount.name={SERVICE_ACCOUNT}"),
        // The suite's scenarios share one CRD; the chart's own lifecycle of it is
        // proven on a cluster of its own.
        "--set",
        "crds.enabled=false",
        // The chart's own pod must never run beside the process under test: two
        // controllers of one stack would race. An unreachable image keeps it pending.
        "--set",
        "image.repository=registry.invalid/webtoon-operator",
    ];
    let mut install = vec!["install", RELEASE, &chart, "--namespace", &namespace];
    install.extend(values);
    helm(&install).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
    assert!(
        accounts
            .get_opt(SERVICE_ACCOUNT)
            .await
            .expect("read")
            .is_some()
    );
    let roles: Api<Role> = Api::namespaced(client.clone(), &namespace);
    assert!(
        roles
            .get_opt("wto-webtoon-operator")
            .await
            .expect("read")
            .is_some(),
        "a namespaced operator gets the generated Role"
    );

    let args = chart_arguments(&namespace).await;
    assert!(
        args.contains(&format!("--namespace={namespace}")),
        "{args:?}"
    );
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut operator = Operator::start_with(&client, &namespace, Scope::Chart, &arg_refs).await;
    let ready = stack::deploy(&client, stack::example("minimal", &namespace)).await;
    let name = ready.name_any();
    operator.assert_no_forbidden();
    operator.kill().await;

    let mut upgrade = vec!["upgrade", RELEASE, &chart, "--namespace", &namespace];
    upgrade.extend(values);
    upgrade.extend(["--set", "logFormat=text"]);
    helm(&upgrade).await;
    assert!(
        chart_arguments(&namespace)
            .await
            .contains(&"--log-format=text".to_string()),
        "the upgrade changed the operator's arguments"
    );

    helm(&["uninstall", RELEASE, "--namespace", &namespace, "--wait"]).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    assert!(
        deployments
            .get_opt("wto-webtoon-operator")
            .await
            .expect("read")
            .is_none(),
        "the chart's Deployment is gone"
    );
    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);
    assert!(
        stacks.get_opt(&name).await.expect("read").is_some(),
        "uninstalling the chart leaves the stack"
    );
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
    let data = claims
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await
        .expect("claims can be listed");
    assert!(!data.items.is_empty(), "the stack's data stays");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chart_installs_an_operator_that_reconciles_and_uninstalls_leaving_the_data() {
    within_namespace("helm-install", LIMIT, |client, namespace| {
        installed_operator_reconciles(client, namespace)
    })
    .await;
}
