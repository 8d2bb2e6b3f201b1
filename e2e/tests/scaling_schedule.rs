//! A scaling schedule raises the WAS autoscaler's floor for the length of an event:
//! the real HPA controller scales the Deployment up at the start, the replicas never
//! drop below the floor during the event, and the floor goes back down at the end
//! (the operator wakes itself at each boundary; no change to the stack is needed),
//! after which the HPA controller scales the idle Deployment back down to it.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::Api;
use kube::{Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack;
use webtoon_e2e::wait;
use webtoon_operator::api::{AutoscalingSpec, ReplicaFloor, ScheduleSpec, WebtoonStack};

const LIMIT: Duration = Duration::from_secs(240);
const BASE_FLOOR: i32 = 2;
const EVENT_FLOOR: i32 = 5;

fn hpa_floor(hpa: &HorizontalPodAutoscaler) -> Option<i32> {
    hpa.spec.as_ref()?.min_replicas
}

fn replicas(deployment: &Deployment) -> i32 {
    deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1)
}

fn rfc3339(at: jiff::Timestamp) -> String {
    at.round(jiff::Unit::Second)
        .map_or_else(|_| at.to_string(), |t| t.to_string())
}

async fn schedule_raises_and_restores_the_floor(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let start = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(20);
    let end = start + jiff::SignedDuration::from_secs(40);
    let mut minimal = stack::example("minimal", &namespace);
    minimal.spec.was.autoscaling = Some(AutoscalingSpec {
        min_replicas: BASE_FLOOR,
        max_replicas: 8,
        target_cpu_utilization: 70,
    });
    minimal.spec.scaling.schedules = vec![ScheduleSpec {
        name: "flash-sale".to_string(),
        start: rfc3339(start),
        end: rfc3339(end),
        was: Some(ReplicaFloor {
            min_replicas: EVENT_FLOOR,
        }),
        proxy: None,
    }];
    let ready = stack::deploy(&client, minimal).await;
    let name = format!("{}-was", ready.name_any());
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let early = hpas.get(&name).await.expect("the WAS autoscaler exists");
    if jiff::Timestamp::now() < start - jiff::SignedDuration::from_secs(2) {
        assert_eq!(
            hpa_floor(&early),
            Some(BASE_FLOOR),
            "the floor rose before the event"
        );
    }

    let until_start =
        Duration::try_from(start.duration_since(jiff::Timestamp::now())).unwrap_or_default();
    wait::until(
        &hpas,
        &name,
        until_start + Duration::from_secs(15),
        |h: Option<&HorizontalPodAutoscaler>| h.and_then(hpa_floor) == Some(EVENT_FLOOR),
    )
    .await;
    // The HPA controller syncs every 15 s; scaling up needs no metrics.
    let scaled = wait::until(
        &deployments,
        &name,
        Duration::from_secs(45),
        |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                replicas(d) >= EVENT_FLOOR
                    && d.status
                        .as_ref()
                        .and_then(|s| s.ready_replicas)
                        .unwrap_or(0)
                        >= EVENT_FLOOR
            })
        },
    )
    .await;
    assert!(
        jiff::Timestamp::now() < end,
        "the Deployment reached the event floor only after the event ended"
    );

    let watched = deployments.clone();
    let watched_name = name.clone();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let lowest = tokio::spawn(async move {
        let mut stream = Box::pin(kube::runtime::watcher::watch_object(watched, &watched_name));
        let mut lowest = i32::MAX;
        loop {
            tokio::select! {
                _ = &mut stopped => return lowest,
                item = stream.next() => match item {
                    Some(Ok(Some(deployment))) => lowest = lowest.min(replicas(&deployment)),
                    Some(_) => {}
                    None => return lowest,
                },
            }
        }
    });

    let until_end =
        Duration::try_from(end.duration_since(jiff::Timestamp::now())).unwrap_or_default();
    wait::until(
        &hpas,
        &name,
        until_end + Duration::from_secs(15),
        |h: Option<&HorizontalPodAutoscaler>| h.and_then(hpa_floor) == Some(BASE_FLOOR),
    )
    .await;
    let restored_at = jiff::Timestamp::now();
    let _ = stop.send(());
    let observed = lowest.await.expect("the replica observer ran");
    assert!(
        observed < i32::MAX,
        "the replica observer saw the Deployment"
    );
    let lowest = observed.min(replicas(&scaled));
    eprintln!(
        "{name}: event {}..{}, floor restored at {restored_at}, lowest replicas during the event {lowest}",
        rfc3339(start),
        rfc3339(end)
    );
    assert!(
        restored_at >= end,
        "the floor went down before the event ended"
    );
    assert!(
        lowest >= EVENT_FLOOR,
        "replicas dropped to {lowest}, below the event floor {EVENT_FLOOR}"
    );
    // The pods are idle (the cluster's metrics report a few percent of their
    // requests), so once the floor is down the HPA controller itself scales back.
    wait::until(
        &deployments,
        &name,
        Duration::from_secs(60),
        |d: Option<&Deployment>| d.is_some_and(|d| replicas(d) == BASE_FLOOR),
    )
    .await;
    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);
    wait::until(
        &stacks,
        &ready.name_any(),
        Duration::from_secs(30),
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                stack::ready_now(s)
                    && s.status
                        .as_ref()
                        .and_then(|st| st.was.as_ref())
                        .map(|t| t.desired)
                        == Some(BASE_FLOOR)
            })
        },
    )
    .await;
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn scaling_schedule_raises_the_floor_for_the_event_only() {
    within_namespace("scaling-schedule", LIMIT, |client, namespace| {
        schedule_raises_and_restores_the_floor(client, namespace)
    })
    .await;
}
