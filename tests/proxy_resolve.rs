//! The proxy's in-cluster upstream for real: nginx 1.28 (built from NGINX's source by
//! `tests/build-nginx.sh`, as Debian's 1.22 has no `server ... resolve`) runs the
//! rendered configuration with the in-cluster upstream, resolving the headless WAS
//! Service through a DNS server that stands in for the cluster DNS. Only listen
//! addresses, file paths and the resolver's address differ from what the proxy pods
//! run.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::clients::{curl, wrk_command};
use common::dns::Dns;
use common::nginx::{
    Nginx, Ports, local_layout, resolving_nginx_binary, wait_for_traffic, wait_report,
};
use common::process::{Guard, free_port};
use common::test_was::TestWas;
use common::{TempDir, stack_from_yaml};
use webtoon_operator::render::proxy::nginx_conf::{
    NginxLayout, RESOLVE_VALID_SECONDS, Upstream, nginx_conf,
};
use webtoon_operator::render::was::DRAIN_SECONDS;

const HOST: &str = "toon.example";

/// What the cluster DNS would hand out for the first WAS pods, and for their
/// replacements: loopback addresses, all with the WAS on the same port.
const POD_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const POD_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const POD_C: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
const POD_D: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

/// nginx with the in-cluster upstream, a DNS server for the headless Service, and
/// the WAS pods. Fields drop in order: nginx stops first, the directory goes last.
struct Cluster {
    nginx: Nginx,
    dns: Dns,
    was_port: u16,
    /// Held, not read: removed only after nginx has stopped.
    _dir: TempDir,
}

impl Cluster {
    fn start(name: &str, pods: &[Ipv4Addr]) -> Cluster {
        let dir = TempDir::new(name);
        let was_port = free_port();
        let stack = stack_from_yaml(&format!(
            "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {{name: toon, namespace: webtoon}}
spec:
  hosts: [{HOST}]
  proxy: {{rateLimit: {{enabled: false}}}}
  was: {{image: registry.example/toon/was:1.0.0, port: {was_port}}}
"
        ));
        let Upstream::Resolve { host, port, .. } = NginxLayout::in_cluster(&stack).upstream else {
            panic!("the in-cluster layout resolves the headless Service");
        };
        assert_eq!(host, "toon-was-pods.webtoon.svc.cluster.local");
        assert_eq!(port, i32::from(was_port));
        let dns = Dns::start(&host, pods);
        let ports = Ports::free();
        let layout = NginxLayout {
            upstream: Upstream::Resolve {
                host,
                port,
                resolver: dns.addr.to_string(),
            },
            http2_directive: true,
            ..local_layout(&dir.0, &ports, &[])
        };
        std::fs::create_dir_all(dir.0.join("images")).expect("images directory");
        let conf = nginx_conf(&stack, &layout);
        assert!(conf.contains(" resolve max_fails=1"), "{conf}");
        let nginx = Nginx::start_binary(&resolving_nginx_binary(), &dir.0, &conf, ports);
        Cluster {
            nginx,
            dns,
            was_port,
            _dir: dir,
        }
    }

    /// Starts a WAS pod at `ip` on the WAS port.
    fn pod(&self, name: &str, ip: Ipv4Addr) -> TestWas {
        TestWas::start_at(name, SocketAddr::from((ip, self.was_port)))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.nginx.http())
    }

    /// Sends `n` GETs and asserts each one succeeded.
    fn get_ok(&self, n: usize) {
        for i in 0..n {
            let r = curl(&[
                "-H",
                &format!("Host: {HOST}"),
                &self.url(&format!("/p/{i}")),
            ]);
            assert_eq!(r.status, 200, "{r:?}\n{}", self.nginx.log("error.log"));
        }
    }

    /// Sends GETs until `pod` has served one, or the deadline passes.
    fn until_served_by(&self, pod: &TestWas, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if pod.requests() > 0 {
                return true;
            }
            self.get_ok(1);
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// How long nginx may take to see a DNS change: its re-resolution interval, plus
/// a margin for the query itself and a loaded machine.
fn re_resolution() -> Duration {
    Duration::from_secs(RESOLVE_VALID_SECONDS.unsigned_abs() + 4)
}

#[test]
fn nginx_balances_over_the_pods_the_headless_name_resolves_to_and_follows_changes() {
    let cluster = Cluster::start("proxy-resolve-follow", &[POD_A, POD_B]);
    let a = cluster.pod("pod-a", POD_A);
    let b = cluster.pod("pod-b", POD_B);
    let c = cluster.pod("pod-c", POD_C);

    cluster.get_ok(40);
    assert!(
        a.requests() > 0 && b.requests() > 0,
        "both resolved pods serve"
    );
    assert_eq!(c.requests(), 0, "a pod outside the answer gets nothing");
    assert!(cluster.dns.queries() > 0, "nginx asked the resolver");

    // A pod becomes ready: the cluster DNS adds it, and nginx finds it.
    cluster.dns.set(&[POD_A, POD_B, POD_C]);
    let added = Instant::now();
    assert!(
        cluster.until_served_by(&c, re_resolution()),
        "the added pod got no request within {:?}",
        re_resolution()
    );
    eprintln!("a pod added to DNS served after {:?}", added.elapsed());

    // A pod is removed from the endpoints: once nginx has re-resolved, it sends it
    // nothing more, while the pod (still draining) would have answered.
    cluster.dns.set(&[POD_B, POD_C]);
    std::thread::sleep(re_resolution());
    let a_before = a.requests();
    let b_before = b.requests();
    cluster.get_ok(40);
    assert_eq!(a.requests(), a_before, "the removed pod got requests");
    assert!(b.requests() > b_before, "the remaining pods serve");
}

#[test]
fn replacing_every_was_pod_through_dns_under_load_fails_no_request() {
    // As a rolling update does it: a new pod starts and becomes ready (the cluster
    // DNS adds it), then an old one is removed from the endpoints (the DNS drops it)
    // and keeps serving for the rendered preStop drain before it stops.
    let drain = Duration::from_secs(DRAIN_SECONDS.unsigned_abs());
    let cluster = Cluster::start("proxy-resolve-replace", &[POD_A, POD_B]);
    let mut old = [cluster.pod("pod-a", POD_A), cluster.pod("pod-b", POD_B)];
    let new_ips = [POD_C, POD_D];
    let budget = 2 * (re_resolution() + drain) + Duration::from_secs(4);
    let seconds = u32::try_from(budget.as_secs()).expect("seconds");
    let load = Guard(
        wrk_command(&cluster.url("/episode/1"), HOST, 8, seconds)
            .spawn()
            .expect("wrk runs (install wrk)"),
    );
    let started = Instant::now();
    assert!(wait_for_traffic(&old[0], Duration::from_secs(5)));
    assert!(wait_for_traffic(&old[1], Duration::from_secs(5)));

    let mut serving = vec![POD_A, POD_B];
    let mut replaced = Vec::new();
    let mut late = Vec::new();
    for (i, ip) in new_ips.into_iter().enumerate() {
        let new = cluster.pod(&format!("pod-new-{}", i + 1), ip);
        serving.push(ip);
        cluster.dns.set(&serving);
        assert!(
            wait_for_traffic(&new, re_resolution()),
            "nginx never sent traffic to {}",
            new.name
        );
        serving.retain(|s| *s != old[i].addr.ip());
        cluster.dns.set(&serving);
        let removed = Instant::now();
        std::thread::sleep(re_resolution());
        let after_re_resolution = old[i].requests();
        // The rest of the drain: the pod still answers, but nothing should come.
        std::thread::sleep(drain.saturating_sub(removed.elapsed()));
        late.push(old[i].requests() - after_re_resolution);
        old[i].kill();
        replaced.push(new);
    }
    assert!(
        started.elapsed() < budget,
        "the replacements finished while the load still ran"
    );
    let report = wait_report(load);
    let new_served: Vec<usize> = replaced.iter().map(TestWas::requests).collect();
    eprintln!(
        "replace every WAS pod through DNS (drain {DRAIN_SECONDS} s): {} requests, {} non-2xx/3xx, {} socket errors; new pods served {new_served:?}; old pods got {late:?} requests after nginx re-resolved",
        report.requests, report.non_2xx_3xx, report.socket_errors
    );
    report.assert_no_request_failed();
    assert!(new_served.iter().all(|n| *n > 100), "{new_served:?}");
    assert_eq!(
        late,
        [0, 0],
        "nginx stopped sending to each old pod before its drain ended"
    );
}
