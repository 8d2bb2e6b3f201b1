#!/usr/bin/env bash
# The local cluster: builds what it needs (once, into .tools/), then starts, shows,
# restarts or stops it. The newest Kubernetes runs in .cluster/ with controllers,
# a scheduler and KWOK nodes; `--oldest` starts the oldest supported API server
# alone in .cluster-oldest/, for the CRD and dry-run scenarios.
#
#   e2e/local-cluster.sh up [--oldest] [--nodes N]     prints the kubeconfig's path
#   e2e/local-cluster.sh status|down [--oldest]
#   e2e/local-cluster.sh restart kube-apiserver [--oldest]
#
# WEBTOON_CLUSTER_DIR puts the cluster in another directory, to run two at once.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command="${1:-}"
[ -n "$command" ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift

flavour=kubernetes
dir="${WEBTOON_CLUSTER_DIR:-$root/.cluster}"
args=()
for arg in "$@"; do
  case "$arg" in
    --oldest) flavour=kubernetes-oldest; dir="${WEBTOON_CLUSTER_DIR:-$root/.cluster-oldest}" ;;
    *) args+=("$arg") ;;
  esac
done

cluster_bin="$root/.tools/bin/webtoon-cluster"
if [ "$command" = up ]; then
  declare -A tool
  if [ "$flavour" = kubernetes ]; then wanted=(kubernetes etcd kwok); else wanted=(kubernetes-oldest etcd); fi
  while IFS='=' read -r name path; do tool[$name]="$path"; done \
    < <("$root/e2e/tools/build.sh" "${wanted[@]}")
  # The cluster program is ours and small: rebuilt from the cache on every start.
  (cd "$root/e2e/cluster" && CGO_ENABLED=0 go build -trimpath -o "$cluster_bin" .)
  key="${flavour//-/_}_kube-apiserver"
  up_args=(--dir "$dir" --kubernetes "$(dirname "${tool[$key]}")" --etcd "${tool[etcd]}")
  if [ "$flavour" = kubernetes ]; then
    up_args+=(--kwok "${tool[kwok]}")
  else
    up_args+=(--control-plane-only)
  fi
  exec "$cluster_bin" up "${up_args[@]}" "${args[@]}"
fi
[ -x "$cluster_bin" ] || { echo "no cluster has been started here: run $0 up" >&2; exit 1; }
exec "$cluster_bin" "$command" --dir "$dir" "${args[@]}"
