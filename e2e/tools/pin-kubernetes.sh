#!/usr/bin/env bash
# Pins one Kubernetes release in a tools module: k8s.io/kubernetes requires every
# staging module (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces it with a
# path inside its own repository, which a module that depends on it cannot see. This
# reads the release's own go.mod from the module proxy and writes one replace line per
# staging module at the matching v0.Y.Z, so the list never drifts from the release.
#
#   e2e/tools/pin-kubernetes.sh v1.37.2 e2e/tools/kubernetes kube-apiserver kubectl ...
set -euo pipefail
version="$1"
module_dir="$2"
shift 2
staging_version="v0.${version#v1.}"

gomod="$(cd "$module_dir" && go mod download -json "k8s.io/kubernetes@$version" |
  sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
cd "$module_dir"
go mod edit -require="k8s.io/kubernetes@$version"
sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod" |
  while read -r staging; do
    go mod edit -replace="$staging=$staging@$staging_version"
  done
for cmd in "$@"; do
  go get -tool "k8s.io/kubernetes/cmd/$cmd@$version"
done
# A test-only dependency of an old release may be gone from the proxy; the builds
# below check that every package the binaries need resolved.
go mod tidy -e
