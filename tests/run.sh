#!/usr/bin/env bash
# The one test command: installs what the tests need when it is missing, then runs
# every layer below the cluster (formatting, lints, unit, schema, CEL, render
# properties, the generated nginx config in a real nginx in front of test application
# servers and php-fpm driven by curl, openssl and wrk, its in-cluster upstream in
# nginx 1.28 against a stand-in cluster DNS, gixy-ng over it, the rendered MariaDB
# and Redis scripts and configuration in real servers, and backups through a real
# S3 server), then the end-to-end suite on a local cluster
# built from the Kubernetes, etcd and KWOK Go modules (the newest Kubernetes runs
# every scenario; the oldest supported API server the CRD and dry-run ones), and last
# the real-node scenarios on a cluster whose node runs real pods (containerd, runc,
# kubelet, kube-proxy, kube-router, CoreDNS), after a check of each image it runs.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
[ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
command -v mariadb-dump >/dev/null 2>&1 || need_apt+=(mariadb-client)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
compgen -G '/usr/sbin/php-fpm*' >/dev/null || need_apt+=(php-fpm)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need_apt+=(busybox)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# Debian starts these servers on install; the tests run their own instances on
# 127.0.0.1, each on its own port and in its own directory.
if command -v systemctl >/dev/null 2>&1; then
  for service in nginx mariadb redis-server 'php*-fpm'; do
    systemctl stop "$service" >/dev/null 2>&1 || true
  done
fi

# The proxy's in-cluster upstream (`server ... resolve`) needs nginx 1.27.3 or newer;
# Debian's is 1.22, so one is built from NGINX's source once and kept in .tools/.
WEBTOON_TEST_NGINX_RESOLVE="$(tests/build-nginx.sh)"
export WEBTOON_TEST_NGINX_RESOLVE

venv=.venv
# Reinstalled whenever tests/requirements.txt changes, so a tool added later reaches
# machines that already have the venv.
if ! cmp -s tests/requirements.txt "$venv/requirements.installed"; then
  echo "installing Python test tools into $venv: $(tr '\n' ' ' < tests/requirements.txt)"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt "$venv/requirements.installed"
fi
export WEBTOON_KUBERNETES_VALIDATE="$PWD/$venv/bin/kubernetes-validate"
export WEBTOON_CHECKOV="$PWD/$venv/bin/checkov"
export WEBTOON_GIXY="$PWD/$venv/bin/gixy"

# One build from a clean clone gains nothing from incremental caches, which would
# double the target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
# The machine's Go builds the local cluster; a module that asks for a newer Go brings
# its toolchain through the module proxy.
command -v go >/dev/null 2>&1 || {
  echo "installing Debian's Go"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends golang-go
}

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
(cd e2e/cluster && go vet ./...)
(cd e2e/node/pause && go vet ./...)
e2e/tools/lint-workflows.sh

# The cluster's binaries, helm and promtool, built once into .tools/ (the first build
# takes a while). The chart's tests run the real helm and promtool.
e2e/tools/build.sh >/dev/null
WEBTOON_HELM="$(e2e/tools/build.sh helm | sed -n 's/^helm=//p')"
WEBTOON_PROMTOOL="$(e2e/tools/build.sh prometheus | sed -n 's/^promtool=//p')"
# The Prometheus Operator's CRDs, for the chart's monitors and rule, from its Go module.
WEBTOON_MONITORING_CRDS="$(e2e/tools/monitoring-crds.sh)"
export WEBTOON_HELM WEBTOON_PROMTOOL WEBTOON_MONITORING_CRDS
# The S3-compatible server the object-store tests upload backups to.
WEBTOON_S3_SERVER="$(e2e/tools/build.sh versitygw | sed -n 's/^versitygw=//p')"
export WEBTOON_S3_SERVER
# The monitoring exporters, which tests/exporters.rs runs beside real nginx, MariaDB
# and Redis.
exporters="$(e2e/tools/build.sh nginx-exporter nginxlog-exporter mysqld-exporter redis-exporter)"
WEBTOON_NGINX_EXPORTER="$(sed -n 's/^nginx-prometheus-exporter=//p' <<<"$exporters")"
WEBTOON_NGINXLOG_EXPORTER="$(sed -n 's/^prometheus-nginxlog-exporter=//p' <<<"$exporters")"
WEBTOON_MYSQLD_EXPORTER="$(sed -n 's/^mysqld_exporter=//p' <<<"$exporters")"
WEBTOON_REDIS_EXPORTER="$(sed -n 's/^redis_exporter=//p' <<<"$exporters")"
export WEBTOON_NGINX_EXPORTER WEBTOON_NGINXLOG_EXPORTER WEBTOON_MYSQLD_EXPORTER WEBTOON_REDIS_EXPORTER
# The demo WAS runs as a process in its end-to-end test; its own unit tests make cargo
# build it as a test harness, so the executable is built here. The e2e suite starts
# the operator binary.
cargo build --example demo-was --bin webtoon-operator
cargo nextest run --workspace --exclude webtoon-e2e --no-fail-fast

# The end-to-end suite, on a fresh local cluster that is stopped however this ends.
export WEBTOON_CLUSTER_DIR="$PWD/.cluster-test"
oldest_dir="$PWD/.cluster-test-oldest"
node_dir="$PWD/.cluster-test-node"
stop_clusters() {
  e2e/local-cluster.sh down >/dev/null 2>&1 || true
  WEBTOON_CLUSTER_DIR="$oldest_dir" e2e/local-cluster.sh down --oldest >/dev/null 2>&1 || true
  WEBTOON_CLUSTER_DIR="$node_dir" e2e/local-cluster.sh down --node real >/dev/null 2>&1 || true
}
trap stop_clusters EXIT
stop_clusters
KUBECONFIG="$(e2e/local-cluster.sh up)"
export KUBECONFIG
oldest_kubeconfig="$(WEBTOON_CLUSTER_DIR="$oldest_dir" e2e/local-cluster.sh up --oldest)"
KUBECTL="$(e2e/tools/build.sh kubernetes | sed -n 's/^kubernetes_kubectl=//p')"
export KUBECTL
export WEBTOON_OPERATOR_BIN="$PWD/target/debug/webtoon-operator"
export WEBTOON_E2E_AUDIT_LOG="$WEBTOON_CLUSTER_DIR/audit.log"
export WEBTOON_E2E_RESTART_APISERVER="$PWD/e2e/local-cluster.sh restart kube-apiserver"
# The scenarios mostly wait on the cluster, so more run at once than there are cores;
# the one that restarts the API server runs alone, after them.
cargo nextest run -p webtoon-e2e --no-fail-fast --test-threads 4 \
  -E 'not binary(recovery) and not binary(helm_crd) and not binary(~node_)'
cargo nextest run -p webtoon-e2e --no-fail-fast -E 'binary(recovery)'
# The oldest API server runs no controllers: the scenarios that need only the API.
KUBECONFIG="$oldest_kubeconfig" cargo nextest run -p webtoon-e2e --no-fail-fast \
  -E 'binary(crd) | binary(cel_rules) | binary(dry_run)'
# The chart's own lifecycle of the CRD replaces the CRD those share: alone, after them.
KUBECONFIG="$oldest_kubeconfig" cargo nextest run -p webtoon-e2e --no-fail-fast -E 'binary(helm_crd)'

# The real node: its images checked against the contract the operator relies on
# (e2e/node/IMAGE-CONTRACT.md), then the scenarios that need real pods, one at a time
# (two cores, and the load scenario takes what it can). The KWOK clusters make way.
stop_clusters
node_kubeconfig="$(WEBTOON_CLUSTER_DIR="$node_dir" e2e/local-cluster.sh up --node real)"
e2e/node/check-images.sh "$PWD/.tools/images"
KUBECONFIG="$node_kubeconfig" WEBTOON_E2E_AUDIT_LOG="$node_dir/audit.log" \
  cargo nextest run -p webtoon-e2e --no-fail-fast --test-threads 1 -E 'binary(~node_)'
# The quickstart on the real node: the operator in a pod from its own image,
# installed by the Helm chart, and the demo site answering through a node port.
WEBTOON_CLUSTER_DIR="$node_dir" e2e/local-cluster.sh down --node real >/dev/null
WEBTOON_CLUSTER_DIR="$node_dir" e2e/quickstart.sh --node real
