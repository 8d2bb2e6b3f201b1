//! Throughput and p99 latency of the proxy tier on this machine, in one bounded run:
//!
//! - (a) an image through the rendered nginx.conf;
//! - (b) the same file from nginx with a minimal configuration: the limit here;
//! - (c) a cached WAS page through the proxy;
//! - (d) an uncached WAS page through the proxy, and straight from the WAS.
//!
//! Run with `cargo run --release --example proxy_benchmark`; it needs nginx, curl and
//! wrk (`./tests/run.sh` installs them). Each run is bounded: `PROXY_BENCH_SECONDS`
//! long (default 4), repeated `PROXY_BENCH_ROUNDS` times (default 5). Everything
//! listens on 127.0.0.1 and stops at the end.

// The same scaffolding as the tests, so the benchmark measures the same setup.
#[allow(dead_code)]
#[path = "../tests/common/clients.rs"]
mod clients;
#[allow(dead_code)]
#[path = "../tests/common/nginx.rs"]
mod nginx;
#[allow(dead_code)]
#[path = "../tests/common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../tests/common/test_was.rs"]
mod test_was;

use std::path::{Path, PathBuf};

use clients::{curl, parse_wrk, wrk_command};
use nginx::{Nginx, Ports, local_layout};
use process::free_port;
use test_was::TestWas;
use webtoon_operator::manifest::{parse_stacks, validated};
use webtoon_operator::render::proxy::nginx_conf::nginx_conf;

const HOST: &str = "toon.example";
const CONNECTIONS: u32 = 32;

/// The site as the benchmark renders it: defaults, but no rate limit, because the
/// load generator is a single client address.
const STACK: &str = "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: toon, namespace: webtoon}
spec:
  hosts: [toon.example]
  proxy: {rateLimit: {enabled: false}}
  was: {image: registry.example/toon/was:1.0.0}
";

/// A directory removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// nginx with nothing but a static file server: the most this machine can serve.
fn bare_conf(dir: &Path, port: u16, root: &Path) -> String {
    let d = dir.display();
    format!(
        "worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65s;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {};
    }}
}}
",
        root.display()
    )
}

/// The middle value (the mean of the middle two for an even count).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn main() {
    let seconds: u32 = std::env::var("PROXY_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let rounds: usize = std::env::var("PROXY_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-tmp")
        .join(format!("proxy-benchmark-{}", std::process::id()));
    let work = WorkDir(root);
    let proxy_dir = work.0.join("proxy");
    let bare_dir = work.0.join("bare");
    let images = proxy_dir.join("images");
    std::fs::create_dir_all(images.join("ep1")).expect("images directory");
    std::fs::create_dir_all(&bare_dir).expect("bare nginx directory");
    // A webtoon page is a tall strip cut into images of about 100 KB.
    let picture: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(images.join("ep1/001.jpg"), &picture).expect("image");

    let was = [TestWas::start("was-1"), TestWas::start("was-2")];
    let upstreams: Vec<String> = was.iter().map(TestWas::address).collect();
    let stack = parse_stacks("benchmark", STACK).expect("stack parses");
    let stack = validated(&stack[0]).expect("stack is valid");
    let ports = Ports::free();
    let conf = nginx_conf(&stack, &local_layout(&proxy_dir, &ports, &upstreams));
    let proxy = Nginx::start(&proxy_dir, &conf, ports);

    let bare_port = free_port();
    let bare_ports = Ports {
        http: bare_port,
        https: bare_port,
        health: bare_port,
    };
    let bare = Nginx::start(
        &bare_dir,
        &bare_conf(&bare_dir, bare_port, &images),
        bare_ports,
    );

    // Check each target answers as expected before measuring it.
    let check = |url: &str, want: Option<&str>| {
        let r = curl(&["-H", &format!("Host: {HOST}"), url]);
        assert_eq!(r.status, 200, "{url}: {r:?}");
        if let Some(want) = want {
            assert_eq!(r.header("x-cache-status"), Some(want), "{url}: {r:?}");
        }
    };
    let image = format!("{}/images/ep1/001.jpg", proxy.http());
    let bare_image = format!("http://127.0.0.1:{bare_port}/ep1/001.jpg");
    let cached = format!("{}/cacheable/episode/1", proxy.http());
    let uncached = format!("{}/episode/1", proxy.http());
    let direct = format!("http://{}/episode/1", was[0].address());
    check(&image, None);
    check(&bare_image, None);
    check(&cached, Some("MISS"));
    check(&cached, Some("HIT"));
    check(&uncached, Some("MISS"));
    check(&direct, None);

    println!(
        "wrk: 2 threads, {CONNECTIONS} connections, {seconds} s per run, {rounds} rounds in turn, on {} CPUs; medians",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let runs = [
        ("(a) image through the proxy", &image),
        ("(b) image from bare nginx", &bare_image),
        ("(c) cached WAS page through the proxy", &cached),
        ("(d) uncached WAS page through the proxy", &uncached),
        ("(d) uncached WAS page straight from the WAS", &direct),
    ];
    // Runs take turns, round after round, so that a slow spell of this shared
    // machine spreads over all of them; the medians are reported.
    let mut reports: Vec<Vec<clients::WrkReport>> = runs.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for ((name, url), reports) in runs.iter().zip(&mut reports) {
            let out = wrk_command(url, HOST, CONNECTIONS, seconds)
                .output()
                .expect("wrk runs (install wrk)");
            let report = parse_wrk(&String::from_utf8_lossy(&out.stdout));
            assert!(report.requests > 0, "{name}: {}", report.output);
            reports.push(report);
        }
    }
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "run", "req/s", "p99 ms", "errors"
    );
    let mut rates = Vec::new();
    for ((name, _), reports) in runs.iter().zip(&reports) {
        let rate = median(reports.iter().map(|r| r.requests_per_sec).collect());
        let p99 = median(reports.iter().map(|r| r.p99_ms).collect());
        let errors: u64 = reports
            .iter()
            .map(|r| r.non_2xx_3xx + r.socket_errors)
            .sum();
        println!("{name:<44} {rate:>10.0} {p99:>10.2} {errors:>8}");
        rates.push(rate);
    }
    println!("(a)/(b) = {:.1} %", rates[0] / rates[1] * 100.0);
    drop(proxy);
    drop(bare);
}
