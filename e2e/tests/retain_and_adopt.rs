//! Deleting a stack: under `deletionPolicy: Retain` (the default) the garbage
//! collector removes the children while the volume claims and the credentials
//! Secret stay, without an owner, and a stack created again with the same name
//! adopts them with the same passwords. Under `Delete` nothing of the stack is left.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::wait::conditions;
use kube::{Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack::{self, children_selector, wait_until_none};
use webtoon_operator::api::{DeletionPolicy, WebtoonStack};

const LIMIT: Duration = Duration::from_secs(300);
const GONE: Duration = Duration::from_secs(120);

/// The instance label only: claims made from a StatefulSet's templates carry the
/// pod labels, not every label of the operator's own objects.
fn instance(name: &str) -> String {
    format!("app.kubernetes.io/instance={name}")
}

/// (name, uid, owner count) of every claim of the stack.
async fn claims(client: &Client, namespace: &str, name: &str) -> Vec<(String, String, usize)> {
    let api: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let mut claims: Vec<(String, String, usize)> = api
        .list(&ListParams::default().labels(&instance(name)))
        .await
        .expect("claims can be listed")
        .items
        .into_iter()
        .map(|c| {
            (
                c.name_any(),
                c.uid().unwrap_or_default(),
                c.owner_references().len(),
            )
        })
        .collect();
    claims.sort();
    claims
}

async fn delete_stack(client: &Client, namespace: &str, name: &str) {
    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), namespace);
    let uid = stacks
        .get(name)
        .await
        .expect("the stack exists")
        .uid()
        .expect("a stored stack has a uid");
    stacks
        .delete(name, &DeleteParams::background())
        .await
        .expect("the admin may delete the stack");
    // wait::until wants an object at the end; a deletion leaves none.
    let gone = tokio::time::timeout(
        GONE,
        kube::runtime::wait::await_condition(stacks, name, conditions::is_deleted(&uid)),
    )
    .await;
    assert!(
        matches!(gone, Ok(Ok(_))),
        "the stack {name} was not deleted within {GONE:?}: {gone:?}"
    );
}

/// Waits until the garbage collector removed every stateless child of the stack.
async fn wait_children_collected(client: &Client, namespace: &str, name: &str) {
    let selector = children_selector(name);
    let ns = namespace;
    wait_until_none(
        &Api::<Deployment>::namespaced(client.clone(), ns),
        &selector,
        GONE,
    )
    .await;
    wait_until_none(
        &Api::<StatefulSet>::namespaced(client.clone(), ns),
        &selector,
        GONE,
    )
    .await;
    wait_until_none(
        &Api::<Service>::namespaced(client.clone(), ns),
        &selector,
        GONE,
    )
    .await;
    wait_until_none(
        &Api::<ConfigMap>::namespaced(client.clone(), ns),
        &selector,
        GONE,
    )
    .await;
    wait_until_none(
        &Api::<NetworkPolicy>::namespaced(client.clone(), ns),
        &selector,
        GONE,
    )
    .await;
    wait_until_none(
        &Api::<PodDisruptionBudget>::namespaced(client.clone(), ns),
        &selector,
        GONE,
    )
    .await;
    wait_until_none(
        &Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns),
        &selector,
        GONE,
    )
    .await;
}

async fn retained_data_is_adopted(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let minimal = stack::example("minimal", &namespace);
    assert_eq!(
        minimal.spec.deletion_policy,
        DeletionPolicy::Retain,
        "Retain is the default"
    );
    let name = minimal.metadata.name.clone().expect("the example is named");
    stack::deploy(&client, minimal.clone()).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret_name = format!("{name}-credentials");
    let first = secrets
        .get(&secret_name)
        .await
        .expect("the credentials Secret exists");
    let claims_before = claims(&client, &namespace, &name).await;
    assert!(
        claims_before.len() >= 2,
        "the image claim and the database's data claim: {claims_before:?}"
    );

    delete_stack(&client, &namespace, &name).await;
    wait_children_collected(&client, &namespace, &name).await;
    let kept = secrets
        .get(&secret_name)
        .await
        .expect("the credentials Secret is kept");
    assert!(
        kept.owner_references().is_empty(),
        "the kept Secret has no owner"
    );
    assert_eq!(kept.uid(), first.uid());
    let claims_kept = claims(&client, &namespace, &name).await;
    assert_eq!(
        claims_kept.iter().map(|c| (&c.0, &c.1)).collect::<Vec<_>>(),
        claims_before
            .iter()
            .map(|c| (&c.0, &c.1))
            .collect::<Vec<_>>(),
        "every claim is kept"
    );
    assert!(
        claims_kept.iter().all(|c| c.2 == 0),
        "kept claims have no owner: {claims_kept:?}"
    );

    stack::deploy(&client, minimal).await;
    let adopted = secrets
        .get(&secret_name)
        .await
        .expect("the credentials Secret exists");
    assert_eq!(adopted.uid(), first.uid(), "the Secret is the kept one");
    assert_eq!(adopted.data, first.data, "the passwords are the same");
    let claims_after = claims(&client, &namespace, &name).await;
    assert_eq!(
        claims_after
            .iter()
            .map(|c| (&c.0, &c.1))
            .collect::<Vec<_>>(),
        claims_before
            .iter()
            .map(|c| (&c.0, &c.1))
            .collect::<Vec<_>>(),
        "the new stack uses the kept claims"
    );
    operator.assert_no_forbidden();
}

async fn delete_policy_leaves_nothing(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let mut minimal = stack::example("minimal", &namespace);
    minimal.spec.deletion_policy = DeletionPolicy::Delete;
    let name = minimal.metadata.name.clone().expect("the example is named");
    stack::deploy(&client, minimal).await;
    assert!(!claims(&client, &namespace, &name).await.is_empty());

    delete_stack(&client, &namespace, &name).await;
    wait_children_collected(&client, &namespace, &name).await;
    let selector = instance(&name);
    wait_until_none(
        &Api::<PersistentVolumeClaim>::namespaced(client.clone(), &namespace),
        &selector,
        GONE,
    )
    .await;
    wait_until_none(
        &Api::<Secret>::namespaced(client.clone(), &namespace),
        &selector,
        GONE,
    )
    .await;
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn retained_claims_and_credentials_are_adopted_by_a_new_stack() {
    within_namespace("retain-adopt", LIMIT, |client, namespace| {
        retained_data_is_adopted(client, namespace)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_policy_leaves_nothing_behind() {
    within_namespace("delete-policy", LIMIT, |client, namespace| {
        delete_policy_leaves_nothing(client, namespace)
    })
    .await;
}
