//! The backup script the backup CronJob runs in the database image. Everything it
//! needs comes from the environment the CronJob sets, so the same script runs
//! unchanged against any server: a consistent dump, compressed, written under a
//! temporary name, checked, renamed when complete, then the oldest pruned.

/// File name of the backup script in its ConfigMap.
pub const BACKUP_SCRIPT: &str = "backup.sh";
/// Environment variable: directory of the backup files.
pub const BACKUP_DIR_ENV: &str = "WEBTOON_BACKUP_DIR";
/// Environment variable: how many of the newest backups to keep.
pub const BACKUP_KEEP_ENV: &str = "WEBTOON_BACKUP_KEEP";
/// Environment variable: the file name the backup must get, chosen by the operator for a backup taken before a database migration; absent means the current UTC time names it.
pub const BACKUP_NAME_ENV: &str = "WEBTOON_BACKUP_NAME";
/// The line the dump tool writes last; a dump without it was cut short.
pub const DUMP_COMPLETE_MARK: &str = "-- Dump completed";

/// Shell lines that stop the `script` (`backup`, `restore`) with a message naming
/// the variable when any of `vars` is unset or empty.
pub(super) fn require_env(script: &str, vars: &[&str]) -> String {
    format!(
        "for var in {}; do\n  if [ -z \"${{!var:-}}\" ]; then\n    echo \"{script} failed: $var is not set\" >&2\n    exit 1\n  fi\ndone\n",
        vars.join(" ")
    )
}

/// `backup.sh`. Backup files are named `<database>-<UTC time>.sql.gz`
/// (`webtoon-20261201T030000Z.sql.gz`), so that name order is time order. The
/// name is the current UTC time unless [`BACKUP_NAME_ENV`] is set and non-empty:
/// then it is exactly that name, which must have the same shape
/// (`<database>-YYYYMMDDTHHMMSSZ.sql.gz`, nothing else: no directory, no other
/// database) or the script fails before writing anything. Either way an existing
/// file of that name is never overwritten, so a retried run fails instead, and a
/// run whose own file the pruning removed (because `keep` newer backups exist)
/// fails rather than report a backup that is gone.
pub fn backup_script() -> String {
    let required = require_env(
        "backup",
        &[
            "WEBTOON_DB_HOST",
            "WEBTOON_DB_PORT",
            "WEBTOON_DB_NAME",
            "WEBTOON_DB_USER",
            "WEBTOON_DB_PASSWORD",
            BACKUP_DIR_ENV,
            BACKUP_KEEP_ENV,
        ],
    );
    format!(
        r#"#!/bin/bash
# Rendered by webtoon-operator.
set -euo pipefail
{required}db=$WEBTOON_DB_NAME
dir=${BACKUP_DIR_ENV}
keep=${BACKUP_KEEP_ENV}
case $keep in ''|*[!0-9]*|0) echo "backup failed: {BACKUP_KEEP_ENV} must be a positive number" >&2; exit 1 ;; esac
umask 077
started=$(date -u +%s)
requested=${{{BACKUP_NAME_ENV}:-}}
if [ -n "$requested" ]; then
  # The database prefix compared literally, the time and suffix by pattern.
  stamp=${{requested#"$db"-}}
  shape='^[0-9]{{8}}T[0-9]{{6}}Z\.sql\.gz$'
  if [ "$stamp" = "$requested" ] || ! [[ $stamp =~ $shape ]]; then
    echo "backup failed: {BACKUP_NAME_ENV} must be $db-YYYYMMDDTHHMMSSZ.sql.gz, not '$requested'" >&2
    exit 1
  fi
  name=$requested
else
  name="$db-$(date -u +%Y%m%dT%H%M%SZ).sql.gz"
fi
partial="$dir/.$name.partial"
trap 'rm -f "$partial"' EXIT
fail() {{
  echo "backup failed: database=$db file=$name: $1" >&2
  exit 1
}}
if [ -e "$dir/$name" ]; then fail "a backup with this name already exists"; fi
# The password travels in the environment, never on a command line.
MYSQL_PWD=$WEBTOON_DB_PASSWORD mariadb-dump \
  --host="$WEBTOON_DB_HOST" --port="$WEBTOON_DB_PORT" --user="$WEBTOON_DB_USER" \
  --single-transaction --routines --events --triggers --no-tablespaces --hex-blob \
  --default-character-set=utf8mb4 --skip-dump-date \
  -- "$db" | gzip -6 > "$partial" || fail "mariadb-dump or gzip exited with an error"
gzip -t "$partial" || fail "the compressed file does not verify"
gzip -dc "$partial" | tail -n 1 | grep -q -- '^{DUMP_COMPLETE_MARK}' || fail "the dump is incomplete"
mv -- "$partial" "$dir/$name"
# Prune by name, which is time order; only files this script writes are considered.
mapfile -t backups < <(find "$dir" -maxdepth 1 -type f -name "$db-*Z.sql.gz" -printf '%f\n' | sort)
pruned=0
while [ "${{#backups[@]}}" -gt "$keep" ]; do
  rm -f -- "$dir/${{backups[0]}}"
  backups=("${{backups[@]:1}}")
  pruned=$((pruned + 1))
done
[ -f "$dir/$name" ] || fail "pruning removed it: $keep newer backups exist"
echo "backup ok: database=$db file=$name bytes=$(stat -c %s "$dir/$name") seconds=$(( $(date -u +%s) - started )) kept=${{#backups[@]}} pruned=$pruned"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_is_consistent_complete_and_written_atomically() {
        let script = backup_script();
        for part in [
            "--single-transaction",
            "--routines",
            "--events",
            "--triggers",
            "gzip -t \"$partial\"",
            "mv -- \"$partial\" \"$dir/$name\"",
            "set -euo pipefail",
        ] {
            assert!(script.contains(part), "missing {part}");
        }
        assert!(
            !script.contains("--password"),
            "no password on a command line"
        );
    }

    #[test]
    fn a_requested_name_is_checked_before_it_is_used() {
        let script = backup_script();
        let read = script
            .find("requested=${WEBTOON_BACKUP_NAME:-}")
            .expect("reads the requested name, empty when unset");
        let check = script
            .find("[[ $stamp =~ $shape ]]")
            .expect("checks its shape");
        let exists = script
            .find("a backup with this name already exists")
            .expect("never overwrites");
        let dump = script.find("mariadb-dump").expect("dump");
        assert!(read < check && check < exists && exists < dump);
        assert!(
            script.contains(r"shape='^[0-9]{8}T[0-9]{6}Z\.sql\.gz$'"),
            "{script}"
        );
        assert!(script.contains("stamp=${requested#\"$db\"-}"));
        assert!(
            script
                .contains("backup failed: WEBTOON_BACKUP_NAME must be $db-YYYYMMDDTHHMMSSZ.sql.gz")
        );
        assert!(script.contains("backup failed: WEBTOON_BACKUP_KEEP must be a positive number"));
    }
}
