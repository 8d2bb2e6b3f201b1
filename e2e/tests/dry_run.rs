//! Rendering is accepted by the API server: every child object of every example and
//! of every variant of the offline tests passes a server-side apply with `dryRun=All`
//! in a namespace under the restricted Pod Security profile; the NFS
//! PersistentVolume, cluster-scoped, is dry-run cluster-wide.

use std::time::Duration;

use webtoon_e2e::crd::{ensure_crd, ensure_monitoring_crds};
use webtoon_e2e::dry_run::{apply_children, children, create_stack};
use webtoon_e2e::examples::{in_namespace, stacks, validate_document};
use webtoon_e2e::namespace::within_namespace;

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn every_rendered_object_of_every_example_passes_server_side_dry_run() {
    within_namespace("dry-run", SCENARIO_TIMEOUT, |client, ns| async move {
        ensure_crd(&client).await;
        // Stacks with monitoring render a PodMonitor.
        ensure_monitoring_crds(&client).await;
        let mut refused = Vec::new();
        let mut kinds = std::collections::BTreeSet::new();
        for (source, document) in stacks() {
            let document = in_namespace(document, &ns);
            let stack = validate_document(&document)
                .unwrap_or_else(|error| panic!("{source} is valid: {error}"));
            if let Err(error) = create_stack(&client, &ns, &document).await {
                refused.push(format!("{source}: WebtoonStack: {error}"));
            }
            let children = children(&stack);
            for object in children.to_documents().expect("children serialize") {
                kinds.insert(object["kind"].as_str().unwrap_or_default().to_string());
            }
            refused.extend(
                apply_children(&client, &ns, &children)
                    .await
                    .into_iter()
                    .map(|line| format!("{source}: {line}")),
            );
        }
        assert!(
            refused.is_empty(),
            "the API server refused:\n{}",
            refused.join("\n")
        );
        // The examples and variants together render every kind the operator makes.
        for kind in [
            "NetworkPolicy",
            "Secret",
            "ConfigMap",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "Service",
            "StatefulSet",
            "CronJob",
            "Deployment",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "PodMonitor",
        ] {
            assert!(
                kinds.contains(kind),
                "no example renders a {kind}: {kinds:?}"
            );
        }
    })
    .await;
}
