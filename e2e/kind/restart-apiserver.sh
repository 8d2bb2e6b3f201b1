#!/usr/bin/env bash
# WEBTOON_E2E_RESTART_APISERVER on kind: stops the API server's container, which the
# kubelet starts again as the static pod it is, and returns once the new one is ready.
#   e2e/kind/restart-apiserver.sh [NODE]   (default: kind-control-plane)
set -euo pipefail
node="${1:-kind-control-plane}"
timeout_s="${WEBTOON_E2E_RESTART_TIMEOUT:-300}"

mapfile -t ids < <(docker exec "$node" crictl ps -q --name kube-apiserver)
if [ ${#ids[@]} -eq 0 ]; then
  echo "no running kube-apiserver container on $node" >&2
  exit 1
fi
# crictl returns once the old container is gone, so a ready answer after this point
# comes from the new one.
docker exec "$node" crictl stop "${ids[@]}" >/dev/null

# The kubelet waits longer before each further restart of the same container (up to
# minutes), hence the long default.
deadline=$((SECONDS + timeout_s))
until "${KUBECTL:-kubectl}" get --raw /readyz >/dev/null 2>&1; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "kube-apiserver on $node not ready ${timeout_s} s after its restart" >&2
    exit 1
  fi
  sleep 1
done
