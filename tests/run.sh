#!/usr/bin/env bash
# The one test command: installs what the tests need when it is missing, then runs
# every layer below the cluster (formatting, lints, unit, schema, CEL, render
# properties, the generated nginx config in a real nginx in front of test application
# servers driven by curl, openssl and wrk, its in-cluster upstream in nginx 1.28
# against a stand-in cluster DNS, and the rendered MariaDB and Redis scripts
# and configuration in real servers).
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
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# Debian starts these servers on install; the tests run their own instances on
# 127.0.0.1, each on its own port and in its own directory.
if command -v systemctl >/dev/null 2>&1; then
  for service in nginx mariadb redis-server; do
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

# One build from a clean clone gains nothing from incremental caches, which would
# double the target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

cargo fmt --check
cargo clippy --all-targets -- -D warnings
# The demo WAS runs as a process in its end-to-end test; its own unit tests make cargo
# build it as a test harness, so the executable is built here.
cargo build --example demo-was
cargo nextest run --no-fail-fast
