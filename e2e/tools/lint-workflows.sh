#!/usr/bin/env bash
# Lints what only GitHub Actions and kind run, which no other test executes: the
# workflows (actionlint, with shellcheck on their `run:` blocks), the kind scripts
# (bash -n, shellcheck) and the kind configuration's cross references (the chart kind
# installs is tested by tests/helm_chart.rs). Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/../.."

# actionlint checks `run:` blocks only when shellcheck is on PATH, and skips them
# silently otherwise.
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "installing Debian package: shellcheck" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends shellcheck >/dev/null
fi

actionlint="$(e2e/tools/build.sh actionlint | sed -n 's/^actionlint=//p')"
[ -x "$actionlint" ] || { echo "e2e/tools/build.sh printed no actionlint" >&2; exit 1; }

"$actionlint" -shellcheck "$(command -v shellcheck)" .github/workflows/*.yaml
echo "actionlint: ok ($("$actionlint" -version | head -1))"

scripts=(e2e/*.sh e2e/bench/*.sh e2e/kind/*.sh e2e/node/*.sh e2e/node/mariadb/*.sh e2e/tools/*.sh tests/*.sh)
for script in "${scripts[@]}"; do bash -n "$script"; done
shellcheck "${scripts[@]}"
echo "bash -n, shellcheck: ok (${scripts[*]})"

# kind and kubeadm accept a mount or flag that points nowhere and fail only at
# cluster creation, on GitHub: check that the paths meet.
python=python3
[ -x .venv/bin/python ] && python=.venv/bin/python
if "$python" -c 'import yaml' 2>/dev/null; then
  "$python" - <<'PY'
import os, sys, yaml

def fail(msg):
    sys.exit(f"e2e/kind/cluster.yaml: {msg}")

cluster = yaml.safe_load(open("e2e/kind/cluster.yaml"))
if (cluster.get("kind"), cluster.get("apiVersion")) != ("Cluster", "kind.x-k8s.io/v1alpha4"):
    fail("not a kind v1alpha4 Cluster")
(node,) = [n for n in cluster["nodes"] if n["role"] == "control-plane"]
if "@sha256:" not in node.get("image", ""):
    fail("the node image is not pinned by digest")
(patch,) = [yaml.safe_load(p) for p in node["kubeadmConfigPatches"]]
if patch.get("kind") != "ClusterConfiguration":
    fail("the patch is not a ClusterConfiguration")
api = patch["apiServer"]
args = api["extraArgs"]
mounts = {m["containerPath"]: m for m in node["extraMounts"]}

def node_path(path):
    """The host file or directory behind a path in the API server's container."""
    vols = [v for v in api["extraVolumes"] if (path + "/").startswith(v["mountPath"] + "/")]
    if not vols:
        fail(f"{path} is on no extraVolume of the API server")
    inner = vols[0]["hostPath"] + path[len(vols[0]["mountPath"]):]
    for cpath, m in mounts.items():
        if (inner + "/").startswith(cpath + "/"):
            return m, m["hostPath"] + inner[len(cpath):]
    fail(f"{inner} on the node comes from no extraMount")

_, policy_file = node_path(args["audit-policy-file"])
if not os.path.isfile(policy_file):
    fail(f"the audit policy {policy_file} does not exist")
log_mount, _ = node_path(os.path.dirname(args["audit-log-path"]))
if log_mount.get("readOnly"):
    fail("the audit log's mount is read-only")

policy = yaml.safe_load(open(policy_file))
if (policy.get("kind"), policy.get("apiVersion")) != ("Policy", "audit.k8s.io/v1"):
    sys.exit(f"{policy_file}: not an audit.k8s.io/v1 Policy")
levels = {"None", "Metadata", "Request", "RequestResponse"}
known = {"level", "users", "userGroups", "verbs", "resources", "namespaces",
         "nonResourceURLs", "omitStages", "omitManagedFields"}
for i, rule in enumerate(policy["rules"]):
    if rule.get("level") not in levels or set(rule) - known:
        sys.exit(f"{policy_file}: rules[{i}] is not a valid rule: {rule}")
print("kind config and audit policy: ok")
PY
else
  echo "kind config and audit policy: skipped, no Python yaml module"
fi
