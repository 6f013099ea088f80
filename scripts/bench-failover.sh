#!/usr/bin/env bash
# Time to fail over, measured on the scenario bed (tests/scenarios.rs): two datacenters
# with replicas and Sentinels, real Prometheus and Alertmanager with the shipped rules and
# routes, moto as Route53, osmem-server with a client workload, the agent on the shipped
# fast profile (profiles/fast.yaml). Runs the whole suite RUNS times without an AI advisor
# and RUNS times with the scripted one, then reports per scenario the median time from the
# fault to DNS switched, how many runs decided right, and the false and double failovers;
# for the fleet scenarios (three agents on etcd, lease_ttl 5 s) the same times against
# the single agent's, and the time a new leader takes over after kill -9.
#
#   scripts/bench-failover.sh [--runs N] [--out FILE] [--only "s01 s13 s14 s15"]
#
# --only runs the scenarios whose names contain one of the words (cargo's test filters).
#
# Needs what scripts/test.sh installs (run it once first). About 7 minutes per pass.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
out=""
only=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --only) read -r -a only <<< "$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done

results="$(mktemp -t scenario-results.XXXXXX.jsonl)"
trap 'rm -f "$results"' EXIT
cargo build --quiet --tests --locked

for ai in none scripted; do
  for run in $(seq 1 "$runs"); do
    echo "== pass $run of $runs, AI: $ai" >&2
    if [[ "$ai" == scripted ]]; then export SCENARIO_AI=scripted; else unset SCENARIO_AI; fi
    # A failing scenario is a wrong decision, counted below; keep going.
    SCENARIO_RESULTS="$results" cargo test --quiet --locked --test scenarios \
      -- --test-threads=1 "${only[@]}" >&2 || echo "   (some scenarios failed in this pass)" >&2
  done
done

report="$(python3 - "$results" "$runs" <<'PY'
import json, statistics, sys
path, runs = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open(path) if l.strip()]
# Scenarios whose right outcome is no DNS change.
holds = {"s03_agent_partition", "s05_load_spike", "s06_both_down", "s07_sentinel_promotion",
         "s15_fleet_takeover"}
scenarios = sorted({r["scenario"] for r in rows})
print("| scenario | AI | fault to DNS switched, median (min-max) | runs right | DNS changes |")
print("|---|---|---|---|---|")
false_failovers = double = right = total = 0
for ai in ["none", "scripted"]:
    for s in scenarios:
        mine = [r for r in rows if r["scenario"] == s and r["ai"] == ai]
        if not mine:
            continue
        times = [r["value"] for r in mine if r["measure"] == "fault_to_dns"]
        passed = sum(1 for r in mine if r["measure"] == "passed")
        changes = [int(r["value"]) for r in mine if r["measure"] == "dns_changes"]
        expected = runs
        right += passed
        total += expected
        if s in holds:
            false_failovers += sum(changes)
        double += sum(1 for c in changes if c > 1)
        t = (f"{statistics.median(times):.1f} s ({min(times):.1f}-{max(times):.1f})"
             if times else "-")
        print(f"| {s} | {ai} | {t} | {passed} of {expected} | {', '.join(map(str, changes)) or '-'} |")
print()
print(f"Decisions right: {right} of {total}. False failovers: {false_failovers} (goal 0). "
      f"Double failovers: {double} (goal 0).")
for ai in ["none", "scripted"]:
    s1 = [r["value"] for r in rows if r["scenario"] == "s01_hard_down"
          and r["measure"] == "fault_to_dns" and r["ai"] == ai]
    if s1:
        m = statistics.median(s1)
        print(f"Scenario 1, hard down, AI {ai}: median {m:.1f} s over {len(s1)} runs "
              f"(goal 15 s: {'PASS' if m <= 15 else 'MISS'}).")

def median_of(scenario, measure, ai):
    v = [r["value"] for r in rows
         if r["scenario"] == scenario and r["measure"] == measure and r["ai"] == ai]
    return (statistics.median(v), len(v)) if v else (None, 0)

# The fleet (three agents on etcd, lease_ttl 5 s; docs/high-availability.md).
TTL = 5.0
for ai in ["none", "scripted"]:
    single, _ = median_of("s01_hard_down", "fault_to_dns", ai)
    fleet, n = median_of("s13_fleet_redis_a_dies", "fault_to_dns", ai)
    if fleet is not None and single is not None:
        print(f"Fleet, Redis in a dies, AI {ai}: median {fleet:.1f} s over {n} runs, "
              f"single agent {single:.1f} s, difference {fleet - single:+.1f} s "
              f"(goal within 1 s: {'PASS' if fleet - single <= 1 else 'MISS'}).")
    both, n = median_of("s14_fleet_a_dies_with_leader", "fault_to_dns", ai)
    if both is not None:
        print(f"Fleet, a dies with the leading agent, AI {ai}: median {both:.1f} s over "
              f"{n} runs (goal 15 s: {'PASS' if both <= 15 else 'MISS'}).")
    takeover, n = median_of("s15_fleet_takeover", "takeover", ai)
    if takeover is not None:
        print(f"Fleet, takeover after kill -9 of the leader, AI {ai}: median "
              f"{takeover:.1f} s over {n} runs (goal TTL + 1 s = {TTL + 1:.0f} s: "
              f"{'PASS' if takeover <= TTL + 1 else 'MISS'}).")
PY
)"
echo "$report"
if [[ -n "$out" ]]; then
  echo "$report" > "$out"
fi
