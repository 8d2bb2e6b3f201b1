//! Every example becomes Ready the way users and tools check it: the `Ready`
//! condition, `kubectl wait --for=condition=Ready`, and the events `Created` then
//! `Ready` on the stack.

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::kubectl::kubectl;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack::{self, NfsVolumeCleanup};

const LIMIT: Duration = Duration::from_secs(300);

async fn example_becomes_ready(client: Client, namespace: String, example: &str) {
    ensure_crd(&client).await;
    let _volumes = NfsVolumeCleanup::new(&namespace);
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let ready = stack::deploy(&client, stack::example(example, &namespace)).await;
    let name = ready.name_any();

    let wait = kubectl(&[
        "wait",
        "--namespace",
        &namespace,
        &format!("wts/{name}"),
        "--for=condition=Ready",
        "--timeout=60s",
    ])
    .await;
    assert!(
        wait.success,
        "kubectl wait failed: {}{}",
        wait.stdout, wait.stderr
    );

    let uid = ready.uid().expect("a stored stack has a uid");
    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let mut ours: Vec<Event> = events
        .list(&ListParams::default())
        .await
        .expect("events can be listed")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(uid.as_str()))
        .collect();
    ours.sort_by_key(|e| {
        e.event_time
            .as_ref()
            .map(|t| t.0)
            .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    });
    let reasons: Vec<String> = ours.iter().filter_map(|e| e.reason.clone()).collect();
    assert_eq!(
        reasons,
        ["Created", "Ready"],
        "the stack's events, oldest first"
    );
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn minimal_example_becomes_ready() {
    within_namespace("ready-minimal", LIMIT, |client, namespace| {
        example_becomes_ready(client, namespace, "minimal")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn production_example_becomes_ready() {
    within_namespace("ready-production", LIMIT, |client, namespace| {
        example_becomes_ready(client, namespace, "production")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn external_db_example_becomes_ready() {
    within_namespace("ready-external-db", LIMIT, |client, namespace| {
        example_becomes_ready(client, namespace, "external-db")
    })
    .await;
}
