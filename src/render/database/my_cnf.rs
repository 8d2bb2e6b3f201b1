//! The MariaDB server configuration.

use std::fmt::Write;

use crate::api::DatabaseSpec;
use crate::api::quantity::quantity_bytes;

const MIB: u64 = 1 << 20;
/// InnoDB allocates its buffer pool in chunks of this size.
const CHUNK: u64 = 128 * MIB;

/// The InnoDB buffer pool: 60% of the memory limit (or request), leaving room for
/// connections and the server itself, rounded down to whole 128 MiB chunks.
pub fn buffer_pool_bytes(spec: &DatabaseSpec) -> u64 {
    let memory = |m: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >| {
        m.and_then(|m| m.get("memory"))
            .and_then(|q| quantity_bytes(&q.0))
    };
    let budget = memory(spec.resources.limits.as_ref())
        .or_else(|| memory(spec.resources.requests.as_ref()))
        .unwrap_or(CHUNK);
    ((budget / 10 * 6) / CHUNK * CHUNK).max(CHUNK)
}

/// `webtoon.cnf`, read after the image's own configuration.
pub fn my_cnf(spec: &DatabaseSpec) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "# Rendered by webtoon-operator.");
    let _ = writeln!(c, "[mysqld]");
    let _ = writeln!(c, "character-set-server = utf8mb4");
    let _ = writeln!(c, "collation-server = utf8mb4_unicode_ci");
    // Grants name addresses, not host names: no DNS lookup on every connection.
    let _ = writeln!(c, "skip-name-resolve");
    let _ = writeln!(c, "bind-address = 0.0.0.0");
    let _ = writeln!(c, "max_connections = {}", spec.max_connections);
    let _ = writeln!(
        c,
        "innodb_buffer_pool_size = {}M",
        buffer_pool_bytes(spec) / MIB
    );
    let _ = writeln!(c, "innodb_flush_log_at_trx_commit = 1");
    let _ = writeln!(c, "local-infile = 0");
    let _ = writeln!(c, "max_allowed_packet = 64M");
    let _ = writeln!(c, "[client]");
    let _ = writeln!(c, "default-character-set = utf8mb4");
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::resources;

    fn with_limit(memory: &str) -> DatabaseSpec {
        DatabaseSpec {
            resources: resources("100m", "128Mi", "1", memory),
            ..DatabaseSpec::default()
        }
    }

    #[test]
    fn buffer_pool_is_sixty_percent_in_whole_chunks() {
        assert_eq!(buffer_pool_bytes(&with_limit("1Gi")), 512 * MIB);
        assert_eq!(buffer_pool_bytes(&with_limit("4Gi")), 2432 * MIB);
        assert_eq!(buffer_pool_bytes(&with_limit("200Mi")), 128 * MIB);
    }

    #[test]
    fn config_sets_charset_connections_and_no_name_resolution() {
        let text = my_cnf(&with_limit("1Gi"));
        for line in [
            "character-set-server = utf8mb4",
            "skip-name-resolve",
            "max_connections = 200",
            "innodb_buffer_pool_size = 512M",
            "local-infile = 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}");
        }
    }
}
