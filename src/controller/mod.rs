//! The controller: watches WebtoonStacks and every kind they own, reconciles each
//! stack into its children, and reports status, events and metrics.

pub mod apply;
pub mod credentials;
pub mod prune;
pub mod reconcile;
pub mod status;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
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
}

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
        }
    }
}

/// How long to wait before retrying after `error`: an invalid spec waits for a
/// change (its status says what to fix); API errors retry soon.
pub fn retry_after(error: &Error) -> Action {
    match error {
        Error::InvalidSpec(_) | Error::Parse { .. } => Action::await_change(),
        error if error.is_conflict() => Action::requeue(Duration::from_secs(1)),
        _ => Action::requeue(Duration::from_secs(10)),
    }
}

fn error_policy(stack: Arc<WebtoonStack>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.reconcile_failed(error);
    tracing::warn!(
        stack = %kube::ResourceExt::name_any(stack.as_ref()),
        error = %error,
        "reconcile failed"
    );
    retry_after(error)
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
        .owns(owned::<PodDisruptionBudget>(&client, &namespace), children)
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
