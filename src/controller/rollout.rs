//! Rollouts of the proxy and WAS Deployments, judged from what the cluster reports:
//! when a release has fully rolled out it becomes the tier's last known good; when
//! it fails, it is recorded, never retried for the same spec, and (with
//! `autoRollback`) the tier returns to its last known good template. Pure: the
//! controller reads the Deployment, its new pods and its ReplicaSets, and applies
//! what these functions decide.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{FailedRelease, Release, RolloutSpec, TierRollout};
use crate::render::release::hash_of;

/// How long a new pod may wait for its image before its rollout counts as failed:
/// the kubelet has then tried to pull three times (after back-offs of 10 and 20 s),
/// enough to ride out a registry's brief hiccup, and far below any progress deadline.
pub const IMAGE_PULL_BOUND: Duration = Duration::from_secs(60);

/// Restarts after which a crash-looping new pod fails its rollout: three crashes in
/// a row (about 70 s with the kubelet's back-off) are not a slow start.
pub const CRASH_LOOP_RESTARTS: i32 = 3;

/// Waiting reasons of a container whose image cannot be had.
const IMAGE_FAILURES: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// Where the rollout of one pod template stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The Deployment is absent or runs another template.
    Elsewhere,
    /// Pods of the template are still being created or becoming available.
    Progressing,
    /// Every replica runs the template and is available.
    Complete,
    /// The rollout cannot finish.
    Failed {
        /// Kubernetes' reason: `ProgressDeadlineExceeded`, `ImagePullBackOff`, ...
        reason: String,
        /// What Kubernetes said.
        message: String,
    },
}

/// The Deployment's template hash.
pub fn running_hash(deployment: &Deployment) -> Option<&str> {
    hash_of(&deployment.spec.as_ref()?.template)
}

/// Where the rollout of the template named `hash` stands in `deployment`, from the
/// Deployment's status and, while it progresses, the template's own pods.
pub fn progress(
    deployment: Option<&Deployment>,
    hash: &str,
    pods: &[Pod],
    now: jiff::Timestamp,
) -> Progress {
    let Some(deployment) = deployment else {
        return Progress::Elsewhere;
    };
    if running_hash(deployment) != Some(hash) {
        return Progress::Elsewhere;
    }
    let status = deployment.status.clone().unwrap_or_default();
    let progressing = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing");
    if let Some(c) = progressing
        && c.status == "False"
        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    {
        return Progress::Failed {
            reason: "ProgressDeadlineExceeded".to_string(),
            message: c.message.clone().unwrap_or_default(),
        };
    }
    // The API server defaults `replicas`; only a client that skips defaulting leaves it
    // out, and then the count the Deployment reports is the one it works towards.
    let Some(wanted) = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .or(status.replicas)
    else {
        return Progress::Progressing;
    };
    let current = status.observed_generation.is_some()
        && status.observed_generation >= deployment.metadata.generation;
    let complete = current
        && status.updated_replicas == Some(wanted)
        && status.replicas == Some(wanted)
        && status.available_replicas == Some(wanted)
        && progressing.and_then(|c| c.reason.as_deref()) == Some("NewReplicaSetAvailable");
    if complete {
        return Progress::Complete;
    }
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(crate::render::release::TEMPLATE_HASH_ANNOTATION))
                .is_some_and(|h| h == hash)
        })
        .find_map(|p| stuck(p, now))
        .unwrap_or(Progress::Progressing)
}

/// Why a new pod will never become ready, once it has had its chance.
fn stuck(pod: &Pod, now: jiff::Timestamp) -> Option<Progress> {
    let age = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| Duration::try_from(now.duration_since(t.0)).ok())
        .unwrap_or_default();
    let status = pod.status.as_ref()?;
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find_map(|c| {
            let waiting = c.state.as_ref()?.waiting.as_ref()?;
            let reason = waiting.reason.as_deref()?;
            let failed = (IMAGE_FAILURES.contains(&reason) && age >= IMAGE_PULL_BOUND)
                || (reason == "CrashLoopBackOff" && c.restart_count >= CRASH_LOOP_RESTARTS);
            failed.then(|| Progress::Failed {
                reason: reason.to_string(),
                message: format!(
                    "pod {name}, container {}: {}",
                    c.name,
                    waiting.message.as_deref().unwrap_or(reason)
                ),
            })
        })
}

/// What the controller observed of one tier.
#[derive(Clone, Debug)]
pub struct TierObservation<'a> {
    /// The tier's rollout settings.
    pub rollout: &'a RolloutSpec,
    /// The image the spec asks for.
    pub image: &'a str,
    /// The hash of the template the spec gives.
    pub hash: &'a str,
    /// Where that template's rollout stands.
    pub progress: Progress,
    /// A failure found before the Deployment was touched (a failed migration).
    pub blocked: Option<(String, String)>,
    /// The tier's record in the previous status.
    pub previous: Option<&'a TierRollout>,
}

/// What the controller does about one tier.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TierDecision {
    /// The tier's new record.
    pub status: TierRollout,
    /// A failure first seen now: an event and a metric.
    pub newly_failed: bool,
    /// A release that became the last known good now.
    pub newly_good: bool,
    /// The template hash of the last known good release to return to.
    pub restore: Option<String>,
    /// The rollout is under way: look again soon.
    pub progressing: bool,
}

/// Records what one tier's rollout came to, and decides whether it returns to its
/// last known good template.
pub fn decide(observation: &TierObservation<'_>, now: &Time) -> TierDecision {
    let mut status = observation.previous.cloned().unwrap_or_default();
    // A failure belongs to one spec: a changed spec is a new release, tried afresh.
    if status
        .failed
        .as_ref()
        .is_some_and(|f| f.template_hash != observation.hash)
    {
        status.failed = None;
    }
    let mut decision = TierDecision::default();
    let failure = match (&observation.blocked, &observation.progress) {
        (Some((reason, message)), _) => Some((reason.clone(), message.clone())),
        (None, Progress::Failed { reason, message }) => Some((reason.clone(), message.clone())),
        _ => None,
    };
    if status.failed.is_none() {
        if let Some((reason, message)) = failure {
            status.failed = Some(FailedRelease {
                image: observation.image.to_string(),
                template_hash: observation.hash.to_string(),
                reason,
                message,
                time: Some(now.clone()),
            });
            decision.newly_failed = true;
        } else if observation.progress == Progress::Complete
            && status
                .last_known_good
                .as_ref()
                .map(|g| g.template_hash.as_str())
                != Some(observation.hash)
        {
            status.last_known_good = Some(Release {
                image: observation.image.to_string(),
                template_hash: observation.hash.to_string(),
                time: Some(now.clone()),
            });
            decision.newly_good = true;
        }
    }
    decision.progressing = status.failed.is_none() && observation.progress == Progress::Progressing;
    if status.failed.is_some() && observation.rollout.auto_rollback {
        decision.restore = status
            .last_known_good
            .as_ref()
            .filter(|g| g.template_hash != observation.hash)
            .map(|g| g.template_hash.clone());
    }
    decision.status = status;
    decision
}

/// The template of the ReplicaSet that ran the release named `hash`.
pub fn template_of(replica_sets: &[ReplicaSet], hash: &str) -> Option<PodTemplateSpec> {
    replica_sets
        .iter()
        .filter_map(|rs| rs.spec.as_ref()?.template.clone())
        .find(|t| hash_of(t) == Some(hash))
}
