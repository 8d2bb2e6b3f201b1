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
        let doc = with(pointer, &value);
        let stack: WebtoonStack =
            serde_json::from_value(doc).expect("hostile value still deserializes");
        let errors = match validated(&stack) {
            Ok(_) => panic!("{value} at {pointer} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            errors.contains(field),
            "message for {value} does not name {field}: {errors}"
        );
        assert!(
            ["such as", "replace", "write", "choose"]
                .iter()
                .any(|fix| errors.contains(fix)),
            "message for {value} says no fix: {errors}"
        );
    }
}

#[test]
fn hostile_values_are_rejected_by_the_crd_schema_too() {
    let validator = common::crd_schema_validator();
    assert!(validator.is_valid(&base()));
    for (_, pointer, value) in cases() {
        // CIDR prefix lengths, `:latest` and the stack name are CEL rules, covered by
        // the CEL tests; the API server checks namespaces itself.
        if value.to_string().contains("/33")
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
