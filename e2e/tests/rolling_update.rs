//! A new WAS image rolls out without ever serving with fewer ready pods than the
//! stack wants, and ends with every pod on the new image.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::pods::{ReadyFloor, image, is_ready};
use webtoon_e2e::stack;
use webtoon_e2e::wait;

const LIMIT: Duration = Duration::from_secs(300);
const REPLICAS: i32 = 3;
/// The release rolled out, unless `$WEBTOON_E2E_NEXT_WAS_IMAGE` names one the cluster
/// can pull.
const NEW_IMAGE: &str = "registry.example/minitoon/was:1.0.1";

async fn image_change_rolls_without_losing_capacity(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let mut minimal = stack::example("minimal", &namespace);
    minimal.spec.was.replicas = REPLICAS;
    let ready = stack::deploy(&client, minimal.clone()).await;
    let stack_name = ready.name_any();
    let name = format!("{stack_name}-was");
    let selector =
        format!("app.kubernetes.io/instance={stack_name},app.kubernetes.io/component=was");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    wait::until(
        &deployments,
        &name,
        Duration::from_secs(60),
        |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.ready_replicas.unwrap_or(0) >= REPLICAS)
        },
    )
    .await;

    // Every pod event during the rollout: the ready count of the stack's WAS pods.
    let floor = ReadyFloor::watch(pods.clone(), &selector, REPLICAS);

    let new_image = stack::was_image(stack::NEXT_WAS_IMAGE_ENV, NEW_IMAGE);
    let mut changed = minimal;
    changed.spec.was.image = new_image.clone();
    stack::apply(&client, &changed).await;
    let rolled = wait::until(
        &deployments,
        &name,
        Duration::from_secs(180),
        |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                let generation = d.metadata.generation;
                let on_new_image = d
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .and_then(|s| s.containers.first())
                    .and_then(|c| c.image.as_deref())
                    == Some(new_image.as_str());
                d.status.as_ref().is_some_and(|s| {
                    on_new_image
                        && s.observed_generation == generation
                        && s.updated_replicas == Some(REPLICAS)
                        && s.ready_replicas == Some(REPLICAS)
                        && s.available_replicas == Some(REPLICAS)
                        && s.replicas == Some(REPLICAS)
                })
            })
        },
    )
    .await;
    stack::wait_ready(&client, &namespace, &stack_name, Duration::from_secs(60)).await;
    let finished = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("the WAS pods can be listed");
    let serving: Vec<&Pod> = finished
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let (lowest, events) = floor.finish().await;
    assert!(
        events > 0,
        "the pod observer saw no event during the rollout"
    );
    eprintln!(
        "{name}: {events} pod events during the rollout, lowest ready count {lowest}, generation {:?}",
        rolled.metadata.generation
    );
    assert!(
        lowest >= REPLICAS,
        "the rollout dropped to {lowest} ready WAS pods, below {REPLICAS}"
    );
    assert_eq!(
        serving.len(),
        REPLICAS as usize,
        "WAS pods after the rollout"
    );
    for pod in serving {
        assert_eq!(
            image(pod),
            new_image,
            "pod {} runs the old image",
            pod.name_any()
        );
        assert!(is_ready(pod), "pod {} is not ready", pod.name_any());
    }
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn was_image_change_rolls_without_losing_ready_pods() {
    within_namespace("rolling-update", LIMIT, |client, namespace| {
        image_change_rolls_without_losing_capacity(client, namespace)
    })
    .await;
}
