//! Pure render: from a validated stack and what the controller observed in the
//! cluster, build every child object. No client, no clock, no randomness: the same
//! inputs give the same objects, which is what makes `render` and the tests honest.

pub mod cache;
pub mod credentials;
pub mod database;
pub mod drain;
pub mod meta;
pub mod monitoring;
pub mod network;
pub mod placement;
pub mod proxy;
pub mod release;
pub mod rotation;
pub mod scaling;
pub mod security;
pub mod stateful;
pub mod storage;
pub mod volumes;
pub mod was;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Serialize;

use crate::api::ValidatedStack;
use crate::{Error, Result};

pub use credentials::Credentials;

/// What the controller read from the cluster that render needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// Generated passwords from the credentials Secret; `None` offline or before
    /// they exist, and then render leaves the Secret out.
    pub credentials: Option<Credentials>,
    /// The current time, for scaling schedules; `None` means no schedule is active.
    pub now: Option<jiff::Timestamp>,
    /// The proxy Deployment's template, when the controller holds it back.
    pub proxy_template: release::Template,
    /// The WAS Deployment's template, when the controller holds it back.
    pub was_template: release::Template,
    /// The migration whose Jobs exist; `None` offline and when none ran.
    pub migration: Option<release::MigrationJobs>,
    /// The operator's own image, which uploads backups to a bucket and fetches them;
    /// `None` means [`DEFAULT_OPERATOR_IMAGE`].
    pub operator_image: Option<String>,
    /// The credentials Secret's keys beyond the four passwords, and its annotations.
    pub secret_state: credentials::SecretState,
    /// The Jobs of the credentials rotation step under way; `None` when none runs.
    pub rotation: Option<credentials::RotationJobs>,
}

/// The image this operator version is published as.
pub const DEFAULT_OPERATOR_IMAGE: &str = concat!(
    "ghcr.io/webtoon-operator/webtoon-operator:",
    env!("CARGO_PKG_VERSION")
);

impl Observed {
    /// The image that runs the operator's backup tools.
    pub fn operator_image(&self) -> &str {
        self.operator_image
            .as_deref()
            .unwrap_or(DEFAULT_OPERATOR_IMAGE)
    }
}

/// Every child object of a stack, one list per kind.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Children {
    /// Isolation of every pod of the stack, applied before any pod exists.
    pub network_policies: Vec<NetworkPolicy>,
    /// The credentials Secret.
    pub secrets: Vec<Secret>,
    /// nginx, MariaDB and Redis configuration, and the database's init, restore and
    /// backup scripts.
    pub config_maps: Vec<ConfigMap>,
    /// The NFS PersistentVolume for the image volume.
    pub persistent_volumes: Vec<PersistentVolume>,
    /// Image volume claim and database backup claim; data, never pruned.
    pub persistent_volume_claims: Vec<PersistentVolumeClaim>,
    /// Services of every tier.
    pub services: Vec<Service>,
    /// MariaDB and Redis.
    pub stateful_sets: Vec<StatefulSet>,
    /// Scheduled database backups; they need the database running.
    pub cron_jobs: Vec<CronJob>,
    /// The WAS migration and the backup taken before it; created once, never changed.
    pub jobs: Vec<Job>,
    /// Proxy and WAS.
    pub deployments: Vec<Deployment>,
    /// Autoscalers of proxy and WAS.
    pub horizontal_pod_autoscalers: Vec<HorizontalPodAutoscaler>,
    /// Disruption budgets of proxy and WAS.
    pub pod_disruption_budgets: Vec<PodDisruptionBudget>,
    /// The stack's PodMonitor, applied only where the Prometheus Operator's CRDs are.
    pub pod_monitors: Vec<monitoring::pod_monitor::PodMonitor>,
}

/// Builds every child object of `stack`.
pub fn render(stack: &ValidatedStack, observed: &Observed) -> Children {
    let mut children = Children::default();
    if let Some(credentials) = &observed.credentials {
        children.secrets.push(credentials::secret(
            stack,
            credentials,
            &observed.secret_state,
        ));
    }
    network::build(stack, &mut children);
    storage::build(stack, &mut children);
    database::build(stack, observed.operator_image(), &mut children);
    cache::build(stack, &mut children);
    was::build(stack, observed, &mut children);
    proxy::build(stack, observed, &mut children);
    if let Some(jobs) = &observed.rotation {
        rotation::build(stack, jobs, &mut children);
    }
    children
        .pod_monitors
        .extend(monitoring::pod_monitor::pod_monitor(stack));
    children
}

impl Children {
    /// Every object as JSON, in the order they are applied: network policies,
    /// configuration, secrets and volumes first, then the data tier and its backups,
    /// then the migration, then WAS, then proxy, then the PodMonitor.
    pub fn to_documents(&self) -> Result<Vec<serde_json::Value>> {
        // Destructured without `..` so that a new kind cannot be built and forgotten.
        let Self {
            network_policies,
            secrets,
            config_maps,
            persistent_volumes,
            persistent_volume_claims,
            services,
            stateful_sets,
            cron_jobs,
            jobs,
            deployments,
            horizontal_pod_autoscalers,
            pod_disruption_budgets,
            pod_monitors,
        } = self;
        let mut documents = Vec::new();
        push_all(&mut documents, network_policies)?;
        push_all(&mut documents, secrets)?;
        push_all(&mut documents, config_maps)?;
        push_all(&mut documents, persistent_volumes)?;
        push_all(&mut documents, persistent_volume_claims)?;
        push_all(&mut documents, services)?;
        push_all(&mut documents, stateful_sets)?;
        push_all(&mut documents, cron_jobs)?;
        push_all(&mut documents, jobs)?;
        push_all(&mut documents, deployments)?;
        push_all(&mut documents, horizontal_pod_autoscalers)?;
        push_all(&mut documents, pod_disruption_budgets)?;
        for monitor in pod_monitors {
            documents.push(serde_json::to_value(monitor).map_err(|e| Error::Serialize {
                what: "PodMonitor".to_string(),
                message: e.to_string(),
            })?);
        }
        Ok(documents)
    }
}

fn push_all<K>(documents: &mut Vec<serde_json::Value>, objects: &[K]) -> Result<()>
where
    K: k8s_openapi::Resource + Serialize,
{
    for object in objects {
        documents.push(serde_json::to_value(object).map_err(|e| Error::Serialize {
            what: K::KIND.to_string(),
            message: e.to_string(),
        })?);
    }
    Ok(())
}
