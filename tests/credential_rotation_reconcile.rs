//! A credentials rotation through the whole reconcile, against an in-memory API
//! server: the test plays the Job controller, the kubelet and the Deployment
//! controller, and checks what the operator writes at each step: the Secret, the
//! Jobs, the WAS template, the status and the events, a failed Job's termination
//! message reported, the retry a new request asks for, and no write once settled.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::api_requests::{granted, permissions_needed};
use common::fake_api::FakeApi;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use webtoon_operator::api::{RotationPhase, WebtoonStack, WebtoonStackStatus};
use webtoon_operator::controller::{Backoff, Context, reconcile};
use webtoon_operator::manifest::parse_stacks;
use webtoon_operator::metrics::Metrics;

const NS: &str = "webtoon";
const STACK: &str = "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: minitoon, namespace: webtoon}
spec:
  hosts: [minitoon.example]
  was: {image: registry.example/minitoon/was:1.0.0}
";

struct Cluster {
    client: Client,
    wire: Arc<common::fake_api::Wire>,
    ctx: Arc<Context>,
}

impl Cluster {
    async fn start() -> Cluster {
        let mut stack = parse_stacks("fixture", STACK)
            .expect("fixture parses")
            .remove(0);
        stack.metadata.uid = Some("uid-1".to_string());
        stack.metadata.generation = Some(1);
        let api = FakeApi::with_stack(stack).await;
        let recorder = Recorder::new(
            api.operator.clone(),
            Reporter {
                controller: "webtoon-operator".to_string(),
                instance: None,
            },
        );
        let ctx = Arc::new(Context {
            client: api.operator,
            metrics: Arc::new(Metrics::default()),
            recorder: Some(recorder),
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

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn reconcile(&self) {
        let stack = self
            .api::<WebtoonStack>()
            .get("minitoon")
            .await
            .expect("stack");
        reconcile(Arc::new(stack), self.ctx.clone())
            .await
            .expect("reconcile");
        self.drop_fields_no_longer_applied().await;
    }

    /// What a real API server's server-side apply does and the in-memory one, which
    /// merges, does not: a Secret key or annotation the operator's apply stopped
    /// naming goes. The keys it applied are those its fingerprint names; the rotation
    /// annotation it applies while a rotation is under way, and then only.
    async fn drop_fields_no_longer_applied(&self) {
        let synced = self
            .api::<WebtoonStack>()
            .get("minitoon")
            .await
            .expect("stack")
            .status
            .is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == "CredentialsSynced" && c.status == "True")
            });
        let secrets = self.api::<Secret>();
        let Some(secret) = secrets
            .get_opt("minitoon-credentials")
            .await
            .expect("secret")
        else {
            return;
        };
        let applied: BTreeMap<String, String> = secret
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("webtoon.io/credentials-fingerprint"))
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or_default();
        let gone: BTreeMap<String, serde_json::Value> = secret
            .data
            .iter()
            .flatten()
            .filter(|(k, _)| !applied.contains_key(*k))
            .map(|(k, _)| (k.clone(), serde_json::Value::Null))
            .collect();
        let rotation = if synced {
            json!({"webtoon.io/credentials-rotation": null})
        } else {
            json!({})
        };
        secrets
            .patch(
                "minitoon-credentials",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": gone, "metadata": {"annotations": rotation}})),
            )
            .await
            .expect("fields dropped");
    }

    async fn status(&self) -> WebtoonStackStatus {
        self.api::<WebtoonStack>()
            .get("minitoon")
            .await
            .expect("stack")
            .status
            .expect("status")
    }

    async fn ask(&self, request: &str) {
        self.api::<WebtoonStack>()
            .patch(
                "minitoon",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"generation": 2}, "spec": {"credentials": {"rotation": {"requestId": request}}}})),
            )
            .await
            .expect("a new request");
    }

    async fn patch_status<K>(&self, name: &str, status: serde_json::Value)
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

    /// Everything serves, and the WAS runs its Deployment's template completely.
    async fn settle(&self) {
        let done =
            json!([{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]);
        for (name, replicas) in [("minitoon-proxy", 2), ("minitoon-was", 2)] {
            let generation = self
                .api::<Deployment>()
                .get(name)
                .await
                .expect("deployment")
                .metadata
                .generation
                .unwrap_or(1);
            self.patch_status::<Deployment>(
                name,
                json!({"observedGeneration": generation, "availableReplicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas, "replicas": replicas, "conditions": done}),
            )
            .await;
        }
        for name in ["minitoon-database", "minitoon-cache"] {
            self.patch_status::<StatefulSet>(name, json!({"readyReplicas": 1, "replicas": 1}))
                .await;
        }
        self.patch_status::<PersistentVolumeClaim>("minitoon-images", json!({"phase": "Bound"}))
            .await;
    }

    async fn rotation_jobs(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .api::<Job>()
            .list(&ListParams::default())
            .await
            .expect("jobs")
            .items
            .iter()
            .map(ResourceExt::name_any)
            .filter(|n| n.contains("-rotation-"))
            .collect();
        names.sort();
        names
    }

    /// Ends the Job `name` as the Job controller does, with a pod whose container
    /// said `message` as it exited.
    async fn end_job(&self, name: &str, succeeded: bool, message: &str) {
        let (type_, exit) = if succeeded {
            ("Complete", 0)
        } else {
            ("Failed", 1)
        };
        self.api::<Job>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"conditions": [{"type": type_, "status": "True", "reason": if succeeded { "Completed" } else { "BackoffLimitExceeded" }, "message": "Job has reached the specified backoff limit"}]}})),
            )
            .await
            .expect("job status");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("{name}-x1"), "namespace": NS, "labels": {"job-name": name}},
            "spec": {"containers": [{"name": "rotate", "image": "mariadb:11.4.4"}]},
            "status": {"containerStatuses": [{
                "name": "rotate", "image": "mariadb:11.4.4", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": exit, "message": message, "finishedAt": "2026-11-22T12:00:00Z"}},
            }]},
        }))
        .expect("a pod");
        self.api::<Pod>()
            .create(&PostParams::default(), &pod)
            .await
            .expect("pod");
    }

    async fn secret(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
        let secret = self
            .api::<Secret>()
            .get("minitoon-credentials")
            .await
            .expect("secret");
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        (data, secret.metadata.annotations.unwrap_or_default())
    }

    async fn events(&self) -> Vec<String> {
        self.api::<Event>()
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .into_iter()
            .filter_map(|e| e.reason)
            .collect()
    }
}

fn phase(status: &WebtoonStackStatus) -> Option<RotationPhase> {
    status
        .credentials
        .as_ref()?
        .rotation
        .as_ref()
        .map(|r| r.phase)
}

fn condition(status: &WebtoonStackStatus, type_: &str) -> (String, String, String) {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_else(|| panic!("condition {type_}"))
}

#[tokio::test]
async fn a_rotation_reports_a_failed_job_retries_on_request_and_switches_the_was() {
    let c = Cluster::start().await;
    c.reconcile().await;
    c.settle().await;
    c.reconcile().await;
    let (before, _) = c.secret().await;
    assert_eq!(condition(&c.status().await, "CredentialsSynced").0, "True");

    // A request: new values stored, the add Jobs created with their policies.
    c.ask("r1").await;
    c.reconcile().await;
    let (adding, annotations) = c.secret().await;
    assert!(adding.contains_key("database-root-password-next"));
    assert_eq!(
        adding["database-root-password"],
        before["database-root-password"]
    );
    assert!(annotations.contains_key("webtoon.io/credentials-rotation"));
    let add = c.rotation_jobs().await;
    assert_eq!(add.len(), 2, "{add:?}");
    assert_eq!(phase(&c.status().await), Some(RotationPhase::Adding));
    let (reconciling, reason, _) = condition(&c.status().await, "Reconciling");
    assert_eq!(
        (reconciling.as_str(), reason.as_str()),
        ("True", "RotatingCredentials")
    );

    // The database's Job fails: its last words reach the status, once as an event.
    let said = "database rotation add failed: cannot reach the database at minitoon-database.webtoon.svc:3306";
    let database_job = add
        .iter()
        .find(|n| n.contains("database"))
        .expect("database Job");
    let cache_job = add.iter().find(|n| n.contains("cache")).expect("cache Job");
    c.end_job(database_job, false, said).await;
    c.end_job(cache_job, true, "cache rotation add: done").await;
    c.reconcile().await;
    let status = c.status().await;
    assert_eq!(phase(&status), Some(RotationPhase::Failed));
    let (synced, reason, message) = condition(&status, "CredentialsSynced");
    assert_eq!(
        (synced.as_str(), reason.as_str()),
        ("False", "RotationFailed")
    );
    assert!(message.contains(said), "{message}");
    assert_eq!(condition(&status, "Stalled").1, "RotationFailed");
    c.reconcile().await;
    let failures = c
        .events()
        .await
        .iter()
        .filter(|r| *r == "RotationFailed")
        .count();
    assert_eq!(failures, 1, "reported once");
    assert_eq!(
        c.rotation_jobs().await,
        add,
        "the failed Jobs stay for their logs"
    );

    // A new request retries the step with new Jobs and the same new values.
    c.ask("r2").await;
    c.reconcile().await;
    let retry = c.rotation_jobs().await;
    assert_eq!(retry.len(), 2);
    assert!(
        retry.iter().all(|n| !add.contains(n)),
        "{retry:?} replaces {add:?}"
    );
    let (again, _) = c.secret().await;
    assert_eq!(
        again["database-root-password-next"],
        adding["database-root-password-next"]
    );
    for job in &retry {
        c.end_job(job, true, "rotation add: done").await;
    }
    c.reconcile().await;

    // The switch: the Secret holds the new values, the WAS moves to webtoon_2.
    let (switched, annotations) = c.secret().await;
    assert_eq!(
        switched["database-root-password"],
        adding["database-root-password-next"]
    );
    assert_eq!(
        switched["cache-password-previous"],
        before["cache-password"]
    );
    assert_eq!(annotations["webtoon.io/credentials-generation"], "1");
    let was = c
        .api::<Deployment>()
        .get("minitoon-was")
        .await
        .expect("was");
    let template = was.spec.expect("spec").template;
    let user = template
        .spec
        .as_ref()
        .and_then(|s| s.containers[0].env.as_ref())
        .and_then(|env| env.iter().find(|e| e.name == "WEBTOON_DB_USER"))
        .and_then(|e| e.value.clone());
    assert_eq!(user.as_deref(), Some("webtoon_2"));
    assert_eq!(
        template
            .metadata
            .and_then(|m| m.annotations)
            .and_then(|a| a.get("webtoon.io/credentials-generation").cloned())
            .as_deref(),
        Some("1")
    );
    assert_eq!(phase(&c.status().await), Some(RotationPhase::RollingOut));
    assert!(c.rotation_jobs().await.is_empty(), "the add Jobs went");

    // A pod of the old credentials holds the finish back.
    let old: Pod = serde_json::from_value(json!({
        "metadata": {"name": "minitoon-was-old", "namespace": NS, "labels": {
            "app.kubernetes.io/name": "webtoon", "app.kubernetes.io/instance": "minitoon", "app.kubernetes.io/component": "was"}},
        "spec": {"containers": [{"name": "was", "image": "registry.example/minitoon/was:1.0.0"}]},
    }))
    .expect("a pod");
    c.api::<Pod>()
        .create(&PostParams::default(), &old)
        .await
        .expect("pod");
    c.settle().await;
    c.reconcile().await;
    let status = c.status().await;
    assert_eq!(phase(&status), Some(RotationPhase::RollingOut));
    let waiting = condition(&status, "CredentialsSynced").2;
    assert!(waiting.contains("minitoon-was-old"), "{waiting}");
    c.api::<Pod>()
        .delete("minitoon-was-old", &Default::default())
        .await
        .expect("pod gone");
    c.reconcile().await;
    let finish = c.rotation_jobs().await;
    assert_eq!(finish.len(), 2);
    let (finishing, _) = c.secret().await;
    assert!(!finishing.contains_key("cache-password-previous"));
    for job in &finish {
        c.end_job(job, true, "rotation finish: done").await;
    }
    c.reconcile().await;
    let status = c.status().await;
    assert_eq!(phase(&status), Some(RotationPhase::Succeeded));
    assert_eq!(condition(&status, "CredentialsSynced").0, "True");
    let events = c.events().await;
    for reason in [
        "RotationStarted",
        "RotationRetried",
        "CredentialsSwitched",
        "CredentialsRotated",
    ] {
        assert!(events.iter().any(|r| r == reason), "{reason}: {events:?}");
    }
    c.reconcile().await;
    assert!(c.rotation_jobs().await.is_empty(), "the finish Jobs went");
    c.wire.take_writes();
    c.reconcile().await;
    assert_eq!(c.wire.take_writes(), 0, "a rotated stack settles");
    let requests = c.wire.requests();
    let sent = requests
        .iter()
        .map(|r| (r.method.as_str(), r.uri.as_str(), r.status));
    for (group, resource, verb) in permissions_needed(sent) {
        assert!(
            granted(&group, &resource, &verb),
            "a rotation needs {verb} on {group}/{resource}, which the role lacks"
        );
    }
}
