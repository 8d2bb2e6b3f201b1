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

use super::backup_script::{BACKUP_DIR_ENV, DUMP_COMPLETE_MARK, require_env};
use super::init_script::ROOT_PASSWORD_ENV;

/// File name of the restore script; it sorts after the init script.
pub const RESTORE_SCRIPT: &str = "20-webtoon-restore.sh";
/// Environment variable: `latest`, or the file name of one backup.
pub const RESTORE_FROM_ENV: &str = "WEBTOON_RESTORE_FROM";
/// Environment variable: the marker file that exists while a restore is incomplete.
pub const RESTORE_MARKER_ENV: &str = "WEBTOON_RESTORE_MARKER";
/// The marker inside the database container: on the data volume, so it outlives a
/// restart of the container.
pub const RESTORE_MARKER: &str = "/var/lib/mysql/.webtoon-restore-incomplete";

/// `20-webtoon-restore.sh`.
pub fn restore_script() -> String {
    let required = require_env(
        "restore",
        &[
            ROOT_PASSWORD_ENV,
            "WEBTOON_DB_NAME",
            BACKUP_DIR_ENV,
            RESTORE_FROM_ENV,
            RESTORE_MARKER_ENV,
        ],
    );
    format!(
        r#"#!/bin/bash
# Rendered by webtoon-operator. Runs once, on an empty data directory, after the init script.
set -euo pipefail
{required}db=$WEBTOON_DB_NAME
dir=${BACKUP_DIR_ENV}
from=${RESTORE_FROM_ENV}
fail() {{
  echo "restore failed: database=$db from=$from: $1" >&2
  exit 1
}}
touch -- "${RESTORE_MARKER_ENV}"
if [ "$from" = latest ]; then
  # Newest by the UTC time in the name, whichever database the backups came from.
  name=$(find "$dir" -maxdepth 1 -type f -name '*-*Z.sql.gz' -printf '%f\n' \
    | awk -F- '{{print $NF "\t" $0}}' | sort | tail -n 1 | cut -f 2)
  [ -n "$name" ] || fail "no backup in $dir"
else
  name=$from
fi
file="$dir/$name"
[ -f "$file" ] || fail "$file does not exist"
# Check the whole file before loading any of it: a corrupt or cut-short dump is
# refused, never half loaded.
gzip -t -- "$file" || fail "$name does not decompress: the file is corrupt"
gzip -dc -- "$file" | tail -n 1 | grep -q -- '^{DUMP_COMPLETE_MARK}' || fail "$name is incomplete: it lacks the dump's final line"
started=$(date -u +%s)
gzip -dc -- "$file" | MYSQL_PWD="${ROOT_PASSWORD_ENV}" mariadb --protocol=socket --user=root -- "$db" \
  || fail "loading $name exited with an error"
rm -f -- "${RESTORE_MARKER_ENV}"
echo "restore ok: database=$db file=$name bytes=$(stat -c %s "$file") seconds=$(( $(date -u +%s) - started ))"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_before_loading_and_clears_the_marker_last() {
        let script = restore_script();
        let verify = script.find("gzip -t").expect("verify");
        let load = script.find("| MYSQL_PWD").expect("load");
        let clear = script.find("rm -f --").expect("clear marker");
        assert!(verify < load && load < clear);
    }
}
