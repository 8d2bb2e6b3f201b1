//! The verify script: proves that a backup restores, by loading it into a
//! throwaway MariaDB and comparing every table with the backup's description.
//!
//! It runs in the database image (which has the server), as the image's non-root
//! user, and starts its own server inside the same container: data directory and
//! socket in a scratch directory, no network, a small buffer pool, no durability
//! (the data is thrown away). The live database is never contacted. The server is
//! stopped and its directory deleted whatever happens. The description is parsed
//! by the throwaway server's JSON functions, as the image has no other JSON tool.

use super::backup_script::{
    BACKUP_DIR_ENV, SESSIONS, TABLE_FACTS, TEXT_FUNCTIONS, newest_backup_function, require_env,
};
use crate::backup::description::{DESCRIPTION_FORMAT, DESCRIPTION_SUFFIX};
use crate::backup::report::REPORT_FILE_ENV;

/// File name of the verify script in the backup ConfigMap.
pub const VERIFY_SCRIPT: &str = "verify.sh";
/// Environment variable: `latest` (the newest described backup), or the file name of one backup.
pub const VERIFY_FROM_ENV: &str = "WEBTOON_VERIFY_FROM";
/// Environment variable: an empty, writable scratch directory for the throwaway server's data and socket.
pub const VERIFY_WORK_ENV: &str = "WEBTOON_VERIFY_WORK";
/// InnoDB buffer pool of the throwaway server: the load needs no cache to speak of.
const BUFFER_POOL: &str = "64M";
/// Largest statement the throwaway server accepts: `max_allowed_packet` of webtoon.cnf,
/// so a dump the live server could not restore does not verify either.
const MAX_PACKET: &str = "64M";
/// Seconds the throwaway server may take to start.
const START_SECONDS: u32 = 120;

/// Shell functions shared with the restore script, on a session (see
/// [`SESSIONS`]):
///
/// `description_problem SESSION DUMP` reads DUMP's description into the session's
/// `@d` and prints what is wrong with it, or how DUMP differs from it in size or
/// SHA-256; nothing when they agree.
///
/// `table_differences SESSION WHAT` compares the session's `@facts` (from
/// `table_facts`, describing WHAT) with `@d` and prints the number of tables that
/// differ, a tab, and the first difference by table name in hex.
pub(super) fn description_functions() -> String {
    let columns = |document: &str, path: &str| {
        format!(
            "JSON_TABLE({document}, '\\{path}' COLUMNS (name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin \
             PATH '\\$.name', row_count BIGINT UNSIGNED PATH '\\$.rows', checksum BIGINT UNSIGNED PATH '\\$.checksum'))"
        )
    };
    let described = columns("@d", "$.tables[*]");
    let found = columns("@facts", "$[*]");
    format!(
        r#"description_problem() {{
  local file=$2 name encoded line problem rest bytes sha actual
  name=${{file##*/}}
  if ! encoded=$(base64 -w 0 -- "$file{DESCRIPTION_SUFFIX}"); then
    echo "$name{DESCRIPTION_SUFFIX} cannot be read"
    return 0
  fi
  line=$(session_query "$1" "SET @d = CONVERT(FROM_BASE64('$encoded') USING utf8mb4);
SET @i = IF(NOT JSON_VALID(@d), 0, (SELECT COUNT(*) FROM JSON_TABLE(@d, '\$.tables[*]' COLUMNS (i FOR ORDINALITY)) t
  WHERE IFNULL(JSON_TYPE(JSON_EXTRACT(@d, CONCAT('\$.tables[', i - 1, '].name'))), '') <> 'STRING'
  OR IFNULL(JSON_TYPE(JSON_EXTRACT(@d, CONCAT('\$.tables[', i - 1, '].rows'))), '') <> 'INTEGER'
  OR JSON_VALUE(@d, CONCAT('\$.tables[', i - 1, '].rows')) LIKE '-%'
  OR IFNULL(JSON_TYPE(JSON_EXTRACT(@d, CONCAT('\$.tables[', i - 1, '].checksum'))), '') NOT IN ('INTEGER', 'NULL')));
SELECT HEX(CASE
  WHEN NOT JSON_VALID(@d) THEN 'is not valid JSON'
  WHEN NOT JSON_VALUE(@d, '\$.format') <=> '{DESCRIPTION_FORMAT}'
    THEN CONCAT('has format ', IFNULL(JSON_VALUE(@d, '\$.format'), '(none)'), ', not {DESCRIPTION_FORMAT}')
  WHEN NOT JSON_VALUE(@d, '\$.name') <=> '$name'
    THEN CONCAT('describes ', IFNULL(JSON_VALUE(@d, '\$.name'), '(no name)'), ', not $name')
  WHEN IFNULL(JSON_TYPE(JSON_EXTRACT(@d, '\$.bytes')), '') <> 'INTEGER' THEN 'has no size in bytes'
  WHEN IFNULL(JSON_VALUE(@d, '\$.sha256'), '') NOT RLIKE '^[0-9a-f]{{64}}\$' THEN 'has no SHA-256'
  WHEN IFNULL(JSON_TYPE(JSON_EXTRACT(@d, '\$.tables')), '') <> 'ARRAY' THEN 'has no list of tables'
  WHEN @i > 0 THEN CONCAT('has ', @i, IF(@i = 1, ' table', ' tables'), ' without a name, a row count or a checksum')
  ELSE '' END), JSON_VALUE(@d, '\$.bytes'), JSON_VALUE(@d, '\$.sha256');") || return 1
  problem=${{line%%$'\t'*}}
  rest=${{line#*$'\t'}}
  bytes=${{rest%%$'\t'*}}
  sha=${{rest#*$'\t'}}
  if [ -n "$problem" ]; then
    echo "$name{DESCRIPTION_SUFFIX} $(unhex "$problem")"
    return 0
  fi
  actual=$(stat -c %s -- "$file")
  if [ "$actual" != "$bytes" ]; then
    echo "$name is $actual bytes, its description says $bytes"
    return 0
  fi
  actual=$(sha256sum -- "$file")
  actual=${{actual%% *}}
  if [ "$actual" != "$sha" ]; then
    echo "$name has SHA-256 $actual, its description says $sha"
  fi
}}
table_differences() {{
  session_query "$1" "WITH differences AS (
  SELECT d.name, CASE
      WHEN f.name IS NULL THEN CONCAT('table ', d.name, ' is in the description but not in $2')
      WHEN NOT d.row_count <=> f.row_count THEN CONCAT('table ', d.name, ': ', f.row_count, ' rows, the description says ', d.row_count)
      ELSE CONCAT('table ', d.name, ': checksum ', IFNULL(f.checksum, 'NULL'),
        ', the description says ', IFNULL(d.checksum, 'NULL'))
    END AS message
  FROM {described} d LEFT JOIN {found} f ON f.name = d.name
  WHERE f.name IS NULL OR NOT d.row_count <=> f.row_count OR NOT d.checksum <=> f.checksum
  UNION ALL
  SELECT f.name, CONCAT('table ', f.name, ' is in $2 but not in the description')
  FROM {found} f LEFT JOIN {described} d ON d.name = f.name
  WHERE d.name IS NULL)
SELECT (SELECT COUNT(*) FROM differences), IFNULL((SELECT HEX(message) FROM differences ORDER BY name LIMIT 1), '');"
}}
"#
    )
}

/// `verify.sh`. Inputs: [`BACKUP_DIR_ENV`] (dumps and descriptions),
/// [`VERIFY_FROM_ENV`], [`VERIFY_WORK_ENV`], `WEBTOON_DB_NAME` (the database the
/// dump is loaded into) and, optionally, [`REPORT_FILE_ENV`], which gets one JSON
/// line (`Report::Verify`): `passed` with the load time and the number of tables,
/// or `failed` with a message naming the file, or the table and both values. A
/// backup whose description is missing or unreadable, or whose size or SHA-256
/// differs from it, is refused before anything is loaded.
pub fn verify_script() -> String {
    let required = require_env(&[
        "WEBTOON_DB_NAME",
        BACKUP_DIR_ENV,
        VERIFY_FROM_ENV,
        VERIFY_WORK_ENV,
    ]);
    let newest_backup = newest_backup_function();
    let description = description_functions();
    format!(
        r#"#!/bin/bash
# Rendered by webtoon-operator.
set -euo pipefail
where=''
failure=''
name=''
report=${{{REPORT_FILE_ENV}:-}}
{TEXT_FUNCTIONS}{SESSIONS}{TABLE_FACTS}{newest_backup}{description}# write_report RESULT FIELDS: the outcome as one JSON line, when a report file is set.
write_report() {{
  if [ -n "$report" ]; then printf '{{"kind":"verify","result":"%s"%s}}\n' "$1" "$2" >"$report"; fi
}}
fail() {{
  failure="$where$1"
  echo "verify failed: $failure" >&2
  exit 1
}}
# Whatever happens: the throwaway server stopped, its directory deleted.
finish() {{
  local status=$? fields='' waited=0
  session_close_all
  if [ -n "${{server_pid:-}}" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    while kill -0 "$server_pid" 2>/dev/null && [ "$waited" -lt 300 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "${{scratch:-}}" ]; then rm -rf -- "$scratch"; fi
  if [ "$status" -ne 0 ]; then
    if [ -z "$failure" ]; then failure="${{where}}stopped with status $status"; fi
    if [ -n "$name" ]; then fields=",\"name\":$(json_string "$name")"; fi
    write_report failed "$fields,\"message\":$(json_string "$failure")"
  fi
}}
trap finish EXIT
{required}db=$WEBTOON_DB_NAME
dir=${BACKUP_DIR_ENV}
from=${VERIFY_FROM_ENV}
work=${VERIFY_WORK_ENV}
started=$(date -u +%s)
where="database=$db from=$from: "
if [ "$from" = latest ]; then
  name=$(newest_backup "$dir" described)
  [ -n "$name" ] || fail "no described backup in $dir"
else
  if ! [[ $from =~ ^[A-Za-z0-9][A-Za-z0-9._-]*\.sql\.gz$ ]]; then
    fail "{VERIFY_FROM_ENV} must be latest or the file name of a backup"
  fi
  name=$from
fi
where="database=$db file=$name: "
file="$dir/$name"
[ -f "$file" ] || fail "$file does not exist"
[ -f "$file{DESCRIPTION_SUFFIX}" ] || fail "$name{DESCRIPTION_SUFFIX} does not exist: without its description $name is not a complete backup"
if ! [ -d "$work" ] || ! [ -w "$work" ]; then fail "{VERIFY_WORK_ENV}=$work is not a writable directory"; fi
scratch=$(mktemp -d "$work/throwaway.XXXXXX")
socket="$scratch/mysqld.sock"
[ "${{#socket}}" -lt 100 ] || fail "$socket is too long for a socket: give {VERIFY_WORK_ENV} a shorter path"
mkdir -- "$scratch/data" "$scratch/tmp"
# In a pod the script runs as the image's own user; only as root (a test) must
# the server be told that root is intended.
as_root=()
if [ "$(id -u)" -eq 0 ]; then as_root=(--user=root); fi
mariadb-install-db --no-defaults "${{as_root[@]}}" --datadir="$scratch/data" --tmpdir="$scratch/tmp" \
  --auth-root-authentication-method=normal --skip-test-db >"$scratch/install.log" 2>&1 \
  || fail "mariadb-install-db failed: $(tail -n 1 "$scratch/install.log")"
mariadbd --no-defaults "${{as_root[@]}}" --datadir="$scratch/data" --tmpdir="$scratch/tmp" \
  --socket="$socket" --pid-file="$scratch/mysqld.pid" --log-error="$scratch/error.log" \
  --skip-networking --skip-name-resolve --max-connections=8 --performance-schema=OFF \
  --event-scheduler=OFF --innodb-buffer-pool-size={BUFFER_POOL} --max-allowed-packet={MAX_PACKET} \
  --innodb-flush-log-at-trx-commit=0 --innodb-fast-shutdown=3 \
  --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
  </dev/null >/dev/null 2>&1 &
server_pid=$!
# Root over the socket, without a password: the socket is in this script's own
# directory and the server listens on nothing else.
root=(mariadb --no-defaults --socket="$socket" --user=root --default-character-set=utf8mb4)
waited=0
until "${{root[@]}}" -e 'SELECT 1' >/dev/null 2>&1; do
  kill -0 "$server_pid" 2>/dev/null || fail "the throwaway server stopped: $(tail -n 1 "$scratch/error.log")"
  [ "$waited" -lt $(({START_SECONDS} * 5)) ] || fail "the throwaway server did not start within {START_SECONDS} seconds"
  sleep 0.2
  waited=$((waited + 1))
done
session_open verify "${{root[@]}}"
problem=$(description_problem verify "$file") || fail "cannot read the description: $(session_error verify)"
[ -z "$problem" ] || fail "$problem: it is not loaded"
quoted=${{db//\`/\`\`}}
session_query verify "CREATE DATABASE \`$quoted\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; USE \`$quoted\`;" >/dev/null \
  || fail "cannot create the database: $(session_error verify)"
load_started=$(date -u +%s%N)
if ! gzip -dc -- "$file" | "${{root[@]}}" --max-allowed-packet=1G --database="$db" 2>"$scratch/load.err"; then
  cat -- "$scratch/load.err" >&2
  fail "loading $name exited with an error: $(tail -n 1 "$scratch/load.err")"
fi
load_ms=$(( ($(date -u +%s%N) - load_started) / 1000000 ))
tables=$(table_facts verify) || fail "cannot count and checksum the loaded tables: $(session_error verify)"
line=$(table_differences verify "the loaded dump") || fail "cannot compare the tables: $(session_error verify)"
differences=${{line%%$'\t'*}}
if [ "$differences" != 0 ]; then
  message=$(unhex "${{line#*$'\t'}}")
  if [ "$differences" -gt 1 ]; then message="$message (and $((differences - 1)) more tables differ)"; fi
  fail "$message"
fi
seconds=$(( $(date -u +%s) - started ))
write_report passed ",\"name\":\"$name\",\"loadSeconds\":$((load_ms / 1000)),\"tables\":$tables"
echo "verify passed: database=$db file=$name tables=$tables load_ms=$load_ms seconds=$seconds"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_the_file_before_loading_and_compares_after() {
        let script = verify_script();
        let at = |part: &str| {
            script
                .find(part)
                .unwrap_or_else(|| panic!("missing {part}"))
        };
        let trap = at("trap finish EXIT");
        let server = at("mariadbd --no-defaults");
        let check = at("problem=$(description_problem verify \"$file\")");
        let load = at("gzip -dc -- \"$file\" |");
        let compare = at("line=$(table_differences verify");
        assert!(trap < server && server < check && check < load && load < compare);
        for part in [
            "--skip-networking",
            "--event-scheduler=OFF",
            "rm -rf -- \"$scratch\"",
            "\"kind\":\"verify\"",
        ] {
            assert!(script.contains(part), "missing {part}");
        }
        assert!(!script.contains("WEBTOON_DB_HOST"), "never the live server");
    }
}
