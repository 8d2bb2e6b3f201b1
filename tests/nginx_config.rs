//! The rendered nginx.conf of every example is accepted by a real nginx (`nginx -t`),
//! in the static-upstream form that Debian's nginx 1.22 supports.

mod common;

use std::process::Command;

use common::{TempDir, example_files, stacks_in};
use webtoon_operator::manifest::validated;
use webtoon_operator::render::proxy::nginx_conf::{NginxLayout, Upstream, nginx_conf};

fn nginx() -> String {
    std::env::var("WEBTOON_TEST_NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".to_string())
}

fn local_layout(dir: &std::path::Path) -> NginxLayout {
    let d = dir.display();
    NginxLayout {
        http_listen: "127.0.0.1:18080".to_string(),
        https_listen: "127.0.0.1:18443".to_string(),
        health_listen: "127.0.0.1:18081".to_string(),
        upstream: Upstream::Static(vec![
            "127.0.0.1:19001".to_string(),
            "127.0.0.1:19002".to_string(),
        ]),
        tls_certificate: format!("{d}/tls.crt"),
        tls_certificate_key: format!("{d}/tls.key"),
        images_root: format!("{d}/images"),
        cache_dir: format!("{d}/cache"),
        temp_dir: format!("{d}"),
        pid_file: format!("{d}/nginx.pid"),
        mime_types: "/etc/nginx/mime.types".to_string(),
        fastcgi_params: "/etc/nginx/fastcgi_params".to_string(),
        error_log: format!("{d}/error.log warn"),
        access_log: format!("{d}/access.log"),
        http2_directive: false,
    }
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
            let conf = nginx_conf(&stack, &local_layout(&dir.0));
            let conf_path = dir.0.join(format!("{}.conf", stack.name));
            std::fs::write(&conf_path, &conf).expect("write conf");
            let out = Command::new(nginx())
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

#[test]
fn in_cluster_form_resolves_the_headless_service_and_uses_the_http2_directive() {
    let file = common::root().join("examples/production.yaml");
    let stack = validated(&stacks_in(&file)[0]).expect("valid");
    let conf = nginx_conf(&stack, &NginxLayout::in_cluster(&stack));
    assert!(conf.contains("resolver kube-dns.kube-system.svc.cluster.local valid=5s ipv6=off;"));
    assert!(conf.contains("server megatoon-was-pods.webtoon.svc.cluster.local:8080 resolve max_fails=1 fail_timeout=5s;"));
    assert!(conf.contains("zone webtoon_was 256k;"));
    assert!(conf.contains("listen 8443 ssl;\n        http2 on;"));
    let local = nginx_conf(&stack, &local_layout(std::path::Path::new("/x")));
    assert!(!local.contains("resolve"));
    assert!(local.contains("listen 127.0.0.1:18443 ssl http2;"));
}
