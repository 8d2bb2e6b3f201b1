//! A WAS image the cluster cannot pull keeps the stack from Ready and says why, as
//! it happens on kind: the pods wait in `ImagePullBackOff` and the stack reports
//! `WasReady=False` while every other tier serves. The image is under the reserved,
//! unreachable registry name `registry.invalid/`, which kind cannot pull and which the
//! local cluster's KWOK stages answer the same way. Being the stack's first
//! release, it has nothing to roll back to: it is reported (`Stalled`, `RolledBack`
//! false) and left.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube::runtime::wait::{Condition, conditions};
use kube::{Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack;
use webtoon_e2e::wait;
use webtoon_operator::api::WebtoonStack;

const LIMIT: Duration = Duration::from_secs(300);
const UNPULLABLE: &str = "registry.invalid/minitoon/was:1.0.0";

fn pulling_fails(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|statuses| {
            statuses.iter().any(|c| {
                c.state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some("ImagePullBackOff")
            })
        })
}

async fn unpullable_was_image_is_reported(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let mut minimal = stack::example("minimal", &namespace);
    minimal.spec.was.image = UNPULLABLE.to_string();
    stack::prepare(&client, &mut minimal).await;
    let name = minimal.name_any();
    stack::apply(&client, &minimal).await;

    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);
    // Every tier but the WAS serves; the WAS's condition names the failure.
    let reported = wait::until(
        &stacks,
        &name,
        Duration::from_secs(120),
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                stack::has_condition(s, "ProxyReady", "True")
                    && stack::has_condition(s, "DatabaseReady", "True")
                    && stack::has_condition(s, "WasReady", "False")
            })
        },
    )
    .await;
    assert!(
        !stack::ready_now(&reported),
        "a stack whose WAS cannot start is not Ready"
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let was_pods = pods
        .list(&ListParams::default().labels("app.kubernetes.io/component=was"))
        .await
        .expect("pods can be listed")
        .items;
    assert!(!was_pods.is_empty(), "the WAS Deployment created pods");
    for pod in &was_pods {
        let waited = wait::until(
            &pods,
            &pod.name_any(),
            Duration::from_secs(60),
            |p: Option<&Pod>| p.is_some_and(pulling_fails),
        )
        .await;
        assert!(
            !conditions::is_pod_running().matches_object(Some(&waited)),
            "pod {} runs an image nobody can pull",
            waited.name_any()
        );
    }
    // A first release has nothing to return to: reported as failed, and left.
    let stalled = wait::until(
        &stacks,
        &name,
        Duration::from_secs(120),
        |s: Option<&WebtoonStack>| s.is_some_and(|s| stack::has_condition(s, "Stalled", "True")),
    )
    .await;
    let rolled_back =
        stack::condition(&stalled, "RolledBack").expect("RolledBack reports the failed release");
    let (rolled_back, message) = (rolled_back.status.as_str(), rolled_back.message.as_str());
    assert_eq!(rolled_back, "False", "{message}");
    assert!(
        message.contains("no earlier fully rolled-out release"),
        "{message}"
    );
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn unpullable_was_image_shows_image_pull_back_off_and_keeps_the_stack_unready() {
    within_namespace("image-pull-failure", LIMIT, |client, namespace| {
        unpullable_was_image_is_reported(client, namespace)
    })
    .await;
}
