//! The WAS tier: the customer's application, replicated, probed and spread.

mod deployment;
pub mod env;
mod migration_job;
mod service;

pub use deployment::{DISCOVERY_SECONDS, DRAIN_SECONDS, deployment, pod_template};
pub use migration_job::{MIGRATION_COMPONENT, migration_job, migration_job_name};
pub use service::{headless_service, headless_service_name, service};

use super::database::backup_cronjob::pre_migration_backup_job;
use super::release::{MigrationJobs, Template};
use super::scaling::{self, Tier};
use super::{Children, Observed};
use crate::api::ValidatedStack;

/// Name of the port the WAS container listens on.
pub const PORT_NAME: &str = "app";

/// Adds the WAS objects to `children`.
pub fn build(stack: &ValidatedStack, observed: &Observed, children: &mut Children) {
    children.services.push(service(stack));
    children.services.push(headless_service(stack));
    if let Some(migration) = &observed.migration {
        migration_jobs(stack, migration, observed.operator_image(), children);
    }
    // A new stack's WAS waits for its first migration: no pod of an image runs on a
    // schema the image does not know.
    if observed.was_template != Template::Withheld {
        children.deployments.push(deployment(stack, observed));
        children
            .horizontal_pod_autoscalers
            .extend(scaling::autoscaler(stack, Tier::Was, observed.now));
    }
    children
        .pod_disruption_budgets
        .push(scaling::disruption_budget(stack, Tier::Was));
}

/// The Jobs of the migration to `jobs.image`: the backup first, when one was taken.
fn migration_jobs(
    stack: &ValidatedStack,
    jobs: &MigrationJobs,
    tool_image: &str,
    children: &mut Children,
) {
    let Some(migration) = &stack.spec.was.migration else {
        return;
    };
    if let (Some(backup), Some(file)) = (&stack.spec.database.backup, &jobs.backup) {
        children.jobs.push(pre_migration_backup_job(
            stack,
            backup,
            &jobs.image,
            file,
            tool_image,
        ));
    }
    if jobs.migrate {
        children
            .jobs
            .push(migration_job(stack, migration, &jobs.image));
    }
}
