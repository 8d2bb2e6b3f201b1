//! Controller benchmark: the CPU time of one reconcile of `examples/production.yaml`
//! against the in-memory API server (the first one, which creates everything, and
//! steady-state ones), the writes each sends, and the resident memory of the real
//! operator process idling against a stub API server on 127.0.0.1.
//!
//! ```sh
//! cargo build --release && cargo run --release --example controller_benchmark
//! ```
//!
//! CPU time is this thread's on-CPU time (`/proc/thread-self/schedstat`) on a
//! single-threaded runtime, so it includes the in-memory API server's own work: an
//! upper bound for the operator's share.

// The test scaffolding, shared with the tests, which use the parts this does not.
#[allow(dead_code)]
#[path = "../tests/common/fake_api.rs"]
mod fake_api;
#[allow(dead_code)]
#[path = "../tests/common/http_get.rs"]
mod http_get;
#[allow(dead_code)]
#[path = "../tests/common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../tests/common/stub_api_server.rs"]
mod stub_api_server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_api::FakeApi;
use kube::api::Api;
use stub_api_server::StubApiServer;
use webtoon_operator::api::WebtoonStack;
use webtoon_operator::controller::{Backoff, Context, reconcile};
use webtoon_operator::manifest::parse_stacks;
use webtoon_operator::metrics::Metrics;

const STEADY_RUNS: usize = 500;
const IDLE: Duration = Duration::from_secs(10);

type Failure = Box<dyn std::error::Error>;

/// This thread's on-CPU time.
fn thread_cpu() -> Result<Duration, Failure> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let nanos: u64 = text
        .split_whitespace()
        .next()
        .ok_or("empty schedstat")?
        .parse()?;
    Ok(Duration::from_nanos(nanos))
}

/// A field of `/proc/<pid>/status`, such as `VmRSS`, in KiB.
fn status_kib(pid: u32, field: &str) -> Result<u64, Failure> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .ok_or_else(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .ok_or("malformed status line")?
        .parse()?)
}

async fn reconcile_cost() -> Result<(), Failure> {
    let text = std::fs::read_to_string("examples/production.yaml")?;
    let mut stack = parse_stacks("examples/production.yaml", &text)?.remove(0);
    stack.metadata.uid = Some("benchmark".to_string());
    stack.metadata.generation = Some(1);
    let name = stack
        .metadata
        .name
        .clone()
        .ok_or("the example has a name")?;
    let namespace = stack.metadata.namespace.clone().unwrap_or_default();
    let api = FakeApi::with_stack(stack).await;
    let ctx = Arc::new(Context {
        client: api.operator.clone(),
        metrics: Arc::new(Metrics::default()),
        recorder: None,
        backoff: Backoff::default(),
        clock: Box::new(|| "2026-11-22T12:00:00Z".parse().unwrap_or_default()),
        operator_image: None,
    });
    let stacks: Api<WebtoonStack> = Api::namespaced(api.direct.clone(), &namespace);

    let current = Arc::new(stacks.get(&name).await?);
    let cpu = thread_cpu()?;
    reconcile(current, ctx.clone()).await?;
    let first_cpu = thread_cpu()? - cpu;
    let first_writes = api.wire.take_writes();

    let mut cpu_times = Vec::with_capacity(STEADY_RUNS);
    let mut wall_times = Vec::with_capacity(STEADY_RUNS);
    for _ in 0..STEADY_RUNS {
        // The controller reads stacks from its watch cache, so the read is not timed.
        let current = Arc::new(stacks.get(&name).await?);
        let (cpu, wall) = (thread_cpu()?, Instant::now());
        reconcile(current, ctx.clone()).await?;
        wall_times.push(wall.elapsed());
        cpu_times.push(thread_cpu()? - cpu);
    }
    let steady_writes = api.wire.take_writes();
    cpu_times.sort();
    wall_times.sort();
    let mean = cpu_times.iter().sum::<Duration>() / STEADY_RUNS as u32;
    let p99 = cpu_times[STEADY_RUNS * 99 / 100];
    println!(
        "first reconcile (creates every child): cpu {:.2} ms, {first_writes} writes",
        first_cpu.as_secs_f64() * 1e3
    );
    println!(
        "steady-state reconcile x{STEADY_RUNS}: cpu mean {:.2} ms, p99 {:.2} ms; wall median {:.2} ms; {steady_writes} writes in all",
        mean.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        wall_times[STEADY_RUNS / 2].as_secs_f64() * 1e3,
    );
    Ok(())
}

async fn idle_memory() -> Result<(), Failure> {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_string());
    let binary = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(target).join("release/webtoon-operator"));
    if !binary.exists() {
        return Err(format!("{} is missing: run cargo build --release", binary.display()).into());
    }
    let api = StubApiServer::start(true).await;
    let dir = std::env::temp_dir().join(format!("webtoon-benchmark-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], process::free_port()));
    let mut child = std::process::Command::new(&binary)
        .args(["run", "--metrics-address", &metrics.to_string()])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .spawn()?;
    let pid = child.id();

    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(http_get::get(metrics, "/readyz").await, Ok(r) if r.status == 200) {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("the operator did not turn ready within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(IDLE).await;
    let watches: std::collections::BTreeSet<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.contains("watch=true"))
        .filter_map(|r| r.split('?').next().map(str::to_string))
        .collect();
    let rss = status_kib(pid, "VmRSS")?;
    let peak = status_kib(pid, "VmHWM")?;
    process::sigterm(&child);
    let exit = child.wait()?;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "idle operator ({} s after ready, {} watches open, no stacks): RSS {:.1} MiB, peak {:.1} MiB; exit on SIGTERM: {exit}",
        IDLE.as_secs(),
        watches.len(),
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    Ok(())
}

fn main() -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        reconcile_cost().await?;
        idle_memory().await
    })
}
