//! On the real node: a production-like stack (TLS from a real certificate, admin
//! paths behind an allow-list, a rate limit, a backup schedule, and a scaling
//! schedule in force) becomes Ready under the restricted Pod Security profile, and
//! its proxy Service proves each of those settings with real requests: HTTP/2 and
//! TLS 1.2/1.3 only, a redirect from plain HTTP, a WebSocket echo through nginx,
//! 403 on the admin paths except from the allowed pod, 429 beyond the rate, and as
//! many running WAS pods as the schedule's raised floor.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, ResourceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webtoon_e2e::crd::ensure_crd;
use webtoon_e2e::kubectl::kubectl;
use webtoon_e2e::namespace::within_namespace;
use webtoon_e2e::node::{
    Response, TOOLS_CONTAINER, assert_every_pod_runs, curl, running_pods, self_signed_cert,
    service_ip, stack_from_yaml, start_tools_pod,
};
use webtoon_e2e::operator::{Operator, Scope};
use webtoon_e2e::stack;
use webtoon_e2e::wait;

const LIMIT: Duration = Duration::from_secs(420);

const NAME: &str = "prodtoon";
const HOST: &str = "prodtoon.example";
const WWW_HOST: &str = "www.prodtoon.example";
const TLS_SECRET: &str = "prodtoon-tls";
/// The WAS floor while the sale runs, above the base of 2.
const SALE_FLOOR: i32 = 3;
/// The pod the admin allow-list admits.
const ADMIN_POD: &str = "admin-desk";

/// `examples/production.yaml`, sized for a two-CPU node shared with other
/// scenarios: no NFS, no bucket, no monitoring; the admin network is one pod.
fn production_yaml(admin_cidr: &str, sale_start: &str, sale_end: &str) -> String {
    format!(
        r#"
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {{name: {NAME}}}
spec:
  hosts: [{HOST}, {WWW_HOST}]
  tls:
    secretName: {TLS_SECRET}
  proxy:
    replicas: 2
    autoscaling: {{minReplicas: 2, maxReplicas: 4, targetCPUUtilization: 70}}
    service:
      type: LoadBalancer
    cache: {{enabled: true, size: 64Mi, staticMaxAge: 7d}}
    rateLimit: {{requestsPerSecond: 5, burst: 10}}
    admin:
      paths: [/admin, /manage]
      allowCIDRs: [{admin_cidr}]
    clientMaxBodySize: 20m
    resources:
      requests: {{cpu: 50m, memory: 64Mi}}
      limits: {{cpu: "1", memory: 256Mi}}
  was:
    image: demo-was:1.0.0
    port: 8080
    replicas: 2
    autoscaling: {{minReplicas: 2, maxReplicas: 4, targetCPUUtilization: 60}}
    healthPath: /healthz
    env:
      - name: TZ
        value: Asia/Seoul
    resources:
      requests: {{cpu: 50m, memory: 128Mi}}
      limits: {{cpu: "1", memory: 512Mi}}
    rollout: {{progressDeadlineSeconds: 300, autoRollback: true}}
  database:
    storage: {{size: 1Gi}}
    resources:
      requests: {{cpu: 100m, memory: 256Mi}}
      limits: {{cpu: "1", memory: 1Gi}}
    backup:
      schedule: "0 3 * * *"
      timeZone: Asia/Seoul
      keep: 7
      storage: {{size: 1Gi}}
  cache:
    maxMemory: 64Mi
    evictionPolicy: allkeys-lru
    resources:
      requests: {{cpu: 50m, memory: 128Mi}}
      limits: {{cpu: "1", memory: 192Mi}}
  storage:
    size: 1Gi
    mountPath: /var/www/images
    urlPath: /images
  network:
    policies: true
    ingressFromCIDRs: [0.0.0.0/0]
  scaling:
    schedules:
      - name: half-price-sale
        start: "{sale_start}"
        end: "{sale_end}"
        was: {{minReplicas: {SALE_FLOOR}}}
"#
    )
}

fn rfc3339(at: jiff::Timestamp) -> String {
    at.round(jiff::Unit::Second)
        .map_or_else(|_| at.to_string(), |t| t.to_string())
}

/// A directory of this machine's temporary files, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("webtoon-{name}"));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `GET https://<HOST><path>` through the proxy Service at `ip`, with the
/// certificate's name checked, plus `extra` curl options.
async fn https(ip: &str, ca: &Path, path: &str, extra: &[&str]) -> Response {
    let resolve = format!("{HOST}:443:{ip}");
    let ca = ca.to_string_lossy();
    let url = format!("https://{HOST}{path}");
    let mut args = vec!["--resolve", &resolve, "--cacert", &ca];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args).await
}

/// The status of `GET https://<HOST><path>` sent from inside the admin pod.
async fn https_from_admin_pod(namespace: &str, ip: &str, path: &str) -> String {
    let resolve = format!("{HOST}:443:{ip}");
    let url = format!("https://{HOST}{path}");
    let answer = kubectl(&[
        "exec",
        "--namespace",
        namespace,
        ADMIN_POD,
        "-c",
        TOOLS_CONTAINER,
        "--",
        "curl",
        "--silent",
        "--insecure",
        "--max-time",
        "10",
        "--output",
        "/dev/null",
        "--write-out",
        "%{http_code}",
        "--resolve",
        &resolve,
        &url,
    ])
    .await;
    assert!(
        answer.success,
        "curl in the admin pod for {path} failed: {}{}",
        answer.stdout, answer.stderr
    );
    answer.stdout.trim().to_string()
}

/// The key of RFC 6455's example handshake and the accept value it must produce:
/// the server's SHA-1 over it is checked without a SHA-1 of our own.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// One WebSocket exchange with `/ws` over TLS (openssl s_client carries the bytes,
/// checking the certificate): returns the handshake's response head and the
/// payload of the first frame that came back after sending `text`.
async fn websocket_echo(ip: &str, ca: &Path, text: &str) -> (String, Vec<u8>) {
    let mut tls = tokio::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-nocommands", "-verify_return_error"])
        .args(["-connect", &format!("{ip}:443"), "-servername", HOST])
        .args(["-verify_hostname", HOST, "-alpn", "http/1.1"])
        .arg("-CAfile")
        .arg(ca)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl runs (Debian's openssl package)");
    let mut input = tls.stdin.take().expect("s_client's stdin");
    let mut output = tls.stdout.take().expect("s_client's stdout");
    let exchange = async {
        let handshake = format!(
            "GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        input
            .write_all(handshake.as_bytes())
            .await
            .expect("the handshake is sent");
        input.flush().await.expect("the handshake is flushed");
        let mut received: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = output.read(&mut chunk).await.expect("s_client's output");
            if n == 0 {
                return (String::from_utf8_lossy(&received).into_owned(), Vec::new());
            }
            received.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
        let mut frames = received[head_end..].to_vec();

        // One masked text frame, as a client must send (RFC 6455, 5.3).
        let payload = text.as_bytes();
        assert!(
            payload.len() < 126,
            "a short message fits a one-byte length"
        );
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        input.write_all(&frame).await.expect("the frame is sent");
        input.flush().await.expect("the frame is flushed");
        // The server's frame: unmasked, FIN and opcode, then a short length.
        while frames.len() < 2 || frames.len() < 2 + usize::from(frames[1] & 0x7f) {
            let n = output.read(&mut chunk).await.expect("s_client's output");
            if n == 0 {
                break;
            }
            frames.extend_from_slice(&chunk[..n]);
        }
        assert!(frames.len() >= 2, "no frame came back: {frames:?}");
        assert_eq!(frames[0], 0x81, "a final text frame came back: {frames:?}");
        assert_eq!(frames[1] & 0x80, 0, "server frames are unmasked");
        let length = usize::from(frames[1] & 0x7f);
        let echoed = frames[2..(2 + length).min(frames.len())].to_vec();
        // A close frame, masked with an empty payload.
        let _ = input.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await;
        (head, echoed)
    };
    let result = tokio::time::timeout(Duration::from_secs(30), exchange).await;
    let _ = tls.kill().await;
    match result {
        Ok(result) => result,
        Err(_) => {
            let mut error = String::new();
            if let Some(mut stderr) = tls.stderr.take() {
                let _ = stderr.read_to_string(&mut error).await;
            }
            panic!("the WebSocket exchange did not finish within 30 s: {error}")
        }
    }
}

/// Sends `count` requests for `path`, `parallel` at a time over HTTP/2, and
/// returns each status (0 for a request that got no answer).
async fn burst(ip: &str, ca: &Path, path: &str, count: usize, parallel: usize) -> Vec<u16> {
    let resolve = format!("{HOST}:443:{ip}");
    let url = format!("https://{HOST}{path}");
    let output = tokio::process::Command::new("curl")
        .args([
            "--silent",
            "--max-time",
            "20",
            "--parallel",
            "--parallel-immediate",
        ])
        .args(["--parallel-max", &parallel.to_string()])
        .args(["--resolve", &resolve, "--cacert"])
        .arg(ca)
        .args(["--write-out", "%{http_code}\\n"])
        .args(std::iter::repeat_n(["--output", "/dev/null", url.as_str()], count).flatten())
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl runs (Debian's curl package)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| l.trim().parse().unwrap_or(0))
        .collect()
}

#[tokio::test]
async fn real_node_serves_a_production_stack_over_tls_with_its_limits_and_sale_floor() {
    within_namespace("node-prod", LIMIT, |client, namespace| async move {
        ensure_crd(&client).await;
        let _operator = Operator::start(&client, &namespace, Scope::ClusterRole).await;

        // A real certificate for both hosts, stored before the stack asks for it.
        let dir = TempDir::new(&namespace);
        self_signed_cert(&dir.0, &[HOST, WWW_HOST]);
        let (crt, key) = (dir.0.join("tls.crt"), dir.0.join("tls.key"));
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": TLS_SECRET},
            "type": "kubernetes.io/tls",
            "stringData": {
                "tls.crt": std::fs::read_to_string(&crt).expect("the certificate"),
                "tls.key": std::fs::read_to_string(&key).expect("the key"),
            },
        }))
        .expect("a Secret");
        Api::<Secret>::namespaced(client.clone(), &namespace)
            .create(&PostParams::default(), &secret)
            .await
            .unwrap_or_else(|e| panic!("cannot create the TLS Secret: {e}"));

        // The administrator's desk is one pod: its address alone is allowed.
        let admin_ip = start_tools_pod(&client, &namespace, ADMIN_POD)
            .await
            .status
            .and_then(|s| s.pod_ip)
            .expect("the admin pod has an address");
        let now = jiff::Timestamp::now();
        let yaml = production_yaml(
            &format!("{admin_ip}/32"),
            &rfc3339(now - jiff::SignedDuration::from_secs(60)),
            &rfc3339(now + jiff::SignedDuration::from_secs(30 * 60)),
        );
        let ready = stack::deploy(&client, stack_from_yaml(&yaml, &namespace)).await;
        assert_eq!(ready.name_any(), NAME);

        // The scaling schedule is in force: the autoscaler's floor is the sale's,
        // and that many WAS pods run and are ready on the node.
        let was = format!("{NAME}-was");
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &namespace);
        wait::until(
            &hpas,
            &was,
            Duration::from_secs(60),
            |h: Option<&HorizontalPodAutoscaler>| {
                h.and_then(|h| h.spec.as_ref()?.min_replicas) == Some(SALE_FLOOR)
            },
        )
        .await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
        wait::until(
            &deployments,
            &was,
            Duration::from_secs(120),
            |d: Option<&Deployment>| {
                d.and_then(|d| d.status.as_ref()?.ready_replicas)
                    .is_some_and(|r| r >= SALE_FLOOR)
            },
        )
        .await;
        let was_pods = running_pods(
            &client,
            &namespace,
            &format!("app.kubernetes.io/instance={NAME},app.kubernetes.io/component=was"),
        )
        .await;
        let ready_was = was_pods
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|c| !c.is_empty() && c.iter().all(|c| c.ready))
            })
            .count();
        assert!(
            ready_was >= SALE_FLOOR as usize,
            "the sale's floor of {SALE_FLOOR} WAS pods: {ready_was} running and ready"
        );

        // Every pod runs, in a namespace that enforces the restricted profile.
        let tiers = assert_every_pod_runs(&client, &namespace).await;
        assert_eq!(tiers, ["cache", "database", "proxy", "was"]);

        // The backup schedule is in place, in its time zone.
        let cronjob = Api::<CronJob>::namespaced(client.clone(), &namespace)
            .get(&format!("{NAME}-database-backup"))
            .await
            .unwrap_or_else(|e| panic!("the backup CronJob: {e}"));
        let schedule = cronjob.spec.expect("the CronJob has a spec");
        assert_eq!(schedule.schedule, "0 3 * * *", "the backup schedule");
        assert_eq!(schedule.time_zone.as_deref(), Some("Asia/Seoul"));

        let ip = service_ip(&client, &namespace, &format!("{NAME}-proxy")).await;

        // HTTPS with HTTP/2, the certificate checked for the host, and HSTS.
        let h2 = https(&ip, &crt, "/episodes", &["--http2"]).await;
        assert_eq!(h2.status, 200, "HTTPS with HTTP/2: {h2:?}");
        assert_eq!(h2.version, "HTTP/2", "ALPN chose HTTP/2: {h2:?}");
        assert!(
            h2.header("strict-transport-security")
                .is_some_and(|v| v.starts_with("max-age=31536000")),
            "HSTS: {:?}",
            h2.headers
        );
        let www = curl(&[
            "--resolve",
            &format!("{WWW_HOST}:443:{ip}"),
            "--cacert",
            &crt.to_string_lossy(),
            &format!("https://{WWW_HOST}/healthz"),
        ])
        .await;
        assert_eq!(
            www.status, 200,
            "the second host, on the same certificate: {www:?}"
        );

        // TLS 1.2 and 1.3 are offered, nothing older. The client offers TLS 1.1 at
        // security level 0, so that the refusal is the server's.
        let tls12 = https(&ip, &crt, "/healthz", &["--tlsv1.2", "--tls-max", "1.2"]).await;
        assert_eq!(tls12.status, 200, "TLS 1.2: {tls12:?}");
        let tls13 = https(&ip, &crt, "/healthz", &["--tlsv1.3"]).await;
        assert_eq!(tls13.status, 200, "TLS 1.3: {tls13:?}");
        for (min, max) in [("--tlsv1.1", "1.1"), ("--tlsv1.0", "1.0")] {
            let old = https(
                &ip,
                &crt,
                "/healthz",
                &[min, "--tls-max", max, "--ciphers", "DEFAULT@SECLEVEL=0"],
            )
            .await;
            assert_eq!(old.status, 0, "TLS {max} must be refused: {old:?}");
            assert!(
                old.stderr.contains("alert protocol version"),
                "TLS {max} is refused by the server's protocol_version alert: {}",
                old.stderr
            );
        }

        // Plain HTTP redirects to HTTPS, keeping host and path.
        let plain = curl(&[
            "--header",
            &format!("Host: {HOST}"),
            &format!("http://{ip}/episodes?page=2"),
        ])
        .await;
        assert_eq!(plain.status, 308, "plain HTTP redirects: {plain:?}");
        assert_eq!(
            plain.header("location"),
            Some(format!("https://{HOST}/episodes?page=2").as_str())
        );

        // A WebSocket through nginx to the WAS and back.
        let message = "half-price sale starts now";
        let (head, echoed) = websocket_echo(&ip, &crt, message).await;
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "the upgrade is accepted: {head}"
        );
        let accept = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("sec-websocket-accept"))
            .map(|(_, v)| v.trim().to_string());
        assert_eq!(accept.as_deref(), Some(WS_ACCEPT), "the accept key: {head}");
        assert_eq!(
            String::from_utf8_lossy(&echoed),
            message,
            "the echoed message"
        );

        // The admin paths: 403 from this machine (the node's address), served to
        // the allowed pod.
        for path in ["/admin", "/admin/users", "/manage", "/manage/episodes"] {
            let outside = https(&ip, &crt, path, &[]).await;
            assert_eq!(
                outside.status, 403,
                "{path} from outside the allow-list: {outside:?}"
            );
        }
        let admin = https_from_admin_pod(&namespace, &ip, "/admin").await;
        assert_eq!(
            admin, "200",
            "/admin from the allowed pod reaches the WAS's admin page"
        );
        for path in ["/admin/users", "/manage", "/manage/episodes"] {
            let inside = https_from_admin_pod(&namespace, &ip, path).await;
            assert!(
                inside != "403" && inside != "000",
                "{path} from the allowed pod got {inside}"
            );
        }

        // Beyond 5 requests a second and a burst of 10, nginx answers 429.
        let statuses = burst(&ip, &crt, "/healthz", 80, 20).await;
        assert_eq!(
            statuses.len(),
            80,
            "every request of the burst answered: {statuses:?}"
        );
        let served = statuses.iter().filter(|s| **s == 200).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert!(
            served > 0,
            "the first requests of the burst are served: {statuses:?}"
        );
        assert!(
            limited > 0,
            "requests beyond the rate get 429: {statuses:?}"
        );
        assert_eq!(
            served + limited,
            statuses.len(),
            "only 200 and 429: {statuses:?}"
        );
    })
    .await;
}
