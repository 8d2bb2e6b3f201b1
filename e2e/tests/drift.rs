//! Hand edits of what the operator manages are put back; what an autoscaler owns
//! (the replica count) is never fought over.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use webtoon_e2e::audit::AuditLog;
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack::{self, NfsVolumeCleanup};
use webtoon_e2e::wait;

const LIMIT: Duration = Duration::from_secs(300);

fn image_of(deployment: &Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()
}

fn replicas_of(deployment: &Deployment) -> Option<i32> {
    deployment.spec.as_ref()?.replicas
}

async fn hand_edit_is_put_back(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let ready = stack::deploy(&client, stack::example("minimal", &namespace)).await;
    let name = format!("{}-was", ready.name_any());
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let before = deployments
        .get(&name)
        .await
        .expect("the WAS Deployment exists");
    let image = image_of(&before).expect("the WAS Deployment has an image");
    let container = before
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .map(|c| c.name.clone())
        .expect("the WAS container has a name");

    // A person with kubectl: another field manager, a strategic merge patch.
    let edit = serde_json::json!({
        "metadata": {"labels": {"app.kubernetes.io/part-of": "hand-edited"}},
        "spec": {"template": {"spec": {"containers": [
            {"name": container, "image": "registry.example/hand/edited:6.6.6"},
        ]}}},
    });
    deployments
        .patch(
            &name,
            &PatchParams {
                field_manager: Some("kubectl-edit".to_string()),
                ..Default::default()
            },
            &Patch::Strategic(&edit),
        )
        .await
        .expect("the admin may edit the Deployment");
    let restored = wait::until(
        &deployments,
        &name,
        Duration::from_secs(60),
        |d: Option<&Deployment>| {
            d.is_some_and(|d| {
                image_of(d).as_deref() == Some(image.as_str())
                    && d.labels()
                        .get("app.kubernetes.io/part-of")
                        .map(String::as_str)
                        == Some("webtoon")
            })
        },
    )
    .await;
    assert_eq!(image_of(&restored), Some(image));
    stack::wait_ready(
        &client,
        &namespace,
        &ready.name_any(),
        Duration::from_secs(120),
    )
    .await;
    operator.assert_no_forbidden();
}

async fn autoscaled_replicas_are_not_fought(client: Client, namespace: String) {
    let audit = AuditLog::from_env();
    ensure_crd(&client).await;
    let _volumes = NfsVolumeCleanup::new(&namespace);
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let mut production = stack::example("production", &namespace);
    // The spec applied again below must be the one the cluster can serve.
    stack::prepare(&client, &mut production).await;
    let floor = production
        .spec
        .was
        .autoscaling
        .as_ref()
        .map(|a| a.min_replicas)
        .expect("the production example autoscales the WAS");
    let ready = stack::deploy(&client, production.clone()).await;
    let stack_name = ready.name_any();
    let name = format!("{stack_name}-was");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    // The Deployment is created without replicas (1); the HPA controller raises it.
    wait::until(
        &deployments,
        &name,
        Duration::from_secs(90),
        |d: Option<&Deployment>| d.and_then(replicas_of).is_some_and(|r| r >= floor),
    )
    .await;
    let mark = audit.mark();

    // Watch the replica count while the operator re-applies the Deployment after a
    // spec change: it must never go below what the HPA set.
    let watched = deployments.clone();
    let watched_name = name.clone();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let lowest = tokio::spawn(async move {
        use futures::StreamExt;
        let stream = kube::runtime::watcher::watch_object(watched, &watched_name);
        let mut stream = Box::pin(stream);
        let mut lowest = i32::MAX;
        loop {
            tokio::select! {
                _ = &mut stopped => return lowest,
                item = stream.next() => match item {
                    Some(Ok(Some(deployment))) => {
                        lowest = lowest.min(replicas_of(&deployment).unwrap_or(1));
                    }
                    Some(_) => {}
                    None => return lowest,
                },
            }
        }
    });
    let mut changed = production;
    changed
        .spec
        .was
        .env
        .push(k8s_openapi::api::core::v1::EnvVar {
            name: "E2E_DRIFT".to_string(),
            value: Some("1".to_string()),
            ..Default::default()
        });
    let applied = stack::apply(&client, &changed).await;
    let generation = applied.metadata.generation;
    let rolled = wait::until(
        &deployments,
        &name,
        Duration::from_secs(90),
        |d: Option<&Deployment>| {
            d.and_then(|d| d.spec.as_ref())
                .and_then(|s| s.template.spec.as_ref())
                .is_some_and(|s| {
                    s.containers
                        .iter()
                        .any(|c| c.env.iter().flatten().any(|e| e.name == "E2E_DRIFT"))
                })
        },
    )
    .await;
    assert!(replicas_of(&rolled).is_some_and(|r| r >= floor));
    let stack = stack::wait_ready(&client, &namespace, &stack_name, Duration::from_secs(120)).await;
    assert_eq!(stack.metadata.generation, generation);
    // A few more reconciles with nothing to change.
    for round in 0..3 {
        stack::touch(&client, &namespace, &stack_name, &format!("drift-{round}")).await;
    }
    let requests = audit
        .wait_for(
            mark,
            operator.user(),
            Duration::from_secs(60),
            "the re-apply of the WAS Deployment",
            |r| {
                r.writes()
                    .iter()
                    .any(|e| e.resource() == "deployments" && e.name() == name)
            },
        )
        .await;
    let _ = stop.send(());
    let lowest = lowest.await.expect("the replica observer ran");
    assert!(lowest < i32::MAX, "the replica observer saw the Deployment");
    let now = deployments
        .get(&name)
        .await
        .expect("the WAS Deployment exists");
    eprintln!(
        "{name}: replicas {:?} (floor {floor}), lowest seen {lowest}; operator requests: {:?}",
        replicas_of(&now),
        requests.by_verb_and_resource()
    );
    assert!(
        replicas_of(&now).is_some_and(|r| r >= floor),
        "the HPA's replica count was reset"
    );
    assert_eq!(
        requests.count("update", "deployments/scale")
            + requests.count("patch", "deployments/scale"),
        0,
        "the operator must not scale what the HPA scales"
    );
    // Server-side apply records who owns each field: the operator must not own the count.
    let operator_owns_replicas = now
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some("webtoon-operator"))
        .filter_map(|m| m.fields_v1.as_ref())
        .any(|f| f.0.pointer("/f:spec/f:replicas").is_some());
    assert!(
        !operator_owns_replicas,
        "the operator owns spec.replicas of {name}"
    );
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn hand_edit_of_a_managed_field_is_put_back() {
    within_namespace("drift-edit", LIMIT, |client, namespace| {
        hand_edit_is_put_back(client, namespace)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_owned_by_the_autoscaler_are_never_fought() {
    within_namespace("drift-hpa", LIMIT, |client, namespace| {
        autoscaled_replicas_are_not_fought(client, namespace)
    })
    .await;
}
