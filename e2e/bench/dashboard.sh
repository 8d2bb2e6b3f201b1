#!/usr/bin/env bash
# The chart's dashboard as a picture, from the metrics of a real load test: renders a
# stack with `spec.monitoring` (e2e/bench/local_stack.py turns the rendered
# configuration into one that runs on 127.0.0.1), starts what it describes (nginx with
# its syslog access log, two demo WAS processes, MariaDB, Redis) and the four
# exporters with the rendered arguments, a Prometheus that scrapes them with the
# target labels the stack's PodMonitor gives (namespace, stack, tier, pod), and drives
# bounded wrk load through nginx while it takes the WAS away and back:
#
#   warm-up     5 minutes of the load below, not drawn: what the dashboard's 5-minute
#               rates need
#   steady      2 minutes: both WAS processes serve; a second Redis client fills the
#               cache past its maxMemory (8 MiB here), so Redis evicts (until both WAS
#               are down)
#   one WAS down  2 minutes: nginx retries the requests the dead one refuses on the other
#   both down   2 minutes: every attempt fails, clients get 502
#   recovered   5 minutes: both serve again, and the outage leaves the 5-minute window
#
# The operator's own gauges (replicas against the autoscaler's bounds, a sale
# schedule, backup ages) come from the operator reconciling the same stack, with
# autoscaling, a schedule in force during the test and backups every minute, on the
# local cluster (e2e/local-cluster.sh, KWOK nodes; the backup pods' reports are the
# cluster's KWOK stand-ins). Prometheus scrapes it too, keeping its labels.
#
# Then e2e/bench/render_dashboard.py draws the dashboard's per-stack row from that
# Prometheus.
#
#   e2e/bench/dashboard.sh [OUT.png]      default charts/webtoon-operator/dashboard.png
#   WEBTOON_DASHBOARD_PHASE_SECONDS=30 WEBTOON_DASHBOARD_WINDOW_SECONDS=30 \
#     e2e/bench/dashboard.sh /tmp/d.png     a quicker run (the default takes 17 min)
#   WEBTOON_DASHBOARD_KEEP=1 e2e/bench/dashboard.sh     keeps its directory and logs
#
# Everything listens on 127.0.0.1 and everything it starts is stopped when it ends.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="$(realpath -m "${1:-charts/webtoon-operator/dashboard.png}")"
phase="${WEBTOON_DASHBOARD_PHASE_SECONDS:-120}"
# The dashboard's rates and quantiles look 5 minutes back: the picture starts once
# that much load has been scraped, and the recovery lasts as long, so that the
# outage leaves the window before the picture ends.
window="${WEBTOON_DASHBOARD_WINDOW_SECONDS:-300}"
log() { echo "[dashboard.sh] $*" >&2; }

for tool in wrk mariadbd mariadb-install-db mariadb redis-server redis-benchmark curl openssl python3; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "$tool is missing: apt-get install wrk mariadb-server mariadb-client redis-server curl python3-venv" >&2
    exit 1
  }
done

# Tools: Prometheus, the exporters and nginx built into .tools/; the operator and the
# demo WAS by cargo; the renderer's Python packages in a venv under .tools/.
log "building the tools (once)"
tool_path() { sed -n "s/^$1=//p"; }
prometheus="${WEBTOON_PROMETHEUS:-$(e2e/tools/build.sh prometheus | tool_path prometheus)}"
if [ -z "$prometheus" ] || [ ! -x "$prometheus" ]; then
  echo "no prometheus binary: e2e/tools/build.sh prometheus must build cmd/prometheus (or set WEBTOON_PROMETHEUS)" >&2
  exit 1
fi
exporters="$(e2e/tools/build.sh nginx-exporter nginxlog-exporter mysqld-exporter redis-exporter)"
nginx_exporter="$(tool_path nginx-prometheus-exporter <<<"$exporters")"
access_log_exporter="$(tool_path prometheus-nginxlog-exporter <<<"$exporters")"
mysqld_exporter="$(tool_path mysqld_exporter <<<"$exporters")"
redis_exporter="$(tool_path redis_exporter <<<"$exporters")"
nginx="$(tests/build-nginx.sh)"
kubectl="$(e2e/tools/build.sh kubernetes | tool_path kubernetes_kubectl)"
cargo build --quiet --bin webtoon-operator --example demo-was
operator="$root/target/debug/webtoon-operator"
was="$root/target/debug/examples/demo-was"
venv="$root/.tools/dashboard-venv"
if ! cmp -s e2e/bench/requirements.txt "$venv/requirements.installed"; then
  log "installing $(tr '\n' ' ' < e2e/bench/requirements.txt)into $venv"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r e2e/bench/requirements.txt
  cp e2e/bench/requirements.txt "$venv/requirements.installed"
fi
python="$venv/bin/python"

work="$(mktemp -d /tmp/webtoon-dashboard.XXXXXX)"
pids=()
cluster_dir="$work/cluster"
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  WEBTOON_CLUSTER_DIR="$cluster_dir" e2e/local-cluster.sh down >/dev/null 2>&1 || true
  if [ -n "${WEBTOON_DASHBOARD_KEEP:-}" ]; then
    log "kept $work (configurations, logs, Prometheus's data)"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Starts "$@" in the background with its output in $work/logs/NAME.log.
start() {
  local name="$1"
  shift
  "$@" >"$work/logs/$name.log" 2>&1 &
  pids+=("$!")
}
# Runs "$@" with its output in $work/logs/NAME.log, shown if it fails.
run() {
  local name="$1"
  shift
  "$@" >"$work/logs/$name.log" 2>&1 || {
    echo "$name failed:" >&2
    tail -n 20 "$work/logs/$name.log" >&2
    return 1
  }
}
# Waits up to 60 s for a command to succeed.
wait_for() {
  local what="$1" i
  shift
  for i in $(seq 120); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "$what did not come up; its logs:" >&2
  tail -n 20 "$work"/logs/*.log >&2 || true
  exit 1
}
# NAME=VALUE lines of a file, as `env` arguments.
env_of() { mapfile -t env_args < <(grep . "$1" || true); }
# A free port below the ephemeral range (as in tests/common/listen_port.rs): a port
# bind(0) handed out can become the local end of the load's own connections.
free_port() {
  python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(1000):
    port = random.randrange(21000, min(low, 30000))
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
else:
    raise SystemExit("no free port in 21000-29999 on 127.0.0.1")
PY
}
mkdir -p "$work/logs"
# nginx's workers run as nobody when started by root: they must reach the images and
# the cache below $work, and nothing else of it.
chmod 0711 "$work"

namespace=webtoon
stack=toon
cat >"$work/stack.yaml" <<EOF
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: $stack, namespace: $namespace}
spec:
  hosts: [toon.example]
  # One client address drives the load: no rate limit.
  proxy: {rateLimit: {enabled: false}}
  was: {image: registry.example/toon/was:1.0.0}
  cache: {maxMemory: 8Mi}
  monitoring: {}
EOF
"$operator" render -f "$work/stack.yaml" >"$work/render.yaml"

declare -A port
for name in http health syslog access_log nginx_exporter mysqld_exporter redis_exporter database cache was1 was2 prometheus operator; do
  port[$name]="$(free_port)"
done
cat >"$work/ports.json" <<EOF
{"http": ${port[http]}, "health": ${port[health]}, "syslog": ${port[syslog]},
 "access_log": ${port[access_log]}, "nginx_exporter": ${port[nginx_exporter]},
 "mysqld_exporter": ${port[mysqld_exporter]}, "redis_exporter": ${port[redis_exporter]},
 "database": ${port[database]}, "cache": ${port[cache]}, "was": [${port[was1]}, ${port[was2]}]}
EOF
secret() { openssl rand -hex 16; }
(umask 077 && : >"$work/passwords.json")
cat >"$work/passwords.json" <<EOF
{"database-root-password": "$(secret)", "database-password": "$(secret)",
 "database-backup-password": "$(secret)", "database-monitor-password": "$(secret)",
 "cache-password": "$(secret)", "cache-monitor-password": "$(secret)"}
EOF
"$python" e2e/bench/local_stack.py "$work/render.yaml" "$work/stack" "$work/ports.json" "$work/passwords.json"
cmd="$work/stack/cmd"

log "starting MariaDB, Redis, the WAS and nginx"
db="$work/stack/database"
run install-db mariadb-install-db --defaults-file="$db/my.cnf" --user="$(id -un)" --skip-test-db
start mariadb /usr/sbin/mariadbd --defaults-file="$db/my.cnf" --user="$(id -un)"
wait_for MariaDB mariadb --socket="$db/mysqld.sock" -uroot -e 'SELECT 1'
# The rendered init script, as the image's entrypoint runs it (root over the socket);
# its `mariadb` finds this server's socket through the options file.
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec %s --defaults-extra-file=%s "$@"\n' "$(command -v mariadb)" "$db/my.cnf" >"$work/bin/mariadb"
chmod +x "$work/bin/mariadb"
env_of "$cmd/mariadb.env"
run init env "${env_args[@]}" PATH="$work/bin:$PATH" bash "$db/10-webtoon-init.sh"

env_of "$cmd/redis.env"
start redis env "${env_args[@]}" sh "$work/stack/cache/start.sh"
cache_password="$(sed -n 's/^REDIS_PASSWORD=//p' "$cmd/redis.env")"
wait_for Redis redis-cli -p "${port[cache]}" --user webtoon --pass "$cache_password" --no-auth-warning ping

env_of "$cmd/was.env"
run migrate env "${env_args[@]}" "$was" migrate
db_password="$(sed -n 's/^WEBTOON_DB_PASSWORD=//p' "$cmd/was.env")"
MYSQL_PWD="$db_password" mariadb -h127.0.0.1 -P"${port[database]}" -uwebtoon webtoon -e \
  "INSERT INTO episodes (title, image) SELECT CONCAT('Episode ', seq), CONCAT('ep1/', seq, '.png') FROM seq_1_to_120"
declare -A was_pid
start_was() {
  start "was$1" env "${env_args[@]}" WEBTOON_PORT="${port[was$1]}" "$was"
  was_pid[$1]="${pids[-1]}"
  wait_for "WAS $1" curl -fsS "http://127.0.0.1:${port[was$1]}/healthz"
}
stop_was() {
  local pid="${was_pid[$1]}" i
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  for i in "${!pids[@]}"; do
    [ "${pids[$i]}" != "$pid" ] || unset "pids[$i]"
  done
}
start_was 1
start_was 2
head -c 262144 /dev/urandom >"$work/stack/nginx/images/ep1/01.png"
# nginx opens its built-in error log under its prefix before it reads the configuration.
mkdir -p "$work/stack/nginx/logs"
start nginx "$nginx" -p "$work/stack/nginx" -c "$work/stack/nginx/nginx.conf" -g 'daemon off;'
wait_for nginx curl -fsS "http://127.0.0.1:${port[health]}/healthz"

log "starting the local cluster and the operator, for the operator's own gauges"
kubeconfig="$(WEBTOON_CLUSTER_DIR="$cluster_dir" e2e/local-cluster.sh up 2>"$work/logs/cluster.log")"
kube() { KUBECONFIG="$kubeconfig" "$kubectl" "$@"; }
"$operator" crd | kube apply --server-side --field-manager=dashboard -f - >/dev/null
kube wait --for=condition=Established crd/webtoonstacks.webtoon.io --timeout=60s >/dev/null
kube create namespace "$namespace" >/dev/null
start operator env KUBECONFIG="$kubeconfig" "$operator" run --metrics-address "127.0.0.1:${port[operator]}"
# The same stack, with a WAS autoscaler, backups and verified restores every minute,
# and the schedules given as YAML in $1.
apply_stack() {
  kube apply -f - >/dev/null <<EOF
apiVersion: webtoon.io/v1alpha1
kind: WebtoonStack
metadata: {name: $stack, namespace: $namespace}
spec:
  hosts: [toon.example]
  was:
    image: registry.example/toon/was:1.0.0
    autoscaling: {minReplicas: 2, maxReplicas: 6}
  database:
    backup:
      schedule: "* * * * *"
      timeZone: Etc/UTC
      verify: {schedule: "* * * * *"}
  scaling: {schedules: [$1]}
  monitoring: {}
EOF
}
apply_stack ""
kube -n "$namespace" wait "wts/$stack" --for=condition=Ready --timeout=180s >/dev/null

log "starting the exporters and Prometheus"
for exporter in nginx-exporter access-log-exporter mysqld-exporter redis-exporter; do
  mapfile -t args <"$cmd/$exporter.args"
  env_of "$cmd/$exporter.env"
  case "$exporter" in
    nginx-exporter) binary="$nginx_exporter" ;;
    access-log-exporter) binary="$access_log_exporter" ;;
    mysqld-exporter) binary="$mysqld_exporter" ;;
    redis-exporter) binary="$redis_exporter" ;;
  esac
  start "$exporter" env "${env_args[@]}" "$binary" "${args[@]}"
done
# The targets as the stack's PodMonitor gives them to Prometheus: one job per
# endpoint, and the pod's namespace, name and the stack and tier labels.
target() {
  local index="$1" port_name="$2" tier="$3" pod="$4" container="$5" p="$6"
  cat <<EOF
  - job_name: podMonitor/$namespace/$stack-metrics/$index
    static_configs:
      - targets: ['127.0.0.1:$p']
        labels: {namespace: $namespace, stack: $stack, tier: $tier, pod: $pod, container: $container, endpoint: $port_name}
EOF
}
{
  echo "global: {scrape_interval: 5s, evaluation_interval: 5s}"
  echo "scrape_configs:"
  target 0 metrics-nginx proxy "$stack-proxy-0" nginx-exporter "${port[nginx_exporter]}"
  target 1 metrics-access proxy "$stack-proxy-0" access-log-exporter "${port[access_log]}"
  target 2 metrics-mysqld database "$stack-database-0" mysqld-exporter "${port[mysqld_exporter]}"
  target 3 metrics-redis cache "$stack-cache-0" redis-exporter "${port[redis_exporter]}"
  # The operator's series name their own namespace and stack, as the chart's
  # monitors keep them (honorLabels).
  cat <<EOF
  - job_name: webtoon-operator
    honor_labels: true
    static_configs:
      - targets: ['127.0.0.1:${port[operator]}']
EOF
} >"$work/prometheus.yml"
start prometheus "$prometheus" --config.file="$work/prometheus.yml" \
  --storage.tsdb.path="$work/prometheus" --web.listen-address="127.0.0.1:${port[prometheus]}"
prom="http://127.0.0.1:${port[prometheus]}"
wait_for Prometheus curl -fsS "$prom/-/ready"
targets_up() {
  curl -fsS "$prom/api/v1/query?query=count(up%3D%3D1)" | grep -q '"value":\[[^]]*,"5"\]'
}
wait_for "every target up" targets_up
for metric in nginx_up mysql_up redis_up; do
  curl -fsS "$prom/api/v1/query?query=$metric" | grep -q '"value":\[[^]]*,"1"\]' || {
    echo "$metric is not 1: the exporter cannot reach its server with the rendered credentials" >&2
    tail -n 20 "$work"/logs/*exporter.log >&2
    exit 1
  }
done

# The load: 8 connections, each pausing 20-60 ms between requests (wrk's `delay`),
# over episode lists (Redis, then MariaDB), WAS work of 20-300 ms, images and a 404.
cat >"$work/load.lua" <<'EOF'
local paths = {"/episodes", "/episodes", "/work?ms=20", "/work?ms=80", "/work?ms=300",
  "/images/ep1/01.png", "/images/ep1/01.png", "/missing"}
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
delay = function()
  return math.random(20, 60)
end
EOF
load() {
  timeout $(($1 + 30)) wrk -t2 -c8 -d"$1s" -H 'Host: toon.example' -s "$work/load.lua" \
    "http://127.0.0.1:${port[http]}/" >>"$work/logs/wrk.log" 2>&1
}
# Another client writing 4 KiB values past Redis's maxMemory, bounded in rate.
fill_cache() {
  local until=$((SECONDS + $1))
  while [ "$SECONDS" -lt "$until" ]; do
    redis-benchmark -h 127.0.0.1 -p "${port[cache]}" --user webtoon -a "$cache_password" \
      -t set -d 4096 -r 1000000 -n 1500 -c 2 -q >/dev/null 2>&1 || true
    sleep 5
  done
}
events=()
phase_run() {
  local label="$1" seconds="$2" begin
  begin="$(date +%s)"
  log "$label for $seconds s"
  load "$seconds"
  events+=("{\"start\": $begin, \"end\": $(date +%s), \"label\": \"$label\"}")
}

# A sale that raises the WAS floor from the middle of the steady phase into the outage.
rfc3339() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
sale_start="$(($(date +%s) + window + phase / 2))"
apply_stack "{name: half-price-sale, start: \"$(rfc3339 "$sale_start")\", end: \"$(rfc3339 $((sale_start + phase * 2)))\", was: {minReplicas: 4}}"
fill_cache "$((window + phase * 2))" &
pids+=("$!")
log "warm-up for $window s"
load "$window"
started="$(date +%s)"
phase_run "steady: both WAS serve" "$phase"
stop_was 2
phase_run "one WAS down: nginx retries" "$phase"
stop_was 1
phase_run "both WAS down: 502" "$phase"
env_of "$cmd/was.env"
start_was 1
start_was 2
phase_run "recovered" "$window"
ended="$(date +%s)"
# One more scrape after the load.
sleep 6
printf '[%s]\n' "$(IFS=,; echo "${events[*]}")" >"$work/events.json"
grep -h -A3 '^Running\|Requests/sec' "$work/logs/wrk.log" | grep 'Requests/sec' >&2 || true

log "drawing $out"
"$python" e2e/bench/render_dashboard.py --prometheus "$prom" --namespace "$namespace" \
  --stack "$stack" --start "$started" --end "$ended" --events "$work/events.json" \
  --subtitle "Real nginx, demo WAS, MariaDB, Redis and exporters on 127.0.0.1 under wrk (8 connections), scraped every 5 s; the operator's gauges from the same stack on the local cluster." \
  --out "$out"
