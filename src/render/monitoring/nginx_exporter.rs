//! nginx-prometheus-exporter beside nginx: connections and requests from
//! `stub_status`, which nginx serves on its health port to 127.0.0.1 only.

use k8s_openapi::api::core::v1::Container;

use super::{NGINX_METRICS, exporter_container};
use crate::render::proxy::nginx_conf::{HEALTH_PORT, STATUS_PATH};

/// The exporter's arguments, scraping `stub_status` at `status_address` and serving
/// metrics on `listen_port`.
pub fn args(status_address: &str, listen_port: i32) -> Vec<String> {
    vec![
        format!("--nginx.scrape-uri=http://{status_address}{STATUS_PATH}"),
        format!("--web.listen-address=:{listen_port}"),
        "--web.telemetry-path=/metrics".to_string(),
    ]
}

/// The exporter's sidecar in a proxy pod.
pub fn container(image: &str) -> Container {
    exporter_container(
        "nginx-exporter",
        image,
        args(&format!("127.0.0.1:{HEALTH_PORT}"), NGINX_METRICS.number),
        Vec::new(),
        NGINX_METRICS,
    )
}
