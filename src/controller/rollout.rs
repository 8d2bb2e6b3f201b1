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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus, ReplicaSetSpec};
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    use super::*;
    use crate::render::release::TEMPLATE_HASH_ANNOTATION;

    const NOW: &str = "2026-12-01T00:10:00Z";

    fn now() -> jiff::Timestamp {
        NOW.parse().expect("a timestamp")
    }

    fn template(hash: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                annotations: Some(BTreeMap::from([(
                    TEMPLATE_HASH_ANNOTATION.to_string(),
                    hash.to_string(),
                )])),
                ..Default::default()
            }),
            spec: None,
        }
    }

    fn deployment(hash: &str, status: serde_json::Value) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                generation: Some(2),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                replicas: Some(3),
                template: template(hash),
                ..Default::default()
            }),
            status: Some(serde_json::from_value::<DeploymentStatus>(status).expect("a status")),
        }
    }

    fn finished() -> serde_json::Value {
        json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
               "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]})
    }

    fn pod(hash: &str, age_seconds: i64, reason: &str, restarts: i32) -> Pod {
        let created = now() - jiff::SignedDuration::from_secs(age_seconds);
        Pod {
            metadata: ObjectMeta {
                name: Some("minitoon-was-abc".to_string()),
                creation_timestamp: Some(Time(created)),
                annotations: Some(BTreeMap::from([(
                    TEMPLATE_HASH_ANNOTATION.to_string(),
                    hash.to_string(),
                )])),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                container_statuses: Some(vec![ContainerStatus {
                    name: "was".to_string(),
                    restart_count: restarts,
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(reason.to_string()),
                            message: Some("no such host".to_string()),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_rollout_is_complete_only_when_every_replica_runs_the_template() {
        let done = deployment("new", finished());
        assert_eq!(progress(Some(&done), "new", &[], now()), Progress::Complete);
        assert_eq!(
            progress(Some(&done), "other", &[], now()),
            Progress::Elsewhere
        );
        assert_eq!(progress(None, "new", &[], now()), Progress::Elsewhere);
        let mut old_pods_left = finished();
        old_pods_left["replicas"] = json!(4);
        let stale = json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
                           "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]});
        for status in [old_pods_left, stale] {
            assert_eq!(
                progress(Some(&deployment("new", status)), "new", &[], now()),
                Progress::Progressing
            );
        }
    }

    #[test]
    fn a_rollout_fails_on_its_deadline_or_on_pods_stuck_past_the_bound() {
        let deadline = deployment(
            "new",
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing", "status": "False",
                    "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet has timed out progressing."}]}),
        );
        assert!(matches!(
            progress(Some(&deadline), "new", &[], now()),
            Progress::Failed { reason, .. } if reason == "ProgressDeadlineExceeded"
        ));
        let rolling = deployment("new", json!({"observedGeneration": 2, "replicas": 4}));
        let bound = IMAGE_PULL_BOUND.as_secs() as i64;
        let young = pod("new", bound - 1, "ImagePullBackOff", 0);
        assert_eq!(
            progress(Some(&rolling), "new", &[young], now()),
            Progress::Progressing
        );
        let old = pod("new", bound, "ImagePullBackOff", 0);
        assert!(matches!(
            progress(Some(&rolling), "new", &[old], now()),
            Progress::Failed { reason, message } if reason == "ImagePullBackOff" && message.contains("no such host")
        ));
        let other_release = pod("old", bound * 10, "ImagePullBackOff", 0);
        assert_eq!(
            progress(Some(&rolling), "new", &[other_release], now()),
            Progress::Progressing
        );
        let crashing = pod("new", 5, "CrashLoopBackOff", CRASH_LOOP_RESTARTS - 1);
        assert_eq!(
            progress(Some(&rolling), "new", &[crashing], now()),
            Progress::Progressing
        );
        let crashed = pod("new", 5, "CrashLoopBackOff", CRASH_LOOP_RESTARTS);
        assert!(matches!(
            progress(Some(&rolling), "new", &[crashed], now()),
            Progress::Failed { reason, .. } if reason == "CrashLoopBackOff"
        ));
    }

    fn observe<'a>(
        rollout: &'a RolloutSpec,
        hash: &'a str,
        progress: Progress,
        previous: Option<&'a TierRollout>,
    ) -> TierObservation<'a> {
        TierObservation {
            rollout,
            image: "was:2",
            hash,
            progress,
            blocked: None,
            previous,
        }
    }

    fn failed() -> Progress {
        Progress::Failed {
            reason: "ImagePullBackOff".to_string(),
            message: "no such host".to_string(),
        }
    }

    #[test]
    fn a_failed_release_returns_to_the_last_known_good_until_the_spec_changes() {
        let at = Time(now());
        let on = RolloutSpec::default();
        let good = decide(&observe(&on, "h1", Progress::Complete, None), &at);
        assert!(good.newly_good);
        assert_eq!(
            good.status
                .last_known_good
                .as_ref()
                .map(|g| g.template_hash.as_str()),
            Some("h1")
        );
        let again = decide(
            &observe(&on, "h1", Progress::Complete, Some(&good.status)),
            &at,
        );
        assert!(!again.newly_good, "an unchanged release is recorded once");

        let broken = decide(&observe(&on, "h2", failed(), Some(&good.status)), &at);
        assert!(broken.newly_failed);
        assert_eq!(broken.restore.as_deref(), Some("h1"));
        assert_eq!(
            broken.status.failed.as_ref().map(|f| f.reason.as_str()),
            Some("ImagePullBackOff")
        );
        // Rolled back, the Deployment runs h1 again: the spec (h2) is still the
        // failed one, so it stays rolled back and is reported once.
        let held = decide(
            &observe(&on, "h2", Progress::Elsewhere, Some(&broken.status)),
            &at,
        );
        assert!(!held.newly_failed);
        assert_eq!(held.restore.as_deref(), Some("h1"));
        assert!(!held.progressing);

        let fixed = decide(
            &observe(&on, "h3", Progress::Progressing, Some(&held.status)),
            &at,
        );
        assert!(
            fixed.status.failed.is_none(),
            "a new spec clears the failure"
        );
        assert!(fixed.restore.is_none());
        assert!(fixed.progressing);
    }

    #[test]
    fn without_auto_rollback_or_a_good_release_nothing_is_restored() {
        let at = Time(now());
        let off = RolloutSpec {
            auto_rollback: false,
            ..RolloutSpec::default()
        };
        let good = decide(&observe(&off, "h1", Progress::Complete, None), &at);
        let broken = decide(&observe(&off, "h2", failed(), Some(&good.status)), &at);
        assert!(broken.newly_failed);
        assert!(broken.restore.is_none());
        let on = RolloutSpec::default();
        let first = decide(&observe(&on, "h1", failed(), None), &at);
        assert!(first.newly_failed);
        assert!(
            first.restore.is_none(),
            "a first release has nothing to return to"
        );
        let mut blocked = observe(&on, "h2", Progress::Elsewhere, Some(&good.status));
        blocked.blocked = Some(("MigrationFailed".to_string(), "Job failed".to_string()));
        let migration = decide(&blocked, &at);
        assert_eq!(
            migration.status.failed.as_ref().map(|f| f.reason.as_str()),
            Some("MigrationFailed")
        );
    }

    #[test]
    fn the_template_to_restore_comes_from_the_replica_set_of_that_release() {
        let set = |hash: &str| ReplicaSet {
            spec: Some(ReplicaSetSpec {
                template: Some(template(hash)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let sets = [set("h2"), set("h1")];
        assert_eq!(template_of(&sets, "h1"), Some(template("h1")));
        assert_eq!(template_of(&sets, "h0"), None);
    }
}
