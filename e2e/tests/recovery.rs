//! The operator killed with SIGKILL in the middle of its first reconcile, and the
//! API server restarted: both recover, the stack becomes Ready, the passwords are
//! the ones generated before the kill, and no child exists twice.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use webtoon_e2e::audit::AuditLog;
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack::{self, children_selector};
use webtoon_e2e::wait;

const LIMIT: Duration = Duration::from_secs(420);
const RESTART_ENV: &str = "WEBTOON_E2E_RESTART_APISERVER";

async fn count<K>(client: &Client, namespace: &str, selector: &str) -> usize
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", K::kind(&())))
        .items
        .len()
}

/// Runs the restart command and returns once it reports the API server healthy.
async fn restart_api_server() {
    let Ok(command) = std::env::var(RESTART_ENV) else {
        panic!(
            "set {RESTART_ENV} to a shell command that restarts the API server and returns when it is healthy (local: `e2e/local-cluster.sh restart kube-apiserver`)"
        );
    };
    let run = tokio::process::Command::new("sh")
        .args(["-c", &command])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .unwrap_or_else(|_| panic!("`{command}` did not finish within 180 s"))
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    assert!(
        output.status.success(),
        "`{command}` failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn operator_and_api_server_recover(client: Client, namespace: String) {
    let audit = AuditLog::from_env();
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let mark = operator.started().expect("the audit log is configured");
    let mut minimal = stack::example("minimal", &namespace);
    stack::prepare(&client, &mut minimal).await;
    let name = minimal.name_any();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let secret_name = format!("{name}-credentials");
    stack::apply(&client, &minimal).await;
    // The credentials are the reconcile's first write; every child follows them.
    let generated = wait::until(
        &secrets,
        &secret_name,
        Duration::from_secs(60),
        |s: Option<&Secret>| s.is_some(),
    )
    .await;
    operator.kill().await;
    let before_kill = audit.requests_since(mark, operator.user());
    let expected = stack::rendered_children(&minimal);
    let total = expected.to_documents().map(|d| d.len()).unwrap_or(0);
    eprintln!(
        "{name}: the operator was killed after {} of its writes (a full first apply is {total} children): {:?}",
        before_kill.writes().len(),
        before_kill.by_verb_and_resource()
    );

    operator.restart().await;
    restart_api_server().await;
    let ready = stack::wait_ready(&client, &namespace, &name, Duration::from_secs(240)).await;
    assert!(stack::ready_now(&ready));

    let now = secrets
        .get(&secret_name)
        .await
        .expect("the credentials Secret exists");
    assert_eq!(
        now.uid(),
        generated.uid(),
        "the credentials Secret was replaced"
    );
    assert_eq!(now.data, generated.data, "the passwords were regenerated");
    let instance = format!("app.kubernetes.io/instance={name}");
    assert_eq!(
        count::<Secret>(&client, &namespace, &instance).await,
        1,
        "credentials Secrets"
    );

    let selector = children_selector(&name);
    let ns = namespace.as_str();
    let found = [
        (
            "Deployment",
            count::<Deployment>(&client, ns, &selector).await,
            expected.deployments.len(),
        ),
        (
            "StatefulSet",
            count::<StatefulSet>(&client, ns, &selector).await,
            expected.stateful_sets.len(),
        ),
        (
            "Service",
            count::<Service>(&client, ns, &selector).await,
            expected.services.len(),
        ),
        (
            "ConfigMap",
            count::<ConfigMap>(&client, ns, &selector).await,
            expected.config_maps.len(),
        ),
        (
            "NetworkPolicy",
            count::<NetworkPolicy>(&client, ns, &selector).await,
            expected.network_policies.len(),
        ),
        (
            "PodDisruptionBudget",
            count::<PodDisruptionBudget>(&client, ns, &selector).await,
            expected.pod_disruption_budgets.len(),
        ),
        (
            "PersistentVolumeClaim",
            count::<PersistentVolumeClaim>(&client, ns, &selector).await,
            // The operator's own claims, and one per claim template and replica that
            // the StatefulSet controller creates with the same labels.
            expected.persistent_volume_claims.len()
                + expected
                    .stateful_sets
                    .iter()
                    .filter_map(|s| s.spec.as_ref())
                    .map(|s| {
                        s.volume_claim_templates.as_ref().map_or(0, Vec::len)
                            * usize::try_from(s.replicas.unwrap_or(1)).unwrap_or(0)
                    })
                    .sum::<usize>(),
        ),
    ];
    for (kind, found, wanted) in found {
        assert_eq!(found, wanted, "{kind}s of {name}");
    }
    // A second ReplicaSet would mean the pod template changed after the restart
    // (new passwords, say, in a checksum): a rollout nobody asked for.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    for deployment in deployments
        .list(&ListParams::default().labels(&selector))
        .await
        .expect("Deployments can be listed")
        .items
    {
        let uid = deployment.uid().unwrap_or_default();
        let owned = replica_sets
            .list(&ListParams::default())
            .await
            .expect("ReplicaSets can be listed")
            .items
            .iter()
            .filter(|r| r.owner_references().iter().any(|o| o.uid == uid))
            .count();
        assert_eq!(owned, 1, "ReplicaSets of {}", deployment.name_any());
    }
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_killed_mid_reconcile_and_api_server_restart_recover() {
    within_namespace("recovery", LIMIT, |client, namespace| {
        operator_and_api_server_recover(client, namespace)
    })
    .await;
}
