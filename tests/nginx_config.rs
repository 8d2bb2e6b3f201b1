//! The rendered nginx.conf of every example is accepted by a real nginx (`nginx -t`),
//! in the static-upstream form that Debian's nginx 1.22 supports.

mod common;

use std::collections::HashSet;
use std::process::Command;

use common::nginx::{Ports, local_layout, nginx_binary};
use common::{TempDir, example_files, stacks_in};
use webtoon_operator::api::DEFAULT_PROXY_IMAGE;
use webtoon_operator::manifest::validated;
use webtoon_operator::render::proxy::nginx_conf::{
    NginxLayout, RESOLVE_VALID_SECONDS, Upstream, nginx_conf,
};
use webtoon_operator::render::was::DRAIN_SECONDS;
use webtoon_operator::render::{Observed, render};

/// Fixed ports and WAS addresses: `nginx -t` binds nothing, so they need not be free.
fn check_layout(dir: &std::path::Path) -> NginxLayout {
    let ports = Ports {
        http: 18080,
        https: 18443,
        health: 18081,
    };
    let upstreams = ["127.0.0.1:19001".to_string(), "127.0.0.1:19002".to_string()];
    local_layout(dir, &ports, &upstreams)
}

#[test]
fn every_example_config_passes_nginx_syntax_check() {
    let dir = TempDir::new("nginx-config");
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test",
        ])
        .arg("-keyout")
        .arg(dir.0.join("tls.key"))
        .arg("-out")
        .arg(dir.0.join("tls.crt"))
        .output()
        .expect("openssl runs");
    assert!(
        status.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::create_dir_all(dir.0.join("images")).expect("images dir");

    let mut checked = 0;
    for file in example_files() {
        for stack in stacks_in(&file) {
            let stack = validated(&stack).expect("example is valid");
            let conf = nginx_conf(&stack, &check_layout(&dir.0));
            let conf_path = dir.0.join(format!("{}.conf", stack.name));
            std::fs::write(&conf_path, &conf).expect("write conf");
            let out = Command::new(nginx_binary())
                .arg("-t")
                .arg("-e")
                .arg(dir.0.join("startup.log"))
                .arg("-p")
                .arg(&dir.0)
                .arg("-c")
                .arg(&conf_path)
                .output()
                .expect("nginx runs (install nginx-light)");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{}: nginx -t failed:\n{stderr}\n{conf}",
                file.display()
            );
            assert!(stderr.contains("syntax is ok"), "{stderr}");
            checked += 1;
        }
    }
    assert_eq!(checked, example_files().len());
}

/// The trimmed lines of `a` that `b` does not have, in order.
fn lines_only_in<'a>(a: &'a str, b: &str) -> Vec<&'a str> {
    let theirs: HashSet<&str> = b.lines().collect();
    a.lines()
        .filter(|l| !theirs.contains(l))
        .map(str::trim)
        .collect()
}

/// The proxy tests run the static-address form in Debian's nginx 1.22; this pins
/// down every line in which the in-cluster form differs from it.
#[test]
fn in_cluster_form_differs_from_the_tested_form_only_in_how_the_was_are_found() {
    let file = common::root().join("examples/production.yaml");
    let stack = validated(&stacks_in(&file)[0]).expect("valid");
    let cluster = NginxLayout::in_cluster(&stack);
    let tested = NginxLayout {
        upstream: Upstream::Static(vec![
            "10.0.0.1:8080".to_string(),
            "10.0.0.2:8080".to_string(),
        ]),
        http2_directive: false,
        ..cluster.clone()
    };
    let cluster_conf = nginx_conf(&stack, &cluster);
    let tested_conf = nginx_conf(&stack, &tested);
    assert_eq!(
        lines_only_in(&cluster_conf, &tested_conf),
        vec![
            "resolver kube-dns.kube-system.svc.cluster.local valid=5s ipv6=off;",
            "resolver_timeout 2s;",
            "server megatoon-was-pods.webtoon.svc.cluster.local:8080 resolve max_fails=1 fail_timeout=5s;",
            "listen 8443 ssl;",
            "http2 on;",
        ]
    );
    assert_eq!(
        lines_only_in(&tested_conf, &cluster_conf),
        vec![
            "server 10.0.0.1:8080 max_fails=1 fail_timeout=5s;",
            "server 10.0.0.2:8080 max_fails=1 fail_timeout=5s;",
            "listen 8443 ssl http2;",
        ]
    );
    // `resolve` keeps the addresses it finds in the upstream's shared memory zone.
    assert!(cluster_conf.contains("upstream webtoon_was {\n        zone webtoon_was 256k;"));

    // The tests' layout changes only addresses and file paths on top of that.
    let local = nginx_conf(&stack, &check_layout(std::path::Path::new("/x")));
    assert!(!local.contains(" resolve"));
    assert!(!local.contains("resolver"));
    assert!(local.contains("listen 127.0.0.1:18443 ssl http2;"));
    assert!(local.contains("server 127.0.0.1:19001 max_fails=1 fail_timeout=5s;"));
}

/// `server ... resolve` exists in open-source nginx from 1.27.3 on.
#[test]
fn default_proxy_image_is_pinned_and_new_enough_for_resolve() {
    let (_, tag) = DEFAULT_PROXY_IMAGE
        .rsplit_once(':')
        .expect("the default proxy image has a tag");
    let version: Vec<u32> = tag
        .split('-')
        .next()
        .expect("version part")
        .split('.')
        .map(|p| p.parse().expect("numeric version"))
        .collect();
    assert_eq!(version.len(), 3, "a full x.y.z version: {tag}");
    assert!(
        version >= vec![1, 27, 3],
        "{DEFAULT_PROXY_IMAGE} is older than nginx 1.27.3"
    );
    // A stack that names no image gets exactly this one.
    let file = common::root().join("examples/minimal.yaml");
    let stack = validated(&stacks_in(&file)[0]).expect("valid");
    assert_eq!(stack.spec.proxy.image, DEFAULT_PROXY_IMAGE);
}

/// In the cluster nginx may still pick a terminating WAS pod until the endpoint
/// update, the DNS TTL and its own re-resolution interval have passed: the pod must
/// keep accepting requests that long before it stops.
#[test]
fn was_pods_keep_serving_until_nginx_has_re_resolved() {
    let file = common::root().join("examples/production.yaml");
    let stack = validated(&stacks_in(&file)[0]).expect("valid");
    let conf = nginx_conf(&stack, &NginxLayout::in_cluster(&stack));
    assert!(conf.contains(&format!("valid={RESOLVE_VALID_SECONDS}s")));

    let children = render(&stack, &Observed::default());
    let pod = children
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("megatoon-was"))
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.spec.clone())
        .expect("WAS pod template");
    let drain = pod.containers[0]
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.sleep.as_ref())
        .map(|s| s.seconds)
        .expect("a preStop sleep");
    assert_eq!(drain, DRAIN_SECONDS);
    // Endpoint update (about a second) plus CoreDNS's 5 s TTL plus nginx's interval.
    assert!(drain > 1 + 5 + RESOLVE_VALID_SECONDS, "{drain} s");
    assert!(pod.termination_grace_period_seconds.expect("grace period") > drain);
}
