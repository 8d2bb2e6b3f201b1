//! The backup CronJob, its script ConfigMap and the claim that holds the backups.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, Container, EmptyDirVolumeSource, PersistentVolumeClaim,
    PersistentVolumeClaimVolumeSource, PodAffinity, PodAffinityTerm, PodSpec, PodTemplateSpec,
    Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::backup_script::{
    BACKUP_DIR_ENV, BACKUP_KEEP_ENV, BACKUP_LOCATION_ENV, BACKUP_NAME_ENV, BACKUP_SCRIPT,
    backup_script,
};
use super::init_script::backup_user;
use super::object_store;
use super::verify_script::{VERIFY_SCRIPT, verify_script};
use super::{PORT, service_name};
use crate::api::{BackupSpec, ValidatedStack, VolumeSpec};
use crate::backup::report::{REPORT_FILE_ENV, TERMINATION_LOG};
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
/// Directory of the backup and verify scripts in their jobs.
pub(super) const SCRIPT_DIR: &str = "/opt/webtoon";
/// Where a dump is staged for upload, or a fetched backup kept, in a job's pod.
pub(super) const STAGING_MOUNT: &str = "/staging";
/// Name of the staging volume.
pub(super) const STAGING_VOLUME: &str = "staging";
/// File in the staging directory the dump step reports to, for the upload step.
const DUMP_REPORT: &str = "dump-report.json";

/// Name of the backup CronJob, its ConfigMap and its claim.
pub fn backup_name(stack: &ValidatedStack) -> String {
    child_name(stack, BACKUP_COMPONENT)
}

/// The claim that holds the backup files, `volume` or, for a restore-only stack,
/// the claim a deleted stack left behind. It is data: never pruned, and kept under
/// `deletionPolicy: Retain`, so a stack created again can restore from it.
pub fn backup_claim(stack: &ValidatedStack, volume: Option<VolumeSpec>) -> PersistentVolumeClaim {
    let storage = volume.unwrap_or_else(|| {
        // A restore-only stack adopts the claim a deleted stack left behind; these
        // values only matter if there is none, and then the restore reports it.
        VolumeSpec {
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

/// The ConfigMap holding `backup.sh` and `verify.sh`.
pub fn backup_config_map(stack: &ValidatedStack) -> ConfigMap {
    ConfigMap {
        metadata: object_meta(stack, backup_name(stack), "database", Lifetime::WithStack),
        data: Some(BTreeMap::from([
            (BACKUP_SCRIPT.to_string(), backup_script()),
            (VERIFY_SCRIPT.to_string(), verify_script()),
        ])),
        ..Default::default()
    }
}

/// The backup CronJob: one run at a time (`Forbid`), as the backup user, in the
/// database image (which has `mariadb-dump`), on the node of the database pod so
/// that a ReadWriteOnce backup claim can be shared with a restore.
pub fn backup_cronjob(stack: &ValidatedStack, backup: &BackupSpec, tool_image: &str) -> CronJob {
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
                // Labelled like the pods, so the operator finds the runs it reports on.
                metadata: Some(ObjectMeta {
                    labels: Some(labels(stack, BACKUP_COMPONENT)),
                    ..Default::default()
                }),
                spec: Some(backup_job_spec(stack, backup, None, tool_image)),
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
    tool_image: &str,
) -> Job {
    Job {
        metadata: object_meta(
            stack,
            pre_migration_backup_job_name(stack, image),
            BACKUP_COMPONENT,
            Lifetime::WithStack,
        ),
        spec: Some(backup_job_spec(stack, backup, Some(file), tool_image)),
        ..Default::default()
    }
}

/// The Job of one backup, into `file` or a file named by the time it starts. With
/// a volume alone the database image dumps and reports; with a bucket it dumps in
/// an init container (onto the volume, or a scratch directory without one) and the
/// operator's image uploads the described dump, prunes the bucket and reports.
fn backup_job_spec(
    stack: &ValidatedStack,
    backup: &BackupSpec,
    file: Option<&str>,
    tool_image: &str,
) -> JobSpec {
    let db = &stack.spec.database;
    let name = backup_name(stack);
    let volume = backup.volume();
    let dir = if volume.is_some() {
        BACKUP_MOUNT
    } else {
        STAGING_MOUNT
    };
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
        env_value(BACKUP_DIR_ENV, dir),
        env_value(BACKUP_KEEP_ENV, backup.keep.to_string()),
    ];
    if volume.is_some() {
        env.push(env_value(BACKUP_LOCATION_ENV, format!("volume:{name}")));
    }
    let dump_report = format!("{STAGING_MOUNT}/{DUMP_REPORT}");
    env.push(env_value(
        REPORT_FILE_ENV,
        if backup.object_store.is_some() {
            dump_report.as_str()
        } else {
            TERMINATION_LOG
        },
    ));
    if let Some(file) = file {
        env.push(env_value(BACKUP_NAME_ENV, file.to_string()));
    }
    let mut mounts = vec![
        mount("script", SCRIPT_DIR, true),
        mount("tmp", "/tmp", false),
    ];
    let mut volumes = vec![
        config_map_volume("script", &name, true),
        scratch_volume("tmp", "64Mi", false),
    ];
    if volume.is_some() {
        mounts.push(mount("backup", BACKUP_MOUNT, false));
        volumes.push(claim_volume("backup", &name, false));
    }
    if backup.object_store.is_some() {
        mounts.push(mount(STAGING_VOLUME, STAGING_MOUNT, false));
        volumes.push(staging_volume());
    }
    let dump = Container {
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
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let (init_containers, containers) = match &backup.object_store {
        None => (None, vec![dump]),
        Some(store) => {
            let mut tool_mounts = vec![mount(STAGING_VOLUME, STAGING_MOUNT, false)];
            if volume.is_some() {
                tool_mounts.push(mount("backup", BACKUP_MOUNT, true));
            }
            volumes.extend(object_store::ca_volume(store));
            let upload = object_store::tool_container(
                stack,
                store,
                tool_image,
                "upload",
                vec![
                    "upload".to_string(),
                    "--dir".to_string(),
                    dir.to_string(),
                    "--dump-report".to_string(),
                    dump_report.clone(),
                ],
                vec![env_value(BACKUP_KEEP_ENV, backup.keep.to_string())],
                tool_mounts,
            );
            (Some(vec![dump]), vec![upload])
        }
    };
    let pod = PodSpec {
        init_containers,
        containers,
        restart_policy: Some("Never".to_string()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(pod_security_context(DATA_UID, Some(DATA_UID))),
        affinity: volume.is_some().then(|| on_database_node(stack)),
        volumes: Some(volumes),
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

/// Scheduling beside the database pod, so that a ReadWriteOnce backup claim mounted
/// there (by a restore) can be mounted here too.
pub(super) fn on_database_node(stack: &ValidatedStack) -> Affinity {
    Affinity {
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
    }
}

/// A volume of the claim `claim`.
pub(super) fn claim_volume(volume: &str, claim: &str, read_only: bool) -> Volume {
    Volume {
        name: volume.to_string(),
        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
            claim_name: claim.to_string(),
            read_only: read_only.then_some(true),
        }),
        ..Default::default()
    }
}

/// The scratch directory a dump is staged in, or fetched into.
pub(super) fn staging_volume() -> Volume {
    disk_sized_volume(STAGING_VOLUME)
}

/// A scratch directory on the node's disk as large as the data put in it (a dump, a
/// throwaway database), so with no size limit of ours.
pub(super) fn disk_sized_volume(name: &str) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }
}
