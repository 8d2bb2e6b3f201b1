//! Status from what the children report: per-tier readiness, kstatus conditions
//! (`Ready`, `Reconciling`, `Stalled`) and the URL. Pure: the controller passes in
//! the observed children and the time, and patches the result only when it changed.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::backups::Assessment;
use super::release::{Outcome, Releases, Report};
use crate::api::{ServiceMode, TierStatus, ValidatedStack, WebtoonStackStatus};
use crate::render::release::Template;
use crate::render::scaling::{Tier, desired_replicas};
use crate::render::was::DISCOVERY_SECONDS;
use crate::render::was::env::public_url;

/// Condition types, part of the API: never renamed.
pub mod condition {
    /// All tiers serve.
    pub const READY: &str = "Ready";
    /// The operator is still working towards the spec (kstatus).
    pub const RECONCILING: &str = "Reconciling";
    /// Progress stopped on an error that needs a person (kstatus).
    pub const STALLED: &str = "Stalled";
    /// The proxy tier serves.
    pub const PROXY_READY: &str = "ProxyReady";
    /// The WAS tier serves.
    pub const WAS_READY: &str = "WasReady";
    /// The database serves.
    pub const DATABASE_READY: &str = "DatabaseReady";
    /// The cache serves.
    pub const CACHE_READY: &str = "CacheReady";
    /// The image volume is bound.
    pub const STORAGE_READY: &str = "StorageReady";
    /// A release failed and the tier is held at, or returned to, its last known good
    /// template (`True`), or could not be (`False`). Absent when no release failed.
    pub const ROLLED_BACK: &str = "RolledBack";
    /// The newest backup is recent, and neither the last backup nor the last
    /// verified restore failed. Present only for stacks with backups.
    pub const BACKUPS_HEALTHY: &str = "BackupsHealthy";
}

/// The children the status is computed from, as read from the cluster.
#[derive(Clone, Debug, Default)]
pub struct ObservedChildren {
    /// The proxy Deployment.
    pub proxy: Option<Deployment>,
    /// The WAS Deployment.
    pub was: Option<Deployment>,
    /// The MariaDB StatefulSet.
    pub database: Option<StatefulSet>,
    /// The Redis StatefulSet.
    pub cache: Option<StatefulSet>,
    /// The image volume claim.
    pub images: Option<PersistentVolumeClaim>,
}

/// One condition's verdict before timestamps are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Verdict {
    type_: &'static str,
    ok: bool,
    reason: &'static str,
    message: String,
}

fn verdict(type_: &'static str, ok: bool, reason: &'static str, message: String) -> Verdict {
    Verdict {
        type_,
        ok,
        reason,
        message,
    }
}

fn deployment_tier(
    type_: &'static str,
    label: &str,
    deployment: Option<&Deployment>,
    desired: i32,
) -> (Verdict, TierStatus) {
    let ready = deployment
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    let tier = TierStatus {
        ready,
        desired,
        summary: format!("{ready}/{desired}"),
    };
    // A failed rollout is reported by `Stalled` and `RolledBack`: the tier serves
    // as long as enough replicas of any release are available.
    let v = match deployment {
        None => verdict(
            type_,
            false,
            "NotCreated",
            format!("the {label} Deployment does not exist yet"),
        ),
        Some(_) if ready >= desired && ready > 0 => verdict(
            type_,
            true,
            "Available",
            format!("{ready}/{desired} {label} replicas available"),
        ),
        Some(_) if ready == 0 => verdict(
            type_,
            false,
            "Unavailable",
            format!("no {label} replica is available ({ready}/{desired})"),
        ),
        Some(_) => verdict(
            type_,
            false,
            "Degraded",
            format!("{ready}/{desired} {label} replicas available"),
        ),
    };
    (v, tier)
}

fn stateful_tier(
    type_: &'static str,
    label: &str,
    mode: ServiceMode,
    set: Option<&StatefulSet>,
) -> (Verdict, Option<TierStatus>) {
    if mode == ServiceMode::External {
        return (
            verdict(type_, true, "External", format!("the {label} is external")),
            None,
        );
    }
    let ready = set
        .and_then(|s| s.status.as_ref())
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    let tier = TierStatus {
        ready,
        desired: 1,
        summary: format!("{ready}/1"),
    };
    let v = match set {
        None => verdict(
            type_,
            false,
            "NotCreated",
            format!("the {label} StatefulSet does not exist yet"),
        ),
        Some(_) if ready >= 1 => verdict(type_, true, "Available", format!("the {label} is ready")),
        Some(_) => verdict(
            type_,
            false,
            "Unavailable",
            format!("the {label} is not ready"),
        ),
    };
    (v, Some(tier))
}

/// When every proxy will have learnt of the WAS pods, while that is still ahead of
/// `now`: [`DISCOVERY_SECONDS`] after the WAS Deployment last became available
/// (plus the second its transition time is truncated to). Until then a proxy may
/// still hold the answer that no WAS pod exists, and answer 502.
pub fn was_discovered_at(
    observed: &ObservedChildren,
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    let available_since = observed
        .was
        .as_ref()?
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Available" && c.status == "True")?
        .last_transition_time
        .as_ref()?
        .0;
    let at = available_since
        .checked_add(jiff::SignedDuration::from_secs(DISCOVERY_SECONDS + 1))
        .ok()?;
    (at > now).then_some(at)
}

/// The `Ready` reason of a stack that served and then lost a tier.
pub const READY_LOST: &str = "Degraded";

/// The status a stack should have, given its children; conditions whose verdict did
/// not change keep their `lastTransitionTime`, so an unchanged stack yields an
/// unchanged status and no write.
pub fn compute(
    stack: &ValidatedStack,
    generation: Option<i64>,
    observed: &ObservedChildren,
    releases: &Releases,
    backups: Option<&Assessment>,
    previous: Option<&WebtoonStackStatus>,
    now: Time,
) -> WebtoonStackStatus {
    let spec = &stack.spec;
    let (proxy_v, proxy_tier) = deployment_tier(
        condition::PROXY_READY,
        "proxy",
        observed.proxy.as_ref(),
        desired_replicas(stack, Tier::Proxy, Some(now.0)),
    );
    let (was_v, was_tier) = deployment_tier(
        condition::WAS_READY,
        "WAS",
        observed.was.as_ref(),
        desired_replicas(stack, Tier::Was, Some(now.0)),
    );
    let proxy_v = match was_discovered_at(observed, now.0) {
        Some(at) if proxy_v.ok => verdict(
            condition::PROXY_READY,
            false,
            "DiscoveringWas",
            format!("the proxy learns of the available WAS pods through the cluster DNS by {at}"),
        ),
        _ => proxy_v,
    };
    let (db_v, db_tier) = stateful_tier(
        condition::DATABASE_READY,
        "database",
        spec.database.mode,
        observed.database.as_ref(),
    );
    let (cache_v, cache_tier) = stateful_tier(
        condition::CACHE_READY,
        "cache",
        spec.cache.mode,
        observed.cache.as_ref(),
    );
    let phase = observed
        .images
        .as_ref()
        .and_then(|c| c.status.as_ref())
        .and_then(|s| s.phase.clone());
    let storage_v = match phase.as_deref() {
        Some("Bound") => verdict(
            condition::STORAGE_READY,
            true,
            "Bound",
            "the image volume is bound".to_string(),
        ),
        Some(other) => verdict(
            condition::STORAGE_READY,
            false,
            "NotBound",
            format!("the image volume claim is {other}"),
        ),
        None => verdict(
            condition::STORAGE_READY,
            false,
            "NotBound",
            "the image volume claim is not bound yet".to_string(),
        ),
    };
    let tiers = [proxy_v, was_v, db_v, cache_v, storage_v];
    // Each waiting tier with its own message, so that the Ready condition and the
    // Degraded event say what is wrong, not only where.
    let not_ready: Vec<String> = tiers
        .iter()
        .filter(|v| !v.ok)
        .map(|v| format!("{}: {}", v.type_, v.message))
        .collect();
    let ready = not_ready.is_empty();
    let failures: Vec<String> = releases.reports.iter().map(Report::message).collect();
    let stalled = !failures.is_empty();
    let ready_v = if ready {
        verdict(
            condition::READY,
            true,
            "Ready",
            "every tier is serving".to_string(),
        )
    } else {
        // A stack that has served before says so, and keeps saying so until it is
        // back: the event on its return is then a recovery, not a first start.
        let has_served = is_true(previous, condition::READY) || has_lost_readiness(previous);
        verdict(
            condition::READY,
            false,
            if has_served { READY_LOST } else { "NotReady" },
            format!("waiting for {}", not_ready.join("; ")),
        )
    };
    let reconciling_v = if stalled || (ready && !releases.progressing) {
        verdict(
            condition::RECONCILING,
            false,
            "Reconciled",
            "the stack matches its spec".to_string(),
        )
    } else if ready {
        let migrating = releases
            .migration
            .as_ref()
            .filter(|_| releases.was_template != Template::Spec)
            .and_then(|m| m.message.clone());
        verdict(
            condition::RECONCILING,
            true,
            "RollingOut",
            migrating.unwrap_or_else(|| "a new release is rolling out".to_string()),
        )
    } else {
        verdict(
            condition::RECONCILING,
            true,
            "Progressing",
            format!("waiting for {}", not_ready.join("; ")),
        )
    };
    let stalled_v = if stalled {
        verdict(
            condition::STALLED,
            true,
            "RolloutFailed",
            failures.join("; "),
        )
    } else {
        verdict(
            condition::STALLED,
            false,
            "Progressing",
            "no blocking error".to_string(),
        )
    };
    let mut verdicts = vec![ready_v, reconciling_v, stalled_v];
    verdicts.extend(tiers);
    if let Some(first) = releases.reports.first() {
        let returned = releases
            .reports
            .iter()
            .any(|r| matches!(r.outcome, Outcome::RolledBack(_) | Outcome::Held(Some(_))));
        verdicts.push(Verdict {
            type_: condition::ROLLED_BACK,
            ok: returned,
            reason: rolled_back_reason(&first.failed.reason),
            message: failures.join("; "),
        });
    }
    if let Some(backups) = backups {
        verdicts.push(Verdict {
            type_: condition::BACKUPS_HEALTHY,
            ok: backups.health.ok,
            reason: backups.health.reason,
            message: backups.health.message.clone(),
        });
    }
    WebtoonStackStatus {
        observed_generation: generation,
        conditions: conditions(verdicts, generation, previous, &now),
        proxy: Some(proxy_tier),
        was: Some(was_tier),
        database: db_tier,
        cache: cache_tier,
        url: Some(public_url(stack)),
        rollouts: Some(releases.rollouts.clone()),
        migration: releases.migration.clone(),
        backups: backups.map(|b| b.status.clone()),
        // Filled in by the credentials step, which owns its own record.
        credentials: None,
    }
}

/// The `RolledBack` reason for a failure reason: Kubernetes' own words where they
/// are known, so that the condition reads like the pods do.
fn rolled_back_reason(reason: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "ProgressDeadlineExceeded",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CrashLoopBackOff",
        "MigrationFailed",
        "BackupFailed",
    ];
    KNOWN
        .iter()
        .find(|k| **k == reason)
        .copied()
        .unwrap_or("RolloutFailed")
}

/// The status of a stack whose spec breaks a rule: `Stalled` with reason
/// `InvalidSpec` and the message `validate` gives; tier data is kept as it was.
pub fn invalid(
    generation: Option<i64>,
    message: &str,
    previous: Option<&WebtoonStackStatus>,
    now: Time,
) -> WebtoonStackStatus {
    let verdicts = vec![
        verdict(
            condition::READY,
            false,
            "InvalidSpec",
            "the spec is invalid; see Stalled".to_string(),
        ),
        verdict(
            condition::RECONCILING,
            false,
            "InvalidSpec",
            "waiting for a corrected spec".to_string(),
        ),
        verdict(condition::STALLED, true, "InvalidSpec", message.to_string()),
    ];
    let mut status = previous.cloned().unwrap_or_default();
    let keep: Vec<Condition> = status
        .conditions
        .iter()
        .filter(|c| {
            ![condition::READY, condition::RECONCILING, condition::STALLED]
                .contains(&c.type_.as_str())
        })
        .cloned()
        .collect();
    let mut conditions = conditions(verdicts, generation, previous, &now);
    conditions.extend(keep);
    status.conditions = conditions;
    status.observed_generation = generation;
    status
}

/// The previous status with `Reconciling` set to `True`, reason `Retrying` and the
/// error's message: an API failure is visible on the stack while it is retried.
pub fn retrying(
    generation: Option<i64>,
    message: &str,
    previous: Option<&WebtoonStackStatus>,
    now: Time,
) -> WebtoonStackStatus {
    let mut status = previous.cloned().unwrap_or_default();
    let since = status
        .conditions
        .iter()
        .find(|c| c.type_ == condition::RECONCILING && c.status == "True")
        .map_or(now, |c| c.last_transition_time.clone());
    status
        .conditions
        .retain(|c| c.type_ != condition::RECONCILING);
    status.conditions.push(Condition {
        type_: condition::RECONCILING.to_string(),
        status: "True".to_string(),
        reason: "Retrying".to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: since,
    });
    status
}

fn conditions(
    verdicts: Vec<Verdict>,
    generation: Option<i64>,
    previous: Option<&WebtoonStackStatus>,
    now: &Time,
) -> Vec<Condition> {
    verdicts
        .into_iter()
        .map(|v| {
            let status = if v.ok { "True" } else { "False" };
            let before = previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == v.type_));
            let last_transition_time = match before {
                Some(b) if b.status == status => b.last_transition_time.clone(),
                _ => now.clone(),
            };
            Condition {
                type_: v.type_.to_string(),
                status: status.to_string(),
                reason: v.reason.to_string(),
                message: v.message,
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

/// Whether `status` is a stack that lost readiness after it had served.
pub fn has_lost_readiness(status: Option<&WebtoonStackStatus>) -> bool {
    status
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == condition::READY))
        .is_some_and(|c| c.status == "False" && c.reason == READY_LOST)
}

/// Whether a condition of `status` is `True`.
pub fn is_true(status: Option<&WebtoonStackStatus>, type_: &str) -> bool {
    status
        .map(|s| {
            s.conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == "True")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentStatus, StatefulSetStatus};
    use k8s_openapi::api::core::v1::PersistentVolumeClaimStatus;

    use super::*;
    use crate::api::{FailedRelease, WebtoonStack, validate};
    use crate::controller::release::Outcome;

    fn stack() -> ValidatedStack {
        let stack: WebtoonStack = serde_saphyr::from_str(
            "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {name: minitoon, namespace: webtoon}\nspec: {hosts: [minitoon.example], was: {image: registry.example/minitoon/was:1.0.0}}\n",
        )
        .expect("a stack");
        validate(&stack).expect("a valid stack")
    }

    fn serving() -> ObservedChildren {
        let deployment = Deployment {
            status: Some(DeploymentStatus {
                available_replicas: Some(2),
                ..Default::default()
            }),
            ..Default::default()
        };
        let set = StatefulSet {
            status: Some(StatefulSetStatus {
                ready_replicas: Some(1),
                ..Default::default()
            }),
            ..Default::default()
        };
        ObservedChildren {
            proxy: Some(deployment.clone()),
            was: Some(deployment),
            database: Some(set.clone()),
            cache: Some(set),
            images: Some(PersistentVolumeClaim {
                status: Some(PersistentVolumeClaimStatus {
                    phase: Some("Bound".to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    fn get<'a>(status: &'a WebtoonStackStatus, type_: &str) -> Option<&'a Condition> {
        status.conditions.iter().find(|c| c.type_ == type_)
    }

    fn report(outcome: Outcome) -> Report {
        Report {
            tier: "WAS",
            failed: FailedRelease {
                image: "registry.invalid/minitoon/was:2.0.0".to_string(),
                template_hash: "h2".to_string(),
                reason: "ImagePullBackOff".to_string(),
                message: "no such host".to_string(),
                time: None,
            },
            outcome,
        }
    }

    #[test]
    fn the_proxy_serves_once_it_can_have_learnt_of_the_was_pods() {
        let became_available = "2026-12-01T00:00:00Z";
        let mut observed = serving();
        if let Some(status) = observed.was.as_mut().and_then(|d| d.status.as_mut()) {
            status.conditions = Some(vec![k8s_openapi::api::apps::v1::DeploymentCondition {
                type_: "Available".to_string(),
                status: "True".to_string(),
                last_transition_time: Some(Time(became_available.parse().expect("a timestamp"))),
                ..Default::default()
            }]);
        }
        let at = |seconds: i64| {
            let t: jiff::Timestamp = became_available.parse().expect("a timestamp");
            Time(t + jiff::SignedDuration::from_secs(seconds))
        };
        let compute_at = |seconds, previous| {
            compute(
                &stack(),
                Some(1),
                &observed,
                &Releases::default(),
                None,
                previous,
                at(seconds),
            )
        };

        let learning = compute_at(DISCOVERY_SECONDS, None);
        let proxy = get(&learning, condition::PROXY_READY).expect("ProxyReady");
        assert_eq!(
            (proxy.status.as_str(), proxy.reason.as_str()),
            ("False", "DiscoveringWas")
        );
        assert!(
            proxy.message.contains("through the cluster DNS"),
            "{}",
            proxy.message
        );
        assert_eq!(
            get(&learning, condition::READY).map(|c| c.status.as_str()),
            Some("False")
        );
        assert_eq!(
            was_discovered_at(&observed, at(DISCOVERY_SECONDS).0),
            Some(at(DISCOVERY_SECONDS + 1).0),
            "the controller looks again then"
        );

        let learnt = compute_at(DISCOVERY_SECONDS + 1, Some(&learning));
        assert_eq!(
            get(&learnt, condition::READY).map(|c| c.status.as_str()),
            Some("True")
        );
        assert_eq!(
            was_discovered_at(&observed, at(DISCOVERY_SECONDS + 1).0),
            None
        );
    }

    #[test]
    fn a_rolled_back_release_is_stalled_and_rolled_back_while_the_old_one_serves() {
        let now = Time("2026-12-01T00:00:00Z".parse().expect("a timestamp"));
        let releases = Releases {
            reports: vec![report(Outcome::RolledBack(
                "registry.example/minitoon/was:1.0.0".to_string(),
            ))],
            ..Default::default()
        };
        let status = compute(
            &stack(),
            Some(2),
            &serving(),
            &releases,
            None,
            None,
            now.clone(),
        );
        let ready = get(&status, condition::READY).expect("Ready");
        assert_eq!(ready.status, "True", "{}", ready.message);
        let stalled = get(&status, condition::STALLED).expect("Stalled");
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("True", "RolloutFailed")
        );
        assert!(
            stalled
                .message
                .contains("rolled back to image registry.example/minitoon/was:1.0.0")
        );
        let rolled = get(&status, condition::ROLLED_BACK).expect("RolledBack");
        assert_eq!(
            (rolled.status.as_str(), rolled.reason.as_str()),
            ("True", "ImagePullBackOff")
        );
        assert_eq!(
            get(&status, condition::RECONCILING).map(|c| c.status.as_str()),
            Some("False")
        );

        let left = Releases {
            reports: vec![report(Outcome::LeftAsIs)],
            ..Default::default()
        };
        let status = compute(
            &stack(),
            Some(2),
            &serving(),
            &left,
            None,
            Some(&status),
            now.clone(),
        );
        let rolled = get(&status, condition::ROLLED_BACK).expect("RolledBack");
        assert_eq!(rolled.status, "False");
        assert!(rolled.message.contains("autoRollback is off"));

        let cleared = compute(
            &stack(),
            Some(3),
            &serving(),
            &Releases::default(),
            None,
            Some(&status),
            now,
        );
        assert!(
            get(&cleared, condition::ROLLED_BACK).is_none(),
            "a new release clears it"
        );
        assert_eq!(
            get(&cleared, condition::STALLED).map(|c| c.status.as_str()),
            Some("False")
        );
    }

    #[test]
    fn a_release_under_way_is_reconciling_though_every_tier_serves() {
        let now = Time("2026-12-01T00:00:00Z".parse().expect("a timestamp"));
        let releases = Releases {
            progressing: true,
            ..Default::default()
        };
        let status = compute(&stack(), Some(2), &serving(), &releases, None, None, now);
        assert_eq!(
            get(&status, condition::READY).map(|c| c.status.as_str()),
            Some("True")
        );
        let reconciling = get(&status, condition::RECONCILING).expect("Reconciling");
        assert_eq!(
            (reconciling.status.as_str(), reconciling.reason.as_str()),
            ("True", "RollingOut")
        );
    }
}
