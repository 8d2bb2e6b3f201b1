//! Hostile or malformed values are rejected by `validate` with a message that names
//! the field, by the CRD schema as well, and never reach a rendered nginx.conf or a
//! rendered database script. The cases cover every user string that nginx.conf
//! contains (metadata name and namespace, hosts, CIDRs, admin paths, the image URL
//! path, sizes, times, the resolver and the FastCGI root) and those the database
//! scripts contain (database and user names, the restore file, the backup time zone).

mod common;

use std::process::Command;

use common::TempDir;
use webtoon_operator::api::WebtoonStack;
use webtoon_operator::manifest::{parse_stacks, validated};

fn base() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "webtoon.io/v1alpha1", "kind": "WebtoonStack",
        "metadata": {"name": "megatoon", "namespace": "webtoon"},
        "spec": {"hosts": ["megatoon.example"], "was": {"image": "registry.example/was:1.0.0"}},
    })
}

/// (field path in the message, JSON pointer to set, hostile value)
fn cases() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    use serde_json::json;
    vec![
        (
            "spec.hosts[0]",
            "/spec/hosts/0",
            json!("a.example; include /etc/passwd"),
        ),
        (
            "spec.hosts[0]",
            "/spec/hosts/0",
            json!("a.example}\nserver{"),
        ),
        (
            "spec.proxy.admin.allowCIDRs[0]",
            "/spec/proxy",
            json!({"admin": {"allowCIDRs": ["10.0.0.0/33"]}}),
        ),
        (
            "spec.proxy.admin.allowCIDRs[0]",
            "/spec/proxy",
            json!({"admin": {"allowCIDRs": ["10.0.0.0/8; allow all"]}}),
        ),
        (
            "spec.proxy.clientMaxBodySize",
            "/spec/proxy",
            json!({"clientMaxBodySize": "1m; autoindex on"}),
        ),
        (
            "spec.proxy.admin.paths[0]",
            "/spec/proxy",
            json!({"admin": {"paths": ["/admin { return 200; }"]}}),
        ),
        (
            "spec.storage.urlPath",
            "/spec/storage",
            json!({"urlPath": "/images; alias /etc/"}),
        ),
        (
            "spec.proxy.cache.staticMaxAge",
            "/spec/proxy",
            json!({"cache": {"staticMaxAge": "7d; add_header X 1"}}),
        ),
        (
            "spec.proxy.cache.size",
            "/spec/proxy",
            json!({"cache": {"size": "512Mi; autoindex on"}}),
        ),
        (
            "spec.proxy.trustedProxyCIDRs[0]",
            "/spec/proxy",
            json!({"trustedProxyCIDRs": ["0.0.0.0/0;"]}),
        ),
        (
            "spec.proxy.resolver",
            "/spec/proxy",
            json!({"resolver": "dns; include x"}),
        ),
        (
            "spec.was.fastcgiRoot",
            "/spec/was/fastcgiRoot",
            json!("/var/www; fastcgi_param X y"),
        ),
        (
            "spec.database.name",
            "/spec/database",
            json!({"name": "w`; DROP DATABASE mysql; --"}),
        ),
        (
            "spec.database.user",
            "/spec/database",
            json!({"user": "app'@'%' IDENTIFIED BY 'x"}),
        ),
        (
            "spec.database.restore.from",
            "/spec/database",
            json!({"restore": {"from": "../../etc/passwd.sql.gz"}}),
        ),
        (
            "spec.database.restore.from",
            "/spec/database",
            json!({"restore": {"from": "$(reboot).sql.gz"}}),
        ),
        (
            "spec.database.backup.objectStore.endpoint",
            "/spec/database",
            json!({"backup": {"objectStore": {"endpoint": "https://s3.example/; rm -rf /", "bucket": "b-1", "secretName": "s3"}}}),
        ),
        (
            "spec.database.backup.objectStore.endpoint",
            "/spec/database",
            json!({"backup": {"objectStore": {"endpoint": "http://minio.backup:9000", "bucket": "b-1", "secretName": "s3"}}}),
        ),
        (
            "spec.database.backup.objectStore.bucket",
            "/spec/database",
            json!({"backup": {"objectStore": {"endpoint": "https://s3.example", "bucket": "Bad_Bucket", "secretName": "s3"}}}),
        ),
        (
            "spec.database.backup.objectStore.prefix",
            "/spec/database",
            json!({"backup": {"objectStore": {"endpoint": "https://s3.example", "bucket": "b-1", "prefix": "../other/", "secretName": "s3"}}}),
        ),
        (
            "spec.database.backup.objectStore.egressCIDRs[0]",
            "/spec/database",
            json!({"backup": {"objectStore": {"endpoint": "https://s3.example", "bucket": "b-1", "secretName": "s3", "egressCIDRs": ["any"]}}}),
        ),
        (
            "spec.database.restore.objectStore.secretName",
            "/spec/database",
            json!({"restore": {"from": "latest", "objectStore": {"endpoint": "https://s3.example", "bucket": "b-1", "secretName": "S3 Keys"}}}),
        ),
        (
            "spec.database.backup.timeZone",
            "/spec/database",
            json!({"backup": {"timeZone": "Asia/Seoul; rm -rf /"}}),
        ),
        (
            "metadata.namespace",
            "/metadata/namespace",
            json!("webtoon;\n}\nserver {"),
        ),
        (
            "metadata.name",
            "/metadata/name",
            json!("megatoon; include /etc/passwd"),
        ),
        ("spec.was.image", "/spec/was/image", json!("nginx:latest")),
        ("spec.was.image", "/spec/was/image", json!("nginx")),
    ]
}

/// The base stack with `value` written at `pointer`.
fn with(pointer: &str, value: &serde_json::Value) -> serde_json::Value {
    let mut doc = base();
    if doc.pointer(pointer).is_none() {
        let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
        doc.pointer_mut(parent).expect("parent exists")[key] = serde_json::Value::Null;
    }
    *doc.pointer_mut(pointer).expect("pointer") = value.clone();
    doc
}

#[test]
fn hostile_values_are_rejected_with_the_field_named() {
    for (field, pointer, value) in cases() {
        assert_refused_naming(
            field,
            pointer,
            &value,
            &["such as", "replace", "write", "choose"],
        );
    }
}

/// Asserts that `validate` refuses `value` at `pointer` with a message that names
/// `field` and offers a fix in one of the words of `fixes`.
fn assert_refused_naming(field: &str, pointer: &str, value: &serde_json::Value, fixes: &[&str]) {
    let stack: WebtoonStack =
        serde_json::from_value(with(pointer, value)).expect("the value still deserializes");
    let errors = match validated(&stack) {
        Ok(_) => panic!("{value} at {pointer} was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        errors.contains(field),
        "message for {value} does not name {field}: {errors}"
    );
    assert!(
        fixes.iter().any(|fix| errors.contains(fix)),
        "message for {value} says no fix: {errors}"
    );
}

/// Values the CRD schema and its CEL rules let through but the API server refuses
/// in a rendered child (or in a CEL rule's evaluation), found by
/// e2e/tests/validate_agrees.rs against a real API server: `validate` must refuse
/// them, naming the field. (field path in the message, JSON pointer, value)
fn cases_the_server_refuses_in_children() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    use serde_json::json;
    let backup = |field: &str, value: &str| json!({"backup": {field: value}});
    vec![
        (
            "spec.database.backup.schedule",
            "/spec/database",
            backup("schedule", "61 * * * *"),
        ),
        (
            "spec.database.backup.schedule",
            "/spec/database",
            backup("schedule", "*/0 * * * *"),
        ),
        (
            "spec.database.backup.schedule",
            "/spec/database",
            backup("schedule", "0 0 * * 7"),
        ),
        (
            "spec.database.backup.schedule",
            "/spec/database",
            backup("schedule", "0 0 L * *"),
        ),
        (
            "spec.database.backup.schedule",
            "/spec/database",
            backup("schedule", "0 0 * * MON#1"),
        ),
        (
            "spec.database.backup.verify.schedule",
            "/spec/database",
            json!({"backup": {"verify": {"schedule": "0 0 31 2 8"}}}),
        ),
        (
            "spec.database.backup.timeZone",
            "/spec/database",
            backup("timeZone", "Mars/Olympus"),
        ),
        (
            "spec.database.backup.timeZone",
            "/spec/database",
            backup("timeZone", "asia/seoul"),
        ),
        (
            "spec.database.backup.timeZone",
            "/spec/database",
            backup("timeZone", "Local"),
        ),
        (
            "spec.storage.mountPath",
            "/spec/storage",
            json!({"mountPath": "/tmp"}),
        ),
        ("spec.storage.size", "/spec/storage", json!({"size": "0"})),
        (
            "spec.database.storage.size",
            "/spec/database",
            json!({"storage": {"size": "0"}}),
        ),
        (
            "spec.was.env[1].name",
            "/spec/was/env",
            json!([{"name": "TZ", "value": "a"}, {"name": "TZ", "value": "b"}]),
        ),
        (
            "spec.was.env[0].name",
            "/spec/was/env",
            json!([{"name": "BAD=NAME", "value": "x"}]),
        ),
        (
            "spec.was.env[0].name",
            "/spec/was/env",
            json!([{"name": "", "value": "x"}]),
        ),
        (
            "spec.was.env[0].valueFrom",
            "/spec/was/env",
            json!([{"name": "BOTH", "value": "x", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]),
        ),
        (
            "spec.was.env[0].valueFrom.fieldRef",
            "/spec/was/env",
            json!([{"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "spec.nothing"}}}]),
        ),
        (
            "spec.proxy.service.annotations",
            "/spec/proxy",
            json!({"service": {"annotations": {"bad key": "x"}}}),
        ),
        (
            "spec.was.resources.requests.cpu",
            "/spec/was/resources",
            json!({"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
        ),
        (
            "spec.was.resources.requests.memory",
            "/spec/was/resources",
            json!({"requests": {"memory": "-1Gi"}}),
        ),
        (
            "spec.cache.resources.requests.gpu",
            "/spec/cache",
            json!({"resources": {"requests": {"gpu": "1"}}}),
        ),
        (
            "spec.cache.resources.limits.nvidia.com/gpu",
            "/spec/cache",
            json!({"resources": {"limits": {"nvidia.com/gpu": "500m"}}}),
        ),
        (
            "spec.cache.resources.claims",
            "/spec/cache",
            json!({"resources": {"claims": [{"name": "gpu"}]}}),
        ),
        (
            "spec.proxy.trustedProxyCIDRs[0]",
            "/spec/proxy",
            json!({"trustedProxyCIDRs": ["::ffff:10.0.0.0/104"]}),
        ),
        (
            "spec.proxy.trustedProxyCIDRs[0]",
            "/spec/proxy",
            json!({"trustedProxyCIDRs": ["10.0.0.0/08"]}),
        ),
        (
            "spec.network.ingressFromCIDRs[0]",
            "/spec/network",
            json!({"ingressFromCIDRs": ["10.0.0.1/8"]}),
        ),
        (
            "spec.network.wasEgress[0].cidr",
            "/spec/network",
            json!({"wasEgress": [{"cidr": "203.0.113.1/24", "ports": [443]}]}),
        ),
        (
            "spec.scaling.schedules[0].start",
            "/spec/scaling",
            json!({"schedules": [{"name": "sale", "start": "2026-12-01T09:00:60Z", "end": "2026-12-02T09:00:00Z"}]}),
        ),
        (
            "spec.scaling.schedules[0].start",
            "/spec/scaling",
            json!({"schedules": [{"name": "sale", "start": "0000-01-01T00:00:00Z", "end": "2026-12-02T09:00:00Z"}]}),
        ),
        // A NetworkPolicy's podSelector and a PodMonitor's labels are Kubernetes labels.
        (
            "spec.monitoring.prometheusPodLabels[\"app kubernetes\"]",
            "/spec/monitoring",
            json!({"prometheusPodLabels": {"app kubernetes": "prometheus"}}),
        ),
        (
            "spec.monitoring.podMonitorLabels[\"release\"]",
            "/spec/monitoring",
            json!({"podMonitorLabels": {"release": "-prometheus"}}),
        ),
        (
            "spec.monitoring.podMonitorLabels[\"release\"]",
            "/spec/monitoring",
            json!({"podMonitorLabels": {"release": "r".repeat(64)}}),
        ),
    ]
}

#[test]
fn values_the_api_server_refuses_are_rejected_by_validate_with_the_field_named() {
    for (field, pointer, value) in cases_the_server_refuses_in_children() {
        assert_refused_naming(field, pointer, &value, &["such as", "write"]);
    }
}

#[test]
fn valid_edge_values_stay_accepted() {
    use serde_json::json;
    for (pointer, value) in [
        (
            "/spec/database",
            json!({"backup": {"schedule": "0 0 * JAN-MAR MON-FRI", "timeZone": "America/Argentina/Buenos_Aires"}}),
        ),
        (
            "/spec/database",
            json!({"backup": {"schedule": "*/15 0-23/2 1,15 * sun", "timeZone": "Etc/GMT+5"}}),
        ),
        (
            "/spec/was/resources",
            json!({"requests": {"cpu": "0.5", "memory": "1e3"}, "limits": {"cpu": "1", "memory": "1Ki", "example.com/gpu": "1"}}),
        ),
        (
            "/spec/network",
            json!({"ingressFromCIDRs": ["10.0.0.0/8", "fd00::/8", "1.2.3.4/32"]}),
        ),
        (
            "/spec/was/env",
            json!([{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}, {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
        ),
        (
            "/spec/proxy",
            json!({"service": {"annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}}}),
        ),
    ] {
        let stack: WebtoonStack =
            serde_json::from_value(with(pointer, &value)).expect("the value deserializes");
        if let Err(e) = validated(&stack) {
            panic!("{value} at {pointer} is refused: {e}");
        }
    }
}

#[test]
fn hostile_values_are_rejected_by_the_crd_schema_too() {
    let validator = common::crd_schema_validator();
    assert!(validator.is_valid(&base()));
    for (_, pointer, value) in cases() {
        // CIDR prefix lengths, `:latest`, clear-text endpoints and the stack name are
        // CEL rules, covered by the CEL tests; the API server checks namespaces itself.
        if value.to_string().contains("/33")
            || value.to_string().contains("http://")
            || value == "nginx:latest"
            || pointer.starts_with("/metadata/")
        {
            continue;
        }
        let doc = with(pointer, &value);
        assert!(
            !validator.is_valid(&doc),
            "the CRD schema accepts {value} at {pointer}"
        );
    }
}

#[test]
fn validate_command_exits_non_zero_and_render_prints_no_config() {
    let dir = TempDir::new("bad-input-cli");
    let binary = env!("CARGO_BIN_EXE_webtoon-operator");
    for (field, pointer, value) in cases() {
        let doc = with(pointer, &value);
        let path = dir.0.join("stack.yaml");
        std::fs::write(&path, serde_json::to_string(&doc).expect("json")).expect("write");
        let out = Command::new(binary)
            .arg("validate")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("run validate");
        assert_eq!(out.status.code(), Some(1), "validate accepted {value}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(field));
        let out = Command::new(binary)
            .arg("render")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("run render");
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty(), "render printed output for {value}");
    }
}

#[test]
fn misspelt_fields_and_wrong_types_name_the_field() {
    let text = "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {name: t}\nspec:\n  hosts: [t.example]\n  was: {image: 'w:1', replica: 3}\n";
    let err = parse_stacks("t.yaml", text)
        .expect_err("typo rejected")
        .to_string();
    assert!(err.contains("spec.was.replica"), "{err}");
    let text = "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {name: t}\nspec:\n  hosts: [t.example]\n  was: {image: 'w:1', replicas: three}\n";
    let err = parse_stacks("t.yaml", text)
        .expect_err("wrong type rejected")
        .to_string();
    assert!(err.contains("spec.was.replicas"), "{err}");
}
