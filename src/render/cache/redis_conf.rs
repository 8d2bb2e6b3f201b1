//! The Redis configuration and start script. No password is written here: the
//! start script builds the ACL file from the Secret-provided environment when the
//! container starts, into a memory-backed volume.

use std::fmt::Write;

use crate::api::quantity::quantity_bytes;
use crate::api::{CacheSpec, EvictionPolicy};

/// Directory of the generated ACL file inside the Redis container.
pub const ACL_DIR: &str = "/run/redis";
/// Directory of the configuration inside the Redis container.
pub const CONFIG_DIR: &str = "/etc/redis";

/// Commands the application user may not run: they wipe, reconfigure, stall or
/// replicate the server, or scan the whole key space.
pub const DENIED_COMMANDS: &[&str] = &[
    "flushall",
    "flushdb",
    "config",
    "debug",
    "keys",
    "shutdown",
    "monitor",
    "acl",
    "module",
    "replicaof",
    "slaveof",
    "save",
    "bgsave",
    "bgrewriteaof",
    "sync",
    "psync",
    "migrate",
    "failover",
    "cluster",
];

/// The name Redis gives an eviction policy.
pub fn eviction_policy_name(policy: EvictionPolicy) -> &'static str {
    match policy {
        EvictionPolicy::AllkeysLru => "allkeys-lru",
        EvictionPolicy::AllkeysLfu => "allkeys-lfu",
        EvictionPolicy::AllkeysRandom => "allkeys-random",
        EvictionPolicy::VolatileLru => "volatile-lru",
        EvictionPolicy::VolatileLfu => "volatile-lfu",
        EvictionPolicy::VolatileTtl => "volatile-ttl",
        EvictionPolicy::Noeviction => "noeviction",
    }
}

/// The user redis_exporter logs in as.
pub const MONITOR_USER: &str = "webtoon-monitor";

/// What the monitoring user may run: the server's state, its slow log and latency
/// records, and naming its own connection. No key, no configuration, no client list.
pub const MONITOR_COMMANDS: &str = "-@all +ping +info +slowlog|get +slowlog|len +latency|latest +latency|histogram +client|setname";

/// `redis.conf`.
pub fn redis_conf(spec: &CacheSpec) -> String {
    let mut c = String::new();
    let _ = writeln!(c, "# Rendered by webtoon-operator.");
    let _ = writeln!(c, "port 6379");
    let _ = writeln!(c, "bind 0.0.0.0");
    let _ = writeln!(c, "protected-mode yes");
    let _ = writeln!(
        c,
        "maxmemory {}",
        quantity_bytes(&spec.max_memory).unwrap_or(256 << 20)
    );
    let _ = writeln!(
        c,
        "maxmemory-policy {}",
        eviction_policy_name(spec.eviction_policy)
    );
    if spec.persistence.is_some() {
        let _ = writeln!(c, "appendonly yes\nappendfsync everysec");
    } else {
        let _ = writeln!(c, "appendonly no\nsave \"\"");
    }
    let _ = writeln!(c, "dir /data");
    let _ = writeln!(c, "aclfile {ACL_DIR}/users.acl");
    let _ = writeln!(c, "tcp-keepalive 60");
    let _ = writeln!(c, "timeout 0");
    c
}

/// `start.sh`: writes the ACL file (default user off; the application user with the
/// SHA-256 hashes of its passwords and the dangerous commands denied; `admin_user`,
/// when its password is set, allowed nothing but `ACL SETUSER` and `PING`; with
/// monitoring, [`MONITOR_USER`] allowed [`MONITOR_COMMANDS`]), then starts Redis. While a rotation is under way the Secret holds the application's new
/// or previous password too, and a Redis that restarts then accepts both, as the
/// running one does.
pub fn start_script(app_user: &str, admin_user: &str, monitoring: bool) -> String {
    let denied: String = DENIED_COMMANDS.iter().map(|c| format!(" -{c}")).collect();
    // Rendered only with monitoring, so that a stack without it keeps its script, and
    // its Redis is not restarted by an operator upgrade.
    let monitor = if monitoring {
        format!(
            r#"  if [ -z "${{REDIS_MONITOR_PASSWORD:-}}" ]; then
    echo "REDIS_MONITOR_PASSWORD is empty: the credentials Secret is missing its cache-monitor-password" >&2
    exit 1
  fi
  echo "user {MONITOR_USER} on$(hashes "$REDIS_MONITOR_PASSWORD") {MONITOR_COMMANDS}"
"#
        )
    } else {
        String::new()
    };
    format!(
        r#"#!/bin/sh
# Rendered by webtoon-operator.
set -eu
if [ -z "${{REDIS_PASSWORD:-}}" ]; then
  echo "REDIS_PASSWORD is empty: the credentials Secret is missing its cache-password" >&2
  exit 1
fi
umask 077
hashes() {{
  for password in "$@"; do
    [ -n "$password" ] && printf ' #%s' "$(printf '%s' "$password" | sha256sum | cut -d' ' -f1)"
  done
  return 0
}}
app=$(hashes "$REDIS_PASSWORD" "${{REDIS_PASSWORD_NEXT:-}}" "${{REDIS_PASSWORD_PREVIOUS:-}}")
{{
  echo "user default off"
  echo "user {app_user} on$app ~* &* +@all{denied}"
  if [ -n "${{REDIS_ADMIN_PASSWORD:-}}" ]; then
    admin=$(hashes "$REDIS_ADMIN_PASSWORD" "${{REDIS_ADMIN_PASSWORD_NEXT:-}}")
    echo "user {admin_user} on$admin -@all +acl|setuser +ping"
  fi
{monitor}}} > {ACL_DIR}/users.acl
exec redis-server {CONFIG_DIR}/redis.conf
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_policy_and_persistence() {
        let mut spec = CacheSpec::default();
        let text = redis_conf(&spec);
        assert!(text.contains("maxmemory 268435456\n"));
        assert!(text.contains("maxmemory-policy allkeys-lru\n"));
        assert!(text.contains("appendonly no\n"));
        assert!(text.contains("aclfile /run/redis/users.acl\n"));
        assert!(!text.contains("requirepass"));
        spec.persistence = Some(crate::api::VolumeSpec {
            size: "1Gi".into(),
            storage_class_name: None,
        });
        spec.eviction_policy = EvictionPolicy::VolatileTtl;
        let text = redis_conf(&spec);
        assert!(text.contains("appendonly yes\n"));
        assert!(text.contains("maxmemory-policy volatile-ttl\n"));
    }

    #[test]
    fn acl_disables_default_user_and_denies_dangerous_commands() {
        let script = start_script("webtoon", "webtoon-admin", false);
        assert!(script.contains("echo \"user default off\""));
        assert!(
            script.contains(
                "user webtoon on$app ~* &* +@all -flushall -flushdb -config -debug -keys"
            )
        );
        assert!(script.contains("user webtoon-admin on$admin -@all +acl|setuser +ping"));
        assert!(script.contains("exec redis-server /etc/redis/redis.conf"));
        assert!(!script.contains(MONITOR_USER));
        let monitored = start_script("webtoon", "webtoon-admin", true);
        assert!(monitored.contains(
            "echo \"user webtoon-monitor on$(hashes \"$REDIS_MONITOR_PASSWORD\") -@all +ping +info "
        ));
        assert!(
            !script.contains(">$REDIS_PASSWORD"),
            "only the hash reaches the ACL file"
        );
    }
}
