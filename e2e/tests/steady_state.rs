//! A settled stack costs the API server reads only: over several reconciles the
//! operator's user writes nothing, as the audit log records it, also when the spec
//! holds quantities the server rewrites (`cpu: "1.5"` is stored as `1500m`,
//! `memory: 1.5Gi` as `1536Mi`).

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::{Client, ResourceExt};
use webtoon_e2e::audit::AuditLog;
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack::{self, NfsVolumeCleanup};
use webtoon_operator::api::WebtoonStack;

const LIMIT: Duration = Duration::from_secs(300);
/// Reconciles counted; the resync period is minutes, so each is caused by an
/// annotation the admin changes on the stack.
const RECONCILES: u64 = 4;

fn rewritten_quantities() -> ResourceRequirements {
    let list = BTreeMap::from([
        ("cpu".to_string(), Quantity("1.5".to_string())),
        ("memory".to_string(), Quantity("1.5Gi".to_string())),
    ]);
    ResourceRequirements {
        requests: Some(list.clone()),
        limits: Some(list),
        ..Default::default()
    }
}

async fn no_writes_when_settled(client: Client, namespace: String, stack: WebtoonStack) {
    let audit = AuditLog::from_env();
    ensure_crd(&client).await;
    let _volumes = NfsVolumeCleanup::new(&namespace);
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let ready = stack::deploy(&client, stack).await;
    let name = ready.name_any();
    // Touch once and let that reconcile finish, so whatever readiness still moved
    // (tier counts reaching desired) is written before counting starts.
    let settled = operator.reconciles().await.unwrap_or(0);
    stack::touch(&client, &namespace, &name, "settle").await;
    let before = operator
        .wait_for_reconciles(settled + 1, Duration::from_secs(60))
        .await;
    stack::touch(&client, &namespace, &name, "settle-2").await;
    let before = operator
        .wait_for_reconciles(before + 1, Duration::from_secs(60))
        .await;

    let mark = audit.mark();
    let mut seen = before;
    for round in 0..RECONCILES {
        stack::touch(&client, &namespace, &name, &format!("round-{round}")).await;
        seen = operator
            .wait_for_reconciles(seen + 1, Duration::from_secs(60))
            .await;
    }
    // Reconciles of one stack never overlap: once one more has started, every
    // counted one has finished.
    stack::touch(&client, &namespace, &name, "last").await;
    operator
        .wait_for_reconciles(seen + 1, Duration::from_secs(60))
        .await;
    // Each reconcile reads the credentials Secret twice (ensure, then apply).
    let requests = audit
        .wait_for(
            mark,
            operator.user(),
            Duration::from_secs(30),
            "the reads of every counted reconcile",
            |r| r.count("get", "secrets") >= (2 * RECONCILES) as usize,
        )
        .await;
    eprintln!(
        "{name}: {} requests of {} over {RECONCILES} settled reconciles: {:?}",
        requests.entries.len(),
        operator.user(),
        requests.by_verb_and_resource()
    );
    let writes: Vec<String> = requests.writes().iter().map(|e| e.to_string()).collect();
    assert!(
        writes.is_empty(),
        "a settled stack must cost no write, but the operator sent {}:\n{}",
        writes.len(),
        writes.join("\n")
    );
    operator.assert_no_forbidden();
}

#[tokio::test(flavor = "multi_thread")]
async fn settled_production_stack_sends_no_write() {
    within_namespace("steady-production", LIMIT, |client, namespace| async move {
        let production = stack::example("production", &namespace);
        no_writes_when_settled(client, namespace, production).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settled_stack_with_rewritten_quantities_sends_no_write() {
    within_namespace("steady-quantities", LIMIT, |client, namespace| async move {
        let mut minimal = stack::example("minimal", &namespace);
        minimal.spec.proxy.resources = rewritten_quantities();
        minimal.spec.was.resources = rewritten_quantities();
        minimal.spec.database.resources = rewritten_quantities();
        minimal.spec.cache.resources = rewritten_quantities();
        no_writes_when_settled(client, namespace, minimal).await;
    })
    .await;
}
