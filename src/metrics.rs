//! Prometheus metrics of the controller and its health endpoints, served over HTTP:
//! `/metrics` (text format), `/healthz` (the process is alive) and `/readyz` (the
//! controller is watching).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Label of the errors counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Kind of failure, from [`crate::Error::metric_label`].
    pub error: String,
}

/// Label of the stacks gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadyLabels {
    /// `true` or `false`.
    pub ready: String,
}

/// Labels of the failed-rollouts counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RolloutLabels {
    /// `proxy` or `WAS`.
    pub tier: String,
    /// Why the rollout failed (`ImagePullBackOff`, `MigrationFailed`, ...).
    pub reason: String,
    /// `true` when the tier returned to its last known good release.
    pub rolled_back: String,
}

/// Labels of the per-stack backup metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StackLabels {
    /// Namespace of the stack.
    pub namespace: String,
    /// Name of the stack.
    pub stack: String,
}

/// Labels of the failed-backups counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackupFailureLabels {
    /// Namespace of the stack.
    pub namespace: String,
    /// Name of the stack.
    pub stack: String,
    /// `backup` or `verify`.
    pub kind: String,
}

/// Labels of the per-tier replica gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct TierReplicaLabels {
    /// Namespace of the stack.
    pub namespace: String,
    /// Name of the stack.
    pub stack: String,
    /// `proxy`, `was`, `database` or `cache`.
    pub tier: String,
    /// `desired` or `ready`.
    pub state: String,
}

/// Labels of the autoscaler bounds gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct BoundLabels {
    /// Namespace of the stack.
    pub namespace: String,
    /// Name of the stack.
    pub stack: String,
    /// `proxy` or `was`.
    pub tier: String,
    /// `min` (raised by an active schedule) or `max`.
    pub bound: String,
}

/// Labels of the scaling schedule gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ScheduleLabels {
    /// Namespace of the stack.
    pub namespace: String,
    /// Name of the stack.
    pub stack: String,
    /// Name of the schedule.
    pub schedule: String,
}

/// How one stack's tiers stand, as the dashboard compares them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackScale {
    /// Per tier: name, desired replicas, ready replicas.
    pub tiers: Vec<(&'static str, i32, i32)>,
    /// Per autoscaling tier: name, min (with an active schedule's floor), max.
    pub bounds: Vec<(&'static str, i32, i32)>,
    /// Per schedule: name, whether it is in force.
    pub schedules: Vec<(String, bool)>,
}

/// The series one stack's [`StackScale`] last set, so that those it no longer has
/// (a schedule removed, autoscaling turned off) disappear.
#[derive(Default)]
struct ScaleSeries {
    tiers: Vec<TierReplicaLabels>,
    bounds: Vec<BoundLabels>,
    schedules: Vec<ScheduleLabels>,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    errors: Family<ErrorLabels, Counter>,
    duration: Histogram,
    writes: Counter,
    stacks: Family<ReadyLabels, Gauge>,
    rollout_failures: Family<RolloutLabels, Counter>,
    leader: Gauge,
    backup_time: Family<StackLabels, Gauge>,
    verified_time: Family<StackLabels, Gauge>,
    backups_healthy: Family<StackLabels, Gauge>,
    backup_failures: Family<BackupFailureLabels, Counter>,
    tier_replicas: Family<TierReplicaLabels, Gauge>,
    autoscaling_replicas: Family<BoundLabels, Gauge>,
    schedule_active: Family<ScheduleLabels, Gauge>,
    scale_series: Mutex<BTreeMap<String, ScaleSeries>>,
    readiness: Mutex<BTreeMap<String, bool>>,
    watching: AtomicBool,
    standby: AtomicBool,
    leader_identity: Mutex<Option<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("webtoon");
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]);
        let writes = Counter::default();
        let stacks = Family::<ReadyLabels, Gauge>::default();
        let rollout_failures = Family::<RolloutLabels, Counter>::default();
        let leader = Gauge::default();
        let backup_time = Family::<StackLabels, Gauge>::default();
        let verified_time = Family::<StackLabels, Gauge>::default();
        let backups_healthy = Family::<StackLabels, Gauge>::default();
        let backup_failures = Family::<BackupFailureLabels, Counter>::default();
        let tier_replicas = Family::<TierReplicaLabels, Gauge>::default();
        let autoscaling_replicas = Family::<BoundLabels, Gauge>::default();
        let schedule_active = Family::<ScheduleLabels, Gauge>::default();
        registry.register("reconciles", "Reconciles started", reconciles.clone());
        registry.register(
            "tier_replicas",
            "Replicas of a stack's tier: desired now, and ready",
            tier_replicas.clone(),
        );
        registry.register(
            "autoscaling_replicas",
            "Bounds of a tier's autoscaler: min (raised while a schedule is in force) and max",
            autoscaling_replicas.clone(),
        );
        registry.register(
            "scaling_schedule_active",
            "1 while a stack's scaling schedule is in force, else 0",
            schedule_active.clone(),
        );
        registry.register(
            "backup_last_success_timestamp_seconds",
            "When the newest backup of a stack started (Unix time)",
            backup_time.clone(),
        );
        registry.register(
            "backup_last_verified_restore_timestamp_seconds",
            "When a restore of a stack's backup last passed verification (Unix time)",
            verified_time.clone(),
        );
        registry.register(
            "backups_healthy",
            "1 while a stack's BackupsHealthy condition is true, else 0",
            backups_healthy.clone(),
        );
        registry.register(
            "backup_failures",
            "Backup and verify Jobs that failed",
            backup_failures.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by kind of error",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile took",
            duration.clone(),
        );
        registry.register(
            "child_writes",
            "Objects the operator created, patched or deleted",
            writes.clone(),
        );
        registry.register(
            "stacks",
            "WebtoonStacks by their Ready condition",
            stacks.clone(),
        );
        registry.register(
            "rollout_failures",
            "Releases of a tier that failed, by reason and whether they were rolled back",
            rollout_failures.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica reconciles (it holds the leader Lease, or runs alone), 0 while it stands by",
            leader.clone(),
        );
        Self {
            registry,
            rollout_failures,
            leader,
            backup_time,
            verified_time,
            backups_healthy,
            backup_failures,
            tier_replicas,
            autoscaling_replicas,
            schedule_active,
            scale_series: Mutex::new(BTreeMap::new()),
            reconciles,
            errors,
            duration,
            writes,
            stacks,
            readiness: Mutex::new(BTreeMap::new()),
            watching: AtomicBool::new(false),
            standby: AtomicBool::new(false),
            leader_identity: Mutex::new(None),
        }
    }
}

/// Records a reconcile's duration when dropped, however the reconcile ends.
pub struct ReconcileTimer<'a> {
    start: Instant,
    metrics: &'a Metrics,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .observe(self.start.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// Counts a failed release of `tier`.
    pub fn rollout_failed(&self, tier: &str, reason: &str, rolled_back: bool) {
        self.rollout_failures
            .get_or_create(&RolloutLabels {
                tier: tier.to_string(),
                reason: reason.to_string(),
                rolled_back: rolled_back.to_string(),
            })
            .inc();
    }

    /// Records what a stack's backup and verify Jobs reported.
    pub fn set_backups(
        &self,
        namespace: &str,
        stack: &str,
        status: &crate::api::BackupsStatus,
        healthy: bool,
    ) {
        let labels = StackLabels {
            namespace: namespace.to_string(),
            stack: stack.to_string(),
        };
        if let Some(backup) = &status.last_backup {
            self.backup_time
                .get_or_create(&labels)
                .set(backup.time.0.as_second());
        }
        if let Some(verified) = status
            .last_verified_restore
            .as_ref()
            .filter(|v| v.result == "Passed")
        {
            self.verified_time
                .get_or_create(&labels)
                .set(verified.time.0.as_second());
        }
        self.backups_healthy
            .get_or_create(&labels)
            .set(i64::from(healthy));
    }

    /// Records how a stack's tiers stand; `None` forgets the stack's series.
    pub fn set_scale(&self, namespace: &str, stack: &str, scale: Option<&StackScale>) {
        let Ok(mut series) = self.scale_series.lock() else {
            return;
        };
        let key = format!("{namespace}/{stack}");
        let old = series.remove(&key).unwrap_or_default();
        let mut new = ScaleSeries::default();
        for (tier, desired, ready) in scale.map(|s| s.tiers.as_slice()).unwrap_or_default() {
            for (state, value) in [("desired", desired), ("ready", ready)] {
                let labels = TierReplicaLabels {
                    namespace: namespace.to_string(),
                    stack: stack.to_string(),
                    tier: tier.to_string(),
                    state: state.to_string(),
                };
                self.tier_replicas
                    .get_or_create(&labels)
                    .set(i64::from(*value));
                new.tiers.push(labels);
            }
        }
        for (tier, min, max) in scale.map(|s| s.bounds.as_slice()).unwrap_or_default() {
            for (bound, value) in [("min", min), ("max", max)] {
                let labels = BoundLabels {
                    namespace: namespace.to_string(),
                    stack: stack.to_string(),
                    tier: tier.to_string(),
                    bound: bound.to_string(),
                };
                self.autoscaling_replicas
                    .get_or_create(&labels)
                    .set(i64::from(*value));
                new.bounds.push(labels);
            }
        }
        for (name, active) in scale.map(|s| s.schedules.as_slice()).unwrap_or_default() {
            let labels = ScheduleLabels {
                namespace: namespace.to_string(),
                stack: stack.to_string(),
                schedule: name.clone(),
            };
            self.schedule_active
                .get_or_create(&labels)
                .set(i64::from(*active));
            new.schedules.push(labels);
        }
        for labels in old.tiers.iter().filter(|l| !new.tiers.contains(l)) {
            self.tier_replicas.remove(labels);
        }
        for labels in old.bounds.iter().filter(|l| !new.bounds.contains(l)) {
            self.autoscaling_replicas.remove(labels);
        }
        for labels in old.schedules.iter().filter(|l| !new.schedules.contains(l)) {
            self.schedule_active.remove(labels);
        }
        if scale.is_some() {
            series.insert(key, new);
        }
    }

    /// Counts a failed backup (`kind` `backup`) or verification (`verify`) of a stack.
    pub fn backup_failed(&self, namespace: &str, stack: &str, kind: &str) {
        self.backup_failures
            .get_or_create(&BackupFailureLabels {
                namespace: namespace.to_string(),
                stack: stack.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Counts a reconcile and times it until the returned guard drops.
    pub fn reconcile_started(&self) -> ReconcileTimer<'_> {
        self.reconciles.inc();
        ReconcileTimer {
            start: Instant::now(),
            metrics: self,
        }
    }

    /// Counts a failed reconcile.
    pub fn reconcile_failed(&self, error: &crate::Error) {
        self.errors
            .get_or_create(&ErrorLabels {
                error: error.metric_label().to_string(),
            })
            .inc();
    }

    /// Counts objects written.
    pub fn wrote(&self, count: usize) {
        self.writes.inc_by(count as u64);
    }

    /// Records whether a stack is ready, or forgets it when `ready` is `None`.
    pub fn set_ready(&self, stack: &str, ready: Option<bool>) {
        let Ok(mut readiness) = self.readiness.lock() else {
            return;
        };
        match ready {
            Some(r) => readiness.insert(stack.to_string(), r),
            None => readiness.remove(stack),
        };
        let ready_count = readiness.values().filter(|r| **r).count();
        let total = readiness.len();
        self.stacks
            .get_or_create(&ReadyLabels {
                ready: "true".into(),
            })
            .set(ready_count as i64);
        self.stacks
            .get_or_create(&ReadyLabels {
                ready: "false".into(),
            })
            .set((total - ready_count) as i64);
    }

    /// Marks the controller as watching, for `/readyz`.
    pub fn set_watching(&self, watching: bool) {
        self.watching.store(watching, Ordering::SeqCst);
        self.leader.set(i64::from(watching));
    }

    /// Marks this replica as standing by for the leader Lease: ready (a rolling
    /// update of the operator must not wait on it), and not leading.
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::SeqCst);
    }

    /// Records which replica holds the leader Lease, as a standby last saw it.
    pub fn set_leader_identity(&self, identity: Option<&str>) {
        if let Ok(mut leader) = self.leader_identity.lock() {
            *leader = identity.map(str::to_string);
        }
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(metrics): State<Arc<Metrics>>) -> (StatusCode, String) {
    if metrics.watching.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok: reconciling\n".to_string())
    } else if metrics.standby.load(Ordering::SeqCst) {
        let leader = metrics
            .leader_identity
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .unwrap_or_else(|| "no replica yet".to_string());
        (
            StatusCode::OK,
            format!("ok: standing by for the leader Lease; it is held by {leader}\n"),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not watching yet\n".to_string(),
        )
    }
}

/// The HTTP routes of the metrics server.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(metrics)
}

/// Serves the metrics routes on `listener` until `shutdown` completes. The caller
/// binds, so that an address in use fails start-up rather than surfacing later.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(metrics))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stacks_scale_series_follow_its_spec_and_go_with_it() {
        let metrics = Metrics::default();
        let sale = StackScale {
            tiers: vec![("was", 12, 9), ("database", 1, 1)],
            bounds: vec![("was", 12, 20)],
            schedules: vec![("half-price-sale".to_string(), true)],
        };
        metrics.set_scale("webtoon", "toon", Some(&sale));
        let text = metrics.encode();
        for line in [
            r#"webtoon_tier_replicas{namespace="webtoon",stack="toon",tier="was",state="desired"} 12"#,
            r#"webtoon_tier_replicas{namespace="webtoon",stack="toon",tier="was",state="ready"} 9"#,
            r#"webtoon_autoscaling_replicas{namespace="webtoon",stack="toon",tier="was",bound="min"} 12"#,
            r#"webtoon_autoscaling_replicas{namespace="webtoon",stack="toon",tier="was",bound="max"} 20"#,
            r#"webtoon_scaling_schedule_active{namespace="webtoon",stack="toon",schedule="half-price-sale"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }

        let after = StackScale {
            tiers: vec![("was", 2, 2)],
            bounds: Vec::new(),
            schedules: Vec::new(),
        };
        metrics.set_scale("webtoon", "toon", Some(&after));
        let text = metrics.encode();
        assert!(text.contains(r#"tier="was",state="ready"} 2"#), "{text}");
        assert!(!text.contains("database"), "{text}");
        assert!(!text.contains(r#"bound="min""#), "{text}");
        assert!(!text.contains("half-price-sale"), "{text}");

        metrics.set_scale("webtoon", "toon", None);
        assert!(!metrics.encode().contains(r#"stack="toon""#));
    }
}
