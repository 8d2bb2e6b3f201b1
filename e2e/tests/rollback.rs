//! Releases that cannot take the site down: a release whose pods cannot start is
//! rolled back to the last fully rolled-out template, within the documented bound,
//! without ever serving with fewer ready pods than wanted; it is reported
//! (`RolledBack`, `Stalled`, an event, a metric) and not retried until the spec
//! changes. With `autoRollback: false` the failure is reported and the Deployment
//! left alone. The broken release is an image under `registry.invalid/`, which
//! kind cannot pull and the local cluster's KWOK stages answer the same way.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::pods::{ReadyFloor, template_image};
use webtoon_e2e::stack;
use webtoon_e2e::wait;
use webtoon_operator::api::WebtoonStack;
use webtoon_operator::controller::reconcile::ROLLOUT_POLL;
use webtoon_operator::controller::rollout::IMAGE_PULL_BOUND;

const LIMIT: Duration = Duration::from_secs(420);
const BROKEN_WAS: &str = "registry.invalid/minitoon/was:2.0.0";
const BROKEN_PROXY: &str = "registry.invalid/nginx-unprivileged:1.29.0-alpine";
/// A healthy next release, unless `$WEBTOON_E2E_NEXT_WAS_IMAGE` names one the
/// cluster can pull.
const NEXT_WAS: &str = "registry.example/minitoon/was:1.0.1";
/// The longest a broken release may serve before it is rolled back: the bound on a
/// pod that cannot pull, one poll, and the time the Deployment controller and the
/// operator take to write.
const ROLLBACK_WITHIN: Duration = IMAGE_PULL_BOUND
    .saturating_add(ROLLOUT_POLL)
    .saturating_add(Duration::from_secs(20));

fn last_known_good(stack: &WebtoonStack, tier: &str) -> Option<String> {
    let rollouts = stack.status.as_ref()?.rollouts.as_ref()?;
    let tier = match tier {
        "proxy" => rollouts.proxy.as_ref(),
        _ => rollouts.was.as_ref(),
    }?;
    tier.last_known_good.as_ref().map(|g| g.image.clone())
}

/// Whether the Deployment runs `image` on every replica and nothing else.
fn settled_on(deployment: Option<&Deployment>, image: &str) -> bool {
    deployment.is_some_and(|d| {
        let wanted = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        template_image(d) == image
            && d.status.as_ref().is_some_and(|s| {
                s.observed_generation == d.metadata.generation
                    && s.updated_replicas == Some(wanted)
                    && s.replicas == Some(wanted)
                    && s.available_replicas == Some(wanted)
            })
    })
}

async fn warning_events(client: &Client, namespace: &str, stack: &str, reason: &str) -> usize {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("events can be listed")
        .items
        .iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(stack)
                && e.reason.as_deref() == Some(reason)
                && e.type_.as_deref() == Some("Warning")
        })
        .count()
}

async fn broken_was_release_is_rolled_back(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let minimal = stack::example("minimal", &namespace);
    let good = minimal.spec.was.image.clone();
    let ready = stack::deploy(&client, minimal.clone()).await;
    let name = ready.name_any();
    let replicas = minimal.spec.was.replicas;
    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let was = format!("{name}-was");
    wait::until(
        &stacks,
        &name,
        Duration::from_secs(60),
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| last_known_good(s, "was").as_deref() == Some(good.as_str()))
        },
    )
    .await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let selector = format!("app.kubernetes.io/instance={name},app.kubernetes.io/component=was");
    let floor = ReadyFloor::watch(pods, &selector, replicas);
    let mut broken = minimal.clone();
    broken.spec.was.image = BROKEN_WAS.to_string();
    stack::apply(&client, &broken).await;
    let started = Instant::now();
    let rolled_back = wait::until(
        &stacks,
        &name,
        ROLLBACK_WITHIN,
        |s: Option<&WebtoonStack>| s.is_some_and(|s| stack::has_condition(s, "RolledBack", "True")),
    )
    .await;
    let took = started.elapsed();
    eprintln!("{name}: broken WAS release rolled back after {took:?}");
    let settled = wait::until(
        &deployments,
        &was,
        Duration::from_secs(60),
        |d: Option<&Deployment>| settled_on(d, &good),
    )
    .await;
    let (lowest, events) = floor.finish().await;
    assert!(events > 0, "the pod observer saw no event");
    assert!(
        lowest >= replicas,
        "the broken release left {lowest} ready WAS pods, below {replicas}"
    );

    let rolled = stack::condition(&rolled_back, "RolledBack").expect("RolledBack is set");
    let (reason, message) = (rolled.reason.as_str(), rolled.message.as_str());
    assert_eq!(reason, "ImagePullBackOff", "{message}");
    assert!(
        message.contains(BROKEN_WAS) && message.contains(&good),
        "RolledBack names the failed and the restored image: {message}"
    );
    let stalled = stack::condition(&rolled_back, "Stalled").expect("Stalled is set");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "RolloutFailed")
    );
    let now = stacks.get(&name).await.expect("the stack can be read");
    assert!(
        stack::has_condition(&now, "Ready", "True"),
        "the old release serves: {:?}",
        now.status
    );
    assert!(
        warning_events(&client, &namespace, &name, "RolledBack").await >= 1,
        "a RolledBack Warning event is published"
    );
    let failures = operator
        .metric("webtoon_rollout_failures_total")
        .await
        .unwrap_or_default();
    assert!(failures >= 1.0, "the failed rollout is counted: {failures}");

    // The same broken spec again: nothing rolls.
    let generation = settled.metadata.generation;
    stack::apply(&client, &broken).await;
    stack::touch(&client, &namespace, &name, "same-broken-spec").await;
    let seen = operator.reconciles().await.unwrap_or_default();
    operator
        .wait_for_reconciles(seen + 2, Duration::from_secs(60))
        .await;
    let after = deployments
        .get(&was)
        .await
        .expect("the WAS Deployment exists");
    assert_eq!(
        after.metadata.generation, generation,
        "the same failed spec started another rollout"
    );
    assert_eq!(template_image(&after), good);

    // A new, healthy release rolls out and clears the failure.
    let next = stack::was_image(stack::NEXT_WAS_IMAGE_ENV, NEXT_WAS);
    let mut fixed = minimal;
    fixed.spec.was.image = next.clone();
    stack::apply(&client, &fixed).await;
    let cleared = wait::until(
        &stacks,
        &name,
        Duration::from_secs(120),
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                last_known_good(s, "was").as_deref() == Some(next.as_str())
                    && stack::condition(s, "RolledBack").is_none()
                    && stack::has_condition(s, "Stalled", "False")
            })
        },
    )
    .await;
    assert!(stack::has_condition(&cleared, "Ready", "True"));
    operator.assert_no_forbidden();
}

async fn proxy_rolls_back_and_was_without_auto_rollback_is_left(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let minimal = stack::example("minimal", &namespace);
    let good_proxy = minimal.spec.proxy.image.clone();
    let ready = stack::deploy(&client, minimal.clone()).await;
    let name = ready.name_any();
    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    wait::until(
        &stacks,
        &name,
        Duration::from_secs(60),
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                last_known_good(s, "proxy").as_deref() == Some(good_proxy.as_str())
                    && last_known_good(s, "was").is_some()
            })
        },
    )
    .await;

    let mut broken = minimal;
    broken.spec.proxy.image = BROKEN_PROXY.to_string();
    broken.spec.was.image = BROKEN_WAS.to_string();
    broken.spec.was.rollout.auto_rollback = false;
    stack::apply(&client, &broken).await;
    let reported = wait::until(
        &stacks,
        &name,
        ROLLBACK_WITHIN,
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                let rollouts = s.status.as_ref().and_then(|st| st.rollouts.as_ref());
                let failed = |t: Option<&webtoon_operator::api::TierRollout>| {
                    t.is_some_and(|t| t.failed.is_some())
                };
                rollouts.is_some_and(|r| failed(r.proxy.as_ref()) && failed(r.was.as_ref()))
            })
        },
    )
    .await;
    let rolled_back = stack::condition(&reported, "RolledBack").expect("RolledBack is set");
    let (rolled, message) = (rolled_back.status.as_str(), rolled_back.message.as_str());
    assert_eq!(rolled, "True", "the proxy rolled back: {message}");
    assert!(
        message.contains("autoRollback is off") && message.contains(BROKEN_PROXY),
        "both tiers are reported: {message}"
    );
    assert!(stack::has_condition(&reported, "Stalled", "True"));
    wait::until(
        &deployments,
        &format!("{name}-proxy"),
        Duration::from_secs(60),
        |d: Option<&Deployment>| settled_on(d, &good_proxy),
    )
    .await;
    let was = deployments
        .get(&format!("{name}-was"))
        .await
        .expect("the WAS Deployment exists");
    assert_eq!(
        template_image(&was),
        BROKEN_WAS,
        "with autoRollback off the WAS Deployment is left as it is"
    );
    assert!(
        warning_events(&client, &namespace, &name, "RolloutFailed").await >= 1,
        "the WAS failure is published as a RolloutFailed event"
    );
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_was_release_is_rolled_back_reported_and_not_retried() {
    within_namespace("rollback-was", LIMIT, |client, namespace| {
        broken_was_release_is_rolled_back(client, namespace)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_proxy_rolls_back_too_and_auto_rollback_off_leaves_the_deployment() {
    within_namespace("rollback-proxy", LIMIT, |client, namespace| {
        proxy_rolls_back_and_was_without_auto_rollback_is_left(client, namespace)
    })
    .await;
}
