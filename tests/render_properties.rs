//! Property test: render never panics on generated valid specs, and every child
//! name is a DNS label within the limit its kind needs (63 characters; 52 for
//! StatefulSets, whose pods carry a revision-hash label built from the name).

mod common;

use proptest::prelude::*;
use serde_json::json;
use webtoon_operator::api::{WebtoonStack, validate};
use webtoon_operator::render::{Observed, render};

fn dns_label(max: usize) -> impl Strategy<Value = String> {
    (1..=max).prop_flat_map(move |len| {
        proptest::string::string_regex(&format!(
            "[a-z]([-a-z0-9]{{0,{}}}[a-z0-9])?",
            len.saturating_sub(2)
        ))
        .expect("regex")
        .prop_filter("length", move |s| s.len() <= max)
    })
}

fn autoscaling() -> impl Strategy<Value = serde_json::Value> {
    (2..20i32, 0..20i32, 10..=100i32).prop_map(|(min, extra, cpu)| {
        json!({"minReplicas": min, "maxReplicas": min + extra, "targetCPUUtilization": cpu})
    })
}

prop_compose! {
    fn stack()(
        name in dns_label(36),
        namespace in dns_label(63),
        hosts in proptest::collection::vec("[a-z][a-z0-9]{0,10}\\.example", 1..4),
        tls in any::<bool>(),
        fastcgi in any::<bool>(),
        proxy_replicas in 2..6i32,
        was_replicas in 2..6i32,
        proxy_autoscaling in proptest::option::of(autoscaling()),
        was_autoscaling in proptest::option::of(autoscaling()),
        external_db in any::<bool>(),
        external_cache in any::<bool>(),
        storage in 0..3u8,
        persistence in any::<bool>(),
        backup in any::<bool>(),
        delete in any::<bool>(),
        floor in proptest::option::of(2..20i32),
        service in 0..3u8,
    ) -> serde_json::Value {
        let hosts: Vec<String> = {
            let mut h = hosts; h.sort(); h.dedup(); h
        };
        let service_type = ["ClusterIP", "NodePort", "LoadBalancer"][usize::from(service)];
        let protocol = if fastcgi { "fastcgi" } else { "http" };
        let deletion_policy = if delete { "Delete" } else { "Retain" };
        let mut spec = json!({
            "hosts": hosts,
            "proxy": {"replicas": proxy_replicas, "service": {"type": service_type}},
            "was": {"image": "registry.example/was:1.0.0", "replicas": was_replicas,
                    "protocol": protocol},
            "deletionPolicy": deletion_policy,
        });
        if tls { spec["tls"] = json!({"secretName": "site-tls"}); }
        if let Some(a) = proxy_autoscaling { spec["proxy"]["autoscaling"] = a; }
        if let Some(a) = was_autoscaling { spec["was"]["autoscaling"] = a; }
        if external_db {
            spec["database"] = json!({"mode": "external", "external": {"host": "db.example", "port": 3306, "secretName": "db"}});
        } else if backup {
            spec["database"] = json!({"backup": {"keep": 3}});
        }
        if external_cache {
            spec["cache"] = json!({"mode": "external", "external": {"host": "redis.example", "port": 6379, "secretName": "redis"}});
        } else if persistence {
            spec["cache"] = json!({"persistence": {"size": "1Gi"}});
        }
        spec["storage"] = match storage {
            0 => json!({}),
            1 => json!({"existingClaim": "images"}),
            _ => json!({"nfs": {"server": "nfs.example", "path": "/exports"}}),
        };
        if let Some(floor) = floor {
            let was_max = spec["was"]["autoscaling"]["maxReplicas"].as_i64().unwrap_or(1000);
            let proxy_max = spec["proxy"]["autoscaling"]["maxReplicas"].as_i64().unwrap_or(1000);
            spec["scaling"] = json!({"schedules": [{
                "name": "sale", "start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T21:00:00+09:00",
                "was": {"minReplicas": i64::from(floor).min(was_max)},
                "proxy": {"minReplicas": i64::from(floor).min(proxy_max)},
            }]});
        }
        json!({
            "apiVersion": "webtoon.io/v1alpha1", "kind": "WebtoonStack",
            "metadata": {"name": name, "namespace": namespace, "uid": "5f0c-uid"},
            "spec": spec,
        })
    }
}

fn is_dns_label(name: &str, max: usize) -> bool {
    let bytes = name.as_bytes();
    !name.is_empty()
        && name.len() <= max
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn render_never_panics_and_child_names_are_dns_labels(value in stack(), during_sale in any::<bool>()) {
        let stack: WebtoonStack = serde_json::from_value(value).expect("generated stack deserializes");
        let validated = validate(&stack).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let observed = Observed {
            credentials: Some(common::test_credentials()),
            now: if during_sale { "2026-12-01T12:00:00+09:00".parse().ok() } else { None },
            ..Default::default()
        };
        let children = render(&validated, &observed);
        let weaknesses = common::hardening::audit(&validated, &children);
        prop_assert!(weaknesses.is_empty(), "{weaknesses:#?}");
        let documents = children.to_documents().expect("documents serialize");
        prop_assert!(documents.len() >= 8);
        for document in &documents {
            let kind = document["kind"].as_str().unwrap_or_default();
            let name = document["metadata"]["name"].as_str().unwrap_or_default();
            let limit = if kind == "StatefulSet" || kind == "CronJob" { 52 } else { 63 };
            prop_assert!(is_dns_label(name, limit), "{kind} {name:?} is not a DNS label of at most {limit}");
            for value in document["metadata"]["labels"].as_object().into_iter().flat_map(|l| l.values()) {
                prop_assert!(value.as_str().is_some_and(|v| v.len() <= 63), "label value {value} too long");
            }
        }
    }
}
