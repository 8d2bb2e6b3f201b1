//! `webtoon-operator validate` agrees with the API server. Specs are generated with
//! edge and hostile values in every field that reaches another program (names,
//! hosts, quantities, cron schedules, time zones, durations, CIDRs, paths, images,
//! environment variable names, sizes). Whenever `validate` accepts a spec, the API
//! server accepts the WebtoonStack (schema and CEL) and a server-side dry run of
//! every rendered child; whenever the server refuses a WebtoonStack, `validate`
//! refused it as well. `validate` may be stricter than the server, never looser.

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use webtoon_e2e::crd::{ensure_crd, ensure_monitoring_crds};
use webtoon_e2e::dry_run::{apply_children, children, create_stack};
use webtoon_e2e::examples::validate_document;
use webtoon_e2e::namespace::within_namespace;

/// Bounded so that the whole file finishes in well under two minutes.
const CASES: u32 = 64;
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(150);

fn long(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

const DIGEST: &str = "@sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn cpu() -> Vec<Value> {
    [
        "100m", "1", "2", "1.5", "0.1m", "1e3", "0", "-1", "250m", "1k", "0.5",
    ]
    .map(Value::from)
    .to_vec()
}

fn memory() -> Vec<Value> {
    [
        "128Mi", "1Gi", "1Ti", "0", "-1Gi", "1e3", "0.1m", "1.5Gi", "64M", "384Mi", "1Ei", "1.5",
        "1Ki", "100m",
    ]
    .map(Value::from)
    .to_vec()
}

fn sizes() -> Vec<Value> {
    [
        "100Gi",
        "1Ti",
        "0",
        "0Gi",
        "1",
        "1.5Gi",
        "1e3",
        "-1Gi",
        "999999999Ti",
        "1k",
        "1Ki",
        "512Mi",
    ]
    .map(Value::from)
    .to_vec()
}

fn cidrs() -> Vec<Value> {
    let lists: Vec<Vec<&str>> = vec![
        vec!["10.0.0.0/8"],
        vec!["10.0.0.1/8"],
        vec!["::ffff:10.0.0.0/104"],
        vec!["::ffff:10.0.0.0/128"],
        vec!["10.0.0.0/08"],
        vec!["fd00::/8", "10.0.0.0/8"],
        vec!["0.0.0.0/0"],
        vec!["::/0"],
        vec!["10.0.0.0/33"],
        vec!["1.2.3.4/32", "1.2.3.4/32"],
        vec!["1.2.3.4"],
        vec!["fd00::1/64"],
        vec!["::1.2.3.4/128"],
        vec!["010.0.0.0/8"],
    ];
    lists.into_iter().map(|l| json!(l)).collect()
}

fn autoscaling() -> Vec<Value> {
    vec![
        json!({"minReplicas": 2, "maxReplicas": 10}),
        json!({"minReplicas": 3, "maxReplicas": 2}),
        json!({"minReplicas": 2, "maxReplicas": 1000, "targetCPUUtilization": 100}),
        json!({"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilization": 9}),
        json!({"minReplicas": 0, "maxReplicas": 4}),
        json!({"minReplicas": 1, "maxReplicas": 1}),
    ]
}

fn images(base: &str) -> Vec<Value> {
    vec![
        json!(format!("{base}:1.0.0")),
        json!(format!("{base}{DIGEST}")),
        json!(format!("registry.example:5000/team/{base}:1.0")),
        json!(format!("{base}:latest")),
        json!(base),
        json!(format!("{}:1.0", base.to_uppercase())),
        json!(format!("{base}:1.0 ")),
        json!(format!("localhost/{base}:v1_2-3.4")),
        json!(format!("{base}:{}", long('1', 129))),
    ]
}

fn schedule(start: &str, end: &str) -> Value {
    json!({"name": "sale", "start": start, "end": end, "was": {"minReplicas": 4}})
}

fn resources(tier: &str) -> Vec<(String, Vec<Value>)> {
    let at = |part: &str| format!("/spec/{tier}/resources/{part}");
    vec![
        (at("requests/cpu"), cpu()),
        (at("requests/memory"), memory()),
        (at("limits/cpu"), cpu()),
        (at("limits/memory"), memory()),
        (
            format!("/spec/{tier}/resources/limits/nvidia.com~1gpu"),
            vec![json!("1"), json!("0.5")],
        ),
        (at("requests/gpu"), vec![json!("1")]),
        (
            at("requests/ephemeral-storage"),
            vec![json!("1Gi"), json!("-1")],
        ),
        (
            format!("/spec/{tier}/resources/claims"),
            vec![json!([{"name": "gpu"}])],
        ),
    ]
}

/// Every generated field: a JSON pointer into the manifest and the values it takes.
fn fields() -> Vec<(String, Vec<Value>)> {
    let mut fields: Vec<(String, Vec<Value>)> = vec![
        (
            "/metadata/name".into(),
            [
                "megatoon",
                "a",
                "a23456789012345678901234567890123456",
                "a234567890123456789012345678901234567",
                "Megatoon",
                "toon-",
                "1toon",
                "to.on",
                "x--y",
            ]
            .map(Value::from)
            .to_vec(),
        ),
        (
            "/spec/hosts".into(),
            vec![
                json!(["*.megatoon.example"]),
                json!(["xn--9n2bp8q.example", "megatoon.example"]),
                json!(["a"]),
                json!(["localhost"]),
                json!(["Megatoon.example"]),
                json!(["a..b"]),
                json!(["a.example; include /etc/passwd"]),
                json!(["-a.example"]),
                json!(["a.example."]),
                json!([format!("{}.example", long('a', 63))]),
                json!([format!("{}.example", long('a', 64))]),
                json!(["*.*.example"]),
                json!(["10.0.0.1"]),
                json!(["megatoon.example", "megatoon.example"]),
                json!([]),
            ],
        ),
        (
            "/spec/tls".into(),
            vec![
                json!({"secretName": "toon-tls"}),
                json!({"secretName": "toon.tls", "hstsMaxAgeSeconds": 0}),
                json!({"secretName": "Toon-TLS"}),
                json!({"secretName": "toon-tls", "hstsMaxAgeSeconds": 63072001}),
                json!({"secretName": long('a', 254)}),
            ],
        ),
        ("/spec/proxy/image".into(), images("nginx")),
        (
            "/spec/proxy/replicas".into(),
            [1, 2, 3, 0, 1000, 1001].map(Value::from).to_vec(),
        ),
        ("/spec/proxy/autoscaling".into(), autoscaling()),
        (
            "/spec/proxy/service".into(),
            vec![
                json!({"type": "ClusterIP"}),
                json!({"type": "NodePort"}),
                json!({"type": "ExternalName"}),
                json!({"annotations": {"example.com/lb": "internal"}}),
                json!({"annotations": {"bad key": "x"}}),
                json!({"annotations": {"a/b/c": "x"}}),
                json!({"annotations": {"Example.com/x": "y"}}),
                json!({"annotations": {long('x', 64): "y"}}),
                json!({"annotations": {"kubernetes.io/": "x"}}),
                json!({"annotations": {"service.beta.kubernetes.io/aws-load-balancer-internal": "true"}}),
                json!({"annotations": {"-x": "y"}}),
            ],
        ),
        ("/spec/proxy/trustedProxyCIDRs".into(), cidrs()),
        (
            "/spec/proxy/clientMaxBodySize".into(),
            ["20m", "0", "1g", "999999g", "1.5m", "1M", "20m;"]
                .map(Value::from)
                .to_vec(),
        ),
        (
            "/spec/proxy/resolver".into(),
            ["10.96.0.10", "Resolver", "a..b", "kube-dns"]
                .map(Value::from)
                .to_vec(),
        ),
        ("/spec/proxy/cache/size".into(), sizes()),
        ("/spec/proxy/cache/enabled".into(), vec![json!(false)]),
        (
            "/spec/proxy/cache/staticMaxAge".into(),
            ["0s", "999999y", "7 d", "1.5d", "1M", "30m"]
                .map(Value::from)
                .to_vec(),
        ),
        (
            "/spec/proxy/rateLimit".into(),
            vec![
                json!({"requestsPerSecond": 1, "burst": 0}),
                json!({"requestsPerSecond": 0}),
                json!({"requestsPerSecond": 100000, "burst": 100000}),
                json!({"burst": 100001}),
                json!({"enabled": false, "requestsPerSecond": 1}),
            ],
        ),
        (
            "/spec/proxy/admin".into(),
            vec![
                json!({"paths": ["/admin", "/admin"]}),
                json!({"paths": ["/"]}),
                json!({"paths": ["/a b"]}),
                json!({"paths": ["/.."]}),
                json!({"allowCIDRs": ["10.0.12.0/24"]}),
                json!({"allowCIDRs": ["10.0.12.1/24"]}),
                json!({"allowCIDRs": ["::ffff:10.0.12.0/120"]}),
                json!({"paths": []}),
            ],
        ),
        ("/spec/was/image".into(), images("registry.example/was")),
        (
            "/spec/was/port".into(),
            [1023, 1024, 8080, 9000, 65535, 65536]
                .map(Value::from)
                .to_vec(),
        ),
        (
            "/spec/was/protocol".into(),
            ["http", "fastcgi", "grpc"].map(Value::from).to_vec(),
        ),
        (
            "/spec/was/fastcgiRoot".into(),
            ["/var/www/html", "/", "/var/www/../html", "var/www"]
                .map(Value::from)
                .to_vec(),
        ),
        (
            "/spec/was/replicas".into(),
            [1, 2, 5, 0, 1000].map(Value::from).to_vec(),
        ),
        ("/spec/was/autoscaling".into(), autoscaling()),
        (
            "/spec/was/healthPath".into(),
            ["/", "/health check", "/a?b", "/ready/"]
                .map(Value::from)
                .to_vec(),
        ),
        (
            "/spec/was/env".into(),
            vec![
                json!([{"name": "TZ", "value": "Asia/Seoul"}]),
                json!([{"name": "TZ", "value": "a"}, {"name": "TZ", "value": "b"}]),
                json!([{"name": "1BAD", "value": "x"}]),
                json!([{"name": "BAD-NAME", "value": "x"}]),
                json!([{"name": "BAD=NAME", "value": "x"}]),
                json!([{"name": "", "value": "x"}]),
                json!([{"name": "WITH SPACE", "value": "x"}]),
                json!([{"name": "a.b", "value": "x"}]),
                json!([{"name": "WEBTOON_X", "value": "x"}]),
                json!([{"name": "\u{dc}BER", "value": "x"}]),
                json!([{"name": "TAB\tNAME", "value": "x"}]),
                json!([{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]),
                json!([{"name": "BOTH", "value": "x", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]),
                json!([{"name": "NONE", "valueFrom": {}}]),
                json!([{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
                json!([{"name": "BADFIELD", "valueFrom": {"fieldRef": {"fieldPath": "spec.nothing"}}}]),
                json!([{"name": "BADKEY", "valueFrom": {"secretKeyRef": {"name": "api", "key": "bad key"}}}]),
                json!([{"name": "BADREF", "valueFrom": {"secretKeyRef": {"name": "Api", "key": "token"}}}]),
            ],
        ),
        (
            "/spec/was/rollout".into(),
            vec![
                json!({"progressDeadlineSeconds": 29}),
                json!({"progressDeadlineSeconds": 30}),
                json!({"progressDeadlineSeconds": 3600}),
                json!({"autoRollback": false}),
            ],
        ),
        ("/spec/was/writableRootFilesystem".into(), vec![json!(true)]),
        (
            "/spec/database/mode".into(),
            ["embedded", "external"].map(Value::from).to_vec(),
        ),
        (
            "/spec/database/external".into(),
            vec![
                json!({"host": "db.example", "port": 3306, "secretName": "db"}),
                json!({"host": "10.0.0.5", "port": 1, "secretName": "db"}),
                json!({"host": "fd00::5", "port": 65535, "secretName": "db"}),
                json!({"host": "db_example", "port": 3306, "secretName": "db"}),
                json!({"host": "db.example", "port": 0, "secretName": "db"}),
                json!({"host": "db.example", "port": 3306, "secretName": "Db"}),
            ],
        ),
        ("/spec/database/image".into(), images("mariadb")),
        (
            "/spec/database/name".into(),
            [
                "a",
                "A_b",
                "1abc",
                "web-toon",
                &long('x', 32),
                &long('x', 33),
                "select",
            ]
            .map(Value::from)
            .to_vec(),
        ),
        (
            "/spec/database/user".into(),
            ["root", "app_1", "a b"].map(Value::from).to_vec(),
        ),
        ("/spec/database/storage/size".into(), sizes()),
        (
            "/spec/database/storage/storageClassName".into(),
            ["fast", "Fast", "fast.ssd"].map(Value::from).to_vec(),
        ),
        (
            "/spec/database/maxConnections".into(),
            [9, 10, 10000, 10001].map(Value::from).to_vec(),
        ),
        (
            "/spec/database/backup/schedule".into(),
            [
                "0 3 * * *",
                "61 * * * *",
                "@hourly",
                "*/0 * * * *",
                "CRON_TZ=UTC 0 3 * * *",
                "0 24 * * *",
                "0 0 0 * *",
                "0 0 * 13 *",
                "0 0 * * 7",
                "0 0 * * 8",
                "0 0 L * *",
                "0 0 * * MON#1",
                "0 0 * JAN-MAR MON-FRI",
                "*/15 * * * *",
                "0 0 1,15 * *",
                "5-1 * * * *",
                "0 0 ? * *",
                "0 0 * * FOO",
                "1-2-3 * * * *",
                "*/5/2 * * * *",
                "0 0 31 2 *",
                "00 03 * * *",
                "- * * * *",
                "0 0 1W * *",
                "0-59/60 * * * *",
                "0 0 * * sun",
            ]
            .map(Value::from)
            .to_vec(),
        ),
        (
            "/spec/database/backup/timeZone".into(),
            [
                "Asia/Seoul",
                "Etc/UTC",
                "UTC",
                "Mars/Olympus",
                "../etc",
                "asia/seoul",
                "Local",
                "America/Argentina/Buenos_Aires",
                "EST5EDT",
                "Etc/GMT+5",
                "Factory",
                "US/Pacific",
                "A",
                "Asia/Seoul/",
                "Asia//Seoul",
            ]
            .map(Value::from)
            .to_vec(),
        ),
        (
            "/spec/database/backup/keep".into(),
            [0, 1, 365, 366].map(Value::from).to_vec(),
        ),
        ("/spec/database/backup/storage/size".into(), sizes()),
        (
            "/spec/database/restore".into(),
            vec![
                json!({"from": "latest"}),
                json!({"from": "webtoon-20261201T030000Z.sql.gz", "claimName": "oldtoon-database-backup"}),
                json!({"from": "../x.sql.gz"}),
                json!({"from": "x.sql"}),
                json!({"from": "latest", "claimName": "Bad_Claim"}),
            ],
        ),
        (
            "/spec/cache/mode".into(),
            ["embedded", "external"].map(Value::from).to_vec(),
        ),
        (
            "/spec/cache/external".into(),
            vec![
                json!({"host": "redis.example", "port": 6379, "secretName": "redis"}),
                json!({"host": "redis.example", "port": 65536, "secretName": "redis"}),
            ],
        ),
        ("/spec/cache/image".into(), images("redis")),
        (
            "/spec/cache/maxMemory".into(),
            ["0", "1Ti", "1.5Gi", "1e3", "384Mi", "385Mi", "-1", "1"]
                .map(Value::from)
                .to_vec(),
        ),
        (
            "/spec/cache/evictionPolicy".into(),
            ["noeviction", "volatile-ttl", "lru"]
                .map(Value::from)
                .to_vec(),
        ),
        ("/spec/cache/persistence".into(), {
            let mut volumes: Vec<Value> = sizes().into_iter().map(|s| json!({"size": s})).collect();
            volumes.push(json!({"size": "1Gi", "storageClassName": "Fast"}));
            volumes
        }),
        ("/spec/storage/size".into(), sizes()),
        (
            "/spec/storage/storageClassName".into(),
            ["nfs-csi", "NFS", &long('a', 254)]
                .map(Value::from)
                .to_vec(),
        ),
        (
            "/spec/storage/existingClaim".into(),
            ["images", "Images", &long('a', 254)]
                .map(Value::from)
                .to_vec(),
        ),
        (
            "/spec/storage/nfs".into(),
            vec![
                json!({"server": "nfs.example", "path": "/exports"}),
                json!({"server": "10.1.2.3", "path": "/"}),
                json!({"server": "fd00::1", "path": "/exports/images"}),
                json!({"server": "nfs.example", "path": "/exports/../etc"}),
                json!({"server": "NFS.Example", "path": "/x"}),
                json!({"server": "nfs_example", "path": "/x"}),
                json!({"server": "nfs.example", "path": "exports"}),
            ],
        ),
        (
            "/spec/storage/mountPath".into(),
            [
                "/var/www/images",
                "/tmp",
                "/",
                "/tmp/",
                "/data",
                "/..",
                "/etc",
                "/var/www/images/",
                "/tmp/images",
            ]
            .map(Value::from)
            .to_vec(),
        ),
        (
            "/spec/storage/urlPath".into(),
            ["/", "/comics/", "/a b", "/images/../x", "/healthz"]
                .map(Value::from)
                .to_vec(),
        ),
        ("/spec/network/policies".into(), vec![json!(false)]),
        ("/spec/network/ingressFromCIDRs".into(), {
            let mut lists = cidrs();
            lists.push(json!([]));
            lists
        }),
        (
            "/spec/network/ingressFromNamespaces".into(),
            vec![
                json!(["ingress-nginx"]),
                json!(["Ingress"]),
                json!([long('a', 64)]),
                json!(["kube-system", "kube-system"]),
            ],
        ),
        (
            "/spec/network/wasEgress".into(),
            vec![
                json!([{"cidr": "203.0.113.0/24", "ports": [443]}]),
                json!([{"cidr": "203.0.113.1/24", "ports": [443]}]),
                json!([{"cidr": "203.0.113.0/24", "ports": [0]}]),
                json!([{"cidr": "203.0.113.0/24", "ports": []}]),
                json!([{"cidr": "203.0.113.0/24", "ports": [443, 443]}]),
                json!([{"cidr": "::ffff:203.0.113.0/120", "ports": [443]}]),
                json!([{"cidr": "203.0.113.0/24", "ports": [443]}, {"cidr": "203.0.113.0/24", "ports": [443]}]),
            ],
        ),
        (
            "/spec/scaling/schedules".into(),
            vec![
                json!([schedule(
                    "2026-12-01T09:00:00+09:00",
                    "2026-12-01T21:00:00+09:00"
                )]),
                json!([{"name": "Sale", "start": "2026-12-01T09:00:00Z", "end": "2026-12-01T21:00:00Z"}]),
                json!([schedule(
                    "2026-12-01T09:00:00+09:00",
                    "2026-12-01T09:00:00+09:00"
                )]),
                json!([schedule("2026-02-30T09:00:00Z", "2026-03-01T09:00:00Z")]),
                json!([schedule(
                    "2026-12-01T09:00:00+24:00",
                    "2026-12-02T09:00:00Z"
                )]),
                json!([schedule("2026-12-01T09:00:60Z", "2026-12-02T09:00:00Z")]),
                json!([schedule(
                    "2026-12-01T09:00:00.123456789Z",
                    "2026-12-02T09:00:00Z"
                )]),
                json!([
                    schedule("2026-12-01T09:00:00Z", "2026-12-02T09:00:00Z"),
                    schedule("2026-12-03T09:00:00Z", "2026-12-04T09:00:00Z")
                ]),
                json!([{"name": "sale", "start": "2026-12-01T09:00:00Z", "end": "2026-12-02T09:00:00Z", "proxy": {"minReplicas": 1000}}]),
                json!([{"name": "sale", "start": "2026-12-01T09:00:00Z", "end": "2026-12-02T09:00:00Z", "was": {"minReplicas": 0}}]),
                json!([{"name": "sale", "start": "0000-01-01T00:00:00Z", "end": "9999-12-31T23:59:59Z", "was": {"minReplicas": 3}}]),
            ],
        ),
        (
            "/spec/monitoring".into(),
            vec![
                json!({}),
                json!({"prometheusNamespace": "Monitoring"}),
                json!({"prometheusNamespace": long('m', 64)}),
                json!({"prometheusPodLabels": {"app.kubernetes.io/name": "prometheus"}}),
                json!({"prometheusPodLabels": {"app kubernetes": "prometheus"}}),
                json!({"prometheusPodLabels": {"app": "-prometheus"}}),
                json!({"prometheusPodLabels": {"example.com/": "x"}}),
                json!({"podMonitorLabels": {"release": long('r', 64)}}),
                json!({"podMonitorLabels": {"release": ""}}),
                json!({"podMonitorLabels": {"Example.COM/team": "web_toon.1"}}),
                json!({"interval": "15s"}),
                json!({"interval": "0s"}),
                json!({"interval": "1h"}),
                json!({"interval": "30 s"}),
                json!({"was": {"port": 8080}}),
                json!({"was": {"port": 9090, "path": "/metrics/../x"}}),
                json!({"was": {"port": 80}}),
                json!({"images": {"redis": "oliver006/redis_exporter:latest"}}),
                json!({"images": {"mysqld": "prom/mysqld-exporter"}}),
            ],
        ),
        ("/spec/acceptSinglePointOfFailure".into(), vec![json!(true)]),
        (
            "/spec/deletionPolicy".into(),
            ["Delete", "Orphan"].map(Value::from).to_vec(),
        ),
    ];
    for tier in ["proxy", "was", "database", "cache"] {
        fields.extend(resources(tier));
    }
    fields
}

/// Specs where each field is set with probability `density`, otherwise left to
/// its default.
fn specs(density: f64) -> BoxedStrategy<Value> {
    let choices: Vec<BoxedStrategy<Option<(String, Value)>>> = fields()
        .into_iter()
        .map(|(pointer, values)| {
            proptest::option::weighted(density, proptest::sample::select(values))
                .prop_map(move |value| value.map(|v| (pointer.clone(), v)))
                .boxed()
        })
        .collect();
    choices
        .prop_map(|chosen| {
            let mut document = json!({
                "apiVersion": "webtoon.io/v1alpha1",
                "kind": "WebtoonStack",
                "metadata": {"name": "megatoon"},
                "spec": {
                    "hosts": ["megatoon.example"],
                    "was": {"image": "registry.example/was:1.0.0"},
                },
            });
            for (pointer, value) in chosen.into_iter().flatten() {
                set(&mut document, &pointer, value);
            }
            document
        })
        .boxed()
}

/// Sets the field at a JSON pointer, creating the objects on the way.
fn set(document: &mut Value, pointer: &str, value: Value) {
    let mut node = document;
    let keys: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect();
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    for key in parents {
        if !node[key.as_str()].is_object() {
            node[key.as_str()] = json!({});
        }
        node = &mut node[key.as_str()];
    }
    node[last.as_str()] = value;
}

/// What one generated spec showed.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// `validate` and the server both refused the stack.
    BothRefused,
    /// `validate` refused a stack the server accepts: stricter, which is allowed.
    OnlyValidateRefused,
    /// Both accepted the stack and every child.
    Accepted,
}

async fn check(
    client: &kube::Client,
    namespace: &str,
    mut document: Value,
) -> Result<Outcome, String> {
    document["metadata"]["namespace"] = json!(namespace);
    let validated = validate_document(&document);
    let server = create_stack(client, namespace, &document).await;
    match (validated, server) {
        (Err(_), Err(_)) => Ok(Outcome::BothRefused),
        (Err(_), Ok(())) => Ok(Outcome::OnlyValidateRefused),
        (Ok(_), Err(error)) => Err(format!(
            "validate accepts a WebtoonStack that the API server refuses: {error}"
        )),
        (Ok(stack), Ok(())) => {
            let refused = apply_children(client, namespace, &children(&stack)).await;
            if refused.is_empty() {
                Ok(Outcome::Accepted)
            } else {
                Err(format!(
                    "validate accepts a stack whose rendered children the API server refuses:\n{}",
                    refused.join("\n")
                ))
            }
        }
    }
}

/// Runs the property over `CASES` specs of the given density and returns how many
/// were accepted by both; panics with the smallest disagreeing spec found.
async fn property(prefix: &'static str, density: f64) -> usize {
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    within_namespace(prefix, SCENARIO_TIMEOUT, move |client, ns| async move {
        ensure_crd(&client).await;
        // Stacks with monitoring render a PodMonitor.
        ensure_monitoring_crds(&client).await;
        let handle = tokio::runtime::Handle::current();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut runner = TestRunner::new(Config {
                cases: CASES,
                failure_persistence: None,
                max_shrink_iters: 256,
                max_shrink_time: 30_000,
                ..Config::default()
            });
            runner
                .run(&specs(density), |document| {
                    match handle.block_on(check(&client, &ns, document)) {
                        Ok(Outcome::Accepted) => {
                            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            Ok(())
                        }
                        Ok(_) => Ok(()),
                        Err(disagreement) => Err(TestCaseError::fail(disagreement)),
                    }
                })
                .map_err(|error| error.to_string())
        })
        .await
        .expect("the property runs to its end");
        if let Err(error) = outcome {
            panic!("validate and the API server disagree: {error}");
        }
    })
    .await;
    accepted.load(std::sync::atomic::Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread")]
async fn specs_that_validate_accepts_are_accepted_with_every_child() {
    // Few fields changed at a time, so that many specs are valid and their children
    // are rendered and sent.
    let accepted = property("validate-agrees-edge", 0.025).await;
    assert!(
        accepted >= 8,
        "only {accepted} of {CASES} generated specs were valid: the property proved little"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn specs_that_the_server_refuses_are_refused_by_validate() {
    // Many hostile fields at once.
    property("validate-agrees-hostile", 0.2).await;
}
