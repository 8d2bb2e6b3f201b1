//! One reconcile's view of the proxy and WAS releases: reads the Deployments, and
//! only while they are needed the new pods, the ReplicaSets and the migration Jobs;
//! decides through [`rollout`] and [`migration`] which template each Deployment
//! gets; and returns what status, events and metrics report.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::api::{Api, ListParams};

use super::migration::{self, Happened, JobOutcome, MigrationObservation};
use super::rollout::{self, Progress, TierObservation};
use crate::api::{
    FailedRelease, MigrationPhase, MigrationStatus, RolloutSpec, RolloutsStatus, ServiceMode,
    TierRollout, ValidatedStack, WebtoonStackStatus,
};
use crate::render::database::backup_cronjob::pre_migration_backup_job_name;
use crate::render::meta::{child_name, selector_labels};
use crate::render::release::{MigrationJobs, Template, hash_of, image_of, template_hash};
use crate::render::{proxy, was};
use crate::{Error, Result};

/// What a failed release came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The tier runs its last known good template again, with this image.
    RolledBack(String),
    /// The WAS never left the image it runs (a failed migration): `None` for a new
    /// stack whose WAS has not started.
    Held(Option<String>),
    /// `autoRollback` is off: the Deployment is left as it is.
    LeftAsIs,
    /// There is no earlier fully rolled-out release (or its ReplicaSet is gone).
    NothingToReturnTo,
}

/// A tier whose release failed, for the `RolledBack` and `Stalled` conditions.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// `proxy` or `WAS`.
    pub tier: &'static str,
    /// The failed release.
    pub failed: FailedRelease,
    /// What became of it.
    pub outcome: Outcome,
}

impl Report {
    /// One sentence a person can act on.
    pub fn message(&self) -> String {
        let f = &self.failed;
        let what = format!(
            "the {} release of image {} failed ({}: {})",
            self.tier, f.image, f.reason, f.message
        );
        let then = match &self.outcome {
            Outcome::RolledBack(image) => format!("rolled back to image {image}"),
            Outcome::Held(Some(image)) => format!("the {} stays on image {image}", self.tier),
            Outcome::Held(None) => format!("the {} does not start", self.tier),
            Outcome::LeftAsIs => "autoRollback is off: the Deployment is left as it is".to_string(),
            Outcome::NothingToReturnTo => {
                "there is no earlier fully rolled-out release to return to".to_string()
            }
        };
        format!("{what}; {then}; change the spec to release again")
    }
}

/// The releases of one reconcile.
#[derive(Clone, Debug, Default)]
pub struct Releases {
    /// The proxy Deployment's template.
    pub proxy_template: Template,
    /// The WAS Deployment's template.
    pub was_template: Template,
    /// The migration Jobs to keep.
    pub migration_jobs: Option<MigrationJobs>,
    /// The rollout records for status.
    pub rollouts: RolloutsStatus,
    /// The migration record for status.
    pub migration: Option<MigrationStatus>,
    /// Tiers whose release failed.
    pub reports: Vec<Report>,
    /// Failures first seen in this reconcile (events and metrics).
    pub new_failures: Vec<Report>,
    /// Everything else worth an event.
    pub happened: Vec<Happened>,
    /// A rollout or migration is under way: look again soon.
    pub progressing: bool,
}

/// The namespaced object `name`, or `None` when it does not exist.
pub(super) async fn get_opt<K>(client: &Client, namespace: &str, name: &str) -> Result<Option<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|e| Error::kube("read", K::kind(&()), name, e))
}

async fn list<K>(client: &Client, stack: &ValidatedStack, component: &str) -> Result<Vec<K>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let selector = selector_labels(stack, component)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Api::<K>::namespaced(client.clone(), &stack.namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .map_err(|e| Error::kube("list", K::kind(&()), "", e))
}

fn template(deployment: Option<&Deployment>) -> Option<&PodTemplateSpec> {
    deployment
        .and_then(|d| d.spec.as_ref())
        .map(|s| &s.template)
}

/// One tier: `label` for people, `component` for selectors.
struct Tier<'a> {
    label: &'static str,
    component: &'static str,
    rollout: &'a RolloutSpec,
    image: &'a str,
    spec_template: PodTemplateSpec,
    live: Option<&'a Deployment>,
    previous: Option<&'a TierRollout>,
    /// The migration holds the tier where it is.
    hold: Option<Template>,
    blocked: Option<(String, String)>,
}

/// Reads what the releases need and decides them.
pub async fn observe(
    client: &Client,
    stack: &ValidatedStack,
    previous: Option<&WebtoonStackStatus>,
    now: &Time,
) -> Result<Releases> {
    let ns = &stack.namespace;
    let proxy_live: Option<Deployment> = get_opt(client, ns, &child_name(stack, "proxy")).await?;
    let was_live: Option<Deployment> = get_opt(client, ns, &child_name(stack, "was")).await?;
    let previous_rollouts = previous
        .and_then(|s| s.rollouts.clone())
        .unwrap_or_default();
    let mut releases = Releases::default();

    let mut hold = None;
    let mut blocked = None;
    if stack.spec.was.migration.is_some() {
        let decision = migrate(client, stack, previous, was_live.as_ref(), now).await?;
        if decision.hold {
            hold = Some(match template(was_live.as_ref()) {
                Some(t) => Template::Pinned(Box::new(t.clone())),
                None => Template::Withheld,
            });
        }
        blocked = decision.failed;
        releases.happened.extend(decision.happened);
        releases.progressing |= decision.in_progress;
        releases.migration_jobs = decision.status.as_ref().and_then(|m| {
            let started = !matches!(m.phase, MigrationPhase::Pending);
            let migrate = matches!(
                m.phase,
                MigrationPhase::Running | MigrationPhase::Succeeded | MigrationPhase::Failed
            );
            started.then(|| MigrationJobs {
                image: m.image.clone(),
                backup: m.backup.clone(),
                migrate,
            })
        });
        releases.migration = decision.status;
    }

    let proxy_tier = Tier {
        label: "proxy",
        component: "proxy",
        rollout: &stack.spec.proxy.rollout,
        image: &stack.spec.proxy.image,
        spec_template: proxy::spec_template(stack),
        live: proxy_live.as_ref(),
        previous: previous_rollouts.proxy.as_ref(),
        hold: None,
        blocked: None,
    };
    let was_tier = Tier {
        label: "WAS",
        component: "was",
        rollout: &stack.spec.was.rollout,
        image: &stack.spec.was.image,
        spec_template: was::pod_template(stack),
        live: was_live.as_ref(),
        previous: previous_rollouts.was.as_ref(),
        hold,
        blocked,
    };
    let (status, template) = decide_tier(client, stack, proxy_tier, now, &mut releases).await?;
    releases.rollouts.proxy = Some(status);
    releases.proxy_template = template;
    let (status, template) = decide_tier(client, stack, was_tier, now, &mut releases).await?;
    releases.rollouts.was = Some(status);
    releases.was_template = template;
    Ok(releases)
}

async fn decide_tier(
    client: &Client,
    stack: &ValidatedStack,
    tier: Tier<'_>,
    now: &Time,
    releases: &mut Releases,
) -> Result<(TierRollout, Template)> {
    let hash = template_hash(&tier.spec_template);
    let mut progress = rollout::progress(tier.live, &hash, &[], now.0);
    if progress == Progress::Progressing {
        let pods: Vec<Pod> = list(client, stack, tier.component).await?;
        progress = rollout::progress(tier.live, &hash, &pods, now.0);
    }
    let decision = rollout::decide(
        &TierObservation {
            rollout: tier.rollout,
            image: tier.image,
            hash: &hash,
            progress,
            blocked: tier.blocked,
            previous: tier.previous,
        },
        now,
    );
    releases.progressing |= decision.progressing;
    // The first rollout of a stack is announced by `Ready`; an update by this event.
    let updated = tier.previous.is_some_and(|p| p.last_known_good.is_some());
    if decision.newly_good
        && updated
        && let Some(good) = &decision.status.last_known_good
    {
        releases.happened.push(Happened {
            reason: "RolledOut",
            message: format!(
                "the {} runs image {} on every replica",
                tier.label, good.image
            ),
        });
    }
    let running_image = template(tier.live).and_then(image_of).map(str::to_string);
    let (chosen, outcome) = if let Some(hold) = tier.hold {
        (hold, Outcome::Held(running_image))
    } else if let Some(restore) = &decision.restore {
        let live = template(tier.live).filter(|t| hash_of(t) == Some(restore.as_str()));
        let found = match live {
            Some(t) => Some(t.clone()),
            None => {
                let sets: Vec<ReplicaSet> = list(client, stack, tier.component).await?;
                rollout::template_of(&sets, restore)
            }
        };
        match found {
            Some(t) => {
                let image = image_of(&t).unwrap_or_default().to_string();
                (Template::Pinned(Box::new(t)), Outcome::RolledBack(image))
            }
            None => (Template::Spec, Outcome::NothingToReturnTo),
        }
    } else if tier.rollout.auto_rollback {
        (Template::Spec, Outcome::NothingToReturnTo)
    } else {
        (Template::Spec, Outcome::LeftAsIs)
    };
    if let Some(failed) = &decision.status.failed {
        let report = Report {
            tier: tier.label,
            failed: failed.clone(),
            outcome,
        };
        if decision.newly_failed {
            releases.new_failures.push(report.clone());
        }
        releases.reports.push(report);
    }
    Ok((decision.status, chosen))
}

async fn migrate(
    client: &Client,
    stack: &ValidatedStack,
    previous: Option<&WebtoonStackStatus>,
    was_live: Option<&Deployment>,
    now: &Time,
) -> Result<migration::MigrationDecision> {
    let ns = &stack.namespace;
    let image = stack.spec.was.image.as_str();
    let previous = previous.and_then(|s| s.migration.as_ref());
    let current = previous.filter(|m| m.image == image);
    let phase = current.map(|m| m.phase);
    let backup = if phase == Some(MigrationPhase::BackingUp) {
        let job: Option<Job> =
            get_opt(client, ns, &pre_migration_backup_job_name(stack, image)).await?;
        migration::outcome(job.as_ref())
    } else {
        JobOutcome::Running
    };
    let job_name = was::migration_job_name(stack, image);
    let outcome = if phase == Some(MigrationPhase::Running) {
        let job: Option<Job> = get_opt(client, ns, &job_name).await?;
        migration::outcome(job.as_ref())
    } else {
        JobOutcome::Running
    };
    let running_image = template(was_live).and_then(image_of);
    let needs_database =
        running_image != Some(image) && matches!(phase, None | Some(MigrationPhase::Pending));
    let database_ready = match stack.spec.database.mode {
        ServiceMode::External => true,
        ServiceMode::Embedded if needs_database => {
            let set: Option<StatefulSet> =
                get_opt(client, ns, &child_name(stack, "database")).await?;
            set.and_then(|s| s.status)
                .and_then(|s| s.ready_replicas)
                .is_some_and(|r| r >= 1)
        }
        ServiceMode::Embedded => false,
    };
    let backup_database = (stack.spec.database.mode == ServiceMode::Embedded
        && stack.spec.database.backup.is_some())
    .then_some(stack.spec.database.name.as_str());
    Ok(migration::advance(
        &MigrationObservation {
            image,
            running_image,
            database_ready,
            backup_database,
            job_name,
            backup,
            migration: outcome,
            previous,
        },
        now,
    ))
}
