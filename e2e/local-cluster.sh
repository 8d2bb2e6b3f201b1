#!/usr/bin/env bash
# The local cluster: builds what it needs (once, into .tools/), then starts, shows,
# restarts or stops it. The newest Kubernetes runs in .cluster/ with controllers,
# a scheduler and KWOK nodes; `--node real` replaces KWOK with one real node of this
# machine (containerd, runc, CNI, kubelet, kube-proxy, kube-router's firewall and
# CoreDNS, with images built by e2e/node/images.sh; needs root) in .cluster-node/;
# `--oldest` starts the oldest supported API server alone in .cluster-oldest/, for
# the CRD and dry-run scenarios.
#
#   e2e/local-cluster.sh up [--oldest | --node real] [--nodes N]   prints the kubeconfig's path
#   e2e/local-cluster.sh status|down [--oldest | --node real]
#   e2e/local-cluster.sh restart kube-apiserver [--oldest]
#
# WEBTOON_CLUSTER_DIR puts the cluster in another directory, to run two at once.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command="${1:-}"
[ -n "$command" ] || { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift

flavour=kubernetes
node=kwok
dir="${WEBTOON_CLUSTER_DIR:-$root/.cluster}"
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --oldest) flavour=kubernetes-oldest; dir="${WEBTOON_CLUSTER_DIR:-$root/.cluster-oldest}" ;;
    --node) node="${2:?--node needs kwok or real}"; shift ;;
    --node=*) node="${1#--node=}" ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ "$node" = real ]; then
  dir="${WEBTOON_CLUSTER_DIR:-$root/.cluster-node}"
fi

cluster_bin="$root/.tools/bin/webtoon-cluster"
if [ "$command" = up ]; then
  declare -A tool
  if [ "$node" = real ]; then
    wanted=(kubernetes etcd kubernetes-node kube-router coredns)
  elif [ "$flavour" = kubernetes ]; then
    wanted=(kubernetes etcd kwok)
  else
    wanted=(kubernetes-oldest etcd)
  fi
  while IFS='=' read -r name path; do tool[$name]="$path"; done \
    < <("$root/e2e/tools/build.sh" "${wanted[@]}")
  # The cluster program is ours and small: rebuilt from the cache on every start.
  (cd "$root/e2e/cluster" && CGO_ENABLED=0 go build -trimpath -o "$cluster_bin" .)
  key="${flavour//-/_}_kube-apiserver"
  up_args=(--dir "$dir" --kubernetes "$(dirname "${tool[$key]}")" --etcd "${tool[etcd]}")
  if [ "$node" = real ]; then
    need_apt=()
    for pkg in containerd runc containernetworking-plugins iptables ipset conntrack; do
      dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
    done
    if [ ${#need_apt[@]} -gt 0 ]; then
      echo "installing Debian packages for the real node: ${need_apt[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
    fi
    # The node's images hold the operator and the demo WAS as they are built now.
    (cd "$root" && cargo build --quiet --bin webtoon-operator --example demo-was) >&2
    mkdir -p "$root/.tools/images"
    WEBTOON_COREDNS_BIN="${tool[coredns]}" "$root/e2e/node/images.sh" "$root/.tools/images" \
      > "$root/.tools/images/list"
    up_args+=(--node real --node-binaries "$(dirname "${tool[kubelet]}")"
      --kube-router "${tool[kube-router]}" --images "$root/.tools/images/list")
  elif [ "$flavour" = kubernetes ]; then
    up_args+=(--kwok "${tool[kwok]}")
  else
    up_args+=(--control-plane-only)
  fi
  exec "$cluster_bin" up "${up_args[@]}" "${args[@]}"
fi
[ -x "$cluster_bin" ] || { echo "no cluster has been started here: run $0 up" >&2; exit 1; }
exec "$cluster_bin" "$command" --dir "$dir" "${args[@]}"
