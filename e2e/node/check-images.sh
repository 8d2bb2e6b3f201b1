#!/usr/bin/env bash
# Runs every image e2e/node/images.sh builds, without a cluster, the way the
# operator's pods run them: with runc, from the tarball's own layer, a read-only
# root, the pod's user, no capability, writable only where the operator mounts a
# volume, and each "pod" in a network namespace of its own (servers listen on the
# operator's real ports there, never on the host's addresses). The data images run
# the operator's own rendered configuration and scripts (`webtoon-operator render`).
#
#   e2e/node/check-images.sh [OUTDIR]    (default: builds into a temporary directory)
#
# Needs root (runc). Stops every container it started and removes its files.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
[ "$(id -u)" = 0 ] || { echo "check-images.sh runs containers with runc: run it as root" >&2; exit 1; }
dpkg -s python3-yaml >/dev/null 2>&1 || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends python3-yaml >&2
}

tmp="$(mktemp -d /tmp/webtoon-image-check.XXXXXX)"
run_id="webtoon-image-check-$$"
state="$tmp/runc"
containers=()
cleanup() {
  local id
  for id in "${containers[@]}"; do
    runc --root "$state" kill "$id" KILL >/dev/null 2>&1 || true
  done
  for id in "${containers[@]}"; do
    runc --root "$state" delete --force "$id" >/dev/null 2>&1 || true
  done
  wait 2>/dev/null || true
  rmdir /sys/fs/cgroup/*/"$run_id" /sys/fs/cgroup/"$run_id" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

out="${1:-$tmp/images}"
mkdir -p "$out"
images="$("$here/images.sh" "$out")"
operator_bin="${WEBTOON_OPERATOR_BIN:-$root/target/debug/webtoon-operator}"
runc spec --bundle "$tmp" && mv "$tmp/config.json" "$tmp/template.json"

failures=0
pass() { echo "ok: $*" >&2; }
fail() {
  echo "FAILED: $*" >&2
  failures=$((failures + 1))
}
# check WHAT CMD...: passes or fails WHAT by CMD's status.
check() {
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
not_grep() { ! grep "$@"; }
tarball_of() { printf '%s\n' "$images" | sed -n "s|^$1=||p"; }
ref_of() { printf '%s\n' "$images" | sed -n "s|^\\($1\\)=.*|\\1|p" | head -n 1; }

# unpack NAME REF: the image's root filesystem at $tmp/NAME/rootfs, shared by every
# container of it (read-only, so none changes it).
unpack() {
  mkdir -p "$tmp/$1/rootfs"
  python3 "$here/check_bundle.py" unpack "$(tarball_of "$2")" "$2" "$tmp/$1/rootfs" "$tmp/$1/config.json"
}

# bundle IMAGE ID OPTIONS... [-- ARGS]: a runc bundle for container ID of IMAGE.
bundle() {
  local image=$1 id=$2
  shift 2
  mkdir -p "$tmp/bundles/$id"
  python3 "$here/check_bundle.py" bundle "$tmp/template.json" "$tmp/$image/config.json" \
    "$tmp/$image/rootfs" "$tmp/bundles/$id" --cgroup "/$run_id/$id" \
    --bind "$tmp/conf/hosts:/etc/hosts:ro" "$@"
}

# start IMAGE ID OPTIONS... [-- ARGS]: runs a container in the background; its
# output goes to $tmp/ID.log.
start() {
  local image=$1 id=$2
  shift 2
  bundle "$image" "$id" "$@"
  containers+=("$run_id-$id")
  runc --root "$state" run --bundle "$tmp/bundles/$id" "$run_id-$id" \
    </dev/null >"$tmp/$id.log" 2>&1 &
  local tries=0
  until [ "$(container_status "$id")" = running ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || { cat "$tmp/$id.log" >&2; return 1; }
    sleep 0.1
  done
}

# once IMAGE ID OPTIONS... [-- ARGS]: runs a container to its end, printing its output.
once() {
  local image=$1 id=$2
  shift 2
  bundle "$image" "$id" "$@"
  containers+=("$run_id-$id")
  timeout 300 runc --root "$state" run --bundle "$tmp/bundles/$id" "$run_id-$id" </dev/null
}

container_status() {
  runc --root "$state" state "$run_id-$1" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null || echo gone
}
netns_of() {
  echo "/proc/$(runc --root "$state" state "$run_id-$1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])')/ns/net"
}
# run_in ID CMD...: runs CMD in the running container ID, as its user.
run_in() {
  local id=$1
  shift
  runc --root "$state" exec "$run_id-$id" "$@"
}
# wait_for SECONDS ID CMD...: until CMD passes in container ID.
wait_for() {
  local seconds=$1 id=$2 tries=0
  shift 2
  until run_in "$id" "$@" >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ "$tries" -lt $((seconds * 5)) ] || return 1
    [ "$(container_status "$id")" = running ] || return 1
    sleep 0.2
  done
}
# stop ID SIGNAL: signals the container and waits for it to end.
stop() {
  runc --root "$state" kill "$run_id-$1" "$2" >/dev/null 2>&1 || true
  local tries=0
  while [ "$(container_status "$1")" = running ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || return 1
    sleep 0.1
  done
}
# The env of a rendered container, with some values replaced: KEY=VALUE...
rendered_env() {
  local container=$1 line key override
  shift
  python3 "$here/check_bundle.py" env "$tmp/rendered.yaml" "$container" | while IFS= read -r line; do
    key=${line%%=*}
    for override in "$@"; do
      if [ "${override%%=*}" = "$key" ]; then line=$override; fi
    done
    printf -- '--env\n%s\n' "$line"
  done
}

# The operator's objects for a stack with a database backup and its verification.
cat >"$tmp/stack.yaml" <<'EOF'
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: check, namespace: check}
spec:
  hosts: [check.example]
  was: {image: demo-was:1.0.0, healthPath: /healthz}
  database:
    backup:
      schedule: "0 3 * * *"
      keep: 2
      storage: {size: 1Gi}
      verify: {schedule: "0 5 * * 0"}
EOF
"$operator_bin" render -f "$tmp/stack.yaml" >"$tmp/rendered.yaml"
mkdir -p "$tmp/conf/proxy" "$tmp/conf/db" "$tmp/conf/init" "$tmp/conf/backup" "$tmp/conf/cache"
python3 "$here/check_bundle.py" configmap "$tmp/rendered.yaml" check-proxy-config "$tmp/conf/proxy"
python3 "$here/check_bundle.py" configmap "$tmp/rendered.yaml" check-database-config "$tmp/conf/db"
python3 "$here/check_bundle.py" configmap "$tmp/rendered.yaml" check-database-init "$tmp/conf/init"
python3 "$here/check_bundle.py" configmap "$tmp/rendered.yaml" check-database-backup "$tmp/conf/backup"
python3 "$here/check_bundle.py" configmap "$tmp/rendered.yaml" check-cache-config "$tmp/conf/cache"
# The kubelet writes every pod's /etc/hosts: localhost and the pod's host name; here
# also the resolver the rendered nginx.conf names, which cluster DNS would answer.
resolver="$(sed -n 's/^ *resolver \([^ ;]*\).*/\1/p' "$tmp/conf/proxy/nginx.conf" | head -n 1)"
printf '127.0.0.1 localhost check %s\n' "$resolver" >"$tmp/conf/hosts"
# The init ConfigMap is mounted executable (defaultMode 0755).
chmod 755 "$tmp/conf/init"/*
# The readiness probe must fail while the first-start server runs: checked from an
# extra init script, after the operator's.
cat >"$tmp/conf/init/90-check-not-ready.sh" <<'EOF'
#!/bin/bash
if healthcheck.sh --connect; then
  echo "healthcheck.sh --connect passed while the first-start server runs" >&2
  exit 1
fi
echo "check: not ready during the first start, as expected"
EOF
chmod 755 "$tmp/conf/init/90-check-not-ready.sh"
probe_command() { python3 "$here/check_bundle.py" probe "$tmp/rendered.yaml" "$1" "$2" | xargs -0 printf '%s\n'; }

unpack pause "$(ref_of 'registry.k8s.io/pause:[^=]*')"
unpack coredns "$(ref_of 'registry.k8s.io/coredns/coredns:[^=]*')"
unpack operator "$(ref_of 'ghcr.io/webtoon-operator/webtoon-operator:[^=]*')"
unpack was demo-was:1.0.0
unpack proxy "$(ref_of 'nginxinc/nginx-unprivileged:[^=]*')"
unpack mariadb "$(ref_of 'mariadb:[^=]*')"
unpack redis "$(ref_of 'redis:[^=]*')"
unpack nettools webtoon.local/nettools:1
busybox="$tmp/nettools/rootfs/usr/bin/busybox"

# pause: reaps an orphan, and ends with 0 on SIGTERM.
start pause pause --bind "$busybox:/check/busybox:ro"
run_in pause /check/busybox sh -c '/check/busybox sleep 0.2 & exit 0'
sleep 1
# The third field of /proc/PID/stat is the state; Z is a zombie.
# shellcheck disable=SC2016 # expanded by the container's shell
if run_in pause /check/busybox sh -c 'for f in /proc/[0-9]*/stat; do /check/busybox cut -d" " -f3 "$f"; done' | grep -q Z; then
  fail "pause left a zombie"
else
  pass "pause reaps orphans"
fi
runc --root "$state" kill "$run_id-pause" TERM
check "pause exits 0 on SIGTERM" wait %%

# coredns: the image's own entrypoint as 65532, answering on its port with a
# Corefile; nettools' nslookup asks it from the same network.
mkdir -p "$tmp/conf/coredns"
printf '.:1053 {\n  bind 127.0.0.1\n  whoami\n}\n' >"$tmp/conf/coredns/Corefile"
start coredns coredns --bind "$tmp/conf/coredns:/etc/coredns:ro" -- /coredns -conf /etc/coredns/Corefile
if python3 "$here/check_bundle.py" has-xattr "$(tarball_of "$(ref_of 'registry.k8s.io/coredns/coredns:[^=]*')")" /coredns security.capability; then
  pass "coredns carries cap_net_bind_service"
else
  fail "coredns lacks its file capability"
fi
if once nettools nslookup --netns "$(netns_of coredns)" -- \
  sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do nslookup -port=1053 whoami.example 127.0.0.1 && exit 0; sleep 0.5; done; exit 1' \
  >"$tmp/nslookup.log" 2>&1; then
  pass "coredns answers as uid 65532 (nettools nslookup)"
else
  cat "$tmp/coredns.log" "$tmp/nslookup.log" >&2
  fail "coredns does not answer"
fi
stop coredns TERM || fail "coredns did not stop"

# The operator: its binary from the backup Jobs' command, as 65532.
if once operator operator-help -- /usr/local/bin/webtoon-operator --help >/dev/null &&
  once operator operator-version -- /usr/local/bin/webtoon-operator --version >"$tmp/version.log"; then
  pass "operator runs: $(head -c 200 "$tmp/version.log" | head -n 1)"
else
  fail "the operator does not run"
fi

# The proxy: the rendered nginx.conf, the rendered command, uid 101, writable only
# /tmp and /var/cache/nginx.
proxy_mounts=(--bind "$tmp/conf/proxy:/etc/nginx/webtoon:ro" --emptydir /tmp --emptydir /var/cache/nginx)
if once proxy nginx-t "${proxy_mounts[@]}" -- nginx -t -c /etc/nginx/webtoon/nginx.conf >"$tmp/nginx-t.log" 2>&1; then
  pass "nginx -t accepts the rendered nginx.conf as uid 101"
else
  cat "$tmp/nginx-t.log" >&2
  fail "nginx -t refuses the rendered nginx.conf"
fi
if grep -q 'could not open error log' "$tmp/nginx-t.log"; then fail "nginx cannot open its compiled-in error log"; fi
mapfile -t nginx_command < <(python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "Deployment" and d["metadata"]["name"] == "check-proxy":
        print("\n".join(d["spec"]["template"]["spec"]["containers"][0]["command"]))
' "$tmp/rendered.yaml")
start proxy proxy "${proxy_mounts[@]}" -- "${nginx_command[@]}"
if once nettools curl --netns "$(netns_of proxy)" -- \
  sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do curl -fsS http://127.0.0.1:8081/healthz && exit 0; sleep 0.5; done; exit 1' \
  >"$tmp/curl.log" 2>&1 &&
  once operator operator-probe --netns "$(netns_of proxy)" -- \
    /usr/local/bin/webtoon-operator probe --url http://127.0.0.1:8081/healthz >/dev/null 2>&1; then
  pass "nginx serves /healthz (nettools curl, operator probe)"
else
  cat "$tmp/proxy.log" "$tmp/curl.log" >&2
  fail "nginx does not serve /healthz"
fi
check "nginx stops on SIGQUIT" stop proxy QUIT

# MariaDB: the image's entrypoint on an empty data directory with the StatefulSet's
# env and mounts, the rendered init script, the probes, then the rendered backup
# and verify scripts in the same image.
mkdir -p "$tmp/data/mysql" "$tmp/data/backup" "$tmp/data/verify"
chown 999:999 "$tmp/data/mysql" "$tmp/data/backup"
mapfile -t db_env < <(rendered_env mariadb)
start mariadb mariadb "${db_env[@]}" --bind "$tmp/data/mysql:/var/lib/mysql" \
  --bind "$tmp/conf/db:/etc/mysql/conf.d:ro" --bind "$tmp/conf/init:/docker-entrypoint-initdb.d:ro" \
  --emptydir /run/mysqld --emptydir /tmp
mapfile -t ready_probe < <(probe_command mariadb readinessProbe)
mapfile -t live_probe < <(probe_command mariadb livenessProbe)
if wait_for 180 mariadb "${ready_probe[@]}"; then
  pass "mariadb initializes and passes its readiness probe: ${ready_probe[*]}"
  if grep -q 'check: not ready during the first start' "$tmp/mariadb.log"; then
    pass "the readiness probe fails while the first-start server runs"
  else
    fail "the not-ready check did not run"
  fi
  check "liveness probe passes: ${live_probe[*]}" run_in mariadb "${live_probe[@]}"
  check "the rendered init script ran" grep -q 'webtoon-init: database' "$tmp/mariadb.log"
  # The application user writes a table for the backup to carry.
  check "the application user writes its database over TCP" run_in mariadb env MYSQL_PWD=secret-database-password \
    mariadb --protocol=tcp -h 127.0.0.1 -u webtoon webtoon \
    -e "CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'x'), (2, 'y');"
  mapfile -t backup_env < <(rendered_env backup WEBTOON_DB_HOST=127.0.0.1 WEBTOON_REPORT_FILE=/backup/report.json)
  if once mariadb backup --user 999:999 --netns "$(netns_of mariadb)" "${backup_env[@]}" \
    --bind "$tmp/conf/backup:/opt/webtoon:ro" --bind "$tmp/data/backup:/backup" --emptydir /tmp \
    -- bash /opt/webtoon/backup.sh >"$tmp/backup.log" 2>&1; then
    pass "the rendered backup.sh runs: $(tail -n 1 "$tmp/backup.log")"
  else
    cat "$tmp/backup.log" >&2
    fail "the rendered backup.sh fails"
  fi
  mapfile -t verify_env < <(rendered_env verify WEBTOON_REPORT_FILE=)
  if once mariadb verify --user 999:999 "${verify_env[@]}" \
    --bind "$tmp/conf/backup:/opt/webtoon:ro" --bind "$tmp/data/backup:/backup:ro" \
    --emptydir /verify --emptydir /tmp -- bash /opt/webtoon/verify.sh >"$tmp/verify.log" 2>&1; then
    pass "the rendered verify.sh runs: $(tail -n 1 "$tmp/verify.log")"
  else
    cat "$tmp/verify.log" >&2
    fail "the rendered verify.sh fails"
  fi
  # The demo WAS in the database's network, as 65532: migrate, then serve.
  mapfile -t was_env < <(rendered_env was WEBTOON_DB_HOST=127.0.0.1 WEBTOON_REDIS_HOST=127.0.0.1)
  if once was migrate "${was_env[@]}" --netns "$(netns_of mariadb)" --emptydir /tmp \
    -- /usr/local/bin/demo-was migrate >"$tmp/migrate.log" 2>&1; then
    pass "demo-was migrate runs as uid 65532"
  else
    cat "$tmp/migrate.log" >&2
    fail "demo-was migrate fails"
  fi
else
  cat "$tmp/mariadb.log" >&2
  fail "mariadb never passes its readiness probe"
fi
check "mariadb stops on SIGTERM" stop mariadb TERM
check "mariadb logs no error" not_grep '\[ERROR\]' "$tmp/mariadb.log"
if [ -e "$tmp/data/mysql/mysql" ]; then
  start mariadb mariadb-again "${db_env[@]}" --bind "$tmp/data/mysql:/var/lib/mysql" \
    --bind "$tmp/conf/db:/etc/mysql/conf.d:ro" --bind "$tmp/conf/init:/docker-entrypoint-initdb.d:ro" \
    --emptydir /run/mysqld --emptydir /tmp
  if wait_for 120 mariadb-again "${ready_probe[@]}" && ! grep -q 'initializing' "$tmp/mariadb-again.log"; then
    pass "mariadb restarts on its data directory without initializing again"
  else
    cat "$tmp/mariadb-again.log" >&2
    fail "mariadb does not restart on its data directory"
  fi
  stop mariadb-again TERM || fail "mariadb did not stop"
fi

# Redis: the rendered start.sh by `sh`, uid 999, writable /data and /run/redis.
mapfile -t cache_env < <(rendered_env redis)
start redis redis "${cache_env[@]}" --bind "$tmp/conf/cache:/etc/redis:ro" \
  --emptydir /run/redis --emptydir /data --emptydir /tmp -- sh /etc/redis/start.sh
mapfile -t cache_probe < <(probe_command redis readinessProbe)
if wait_for 30 redis "${cache_probe[@]}"; then
  pass "redis passes its readiness probe: ${cache_probe[*]}"
else
  cat "$tmp/redis.log" >&2
  fail "redis never passes its readiness probe"
fi
check "redis stops on SIGTERM" stop redis TERM

if [ "$failures" -gt 0 ]; then
  echo "$failures image checks failed" >&2
  exit 1
fi
echo "every image check passed" >&2
