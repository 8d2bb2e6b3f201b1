//! Credential rotation as the controller runs it on the cluster: a new
//! `spec.credentials.rotation.requestId` stores new passwords in the Secret, the
//! add Jobs run (the local cluster's KWOK stages complete their pods; on kind the
//! scripts run against the real MariaDB and Redis), the Secret switches, the WAS rolls
//! onto the other database account, the finish Jobs run, and the status, conditions
//! and events say so. A hand edit of the Secret is reported and rotates nothing, until
//! the value is put back.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use webtoon_e2e::audit::AuditLog;
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack::{self, condition};
use webtoon_e2e::wait;
use webtoon_operator::api::{CredentialsSpec, RotationPhase, RotationSpec, WebtoonStack};

const LIMIT: Duration = Duration::from_secs(420);
/// Two Job steps, a WAS rollout (5 s of `minReadySeconds` per surge) and the
/// reconciles between them.
const ROTATED_WITHIN: Duration = Duration::from_secs(150);

fn asking(stack: &mut WebtoonStack, request: &str) {
    stack.spec.credentials = Some(CredentialsSpec {
        rotation: Some(RotationSpec {
            request_id: Some(request.to_string()),
            interval_days: None,
        }),
    });
}

async fn secret_data(
    secrets: &Api<Secret>,
    name: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let secret = secrets
        .get(name)
        .await
        .expect("the credentials Secret exists");
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    (data, secret.metadata.annotations.unwrap_or_default())
}

async fn reasons(client: &Client, namespace: &str, stack: &str) -> Vec<String> {
    let mut events: Vec<Event> = Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("events can be listed")
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(stack))
        .collect();
    events.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    events.into_iter().filter_map(|e| e.reason).collect()
}

fn rotation(stack: &WebtoonStack) -> Option<(String, RotationPhase, u64)> {
    let credentials = stack.status.as_ref()?.credentials.as_ref()?;
    let rotation = credentials.rotation.as_ref()?;
    Some((
        rotation.request.clone(),
        rotation.phase,
        credentials.generation,
    ))
}

fn was_env(deployment: &Deployment, name: &str) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)?
        .value
        .clone()
}

/// Waits until at least `count` reconciles started and every one started finished:
/// an edit made after it races no reconcile that read the Secret before it.
async fn all_finished(operator: &Operator, count: u64) {
    let started = operator
        .wait_for_reconciles(count, Duration::from_secs(60))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut ticks = tokio::time::interval(Duration::from_millis(200));
    loop {
        ticks.tick().await;
        let finished = operator
            .metric("webtoon_reconcile_duration_seconds_count")
            .await
            .unwrap_or_default();
        let now = operator.reconciles().await.unwrap_or_default();
        if finished >= now as f64 && now >= started {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the operator did not finish its reconciles: {finished} of {now}"
        );
    }
}

async fn rotations(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let audit = AuditLog::from_env();
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let since = audit.mark();
    let mut minimal = stack::example("minimal", &namespace);
    asking(&mut minimal, "initial");
    let ready = stack::deploy(&client, minimal.clone()).await;
    let name = ready.name_any();
    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let secret_name = format!("{name}-credentials");

    // A new stack's passwords are new: its request asks for nothing.
    let credentials = ready
        .status
        .as_ref()
        .and_then(|s| s.credentials.clone())
        .expect("the status records the credentials");
    assert_eq!(
        (
            credentials.generation,
            credentials.database_user.as_deref(),
            credentials.rotation
        ),
        (0, Some("webtoon"), None)
    );
    assert_eq!(
        condition(&ready, "CredentialsSynced").map(|c| c.status.as_str()),
        Some("True")
    );
    let (before, annotations) = secret_data(&secrets, &secret_name).await;
    assert!(annotations.contains_key("webtoon.io/credentials-fingerprint"));
    for key in ["database-admin-password", "cache-admin-password"] {
        assert!(before.contains_key(key), "the Secret holds {key}");
    }

    // A new request: every credential is rotated, the WAS moves to the other account.
    asking(&mut minimal, "rotate-1");
    stack::apply(&client, &minimal).await;
    let rotated = wait::until(
        &stacks,
        &name,
        ROTATED_WITHIN,
        |s: Option<&WebtoonStack>| {
            s.and_then(rotation) == Some(("rotate-1".to_string(), RotationPhase::Succeeded, 1))
        },
    )
    .await;
    let credentials = rotated
        .status
        .as_ref()
        .and_then(|s| s.credentials.clone())
        .expect("the status records the credentials");
    assert_eq!(credentials.database_user.as_deref(), Some("webtoon_2"));
    let times = credentials.last_rotated.expect("rotation times");
    assert!(times.database.is_some() && times.database_backup.is_some());
    assert!(times.database_root.is_some() && times.cache.is_some());
    let synced = condition(&rotated, "CredentialsSynced").expect("CredentialsSynced");
    assert_eq!(
        (synced.status.as_str(), synced.reason.as_str()),
        ("True", "Synced")
    );
    let (after, annotations) = secret_data(&secrets, &secret_name).await;
    for key in [
        "database-root-password",
        "database-admin-password",
        "database-password",
        "database-backup-password",
        "cache-password",
        "cache-admin-password",
    ] {
        assert_ne!(before[key], after[key], "{key} was rotated");
    }
    assert!(
        after
            .keys()
            .all(|k| !k.ends_with("-next") && !k.ends_with("-previous")),
        "no pending or previous value is left: {:?}",
        after.keys().collect::<Vec<_>>()
    );
    assert_eq!(
        annotations
            .get("webtoon.io/credentials-generation")
            .map(String::as_str),
        Some("1")
    );
    assert!(!annotations.contains_key("webtoon.io/credentials-rotation"));
    let was = deployments
        .get(&format!("{name}-was"))
        .await
        .expect("the WAS Deployment exists");
    assert_eq!(
        was_env(&was, "WEBTOON_DB_USER").as_deref(),
        Some("webtoon_2")
    );
    stack::wait_ready(&client, &namespace, &name, ROTATED_WITHIN).await;
    let seen = reasons(&client, &namespace, &name).await;
    for reason in [
        "RotationStarted",
        "CredentialsSwitched",
        "CredentialsRotated",
    ] {
        assert!(seen.iter().any(|r| r == reason), "event {reason}: {seen:?}");
    }
    // Two steps, a Job per tier each, created by the operator and gone once done.
    let gone = |r: &webtoon_e2e::audit::Requests, component: &str| {
        r.entries.iter().any(|e| {
            e.verb == "delete"
                && e.resource() == "networkpolicies"
                && e.name() == format!("{name}-{component}")
        })
    };
    let requests = audit
        .wait_for(
            since,
            operator.user(),
            Duration::from_secs(30),
            "the rotation's policies pruned",
            |r| gone(r, "database-rotation") && gone(r, "cache-rotation"),
        )
        .await;
    let mut created: Vec<String> = requests
        .entries
        .iter()
        .filter(|e| e.verb == "create" && e.resource() == "jobs" && e.code() == 201)
        .map(|e| e.name().to_string())
        .filter(|n| n.contains("-rotation-"))
        .collect();
    created.sort();
    assert_eq!(
        created.len(),
        4,
        "add and finish, database and cache: {created:?}"
    );
    assert_eq!(
        created
            .iter()
            .filter(|n| n.starts_with(&format!("{name}-database-rotation-")))
            .count(),
        2
    );
    // Their pods' isolation came first and went with them.
    for component in ["database-rotation", "cache-rotation"] {
        let policy = format!("{name}-{component}");
        for verb in ["patch", "delete"] {
            assert!(
                requests.entries.iter().any(|e| e.verb == verb
                    && e.resource() == "networkpolicies"
                    && e.name() == policy),
                "the operator did not {verb} the NetworkPolicy {policy}"
            );
        }
    }
    let record = credentials.rotation.clone().expect("the rotation record");
    if let (Some(start), Some(end)) = (&record.start_time, &record.completion_time) {
        eprintln!(
            "rotation {} took {}s on the cluster",
            record.request,
            end.0.duration_since(start.0).as_secs_f64()
        );
    }
    stack::wait_until_none(
        &Api::<Job>::namespaced(client.clone(), &namespace),
        "app.kubernetes.io/component in (database-rotation, cache-rotation)",
        Duration::from_secs(60),
    )
    .await;

    // Rotated and settled: a reconcile writes nothing.
    let quiet = audit.mark();
    let seen = operator.reconciles().await.unwrap_or_default();
    stack::touch(&client, &namespace, &name, "settled").await;
    all_finished(&operator, seen + 1).await;
    let writes: Vec<String> = audit
        .requests_since(quiet, operator.user())
        .writes()
        .iter()
        .filter(|e| e.resource() != "events")
        .map(|e| format!("{} {} {}", e.verb, e.resource(), e.name()))
        .collect();
    assert!(writes.is_empty(), "a settled stack was written: {writes:?}");

    // A hand edit of the Secret is reported, and holds every rotation back.
    let typed = ByteString(b"typed-by-hand".to_vec());
    secrets
        .patch(
            &secret_name,
            &PatchParams {
                field_manager: Some("kubectl-edit".to_string()),
                ..Default::default()
            },
            &Patch::Merge(serde_json::json!({"data": {"database-password": typed}})),
        )
        .await
        .expect("the admin may edit the Secret");
    asking(&mut minimal, "rotate-2");
    stack::apply(&client, &minimal).await;
    let edited = wait::until(
        &stacks,
        &name,
        Duration::from_secs(60),
        |s: Option<&WebtoonStack>| {
            s.and_then(|s| condition(s, "CredentialsSynced"))
                .is_some_and(|c| c.reason == "SecretEdited")
        },
    )
    .await;
    let credentials = edited
        .status
        .as_ref()
        .and_then(|s| s.credentials.clone())
        .expect("the status records the credentials");
    assert_eq!(credentials.edited_keys, ["database-password"]);
    assert_eq!(
        rotation(&edited),
        Some(("rotate-1".to_string(), RotationPhase::Succeeded, 1))
    );
    assert_eq!(
        condition(&edited, "Stalled").map(|c| c.status.as_str()),
        Some("True"),
        "a person must act"
    );
    let seen = operator.reconciles().await.unwrap_or_default();
    stack::touch(&client, &namespace, &name, "while-edited").await;
    all_finished(&operator, seen + 1).await;
    let (held, _) = secret_data(&secrets, &secret_name).await;
    assert_eq!(
        held["database-password"], "typed-by-hand",
        "the operator leaves the edit alone"
    );
    assert!(
        !held.contains_key("database-password-next"),
        "and rotates nothing"
    );
    assert!(
        reasons(&client, &namespace, &name)
            .await
            .iter()
            .any(|r| r == "CredentialsEdited")
    );

    // Put back: the request waiting behind it runs, back to the first account.
    let original = ByteString(after["database-password"].clone().into_bytes());
    secrets
        .patch(
            &secret_name,
            &PatchParams {
                field_manager: Some("kubectl-edit".to_string()),
                ..Default::default()
            },
            &Patch::Merge(serde_json::json!({"data": {"database-password": original}})),
        )
        .await
        .expect("the admin may edit the Secret");
    // A Secret kept under Retain has no owner, so its edits reach the operator at the
    // next reconcile; a write to the stack brings that about now.
    stack::touch(&client, &namespace, &name, "put-back").await;
    let again = wait::until(
        &stacks,
        &name,
        ROTATED_WITHIN,
        |s: Option<&WebtoonStack>| {
            s.and_then(rotation) == Some(("rotate-2".to_string(), RotationPhase::Succeeded, 2))
        },
    )
    .await;
    assert_eq!(
        again
            .status
            .as_ref()
            .and_then(|s| s.credentials.as_ref())
            .and_then(|c| c.database_user.as_deref()),
        Some("webtoon")
    );
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_requested_rotation_runs_its_jobs_rolls_the_was_and_a_hand_edit_holds_it_back() {
    within_namespace("rotation", LIMIT, |client, namespace| {
        rotations(client, namespace)
    })
    .await;
}
