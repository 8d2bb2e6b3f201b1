//! Where the pods of a replicated tier run: spread over nodes and zones, so that
//! one node or zone failing never takes a whole tier down.

use k8s_openapi::api::core::v1::TopologySpreadConstraint;

use super::meta::selector;
use crate::api::ValidatedStack;

/// Spread constraints over hosts and zones. They prefer, never require, an even
/// spread: a small cluster must still be able to run every replica.
pub fn spread_constraints(
    stack: &ValidatedStack,
    component: &str,
) -> Vec<TopologySpreadConstraint> {
    ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.to_string(),
            when_unsatisfiable: "ScheduleAnyway".to_string(),
            label_selector: Some(selector(stack, component)),
            ..Default::default()
        })
        .collect()
}
