//! Example stacks in a scenario namespace: loaded from `examples/*.yaml`, given what
//! they expect to exist (TLS and external-service Secrets, an existing image claim),
//! applied, and waited on until `Ready=True`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition as StatusCondition;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Secret};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::Condition;
use kube::{Client, ResourceExt};
use webtoon_operator::api::{VolumeSpec, WebtoonStack};

use crate::operator::E2E_MANAGER;

/// How long a stack may take to become Ready on a fresh cluster.
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Environment variable naming a WAS image the cluster can pull, such as the demo WAS
/// loaded into kind; on the local cluster KWOK runs any image, so the examples' own do.
pub const WAS_IMAGE_ENV: &str = "WEBTOON_E2E_WAS_IMAGE";

/// Environment variable naming a second pullable WAS image, for the rolling update.
pub const NEXT_WAS_IMAGE_ENV: &str = "WEBTOON_E2E_NEXT_WAS_IMAGE";

/// Environment variable naming a third pullable WAS image, for a release after that.
pub const THIRD_WAS_IMAGE_ENV: &str = "WEBTOON_E2E_THIRD_WAS_IMAGE";

/// The condition `kind` of the stack's status.
pub fn condition<'a>(stack: &'a WebtoonStack, kind: &str) -> Option<&'a StatusCondition> {
    stack
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
}

/// Whether the stack's condition `kind` has `status` (`True` or `False`).
pub fn has_condition(stack: &WebtoonStack, kind: &str, status: &str) -> bool {
    condition(stack, kind).is_some_and(|c| c.status == status)
}

/// The image of `variable`, or `default` when it is unset.
pub fn was_image(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_string())
}

/// The stack in `examples/<name>.yaml`, moved into `namespace`, with the WAS image of
/// `$WEBTOON_E2E_WAS_IMAGE` when that is set.
pub fn example(name: &str, namespace: &str) -> WebtoonStack {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut stacks = webtoon_operator::manifest::parse_stacks(&path.to_string_lossy(), &text)
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
    assert_eq!(stacks.len(), 1, "{} holds one stack", path.display());
    let mut stack = stacks.remove(0);
    stack.metadata.namespace = Some(namespace.to_string());
    stack.spec.was.image = was_image(WAS_IMAGE_ENV, &stack.spec.was.image);
    stack
}

/// Replaces the NFS image volume with a dynamically provisioned one, for an operator
/// with a namespaced Role, which cannot create the cluster-scoped volume.
pub fn without_nfs(mut stack: WebtoonStack) -> WebtoonStack {
    stack.spec.storage.nfs = None;
    stack
}

/// A condition that holds when the stack reports `Ready=True` for its current generation.
pub fn is_ready() -> impl Condition<WebtoonStack> {
    |stack: Option<&WebtoonStack>| stack.is_some_and(ready_now)
}

/// Whether the stack reports `Ready=True` for its current generation.
pub fn ready_now(stack: &WebtoonStack) -> bool {
    let Some(status) = &stack.status else {
        return false;
    };
    status.observed_generation == stack.metadata.generation
        && status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Creates what the stack expects to find, and drops StorageClasses the cluster
/// does not have (the examples name `fast`), so that claims bind to the default one.
pub async fn prepare(client: &Client, stack: &mut WebtoonStack) {
    let namespace = stack.namespace().expect("the stack has a namespace");
    let classes: Api<StorageClass> = Api::all(client.clone());
    let known = classes
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("cannot list StorageClasses: {e}"))
        .items
        .into_iter()
        .map(|c| c.name_any())
        .collect::<Vec<_>>();
    let keep_known = |volume: &mut VolumeSpec| {
        if volume
            .storage_class_name
            .as_ref()
            .is_some_and(|c| !known.contains(c))
        {
            volume.storage_class_name = None;
        }
    };
    let spec = &mut stack.spec;
    keep_known(&mut spec.database.storage);
    if let Some(storage) = spec
        .database
        .backup
        .as_mut()
        .and_then(|b| b.storage.as_mut())
    {
        keep_known(storage);
    }
    if let Some(persistence) = spec.cache.persistence.as_mut() {
        keep_known(persistence);
    }
    if spec
        .storage
        .storage_class_name
        .as_ref()
        .is_some_and(|c| !known.contains(c))
    {
        spec.storage.storage_class_name = None;
    }

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let params = PatchParams::apply(E2E_MANAGER).force();
    let mut wanted: Vec<serde_json::Value> = Vec::new();
    if let Some(tls) = &spec.tls {
        let existing = secrets
            .get_opt(&tls.secret_name)
            .await
            .unwrap_or_else(|e| panic!("cannot read Secret {}: {e}", tls.secret_name));
        // The API server checks that both keys exist; KWOK and the operator never
        // read the certificate itself. A real node's nginx does: a scenario that
        // created a real certificate keeps it.
        if existing.is_none() {
            wanted.push(serde_json::json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": tls.secret_name, "namespace": namespace},
                "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": "e2e placeholder", "tls.key": "e2e placeholder"},
            }));
        }
    }
    for external in [&spec.database.external, &spec.cache.external]
        .into_iter()
        .flatten()
    {
        wanted.push(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": external.secret_name, "namespace": namespace},
            "stringData": {"username": "webtoon", "password": "e2e-external-password"},
        }));
    }
    for secret in wanted {
        let name = secret["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        secrets
            .patch(&name, &params, &Patch::Apply(&secret))
            .await
            .unwrap_or_else(|e| panic!("cannot create Secret {name}: {e}"));
    }
    if let Some(claim) = &spec.storage.existing_claim {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &namespace);
        let object = serde_json::json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim, "namespace": namespace},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": spec.storage.size}},
            },
        });
        claims
            .patch(claim, &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|e| panic!("cannot create PersistentVolumeClaim {claim}: {e}"));
    }
}

/// Server-side applies the stack as a user would (`kubectl apply --server-side`).
pub async fn apply(client: &Client, stack: &WebtoonStack) -> WebtoonStack {
    let namespace = stack.namespace().expect("the stack has a namespace");
    let name = stack.name_any();
    let mut object = stack.clone();
    object.metadata.resource_version = None;
    object.metadata.uid = None;
    object.metadata.managed_fields = None;
    object.metadata.creation_timestamp = None;
    object.status = None;
    Api::<WebtoonStack>::namespaced(client.clone(), &namespace)
        .patch(
            &name,
            &PatchParams::apply(E2E_MANAGER).force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot apply WebtoonStack {name}: {e}"))
}

/// Waits until the stack reports `Ready=True` for its current generation.
pub async fn wait_ready(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> WebtoonStack {
    let api: Api<WebtoonStack> = Api::namespaced(client.clone(), namespace);
    crate::wait::until(&api, name, timeout, is_ready()).await
}

/// Prepares, applies and waits for the stack to become Ready.
pub async fn deploy(client: &Client, mut stack: WebtoonStack) -> WebtoonStack {
    prepare(client, &mut stack).await;
    let applied = apply(client, &stack).await;
    let namespace = applied.namespace().expect("the stack has a namespace");
    wait_ready(client, &namespace, &applied.name_any(), READY_TIMEOUT).await
}

/// Deletes, when dropped, the cluster-scoped NFS volumes the operator created for
/// stacks of one namespace: deleting the namespace does not remove them.
pub struct NfsVolumeCleanup {
    namespace: String,
}

impl NfsVolumeCleanup {
    /// Cleans up after the stacks of `namespace`.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
        }
    }
}

impl Drop for NfsVolumeCleanup {
    fn drop(&mut self) {
        let namespace = self.namespace.clone();
        // Drop cannot await, and the test's runtime may be single-threaded: a
        // thread with its own runtime and client does the deletes.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(client) = kube::Client::try_default().await else {
                    return;
                };
                let volumes: Api<PersistentVolume> = Api::all(client);
                let selector = format!("webtoon.io/namespace={namespace}");
                if let Ok(list) = volumes.list(&ListParams::default().labels(&selector)).await {
                    for volume in list.items {
                        let _ = volumes
                            .delete(&volume.name_any(), &DeleteParams::background())
                            .await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Changes an annotation on the stack as the admin: a write that changes no spec,
/// so the operator reconciles with nothing to do.
pub async fn touch(client: &Client, namespace: &str, name: &str, value: &str) {
    let patch = serde_json::json!({
        "metadata": {"annotations": {"e2e.webtoon.io/touched": value}},
    });
    Api::<WebtoonStack>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &PatchParams {
                field_manager: Some("webtoon-e2e-touch".to_string()),
                ..Default::default()
            },
            &Patch::Merge(&patch),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot annotate WebtoonStack {name}: {e}"));
}

/// Every child the operator renders for `stack` (placeholder credentials: only
/// names, kinds and shapes are used).
pub fn rendered_children(stack: &WebtoonStack) -> webtoon_operator::render::Children {
    let validated = webtoon_operator::manifest::validated(stack)
        .unwrap_or_else(|e| panic!("the stack is invalid: {e}"));
    let observed = webtoon_operator::render::Observed {
        credentials: Some(crate::dry_run::fake_credentials()),
        now: Some(jiff::Timestamp::now()),
        ..Default::default()
    };
    webtoon_operator::render::render(&validated, &observed)
}

/// The label selector of every child of the stack `name`.
pub fn children_selector(name: &str) -> String {
    format!("app.kubernetes.io/instance={name},app.kubernetes.io/managed-by=webtoon-operator")
}

/// Waits until no object of kind `K` matches `selector`, watching between lists.
pub async fn wait_until_none<K>(api: &Api<K>, selector: &str, timeout: Duration)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    use futures::StreamExt;
    let work = async {
        loop {
            let list = api
                .list(&ListParams::default().labels(selector))
                .await
                .unwrap_or_else(|e| panic!("cannot list {selector}: {e}"));
            if list.items.is_empty() {
                return;
            }
            let version = list.metadata.resource_version.unwrap_or_default();
            let params = kube::api::WatchParams::default()
                .labels(selector)
                .timeout(30);
            // Any event (a deletion, most likely) is a reason to list again.
            if let Ok(stream) = api.watch(&params, &version).await {
                let mut stream = Box::pin(stream);
                let _ = stream.next().await;
            }
        }
    };
    if tokio::time::timeout(timeout, work).await.is_err() {
        let left: Vec<String> = api
            .list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items.iter().map(|o| o.name_any()).collect())
            .unwrap_or_default();
        panic!("objects matching {selector} were still there after {timeout:?}: {left:?}");
    }
}
