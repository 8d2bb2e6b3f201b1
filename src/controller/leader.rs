//! Leader election on a `coordination.k8s.io` Lease, so that of several operator
//! replicas exactly one reconciles. Taking and renewing the Lease are updates with
//! its `resourceVersion` as precondition: of two candidates that read the same Lease,
//! the API server accepts one write and refuses the other with 409, so both can never
//! win. A standby watches the Lease and takes it as soon as its holder releases it,
//! or stops renewing it for a lease duration.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use tokio::time::Instant;

use crate::{Error, Result};

/// How long a Lease stays taken without renewal; a crashed leader is replaced after
/// this long.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the leader renews.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(2);
/// How long the leader goes on without a successful renewal before it stops: well
/// under [`LEASE_DURATION`], so it has stopped before anyone else may take over.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);

/// Where the Lease is and who this process is.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Namespace of the Lease, normally the operator's own.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This process, as the Lease names its holder: the pod name in a cluster.
    pub identity: String,
}

/// One candidate for the Lease.
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The Lease as this process last wrote or read it.
    lease: Option<Lease>,
}

fn now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty())
}

fn duration_of(lease: &Lease) -> Duration {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .and_then(|s| u64::try_from(s).ok())
        .map_or(LEASE_DURATION, Duration::from_secs)
}

/// What a candidate compares to see whether the holder is still renewing: the
/// holder and its last renewal.
type Record = (Option<String>, Option<MicroTime>);

/// The [`Record`] of a Lease.
fn record(lease: &Lease) -> Record {
    (
        holder(lease).map(str::to_string),
        lease.spec.as_ref().and_then(|s| s.renew_time.clone()),
    )
}

/// `lease` taken by `identity` now.
pub fn taken(lease: Lease, identity: &str) -> Lease {
    let mut lease = lease;
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let changes_hands = spec.holder_identity.as_deref() != Some(identity);
    if changes_hands {
        spec.acquire_time = Some(now());
        spec.lease_transitions =
            Some(spec.lease_transitions.unwrap_or(0) + i32::from(spec.holder_identity.is_some()));
    }
    spec.holder_identity = Some(identity.to_string());
    spec.lease_duration_seconds = i32::try_from(LEASE_DURATION.as_secs()).ok();
    spec.renew_time = Some(now());
    lease
}

/// `lease` given up: no holder, and a duration of one second for any reader that
/// only looks at times.
pub fn released(lease: Lease) -> Lease {
    let mut lease = lease;
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    lease
}

fn conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

impl Elector {
    /// A candidate for the Lease of `config`.
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            lease: None,
        }
    }

    fn lease_error(&self, verb: &'static str, error: kube::Error) -> Error {
        Error::kube(verb, "Lease", &self.config.name, error)
    }

    /// Waits until this process holds the Lease, however long that takes. The
    /// holder's renewals are timed on this process's clock from when they were seen,
    /// not from the times the holder writes, so clocks that disagree cannot shorten
    /// a lease.
    /// `seen` hears of every holder this candidate finds, so that it can say who leads.
    pub async fn acquire(&mut self, seen_holder: impl Fn(Option<&str>)) {
        let config =
            watcher::Config::default().fields(&format!("metadata.name={}", self.config.name));
        let mut changes = Box::pin(watcher::watcher(self.api.clone(), config));
        let mut seen: Option<(Record, Instant)> = None;
        loop {
            let current = match self.api.get_opt(&self.config.name).await {
                Ok(current) => current,
                Err(error) => {
                    // A standby outlives a struggling API server (or a permission
                    // still on its way): it keeps trying, and says why.
                    tracing::warn!(error = %self.lease_error("read", error), "cannot read the leader Lease");
                    tokio::time::sleep(RENEW_INTERVAL).await;
                    continue;
                }
            };
            let wait = match current {
                None => {
                    let lease = taken(
                        Lease {
                            metadata: ObjectMeta {
                                name: Some(self.config.name.clone()),
                                namespace: Some(self.config.namespace.clone()),
                                ..Default::default()
                            },
                            spec: None,
                        },
                        &self.config.identity,
                    );
                    match self.api.create(&PostParams::default(), &lease).await {
                        Ok(lease) => {
                            self.lease = Some(lease);
                            return;
                        }
                        Err(e) if conflict(&e) => continue,
                        Err(e) => {
                            tracing::warn!(error = %self.lease_error("create", e), "cannot create the leader Lease");
                            RENEW_INTERVAL
                        }
                    }
                }
                Some(lease) => {
                    let now_seen = record(&lease);
                    let since = match &seen {
                        Some((before, at)) if *before == now_seen => *at,
                        _ => Instant::now(),
                    };
                    seen = Some((now_seen, since));
                    seen_holder(holder(&lease));
                    let left = duration_of(&lease).saturating_sub(since.elapsed());
                    let mine = holder(&lease) == Some(self.config.identity.as_str());
                    if mine || holder(&lease).is_none() || left.is_zero() {
                        match self.write_taken(lease).await {
                            Ok(()) => return,
                            Err(e) if conflict(&e) => continue,
                            Err(e) => {
                                tracing::warn!(error = %self.lease_error("update", e), "cannot take the leader Lease");
                                RENEW_INTERVAL
                            }
                        }
                    } else {
                        left
                    }
                }
            };
            // Until the holder's lease runs out, or the Lease changes (a release, a
            // renewal, a new holder), whichever comes first.
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = changes.next() => {}
            }
        }
    }

    /// Writes `lease` as taken by this process, on the precondition that nobody
    /// wrote it since it was read (its `resourceVersion`).
    async fn write_taken(&mut self, lease: Lease) -> std::result::Result<(), kube::Error> {
        let name = self.config.name.clone();
        let written = self
            .api
            .replace(
                &name,
                &PostParams::default(),
                &taken(lease, &self.config.identity),
            )
            .await?;
        self.lease = Some(written);
        Ok(())
    }

    /// Renews the Lease until it is lost, and returns why: another holder took it,
    /// or no renewal succeeded for [`RENEW_DEADLINE`].
    pub async fn hold(&mut self) -> Error {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(RENEW_INTERVAL).await;
            match self.renew().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {
                    return Error::LeaseLost {
                        name: self.config.name.clone(),
                        why: "another process holds it".to_string(),
                    };
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot renew the leader Lease");
                    if renewed.elapsed() >= RENEW_DEADLINE {
                        return Error::LeaseLost {
                            name: self.config.name.clone(),
                            why: format!("not renewed for {} s: {error}", RENEW_DEADLINE.as_secs()),
                        };
                    }
                }
            }
        }
    }

    /// One renewal; `false` when another process holds the Lease.
    async fn renew(&mut self) -> Result<bool> {
        let lease = match self.lease.clone() {
            Some(lease) => lease,
            None => self
                .api
                .get(&self.config.name)
                .await
                .map_err(|e| self.lease_error("read", e))?,
        };
        if holder(&lease) != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        match self.write_taken(lease).await {
            Ok(()) => Ok(true),
            Err(e) if conflict(&e) => {
                // Someone wrote the Lease since: read it, and renew on the next tick
                // if it is still ours.
                let fresh = self
                    .api
                    .get(&self.config.name)
                    .await
                    .map_err(|e| self.lease_error("read", e))?;
                let mine = holder(&fresh) == Some(self.config.identity.as_str());
                self.lease = Some(fresh);
                Ok(mine)
            }
            Err(e) => Err(self.lease_error("update", e)),
        }
    }

    /// Gives the Lease up, so that a standby takes it at once. A Lease that another
    /// process holds by now is left alone.
    pub async fn release(&mut self) -> Result<()> {
        let lease = self
            .api
            .get(&self.config.name)
            .await
            .map_err(|e| self.lease_error("read", e))?;
        if holder(&lease) != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let name = self.config.name.clone();
        match self
            .api
            .replace(&name, &PostParams::default(), &released(lease))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if conflict(&e) => Ok(()),
            Err(e) => Err(self.lease_error("update", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taking_counts_transitions_and_releasing_leaves_no_holder() {
        let first = taken(Lease::default(), "a");
        let spec = first.spec.clone().unwrap_or_default();
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert!(spec.acquire_time.is_some() && spec.renew_time.is_some());
        let renewed = taken(first.clone(), "a");
        assert_eq!(
            renewed.spec.as_ref().and_then(|s| s.lease_transitions),
            Some(0)
        );
        assert_eq!(
            renewed.spec.as_ref().and_then(|s| s.acquire_time.clone()),
            spec.acquire_time,
            "a renewal keeps the acquire time"
        );
        let other = taken(first, "b");
        assert_eq!(
            other.spec.as_ref().and_then(|s| s.lease_transitions),
            Some(1)
        );
        let free = released(other);
        assert_eq!(holder(&free), None);
        assert_eq!(
            free.spec.as_ref().and_then(|s| s.lease_duration_seconds),
            Some(1)
        );
        let after_release = taken(free, "a");
        assert_eq!(
            after_release
                .spec
                .as_ref()
                .and_then(|s| s.lease_transitions),
            Some(1)
        );
    }

    #[test]
    fn the_leader_stops_well_before_anyone_may_take_over() {
        assert!(RENEW_INTERVAL * 3 <= RENEW_DEADLINE);
        assert!(RENEW_DEADLINE + Duration::from_secs(5) <= LEASE_DURATION);
    }
}
