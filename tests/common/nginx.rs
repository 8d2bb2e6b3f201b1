//! Real processes around the rendered nginx.conf: nginx itself, self-signed
//! certificates, and clients (curl, openssl, wrk). Everything listens on 127.0.0.1,
//! on ports the kernel hands out, so tests can run in parallel; every process is
//! stopped when its handle is dropped, also when a test fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use webtoon_operator::render::proxy::nginx_conf::{NginxLayout, Upstream};

use super::process::{Guard, free_port, terminate, wait_for_port};
use super::test_was::TestWas;

/// The nginx binary: `$WEBTOON_TEST_NGINX`, or Debian's.
pub fn nginx_binary() -> String {
    std::env::var("WEBTOON_TEST_NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".to_string())
}

/// An nginx of 1.27.3 or newer, whose upstreams can `resolve`: the one
/// `tests/build-nginx.sh` builds, named by `$WEBTOON_TEST_NGINX_RESOLVE`.
pub fn resolving_nginx_binary() -> String {
    std::env::var("WEBTOON_TEST_NGINX_RESOLVE").unwrap_or_else(|_| {
        panic!(
            "WEBTOON_TEST_NGINX_RESOLVE is not set: run the tests with tests/run.sh, or \
             set it to the path tests/build-nginx.sh prints"
        )
    })
}

/// The listen ports of one nginx instance.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// Plain HTTP.
    pub http: u16,
    /// HTTPS.
    pub https: u16,
    /// Health and status server.
    pub health: u16,
}

impl Ports {
    /// Three free ports.
    pub fn free() -> Self {
        Ports {
            http: free_port(),
            https: free_port(),
            health: free_port(),
        }
    }
}

/// The layout of a test nginx: everything under `dir`, listening on `ports` of
/// 127.0.0.1, with the WAS at fixed `upstreams` (`host:port`).
pub fn local_layout(dir: &Path, ports: &Ports, upstreams: &[String]) -> NginxLayout {
    let d = dir.display();
    NginxLayout {
        http_listen: format!("127.0.0.1:{}", ports.http),
        https_listen: format!("127.0.0.1:{}", ports.https),
        health_listen: format!("127.0.0.1:{}", ports.health),
        upstream: Upstream::Static(upstreams.to_vec()),
        tls_certificate: format!("{d}/tls.crt"),
        tls_certificate_key: format!("{d}/tls.key"),
        images_root: format!("{d}/images"),
        app_root: format!("{d}/app"),
        cache_dir: format!("{d}/cache"),
        temp_dir: format!("{d}"),
        pid_file: format!("{d}/nginx.pid"),
        mime_types: "/etc/nginx/mime.types".to_string(),
        error_log: format!("{d}/error.log warn"),
        access_log: format!("{d}/access.log"),
        metrics_log: None,
        // Debian's nginx 1.22 predates the `http2` directive (1.25.1).
        http2_directive: false,
    }
}

/// Writes a self-signed certificate for `hosts` to `dir/tls.crt` and `dir/tls.key`.
pub fn self_signed_cert(dir: &Path, hosts: &[&str]) {
    let san: Vec<String> = hosts.iter().map(|h| format!("DNS:{h}")).collect();
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", &format!("/CN={}", hosts[0])])
        .args(["-addext", &format!("subjectAltName={}", san.join(","))])
        .arg("-keyout")
        .arg(dir.join("tls.key"))
        .arg("-out")
        .arg(dir.join("tls.crt"))
        .output()
        .expect("openssl runs (install openssl)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running nginx (master and workers), stopped when dropped.
pub struct Nginx {
    child: Child,
    /// Its prefix directory, holding the configuration and logs.
    pub dir: PathBuf,
    /// Its listen ports.
    pub ports: Ports,
}

impl Nginx {
    /// Writes `conf` to `dir/nginx.conf`, starts nginx in the foreground and waits
    /// until its HTTP and health ports accept connections.
    pub fn start(dir: &Path, conf: &str, ports: Ports) -> Nginx {
        Nginx::start_binary(&nginx_binary(), dir, conf, ports)
    }

    /// [`Nginx::start`] with the nginx executable at `binary`.
    pub fn start_binary(binary: &str, dir: &Path, conf: &str, ports: Ports) -> Nginx {
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("startup.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts (install nginx-light)");
        let mut nginx = Nginx {
            child,
            dir: dir.to_path_buf(),
            ports,
        };
        for port in [ports.http, ports.health] {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if !wait_for_port(addr, Duration::from_secs(10)) {
                let exited = nginx.child.try_wait();
                panic!(
                    "nginx does not listen on {addr} ({exited:?}):\n{}\n{}",
                    nginx.log("startup.log"),
                    nginx.log("error.log")
                );
            }
        }
        nginx
    }

    /// The base URL of plain HTTP.
    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.http)
    }

    /// A log file in the prefix directory, empty when missing.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers; SIGKILL would orphan them.
        terminate(&mut self.child);
    }
}

/// One HTTP response as curl saw it.
#[derive(Debug)]
pub struct Response {
    /// curl's exit code (0 when a response arrived; 52 for an empty reply).
    pub exit: i32,
    /// HTTP status, 0 when none arrived.
    pub status: u16,
    /// Protocol of the status line, such as `HTTP/1.1` or `HTTP/2`.
    pub version: String,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// What curl printed on stderr.
    pub stderr: String,
}

impl Response {
    /// The values of header `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Runs curl with `args` (plus `-sS -i` and a time limit) and parses the response.
pub fn curl(args: &[&str]) -> Response {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl runs (install curl)");
    parse_curl(&out)
}

fn parse_curl(out: &Output) -> Response {
    let raw = &out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default().to_string();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        exit: out.status.code().unwrap_or(-1),
        status,
        version,
        headers,
        body,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What `wrk` reported for one bounded run.
#[derive(Debug, Default)]
pub struct WrkReport {
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub requests_per_sec: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Responses with a status other than 2xx or 3xx.
    pub non_2xx_3xx: u64,
    /// Socket errors: connect, read, write and timeout.
    pub socket_errors: u64,
    /// wrk's whole output.
    pub output: String,
}

impl WrkReport {
    /// Asserts a real load ran (over 1,000 requests) and every request got a 2xx or
    /// 3xx response, with no socket error.
    pub fn assert_no_request_failed(&self) {
        assert!(self.requests > 1_000, "{}", self.output);
        assert_eq!(self.non_2xx_3xx, 0, "{}", self.output);
        assert_eq!(self.socket_errors, 0, "{}", self.output);
    }
}

/// Runs `wrk` for `seconds` with `connections` over 2 threads against `url`,
/// with a `Host` header.
pub fn wrk_command(url: &str, host: &str, connections: u32, seconds: u32) -> Command {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(["--timeout", "5s", "--latency"])
        .args(["-H", &format!("Host: {host}")])
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Parses wrk's report.
pub fn parse_wrk(output: &str) -> WrkReport {
    let mut report = WrkReport {
        output: output.to_string(),
        ..Default::default()
    };
    for line in output.lines() {
        let line = line.trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("99%") {
            report.p99_ms = words.get(1).map(|v| latency_ms(v)).unwrap_or(0.0);
        } else if line.contains("requests in") {
            report.requests = words.first().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if line.starts_with("Requests/sec:") {
            report.requests_per_sec = words.get(1).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        } else if line.starts_with("Non-2xx or 3xx responses:") {
            report.non_2xx_3xx = words.last().and_then(|v| v.parse().ok()).unwrap_or(0);
        } else if line.starts_with("Socket errors:") {
            // "Socket errors: connect 0, read 0, write 0, timeout 0"
            report.socket_errors = line
                .trim_start_matches("Socket errors:")
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        }
    }
    report
}

/// A wrk latency such as `1.25ms`, `830.00us` or `1.02s`, in milliseconds.
fn latency_ms(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().unwrap_or(0.0);
    match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        _ => number,
    }
}

/// Polls until `was` has served a request, or the deadline passes.
pub fn wait_for_traffic(was: &TestWas, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if was.requests() > 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits for a guarded wrk run to exit by itself (it is bounded), asserts it
/// succeeded, and parses its report.
pub fn wait_report(mut guard: Guard) -> WrkReport {
    let mut stdout = String::new();
    if let Some(mut pipe) = guard.0.stdout.take() {
        use std::io::Read;
        pipe.read_to_string(&mut stdout).expect("read wrk output");
    }
    let status = guard.0.wait().expect("wrk exits");
    assert!(status.success(), "wrk failed: {stdout}");
    parse_wrk(&stdout)
}
