//! Observed state of a `WebtoonStack`, written by the controller.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Observed state of a webtoon stack.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct WebtoonStackStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciling` and `Stalled` (kstatus), one condition per tier
    /// (`ProxyReady`, `WasReady`, `DatabaseReady`, `CacheReady`, `StorageReady`) and
    /// `RolledBack` while a failed release is held back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Proxy replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<TierStatus>,
    /// WAS replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<TierStatus>,
    /// Database replicas (0 or 1; absent for an external database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<TierStatus>,
    /// Cache replicas (0 or 1; absent for an external cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<TierStatus>,
    /// The address users reach the site at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Releases of the proxy and the WAS: the last that fully rolled out, and the
    /// last that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollouts: Option<RolloutsStatus>,
    /// The database migration of the newest WAS image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationStatus>,
}

/// Releases of the two Deployment tiers.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RolloutsStatus {
    /// The proxy tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<TierRollout>,
    /// The WAS tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<TierRollout>,
}

/// What one tier runs and ran.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TierRollout {
    /// The last release whose every replica was updated and available: where an
    /// automatic rollback returns to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_known_good: Option<Release>,
    /// The release of the current spec, when it failed; it is not retried until the
    /// spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<FailedRelease>,
}

/// One pod template as rolled out.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// The main container's image.
    pub image: String,
    /// Hash of the pod template (its `webtoon.io/template-hash` annotation).
    pub template_hash: String,
    /// When the rollout finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// A release that failed, and why.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FailedRelease {
    /// The main container's image.
    pub image: String,
    /// Hash of the pod template that failed.
    pub template_hash: String,
    /// `ProgressDeadlineExceeded`, `ImagePullBackOff`, `ErrImagePull`,
    /// `CrashLoopBackOff`, `MigrationFailed` or `BackupFailed`.
    pub reason: String,
    /// What was seen, for people.
    pub message: String,
    /// When the failure was detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// Where a migration is.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MigrationPhase {
    /// Waiting for the database to be ready.
    #[default]
    Pending,
    /// Taking the backup the migration could be undone from.
    BackingUp,
    /// The backup failed; the migration did not run and the WAS stays where it is.
    BackupFailed,
    /// The migration Job runs.
    Running,
    /// The migration finished; the WAS may move to the image.
    Succeeded,
    /// The migration failed or ran out of time; the WAS stays where it is.
    Failed,
}

/// The migration run for one WAS image.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MigrationStatus {
    /// The WAS image the migration runs in.
    pub image: String,
    /// Where it is.
    pub phase: MigrationPhase,
    /// The migration Job.
    pub job: String,
    /// The backup file taken before the migration started, on the backup volume; a
    /// stack restored from it (`database.restore.from`) has the data as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// What happened, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the migration was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it succeeded or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}

/// Ready and desired replicas of one tier.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TierStatus {
    /// Replicas that pass their readiness probe.
    pub ready: i32,
    /// Replicas wanted now.
    pub desired: i32,
    /// `ready/desired`, for `kubectl get`.
    pub summary: String,
}
