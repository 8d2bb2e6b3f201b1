//! The controller: watches WebtoonStacks and every kind they own, reconciles each
//! stack into its children, and reports status, events and metrics.

pub mod apply;
pub mod backups;
pub mod credentials;
pub mod data_volumes;
pub mod leader;
pub mod migration;
pub mod nfs_volume;
pub mod prune;
pub mod rbac;
pub mod reconcile;
pub mod release;
pub mod rollout;
pub mod rotation;
pub mod status;
pub mod watch_backoff;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;

use crate::api::WebtoonStack;
use crate::metrics::Metrics;
use crate::render::meta::MANAGER;
use crate::{Error, Result};
use watch_backoff::WatchBackoff;

pub use reconcile::reconcile;

/// What every reconcile shares.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Metrics of the controller.
    pub metrics: Arc<Metrics>,
    /// Event recorder; `None` where events are not wanted.
    pub recorder: Option<Recorder>,
    /// The clock, replaceable in tests.
    pub clock: Box<dyn Fn() -> jiff::Timestamp + Send + Sync>,
    /// Consecutive failures per stack, for retry delays.
    pub backoff: Backoff,
    /// The image backup Jobs run the operator's tools in; `None` means this
    /// version's published image.
    pub operator_image: Option<String>,
}

/// Environment variable naming the operator's own image (the chart sets it), which
/// backup Jobs run to reach a bucket.
pub const OPERATOR_IMAGE_ENV: &str = "WEBTOON_OPERATOR_IMAGE";

/// Consecutive reconcile failures per stack (`namespace/name`), so that retry delays
/// grow while a stack keeps failing and start short again after a success.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Counts a failure of `key` and returns how many it has had in a row.
    pub fn failed(&self, key: &str) -> u32 {
        let Ok(mut failures) = self.failures.lock() else {
            return 1;
        };
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    /// Forgets the failures of `key` after it reconciled.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}

/// The longest wait between retries of a failing stack.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

impl Context {
    /// A context with the real clock and an event recorder.
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        let reporter = Reporter {
            controller: MANAGER.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Some(Recorder::new(client.clone(), reporter)),
            client,
            metrics,
            clock: Box::new(jiff::Timestamp::now),
            backoff: Backoff::default(),
            operator_image: std::env::var(OPERATOR_IMAGE_ENV)
                .ok()
                .filter(|image| !image.is_empty()),
        }
    }
}

/// How long to wait before retrying after the `attempt`-th failure in a row with
/// `error`: an invalid spec waits for a change (its status says what to fix); a
/// conflict retries after 1 s and other errors after 5 s, doubling with each further
/// failure up to [`MAX_RETRY_DELAY`], so a struggling API server is not hammered.
pub fn retry_after(error: &Error, attempt: u32) -> Action {
    let first = match error {
        Error::InvalidSpec(_) | Error::Parse { .. } => return Action::await_change(),
        error if error.is_conflict() => Duration::from_secs(1),
        _ => Duration::from_secs(5),
    };
    let doublings = attempt.saturating_sub(1).min(16);
    Action::requeue(first.saturating_mul(1 << doublings).min(MAX_RETRY_DELAY))
}

fn error_policy(stack: Arc<WebtoonStack>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(error);
    let key = reconcile::stack_key(&stack);
    let attempt = ctx.backoff.failed(&key);
    tracing::warn!(stack = %key, attempt, error = %error, "reconcile failed");
    retry_after(error, attempt)
}

/// Runs the controller until SIGTERM or SIGINT. `namespace` limits it to one namespace.
///
/// Fails at once when WebtoonStacks cannot be listed (no CRD, no permission): a
/// controller that would only log watch errors forever is worse than a pod in
/// CrashLoopBackOff whose last words say what to fix.
pub async fn run(client: Client, namespace: Option<String>, metrics: Arc<Metrics>) -> Result<()> {
    let api = |client: &Client| -> (Api<WebtoonStack>, watcher::Config) {
        let api = match &namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        (api, watcher::Config::default())
    };
    fn owned<K>(client: &Client, namespace: &Option<String>) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
    let children =
        watcher::Config::default().labels(&format!("app.kubernetes.io/managed-by={MANAGER}"));
    let (stacks, config) = api(&client);
    stacks
        .list(&ListParams::default().limit(1))
        .await
        .map_err(|source| Error::StackApiUnavailable {
            source: Box::new(source),
        })?;
    let ctx = Arc::new(Context::new(client.clone(), metrics.clone()));
    metrics.set_watching(true);
    Controller::new(stacks, config)
        .owns(owned::<Deployment>(&client, &namespace), children.clone())
        .owns(owned::<StatefulSet>(&client, &namespace), children.clone())
        .owns(owned::<CronJob>(&client, &namespace), children.clone())
        .owns(owned::<Job>(&client, &namespace), children.clone())
        .owns(owned::<Service>(&client, &namespace), children.clone())
        .owns(owned::<ConfigMap>(&client, &namespace), children.clone())
        .owns(owned::<Secret>(&client, &namespace), children.clone())
        .owns(
            owned::<PersistentVolumeClaim>(&client, &namespace),
            children.clone(),
        )
        .owns(
            owned::<HorizontalPodAutoscaler>(&client, &namespace),
            children.clone(),
        )
        .owns(
            owned::<PodDisruptionBudget>(&client, &namespace),
            children.clone(),
        )
        .owns(owned::<NetworkPolicy>(&client, &namespace), children)
        .trigger_backoff(WatchBackoff::default())
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => tracing::debug!(stack = %object.name, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile event"),
            }
        })
        .await;
    metrics.set_watching(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> Error {
        Error::kube(
            "apply",
            "Deployment",
            "megatoon-was",
            kube::Error::Api(
                kube::core::Status::failure("injected", "Test")
                    .with_code(code)
                    .boxed(),
            ),
        )
    }

    #[test]
    fn retry_delays_double_per_failure_up_to_the_cap() {
        let delays: Vec<Action> = (1..=8).map(|n| retry_after(&api_error(500), n)).collect();
        let expected: Vec<Action> = [5, 10, 20, 40, 80, 160, 300, 300]
            .into_iter()
            .map(|s| Action::requeue(Duration::from_secs(s)))
            .collect();
        assert_eq!(delays, expected);
        assert_eq!(
            retry_after(&api_error(409), 1),
            Action::requeue(Duration::from_secs(1))
        );
        assert_eq!(
            retry_after(&api_error(409), 3),
            Action::requeue(Duration::from_secs(4))
        );
        assert_eq!(
            retry_after(&api_error(500), u32::MAX),
            Action::requeue(MAX_RETRY_DELAY)
        );
        assert_eq!(
            retry_after(&Error::InvalidSpec(Vec::new()), 5),
            Action::await_change()
        );
    }

    #[test]
    fn backoff_counts_failures_per_stack_and_forgets_them_on_success() {
        let backoff = Backoff::default();
        assert_eq!(backoff.failed("webtoon/a"), 1);
        assert_eq!(backoff.failed("webtoon/a"), 2);
        assert_eq!(backoff.failed("webtoon/b"), 1);
        backoff.succeeded("webtoon/a");
        assert_eq!(backoff.failed("webtoon/a"), 1);
        assert_eq!(backoff.failed("webtoon/b"), 2);
    }
}
