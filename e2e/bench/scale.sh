#!/usr/bin/env bash
# Scale benchmark: builds the operator in release, starts a fresh local cluster in
# its own directory (.cluster-bench/, never the clusters of the e2e suite), runs
# e2e/examples/scale_benchmark.rs against it with one operator for every namespace
# and N minimal stacks, and stops the cluster however the run ends.
#
#   e2e/bench/scale.sh                          N=100
#   e2e/bench/scale.sh --stacks 200             any option of the example
#   e2e/bench/scale.sh --stacks 50 --steady-seconds 60
#   WEBTOON_BENCH_KEEP=/tmp/scale e2e/bench/scale.sh    keeps the audit logs
#
# A minimal stack requests 6 pods and 1.05 CPU; a KWOK node offers 110 pods and 16
# CPU, so the cluster gets one node per 12 stacks (at least 3).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

stacks=100
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = --stacks ] && [ $((i + 1)) -lt ${#args[@]} ]; then stacks="${args[$((i + 1))]}"; fi
done
nodes=$(( (stacks + 11) / 12 ))
[ "$nodes" -ge 3 ] || nodes=3

export WEBTOON_CLUSTER_DIR="${WEBTOON_CLUSTER_DIR:-$root/.cluster-bench}"

echo "[scale.sh] building the operator (release)" >&2
cargo build --release --bin webtoon-operator
cargo build --release -p webtoon-e2e --example scale_benchmark

down() {
  # WEBTOON_BENCH_KEEP=DIR keeps the audit log of the run, which `down` removes.
  if [ -n "${WEBTOON_BENCH_KEEP:-}" ] && [ -f "$WEBTOON_CLUSTER_DIR/audit.log" ]; then
    # A failed copy must not keep the cluster running.
    { mkdir -p "$WEBTOON_BENCH_KEEP" && cp "$WEBTOON_CLUSTER_DIR"/audit*.log "$WEBTOON_BENCH_KEEP/"; } || true
  fi
  echo "[scale.sh] stopping the cluster in $WEBTOON_CLUSTER_DIR" >&2
  "$root/e2e/local-cluster.sh" down >&2 || true
}
trap down EXIT
trap 'exit 130' INT TERM

# A fresh cluster: whatever an earlier run left is stopped and removed first.
"$root/e2e/local-cluster.sh" down >/dev/null 2>&1 || true
echo "[scale.sh] starting a cluster with $nodes KWOK nodes in $WEBTOON_CLUSTER_DIR" >&2
kubeconfig="$("$root/e2e/local-cluster.sh" up --nodes "$nodes" | tail -n 1)"
[ -f "$kubeconfig" ] || { echo "the cluster printed no kubeconfig: $kubeconfig" >&2; exit 1; }

export KUBECONFIG="$kubeconfig"
export WEBTOON_OPERATOR_BIN="$root/target/release/webtoon-operator"
export WEBTOON_E2E_AUDIT_LOG="$WEBTOON_CLUSTER_DIR/audit.log"
# The example bounds each phase itself; this bounds the whole run (set-up, the
# ready timeout of 300 s + 3 s per stack, two resyncs, and a margin).
timeout --kill-after=30 $(( 1800 + 3 * stacks )) \
  cargo run --release -p webtoon-e2e --example scale_benchmark -- "$@"
