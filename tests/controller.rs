//! Reconcile scenarios against an in-memory API server (kube-fake-client). The
//! operator's requests pass through a wire that counts writes and injects API
//! failures as a real API server sends them.

mod common;

use std::sync::Arc;

use common::api_requests::{granted, permissions_needed};
use common::fake_api::{FakeApi, Fault, Wire};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service,
};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use webtoon_operator::Error;
use webtoon_operator::api::{WebtoonStack, WebtoonStackStatus};
use webtoon_operator::controller::rbac::PERMISSIONS;
use webtoon_operator::controller::{Backoff, Context, reconcile, retry_after};
use webtoon_operator::manifest::parse_stacks;
use webtoon_operator::metrics::Metrics;

const NS: &str = "webtoon";

struct Cluster {
    /// The test's own client, outside the operator's wire.
    client: Client,
    wire: Arc<Wire>,
    ctx: Arc<Context>,
}

fn stack_from(yaml: &str, uid: &str) -> WebtoonStack {
    let mut stack = parse_stacks("fixture", yaml)
        .expect("fixture parses")
        .remove(0);
    stack.metadata.uid = Some(uid.to_string());
    stack.metadata.generation = Some(1);
    stack
}

fn production(uid: &str) -> WebtoonStack {
    stack_from(include_str!("../examples/production.yaml"), uid)
}

async fn cluster(stack: WebtoonStack) -> Cluster {
    cluster_with(stack, false).await
}

/// A cluster whose operator publishes events when `events` is set.
async fn cluster_with(stack: WebtoonStack, events: bool) -> Cluster {
    let api = FakeApi::with_stack(stack).await;
    let recorder = events.then(|| {
        Recorder::new(
            api.operator.clone(),
            Reporter {
                controller: "webtoon-operator".to_string(),
                instance: None,
            },
        )
    });
    let ctx = Arc::new(Context {
        client: api.operator,
        metrics: Arc::new(Metrics::default()),
        recorder,
        backoff: Backoff::default(),
        clock: Box::new(|| "2026-11-22T12:00:00Z".parse().expect("time")),
        operator_image: None,
    });
    Cluster {
        client: api.direct,
        wire: api.wire,
        ctx,
    }
}

impl Cluster {
    async fn stack(&self, name: &str) -> WebtoonStack {
        Api::<WebtoonStack>::namespaced(self.client.clone(), NS)
            .get(name)
            .await
            .expect("stack exists")
    }

    async fn reconcile(&self, name: &str) -> Result<(), Error> {
        reconcile(Arc::new(self.stack(name).await), self.ctx.clone())
            .await
            .map(|_| ())
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn names<K>(&self) -> Vec<String>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let mut names: Vec<String> = self
            .api::<K>()
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect();
        names.sort();
        names
    }

    async fn status(&self, name: &str) -> WebtoonStackStatus {
        self.stack(name).await.status.expect("status written")
    }

    async fn set_status<K>(&self, name: &str, status: serde_json::Value)
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        self.api::<K>()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .expect("status patch");
    }

    /// Changes a field the operator manages on the WAS Deployment, as a person
    /// with kubectl would: the operator's next apply must put it back.
    async fn edit_was_by_hand(&self) {
        self.api::<Deployment>()
            .patch(
                "megatoon-was",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"minReadySeconds": 99}})),
            )
            .await
            .expect("hand edit");
    }

    /// Marks every tier as serving, as the real controllers would report it.
    async fn make_healthy(&self, was_available: i32) {
        // As the Deployment controller reports a finished rollout.
        let finished =
            json!([{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]);
        self.set_status::<Deployment>(
            "megatoon-proxy",
            json!({"observedGeneration": 1, "availableReplicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "replicas": 2, "conditions": finished}),
        )
        .await;
        self.set_status::<Deployment>("megatoon-was", json!({"observedGeneration": 1, "availableReplicas": was_available, "readyReplicas": was_available, "updatedReplicas": 3, "replicas": 3, "conditions": finished})).await;
        self.set_status::<StatefulSet>(
            "megatoon-database",
            json!({"readyReplicas": 1, "replicas": 1}),
        )
        .await;
        self.set_status::<StatefulSet>(
            "megatoon-cache",
            json!({"readyReplicas": 1, "replicas": 1}),
        )
        .await;
        self.set_status::<PersistentVolumeClaim>("megatoon-images", json!({"phase": "Bound"}))
            .await;
    }

    /// Deletes the stack and, as the garbage collector would, everything it owns.
    async fn delete_stack(&self, name: &str, uid: &str) {
        self.api::<WebtoonStack>()
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete stack");
        async fn collect<K>(api: Api<K>, uid: &str)
        where
            K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
        {
            for object in api.list(&ListParams::default()).await.expect("list").items {
                if object.owner_references().iter().any(|o| o.uid == uid) {
                    api.delete(&object.name_any(), &DeleteParams::default())
                        .await
                        .expect("gc delete");
                }
            }
        }
        collect(self.api::<Deployment>(), uid).await;
        collect(self.api::<StatefulSet>(), uid).await;
        collect(self.api::<Service>(), uid).await;
        collect(self.api::<ConfigMap>(), uid).await;
        collect(self.api::<Secret>(), uid).await;
        collect(self.api::<PersistentVolumeClaim>(), uid).await;
        collect(self.api::<HorizontalPodAutoscaler>(), uid).await;
        collect(self.api::<PodDisruptionBudget>(), uid).await;
        collect(self.api::<NetworkPolicy>(), uid).await;
        collect(self.api::<CronJob>(), uid).await;
    }
}

fn condition<'a>(
    status: &'a WebtoonStackStatus,
    type_: &str,
) -> &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("condition {type_}"))
}

fn password(secret: &Secret, key: &str) -> String {
    String::from_utf8(
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .expect("key")
            .0
            .clone(),
    )
    .expect("utf8")
}

#[tokio::test]
async fn create_from_nothing_then_steady_state_sends_no_writes() {
    let c = cluster(production("uid-1")).await;
    c.reconcile("megatoon").await.expect("first reconcile");
    let first = c.wire.take_writes();
    assert_eq!(
        c.names::<Deployment>().await,
        ["megatoon-proxy", "megatoon-was"]
    );
    assert_eq!(c.names::<Secret>().await, ["megatoon-credentials"]);
    assert_eq!(
        c.names::<HorizontalPodAutoscaler>().await,
        ["megatoon-proxy", "megatoon-was"]
    );
    assert!(
        c.names::<Service>()
            .await
            .contains(&"megatoon-was-pods".to_string())
    );
    assert!(
        c.names::<ConfigMap>()
            .await
            .contains(&"megatoon-proxy-config".to_string())
    );
    assert!(
        first >= 10,
        "the first reconcile creates the children ({first} writes)"
    );

    c.reconcile("megatoon").await.expect("second reconcile");
    assert_eq!(
        c.wire.take_writes(),
        0,
        "a reconcile with nothing changed writes nothing"
    );
    c.reconcile("megatoon").await.expect("third reconcile");
    assert_eq!(c.wire.take_writes(), 0);
}

#[tokio::test]
async fn hand_edits_of_managed_fields_are_put_back() {
    let c = cluster(production("uid-1")).await;
    c.reconcile("megatoon").await.expect("reconcile");
    let deployments = c.api::<Deployment>();
    deployments
        .patch(
            "megatoon-was",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"progressDeadlineSeconds": 9999}})),
        )
        .await
        .expect("hand edit");
    c.wire.take_writes();
    c.reconcile("megatoon").await.expect("reconcile");
    assert_eq!(
        c.wire.take_writes(),
        1,
        "only the drifted object is written"
    );
    let was = deployments.get("megatoon-was").await.expect("was");
    assert_eq!(
        was.spec.and_then(|s| s.progress_deadline_seconds),
        Some(300)
    );
    c.reconcile("megatoon").await.expect("reconcile");
    assert_eq!(c.wire.take_writes(), 0);
}

#[tokio::test]
async fn credentials_are_generated_once_and_survive_delete_and_recreate_under_retain() {
    let c = cluster(production("uid-1")).await;
    c.reconcile("megatoon").await.expect("reconcile");
    let secrets = c.api::<Secret>();
    let before = secrets.get("megatoon-credentials").await.expect("secret");
    let root = password(&before, "database-root-password");
    assert_eq!(root.len(), 32);
    assert_ne!(root, password(&before, "database-password"));
    assert!(
        before.metadata.owner_references.is_none(),
        "Retain: no owner, so no garbage collection"
    );

    c.reconcile("megatoon").await.expect("reconcile");
    assert_eq!(
        secrets
            .get("megatoon-credentials")
            .await
            .expect("secret")
            .data,
        before.data
    );

    c.delete_stack("megatoon", "uid-1").await;
    assert!(c.names::<Deployment>().await.is_empty());
    assert_eq!(c.names::<Secret>().await, ["megatoon-credentials"]);
    assert_eq!(
        c.names::<PersistentVolumeClaim>().await,
        ["megatoon-database-backup", "megatoon-images"],
        "the backup claim is data, kept like the image claim"
    );

    let mut again = production("uid-2");
    again.metadata.resource_version = None;
    c.api::<WebtoonStack>()
        .create(&PostParams::default(), &again)
        .await
        .expect("re-create");
    c.reconcile("megatoon")
        .await
        .expect("reconcile after re-create");
    let after = secrets.get("megatoon-credentials").await.expect("secret");
    assert_eq!(
        after.data, before.data,
        "the same passwords, so the retained data is readable"
    );
}

#[tokio::test]
async fn delete_policy_lets_garbage_collection_take_the_data() {
    let mut stack = production("uid-1");
    stack.spec.deletion_policy = webtoon_operator::api::DeletionPolicy::Delete;
    let c = cluster(stack).await;
    c.reconcile("megatoon").await.expect("reconcile");
    c.delete_stack("megatoon", "uid-1").await;
    assert!(c.names::<Secret>().await.is_empty());
    assert!(c.names::<PersistentVolumeClaim>().await.is_empty());
}

#[tokio::test]
async fn turning_backups_off_prunes_the_schedule_and_keeps_the_backups() {
    let c = cluster(production("uid-1")).await;
    c.reconcile("megatoon").await.expect("reconcile");
    assert_eq!(
        c.names::<CronJob>().await,
        ["megatoon-database-backup", "megatoon-database-verify"]
    );
    c.api::<WebtoonStack>()
        .patch(
            "megatoon",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"database": {"backup": null}}})),
        )
        .await
        .expect("spec change");
    c.reconcile("megatoon").await.expect("reconcile");
    assert!(c.names::<CronJob>().await.is_empty());
    assert!(
        !c.names::<ConfigMap>()
            .await
            .contains(&"megatoon-database-backup".to_string()),
        "the script goes with the schedule"
    );
    assert_eq!(
        c.names::<PersistentVolumeClaim>().await,
        ["megatoon-database-backup", "megatoon-images"],
        "the claim with the backups is data: never pruned"
    );
}

#[tokio::test]
async fn a_recreated_stack_gets_its_released_nfs_volume_back() {
    let mut stack = production("uid-1");
    stack.spec.deletion_policy = webtoon_operator::api::DeletionPolicy::Delete;
    let c = cluster(stack.clone()).await;
    c.reconcile("megatoon").await.expect("reconcile");
    let volumes: Api<PersistentVolume> = Api::all(c.client.clone());
    let volume_name = volumes
        .list(&ListParams::default())
        .await
        .expect("volumes")
        .items
        .into_iter()
        .filter_map(|v| v.metadata.name)
        .find(|n| n.starts_with("megatoon-images-"))
        .expect("the NFS volume");

    // What Kubernetes does when the claim goes: the volume keeps the old claim's UID
    // and turns Released; the files on the export stay.
    c.delete_stack("megatoon", "uid-1").await;
    assert!(c.names::<PersistentVolumeClaim>().await.is_empty());
    volumes
        .patch(
            &volume_name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "spec": {"claimRef": {"uid": "old-claim-uid", "resourceVersion": "41"}},
                "status": {"phase": "Released"},
            })),
        )
        .await
        .expect("release the volume");

    let mut again = stack;
    again.metadata.uid = Some("uid-2".to_string());
    again.metadata.resource_version = None;
    c.api::<WebtoonStack>()
        .create(&PostParams::default(), &again)
        .await
        .expect("re-create");
    c.wire.take_writes();
    c.reconcile("megatoon")
        .await
        .expect("reconcile after re-create");
    let claim_ref = volumes
        .get(&volume_name)
        .await
        .expect("volume")
        .spec
        .and_then(|s| s.claim_ref)
        .expect("claimRef");
    assert_eq!(claim_ref.uid, None, "the stale claim UID is cleared");
    assert_eq!(
        (claim_ref.namespace.as_deref(), claim_ref.name.as_deref()),
        (Some("webtoon"), Some("megatoon-images")),
        "still reserved for the stack's claim"
    );
    assert!(c.wire.take_writes() > 0);
    // Bound again, as the volume controller would report; nothing more to do.
    volumes
        .patch(
            &volume_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
        )
        .await
        .expect("bind");
    c.reconcile("megatoon").await.expect("steady");
    assert_eq!(c.wire.take_writes(), 0);
}

#[tokio::test]
async fn turning_autoscaling_off_prunes_the_autoscaler() {
    let c = cluster(production("uid-1")).await;
    c.reconcile("megatoon").await.expect("reconcile");
    c.api::<WebtoonStack>()
        .patch(
            "megatoon",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"was": {"autoscaling": null}}})),
        )
        .await
        .expect("spec change");
    c.reconcile("megatoon").await.expect("reconcile");
    assert_eq!(
        c.names::<HorizontalPodAutoscaler>().await,
        ["megatoon-proxy"]
    );
    let was = c
        .api::<Deployment>()
        .get("megatoon-was")
        .await
        .expect("was");
    assert_eq!(
        was.spec.and_then(|s| s.replicas),
        Some(3),
        "replicas return to the Deployment"
    );
    // An object with the stack's labels but not its owner is never touched.
    let mut foreign = c
        .api::<ConfigMap>()
        .get("megatoon-proxy-config")
        .await
        .expect("cm");
    foreign.metadata = kube::api::ObjectMeta {
        name: Some("megatoon-hand-made".into()),
        namespace: Some(NS.into()),
        labels: foreign.metadata.labels.clone(),
        ..Default::default()
    };
    c.api::<ConfigMap>()
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create foreign");
    c.reconcile("megatoon").await.expect("reconcile");
    assert!(
        c.names::<ConfigMap>()
            .await
            .contains(&"megatoon-hand-made".to_string())
    );
}

#[tokio::test]
async fn an_invalid_spec_stalls_with_the_validate_message_and_changes_nothing() {
    let mut stack = production("uid-1");
    stack.spec.hosts = vec!["a.example; include /etc/passwd".into()];
    let c = cluster(stack.clone()).await;
    c.reconcile("megatoon")
        .await
        .expect("an invalid spec is not an error to retry");
    assert!(c.names::<Deployment>().await.is_empty());
    assert!(c.names::<Secret>().await.is_empty());
    assert_eq!(c.wire.take_writes(), 1, "only the status is written");
    let status = c.status("megatoon").await;
    let stalled = condition(&status, "Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidSpec")
    );
    let expected = webtoon_operator::manifest::validated(&stack)
        .expect_err("invalid")
        .to_string();
    assert_eq!(stalled.message, expected);
    assert!(stalled.message.contains("spec.hosts[0]"));
    assert_eq!(condition(&status, "Ready").status, "False");
    c.reconcile("megatoon").await.expect("reconcile");
    assert_eq!(c.wire.take_writes(), 0);
}

#[tokio::test]
async fn a_healthy_stack_is_ready_with_every_tier_condition() {
    let c = cluster(production("uid-1")).await;
    c.reconcile("megatoon").await.expect("reconcile");
    let status = c.status("megatoon").await;
    assert_eq!(condition(&status, "Ready").status, "False");
    assert_eq!(condition(&status, "Reconciling").status, "True");
    c.make_healthy(3).await;
    c.reconcile("megatoon").await.expect("reconcile");
    let status = c.status("megatoon").await;
    for type_ in [
        "Ready",
        "ProxyReady",
        "WasReady",
        "DatabaseReady",
        "CacheReady",
        "StorageReady",
    ] {
        assert_eq!(condition(&status, type_).status, "True", "{type_}");
    }
    assert_eq!(condition(&status, "Reconciling").status, "False");
    assert_eq!(condition(&status, "Stalled").status, "False");
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.was.as_ref().map(|t| t.summary.as_str()), Some("3/3"));
    assert_eq!(
        status.proxy.as_ref().map(|t| t.summary.as_str()),
        Some("2/2")
    );
    assert_eq!(status.url.as_deref(), Some("https://megatoon.example"));
    c.wire.take_writes();
    c.reconcile("megatoon").await.expect("reconcile");
    assert_eq!(
        c.wire.take_writes(),
        0,
        "an unchanged status is not written again"
    );
}

#[tokio::test]
async fn a_was_with_no_available_replica_is_not_ready() {
    let c = cluster(production("uid-1")).await;
    c.reconcile("megatoon").await.expect("reconcile");
    c.make_healthy(0).await;
    c.reconcile("megatoon").await.expect("reconcile");
    let status = c.status("megatoon").await;
    let was = condition(&status, "WasReady");
    assert_eq!(
        (was.status.as_str(), was.reason.as_str()),
        ("False", "Unavailable")
    );
    assert_eq!(condition(&status, "Ready").status, "False");
    assert!(condition(&status, "Ready").message.contains("WasReady"));
    assert_eq!(condition(&status, "ProxyReady").status, "True");
    assert_eq!(status.was.as_ref().map(|t| t.summary.as_str()), Some("0/3"));
}

#[tokio::test]
async fn transitions_are_published_as_events_on_the_stack() {
    let c = cluster_with(production("uid-1"), true).await;
    let events = || async {
        let mut seen: Vec<(String, String, String)> = c
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("megatoon"))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect();
        // Sorted by type, then reason: the fake API server gives events no order.
        seen.sort();
        seen
    };
    let reasons = |seen: &[(String, String, String)]| -> Vec<String> {
        seen.iter().map(|(t, r, _)| format!("{t}/{r}")).collect()
    };

    c.reconcile("megatoon").await.expect("create");
    assert_eq!(reasons(&events().await), ["Normal/Created"]);
    c.reconcile("megatoon").await.expect("steady");
    assert_eq!(
        reasons(&events().await),
        ["Normal/Created"],
        "no news, no event"
    );

    c.make_healthy(3).await;
    c.reconcile("megatoon").await.expect("healthy");
    assert_eq!(
        reasons(&events().await),
        ["Normal/Created", "Normal/Ready"],
        "the first time every tier serves is not a recovery"
    );

    c.set_status::<Deployment>(
        "megatoon-was",
        json!({"availableReplicas": 0, "readyReplicas": 0, "replicas": 3}),
    )
    .await;
    c.reconcile("megatoon").await.expect("degraded");
    let seen = events().await;
    assert_eq!(
        reasons(&seen),
        ["Normal/Created", "Normal/Ready", "Warning/Degraded"]
    );
    let degraded = &seen[2].2;
    assert!(
        degraded.contains("WasReady: no WAS replica is available (0/3)"),
        "the event says which tier and what is wrong: {degraded}"
    );

    c.reconcile("megatoon").await.expect("still degraded");
    c.make_healthy(3).await;
    c.reconcile("megatoon").await.expect("recovered");
    assert_eq!(
        reasons(&events().await),
        [
            "Normal/Created",
            "Normal/Ready",
            "Normal/Recovered",
            "Warning/Degraded"
        ],
        "a stack that served before and is back has recovered"
    );

    c.api::<WebtoonStack>()
        .patch(
            "megatoon",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"hosts": ["a.example; include /etc/passwd"]}})),
        )
        .await
        .expect("break the spec");
    c.reconcile("megatoon").await.expect("invalid");
    c.reconcile("megatoon").await.expect("still invalid");
    let seen = events().await;
    assert_eq!(
        reasons(&seen),
        [
            "Normal/Created",
            "Normal/Ready",
            "Normal/Recovered",
            "Warning/Degraded",
            "Warning/InvalidSpec"
        ],
        "one event per transition, not per reconcile"
    );
    assert!(seen[4].2.contains("spec.hosts[0]"), "{}", seen[4].2);
}

/// Paused time: the hang waits out the reconcile's API deadline at once.
#[tokio::test(start_paused = true)]
async fn api_errors_fail_the_reconcile_visibly_and_are_retried() {
    for (fault, label, shown) in [
        (Fault::Conflict, "conflict", "megatoon-was"),
        (Fault::Internal, "api", "etcdserver: leader changed"),
        (Fault::GatewayTimeout, "api", "unable to return a response"),
        (
            Fault::Hang,
            "timeout",
            "did not answer within 30s while applying children",
        ),
    ] {
        let c = cluster(production("uid-1")).await;
        c.reconcile("megatoon").await.expect("reconcile");
        c.edit_was_by_hand().await;
        c.wire.inject(fault, 1);
        let error = c
            .reconcile("megatoon")
            .await
            .expect_err("the injected error surfaces");
        assert_eq!(error.metric_label(), label, "{fault:?}: {error}");
        let attempt = c.ctx.backoff.failed("webtoon/megatoon");
        assert_eq!(attempt, 1, "{fault:?}");
        assert_ne!(
            retry_after(&error, attempt),
            kube::runtime::controller::Action::await_change(),
            "{fault:?} is retried"
        );
        let status = c.status("megatoon").await;
        let reconciling = condition(&status, "Reconciling");
        assert_eq!(
            (reconciling.status.as_str(), reconciling.reason.as_str()),
            ("True", "Retrying"),
            "{fault:?}"
        );
        assert!(
            reconciling.message.contains(shown),
            "{fault:?}: {}",
            reconciling.message
        );
        c.reconcile("megatoon").await.expect("the retry succeeds");
        assert_eq!(
            c.ctx.backoff.failed("webtoon/megatoon"),
            1,
            "a success resets the retry delay"
        );
        let was = c
            .api::<Deployment>()
            .get("megatoon-was")
            .await
            .expect("was");
        assert_eq!(was.spec.and_then(|s| s.min_ready_seconds), Some(5));
        c.ctx.metrics.reconcile_failed(&error);
        assert!(c.ctx.metrics.encode().contains(&format!(
            "webtoon_reconcile_errors_total{{error=\"{label}\"}}"
        )));
    }
}

/// Collects everything a tracing subscriber writes.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buffer) = self.0.lock() {
            buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn credentials_never_appear_in_logs_events_status_metrics_or_other_objects() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let c = cluster_with(production("uid-1"), true).await;
    c.reconcile("megatoon").await.expect("create");
    c.make_healthy(0).await;
    c.reconcile("megatoon").await.expect("degraded");
    c.wire.inject(Fault::Conflict, 1);
    c.api::<Secret>()
        .patch(
            "megatoon-credentials",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"drift": "yes"}}})),
        )
        .await
        .expect("drift on the Secret");
    let _ = c.reconcile("megatoon").await;
    c.reconcile("megatoon").await.expect("retry");

    let secret = c
        .api::<Secret>()
        .get("megatoon-credentials")
        .await
        .expect("secret");
    let mut forms = Vec::new();
    for key in [
        "database-root-password",
        "database-password",
        "cache-password",
    ] {
        let value = password(&secret, key);
        assert!(value.len() >= 32);
        use base64::Engine;
        forms.push(base64::engine::general_purpose::STANDARD.encode(&value));
        forms.push(value);
    }

    let logged = String::from_utf8(logs.0.lock().expect("logs").clone()).expect("utf8");
    assert!(logged.contains("megatoon"), "the logs were captured");
    let events = serde_json::to_string(
        &c.api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("events")
            .items,
    )
    .expect("json");
    let status = serde_json::to_string(&c.status("megatoon").await).expect("json");
    let metrics = c.ctx.metrics.encode();
    let mut others = String::new();
    for name in c.names::<ConfigMap>().await {
        let object = c.api::<ConfigMap>().get(&name).await.expect("configmap");
        others.push_str(&serde_json::to_string(&object).expect("json"));
    }
    for name in c.names::<Deployment>().await {
        let object = c.api::<Deployment>().get(&name).await.expect("deployment");
        others.push_str(&serde_json::to_string(&object).expect("json"));
    }
    for name in c.names::<StatefulSet>().await {
        let object = c
            .api::<StatefulSet>()
            .get(&name)
            .await
            .expect("statefulset");
        others.push_str(&serde_json::to_string(&object).expect("json"));
    }
    for (place, text) in [
        ("logs", &logged),
        ("events", &events),
        ("status", &status),
        ("metrics", &metrics),
        ("ConfigMaps, Deployments and StatefulSets", &others),
    ] {
        for form in &forms {
            assert!(
                !text.contains(form.as_str()),
                "a credential appears in the {place}"
            );
        }
    }
}

/// Permissions granted for code paths that no spec reaches today: prune covers
/// every stateless kind, though the proxy and WAS Deployments and their budgets are
/// always rendered.
const GRANTED_FOR_UNREACHED_PATHS: [(&str, &str, &str); 2] = [
    ("apps", "deployments", "delete"),
    ("policy", "poddisruptionbudgets", "delete"),
];

#[tokio::test]
async fn the_operator_uses_exactly_the_permissions_its_role_grants() {
    let c = cluster_with(production("uid-1"), true).await;
    let spec_change = |patch: serde_json::Value| {
        let api = c.api::<WebtoonStack>();
        async move {
            api.patch("megatoon", &PatchParams::default(), &Patch::Merge(patch))
                .await
                .expect("spec change");
        }
    };
    c.reconcile("megatoon").await.expect("create");
    c.make_healthy(3).await;
    c.reconcile("megatoon").await.expect("healthy");
    for available in [0, 3, 0] {
        // Degraded twice with the same note: the second is a series patch on the event.
        c.set_status::<Deployment>(
            "megatoon-was",
            json!({"availableReplicas": available, "readyReplicas": available, "replicas": 3}),
        )
        .await;
        c.reconcile("megatoon").await.expect("transition");
    }
    c.edit_was_by_hand().await;
    c.reconcile("megatoon").await.expect("drift corrected");
    // A release with a migration: the backup Job is created and read; a newer
    // release before it finished prunes it.
    for image in [
        "registry.example/megatoon/was:1.5.0",
        "registry.example/megatoon/was:1.5.1",
    ] {
        spec_change(
            json!({"spec": {"was": {"image": image, "migration": {"command": ["bin/migrate"]}}}}),
        )
        .await;
        c.reconcile("megatoon").await.expect("migration started");
        c.reconcile("megatoon").await.expect("backup job read");
    }
    spec_change(json!({"spec": {"was": {"autoscaling": null}, "network": {"policies": false}, "monitoring": null}}))
        .await;
    c.reconcile("megatoon").await.expect("prune");
    spec_change(json!({"spec": {
        "database": {"mode": "external", "external": {"host": "192.0.2.50", "port": 3306, "secretName": "db"}, "backup": null},
        "cache": {"mode": "external", "external": {"host": "192.0.2.51", "port": 6379, "secretName": "cache"}},
    }}))
    .await;
    c.reconcile("megatoon").await.expect("data tier moved out");
    assert!(
        c.names::<StatefulSet>().await.is_empty(),
        "the scenario really moved the data tier out"
    );

    let mut used = std::collections::BTreeSet::new();
    let requests = c.wire.requests();
    let sent = requests
        .iter()
        .map(|r| (r.method.as_str(), r.uri.as_str(), r.status));
    for (group, resource, verb) in permissions_needed(sent) {
        assert!(
            granted(&group, &resource, &verb),
            "the controller needs {verb} on {group}/{resource}, which the role lacks"
        );
        used.insert((group, resource, verb));
    }
    // List and watch come from the controller's watches, which the process test holds
    // to the role; everything else must have been used by these scenarios.
    for permission in PERMISSIONS {
        for verb in permission.verbs {
            let key = (
                permission.group.to_string(),
                permission.resource.to_string(),
                verb.to_string(),
            );
            let unreached = GRANTED_FOR_UNREACHED_PATHS.contains(&(
                permission.group,
                permission.resource,
                verb,
            ));
            if ["list", "watch"].contains(verb) || unreached {
                assert!(
                    !(unreached && used.contains(&key)),
                    "{key:?} is reached now: drop it from the list"
                );
                continue;
            }
            assert!(
                used.contains(&key),
                "the role grants {key:?}, which the controller never uses"
            );
        }
    }
}
