//! Rendered fields of the proxy, WAS, storage, scaling, credentials and migration
//! children, and of the Deployments the controller holds back or pins, built from
//! inline stacks through the real validation step.

mod common;

use std::collections::BTreeMap;

use common::migration::{BACKUP_FILE, MIGRATION_STACK, migrating_to, without_backups};
use common::{stack_from_yaml, test_credentials};
use k8s_openapi::Metadata;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{EnvVar, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use webtoon_operator::api::ValidatedStack;
use webtoon_operator::render::database::backup_cronjob::{
    BACKUP_COMPONENT, pre_migration_backup_job_name,
};
use webtoon_operator::render::meta::COMPONENT_LABEL;
use webtoon_operator::render::proxy::CONFIG_CHECKSUM_ANNOTATION;
use webtoon_operator::render::proxy::nginx_conf::{NginxLayout, nginx_conf};
use webtoon_operator::render::release::{
    TEMPLATE_HASH_ANNOTATION, Template, hash_of, template_hash,
};
use webtoon_operator::render::was::{MIGRATION_COMPONENT, migration_job_name};
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

fn deployment<'a>(children: &'a Children, name: &str) -> &'a Deployment {
    children
        .deployments
        .iter()
        .find(|d| d.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("deployment {name}"))
}

fn template<'a>(children: &'a Children, name: &str) -> &'a PodTemplateSpec {
    &deployment(children, name)
        .spec
        .as_ref()
        .expect("deployment spec")
        .template
}

/// The names of `objects`, in render order.
fn names<K: Metadata<Ty = ObjectMeta>>(objects: &[K]) -> Vec<String> {
    objects
        .iter()
        .filter_map(|o| o.metadata().name.clone())
        .collect()
}

#[test]
fn a_withheld_was_leaves_out_its_deployment_and_autoscaler_only() {
    let stack = stack_from_yaml(PRODUCTION);
    let spec = render(&stack, &Observed::default());
    let withheld = render(
        &stack,
        &Observed {
            was_template: Template::Withheld,
            ..Default::default()
        },
    );
    assert!(names(&spec.deployments).contains(&"megatoon-was".to_string()));
    assert!(names(&spec.horizontal_pod_autoscalers).contains(&"megatoon-was".to_string()));
    assert_eq!(names(&withheld.deployments), ["megatoon-proxy"]);
    assert_eq!(
        names(&withheld.horizontal_pod_autoscalers),
        ["megatoon-proxy"]
    );
    for service in ["megatoon-was", "megatoon-was-pods", "megatoon-proxy"] {
        assert!(
            names(&withheld.services).contains(&service.to_string()),
            "service {service} stays"
        );
    }
    assert_eq!(
        names(&withheld.pod_disruption_budgets),
        names(&spec.pod_disruption_budgets),
        "the budgets stay"
    );
    assert!(names(&withheld.pod_disruption_budgets).contains(&"megatoon-was".to_string()));

    // Everything else is what the spec renders.
    let mut expected = spec.clone();
    expected
        .deployments
        .retain(|d| d.metadata.name.as_deref() != Some("megatoon-was"));
    expected
        .horizontal_pod_autoscalers
        .retain(|h| h.metadata.name.as_deref() != Some("megatoon-was"));
    assert_eq!(withheld, expected);
}

#[test]
fn a_pinned_template_runs_as_it_was_while_the_spec_sets_replicas_and_strategy() {
    let old = children(MINIMAL, &Observed::default());
    let new_yaml = MINIMAL
        .replace("was:1.0.0", "was:1.1.0")
        .replace("  was:\n", "  was:\n    replicas: 3\n")
        + "  proxy: {image: \"nginxinc/nginx-unprivileged:1.29.0-alpine\", replicas: 4}\n";
    let spec = children(&new_yaml, &Observed::default());

    // As read back from a ReplicaSet: with the Deployment controller's label.
    let from_replica_set = |name: &str| {
        let mut t = template(&old, name).clone();
        t.metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("pod-template-hash".to_string(), "5d4f8c7b9".to_string());
        Box::new(t)
    };
    let pinned = children(
        &new_yaml,
        &Observed {
            was_template: Template::Pinned(from_replica_set("minitoon-was")),
            proxy_template: Template::Pinned(from_replica_set("minitoon-proxy")),
            ..Default::default()
        },
    );
    for (name, replicas) in [("minitoon-was", 3), ("minitoon-proxy", 4)] {
        let held = deployment(&pinned, name);
        let from_spec = deployment(&spec, name);
        assert_eq!(
            &held.spec.as_ref().expect("spec").template,
            template(&old, name),
            "{name}: exactly the pinned template, without pod-template-hash"
        );
        assert_ne!(
            hash_of(template(&pinned, name)),
            hash_of(template(&spec, name)),
            "{name}: the spec's template is another release"
        );
        let held_spec = held.spec.as_ref().expect("spec");
        assert_eq!(
            held_spec.replicas,
            Some(replicas),
            "{name}: the spec's replicas"
        );
        assert_eq!(
            held_spec.strategy,
            from_spec.spec.as_ref().expect("spec").strategy,
            "{name}: the spec's strategy"
        );
        // All but the template is the spec's.
        let mut held_but_template = held.clone();
        let mut spec_but_template = from_spec.clone();
        for d in [&mut held_but_template, &mut spec_but_template] {
            d.spec.as_mut().expect("spec").template = PodTemplateSpec::default();
        }
        assert_eq!(held_but_template, spec_but_template, "{name}");
    }
}

/// The image the migration runs: not the spec's, to tell where the Job's comes from.
const MIGRATION_IMAGE: &str = "registry.example/migtoon/was:2.1.0";

fn job_of<'a>(children: &'a Children, component: &str) -> &'a Job {
    children
        .jobs
        .iter()
        .find(|j| {
            j.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(COMPONENT_LABEL))
                .map(String::as_str)
                == Some(component)
        })
        .unwrap_or_else(|| panic!("a {component} Job"))
}

fn job_pod(job: &Job) -> &PodSpec {
    job.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("job pod")
}

fn assert_owned_by_the_stack(stack: &ValidatedStack, job: &Job) {
    let owners = job
        .metadata
        .owner_references
        .as_ref()
        .expect("owner references");
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].kind, "WebtoonStack");
    assert_eq!(owners[0].name, stack.name);
    assert_eq!(owners[0].uid, "mig-uid");
    assert_eq!(owners[0].controller, Some(true));
}

fn env_value<'a>(env: &'a [EnvVar], name: &str) -> Vec<Option<&'a str>> {
    env.iter()
        .filter(|e| e.name == name)
        .map(|e| e.value.as_deref())
        .collect()
}

#[test]
fn the_migration_job_runs_the_given_image_with_the_was_environment() {
    let stack = stack_from_yaml(MIGRATION_STACK);
    assert_eq!(stack.name.len(), 36, "the longest stack name");
    let c = render(
        &stack,
        &migrating_to(MIGRATION_IMAGE, Some(BACKUP_FILE), true),
    );
    assert_eq!(c.jobs.len(), 2);
    let job = job_of(&c, MIGRATION_COMPONENT);

    let name = job.metadata.name.as_deref().expect("name");
    let prefix = format!("{}-migration-", stack.name);
    let suffix = name
        .strip_prefix(&prefix)
        .expect("<stack>-migration-<hash>");
    assert!(
        suffix.len() == 8
            && suffix
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{name}: eight hex digits"
    );
    assert!(name.len() <= 63, "{name} is a valid name");
    assert_eq!(name, migration_job_name(&stack, MIGRATION_IMAGE));
    assert_ne!(
        migration_job_name(&stack, MIGRATION_IMAGE),
        migration_job_name(&stack, "registry.example/migtoon/was:2.2.0"),
        "one image, one Job"
    );
    assert_owned_by_the_stack(&stack, job);
    let component = |labels: Option<&BTreeMap<String, String>>| {
        labels
            .and_then(|l| l.get(COMPONENT_LABEL))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(component(job.metadata.labels.as_ref()), MIGRATION_COMPONENT);
    let spec = job.spec.as_ref().expect("job spec");
    assert_eq!(
        component(
            spec.template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref())
        ),
        MIGRATION_COMPONENT,
        "no WAS Service selects the migration pod"
    );
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(900));

    let pod = job_pod(job);
    assert_eq!(pod.containers.len(), 1);
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some(MIGRATION_IMAGE));
    assert_eq!(
        container.command,
        Some(vec!["/app/bin/migrate".to_string(), "--yes".to_string()])
    );
    assert!(container.args.is_none());

    // The WAS's environment, with LOG_LEVEL replaced and MIGRATION_LOCK added.
    let was_env = pod_env(&c, "m23456789012345678901234567890123456-was");
    let env = container.env.clone().expect("env");
    let mut expected: Vec<EnvVar> = was_env
        .iter()
        .filter(|e| e.name != "LOG_LEVEL")
        .cloned()
        .collect();
    expected.extend(stack.spec.was.migration.clone().expect("migration").env);
    assert_eq!(env, expected);
    assert_eq!(env_value(&env, "LOG_LEVEL"), [Some("debug")]);
    assert_eq!(env_value(&env, "APP_MODE"), [Some("production")]);
    assert_eq!(env_value(&env, "MIGRATION_LOCK"), [Some("on")]);
    for e in was_env.iter().filter(|e| e.name.starts_with("WEBTOON_")) {
        assert!(env.contains(e), "the migration gets {}", e.name);
    }
}

fn pod_env(children: &Children, deployment_name: &str) -> Vec<EnvVar> {
    pod(children, deployment_name).containers[0]
        .env
        .clone()
        .expect("env")
}

#[test]
fn the_pre_migration_backup_job_is_the_scheduled_backup_into_the_given_file() {
    let stack = stack_from_yaml(MIGRATION_STACK);
    let c = render(
        &stack,
        &migrating_to(MIGRATION_IMAGE, Some(BACKUP_FILE), true),
    );
    let job = job_of(&c, BACKUP_COMPONENT);
    let name = job.metadata.name.as_deref().expect("name");
    assert!(
        name.starts_with(&format!("{}-database-backup-", stack.name)),
        "{name}"
    );
    assert!(name.len() <= 63, "{name} ({}) is a valid name", name.len());
    assert_eq!(name, pre_migration_backup_job_name(&stack, MIGRATION_IMAGE));
    assert_owned_by_the_stack(&stack, job);
    let pod = job_pod(job);
    let env = pod.containers[0].env.clone().expect("env");
    assert_eq!(env_value(&env, "WEBTOON_BACKUP_NAME"), [Some(BACKUP_FILE)]);
    assert_eq!(
        pod.containers[0].image,
        Some(stack.spec.database.image.clone()),
        "the database image, which has the dump tool"
    );

    // The scheduled backup's pod, told the file name.
    let mut scheduled = c.cron_jobs[0]
        .spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .and_then(|s| s.template.spec.clone())
        .expect("cron job pod");
    let scheduled_env = scheduled.containers[0].env.get_or_insert_with(Vec::new);
    assert!(env_value(scheduled_env, "WEBTOON_BACKUP_NAME").is_empty());
    scheduled_env.push(EnvVar {
        name: "WEBTOON_BACKUP_NAME".to_string(),
        value: Some(BACKUP_FILE.to_string()),
        value_from: None,
    });
    let sorted = |mut pod: PodSpec| {
        if let Some(env) = pod.containers[0].env.as_mut() {
            env.sort_by(|a, b| a.name.cmp(&b.name));
        }
        pod
    };
    assert_eq!(sorted(pod.clone()), sorted(scheduled));
}

#[test]
fn the_jobs_are_the_ones_the_controller_observed() {
    let stack = stack_from_yaml(MIGRATION_STACK);
    let components = |observed: &Observed| -> Vec<String> {
        render(&stack, observed)
            .jobs
            .iter()
            .filter_map(|j| j.metadata.labels.as_ref()?.get(COMPONENT_LABEL).cloned())
            .collect()
    };
    assert!(components(&Observed::default()).is_empty());
    assert_eq!(
        components(&migrating_to(MIGRATION_IMAGE, Some(BACKUP_FILE), true)),
        [BACKUP_COMPONENT, MIGRATION_COMPONENT],
        "the backup first"
    );
    assert_eq!(
        components(&migrating_to(MIGRATION_IMAGE, Some(BACKUP_FILE), false)),
        [BACKUP_COMPONENT],
        "the migration waits for the backup"
    );
    assert_eq!(
        components(&migrating_to(MIGRATION_IMAGE, None, true)),
        [MIGRATION_COMPONENT]
    );
    let no_backups = stack_from_yaml(&without_backups(MIGRATION_STACK));
    assert!(no_backups.spec.database.backup.is_none());
    let jobs = render(
        &no_backups,
        &migrating_to(MIGRATION_IMAGE, Some(BACKUP_FILE), true),
    )
    .jobs;
    assert_eq!(jobs.len(), 1, "no backup Job without backups");
    assert_eq!(
        jobs[0].metadata.name,
        Some(migration_job_name(&no_backups, MIGRATION_IMAGE))
    );
}

#[test]
fn the_template_hash_names_the_pod_template_and_not_the_replica_count() {
    let hashes = |yaml: &str| -> (String, String) {
        let c = children(yaml, &Observed::default());
        for d in &c.deployments {
            let t = &d.spec.as_ref().expect("spec").template;
            let hash = hash_of(t).expect("every Deployment template has a hash");
            assert_eq!(hash.len(), 16);
            assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(hash, template_hash(t), "the hash is of the template itself");
            assert!(
                t.metadata
                    .as_ref()
                    .and_then(|m| m.annotations.as_ref())
                    .is_some_and(|a| a.contains_key(TEMPLATE_HASH_ANNOTATION))
            );
        }
        let of = |name: &str| hash_of(template(&c, name)).expect("hash").to_string();
        (of("minitoon-was"), of("minitoon-proxy"))
    };
    let (was, proxy) = hashes(MINIMAL);
    assert_eq!(
        (was.clone(), proxy.clone()),
        hashes(MINIMAL),
        "deterministic"
    );

    let new_was_image = hashes(&MINIMAL.replace("was:1.0.0", "was:1.0.1"));
    assert_ne!(new_was_image.0, was, "a new WAS image is a new release");
    assert_eq!(new_was_image.1, proxy, "the proxy is untouched");

    let more_was = hashes(&MINIMAL.replace("  was:\n", "  was:\n    replicas: 5\n"));
    assert_eq!(
        more_was,
        (was.clone(), proxy.clone()),
        "replicas are not a release"
    );

    let new_proxy_image = hashes(
        &(MINIMAL.to_string()
            + "  proxy: {image: \"nginxinc/nginx-unprivileged:1.29.0-alpine\"}\n"),
    );
    assert_eq!(new_proxy_image.0, was);
    assert_ne!(
        new_proxy_image.1, proxy,
        "a new proxy image is a new release"
    );

    let more_proxies = hashes(&(MINIMAL.to_string() + "  proxy: {replicas: 5}\n"));
    assert_eq!(more_proxies, (was, proxy), "replicas are not a release");
}
