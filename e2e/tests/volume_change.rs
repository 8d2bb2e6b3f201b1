//! A data volume's new size or class never stalls the stack: a StatefulSet's claim
//! templates cannot change, so the operator keeps them, asks the live claim to grow
//! (which a StorageClass without volume expansion, like the local cluster's and
//! kind's, refuses) and reports what cannot be done, while every other change of
//! the same spec is applied.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ListParams};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack::{self, condition};
use webtoon_e2e::wait;
use webtoon_operator::api::WebtoonStack;
use webtoon_operator::controller::data_volumes::size;

const LIMIT: Duration = Duration::from_secs(300);

async fn refusals(client: &Client, namespace: &str, reason: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await
        .expect("events can be listed")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

fn template_size(statefulset: &StatefulSet) -> Option<String> {
    size(
        statefulset
            .spec
            .as_ref()?
            .volume_claim_templates
            .as_ref()?
            .first()?,
    )
}

async fn volume_changes_never_stall(client: Client, namespace: String) {
    ensure_crd(&client).await;
    let mut operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
    let minimal = stack::example("minimal", &namespace);
    let ready = stack::deploy(&client, minimal.clone()).await;
    let name = ready.metadata.name.clone().expect("a name");
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let database = format!("{name}-database");
    let before = template_size(&statefulsets.get(&database).await.expect("the database"));

    // A larger database volume and one more WAS replica, in one change.
    let mut grown = minimal.clone();
    grown.spec.database.storage.size = "30Gi".to_string();
    grown.spec.was.replicas = 3;
    stack::apply(&client, &grown).await;
    wait::until(
        &deployments,
        &format!("{name}-was"),
        Duration::from_secs(90),
        |d: Option<&Deployment>| d.and_then(|d| d.spec.as_ref()?.replicas) == Some(3),
    )
    .await;
    let events = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let found = refusals(&client, &namespace, "VolumeGrowthRefused").await;
            if found.iter().any(|n| n.contains("cannot grow to 30Gi")) {
                return found;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await
    .expect("the refused expansion is reported");
    assert!(
        events
            .iter()
            .any(|n| n.contains(&format!("data-{database}-0"))),
        "{events:?}"
    );
    assert_eq!(
        template_size(&statefulsets.get(&database).await.expect("the database")),
        before,
        "the StatefulSet keeps the claim template it was created with"
    );

    // A smaller one is refused without asking the API server, and still nothing stalls.
    let mut shrunk = grown.clone();
    shrunk.spec.database.storage.size = "10Gi".to_string();
    shrunk.spec.was.replicas = 2;
    stack::apply(&client, &shrunk).await;
    wait::until(
        &deployments,
        &format!("{name}-was"),
        Duration::from_secs(90),
        |d: Option<&Deployment>| d.and_then(|d| d.spec.as_ref()?.replicas) == Some(2),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(60), async {
        while !refusals(&client, &namespace, "VolumeShrinkRefused")
            .await
            .iter()
            .any(|n| n.contains("cannot shrink to 10Gi"))
        {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await
    .expect("the refused shrink is reported");
    let stacks: Api<WebtoonStack> = Api::namespaced(client.clone(), &namespace);
    let current = stacks.get(&name).await.expect("the stack");
    let reconciling = condition(&current, "Reconciling").expect("Reconciling");
    assert_ne!(reconciling.reason, "Retrying", "{reconciling:?}");
    // The claim's growth is refused with 403 by the API server's
    // PersistentVolumeClaimResize admission, as the StorageClass does not expand.
    operator.assert_no_forbidden_but(Some("persistentvolumeclaims"));
}

#[tokio::test]
async fn a_new_data_volume_size_is_asked_of_the_claim_and_never_stalls_the_stack() {
    within_namespace("e2e-volume-change", LIMIT, volume_changes_never_stall).await;
}
