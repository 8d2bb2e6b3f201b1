//! The first-start init script. The official MariaDB image runs every script in
//! `/docker-entrypoint-initdb.d` once, on an empty data directory, while its
//! temporary server listens on the socket only; this one creates the application
//! database, the application user, the backup user and the administrative account
//! that credential rotations connect as. Names come from the spec (validated as SQL
//! identifiers); passwords come from the environment, which the StatefulSet fills
//! from the credentials Secret, so none is written into a ConfigMap.
//!
//! Every statement leaves what exists as it is, so the script can also run in a live
//! database: one that an operator version before credential rotations created gets
//! the administrative account that way (`kubectl exec ... -- bash
//! /docker-entrypoint-initdb.d/10-webtoon-init.sh`), and nothing else changes.

use crate::api::DatabaseSpec;
use crate::render::credentials::database_user;

/// Directory the official image runs first-start scripts from.
pub const INIT_DIR: &str = "/docker-entrypoint-initdb.d";
/// File name of the init script; it sorts before the restore script.
pub const INIT_SCRIPT: &str = "10-webtoon-init.sh";

/// A shell function printing its argument as an SQL string literal, whatever
/// characters it holds, for scripts that put passwords from the environment into SQL.
pub(super) const SQL_STRING: &str = r#"# A password as an SQL string literal, whatever characters it holds.
sql_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\'/\'\'}
  printf "'%s'" "$s"
}
"#;

/// Environment variable holding the application user's password.
pub const APP_PASSWORD_ENV: &str = "WEBTOON_DB_PASSWORD";
/// Environment variable holding the backup user's password.
pub const BACKUP_PASSWORD_ENV: &str = "WEBTOON_DB_BACKUP_PASSWORD";
/// Environment variable holding the monitoring account's password; set only when
/// monitoring is on, and the account is created only then.
pub const MONITOR_PASSWORD_ENV: &str = "WEBTOON_DB_MONITOR_PASSWORD";
/// Environment variable holding the root password, as the official image names it.
pub const ROOT_PASSWORD_ENV: &str = "MARIADB_ROOT_PASSWORD";

/// Privileges of the application user on its own database: everything a web
/// application and its schema migrations need, and nothing on any other database.
pub const APP_PRIVILEGES: &str = "SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX, DROP, \
     REFERENCES, CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW, \
     CREATE ROUTINE, ALTER ROUTINE, TRIGGER, EVENT";

/// Privileges of the backup user on the application database: what a consistent
/// `mariadb-dump --single-transaction --routines --events --triggers` reads.
pub const BACKUP_PRIVILEGES: &str = "SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES";

/// Name of the backup user: derived from the application user, so never equal to it.
pub fn backup_user(spec: &DatabaseSpec) -> String {
    format!("{}_backup", spec.user)
}

/// Name of the administrative account that credential rotations connect as: it may
/// create, change and lock accounts and grant the application's privileges on the
/// application database, and read which hosts an account has; nothing else.
pub fn admin_user(spec: &DatabaseSpec) -> String {
    format!("{}_admin", spec.user)
}

/// Name of the monitoring account mysqld_exporter logs in as: no privilege, so it
/// reads the server's status and variables and nothing of any database.
pub fn monitor_user(spec: &DatabaseSpec) -> String {
    format!("{}_monitor", spec.user)
}

/// `10-webtoon-init.sh`, creating the account the WAS uses after `generation`
/// rotations, so that a data directory started afresh matches the Secret.
pub fn init_script(spec: &DatabaseSpec, generation: u64) -> String {
    let db = &spec.name;
    let user = database_user(spec, generation);
    let backup = backup_user(spec);
    let admin = admin_user(spec);
    let monitor = monitor_user(spec);
    format!(
        r#"#!/bin/bash
# Rendered by webtoon-operator. Runs on an empty data directory; run again, it only
# adds what is missing.
set -euo pipefail
for var in {ROOT_PASSWORD_ENV} {APP_PASSWORD_ENV} {BACKUP_PASSWORD_ENV}; do
  if [ -z "${{!var:-}}" ]; then
    echo "webtoon-init: $var is empty: the credentials Secret is missing a key" >&2
    exit 1
  fi
done
{SQL_STRING}MYSQL_PWD="${ROOT_PASSWORD_ENV}" mariadb --protocol=socket --user=root <<SQL
CREATE DATABASE IF NOT EXISTS \`{db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY $(sql_string "${APP_PASSWORD_ENV}");
GRANT {APP_PRIVILEGES} ON \`{db}\`.* TO '{user}'@'%';
CREATE USER IF NOT EXISTS '{backup}'@'%' IDENTIFIED BY $(sql_string "${BACKUP_PASSWORD_ENV}");
GRANT {BACKUP_PRIVILEGES} ON \`{db}\`.* TO '{backup}'@'%';
-- Dumping routines reads their bodies from mysql.proc before MariaDB 11.3.
GRANT SELECT ON mysql.proc TO '{backup}'@'%';
-- Rotations connect as {admin}. It starts with root's password, the only other one
-- this start knows, and gets its own at the first rotation.
CREATE USER IF NOT EXISTS '{admin}'@'%' IDENTIFIED BY $(sql_string "${ROOT_PASSWORD_ENV}");
GRANT CREATE USER ON *.* TO '{admin}'@'%';
GRANT {APP_PRIVILEGES} ON \`{db}\`.* TO '{admin}'@'%' WITH GRANT OPTION;
GRANT SELECT (User, Host) ON mysql.global_priv TO '{admin}'@'%';
SQL
if [ -n "${{{MONITOR_PASSWORD_ENV}:-}}" ]; then
  # Only the exporter beside the server, over 127.0.0.1, with no privilege at all.
  MYSQL_PWD="${ROOT_PASSWORD_ENV}" mariadb --protocol=socket --user=root <<SQL
CREATE USER IF NOT EXISTS '{monitor}'@'127.0.0.1' IDENTIFIED BY $(sql_string "${MONITOR_PASSWORD_ENV}") WITH MAX_USER_CONNECTIONS 3;
SQL
  echo "webtoon-init: monitoring account {monitor} is there"
fi
echo "webtoon-init: database {db}, user {user}, backup user {backup} and administrative account {admin} are there"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_the_application_database_only() {
        let script = init_script(&DatabaseSpec::default(), 0);
        assert!(script.contains("GRANT SELECT, INSERT"));
        assert!(script.contains("ON \\`webtoon\\`.* TO 'webtoon'@'%';"));
        assert!(script.contains("TO 'webtoon_backup'@'%';"));
        let global: Vec<&str> = script.lines().filter(|l| l.contains("*.*")).collect();
        assert_eq!(
            global,
            ["GRANT CREATE USER ON *.* TO 'webtoon_admin'@'%';"],
            "the only global privilege is the administrative account's"
        );
        assert!(!script.contains("ALL PRIVILEGES"));
        let with_grant: Vec<&str> = script
            .lines()
            .filter(|l| l.contains("GRANT OPTION"))
            .collect();
        assert_eq!(with_grant.len(), 1);
        assert!(with_grant[0].ends_with("TO 'webtoon_admin'@'%' WITH GRANT OPTION;"));
    }

    #[test]
    fn the_monitoring_account_is_created_only_with_its_password_and_gets_no_grant() {
        let script = init_script(&DatabaseSpec::default(), 0);
        assert!(script.contains("if [ -n \"${WEBTOON_DB_MONITOR_PASSWORD:-}\" ]; then"));
        assert!(script.contains(
            "CREATE USER IF NOT EXISTS 'webtoon_monitor'@'127.0.0.1' IDENTIFIED BY $(sql_string \"$WEBTOON_DB_MONITOR_PASSWORD\") WITH MAX_USER_CONNECTIONS 3;"
        ));
        assert!(!script.contains("TO 'webtoon_monitor'"));
    }

    #[test]
    fn a_fresh_data_directory_gets_the_account_the_secret_is_for() {
        let spec = DatabaseSpec::default();
        assert!(init_script(&spec, 1).contains("CREATE USER IF NOT EXISTS 'webtoon_2'@'%'"));
        assert!(init_script(&spec, 2).contains("CREATE USER IF NOT EXISTS 'webtoon'@'%'"));
    }
}
