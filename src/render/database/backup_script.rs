//! The backup script the backup CronJob runs in the database image. Everything it
//! needs comes from the environment the CronJob sets, so the same script runs
//! unchanged against any server: a consistent dump, compressed, written under a
//! temporary name, checked, renamed when complete, described, then the oldest
//! pruned.
//!
//! The description (`<dump>.json`) holds per table the row count and `CHECKSUM
//! TABLE` of exactly the data in the dump, even while the site writes: `mariadb-dump
//! --single-transaction` reads its own snapshot, so the script takes a second
//! snapshot at the same instant and computes the facts in it. One connection locks
//! every base table for reading (writers wait), a second starts its snapshot, the
//! dump starts and takes its own; as soon as the dump's output shows that its
//! snapshot exists, the lock goes. No transaction can commit to these tables while
//! the lock is held, so both snapshots see the same rows, and writes wait only for
//! that moment. The lock is taken with `NOWAIT` and retried: it never waits while
//! an open transaction uses a table, so writers never queue behind it and it can
//! never be half of a deadlock. `CHECKSUM TABLE` inside a `REPEATABLE READ`
//! snapshot reads the snapshot's rows (InnoDB's consistent read; the tests prove it
//! against rows committed after the snapshot). Tables of engines without
//! transactions (MyISAM, Aria) have no snapshot: their facts are as of the moment
//! they are read after the dump, exact only if nothing wrote to them meanwhile.

use crate::backup::description::{DESCRIPTION_FORMAT, DESCRIPTION_SUFFIX};
use crate::backup::report::REPORT_FILE_ENV;

/// File name of the backup script in its ConfigMap.
pub const BACKUP_SCRIPT: &str = "backup.sh";
/// Environment variable: directory of the backup files.
pub const BACKUP_DIR_ENV: &str = "WEBTOON_BACKUP_DIR";
/// Environment variable: how many of the newest backups to keep.
pub const BACKUP_KEEP_ENV: &str = "WEBTOON_BACKUP_KEEP";
/// Environment variable: the file name the backup must get, chosen by the operator for a backup taken before a database migration; absent means the current UTC time names it.
pub const BACKUP_NAME_ENV: &str = "WEBTOON_BACKUP_NAME";
/// Environment variable: where the backups are kept as the report names it (`volume:<claim>`); absent means `volume:<backup directory>`.
pub const BACKUP_LOCATION_ENV: &str = "WEBTOON_BACKUP_LOCATION";
/// The line the dump tool writes last; a dump without it was cut short.
pub const DUMP_COMPLETE_MARK: &str = "-- Dump completed";
/// Seconds the backup keeps trying to lock the tables for reading. Each attempt
/// fails at once if a table is in use by an open transaction, so the site's writers
/// never queue behind a waiting lock, and a lock that holds some tables while it
/// waits for others can never deadlock with a transaction that wants them.
pub const LOCK_ATTEMPT_SECONDS: u32 = 30;
/// Seconds the backup waits for the database to answer before it dumps anything.
pub const CONNECT_WAIT_SECONDS: u32 = 30;
/// Seconds the backup waits, with the tables locked, for the dump to take its
/// snapshot before it fails: the longest a backup can hold the site's writes.
pub const SNAPSHOT_WAIT_SECONDS: u32 = 10;

/// Shell lines that stop the script through its `fail` function, naming the
/// variable, when any of `vars` is unset or empty.
pub(super) fn require_env(vars: &[&str]) -> String {
    format!(
        "for var in {}; do\n  if [ -z \"${{!var:-}}\" ]; then fail \"$var is not set\"; fi\ndone\n",
        vars.join(" ")
    )
}

/// Shell functions for client connections kept open across steps of a script: a
/// `mariadb` client fed through one FIFO and read through another, so that one
/// connection can hold a lock or a snapshot while other work goes on. Each
/// statement batch ends with a marker query whose row tells where its output ends;
/// the client stops at the first error, so a failed batch ends its output early.
pub(super) const SESSIONS: &str = r#"session_dir=$(mktemp -d)
session_fds=()
session_pids=()
session_done=webtoon-session-done
# session_open NAME CLIENT...: connects; ${NAME}_in and ${NAME}_out hold its descriptors.
session_open() {
  local name=$1 in out
  shift
  rm -f -- "$session_dir/$name.in" "$session_dir/$name.out"
  mkfifo -- "$session_dir/$name.in" "$session_dir/$name.out"
  (
    session_detach
    exec "$@" --batch --skip-column-names --unbuffered \
      <"$session_dir/$name.in" >"$session_dir/$name.out" 2>"$session_dir/$name.err"
  ) &
  session_pids+=("$!")
  exec {in}>"$session_dir/$name.in" {out}<"$session_dir/$name.out"
  session_fds+=("$in" "$out")
  printf -v "${name}_in" %s "$in"
  printf -v "${name}_out" %s "$out"
}
# session_query NAME SQL: runs SQL (statements ending in ;) and prints the rows they return.
session_query() {
  local in=${1}_in out=${1}_out line
  # A client that has stopped fails the write instead of killing the script.
  trap '' PIPE
  printf '%s\nSELECT '\''%s'\'';\n' "$2" "$session_done" 1>&"${!in}" 2>/dev/null || true
  trap - PIPE
  while IFS= read -r -u "${!out}" line; do
    if [ "$line" = "$session_done" ]; then return 0; fi
    printf '%s\n' "$line"
  done
  return 1
}
# session_error NAME: the client's last error.
session_error() {
  grep '^ERROR' "$session_dir/$1.err" | tail -n 1 || tail -n 1 "$session_dir/$1.err"
}
# session_end NAME: closes the connection.
session_end() {
  local in=${1}_in out=${1}_out
  eval "exec ${!in}>&- ${!out}<&-"
}
# Children must not hold a session's FIFO open, or its client would outlive the script.
session_detach() {
  local fd
  for fd in "${session_fds[@]}"; do eval "exec $fd>&-"; done
}
session_close_all() {
  local pid
  session_detach
  for pid in "${session_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf -- "$session_dir"
}
"#;

/// Shell function `table_facts SESSION`: leaves in the session's `@facts` a JSON
/// array of every base table of its current database (name, rows, checksum) and
/// prints how many there are. Names travel as hex and are quoted by the server, so
/// any name is safe; `CHECKSUM TABLE`'s value is its row's last field, which batch
/// output keeps free of tabs.
pub(super) const TABLE_FACTS: &str = r#"table_facts() {
  local hexes h line sum count=0
  hexes=$(session_query "$1" "SET @facts = JSON_ARRAY();
SELECT HEX(table_name) FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY BINARY table_name;") || return 1
  for h in $hexes; do
    line=$(session_query "$1" "SET @t = CONVERT(UNHEX('$h') USING utf8mb4);
SET @q = CONCAT('\`', REPLACE(@t, '\`', '\`\`'), '\`');
EXECUTE IMMEDIATE CONCAT('SELECT COUNT(*) INTO @n FROM ', @q);
EXECUTE IMMEDIATE CONCAT('CHECKSUM TABLE ', @q);") || return 1
    sum=${line##*$'\t'}
    case $sum in NULL) ;; '' | *[!0-9]*) return 1 ;; esac
    session_query "$1" "SET @facts = JSON_ARRAY_APPEND(@facts, '\$', JSON_OBJECT('name', @t, 'rows', CAST(@n AS UNSIGNED), 'checksum', $sum));" >/dev/null || return 1
    count=$((count + 1))
  done
  echo "$count"
}
"#;

/// Shell functions `json_string TEXT` (TEXT as a JSON string: valid UTF-8, control
/// characters as spaces, at most 1500 bytes, so that a report stays well inside a
/// termination message's 4096) and `unhex HEX` (the bytes HEX spells).
pub(super) const TEXT_FUNCTIONS: &str = r#"json_string() {
  local s
  s=$(printf '%s' "$1" | head -c 1500 | { iconv -f UTF-8 -t UTF-8 -c 2>/dev/null || true; } | tr '\000-\037' ' ')
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}
unhex() {
  printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')"
}
"#;

/// Shell function `newest_backup DIR [described]`: the newest backup file in DIR by
/// the UTC time in its name, whichever database it came from; with `described`, the
/// newest that has a description.
pub(super) fn newest_backup_function() -> String {
    format!(
        r#"newest_backup() {{
  find "$1" -maxdepth 1 -type f -name '*-*Z.sql.gz' -printf '%f\n' \
    | awk -F- '{{print $NF "\t" $0}}' | LC_ALL=C sort | cut -f 2 \
    | while IFS= read -r n; do
        if [ "${{2:-}}" != described ] || [ -f "$1/$n{DESCRIPTION_SUFFIX}" ]; then echo "$n"; fi
      done | tail -n 1
}}
"#
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
///
/// The dump is renamed into place first and its description after it: the
/// description is the commit record, and a dump without one is no backup. Pruning
/// keeps the newest `keep` described backups, deleting each description before its
/// dump; once `keep` of them exist it also removes dumps without a description that
/// are older than the oldest kept (a run that died between its two renames), while
/// newer ones may be a run still writing its description. With [`REPORT_FILE_ENV`]
/// set, the outcome is also written there as one JSON line (`Report::Backup`).
pub fn backup_script() -> String {
    let required = require_env(&[
        "WEBTOON_DB_HOST",
        "WEBTOON_DB_PORT",
        "WEBTOON_DB_NAME",
        "WEBTOON_DB_USER",
        "WEBTOON_DB_PASSWORD",
        BACKUP_DIR_ENV,
        BACKUP_KEEP_ENV,
    ]);
    format!(
        r#"#!/bin/bash
# Rendered by webtoon-operator.
set -euo pipefail
where=''
failure=''
name=''
report=${{{REPORT_FILE_ENV}:-}}
{TEXT_FUNCTIONS}{SESSIONS}{TABLE_FACTS}# write_report RESULT FIELDS: the outcome as one JSON line, when a report file is set.
write_report() {{
  if [ -n "$report" ]; then printf '{{"kind":"backup","result":"%s"%s}}\n' "$1" "$2" >"$report"; fi
}}
fail() {{
  failure="$where$1"
  echo "backup failed: $failure" >&2
  exit 1
}}
finish() {{
  local status=$? fields=''
  session_close_all
  rm -f -- "${{partial:-}}" "${{described_partial:-}}"
  if [ "$status" -ne 0 ]; then
    if [ -z "$failure" ]; then failure="${{where}}stopped with status $status"; fi
    if [ -n "$name" ]; then fields=",\"name\":$(json_string "$name")"; fi
    write_report failed "$fields,\"message\":$(json_string "$failure")"
  fi
}}
trap finish EXIT
# snapshot_watch SIGNAL: passes the dump through and writes to the FIFO SIGNAL once
# the dump has provably taken its snapshot: mariadb-dump starts its transaction
# before it writes anything about a table, a routine or an event, or ends.
snapshot_watch() {{
  local line
  while :; do
    if ! IFS= read -r line; then
      printf '%s' "$line"
      break
    fi
    printf '%s\n' "$line"
    case $line in
      '-- Table structure'* | '-- Temporary table structure'* | '-- Dumping'* | '{DUMP_COMPLETE_MARK}'*) break ;;
    esac
  done
  echo taken 1<>"$1"
  exec cat
}}
{required}db=$WEBTOON_DB_NAME
dir=${BACKUP_DIR_ENV}
keep=${BACKUP_KEEP_ENV}
case $keep in ''|*[!0-9]*|0) fail "{BACKUP_KEEP_ENV} must be a positive number" ;; esac
umask 077
started=$(date -u +%s)
requested=${{{BACKUP_NAME_ENV}:-}}
if [ -n "$requested" ]; then
  # The database prefix compared literally, the time and suffix by pattern.
  stamp=${{requested#"$db"-}}
  shape='^[0-9]{{8}}T[0-9]{{6}}Z\.sql\.gz$'
  if [ "$stamp" = "$requested" ] || ! [[ $stamp =~ $shape ]]; then
    fail "{BACKUP_NAME_ENV} must be $db-YYYYMMDDTHHMMSSZ.sql.gz, not '$requested'"
  fi
  name=$requested
else
  name="$db-$(date -u +%Y%m%dT%H%M%SZ).sql.gz"
fi
where="database=$db file=$name: "
described="$dir/$name{DESCRIPTION_SUFFIX}"
if [ -e "$dir/$name" ] || [ -e "$described" ]; then fail "a backup with this name already exists"; fi
partial="$dir/.$name.partial"
described_partial="$dir/.$name{DESCRIPTION_SUFFIX}.partial"
# The password travels in the environment, never on a command line.
export MYSQL_PWD=$WEBTOON_DB_PASSWORD
client=(mariadb --host="$WEBTOON_DB_HOST" --port="$WEBTOON_DB_PORT" --user="$WEBTOON_DB_USER"
  --default-character-set=utf8mb4 --database="$db")
# A new pod's first packets can leave before the node has programmed its
# NetworkPolicy (kube-router takes about a second), and the database may be
# restarting: wait up to {CONNECT_WAIT_SECONDS} s for it to answer before the dump begins.
connect_deadline=$(( $(date -u +%s) + {CONNECT_WAIT_SECONDS} ))
until connect_error=$("${{client[@]}}" --connect-timeout=2 -e 'SELECT 1' 2>&1 >/dev/null); do
  [ "$(date -u +%s)" -lt "$connect_deadline" ] || fail "cannot connect: $connect_error"
  sleep 1
done
session_open snapshot "${{client[@]}}"
# The snapshot stays open for the whole dump, as mariadb-dump's own does.
session_query snapshot "SET SESSION max_statement_time = 0, SESSION wait_timeout = 28800;" >/dev/null \
  || fail "cannot connect: $(session_error snapshot)"
# NOWAIT: a table in use by an open transaction fails the attempt at once (and
# ends its connection), so the lock never waits while it holds other tables.
lock_attempts=0
lock_deadline=$(( $(date -u +%s) + {LOCK_ATTEMPT_SECONDS} ))
while :; do
  lock_attempts=$((lock_attempts + 1))
  session_open lock "${{client[@]}}"
  lock_started=$(date -u +%s%N)
  if session_query lock "SET SESSION max_statement_time = 0;
SELECT GROUP_CONCAT(CONCAT('\`', REPLACE(table_name, '\`', '\`\`'), '\` READ') SEPARATOR ', ') INTO @locks
FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE';
EXECUTE IMMEDIATE IF(@locks IS NULL, 'DO 0', CONCAT('LOCK TABLES ', @locks, ' NOWAIT'));" >/dev/null; then
    break
  fi
  session_end lock
  lock_error=$(session_error lock)
  case $lock_error in
    'ERROR 1205 '*) ;;
    *) fail "cannot lock the tables for reading: $lock_error" ;;
  esac
  if [ "$(date -u +%s)" -ge "$lock_deadline" ]; then
    fail "cannot lock the tables for reading: in {LOCK_ATTEMPT_SECONDS} seconds ($lock_attempts attempts) there was no moment without a transaction open on one of them"
  fi
  sleep 0.05
done
session_query snapshot "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ;
START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY;" >/dev/null \
  || fail "cannot start a snapshot: $(session_error snapshot)"
time=$(date -u +%Y-%m-%dT%H:%M:%SZ)
dump_started=$(date -u +%s)
mkfifo -- "$session_dir/dump" "$session_dir/snapshot"
exec {{snapshot_fd}}<>"$session_dir/snapshot"
(
  session_detach
  exec {{snapshot_fd}}>&-
  exec mariadb-dump \
    --host="$WEBTOON_DB_HOST" --port="$WEBTOON_DB_PORT" --user="$WEBTOON_DB_USER" \
    --single-transaction --routines --events --triggers --no-tablespaces --hex-blob \
    --default-character-set=utf8mb4 --skip-dump-date \
    -- "$db" >"$session_dir/dump" 2>"$session_dir/dump.err"
) &
dump_pid=$!
(
  session_detach
  exec {{snapshot_fd}}>&-
  snapshot_watch "$session_dir/snapshot" <"$session_dir/dump" | gzip -6 >"$partial"
) &
pack_pid=$!
if ! read -r -t {SNAPSHOT_WAIT_SECONDS} -u "$snapshot_fd" _; then
  kill "$dump_pid" 2>/dev/null || true
  fail "mariadb-dump did not take its snapshot within {SNAPSHOT_WAIT_SECONDS} seconds"
fi
session_query lock "UNLOCK TABLES;" >/dev/null || fail "cannot unlock the tables: $(session_error lock)"
lock_ms=$(( ($(date -u +%s%N) - lock_started) / 1000000 ))
session_end lock
dump_status=0
wait "$dump_pid" || dump_status=$?
cat -- "$session_dir/dump.err" >&2
if [ "$dump_status" -ne 0 ]; then
  fail "mariadb-dump exited with an error: $(tail -n 1 "$session_dir/dump.err")"
fi
wait "$pack_pid" || fail "compressing the dump failed"
dump_seconds=$(( $(date -u +%s) - dump_started ))
gzip -t "$partial" || fail "the compressed file does not verify"
gzip -dc "$partial" | tail -n 1 | grep -q -- '^{DUMP_COMPLETE_MARK}' || fail "the dump is incomplete"
bytes=$(stat -c %s -- "$partial")
sha=$(sha256sum -- "$partial")
sha=${{sha%% *}}
# Counted and checksummed in the snapshot the dump read, so they describe its data.
tables=$(table_facts snapshot) || fail "cannot count and checksum the tables: $(session_error snapshot)"
description=$(session_query snapshot "SELECT HEX(JSON_COMPACT(JSON_OBJECT('format', '{DESCRIPTION_FORMAT}',
  'name', '$name', 'database', DATABASE(), 'time', '$time', 'bytes', $bytes, 'sha256', '$sha',
  'seconds', $dump_seconds, 'server', VERSION(), 'tables', JSON_EXTRACT(@facts, '\$'))));
COMMIT;") || fail "cannot write the description: $(session_error snapshot)"
session_end snapshot
printf '%s\n' "$(unhex "$description")" >"$described_partial"
sync -- "$partial" "$described_partial"
mv -- "$partial" "$dir/$name"
mv -- "$described_partial" "$described"
# Prune by name, which is time order; only files this script writes are considered.
mapfile -t dumps < <(find "$dir" -maxdepth 1 -type f -name "$db-*Z.sql.gz" -printf '%f\n' | LC_ALL=C sort)
kept=()
for dump in "${{dumps[@]}}"; do
  if [ -f "$dir/$dump{DESCRIPTION_SUFFIX}" ]; then kept+=("$dump"); fi
done
pruned=0
while [ "${{#kept[@]}}" -gt "$keep" ]; do
  rm -f -- "$dir/${{kept[0]}}{DESCRIPTION_SUFFIX}"
  rm -f -- "$dir/${{kept[0]}}"
  kept=("${{kept[@]:1}}")
  pruned=$((pruned + 1))
done
leftovers=0
if [ "${{#kept[@]}}" -eq "$keep" ]; then
  for dump in "${{dumps[@]}}"; do
    if [ "$dump" = "${{kept[0]}}" ]; then break; fi
    if [ -f "$dir/$dump" ] && [ ! -f "$dir/$dump{DESCRIPTION_SUFFIX}" ]; then
      rm -f -- "$dir/$dump"
      leftovers=$((leftovers + 1))
    fi
  done
fi
[ -f "$described" ] || fail "pruning removed it: $keep newer backups exist"
seconds=$(( $(date -u +%s) - started ))
location="${{{BACKUP_LOCATION_ENV}:-volume:$dir}}/$name"
write_report ok ",\"name\":\"$name\",\"time\":\"$time\",\"bytes\":$bytes,\"sha256\":\"$sha\",\"tables\":$tables,\"seconds\":$seconds,\"location\":$(json_string "$location")"
echo "backup ok: database=$db file=$name bytes=$bytes tables=$tables seconds=$seconds lock_ms=$lock_ms lock_attempts=$lock_attempts kept=${{#kept[@]}} pruned=$pruned leftovers=$leftovers"
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
        let dump = script.find("exec mariadb-dump").expect("dump");
        assert!(read < check && check < exists && exists < dump);
        assert!(
            script.contains(r"shape='^[0-9]{8}T[0-9]{6}Z\.sql\.gz$'"),
            "{script}"
        );
        assert!(script.contains("stamp=${requested#\"$db\"-}"));
        assert!(script.contains("fail \"WEBTOON_BACKUP_NAME must be $db-YYYYMMDDTHHMMSSZ.sql.gz"));
        assert!(script.contains("fail \"WEBTOON_BACKUP_KEEP must be a positive number\""));
    }

    #[test]
    fn the_lock_covers_the_snapshots_and_the_description_commits_the_backup() {
        let script = backup_script();
        let at = |part: &str| {
            script
                .find(part)
                .unwrap_or_else(|| panic!("missing {part}"))
        };
        let lock = at("CONCAT('LOCK TABLES ', @locks, ' NOWAIT')");
        let snapshot = at("START TRANSACTION WITH CONSISTENT SNAPSHOT");
        let dump = at("exec mariadb-dump");
        let unlock = at("session_query lock \"UNLOCK TABLES;\"");
        let facts = at("tables=$(table_facts snapshot)");
        let dump_in_place = at("mv -- \"$partial\" \"$dir/$name\"");
        let description_in_place = at("mv -- \"$described_partial\" \"$described\"");
        assert!(lock < snapshot && snapshot < dump && dump < unlock && unlock < facts);
        assert!(facts < dump_in_place && dump_in_place < description_in_place);
        assert!(script.contains(&format!("read -r -t {SNAPSHOT_WAIT_SECONDS} -u")));
        // Pruning deletes the commit record before the data.
        let description_gone = at("rm -f -- \"$dir/${kept[0]}.json\"");
        let dump_gone = at("rm -f -- \"$dir/${kept[0]}\"\n");
        assert!(description_gone < dump_gone);
    }
}
