//! Migrations that run once: a new stack migrates before its first WAS pod starts;
//! a new image is migrated by one Job, after a backup named in status, while the old
//! pods serve, and the WAS moves only when the Job succeeded; a migration that fails
//! leaves the WAS on its image, reported as a failed release. The local cluster's
//! KWOK stages complete a Job's pod, and fail it when its command says `exit N`; on
//! kind the demo WAS migrates for real, and `sh` is missing from its image, which
//! fails the broken migration there too.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::pods::template_image;
use webtoon_e2e::stack;
use webtoon_e2e::wait;
use webtoon_operator::api::{
    BackupSpec, MigrationPhase, MigrationSpec, VerifySpec, VolumeSpec, WebtoonStack,
};

const LIMIT: Duration = Duration::from_secs(420);
/// The next releases, unless `$WEBTOON_E2E_NEXT_WAS_IMAGE` and
/// `$WEBTOON_E2E_THIRD_WAS_IMAGE` name images the cluster can pull.
const NEXT_WAS: &str = "registry.example/minitoon/was:1.1.0";
const THIRD_WAS: &str = "registry.example/minitoon/was:1.2.0";

fn migration(stack: &WebtoonStack) -> Option<(String, MigrationPhase, Option<String>)> {
    let m = stack.status.as_ref()?.migration.as_ref()?;
    Some((m.image.clone(), m.phase, m.backup.clone()))
}

async fn migrations_gate_releases(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let mut minimal = stack::example("minimal", &namespace);
    // The demo WAS's own migration, which creates its schema where a real node runs it.
    minimal.spec.was.migration = Some(MigrationSpec {
        command: vec!["/usr/local/bin/demo-was".to_string(), "migrate".to_string()],
        env: Vec::new(),
        timeout_seconds: 300,
    });
    minimal.spec.database.backup = Some(BackupSpec {
        schedule: "0 3 * * *".to_string(),
        time_zone: "Asia/Seoul".to_string(),
        keep: 7,
        storage: Some(VolumeSpec {
            size: "1Gi".to_string(),
            storage_class_name: None,
        }),
        object_store: None,
        verify: VerifySpec::default(),
    });
    let first = minimal.spec.was.image.clone();
    let ready = stack::deploy(&client, minimal.clone()).await;
    let name = ready.name_any();
    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let jobs: Api<Job> = Api::namespaced(client.clone(), &namespace);
    let was = format!("{name}-was");

    // A new stack: the migration ran, with nothing to back up, before any WAS pod.
    let (image, phase, backup) = migration(&ready).expect("the first migration is recorded");
    assert_eq!(
        (image.as_str(), phase, backup),
        (first.as_str(), MigrationPhase::Succeeded, None)
    );
    let deployment = deployments
        .get(&was)
        .await
        .expect("the WAS Deployment exists");
    let migration_job = jobs
        .list(&ListParams::default().labels("app.kubernetes.io/component=was-migration"))
        .await
        .expect("jobs can be listed")
        .items
        .into_iter()
        .next()
        .expect("the migration Job is kept for its logs");
    let finished = migration_job
        .status
        .as_ref()
        .and_then(|s| s.completion_time.clone())
        .expect("the migration Job finished");
    let created = deployment
        .metadata
        .creation_timestamp
        .clone()
        .expect("the Deployment has a creation time");
    assert!(
        created.0 >= finished.0,
        "the WAS Deployment ({}) was created before its migration finished ({})",
        created.0,
        finished.0
    );

    // A new image: backup, migration, then the rollout.
    let next_image = stack::was_image(stack::NEXT_WAS_IMAGE_ENV, NEXT_WAS);
    let mut next = minimal.clone();
    next.spec.was.image = next_image.clone();
    stack::apply(&client, &next).await;
    let migrated = wait::until(
        &stacks,
        &name,
        Duration::from_secs(120),
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                migration(s)
                    .is_some_and(|(i, p, _)| i == next_image && p == MigrationPhase::Succeeded)
            })
        },
    )
    .await;
    let (_, _, backup) = migration(&migrated).expect("recorded");
    let backup = backup.expect("a backup is taken before migrating a running stack");
    assert!(
        backup.starts_with("webtoon-") && backup.ends_with("Z.sql.gz"),
        "the backup file is named as the backup schedule names them: {backup}"
    );
    let backup_jobs = jobs
        .list(&ListParams::default().labels("app.kubernetes.io/component=database-backup"))
        .await
        .expect("jobs can be listed")
        .items;
    assert!(
        backup_jobs.iter().any(|j| {
            j.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .and_then(|s| s.containers.first())
                .and_then(|c| c.env.as_ref())
                .is_some_and(|env| {
                    env.iter().any(|e| {
                        e.name == "WEBTOON_BACKUP_NAME"
                            && e.value.as_deref() == Some(backup.as_str())
                    })
                })
        }),
        "a backup Job wrote {backup}"
    );
    wait::until(
        &deployments,
        &was,
        Duration::from_secs(120),
        |d: Option<&Deployment>| d.is_some_and(|d| template_image(d) == next_image),
    )
    .await;
    stack::wait_ready(&client, &namespace, &name, Duration::from_secs(120)).await;

    // A migration that fails: the WAS stays on the image it runs.
    let third_image = stack::was_image(stack::THIRD_WAS_IMAGE_ENV, THIRD_WAS);
    let mut broken = next.clone();
    broken.spec.was.image = third_image.clone();
    if let Some(m) = broken.spec.was.migration.as_mut() {
        m.command = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
    }
    stack::apply(&client, &broken).await;
    let failed = wait::until(
        &stacks,
        &name,
        Duration::from_secs(120),
        |s: Option<&WebtoonStack>| {
            s.is_some_and(|s| {
                migration(s)
                    .is_some_and(|(i, p, _)| i == third_image && p == MigrationPhase::Failed)
                    && stack::has_condition(s, "Stalled", "True")
            })
        },
    )
    .await;
    assert_eq!(
        stack::condition(&failed, "RolledBack").map(|c| (c.status.as_str(), c.reason.as_str())),
        Some(("True", "MigrationFailed"))
    );
    let seen = operator.reconciles().await.unwrap_or_default();
    operator
        .wait_for_reconciles(seen + 2, Duration::from_secs(60))
        .await;
    let after = deployments
        .get(&was)
        .await
        .expect("the WAS Deployment exists");
    assert_eq!(
        template_image(&after),
        next_image,
        "the WAS moved to an image whose migration failed"
    );
    let now = stacks.get(&name).await.expect("the stack can be read");
    assert!(stack::ready_now(&now), "the old release still serves");
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_gates_each_new_was_image_and_a_failed_one_keeps_the_old() {
    within_namespace("migration", LIMIT, |client, namespace| {
        migrations_gate_releases(client, namespace)
    })
    .await;
}
