//! The `WebtoonStack` custom resource: one object that describes a whole webtoon
//! serving stack. Every field has a doc comment because `kubectl explain` shows it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::patterns;
use super::status::WebtoonStackStatus;

/// The longest stack name for which every child name stays a valid Kubernetes name:
/// the backup CronJob `<stack>-database-backup` must fit in 52 characters.
pub const MAX_STACK_NAME_LEN: usize = 36;

/// Desired state of a webtoon serving stack: proxy, application servers, database,
/// cache, shared image storage, network isolation and scaling.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "webtoon.io",
    version = "v1alpha1",
    kind = "WebtoonStack",
    doc = "A webtoon serving stack: nginx proxy, application servers, MariaDB, Redis, shared image storage, network policies and scaling, from one object.",
    namespaced,
    shortname = "wts",
    status = "WebtoonStackStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Proxy","type":"string","jsonPath":".status.proxy.summary"}"#,
    printcolumn = r#"{"name":"WAS","type":"string","jsonPath":".status.was.summary"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.metadata.name.size() <= 36 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be at most 36 lower-case letters, digits and dashes, starting with a letter, so that every child name stays a valid DNS label: choose a shorter or simpler name"),
)]
#[x_kube(
    validation = Rule::new("(has(self.acceptSinglePointOfFailure) && self.acceptSinglePointOfFailure) || ((!has(self.was.replicas) || self.was.replicas >= 2) && (!has(self.was.autoscaling) || self.was.autoscaling.minReplicas >= 2))").message("spec.was needs at least 2 replicas (and autoscaling.minReplicas at least 2) so that one failing pod cannot take the site down: raise them, or set spec.acceptSinglePointOfFailure: true"),
    validation = Rule::new("(has(self.acceptSinglePointOfFailure) && self.acceptSinglePointOfFailure) || !has(self.proxy) || ((!has(self.proxy.replicas) || self.proxy.replicas >= 2) && (!has(self.proxy.autoscaling) || self.proxy.autoscaling.minReplicas >= 2))").message("spec.proxy needs at least 2 replicas (and autoscaling.minReplicas at least 2) so that one failing pod cannot take the site down: raise them, or set spec.acceptSinglePointOfFailure: true"),
)]
#[x_kube(
    validation = Rule::new("!has(self.scaling) || !has(self.scaling.schedules) || self.scaling.schedules.all(s, !has(s.was) || !has(self.was.autoscaling) || s.was.minReplicas <= self.was.autoscaling.maxReplicas)").message("spec.scaling.schedules[].was.minReplicas must not exceed spec.was.autoscaling.maxReplicas: raise maxReplicas or lower the schedule's floor"),
    validation = Rule::new("!has(self.scaling) || !has(self.scaling.schedules) || self.scaling.schedules.all(s, !has(s.proxy) || !has(self.proxy) || !has(self.proxy.autoscaling) || s.proxy.minReplicas <= self.proxy.autoscaling.maxReplicas)").message("spec.scaling.schedules[].proxy.minReplicas must not exceed spec.proxy.autoscaling.maxReplicas: raise maxReplicas or lower the schedule's floor"),
)]
#[serde(rename_all = "camelCase")]
pub struct WebtoonStackSpec {
    /// Host names the site answers to; each becomes an nginx virtual host. Requests for
    /// any other host get no site. Lower case; a leading `*.` matches subdomains.
    #[schemars(length(min = 1, max = 32), inner(length(max = 253), pattern(patterns::HOST)), extend("x-kubernetes-list-type" = "set"))]
    pub hosts: Vec<String>,

    /// TLS for the proxy. When set, only TLS 1.2 and 1.3 are offered, plain HTTP
    /// redirects to HTTPS and HSTS is sent. When absent the site is served over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,

    /// The nginx reverse proxy in front of the application servers.
    #[serde(default)]
    pub proxy: ProxySpec,

    /// The web application servers (WAS) running the site's own image.
    pub was: WasSpec,

    /// The MariaDB database, deployed by the operator or external.
    #[serde(default)]
    pub database: DatabaseSpec,

    /// The Redis cache, deployed by the operator or external.
    #[serde(default)]
    pub cache: CacheSpec,

    /// The shared volume holding comic images: written by the WAS, served by the proxy.
    #[serde(default)]
    pub storage: StorageSpec,

    /// Network isolation between the tiers.
    #[serde(default)]
    pub network: NetworkSpec,

    /// Scaling ahead of known traffic events, such as a subscription sale.
    #[serde(default)]
    pub scaling: ScalingSpec,

    /// What happens to data (volume claims and the credentials Secret) when the stack
    /// is deleted: `Retain` keeps them so a re-created stack finds its data again;
    /// `Delete` removes them with the stack.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,

    /// Allow a single proxy or WAS replica. Off by default, because one replica means
    /// one failing pod takes the whole site down.
    #[serde(default)]
    pub accept_single_point_of_failure: bool,

    /// The generated credentials of the embedded database and cache, and their rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<CredentialsSpec>,

    /// Prometheus metrics of every tier, from an exporter beside each one, and a
    /// PodMonitor for the Prometheus Operator. Absent: no exporter runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,
}

/// Prometheus metrics of the stack: nginx's connections and its access log's
/// requests, statuses and latencies, MariaDB's and Redis's server status, and the
/// WAS's own metrics when it exports them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Namespace Prometheus runs in: the NetworkPolicies admit its pods to the
    /// exporters' metrics ports and to nothing else.
    #[serde(default = "default_prometheus_namespace")]
    #[schemars(length(min = 1, max = 63), pattern(patterns::DNS_LABEL))]
    pub prometheus_namespace: String,
    /// Labels of the Prometheus pods in that namespace; empty admits every pod there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    pub prometheus_pod_labels: BTreeMap<String, String>,
    /// How often Prometheus scrapes the stack's pods (the PodMonitor's interval).
    #[serde(default = "default_scrape_interval")]
    #[schemars(length(max = 8), pattern(patterns::SCRAPE_INTERVAL))]
    pub interval: String,
    /// Labels of the stack's PodMonitor, so that a Prometheus's `podMonitorSelector`
    /// picks it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 16))]
    pub pod_monitor_labels: BTreeMap<String, String>,
    /// The WAS's own metrics endpoint, scraped beside the exporters. Absent: the WAS
    /// is not scraped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<WasMetricsSpec>,
    /// Images of the exporters, pinned by tag.
    #[serde(default)]
    pub images: ExporterImages,
}

/// Where the WAS serves its own Prometheus metrics.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WasMetricsSpec {
    /// Port of the metrics endpoint; it may be the WAS's own port.
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// HTTP path of the metrics endpoint.
    #[serde(default = "default_metrics_path")]
    #[schemars(length(max = 256), pattern(patterns::URL_PATH))]
    pub path: String,
}

/// Images of the exporters. Each must honour the flags and environment of the
/// upstream image of the same version.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExporterImages {
    /// nginx-prometheus-exporter, which reads nginx's `stub_status`.
    #[serde(default = "default_nginx_exporter_image")]
    #[schemars(length(max = 512), pattern(patterns::IMAGE))]
    #[x_kube(validation = Rule::new("!self.endsWith(':latest')").message("image tags must be pinned: replace :latest with a version tag or a digest"))]
    pub nginx: String,
    /// prometheus-nginxlog-exporter, which counts nginx's access log.
    #[serde(default = "default_nginx_log_exporter_image")]
    #[schemars(length(max = 512), pattern(patterns::IMAGE))]
    #[x_kube(validation = Rule::new("!self.endsWith(':latest')").message("image tags must be pinned: replace :latest with a version tag or a digest"))]
    pub nginx_log: String,
    /// mysqld_exporter.
    #[serde(default = "default_mysqld_exporter_image")]
    #[schemars(length(max = 512), pattern(patterns::IMAGE))]
    #[x_kube(validation = Rule::new("!self.endsWith(':latest')").message("image tags must be pinned: replace :latest with a version tag or a digest"))]
    pub mysqld: String,
    /// redis_exporter.
    #[serde(default = "default_redis_exporter_image")]
    #[schemars(length(max = 512), pattern(patterns::IMAGE))]
    #[x_kube(validation = Rule::new("!self.endsWith(':latest')").message("image tags must be pinned: replace :latest with a version tag or a digest"))]
    pub redis: String,
}

/// Default nginx-prometheus-exporter image.
pub const DEFAULT_NGINX_EXPORTER_IMAGE: &str = "nginx/nginx-prometheus-exporter:1.5.1";
/// Default prometheus-nginxlog-exporter image.
pub const DEFAULT_NGINX_LOG_EXPORTER_IMAGE: &str =
    "ghcr.io/martin-helmich/prometheus-nginxlog-exporter/exporter:v1.11.0";
/// Default mysqld_exporter image.
pub const DEFAULT_MYSQLD_EXPORTER_IMAGE: &str = "prom/mysqld-exporter:v0.19.0";
/// Default redis_exporter image.
pub const DEFAULT_REDIS_EXPORTER_IMAGE: &str = "oliver006/redis_exporter:v1.82.0";

fn default_nginx_exporter_image() -> String {
    DEFAULT_NGINX_EXPORTER_IMAGE.to_string()
}

fn default_nginx_log_exporter_image() -> String {
    DEFAULT_NGINX_LOG_EXPORTER_IMAGE.to_string()
}

fn default_mysqld_exporter_image() -> String {
    DEFAULT_MYSQLD_EXPORTER_IMAGE.to_string()
}

fn default_redis_exporter_image() -> String {
    DEFAULT_REDIS_EXPORTER_IMAGE.to_string()
}

impl Default for ExporterImages {
    fn default() -> Self {
        Self {
            nginx: default_nginx_exporter_image(),
            nginx_log: default_nginx_log_exporter_image(),
            mysqld: default_mysqld_exporter_image(),
            redis: default_redis_exporter_image(),
        }
    }
}

fn default_prometheus_namespace() -> String {
    "monitoring".to_string()
}

fn default_scrape_interval() -> String {
    "30s".to_string()
}

fn default_metrics_path() -> String {
    "/metrics".to_string()
}

impl Default for MonitoringSpec {
    fn default() -> Self {
        Self {
            prometheus_namespace: default_prometheus_namespace(),
            prometheus_pod_labels: BTreeMap::new(),
            interval: default_scrape_interval(),
            pod_monitor_labels: BTreeMap::new(),
            was: None,
            images: ExporterImages::default(),
        }
    }
}

/// Request ID of a credentials rotation: letters, digits and `._:+-`, such as a date
/// or a ticket number.
pub const ROTATION_REQUEST_ID: &str = r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,62}$";

/// The stack's generated credentials.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsSpec {
    /// Rotation of every generated password (the application's, the backup user's,
    /// MariaDB root's, Redis's) without a refused login: a second database account
    /// and a second Redis password take over while the WAS rolls onto them, then the
    /// old ones stop working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationSpec>,
}

/// When the credentials are rotated.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[schemars(extend("minProperties" = 1))]
#[serde(rename_all = "camelCase")]
pub struct RotationSpec {
    /// Any value; setting a value the stack has not seen before asks for one rotation
    /// (a stack created with it rotates nothing: its passwords are new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), pattern(ROTATION_REQUEST_ID))]
    pub request_id: Option<String>,
    /// Rotate again when the last rotation (or, before the first one, the credentials
    /// Secret) is this many days old.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3650))]
    pub interval_days: Option<u32>,
}

/// TLS termination at the proxy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// Name of a `kubernetes.io/tls` Secret in the stack's namespace with the
    /// certificate (`tls.crt`) and key (`tls.key`) for every host.
    #[schemars(length(min = 1, max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub secret_name: String,

    /// `max-age` of the Strict-Transport-Security header, in seconds. 0 disables HSTS.
    #[serde(default = "default_hsts_max_age")]
    #[schemars(range(min = 0, max = 63072000))]
    pub hsts_max_age_seconds: u32,
}

fn default_hsts_max_age() -> u32 {
    31_536_000
}

/// Replica bounds for a HorizontalPodAutoscaler driven by CPU utilisation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("autoscaling.minReplicas must not exceed autoscaling.maxReplicas: lower minReplicas or raise maxReplicas"))]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    /// Fewest replicas the autoscaler keeps.
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
    /// Most replicas the autoscaler may start.
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,
    /// Average CPU utilisation, in percent of the CPU request, that the autoscaler aims for.
    #[serde(default = "default_target_cpu", rename = "targetCPUUtilization")]
    #[schemars(range(min = 10, max = 100))]
    pub target_cpu_utilization: i32,
}

fn default_target_cpu() -> i32 {
    70
}

/// The nginx reverse proxy tier.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    /// nginx image. It must run as a non-root user and listen on unprivileged ports
    /// (the `nginx-unprivileged` images do), and be nginx 1.27.3 or newer, which
    /// re-resolves WAS pod addresses (`server ... resolve`).
    #[serde(default = "default_proxy_image")]
    #[schemars(length(max = 512), pattern(patterns::IMAGE))]
    #[x_kube(validation = Rule::new("!self.endsWith(':latest')").message("image tags must be pinned: replace :latest with a version tag or a digest"))]
    pub image: String,

    /// Number of proxy pods when autoscaling is off.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: i32,

    /// Scale the proxy with CPU load. Absent means a fixed `replicas` count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,

    /// How clients reach the proxy.
    #[serde(default)]
    pub service: ProxyServiceSpec,

    /// Caching of static images and of cacheable WAS responses.
    #[serde(default)]
    pub cache: ProxyCacheSpec,

    /// Per-client-address request rate limit.
    #[serde(default)]
    pub rate_limit: RateLimitSpec,

    /// Paths reachable only from administrator networks.
    #[serde(default)]
    pub admin: AdminSpec,

    /// Networks of load balancers or proxies in front of nginx whose
    /// `X-Forwarded-For` header is trusted for the real client address. Leave empty
    /// when clients connect directly (the Service then keeps client addresses with
    /// `externalTrafficPolicy: Local`).
    #[serde(default, rename = "trustedProxyCIDRs")]
    #[schemars(length(max = 64), inner(length(max = 43), pattern(patterns::CIDR)))]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message("proxy.trustedProxyCIDRs entries must be networks in CIDR notation, such as 10.0.0.0/8"))]
    pub trusted_proxy_cidrs: Vec<String>,

    /// Largest request body a client may send (nginx size, such as `20m`).
    #[serde(default = "default_client_max_body_size")]
    #[schemars(pattern(patterns::NGINX_SIZE))]
    pub client_max_body_size: String,

    /// DNS server nginx asks for WAS pod addresses.
    #[serde(default = "default_resolver")]
    #[schemars(length(max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub resolver: String,

    /// CPU and memory for each proxy pod.
    #[serde(default = "default_proxy_resources")]
    pub resources: ResourceRequirements,

    /// Rollout and rollback of updates.
    #[serde(default)]
    pub rollout: RolloutSpec,
}

/// The default proxy image: unprivileged nginx, new enough for `resolve` upstreams.
pub const DEFAULT_PROXY_IMAGE: &str = "nginxinc/nginx-unprivileged:1.28.0-alpine";

fn default_proxy_image() -> String {
    DEFAULT_PROXY_IMAGE.to_string()
}

fn default_replicas() -> i32 {
    2
}

fn default_client_max_body_size() -> String {
    "20m".to_string()
}

fn default_resolver() -> String {
    "kube-dns.kube-system.svc.cluster.local".to_string()
}

fn default_proxy_resources() -> ResourceRequirements {
    resources("100m", "128Mi", "1", "256Mi")
}

/// Requests and limits from four strings: CPU and memory requested, CPU and memory limit.
pub fn resources(
    cpu: &str,
    memory: &str,
    cpu_limit: &str,
    memory_limit: &str,
) -> ResourceRequirements {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let pair = |c: &str, m: &str| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(c.to_string())),
            ("memory".to_string(), Quantity(m.to_string())),
        ])
    };
    ResourceRequirements {
        requests: Some(pair(cpu, memory)),
        limits: Some(pair(cpu_limit, memory_limit)),
        ..Default::default()
    }
}

impl Default for ProxySpec {
    fn default() -> Self {
        Self {
            image: default_proxy_image(),
            replicas: default_replicas(),
            autoscaling: None,
            service: ProxyServiceSpec::default(),
            cache: ProxyCacheSpec::default(),
            rate_limit: RateLimitSpec::default(),
            admin: AdminSpec::default(),
            trusted_proxy_cidrs: Vec::new(),
            client_max_body_size: default_client_max_body_size(),
            resolver: default_resolver(),
            resources: default_proxy_resources(),
            rollout: RolloutSpec::default(),
        }
    }
}

/// The kind of Service in front of the proxy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ServiceType {
    /// Reachable inside the cluster only (behind an Ingress or Gateway).
    ClusterIP,
    /// Reachable on a port of every node.
    NodePort,
    /// Reachable through a cloud or bare-metal load balancer.
    #[default]
    LoadBalancer,
}

/// The Service that exposes the proxy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProxyServiceSpec {
    /// Service type. `LoadBalancer` and `NodePort` keep client addresses for the admin
    /// allow-list and rate limits (`externalTrafficPolicy: Local`).
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Annotations for the Service, for example a cloud load balancer's settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Caching at the proxy.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxyCacheSpec {
    /// Cache cacheable WAS responses and serve them stale while every WAS is down.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Disk space for cached WAS responses (a Kubernetes quantity such as `512Mi`).
    #[serde(default = "default_cache_size")]
    #[schemars(pattern(patterns::QUANTITY))]
    pub size: String,
    /// How long browsers and CDNs may keep static images (nginx time, such as `7d`).
    #[serde(default = "default_static_max_age")]
    #[schemars(pattern(patterns::NGINX_TIME))]
    pub static_max_age: String,
}

fn default_true() -> bool {
    true
}

fn default_cache_size() -> String {
    "512Mi".to_string()
}

fn default_static_max_age() -> String {
    "7d".to_string()
}

impl Default for ProxyCacheSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            size: default_cache_size(),
            static_max_age: default_static_max_age(),
        }
    }
}

/// A per-client-address rate limit; excess requests get HTTP 429.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Apply the limit.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Sustained requests per second allowed from one client address.
    #[serde(default = "default_rps")]
    #[schemars(range(min = 1, max = 100000))]
    pub requests_per_second: u32,
    /// Requests above the rate accepted in a burst before 429 is returned.
    #[serde(default = "default_burst")]
    #[schemars(range(min = 0, max = 100000))]
    pub burst: u32,
}

fn default_rps() -> u32 {
    50
}

fn default_burst() -> u32 {
    100
}

impl Default for RateLimitSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            requests_per_second: default_rps(),
            burst: default_burst(),
        }
    }
}

/// Administrative paths and the networks allowed to reach them.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AdminSpec {
    /// URL path prefixes of administrative functions.
    #[serde(default = "default_admin_paths")]
    #[schemars(
        length(max = 32),
        inner(length(max = 256), pattern(patterns::URL_PATH))
    )]
    pub paths: Vec<String>,
    /// Networks allowed to reach the admin paths; every other client gets 403. Empty
    /// means nobody reaches them through the proxy.
    #[serde(default, rename = "allowCIDRs")]
    #[schemars(length(max = 64), inner(length(max = 43), pattern(patterns::CIDR)))]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message("proxy.admin.allowCIDRs entries must be networks in CIDR notation, such as 10.0.12.0/24"))]
    pub allow_cidrs: Vec<String>,
}

fn default_admin_paths() -> Vec<String> {
    vec!["/admin".to_string()]
}

impl Default for AdminSpec {
    fn default() -> Self {
        Self {
            paths: default_admin_paths(),
            allow_cidrs: Vec::new(),
        }
    }
}

/// How the proxy talks to the WAS.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum WasProtocol {
    /// The WAS speaks HTTP/1.1.
    #[default]
    Http,
    /// The WAS is a FastCGI server such as php-fpm.
    Fastcgi,
}

/// How updates of a tier's pods roll out, and what happens when one fails.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutSpec {
    /// Seconds a rollout may go without progress before it counts as failed. New pods
    /// that cannot pull their image for 60 s, or that crashed 3 times, fail it sooner.
    #[serde(default = "default_progress_deadline")]
    #[schemars(range(min = 30, max = 3600))]
    pub progress_deadline_seconds: i32,
    /// Return the tier to its last fully rolled-out pod template when a rollout fails,
    /// and keep it there until the spec changes. Off: the failure is reported and the
    /// Deployment is left as it is.
    #[serde(default = "default_true")]
    pub auto_rollback: bool,
}

/// A database migration that runs once per WAS image, before the image rolls out.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MigrationSpec {
    /// Command run in the new WAS image, with the WAS's environment (database,
    /// cache and image settings included). Exit status 0 means the migration succeeded.
    #[schemars(length(min = 1, max = 64), inner(length(max = 4096)))]
    pub command: Vec<String>,
    /// Extra environment variables for the migration only; an entry with the name of
    /// a `was.env` entry replaces it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[x_kube(validation = Rule::new("self.all(e, !e.name.startsWith('WEBTOON_'))").message("spec.was.migration.env names starting with WEBTOON_ are set by the operator: rename the variable"))]
    pub env: Vec<EnvVar>,
    /// Seconds the migration may run before it is stopped and counts as failed.
    #[serde(default = "default_migration_timeout")]
    #[schemars(range(min = 30, max = 86400))]
    pub timeout_seconds: i32,
}

fn default_migration_timeout() -> i32 {
    600
}

fn default_progress_deadline() -> i32 {
    300
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            progress_deadline_seconds: default_progress_deadline(),
            auto_rollback: true,
        }
    }
}

/// The web application server tier: the site's own image.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WasSpec {
    /// The application image, with a tag or digest.
    #[schemars(length(max = 512), pattern(patterns::IMAGE))]
    #[x_kube(validation = Rule::new("!self.endsWith(':latest')").message("image tags must be pinned: replace :latest with a version tag or a digest"))]
    pub image: String,
    /// Port the application listens on.
    #[serde(default = "default_was_port")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: i32,
    /// Protocol between proxy and WAS: `http`, or `fastcgi` for php-fpm. With
    /// `fastcgi` the proxy serves the application's static files, runs the `.php`
    /// scripts the image ships and sends every other path to `/index.php`.
    #[serde(default)]
    pub protocol: WasProtocol,
    /// Document root of the PHP application inside the WAS image, holding its front
    /// controller `index.php` (`fastcgi`): php-fpm's `SCRIPT_FILENAME` and
    /// `DOCUMENT_ROOT` lie under it, and the proxy pods copy its public files from
    /// the image when they start.
    #[serde(default = "default_fastcgi_root")]
    #[schemars(length(max = 256), pattern(patterns::FS_PATH))]
    pub fastcgi_root: String,
    /// Number of WAS pods when autoscaling is off.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: i32,
    /// Scale the WAS with CPU load. Absent means a fixed `replicas` count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    /// HTTP path that answers 200 when the application can serve (readiness and
    /// liveness). With `fastcgi` the probes check the port instead.
    #[serde(default = "default_health_path")]
    #[schemars(length(max = 256), pattern(patterns::URL_PATH))]
    pub health_path: String,
    /// Extra environment variables for the application. The database, cache and image
    /// settings are injected by the operator (`WEBTOON_*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    #[x_kube(validation = Rule::new("self.all(e, !e.name.startsWith('WEBTOON_'))").message("spec.was.env names starting with WEBTOON_ are set by the operator: rename the variable"))]
    pub env: Vec<EnvVar>,
    /// CPU and memory for each WAS pod.
    #[serde(default = "default_was_resources")]
    pub resources: ResourceRequirements,
    /// Rollout and rollback of updates.
    #[serde(default)]
    pub rollout: RolloutSpec,
    /// A database migration run once for each new image before its pods start.
    /// Absent: no migration runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationSpec>,
    /// The image writes to its root filesystem, which then stays writable. Leave off
    /// for images that write only to `/tmp` and the image volume.
    #[serde(default)]
    pub writable_root_filesystem: bool,
}

fn default_was_port() -> i32 {
    8080
}

fn default_fastcgi_root() -> String {
    "/var/www/html".to_string()
}

fn default_health_path() -> String {
    "/healthz".to_string()
}

fn default_was_resources() -> ResourceRequirements {
    resources("250m", "256Mi", "2", "1Gi")
}

/// Whether a data service is run by the operator or provided from outside.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ServiceMode {
    /// The operator deploys and runs it in the stack's namespace.
    #[default]
    Embedded,
    /// It runs elsewhere; the stack connects with the given address and Secret.
    External,
}

/// A persistent volume claim request.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSpec {
    /// Requested capacity (a Kubernetes quantity such as `20Gi`).
    #[schemars(pattern(patterns::QUANTITY))]
    pub size: String,
    /// StorageClass to use. Absent means the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub storage_class_name: Option<String>,
}

/// A service outside the cluster or namespace and the Secret to reach it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalServiceSpec {
    /// Host name or IP address of the service.
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$")
    )]
    pub host: String,
    /// TCP port of the service.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Secret in the stack's namespace holding `password` (and, for a database,
    /// `username`).
    #[schemars(length(min = 1, max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub secret_name: String,
}

/// Scheduled logical backups of the database.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// Cron schedule, in the time zone below.
    #[serde(default = "default_backup_schedule")]
    #[schemars(length(max = 128), pattern(patterns::CRON))]
    pub schedule: String,
    /// IANA time zone of the schedule and of `verify.schedule`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(max = 64), pattern(r"^[A-Za-z][A-Za-z0-9_+/-]*$"))]
    pub time_zone: String,
    /// Number of newest backups to keep, on the volume and in the bucket; older ones
    /// are deleted.
    #[serde(default = "default_keep")]
    #[schemars(range(min = 1, max = 365))]
    pub keep: u32,
    /// Volume that holds the backup files. Absent: a 50Gi volume, unless `objectStore`
    /// is set, which then holds the backups alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<VolumeSpec>,
    /// S3-compatible bucket every backup is uploaded to, beside or instead of the
    /// volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store: Option<ObjectStoreSpec>,
    /// Scheduled restores of the newest backup into a throwaway database, compared
    /// table by table with the backup's description.
    #[serde(default)]
    pub verify: VerifySpec,
}

/// An S3-compatible bucket for backups.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!self.endpoint.startsWith('http://') || (has(self.insecure) && self.insecure)").message("objectStore.endpoint: replace http:// with https://, or set insecure: true to send keys and backups in clear text"))]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreSpec {
    /// Endpoint URL, `https://host[:port]`, such as `https://s3.ap-northeast-2.amazonaws.com`.
    /// `http://` only with `insecure: true`.
    #[schemars(length(max = 256), pattern(patterns::OBJECT_STORE_ENDPOINT))]
    pub endpoint: String,
    /// Bucket name; requests use path-style addressing.
    #[schemars(length(min = 3, max = 63), pattern(patterns::BUCKET))]
    pub bucket: String,
    /// Key prefix of this stack's backups; nothing outside it is read or deleted.
    /// Absent means `<namespace>/<stack name>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), pattern(patterns::OBJECT_PREFIX))]
    pub prefix: Option<String>,
    /// Region the requests are signed for.
    #[serde(default = "default_region")]
    #[schemars(length(max = 32), pattern(r"^[a-z0-9][a-z0-9-]*$"))]
    pub region: String,
    /// Secret in the stack's namespace with the keys `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY`.
    #[schemars(length(min = 1, max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub secret_name: String,
    /// ConfigMap in the stack's namespace whose `ca.crt` holds the certificates that
    /// sign the endpoint's, for a private CA. Absent means the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub ca_config_map: Option<String>,
    /// Allow an `http://` endpoint: keys and backups then cross the network in clear text.
    #[serde(default)]
    pub insecure: bool,
    /// Networks the backup pods may reach the endpoint in; the NetworkPolicies admit
    /// the endpoint's port there and nothing else.
    #[serde(rename = "egressCIDRs", default = "default_object_store_egress")]
    #[schemars(
        length(min = 1, max = 32),
        inner(length(max = 43), pattern(patterns::CIDR))
    )]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message("objectStore.egressCIDRs entries must be networks in CIDR notation, such as 10.0.0.0/8"))]
    pub egress_cidrs: Vec<String>,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

fn default_object_store_egress() -> Vec<String> {
    vec!["0.0.0.0/0".to_string()]
}

/// Scheduled verified restores of the newest backup.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifySpec {
    /// Cron schedule, in the backup's time zone.
    #[serde(default = "default_verify_schedule")]
    #[schemars(length(max = 128), pattern(patterns::CRON))]
    pub schedule: String,
    /// Stop scheduling verifications; the last result stays in the status.
    #[serde(default)]
    pub suspend: bool,
}

fn default_verify_schedule() -> String {
    "0 5 * * 0".to_string()
}

impl Default for VerifySpec {
    fn default() -> Self {
        Self {
            schedule: default_verify_schedule(),
            suspend: false,
        }
    }
}

impl BackupSpec {
    /// The volume that holds backups, if there is one.
    pub fn volume(&self) -> Option<VolumeSpec> {
        match (&self.storage, &self.object_store) {
            (Some(storage), _) => Some(storage.clone()),
            (None, None) => Some(default_backup_storage()),
            (None, Some(_)) => None,
        }
    }
}

fn default_backup_schedule() -> String {
    "0 3 * * *".to_string()
}

fn default_time_zone() -> String {
    "Etc/UTC".to_string()
}

fn default_keep() -> u32 {
    7
}

fn default_backup_storage() -> VolumeSpec {
    VolumeSpec {
        size: "50Gi".to_string(),
        storage_class_name: None,
    }
}

/// Start the database from a backup instead of empty.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!(has(self.claimName) && has(self.objectStore))").message("spec.database.restore: set claimName or objectStore, not both"))]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// `latest`, or the file name of one backup (`<database>-<UTC time>.sql.gz`).
    #[schemars(pattern(patterns::BACKUP_NAME))]
    pub from: String,
    /// Claim holding the backup files, for example the backup claim of another stack.
    /// Absent (and no `objectStore`) means this stack's backup volume, or its backup
    /// bucket when it has no volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub claim_name: Option<String>,
    /// Bucket to restore from, for example another stack's (set its `prefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_store: Option<ObjectStoreSpec>,
}

/// The MariaDB database tier.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("(has(self.mode) && self.mode == 'external') == has(self.external)").message("spec.database.external (host, port, secretName) is required when mode is external, and allowed only then"))]
#[x_kube(validation = Rule::new("!has(self.mode) || self.mode == 'embedded' || (!has(self.backup) && !has(self.restore))").message("spec.database.backup and spec.database.restore apply to the embedded database only: remove them, or back up the external database where it runs"))]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// `embedded` runs MariaDB in the stack; `external` connects to `external`.
    #[serde(default)]
    pub mode: ServiceMode,
    /// MariaDB image.
    #[serde(default = "default_database_image")]
    #[schemars(length(max = 512), pattern(patterns::IMAGE))]
    #[x_kube(validation = Rule::new("!self.endsWith(':latest')").message("image tags must be pinned: replace :latest with a version tag or a digest"))]
    pub image: String,
    /// Name of the application database.
    #[serde(default = "default_sql_name")]
    #[schemars(pattern(patterns::SQL_IDENTIFIER))]
    pub name: String,
    /// Name of the application user; its privileges cover the application database only.
    #[serde(default = "default_sql_name")]
    #[schemars(pattern(patterns::SQL_IDENTIFIER))]
    pub user: String,
    /// Data volume of the embedded database.
    #[serde(default = "default_database_storage")]
    pub storage: VolumeSpec,
    /// Most simultaneous client connections.
    #[serde(default = "default_max_connections")]
    #[schemars(range(min = 10, max = 10000))]
    pub max_connections: u32,
    /// CPU and memory of the database pod; the InnoDB buffer pool is sized from the
    /// memory limit.
    #[serde(default = "default_database_resources")]
    pub resources: ResourceRequirements,
    /// Scheduled backups. Absent means no backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupSpec>,
    /// Load a backup into a new, empty database before the WAS serves traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,
    /// The external database, when `mode` is `external`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalServiceSpec>,
}

/// The default database image.
pub const DEFAULT_DATABASE_IMAGE: &str = "mariadb:11.4.4";

fn default_database_image() -> String {
    DEFAULT_DATABASE_IMAGE.to_string()
}

fn default_sql_name() -> String {
    "webtoon".to_string()
}

fn default_database_storage() -> VolumeSpec {
    VolumeSpec {
        size: "20Gi".to_string(),
        storage_class_name: None,
    }
}

fn default_max_connections() -> u32 {
    200
}

fn default_database_resources() -> ResourceRequirements {
    resources("250m", "512Mi", "2", "1Gi")
}

impl Default for DatabaseSpec {
    fn default() -> Self {
        Self {
            mode: ServiceMode::Embedded,
            image: default_database_image(),
            name: default_sql_name(),
            user: default_sql_name(),
            storage: default_database_storage(),
            max_connections: default_max_connections(),
            resources: default_database_resources(),
            backup: None,
            restore: None,
            external: None,
        }
    }
}

/// What Redis evicts when it reaches `maxMemory`.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EvictionPolicy {
    /// Evict the least recently used keys.
    #[default]
    AllkeysLru,
    /// Evict the least frequently used keys.
    AllkeysLfu,
    /// Evict random keys.
    AllkeysRandom,
    /// Evict the least recently used keys that have an expiry.
    VolatileLru,
    /// Evict the least frequently used keys that have an expiry.
    VolatileLfu,
    /// Evict the keys closest to expiry.
    VolatileTtl,
    /// Evict nothing; writes fail when memory is full.
    Noeviction,
}

/// The Redis cache tier.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("(has(self.mode) && self.mode == 'external') == has(self.external)").message("spec.cache.external (host, port, secretName) is required when mode is external, and allowed only then"))]
#[serde(rename_all = "camelCase")]
pub struct CacheSpec {
    /// `embedded` runs Redis in the stack; `external` connects to `external`.
    #[serde(default)]
    pub mode: ServiceMode,
    /// Redis image (Redis 6 or newer, for access control lists).
    #[serde(default = "default_cache_image")]
    #[schemars(length(max = 512), pattern(patterns::IMAGE))]
    #[x_kube(validation = Rule::new("!self.endsWith(':latest')").message("image tags must be pinned: replace :latest with a version tag or a digest"))]
    pub image: String,
    /// Memory Redis may use for data (a Kubernetes quantity such as `256Mi`).
    #[serde(default = "default_max_memory")]
    #[schemars(pattern(patterns::QUANTITY))]
    pub max_memory: String,
    /// What Redis evicts when `maxMemory` is reached.
    #[serde(default)]
    pub eviction_policy: EvictionPolicy,
    /// Keep an append-only file on a volume so the cache survives restarts. Absent
    /// means a pure in-memory cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<VolumeSpec>,
    /// CPU and memory of the Redis pod; the memory limit must leave room above `maxMemory`.
    #[serde(default = "default_cache_resources")]
    pub resources: ResourceRequirements,
    /// The external Redis, when `mode` is `external`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalServiceSpec>,
}

/// The default Redis image.
pub const DEFAULT_CACHE_IMAGE: &str = "redis:7.2.6-alpine";

fn default_cache_image() -> String {
    DEFAULT_CACHE_IMAGE.to_string()
}

fn default_max_memory() -> String {
    "256Mi".to_string()
}

fn default_cache_resources() -> ResourceRequirements {
    resources("100m", "384Mi", "1", "384Mi")
}

impl Default for CacheSpec {
    fn default() -> Self {
        Self {
            mode: ServiceMode::Embedded,
            image: default_cache_image(),
            max_memory: default_max_memory(),
            eviction_policy: EvictionPolicy::default(),
            persistence: None,
            resources: default_cache_resources(),
            external: None,
        }
    }
}

/// An NFS export.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NfsSpec {
    /// NFS server host name or IP address.
    #[schemars(
        length(min = 1, max = 253),
        pattern(r"^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$")
    )]
    pub server: String,
    /// Exported directory.
    #[schemars(length(max = 1024), pattern(patterns::FS_PATH))]
    pub path: String,
}

/// The shared ReadWriteMany volume for comic images.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("!(has(self.existingClaim) && has(self.nfs))").message("spec.storage takes either existingClaim or nfs, not both: remove one"))]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// Capacity of the image volume (a Kubernetes quantity such as `100Gi`).
    #[serde(default = "default_images_size")]
    #[schemars(pattern(patterns::QUANTITY))]
    pub size: String,
    /// StorageClass that provisions ReadWriteMany volumes. Absent means the default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub storage_class_name: Option<String>,
    /// Use this existing claim instead of creating one. It must be ReadWriteMany.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(patterns::DNS_SUBDOMAIN))]
    pub existing_claim: Option<String>,
    /// Use this NFS export, through a PersistentVolume the operator creates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nfs: Option<NfsSpec>,
    /// Where the images appear inside WAS containers (read-write) and proxy
    /// containers (read-only).
    #[serde(default = "default_mount_path")]
    #[schemars(length(max = 256), pattern(patterns::FS_PATH))]
    pub mount_path: String,
    /// URL path under which the proxy serves the images.
    #[serde(default = "default_url_path")]
    #[schemars(length(max = 256), pattern(patterns::URL_PATH))]
    #[x_kube(validation = Rule::new("self != '/'").message("spec.storage.urlPath must not be / because it would hide the whole site: use a prefix such as /images"))]
    pub url_path: String,
}

fn default_images_size() -> String {
    "100Gi".to_string()
}

fn default_mount_path() -> String {
    "/var/www/images".to_string()
}

fn default_url_path() -> String {
    "/images".to_string()
}

impl Default for StorageSpec {
    fn default() -> Self {
        Self {
            size: default_images_size(),
            storage_class_name: None,
            existing_claim: None,
            nfs: None,
            mount_path: default_mount_path(),
            url_path: default_url_path(),
        }
    }
}

/// Network isolation between tiers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkSpec {
    /// Create NetworkPolicies so that each tier is reachable only from the tier that
    /// needs it.
    #[serde(default = "default_true")]
    pub policies: bool,
    /// Client networks allowed to reach the proxy.
    #[serde(default = "default_ingress_cidrs", rename = "ingressFromCIDRs")]
    #[schemars(
        length(min = 1, max = 64),
        inner(length(max = 43), pattern(patterns::CIDR))
    )]
    #[x_kube(validation = Rule::new("self.all(c, isCIDR(c))").message("network.ingressFromCIDRs entries must be networks in CIDR notation, such as 0.0.0.0/0"))]
    pub ingress_from_cidrs: Vec<String>,
    /// Namespaces whose pods may reach the proxy, such as the namespace of an ingress
    /// controller in front of it (matched by their `kubernetes.io/metadata.name` label).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 32),
        inner(length(max = 63), pattern(patterns::DNS_LABEL))
    )]
    pub ingress_from_namespaces: Vec<String>,
    /// Destinations outside the stack that the WAS may connect to, such as a payment
    /// API. Nothing else is reachable from the WAS but its database, its cache and DNS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub was_egress: Vec<EgressSpec>,
}

/// A network and the TCP ports on it that the WAS may connect to.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EgressSpec {
    /// The destination network in CIDR notation, such as `203.0.113.0/24`.
    // maxLength 43 (the longest IPv6 address and /128) on every CIDR string keeps the
    // isCIDR rules within the API server's CEL cost budget: without it the CRD is refused.
    #[schemars(length(max = 43), pattern(patterns::CIDR))]
    #[x_kube(validation = Rule::new("isCIDR(self)").message("network.wasEgress[].cidr must be a network in CIDR notation, such as 203.0.113.0/24"))]
    pub cidr: String,
    /// TCP ports on that network.
    #[schemars(length(min = 1, max = 16), inner(range(min = 1, max = 65535)))]
    pub ports: Vec<i32>,
}

fn default_ingress_cidrs() -> Vec<String> {
    vec!["0.0.0.0/0".to_string()]
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self {
            policies: true,
            ingress_from_cidrs: default_ingress_cidrs(),
            ingress_from_namespaces: Vec::new(),
            was_egress: Vec::new(),
        }
    }
}

/// A raised replica floor for one tier during a schedule.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaFloor {
    /// Fewest replicas during the schedule.
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,
}

/// A known traffic event, with raised replica floors from `start` to `end`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("timestamp(self.end) > timestamp(self.start)").message("scaling.schedules[].end must be after start: swap or correct the times"))]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// Name of the event, unique in the stack.
    #[schemars(length(min = 1, max = 63), pattern(patterns::DNS_LABEL))]
    pub name: String,
    /// When the raised floors begin (RFC 3339, such as `2026-12-01T09:00:00+09:00`).
    #[schemars(length(max = 64), pattern(patterns::RFC3339))]
    pub start: String,
    /// When the raised floors end (RFC 3339).
    #[schemars(length(max = 64), pattern(patterns::RFC3339))]
    pub end: String,
    /// WAS replicas during the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<ReplicaFloor>,
    /// Proxy replicas during the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ReplicaFloor>,
}

/// Scaling ahead of known events.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ScalingSpec {
    /// Events during which replica floors are raised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub schedules: Vec<ScheduleSpec>,
}

/// What deleting the stack does to its data.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    /// Keep volume claims and the credentials Secret.
    #[default]
    Retain,
    /// Delete volume claims and the credentials Secret with the stack.
    Delete,
}
