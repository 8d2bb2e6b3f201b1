#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go modules pinned beside this script,
# each into .tools/<module>-<version>/, and builds nothing that is already there.
# Prints one line per tool: NAME=PATH. The Go toolchain comes through the module
# proxy when a module asks for a newer one than the machine's (GOTOOLCHAIN=auto).
#
#   e2e/tools/build.sh [kubernetes|kubernetes-oldest|etcd|kwok|actionlint|helm|prometheus|versitygw
#                       |nginx-exporter|nginxlog-exporter|mysqld-exporter|redis-exporter
#                       |kubernetes-node|kube-router|coredns ...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export GOTOOLCHAIN="${GOTOOLCHAIN_OVERRIDE:-auto}"
export GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export CGO_ENABLED=0

version_of() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }

# The file a tool package builds to: its last path element, as `go build` names it
# (a major-version suffix such as /v3 is skipped), except etcd's, whose main package
# is the root of its server module.
binary_name() {
  local name="$1"
  [[ "$name" =~ /v[0-9]+$ ]] && name="${name%/v*}"
  name="$(basename "$name")"
  [ "$1" = go.etcd.io/etcd/server/v3 ] && name=etcd
  echo "$name"
}

# Builds the tool packages of module $1 into $2 with extra -ldflags $3, unless every
# binary is already there.
build() {
  local module="$1" out="$2" ldflags="$3" missing=0 pkg
  local -a pkgs
  mapfile -t pkgs < <(cd "$here/$module" && go list -f '{{.ImportPath}}' tool)
  for pkg in "${pkgs[@]}"; do
    [ -x "$out/$(binary_name "$pkg")" ] || missing=1
  done
  if [ "$missing" = 1 ]; then
    echo "building ${pkgs[*]} into $out" >&2
    local start=$SECONDS
    rm -rf "$out.partial"
    mkdir -p "$out.partial"
    for pkg in "${pkgs[@]}"; do
      (cd "$here/$module" &&
        go build -ldflags "-s -w $ldflags" -o "$out.partial/$(binary_name "$pkg")" "$pkg")
    done
    rm -rf "$out" && mv "$out.partial" "$out"
    echo "built $module in $((SECONDS - start)) s" >&2
  fi
  for pkg in "${pkgs[@]}"; do
    echo "$(binary_name "$pkg")=$out/$(binary_name "$pkg")"
  done
}

kubernetes_ldflags() {
  local version="$1" minor
  minor="${version#v1.}"
  minor="${minor%%.*}"
  local flags="" pkg
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(kubernetes kubernetes-oldest etcd kwok actionlint helm prometheus versitygw
  nginx-exporter nginxlog-exporter mysqld-exporter redis-exporter)
for tool in "${tools[@]}"; do
  case "$tool" in
    kubernetes | kubernetes-oldest)
      v="$(version_of "$tool" k8s.io/kubernetes)"
      build "$tool" "$root/.tools/kubernetes-$v" "$(kubernetes_ldflags "$v")" |
        sed "s/^/${tool//-/_}_/" ;;
    kubernetes-node)
      # kubelet and kube-proxy, for the real node only: the KWOK cluster needs neither.
      v="$(version_of kubernetes-node k8s.io/kubernetes)"
      build kubernetes-node "$root/.tools/kubernetes-node-$v" "$(kubernetes_ldflags "$v")" ;;
    kube-router)
      v="$(version_of kube-router github.com/cloudnativelabs/kube-router/v2)"
      build kube-router "$root/.tools/kube-router-$v" \
        "-X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$v" ;;
    coredns)
      v="$(version_of coredns github.com/coredns/coredns)"
      build coredns "$root/.tools/coredns-$v" "" ;;
    etcd)
      v="$(version_of etcd go.etcd.io/etcd/server/v3)"
      build etcd "$root/.tools/etcd-$v" "-X go.etcd.io/etcd/api/v3/version.GitSHA=$v" ;;
    kwok)
      v="$(version_of kwok sigs.k8s.io/kwok)"
      build kwok "$root/.tools/kwok-$v" "" ;;
    actionlint)
      v="$(version_of actionlint github.com/rhysd/actionlint)"
      build actionlint "$root/.tools/actionlint-$v" \
        "-X github.com/rhysd/actionlint.version=$v" ;;
    helm)
      v="$(version_of helm helm.sh/helm/v4)"
      build helm "$root/.tools/helm-$v" \
        "-X helm.sh/helm/v4/internal/version.version=$v -X helm.sh/helm/v4/internal/version.gitTreeState=clean" ;;
    prometheus)
      v="$(version_of prometheus github.com/prometheus/prometheus)"
      build prometheus "$root/.tools/prometheus-$v" \
        "-X github.com/prometheus/common/version.Version=$v" ;;
    versitygw)
      v="$(version_of versitygw github.com/versity/versitygw)"
      build versitygw "$root/.tools/versitygw-$v" "-X main.Version=$v" ;;
    nginx-exporter)
      v="$(version_of nginx-exporter github.com/nginx/nginx-prometheus-exporter)"
      build nginx-exporter "$root/.tools/nginx-prometheus-exporter-$v" \
        "-X github.com/prometheus/common/version.Version=${v#v}" ;;
    nginxlog-exporter)
      v="$(version_of nginxlog-exporter github.com/martin-helmich/prometheus-nginxlog-exporter)"
      build nginxlog-exporter "$root/.tools/prometheus-nginxlog-exporter-$v" "-X main.version=$v" ;;
    mysqld-exporter)
      v="$(version_of mysqld-exporter github.com/prometheus/mysqld_exporter)"
      build mysqld-exporter "$root/.tools/mysqld_exporter-$v" \
        "-X github.com/prometheus/common/version.Version=${v#v}" ;;
    redis-exporter)
      v="$(version_of redis-exporter github.com/oliver006/redis_exporter)"
      build redis-exporter "$root/.tools/redis_exporter-$v" "-X main.BuildVersion=${v#v}" ;;
    *) echo "unknown tool $tool" >&2; exit 2 ;;
  esac
done
