//! On the real node, under wrk load through the proxy Service: deleting a WAS pod,
//! and a rolling image update of every WAS pod, fail no request.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::DeleteParams;
use kube::{Api, Client, ResourceExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::node::{finish_wrk, get, running_pods, service_ip, stack_from_yaml, start_wrk};
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::proxy_log::ProxyLog;
use webtoon_e2e::stack;

const LIMIT: Duration = Duration::from_secs(420);

const STACK: &str = r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: loadtoon}
spec:
  hosts: [loadtoon.example]
  proxy:
    # All of wrk's requests come from one address, the node's; a site's come from
    # many. The limit itself is proven in node_production.
    rateLimit: {enabled: false}
    resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: "1", memory: 256Mi}}
  was:
    image: demo-was:1.0.0
    healthPath: /healthz
    replicas: 2
    resources: {requests: {cpu: 50m, memory: 64Mi}, limits: {cpu: "1", memory: 512Mi}}
  database:
    resources: {requests: {cpu: 100m, memory: 256Mi}, limits: {cpu: "1", memory: 1Gi}}
"#;

/// How long each load run lasts: long enough for a replacement pod, or a whole
/// rolling update of two pods, to become ready while it runs.
const LOAD_SECONDS: u64 = 60;

#[tokio::test]
async fn real_node_fails_no_request_when_was_pods_go() {
    within_namespace("node-load", LIMIT, |client, namespace| async move {
        ensure_crd(&client).await;
        let _operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;
        let ready = stack::deploy(&client, stack_from_yaml(STACK, &namespace)).await;
        let name = ready.name_any();
        let host = ready.spec.hosts[0].clone();
        let ip = service_ip(&client, &namespace, &format!("{name}-proxy")).await;
        let warm = get(&ip, &host, "/episodes").await;
        assert_eq!(warm.status, 200, "{warm:?}");
        let url = format!("http://{ip}/episodes");
        let was = format!("app.kubernetes.io/instance={name},app.kubernetes.io/component=was");

        // One WAS pod deleted under load: nginx stops sending to it as it drains, and
        // the Deployment replaces it.
        let log = ProxyLog::since_now(&client, &namespace, &name).await;
        let wrk = start_wrk(&url, &host, LOAD_SECONDS);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let victim = running_pods(&client, &namespace, &was)
            .await
            .into_iter()
            .next()
            .expect("a running WAS pod")
            .name_any();
        let pods: Api<k8s_openapi::api::core::v1::Pod> =
            Api::namespaced(client.clone(), &namespace);
        pods.delete(&victim, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("cannot delete {victim}: {e}"));
        // Gone once it has drained; then its replacement must be ready too.
        let mut gone = false;
        for _ in 0..(LOAD_SECONDS * 2) {
            if pods.get_opt(&victim).await.ok().flatten().is_none() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert!(gone, "{victim} did not terminate within the load run");
        wait_rolled_out(&client, &namespace, &format!("{name}-was"), None).await;
        let deleted = finish_wrk(wrk).await;
        eprintln!("WAS pod deleted under load:\n{}", deleted.output);
        log.assert_no_request_failed(&deleted).await;

        // Every WAS pod replaced by a rolling image update under load.
        let log = ProxyLog::since_now(&client, &namespace, &name).await;
        let wrk = start_wrk(&url, &host, LOAD_SECONDS);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let mut updated = ready.clone();
        updated.spec.was.image = "demo-was:1.0.1".to_string();
        stack::apply(&client, &updated).await;
        wait_rolled_out(
            &client,
            &namespace,
            &format!("{name}-was"),
            Some("demo-was:1.0.1"),
        )
        .await;
        let rolled = finish_wrk(wrk).await;
        eprintln!("rolling update under load:\n{}", rolled.output);
        log.assert_no_request_failed(&rolled).await;
        for pod in running_pods(&client, &namespace, &was).await {
            assert_eq!(webtoon_e2e::pods::image(&pod), "demo-was:1.0.1");
        }
    })
    .await;
}

/// Waits until the Deployment runs only ready pods of its current template (with
/// `image`, when given), all of them replaced or started since the change.
async fn wait_rolled_out(client: &Client, namespace: &str, name: &str, image: Option<&str>) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    for _ in 0..(LOAD_SECONDS * 2) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(deployment) = deployments.get(name).await else {
            continue;
        };
        if image.is_some_and(|i| webtoon_e2e::pods::template_image(&deployment) != i) {
            continue;
        }
        let want = deployment
            .spec
            .as_ref()
            .and_then(|s| s.replicas)
            .unwrap_or(1);
        let status = deployment.status.unwrap_or_default();
        if status.observed_generation == deployment.metadata.generation
            && status.updated_replicas == Some(want)
            && status.ready_replicas == Some(want)
            && status.replicas == Some(want)
        {
            return;
        }
    }
    panic!("{namespace}/{name} did not roll out within the load run");
}
