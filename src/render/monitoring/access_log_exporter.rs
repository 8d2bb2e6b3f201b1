//! prometheus-nginxlog-exporter beside nginx: nginx sends every request's log line
//! over syslog to 127.0.0.1, and the exporter counts requests by status class and by
//! what the upstream did, with histograms of the response and upstream times. These
//! are what `stub_status` cannot say: errors, retries and latency.

use k8s_openapi::api::core::v1::Container;

use super::{ACCESS_LOG_METRICS, ACCESS_LOG_SYSLOG_PORT, exporter_container};
use crate::render::volumes::mount;

/// The syslog tag nginx sends and the exporter accepts.
pub const SYSLOG_TAG: &str = "nginx";

/// The access log format nginx writes for the exporter; the exporter parses it by
/// the same string. `$request` gives the method; nothing of a client is exported.
pub const LOG_FORMAT: &str = r#"$status $body_bytes_sent $request_length $request_time "$request" "$upstream_status" "$upstream_response_time" "$upstream_connect_time""#;

/// Prefix of the exporter's metric names, such as `nginxlog_http_response_count_total`.
pub const METRICS_PREFIX: &str = "nginxlog";

/// Key of the exporter's configuration in the proxy's ConfigMap.
pub const CONFIG_KEY: &str = "access-log-exporter.yaml";

/// Where the exporter finds its configuration.
const CONFIG_DIR: &str = "/etc/webtoon-access-log-exporter";

/// Upper bounds, in seconds, of the latency histograms' buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The exporter's configuration (YAML). Labels: `method`; `status` as its class
/// (`2xx`); `upstream`: `none` when nginx answered itself (an image, a cache hit, a
/// refusal), `ok` when the first WAS pod answered, `retried` when an attempt failed
/// and another pod answered, `failed` when every attempt failed.
pub fn config(listen_port: i32, syslog_address: &str) -> String {
    let buckets: Vec<String> = LATENCY_BUCKETS.iter().map(|b| b.to_string()).collect();
    // A quoted YAML string: the format holds `"` and the regexps hold `\`.
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
    format!(
        r#"# Rendered by webtoon-operator.
listen:
  port: {listen_port}
  address: 0.0.0.0
  metrics_endpoint: /metrics
namespaces:
  - name: {METRICS_PREFIX}
    format: {format}
    source:
      syslog:
        listen_address: udp://{syslog_address}
        format: rfc3164
        tags: [{SYSLOG_TAG}]
    relabel_configs:
      - target_label: status
        from: status
        matches:
          - regexp: {status}
            replacement: {status_class}
      - target_label: upstream
        from: upstream_status
        matches:
          - regexp: {none}
            replacement: none
          - regexp: {failed}
            replacement: failed
          - regexp: {retried}
            replacement: retried
          - regexp: {ok}
            replacement: ok
    histogram_buckets: [{buckets}]
"#,
        format = quoted(LOG_FORMAT),
        status = quoted("^([1-5])[0-9][0-9]$"),
        status_class = quoted("${1}xx"),
        none = quoted("^-?$"),
        // 502 and 504 are what nginx records for an attempt it could not complete.
        failed = quoted("^(502|504)(, (502|504))*$"),
        retried = quoted("^.*, .*$"),
        ok = quoted("^.+$"),
        buckets = buckets.join(", "),
    )
}

/// The exporter's configuration as the proxy pods use it.
pub fn in_cluster_config() -> String {
    config(
        ACCESS_LOG_METRICS.number,
        &format!("127.0.0.1:{ACCESS_LOG_SYSLOG_PORT}"),
    )
}

/// The exporter's sidecar, reading its configuration from the proxy's ConfigMap
/// mounted as `config_volume`.
pub fn container(image: &str, config_volume: &str) -> Container {
    let mut container = exporter_container(
        "access-log-exporter",
        image,
        vec![
            format!("-config-file={CONFIG_DIR}/{CONFIG_KEY}"),
            "-log-format=json".to_string(),
        ],
        Vec::new(),
        ACCESS_LOG_METRICS,
    );
    container
        .volume_mounts
        .get_or_insert_with(Vec::new)
        .push(mount(config_volume, CONFIG_DIR, true));
    container
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_format_nginx_writes_and_classifies_upstreams_in_order() {
        let text = config(4040, "127.0.0.1:5514");
        assert!(text.contains("listen_address: udp://127.0.0.1:5514"));
        assert!(text.contains(r#"format: '$status $body_bytes_sent"#));
        let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} in {text}"));
        assert!(at("replacement: none") < at("replacement: failed"));
        assert!(at("replacement: failed") < at("replacement: retried"));
        assert!(at("replacement: retried") < at("replacement: ok"));
        assert!(text.contains("histogram_buckets: [0.005, 0.01,"));
    }
}
