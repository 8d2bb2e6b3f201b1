//! The verify CronJob: on its own schedule it loads the newest backup into a
//! throwaway MariaDB inside its own pod, compares every table with the backup's
//! description, and discards it. Nothing of the live database is touched, and the
//! pod has no route to it.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::backup_cronjob::{
    BACKUP_MOUNT, SCRIPT_DIR, STAGING_MOUNT, STAGING_VOLUME, backup_name, claim_volume,
    disk_sized_volume, on_database_node, staging_volume,
};
use super::backup_script::BACKUP_DIR_ENV;
use super::object_store;
use super::verify_script::{VERIFY_FROM_ENV, VERIFY_SCRIPT, VERIFY_WORK_ENV};
use crate::api::{BackupSpec, ValidatedStack};
use crate::backup::report::{REPORT_FILE_ENV, TERMINATION_LOG};
use crate::render::credentials::env_value;
use crate::render::meta::{Lifetime, child_name, labels, object_meta};
use crate::render::security::{container_security_context, pod_security_context, scratch_volume};
use crate::render::stateful::DATA_UID;
use crate::render::volumes::{config_map_volume, mount};

/// Component label of the verify job pods; the network policies select them by it.
pub const VERIFY_COMPONENT: &str = "database-verify";

/// Where the throwaway server keeps its data and socket.
const WORK_MOUNT: &str = "/verify";

/// Name of the verify CronJob.
pub fn verify_name(stack: &ValidatedStack) -> String {
    child_name(stack, VERIFY_COMPONENT)
}

/// The verify CronJob. It reads the backup volume when the stack has one (on the
/// database's node, for a ReadWriteOnce claim), else the operator's image fetches
/// the newest described backup from the bucket first and checks it.
pub fn verify_cronjob(stack: &ValidatedStack, backup: &BackupSpec, tool_image: &str) -> CronJob {
    let db = &stack.spec.database;
    let scripts = backup_name(stack);
    let from_volume = backup.volume().is_some();
    let dir = if from_volume {
        BACKUP_MOUNT
    } else {
        STAGING_MOUNT
    };
    let mut mounts = vec![
        mount("script", SCRIPT_DIR, true),
        mount("work", WORK_MOUNT, false),
        mount("tmp", "/tmp", false),
    ];
    let mut volumes = vec![
        config_map_volume("script", &scripts, true),
        // The throwaway database is as large as the live one.
        disk_sized_volume("work"),
        scratch_volume("tmp", "64Mi", false),
    ];
    let mut init_containers = None;
    if from_volume {
        mounts.push(mount("backup", BACKUP_MOUNT, true));
        volumes.push(claim_volume("backup", &scripts, true));
    } else if let Some(store) = &backup.object_store {
        mounts.push(mount(STAGING_VOLUME, STAGING_MOUNT, true));
        volumes.push(staging_volume());
        volumes.extend(object_store::ca_volume(store));
        init_containers = Some(vec![object_store::tool_container(
            stack,
            store,
            tool_image,
            "fetch-backup",
            vec![
                "fetch".to_string(),
                "--dir".to_string(),
                STAGING_MOUNT.to_string(),
                "--from".to_string(),
                "latest".to_string(),
            ],
            vec![env_value("WEBTOON_FETCH_REPORT_KIND", "verify")],
            vec![mount(STAGING_VOLUME, STAGING_MOUNT, false)],
        )]);
    }
    let verify = Container {
        name: "verify".to_string(),
        image: Some(db.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(vec![
            "bash".to_string(),
            format!("{SCRIPT_DIR}/{VERIFY_SCRIPT}"),
        ]),
        env: Some(vec![
            env_value("WEBTOON_DB_NAME", db.name.clone()),
            env_value(BACKUP_DIR_ENV, dir),
            env_value(VERIFY_FROM_ENV, "latest"),
            env_value(VERIFY_WORK_ENV, WORK_MOUNT),
            env_value(REPORT_FILE_ENV, TERMINATION_LOG),
        ]),
        // The throwaway server gets the live one's resources: the same dump must load.
        resources: Some(db.resources.clone()),
        security_context: Some(container_security_context(true)),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let pod = PodSpec {
        init_containers,
        containers: vec![verify],
        restart_policy: Some("Never".to_string()),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        security_context: Some(pod_security_context(DATA_UID, Some(DATA_UID))),
        affinity: from_volume.then(|| on_database_node(stack)),
        volumes: Some(volumes),
        ..Default::default()
    };
    CronJob {
        metadata: object_meta(stack, verify_name(stack), "database", Lifetime::WithStack),
        spec: Some(CronJobSpec {
            schedule: backup.verify.schedule.clone(),
            time_zone: Some(backup.time_zone.clone()),
            suspend: Some(backup.verify.suspend),
            concurrency_policy: Some("Forbid".to_string()),
            starting_deadline_seconds: Some(3600),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(stack, VERIFY_COMPONENT)),
                    ..Default::default()
                }),
                spec: Some(JobSpec {
                    // A failed verification is a finding, not a hiccup: no retry that
                    // could hide it behind a later success.
                    backoff_limit: Some(0),
                    active_deadline_seconds: Some(6 * 3600),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels(stack, VERIFY_COMPONENT)),
                            ..Default::default()
                        }),
                        spec: Some(pod),
                    },
                    ..Default::default()
                }),
            },
        }),
        ..Default::default()
    }
}
