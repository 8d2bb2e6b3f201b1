#!/bin/bash
# The entrypoint of the local node's MariaDB image, a stand-in for the official
# `mariadb` image: the same environment variables and first-start steps the
# operator relies on (e2e/node/IMAGE-CONTRACT.md), for a non-root server on a
# read-only root filesystem.
#
# Empty data directory: install the system tables, start a server on the socket
# alone, secure root with MARIADB_ROOT_PASSWORD (only at MARIADB_ROOT_HOST), create
# the healthcheck account, MARIADB_DATABASE and MARIADB_USER, run
# /docker-entrypoint-initdb.d/* in name order (*.sh executed when executable, else
# sourced; *.sql, *.sql.gz piped to the client as root), stop that server. Then, and
# on every later start, exec mariadbd. With MARIADB_AUTO_UPGRADE set, a data
# directory of another server version is upgraded first.
set -euo pipefail

note() { echo "entrypoint: $*" >&2; }
die() {
  note "$*"
  exit 1
}

# `docker run IMAGE --option` means the server with that option.
if [ "${1:0:1}" = - ]; then set -- mariadbd "$@"; fi
case ${1:-} in
  mariadbd | mysqld) ;;
  *) exec "$@" ;;
esac
shift

# The official image reads MYSQL_* names too; MARIADB_* wins.
for name in ROOT_PASSWORD ROOT_HOST ALLOW_EMPTY_ROOT_PASSWORD RANDOM_ROOT_PASSWORD DATABASE USER PASSWORD; do
  mariadb_var=MARIADB_$name
  mysql_var=MYSQL_$name
  if [ -z "${!mariadb_var:-}" ] && [ -n "${!mysql_var:-}" ]; then
    printf -v "$mariadb_var" '%s' "${!mysql_var}"
  fi
done

# The server's own view of its options, with the command line's, as it will run.
option() {
  local name=$1 value=$2 line
  shift 2
  while IFS= read -r line; do
    case $line in --"$name"=*) value=${line#--"$name"=} ;; esac
  done < <(my_print_defaults --mysqld 2>/dev/null; printf '%s\n' "$@")
  printf '%s' "$value"
}
datadir=$(option datadir /var/lib/mysql "$@")
socket=$(option socket /run/mysqld/mysqld.sock "$@")

sql_string() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\'/\'\'}
  printf "'%s'" "$s"
}

temp_server_pid=
root_password=
# A server for the first-start steps: no network, so no client but the scripts here
# reaches it and the readiness probe (healthcheck.sh --connect) cannot pass.
temp_server_start() {
  mariadbd "$@" --skip-networking --socket="$socket" --skip-slave-start \
    --loose-innodb-buffer-pool-load-at-startup=0 --loose-innodb-buffer-pool-dump-at-shutdown=0 \
    --expire-logs-days=0 --default-time-zone=SYSTEM &
  temp_server_pid=$!
  local tries=0
  until temp_sql <<<'SELECT 1' >/dev/null 2>&1; do
    kill -0 "$temp_server_pid" 2>/dev/null || die "the server for the first-start steps stopped"
    tries=$((tries + 1))
    [ "$tries" -lt 600 ] || die "the server for the first-start steps did not answer within 60 seconds"
    sleep 0.1
  done
}
temp_server_stop() {
  kill -TERM "$temp_server_pid"
  wait "$temp_server_pid" || die "the server for the first-start steps did not stop cleanly"
  temp_server_pid=
}
# SQL on standard input, as root over the socket.
temp_sql() {
  MYSQL_PWD=$root_password mariadb --no-defaults --protocol=socket --socket="$socket" \
    --user=root --batch --skip-column-names "$@"
}

initialize() {
  if [ -z "${MARIADB_ROOT_PASSWORD:-}" ] && [ -z "${MARIADB_ALLOW_EMPTY_ROOT_PASSWORD:-}" ] &&
    [ -z "${MARIADB_RANDOM_ROOT_PASSWORD:-}" ]; then
    die "the data directory $datadir is empty and no root password is set: set MARIADB_ROOT_PASSWORD (or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD, MARIADB_RANDOM_ROOT_PASSWORD)"
  fi
  note "initializing $datadir"
  # --force: accounts name addresses, so the host name need not resolve.
  mariadb-install-db --datadir="$datadir" --skip-test-db --auth-root-authentication-method=normal \
    --skip-name-resolve --force "$@" >&2 || die "mariadb-install-db failed"
  temp_server_start "$@"

  local password=${MARIADB_ROOT_PASSWORD:-}
  if [ -n "${MARIADB_RANDOM_ROOT_PASSWORD:-}" ]; then
    password=$(head -c 24 /dev/urandom | base64)
    note "GENERATED ROOT PASSWORD: $password"
  fi
  local root_host=${MARIADB_ROOT_HOST:-%}
  local health_password
  health_password=$(head -c 24 /dev/urandom | base64)
  {
    # Root only at localhost and MARIADB_ROOT_HOST; no anonymous accounts.
    echo "SET @@SESSION.SQL_LOG_BIN = 0;"
    temp_sql <<<"SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.global_priv WHERE User = '' OR (User = 'root' AND Host <> 'localhost')" |
      while IFS= read -r account; do echo "DROP USER IF EXISTS $account;"; done
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $(sql_string "$password");"
    if [ "$root_host" != localhost ]; then
      echo "CREATE USER 'root'@$(sql_string "$root_host") IDENTIFIED BY $(sql_string "$password");"
      echo "GRANT ALL ON *.* TO 'root'@$(sql_string "$root_host") WITH GRANT OPTION;"
      echo "GRANT PROXY ON ''@'%' TO 'root'@$(sql_string "$root_host") WITH GRANT OPTION;"
    fi
    # healthcheck.sh logs in as this account, with no privilege beyond USAGE.
    local host
    for host in localhost 127.0.0.1 ::1; do
      echo "CREATE USER 'healthcheck'@'$host' IDENTIFIED BY $(sql_string "$health_password");"
    done
    if [ -n "${MARIADB_DATABASE:-}" ]; then
      echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
    fi
    if [ -n "${MARIADB_USER:-}" ]; then
      [ -n "${MARIADB_PASSWORD:-}" ] || die "MARIADB_USER is set without MARIADB_PASSWORD"
      echo "CREATE USER $(sql_string "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_string "$MARIADB_PASSWORD");"
      if [ -n "${MARIADB_DATABASE:-}" ]; then
        echo "GRANT ALL ON \`${MARIADB_DATABASE//\`/\`\`}\`.* TO $(sql_string "$MARIADB_USER")@'%';"
      fi
    fi
  } | temp_sql || die "securing root and creating the accounts failed"
  root_password=$password
  (
    umask 077
    printf '[mariadb-client]\nuser=healthcheck\npassword=%s\nsocket=%s\n' \
      "$health_password" "$socket" >"$datadir/.my-healthcheck.cnf"
  )

  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case $f in
      *.sh)
        if [ -x "$f" ]; then
          note "running $f"
          "$f"
        else
          note "sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql) note "loading $f"; temp_sql --database="${MARIADB_DATABASE:-}" <"$f" ;;
      *.sql.gz) note "loading $f"; gzip -dc -- "$f" | temp_sql --database="${MARIADB_DATABASE:-}" ;;
      *) note "ignoring $f" ;;
    esac
  done
  temp_server_stop
  note "$datadir is initialized"
}

# A data directory of another server version gets its system tables upgraded.
upgrade_if_needed() {
  local running installed=''
  running=$(mariadbd --version | sed -n 's/.*Ver \([0-9][0-9.]*\).*/\1/p')
  if [ -r "$datadir/mysql_upgrade_info" ]; then
    installed=$(sed -n 's/^\([0-9][0-9.]*\).*/\1/p' "$datadir/mysql_upgrade_info")
  fi
  [ "$installed" != "$running" ] || return 0
  note "upgrading $datadir from ${installed:-an unknown version} to $running"
  root_password=${MARIADB_ROOT_PASSWORD:-}
  temp_server_start "$@"
  MYSQL_PWD=$root_password mariadb-upgrade --no-defaults --protocol=socket --socket="$socket" \
    --user=root --upgrade-system-tables >&2 || die "mariadb-upgrade failed"
  temp_server_stop
}

if [ ! -d "$datadir/mysql" ]; then
  initialize "$@"
elif [ -n "${MARIADB_AUTO_UPGRADE:-}" ]; then
  upgrade_if_needed "$@"
fi
exec mariadbd "$@"
