//! One throwaway namespace per scenario, deleted afterwards even when it fails.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

/// Runs `scenario` in a new namespace named `<prefix>-<random>` that enforces the
/// restricted Pod Security profile, then deletes the namespace, also after a panic.
pub async fn with_namespace<F, Fut>(prefix: &str, scenario: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let client = crate::client().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": {
            "generateName": format!("{prefix}-"),
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                "webtoon.io/e2e": "true",
            },
        },
    }))
    .expect("a namespace object");
    let created = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|error| panic!("cannot create a namespace for {prefix}: {error}"));
    let name = created
        .metadata
        .name
        .expect("the server names a generated namespace");
    // Boxed: a scenario's future holds whole stacks and their children, too large for
    // the stack of the test thread that polls it.
    let outcome = AssertUnwindSafe(Box::pin(scenario(client, name.clone())))
        .catch_unwind()
        .await;
    if let Err(error) = namespaces.delete(&name, &DeleteParams::background()).await {
        eprintln!("cannot delete namespace {name}: {error}");
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// [`with_namespace`], failing the scenario when it runs longer than `limit`, so that
/// no scenario can hang the suite.
pub async fn within_namespace<F, Fut>(prefix: &str, limit: Duration, scenario: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = ()>,
{
    with_namespace(prefix, |client, namespace| async move {
        if tokio::time::timeout(limit, scenario(client, namespace))
            .await
            .is_err()
        {
            panic!("the scenario did not finish within {limit:?}");
        }
    })
    .await;
}
