#!/usr/bin/env bash
# Checks packaging/redis-failover-agent.service with systemd's own tools:
#   - systemd-analyze verify: every directive parses and is known. verify exits 0 on an
#     unknown key or a bad value (it only warns), so any output at all is a failure.
#   - systemd-analyze security --offline: the hardening keeps the unit's exposure at or
#     below MAX_EXPOSURE (systemd's 0-10 scale, times ten; 1.2 when written).
#   - the conventions the agent relies on: ExecStart, SIGHUP reload, RestartPreventExitStatus=64,
#     StateDirectory as the working directory.
# verify insists that ExecStart's program exists, so it runs on a temporary copy whose
# /usr/local/bin/redis-failover-agent points at the built binary (target/release or
# target/debug), or at /bin/true when none is built.
# Needs systemd-analyze: apt-get install -y --no-install-recommends systemd
set -euo pipefail
cd "$(dirname "$0")/../.."

unit=packaging/redis-failover-agent.service
max_exposure=${MAX_EXPOSURE:-20}

fail() {
    echo "systemd check FAILED: $*" >&2
    exit 1
}

if ! command -v systemd-analyze >/dev/null; then
    fail "systemd-analyze is missing; install it with: apt-get install -y --no-install-recommends systemd"
fi
[[ -f $unit ]] || fail "$unit does not exist"
echo "== systemd: $unit ($(systemd-analyze --version | head -n 1))"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

binary=
for candidate in target/release/redis-failover-agent target/debug/redis-failover-agent; do
    if [[ -x $candidate ]]; then
        binary=$PWD/$candidate
        break
    fi
done
binary=${binary:-/bin/true}
copy=$tmp/redis-failover-agent.service
sed "s#/usr/local/bin/redis-failover-agent#$binary#g" "$unit" >"$copy"

# 1. systemd-analyze verify, silent or failed.
if ! out=$(systemd-analyze verify "$copy" 2>&1) || [[ -n $out ]]; then
    echo "${out//$tmp\//}" >&2
    fail "systemd-analyze verify $unit reported the problems above"
fi
echo "ok: systemd-analyze verify (ExecStart and ExecReload checked against $binary)"

# 2. Hardening, as systemd scores it.
if ! out=$(systemd-analyze security --offline=yes --threshold="$max_exposure" "$copy" 2>&1); then
    echo "$out" | grep -E '✗|Overall' >&2 || echo "$out" >&2
    fail "exposure of $unit is above $max_exposure/100 (see the ✗ lines above)"
fi
echo "ok: $(echo "$out" | grep -o 'Overall exposure level.*')"

# 3. What the agent relies on.
require() {
    local pattern=$1 why=$2
    grep -Eq "^$pattern\$" "$unit" || fail "$unit must have a line matching '$pattern': $why"
}
require 'ExecStart=/usr/local/bin/redis-failover-agent --config /etc/redis-failover-agent/agent.yaml' \
    "the binary's path and its configuration file"
# shellcheck disable=SC2016 # a literal $MAINPID, for systemd to expand
require 'ExecReload=/bin/kill -HUP \$MAINPID' "the agent re-reads its configuration on SIGHUP"
require 'Restart=on-failure' "restart after a crash"
require 'RestartPreventExitStatus=64( [0-9]+)*' "exit 64 is a bad configuration: restarting cannot help"
require 'StateDirectory=redis-failover-agent' "model_path (./models) lives in the state directory"
require 'WorkingDirectory=/var/lib/redis-failover-agent' "model_path is relative to the working directory"
require 'User=redis-failover-agent' "a dedicated user"
require 'CapabilityBoundingSet=' "no capabilities"
echo "ok: ExecStart, SIGHUP reload, Restart=on-failure with RestartPreventExitStatus=64, StateDirectory as WorkingDirectory, dedicated user, no capabilities"

echo "systemd check passed: $unit"
