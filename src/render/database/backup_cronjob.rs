//! The backup CronJob, its script ConfigMap and the claim that holds the backups.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, Container, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource,
    PodAffinity, PodAffinityTerm, PodSpec, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::backup_script::{
    BACKUP_DIR_ENV, BACKUP_KEEP_ENV, BACKUP_NAME_ENV, BACKUP_SCRIPT, backup_script,
};
use super::init_script::backup_user;
use super::{PORT, service_name};
use crate::api::{BackupSpec, ValidatedStack};
use crate::render::credentials::{
    DATABASE_BACKUP_PASSWORD_KEY, env_from_secret, env_value, secret_name,
};
use crate::render::meta::{Lifetime, checksum, child_name, labels, object_meta, selector_labels};
use crate::render::security::{container_security_context, pod_security_context, scratch_volume};
use crate::render::stateful::DATA_UID;
use crate::render::storage::claim_spec;
use crate::render::volumes::{config_map_volume, mount};

/// Component label of the backup job pods; the network policies select them by it.
pub const BACKUP_COMPONENT: &str = "database-backup";

/// Where the backup claim is mounted, in the backup job and the database pod.
pub const BACKUP_MOUNT: &str = "/backup";
/// Directory of the backup script in the backup job.
const SCRIPT_DIR: &str = "/opt/webtoon";

/// Name of the backup CronJob, its ConfigMap and its claim.
pub fn backup_name(stack: &ValidatedStack) -> String {
    child_name(stack, BACKUP_COMPONENT)
}

/// The claim that holds the backup files. It is data: never pruned, and kept under
/// `deletionPolicy: Retain`, so a stack created again can restore from it.
pub fn backup_claim(stack: &ValidatedStack, backup: Option<&BackupSpec>) -> PersistentVolumeClaim {
    let storage = backup.map(|b| b.storage.clone()).unwrap_or_else(|| {
        // A restore-only stack adopts the claim a deleted stack left behind; these
        // values only matter if there is none, and then the restore reports it.
        crate::api::VolumeSpec {
            size: "1Gi".to_string(),
            storage_class_name: None,
        }
    });
    PersistentVolumeClaim {
        metadata: object_meta(stack, backup_name(stack), "database", Lifetime::Data),
        spec: Some(claim_spec(
            &storage.size,
            storage.storage_class_name.as_ref(),
            "ReadWriteOnce",
        )),
        ..Default::default()
    }
}

/// The ConfigMap holding `backup.sh`.
pub fn backup_config_map(stack: &ValidatedStack) -> ConfigMap {
    ConfigMap {
        metadata: object_meta(stack, backup_name(stack), "database", Lifetime::WithStack),
        data: Some(BTreeMap::from([(
            BACKUP_SCRIPT.to_string(),
            backup_script(),
        )])),
        ..Default::default()
    }
}

/// The backup CronJob: one run at a time (`Forbid`), as the backup user, in the
/// database image (which has `mariadb-dump`), on the node of the database pod so
/// that a ReadWriteOnce backup claim can be shared with a restore.
pub fn backup_cronjob(stack: &ValidatedStack, backup: &BackupSpec) -> CronJob {
    CronJob {
        metadata: object_meta(stack, backup_name(stack), "database", Lifetime::WithStack),
        spec: Some(CronJobSpec {
            schedule: backup.schedule.clone(),
            time_zone: Some(backup.time_zone.clone()),
            concurrency_policy: Some("Forbid".to_string()),
            // A run missed by more than an hour waits for the next schedule.
            starting_deadline_seconds: Some(3600),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: None,
                spec: Some(backup_job_spec(stack, backup, None)),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Name of the Job that backs the database up before the migration to `image`.
pub fn pre_migration_backup_job_name(stack: &ValidatedStack, image: &str) -> String {
    format!("{}-{}", backup_name(stack), &checksum(image)[..8])
}

/// The backup taken before the migration to `image`, into the file `file`: the
/// scheduled backup's pod, run once, under a name the operator chose and records.
pub fn pre_migration_backup_job(
    stack: &ValidatedStack,
    backup: &BackupSpec,
    image: &str,
    file: &str,
) -> Job {
    Job {
        metadata: object_meta(
            stack,
            pre_migration_backup_job_name(stack, image),
            BACKUP_COMPONENT,
            Lifetime::WithStack,
        ),
        spec: Some(backup_job_spec(stack, backup, Some(file))),
        ..Default::default()
    }
}

/// The Job of one backup, into `file` or a file named by the time it starts.
fn backup_job_spec(stack: &ValidatedStack, backup: &BackupSpec, file: Option<&str>) -> JobSpec {
    let db = &stack.spec.database;
    let name = backup_name(stack);
    let mut env = vec![
        env_value(
            "WEBTOON_DB_HOST",
            format!("{}.{}.svc", service_name(stack), stack.namespace),
        ),
        env_value("WEBTOON_DB_PORT", PORT.to_string()),
        env_value("WEBTOON_DB_NAME", db.name.clone()),
        env_value("WEBTOON_DB_USER", backup_user(db)),
        env_from_secret(
            "WEBTOON_DB_PASSWORD",
            &secret_name(stack),
            DATABASE_BACKUP_PASSWORD_KEY,
            false,
        ),
        env_value(BACKUP_DIR_ENV, BACKUP_MOUNT),
        env_value(BACKUP_KEEP_ENV, backup.keep.to_string()),
    ];
    if let Some(file) = file {
        env.push(env_value(BACKUP_NAME_ENV, file.to_string()));
    }
    let container = Container {
        name: "backup".to_string(),
        image: Some(db.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(vec![
            "bash".to_string(),
            format!("{SCRIPT_DIR}/{BACKUP_SCRIPT}"),
        ]),
        env: Some(env),
        resources: Some(crate::api::resources("100m", "128Mi", "1", "512Mi")),
        security_context: Some(container_security_context(true)),
        volume_mounts: Some(vec![
            mount("script", SCRIPT_DIR, true),
            mount("backup", BACKUP_MOUNT, false),
            mount("tmp", "/tmp", false),
        ]),
        ..Default::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        restart_policy: Some("Never".to_string()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(pod_security_context(DATA_UID, Some(DATA_UID))),
        affinity: Some(Affinity {
            pod_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(selector_labels(stack, "database")),
                        ..Default::default()
                    }),
                    topology_key: "kubernetes.io/hostname".to_string(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volumes: Some(vec![
            config_map_volume("script", &name, true),
            Volume {
                name: "backup".to_string(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name.clone(),
                    read_only: None,
                }),
                ..Default::default()
            },
            scratch_volume("tmp", "64Mi", false),
        ]),
        ..Default::default()
    };
    JobSpec {
        // A failed run is retried twice, then waits for the next schedule;
        // a hung dump is stopped before it could delay the next one.
        backoff_limit: Some(2),
        active_deadline_seconds: Some(6 * 3600),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels(stack, BACKUP_COMPONENT)),
                ..Default::default()
            }),
            spec: Some(pod),
        },
        ..Default::default()
    }
}
