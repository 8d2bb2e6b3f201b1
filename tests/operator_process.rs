//! The operator as a process: its metrics and health server, and the real
//! `webtoon-operator run` binary against a stub API server on 127.0.0.1. It watches
//! every kind it owns in its namespace, turns ready, logs JSON when asked, stops
//! cleanly on SIGTERM, and refuses to start without the CRD.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TempDir;
use common::api_requests::{granted, permission_of};
use common::http_get::get;
use common::process::{free_port, sigterm};
use common::stub_api_server::StubApiServer;
use webtoon_operator::controller::rbac::PERMISSIONS;
use webtoon_operator::metrics::{Metrics, serve};

/// How long a process may take to start, turn ready or stop.
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// A free address on 127.0.0.1, released for the process under test to take.
fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// The operator process; killed if a test ends before it stopped.
struct Operator {
    child: Option<Child>,
}

impl Operator {
    fn start(kubeconfig: &std::path::Path, args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_webtoon-operator"))
            .arg("run")
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start webtoon-operator");
        Self { child: Some(child) }
    }

    fn sigterm(&self) {
        if let Some(child) = &self.child {
            sigterm(child);
        }
    }

    /// Waits for the process to end by itself, within [`DEADLINE`].
    async fn wait(mut self) -> Output {
        let deadline = Instant::now() + DEADLINE;
        let mut child = self.child.take().expect("running");
        loop {
            match child.try_wait().expect("poll the process") {
                Some(_) => return child.wait_with_output().expect("collect output"),
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    panic!("webtoon-operator did not stop within {DEADLINE:?}");
                }
                None => tokio::time::sleep(POLL).await,
            }
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `GET path` until it answers `status`, within [`DEADLINE`].
async fn until_status(address: SocketAddr, path: &str, status: u16) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(reply) = get(address, path).await
            && reply.status == status
        {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} on {address} did not answer {status} within {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn metrics_server_serves_metrics_health_and_readiness() {
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, metrics.clone(), async move {
        let _ = stopped.await;
    }));

    let health = get(address, "/healthz").await.expect("healthz");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = get(address, "/readyz").await.expect("readyz");
    assert_eq!(ready.status, 503, "not ready before the controller watches");
    let url = format!("http://{address}/readyz");
    // `probe`, which the chart's `helm test` runs, fails on that answer.
    let probe = |url: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_webtoon-operator"))
            .args(["probe", "--url", &url, "--timeout", "5"])
            .output()
            .await
            .expect("probe runs")
    };
    let refused = probe(url.clone()).await;
    assert!(!refused.status.success(), "probe passed a 503");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("503"));
    metrics.set_standby(true);
    let standby = get(address, "/readyz").await.expect("readyz");
    assert_eq!(
        (standby.status, standby.body.as_str()),
        (
            200,
            "ok: standing by for the leader Lease; it is held by no replica yet\n"
        ),
        "a standby replica is ready"
    );
    metrics.set_leader_identity(Some("webtoon-operator-7d9f-abcde"));
    let named = get(address, "/readyz").await.expect("readyz");
    assert!(
        named
            .body
            .ends_with("held by webtoon-operator-7d9f-abcde\n"),
        "a standby names the replica that leads: {}",
        named.body
    );
    metrics.set_standby(false);
    metrics.set_watching(true);
    let ready = get(address, "/readyz").await.expect("readyz");
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (200, "ok: reconciling\n")
    );
    let passed = probe(url).await;
    assert!(
        passed.status.success(),
        "{}",
        String::from_utf8_lossy(&passed.stderr)
    );
    let closed = probe("http://127.0.0.1:1/readyz".to_string()).await;
    assert!(!closed.status.success(), "probe passed a closed port");

    drop(metrics.reconcile_started());
    metrics.wrote(3);
    metrics.set_ready("webtoon/megatoon", Some(true));
    metrics.set_ready("webtoon/minitoon", Some(false));
    let reply = get(address, "/metrics").await.expect("metrics");
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .headers
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{}",
        reply.headers
    );
    for line in [
        "webtoon_reconciles_total 1",
        "webtoon_child_writes_total 3",
        "webtoon_reconcile_duration_seconds_count 1",
        "webtoon_stacks{ready=\"true\"} 1",
        "webtoon_stacks{ready=\"false\"} 1",
        "# EOF",
    ] {
        assert!(
            reply.body.lines().any(|l| l == line),
            "{line} missing from:\n{}",
            reply.body
        );
    }
    assert_eq!(get(address, "/secrets").await.expect("404").status, 404);

    let _ = stop.send(());
    server
        .await
        .expect("server task")
        .expect("server stops cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_watches_every_owned_kind_turns_ready_and_stops_on_sigterm() {
    let api = StubApiServer::start(true).await;
    let dir = TempDir::new("operator-run");
    let kubeconfig = dir.0.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let metrics = free_address();
    let operator = Operator::start(
        &kubeconfig,
        &[
            "--namespace",
            "webtoon",
            "--metrics-address",
            &metrics.to_string(),
            "--log-format",
            "json",
        ],
    );

    until_status(metrics, "/readyz", 200).await;
    let watched = [
        "/apis/webtoon.io/v1alpha1/namespaces/webtoon/webtoonstacks",
        "/apis/apps/v1/namespaces/webtoon/deployments",
        "/apis/apps/v1/namespaces/webtoon/statefulsets",
        "/api/v1/namespaces/webtoon/services",
        "/api/v1/namespaces/webtoon/configmaps",
        "/api/v1/namespaces/webtoon/secrets",
        "/api/v1/namespaces/webtoon/persistentvolumeclaims",
        "/apis/autoscaling/v2/namespaces/webtoon/horizontalpodautoscalers",
        "/apis/policy/v1/namespaces/webtoon/poddisruptionbudgets",
        "/apis/batch/v1/namespaces/webtoon/cronjobs",
        "/apis/networking.k8s.io/v1/namespaces/webtoon/networkpolicies",
    ];
    let deadline = Instant::now() + DEADLINE;
    let watches = loop {
        let watches: Vec<String> = api
            .requests()
            .into_iter()
            .filter(|r| r.contains("watch=true"))
            .collect();
        let all = watched.iter().all(|path| {
            watches
                .iter()
                .any(|w| w.starts_with(&format!("GET {path}?")))
        });
        if all {
            break watches;
        }
        assert!(
            Instant::now() < deadline,
            "not every owned kind is watched: {watches:#?}"
        );
        tokio::time::sleep(POLL).await;
    };
    for watch in &watches {
        assert!(
            watch.contains("/namespaces/webtoon/"),
            "--namespace limits every watch: {watch}"
        );
        if !watch.contains("/webtoonstacks") {
            assert!(
                watch.contains("labelSelector=app.kubernetes.io%2Fmanaged-by%3Dwebtoon-operator"),
                "children are watched by the operator's label only, so Secrets and ConfigMaps of others are never cached: {watch}"
            );
        }
    }
    let metrics_text = until_status(metrics, "/metrics", 200).await;
    assert!(
        metrics_text.contains("webtoon_reconciles_total 0"),
        "{metrics_text}"
    );
    assert!(
        api.requests().iter().all(|r| r.starts_with("GET ")),
        "an empty cluster gets no writes: {:#?}",
        api.requests()
    );
    // Every request is granted by the role, and every list and watch it grants is used.
    let mut used = std::collections::BTreeSet::new();
    for request in api.requests() {
        let (method, uri) = request.split_once(' ').expect("METHOD uri");
        let (group, resource, verb) = permission_of(method, uri);
        assert!(
            granted(&group, &resource, &verb),
            "{request} needs {verb} on {group}/{resource}, which the role lacks"
        );
        used.insert((group, resource, verb));
    }
    // Listed by a reconcile during a rollout or a prune, never watched: the controller
    // test holds them to the role, and the e2e suite's rollback and monitoring
    // scenarios use them.
    const LISTED_BY_ROLLOUTS: [(&str, &str); 3] = [
        ("", "pods"),
        ("apps", "replicasets"),
        ("monitoring.coreos.com", "podmonitors"),
    ];
    for permission in PERMISSIONS
        .iter()
        .filter(|p| !p.cluster_scoped)
        .filter(|p| !LISTED_BY_ROLLOUTS.contains(&(p.group, p.resource)))
    {
        for verb in permission
            .verbs
            .iter()
            .filter(|v| ["list", "watch"].contains(v))
        {
            let key = (
                permission.group.to_string(),
                permission.resource.to_string(),
                verb.to_string(),
            );
            assert!(
                used.contains(&key),
                "the role grants {key:?}, which the controller never uses"
            );
        }
    }

    operator.sigterm();
    let output = operator.wait().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let messages: Vec<String> = stdout
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
            assert!(event["level"].is_string(), "{line}");
            assert!(event["timestamp"].is_string(), "{line}");
            event["message"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    assert!(
        messages.iter().any(|m| m == "webtoon-operator starting"),
        "{messages:?}"
    );
    assert_eq!(
        messages.last().map(String::as_str),
        Some("webtoon-operator stopped"),
        "{messages:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_the_crd_exits_with_a_message_that_says_what_to_install() {
    let api = StubApiServer::start(false).await;
    let dir = TempDir::new("operator-no-crd");
    let kubeconfig = dir.0.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let metrics = free_address();
    let output = Operator::start(&kubeconfig, &["--metrics-address", &metrics.to_string()])
        .wait()
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot list WebtoonStacks")
            && stderr.contains("webtoon-operator crd | kubectl apply -f -"),
        "{stderr}"
    );
}
