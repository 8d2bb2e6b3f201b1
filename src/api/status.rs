//! Observed state of a `WebtoonStack`, written by the controller.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
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
    /// `RolledBack` after an automatic rollback.
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
