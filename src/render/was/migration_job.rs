//! The migration Job: the new WAS image runs the spec's migration command once,
//! with the WAS's own environment, before any pod of that image serves.

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::env::was_env;
use crate::api::{MigrationSpec, ValidatedStack};
use crate::render::meta::{Lifetime, checksum, child_name, labels, object_meta};
use crate::render::security::{
    container_security_context, pod_security_context_image_user, scratch_volume,
};
use crate::render::volumes::mount;

/// Component label of migration pods: not `was`, so that no Service sends them
/// requests; the network policies give them the WAS's egress.
pub const MIGRATION_COMPONENT: &str = "was-migration";

/// Name of the migration Job of `image`; one image, one Job.
pub fn migration_job_name(stack: &ValidatedStack, image: &str) -> String {
    format!(
        "{}-{}",
        child_name(stack, "migration"),
        &checksum(image)[..8]
    )
}

/// The migration Job of `image`: no retry (a migration that failed half-way must
/// not run again on its own) and stopped after the spec's timeout.
pub fn migration_job(stack: &ValidatedStack, migration: &MigrationSpec, image: &str) -> Job {
    let was = &stack.spec.was;
    let mut env = was_env(stack);
    env.retain(|e| !migration.env.iter().any(|m| m.name == e.name));
    env.extend(migration.env.iter().cloned());
    let container = Container {
        name: "migration".to_string(),
        image: Some(image.to_string()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(migration.command.clone()),
        env: Some(env),
        resources: Some(was.resources.clone()),
        security_context: Some(container_security_context(!was.writable_root_filesystem)),
        volume_mounts: Some(vec![mount("tmp", "/tmp", false)]),
        ..Default::default()
    };
    Job {
        metadata: object_meta(
            stack,
            migration_job_name(stack, image),
            MIGRATION_COMPONENT,
            Lifetime::WithStack,
        ),
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(i64::from(migration.timeout_seconds)),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(stack, MIGRATION_COMPONENT)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    restart_policy: Some("Never".to_string()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(pod_security_context_image_user()),
                    volumes: Some(vec![scratch_volume("tmp", "1Gi", false)]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}
