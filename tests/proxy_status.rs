//! The proxy's health server as the kubelet and a client see it: the endpoint the
//! rendered probes call answers every address (the kubelet probes from the node's),
//! while nginx's status counters answer only the pod itself.

mod common;

use common::clients::curl;
use common::nginx::{Nginx, Ports, local_layout};
use common::test_was::TestWas;
use common::{TempDir, stack_from_yaml};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use webtoon_operator::render::proxy::nginx_conf::{
    HEALTH_PATH, HEALTH_PORT, NginxLayout, STATUS_PATH, nginx_conf,
};
use webtoon_operator::render::proxy::pod_template;

const STACK: &str = "
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: toon, namespace: webtoon}
spec:
  hosts: [toon.example]
  was: {image: registry.example/toon/was:1.0.0}
";

#[test]
fn probes_reach_the_health_endpoint_from_anywhere_and_status_only_from_the_pod() {
    let stack = stack_from_yaml(STACK);

    // What the kubelet calls: the rendered probes' path on the port named `health`,
    // which is the health server's port.
    let template = pod_template(
        &stack,
        &nginx_conf(&stack, &NginxLayout::in_cluster(&stack)),
    );
    let container = &template.spec.expect("pod spec").containers[0];
    let health_port = container
        .ports
        .as_ref()
        .expect("ports")
        .iter()
        .find(|p| p.name.as_deref() == Some("health"))
        .expect("a health port");
    assert_eq!(health_port.container_port, HEALTH_PORT);
    for probe in [&container.readiness_probe, &container.liveness_probe] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("an HTTP probe");
        assert_eq!(get.path.as_deref(), Some(HEALTH_PATH));
        assert_eq!(get.port, IntOrString::String("health".to_string()));
    }

    let dir = TempDir::new("proxy-status");
    std::fs::create_dir_all(dir.0.join("images")).expect("images");
    let was = TestWas::start("was-1");
    let ports = Ports::free();
    let conf = nginx_conf(&stack, &local_layout(&dir.0, &ports, &[was.address()]));
    let nginx = Nginx::start(&dir.0, &conf, ports);
    let health = |path: &str, from: &str| {
        curl(&[
            "--interface",
            from,
            &format!("http://127.0.0.1:{}{path}", nginx.ports.health),
        ])
    };

    // A node's address stands for the kubelet; 127.0.0.1 for the pod itself.
    for from in ["127.0.0.2", "127.0.0.1"] {
        let r = health(HEALTH_PATH, from);
        assert_eq!((r.status, r.text().as_str()), (200, "ok\n"), "from {from}");
    }
    let r = health(STATUS_PATH, "127.0.0.2");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!r.text().contains("Active connections"), "{r:?}");
    let r = health(STATUS_PATH, "127.0.0.1");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text().starts_with("Active connections:"), "{r:?}");
    assert_eq!(was.requests(), 0, "the health server never asks the WAS");
}
