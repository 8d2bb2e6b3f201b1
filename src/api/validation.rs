//! Semantic validation of a `WebtoonStack`. It enforces the same rules as the CRD
//! schema (patterns, ranges, CEL rules) so that `validate`, the controller and the API
//! server agree, and every message names the field and says how to fix it.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ResourceRequirements};
use regex::Regex;

use super::patterns;
use super::quantity::{nginx_size_bytes, quantity_bytes};
use super::spec::*;

/// One problem in a stack, located by its field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the offending field, such as `spec.hosts[1]`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A stack that passed validation, with the facts render needs resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedStack {
    /// Stack name; children are named `<name>-<component>`.
    pub name: String,
    /// Namespace of the stack and all its children.
    pub namespace: String,
    /// UID of the stack object in the cluster, for owner references; `None` offline.
    pub uid: Option<String>,
    /// The spec, with defaults applied.
    pub spec: WebtoonStackSpec,
    /// Rotations that switched the WAS to new credentials, as the credentials Secret
    /// records; 0 offline and before the first. It names the database account the WAS
    /// uses (see [`crate::render::credentials::database_user`]).
    pub credentials_generation: u64,
}

/// Checks a stack and returns it validated, or every problem found.
pub fn validate(stack: &WebtoonStack) -> Result<ValidatedStack, Vec<FieldError>> {
    let mut v = Checker::default();
    let name = stack.metadata.name.clone().unwrap_or_default();
    v.stack_name(&name);
    let namespace = stack
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    // The API server checks namespaces of stored objects; offline manifests reach
    // render (and nginx.conf) without it.
    v.pattern(
        "metadata.namespace",
        &namespace,
        &DNS_LABEL,
        63,
        "a namespace name: use a lower-case DNS label, such as webtoon",
    );
    v.spec(&stack.spec);
    if v.errors.is_empty() {
        Ok(ValidatedStack {
            name,
            namespace,
            uid: stack.metadata.uid.clone(),
            spec: stack.spec.clone(),
            credentials_generation: 0,
        })
    } else {
        Err(v.errors)
    }
}

/// Paths of fields present in `raw` that the typed spec does not know, such as
/// misspelt keys. `typed` is the typed value serialized back to JSON.
pub fn unknown_fields(raw: &serde_json::Value, typed: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_unknown(raw, typed, "", &mut found);
    found
}

fn collect_unknown(
    raw: &serde_json::Value,
    typed: &serde_json::Value,
    path: &str,
    found: &mut Vec<String>,
) {
    use serde_json::Value;
    match (raw, typed) {
        (Value::Object(r), Value::Object(t)) => {
            for (key, value) in r {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match t.get(key) {
                    Some(tv) => collect_unknown(value, tv, &child, found),
                    None => found.push(child),
                }
            }
        }
        (Value::Array(r), Value::Array(t)) => {
            for (i, (rv, tv)) in r.iter().zip(t).enumerate() {
                collect_unknown(rv, tv, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

static HOST: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::HOST));
static CIDR: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::CIDR));
static URL_PATH: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::URL_PATH));
static FS_PATH: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::FS_PATH));
static NGINX_SIZE: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::NGINX_SIZE));
static NGINX_TIME: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::NGINX_TIME));
static QUANTITY: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::QUANTITY));
static DNS_LABEL: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::DNS_LABEL));
static DNS_SUBDOMAIN: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(patterns::DNS_SUBDOMAIN));
static IMAGE: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::IMAGE));
static CRON: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::CRON));
static OBJECT_STORE_ENDPOINT: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(patterns::OBJECT_STORE_ENDPOINT));
static BUCKET: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::BUCKET));
static OBJECT_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(patterns::OBJECT_PREFIX));
static REGION: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(r"^[a-z0-9][a-z0-9-]*$"));
static SQL_IDENTIFIER: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(patterns::SQL_IDENTIFIER));
static BACKUP_NAME: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::BACKUP_NAME));
static RFC3339: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(patterns::RFC3339));
static SCRAPE_INTERVAL: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(patterns::SCRAPE_INTERVAL));
static ROTATION_REQUEST_ID_RE: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(ROTATION_REQUEST_ID));
static NETWORK_HOST: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(r"^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$"));
static STACK_NAME: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(r"^[a-z]([-a-z0-9]*[a-z0-9])?$"));
static TIME_ZONE: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(r"^[A-Za-z][A-Za-z0-9_+/-]*$"));

/// Whether `value` is a network in CIDR notation with a prefix that fits its family,
/// the same test as the CEL `isCIDR` function.
pub fn is_cidr(value: &str) -> bool {
    let Some((address, prefix)) = value.split_once('/') else {
        return false;
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return false;
    };
    // Go's netip, behind CEL's isCIDR, refuses a prefix length with a leading zero
    // and Kubernetes refuses IPv4-mapped IPv6 addresses.
    if prefix.is_empty()
        || prefix.len() > 3
        || !prefix.bytes().all(|b| b.is_ascii_digit())
        || (prefix.len() > 1 && prefix.starts_with('0'))
    {
        return false;
    }
    if let IpAddr::V6(v6) = address
        && v6.to_ipv4_mapped().is_some()
    {
        return false;
    }
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match address {
        IpAddr::V4(_) => prefix <= 32,
        IpAddr::V6(_) => prefix <= 128,
    }
}

/// The network of a valid CIDR with the address bits beyond the prefix cleared, as
/// it would be written canonically; `None` when `value` is not a CIDR.
fn canonical_network(value: &str) -> Option<String> {
    if !is_cidr(value) {
        return None;
    }
    let (address, prefix) = value.split_once('/')?;
    let prefix: u32 = prefix.parse().ok()?;
    match address.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Some(format!(
                "{}/{prefix}",
                std::net::Ipv4Addr::from(u32::from(v4) & mask)
            ))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            let network = std::net::Ipv6Addr::from(u128::from(v6) & mask);
            // Compare addresses, not spellings: fd00::/8 and FD00:0::/8 are the same.
            if network == v6 {
                Some(value.to_string())
            } else {
                Some(format!("{network}/{prefix}"))
            }
        }
    }
}

/// Collects errors while walking a spec.
#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn pattern(&mut self, path: &str, value: &str, re: &Regex, max_len: usize, what: &str) {
        if value.len() > max_len {
            self.error(
                path,
                format!(
                    "is {} characters long; the limit is {max_len}: shorten it",
                    value.len()
                ),
            );
        } else if !re.is_match(value) {
            self.error(path, format!("{value:?} is not {what}"));
        }
    }

    fn range(&mut self, path: &str, value: i64, min: i64, max: i64) {
        if value < min || value > max {
            self.error(
                path,
                format!("is {value}; it must be between {min} and {max}"),
            );
        }
    }

    fn stack_name(&mut self, name: &str) {
        if name.len() > MAX_STACK_NAME_LEN || !STACK_NAME.is_match(name) {
            self.error(
                "metadata.name",
                format!(
                    "{name:?} must be at most {MAX_STACK_NAME_LEN} lower-case letters, digits and dashes, starting with a letter, so that every child name stays a valid DNS label: choose a shorter or simpler name"
                ),
            );
        }
    }

    fn spec(&mut self, spec: &WebtoonStackSpec) {
        self.hosts(&spec.hosts);
        if let Some(tls) = &spec.tls {
            self.pattern(
                "spec.tls.secretName",
                &tls.secret_name,
                &DNS_SUBDOMAIN,
                253,
                "a Secret name: use the name of a kubernetes.io/tls Secret in this namespace",
            );
            self.range(
                "spec.tls.hstsMaxAgeSeconds",
                tls.hsts_max_age_seconds.into(),
                0,
                63_072_000,
            );
        }
        self.proxy(&spec.proxy);
        self.was(&spec.was);
        self.single_points_of_failure(spec);
        self.database(&spec.database);
        self.cache(&spec.cache);
        self.storage(&spec.storage);
        self.network_cidrs(
            "spec.network.ingressFromCIDRs",
            &spec.network.ingress_from_cidrs,
            "0.0.0.0/0",
        );
        if spec.network.ingress_from_cidrs.is_empty() {
            self.error(
                "spec.network.ingressFromCIDRs",
                "is empty, so no client could reach the site: list client networks, such as 0.0.0.0/0",
            );
        }
        self.network_peers(&spec.network);
        self.schedules(spec);
        self.credentials(spec);
        if let Some(monitoring) = &spec.monitoring {
            self.monitoring(monitoring);
        }
    }

    /// `spec.monitoring`: a namespace and labels the API server takes in a selector
    /// and in metadata, an interval Prometheus parses, pinned images.
    fn monitoring(&mut self, monitoring: &MonitoringSpec) {
        self.pattern(
            "spec.monitoring.prometheusNamespace",
            &monitoring.prometheus_namespace,
            &DNS_LABEL,
            63,
            "a namespace name: use the namespace Prometheus runs in, such as monitoring",
        );
        self.labels(
            "spec.monitoring.prometheusPodLabels",
            &monitoring.prometheus_pod_labels,
        );
        self.labels(
            "spec.monitoring.podMonitorLabels",
            &monitoring.pod_monitor_labels,
        );
        self.pattern(
            "spec.monitoring.interval",
            &monitoring.interval,
            &SCRAPE_INTERVAL,
            8,
            "a scrape interval in whole seconds or minutes, such as 30s or 1m",
        );
        if let Some(was) = &monitoring.was {
            self.range("spec.monitoring.was.port", was.port.into(), 1024, 65535);
            self.url_path("spec.monitoring.was.path", &was.path, "/metrics");
        }
        let images = &monitoring.images;
        self.image("spec.monitoring.images.nginx", &images.nginx);
        self.image("spec.monitoring.images.nginxLog", &images.nginx_log);
        self.image("spec.monitoring.images.mysqld", &images.mysqld);
        self.image("spec.monitoring.images.redis", &images.redis);
    }

    /// A map used as Kubernetes labels: qualified-name keys, short label values.
    fn labels(&mut self, path: &str, labels: &std::collections::BTreeMap<String, String>) {
        if labels.len() > 16 {
            self.error(
                path,
                format!("has {} labels; the limit is 16: drop some", labels.len()),
            );
        }
        for (key, value) in labels {
            if !is_qualified_name(key) {
                self.error(
                    format!("{path}[{key:?}]"),
                    "is not a label key: use a name of letters, digits, `-`, `_` and `.`, with an optional DNS prefix, such as app.kubernetes.io/name",
                );
            }
            if value.len() > 63 || !(value.is_empty() || QUALIFIED_NAME.is_match(value)) {
                self.error(
                    format!("{path}[{key:?}]"),
                    format!(
                        "{value:?} is not a label value: use at most 63 letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit, such as prometheus"
                    ),
                );
            }
        }
    }

    /// `spec.credentials`: a request ID of the allowed shape, a sane interval, and
    /// something to rotate.
    fn credentials(&mut self, spec: &WebtoonStackSpec) {
        let Some(rotation) = spec.credentials.as_ref().and_then(|c| c.rotation.as_ref()) else {
            return;
        };
        let path = "spec.credentials.rotation";
        if rotation.request_id.is_none() && rotation.interval_days.is_none() {
            self.error(
                path,
                "is empty: set requestId (a new value asks for one rotation) or intervalDays (rotate periodically), or remove it",
            );
        }
        if let Some(id) = &rotation.request_id {
            self.pattern(
                &format!("{path}.requestId"),
                id,
                &ROTATION_REQUEST_ID_RE,
                63,
                "a request ID: use letters, digits and . _ : + -, starting with a letter or digit, such as 2026-05-01",
            );
        }
        if let Some(days) = rotation.interval_days {
            self.range(&format!("{path}.intervalDays"), days.into(), 1, 3650);
        }
        if spec.database.mode == ServiceMode::External && spec.cache.mode == ServiceMode::External {
            self.error(
                path,
                "the database and the cache are both external, so the operator generates no credential to rotate: rotate them where they run, and remove spec.credentials.rotation",
            );
        }
    }

    fn network_peers(&mut self, network: &NetworkSpec) {
        if network.ingress_from_namespaces.len() > 32 {
            self.error(
                "spec.network.ingressFromNamespaces",
                format!(
                    "has {} entries; the limit is 32",
                    network.ingress_from_namespaces.len()
                ),
            );
        }
        for (i, namespace) in network.ingress_from_namespaces.iter().enumerate() {
            self.pattern(
                &format!("spec.network.ingressFromNamespaces[{i}]"),
                namespace,
                &DNS_LABEL,
                63,
                "a namespace name: use lower-case letters, digits and dashes, such as ingress-nginx",
            );
        }
        if network.was_egress.len() > 32 {
            self.error(
                "spec.network.wasEgress",
                format!("has {} entries; the limit is 32", network.was_egress.len()),
            );
        }
        for (i, egress) in network.was_egress.iter().enumerate() {
            let path = format!("spec.network.wasEgress[{i}]");
            self.network_cidrs(
                &format!("{path}.cidr"),
                std::slice::from_ref(&egress.cidr),
                "203.0.113.0/24",
            );
            if egress.ports.is_empty() || egress.ports.len() > 16 {
                self.error(
                    format!("{path}.ports"),
                    format!(
                        "has {} entries; list between 1 and 16 TCP ports",
                        egress.ports.len()
                    ),
                );
            }
            for (j, port) in egress.ports.iter().enumerate() {
                if !(1..=65535).contains(port) {
                    self.error(
                        format!("{path}.ports[{j}]"),
                        format!("{port} is not a TCP port: use a number from 1 to 65535"),
                    );
                }
            }
        }
    }

    fn hosts(&mut self, hosts: &[String]) {
        if hosts.is_empty() || hosts.len() > 32 {
            self.error(
                "spec.hosts",
                format!(
                    "has {} entries; list between 1 and 32 host names",
                    hosts.len()
                ),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, host) in hosts.iter().enumerate() {
            let path = format!("spec.hosts[{i}]");
            self.pattern(
                &path,
                host,
                &HOST,
                253,
                "a valid host name: use lower-case DNS names such as www.example.com or *.example.com",
            );
            if !seen.insert(host) {
                self.error(
                    path,
                    format!("{host:?} is listed twice: remove the duplicate"),
                );
            }
        }
    }

    fn image(&mut self, path: &str, image: &str) {
        self.pattern(
            path,
            image,
            &IMAGE,
            512,
            "an image reference with a tag or digest: write it as repository:tag, such as nginx:1.28.0",
        );
        if image.ends_with(":latest") {
            self.error(
                path,
                "image tags must be pinned: replace :latest with a version tag or a digest",
            );
        }
    }

    /// CIDRs that become NetworkPolicy ipBlocks, which the API server takes only in
    /// canonical form, without address bits beyond the prefix.
    fn network_cidrs(&mut self, path: &str, cidrs: &[String], example: &str) {
        self.cidrs(path, cidrs, example);
        for (i, cidr) in cidrs.iter().enumerate() {
            if let Some(network) = canonical_network(cidr)
                && network != *cidr
            {
                self.error(
                    format!("{path}[{i}]"),
                    format!("{cidr:?} has address bits set beyond its prefix length, which NetworkPolicies refuse: write the network, {network}"),
                );
            }
        }
    }

    fn cidrs(&mut self, path: &str, cidrs: &[String], example: &str) {
        if cidrs.len() > 64 {
            self.error(
                path,
                format!("has {} entries; the limit is 64", cidrs.len()),
            );
        }
        for (i, cidr) in cidrs.iter().enumerate() {
            if !CIDR.is_match(cidr) || !is_cidr(cidr) {
                self.error(
                    format!("{path}[{i}]"),
                    format!("{cidr:?} is not a network in CIDR notation: write it like {example}"),
                );
            }
        }
    }

    fn autoscaling(&mut self, path: &str, autoscaling: &AutoscalingSpec) {
        self.range(
            &format!("{path}.minReplicas"),
            autoscaling.min_replicas.into(),
            1,
            1000,
        );
        self.range(
            &format!("{path}.maxReplicas"),
            autoscaling.max_replicas.into(),
            1,
            1000,
        );
        self.range(
            &format!("{path}.targetCPUUtilization"),
            autoscaling.target_cpu_utilization.into(),
            10,
            100,
        );
        if autoscaling.min_replicas > autoscaling.max_replicas {
            self.error(
                format!("{path}.minReplicas"),
                format!(
                    "({}) must not exceed {path}.maxReplicas ({}): lower minReplicas or raise maxReplicas",
                    autoscaling.min_replicas, autoscaling.max_replicas
                ),
            );
        }
    }

    /// A claim's capacity: the API server refuses a claim that requests nothing.
    fn volume_size(&mut self, path: &str, value: &str, example: &str) {
        if quantity_bytes(value) == Some(0) {
            self.error(
                path,
                format!("is {value:?}; a volume needs a size above zero, such as {example}"),
            );
        } else {
            self.quantity(path, value, example);
        }
    }

    fn quantity(&mut self, path: &str, value: &str, example: &str) {
        if !QUANTITY.is_match(value) || quantity_bytes(value).is_none() {
            self.error(
                path,
                format!(
                    "{value:?} is not a size: write a whole number with a unit, such as {example}"
                ),
            );
        }
    }

    fn proxy(&mut self, proxy: &ProxySpec) {
        self.image("spec.proxy.image", &proxy.image);
        self.range("spec.proxy.replicas", proxy.replicas.into(), 1, 1000);
        self.rollout("spec.proxy.rollout", &proxy.rollout);
        if let Some(autoscaling) = &proxy.autoscaling {
            self.autoscaling("spec.proxy.autoscaling", autoscaling);
        }
        self.quantity("spec.proxy.cache.size", &proxy.cache.size, "512Mi");
        if !NGINX_TIME.is_match(&proxy.cache.static_max_age) {
            self.error(
                "spec.proxy.cache.staticMaxAge",
                format!(
                    "{:?} is not a duration: write a number with a unit s, m, h, d, w, M or y, such as 7d",
                    proxy.cache.static_max_age
                ),
            );
        }
        self.range(
            "spec.proxy.rateLimit.requestsPerSecond",
            proxy.rate_limit.requests_per_second.into(),
            1,
            100_000,
        );
        self.range(
            "spec.proxy.rateLimit.burst",
            proxy.rate_limit.burst.into(),
            0,
            100_000,
        );
        if proxy.admin.paths.len() > 32 {
            self.error("spec.proxy.admin.paths", "has more than 32 entries");
        }
        for (i, path) in proxy.admin.paths.iter().enumerate() {
            self.url_path(&format!("spec.proxy.admin.paths[{i}]"), path, "/admin");
        }
        self.cidrs(
            "spec.proxy.admin.allowCIDRs",
            &proxy.admin.allow_cidrs,
            "10.0.12.0/24",
        );
        self.cidrs(
            "spec.proxy.trustedProxyCIDRs",
            &proxy.trusted_proxy_cidrs,
            "10.0.0.0/8",
        );
        if !NGINX_SIZE.is_match(&proxy.client_max_body_size)
            || nginx_size_bytes(&proxy.client_max_body_size).is_none()
        {
            self.error(
                "spec.proxy.clientMaxBodySize",
                format!(
                    "{:?} is not an nginx size: write a number with an optional k, m or g suffix, such as 20m",
                    proxy.client_max_body_size
                ),
            );
        }
        self.resources("spec.proxy.resources", &proxy.resources);
        for key in proxy.service.annotations.keys() {
            if !is_qualified_name(key) {
                self.error(
                    format!("spec.proxy.service.annotations[{key:?}]"),
                    "is not an annotation key: write an optional DNS prefix and /, then up to 63 letters, digits, -, _ and ., such as service.beta.kubernetes.io/aws-load-balancer-internal",
                );
            }
        }
        self.pattern(
            "spec.proxy.resolver",
            &proxy.resolver,
            &DNS_SUBDOMAIN,
            253,
            "a DNS name: use the cluster DNS Service, such as kube-dns.kube-system.svc.cluster.local",
        );
    }

    fn url_path(&mut self, path: &str, value: &str, example: &str) {
        self.pattern(
            path,
            value,
            &URL_PATH,
            256,
            &format!(
                "a URL path: start with / and use only letters, digits and . _ ~ - /, such as {example}"
            ),
        );
    }

    fn fs_path(&mut self, path: &str, value: &str, example: &str) {
        self.pattern(
            path,
            value,
            &FS_PATH,
            256,
            &format!(
                "an absolute path: start with / and use only letters, digits and . _ - /, such as {example}"
            ),
        );
    }

    fn was(&mut self, was: &WasSpec) {
        self.image("spec.was.image", &was.image);
        self.range("spec.was.port", was.port.into(), 1024, 65535);
        self.fs_path("spec.was.fastcgiRoot", &was.fastcgi_root, "/var/www/html");
        if was.protocol == WasProtocol::Fastcgi && was.fastcgi_root.trim_end_matches('/').is_empty()
        {
            // The proxy pods copy the document root out of the WAS image.
            self.error(
                "spec.was.fastcgiRoot",
                "is the image's whole filesystem, which the proxy pods would copy: name the application's document root, such as /var/www/html/public",
            );
        }
        self.range("spec.was.replicas", was.replicas.into(), 1, 1000);
        if let Some(autoscaling) = &was.autoscaling {
            self.autoscaling("spec.was.autoscaling", autoscaling);
        }
        self.url_path("spec.was.healthPath", &was.health_path, "/healthz");
        self.env("spec.was.env", &was.env);
        self.resources("spec.was.resources", &was.resources);
        self.rollout("spec.was.rollout", &was.rollout);
        if let Some(migration) = &was.migration {
            self.migration(migration);
        }
    }

    fn rollout(&mut self, path: &str, rollout: &RolloutSpec) {
        self.range(
            &format!("{path}.progressDeadlineSeconds"),
            rollout.progress_deadline_seconds.into(),
            30,
            3600,
        );
    }

    fn migration(&mut self, migration: &MigrationSpec) {
        let path = "spec.was.migration";
        if migration.command.is_empty() || migration.command.len() > 64 {
            self.error(
                format!("{path}.command"),
                format!(
                    "has {} entries: give 1 to 64, such as [\"bin/migrate\", \"--to-latest\"]",
                    migration.command.len()
                ),
            );
        }
        for (i, part) in migration.command.iter().enumerate() {
            if part.len() > 4096 {
                self.error(
                    format!("{path}.command[{i}]"),
                    "is longer than 4096 bytes: move long scripts into the image",
                );
            }
        }
        self.env(&format!("{path}.env"), &migration.env);
        self.range(
            &format!("{path}.timeoutSeconds"),
            migration.timeout_seconds.into(),
            30,
            86400,
        );
    }

    fn single_points_of_failure(&mut self, spec: &WebtoonStackSpec) {
        if spec.accept_single_point_of_failure {
            return;
        }
        for (tier, replicas, autoscaling) in [
            ("proxy", spec.proxy.replicas, &spec.proxy.autoscaling),
            ("was", spec.was.replicas, &spec.was.autoscaling),
        ] {
            if replicas < 2 {
                self.error(
                    format!("spec.{tier}.replicas"),
                    format!(
                        "is {replicas}; at least 2 are needed so that one failing pod cannot take the site down: raise it, or set spec.acceptSinglePointOfFailure: true"
                    ),
                );
            }
            if let Some(a) = autoscaling
                && a.min_replicas < 2
            {
                self.error(
                    format!("spec.{tier}.autoscaling.minReplicas"),
                    format!(
                        "is {}; at least 2 are needed so that one failing pod cannot take the site down: raise it, or set spec.acceptSinglePointOfFailure: true",
                        a.min_replicas
                    ),
                );
            }
        }
    }

    fn volume(&mut self, path: &str, volume: &VolumeSpec, example: &str) {
        self.volume_size(&format!("{path}.size"), &volume.size, example);
        if let Some(class) = &volume.storage_class_name {
            self.pattern(
                &format!("{path}.storageClassName"),
                class,
                &DNS_SUBDOMAIN,
                253,
                "a StorageClass name",
            );
        }
    }

    fn external(&mut self, path: &str, mode: ServiceMode, external: Option<&ExternalServiceSpec>) {
        match (mode, external) {
            (ServiceMode::External, None) => self.error(
                format!("{path}.external"),
                format!("is required when {path}.mode is external: give host, port and secretName"),
            ),
            (ServiceMode::Embedded, Some(_)) => self.error(
                format!("{path}.external"),
                format!(
                    "is allowed only when {path}.mode is external: remove it or set mode: external"
                ),
            ),
            (_, Some(e)) => {
                self.pattern(
                    &format!("{path}.external.host"),
                    &e.host,
                    &NETWORK_HOST,
                    253,
                    "a host name or IP address",
                );
                self.range(&format!("{path}.external.port"), e.port.into(), 1, 65535);
                self.pattern(
                    &format!("{path}.external.secretName"),
                    &e.secret_name,
                    &DNS_SUBDOMAIN,
                    253,
                    "a Secret name",
                );
            }
            (ServiceMode::Embedded, None) => {}
        }
    }

    fn database(&mut self, db: &DatabaseSpec) {
        self.external("spec.database", db.mode, db.external.as_ref());
        if db.mode == ServiceMode::External {
            for (path, set) in [
                ("spec.database.backup", db.backup.is_some()),
                ("spec.database.restore", db.restore.is_some()),
            ] {
                if set {
                    self.error(
                        path,
                        "applies to the embedded database only: remove it, or back up the external database where it runs",
                    );
                }
            }
        }
        self.image("spec.database.image", &db.image);
        self.resources("spec.database.resources", &db.resources);
        for (path, value) in [
            ("spec.database.name", &db.name),
            ("spec.database.user", &db.user),
        ] {
            self.pattern(
                path,
                value,
                &SQL_IDENTIFIER,
                32,
                "a MariaDB identifier: start with a letter, then letters, digits or _, such as webtoon",
            );
        }
        self.volume("spec.database.storage", &db.storage, "20Gi");
        self.range(
            "spec.database.maxConnections",
            db.max_connections.into(),
            10,
            10_000,
        );
        if let Some(backup) = &db.backup {
            self.cron_schedule("spec.database.backup.schedule", &backup.schedule);
            self.cron_schedule(
                "spec.database.backup.verify.schedule",
                &backup.verify.schedule,
            );
            if backup.time_zone.len() <= 64 && !is_iana_time_zone(&backup.time_zone) {
                self.error(
                    "spec.database.backup.timeZone",
                    format!(
                        "{:?} is not a time zone of the IANA database (names are case-sensitive): use one such as Asia/Seoul or Etc/UTC",
                        backup.time_zone
                    ),
                );
            } else if backup.time_zone.len() > 64 {
                self.pattern(
                    "spec.database.backup.timeZone",
                    &backup.time_zone,
                    &TIME_ZONE,
                    64,
                    "an IANA time zone, such as Asia/Seoul",
                );
            }
            self.range("spec.database.backup.keep", backup.keep.into(), 1, 365);
            if let Some(storage) = &backup.storage {
                self.volume("spec.database.backup.storage", storage, "50Gi");
            }
            if let Some(store) = &backup.object_store {
                self.object_store("spec.database.backup.objectStore", store);
            }
        }
        if let Some(restore) = &db.restore {
            self.pattern(
                "spec.database.restore.from",
                &restore.from,
                &BACKUP_NAME,
                140,
                "latest or a backup file name, such as webtoon-20261201T030000Z.sql.gz",
            );
            if let Some(claim) = &restore.claim_name {
                self.pattern(
                    "spec.database.restore.claimName",
                    claim,
                    &DNS_SUBDOMAIN,
                    253,
                    "a PersistentVolumeClaim name",
                );
            }
            if let Some(store) = &restore.object_store {
                self.object_store("spec.database.restore.objectStore", store);
            }
            if restore.claim_name.is_some() && restore.object_store.is_some() {
                self.error(
                    "spec.database.restore",
                    "set claimName or objectStore, not both",
                );
            }
        }
    }

    fn cron_schedule(&mut self, path: &str, schedule: &str) {
        self.pattern(
            path,
            schedule,
            &CRON,
            128,
            "a five-field cron schedule, such as \"0 3 * * *\"",
        );
        if CRON.is_match(schedule)
            && let Some(problem) = cron_schedule_problem(schedule)
        {
            self.error(
                path,
                format!(
                    "{schedule:?} is not a schedule the Kubernetes CronJob accepts: {problem}; write minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC) and day of week (0-6 or SUN-SAT), such as \"0 3 * * *\""
                ),
            );
        }
    }

    fn object_store(&mut self, path: &str, store: &ObjectStoreSpec) {
        self.pattern(
            &format!("{path}.endpoint"),
            &store.endpoint,
            &OBJECT_STORE_ENDPOINT,
            256,
            "an endpoint URL with a host and an optional port, such as https://s3.ap-northeast-2.amazonaws.com",
        );
        if store.endpoint.starts_with("http://") && !store.insecure {
            self.error(
                format!("{path}.endpoint"),
                format!(
                    "{:?} is not encrypted: replace http:// with https://, or set {path}.insecure: true to send keys and backups in clear text",
                    store.endpoint
                ),
            );
        }
        if let Some(port) = store
            .endpoint
            .trim_end_matches('/')
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u32>().ok())
            && !(1..=65535).contains(&port)
        {
            self.error(
                format!("{path}.endpoint"),
                format!("port {port} is outside 1-65535"),
            );
        }
        self.pattern(
            &format!("{path}.bucket"),
            &store.bucket,
            &BUCKET,
            63,
            "an S3 bucket name of 3 to 63 lower-case letters, digits, dots and hyphens, such as webtoon-backups",
        );
        if let Some(prefix) = &store.prefix {
            self.pattern(
                &format!("{path}.prefix"),
                prefix,
                &OBJECT_PREFIX,
                512,
                "/-separated segments ending with /, such as backups/megatoon/",
            );
        }
        self.pattern(
            &format!("{path}.region"),
            &store.region,
            &REGION,
            32,
            "a region name such as us-east-1",
        );
        self.pattern(
            &format!("{path}.secretName"),
            &store.secret_name,
            &DNS_SUBDOMAIN,
            253,
            "a Secret name, such as backup-s3",
        );
        if let Some(config_map) = &store.ca_config_map {
            self.pattern(
                &format!("{path}.caConfigMap"),
                config_map,
                &DNS_SUBDOMAIN,
                253,
                "a ConfigMap name, such as backup-ca",
            );
        }
        if store.egress_cidrs.is_empty() {
            self.error(
                format!("{path}.egressCIDRs"),
                "is empty, so no backup could reach the endpoint: list its networks, such as 10.0.0.0/8, or leave the field out for 0.0.0.0/0",
            );
        }
        self.cidrs(
            &format!("{path}.egressCIDRs"),
            &store.egress_cidrs,
            "10.0.0.0/8",
        );
    }

    fn cache(&mut self, cache: &CacheSpec) {
        self.external("spec.cache", cache.mode, cache.external.as_ref());
        self.resources("spec.cache.resources", &cache.resources);
        self.image("spec.cache.image", &cache.image);
        self.quantity("spec.cache.maxMemory", &cache.max_memory, "256Mi");
        if let Some(volume) = &cache.persistence {
            self.volume("spec.cache.persistence", volume, "1Gi");
        }
        let limit = cache
            .resources
            .limits
            .as_ref()
            .and_then(|l| l.get("memory"))
            .and_then(|q| quantity_bytes(&q.0));
        if let (Some(limit), Some(max)) = (limit, quantity_bytes(&cache.max_memory))
            && max > limit
        {
            self.error(
                "spec.cache.maxMemory",
                format!(
                    "({}) exceeds the memory limit in spec.cache.resources.limits.memory, so Redis would be killed before it evicts: lower maxMemory or raise the limit",
                    cache.max_memory
                ),
            );
        }
    }

    fn storage(&mut self, storage: &StorageSpec) {
        self.volume_size("spec.storage.size", &storage.size, "100Gi");
        if let Some(class) = &storage.storage_class_name {
            self.pattern(
                "spec.storage.storageClassName",
                class,
                &DNS_SUBDOMAIN,
                253,
                "a StorageClass name",
            );
        }
        if let Some(claim) = &storage.existing_claim {
            self.pattern(
                "spec.storage.existingClaim",
                claim,
                &DNS_SUBDOMAIN,
                253,
                "a PersistentVolumeClaim name",
            );
        }
        if let Some(nfs) = &storage.nfs {
            self.pattern(
                "spec.storage.nfs.server",
                &nfs.server,
                &NETWORK_HOST,
                253,
                "a host name or IP address",
            );
            self.fs_path("spec.storage.nfs.path", &nfs.path, "/exports/webtoon");
        }
        if storage.existing_claim.is_some() && storage.nfs.is_some() {
            self.error(
                "spec.storage",
                "takes either existingClaim or nfs, not both: remove one",
            );
        }
        self.fs_path(
            "spec.storage.mountPath",
            &storage.mount_path,
            "/var/www/images",
        );
        // The WAS container mounts its own emptyDir at /tmp: a second volume at the same
        // path is refused by the API server, and one at / would hide the image.
        if matches!(storage.mount_path.trim_end_matches('/'), "" | "/tmp") {
            self.error(
                "spec.storage.mountPath",
                format!(
                    "{:?} is taken: the WAS container needs / and /tmp for itself; mount the images elsewhere, such as /var/www/images",
                    storage.mount_path
                ),
            );
        }
        self.url_path("spec.storage.urlPath", &storage.url_path, "/images");
        if storage.url_path == "/" {
            self.error(
                "spec.storage.urlPath",
                "must not be / because it would hide the whole site: use a prefix such as /images",
            );
        }
    }

    fn schedules(&mut self, spec: &WebtoonStackSpec) {
        let mut names = BTreeSet::new();
        for (i, schedule) in spec.scaling.schedules.iter().enumerate() {
            let path = format!("spec.scaling.schedules[{i}]");
            self.pattern(
                &format!("{path}.name"),
                &schedule.name,
                &DNS_LABEL,
                63,
                "a lower-case name of letters, digits and dashes",
            );
            if !names.insert(&schedule.name) {
                self.error(
                    format!("{path}.name"),
                    format!(
                        "{:?} is used twice: give each schedule its own name",
                        schedule.name
                    ),
                );
            }
            let start = self.timestamp(&format!("{path}.start"), &schedule.start);
            let end = self.timestamp(&format!("{path}.end"), &schedule.end);
            if let (Some(start), Some(end)) = (start, end)
                && end <= start
            {
                self.error(
                    format!("{path}.end"),
                    "must be after start: swap or correct the times",
                );
            }
            for (tier, floor, autoscaling) in [
                ("was", &schedule.was, &spec.was.autoscaling),
                ("proxy", &schedule.proxy, &spec.proxy.autoscaling),
            ] {
                let Some(floor) = floor else { continue };
                self.range(
                    &format!("{path}.{tier}.minReplicas"),
                    floor.min_replicas.into(),
                    1,
                    1000,
                );
                if let Some(a) = autoscaling
                    && floor.min_replicas > a.max_replicas
                {
                    self.error(
                        format!("{path}.{tier}.minReplicas"),
                        format!(
                            "({}) must not exceed spec.{tier}.autoscaling.maxReplicas ({}): raise maxReplicas or lower the schedule's floor",
                            floor.min_replicas, a.max_replicas
                        ),
                    );
                }
            }
        }
        if spec.scaling.schedules.len() > 32 {
            self.error("spec.scaling.schedules", "has more than 32 entries");
        }
    }

    /// Requests and limits the kubelet understands, each a non-negative quantity,
    /// no request above its limit: the API server refuses the pod template otherwise.
    fn resources(&mut self, path: &str, resources: &ResourceRequirements) {
        if resources.claims.as_ref().is_some_and(|c| !c.is_empty()) {
            self.error(
                format!("{path}.claims"),
                "is not supported: the operator declares no resource claims in its pods; remove it and write requests and limits only",
            );
        }
        let limits = resources.limits.clone().unwrap_or_default();
        let requests = resources.requests.clone().unwrap_or_default();
        for (kind, map) in [("limits", &limits), ("requests", &requests)] {
            for (name, quantity) in map {
                let at = format!("{path}.{kind}.{name}");
                let standard = matches!(name.as_str(), "cpu" | "memory" | "ephemeral-storage");
                let extended = !standard
                    && name.contains('/')
                    && is_qualified_name(name)
                    && !name.split('/').next().is_some_and(|domain| {
                        domain == "kubernetes.io" || domain.ends_with(".kubernetes.io")
                    });
                if !standard && !extended {
                    self.error(
                        &at,
                        format!("{name:?} is not a container resource: use cpu, memory, ephemeral-storage or an extended resource such as example.com/gpu"),
                    );
                    continue;
                }
                match quantity_nanos(&quantity.0) {
                    None => self.error(
                        &at,
                        format!("{:?} is not a quantity: write it like 500m, 2 or 1Gi", quantity.0),
                    ),
                    Some(value) if value < 0 => self.error(
                        &at,
                        format!("{:?} is negative: write 0 or more, such as 500m", quantity.0),
                    ),
                    Some(value) if extended && value % 1_000_000_000 != 0 => self.error(
                        &at,
                        format!("{:?}: extended resources are counted in whole units: write a whole number", quantity.0),
                    ),
                    Some(_) => {}
                }
            }
        }
        for (name, request) in &requests {
            let request_value = quantity_nanos(&request.0);
            let extended = name.contains('/');
            match limits.get(name) {
                Some(limit) => {
                    let limit_value = quantity_nanos(&limit.0);
                    if let (Some(r), Some(l)) = (request_value, limit_value)
                        && (r > l || (extended && r != l))
                    {
                        self.error(
                            format!("{path}.requests.{name}"),
                            format!(
                                "({}) exceeds {path}.limits.{name} ({}): lower the request or raise the limit, such as both to {}{}",
                                request.0,
                                limit.0,
                                limit.0,
                                if extended { "; extended resources need equal requests and limits" } else { "" }
                            ),
                        );
                    }
                }
                None if extended => self.error(
                    format!("{path}.requests.{name}"),
                    format!("extended resources are set in limits: add {path}.limits.{name}, such as {name}: 1"),
                ),
                None => {}
            }
        }
    }

    /// Environment variables as the API server and server-side apply take them.
    fn env(&mut self, field: &str, env: &[EnvVar]) {
        if env.len() > 128 {
            self.error(field, "has more than 128 entries");
        }
        let mut seen = BTreeSet::new();
        for (i, var) in env.iter().enumerate() {
            let path = format!("{field}[{i}]");
            if var.name.starts_with("WEBTOON_") {
                self.error(
                    format!("{path}.name"),
                    format!(
                        "{:?}: names starting with WEBTOON_ are set by the operator: rename the variable",
                        var.name
                    ),
                );
            }
            if !ENV_NAME.is_match(&var.name) {
                self.error(
                    format!("{path}.name"),
                    format!(
                        "{:?} is not an environment variable name every supported Kubernetes version accepts: use letters, digits, _, - and ., not starting with a digit, such as API_TOKEN",
                        var.name
                    ),
                );
            }
            if !seen.insert(var.name.as_str()) {
                self.error(
                    format!("{path}.name"),
                    format!(
                        "{:?} is listed twice, which server-side apply refuses: keep one entry, such as the first",
                        var.name
                    ),
                );
            }
            if let Some(from) = &var.value_from {
                self.env_source(&path, var.value.as_deref(), from);
            }
        }
    }

    fn env_source(&mut self, path: &str, value: Option<&str>, from: &EnvVarSource) {
        if value.is_some_and(|v| !v.is_empty()) {
            self.error(
                format!("{path}.valueFrom"),
                "cannot be combined with value: keep one of them, such as valueFrom alone",
            );
        }
        let sources = [
            from.secret_key_ref.is_some(),
            from.config_map_key_ref.is_some(),
            from.field_ref.is_some(),
            from.resource_field_ref.is_some(),
        ]
        .into_iter()
        .filter(|set| *set)
        .count();
        if sources != 1 {
            self.error(
                format!("{path}.valueFrom"),
                format!(
                    "names {sources} sources: give exactly one of secretKeyRef, configMapKeyRef, fieldRef or resourceFieldRef, such as secretKeyRef: {{name: api, key: token}}"
                ),
            );
        }
        let references = [
            (
                "secretKeyRef",
                from.secret_key_ref.as_ref().map(|r| (&r.name, &r.key)),
            ),
            (
                "configMapKeyRef",
                from.config_map_key_ref.as_ref().map(|r| (&r.name, &r.key)),
            ),
        ];
        for (source, reference) in references {
            let Some((name, key)) = reference else {
                continue;
            };
            self.pattern(
                &format!("{path}.valueFrom.{source}.name"),
                name,
                &DNS_SUBDOMAIN,
                253,
                "an object name: use a lower-case DNS name, such as api-credentials",
            );
            self.pattern(
                &format!("{path}.valueFrom.{source}.key"),
                key,
                &CONFIG_KEY,
                253,
                "a key: use letters, digits, -, _ and ., such as token",
            );
        }
        if let Some(field) = &from.field_ref {
            let annotation_or_label = ["metadata.labels['", "metadata.annotations['"]
                .iter()
                .find_map(|p| field.field_path.strip_prefix(p))
                .and_then(|rest| rest.strip_suffix("']"))
                .is_some_and(is_qualified_name);
            let supported = [
                "metadata.name",
                "metadata.namespace",
                "metadata.uid",
                "spec.nodeName",
                "spec.serviceAccountName",
                "status.hostIP",
                "status.hostIPs",
                "status.podIP",
                "status.podIPs",
            ];
            if !annotation_or_label && !supported.contains(&field.field_path.as_str())
                || field.api_version.as_deref().is_some_and(|v| v != "v1")
            {
                self.error(
                    format!("{path}.valueFrom.fieldRef"),
                    format!(
                        "{:?} is not a pod field the API offers: use one of {}, or metadata.labels['<key>'], such as metadata.name",
                        field.field_path,
                        supported.join(", ")
                    ),
                );
            }
        }
        if let Some(resource) = &from.resource_field_ref {
            let supported = [
                "limits.cpu",
                "limits.memory",
                "limits.ephemeral-storage",
                "requests.cpu",
                "requests.memory",
                "requests.ephemeral-storage",
            ];
            if !supported.contains(&resource.resource.as_str())
                || resource
                    .container_name
                    .as_deref()
                    .is_some_and(|c| !c.is_empty())
                || resource.divisor.is_some()
            {
                self.error(
                    format!("{path}.valueFrom.resourceFieldRef"),
                    format!(
                        "must name one of {} of the WAS container itself, without containerName or divisor, such as limits.memory",
                        supported.join(", ")
                    ),
                );
            }
        }
    }

    fn timestamp(&mut self, path: &str, value: &str) -> Option<jiff::Timestamp> {
        // CEL's timestamp() (Go's RFC 3339 parser) knows no leap second and no year 0:
        // the CRD rule comparing start and end would fail on either.
        let parsed = if RFC3339.is_match(value) && &value[17..19] != "60" && &value[..4] != "0000" {
            value.parse::<jiff::Timestamp>().ok()
        } else {
            None
        };
        if parsed.is_none() {
            self.error(
                path,
                format!(
                    "{value:?} is not an RFC 3339 time: write it like 2026-12-01T09:00:00+09:00"
                ),
            );
        }
        parsed
    }
}

/// Why `schedule` is not a schedule the Kubernetes CronJob controller parses, if it
/// is not: the API server parses it as five fields of numbers, names (months and
/// days of the week), `*`, `?`, ranges `a-b`, steps `/n` and lists, each within its
/// field's bounds. Cron extensions (`L`, `W`, `#`, descriptors) are not understood.
pub fn cron_schedule_problem(schedule: &str) -> Option<String> {
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let fields: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 1),
        ("month", 1, 12, MONTHS, 1),
        ("day of week", 0, 6, DAYS, 0),
    ];
    let parts: Vec<&str> = schedule.split(' ').collect();
    if parts.len() != fields.len() {
        return Some(format!("has {} fields instead of 5", parts.len()));
    }
    for (part, (what, min, max, names, first_name)) in parts.into_iter().zip(fields) {
        for item in part.split(',') {
            if let Err(problem) = cron_item(item, min, max, names, first_name) {
                return Some(format!("the {what} field {part:?}: {problem}"));
            }
        }
    }
    None
}

fn cron_item(item: &str, min: u32, max: u32, names: &[&str], first: u32) -> Result<(), String> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    if let Some(step) = step
        && cron_value(step, &[], 0)? == 0
    {
        return Err(format!("{item:?} has a step of 0; steps start at 1"));
    }
    let (start, end) = if range == "*" || range == "?" {
        (min, max)
    } else {
        let mut bounds = range.split('-');
        let start = cron_value(bounds.next().unwrap_or_default(), names, first)?;
        let end = match (bounds.next(), bounds.next()) {
            (None, _) if step.is_some() => max,
            (None, _) => start,
            (Some(end), None) => cron_value(end, names, first)?,
            (Some(_), Some(_)) => return Err(format!("{item:?} has more than one -")),
        };
        (start, end)
    };
    if start < min || end > max {
        return Err(format!("{item:?} is outside {min}-{max}"));
    }
    if start > end {
        return Err(format!("{item:?} starts after it ends"));
    }
    Ok(())
}

fn cron_value(text: &str, names: &[&str], first: u32) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    if let Some(index) = names.iter().position(|n| *n == lower) {
        return Ok(first + index as u32);
    }
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a number"));
    }
    text.parse::<u32>().map_err(|e| format!("{text:?}: {e}"))
}

/// Whether `name` is a time zone of the IANA database, spelt exactly as the API
/// server looks it up (case matters there, and `Local` is refused).
pub fn is_iana_time_zone(name: &str) -> bool {
    if name == "Local" || !TIME_ZONE.is_match(name) {
        return false;
    }
    match jiff::tz::db().get(name) {
        Ok(zone) => zone.iana_name() == Some(name),
        Err(_) => false,
    }
}

/// The value of a Kubernetes quantity (`500m`, `1.5Gi`, `1e3`) in billionths of its
/// unit, or `None` when it is not a quantity or is too large for the API server.
pub fn quantity_nanos(quantity: &str) -> Option<i128> {
    let (sign, rest) = match quantity.as_bytes().first()? {
        b'-' => (-1, &quantity[1..]),
        b'+' => (1, &quantity[1..]),
        _ => (1, quantity),
    };
    let number_end = rest
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    if whole.len() + fraction.len() > 30 {
        return None;
    }
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    // value = digits * 10^-fraction_len * factor; computed in nanos.
    let (numerator, denominator_pow10): (i128, i32) = match suffix {
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        "n" => (1, 9),
        "u" => (1, 6),
        "m" => (1, 3),
        "" => (1, 0),
        "k" => (1, -3),
        "M" => (1, -6),
        "G" => (1, -9),
        "T" => (1, -12),
        "P" => (1, -15),
        "E" => (1, -18),
        exponent if exponent.starts_with(['e', 'E']) => {
            let power = &exponent[1..];
            let digits_only = power.strip_prefix(['+', '-']).unwrap_or(power);
            if digits_only.is_empty()
                || digits_only.len() > 2
                || !digits_only.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            (1, -power.parse::<i32>().ok()?)
        }
        _ => return None,
    };
    // nanos = digits * numerator * 10^(9 - fraction_len - denominator_pow10)
    let power = 9 - fraction.len() as i32 - denominator_pow10;
    let scaled = digits.checked_mul(numerator)?;
    let nanos = if power >= 0 {
        scaled.checked_mul(10_i128.checked_pow(power as u32)?)?
    } else {
        // Below a billionth: the API server rounds up to its smallest unit.
        let divisor = 10_i128.checked_pow((-power) as u32)?;
        (scaled + divisor - 1) / divisor
    };
    // The API server keeps quantities as 64-bit integers of their smallest unit.
    if nanos / 1_000_000_000 > i64::MAX as i128 {
        return None;
    }
    Some(sign * nanos)
}

/// Whether `key` is a qualified name: an optional DNS-subdomain prefix and `/`,
/// then up to 63 letters, digits, `-`, `_` and `.`, starting and ending
/// alphanumeric. Annotation keys and extended resource names are qualified names.
pub fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.len() > 253 || !DNS_SUBDOMAIN.is_match(prefix))
    {
        return false;
    }
    name.len() <= 63 && QUALIFIED_NAME.is_match(name)
}

static QUALIFIED_NAME: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"));
static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| patterns::compiled(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"));
static CONFIG_KEY: LazyLock<Regex> = LazyLock::new(|| patterns::compiled(r"^[-._a-zA-Z0-9]+$"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_pattern_compiles() {
        for p in [
            patterns::HOST,
            patterns::CIDR,
            patterns::URL_PATH,
            patterns::FS_PATH,
            patterns::NGINX_SIZE,
            patterns::NGINX_TIME,
            patterns::QUANTITY,
            patterns::DNS_LABEL,
            patterns::DNS_SUBDOMAIN,
            patterns::IMAGE,
            patterns::CRON,
            patterns::SQL_IDENTIFIER,
            patterns::BACKUP_NAME,
            patterns::RFC3339,
            patterns::OBJECT_STORE_ENDPOINT,
            patterns::BUCKET,
            patterns::OBJECT_PREFIX,
            patterns::SCRAPE_INTERVAL,
        ] {
            assert!(Regex::new(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn a_php_document_root_is_not_the_whole_image() {
        let stack: WebtoonStack = serde_json::from_value(serde_json::json!({
            "apiVersion": "webtoon.io/v1alpha1", "kind": "WebtoonStack",
            "metadata": {"name": "php", "namespace": "webtoon"},
            "spec": {"hosts": ["php.example"], "was": {
                "image": "registry.example/php:1.0.0", "protocol": "fastcgi", "fastcgiRoot": "/"}},
        }))
        .expect("a stack");
        let errors = validate(&stack).expect_err("refused");
        assert!(
            errors
                .iter()
                .any(|e| e.path == "spec.was.fastcgiRoot" && e.message.contains("such as")),
            "{errors:?}"
        );
    }

    #[test]
    fn cidr_parsing_matches_cel_is_cidr() {
        assert!(is_cidr("10.0.0.0/8"));
        assert!(is_cidr("0.0.0.0/0"));
        assert!(is_cidr("127.0.0.1/32"));
        assert!(is_cidr("fd00::/8"));
        assert!(!is_cidr("10.0.0.0/33"));
        assert!(!is_cidr("10.0.0.0"));
        assert!(!is_cidr("10.0.0/8"));
        assert!(!is_cidr("fd00::/129"));
        assert!(!is_cidr("10.0.0.0/+8"));
        assert!(!is_cidr("10.0.0.0/8; allow all"));
    }

    #[test]
    fn unknown_fields_are_reported_with_their_path() {
        let raw = serde_json::json!({"a": 1, "b": {"c": 2, "typo": 3}, "l": [{"x": 1, "y": 2}]});
        let typed = serde_json::json!({"a": 1, "b": {"c": 2}, "l": [{"x": 1}]});
        assert_eq!(unknown_fields(&raw, &typed), vec!["b.typo", "l[0].y"]);
    }
}
