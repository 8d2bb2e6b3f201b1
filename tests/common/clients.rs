//! The programs tests meet a web server with: openssl for a self-signed
//! certificate, curl for one response, wrk for load. The tests below the cluster
//! and the real node's scenarios share them, so both read curl and wrk alike.

use std::path::Path;
use std::process::{Command, Output, Stdio};

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
    let out = curl_command(args)
        .output()
        .expect("curl runs (install curl)");
    parse_curl(&out)
}

/// The curl command that [`curl`] runs, for callers that run it their own way.
pub fn curl_command(args: &[&str]) -> Command {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "10"]).args(args);
    cmd
}

/// The response in the output of a [`curl_command`].
pub fn parse_curl(out: &Output) -> Response {
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

/// The fewest requests a run must complete to count as a real load.
const MIN_REQUESTS: u64 = 1_000;

impl WrkReport {
    /// Asserts a real load ran (over 1,000 requests) and every request got a 2xx or
    /// 3xx response, with no socket error.
    pub fn assert_no_request_failed(&self) {
        self.assert_no_request_failed_given("");
    }

    /// Whether [`Self::assert_no_request_failed`] would fail.
    pub fn any_failed(&self) -> bool {
        self.requests <= MIN_REQUESTS || self.non_2xx_3xx > 0 || self.socket_errors > 0
    }

    /// [`Self::assert_no_request_failed`], printing `server_side` (the server's own
    /// account of the run) with wrk's output when it fails.
    pub fn assert_no_request_failed_given(&self, server_side: &str) {
        assert!(self.requests > MIN_REQUESTS, "{}{server_side}", self.output);
        assert_eq!(self.non_2xx_3xx, 0, "{}{server_side}", self.output);
        assert_eq!(self.socket_errors, 0, "{}{server_side}", self.output);
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
