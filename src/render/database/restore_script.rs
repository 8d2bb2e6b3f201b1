//! The restore script: loads one backup into the new, empty application database.
//!
//! It runs as a first-start step of the database itself (a second script in
//! `/docker-entrypoint-initdb.d`, after the init script), not as a separate Job.
//! The official image runs these scripts only on an empty data directory and while
//! its temporary server listens on the socket alone, so no WAS can connect until the
//! restore has finished: the readiness probe cannot pass, and the headless Service
//! publishes no address for the database. A Job would instead race the WAS, need a
//! second gate in every WAS pod, and could restore twice or over live data. The
//! script checks the whole file before loading anything, and a marker file in the
//! data directory, removed only after a complete load, keeps the pod unready if a
//! load is cut short: a restarted server skips the init scripts, so without it a
//! half-restored database would serve.

use super::backup_script::{
    BACKUP_DIR_ENV, DUMP_COMPLETE_MARK, SESSIONS, TABLE_FACTS, TEXT_FUNCTIONS,
    newest_backup_function, require_env,
};
use super::init_script::ROOT_PASSWORD_ENV;
use super::verify_script::description_functions;
use crate::backup::description::DESCRIPTION_SUFFIX;

/// File name of the restore script; it sorts after the init script.
pub const RESTORE_SCRIPT: &str = "20-webtoon-restore.sh";
/// Environment variable: `latest`, or the file name of one backup.
pub const RESTORE_FROM_ENV: &str = "WEBTOON_RESTORE_FROM";
/// Environment variable: the marker file that exists while a restore is incomplete.
pub const RESTORE_MARKER_ENV: &str = "WEBTOON_RESTORE_MARKER";
/// The marker inside the database container: on the data volume, so it outlives a
/// restart of the container.
pub const RESTORE_MARKER: &str = "/var/lib/mysql/.webtoon-restore-incomplete";

/// `20-webtoon-restore.sh`. `latest` is the newest described backup, or, when no
/// backup has a description (all taken before descriptions existed), the newest
/// backup. A backup with a description must match it in size and SHA-256 before
/// anything is loaded, and every table loaded must match it in rows and checksum
/// after; a backup without one is checked by gzip and its final line alone, and the
/// log says so.
pub fn restore_script() -> String {
    let required = require_env(&[
        ROOT_PASSWORD_ENV,
        "WEBTOON_DB_NAME",
        BACKUP_DIR_ENV,
        RESTORE_FROM_ENV,
        RESTORE_MARKER_ENV,
    ]);
    let newest_backup = newest_backup_function();
    let description = description_functions();
    format!(
        r#"#!/bin/bash
# Rendered by webtoon-operator. Runs once, on an empty data directory, after the init script.
set -euo pipefail
where=''
fail() {{
  echo "restore failed: $where$1" >&2
  exit 1
}}
{TEXT_FUNCTIONS}{SESSIONS}{TABLE_FACTS}{newest_backup}{description}trap session_close_all EXIT
{required}db=$WEBTOON_DB_NAME
dir=${BACKUP_DIR_ENV}
from=${RESTORE_FROM_ENV}
where="database=$db from=$from: "
touch -- "${RESTORE_MARKER_ENV}"
if [ "$from" = latest ]; then
  name=$(newest_backup "$dir" described)
  if [ -z "$name" ]; then name=$(newest_backup "$dir"); fi
  [ -n "$name" ] || fail "no backup in $dir"
else
  name=$from
fi
file="$dir/$name"
[ -f "$file" ] || fail "$file does not exist"
# The password travels in the environment, never on a command line.
export MYSQL_PWD="${ROOT_PASSWORD_ENV}"
root=(mariadb --protocol=socket --user=root)
described=no
if [ -f "$file{DESCRIPTION_SUFFIX}" ]; then
  described=yes
  session_open restore "${{root[@]}}" --default-character-set=utf8mb4 --database="$db"
  problem=$(description_problem restore "$file") || fail "cannot read the description of $name: $(session_error restore)"
  [ -z "$problem" ] || fail "$problem: it is not loaded"
else
  echo "restore: $name has no description (taken before backups were described): checked by gzip and its final line only"
fi
# Check the whole file before loading any of it: a corrupt or cut-short dump is
# refused, never half loaded.
gzip -t -- "$file" || fail "$name does not decompress: the file is corrupt"
gzip -dc -- "$file" | tail -n 1 | grep -q -- '^{DUMP_COMPLETE_MARK}' || fail "$name is incomplete: it lacks the dump's final line"
started=$(date -u +%s)
gzip -dc -- "$file" | "${{root[@]}}" --max-allowed-packet=1G -- "$db" \
  || fail "loading $name exited with an error"
tables=''
if [ "$described" = yes ]; then
  count=$(table_facts restore) || fail "cannot count and checksum the restored tables: $(session_error restore)"
  line=$(table_differences restore "the restored database") || fail "cannot compare the tables: $(session_error restore)"
  differences=${{line%%$'\t'*}}
  if [ "$differences" != 0 ]; then
    message=$(unhex "${{line#*$'\t'}}")
    if [ "$differences" -gt 1 ]; then message="$message (and $((differences - 1)) more tables differ)"; fi
    fail "$name does not restore to what its description says: $message"
  fi
  tables=" tables=$count"
fi
rm -f -- "${RESTORE_MARKER_ENV}"
echo "restore ok: database=$db file=$name bytes=$(stat -c %s "$file") seconds=$(( $(date -u +%s) - started )) described=$described$tables"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_before_loading_and_clears_the_marker_last() {
        let script = restore_script();
        let at = |part: &str| {
            script
                .find(part)
                .unwrap_or_else(|| panic!("missing {part}"))
        };
        let described = at("problem=$(description_problem restore \"$file\")");
        let verify = at("gzip -t");
        let load = at("gzip -dc -- \"$file\" | \"${root[@]}\"");
        let compare = at("line=$(table_differences restore");
        let clear = at("rm -f -- \"$WEBTOON_RESTORE_MARKER\"");
        assert!(described < verify && verify < load && load < compare && compare < clear);
    }
}
