//! The Jobs of a credentials rotation step: one per embedded tier, each running that
//! tier's `rotate.sh` in the tier's own image, reaching only its own server, and
//! reporting through its exit status and termination message. They need no API
//! access: the controller reads how they ended.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Children;
use super::cache::acl_rotation::{self, CACHE_ROTATION_COMPONENT};
use super::credentials::RotationJobs;
use super::database::rotation_job::{self, DATABASE_ROTATION_COMPONENT};
use super::meta::{Lifetime, child_name, labels, object_meta};
use super::security::{container_security_context, pod_security_context, scratch_volume};
use super::stateful::DATA_UID;
use super::volumes::{config_map_volume, mount};
use crate::api::{ServiceMode, ValidatedStack};

/// File name of each tier's rotation script.
pub const SCRIPT: &str = "rotate.sh";
/// Directory the script is mounted at.
pub const SCRIPT_DIR: &str = "/opt/webtoon";
/// Environment variable naming the file the scripts write their last words to; the
/// kubelet's `/dev/termination-log` unless set (tests point it elsewhere).
pub const TERMINATION_LOG_ENV: &str = "WEBTOON_TERMINATION_LOG";
/// Label of a rotation Job and its pod naming the step it runs.
pub const STEP_LABEL: &str = "webtoon.io/rotation-step";

/// Name of the rotation Job of `component` for the step `jobs` names.
pub fn job_name(stack: &ValidatedStack, component: &str, jobs: &RotationJobs) -> String {
    format!("{}-{}", child_name(stack, component), jobs.suffix)
}

/// The rotation Jobs of the embedded tiers, the ConfigMaps with their scripts and the
/// network policies of their pods.
pub fn build(stack: &ValidatedStack, jobs: &RotationJobs, children: &mut Children) {
    children
        .network_policies
        .extend(super::network::rotation_policies(stack));
    if stack.spec.database.mode == ServiceMode::Embedded {
        children.config_maps.push(script_config_map(
            stack,
            DATABASE_ROTATION_COMPONENT,
            rotation_job::rotation_script(stack),
        ));
        children.jobs.push(job(
            stack,
            DATABASE_ROTATION_COMPONENT,
            jobs,
            rotation_job::rotation_container(stack, jobs),
        ));
    }
    if stack.spec.cache.mode == ServiceMode::Embedded {
        children.config_maps.push(script_config_map(
            stack,
            CACHE_ROTATION_COMPONENT,
            acl_rotation::rotation_script(),
        ));
        children.jobs.push(job(
            stack,
            CACHE_ROTATION_COMPONENT,
            jobs,
            acl_rotation::rotation_container(stack, jobs),
        ));
    }
}

fn script_config_map(stack: &ValidatedStack, component: &str, script: String) -> ConfigMap {
    ConfigMap {
        metadata: object_meta(
            stack,
            child_name(stack, component),
            component,
            Lifetime::WithStack,
        ),
        data: Some(BTreeMap::from([(SCRIPT.to_string(), script)])),
        ..Default::default()
    }
}

/// The container that runs `command` in `image`: read-only, the script mounted, a
/// small `/tmp`, and the termination message taken from the log when the script
/// could not write one.
pub fn container(image: &str, command: Vec<String>, env: Vec<EnvVar>) -> Container {
    Container {
        name: "rotate".to_string(),
        image: Some(image.to_string()),
        image_pull_policy: Some("IfNotPresent".to_string()),
        command: Some(command),
        env: Some(env),
        resources: Some(crate::api::resources("50m", "32Mi", "500m", "128Mi")),
        security_context: Some(container_security_context(true)),
        termination_message_policy: Some("FallbackToLogsOnError".to_string()),
        volume_mounts: Some(vec![
            mount("script", SCRIPT_DIR, true),
            mount("tmp", "/tmp", false),
        ]),
        ..Default::default()
    }
}

/// One rotation Job: no retry beyond two (every statement is safe to repeat, and a
/// step that fails three times needs a person), stopped after five minutes.
fn job(stack: &ValidatedStack, component: &str, jobs: &RotationJobs, container: Container) -> Job {
    let mut pod_labels = labels(stack, component);
    pod_labels.insert(STEP_LABEL.to_string(), jobs.step.as_str().to_string());
    let mut metadata = object_meta(
        stack,
        job_name(stack, component, jobs),
        component,
        Lifetime::WithStack,
    );
    metadata.labels = Some(pod_labels.clone());
    Job {
        metadata,
        spec: Some(JobSpec {
            backoff_limit: Some(2),
            active_deadline_seconds: Some(300),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    restart_policy: Some("Never".to_string()),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    // The uid both data images run as.
                    security_context: Some(pod_security_context(DATA_UID, None)),
                    volumes: Some(vec![
                        config_map_volume("script", &child_name(stack, component), false),
                        scratch_volume("tmp", "16Mi", true),
                    ]),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}
