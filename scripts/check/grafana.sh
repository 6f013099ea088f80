#!/usr/bin/env bash
# Checks the Grafana provisioning and dashboards:
#   - provisioning: datasource uid `prometheus` at http://prometheus:9090, dashboards from
#     /var/lib/grafana/dashboards into the folder "Redis";
#   - every grafana/dashboards/*.json type-checks against `Dashboard` from @grafana/schema
#     as a JSON module (tsc --resolveJsonModule; grafana/check/schema.ts says how);
#   - grafana/check/runtime.ts: each file's text type-checked as a TypeScript literal
#     (enum values, each panel plugin's options), then this project's conventions: every
#     data source is the `datasource` variable, `__inputs` (DS_PROMETHEUS, only in that
#     variable's value) and `__requires` (Grafana, Prometheus, the panel plugins used) as
#     Grafana's export writes them, the variables, the $job/$instance and
#     $redis_instance/$datacenter/$observer filters on every series, no recording rule,
#     legends, ids and layout.
# Needs node and npm; installs grafana/check/node_modules from package-lock.json (npm ci)
# when it is missing or older than the lock file.
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
    echo "grafana: FAILED: $*" >&2
    exit 1
}

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        fail "$tool not found; install Node.js 18 or newer with npm (Debian/Ubuntu: apt-get install nodejs npm)"
    fi
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || fail "node $(node --version) is too old; Node.js 18 or newer is needed"

# --- provisioning -------------------------------------------------------------------
ds=grafana/provisioning/datasources/prometheus.yml
prov=grafana/provisioning/dashboards/dashboards.yml
for f in "$ds" "$prov"; do
    [ -f "$f" ] || fail "$f is missing"
done
grep -Eq '^[[:space:]]*uid:[[:space:]]*"?prometheus"?[[:space:]]*$' "$ds" || fail "$ds: no datasource with uid prometheus"
grep -Eq '^[[:space:]]*type:[[:space:]]*"?prometheus"?[[:space:]]*$' "$ds" || fail "$ds: datasource type is not prometheus"
grep -Eq '^[[:space:]]*url:[[:space:]]*"?http://prometheus:9090"?[[:space:]]*$' "$ds" || fail "$ds: url is not http://prometheus:9090"
grep -Eq '^[[:space:]]*path:[[:space:]]*"?/var/lib/grafana/dashboards"?[[:space:]]*$' "$prov" || fail "$prov: dashboards are not loaded from /var/lib/grafana/dashboards"
grep -Eq '^[[:space:]]*folder:[[:space:]]*"?Redis"?[[:space:]]*$' "$prov" || fail "$prov: folder is not Redis"
if python3 -c 'import yaml' >/dev/null 2>&1; then
    python3 - "$ds" "$prov" <<'PY' || fail "provisioning YAML is invalid (see above)"
import sys, yaml
ds, prov = (yaml.safe_load(open(p)) for p in sys.argv[1:3])
assert ds["apiVersion"] == 1 and prov["apiVersion"] == 1, "apiVersion must be 1"
[d] = [d for d in ds["datasources"] if d.get("uid") == "prometheus"]
assert d["name"] == "Prometheus" and d["type"] == "prometheus" and d["url"] == "http://prometheus:9090", d
[p] = prov["providers"]
assert p["type"] == "file" and p["folder"] == "Redis" and p["options"]["path"] == "/var/lib/grafana/dashboards", p
PY
fi
echo "grafana: ok provisioning: datasource uid prometheus at http://prometheus:9090; dashboards from /var/lib/grafana/dashboards into folder Redis"

# --- dependencies ---------------------------------------------------------------------
cd grafana/check
stamp=node_modules/.package-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x node_modules/typescript/bin/tsc ]; then
    echo "grafana: installing grafana/check/node_modules (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error >/dev/null || fail "npm ci in grafana/check failed (is the npm registry reachable?)"
    echo "$want" >"$stamp"
fi
schema_version=$(node -p 'require("@grafana/schema/package.json").version')
tsc_version="TypeScript $(node -p 'require("typescript/package.json").version')"

# --- type check and run-time checks ---------------------------------------------------
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# One program: dashboards.ts (the JSON modules against Dashboard), schema.ts, runtime.ts.
# It emits even when the dashboards fail to type-check, so the run-time checks still run
# and both kinds of problem are reported at once.
tsc_ok=true
node node_modules/typescript/bin/tsc -p . --outDir "$out" --pretty false || tsc_ok=false
[ -f "$out/check/runtime.js" ] || fail "grafana/check/runtime.ts did not compile"
runtime_ok=true
NODE_PATH="$PWD/node_modules" node "$out/check/runtime.js" ../.. || runtime_ok=false

$tsc_ok || fail "the dashboards do not type-check against Dashboard from @grafana/schema $schema_version (tsc errors above; the path of an unknown property is in the 'unknownProperties' type)"
$runtime_ok || fail "run-time checks of the dashboards failed (above)"
echo "grafana: ok type check: every grafana/dashboards/*.json imported as a JSON module (tsc --resolveJsonModule, $tsc_version) against Dashboard from @grafana/schema $schema_version: field types, required fields, no unknown properties"
