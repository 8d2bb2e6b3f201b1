//! The operator's own permissions: exactly the resources and verbs the controller
//! uses, no wildcards. Tests hold this table to the requests the controller really
//! sends, in both directions, so it can neither lack nor exceed a permission.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::render::meta::MANAGER;

/// One resource and the verbs the controller uses on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// Resource, or `resource/subresource`.
    pub resource: &'static str,
    /// Verbs, in Kubernetes' words.
    pub verbs: &'static [&'static str],
    /// Whether the resource is cluster-scoped, and so beyond a namespaced Role.
    pub cluster_scoped: bool,
}

/// Children the controller applies, watches and prunes.
const STATELESS: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];
/// Data children: applied and watched, never deleted by the operator (garbage
/// collection removes them under `deletionPolicy: Delete`).
const DATA: &[&str] = &["get", "list", "watch", "create", "patch"];

const fn namespaced(
    group: &'static str,
    resource: &'static str,
    verbs: &'static [&'static str],
) -> Permission {
    Permission {
        group,
        resource,
        verbs,
        cluster_scoped: false,
    }
}

/// Every permission the controller needs. Server-side apply is a `patch`, and also
/// a `create` when the object does not exist yet.
pub const PERMISSIONS: &[Permission] = &[
    namespaced("webtoon.io", "webtoonstacks", &["get", "list", "watch"]),
    namespaced("webtoon.io", "webtoonstacks/status", &["patch"]),
    namespaced("", "configmaps", STATELESS),
    namespaced("", "services", STATELESS),
    namespaced("", "secrets", DATA),
    namespaced("", "persistentvolumeclaims", DATA),
    namespaced("apps", "deployments", STATELESS),
    namespaced("apps", "statefulsets", STATELESS),
    namespaced("batch", "cronjobs", STATELESS),
    // Migration Jobs are created once and never patched: a Job's template is immutable.
    namespaced(
        "batch",
        "jobs",
        &["get", "list", "watch", "create", "delete"],
    ),
    // A rollout's new pods show a failing image before its deadline; the ReplicaSets
    // keep the templates a rollback returns to.
    namespaced("", "pods", &["list"]),
    namespaced("apps", "replicasets", &["list"]),
    namespaced("autoscaling", "horizontalpodautoscalers", STATELESS),
    namespaced("policy", "poddisruptionbudgets", STATELESS),
    namespaced("networking.k8s.io", "networkpolicies", STATELESS),
    namespaced("events.k8s.io", "events", &["create", "patch"]),
    // The stack's PodMonitor, where the Prometheus Operator's CRDs are installed:
    // applied, and pruned when monitoring is turned off; never watched.
    namespaced(
        "monitoring.coreos.com",
        "podmonitors",
        &["get", "list", "create", "patch", "delete"],
    ),
    // The NFS image volume; its claim binds it to one namespace.
    Permission {
        group: "",
        resource: "persistentvolumes",
        verbs: &["get", "create", "patch"],
        cluster_scoped: true,
    },
];

/// What leader election needs (`run --leader-elect`), granted in the Lease's
/// namespace only: a Lease of another namespace is none of the operator's business.
pub const LEASE_PERMISSIONS: &[Permission] = &[namespaced(
    "coordination.k8s.io",
    "leases",
    &["get", "list", "watch", "create", "update"],
)];

/// Name of the Role (and its binding) for the leader Lease.
pub const LEADER_ELECTION_ROLE: &str = "webtoon-operator-leader-election";

/// The Role that lets the operator hold the leader Lease in `namespace`.
pub fn leader_election_role(namespace: &str) -> Role {
    Role {
        metadata: ObjectMeta {
            name: Some(LEADER_ELECTION_ROLE.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        rules: Some(to_rules(LEASE_PERMISSIONS.iter())),
    }
}

fn to_rules<'a>(permissions: impl Iterator<Item = &'a Permission>) -> Vec<PolicyRule> {
    permissions
        .map(|p| PolicyRule {
            api_groups: Some(vec![p.group.to_string()]),
            resources: Some(vec![p.resource.to_string()]),
            verbs: p.verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        })
        .collect()
}

fn rules(include_cluster_scoped: bool) -> Vec<PolicyRule> {
    to_rules(
        PERMISSIONS
            .iter()
            .filter(|p| include_cluster_scoped || !p.cluster_scoped),
    )
}

/// The ClusterRole of an operator that watches every namespace.
pub fn cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(MANAGER.to_string()),
            ..Default::default()
        },
        rules: Some(rules(true)),
        ..Default::default()
    }
}

/// The Role of an operator that watches one namespace (`run --namespace`). A Role
/// cannot grant cluster-scoped resources, so such an operator cannot create the NFS
/// PersistentVolume: give its stacks `storage.existingClaim` or a StorageClass instead.
pub fn role(namespace: &str) -> Role {
    Role {
        metadata: ObjectMeta {
            name: Some(MANAGER.to_string()),
            namespace: Some(namespace.to_string()),
            ..Default::default()
        },
        rules: Some(rules(false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_wildcards_and_the_role_leaves_out_cluster_scoped_resources() {
        for rule in cluster_role().rules.iter().flatten() {
            let words = rule
                .api_groups
                .iter()
                .flatten()
                .chain(rule.resources.iter().flatten())
                .chain(rule.verbs.iter());
            for word in words {
                assert!(!word.contains('*'), "{rule:?}");
            }
        }
        let role = role("webtoon");
        let resources: Vec<String> = role
            .rules
            .iter()
            .flatten()
            .flat_map(|r| r.resources.clone().unwrap_or_default())
            .collect();
        assert!(!resources.contains(&"persistentvolumes".to_string()));
        assert_eq!(resources.len(), PERMISSIONS.len() - 1);
    }
}
