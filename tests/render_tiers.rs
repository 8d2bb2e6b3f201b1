//! Rendered fields of the proxy, WAS, storage, scaling and credentials children,
//! built from inline stacks through the real validation step.

mod common;

use common::{stack_from_yaml, test_credentials};
use k8s_openapi::api::core::v1::PodSpec;
use webtoon_operator::render::proxy::CONFIG_CHECKSUM_ANNOTATION;
use webtoon_operator::render::proxy::nginx_conf::{NginxLayout, nginx_conf};
use webtoon_operator::render::{Children, Observed, render};

const PRODUCTION: &str = include_str!("../examples/production.yaml");
const MINIMAL: &str = include_str!("../examples/minimal.yaml");

fn children(yaml: &str, observed: &Observed) -> Children {
    render(&stack_from_yaml(yaml), observed)
}

fn pod<'a>(children: &'a Children, name: &str) -> &'a PodSpec {
    children
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.template.spec.as_ref())
        .unwrap_or_else(|| panic!("deployment {name}"))
}

#[test]
fn children_carry_recommended_labels_and_the_controller_owner() {
    let mut yaml = MINIMAL.to_string();
    yaml = yaml.replace(
        "  namespace: webtoon\n",
        "  namespace: webtoon\n  uid: 1234-uid\n",
    );
    let c = children(
        &yaml,
        &Observed {
            credentials: Some(test_credentials()),
            now: None,
            ..Default::default()
        },
    );
    for d in c.to_documents().expect("documents") {
        let labels = &d["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/instance"], "minitoon");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "webtoon-operator");
        assert_eq!(labels["app.kubernetes.io/part-of"], "webtoon");
        assert!(labels["app.kubernetes.io/component"].is_string());
        let name = d["metadata"]["name"].as_str().expect("name");
        assert!(name.starts_with("minitoon-"), "{name}");
        let owners = d["metadata"]["ownerReferences"].as_array();
        let is_data = d["kind"] == "Secret" || d["kind"] == "PersistentVolumeClaim";
        // Under the default Retain policy data has no owner, so garbage collection spares it.
        assert_eq!(owners.is_none(), is_data, "{name}");
        if let Some(owners) = owners {
            assert_eq!(owners[0]["kind"], "WebtoonStack");
            assert_eq!(owners[0]["uid"], "1234-uid");
            assert_eq!(owners[0]["controller"], true);
        }
    }
}

#[test]
fn delete_policy_gives_data_an_owner() {
    let yaml = MINIMAL.replace(
        "  namespace: webtoon\n",
        "  namespace: webtoon\n  uid: u1\n",
    ) + "  deletionPolicy: Delete\n";
    let c = children(
        &yaml,
        &Observed {
            credentials: Some(test_credentials()),
            now: None,
            ..Default::default()
        },
    );
    assert!(c.secrets[0].metadata.owner_references.is_some());
    assert!(
        c.persistent_volume_claims[0]
            .metadata
            .owner_references
            .is_some()
    );
}

#[test]
fn proxy_mounts_images_read_only_and_rolls_on_config_change() {
    let c = children(PRODUCTION, &Observed::default());
    let pod = pod(&c, "megatoon-proxy");
    let mounts = pod.containers[0].volume_mounts.as_ref().expect("mounts");
    let images = mounts
        .iter()
        .find(|m| m.name == "images")
        .expect("images mount");
    assert_eq!(images.read_only, Some(true));
    let claim = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "images")
        .and_then(|v| v.persistent_volume_claim.clone())
        .expect("claim");
    assert_eq!(claim.claim_name, "megatoon-images");
    assert_eq!(claim.read_only, Some(true));
    assert!(
        pod.volumes.iter().flatten().any(|v| v
            .secret
            .as_ref()
            .and_then(|s| s.secret_name.as_deref())
            == Some("megatoon-tls"))
    );
    assert!(
        pod.security_context
            .as_ref()
            .and_then(|s| s.fs_group)
            .is_none(),
        "no recursive chown of the image volume"
    );

    let checksum = |c: &Children| {
        c.deployments[1]
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(CONFIG_CHECKSUM_ANNOTATION).cloned())
            .expect("checksum")
    };
    let changed = children(
        &PRODUCTION.replace("burst: 100", "burst: 200"),
        &Observed::default(),
    );
    assert_eq!(
        c.deployments[1].metadata.name.as_deref(),
        Some("megatoon-proxy")
    );
    assert_ne!(checksum(&c), checksum(&changed));
    assert_eq!(
        checksum(&c),
        checksum(&children(PRODUCTION, &Observed::default())),
        "render is deterministic"
    );
}

#[test]
fn proxy_service_keeps_client_addresses() {
    let c = children(PRODUCTION, &Observed::default());
    let service = c
        .services
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("megatoon-proxy"))
        .expect("service");
    let spec = service.spec.as_ref().expect("spec");
    assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
    assert_eq!(spec.external_traffic_policy.as_deref(), Some("Local"));
    let ports: Vec<i32> = spec.ports.iter().flatten().map(|p| p.port).collect();
    assert_eq!(ports, [80, 443]);
}

#[test]
fn nginx_conf_holds_the_spec() {
    let stack = stack_from_yaml(PRODUCTION);
    let conf = nginx_conf(&stack, &NginxLayout::in_cluster(&stack));
    for expected in [
        "server_name megatoon.example www.megatoon.example;",
        "ssl_protocols TLSv1.2 TLSv1.3;",
        "add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;",
        "return 308 https://$host$request_uri;",
        "return 444;",
        "ssl_reject_handshake on;",
        "server_tokens off;",
        "autoindex off;",
        "limit_req_zone $binary_remote_addr zone=webtoon_req:10m rate=50r/s;",
        "limit_req zone=webtoon_req burst=100 nodelay;",
        "limit_req_status 429;",
        "location = /admin {",
        "location ^~ /admin/ {",
        "location ^~ /manage/ {",
        "allow 10.0.12.0/24;",
        "deny all;",
        "location ^~ /images/ {",
        "alias /srv/images/;",
        "add_header Cache-Control \"public, max-age=604800, immutable\" always;",
        "proxy_next_upstream error timeout http_502 http_503 http_504;",
        "proxy_next_upstream_tries 3;",
        "proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;",
        "proxy_cache_path /var/cache/nginx/webtoon levels=1:2 keys_zone=webtoon_cache:10m max_size=536870912",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "keepalive 32;",
        "client_max_body_size 20m;",
        "open_file_cache max=10000 inactive=60s;",
    ] {
        assert!(conf.contains(expected), "missing {expected:?}");
    }
    let admin_block = conf
        .split("location ^~ /admin/ {")
        .nth(1)
        .expect("admin block");
    let admin_block = &admin_block[..admin_block.find("\n        }").expect("end")];
    assert!(admin_block.find("allow 10.0.12.0/24;") < admin_block.find("deny all;"));
}

#[test]
fn fastcgi_was_gets_fastcgi_pass_and_port_probes() {
    let yaml = MINIMAL.replace(
        "    image: registry.example/minitoon/was:1.0.0",
        "    image: php:8.3-fpm\n    protocol: fastcgi\n    port: 9000\n    fastcgiRoot: /app/public",
    );
    let stack = stack_from_yaml(&yaml);
    let conf = nginx_conf(&stack, &NginxLayout::in_cluster(&stack));
    assert!(conf.contains("fastcgi_pass webtoon_was;"));
    assert!(conf.contains("fastcgi_param SCRIPT_FILENAME /app/public$fastcgi_script_name;"));
    assert!(conf.contains("fastcgi_cache_path "));
    assert!(!conf.contains("proxy_pass"));
    let c = render(&stack, &Observed::default());
    let probe = pod(&c, "minitoon-was").containers[0]
        .readiness_probe
        .clone()
        .expect("probe");
    assert!(probe.tcp_socket.is_some() && probe.http_get.is_none());
}

#[test]
fn was_gets_connection_settings_and_passwords_only_by_reference() {
    let c = children(
        PRODUCTION,
        &Observed {
            credentials: Some(test_credentials()),
            now: None,
            ..Default::default()
        },
    );
    let pod = pod(&c, "megatoon-was");
    let env = pod.containers[0].env.as_ref().expect("env");
    let value = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(
        value("WEBTOON_DB_HOST").value.as_deref(),
        Some("megatoon-database.webtoon.svc")
    );
    assert_eq!(value("WEBTOON_DB_PORT").value.as_deref(), Some("3306"));
    assert_eq!(value("WEBTOON_REDIS_PORT").value.as_deref(), Some("6379"));
    assert_eq!(
        value("WEBTOON_IMAGES_DIR").value.as_deref(),
        Some("/var/www/images")
    );
    assert_eq!(
        value("WEBTOON_PUBLIC_URL").value.as_deref(),
        Some("https://megatoon.example")
    );
    assert_eq!(value("TZ").value.as_deref(), Some("Asia/Seoul"));
    let password = value("WEBTOON_DB_PASSWORD")
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("secret ref");
    assert_eq!(password.name, "megatoon-credentials");
    assert_eq!(password.key, "database-password");
    let text = serde_json::to_string(pod).expect("json");
    assert!(
        !text.contains("secret-value"),
        "no password value in the WAS pod"
    );
    assert!(
        !text.contains("database-root-password"),
        "the root password never reaches the WAS"
    );
    let images = pod.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.name == "images")
        .expect("mount");
    assert_eq!(images.read_only, None, "read-write for the WAS");
}

#[test]
fn external_services_use_the_users_secrets() {
    let c = children(
        include_str!("../examples/external-db.yaml"),
        &Observed::default(),
    );
    let pod = pod(&c, "cloudtoon-was");
    let env = pod.containers[0].env.as_ref().expect("env");
    let find = |name: &str| env.iter().find(|e| e.name == name).expect("env var");
    assert_eq!(
        find("WEBTOON_DB_HOST").value.as_deref(),
        Some("mariadb.db.internal")
    );
    let user = find("WEBTOON_DB_USER")
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.clone())
        .expect("ref");
    assert_eq!(
        (user.name.as_str(), user.key.as_str()),
        ("cloudtoon-database", "username")
    );
    assert_eq!(
        find("WEBTOON_REDIS_HOST").value.as_deref(),
        Some("redis.cache.internal")
    );
    assert!(
        c.stateful_sets.is_empty(),
        "no database or cache is deployed in external mode"
    );
    assert!(
        c.persistent_volume_claims.is_empty(),
        "the existing claim is used as is"
    );
    let claim = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == "images")
        .and_then(|v| v.persistent_volume_claim.clone())
        .expect("claim");
    assert_eq!(claim.claim_name, "cloudtoon-images");
}

#[test]
fn nfs_storage_is_a_bound_volume_and_claim() {
    let c = children(PRODUCTION, &Observed::default());
    let pv = &c.persistent_volumes[0];
    let name = pv.metadata.name.clone().expect("name");
    assert!(name.starts_with("megatoon-images-") && name.len() <= 63);
    let spec = pv.spec.as_ref().expect("spec");
    assert_eq!(
        spec.nfs.as_ref().map(|n| n.server.as_str()),
        Some("nfs.megatoon.internal")
    );
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    assert_eq!(spec.access_modes, Some(vec!["ReadWriteMany".to_string()]));
    let claim = c.persistent_volume_claims[0]
        .spec
        .as_ref()
        .expect("claim spec");
    assert_eq!(claim.volume_name.as_deref(), Some(name.as_str()));
    assert_eq!(claim.storage_class_name.as_deref(), Some(""));
}

#[test]
fn autoscalers_own_replicas_and_schedules_raise_floors() {
    let before_sale = Observed {
        credentials: None,
        now: "2026-11-30T00:00:00Z".parse().ok(),
        ..Default::default()
    };
    let during_sale = Observed {
        credentials: None,
        now: "2026-12-01T10:00:00+09:00".parse().ok(),
        ..Default::default()
    };
    let min = |c: &Children, name: &str| {
        c.horizontal_pod_autoscalers
            .iter()
            .find(|h| h.metadata.name.as_deref() == Some(name))
            .and_then(|h| h.spec.as_ref())
            .and_then(|s| s.min_replicas)
            .expect("hpa")
    };
    let c = children(PRODUCTION, &before_sale);
    assert_eq!(min(&c, "megatoon-was"), 3);
    assert_eq!(min(&c, "megatoon-proxy"), 2);
    assert!(
        c.deployments
            .iter()
            .all(|d| d.spec.as_ref().and_then(|s| s.replicas).is_none()),
        "the HPA owns replicas"
    );
    let c = children(PRODUCTION, &during_sale);
    assert_eq!(min(&c, "megatoon-was"), 12);
    assert_eq!(min(&c, "megatoon-proxy"), 6);

    let fixed = MINIMAL.to_string()
        + "  scaling:\n    schedules:\n      - {name: sale, start: \"2026-12-01T09:00:00+09:00\", end: \"2026-12-01T21:00:00+09:00\", was: {minReplicas: 5}}\n";
    let replicas = |c: &Children| {
        c.deployments
            .iter()
            .find(|d| d.metadata.name.as_deref() == Some("minitoon-was"))
            .and_then(|d| d.spec.as_ref()?.replicas)
    };
    assert_eq!(replicas(&children(&fixed, &before_sale)), Some(2));
    assert_eq!(replicas(&children(&fixed, &during_sale)), Some(5));
    assert!(
        children(&fixed, &during_sale)
            .horizontal_pod_autoscalers
            .is_empty()
    );
}

#[test]
fn rollouts_never_drop_below_desired_and_budgets_allow_one_disruption() {
    let c = children(PRODUCTION, &Observed::default());
    for d in &c.deployments {
        let strategy = d
            .spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref())
            .expect("rolling");
        assert_eq!(
            strategy.max_unavailable,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(0))
        );
    }
    let was = c
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some("megatoon-was"))
        .expect("was");
    assert_eq!(
        was.spec.as_ref().and_then(|s| s.progress_deadline_seconds),
        Some(300)
    );
    assert_eq!(c.pod_disruption_budgets.len(), 2);
    let spread = pod(&c, "megatoon-was")
        .topology_spread_constraints
        .clone()
        .expect("spread");
    assert_eq!(spread.len(), 2);
}

#[test]
fn credentials_secret_exists_only_when_observed_and_render_output_holds_no_values() {
    let stack = stack_from_yaml(PRODUCTION);
    assert!(render(&stack, &Observed::default()).secrets.is_empty());
    let with = render(
        &stack,
        &Observed {
            credentials: Some(test_credentials()),
            now: None,
            ..Default::default()
        },
    );
    let data = with.secrets[0].data.as_ref().expect("data");
    assert_eq!(data.len(), 4);
    assert_eq!(
        with.secrets[0].metadata.name.as_deref(),
        Some("megatoon-credentials")
    );
    let offline =
        webtoon_operator::manifest::render_yaml(&stack, &Observed::default()).expect("yaml");
    assert!(!offline.contains("kind: Secret"));
    assert!(format!("{:?}", test_credentials()).contains("redacted"));
}
