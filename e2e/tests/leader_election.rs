//! Leader election: of two operator processes with `--leader-elect`, exactly one
//! reconciles and writes (the audit log, by each process's own token); the leader
//! killed with SIGKILL is replaced within the lease duration; SIGTERM hands the
//! Lease over in under two seconds. Both replicas answer `/readyz`, and
//! `webtoon_leader` says which one leads.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use webtoon_e2e::audit::AuditLog;
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{E2E_MANAGER, Operator, SERVICE_ACCOUNT, Scope};
use webtoon_e2e::stack;
use webtoon_operator::controller::leader::LEASE_DURATION;
use webtoon_operator::controller::rbac::{LEADER_ELECTION_ROLE, leader_election_role};

const LIMIT: Duration = Duration::from_secs(300);

/// Lets the operator's account hold the Lease in `namespace`, as the chart does.
async fn grant_lease(client: &Client, namespace: &str) {
    let params = PatchParams::apply(E2E_MANAGER).force();
    let roles: Api<k8s_openapi::api::rbac::v1::Role> = Api::namespaced(client.clone(), namespace);
    roles
        .patch(
            LEADER_ELECTION_ROLE,
            &params,
            &Patch::Apply(&leader_election_role(namespace)),
        )
        .await
        .expect("the leader-election Role applies");
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": LEADER_ELECTION_ROLE, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEADER_ELECTION_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}],
    }))
    .expect("a RoleBinding");
    Api::<RoleBinding>::namespaced(client.clone(), namespace)
        .patch(LEADER_ELECTION_ROLE, &params, &Patch::Apply(&binding))
        .await
        .expect("the leader-election RoleBinding applies");
}

async fn leads(operator: &Operator) -> bool {
    operator.metric("webtoon_leader").await == Some(1.0)
}

/// Polls `webtoon_leader` every 50 ms until `operator` leads; returns how long it took.
async fn until_leading(operator: &mut Operator, timeout: Duration) -> Duration {
    let started = Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    loop {
        ticks.tick().await;
        operator.assert_alive();
        if leads(operator).await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < timeout,
            "the operator did not lead within {timeout:?}; its log:\n{}",
            operator.log()
        );
    }
}

async fn one_leader_at_a_time(client: Client, namespace: String) {
    ensure_crd(&client).await;
    grant_lease(&client, &namespace).await;
    let audit = AuditLog::from_env();
    let args = ["--leader-elect", "--lease-namespace", namespace.as_str()];
    let mut first = Operator::start_with(&client, &namespace, Scope::ClusterRole, &args).await;
    until_leading(&mut first, LEASE_DURATION).await;
    let mark = audit.mark();
    let mut second = Operator::start_with(&client, &namespace, Scope::ClusterRole, &args).await;
    assert!(!leads(&second).await, "the second replica stands by");
    // It names the leader, this host's name and the first process's id, once it has
    // read the Lease.
    let leader = format!("-{}", first.pid().expect("the first operator runs"));
    let started = Instant::now();
    loop {
        let said = second.readyz().await.unwrap_or_default();
        if said.starts_with("ok: standing by") && said.trim_end().ends_with(&leader) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the standby's /readyz does not name the leader ({leader}): {said}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Only the leader reconciles: one credential wrote everything.
    let ready = stack::deploy(&client, stack::example("minimal", &namespace)).await;
    let name = ready.name_any();
    let user = first.user().to_string();
    let requests = audit.requests_since(mark, &user);
    // Each process has a token of its own, which the log names.
    let processes: BTreeSet<&str> = requests
        .entries
        .iter()
        .filter_map(|e| e.user.credential())
        .collect();
    assert!(
        processes.len() >= 2,
        "both processes are in the log, told apart by their tokens: {processes:?}"
    );
    let writers: BTreeSet<Option<&str>> = requests
        .writes()
        .iter()
        .map(|e| e.user.credential())
        .collect();
    assert_eq!(
        writers.len(),
        1,
        "exactly one process writes; writers by credential: {writers:?}"
    );
    assert!(!writers.contains(&None), "every write names its credential");
    assert_eq!(second.reconciles().await, Some(0), "the standby reconciled");
    assert!(first.reconciles().await.unwrap_or(0) > 0);

    // The leader dies without a word: the standby takes over once the Lease runs out.
    first.kill().await;
    let takeover = until_leading(&mut second, LEASE_DURATION + Duration::from_secs(10)).await;
    eprintln!("{name}: takeover after SIGKILL of the leader in {takeover:?}");
    assert!(
        takeover <= LEASE_DURATION + Duration::from_secs(3),
        "took {takeover:?}, more than the lease duration {LEASE_DURATION:?}"
    );
    stack::touch(&client, &namespace, &name, "new-leader").await;
    let seen = second.reconciles().await.unwrap_or(0);
    second
        .wait_for_reconciles(seen.max(1), Duration::from_secs(60))
        .await;

    // SIGTERM: the leader releases the Lease on its way out, and the next takes it.
    let mut third = Operator::start_with(&client, &namespace, Scope::ClusterRole, &args).await;
    assert!(!leads(&third).await, "the third replica stands by");
    let started = Instant::now();
    second.terminate().await;
    until_leading(&mut third, Duration::from_secs(10)).await;
    let handover = started.elapsed();
    eprintln!("{name}: handover after SIGTERM in {handover:?}");
    assert!(
        handover < Duration::from_secs(2),
        "SIGTERM took {handover:?} to hand the Lease over"
    );
    third.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn exactly_one_replica_leads_and_the_lease_moves_on_kill_and_on_sigterm() {
    within_namespace("leader-election", LIMIT, |client, namespace| {
        one_leader_at_a_time(client, namespace)
    })
    .await;
}
