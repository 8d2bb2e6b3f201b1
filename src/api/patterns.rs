//! Regular expressions shared by the CRD schema and the Rust validation, so both
//! accept exactly the same strings. They are written in the RE2 subset that both
//! the Kubernetes API server and the `regex` crate understand.

use regex::Regex;

/// One of these patterns, compiled. They are constants of this crate, each compiled
/// in a unit test as well, so a failure here is a bug of the crate, not of any input.
pub fn compiled(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid built-in pattern {pattern}: {e}"))
}

/// A DNS host name, optionally a leading wildcard label, lower case.
pub const HOST: &str =
    r"^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// An IPv4 or IPv6 network in CIDR notation; the prefix length is checked separately.
pub const CIDR: &str = r"^[0-9a-fA-F:.]{2,39}/[0-9]{1,3}$";

/// An absolute URL path prefix: no spaces, quotes, semicolons, braces or `..`.
pub const URL_PATH: &str = r"^/([A-Za-z0-9._~-]+/?)*$";

/// An absolute filesystem path inside a container.
pub const FS_PATH: &str = r"^/([A-Za-z0-9._-]+/?)*$";

/// An nginx size: a number with an optional `k`, `m` or `g` suffix.
pub const NGINX_SIZE: &str = r"^[0-9]{1,6}[kmg]?$";

/// An nginx time: a number with a unit from `s` (seconds) up to `y` (years).
pub const NGINX_TIME: &str = r"^[0-9]{1,6}(s|m|h|d|w|M|y)$";

/// A Kubernetes memory or storage quantity written as an integer with a unit.
pub const QUANTITY: &str = r"^[0-9]{1,9}(Ki|Mi|Gi|Ti|k|M|G|T)?$";

/// A DNS-1123 label: the names of Secrets, claims and schedules.
pub const DNS_LABEL: &str = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";

/// A DNS-1123 subdomain: the names of Kubernetes objects and external hosts.
pub const DNS_SUBDOMAIN: &str =
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$";

/// A container image reference with an explicit tag or digest (never implicit `latest`).
pub const IMAGE: &str =
    r"^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$";

/// A five-field cron schedule made only of the characters cron allows.
pub const CRON: &str =
    r"^[0-9*/,-]+ [0-9*/,-]+ [0-9*/,?LW-]+ [0-9A-Za-z*/,-]+ [0-9A-Za-z*/,?L#-]+$";

/// A MariaDB database or user name: letters, digits and underscores.
pub const SQL_IDENTIFIER: &str = r"^[A-Za-z][A-Za-z0-9_]{0,31}$";

/// A backup file name written by the backup job, or `latest`.
pub const BACKUP_NAME: &str = r"^(latest|[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.sql\.gz)$";

/// An RFC 3339 time with seconds and an explicit offset.
pub const RFC3339: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$";

/// An object store endpoint: `https://` or `http://`, a host and an optional port, no path.
pub const OBJECT_STORE_ENDPOINT: &str =
    r"^https?://[A-Za-z0-9]([-A-Za-z0-9.]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?/?$";

/// An S3 bucket name: lower-case letters, digits, dots and hyphens.
pub const BUCKET: &str = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";

/// An object key prefix of `/`-separated segments, ending with `/`.
pub const OBJECT_PREFIX: &str = r"^([A-Za-z0-9_=+@,-][A-Za-z0-9._=+@,-]*/)+$";

/// A Prometheus scrape interval in whole seconds or minutes, such as `30s` or `1m`.
pub const SCRAPE_INTERVAL: &str = r"^[1-9][0-9]{0,3}(s|m)$";
