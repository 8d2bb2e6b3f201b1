//! The nginx configuration of the proxy tier.
//!
//! Every user string written here has passed validation (host names, CIDRs, paths
//! and sizes match strict patterns), so none can end a directive or open a block.
//! The same render serves the cluster and the tests: [`NginxLayout`] holds what
//! differs between them (listen addresses, file paths, how WAS addresses are found).
//!
//! The configuration is built as a small tree of [`Node`]s, one function per block,
//! and printed once.
//!
//! With `protocol: fastcgi` the WAS is php-fpm, in other pods than nginx: nginx holds
//! a copy of the application's document root ([`super::app_files`]) in which PHP
//! sources are empty placeholders. It serves the application's static files from
//! it, runs only the `.php` scripts that copy names (those shipped in the WAS
//! image: a file uploaded later is never run), and sends every other path to the
//! front controller `/index.php`, as PHP frameworks expect.

use std::fmt::Write;

use crate::api::quantity::quantity_bytes;
use crate::api::{ValidatedStack, WasProtocol};

/// How nginx finds the WAS instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// One `server ... resolve` entry for the headless Service: nginx (1.27.3 or
    /// newer) re-resolves it and balances over every ready pod.
    Resolve {
        /// Fully qualified name of the headless WAS Service.
        host: String,
        /// WAS port.
        port: i32,
        /// DNS server that answers for cluster names.
        resolver: String,
    },
    /// Fixed addresses (`host:port`), one `server` each: for nginx older than 1.27.3
    /// and for tests that run the WAS as local processes.
    Static(Vec<String>),
}

/// Where things are for one nginx instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxLayout {
    /// Listen address of plain HTTP, such as `8080` or `127.0.0.1:18080`.
    pub http_listen: String,
    /// Listen address of HTTPS.
    pub https_listen: String,
    /// Listen address of the health and status server.
    pub health_listen: String,
    /// The WAS instances.
    pub upstream: Upstream,
    /// Certificate file (PEM).
    pub tls_certificate: String,
    /// Private key file (PEM).
    pub tls_certificate_key: String,
    /// Directory holding the shared images (mounted read-only).
    pub images_root: String,
    /// Directory holding nginx's copy of the application's document root (PHP).
    pub app_root: String,
    /// Directory of the response cache.
    pub cache_dir: String,
    /// Directory of nginx's temporary files.
    pub temp_dir: String,
    /// Path of the pid file.
    pub pid_file: String,
    /// Path of nginx's `mime.types`.
    pub mime_types: String,
    /// Where errors are logged.
    pub error_log: String,
    /// Where requests are logged.
    pub access_log: String,
    /// The syslog address (`host:port`, UDP) of the access log exporter, which counts
    /// every request, image requests included; `None` when monitoring is off.
    pub metrics_log: Option<String>,
    /// Use the `http2 on;` directive (nginx 1.25.1 or newer) instead of the older
    /// `listen ... http2` parameter.
    pub http2_directive: bool,
}

/// Port of plain HTTP in the proxy container.
pub const HTTP_PORT: i32 = 8080;
/// Port of HTTPS in the proxy container.
pub const HTTPS_PORT: i32 = 8443;
/// Port of the health and status server in the proxy container.
pub const HEALTH_PORT: i32 = 8081;
/// Path of the health endpoint the kubelet probes, open to every address.
pub const HEALTH_PATH: &str = "/healthz";
/// Path of nginx's connection counters, for a metrics exporter in the pod only.
pub const STATUS_PATH: &str = "/stub_status";
/// Directory of the TLS Secret in the proxy container.
pub const TLS_DIR: &str = "/etc/nginx/tls";
/// Directory of the response cache in the proxy container.
pub const CACHE_DIR: &str = "/var/cache/nginx/webtoon";
/// Directory of the configuration in the proxy container.
pub const CONFIG_DIR: &str = "/etc/nginx/webtoon";
/// Mount point of the shared images in the proxy container.
pub const IMAGES_DIR: &str = "/srv/images";
/// Mount point of the copy of the application's document root (PHP).
pub const APP_DIR: &str = "/srv/app";
/// The script that answers every path that is not a file (PHP).
pub const FRONT_CONTROLLER: &str = "/index.php";

impl NginxLayout {
    /// The layout inside the proxy pods of a cluster.
    pub fn in_cluster(stack: &ValidatedStack) -> Self {
        Self {
            http_listen: HTTP_PORT.to_string(),
            https_listen: HTTPS_PORT.to_string(),
            health_listen: HEALTH_PORT.to_string(),
            upstream: Upstream::Resolve {
                host: format!(
                    "{}.{}.svc.cluster.local",
                    crate::render::was::headless_service_name(stack),
                    stack.namespace
                ),
                port: stack.spec.was.port,
                resolver: stack.spec.proxy.resolver.clone(),
            },
            tls_certificate: format!("{TLS_DIR}/tls.crt"),
            tls_certificate_key: format!("{TLS_DIR}/tls.key"),
            images_root: IMAGES_DIR.to_string(),
            app_root: APP_DIR.to_string(),
            cache_dir: CACHE_DIR.to_string(),
            temp_dir: "/tmp".to_string(),
            pid_file: "/tmp/nginx.pid".to_string(),
            mime_types: "/etc/nginx/mime.types".to_string(),
            error_log: "/dev/stderr warn".to_string(),
            access_log: "/dev/stdout".to_string(),
            metrics_log: stack.spec.monitoring.as_ref().map(|_| {
                format!(
                    "127.0.0.1:{}",
                    crate::render::monitoring::ACCESS_LOG_SYSLOG_PORT
                )
            }),
            http2_directive: true,
        }
    }
}

/// Name of the access log format the access log exporter parses.
const METRICS_LOG_FORMAT: &str = "webtoon_metrics";

/// The access log directive that sends each request to the access log exporter over
/// syslog. UDP to a local port never blocks nginx, even while the exporter restarts.
fn metrics_access_log(address: &str) -> String {
    format!(
        "access_log syslog:server={address},tag={},nohostname {METRICS_LOG_FORMAT}",
        crate::render::monitoring::access_log_exporter::SYSLOG_TAG
    )
}

/// Seconds nginx keeps the WAS addresses it resolved before asking DNS again.
pub const RESOLVE_VALID_SECONDS: i64 = 5;

/// Connections one worker holds, clients and upstreams together.
const WORKER_CONNECTIONS: u32 = 4096;
/// File descriptors of hot files one worker keeps open.
const OPEN_FILE_CACHE_MAX: u32 = 10_000;
/// File descriptors one worker may open: a proxied request holds two (client and
/// WAS), the open file cache its own, and logs, cache and temporary files a few more.
/// Without it a sale spike runs out of descriptors at the container's soft limit.
const WORKER_RLIMIT_NOFILE: u32 = 2 * WORKER_CONNECTIONS + OPEN_FILE_CACHE_MAX + 1024;

/// Mozilla's "intermediate" TLS 1.2 cipher list; TLS 1.3 suites are fixed by OpenSSL.
const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

/// File names that must never be served: backups, dumps and editor leftovers.
const FORBIDDEN_FILES: &str = r"\.(bak|sql|old|orig|save|swp|tmp|dist|log|gz\.part)$|~$";

/// PHP sources other than `.php` scripts, in any letter case: never run, never
/// served (`.phtml`, `.php5`, `.PHP`, `.phar`, `.inc`, ...).
const PHP_SOURCES: &str = r"\.(php\d*|pht|phtml|phps|phar|inc)(/|$)";

/// Paths that run a PHP script, with or without `PATH_INFO` after it.
const PHP_SCRIPT: &str = r"[^/]\.php(/|$)";

/// One piece of nginx configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    /// A simple directive, printed with its `;`.
    Directive(String),
    /// A `#` comment line.
    Comment(String),
    /// `head { body }`.
    Block(String, Vec<Node>),
}

fn d(text: impl Into<String>) -> Node {
    Node::Directive(text.into())
}

fn block(head: impl Into<String>, body: Vec<Node>) -> Node {
    Node::Block(head.into(), body)
}

fn print(nodes: &[Node], depth: usize, out: &mut String) {
    let pad = "    ".repeat(depth);
    for node in nodes {
        match node {
            Node::Directive(text) => {
                let _ = writeln!(out, "{pad}{text};");
            }
            Node::Comment(text) => {
                let _ = writeln!(out, "{pad}# {text}");
            }
            Node::Block(head, body) => {
                let _ = writeln!(out, "{pad}{head} {{");
                print(body, depth + 1, out);
                let _ = writeln!(out, "{pad}}}");
            }
        }
    }
}

/// Seconds in an nginx time such as `7d`, for `Cache-Control: max-age`.
fn nginx_time_seconds(time: &str) -> u64 {
    let (digits, unit) = time.split_at(time.len().saturating_sub(1));
    let value: u64 = digits.parse().unwrap_or(0);
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        "M" => 2_592_000,
        "y" => 31_536_000,
        _ => 0,
    };
    value.saturating_mul(factor)
}

/// A URL path as a literal inside an nginx regular expression.
fn regex_literal(path: &str) -> String {
    // URL paths are validated to letters, digits and `/._~-`: only `.` is special.
    path.replace('.', r"\.")
}

/// Whether the WAS is php-fpm.
fn is_php(stack: &ValidatedStack) -> bool {
    stack.spec.was.protocol == WasProtocol::Fastcgi
}

/// The prefix of the directives of the module that talks to the WAS.
fn module(stack: &ValidatedStack) -> &'static str {
    if is_php(stack) { "fastcgi" } else { "proxy" }
}

/// Renders the whole `nginx.conf`.
pub fn nginx_conf(stack: &ValidatedStack, layout: &NginxLayout) -> String {
    let mut http = http_settings(stack, layout);
    http.push(upstream(stack, layout));
    http.push(catch_all_server(stack, layout));
    if stack.spec.tls.is_some() {
        http.push(redirect_server(stack, layout));
    }
    http.push(site_server(stack, layout));
    http.push(health_server(layout));

    let nodes = vec![
        Node::Comment(format!(
            "Rendered by webtoon-operator for stack {}/{}.",
            stack.namespace, stack.name
        )),
        d("worker_processes auto"),
        d(format!("worker_rlimit_nofile {WORKER_RLIMIT_NOFILE}")),
        d(format!("pid {}", layout.pid_file)),
        d(format!("error_log {}", layout.error_log)),
        block(
            "events",
            vec![d(format!("worker_connections {WORKER_CONNECTIONS}"))],
        ),
        block("http", http),
    ];
    let mut c = String::new();
    print(&nodes, 0, &mut c);
    c
}

/// The `http` block's own settings, before the upstream and the servers.
fn http_settings(stack: &ValidatedStack, layout: &NginxLayout) -> Vec<Node> {
    let proxy = &stack.spec.proxy;
    let m = module(stack);
    let temp = &layout.temp_dir;
    let mut h = vec![
        d(format!("include {}", layout.mime_types)),
        d("default_type application/octet-stream"),
        d("server_tokens off"),
        d("autoindex off"),
        d("charset utf-8"),
        d("sendfile on"),
        d("tcp_nopush on"),
        d("tcp_nodelay on"),
        d("keepalive_timeout 65s"),
        d(format!(
            "client_max_body_size {}",
            proxy.client_max_body_size
        )),
        d("client_body_timeout 30s"),
        d("client_header_timeout 30s"),
        d("send_timeout 30s"),
    ];
    for kind in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        h.push(d(format!("{kind}_temp_path {temp}/{kind}")));
    }
    h.push(d(
        "log_format webtoon '$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" rt=$request_time ua=\"$upstream_addr\" us=\"$upstream_status\" cs=$upstream_cache_status'",
    ));
    h.push(d(format!("access_log {} webtoon", layout.access_log)));
    if let Some(address) = &layout.metrics_log {
        h.push(d(format!(
            "log_format {METRICS_LOG_FORMAT} '{}'",
            crate::render::monitoring::access_log_exporter::LOG_FORMAT
        )));
        h.push(d(metrics_access_log(address)));
    }
    // Keeps descriptors of hot images open: most page views hit the same episodes.
    h.extend([
        d(format!(
            "open_file_cache max={OPEN_FILE_CACHE_MAX} inactive=60s"
        )),
        d("open_file_cache_valid 30s"),
        d("open_file_cache_min_uses 1"),
        d("open_file_cache_errors on"),
        d("gzip on"),
        d("gzip_vary on"),
        d("gzip_min_length 1024"),
        d("gzip_types text/css text/plain application/javascript application/json image/svg+xml"),
    ]);
    if !proxy.trusted_proxy_cidrs.is_empty() {
        for cidr in &proxy.trusted_proxy_cidrs {
            h.push(d(format!("set_real_ip_from {cidr}")));
        }
        h.push(d("real_ip_header X-Forwarded-For"));
        h.push(d("real_ip_recursive on"));
    }
    h.push(block(
        "map $http_upgrade $connection_upgrade",
        vec![d("default upgrade"), d("'' ''")],
    ));
    if proxy.rate_limit.enabled {
        h.push(d(format!(
            "limit_req_zone $binary_remote_addr zone=webtoon_req:10m rate={}r/s",
            proxy.rate_limit.requests_per_second
        )));
        h.push(d("limit_req_status 429"));
    }
    if proxy.cache.enabled {
        let max_size = quantity_bytes(&proxy.cache.size).unwrap_or(512 << 20);
        h.push(d(format!(
            "{m}_cache_path {} levels=1:2 keys_zone=webtoon_cache:10m max_size={max_size} inactive=7d use_temp_path=off",
            layout.cache_dir
        )));
    }
    if let Upstream::Resolve { resolver, .. } = &layout.upstream {
        h.push(d(format!(
            "resolver {resolver} valid={RESOLVE_VALID_SECONDS}s ipv6=off"
        )));
        h.push(d("resolver_timeout 2s"));
    }
    if stack.spec.tls.is_some() {
        // At http level, not in the site's server: the protocol version is settled
        // with the settings of the listener's default server (the catch-all below),
        // so versions set only in the site would leave the catch-all's built-in
        // defaults in force (no TLS 1.3 before nginx 1.23.4).
        h.extend([
            d("ssl_protocols TLSv1.2 TLSv1.3"),
            d(format!("ssl_ciphers {TLS12_CIPHERS}")),
            d("ssl_prefer_server_ciphers off"),
            d("ssl_session_cache shared:webtoon_tls:10m"),
            d("ssl_session_timeout 1d"),
            d("ssl_session_tickets off"),
        ]);
    }
    h
}

/// The WAS instances, with a shared zone, and kept-alive connections to HTTP ones.
fn upstream(stack: &ValidatedStack, layout: &NginxLayout) -> Node {
    let mut u = vec![d("zone webtoon_was 256k")];
    match &layout.upstream {
        Upstream::Resolve { host, port, .. } => {
            u.push(d(format!(
                "server {host}:{port} resolve max_fails=1 fail_timeout=5s"
            )));
        }
        Upstream::Static(addresses) => {
            for address in addresses {
                u.push(d(format!("server {address} max_fails=1 fail_timeout=5s")));
            }
        }
    }
    // A php-fpm worker serves one connection at a time: a connection nginx kept
    // idle would hold a worker, and with more kept than the pool's pm.max_children
    // new requests would wait for one to close. nginx connects anew to php-fpm.
    if !is_php(stack) {
        u.push(d("keepalive 32"));
        u.push(d("keepalive_timeout 60s"));
    }
    block("upstream webtoon_was", u)
}

/// Requests for hosts the stack does not serve get no site at all.
fn catch_all_server(stack: &ValidatedStack, layout: &NginxLayout) -> Node {
    let mut s = vec![d(format!("listen {} default_server", layout.http_listen))];
    if stack.spec.tls.is_some() {
        s.push(d(format!(
            "listen {} ssl default_server",
            layout.https_listen
        )));
        s.push(d("ssl_reject_handshake on"));
    }
    s.push(d("server_name _"));
    s.push(d("return 444"));
    block("server", s)
}

/// Plain HTTP for the stack's hosts, redirected to HTTPS.
fn redirect_server(stack: &ValidatedStack, layout: &NginxLayout) -> Node {
    block(
        "server",
        vec![
            d(format!("listen {}", layout.http_listen)),
            d(format!("server_name {}", stack.spec.hosts.join(" "))),
            block(
                "location /",
                vec![d("return 308 https://$host$request_uri")],
            ),
        ],
    )
}

/// The probes' health endpoint and, for the pod itself only, the status counters.
fn health_server(layout: &NginxLayout) -> Node {
    block(
        "server",
        vec![
            d(format!("listen {}", layout.health_listen)),
            d("access_log off"),
            // The kubelet probes from the node's address, which nginx cannot know.
            block(
                format!("location = {HEALTH_PATH}"),
                vec![d(r#"return 200 "ok\n""#)],
            ),
            // Connection counts help an attacker time a flood: only an exporter in
            // the same pod reads them.
            block(
                format!("location = {STATUS_PATH}"),
                vec![
                    d("allow 127.0.0.1"),
                    d("allow ::1"),
                    d("deny all"),
                    d("stub_status"),
                ],
            ),
            block("location /", vec![d("return 404")]),
        ],
    )
}

/// Security headers sent with every answer of the site.
fn security_headers(stack: &ValidatedStack) -> Vec<Node> {
    let mut h = Vec::new();
    if let Some(tls) = &stack.spec.tls
        && tls.hsts_max_age_seconds > 0
    {
        h.push(d(format!(
            "add_header Strict-Transport-Security \"max-age={}; includeSubDomains\" always",
            tls.hsts_max_age_seconds
        )));
    }
    h.push(d("add_header X-Content-Type-Options nosniff always"));
    h.push(d("add_header X-Frame-Options SAMEORIGIN always"));
    h.push(d(
        "add_header Referrer-Policy strict-origin-when-cross-origin always",
    ));
    h
}

/// Hidden files and backups, refused everywhere, including under the images.
fn denials() -> Vec<Node> {
    vec![
        block(r"location ~ /\.", vec![d("deny all")]),
        block(
            format!("location ~* \"{FORBIDDEN_FILES}\""),
            vec![d("deny all")],
        ),
    ]
}

/// The per-address rate limit, when on.
fn rate_limit(stack: &ValidatedStack) -> Vec<Node> {
    let limit = &stack.spec.proxy.rate_limit;
    if limit.enabled {
        vec![d(format!(
            "limit_req zone=webtoon_req burst={} nodelay",
            limit.burst
        ))]
    } else {
        Vec::new()
    }
}

/// The admin allow-list: the listed networks, then nobody.
fn admin_acl(stack: &ValidatedStack) -> Vec<Node> {
    let admin = &stack.spec.proxy.admin;
    let mut acl: Vec<Node> = admin
        .allow_cidrs
        .iter()
        .map(|cidr| d(format!("allow {cidr}")))
        .collect();
    acl.push(d("deny all"));
    acl
}

/// The admin paths without their trailing slash.
fn admin_paths(stack: &ValidatedStack) -> Vec<&str> {
    stack
        .spec
        .proxy
        .admin
        .paths
        .iter()
        .map(|p| p.trim_end_matches('/'))
        .collect()
}

/// The server of the stack's hosts.
fn site_server(stack: &ValidatedStack, layout: &NginxLayout) -> Node {
    let mut s = Vec::new();
    match &stack.spec.tls {
        Some(_) => {
            if layout.http2_directive {
                s.push(d(format!("listen {} ssl", layout.https_listen)));
                s.push(d("http2 on"));
            } else {
                s.push(d(format!("listen {} ssl http2", layout.https_listen)));
            }
            s.push(d(format!("ssl_certificate {}", layout.tls_certificate)));
            s.push(d(format!(
                "ssl_certificate_key {}",
                layout.tls_certificate_key
            )));
        }
        None => s.push(d(format!("listen {}", layout.http_listen))),
    }
    s.push(d(format!("server_name {}", stack.spec.hosts.join(" "))));
    s.extend(security_headers(stack));
    if is_php(stack) {
        s.push(d(format!("root {}", layout.app_root)));
        s.push(d("index index.php index.html"));
        // nginx's own redirect of a directory to its slash keeps the host and port
        // the client used, not the container's port.
        s.push(d("absolute_redirect off"));
    }
    s.extend(denials());
    s.push(images_location(stack, layout));
    if is_php(stack) {
        s.extend(php_locations(stack));
    } else {
        s.extend(http_locations(stack));
    }
    block("server", s)
}

/// Images come straight from the shared volume; the WAS never sees these requests,
/// and they are not rate limited because one page view loads many of them.
fn images_location(stack: &ValidatedStack, layout: &NginxLayout) -> Node {
    let url = stack.spec.storage.url_path.trim_end_matches('/');
    let max_age = nginx_time_seconds(&stack.spec.proxy.cache.static_max_age);
    let mut l = denials();
    l.push(d(format!(
        "alias {}/",
        layout.images_root.trim_end_matches('/')
    )));
    l.push(d("autoindex off"));
    // Image requests stay out of the request log, but not out of the metrics.
    l.push(d(match &layout.metrics_log {
        Some(address) => metrics_access_log(address),
        None => "access_log off".to_string(),
    }));
    l.extend(security_headers(stack));
    // One Cache-Control only: `expires` would add a second `max-age`, and caches may
    // treat a response with conflicting directives as stale (RFC 9111, 4.2.1).
    l.push(d(format!(
        "add_header Cache-Control \"public, max-age={max_age}, immutable\" always"
    )));
    l.push(d("try_files $uri =404"));
    block(format!("location ^~ {url}/"), l)
}

/// The admin locations and the catch-all, each passing to an HTTP WAS.
fn http_locations(stack: &ValidatedStack) -> Vec<Node> {
    let to_was = http_pass(stack);
    let mut locations = Vec::new();
    for path in admin_paths(stack) {
        // Both the exact path and everything under it, but not `/administrator`.
        let mut exact = admin_acl(stack);
        exact.extend(rate_limit(stack));
        exact.extend(to_was.clone());
        locations.push(block(format!("location = {path}"), exact));
        // `^~` skips the server's regex locations, so the denials repeat here.
        let mut under = admin_acl(stack);
        under.extend(denials());
        under.extend(rate_limit(stack));
        under.extend(to_was.clone());
        locations.push(block(format!("location ^~ {path}/"), under));
    }
    let mut all = rate_limit(stack);
    all.extend(to_was);
    locations.push(block("location /", all));
    locations
}

/// The directives that pass a request to an HTTP WAS, with failover and caching.
fn http_pass(stack: &ValidatedStack) -> Vec<Node> {
    let mut b = vec![
        d("proxy_pass http://webtoon_was"),
        d("proxy_http_version 1.1"),
        d("proxy_set_header Host $host"),
        d("proxy_set_header X-Real-IP $remote_addr"),
        d("proxy_set_header X-Forwarded-For $remote_addr"),
        d("proxy_set_header X-Forwarded-Proto $scheme"),
        d("proxy_set_header X-Forwarded-Host $host"),
        d("proxy_set_header Upgrade $http_upgrade"),
        d("proxy_set_header Connection $connection_upgrade"),
        d("proxy_read_timeout 60s"),
        d("proxy_send_timeout 60s"),
        d("proxy_connect_timeout 2s"),
        // A failed or refused attempt moves on to the next WAS, bounded in tries
        // and time.
        d("proxy_next_upstream error timeout http_502 http_503 http_504"),
        d("proxy_next_upstream_tries 3"),
        d("proxy_next_upstream_timeout 10s"),
    ];
    b.extend(response_cache(
        stack,
        "$http_authorization $cookie_session",
        "error timeout updating http_500 http_502 http_503 http_504",
    ));
    b
}

/// The shared response cache, for responses that say they may be cached.
fn response_cache(stack: &ValidatedStack, personal: &str, use_stale: &str) -> Vec<Node> {
    if !stack.spec.proxy.cache.enabled {
        return Vec::new();
    }
    let m = module(stack);
    let mut b = vec![
        d(format!("{m}_cache webtoon_cache")),
        d(format!("{m}_cache_key $scheme$host$request_uri")),
        // Personal responses are never stored or served from the shared cache.
        d(format!("{m}_cache_bypass {personal}")),
        d(format!("{m}_no_cache {personal}")),
        d(format!("{m}_cache_use_stale {use_stale}")),
        // No cache lock: nginx cannot know before the answer whether a page is
        // cacheable, so concurrent requests for a private page would queue behind
        // each other in 500 ms steps. Refreshes of popular pages are already single
        // requests thanks to `updating` and the background update.
        d(format!("{m}_cache_background_update on")),
    ];
    b.extend(security_headers(stack));
    b.push(d("add_header X-Cache-Status $upstream_cache_status always"));
    b
}

/// The locations of a PHP site: the admin paths, `.php` scripts, other PHP sources,
/// and static files with the front controller for every other path.
fn php_locations(stack: &ValidatedStack) -> Vec<Node> {
    let url = stack.spec.storage.url_path.trim_end_matches('/');
    let mut locations = vec![
        // The image path in another letter case, or without its slash, is no page
        // either: nothing under it may reach the front controller.
        block(
            format!("location ~* \"^{}(/|$)\"", regex_literal(url)),
            vec![d("return 404")],
        ),
    ];
    let paths = admin_paths(stack);
    for path in &paths {
        let mut exact = admin_acl(stack);
        exact.extend(rate_limit(stack));
        exact.push(php_try_files());
        locations.push(block(format!("location = {path}"), exact));
        let mut under = admin_acl(stack);
        under.extend(denials());
        under.push(block(
            format!("location ~ \"{PHP_SCRIPT}\""),
            php_pass(stack),
        ));
        under.push(block(
            format!("location ~* \"{PHP_SOURCES}\""),
            vec![d("deny all")],
        ));
        under.extend(rate_limit(stack));
        under.push(php_try_files());
        locations.push(block(format!("location ^~ {path}/"), under));
    }
    if !paths.is_empty() {
        // A front controller also answers `/index.php/admin/...` (its PATH_INFO):
        // the allow-list holds there too.
        let alternatives: Vec<String> = paths.iter().map(|p| regex_literal(p)).collect();
        let mut via_script = admin_acl(stack);
        via_script.extend(php_pass(stack));
        locations.push(block(
            format!("location ~ \"\\.php({})(/|$)\"", alternatives.join("|")),
            via_script,
        ));
    }
    locations.push(block(
        format!("location ~ \"{PHP_SCRIPT}\""),
        php_pass(stack),
    ));
    // After the scripts' location, which takes `.php` itself.
    locations.push(block(
        format!("location ~* \"{PHP_SOURCES}\""),
        vec![d("deny all")],
    ));
    // Static files are not rate limited, like images; the front controller is.
    locations.push(block("location /", vec![php_try_files()]));
    locations
}

/// A static file of the application, else its directory's index, else the front
/// controller with the request's query.
fn php_try_files() -> Node {
    d(format!(
        "try_files $uri $uri/ {FRONT_CONTROLLER}$is_args$args"
    ))
}

/// Runs the `.php` script the path names, when the WAS image ships it, on php-fpm.
fn php_pass(stack: &ValidatedStack) -> Vec<Node> {
    let root = stack.spec.was.fastcgi_root.trim_end_matches('/');
    let document_root = if root.is_empty() { "/" } else { root };
    let public_port = if stack.spec.tls.is_some() { 443 } else { 80 };
    let mut b = vec![
        d(r"fastcgi_split_path_info ^(.+?\.php)(/.*)$"),
        // try_files below resets $fastcgi_path_info (nginx ticket 321).
        d("set $path_info $fastcgi_path_info"),
        // Only scripts in nginx's copy of the image's document root run: a `.php`
        // written later (an upload) or a path such as /x.jpg/y.php never reaches
        // php-fpm, whose default cgi.fix_pathinfo would look for a shorter file.
        d("try_files $fastcgi_script_name =404"),
    ];
    b.extend(rate_limit(stack));
    // Every parameter is written here rather than from the image's fastcgi_params:
    // the document root is php-fpm's, not nginx's copy.
    for (name, value) in [
        ("QUERY_STRING", "$query_string".to_string()),
        ("REQUEST_METHOD", "$request_method".to_string()),
        ("CONTENT_TYPE", "$content_type".to_string()),
        ("CONTENT_LENGTH", "$content_length".to_string()),
        ("SCRIPT_NAME", "$fastcgi_script_name".to_string()),
        ("SCRIPT_FILENAME", format!("{root}$fastcgi_script_name")),
        ("PATH_INFO", "$path_info".to_string()),
        ("REQUEST_URI", "$request_uri".to_string()),
        ("DOCUMENT_URI", "$document_uri".to_string()),
        ("DOCUMENT_ROOT", document_root.to_string()),
        ("SERVER_PROTOCOL", "$server_protocol".to_string()),
        ("REQUEST_SCHEME", "$scheme".to_string()),
        ("HTTPS", "$https if_not_empty".to_string()),
        ("GATEWAY_INTERFACE", "CGI/1.1".to_string()),
        ("SERVER_SOFTWARE", "nginx".to_string()),
        ("REMOTE_ADDR", "$remote_addr".to_string()),
        ("REMOTE_PORT", "$remote_port".to_string()),
        ("SERVER_ADDR", "$server_addr".to_string()),
        // The Service's port, which clients see, not the container's.
        ("SERVER_PORT", public_port.to_string()),
        ("SERVER_NAME", "$host".to_string()),
        ("REDIRECT_STATUS", "200".to_string()),
        // httpoxy: a client's `Proxy:` header must not become the app's proxy.
        ("HTTP_PROXY", "\"\"".to_string()),
    ] {
        b.push(d(format!("fastcgi_param {name} {value}")));
    }
    b.extend([
        d("fastcgi_hide_header X-Powered-By"),
        d("fastcgi_pass webtoon_was"),
        d("fastcgi_connect_timeout 2s"),
        // A refused connection or a pool that died mid-request moves on to the next
        // php-fpm (a sent POST is never replayed), bounded in tries and time.
        d("fastcgi_next_upstream error timeout invalid_header"),
        d("fastcgi_next_upstream_tries 3"),
        d("fastcgi_next_upstream_timeout 10s"),
    ]);
    b.extend(response_cache(
        stack,
        "$http_authorization $cookie_session $cookie_phpsessid",
        "error timeout updating http_500 http_503",
    ));
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{parse_stacks, validated};

    fn stack(was: &str, proxy: &str) -> ValidatedStack {
        let yaml = format!(
            "apiVersion: webtoon.io/v1alpha1\nkind: WebtoonStack\nmetadata: {{name: t, namespace: ns}}\nspec:\n  hosts: [t.example]\n  proxy: {{{proxy}}}\n  was: {{image: 'r.example/w:1', {was}}}\n"
        );
        let stacks = parse_stacks("inline", &yaml).expect("parses");
        validated(&stacks[0]).expect("valid")
    }

    fn php(proxy: &str) -> String {
        let s = stack("protocol: fastcgi, port: 9000", proxy);
        nginx_conf(&s, &NginxLayout::in_cluster(&s))
    }

    #[test]
    fn nginx_times_in_seconds() {
        assert_eq!(nginx_time_seconds("7d"), 604_800);
        assert_eq!(nginx_time_seconds("30s"), 30);
        assert_eq!(nginx_time_seconds("1y"), 31_536_000);
    }

    #[test]
    fn blocks_print_nested_with_four_spaces() {
        let mut out = String::new();
        print(
            &[
                Node::Comment("c".to_string()),
                block("a", vec![d("x 1"), block("b", vec![d("y")])]),
            ],
            0,
            &mut out,
        );
        assert_eq!(out, "# c\na {\n    x 1;\n    b {\n        y;\n    }\n}\n");
    }

    #[test]
    fn descriptors_cover_two_per_connection_and_the_status_page_is_local() {
        let s = stack("port: 8080", "");
        let conf = nginx_conf(&s, &NginxLayout::in_cluster(&s));
        assert!(conf.contains("worker_rlimit_nofile 19216;\n"));
        assert!(conf.contains(
            "location = /stub_status {\n            allow 127.0.0.1;\n            allow ::1;\n            deny all;\n            stub_status;"
        ));
        assert!(
            conf.contains("location = /healthz {\n            return 200 \"ok\\n\";\n        }")
        );
    }

    #[test]
    fn php_scripts_come_before_other_php_sources_and_the_front_controller_last() {
        let conf = php("admin: {paths: [/admin, /my.panel/]}");
        // Server-level locations only: nested ones are indented further.
        let at = |needle: &str| {
            conf.find(&format!("\n{needle}"))
                .unwrap_or_else(|| panic!("{needle} missing:\n{conf}"))
        };
        let script = at("        location ~ \"[^/]\\.php(/|$)\" {");
        let sources = at("        location ~* \"\\.(php\\d*|pht|phtml|phps|phar|inc)(/|$)\" {");
        let images = at("        location ~* \"^/images(/|$)\" {");
        let via_script = at("        location ~ \"\\.php(/admin|/my\\.panel)(/|$)\" {");
        assert!(images < via_script && via_script < script && script < sources);
        // The site's last location: static files, else the front controller.
        let site = &conf[..at("    server {\n        listen 8081;")];
        assert!(site.trim_end().ends_with(
            "location / {\n            try_files $uri $uri/ /index.php$is_args$args;\n        }\n    }"
        ));
        assert!(conf.contains("root /srv/app;"));
        assert!(conf.contains("fastcgi_param DOCUMENT_ROOT /var/www/html;"));
        assert!(conf.contains("fastcgi_param SCRIPT_FILENAME /var/www/html$fastcgi_script_name;"));
        assert!(conf.contains("fastcgi_param SERVER_PORT 80;"));
        assert!(!conf.contains("include /etc/nginx/fastcgi_params"));
        assert!(!conf.contains("proxy_pass"));
        // Options of fastcgi_next_upstream: no 502 or 504, which only proxies send.
        assert!(!conf.contains("http_502"), "{conf}");
    }
}
