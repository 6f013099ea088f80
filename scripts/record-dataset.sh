#!/usr/bin/env bash
# Records a labelled anomaly-detection dataset from real redis-servers with scripted faults.
#
#   scripts/record-dataset.sh OUT.jsonl.gz [--seed N] [--minutes M] [--log-dir DIR]
#
# Starts a primary (maxmemory 64mb, allkeys-lru) and a replica of it on 127.0.0.1 (free
# ports in 45000-46999), runs a load generator against the primary, samples both endpoints
# every 1.0 s (PING round trip, then INFO ALL, over one persistent connection each) and
# injects six kinds of fault after a 6-minute normal (training) period: memory_pressure,
# latency_debug_sleep, client_pause, connection_storm, expensive_commands,
# replication_break. The seed chooses their order, durations and intensities. Writes
# gzip'd JSON Lines to OUT (format: tests/data/README.md), then checks the file and
# prints the executed schedule and a per-label summary as Markdown on stdout; progress
# goes to stderr. Takes --minutes (default 20) plus about 10 s.
#
#   --seed N        fault order/durations/intensities (default 1)
#   --minutes M     session length (default 20; 6 faults need about 18 or more)
#   --log-dir DIR   keep the logs there: per-second load-generator ops (load.log), the
#                   executed schedule (schedule.json), the raw samples and the redis logs
#
# Every process it starts is stopped on exit and its temporary directory removed.
# Smoke tests only (environment): RECORD_LEAD_S (360), RECORD_GAP_S (90),
# RECORD_TAIL_S (75), RECORD_MIN_DUR_S (30), RECORD_MAX_DUR_S (60) and RECORD_FAULTS
# (comma-separated subset), e.g.
#   RECORD_LEAD_S=20 RECORD_GAP_S=15 RECORD_MIN_DUR_S=10 RECORD_MAX_DUR_S=12 \
#     scripts/record-dataset.sh /tmp/smoke.jsonl.gz --minutes 3
# (the check then reports missing labels for the faults that were left out).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER="$ROOT/scripts/dataset/record.py"

OUT=""
SEED=1
MINUTES=20
LOG_DIR=""
while (($#)); do
    case $1 in
        --seed) SEED=${2:?--seed needs a number}; shift 2 ;;
        --seed=*) SEED=${1#--seed=}; shift ;;
        --minutes) MINUTES=${2:?--minutes needs a number}; shift 2 ;;
        --minutes=*) MINUTES=${1#--minutes=}; shift ;;
        --log-dir) LOG_DIR=${2:?--log-dir needs a directory}; shift 2 ;;
        --log-dir=*) LOG_DIR=${1#--log-dir=}; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
        *) [[ -z $OUT ]] || { echo "more than one OUT given (see --help)" >&2; exit 2; }
           OUT=$1; shift ;;
    esac
done
[[ -n $OUT ]] || { echo "usage: $0 OUT.jsonl.gz [--seed N] [--minutes M] [--log-dir DIR]" >&2; exit 2; }
[[ $SEED =~ ^[0-9]+$ ]] || { echo "--seed must be a non-negative integer" >&2; exit 2; }
[[ $MINUTES =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "--minutes must be a number" >&2; exit 2; }

log() { printf '[record %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[record] ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ prerequisites

for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null ||
        die "$tool not found; install it with: apt-get update && apt-get install -y redis-server redis-tools"
done
command -v python3 >/dev/null || die "python3 not found; install it with: apt-get install -y python3"
[[ -f $HELPER ]] || die "missing $HELPER"
out_dir=$(dirname -- "$OUT")
[[ -d $out_dir ]] || die "output directory $out_dir does not exist"
OUT_ABS=$(cd "$out_dir" && pwd)/$(basename -- "$OUT")

# The check with the plan: fails early if --minutes is too short for the schedule.
python3 "$HELPER" plan --seed "$SEED" --minutes "$MINUTES" >/dev/null

# ------------------------------------------------------------- processes, cleanup

TMP=$(mktemp -d "${TMPDIR:-/tmp}/record-dataset.XXXXXX")
REDIS_PIDS=()
RUN_PID=""

# shellcheck source=lib/procs.sh
source "$ROOT/scripts/lib/procs.sh"

cleanup() {
    local rc=$? pid ours=()
    trap - EXIT INT TERM
    # RUN_PID first: it stops its own children (sampler, load generator).
    stop_pids "$RUN_PID"
    [[ -n $RUN_PID ]] && wait "$RUN_PID" 2>/dev/null || true
    # redis-servers daemonize, so they are not our children: make sure each PID is still
    # a redis-server before signalling it.
    for pid in "${REDIS_PIDS[@]}"; do
        grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null && ours+=("$pid")
    done
    stop_pids "${ours[@]}"
    if [[ -n $LOG_DIR ]]; then
        mkdir -p "$LOG_DIR"
        cp -r "$TMP"/. "$LOG_DIR"/ 2>/dev/null || true
        log "logs kept in $LOG_DIR"
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ redis-servers

read -r PRIMARY_PORT REPLICA_PORT DEAD_PORT < <(python3 "$HELPER" ports 3)
log "primary 127.0.0.1:$PRIMARY_PORT, replica 127.0.0.1:$REPLICA_PORT, dead port $DEAD_PORT; seed $SEED, $MINUTES min"

start_redis() { # start_redis NAME PORT ARGS...
    local name=$1 port=$2 i
    shift 2
    mkdir -p "$TMP/$name"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$TMP/$name.pid" --dir "$TMP/$name" \
        --logfile "$TMP/$name/redis.log" --enable-debug-command local "$@" >/dev/null ||
        die "redis-server $name on port $port did not start"
    for ((i = 0; i < 100; i++)); do
        [[ -s $TMP/$name.pid ]] &&
            [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true) == PONG ]] && break
        sleep 0.1
    done
    [[ -s $TMP/$name.pid ]] && REDIS_PIDS+=("$(<"$TMP/$name.pid")")
    [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true) == PONG ]] ||
        die "redis-server $name on 127.0.0.1:$port does not answer; see its log: $(tail -5 "$TMP/$name/redis.log" 2>/dev/null)"
}

start_redis primary "$PRIMARY_PORT" --maxmemory 64mb --maxmemory-policy allkeys-lru \
    --repl-diskless-sync-delay 0
start_redis replica "$REPLICA_PORT" --replicaof 127.0.0.1 "$PRIMARY_PORT"
log "redis-servers up (pids ${REDIS_PIDS[*]}); $(redis-server --version | cut -d' ' -f1-3)"

# ------------------------------------------------------------------------ record

python3 "$HELPER" run --primary-port "$PRIMARY_PORT" --replica-port "$REPLICA_PORT" \
    --dead-port "$DEAD_PORT" --seed "$SEED" --minutes "$MINUTES" \
    --out "$OUT_ABS" --workdir "$TMP/run" &
RUN_PID=$!
rc=0
wait "$RUN_PID" || rc=$?
RUN_PID=""
((rc == 0)) || die "recording failed (exit $rc)"
log "done: $OUT_ABS ($(stat -c %s "$OUT_ABS") bytes)"
