//! The CRD's lifecycle through the chart, on a cluster of its own (the test command
//! runs it alone on the oldest API server, after the scenarios that share the CRD):
//! `helm install` installs the CRD, `helm upgrade` to a chart with a changed CRD
//! upgrades it, and `helm uninstall` keeps it and every stack.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, ResourceExt};
use serde_json::Value;
use webtoon_e2e::helm::{chart, helm};
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::{stack, wait};

const LIMIT: Duration = Duration::from_secs(240);
const CRD: &str = "webtoonstacks.webtoon.io";
const RELEASE: &str = "wto-crd";

/// The chart copied into a temporary directory with one more printer column in its
/// CRD: the next release of the chart, as far as the CRD goes.
fn next_chart() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("webtoon-chart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy(&chart(), &dir);
    let file = dir.join("files/webtoonstacks.webtoon.io.yaml");
    let text = std::fs::read_to_string(&file).expect("the chart's CRD is readable");
    let mut crd: Value = serde_saphyr::from_str(&text).expect("the chart's CRD parses");
    crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array_mut()
        .expect("printer columns")
        .push(serde_json::json!({"name": "Host", "type": "string", "jsonPath": ".spec.hosts[0]"}));
    // JSON is YAML: the template reads it as it reads the generated file.
    std::fs::write(&file, crd.to_string()).expect("the changed CRD is written");
    dir
}

fn copy(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("the chart is readable") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("a type").is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("a copied file");
        }
    }
}

fn columns(crd: &CustomResourceDefinition) -> Vec<String> {
    crd.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect()
}

async fn crd_installed_upgraded_and_kept(client: Client, namespace: String) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // Whatever CRD the scenarios before left goes, so that the chart installs its own.
    if crds.get_opt(CRD).await.expect("read").is_some() {
        crds.delete(CRD, &DeleteParams::default())
            .await
            .expect("the CRD can be deleted");
        let gone = await_condition(crds.clone(), CRD, conditions::is_deleted(""));
        tokio::time::timeout(Duration::from_secs(60), gone)
            .await
            .expect("the CRD is deleted within 60 s")
            .expect("watching the CRD");
    }
    let chart = chart();
    let values = ["--set", &format!("watchNamespace={namespace}")];
    let mut install = vec![
        "install",
        RELEASE,
        chart.to_str().expect("a UTF-8 path"),
        "--namespace",
        &namespace,
    ];
    install.extend(values);
    helm(&install).await;
    let installed = wait::until(
        &crds,
        CRD,
        Duration::from_secs(60),
        conditions::is_crd_established(),
    )
    .await;
    assert_eq!(
        installed
            .annotations()
            .get("helm.sh/resource-policy")
            .map(String::as_str),
        Some("keep")
    );
    assert!(!columns(&installed).contains(&"Host".to_string()));
    let minimal = stack::example("minimal", &namespace);
    let name = minimal.name_any();
    stack::apply(&client, &minimal).await;

    let next = next_chart();
    let mut upgrade = vec![
        "upgrade",
        RELEASE,
        next.to_str().expect("a UTF-8 path"),
        "--namespace",
        &namespace,
    ];
    upgrade.extend(values);
    helm(&upgrade).await;
    let upgraded = crds.get(CRD).await.expect("the CRD exists");
    assert!(
        columns(&upgraded).contains(&"Host".to_string()),
        "helm upgrade did not upgrade the CRD: {:?}",
        columns(&upgraded)
    );

    helm(&["uninstall", RELEASE, "--namespace", &namespace, "--wait"]).await;
    assert!(
        crds.get_opt(CRD).await.expect("read").is_some(),
        "helm uninstall deleted the CRD, and every stack with it"
    );
    let stacks: Api<webtoon_operator::api::WebtoonStack> =
        Api::namespaced(client.clone(), &namespace);
    assert!(
        stacks.get_opt(&name).await.expect("read").is_some(),
        "the stack stays"
    );
    let _ = std::fs::remove_dir_all(next);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chart_installs_upgrades_and_keeps_the_crd() {
    within_namespace("helm-crd", LIMIT, |client, namespace| {
        crd_installed_upgraded_and_kept(client, namespace)
    })
    .await;
}
