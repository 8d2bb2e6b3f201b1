//! The nginx configuration of the proxy tier.
//!
//! Every user string written here has passed validation (host names, CIDRs, paths
//! and sizes match strict patterns), so none can end a directive or open a block.
//! The same render serves the cluster and the tests: [`NginxLayout`] holds what
//! differs between them (listen addresses, file paths, how WAS addresses are found).

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
    /// Directory of the response cache.
    pub cache_dir: String,
    /// Directory of nginx's temporary files.
    pub temp_dir: String,
    /// Path of the pid file.
    pub pid_file: String,
    /// Path of nginx's `mime.types`.
    pub mime_types: String,
    /// Path of nginx's `fastcgi_params`.
    pub fastcgi_params: String,
    /// Where errors are logged.
    pub error_log: String,
    /// Where requests are logged.
    pub access_log: String,
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
/// Directory of the TLS Secret in the proxy container.
pub const TLS_DIR: &str = "/etc/nginx/tls";
/// Directory of the response cache in the proxy container.
pub const CACHE_DIR: &str = "/var/cache/nginx/webtoon";
/// Directory of the configuration in the proxy container.
pub const CONFIG_DIR: &str = "/etc/nginx/webtoon";
/// Mount point of the shared images in the proxy container.
pub const IMAGES_DIR: &str = "/srv/images";

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
            cache_dir: CACHE_DIR.to_string(),
            temp_dir: "/tmp".to_string(),
            pid_file: "/tmp/nginx.pid".to_string(),
            mime_types: "/etc/nginx/mime.types".to_string(),
            fastcgi_params: "/etc/nginx/fastcgi_params".to_string(),
            error_log: "/dev/stderr warn".to_string(),
            access_log: "/dev/stdout".to_string(),
            http2_directive: true,
        }
    }
}

/// Seconds nginx keeps the WAS addresses it resolved before asking DNS again.
pub const RESOLVE_VALID_SECONDS: i64 = 5;

/// Mozilla's "intermediate" TLS 1.2 cipher list; TLS 1.3 suites are fixed by OpenSSL.
const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

/// File names that must never be served: backups, dumps and editor leftovers.
const FORBIDDEN_FILES: &str = r"\.(bak|sql|old|orig|save|swp|tmp|dist|log|gz\.part)$|~$";

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

/// Renders the whole `nginx.conf`.
pub fn nginx_conf(stack: &ValidatedStack, layout: &NginxLayout) -> String {
    let spec = &stack.spec;
    let proxy = &spec.proxy;
    let mut c = String::new();
    let hosts = spec.hosts.join(" ");
    let tls = spec.tls.as_ref();
    let fastcgi = spec.was.protocol == WasProtocol::Fastcgi;
    // Directives that differ only in their module prefix between HTTP and FastCGI.
    let m = if fastcgi { "fastcgi" } else { "proxy" };
    let temp = &layout.temp_dir;

    let _ = writeln!(
        c,
        "# Rendered by webtoon-operator for stack {}/{}.",
        stack.namespace, stack.name
    );
    let _ = writeln!(c, "worker_processes auto;");
    let _ = writeln!(c, "pid {};", layout.pid_file);
    let _ = writeln!(c, "error_log {};", layout.error_log);
    let _ = writeln!(c, "events {{\n    worker_connections 4096;\n}}");
    let _ = writeln!(c, "http {{");
    let _ = writeln!(c, "    include {};", layout.mime_types);
    let _ = writeln!(c, "    default_type application/octet-stream;");
    let _ = writeln!(c, "    server_tokens off;");
    let _ = writeln!(c, "    autoindex off;");
    let _ = writeln!(c, "    charset utf-8;");
    let _ = writeln!(
        c,
        "    sendfile on;\n    tcp_nopush on;\n    tcp_nodelay on;"
    );
    let _ = writeln!(c, "    keepalive_timeout 65s;");
    let _ = writeln!(
        c,
        "    client_max_body_size {};",
        proxy.client_max_body_size
    );
    let _ = writeln!(
        c,
        "    client_body_timeout 30s;\n    client_header_timeout 30s;\n    send_timeout 30s;"
    );
    for (kind, dir) in [
        ("client_body", "client_body"),
        ("proxy", "proxy"),
        ("fastcgi", "fastcgi"),
        ("uwsgi", "uwsgi"),
        ("scgi", "scgi"),
    ] {
        let _ = writeln!(c, "    {kind}_temp_path {temp}/{dir};");
    }
    let _ = writeln!(
        c,
        "    log_format webtoon '$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" rt=$request_time ua=\"$upstream_addr\" us=\"$upstream_status\" cs=$upstream_cache_status';"
    );
    let _ = writeln!(c, "    access_log {} webtoon;", layout.access_log);
    // Keeps descriptors of hot images open: most page views hit the same episodes.
    let _ = writeln!(
        c,
        "    open_file_cache max=10000 inactive=60s;\n    open_file_cache_valid 30s;\n    open_file_cache_min_uses 1;\n    open_file_cache_errors on;"
    );
    let _ = writeln!(
        c,
        "    gzip on;\n    gzip_vary on;\n    gzip_min_length 1024;\n    gzip_types text/css text/plain application/javascript application/json image/svg+xml;"
    );

    if !proxy.trusted_proxy_cidrs.is_empty() {
        for cidr in &proxy.trusted_proxy_cidrs {
            let _ = writeln!(c, "    set_real_ip_from {cidr};");
        }
        let _ = writeln!(
            c,
            "    real_ip_header X-Forwarded-For;\n    real_ip_recursive on;"
        );
    }

    let _ = writeln!(
        c,
        "    map $http_upgrade $connection_upgrade {{\n        default upgrade;\n        '' '';\n    }}"
    );
    if proxy.rate_limit.enabled {
        let _ = writeln!(
            c,
            "    limit_req_zone $binary_remote_addr zone=webtoon_req:10m rate={}r/s;",
            proxy.rate_limit.requests_per_second
        );
        let _ = writeln!(c, "    limit_req_status 429;");
    }
    if proxy.cache.enabled {
        let max_size = quantity_bytes(&proxy.cache.size).unwrap_or(512 << 20);
        let _ = writeln!(
            c,
            "    {m}_cache_path {} levels=1:2 keys_zone=webtoon_cache:10m max_size={max_size} inactive=7d use_temp_path=off;",
            layout.cache_dir
        );
    }

    if let Upstream::Resolve { resolver, .. } = &layout.upstream {
        let _ = writeln!(
            c,
            "    resolver {resolver} valid={RESOLVE_VALID_SECONDS}s ipv6=off;\n    resolver_timeout 2s;"
        );
    }
    if tls.is_some() {
        // At http level, not in the site's server: the protocol version is settled
        // with the settings of the listener's default server (the catch-all below),
        // so versions set only in the site would leave the catch-all's built-in
        // defaults in force (no TLS 1.3 before nginx 1.23.4).
        let _ = writeln!(c, "    ssl_protocols TLSv1.2 TLSv1.3;");
        let _ = writeln!(c, "    ssl_ciphers {TLS12_CIPHERS};");
        let _ = writeln!(c, "    ssl_prefer_server_ciphers off;");
        let _ = writeln!(
            c,
            "    ssl_session_cache shared:webtoon_tls:10m;\n    ssl_session_timeout 1d;\n    ssl_session_tickets off;"
        );
    }
    let _ = writeln!(c, "    upstream webtoon_was {{");
    let _ = writeln!(c, "        zone webtoon_was 256k;");
    match &layout.upstream {
        Upstream::Resolve { host, port, .. } => {
            let _ = writeln!(
                c,
                "        server {host}:{port} resolve max_fails=1 fail_timeout=5s;"
            );
        }
        Upstream::Static(addresses) => {
            for address in addresses {
                let _ = writeln!(c, "        server {address} max_fails=1 fail_timeout=5s;");
            }
        }
    }
    let _ = writeln!(c, "        keepalive 32;\n        keepalive_timeout 60s;");
    let _ = writeln!(c, "    }}");

    // Requests for hosts the stack does not serve get no site at all.
    let _ = writeln!(c, "    server {{");
    let _ = writeln!(c, "        listen {} default_server;", layout.http_listen);
    if tls.is_some() {
        let _ = writeln!(
            c,
            "        listen {} ssl default_server;",
            layout.https_listen
        );
        let _ = writeln!(c, "        ssl_reject_handshake on;");
    }
    let _ = writeln!(c, "        server_name _;\n        return 444;\n    }}");

    let security_headers = {
        let mut h = String::new();
        if let Some(tls) = tls
            && tls.hsts_max_age_seconds > 0
        {
            let _ = writeln!(
                h,
                "add_header Strict-Transport-Security \"max-age={}; includeSubDomains\" always;",
                tls.hsts_max_age_seconds
            );
        }
        h.push_str("add_header X-Content-Type-Options nosniff always;\n");
        h.push_str("add_header X-Frame-Options SAMEORIGIN always;\n");
        h.push_str("add_header Referrer-Policy strict-origin-when-cross-origin always;\n");
        h
    };
    let indent = |text: &str, depth: usize| -> String {
        let pad = " ".repeat(depth * 4);
        text.lines().map(|l| format!("{pad}{l}\n")).collect()
    };

    if let Some(_tls) = tls {
        let _ = writeln!(c, "    server {{");
        let _ = writeln!(c, "        listen {};", layout.http_listen);
        let _ = writeln!(c, "        server_name {hosts};");
        let _ = writeln!(
            c,
            "        location / {{\n            return 308 https://$host$request_uri;\n        }}"
        );
        let _ = writeln!(c, "    }}");
    }

    let _ = writeln!(c, "    server {{");
    match tls {
        Some(_) => {
            if layout.http2_directive {
                let _ = writeln!(
                    c,
                    "        listen {} ssl;\n        http2 on;",
                    layout.https_listen
                );
            } else {
                let _ = writeln!(c, "        listen {} ssl http2;", layout.https_listen);
            }
            let _ = writeln!(c, "        ssl_certificate {};", layout.tls_certificate);
            let _ = writeln!(
                c,
                "        ssl_certificate_key {};",
                layout.tls_certificate_key
            );
        }
        None => {
            let _ = writeln!(c, "        listen {};", layout.http_listen);
        }
    }
    let _ = writeln!(c, "        server_name {hosts};");
    c.push_str(&indent(&security_headers, 2));

    // Hidden files and backups are refused everywhere, including under the images.
    let deny = format!(
        "location ~ /\\. {{\n    deny all;\n}}\nlocation ~* \"{FORBIDDEN_FILES}\" {{\n    deny all;\n}}\n"
    );
    c.push_str(&indent(&deny, 2));

    // Images come straight from the shared volume; the WAS never sees these requests,
    // and they are not rate limited because one page view loads many of them.
    let url = spec.storage.url_path.trim_end_matches('/');
    let max_age = nginx_time_seconds(&proxy.cache.static_max_age);
    let _ = writeln!(c, "        location ^~ {url}/ {{");
    c.push_str(&indent(&deny, 3));
    let _ = writeln!(
        c,
        "            alias {}/;",
        layout.images_root.trim_end_matches('/')
    );
    let _ = writeln!(c, "            autoindex off;");
    let _ = writeln!(c, "            access_log off;");
    c.push_str(&indent(&security_headers, 3));
    // One Cache-Control only: `expires` would add a second `max-age`, and caches may
    // treat a response with conflicting directives as stale (RFC 9111, 4.2.1).
    let _ = writeln!(
        c,
        "            add_header Cache-Control \"public, max-age={max_age}, immutable\" always;"
    );
    let _ = writeln!(c, "            try_files $uri =404;");
    let _ = writeln!(c, "        }}");

    let limit = if proxy.rate_limit.enabled {
        format!(
            "limit_req zone=webtoon_req burst={} nodelay;\n",
            proxy.rate_limit.burst
        )
    } else {
        String::new()
    };

    let to_was = was_block(stack, layout, m, &security_headers);
    for path in &proxy.admin.paths {
        let path = path.trim_end_matches('/');
        let mut acl = String::new();
        for cidr in &proxy.admin.allow_cidrs {
            let _ = writeln!(acl, "allow {cidr};");
        }
        acl.push_str("deny all;\n");
        // Both the exact path and everything under it, but not `/administrator`.
        for location in [format!("= {path}"), format!("^~ {path}/")] {
            let _ = writeln!(c, "        location {location} {{");
            c.push_str(&indent(&acl, 3));
            // `^~` skips the server's regex locations, so the denials repeat here.
            if location.starts_with("^~") {
                c.push_str(&indent(&deny, 3));
            }
            c.push_str(&indent(&limit, 3));
            c.push_str(&indent(&to_was, 3));
            let _ = writeln!(c, "        }}");
        }
    }

    let _ = writeln!(c, "        location / {{");
    c.push_str(&indent(&limit, 3));
    c.push_str(&indent(&to_was, 3));
    let _ = writeln!(c, "        }}");
    let _ = writeln!(c, "    }}");

    let _ = writeln!(c, "    server {{");
    let _ = writeln!(c, "        listen {};", layout.health_listen);
    let _ = writeln!(c, "        access_log off;");
    let _ = writeln!(
        c,
        "        location = /healthz {{\n            return 200 \"ok\\n\";\n        }}"
    );
    let _ = writeln!(
        c,
        "        location = /stub_status {{\n            stub_status;\n        }}"
    );
    let _ = writeln!(
        c,
        "        location / {{\n            return 404;\n        }}"
    );
    let _ = writeln!(c, "    }}");
    let _ = writeln!(c, "}}");
    c
}

/// The directives that pass a request to the WAS, with failover and caching.
fn was_block(
    stack: &ValidatedStack,
    layout: &NginxLayout,
    m: &str,
    security_headers: &str,
) -> String {
    let spec = &stack.spec;
    let mut b = String::new();
    if spec.was.protocol == WasProtocol::Fastcgi {
        let _ = writeln!(b, "include {};", layout.fastcgi_params);
        let _ = writeln!(
            b,
            "fastcgi_param SCRIPT_FILENAME {}$fastcgi_script_name;",
            spec.was.fastcgi_root.trim_end_matches('/')
        );
        let _ = writeln!(b, "fastcgi_param HTTP_PROXY \"\";");
        let _ = writeln!(b, "fastcgi_keep_conn on;");
        let _ = writeln!(b, "fastcgi_pass webtoon_was;");
    } else {
        let _ = writeln!(b, "proxy_pass http://webtoon_was;");
        let _ = writeln!(b, "proxy_http_version 1.1;");
        let _ = writeln!(b, "proxy_set_header Host $host;");
        let _ = writeln!(b, "proxy_set_header X-Real-IP $remote_addr;");
        let _ = writeln!(b, "proxy_set_header X-Forwarded-For $remote_addr;");
        let _ = writeln!(b, "proxy_set_header X-Forwarded-Proto $scheme;");
        let _ = writeln!(b, "proxy_set_header X-Forwarded-Host $host;");
        let _ = writeln!(b, "proxy_set_header Upgrade $http_upgrade;");
        let _ = writeln!(b, "proxy_set_header Connection $connection_upgrade;");
        let _ = writeln!(b, "proxy_read_timeout 60s;\nproxy_send_timeout 60s;");
    }
    let _ = writeln!(b, "{m}_connect_timeout 2s;");
    // A failed or refused attempt moves on to the next WAS, bounded in tries and time.
    let _ = writeln!(
        b,
        "{m}_next_upstream error timeout http_502 http_503 http_504;"
    );
    let _ = writeln!(
        b,
        "{m}_next_upstream_tries 3;\n{m}_next_upstream_timeout 10s;"
    );
    if spec.proxy.cache.enabled {
        let _ = writeln!(b, "{m}_cache webtoon_cache;");
        let _ = writeln!(b, "{m}_cache_key $scheme$host$request_uri;");
        // Personal responses are never stored or served from the shared cache.
        let _ = writeln!(b, "{m}_cache_bypass $http_authorization $cookie_session;");
        let _ = writeln!(b, "{m}_no_cache $http_authorization $cookie_session;");
        let _ = writeln!(
            b,
            "{m}_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;"
        );
        // No cache lock: nginx cannot know before the answer whether a page is
        // cacheable, so concurrent requests for a private page would queue behind
        // each other in 500 ms steps. Refreshes of popular pages are already single
        // requests thanks to `updating` and the background update.
        let _ = writeln!(b, "{m}_cache_background_update on;");
        b.push_str(security_headers);
        let _ = writeln!(
            b,
            "add_header X-Cache-Status $upstream_cache_status always;"
        );
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_times_in_seconds() {
        assert_eq!(nginx_time_seconds("7d"), 604_800);
        assert_eq!(nginx_time_seconds("30s"), 30);
        assert_eq!(nginx_time_seconds("1y"), 31_536_000);
    }
}
