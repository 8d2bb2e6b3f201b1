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
    /// `RolledBack` while a failed release is held back, and `CredentialsSynced`
    /// (whether the servers accept exactly the credentials Secret's passwords).
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
    /// The newest backup, the newest failed one, and the newest verified restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backups: Option<BackupsStatus>,
    /// The generated credentials: which generation the stack uses, when each was last
    /// rotated, and the rotation under way or the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsStatus>,
}

/// The generated credentials of the embedded database and cache.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStatus {
    /// Rotations that switched the WAS to new credentials since the credentials
    /// Secret was created.
    pub generation: u64,
    /// The MariaDB account the WAS connects as: `spec.database.user` after an even
    /// number of rotations, `<user>_2` after an odd one. Absent for an external database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_user: Option<String>,
    /// When each credential was last rotated; absent: not since the Secret was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotated: Option<CredentialTimes>,
    /// The rotation under way, or the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationStatus>,
    /// Keys of the credentials Secret whose values differ from what the operator
    /// wrote (changed, added or deleted by hand); nothing is rotated while any is listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edited_keys: Vec<String>,
}

/// When each credential was last rotated.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CredentialTimes {
    /// The application's MariaDB account (`database-password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<Time>,
    /// The backup user (`database-backup-password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_backup: Option<Time>,
    /// MariaDB root and the administrative account rotations use
    /// (`database-root-password`, `database-admin-password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_root: Option<Time>,
    /// The Redis application user and the Redis user rotations use (`cache-password`,
    /// `cache-admin-password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<Time>,
}

/// Where a credentials rotation is.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RotationPhase {
    /// New passwords are stored in the Secret; waiting for the database and the cache.
    #[default]
    Pending,
    /// Jobs give the servers the new passwords beside the old ones.
    Adding,
    /// The servers accept both; waiting for the WAS release under way to finish.
    Switching,
    /// The Secret holds the new passwords and the WAS rolls onto them.
    RollingOut,
    /// Jobs make the servers refuse the old passwords.
    Finishing,
    /// Every credential was rotated; the old passwords are refused.
    Succeeded,
    /// A Job failed; a new `requestId` retries the step.
    Failed,
}

/// One rotation of the credentials.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// What asked for it: `spec.credentials.rotation.requestId`, or `interval`.
    pub request: String,
    /// Where it is.
    pub phase: RotationPhase,
    /// What happened, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The Jobs of the current step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<String>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When it succeeded or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}

/// What the backup and verify Jobs reported.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BackupsStatus {
    /// The newest backup taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<BackupRecord>,
    /// The newest backup run that failed, while no backup succeeded after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<BackupFailure>,
    /// The newest restore of a backup into a throwaway database, and what the
    /// comparison with the backup's description found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified_restore: Option<VerifiedRestore>,
}

/// One backup taken.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupRecord {
    /// File name of the dump (`webtoon-20261201T030000Z.sql.gz`); `database.restore.from` takes it.
    pub name: String,
    /// When the dump started.
    pub time: Time,
    /// Size of the compressed dump in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Where it is kept: `volume:<claim>/<name>` or `s3://<bucket>/<key>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The Job that took it.
    pub job: String,
}

/// One failed backup run.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupFailure {
    /// The Job that failed.
    pub job: String,
    /// When it failed.
    pub time: Time,
    /// Why, in the words of the step that failed.
    pub message: String,
}

/// One verified restore.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedRestore {
    /// The backup loaded, when one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When the verification finished.
    pub time: Time,
    /// `Passed` or `Failed`.
    pub result: String,
    /// Seconds the load into the throwaway database took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_seconds: Option<u64>,
    /// What differed or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The Job that ran it.
    pub job: String,
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
