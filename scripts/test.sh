#!/usr/bin/env bash
# Passes every test on a fresh machine: installs the real programs the tests start
# (Redis, Sentinel, redis-cli, Prometheus and promtool, Alertmanager and amtool, Node.js
# for the dashboard type check, moto_server for Route53, BIND 9 for RFC 2136,
# osmem-server for Elasticsearch, kubernetes-validate and kubectl for the Kubernetes
# bundle)
# when they are missing, then checks formatting, lints, runs the whole test suite and
# the checks of the shipped monitoring files (scripts/check/*.sh). Safe to run again and
# again.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

# Which way imports run (docs/architecture.md, "Imports"): no modules in a circle,
# adapters reach decision only through its ports.
echo "== scripts/check/imports.py"
python3 scripts/check/imports.py
echo "== scripts/check/links.py" && python3 scripts/check/links.py  # every relative link and #anchor of README.md and docs/

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo test"
cargo test --locked --all-targets

# The shipped Prometheus rules, Alertmanager routes, Grafana dashboards, compose file,
# systemd unit and Kubernetes bundle (the end-to-end run of them is tests/monitoring.rs,
# above).
for check in prometheus alertmanager grafana compose systemd kubernetes; do
  echo "== scripts/check/$check.sh"
  "scripts/check/$check.sh"
done

# The README's first command, end to end: the failover must happen and be told.
echo "== scripts/demo.sh --outage --exit"
scripts/demo.sh --outage --exit
