//! Scale benchmark: ONE real operator process, watching every namespace as a
//! ServiceAccount bound to the generated ClusterRole, against N minimal stacks
//! created at once, each in its own namespace.
//!
//! ```sh
//! e2e/bench/scale.sh                 # N=100: builds, starts a fresh cluster, runs this, stops it
//! e2e/bench/scale.sh --stacks 200
//! ```
//!
//! Run directly it needs `KUBECONFIG` (the admin's), `WEBTOON_OPERATOR_BIN` (a
//! release build) and `WEBTOON_E2E_AUDIT_LOG` (the API server's audit log), and a
//! cluster with room for 6 pods and 1.05 CPU of requests per stack.
//!
//! It measures the time from the first create until every stack reports
//! `Ready=True` (and p50/p90/max of each stack's own create-to-Ready time), the
//! operator's resident memory (VmHWM, VmRSS) and CPU time, its API requests per
//! stack (audit log, by verb) until all are Ready, and its writes in steady state
//! over a window of two resync periods and a margin (`--steady-seconds`).
//!
//! One namespace per stack: a site per tenant namespace is how the operator is
//! meant to be used, and it makes every stack's children, Secrets and
//! NetworkPolicies live apart, so the operator's cluster-wide watches and its
//! per-namespace requests are what is measured, not one crowded namespace.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde::Deserialize;
use webtoon_e2e::audit::{AUDIT_LOG_ENV, WRITE_VERBS, service_account_user};
use webtoon_e2e::operator::{E2E_MANAGER, Operator, SERVICE_ACCOUNT, Scope};
use webtoon_e2e::stack;
use webtoon_operator::api::WebtoonStack;
use webtoon_operator::controller::reconcile::RESYNC;

/// `webtoon_reconcile_errors_total`, over every kind of error.
async fn reconcile_errors(operator: &Operator) -> u64 {
    operator
        .metric("webtoon_reconcile_errors_total")
        .await
        .unwrap_or(0.0) as u64
}

/// Namespace of the operator's ServiceAccount.
const OPERATOR_NAMESPACE: &str = "webtoon-system";
/// Label on every namespace and stack of the benchmark.
const BENCH_LABEL: &str = "webtoon.io/bench";
/// Bound on one API request of the benchmark itself.
const API_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on the set-up: CRD, account, role, operator start.
const SETUP_TIMEOUT: Duration = Duration::from_secs(180);
/// Creates in flight at once: "at once" for the API server, without opening a
/// connection per stack.
const CREATE_CONCURRENCY: usize = 32;

struct Options {
    stacks: usize,
    ready_timeout: Duration,
    steady: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: scale_benchmark [--stacks N] [--ready-timeout SECONDS] [--steady-seconds SECONDS]\n\
         defaults: N=100, ready timeout 300 s + 3 s per stack, steady window 2 x resync ({} s) + 60 s",
        RESYNC.as_secs()
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut stacks = 100usize;
    let mut ready_timeout = None;
    let mut steady = 2 * RESYNC + Duration::from_secs(60);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--stacks" => stacks = value() as usize,
            "--ready-timeout" => ready_timeout = Some(Duration::from_secs(value())),
            "--steady-seconds" => steady = Duration::from_secs(value()),
            _ => usage(),
        }
    }
    if stacks == 0 || stacks > 999 {
        usage();
    }
    Options {
        stacks,
        ready_timeout: ready_timeout.unwrap_or(Duration::from_secs(300 + 3 * stacks as u64)),
        steady,
    }
}

async fn bounded<T>(what: &str, limit: Duration, work: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, work).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: no answer within {limit:?}"),
    }
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("a well-formed object literal")
}

fn namespace_object(name: &str) -> Namespace {
    from_json(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
                BENCH_LABEL: "scale",
            },
        },
    }))
}

async fn ensure_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let params = PatchParams::apply(E2E_MANAGER).force();
    bounded(
        &format!("creating namespace {name}"),
        API_TIMEOUT,
        api.patch(name, &params, &Patch::Apply(&namespace_object(name))),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot create namespace {name}: {e}"));
}

// ---------------------------------------------------------------------------
// /proc

/// A field of /proc/PID/status in KiB (`VmHWM`, `VmRSS`).
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("/proc/{pid}/status has no {field}"))
}

/// User plus system CPU time of the process, in seconds.
fn proc_cpu_seconds(pid: u32) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command may hold spaces: fields count from after its closing parenthesis.
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15, that is 11 and 12 after the state (3).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    // USER_HZ is 100 on every Linux this runs on.
    ticks as f64 / 100.0
}

/// The line without ANSI colour sequences.
fn without_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------
// The audit log, between two byte offsets, each request counted once (by audit ID,
// so that a watch, which logs ResponseStarted and later ResponseComplete, counts
// once, and open watches count too).

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditLine {
    #[serde(default, rename = "auditID")]
    audit_id: String,
    #[serde(default)]
    verb: String,
    #[serde(default)]
    user: AuditUser,
    #[serde(default)]
    object_ref: Option<AuditObject>,
    #[serde(default)]
    response_status: Option<AuditStatus>,
}

#[derive(Default, Deserialize)]
struct AuditUser {
    #[serde(default)]
    username: String,
}

#[derive(Default, Deserialize)]
struct AuditObject {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuditStatus {
    #[serde(default)]
    code: Option<u16>,
}

struct Request {
    verb: String,
    resource: String,
    object: String,
    code: u16,
}

struct Audit {
    path: PathBuf,
}

/// A point in the audit log: the file (by inode, which survives the server's
/// rotation, a rename to `audit-<time>.log` once it reaches 100 MB) and an offset.
#[derive(Clone, Copy)]
struct AuditMark {
    inode: u64,
    offset: u64,
}

impl Audit {
    fn from_env() -> Audit {
        let path = std::env::var_os(AUDIT_LOG_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("set {AUDIT_LOG_ENV} to the API server's audit log"));
        assert!(path.is_file(), "{} is not a file", path.display());
        Audit { path }
    }

    /// Just after the last complete line of the current file.
    fn mark(&self) -> AuditMark {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&self.path)
            .unwrap_or_else(|e| panic!("cannot stat {}: {e}", self.path.display()));
        let len = meta.len();
        // The server may be half way through a line: the mark is before it.
        let tail_start = len.saturating_sub(1 << 20);
        let tail = read_range(&self.path, tail_start, len);
        let offset = tail
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(tail_start, |i| tail_start + i as u64 + 1);
        AuditMark {
            inode: meta.ino(),
            offset,
        }
    }

    /// The rotated files, oldest first, then the current one, with their inodes.
    fn files(&self) -> Vec<(PathBuf, u64)> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut rotated: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        let name = p.file_name().unwrap_or_default().to_string_lossy();
                        name.starts_with(&format!("{stem}-")) && name.ends_with(".log")
                    })
                    .collect()
            })
            .unwrap_or_default();
        rotated.sort();
        rotated.push(self.path.clone());
        rotated
            .into_iter()
            .filter_map(|p| std::fs::metadata(&p).ok().map(|m| (p, m.ino())))
            .collect()
    }

    /// The bytes between two marks, across rotations.
    fn read(&self, from: AuditMark, to: AuditMark) -> Vec<u8> {
        let files = self.files();
        let first = files
            .iter()
            .position(|(_, ino)| *ino == from.inode)
            .unwrap_or_else(|| panic!("the audit log of the start mark is gone"));
        let mut bytes = Vec::new();
        for (path, ino) in &files[first..] {
            let start = if *ino == from.inode { from.offset } else { 0 };
            let end = if *ino == to.inode {
                to.offset
            } else {
                u64::MAX
            };
            bytes.extend(read_range(path, start, end));
            if *ino == to.inode {
                break;
            }
        }
        bytes
    }

    /// The requests of `user` logged between the two marks.
    fn requests(&self, from: AuditMark, to: AuditMark, user: &str) -> Vec<Request> {
        let bytes = self.read(from, to);
        let text = String::from_utf8_lossy(&bytes);
        let mut by_id: HashMap<String, usize> = HashMap::new();
        let mut requests: Vec<Request> = Vec::new();
        for line in text.lines().filter(|l| l.contains(user)) {
            let Ok(entry) = serde_json::from_str::<AuditLine>(line) else {
                continue;
            };
            if entry.user.username != user {
                continue;
            }
            let object = entry.object_ref.unwrap_or_default();
            let code = entry.response_status.and_then(|s| s.code).unwrap_or(0);
            if let Some(&i) = by_id.get(&entry.audit_id) {
                if code != 0 {
                    requests[i].code = code;
                }
                continue;
            }
            by_id.insert(entry.audit_id, requests.len());
            requests.push(Request {
                verb: entry.verb,
                resource: match object.subresource {
                    Some(sub) => format!("{}/{sub}", object.resource),
                    None => object.resource,
                },
                object: format!(
                    "{}/{}",
                    object.namespace.unwrap_or_default(),
                    object.name.unwrap_or_default()
                ),
                code,
            });
        }
        requests
    }
}

fn read_range(path: &Path, from: u64, to: u64) -> Vec<u8> {
    let mut file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    file.seek(SeekFrom::Start(from))
        .expect("seek in the audit log");
    let mut bytes = Vec::new();
    file.take(to.saturating_sub(from))
        .read_to_end(&mut bytes)
        .expect("read the audit log");
    bytes
}

fn by_verb(requests: &[Request]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in requests {
        *counts.entry(r.verb.clone()).or_insert(0) += 1;
    }
    counts
}

fn by_verb_and_resource(requests: &[&Request]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for r in requests {
        *counts
            .entry((r.verb.clone(), r.resource.clone()))
            .or_insert(0) += 1;
    }
    counts
}

fn is_write(r: &Request) -> bool {
    WRITE_VERBS.contains(&r.verb.as_str())
}

// ---------------------------------------------------------------------------

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn stack_namespace(i: usize) -> String {
    format!("scale-{i:03}")
}

fn stack_name(i: usize) -> String {
    format!("toon-{i:03}")
}

/// Watches every benchmark stack and records when each first reports Ready for its
/// current generation; returns once the initial list is in.
async fn watch_ready(
    client: &Client,
    ready: Arc<Mutex<HashMap<String, Instant>>>,
) -> tokio::task::JoinHandle<()> {
    let api: Api<WebtoonStack> = Api::all(client.clone());
    let config = watcher::Config::default().labels(&format!("{BENCH_LABEL}=scale"));
    let (listed_tx, listed_rx) = tokio::sync::oneshot::channel();
    let handle = tokio::spawn(async move {
        let mut listed = Some(listed_tx);
        let mut events = std::pin::pin!(watcher(api, config));
        loop {
            match events.try_next().await {
                Ok(Some(watcher::Event::InitDone)) => {
                    if let Some(tx) = listed.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Some(watcher::Event::Apply(s) | watcher::Event::InitApply(s))) => {
                    if stack::ready_now(&s) {
                        ready
                            .lock()
                            .expect("the ready map")
                            .entry(s.name_any())
                            .or_insert_with(Instant::now);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                // The watcher re-lists by itself; a pause avoids a hot loop.
                Err(error) => {
                    eprintln!("watching WebtoonStacks: {error}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    });
    bounded("listing WebtoonStacks", API_TIMEOUT, listed_rx)
        .await
        .expect("the watcher lists before it ends");
    handle
}

#[tokio::main]
async fn main() {
    let options = options();
    let n = options.stacks;
    let client = webtoon_e2e::client().await;
    let audit = Audit::from_env();
    let user = service_account_user(OPERATOR_NAMESPACE, SERVICE_ACCOUNT);

    eprintln!("[scale] installing the CRD");
    bounded(
        "installing the CRD",
        SETUP_TIMEOUT,
        webtoon_e2e::crd::ensure_crd(&client),
    )
    .await;
    let nodes = bounded(
        "listing nodes",
        API_TIMEOUT,
        Api::<k8s_openapi::api::core::v1::Node>::all(client.clone()).list(&ListParams::default()),
    )
    .await
    .map(|l| l.items.len())
    .unwrap_or(0);

    eprintln!("[scale] creating {n} namespaces");
    bounded(
        "creating namespaces",
        SETUP_TIMEOUT,
        futures::stream::iter(0..n)
            .map(|i| {
                let client = client.clone();
                async move { ensure_namespace(&client, &stack_namespace(i)).await }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .collect::<Vec<()>>(),
    )
    .await;

    let operator_mark = audit.mark();
    eprintln!("[scale] starting one operator for every namespace");
    ensure_namespace(&client, OPERATOR_NAMESPACE).await;
    let mut operator = bounded(
        "starting the operator",
        SETUP_TIMEOUT,
        Operator::start(&client, OPERATOR_NAMESPACE, Scope::AllNamespaces),
    )
    .await;
    let pid = operator.pid().expect("the operator runs");
    let idle_rss = proc_status_kib(pid, "VmRSS");

    let ready: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watch = watch_ready(&client, ready.clone()).await;

    eprintln!("[scale] creating {n} stacks");
    let cpu_before = proc_cpu_seconds(pid);
    let first_create = Instant::now();
    let created: HashMap<String, Instant> = bounded(
        "creating stacks",
        SETUP_TIMEOUT,
        futures::stream::iter(0..n)
            .map(|i| {
                let client = client.clone();
                async move {
                    let mut object = stack::example("minimal", &stack_namespace(i));
                    object.metadata.name = Some(stack_name(i));
                    object
                        .labels_mut()
                        .insert(BENCH_LABEL.to_string(), "scale".to_string());
                    let sent = Instant::now();
                    bounded(
                        "creating a stack",
                        API_TIMEOUT,
                        stack::apply(&client, &object),
                    )
                    .await;
                    (stack_name(i), sent)
                }
            })
            .buffer_unordered(CREATE_CONCURRENCY)
            .collect(),
    )
    .await;
    let all_created = first_create.elapsed();
    eprintln!("[scale] {n} stacks created in {all_created:.1?}; waiting until all are Ready");

    let deadline = first_create + options.ready_timeout;
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    let mut last_report = Instant::now();
    let all_ready = loop {
        ticks.tick().await;
        operator.assert_alive();
        let count = ready.lock().expect("the ready map").len();
        if count >= n {
            break first_create.elapsed();
        }
        if last_report.elapsed() >= Duration::from_secs(15) {
            eprintln!(
                "[scale] {count}/{n} Ready after {:.0?}, operator RSS {:.1} MiB",
                first_create.elapsed(),
                mib(proc_status_kib(pid, "VmRSS"))
            );
            last_report = Instant::now();
        }
        if Instant::now() >= deadline {
            let done: HashSet<String> = ready
                .lock()
                .expect("the ready map")
                .keys()
                .cloned()
                .collect();
            let missing: Vec<String> = (0..n)
                .map(stack_name)
                .filter(|s| !done.contains(s))
                .take(10)
                .collect();
            panic!(
                "only {count} of {n} stacks were Ready within {:?}; not Ready, among others: {missing:?}",
                options.ready_timeout
            );
        }
    };
    let ready_mark = audit.mark();
    let ready_cpu = proc_cpu_seconds(pid) - cpu_before;
    let ready_hwm = proc_status_kib(pid, "VmHWM");
    let ready_rss = proc_status_kib(pid, "VmRSS");
    let ready_reconciles = operator.reconciles().await.unwrap_or(0);
    let ready_errors = reconcile_errors(&operator).await;
    let mut per_stack: Vec<Duration> = {
        let ready = ready.lock().expect("the ready map");
        created
            .iter()
            .map(|(name, sent)| ready[name].saturating_duration_since(*sent))
            .collect()
    };
    per_stack.sort();
    eprintln!(
        "[scale] all {n} Ready after {all_ready:.1?}; steady state for {:?} (resync {:?})",
        options.steady, RESYNC
    );

    // Steady state: nothing changes; the operator resyncs every stack each RESYNC.
    let steady_start = Instant::now();
    let steady_cpu_before = proc_cpu_seconds(pid);
    while steady_start.elapsed() < options.steady {
        tokio::time::sleep(
            Duration::from_secs(30).min(options.steady.saturating_sub(steady_start.elapsed())),
        )
        .await;
        operator.assert_alive();
        eprintln!(
            "[scale] steady {:.0?}/{:?}: {} reconciles since Ready, operator RSS {:.1} MiB",
            steady_start.elapsed(),
            options.steady,
            operator
                .reconciles()
                .await
                .unwrap_or(0)
                .saturating_sub(ready_reconciles),
            mib(proc_status_kib(pid, "VmRSS"))
        );
    }
    let end_mark = audit.mark();
    let steady_elapsed = steady_start.elapsed();
    let steady_cpu = proc_cpu_seconds(pid) - steady_cpu_before;
    let steady_reconciles = operator
        .reconciles()
        .await
        .unwrap_or(0)
        .saturating_sub(ready_reconciles);
    let steady_errors = reconcile_errors(&operator)
        .await
        .saturating_sub(ready_errors);
    let end_hwm = proc_status_kib(pid, "VmHWM");
    let end_rss = proc_status_kib(pid, "VmRSS");
    watch.abort();

    // The audit log.
    let ramp = audit.requests(operator_mark, ready_mark, &user);
    let steady = audit.requests(ready_mark, end_mark, &user);
    let ramp_writes: Vec<&Request> = ramp.iter().filter(|r| is_write(r)).collect();
    let steady_writes: Vec<&Request> = steady.iter().filter(|r| is_write(r)).collect();
    let forbidden: Vec<&Request> = ramp
        .iter()
        .chain(steady.iter())
        .filter(|r| r.code == 403)
        .collect();
    let failed: Vec<&Request> = ramp
        .iter()
        .chain(steady.iter())
        .filter(|r| r.code >= 400 && r.code != 404 && r.code != 403)
        .collect();
    let log = operator.log();
    let log_warnings = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();

    // The report.
    let per = |count: usize| count as f64 / n as f64;
    println!();
    println!(
        "## scale benchmark: {n} minimal stacks, one per namespace, one operator, {nodes} KWOK nodes"
    );
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| creates sent (32 in flight) | {:.2} s |",
        all_created.as_secs_f64()
    );
    println!(
        "| first create to all {n} Ready | {:.1} s |",
        all_ready.as_secs_f64()
    );
    println!(
        "| per-stack create to Ready p50 / p90 / max | {:.1} / {:.1} / {:.1} s |",
        percentile(&per_stack, 50.0).as_secs_f64(),
        percentile(&per_stack, 90.0).as_secs_f64(),
        percentile(&per_stack, 100.0).as_secs_f64()
    );
    println!(
        "| operator RSS idle, before the first stack | {:.1} MiB |",
        mib(idle_rss)
    );
    println!(
        "| operator RSS when all Ready | {:.1} MiB |",
        mib(ready_rss)
    );
    println!(
        "| operator peak RSS (VmHWM) at the end | {:.1} MiB |",
        mib(end_hwm.max(ready_hwm))
    );
    println!("| operator RSS at the end | {:.1} MiB |", mib(end_rss));
    println!(
        "| operator CPU, first create to all Ready | {ready_cpu:.1} s ({:.0} ms per stack) |",
        ready_cpu * 1000.0 / n as f64
    );
    println!(
        "| reconciles until all Ready | {ready_reconciles} ({:.1} per stack) |",
        per(ready_reconciles as usize)
    );
    println!("| reconcile errors until all Ready | {ready_errors} |");
    println!(
        "| API requests until all Ready | {} ({:.1} per stack) |",
        ramp.len(),
        per(ramp.len())
    );
    for (verb, count) in by_verb(&ramp) {
        println!("| &nbsp; {verb} | {count} ({:.2} per stack) |", per(count));
    }
    println!(
        "| writes until all Ready | {} ({:.1} per stack) |",
        ramp_writes.len(),
        per(ramp_writes.len())
    );
    println!(
        "| steady window | {:.0} s ({:.1} x resync of {} s) |",
        steady_elapsed.as_secs_f64(),
        steady_elapsed.as_secs_f64() / RESYNC.as_secs_f64(),
        RESYNC.as_secs()
    );
    println!(
        "| reconciles in the window | {steady_reconciles} ({:.1} per stack), {steady_errors} errors |",
        per(steady_reconciles as usize)
    );
    if steady_reconciles < 2 * n as u64 {
        eprintln!(
            "[scale] note: {steady_reconciles} reconciles in the window, fewer than two resyncs of every stack"
        );
    }
    println!("| operator CPU in the window | {steady_cpu:.1} s |");
    println!(
        "| API requests in the window | {} ({:.2} per stack) |",
        steady.len(),
        per(steady.len())
    );
    for (verb, count) in by_verb(&steady) {
        println!("| &nbsp; {verb} | {count} |");
    }
    println!(
        "| writes in the window | {} ({:.2} per stack) |",
        steady_writes.len(),
        per(steady_writes.len())
    );
    println!("| 403 Forbidden | {} |", forbidden.len());
    println!(
        "| other failed requests (4xx but 404, 5xx) | {} |",
        failed.len()
    );
    println!("| WARN/ERROR lines in the operator's log | {log_warnings} |");
    println!();
    println!("writes until all Ready, by verb and resource:");
    for ((verb, resource), count) in by_verb_and_resource(&ramp_writes) {
        println!(
            "  {verb:<7} {resource:<36} {count:>6}  ({:.2} per stack)",
            per(count)
        );
    }
    if !steady_writes.is_empty() {
        println!("writes in steady state, by verb and resource:");
        for ((verb, resource), count) in by_verb_and_resource(&steady_writes) {
            println!("  {verb:<7} {resource:<36} {count:>6}");
        }
        for r in steady_writes.iter().take(20) {
            println!("    {} {} {} -> {}", r.verb, r.resource, r.object, r.code);
        }
    }
    let mut refused: BTreeMap<(String, String, u16), usize> = BTreeMap::new();
    for r in forbidden.iter().chain(failed.iter()) {
        *refused
            .entry((r.verb.clone(), r.resource.clone(), r.code))
            .or_insert(0) += 1;
    }
    if !refused.is_empty() {
        println!("failed requests, by verb, resource and code:");
        for ((verb, resource, code), count) in refused {
            println!("  {verb:<7} {resource:<36} {code} {count:>6}");
        }
    }
    if log_warnings > 0 {
        println!("first WARN/ERROR lines of the operator's log:");
        for line in log
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .take(5)
        {
            println!("  {}", without_colours(line));
        }
    }
}
