//! The monitoring sidecars for real: each exporter, built from its Go module, runs
//! with the arguments, configuration and environment the operator renders for its
//! pod (only addresses and ports moved to the test's own on 127.0.0.1), beside the
//! real server it watches, itself run from the rendered configuration. Every test
//! drives traffic and reads the numbers back from the exporter's `/metrics`.

mod common;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::clients::{Response, curl, wrk_command};
use common::metrics::{Exporter, Scrape, exporter_binary, on_loopback, scrape_until};
use common::nginx::{Nginx, Ports, local_layout, wait_report};
use common::process::{Guard, free_port};
use common::servers::{MariaDb, ROOT_PASSWORD, Redis, redis_local_layout};
use common::test_was::TestWas;
use common::{TempDir, config_file, resolved_env, stack_from_yaml, test_credentials};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec};
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::render::cache::redis_conf::{MONITOR_COMMANDS, MONITOR_USER};
use webtoon_operator::render::credentials::{
    CACHE_MONITOR_PASSWORD_KEY, DATABASE_MONITOR_PASSWORD_KEY, SecretState,
};
use webtoon_operator::render::database::init_script::{MONITOR_PASSWORD_ENV, monitor_user};
use webtoon_operator::render::monitoring::{
    ACCESS_LOG_METRICS, ACCESS_LOG_SYSLOG_PORT, MYSQLD_METRICS, NGINX_METRICS, REDIS_METRICS,
    access_log_exporter, mysqld_exporter, nginx_exporter, redis_exporter,
};
use webtoon_operator::render::proxy::nginx_conf::{HEALTH_PORT, nginx_conf};
use webtoon_operator::render::{Children, Credentials, Observed, render};

const HOST: &str = "mon.example";

/// A stack with monitoring on: no rate limit, so that one load generator is one
/// client, and a small Redis that must evict.
const STACK: &str = "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: mon, namespace: webtoon}
spec:
  hosts: [mon.example]
  was: {image: registry.example/mon/was:1.0.0}
  proxy: {rateLimit: {enabled: false}}
  cache: {maxMemory: 8Mi, evictionPolicy: allkeys-lru}
  monitoring: {}
";

const DATABASE_MONITOR_PASSWORD: &str = "db-monitor-Pass'word\\0123456789";
const CACHE_MONITOR_PASSWORD: &str = "cache-monitor-password-0123456789";

fn stack() -> ValidatedStack {
    stack_from_yaml(STACK)
}

/// The stack rendered as the controller renders it once the credentials Secret
/// holds the four passwords and, with monitoring on, the two monitoring passwords
/// (which the controller generates when missing). Root's password is the one the
/// test MariaDB was given.
fn children() -> Children {
    let observed = Observed {
        credentials: Some(Credentials {
            database_root_password: ROOT_PASSWORD.to_string(),
            ..test_credentials()
        }),
        secret_state: SecretState {
            extra: BTreeMap::from([
                (
                    DATABASE_MONITOR_PASSWORD_KEY.to_string(),
                    DATABASE_MONITOR_PASSWORD.to_string(),
                ),
                (
                    CACHE_MONITOR_PASSWORD_KEY.to_string(),
                    CACHE_MONITOR_PASSWORD.to_string(),
                ),
            ]),
            annotations: BTreeMap::new(),
        },
        ..Observed::default()
    };
    render(&stack(), &observed)
}

/// The rendered credentials Secret's data as text.
fn secret(children: &Children) -> Vec<(String, String)> {
    let secret = children.secrets.first().expect("the credentials Secret");
    secret
        .data
        .as_ref()
        .expect("Secret data")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                String::from_utf8(v.0.clone()).expect("a text password"),
            )
        })
        .collect()
}

/// Every pod template of the render: Deployments' and StatefulSets'.
fn pod_specs(children: &Children) -> Vec<PodSpec> {
    let deployments = children
        .deployments
        .iter()
        .filter_map(|d| d.spec.as_ref()?.template.spec.clone());
    let stateful = children
        .stateful_sets
        .iter()
        .filter_map(|s| s.spec.as_ref()?.template.spec.clone());
    deployments.chain(stateful).collect()
}

/// The container `name` of the rendered pods (an exporter sidecar or a server).
fn container(children: &Children, name: &str) -> Container {
    pod_specs(children)
        .into_iter()
        .flat_map(|p| p.containers)
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("a rendered pod runs container {name}"))
}

/// A container's environment as the kubelet gives it: Secret references resolved
/// from the rendered Secret, optional references to keys it lacks left out, then
/// `overrides` applied.
fn container_env(
    children: &Children,
    container: &Container,
    overrides: &[(&str, String)],
) -> Vec<(String, String)> {
    let data = secret(children);
    let present = |e: &EnvVar| {
        let Some(selector) = e
            .value_from
            .as_ref()
            .and_then(|f| f.secret_key_ref.as_ref())
        else {
            return true;
        };
        selector.optional != Some(true) || data.iter().any(|(k, _)| *k == selector.key)
    };
    let env: Vec<EnvVar> = container
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(present)
        .collect();
    let secrets: Vec<(&str, &str)> = data.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    resolved_env(&env, &secrets, overrides)
}

fn args(container: &Container) -> Vec<String> {
    container.args.clone().unwrap_or_default()
}

/// Datagrams the kernel dropped for the UDP socket bound to `port` of 127.0.0.1
/// because its receive buffer was full (the last column of `/proc/net/udp`).
fn udp_drops(port: u16) -> u64 {
    let table = std::fs::read_to_string("/proc/net/udp").expect("read /proc/net/udp");
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.get(1) == Some(&local.as_str()))
        .and_then(|fields| fields.last()?.parse().ok())
        .unwrap_or_else(|| panic!("a UDP socket on 127.0.0.1:{port} in {table}"))
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a free UDP port on 127.0.0.1")
        .port()
}

// ---------------------------------------------------------------------------
// Proxy: nginx-prometheus-exporter and the access log exporter.
// ---------------------------------------------------------------------------

/// The rendered nginx with both exporters beside it, in front of two test WAS.
/// Fields drop in order: exporters and nginx stop before the WAS, the directory last.
struct Proxy {
    stub_status: Exporter,
    access_log: Exporter,
    syslog_port: u16,
    /// Requests made under the images path, which only the exporter's log records.
    image_requests: Cell<u32>,
    /// Requests the test knows nginx answered: its own, and those wrk reported.
    answered: Cell<f64>,
    nginx: Nginx,
    was: Vec<TestWas>,
    _dir: TempDir,
}

impl Proxy {
    fn start() -> Proxy {
        let dir = TempDir::new("exporters-proxy");
        let was: Vec<TestWas> = (1..=2)
            .map(|i| TestWas::start(&format!("was-{i}")))
            .collect();
        let upstreams: Vec<String> = was.iter().map(TestWas::address).collect();
        std::fs::create_dir_all(dir.0.join("images/ep1")).expect("images directory");
        std::fs::write(dir.0.join("images/ep1/001.jpg"), [0xffu8; 2048]).expect("image");

        let stack = stack();
        let children = children();
        let syslog_port = free_udp_port();
        let syslog = format!("127.0.0.1:{syslog_port}");
        let ports = Ports::free();

        // The access log exporter: its rendered ConfigMap entry is `config` with the
        // pod's ports; the test's own ports go through the same function.
        let rendered_config = config_file(
            &children,
            "mon-proxy-config",
            access_log_exporter::CONFIG_KEY,
        );
        assert_eq!(rendered_config, access_log_exporter::in_cluster_config());
        assert_eq!(
            rendered_config,
            access_log_exporter::config(
                ACCESS_LOG_METRICS.number,
                &format!("127.0.0.1:{ACCESS_LOG_SYSLOG_PORT}")
            )
        );
        let access_port = free_port();
        let pod_listen = "  address: 0.0.0.0\n";
        let config = access_log_exporter::config(i32::from(access_port), &syslog);
        assert!(config.contains(pod_listen), "{config}");
        let config = config.replace(pod_listen, "  address: 127.0.0.1\n");
        let config_path = dir.0.join(access_log_exporter::CONFIG_KEY);
        std::fs::write(&config_path, &config).expect("write the exporter configuration");
        let sidecar = container(&children, "access-log-exporter");
        let access_args: Vec<String> = args(&sidecar)
            .into_iter()
            .map(|a| match a.strip_prefix("-config-file=") {
                Some(path) => {
                    assert!(path.ends_with(access_log_exporter::CONFIG_KEY), "{path}");
                    format!("-config-file={}", config_path.display())
                }
                None => a,
            })
            .collect();
        let access_log = Exporter::start(
            &exporter_binary("WEBTOON_NGINXLOG_EXPORTER", "nginxlog-exporter"),
            &access_args,
            &container_env(&children, &sidecar, &[]),
            access_port,
            dir.0.join("access-log-exporter.log"),
        );

        let mut layout = local_layout(&dir.0, &ports, &upstreams);
        layout.metrics_log = Some(syslog);
        let conf = nginx_conf(&stack, &layout);
        let nginx = Nginx::start(&dir.0, &conf, ports);

        let sidecar = container(&children, "nginx-exporter");
        assert_eq!(
            args(&sidecar),
            nginx_exporter::args(&format!("127.0.0.1:{HEALTH_PORT}"), NGINX_METRICS.number)
        );
        let status_port = free_port();
        let stub_status = Exporter::start(
            &exporter_binary("WEBTOON_NGINX_EXPORTER", "nginx-exporter"),
            &on_loopback(nginx_exporter::args(
                &format!("127.0.0.1:{}", ports.health),
                i32::from(status_port),
            )),
            &container_env(&children, &sidecar, &[]),
            status_port,
            dir.0.join("nginx-exporter.log"),
        );
        Proxy {
            stub_status,
            access_log,
            syslog_port,
            image_requests: Cell::new(0),
            answered: Cell::new(0.0),
            nginx,
            was,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.nginx.http())
    }

    fn get(&self, path: &str) -> Response {
        if path.starts_with("/images/") {
            self.image_requests.set(self.image_requests.get() + 1);
        }
        self.answered.set(self.answered.get() + 1.0);
        let url = self.url(path);
        curl(&["-H", &format!("Host: {HOST}"), &url])
    }

    /// Log lines nginx has sent to the exporter: one per line of its request log,
    /// and one per image request, which stay out of the request log.
    fn sent(&self) -> f64 {
        let lines = self.nginx.log("access.log").lines().count();
        (lines as f64) + f64::from(self.image_requests.get())
    }

    /// Waits (at most 10 s) until nginx has logged every request the test knows
    /// it answered (it logs after answering) and every line it sent is counted by
    /// the exporter or was dropped by the kernel for a full receive buffer; asserts
    /// that they add up exactly, and returns the scrape and the drops so far.
    fn settled(&self) -> (Scrape, f64) {
        let answered = self.answered.get();
        let dropped = || udp_drops(self.syslog_port) as f64;
        let log = scrape_until(self.access_log.port, Duration::from_secs(10), |s| {
            let sent = self.sent();
            sent >= answered && all_responses(s) + dropped() >= sent
        });
        let sent = self.sent();
        let dropped = dropped();
        assert_eq!(
            all_responses(&log) + dropped,
            sent,
            "every line nginx sent is counted or dropped ({dropped} dropped): {}",
            log.text
        );
        (log, dropped)
    }

    fn was_requests(&self) -> usize {
        self.was.iter().map(TestWas::requests).sum()
    }
}

const RESPONSES: &str = "nginxlog_http_response_count_total";
const RESPONSE_TIME: &str = "nginxlog_http_response_time_seconds_hist";
const UPSTREAM_TIME: &str = "nginxlog_http_upstream_time_seconds_hist";

/// Responses the access log exporter counted with `status` class and `upstream`.
fn responses(scrape: &Scrape, status: &str, upstream: &str) -> f64 {
    scrape.sum(RESPONSES, &[("status", status), ("upstream", upstream)])
}

/// Every response the access log exporter counted.
fn all_responses(scrape: &Scrape) -> f64 {
    scrape.sum(RESPONSES, &[])
}

#[test]
fn nginx_exporters_count_connections_requests_statuses_and_upstream_outcomes() {
    let mut proxy = Proxy::start();

    let status = proxy.stub_status.scrape();
    assert_eq!(
        status.value("nginx_up", &[]),
        1.0,
        "{}",
        proxy.stub_status.log()
    );
    let requests_before = status.value("nginx_http_requests_total", &[]);
    let accepted_before = status.value("nginx_connections_accepted", &[]);
    let (log, _) = proxy.settled();
    assert_eq!(all_responses(&log), 0.0, "nothing was requested yet");

    // Ten requests one by one, each on its own connection, all to a WAS.
    for i in 0..10 {
        let r = proxy.get(&format!("/episode/{i}"));
        assert_eq!(r.status, 200, "{r:?}");
    }
    let (log, _) = proxy.settled();
    assert_eq!(responses(&log, "2xx", "ok"), 10.0, "{}", log.text);
    assert_eq!(all_responses(&log), 10.0, "{}", log.text);
    assert_eq!(
        log.sum(RESPONSES, &[("method", "GET")]),
        10.0,
        "{}",
        log.text
    );
    let status = proxy.stub_status.scrape();
    assert!(
        status.value("nginx_connections_accepted", &[]) >= accepted_before + 10.0,
        "{}",
        status.text
    );
    assert!(
        status.value("nginx_http_requests_total", &[]) >= requests_before + 10.0,
        "{}",
        status.text
    );

    // A bounded load: 4 connections for 3 s. nginx sends one datagram per
    // request; what the exporter's socket could not take in time the kernel drops
    // and counts, so counted and dropped lines add up to the requests exactly.
    let was_before = proxy.was_requests();
    let report = wait_report(Guard(
        wrk_command(&proxy.url("/episode/1"), HOST, 4, 3)
            .spawn()
            .expect("wrk runs (install wrk)"),
    ));
    report.assert_no_request_failed();
    proxy
        .answered
        .set(proxy.answered.get() + report.requests as f64);
    // A request wrk gave up on at its end may still reach a WAS, and be answered and
    // logged, after wrk has stopped: the WAS's count and the log's settle together.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (log, dropped, proxied) = loop {
        let (log, dropped) = proxy.settled();
        let proxied = (proxy.was_requests() - was_before) as f64;
        if all_responses(&log) - 10.0 + dropped == proxied || Instant::now() > deadline {
            break (log, dropped, proxied);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let counted_ok = responses(&log, "2xx", "ok") - 10.0;
    let counted = all_responses(&log) - 10.0;
    eprintln!(
        "wrk: {} requests ({:.0}/s, p99 {:.2} ms); the WAS saw {proxied}; the access log exporter counted {counted} ({counted_ok} 2xx from a first WAS, {:.2} %), the kernel dropped {dropped} log datagrams",
        report.requests,
        report.requests_per_sec,
        report.p99_ms,
        100.0 * counted / proxied,
    );
    assert_eq!(
        counted + dropped,
        proxied,
        "every proxied request counted or dropped: {}",
        log.text
    );
    // wrk reports the answers it read before its time was up; up to one request
    // per connection more reached nginx (which logs 499 for one wrk abandoned).
    assert!(
        counted_ok + dropped >= report.requests as f64,
        "wrk saw {} answered, the exporter counted {counted_ok} 2xx: {}",
        report.requests,
        log.text
    );
    assert!(
        proxied >= report.requests as f64 && proxied <= report.requests as f64 + 4.0,
        "wrk saw {} answered, the WAS {proxied}",
        report.requests,
    );
    let status = proxy.stub_status.scrape();
    assert!(
        status.value("nginx_http_requests_total", &[]) >= requests_before + 10.0 + proxied,
        "{}",
        status.text
    );

    // nginx's own answers: an image, a missing image, a refused hidden file.
    let counted_before = all_responses(&log);
    let image = proxy.get("/images/ep1/001.jpg");
    assert_eq!(image.status, 200, "{image:?}");
    let missing = proxy.get("/images/ep1/404.jpg");
    assert_eq!(missing.status, 404, "{missing:?}");
    let hidden = proxy.get("/images/.git/config");
    assert_eq!(hidden.status, 403, "{hidden:?}");
    let (log, _) = proxy.settled();
    assert_eq!(responses(&log, "2xx", "none"), 1.0, "{}", log.text);
    assert_eq!(responses(&log, "4xx", "none"), 2.0, "{}", log.text);
    assert_eq!(all_responses(&log), counted_before + 3.0, "{}", log.text);

    // One WAS stops while requests flow: nginx retries on the other, and the
    // exporter says so.
    let retried_before = responses(&log, "2xx", "retried");
    let load = Guard(
        wrk_command(&proxy.url("/episode/2"), HOST, 4, 3)
            .spawn()
            .expect("wrk runs (install wrk)"),
    );
    let was_before = proxy.was_requests();
    let deadline = Instant::now() + Duration::from_secs(2);
    while proxy.was_requests() < was_before + 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.was[0].kill();
    let report = wait_report(load);
    report.assert_no_request_failed();
    proxy
        .answered
        .set(proxy.answered.get() + report.requests as f64);
    let (log, _) = proxy.settled();
    // Once a failed attempt marks the dead WAS down (fail_timeout 5 s), requests
    // go straight to the living one: few are retried, but some are.
    let retried = responses(&log, "2xx", "retried") - retried_before;
    eprintln!(
        "one WAS killed under load: wrk {} requests, none failed; {retried} retried on the other WAS",
        report.requests
    );
    assert!(retried >= 1.0, "{}", log.text);
    assert_eq!(responses(&log, "5xx", "failed"), 0.0, "{}", log.text);

    // Both stopped: nginx answers 502 itself after trying, and the exporter counts
    // failed upstreams as server errors.
    proxy.was[1].kill();
    let total_before = all_responses(&log);
    for i in 0..5 {
        let r = proxy.get(&format!("/episode/{i}"));
        assert_eq!(r.status, 502, "{r:?}");
    }
    let (log, dropped) = proxy.settled();
    assert_eq!(responses(&log, "5xx", "failed"), 5.0, "{}", log.text);
    assert_eq!(all_responses(&log), total_before + 5.0, "{}", log.text);

    // Histograms: every bucket of the rendered list, and one observation per
    // counted response.
    for bucket in access_log_exporter::LATENCY_BUCKETS {
        let le = bucket.to_string();
        assert!(
            log.matching(&format!("{RESPONSE_TIME}_bucket"), &[("le", &le)])
                .next()
                .is_some(),
            "bucket {le}: {}",
            log.text
        );
    }
    for counter in log.matching(RESPONSES, &[]) {
        let labels: Vec<(&str, &str)> = counter
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            log.value(&format!("{RESPONSE_TIME}_count"), &labels),
            counter.value,
            "one response time per response {labels:?}: {}",
            log.text
        );
        assert_eq!(
            log.value(
                &format!("{RESPONSE_TIME}_bucket"),
                &[&labels[..], &[("le", "+Inf")]].concat()
            ),
            counter.value,
            "{}",
            log.text
        );
    }
    assert_eq!(
        log.sum(&format!("{UPSTREAM_TIME}_count"), &[("upstream", "ok")]),
        log.sum(RESPONSES, &[("upstream", "ok")]),
        "one upstream time per response from a WAS: {}",
        log.text
    );
    assert_eq!(
        log.sum("nginxlog_parse_errors_total", &[]),
        0.0,
        "the exporter parses every line nginx sends: {}\n{}",
        log.text,
        proxy.access_log.log()
    );
    let started = Instant::now();
    let status = proxy.stub_status.scrape();
    let status_took = started.elapsed();
    let started = Instant::now();
    let access = proxy.access_log.scrape();
    eprintln!(
        "scrapes: nginx-prometheus-exporter {} samples in {status_took:?}, access log exporter {} samples in {:?}",
        status.samples.len(),
        access.samples.len(),
        started.elapsed()
    );
    let logs = format!("{}{}", proxy.stub_status.log(), proxy.access_log.log());
    assert!(
        !logs.contains("level=ERROR") && !logs.contains(r#""level":"error""#),
        "{logs}"
    );
    eprintln!(
        "access log exporter at the end ({dropped} lines dropped in all):\n{}",
        {
            let mut lines: Vec<&str> = log
                .text
                .lines()
                .filter(|l| l.starts_with(RESPONSES) || l.starts_with("nginxlog_parse"))
                .collect();
            lines.sort();
            lines.join("\n")
        }
    );
}

// ---------------------------------------------------------------------------
// Database: mysqld_exporter.
// ---------------------------------------------------------------------------

/// MariaDB with the rendered configuration, initialised by the rendered init script
/// with the database container's environment, and mysqld_exporter beside it.
struct Database {
    exporter: Exporter,
    db: MariaDb,
    children: Children,
}

impl Database {
    fn start() -> Database {
        let children = children();
        let cnf = config_file(&children, "mon-database-config", "webtoon.cnf");
        let db = MariaDb::start("exporters-mariadb", &cnf);
        let init = db.dir.0.join("init.sh");
        std::fs::write(
            &init,
            config_file(&children, "mon-database-init", "10-webtoon-init.sh"),
        )
        .expect("write the init script");
        let env = container_env(&children, &container(&children, "mariadb"), &[]);
        assert!(
            env.iter()
                .any(|(k, v)| k == MONITOR_PASSWORD_ENV && v == DATABASE_MONITOR_PASSWORD),
            "the database container gets the monitoring password: {env:?}"
        );
        let refs: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let out = db.run_script(&init, &refs);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "init script: {said}");
        assert!(
            said.contains("webtoon-init: monitoring account webtoon_monitor is there"),
            "{said}"
        );

        let sidecar = container(&children, "mysqld-exporter");
        let user = monitor_user(&stack().spec.database);
        assert_eq!(
            args(&sidecar),
            mysqld_exporter::args(
                &format!("127.0.0.1:{}", webtoon_operator::render::database::PORT),
                &user,
                MYSQLD_METRICS.number
            )
        );
        let port = free_port();
        let exporter = Exporter::start(
            &exporter_binary("WEBTOON_MYSQLD_EXPORTER", "mysqld-exporter"),
            &on_loopback(mysqld_exporter::args(
                &format!("127.0.0.1:{}", db.port),
                &user,
                i32::from(port),
            )),
            &container_env(&children, &sidecar, &[]),
            port,
            db.dir.0.join("mysqld-exporter.log"),
        );
        Database {
            exporter,
            db,
            children,
        }
    }

    /// Runs `sql` as the application user; it must succeed.
    fn app(&self, sql: &str) {
        let out = self
            .db
            .as_user("webtoon", &test_credentials().database_password, sql);
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn scrape(&self) -> Scrape {
        let scrape = self.exporter.scrape();
        assert_eq!(
            scrape.value("mysql_up", &[]),
            1.0,
            "{}",
            self.exporter.log()
        );
        scrape
    }
}

/// A client as the application user holding one connection open until dropped.
struct Session(Child);

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mysqld_exporter_reads_status_and_variables_as_an_account_that_reads_no_data() {
    let database = Database::start();
    let cnf = config_file(&database.children, "mon-database-config", "webtoon.cnf");
    let max_connections: f64 = cnf
        .lines()
        .find_map(|l| l.strip_prefix("max_connections = "))
        .and_then(|v| v.trim().parse().ok())
        .expect("webtoon.cnf sets max_connections");

    let scrape_started = Instant::now();
    let scrape = database.scrape();
    eprintln!(
        "mysqld_exporter scrape: {} samples in {:?}",
        scrape.samples.len(),
        scrape_started.elapsed()
    );
    assert_eq!(
        scrape.value("mysql_global_variables_max_connections", &[]),
        max_connections
    );

    // Connections held open show in Threads_connected.
    let threads_before = scrape.value("mysql_global_status_threads_connected", &[]);
    let sessions: Vec<Session> = (0..3)
        .map(|_| {
            Session(
                database
                    .db
                    .user_session("webtoon", &test_credentials().database_password),
            )
        })
        .collect();
    let held = scrape_until(database.exporter.port, Duration::from_secs(10), |s| {
        s.sum("mysql_global_status_threads_connected", &[]) >= threads_before + 3.0
    });
    assert!(
        held.value("mysql_global_status_threads_connected", &[]) >= threads_before + 3.0,
        "{}",
        held.text
    );
    drop(sessions);

    // Statements show in the command counters, exactly.
    database.app("CREATE TABLE webtoon.episodes (id INT PRIMARY KEY, title TEXT)");
    let before = database.scrape();
    let inserts = 25;
    let statements: String = (1..=inserts)
        .map(|i| format!("INSERT INTO webtoon.episodes VALUES ({i}, 'episode {i}');"))
        .collect();
    database.app(&statements);
    let after = database.scrape();
    let insert = [("command", "insert")];
    assert_eq!(
        after.value("mysql_global_status_commands_total", &insert)
            - before.value("mysql_global_status_commands_total", &insert),
        f64::from(inserts)
    );
    assert!(
        after.value("mysql_global_status_queries", &[])
            >= before.value("mysql_global_status_queries", &[]) + f64::from(inserts)
    );

    // A query longer than the server's long_query_time counts as slow. The rendered
    // webtoon.cnf turns no slow query log on; the counter counts all the same.
    let long_query_time = after.value("mysql_global_variables_long_query_time", &[]);
    assert_eq!(
        after.value("mysql_global_variables_slow_query_log", &[]),
        0.0,
        "the rendered webtoon.cnf leaves the slow query log off"
    );
    let slow_before = after.value("mysql_global_status_slow_queries", &[]);
    database.app(&format!("SELECT SLEEP({})", long_query_time + 0.5));
    let slow = database.scrape();
    assert_eq!(
        slow.value("mysql_global_status_slow_queries", &[]),
        slow_before + 1.0,
        "long_query_time {long_query_time} s"
    );

    // The monitoring account reads no data: it holds no privilege at all.
    let denied = database.db.as_user(
        "webtoon_monitor",
        DATABASE_MONITOR_PASSWORD,
        "SELECT * FROM webtoon.episodes",
    );
    let said = String::from_utf8_lossy(&denied.stderr);
    assert!(
        !denied.status.success() && said.contains("denied"),
        "the monitoring account reads a table: {said}"
    );
    let databases = database.db.as_user(
        "webtoon_monitor",
        DATABASE_MONITOR_PASSWORD,
        "SHOW DATABASES",
    );
    assert_eq!(
        String::from_utf8_lossy(&databases.stdout).trim(),
        "information_schema",
        "the monitoring account sees no database"
    );
    let grants = database
        .db
        .root("SHOW GRANTS FOR 'webtoon_monitor'@'127.0.0.1'");
    let grants = String::from_utf8_lossy(&grants.stdout);
    assert!(
        grants.starts_with("GRANT USAGE ON *.* TO `webtoon_monitor`@`127.0.0.1`"),
        "{grants}"
    );
    assert_eq!(grants.lines().count(), 1, "{grants}");

    // Every enabled collector ran, and none failed on a privilege.
    let last = database.scrape();
    let collectors: Vec<&str> = last
        .matching("mysql_exporter_collector_success", &[])
        .map(|s| s.labels["collector"].as_str())
        .collect();
    eprintln!("mysqld_exporter collectors: {collectors:?}");
    for collector in ["collect.global_status", "collect.global_variables"] {
        assert!(collectors.contains(&collector), "{}", last.text);
    }
    for sample in last.matching("mysql_exporter_collector_success", &[]) {
        assert_eq!(sample.value, 1.0, "{sample:?}: {}", database.exporter.log());
    }
    let log = database.exporter.log();
    assert!(
        !log.contains("level=ERROR") && !log.contains("denied"),
        "{log}"
    );
}

// ---------------------------------------------------------------------------
// Cache: redis_exporter.
// ---------------------------------------------------------------------------

/// Redis from the rendered configuration and start script, with the Redis
/// container's environment, and redis_exporter beside it.
struct Cache {
    exporter: Exporter,
    redis: Redis,
    conf: String,
}

impl Cache {
    fn start(name: &str) -> Cache {
        let children = children();
        let conf = config_file(&children, "mon-cache-config", "redis.conf");
        let script = config_file(&children, "mon-cache-config", "start.sh");
        let dir = common::root()
            .join("target/test-tmp")
            .join(format!("{name}-{}", std::process::id()));
        let (conf, script) = redis_local_layout(&conf, &script, &dir, free_port());
        let env = container_env(&children, &container(&children, "redis"), &[]);
        let redis = Redis::start_with_env(name, &conf, &script, &env);

        let sidecar = container(&children, "redis-exporter");
        assert_eq!(args(&sidecar), redis_exporter::args(REDIS_METRICS.number));
        let in_pod = format!("127.0.0.1:{}", webtoon_operator::render::cache::PORT);
        for (key, value) in redis_exporter::env_values(&in_pod) {
            assert!(
                sidecar
                    .env
                    .iter()
                    .flatten()
                    .any(|e| e.name == key && e.value.as_deref() == Some(value.as_str())),
                "the sidecar sets {key}={value}"
            );
        }
        let overrides: Vec<(&str, String)> =
            redis_exporter::env_values(&format!("127.0.0.1:{}", redis.port));
        let port = free_port();
        let exporter = Exporter::start(
            &exporter_binary("WEBTOON_REDIS_EXPORTER", "redis-exporter"),
            &on_loopback(redis_exporter::args(i32::from(port))),
            &container_env(&children, &sidecar, &overrides),
            port,
            redis.dir.0.join("redis-exporter.log"),
        );
        Cache {
            exporter,
            redis,
            conf,
        }
    }

    fn scrape(&self) -> Scrape {
        let scrape = self.exporter.scrape();
        assert_eq!(
            scrape.value("redis_up", &[]),
            1.0,
            "{}",
            self.exporter.log()
        );
        scrape
    }

    /// Writes `count` keys of `size` bytes as the application user, one SET each,
    /// through one redis-cli reading commands from its standard input.
    fn write_keys(&self, prefix: &str, count: usize, size: usize) {
        use std::io::Write;
        let value = "v".repeat(size);
        let commands: String = (0..count)
            .map(|i| format!("SET {prefix}:{i} {value}\n"))
            .collect();
        let mut child = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.redis.port.to_string()])
            .args(["--no-auth-warning", "--user", "webtoon", "--pass"])
            .arg(&test_credentials().cache_password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || stdin.write_all(commands.as_bytes()));
        let out = child.wait_with_output().expect("redis-cli output");
        writer.join().expect("writer").expect("write commands");
        let replies = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            replies.lines().filter(|l| *l == "OK").count(),
            count,
            "every SET succeeded: {}",
            replies.lines().find(|l| *l != "OK").unwrap_or_default()
        );
    }

    /// A command's reply as the monitoring user.
    fn as_monitor(&self, args: &[&str]) -> String {
        self.redis
            .reply(Some((MONITOR_USER, CACHE_MONITOR_PASSWORD)), args)
    }
}

fn rendered_maxmemory(conf: &str) -> f64 {
    conf.lines()
        .find_map(|l| l.strip_prefix("maxmemory "))
        .and_then(|v| v.trim().parse().ok())
        .expect("redis.conf sets maxmemory")
}

#[test]
fn redis_exporter_counts_keys_memory_and_evictions() {
    let cache = Cache::start("exporters-redis-keys");
    let scrape_started = Instant::now();
    let first = cache.scrape();
    eprintln!(
        "redis_exporter scrape: {} samples in {:?}",
        first.samples.len(),
        scrape_started.elapsed()
    );
    assert_eq!(
        first.value("redis_memory_max_bytes", &[]),
        rendered_maxmemory(&cache.conf)
    );
    assert_eq!(first.sum("redis_db_keys", &[("db", "db0")]), 0.0);
    let used_before = first.value("redis_memory_used_bytes", &[]);

    cache.write_keys("episode", 500, 1024);
    let written = cache.scrape();
    assert_eq!(written.value("redis_db_keys", &[("db", "db0")]), 500.0);
    assert!(
        written.value("redis_memory_used_bytes", &[]) >= used_before + 500.0 * 1024.0,
        "500 KiB of values show in used memory: {} then {}",
        used_before,
        written.value("redis_memory_used_bytes", &[])
    );
    assert_eq!(written.value("redis_evicted_keys_total", &[]), 0.0);

    // Twice maxmemory in values: allkeys-lru evicts to stay under it.
    let maxmemory = rendered_maxmemory(&cache.conf);
    let many = (2.0 * maxmemory / 1024.0) as usize;
    cache.write_keys("page", many, 1024);
    let full = cache.scrape();
    let evicted = full.value("redis_evicted_keys_total", &[]);
    let keys = full.value("redis_db_keys", &[("db", "db0")]);
    eprintln!(
        "redis: {many} more keys of 1 KiB into maxmemory {maxmemory}: {evicted} evicted, {keys} kept, {} bytes used",
        full.value("redis_memory_used_bytes", &[])
    );
    assert!(evicted > 0.0, "{}", full.text);
    assert_eq!(
        keys + evicted,
        500.0 + many as f64,
        "every key is kept or evicted"
    );
    // Redis evicts before each write, so one write may overshoot a little.
    assert!(full.value("redis_memory_used_bytes", &[]) <= maxmemory * 1.01);
}

#[test]
fn redis_exporter_runs_only_commands_the_monitoring_user_may_and_reads_no_data() {
    let cache = Cache::start("exporters-redis-acl");
    cache.write_keys("secret", 3, 16);
    // Several scrapes, so that every collector has run more than once.
    for _ in 0..3 {
        cache.scrape();
    }
    let scrape = cache.scrape();
    let log = cache.exporter.log();
    assert!(
        !log.contains("NOPERM") && !log.to_lowercase().contains("level=error"),
        "the exporter ran a command it may not: {log}"
    );
    // Redis counts every error reply by its code; the only one so far is the
    // NOAUTH of the test's unauthenticated readiness check, none NOPERM.
    assert_eq!(
        scrape.sum("redis_errors_total", &[]),
        scrape.sum("redis_errors_total", &[("err", "NOAUTH")]),
        "{}",
        scrape.text
    );
    let used: Vec<&str> = scrape
        .matching("redis_commands_total", &[])
        .filter(|s| s.value > 0.0)
        .map(|s| s.labels["cmd"].as_str())
        .collect();
    eprintln!("commands run on the server (the exporter's and the test's SETs): {used:?}");
    // Every command the ACL grants is one the exporter runs, but PING, which it
    // sends only with `-ping-on-connect` and which a person checking the
    // credentials by hand uses.
    for granted in MONITOR_COMMANDS
        .split_whitespace()
        .filter_map(|c| c.strip_prefix('+'))
        .filter(|c| *c != "ping")
    {
        assert!(
            used.contains(&granted),
            "the exporter runs {granted}: {used:?}"
        );
    }
    assert_eq!(
        scrape.sum("redis_exporter_last_scrape_error", &[]),
        0.0,
        "{}",
        scrape.text
    );
    // What the exporter needs works; nothing that reads data or configuration does,
    // and each refusal shows in the error counts the exporter reads.
    assert!(cache.as_monitor(&["ping"]).contains("PONG"));
    let denied = [
        &["get", "secret:0"][..],
        &["config", "get", "maxmemory"],
        &["scan", "0"],
        &["keys", "*"],
        &["client", "list"],
        &["set", "k", "v"],
        &["acl", "log"],
    ];
    for command in denied {
        let reply = cache.as_monitor(command);
        assert!(reply.contains("NOPERM"), "{command:?}: {reply}");
    }
    let after = cache.scrape();
    assert_eq!(
        after.value("redis_errors_total", &[("err", "NOPERM")]),
        denied.len() as f64,
        "{}",
        after.text
    );
}
