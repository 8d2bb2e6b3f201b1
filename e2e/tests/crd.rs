//! Installing the API: the CRD goes in by server-side apply and becomes Established,
//! `kubectl explain` shows our field docs, `kubectl get wts` shows our printer
//! columns, and the API server accepts every example.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::PostParams;
use webtoon_e2e::crd::{FIELD_MANAGER, ensure_crd, rules_with_server_paths, stacks};
use webtoon_e2e::dry_run::{create_stack, error_text};
use webtoon_e2e::examples::{documents, example_files, in_namespace};
use webtoon_e2e::kubectl::kubectl;
use webtoon_e2e::namespace::within_namespace;

const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a scenario body under the suite's time bound, so a stuck call fails the test
/// (and the namespace is still deleted) instead of hanging it.
async fn bounded(body: impl Future<Output = ()>) {
    tokio::time::timeout(SCENARIO_TIMEOUT, body)
        .await
        .unwrap_or_else(|_| panic!("the scenario did not finish within {SCENARIO_TIMEOUT:?}"));
}

/// Collapses runs of white space, as kubectl re-wraps descriptions to its width.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn crd_applies_server_side_and_becomes_established() {
    let client = webtoon_e2e::client().await;
    bounded(async {
        ensure_crd(&client).await;
        // A second apply of the same object changes nothing: scenarios may race on it.
        ensure_crd(&client).await;
        let generated = webtoon_operator::api::crd();
        let name = generated.metadata.name.clone().expect("the CRD is named");
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let stored = crds.get(&name).await.expect("the CRD can be read back");
        let managers: Vec<(String, String)> = stored
            .metadata
            .managed_fields
            .iter()
            .flatten()
            .map(|m| {
                (
                    m.manager.clone().unwrap_or_default(),
                    m.operation.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert!(
            managers.contains(&(FIELD_MANAGER.to_string(), "Apply".to_string())),
            "the CRD is applied server-side by {FIELD_MANAGER}: managers {managers:?}"
        );
        assert_eq!(stored.spec.names.short_names, Some(vec!["wts".to_string()]));
        // The server compiled and stored every rule: a rule that failed to compile or
        // exceeded the cost budget would have failed ensure_crd, naming the rule.
        assert_eq!(
            rules_with_server_paths(&stored),
            rules_with_server_paths(&generated),
            "the stored CRD holds exactly the generated CEL rules"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_explain_prints_our_field_docs() {
    let client = webtoon_e2e::client().await;
    bounded(async {
        ensure_crd(&client).await;
        let expected = [
            // WebtoonStackSpec::proxy
            "The nginx reverse proxy in front of the application servers.",
            // ProxySpec::client_max_body_size
            "Largest request body a client may send (nginx size, such as `20m`).",
            // ProxySpec::trusted_proxy_cidrs
            "whose `X-Forwarded-For` header is trusted for the real client address.",
        ];
        // The API server publishes a new CRD's OpenAPI shortly after it is Established
        // and offers nothing to watch for that, so explain is simply run again until
        // it knows the type (each run is a full discovery round trip).
        let mut output = kubectl(&["explain", "webtoonstack.spec.proxy"]).await;
        for _ in 0..200 {
            if output.success {
                break;
            }
            output = kubectl(&["explain", "webtoonstack.spec.proxy"]).await;
        }
        assert!(output.success, "kubectl explain failed: {}", output.stderr);
        let text = words(&output.stdout);
        for sentence in expected {
            assert!(
                text.contains(&words(sentence)),
                "kubectl explain webtoonstack.spec.proxy lacks {sentence:?}:\n{}",
                output.stdout
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_get_shows_the_printer_columns() {
    within_namespace("crd-columns", SCENARIO_TIMEOUT, |client, ns| async move {
        ensure_crd(&client).await;
        let minimal = example_files()
            .into_iter()
            .find(|f| f.ends_with("minimal.yaml"))
            .expect("examples/minimal.yaml exists");
        let text = std::fs::read_to_string(&minimal).expect("minimal.yaml is readable");
        let document = documents("minimal.yaml", &text)
            .into_iter()
            .next()
            .expect("minimal.yaml holds a stack");
        let object = serde_json::from_value(in_namespace(document, &ns))
            .expect("a WebtoonStack document is a dynamic object");
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PostParams::default()
        };
        stacks(&client, &ns)
            .create(&params, &object)
            .await
            .unwrap_or_else(|error| panic!("minimal.yaml is stored: {}", error_text(&error)));

        let output = kubectl(&["get", "wts", "-n", &ns]).await;
        assert!(output.success, "kubectl get wts failed: {}", output.stderr);
        let header: Vec<&str> = output
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let mut expected = vec!["NAME".to_string()];
        expected.extend(
            webtoon_operator::api::crd().spec.versions[0]
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| c.name.to_uppercase()),
        );
        assert_eq!(
            header, expected,
            "kubectl get wts -n {ns}:\n{}",
            output.stdout
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_example_is_accepted_by_the_api_server() {
    within_namespace("crd-examples", SCENARIO_TIMEOUT, |client, ns| async move {
        ensure_crd(&client).await;
        let mut refused = Vec::new();
        for file in example_files() {
            let text = std::fs::read_to_string(&file).expect("example is readable");
            let source = file.display().to_string();
            for document in documents(&source, &text) {
                if document["kind"] != "WebtoonStack" {
                    continue;
                }
                if let Err(error) = create_stack(&client, &ns, &in_namespace(document, &ns)).await {
                    refused.push(format!("{source}: {error}"));
                }
            }
        }
        assert!(
            refused.is_empty(),
            "the API server refused examples:\n{}",
            refused.join("\n")
        );
    })
    .await;
}
