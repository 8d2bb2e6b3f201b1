//! One reconcile of one stack: observe -> validate -> ensure credentials -> render ->
//! apply -> prune -> status. Only the observe, apply, prune and status steps touch
//! the API; the middle is the pure validate and render that `render` also runs.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};

use super::Context;
use super::release::{self, Releases, get_opt};
use super::status::{self, ObservedChildren, condition, is_true};
use super::{apply, backups, credentials, data_volumes, nfs_volume, prune, rotation};
use crate::api::{ServiceMode, ValidatedStack, WebtoonStack, WebtoonStackStatus, validate};
use crate::metrics::StackScale;
use crate::render::meta::{MANAGER, child_name};
use crate::render::scaling::{self, Tier};
use crate::render::storage::images_claim_name;
use crate::render::{Observed, render};
use crate::{Error, Result};

/// How often a settled stack is looked at again without any change.
pub const RESYNC: Duration = Duration::from_secs(300);

/// The longest one reconcile step waits on the API server. The client's own read
/// timeout is sized for watches (minutes), so without this bound a hung request
/// would hold the stack's reconcile, and its retries, for that long.
pub const API_DEADLINE: Duration = Duration::from_secs(30);

/// Runs one step of the reconcile, failing with [`Error::Timeout`] after [`API_DEADLINE`].
async fn within<T>(step: &'static str, work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(API_DEADLINE, work)
        .await
        .unwrap_or(Err(Error::Timeout {
            step,
            seconds: API_DEADLINE.as_secs(),
        }))
}

/// `namespace/name` of a stack, the key of its metrics and retry state.
pub fn stack_key(stack: &WebtoonStack) -> String {
    format!(
        "{}/{}",
        stack.namespace().unwrap_or_default(),
        stack.name_any()
    )
}

/// Reconciles one stack; see the module documentation for the steps. A success
/// resets the stack's retry delay.
pub async fn reconcile(stack: Arc<WebtoonStack>, ctx: Arc<Context>) -> Result<Action> {
    let key = stack_key(&stack);
    // Boxed: the reconcile's future holds every step's requests and is too large for
    // the stack of the thread that polls it.
    let action = Box::pin(reconcile_stack(stack, &ctx, &key)).await?;
    ctx.backoff.succeeded(&key);
    Ok(action)
}

async fn reconcile_stack(cached: Arc<WebtoonStack>, ctx: &Context, key: &str) -> Result<Action> {
    let _timer = ctx.metrics.reconcile_started();
    let now = (ctx.clock)();
    // The status is the record of releases (last known good, a failed release, the
    // migration): read it from the API server, not from the watch cache, which may
    // not hold the previous reconcile's status yet and would undo its decision.
    let namespace = cached.namespace().unwrap_or_default();
    let Some(stack) = within(
        "reading the stack",
        get_opt::<WebtoonStack>(&ctx.client, &namespace, &cached.name_any()),
    )
    .await?
    else {
        ctx.metrics.set_ready(key, None);
        ctx.metrics.set_scale(&namespace, &cached.name_any(), None);
        return Ok(Action::await_change());
    };
    let previous = stack.status.as_ref();

    let mut validated = match validate(&stack) {
        Ok(v) => v,
        Err(errors) => {
            let message = Error::InvalidSpec(errors).to_string();
            let status = status::invalid(stack.metadata.generation, &message, previous, Time(now));
            let was_invalid = previous
                .and_then(|p| p.conditions.iter().find(|c| c.type_ == condition::STALLED))
                .is_some_and(|c| c.reason == "InvalidSpec" && c.message == message);
            if !was_invalid {
                publish(ctx, &stack, EventType::Warning, "InvalidSpec", &message).await;
            }
            within(
                "writing status",
                patch_status(ctx, &stack, previous, status),
            )
            .await?;
            ctx.metrics.set_ready(key, Some(false));
            return Ok(Action::await_change());
        }
    };

    // Credentials first: a rotation's switch moves the WAS pod template, and the
    // releases judge the rollout of that template.
    let credentials = within(
        "reading credentials",
        Box::pin(credentials::observe(&ctx.client, &validated, previous, now)),
    )
    .await?;
    validated.credentials_generation = credentials.generation;
    let releases = within(
        "reading releases",
        Box::pin(release::observe(
            &ctx.client,
            &validated,
            previous,
            &Time(now),
        )),
    )
    .await?;
    let unchangeable = match within(
        "applying children",
        converge(ctx, &validated, now, &releases, &credentials),
    )
    .await
    {
        Ok(unchangeable) => unchangeable,
        Err(error) => {
            let status = status::retrying(
                stack.metadata.generation,
                &error.to_string(),
                previous,
                Time(now),
            );
            if let Err(status_error) = within(
                "writing status",
                patch_status(ctx, &stack, previous, status),
            )
            .await
            {
                tracing::warn!(error = %status_error, "cannot record the failure in status");
            }
            return Err(error);
        }
    };
    // Each kind of refusal has its own reason: the event recorder folds events of one
    // reason into a series that keeps its first message.
    for (reason, message) in &unchangeable {
        publish(ctx, &stack, EventType::Warning, reason, message).await;
    }

    let children_status = within("reading children", observe(ctx, &validated)).await?;
    let backups = match (
        &validated.spec.database.backup,
        validated.spec.database.mode,
    ) {
        (Some(backup), ServiceMode::Embedded) => {
            let observed = within(
                "reading backup Jobs",
                backups::observe(&ctx.client, &validated),
            )
            .await?;
            let previous_health = previous
                .and_then(|p| {
                    p.conditions
                        .iter()
                        .find(|c| c.type_ == condition::BACKUPS_HEALTHY)
                })
                .map(|c| c.reason.as_str());
            Some(backups::assess(
                &validated,
                backup,
                &observed,
                previous.and_then(|p| p.backups.as_ref()),
                previous_health,
                now,
            ))
        }
        _ => None,
    };
    let mut status = status::compute(
        &validated,
        stack.metadata.generation,
        &children_status,
        &releases,
        backups.as_ref(),
        previous,
        Time(now),
    );
    rotation::report(&mut status, &credentials, previous, Time(now));
    report_releases(ctx, &stack, &releases).await;
    for happened in &credentials.happened {
        let kind = if happened.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        publish(ctx, &stack, kind, happened.reason, &happened.message).await;
    }
    if let Some(assessment) = &backups {
        report_backups(ctx, &stack, assessment).await;
    }
    let ready = is_true(Some(&status), condition::READY);
    let scale = stack_scale(&validated, &status, now);
    if previous.is_none() {
        publish(
            ctx,
            &stack,
            EventType::Normal,
            "Created",
            "the stack's children were created",
        )
        .await;
    } else if ready && !is_true(previous, condition::READY) {
        let reason = if status::has_lost_readiness(previous) {
            "Recovered"
        } else {
            "Ready"
        };
        publish(
            ctx,
            &stack,
            EventType::Normal,
            reason,
            "every tier is serving",
        )
        .await;
    } else if !ready && is_true(previous, condition::READY) {
        let message = status
            .conditions
            .iter()
            .find(|c| c.type_ == condition::READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        publish(ctx, &stack, EventType::Warning, "Degraded", &message).await;
    }
    within(
        "writing status",
        patch_status(ctx, &stack, previous, status),
    )
    .await?;
    ctx.metrics.set_ready(key, Some(ready));
    ctx.metrics
        .set_scale(&namespace, &validated.name, Some(&scale));
    let mut wakeup = next_wakeup(&validated, now);
    if let Some(fire) = backups.as_ref().and_then(|b| b.next_fire) {
        // Staleness is judged at the schedule's fire times; a stuck Job changes nothing
        // that is watched, so the stack is looked at again just after each one.
        wakeup = wakeup.min(fire + Duration::from_secs(5));
    }
    // Nothing watched changes when the proxies have learnt of the WAS pods, or when
    // a credential falls due: the stack is looked at again just after each.
    let just_after = |at: jiff::Timestamp| {
        Duration::try_from(at.duration_since(now)).unwrap_or_default() + Duration::from_secs(1)
    };
    if let Some(at) = status::was_discovered_at(&children_status, now) {
        wakeup = wakeup.min(just_after(at));
    }
    if let Some(due) = credentials.next_due {
        wakeup = wakeup.min(just_after(due));
    }
    Ok(Action::requeue(
        if releases.progressing || credentials.progressing {
            wakeup.min(ROLLOUT_POLL)
        } else {
            wakeup
        },
    ))
}

/// How the stack's tiers stand, for the metrics: each tier's replicas from the
/// status, the autoscalers' bounds and the schedules in force at `now`.
pub fn stack_scale(
    stack: &ValidatedStack,
    status: &WebtoonStackStatus,
    now: jiff::Timestamp,
) -> StackScale {
    let tiers = [
        ("proxy", &status.proxy),
        ("was", &status.was),
        ("database", &status.database),
        ("cache", &status.cache),
    ]
    .into_iter()
    .filter_map(|(tier, s)| s.as_ref().map(|s| (tier, s.desired, s.ready)))
    .collect();
    let bounds = [Tier::Proxy, Tier::Was]
        .into_iter()
        .filter_map(|tier| {
            scaling::autoscaling_bounds(stack, tier, Some(now))
                .map(|(min, max)| (tier.component(), min, max))
        })
        .collect();
    let schedules = stack
        .spec
        .scaling
        .schedules
        .iter()
        .map(|s| (s.name.clone(), scaling::is_active(s, now)))
        .collect();
    StackScale {
        tiers,
        bounds,
        schedules,
    }
}

/// How often a stack whose rollout or migration is under way is looked at: the pods
/// of a rollout are not watched, and a stuck one must be seen within seconds of
/// [`super::rollout::IMAGE_PULL_BOUND`].
pub const ROLLOUT_POLL: Duration = Duration::from_secs(5);

/// Events and metrics of what the releases came to in this reconcile.
async fn report_releases(ctx: &Context, stack: &WebtoonStack, releases: &Releases) {
    for report in &releases.new_failures {
        let rolled_back = matches!(report.outcome, release::Outcome::RolledBack(_));
        ctx.metrics
            .rollout_failed(report.tier, &report.failed.reason, rolled_back);
        let reason = if rolled_back {
            "RolledBack"
        } else {
            "RolloutFailed"
        };
        publish(ctx, stack, EventType::Warning, reason, &report.message()).await;
    }
    for happened in &releases.happened {
        publish(
            ctx,
            stack,
            EventType::Normal,
            happened.reason,
            &happened.message,
        )
        .await;
    }
}

/// Events and metrics of what the backup and verify Jobs came to.
async fn report_backups(ctx: &Context, stack: &WebtoonStack, assessment: &backups::Assessment) {
    let namespace = stack.namespace().unwrap_or_default();
    let name = stack.name_any();
    ctx.metrics
        .set_backups(&namespace, &name, &assessment.status, assessment.health.ok);
    for happened in &assessment.happened {
        match happened.reason {
            "BackupFailed" => ctx.metrics.backup_failed(&namespace, &name, "backup"),
            "RestoreVerificationFailed" => ctx.metrics.backup_failed(&namespace, &name, "verify"),
            _ => {}
        }
        publish(
            ctx,
            stack,
            happened.event_type(),
            happened.reason,
            &happened.message,
        )
        .await;
    }
}

/// Makes the cluster match the spec: credentials, render, apply, grow data volumes,
/// re-bind a released NFS volume, prune. Returns the volume changes that cannot be
/// made, for people.
async fn converge(
    ctx: &Context,
    stack: &ValidatedStack,
    now: jiff::Timestamp,
    releases: &Releases,
    credentials: &rotation::Decision,
) -> Result<Vec<(&'static str, String)>> {
    let observed = Observed {
        credentials: credentials.credentials.clone(),
        now: Some(now),
        proxy_template: releases.proxy_template.clone(),
        was_template: releases.was_template.clone(),
        migration: releases.migration_jobs.clone(),
        operator_image: ctx.operator_image.clone(),
        secret_state: credentials.secret.clone(),
        rotation: credentials.jobs.clone(),
    };
    let mut children = render(stack, &observed);
    let mut plans = Vec::new();
    for statefulset in &mut children.stateful_sets {
        if let Some(live) = data_volumes::live(&ctx.client, &stack.namespace, statefulset).await? {
            plans.push(data_volumes::keep_live_templates(statefulset, &live));
        }
    }
    let written = apply::apply_all(&ctx.client, &stack.namespace, &children).await?;
    let mut resized = 0;
    let mut refused = Vec::new();
    for plan in plans {
        let (count, refusals) = data_volumes::resize(&ctx.client, &stack.namespace, &plan).await?;
        resized += count;
        refused.extend(plan.refused);
        refused.extend(refusals);
    }
    let rebound = nfs_volume::rebind_released(&ctx.client, stack).await?;
    let deleted = prune::prune(&ctx.client, stack, &children).await?;
    ctx.metrics.wrote(written + resized + rebound + deleted);
    Ok(refused)
}

/// The time until the next schedule boundary, or the resync period.
pub fn next_wakeup(stack: &ValidatedStack, now: jiff::Timestamp) -> Duration {
    stack
        .spec
        .scaling
        .schedules
        .iter()
        .flat_map(|s| {
            [
                s.start.parse::<jiff::Timestamp>(),
                s.end.parse::<jiff::Timestamp>(),
            ]
        })
        .filter_map(std::result::Result::ok)
        .filter(|t| *t > now)
        .filter_map(|t| Duration::try_from(t.duration_since(now)).ok())
        .map(|d| d + Duration::from_secs(1))
        .min()
        .map_or(RESYNC, |d| d.min(RESYNC))
}

async fn observe(ctx: &Context, stack: &ValidatedStack) -> Result<ObservedChildren> {
    let ns = &stack.namespace;
    let embedded = |mode| mode == ServiceMode::Embedded;
    Ok(ObservedChildren {
        proxy: get_opt::<Deployment>(&ctx.client, ns, &child_name(stack, "proxy")).await?,
        was: get_opt::<Deployment>(&ctx.client, ns, &child_name(stack, "was")).await?,
        database: if embedded(stack.spec.database.mode) {
            get_opt::<StatefulSet>(&ctx.client, ns, &child_name(stack, "database")).await?
        } else {
            None
        },
        cache: if embedded(stack.spec.cache.mode) {
            get_opt::<StatefulSet>(&ctx.client, ns, &child_name(stack, "cache")).await?
        } else {
            None
        },
        images: get_opt::<PersistentVolumeClaim>(&ctx.client, ns, &images_claim_name(stack))
            .await?,
    })
}

async fn patch_status(
    ctx: &Context,
    stack: &WebtoonStack,
    previous: Option<&WebtoonStackStatus>,
    status: WebtoonStackStatus,
) -> Result<()> {
    if previous == Some(&status) {
        return Ok(());
    }
    let name = stack.name_any();
    let api: Api<WebtoonStack> =
        Api::namespaced(ctx.client.clone(), &stack.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "apiVersion": "webtoon.io/v1alpha1",
        "kind": "WebtoonStack",
        "status": status,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::kube("update status of", "WebtoonStack", &name, e))?;
    Ok(())
}

/// Publishes an event on the stack. A failure to record an event never fails the
/// reconcile: events are for people, the status is the record.
async fn publish(ctx: &Context, stack: &WebtoonStack, type_: EventType, reason: &str, note: &str) {
    let Some(recorder) = &ctx.recorder else {
        return;
    };
    let reference: ObjectReference = stack.object_ref(&());
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(error) = recorder.publish(&event, &reference).await {
        tracing::warn!(%error, reason, "cannot publish event");
    }
}
