//! The WAS tier: the customer's application, replicated, probed and spread.

mod deployment;
pub mod env;
mod service;

pub use deployment::{DRAIN_SECONDS, deployment};
pub use service::{headless_service, headless_service_name, service};

use super::scaling::{self, Tier};
use super::{Children, Observed};
use crate::api::ValidatedStack;

/// Name of the port the WAS container listens on.
pub const PORT_NAME: &str = "app";

/// Adds the WAS objects to `children`.
pub fn build(stack: &ValidatedStack, observed: &Observed, children: &mut Children) {
    children.services.push(service(stack));
    children.services.push(headless_service(stack));
    children.deployments.push(deployment(stack, observed));
    children
        .horizontal_pod_autoscalers
        .extend(scaling::autoscaler(stack, Tier::Was, observed.now));
    children
        .pod_disruption_budgets
        .push(scaling::disruption_budget(stack, Tier::Was));
}
