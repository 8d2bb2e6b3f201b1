//! Reads the API server's audit log (JSON lines of `audit.k8s.io/v1` Events): which
//! requests one user sent between two points, by verb and resource, and which of
//! them were refused.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Environment variable naming the audit log.
pub const AUDIT_LOG_ENV: &str = "WEBTOON_E2E_AUDIT_LOG";

/// Verbs that change an object.
pub const WRITE_VERBS: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];

/// The user name of a ServiceAccount, as the audit log records it.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The API server's audit log.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

/// A point in the audit log: requests logged after it are "since" it.
#[derive(Clone, Copy, Debug)]
pub struct Mark {
    offset: u64,
}

/// One completed request.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// `RequestReceived`, `ResponseStarted`, `ResponseComplete` or `Panic`.
    #[serde(default)]
    pub stage: String,
    /// The Kubernetes verb: get, list, watch, create, patch, ...
    #[serde(default)]
    pub verb: String,
    /// The request path and query.
    #[serde(default)]
    pub request_uri: String,
    /// Who sent it.
    #[serde(default)]
    pub user: User,
    /// The object it was about.
    #[serde(default)]
    pub object_ref: Option<ObjectRef>,
    /// The response's status, when there is one.
    #[serde(default)]
    pub response_status: Option<ResponseStatus>,
    /// The field manager, for patches, as the user agent reports it.
    #[serde(default)]
    pub user_agent: String,
}

/// The user of a request.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct User {
    /// `system:serviceaccount:NS:NAME`, `kubernetes-admin`, ...
    #[serde(default)]
    pub username: String,
    /// What the authenticator adds, such as the token's
    /// `authentication.kubernetes.io/credential-id` (one per issued token).
    #[serde(default)]
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl User {
    /// The credential the request was made with: one per issued token, so two
    /// processes of one ServiceAccount tell apart.
    pub fn credential(&self) -> Option<&str> {
        self.extra
            .get("authentication.kubernetes.io/credential-id")
            .and_then(|ids| ids.first())
            .map(String::as_str)
    }
}

/// The object of a request.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ObjectRef {
    /// Plural resource name.
    #[serde(default)]
    pub resource: String,
    /// Subresource such as `status`.
    #[serde(default)]
    pub subresource: Option<String>,
    /// Namespace, for namespaced objects.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Name, when the request names one object.
    #[serde(default)]
    pub name: Option<String>,
}

/// The response of a request.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ResponseStatus {
    /// HTTP status code.
    #[serde(default)]
    pub code: Option<u16>,
}

impl Entry {
    /// `resource` or `resource/subresource`.
    pub fn resource(&self) -> String {
        match &self.object_ref {
            Some(ObjectRef {
                resource,
                subresource: Some(sub),
                ..
            }) => format!("{resource}/{sub}"),
            Some(r) => r.resource.clone(),
            None => String::new(),
        }
    }

    /// The object's name, or an empty string.
    pub fn name(&self) -> &str {
        self.object_ref
            .as_ref()
            .and_then(|r| r.name.as_deref())
            .unwrap_or("")
    }

    /// The response code, 0 when unknown.
    pub fn code(&self) -> u16 {
        self.response_status
            .as_ref()
            .and_then(|s| s.code)
            .unwrap_or(0)
    }

    /// Whether the request changes an object.
    pub fn is_write(&self) -> bool {
        WRITE_VERBS.contains(&self.verb.as_str())
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} -> {} ({})",
            self.verb,
            self.resource(),
            self.name(),
            self.code(),
            self.request_uri
        )
    }
}

/// The completed requests of one user between two marks.
#[derive(Clone, Debug, Default)]
pub struct Requests {
    /// Every request, in log order.
    pub entries: Vec<Entry>,
}

impl Requests {
    /// Requests per `(verb, resource)`.
    pub fn by_verb_and_resource(&self) -> BTreeMap<(String, String), usize> {
        let mut counts = BTreeMap::new();
        for entry in &self.entries {
            *counts
                .entry((entry.verb.clone(), entry.resource()))
                .or_insert(0) += 1;
        }
        counts
    }

    /// How many requests had this verb on this resource (`resource[/subresource]`).
    pub fn count(&self, verb: &str, resource: &str) -> usize {
        self.entries
            .iter()
            .filter(|e| e.verb == verb && e.resource() == resource)
            .count()
    }

    /// Requests that changed something.
    pub fn writes(&self) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.is_write()).collect()
    }

    /// Requests the server refused with 403 Forbidden.
    pub fn forbidden(&self) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.code() == 403).collect()
    }
}

impl AuditLog {
    /// The audit log named by `$WEBTOON_E2E_AUDIT_LOG`; panics with what to set when it is missing.
    pub fn from_env() -> Self {
        let Some(path) = std::env::var_os(AUDIT_LOG_ENV) else {
            panic!(
                "this scenario reads the API server's audit log: set {AUDIT_LOG_ENV} to its path (local cluster: /work/main/.cluster/audit.log)"
            );
        };
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{AUDIT_LOG_ENV}={} is not a readable file",
            path.display()
        );
        Self { path }
    }

    /// The end of the log now: later requests are after this mark.
    pub fn mark(&self) -> Mark {
        let offset = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        Mark { offset }
    }

    /// Completed requests of `user` logged after `since`. A log that shrank (rotated)
    /// is read from its start.
    pub fn requests_since(&self, since: Mark, user: &str) -> Requests {
        let text = self.read_from(since.offset);
        let entries = text
            .lines()
            .filter(|line| line.contains(user))
            .filter_map(|line| serde_json::from_str::<Entry>(line).ok())
            .filter(|e| e.user.username == user)
            // Each request also logs RequestReceived (and ResponseStarted for
            // watches): counting completions counts every request once.
            .filter(|e| e.stage == "ResponseComplete" || e.stage == "Panic")
            .collect();
        Requests { entries }
    }

    /// Waits until the requests of `user` since `since` satisfy `done`, re-reading
    /// the log as it grows; panics after `timeout` with what the log held.
    pub async fn wait_for(
        &self,
        since: Mark,
        user: &str,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&Requests) -> bool,
    ) -> Requests {
        let deadline = tokio::time::Instant::now() + timeout;
        // The log is a file, not an API: re-reading it as it grows is the watch.
        let mut ticks = tokio::time::interval(Duration::from_millis(250));
        loop {
            ticks.tick().await;
            let requests = self.requests_since(since, user);
            if done(&requests) {
                return requests;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the audit log did not show {what} for {user} within {timeout:?}; it shows {:?}",
                    requests.by_verb_and_resource()
                );
            }
        }
    }

    /// The complete lines after `offset`.
    fn read_from(&self, offset: u64) -> String {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return String::new();
        };
        let len = file.metadata().map_or(0, |m| m.len());
        let start = if len < offset { 0 } else { offset };
        if file.seek(SeekFrom::Start(start)).is_err() {
            return String::new();
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return String::new();
        }
        // The server may be half way through a line: leave it for the next read.
        let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        String::from_utf8_lossy(&bytes[..complete]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_completed_requests_of_one_user() {
        let dir = std::env::temp_dir().join(format!("webtoon-e2e-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("audit.log");
        let line = |stage: &str, user: &str, verb: &str, resource: &str, sub: &str, code: u16| {
            let sub = if sub.is_empty() {
                String::new()
            } else {
                format!(r#","subresource":"{sub}""#)
            };
            format!(
                r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","stage":"{stage}","verb":"{verb}","requestURI":"/x","user":{{"username":"{user}"}},"objectRef":{{"resource":"{resource}","namespace":"ns","name":"a"{sub}}},"responseStatus":{{"code":{code}}}}}"#
            ) + "\n"
        };
        std::fs::write(
            &path,
            line("ResponseComplete", "me", "patch", "deployments", "", 200),
        )
        .expect("write the log");
        let log = AuditLog { path: path.clone() };
        let mark = log.mark();
        let more = [
            line("RequestReceived", "me", "patch", "deployments", "", 0),
            line("ResponseComplete", "me", "patch", "deployments", "", 200),
            line(
                "ResponseComplete",
                "me",
                "patch",
                "webtoonstacks",
                "status",
                200,
            ),
            line("ResponseComplete", "me", "get", "secrets", "", 403),
            line("ResponseComplete", "someone", "delete", "secrets", "", 200),
            "{\"kind\":\"Event\",\"stage\":\"Respo".to_string(),
        ]
        .concat();
        let mut text = std::fs::read_to_string(&path).expect("read the log");
        text.push_str(&more);
        std::fs::write(&path, text).expect("write the log");
        let requests = log.requests_since(mark, "me");
        assert_eq!(requests.entries.len(), 3);
        assert_eq!(requests.count("patch", "deployments"), 1);
        assert_eq!(requests.count("patch", "webtoonstacks/status"), 1);
        assert_eq!(requests.writes().len(), 2);
        assert_eq!(requests.forbidden().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
