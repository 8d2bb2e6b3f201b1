//! Backups as the controller reports them: the backup and verify CronJobs it renders
//! run every minute here, the Job controller runs their pods, and the local
//! cluster's KWOK stages stand in for the scripts' termination-message reports (a
//! dump named by the time, a verification that passed; with a database image under
//! `registry.example/failing/`, a failed dump and a failed verification). The
//! operator turns them into `status.backups`, the `BackupsHealthy` condition, events
//! and metrics; two scheduled runs without a backup make the backups stale.

use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack::{self, condition};
use webtoon_e2e::wait;
use webtoon_operator::api::{BackupSpec, ObjectStoreSpec, VerifySpec, VolumeSpec, WebtoonStack};
use webtoon_operator::render::DEFAULT_OPERATOR_IMAGE;

const LIMIT: Duration = Duration::from_secs(480);
/// Two runs of an every-minute schedule, the Jobs' retries and the writes after them.
const REPORTED_WITHIN: Duration = Duration::from_secs(240);

fn every_minute(storage: Option<VolumeSpec>, object_store: Option<ObjectStoreSpec>) -> BackupSpec {
    BackupSpec {
        schedule: "* * * * *".to_string(),
        time_zone: "Etc/UTC".to_string(),
        keep: 3,
        storage,
        object_store,
        verify: VerifySpec {
            schedule: "* * * * *".to_string(),
            suspend: false,
        },
    }
}

fn bucket() -> ObjectStoreSpec {
    serde_json::from_value(serde_json::json!({
        "endpoint": "https://s3.ap-northeast-2.amazonaws.com",
        "bucket": "webtoon-backups",
        "secretName": "backup-s3",
    }))
    .expect("an object store spec")
}

fn backups_healthy(stack: &WebtoonStack) -> Option<(String, String, String)> {
    condition(stack, "BackupsHealthy")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn events(client: &Client, namespace: &str, stack: &str, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("events can be listed")
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(stack)
                && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

async fn reported_backups(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);
    Api::<Secret>::namespaced(client.clone(), &namespace)
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "backup-s3"},
                "stringData": {"AWS_ACCESS_KEY_ID": "e2e", "AWS_SECRET_ACCESS_KEY": "e2e-secret"},
            }))
            .expect("a Secret"),
        )
        .await
        .expect("the bucket's keys are stored");

    // A stack whose backups and verified restores succeed, onto its volume.
    let mut backed = stack::example("minimal", &namespace);
    backed.metadata.name = Some("backed".to_string());
    backed.spec.database.backup = Some(every_minute(
        Some(VolumeSpec {
            size: "1Gi".to_string(),
            storage_class_name: None,
        }),
        None,
    ));
    // A stack whose dumps and verifications fail, backing up to a bucket alone.
    let mut failing = stack::example("minimal", &namespace);
    failing.metadata.name = Some("failing".to_string());
    failing.spec.database.image = "registry.example/failing/mariadb:11.4.4".to_string();
    failing.spec.database.backup = Some(every_minute(None, Some(bucket())));
    // A stack whose backup pods never run: no backup, ever.
    let mut stuck = stack::example("minimal", &namespace);
    stuck.metadata.name = Some("stuck".to_string());
    stuck.spec.database.image = "registry.invalid/mariadb:11.4.4".to_string();
    stuck.spec.database.backup = Some(every_minute(None, Some(bucket())));
    for mut unready in [failing, stuck] {
        stack::prepare(&client, &mut unready).await;
        stack::apply(&client, &unready).await;
    }
    stack::deploy(&client, backed).await;

    let healthy = wait::until(
        &stacks,
        "backed",
        REPORTED_WITHIN,
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                let backups = s.status.as_ref().and_then(|st| st.backups.as_ref());
                backups.is_some_and(|b| {
                    b.last_backup.is_some()
                        && b.last_verified_restore
                            .as_ref()
                            .is_some_and(|v| v.result == "Passed")
                }) && backups_healthy(s).is_some_and(|(status, reason, _)| {
                    status == "True" && reason == "BackupsCurrent"
                })
            })
        },
    )
    .await;
    let backups = healthy
        .status
        .as_ref()
        .and_then(|s| s.backups.clone())
        .expect("backups in status");
    let last = backups.last_backup.expect("the newest backup");
    assert!(
        last.name.starts_with("webtoon-") && last.name.ends_with("Z.sql.gz"),
        "{last:?}"
    );
    assert_eq!(
        last.location.as_deref(),
        Some(format!("volume:backed-database-backup/{}", last.name).as_str())
    );
    assert_eq!(last.bytes, Some(4096));
    let verified = backups.last_verified_restore.expect("a verified restore");
    assert_eq!(verified.load_seconds, Some(1));
    assert!(
        !events(&client, &namespace, "backed", "BackedUp")
            .await
            .is_empty()
    );
    assert!(
        !events(&client, &namespace, "backed", "RestoreVerified")
            .await
            .is_empty()
    );
    let labels = format!("{{namespace=\"{namespace}\",stack=\"backed\"}}");
    assert_eq!(
        operator
            .metric(&format!("webtoon_backups_healthy{labels}"))
            .await,
        Some(1.0)
    );
    let stamp = operator
        .metric(&format!(
            "webtoon_backup_last_success_timestamp_seconds{labels}"
        ))
        .await
        .expect("the newest backup's time is exported");
    assert_eq!(stamp as i64, last.time.0.as_second());

    // The failing stack: the failed dump's own words, in the condition, an event and
    // the failure counter; the verification that failed says what differed.
    let failed = wait::until(
        &stacks,
        "failing",
        REPORTED_WITHIN,
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                backups_healthy(s).is_some_and(|(status, reason, _)| {
                    status == "False" && reason == "BackupFailed"
                }) && s
                    .status
                    .as_ref()
                    .and_then(|st| st.backups.as_ref())
                    .and_then(|b| b.last_verified_restore.as_ref())
                    .is_some_and(|v| v.result == "Failed")
            })
        },
    )
    .await;
    let (_, _, message) = backups_healthy(&failed).expect("the condition");
    assert!(
        message.contains("mariadb-dump or gzip exited with an error"),
        "{message}"
    );
    let verified = failed
        .status
        .as_ref()
        .and_then(|s| s.backups.as_ref())
        .and_then(|b| b.last_verified_restore.clone())
        .expect("a verification");
    assert!(
        verified
            .message
            .as_deref()
            .is_some_and(|m| m.contains("41 rows")),
        "{verified:?}"
    );
    assert!(
        events(&client, &namespace, "failing", "BackupFailed")
            .await
            .iter()
            .all(|e| e.type_.as_deref() == Some("Warning"))
    );
    assert!(
        !events(&client, &namespace, "failing", "BackupFailed")
            .await
            .is_empty()
    );
    assert!(
        !events(&client, &namespace, "failing", "RestoreVerificationFailed")
            .await
            .is_empty()
    );
    let failures = operator
        .metric(&format!(
            "webtoon_backup_failures_total{{namespace=\"{namespace}\",stack=\"failing\",kind=\"backup\"}}"
        ))
        .await
        .unwrap_or_default();
    assert!(failures >= 1.0, "{failures}");
    // The bucket's uploader is the operator's own image, after the dump.
    let job = Api::<Job>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default().labels(
            "app.kubernetes.io/instance=failing,app.kubernetes.io/component=database-backup",
        ))
        .await
        .expect("Jobs can be listed")
        .items
        .into_iter()
        .next()
        .expect("a backup Job of the failing stack");
    let pod = job
        .spec
        .and_then(|s| s.template.spec)
        .expect("the Job's pod");
    let init: Vec<_> = pod
        .init_containers
        .unwrap_or_default()
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(init, ["backup"]);
    assert_eq!(pod.containers[0].name, "upload");
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some(DEFAULT_OPERATOR_IMAGE)
    );

    // The stuck stack: two runs of the schedule passed without a backup.
    let stale = wait::until(
        &stacks,
        "stuck",
        REPORTED_WITHIN,
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                backups_healthy(s)
                    .is_some_and(|(status, reason, _)| status == "False" && reason == "BackupStale")
            })
        },
    )
    .await;
    let (_, _, message) = backups_healthy(&stale).expect("the condition");
    assert!(message.contains("stuck-database-backup"), "{message}");
    assert!(
        !events(&client, &namespace, "stuck", "BackupStale")
            .await
            .is_empty()
    );
    let verify = Api::<CronJob>::namespaced(client.clone(), &namespace)
        .get("stuck-database-verify")
        .await
        .expect("the verify CronJob exists");
    assert_eq!(
        verify.spec.as_ref().map(|s| s.schedule.as_str()),
        Some("* * * * *")
    );
}

#[tokio::test]
async fn backups_verified_restores_failures_and_staleness_are_reported() {
    within_namespace("e2e-backups", LIMIT, reported_backups).await;
}
