//! Replica counts, autoscalers, scheduled floors and disruption budgets of the
//! stateless tiers (proxy and WAS).

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::meta::{Lifetime, child_name, object_meta, selector};
use crate::api::{AutoscalingSpec, ReplicaFloor, ScheduleSpec, ValidatedStack};

/// A stateless tier that scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The nginx proxy.
    Proxy,
    /// The application servers.
    Was,
}

impl Tier {
    /// The component name of the tier.
    pub fn component(self) -> &'static str {
        match self {
            Tier::Proxy => "proxy",
            Tier::Was => "was",
        }
    }

    fn settings(self, stack: &ValidatedStack) -> (i32, Option<&AutoscalingSpec>) {
        match self {
            Tier::Proxy => (
                stack.spec.proxy.replicas,
                stack.spec.proxy.autoscaling.as_ref(),
            ),
            Tier::Was => (stack.spec.was.replicas, stack.spec.was.autoscaling.as_ref()),
        }
    }

    fn floor(self, schedule: &ScheduleSpec) -> Option<&ReplicaFloor> {
        match self {
            Tier::Proxy => schedule.proxy.as_ref(),
            Tier::Was => schedule.was.as_ref(),
        }
    }
}

/// Whether `schedule` is in force at `now`.
pub fn is_active(schedule: &ScheduleSpec, now: jiff::Timestamp) -> bool {
    // Validation guarantees both times parse; an unparsable one is never active.
    match (
        schedule.start.parse::<jiff::Timestamp>(),
        schedule.end.parse::<jiff::Timestamp>(),
    ) {
        (Ok(start), Ok(end)) => start <= now && now < end,
        _ => false,
    }
}

/// The highest replica floor of the schedules active at `now` for `tier`.
pub fn active_floor(
    stack: &ValidatedStack,
    tier: Tier,
    now: Option<jiff::Timestamp>,
) -> Option<i32> {
    let now = now?;
    stack
        .spec
        .scaling
        .schedules
        .iter()
        .filter(|s| is_active(s, now))
        .filter_map(|s| tier.floor(s).map(|f| f.min_replicas))
        .max()
}

/// The autoscaler's bounds `(min, max)` at `now`, when the tier autoscales: the
/// minimum raised by an active schedule's floor, never beyond the maximum.
pub fn autoscaling_bounds(
    stack: &ValidatedStack,
    tier: Tier,
    now: Option<jiff::Timestamp>,
) -> Option<(i32, i32)> {
    let (_, autoscaling) = tier.settings(stack);
    let autoscaling = autoscaling?;
    let min = active_floor(stack, tier, now)
        .map_or(autoscaling.min_replicas, |f| {
            f.max(autoscaling.min_replicas)
        })
        .min(autoscaling.max_replicas);
    Some((min, autoscaling.max_replicas))
}

/// The Deployment's `spec.replicas`: `None` when an autoscaler owns the count.
pub fn deployment_replicas(
    stack: &ValidatedStack,
    tier: Tier,
    now: Option<jiff::Timestamp>,
) -> Option<i32> {
    let (replicas, autoscaling) = tier.settings(stack);
    if autoscaling.is_some() {
        return None;
    }
    Some(active_floor(stack, tier, now).map_or(replicas, |floor| floor.max(replicas)))
}

/// Replicas the tier should have now, for status.
pub fn desired_replicas(stack: &ValidatedStack, tier: Tier, now: Option<jiff::Timestamp>) -> i32 {
    let (_, autoscaling) = tier.settings(stack);
    match autoscaling {
        Some(a) => active_floor(stack, tier, now).map_or(a.min_replicas, |f| f.max(a.min_replicas)),
        None => deployment_replicas(stack, tier, now).unwrap_or(1),
    }
}

/// The autoscaler of a tier, when autoscaling is on; a scheduled floor raises its
/// `minReplicas` while the schedule is active.
pub fn autoscaler(
    stack: &ValidatedStack,
    tier: Tier,
    now: Option<jiff::Timestamp>,
) -> Option<HorizontalPodAutoscaler> {
    let (_, autoscaling) = tier.settings(stack);
    let autoscaling = autoscaling?;
    let (min, max) = autoscaling_bounds(stack, tier, now)?;
    let name = child_name(stack, tier.component());
    Some(HorizontalPodAutoscaler {
        metadata: object_meta(stack, name.clone(), tier.component(), Lifetime::WithStack),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: "Deployment".to_string(),
                name,
            },
            min_replicas: Some(min),
            max_replicas: max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_string(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_string(),
                    target: MetricTarget {
                        type_: "Utilization".to_string(),
                        average_utilization: Some(autoscaling.target_cpu_utilization),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A disruption budget that lets node drains take one pod of the tier at a time.
pub fn disruption_budget(stack: &ValidatedStack, tier: Tier) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: object_meta(
            stack,
            child_name(stack, tier.component()),
            tier.component(),
            Lifetime::WithStack,
        ),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(stack, tier.component())),
            ..Default::default()
        }),
        ..Default::default()
    }
}
