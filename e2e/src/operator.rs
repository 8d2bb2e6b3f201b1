//! The real operator process, run as a ServiceAccount that holds exactly the RBAC
//! role `webtoon-operator rbac` generates, watching only the scenario's namespace.
//!
//! Running it with the generated role rather than as the admin is what lets a
//! scenario prove the role is enough: a 403 anywhere, in the operator's log or in
//! the audit log for its user, fails the scenario.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use kube::{Client, Resource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use webtoon_operator::controller::rbac;

use crate::audit::{AuditLog, Mark, service_account_user};

// The same port choice as the tests below the cluster, whose servers share the machine.
#[path = "../../tests/common/listen_port.rs"]
mod listen_port;
use listen_port::free_port;

/// Environment variable naming the operator binary.
pub const OPERATOR_BIN_ENV: &str = "WEBTOON_OPERATOR_BIN";

/// Name of the operator's ServiceAccount in the scenario namespace.
pub const SERVICE_ACCOUNT: &str = "webtoon-operator";

/// Field manager of the suite's own writes, so they never pass for the operator's.
pub use crate::crd::FIELD_MANAGER as E2E_MANAGER;

/// Which role the operator's ServiceAccount is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `webtoon-operator rbac`: the ClusterRole, bound by a ClusterRoleBinding.
    ClusterRole,
    /// The ClusterRole, with `run` watching every namespace rather than the account's
    /// own: the operator as a cluster installs it (the scale benchmark).
    AllNamespaces,
    /// `webtoon-operator rbac --namespace NS`: a Role in the scenario namespace.
    NamespaceRole,
    /// What the Helm chart installed with `watchNamespace` set to the scenario's
    /// namespace and `serviceAccount.name` [`SERVICE_ACCOUNT`]: the fixture creates no
    /// account or role, and `run` gets the chart's own arguments.
    Chart,
}

/// A running operator; killed when dropped.
pub struct Operator {
    namespace: String,
    scope: Scope,
    /// Flags added to `run`.
    extra_args: Vec<String>,
    user: String,
    binary: PathBuf,
    dir: PathBuf,
    kubeconfig: PathBuf,
    log: PathBuf,
    metrics_port: u16,
    audit: Option<AuditLog>,
    started: Option<Mark>,
    child: Option<Child>,
    checked: bool,
}

/// The operator binary from `$WEBTOON_OPERATOR_BIN`; panics with what to set.
pub fn operator_binary() -> PathBuf {
    let Some(path) = std::env::var_os(OPERATOR_BIN_ENV) else {
        panic!(
            "set {OPERATOR_BIN_ENV} to the operator binary (build it with `cargo build`: target/debug/webtoon-operator)"
        );
    };
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{OPERATOR_BIN_ENV}={} is not a file: build it with `cargo build`",
        path.display()
    );
    path
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a well-formed object literal")
}

impl Operator {
    /// Creates the ServiceAccount in `namespace`, applies and binds the generated
    /// role, writes a kubeconfig with a token of that account, and starts
    /// `webtoon-operator run --namespace NAMESPACE` with it (without `--namespace`
    /// under [`Scope::AllNamespaces`]), waiting until it watches.
    pub async fn start(client: &Client, namespace: &str, scope: Scope) -> Operator {
        Self::start_with(client, namespace, scope, &[]).await
    }

    /// [`Operator::start`] with more flags for `run`, such as `--leader-elect`.
    pub async fn start_with(
        client: &Client,
        namespace: &str,
        scope: Scope,
        extra_args: &[&str],
    ) -> Operator {
        let binary = operator_binary();
        // The audit log is optional here so that scenarios that do not need it can
        // run where the server keeps none; those that do call `AuditLog::from_env`.
        let audit = std::env::var_os(crate::audit::AUDIT_LOG_ENV).map(|_| AuditLog::from_env());
        let started = audit.as_ref().map(AuditLog::mark);
        let user = service_account_user(namespace, SERVICE_ACCOUNT);
        grant(client, namespace, scope).await;
        let token = token(client, namespace).await;
        let dir =
            std::env::temp_dir().join(format!("webtoon-e2e-{namespace}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let kubeconfig = dir.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &token);
        let log = dir.join("operator.log");
        let mut operator = Operator {
            namespace: namespace.to_string(),
            scope,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            user,
            binary,
            dir,
            kubeconfig,
            log,
            metrics_port: 0,
            audit,
            started,
            child: None,
            checked: false,
        };
        operator.spawn().await;
        operator
    }

    /// `system:serviceaccount:NS:webtoon-operator`, the user the audit log names.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The audit log mark taken before the operator's account existed.
    pub fn started(&self) -> Option<Mark> {
        self.started
    }

    /// Everything the operator printed so far, over every restart.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The port of its /metrics, /healthz and /readyz server.
    pub fn metrics_port(&self) -> u16 {
        self.metrics_port
    }

    async fn spawn(&mut self) {
        self.metrics_port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()));
        let stderr = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot share {}: {e}", self.log.display()));
        let mut command = Command::new(&self.binary);
        command.arg("run");
        if matches!(self.scope, Scope::ClusterRole | Scope::NamespaceRole) {
            command.args(["--namespace", &self.namespace]);
        }
        let child = command
            .args(&self.extra_args)
            .arg("--metrics-address")
            .arg(format!("127.0.0.1:{}", self.metrics_port))
            .env("KUBECONFIG", &self.kubeconfig)
            .env(
                "RUST_LOG",
                std::env::var("WEBTOON_E2E_OPERATOR_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        self.wait_until_watching().await;
    }

    /// Waits until the operator's /readyz says it watches, or panics with its log.
    async fn wait_until_watching(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        // A process port, not an API object: nothing to watch but the answer itself.
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        loop {
            ticks.tick().await;
            self.assert_alive();
            if let Some((200, _)) = http_get(self.metrics_port, "/readyz").await {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the operator did not become ready within 60 s; its log:\n{}",
                    self.log()
                );
            }
        }
    }

    /// Panics with the operator's log when its process has exited.
    pub fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!(
                "the operator exited with {status}; its log:\n{}",
                self.log()
            );
        }
    }

    /// Kills the process with SIGKILL, as a node failure or the OOM killer would.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Err(e) = child.start_kill() {
                eprintln!("cannot kill the operator: {e}");
            }
            let _ = child.wait().await;
        }
    }

    /// Asks the process to stop with SIGTERM, as the kubelet does, and waits until
    /// it has exited.
    pub async fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let sent = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
                assert!(
                    sent.is_ok_and(|s| s.success()),
                    "cannot send SIGTERM to the operator"
                );
            }
            let _ = child.wait().await;
        }
    }

    /// Kills the process and starts it again with the same account and flags.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    /// One sample of a metric of /metrics, summed over its labels, or `None` when the
    /// metrics cannot be read or do not hold it.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let (code, body) = http_get(self.metrics_port, "/metrics").await?;
        if code != 200 {
            return None;
        }
        let mut sum = None;
        for line in body.lines() {
            let Some(rest) = line.strip_prefix(name) else {
                continue;
            };
            if !(rest.starts_with(' ') || rest.starts_with('{')) {
                continue;
            }
            if let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
                *sum.get_or_insert(0.0) += value;
            }
        }
        sum
    }

    /// What `/readyz` answers, or `None` when it cannot be read.
    pub async fn readyz(&self) -> Option<String> {
        http_get(self.metrics_port, "/readyz")
            .await
            .map(|(_, body)| body)
    }

    /// `webtoon_reconciles_total`, or `None` when the metrics cannot be read.
    pub async fn reconciles(&self) -> Option<u64> {
        self.metric("webtoon_reconciles_total")
            .await
            .map(|v| v as u64)
    }

    /// Waits until at least `count` reconciles have started and the operator has
    /// had `settle` without starting another, so the last one finished.
    pub async fn wait_for_reconciles(&self, count: u64, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticks = tokio::time::interval(Duration::from_millis(200));
        loop {
            ticks.tick().await;
            let seen = self.reconciles().await.unwrap_or(0);
            if seen >= count {
                return seen;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the operator started {seen} reconciles, not {count}, within {timeout:?}; its log:\n{}",
                    self.log()
                );
            }
        }
    }

    /// Panics when the operator's log or the audit log since it started shows a
    /// request refused with 403 Forbidden.
    pub fn assert_no_forbidden(&mut self) {
        self.assert_no_forbidden_but(None);
    }

    /// [`Operator::assert_no_forbidden`], except for the resource (`persistentvolumeclaims`,
    /// say) that an admission plugin, not RBAC, refuses with 403 on purpose.
    pub fn assert_no_forbidden_but(&mut self, admission_refused: Option<&str>) {
        self.checked = true;
        let log = self.log();
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("forbidden") || l.contains("code: 403"))
            .collect();
        assert!(
            refused.is_empty(),
            "the operator was refused (403) with the generated role:\n{}",
            refused.join("\n")
        );
        if let (Some(audit), Some(mark)) = (&self.audit, self.started) {
            let requests = audit.requests_since(mark, &self.user);
            let forbidden: Vec<String> = requests
                .forbidden()
                .iter()
                .filter(|e| Some(e.resource().as_str()) != admission_refused)
                .map(|e| e.to_string())
                .collect();
            assert!(
                forbidden.is_empty(),
                "the audit log shows requests of {} refused with 403:\n{}",
                self.user,
                forbidden.join("\n")
            );
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if !self.checked && !std::thread::panicking() {
            self.assert_no_forbidden();
        }
        if std::thread::panicking() {
            eprintln!("operator log ({}):\n{}", self.log.display(), self.log());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1: the status code and body.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())?;
    Some((code, body))
}

/// Creates the ServiceAccount and binds the generated role to it, then waits until
/// the authorizer grants every permission the role lists.
async fn grant(client: &Client, namespace: &str, scope: Scope) {
    if scope == Scope::Chart {
        wait_until_granted(client, namespace, scope).await;
        return;
    }
    let params = PatchParams::apply(E2E_MANAGER).force();
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let account: ServiceAccount = from_json(serde_json::json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": SERVICE_ACCOUNT, "namespace": namespace},
    }));
    accounts
        .patch(SERVICE_ACCOUNT, &params, &Patch::Apply(&account))
        .await
        .unwrap_or_else(|e| panic!("cannot create ServiceAccount {SERVICE_ACCOUNT}: {e}"));
    let subject = serde_json::json!([{
        "kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace,
    }]);
    match scope {
        Scope::ClusterRole | Scope::AllNamespaces => {
            // Cluster-scoped, so the namespace's deletion would not remove them: the
            // namespace owns them and the garbage collector does.
            let ns = Api::<Namespace>::all(client.clone())
                .get(namespace)
                .await
                .unwrap_or_else(|e| panic!("cannot read namespace {namespace}: {e}"));
            let owner = ns.controller_owner_ref(&()).map(|mut o| {
                o.controller = None;
                o.block_owner_deletion = None;
                o
            });
            let name = format!("webtoon-operator-e2e-{namespace}");
            let mut role: ClusterRole = generated_role(&[]).await;
            role.metadata.name = Some(name.clone());
            role.metadata.owner_references = owner.clone().map(|o| vec![o]);
            Api::<ClusterRole>::all(client.clone())
                .patch(&name, &params, &Patch::Apply(&role))
                .await
                .unwrap_or_else(|e| panic!("cannot apply ClusterRole {name}: {e}"));
            let mut binding: ClusterRoleBinding = from_json(serde_json::json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": subject,
            }));
            binding.metadata.owner_references = owner.map(|o| vec![o]);
            Api::<ClusterRoleBinding>::all(client.clone())
                .patch(&name, &params, &Patch::Apply(&binding))
                .await
                .unwrap_or_else(|e| panic!("cannot apply ClusterRoleBinding {name}: {e}"));
        }
        Scope::Chart => {}
        Scope::NamespaceRole => {
            let role: Role = generated_role(&["--namespace", namespace]).await;
            let name = role.metadata.name.clone().unwrap_or_default();
            Api::<Role>::namespaced(client.clone(), namespace)
                .patch(&name, &params, &Patch::Apply(&role))
                .await
                .unwrap_or_else(|e| panic!("cannot apply Role {name}: {e}"));
            let binding: RoleBinding = from_json(serde_json::json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": subject,
            }));
            Api::<RoleBinding>::namespaced(client.clone(), namespace)
                .patch(&name, &params, &Patch::Apply(&binding))
                .await
                .unwrap_or_else(|e| panic!("cannot apply RoleBinding {name}: {e}"));
        }
    }
    wait_until_granted(client, namespace, scope).await;
}

/// The role exactly as `webtoon-operator rbac ARGS` prints it.
async fn generated_role<T: serde::de::DeserializeOwned>(args: &[&str]) -> T {
    let binary = operator_binary();
    let output = Command::new(&binary)
        .arg("rbac")
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {} rbac: {e}", binary.display()));
    assert!(
        output.status.success(),
        "{} rbac {args:?} failed: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    serde_saphyr::from_str(&text)
        .unwrap_or_else(|e| panic!("`webtoon-operator rbac {args:?}` printed no role: {e}\n{text}"))
}

/// Waits until a SubjectAccessReview grants the account every permission of the
/// role: the authorizer learns bindings from its own watch, so a process started
/// at once could be refused its first list.
async fn wait_until_granted(client: &Client, namespace: &str, scope: Scope) {
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let user = service_account_user(namespace, SERVICE_ACCOUNT);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut ticks = tokio::time::interval(Duration::from_millis(200));
    for permission in rbac::PERMISSIONS {
        if permission.cluster_scoped && matches!(scope, Scope::NamespaceRole | Scope::Chart) {
            continue;
        }
        let (resource, subresource) = match permission.resource.split_once('/') {
            Some((r, s)) => (r, Some(s.to_string())),
            None => (permission.resource, None),
        };
        for verb in permission.verbs {
            loop {
                ticks.tick().await;
                let review = SubjectAccessReview {
                    spec: SubjectAccessReviewSpec {
                        user: Some(user.clone()),
                        groups: Some(vec![
                            "system:serviceaccounts".into(),
                            format!("system:serviceaccounts:{namespace}"),
                            "system:authenticated".into(),
                        ]),
                        resource_attributes: Some(ResourceAttributes {
                            group: Some(permission.group.to_string()),
                            resource: Some(resource.to_string()),
                            subresource: subresource.clone(),
                            verb: Some(verb.to_string()),
                            // Under AllNamespaces every namespace: the empty namespace.
                            namespace: (!permission.cluster_scoped
                                && scope != Scope::AllNamespaces)
                                .then(|| namespace.to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let allowed = reviews
                    .create(&PostParams::default(), &review)
                    .await
                    .ok()
                    .and_then(|r| r.status)
                    .is_some_and(|s| s.allowed);
                if allowed {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{user} was not granted {verb} on {} within 30 s of binding the generated role",
                    permission.resource
                );
            }
        }
    }
}

/// A token of the operator's ServiceAccount from the TokenRequest API.
async fn token(client: &Client, namespace: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            // Longer than the longest scenario or benchmark run.
            expiration_seconds: Some(4 * 3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let issued = accounts
        .create_token_request(SERVICE_ACCOUNT, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("cannot get a token for {SERVICE_ACCOUNT}: {e}"));
    match issued.status {
        Some(status) if !status.token.is_empty() => status.token,
        _ => panic!("the TokenRequest for {SERVICE_ACCOUNT} returned no token"),
    }
}

/// Writes a kubeconfig with the admin kubeconfig's current cluster (server and CA)
/// and the ServiceAccount's token.
fn write_kubeconfig(path: &Path, token: &str) {
    let admin = Kubeconfig::read()
        .unwrap_or_else(|e| panic!("cannot read the admin kubeconfig from $KUBECONFIG: {e}"));
    let context_name = admin
        .current_context
        .clone()
        .expect("the admin kubeconfig names a current context");
    let context = admin
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.clone())
        .unwrap_or_else(|| panic!("the admin kubeconfig has no context {context_name}"));
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.clone())
        .unwrap_or_else(|| panic!("the admin kubeconfig has no cluster {}", context.cluster));
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": SERVICE_ACCOUNT}}],
        "current-context": "e2e",
    });
    let text = serde_json::to_string_pretty(&config).expect("a kubeconfig as JSON");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
