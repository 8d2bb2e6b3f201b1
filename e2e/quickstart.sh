#!/usr/bin/env bash
# The quickstart on a laptop with no cluster: brings the local cluster up (building
# it the first time), installs the CRD and the operator's ClusterRole, runs the
# operator beside the cluster as a ServiceAccount bound to that role, applies
# examples/minimal.yaml and waits until `kubectl get wts` shows it Ready.
# `e2e/local-cluster.sh down` stops everything, the operator included.
#
# `e2e/quickstart.sh --node real` (as root) instead starts the cluster with a real
# node, installs the operator in it from its image with the Helm chart, and prints a
# URL where the demo site answers; `e2e/local-cluster.sh down --node real` stops it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if [ "${1:-}" = --node ] && [ "${2:-}" = real ]; then
  started=$SECONDS
  kubeconfig="$(e2e/local-cluster.sh up --node real)"
  export KUBECONFIG="$kubeconfig"
  kubectl="$(e2e/tools/build.sh kubernetes | sed -n 's/^kubernetes_kubectl=//p')"
  helm="$(e2e/tools/build.sh helm | sed -n 's/^helm=//p')"
  # The chart runs the operator's image, which the node imported: no registry.
  "$helm" upgrade --install webtoon-operator charts/webtoon-operator \
    --namespace webtoon-system --create-namespace --wait --timeout 180s >/dev/null
  "$kubectl" create namespace webtoon --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
  "$kubectl" label namespace webtoon --overwrite pod-security.kubernetes.io/enforce=restricted >/dev/null
  "$kubectl" apply -f examples/minimal.yaml >/dev/null
  "$kubectl" -n webtoon wait wts/minitoon --for=condition=Ready --timeout=300s >/dev/null
  # The proxy's Service is a LoadBalancer with no load balancer here: its node port
  # answers on the node's address.
  port="$("$kubectl" -n webtoon get service minitoon-proxy -o jsonpath='{.spec.ports[?(@.name=="http")].nodePort}')"
  node_ip="$("$kubectl" get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')"
  url="http://minitoon.example:$port/episodes"
  for _ in $(seq 1 60); do
    curl -fsS --resolve "minitoon.example:$port:$node_ip" "$url" >/dev/null 2>&1 && break
    sleep 1
  done
  curl -fsS --resolve "minitoon.example:$port:$node_ip" "$url" >/dev/null
  "$kubectl" -n webtoon get wts
  cat <<MSG

The demo site answers, $((SECONDS - started)) s after \`up\` began, from real pods on the real node:
  curl --resolve minitoon.example:$port:$node_ip $url
  export KUBECONFIG=$kubeconfig
  $kubectl -n webtoon get wts,pods -o wide
  stop everything: e2e/local-cluster.sh down --node real
MSG
  exit 0
fi

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
