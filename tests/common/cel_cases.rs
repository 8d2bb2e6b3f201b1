//! One accept case and one reject case for every CEL rule of the WebtoonStack CRD.
//! Shared by two test crates, so that the client-side check (tests/cel_rules.rs,
//! with kube-cel) and the API-server check (e2e/tests/cel_rules.rs) run the same
//! cases: each includes this file with `#[path]`.

use serde_json::{Value, json};

/// A valid stack that every rule accepts; each case changes it.
pub fn base() -> Value {
    json!({
        "apiVersion": "webtoon.io/v1alpha1",
        "kind": "WebtoonStack",
        "metadata": {"name": "megatoon", "namespace": "webtoon"},
        "spec": {
            "hosts": ["megatoon.example"],
            "was": {"image": "registry.example/was:1.0.0"},
        },
    })
}

/// One rule exercised: a change that it accepts and one that it rejects.
pub struct Case {
    /// Path of the rule's schema node as [`rules`] writes it: `.spec.was.image`,
    /// `[]` for list items, empty for the root.
    pub path: &'static str,
    /// A distinctive part of the rule's expression.
    pub rule: &'static str,
    /// Makes the base object one that the rule accepts.
    pub accept: fn(&mut Value),
    /// Makes the base object one that the rule rejects.
    pub reject: fn(&mut Value),
}

/// Every case, one per rule.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            path: "",
            rule: "self.metadata.name.size() <= 36",
            accept: |v| v["metadata"]["name"] = json!("a23456789012345678901234567890123456"),
            reject: |v| v["metadata"]["name"] = json!("a234567890123456789012345678901234567"),
        },
        Case {
            path: "",
            rule: "self.metadata.name.matches",
            accept: |v| v["metadata"]["name"] = json!("toon-1"),
            reject: |v| v["metadata"]["name"] = json!("1toon"),
        },
        Case {
            path: ".spec",
            rule: "self.was.replicas >= 2",
            accept: |v| {
                v["spec"]["was"]["replicas"] = json!(1);
                v["spec"]["acceptSinglePointOfFailure"] = json!(true);
            },
            reject: |v| v["spec"]["was"]["replicas"] = json!(1),
        },
        Case {
            path: ".spec",
            rule: "self.was.autoscaling.minReplicas >= 2",
            accept: |v| {
                v["spec"]["was"]["autoscaling"] = json!({"minReplicas": 2, "maxReplicas": 4})
            },
            reject: |v| {
                v["spec"]["was"]["autoscaling"] = json!({"minReplicas": 1, "maxReplicas": 4})
            },
        },
        Case {
            path: ".spec",
            rule: "self.proxy.replicas >= 2",
            accept: |v| v["spec"]["proxy"] = json!({"replicas": 3}),
            reject: |v| v["spec"]["proxy"] = json!({"replicas": 1}),
        },
        Case {
            path: ".spec",
            rule: "s.was.minReplicas <= self.was.autoscaling.maxReplicas",
            accept: |v| {
                v["spec"]["was"]["autoscaling"] = json!({"minReplicas": 2, "maxReplicas": 12});
                v["spec"]["scaling"] = json!({"schedules": [{"name": "sale", "start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T21:00:00+09:00", "was": {"minReplicas": 12}}]});
            },
            reject: |v| {
                v["spec"]["was"]["autoscaling"] = json!({"minReplicas": 2, "maxReplicas": 10});
                v["spec"]["scaling"] = json!({"schedules": [{"name": "sale", "start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T21:00:00+09:00", "was": {"minReplicas": 12}}]});
            },
        },
        Case {
            path: ".spec",
            rule: "s.proxy.minReplicas <= self.proxy.autoscaling.maxReplicas",
            accept: |v| {
                v["spec"]["proxy"] = json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 6}});
                v["spec"]["scaling"] = json!({"schedules": [{"name": "sale", "start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T21:00:00+09:00", "proxy": {"minReplicas": 6}}]});
            },
            reject: |v| {
                v["spec"]["proxy"] = json!({"autoscaling": {"minReplicas": 2, "maxReplicas": 5}});
                v["spec"]["scaling"] = json!({"schedules": [{"name": "sale", "start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T21:00:00+09:00", "proxy": {"minReplicas": 6}}]});
            },
        },
        Case {
            path: ".spec.cache",
            rule: "self.mode == 'external'",
            accept: |v| v["spec"]["cache"] = json!({"mode": "external", "external": {"host": "redis.example", "port": 6379, "secretName": "redis"}}),
            reject: |v| v["spec"]["cache"] = json!({"mode": "external"}),
        },
        Case {
            path: ".spec.database",
            rule: "self.mode == 'external'",
            accept: |v| v["spec"]["database"] = json!({"mode": "external", "external": {"host": "db.example", "port": 3306, "secretName": "db"}}),
            reject: |v| {
                v["spec"]["database"] =
                    json!({"external": {"host": "db.example", "port": 3306, "secretName": "db"}})
            },
        },
        Case {
            path: ".spec.database",
            rule: "!has(self.backup) && !has(self.restore)",
            accept: |v| {
                v["spec"]["database"] =
                    json!({"backup": {"keep": 3}, "restore": {"from": "latest"}})
            },
            reject: |v| v["spec"]["database"] = json!({"mode": "external", "external": {"host": "db.example", "port": 3306, "secretName": "db"}, "backup": {"keep": 3}}),
        },
        Case {
            path: ".spec.cache.image",
            rule: "!self.endsWith(':latest')",
            accept: |v| v["spec"]["cache"] = json!({"image": "redis:7.2.6"}),
            reject: |v| v["spec"]["cache"] = json!({"image": "redis:latest"}),
        },
        Case {
            path: ".spec.database.image",
            rule: "!self.endsWith(':latest')",
            accept: |v| v["spec"]["database"] = json!({"image": "mariadb:11.4.4"}),
            reject: |v| v["spec"]["database"] = json!({"image": "mariadb:latest"}),
        },
        Case {
            path: ".spec.proxy.image",
            rule: "!self.endsWith(':latest')",
            accept: |v| v["spec"]["proxy"] = json!({"image": "nginxinc/nginx-unprivileged:1.28.0"}),
            reject: |v| v["spec"]["proxy"] = json!({"image": "nginxinc/nginx-unprivileged:latest"}),
        },
        Case {
            path: ".spec.monitoring.images.nginx",
            rule: "!self.endsWith(':latest')",
            accept: |v| {
                v["spec"]["monitoring"] =
                    json!({"images": {"nginx": "nginx/nginx-prometheus-exporter:v1.0.0"}})
            },
            reject: |v| {
                v["spec"]["monitoring"] =
                    json!({"images": {"nginx": "nginx/nginx-prometheus-exporter:latest"}})
            },
        },
        Case {
            path: ".spec.monitoring.images.nginxLog",
            rule: "!self.endsWith(':latest')",
            accept: |v| v["spec"]["monitoring"] = json!({"images": {"nginxLog": "ghcr.io/martin-helmich/prometheus-nginxlog-exporter/exporter:v1.0.0"}}),
            reject: |v| v["spec"]["monitoring"] = json!({"images": {"nginxLog": "ghcr.io/martin-helmich/prometheus-nginxlog-exporter/exporter:latest"}}),
        },
        Case {
            path: ".spec.monitoring.images.mysqld",
            rule: "!self.endsWith(':latest')",
            accept: |v| {
                v["spec"]["monitoring"] =
                    json!({"images": {"mysqld": "prom/mysqld-exporter:v1.0.0"}})
            },
            reject: |v| {
                v["spec"]["monitoring"] =
                    json!({"images": {"mysqld": "prom/mysqld-exporter:latest"}})
            },
        },
        Case {
            path: ".spec.monitoring.images.redis",
            rule: "!self.endsWith(':latest')",
            accept: |v| {
                v["spec"]["monitoring"] =
                    json!({"images": {"redis": "oliver006/redis_exporter:v1.0.0"}})
            },
            reject: |v| {
                v["spec"]["monitoring"] =
                    json!({"images": {"redis": "oliver006/redis_exporter:latest"}})
            },
        },
        Case {
            path: ".spec.was.image",
            rule: "!self.endsWith(':latest')",
            accept: |v| v["spec"]["was"]["image"] = json!("registry.example/was:2.0.0"),
            reject: |v| v["spec"]["was"]["image"] = json!("registry.example/was:latest"),
        },
        Case {
            path: ".spec.network.ingressFromCIDRs",
            rule: "isCIDR(c)",
            accept: |v| {
                v["spec"]["network"] = json!({"ingressFromCIDRs": ["10.0.0.0/8", "fd00::/8"]})
            },
            reject: |v| v["spec"]["network"] = json!({"ingressFromCIDRs": ["10.0.0.0/33"]}),
        },
        Case {
            path: ".spec.network.wasEgress[].cidr",
            rule: "isCIDR(self)",
            accept: |v| {
                v["spec"]["network"] =
                    json!({"wasEgress": [{"cidr": "203.0.113.0/24", "ports": [443]}]})
            },
            reject: |v| {
                v["spec"]["network"] =
                    json!({"wasEgress": [{"cidr": "203.0.113.0/33", "ports": [443]}]})
            },
        },
        Case {
            path: ".spec.proxy.admin.allowCIDRs",
            rule: "isCIDR(c)",
            accept: |v| v["spec"]["proxy"] = json!({"admin": {"allowCIDRs": ["10.0.12.0/24"]}}),
            reject: |v| v["spec"]["proxy"] = json!({"admin": {"allowCIDRs": ["10.0.12.0/33"]}}),
        },
        Case {
            path: ".spec.proxy.trustedProxyCIDRs",
            rule: "isCIDR(c)",
            accept: |v| v["spec"]["proxy"] = json!({"trustedProxyCIDRs": ["192.168.0.0/16"]}),
            reject: |v| v["spec"]["proxy"] = json!({"trustedProxyCIDRs": ["192.168.0.0/40"]}),
        },
        Case {
            path: ".spec.proxy.autoscaling",
            rule: "self.minReplicas <= self.maxReplicas",
            accept: |v| {
                v["spec"]["proxy"] = json!({"autoscaling": {"minReplicas": 3, "maxReplicas": 3}})
            },
            reject: |v| {
                v["spec"]["proxy"] = json!({"autoscaling": {"minReplicas": 4, "maxReplicas": 3}})
            },
        },
        Case {
            path: ".spec.was.autoscaling",
            rule: "self.minReplicas <= self.maxReplicas",
            accept: |v| {
                v["spec"]["was"]["autoscaling"] = json!({"minReplicas": 3, "maxReplicas": 30})
            },
            reject: |v| {
                v["spec"]["was"]["autoscaling"] = json!({"minReplicas": 31, "maxReplicas": 30})
            },
        },
        Case {
            path: ".spec.scaling.schedules[]",
            rule: "timestamp(self.end) > timestamp(self.start)",
            accept: |v| v["spec"]["scaling"] = json!({"schedules": [{"name": "sale", "start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T00:00:01Z"}]}),
            // The same instant written with two offsets is not "after".
            reject: |v| v["spec"]["scaling"] = json!({"schedules": [{"name": "sale", "start": "2026-12-01T09:00:00+09:00", "end": "2026-12-01T00:00:00Z"}]}),
        },
        Case {
            path: ".spec.storage",
            rule: "has(self.existingClaim) && has(self.nfs)",
            accept: |v| {
                v["spec"]["storage"] = json!({"nfs": {"server": "nfs.example", "path": "/exports"}})
            },
            reject: |v| v["spec"]["storage"] = json!({"existingClaim": "images", "nfs": {"server": "nfs.example", "path": "/exports"}}),
        },
        Case {
            path: ".spec.database.backup.objectStore",
            rule: "startsWith('http://')",
            accept: |v| v["spec"]["database"] = json!({"backup": {"objectStore": {"endpoint": "http://minio.backup:9000", "insecure": true, "bucket": "backups", "secretName": "s3"}}}),
            reject: |v| v["spec"]["database"] = json!({"backup": {"objectStore": {"endpoint": "http://minio.backup:9000", "bucket": "backups", "secretName": "s3"}}}),
        },
        Case {
            path: ".spec.database.backup.objectStore.egressCIDRs",
            rule: "isCIDR(c)",
            accept: |v| v["spec"]["database"] = json!({"backup": {"objectStore": {"endpoint": "https://s3.example", "bucket": "backups", "secretName": "s3", "egressCIDRs": ["10.0.0.0/8"]}}}),
            reject: |v| v["spec"]["database"] = json!({"backup": {"objectStore": {"endpoint": "https://s3.example", "bucket": "backups", "secretName": "s3", "egressCIDRs": ["10.0.0.0/33"]}}}),
        },
        Case {
            path: ".spec.database.restore",
            rule: "has(self.claimName) && has(self.objectStore)",
            accept: |v| {
                v["spec"]["database"] =
                    json!({"restore": {"from": "latest", "claimName": "old-backups"}})
            },
            reject: |v| v["spec"]["database"] = json!({"restore": {"from": "latest", "claimName": "old-backups", "objectStore": {"endpoint": "https://s3.example", "bucket": "backups", "secretName": "s3"}}}),
        },
        Case {
            path: ".spec.database.restore.objectStore.egressCIDRs",
            rule: "isCIDR(c)",
            accept: |v| v["spec"]["database"] = json!({"restore": {"from": "latest", "objectStore": {"endpoint": "https://s3.example", "bucket": "backups", "secretName": "s3", "egressCIDRs": ["10.0.0.0/8"]}}}),
            reject: |v| v["spec"]["database"] = json!({"restore": {"from": "latest", "objectStore": {"endpoint": "https://s3.example", "bucket": "backups", "secretName": "s3", "egressCIDRs": ["10.0.0.0/33"]}}}),
        },
        Case {
            path: ".spec.database.restore.objectStore",
            rule: "startsWith('http://')",
            accept: |v| v["spec"]["database"] = json!({"restore": {"from": "latest", "objectStore": {"endpoint": "https://s3.example", "bucket": "backups", "secretName": "s3"}}}),
            reject: |v| v["spec"]["database"] = json!({"restore": {"from": "latest", "objectStore": {"endpoint": "http://s3.example", "bucket": "backups", "secretName": "s3"}}}),
        },
        Case {
            path: ".spec.storage.urlPath",
            rule: "self != '/'",
            accept: |v| v["spec"]["storage"] = json!({"urlPath": "/comics"}),
            reject: |v| v["spec"]["storage"] = json!({"urlPath": "/"}),
        },
        Case {
            path: ".spec.was.env",
            rule: "startsWith('WEBTOON_')",
            accept: |v| v["spec"]["was"]["env"] = json!([{"name": "TZ", "value": "Asia/Seoul"}]),
            reject: |v| {
                v["spec"]["was"]["env"] =
                    json!([{"name": "WEBTOON_DB_HOST", "value": "evil.example"}])
            },
        },
        Case {
            path: ".spec.was.migration.env",
            rule: "startsWith('WEBTOON_')",
            accept: |v| {
                v["spec"]["was"]["migration"] =
                    json!({"command": ["bin/migrate"], "env": [{"name": "STEP", "value": "all"}]})
            },
            reject: |v| v["spec"]["was"]["migration"] = json!({"command": ["bin/migrate"], "env": [{"name": "WEBTOON_DB_NAME", "value": "other"}]}),
        },
    ]
}

/// The OpenAPI schema of the generated CRD, where its rules live.
pub fn crd_schema() -> Value {
    let crd = webtoon_operator::api::crd();
    serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .expect("the CRD has a schema"),
    )
    .expect("the schema serializes")
}

/// Every (path, rule, message) in an OpenAPI schema.
pub fn rules(schema: &Value) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    collect_rules(schema, "", &mut found);
    found
}

fn collect_rules(node: &Value, path: &str, found: &mut Vec<(String, String, String)>) {
    for rule in node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        found.push((
            path.to_string(),
            rule["rule"].as_str().unwrap_or_default().to_string(),
            rule["message"].as_str().unwrap_or_default().to_string(),
        ));
    }
    for (name, child) in node["properties"].as_object().into_iter().flatten() {
        collect_rules(child, &format!("{path}.{name}"), found);
    }
    if node.get("items").is_some() {
        collect_rules(&node["items"], &format!("{path}[]"), found);
    }
}

/// The one (rule, message) of `schema` that `case` exercises.
pub fn rule_for(case: &Case, schema: &Value) -> (String, String) {
    let matching: Vec<(String, String)> = rules(schema)
        .into_iter()
        .filter(|(path, rule, _)| path == case.path && rule.contains(case.rule))
        .map(|(_, rule, message)| (rule, message))
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "{} {} matches {} rules",
        case.path,
        case.rule,
        matching.len()
    );
    matching.into_iter().next().expect("one rule")
}
