//! The real node's side of the suite (`e2e/local-cluster.sh up --node real`):
//! requests through a stack's proxy Service from this machine, files on the node's
//! volumes, connection attempts from inside real pods, and a stand-in for the
//! internet in a network namespace of its own.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Service};
use kube::{Api, Client};

use crate::kubectl::kubectl;

// The curl, wrk and openssl clients of the tests below the cluster, so both read
// their output alike; this crate runs curl and wrk its own way (asynchronously).
#[allow(dead_code)]
#[path = "../../tests/common/clients.rs"]
mod clients;
pub use clients::{Response, WrkReport, self_signed_cert};

/// The image with busybox and curl that probes run in (`e2e/node/images.sh`).
pub const NETTOOLS_IMAGE: &str = "webtoon.local/nettools:1";

/// The ClusterIP of a Service, which kube-proxy serves on this machine too.
pub async fn service_ip(client: &Client, namespace: &str, name: &str) -> String {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let service = services
        .get(name)
        .await
        .unwrap_or_else(|e| panic!("Service {namespace}/{name}: {e}"));
    service
        .spec
        .and_then(|s| s.cluster_ip)
        .filter(|ip| ip != "None")
        .unwrap_or_else(|| panic!("Service {namespace}/{name} has no cluster IP"))
}

/// Runs curl from this machine with `args` and the URL last.
pub async fn curl(args: &[&str]) -> Response {
    let output = tokio::process::Command::from(clients::curl_command(args))
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl runs (Debian's curl package)");
    clients::parse_curl(&output)
}

/// `GET http://<ip><path>` with the virtual host `host`.
pub async fn get(ip: &str, host: &str, path: &str) -> Response {
    curl(&[
        "--header",
        &format!("Host: {host}"),
        &format!("http://{ip}{path}"),
    ])
    .await
}

/// The directory on this machine that holds a bound claim's volume: the local
/// provisioner's volumes are hostPath directories of the node.
pub async fn volume_dir(client: &Client, namespace: &str, claim: &str) -> PathBuf {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let bound = claims
        .get(claim)
        .await
        .unwrap_or_else(|e| panic!("claim {namespace}/{claim}: {e}"));
    let volume = bound
        .spec
        .and_then(|s| s.volume_name)
        .unwrap_or_else(|| panic!("claim {namespace}/{claim} is not bound"));
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pv = volumes
        .get(&volume)
        .await
        .unwrap_or_else(|e| panic!("volume {volume}: {e}"));
    let path = pv
        .spec
        .and_then(|s| s.host_path)
        .map(|h| h.path)
        .unwrap_or_else(|| panic!("volume {volume} is not a hostPath volume of the node"));
    PathBuf::from(path)
}

/// The running pods that `selector` selects.
pub async fn running_pods(client: &Client, namespace: &str, selector: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    pods.list(&kube::api::ListParams::default().labels(selector))
        .await
        .unwrap_or_else(|e| panic!("pods {selector} in {namespace}: {e}"))
        .items
        .into_iter()
        .filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .collect()
}

/// Adds an ephemeral container `probe` with the test tools to a running pod: it
/// shares the pod's network namespace, so its connections are the pod's, under the
/// pod's NetworkPolicies. Returns once it runs.
pub async fn attach_probe(namespace: &str, pod: &str) {
    let added = kubectl(&[
        "debug",
        "--namespace",
        namespace,
        pod,
        "--image",
        NETTOOLS_IMAGE,
        "--image-pull-policy=Never",
        "--profile=restricted",
        "--container=probe",
        "--",
        "sleep",
        "3600",
    ])
    .await;
    assert!(
        added.success,
        "cannot add a probe container to {namespace}/{pod}: {}",
        added.stderr
    );
    for _ in 0..120 {
        let state = kubectl(&[
            "get",
            "pod",
            "--namespace",
            namespace,
            pod,
            "--output",
            "jsonpath={.status.ephemeralContainerStatuses[?(@.name==\"probe\")].state.running.startedAt}",
        ])
        .await;
        if state.success && !state.stdout.trim().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the probe container in {namespace}/{pod} did not start within 60 s");
}

/// Whether a TCP connection from `pod` (its container `container`) to
/// `host:port` opens within two seconds. busybox's nc has no `-z`: with its input
/// empty it closes at once after connecting, and fails when it cannot connect.
pub async fn connects(namespace: &str, pod: &str, container: &str, host: &str, port: u16) -> bool {
    let attempt = format!("nc -w 2 {host} {port} </dev/null");
    kubectl(&[
        "exec",
        "--namespace",
        namespace,
        pod,
        "-c",
        container,
        "--",
        "sh",
        "-c",
        &attempt,
    ])
    .await
    .success
}

/// A stand-in for the internet: a network namespace routed from this machine (so
/// pod traffic to it is forwarded, as to any outside address) with a TCP listener.
/// The namespace belongs to a process rather than to a file under `/run/netns`
/// (`ip netns add` would bind-mount that directory over itself and hide the pods'
/// namespaces the node keeps there); dropping it kills the processes, and the
/// namespace and its link go with them.
pub struct Internet {
    holder: std::process::Child,
    listener: std::process::Child,
}

/// Where [`Internet`] listens: TEST-NET-3, which no real network routes.
pub const INTERNET_ADDRESS: &str = "203.0.113.2";
/// The port [`Internet`] listens on.
pub const INTERNET_PORT: u16 = 443;
const INTERNET_LINK: &str = "wt-inet0";

impl Internet {
    /// Creates the namespace and starts the listener; panics when this machine
    /// does not allow it (the suite runs as root on the node's machine).
    pub fn start() -> Internet {
        let _ = std::process::Command::new("ip")
            .args(["link", "delete", INTERNET_LINK])
            .stderr(std::process::Stdio::null())
            .status();
        let holder = std::process::Command::new("unshare")
            .args(["--net", "sleep", "3600"])
            .spawn()
            .expect("unshare runs (util-linux)");
        let netns = format!("--net=/proc/{}/ns/net", holder.id());
        // unshare enters the new namespace before it runs sleep: wait for that.
        let own = std::fs::read_link("/proc/self/ns/net").ok();
        for _ in 0..100 {
            let theirs = std::fs::read_link(format!("/proc/{}/ns/net", holder.id())).ok();
            if theirs.is_some() && theirs != own {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let run = |program: &str, args: &[&str]| {
            let status = std::process::Command::new(program)
                .args(args)
                .status()
                .unwrap_or_else(|e| panic!("{program} runs: {e}"));
            assert!(status.success(), "{program} {}", args.join(" "));
        };
        let pid = holder.id().to_string();
        run(
            "ip",
            &[
                "link",
                "add",
                INTERNET_LINK,
                "type",
                "veth",
                "peer",
                "name",
                "wt-inet1",
            ],
        );
        run("ip", &["link", "set", "wt-inet1", "netns", &pid]);
        run(
            "ip",
            &["addr", "add", "203.0.113.1/30", "dev", INTERNET_LINK],
        );
        run("ip", &["link", "set", INTERNET_LINK, "up"]);
        let inside = |args: &[&str]| {
            let mut all = vec![netns.as_str(), "ip"];
            all.extend_from_slice(args);
            run("nsenter", &all);
        };
        inside(&[
            "addr",
            "add",
            &format!("{INTERNET_ADDRESS}/30"),
            "dev",
            "wt-inet1",
        ]);
        inside(&["link", "set", "wt-inet1", "up"]);
        inside(&["link", "set", "lo", "up"]);
        inside(&["route", "add", "default", "via", "203.0.113.1"]);
        let listener = std::process::Command::new("nsenter")
            .args([netns.as_str(), "python3", "-c"])
            .arg(format!(
                "import socket\n\
                 s = socket.socket()\n\
                 s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 s.bind(('{INTERNET_ADDRESS}', {INTERNET_PORT}))\n\
                 s.listen(64)\n\
                 while True:\n    s.accept()[0].close()\n"
            ))
            .spawn()
            .expect("python3 runs in the namespace");
        Internet { holder, listener }
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        for child in [&mut self.listener, &mut self.holder] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The stack that `yaml` describes, in `namespace`.
pub fn stack_from_yaml(yaml: &str, namespace: &str) -> webtoon_operator::api::WebtoonStack {
    let mut stacks = webtoon_operator::manifest::parse_stacks("inline stack", yaml)
        .unwrap_or_else(|e| panic!("the inline stack does not parse: {e}"));
    assert_eq!(stacks.len(), 1, "one stack");
    let mut stack = stacks.remove(0);
    stack.metadata.namespace = Some(namespace.to_string());
    stack
}

/// Starts wrk for `seconds` against `url` with the virtual host `host`: one thread,
/// four connections, so the load stays bounded on a small machine.
pub fn start_wrk(url: &str, host: &str, seconds: u64) -> tokio::process::Child {
    tokio::process::Command::new("wrk")
        .args(["--threads", "1", "--connections", "4", "--timeout", "5s"])
        .arg("--duration")
        .arg(format!("{seconds}s"))
        .args(["--header", &format!("Host: {host}"), url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("wrk runs (Debian's wrk package)")
}

/// Waits for wrk to finish and reads its report.
pub async fn finish_wrk(wrk: tokio::process::Child) -> WrkReport {
    let output = wrk.wait_with_output().await.expect("wrk finishes");
    let report = clients::parse_wrk(&String::from_utf8_lossy(&output.stdout));
    assert!(
        output.status.success() && report.requests > 0,
        "wrk failed: {}{}",
        report.output,
        String::from_utf8_lossy(&output.stderr)
    );
    report
}

/// Starts a pod of the test tools named `name` in `namespace` (restricted, no
/// policy selects it) and returns it once it runs, with its address.
pub async fn start_tools_pod(client: &Client, namespace: &str, name: &str) -> Pod {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {TOOLS_LABEL: name}},
        "spec": {
            "securityContext": {
                "runAsNonRoot": true,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [{
                "name": TOOLS_CONTAINER,
                "image": NETTOOLS_IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": {"drop": ["ALL"]},
                },
            }],
        },
    }))
    .expect("a pod");
    pods.create(&kube::api::PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("cannot create the tools pod {namespace}/{name}: {e}"));
    for _ in 0..120 {
        if let Some(running) = running_pods(client, namespace, &format!("{TOOLS_LABEL}={name}"))
            .await
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some())
        {
            return running;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the tools pod {namespace}/{name} did not start within 60 s");
}

/// The label that names a tools pod.
const TOOLS_LABEL: &str = "webtoon.io/e2e-tools";
/// The container of a tools pod.
pub const TOOLS_CONTAINER: &str = "nettools";

/// Asserts that every pod of `namespace` (but the tools pods) runs with every
/// container ready, and returns the stack tiers they belong to, sorted.
pub async fn assert_every_pod_runs(client: &Client, namespace: &str) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let listed = pods
        .list(&kube::api::ListParams::default())
        .await
        .expect("pods can be listed");
    let mut tiers: Vec<String> = Vec::new();
    for pod in &listed.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() || labels.contains_key(TOOLS_LABEL) {
            continue;
        }
        let status = pod.status.as_ref().expect("a pod has a status");
        assert_eq!(
            status.phase.as_deref(),
            Some("Running"),
            "{name} is not running"
        );
        for container in status.container_statuses.iter().flatten() {
            assert!(container.ready, "{name}/{} is not ready", container.name);
        }
        if let Some(tier) = labels.get("app.kubernetes.io/component") {
            tiers.push(tier.clone());
        }
    }
    tiers.sort();
    tiers.dedup();
    tiers
}

/// Runs `sql` in `database` as MariaDB's root, in the database pod of `stack`, over
/// the socket (root may log in from inside the pod only); returns the rows,
/// tab-separated, without column names.
pub async fn mariadb_as_root(namespace: &str, stack: &str, database: &str, sql: &str) -> String {
    let pod = format!("{stack}-database-0");
    let shell = format!(
        "MYSQL_PWD=\"$MARIADB_ROOT_PASSWORD\" mariadb --protocol=socket --user=root \
         --default-character-set=utf8mb4 --batch --skip-column-names {database} -e \"{sql}\""
    );
    let output = kubectl(&[
        "exec",
        "--namespace",
        namespace,
        &pod,
        "-c",
        "mariadb",
        "--",
        "sh",
        "-c",
        &shell,
    ])
    .await;
    assert!(
        output.success,
        "{sql} in {pod} failed: {}{}",
        output.stdout, output.stderr
    );
    output.stdout
}
