//! The proxy's own account of a load run: the access-log lines of the requests that
//! failed, and nginx's error log. They are read from the node's container log files,
//! rotated ones included, because the kubelet rotates a busy container's log during
//! a run and the API serves only the newest file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::node::WrkReport;

/// Where the kubelet links each container's log (`POD_NAMESPACE_CONTAINER-ID.log`).
const CONTAINER_LOGS: &str = "/var/log/containers";

/// The proxy pods of a stack, and the moment from which their log is of interest.
pub struct ProxyLog {
    namespace: String,
    pods: Vec<String>,
    since: Timestamp,
}

impl ProxyLog {
    /// Marks the start of a run: the proxy pods of `stack` from now on.
    pub async fn since_now(client: &Client, namespace: &str, stack: &str) -> ProxyLog {
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let selector =
            format!("app.kubernetes.io/instance={stack},app.kubernetes.io/component=proxy");
        let listed = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap_or_else(|e| panic!("cannot list the proxy pods of {namespace}/{stack}: {e}"));
        ProxyLog {
            namespace: namespace.to_string(),
            pods: listed.items.iter().map(ResourceExt::name_any).collect(),
            since: Timestamp::now(),
        }
    }

    /// Asserts that wrk saw no request fail, with the proxy's account when it did.
    pub async fn assert_no_request_failed(&self, report: &WrkReport) {
        let proxy_side = if report.any_failed() {
            format!("\nthe proxy's account:\n{}", self.failures().await)
        } else {
            String::new()
        };
        report.assert_no_request_failed_given(&proxy_side);
    }

    /// What nginx logged since the start: the failed requests counted by status,
    /// upstream addresses and upstream statuses, then the error log.
    async fn failures(&self) -> String {
        let mut kept = Vec::new();
        for pod in &self.pods {
            for file in log_files(&self.namespace, pod) {
                let text = read_log_file(&file).await;
                kept.extend(
                    text.lines()
                        .filter(|line| logged_at(line).is_some_and(|t| t >= self.since))
                        .filter(|line| is_failure(line))
                        .map(|line| format!("{pod}: {line}")),
                );
            }
        }
        kept.sort_by_key(|line| line.split_once(": ").and_then(|(_, l)| logged_at(l)));
        summary(&kept)
    }
}

/// Every log file of the nginx container of `pod`, the rotated ones included.
fn log_files(namespace: &str, pod: &str) -> Vec<PathBuf> {
    let prefix = format!("{pod}_{namespace}_nginx-");
    let Ok(links) = std::fs::read_dir(CONTAINER_LOGS) else {
        return Vec::new();
    };
    links
        .flatten()
        .filter(|link| link.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|link| std::fs::read_link(link.path()).ok())
        .filter_map(|current| current.parent().map(Path::to_path_buf))
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|files| files.flatten().map(|f| f.path()))
        .collect()
}

/// A log file's text, gunzipped when the kubelet has compressed it.
async fn read_log_file(file: &Path) -> String {
    let output = tokio::process::Command::new("zcat")
        .arg("-f")
        .arg(file)
        .output()
        .await
        .unwrap_or_else(|e| panic!("zcat {}: {e}", file.display()));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// When the runtime wrote a line of the CRI log format (`TIME STREAM TAG LINE`).
fn logged_at(line: &str) -> Option<Timestamp> {
    line.split_whitespace().next()?.parse().ok()
}

/// An access-log line whose status is not 2xx or 3xx, or a line of nginx's error
/// log (the `webtoon` log format puts the status right after the quoted request).
fn is_failure(line: &str) -> bool {
    match access_status(line) {
        Some(status) => !(200..400).contains(&status),
        None => ["[warn]", "[error]", "[crit]", "[alert]", "[emerg]"]
            .iter()
            .any(|level| line.contains(level)),
    }
}

/// The status of an access-log line in the `webtoon` format.
fn access_status(line: &str) -> Option<u16> {
    let after_request = line.split('"').nth(2)?;
    after_request.split_whitespace().next()?.parse().ok()
}

/// The value of `key="..."` in an access-log line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_once(&format!(" {key}=\""))
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or("", |(value, _)| value)
}

fn summary(lines: &[String]) -> String {
    let mut failed: BTreeMap<(u16, &str, &str), (usize, &str, &str)> = BTreeMap::new();
    let mut errors = Vec::new();
    for line in lines {
        match access_status(line) {
            Some(status) => {
                let key = (status, field(line, "ua"), field(line, "us"));
                let entry = failed.entry(key).or_insert((0, line, line));
                entry.0 += 1;
                entry.2 = line;
            }
            None => errors.push(line.as_str()),
        }
    }
    let mut out = String::new();
    for ((status, upstream, upstream_status), (count, first, last)) in &failed {
        out.push_str(&format!(
            "{count} × {status} from upstream [{upstream}] answering [{upstream_status}]\n  first: {first}\n  last:  {last}\n"
        ));
    }
    let shown = errors.len().min(40);
    out.push_str(&format!("{} error-log lines", errors.len()));
    if shown < errors.len() {
        out.push_str(&format!(", the first {shown}"));
    }
    out.push_str(":\n");
    for line in &errors[..shown] {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"2026-11-24T16:00:00.5Z stdout F 10.88.0.1 - - [24/Nov/2026:16:00:00 +0000] "GET /episodes HTTP/1.1" 200 512 "-" "-" rt=0.001 ua="10.88.0.9:8080" us="200" cs=MISS"#;
    const FAILED: &str = r#"2026-11-24T16:00:01.25Z stdout F 10.88.0.1 - - [24/Nov/2026:16:00:01 +0000] "GET /episodes HTTP/1.1" 502 157 "-" "-" rt=0.000 ua="10.88.0.9:8080, 10.88.0.7:8080" us="502, 502" cs=MISS"#;
    const ERROR: &str = "2026-11-24T16:00:01.5Z stderr F 2026/11/24 16:00:01 [error] 7#7: *9 connect() failed (111: Connection refused) while connecting to upstream";

    #[test]
    fn keeps_failed_requests_and_the_error_log_only() {
        assert!(!is_failure(OK));
        assert!(is_failure(FAILED));
        assert!(is_failure(ERROR));
        assert!(!is_failure(
            "2026-11-24T16:00:00Z stderr F 2026/11/24 16:00:00 [notice] 1#1: start worker processes"
        ));
    }

    #[test]
    fn counts_failures_by_status_and_upstream() {
        let lines = [FAILED, FAILED, ERROR].map(String::from);
        let summary = summary(&lines);
        assert!(
            summary.contains(
                "2 × 502 from upstream [10.88.0.9:8080, 10.88.0.7:8080] answering [502, 502]"
            ),
            "{summary}"
        );
        assert!(
            summary.contains("1 error-log lines:\n  2026-11-24T16:00:01.5Z stderr"),
            "{summary}"
        );
    }

    #[test]
    fn reads_the_time_the_runtime_wrote_a_line() {
        let at: Timestamp = "2026-11-24T16:00:01.25Z".parse().unwrap();
        assert_eq!(logged_at(FAILED), Some(at));
        assert_eq!(logged_at("not a log line"), None);
    }
}
