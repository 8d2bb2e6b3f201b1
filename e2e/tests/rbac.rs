//! The operator needs nothing beyond the RBAC it generates: run as a ServiceAccount
//! bound to `webtoon-operator rbac` (a ClusterRole) or `rbac --namespace NS` (a Role
//! for `run --namespace NS`), a production stack becomes Ready and the API server
//! refuses none of its requests.

use std::time::Duration;

use kube::{Client, ResourceExt};
use webtoon_e2e::audit::AuditLog;
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack::{self, NfsVolumeCleanup};

const LIMIT: Duration = Duration::from_secs(300);

async fn production_ready_without_403(client: Client, namespace: String, scope: Scope) {
    let audit = AuditLog::from_env();
    ensure_crd(&client).await;
    let _volumes = NfsVolumeCleanup::new(&namespace);
    let mut operator = Operator::start(&client, &namespace, scope).await;
    let mark = operator.started().expect("the audit log is configured");
    let production = stack::example("production", &namespace);
    let production = match scope {
        Scope::ClusterRole | Scope::AllNamespaces => production,
        // A Role cannot grant the cluster-scoped NFS volume (README, "Security").
        Scope::NamespaceRole | Scope::Chart => stack::without_nfs(production),
    };
    let ready = stack::deploy(&client, production).await;
    // The server logs a request once it completes: wait until the reconcile that
    // wrote Ready shows up, then count.
    let requests = audit
        .wait_for(
            mark,
            operator.user(),
            Duration::from_secs(30),
            "the status write",
            |r| r.count("patch", "webtoonstacks/status") > 0,
        )
        .await;
    eprintln!(
        "{} requests of {} until {} was Ready: {:?}",
        requests.entries.len(),
        operator.user(),
        ready.name_any(),
        requests.by_verb_and_resource()
    );
    let writes_by_operator = requests.writes().len();
    assert!(writes_by_operator > 0, "the operator wrote nothing");
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn production_stack_is_ready_with_the_generated_cluster_role() {
    within_namespace("rbac-cluster", LIMIT, |client, namespace| {
        production_ready_without_403(client, namespace, Scope::ClusterRole)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn production_stack_is_ready_with_the_generated_namespace_role() {
    within_namespace("rbac-role", LIMIT, |client, namespace| {
        production_ready_without_403(client, namespace, Scope::NamespaceRole)
    })
    .await;
}
