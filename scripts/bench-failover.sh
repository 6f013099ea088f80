#!/usr/bin/env bash
# Time to fail over, measured on the scenario bed (tests/scenarios.rs): two datacenters
# with replicas and Sentinels, real Prometheus and Alertmanager with the shipped rules and
# routes, moto as Route53, osmem-server with a client workload. A single agent runs on the
# fast profile (profiles/fast.yaml); the fleet scenarios (s13-s19: three agents on etcd,
# lease_ttl 5 s, every agent an observer with its own fault proxies) on the fleet profile
# (profiles/fleet.yaml). Runs the chosen scenarios RUNS times for each AI mode (without an
# AI advisor, and with the scripted one) and each profile, then reports per scenario the
# median time from the fault to DNS switched, how many runs decided right, and the false
# and double failovers; for the fleet the times against the goals of issues 17 and 18.
#
#   scripts/bench-failover.sh [--runs N] [--out FILE] [--only "s01 s13 s16"]
#                             [--ai "none scripted"] [--profiles "default fast"]
#
# --only runs the scenarios whose names contain one of the words (cargo's test filters).
# --ai: the AI modes, each a pass of its own (default: none scripted).
# --profiles: `default` runs each scenario on its own profile; any other name runs the
#   fleet scenarios on profiles/NAME.yaml instead (SCENARIO_PROFILE), e.g. `fast` to see
#   what the fleet profile saves (default: default).
#
# Needs what scripts/test.sh installs (run it once first). About 7 minutes per pass of
# the whole suite; a fleet scenario takes 25-40 s.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
out=""
only=()
ais=(none scripted)
profiles=(default)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --only) read -r -a only <<< "$2"; shift 2 ;;
    --ai) read -r -a ais <<< "$2"; shift 2 ;;
    --profiles) read -r -a profiles <<< "$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 64 ;;
  esac
done

results="$(mktemp -t scenario-results.XXXXXX.jsonl)"
trap 'rm -f "$results"' EXIT
cargo build --quiet --tests --locked

for profile in "${profiles[@]}"; do
  if [[ "$profile" == default ]]; then unset SCENARIO_PROFILE; else export SCENARIO_PROFILE="$profile"; fi
  for ai in "${ais[@]}"; do
    for run in $(seq 1 "$runs"); do
      echo "== pass $run of $runs, AI: $ai, profile: $profile" >&2
      if [[ "$ai" == scripted ]]; then export SCENARIO_AI=scripted; else unset SCENARIO_AI; fi
      # A failing scenario is a wrong decision, counted below; keep going.
      SCENARIO_RESULTS="$results" cargo test --quiet --locked --test scenarios \
        -- --test-threads=1 "${only[@]}" >&2 || echo "   (some scenarios failed in this pass)" >&2
    done
  done
done

report="$(python3 - "$results" "$runs" <<'PY'
import json, statistics, sys
path, runs = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open(path) if l.strip()]
for r in rows:
    r.setdefault("profile", "default")
# Scenarios whose right outcome is no DNS change.
holds = {"s03_agent_partition", "s05_load_spike", "s06_both_down", "s07_sentinel_promotion",
         "s15_fleet_takeover", "s16_fleet_leader_cut_from_a", "s19_fleet_slow_paths_of_agent_a"}
scenarios = sorted({r["scenario"] for r in rows})
modes = sorted({(r["ai"], r["profile"]) for r in rows}, key=lambda m: (m[1] != "default", m))
print("| scenario | AI | profile | fault to DNS switched, median (min-max) | runs right | DNS changes |")
print("|---|---|---|---|---|---|")
false_failovers = double = right = total = 0
for ai, profile in modes:
    for s in scenarios:
        mine = [r for r in rows if r["scenario"] == s and r["ai"] == ai and r["profile"] == profile]
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
        # `default`: each scenario's own profile.
        shown = profile if profile != "default" else ("fleet" if "_fleet_" in s else "fast")
        print(f"| {s} | {ai} | {shown} | {t} | {passed} of {expected} | "
              f"{', '.join(map(str, changes)) or '-'} |")
print()
print(f"Decisions right: {right} of {total}. False failovers: {false_failovers} (goal 0). "
      f"Double failovers: {double} (goal 0).")

def median_of(scenario, measure, ai, profile="default"):
    v = [r["value"] for r in rows if r["scenario"] == scenario and r["measure"] == measure
         and r["ai"] == ai and r["profile"] == profile]
    return (statistics.median(v), len(v)) if v else (None, 0)

for ai, profile in modes:
    s1, n = median_of("s01_hard_down", "fault_to_dns", ai, profile)
    if s1 is not None:
        print(f"Scenario 1, hard down, AI {ai}: median {s1:.1f} s over {n} runs "
              f"(goal 15 s: {'PASS' if s1 <= 15 else 'MISS'}).")

# The fleet (three agents on etcd, lease_ttl 5 s; docs/high-availability.md). `default`
# is the fleet profile for the fleet scenarios.
TTL = 5.0
for ai, profile in modes:
    name = "fleet" if profile == "default" else profile
    single, _ = median_of("s01_hard_down", "fault_to_dns", ai)
    fleet, n = median_of("s13_fleet_redis_a_dies", "fault_to_dns", ai, profile)
    if fleet is not None:
        print(f"Fleet, kill -9 of Redis in a, three observers, AI {ai}, {name} profile: "
              f"median {fleet:.1f} s over {n} runs (goal 6 s: "
              f"{'PASS' if fleet <= 6 else 'MISS'}).")
        if single is not None:
            print(f"  against the single agent's {single:.1f} s: {fleet - single:+.1f} s "
                  f"(goal no more than 1 s slower: {'PASS' if fleet - single <= 1 else 'MISS'}).")
    cut, n = median_of("s18_fleet_a_dies_b_cut_for_one", "fault_to_dns", ai, profile)
    if cut is not None:
        print(f"Fleet, Redis in a killed while agent b cannot reach b, AI {ai}, {name} "
              f"profile: median {cut:.1f} s over {n} runs.")
    for scenario in ["s14_fleet_a_dies_with_leader", "s17_fleet_redis_and_agent_a_die"]:
        both, n = median_of(scenario, "fault_to_dns", ai, profile)
        if both is not None:
            print(f"Fleet, {scenario}, AI {ai}, {name} profile: median {both:.1f} s over "
                  f"{n} runs, a takeover included (goal 15 s: {'PASS' if both <= 15 else 'MISS'}).")
    takeover, n = median_of("s15_fleet_takeover", "takeover", ai, profile)
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
