//! The first-start init script. The official MariaDB image runs every script in
//! `/docker-entrypoint-initdb.d` once, on an empty data directory, while its
//! temporary server listens on the socket only; this one creates the application
//! database, the application user and the backup user. Names come from the spec
//! (validated as SQL identifiers); passwords come from the environment, which the
//! StatefulSet fills from the credentials Secret, so none is written into a
//! ConfigMap.

use crate::api::DatabaseSpec;

/// Directory the official image runs first-start scripts from.
pub const INIT_DIR: &str = "/docker-entrypoint-initdb.d";
/// File name of the init script; it sorts before the restore script.
pub const INIT_SCRIPT: &str = "10-webtoon-init.sh";

/// Environment variable holding the application user's password.
pub const APP_PASSWORD_ENV: &str = "WEBTOON_DB_PASSWORD";
/// Environment variable holding the backup user's password.
pub const BACKUP_PASSWORD_ENV: &str = "WEBTOON_DB_BACKUP_PASSWORD";
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

/// `10-webtoon-init.sh`.
pub fn init_script(spec: &DatabaseSpec) -> String {
    let db = &spec.name;
    let user = &spec.user;
    let backup = backup_user(spec);
    format!(
        r#"#!/bin/bash
# Rendered by webtoon-operator. Runs once, on an empty data directory.
set -euo pipefail
for var in {ROOT_PASSWORD_ENV} {APP_PASSWORD_ENV} {BACKUP_PASSWORD_ENV}; do
  if [ -z "${{!var:-}}" ]; then
    echo "webtoon-init: $var is empty: the credentials Secret is missing a key" >&2
    exit 1
  fi
done
# A password as an SQL string literal, whatever characters it holds.
sql_string() {{
  local s=$1
  s=${{s//\\/\\\\}}
  s=${{s//\'/\'\'}}
  printf "'%s'" "$s"
}}
MYSQL_PWD="${ROOT_PASSWORD_ENV}" mariadb --protocol=socket --user=root <<SQL
CREATE DATABASE IF NOT EXISTS \`{db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY $(sql_string "${APP_PASSWORD_ENV}");
GRANT {APP_PRIVILEGES} ON \`{db}\`.* TO '{user}'@'%';
CREATE USER IF NOT EXISTS '{backup}'@'%' IDENTIFIED BY $(sql_string "${BACKUP_PASSWORD_ENV}");
GRANT {BACKUP_PRIVILEGES} ON \`{db}\`.* TO '{backup}'@'%';
-- Dumping routines reads their bodies from mysql.proc before MariaDB 11.3.
GRANT SELECT ON mysql.proc TO '{backup}'@'%';
SQL
echo "webtoon-init: created database {db}, user {user} and backup user {backup}"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_the_application_database_only() {
        let script = init_script(&DatabaseSpec::default());
        assert!(script.contains("GRANT SELECT, INSERT"));
        assert!(script.contains("ON \\`webtoon\\`.* TO 'webtoon'@'%';"));
        assert!(script.contains("TO 'webtoon_backup'@'%';"));
        assert!(!script.contains("*.*"), "no global privilege");
        assert!(!script.contains("ALL PRIVILEGES"));
        assert!(!script.contains("GRANT OPTION"));
    }
}
