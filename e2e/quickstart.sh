#!/usr/bin/env bash
# The quickstart on a laptop with no cluster: brings the local cluster up (building
# it the first time), installs the CRD and the operator's ClusterRole, runs the
# operator beside the cluster as a ServiceAccount bound to that role, applies
# examples/minimal.yaml and waits until `kubectl get wts` shows it Ready.
# `e2e/local-cluster.sh down` stops everything, the operator included.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

cargo build --quiet --bin webtoon-operator
operator="$root/target/debug/webtoon-operator"
kubeconfig="$(e2e/local-cluster.sh up "$@")"
kubectl="$(e2e/tools/build.sh kubernetes | sed -n 's/^kubernetes_kubectl=//p')"
export KUBECONFIG="$kubeconfig"

"$operator" crd | "$kubectl" apply --server-side --field-manager=quickstart -f - >/dev/null
"$kubectl" wait --for=condition=Established crd/webtoonstacks.webtoon.io --timeout=60s >/dev/null
"$operator" rbac | "$kubectl" apply -f - >/dev/null
"$kubectl" create namespace webtoon-system --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
"$kubectl" -n webtoon-system create serviceaccount webtoon-operator --dry-run=client -o yaml |
  "$kubectl" apply -f - >/dev/null
"$kubectl" create clusterrolebinding webtoon-operator --clusterrole=webtoon-operator \
  --serviceaccount=webtoon-system:webtoon-operator --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null

# The operator runs with exactly its ServiceAccount's rights, as it would in a pod.
operator_kubeconfig="$(dirname "$kubeconfig")/operator.kubeconfig"
token="$("$kubectl" -n webtoon-system create token webtoon-operator --duration=24h)"
"$kubectl" config view --raw --minify -o json |
  python3 -c '
import json, sys
config = json.load(sys.stdin)
cluster = config["clusters"][0]["cluster"]
print(json.dumps({
    "apiVersion": "v1", "kind": "Config",
    "clusters": [{"name": "local", "cluster": cluster}],
    "users": [{"name": "webtoon-operator", "user": {"token": sys.argv[1]}}],
    "contexts": [{"name": "local", "context": {"cluster": "local", "user": "webtoon-operator"}}],
    "current-context": "local",
}))' "$token" > "$operator_kubeconfig"
chmod 600 "$operator_kubeconfig"
"$root/.tools/bin/webtoon-cluster" attach --dir "$(dirname "$kubeconfig")" \
  --env "KUBECONFIG=$operator_kubeconfig" operator -- \
  "$operator" run --metrics-address 127.0.0.1:8080

"$kubectl" create namespace webtoon --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
"$kubectl" apply -f examples/minimal.yaml
"$kubectl" -n webtoon wait wts/minitoon --for=condition=Ready --timeout=180s
"$kubectl" -n webtoon get wts
cat <<MSG

The local cluster runs with the operator beside it:
  export KUBECONFIG=$kubeconfig
  $kubectl -n webtoon get wts,deploy,sts,svc,pvc
  operator log: $(dirname "$kubeconfig")/logs/operator.log
  stop everything: e2e/local-cluster.sh down
MSG
