#!/usr/bin/env bash
# Side-by-side cost of collecting Redis INFO: redis-failover-agent against
# oliver006/redis_exporter, at 1, 50 and 1,000 endpoints, on this machine.
#
#   scripts/bench-collect.sh [--out FILE]
#
# Starts four local redis-servers (a few hundred keys in db0 and db1), then for each N:
# the agent with N endpoints over those servers, and redis_exporter scraping N targets.
# Prints a Markdown table (and writes it to FILE with --out). Takes about 3.5 minutes plus
# the release build (4 minutes more for the scraper runs at 1,000 endpoints). Everything listens on 127.0.0.1, on free ports in 40000-50000;
# every process it starts is stopped on exit and its temporary directory removed.
#
# Environment:
#   AGENT_BIN         agent binary to use; default: `cargo build --release` and use
#                     ${CARGO_TARGET_DIR:-target}/release/redis-failover-agent
#   WINDOW_1, WINDOW_50, WINDOW_1000
#                     measurement windows in seconds (default 60 each)
#   INTERVAL_SMALL    agent interval for 1 and 50 endpoints, seconds (default 1)
#   INTERVAL_LARGE    agent interval for 1,000 endpoints, seconds (default 5)
#   EXPORTER_SCRAPES  scrapes for the single-target exporter (default 500)
#   RENDER_COUNT      sequential GETs of /metrics per format at 1,000 endpoints (default 20)
#   WINDOW_SCRAPERS   at 1,000 endpoints, the window of each scraper run (one and two
#                     scrapers, with and without gzip), seconds (default 60)
#   SCRAPE_EVERY      seconds between a scraper's GETs in those runs (default: the
#                     1,000-endpoint interval, INTERVAL_LARGE)
#   KEEP_TMP=1        keep the temporary directory (configs, logs) and print its path
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER="$ROOT/scripts/bench/bench_helper.py"

WINDOW_1=${WINDOW_1:-60}
WINDOW_50=${WINDOW_50:-60}
WINDOW_1000=${WINDOW_1000:-60}
INTERVAL_SMALL=${INTERVAL_SMALL:-1}
INTERVAL_LARGE=${INTERVAL_LARGE:-5}
EXPORTER_SCRAPES=${EXPORTER_SCRAPES:-500}
RENDER_COUNT=${RENDER_COUNT:-20}
WINDOW_SCRAPERS=${WINDOW_SCRAPERS:-60}
SCRAPE_EVERY=${SCRAPE_EVERY:-$INTERVAL_LARGE}
REDIS_SERVERS=4
OM_ACCEPT='application/openmetrics-text; version=1.0.0'

OUT=""
while (($#)); do
    case $1 in
        --out) OUT=${2:?--out needs a file}; shift 2 ;;
        --out=*) OUT=${1#--out=}; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { printf '[bench %s] WARNING: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ prerequisites

for tool in redis-server redis-cli prometheus-redis-exporter; do
    command -v "$tool" >/dev/null ||
        die "$tool not found; install it with: apt-get install -y redis-server prometheus-redis-exporter"
done
for tool in curl python3 ss; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -f $HELPER ]] || die "missing $HELPER"

# 1,000 agent connections, 1,000 exporter connections, 4 servers with maxclients 10000.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(($(ulimit -n) >= 4096)) || die "open-file limit is $(ulimit -n); need at least 4096 (ulimit -n)"

if [[ -z ${AGENT_BIN:-} ]]; then
    log "building the agent: cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    [[ $target_dir = /* ]] || target_dir=$ROOT/$target_dir
    AGENT_BIN=$target_dir/release/redis-failover-agent
fi
[[ -x $AGENT_BIN ]] || die "agent binary not found or not executable: $AGENT_BIN"

# ------------------------------------------------------------- processes, cleanup

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-collect.XXXXXX")
RESULTS=$TMP/results.kv
: >"$RESULTS"
AGENT_PID=""
EXPORTER_PID=""
HELPER_PID=""
REDIS_PORTS=()
REDIS_PIDS=()

# shellcheck source=lib/procs.sh
source "$ROOT/scripts/lib/procs.sh"

cleanup() {
    local rc=$? pid ours=()
    trap - EXIT INT TERM
    # redis-servers daemonize, so they are not our children: make sure a PID is still
    # a redis-server before signalling it.
    for pid in "${REDIS_PIDS[@]}"; do
        grep -q redis-server "/proc/$pid/cmdline" 2>/dev/null && ours+=("$pid")
    done
    stop_pids "$HELPER_PID" "$AGENT_PID" "$EXPORTER_PID" "${ours[@]}"
    if [[ ${KEEP_TMP:-} == 1 ]]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Ports: a random base in 40000-50000, then upwards, skipping any port with a socket on it.
NEXT_PORT=$((40000 + RANDOM % 9000))
PORT=""
pick_port() {
    while ((NEXT_PORT < 50000)); do
        PORT=$NEXT_PORT
        NEXT_PORT=$((NEXT_PORT + 1))
        if [[ -z $(ss -Htan "( sport = :$PORT )" 2>/dev/null) ]]; then
            return 0
        fi
    done
    die "no free port left in 40000-50000"
}

wait_http() { # wait_http URL PID SECONDS: until URL answers 200 while PID lives
    local url=$1 pid=$2 limit=$3 start=$SECONDS
    while ((SECONDS - start < limit)); do
        alive "$pid" || return 1
        [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]] && return 0
        sleep 0.2
    done
    return 1
}

rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

kv() { awk -v k="$1" '$1 == k { print $2 }' "$RESULTS"; }

record() { printf '%s %s\n' "$1" "$2" >>"$RESULTS"; }

# helper PREFIX SUBCOMMAND ARGS...: run bench_helper.py and add its "key value" lines to
# the results with PREFIX. In the background, so that INT/TERM cut a long window short.
helper() {
    local prefix=$1
    shift
    python3 "$HELPER" "$@" >"$TMP/helper.out" &
    HELPER_PID=$!
    wait "$HELPER_PID" || die "bench_helper.py $1 failed"
    HELPER_PID=""
    sed "s/^/$prefix/" "$TMP/helper.out" >>"$RESULTS"
}

# ------------------------------------------------------------------ redis-servers

log "starting $REDIS_SERVERS redis-servers"
for ((i = 0; i < REDIS_SERVERS; i++)); do
    pick_port
    REDIS_PORTS+=("$PORT")
    mkdir -p "$TMP/redis-$PORT"
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --pidfile "$TMP/redis-$PORT.pid" --dir "$TMP/redis-$PORT" \
        --logfile "$TMP/redis-$PORT/redis.log" --maxclients 10000 >/dev/null ||
        die "redis-server on port $PORT did not start"
done
for port in "${REDIS_PORTS[@]}"; do
    for ((t = 0; t < 50; t++)); do
        [[ -s $TMP/redis-$port.pid ]] &&
            [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true) == PONG ]] && break
        sleep 0.1
    done
    [[ -s $TMP/redis-$port.pid ]] && REDIS_PIDS+=("$(<"$TMP/redis-$port.pid")")
    [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true) == PONG ]] ||
        die "redis-server on 127.0.0.1:$port does not answer; see $TMP/redis-$port/redis.log"
    for ((k = 1; k <= 300; k++)); do echo "SET bench:key:$k value-$k"; done |
        redis-cli -h 127.0.0.1 -p "$port" -n 0 >/dev/null
    for ((k = 1; k <= 200; k++)); do echo "HSET bench:hash:$k field $k"; done |
        redis-cli -h 127.0.0.1 -p "$port" -n 1 >/dev/null
done
PORTS_CSV=$(IFS=,; echo "${REDIS_PORTS[*]}")
log "redis-servers on 127.0.0.1:{$PORTS_CSV}, 300 keys in db0 and 200 in db1 each"

# ------------------------------------------------------------------------- agent

# The configuration warns that the timeouts (2 s) add up to more than a 1 s interval;
# expected, and irrelevant against local servers that answer at once.
EXPECTED_WARNING='timeouts: a round against'

check_agent_log() { # check_agent_log FILE N
    local file=$1 n=$2 count
    count=$(grep -E '\b(WARN|ERROR)\b' "$file" | grep -vc "$EXPECTED_WARNING" || true)
    if ((count > 0)); then
        warn "agent log at $n endpoints has $count unexpected WARN/ERROR lines; the first ones:"
        grep -E '\b(WARN|ERROR)\b' "$file" | grep -v "$EXPECTED_WARNING" | head -5 >&2
    fi
}

run_agent() { # run_agent N INTERVAL WINDOW
    local n=$1 interval=$2 window=$3 cfg=$TMP/agent-$1.yaml alog=$TMP/agent-$1.log
    local api_port rounds errors up endpoints cpu ticks
    pick_port
    api_port=$PORT
    python3 "$HELPER" config --endpoints "$n" --ports "$PORTS_CSV" \
        --interval "$interval" --api-port "$api_port" >"$cfg"
    "$AGENT_BIN" check-config --config "$cfg" >"$TMP/check-$n.out" 2>&1 ||
        die "agent rejects $cfg: $(cat "$TMP/check-$n.out")"

    log "agent: $n endpoint(s), interval ${interval}s, listening on 127.0.0.1:$api_port"
    NO_COLOR=1 "$AGENT_BIN" --config "$cfg" --listen "127.0.0.1:$api_port" --no-failover 2>"$alog" &
    AGENT_PID=$!
    wait_http "http://127.0.0.1:$api_port/readyz" "$AGENT_PID" 120 || {
        tail -20 "$alog" >&2
        die "agent with $n endpoints not ready within 120 s (log above)"
    }
    log "agent ready; warming up $((interval + 1)) s, then a ${window}s window"
    sleep $((interval + 1))

    helper "agent_${n}_" agent-window --pid "$AGENT_PID" --port "$api_port" --seconds "$window"
    record "agent_${n}_interval" "$interval"
    record "agent_${n}_rss_mb" "$(rss_mb "$AGENT_PID")"

    rounds=$(kv "agent_${n}_rounds")
    errors=$(kv "agent_${n}_errors")
    up=$(kv "agent_${n}_up")
    endpoints=$(kv "agent_${n}_endpoints")
    cpu=$(kv "agent_${n}_cpu_s")
    ticks=$(kv "agent_${n}_tick_cpu_s")
    log "agent $n: ${rounds} rounds, ${cpu} s CPU (ticks say ${ticks} s), up ${up}/${endpoints}, errors ${errors}, RSS $(kv "agent_${n}_rss_mb") MB"
    ((rounds > 0)) || die "agent with $n endpoints finished no rounds in ${window}s"
    ((errors == 0)) || warn "agent with $n endpoints counted $errors collection errors in the window"
    ((up == n && endpoints == n)) || warn "agent with $n endpoints: redis_up=1 on $up, redis_agent_endpoints=$endpoints"
    local expect=$((n * window / interval))
    awk -v r="$rounds" -v e="$expect" 'BEGIN { exit !(r >= 0.9 * e && r <= 1.1 * e) }' ||
        warn "agent with $n endpoints: $rounds rounds in ${window}s, expected about $expect"
    awk -v c="$cpu" -v t="$ticks" 'BEGIN { d = c - t; if (d < 0) d = -d; exit !(d <= 0.03 + 0.05 * c) }' ||
        warn "agent $n: per-thread CPU ($cpu s) and utime+stime ($ticks s) disagree"

    if ((n == 1000)); then
        local bg
        bg=$(awk -v c="$cpu" -v w="$(kv agent_1000_wall_s)" 'BEGIN { printf "%.6f", c / w }')
        record render_count "$RENDER_COUNT"
        log "timing $RENDER_COUNT GETs of /metrics, text then OpenMetrics"
        helper render_text_ render --pid "$AGENT_PID" --url "http://127.0.0.1:$api_port/metrics" \
            --count "$RENDER_COUNT" --bg-rate "$bg"
        helper render_om_ render --pid "$AGENT_PID" --url "http://127.0.0.1:$api_port/metrics" \
            --count "$RENDER_COUNT" --bg-rate "$bg" --accept "$OM_ACCEPT"
        log "render: text median $(kv render_text_median_ms) ms p90 $(kv render_text_p90_ms) ms $(kv render_text_bytes) B;" \
            "OpenMetrics median $(kv render_om_median_ms) ms p90 $(kv render_om_p90_ms) ms $(kv render_om_bytes) B"
        # As Prometheus scrapes: one server or an HA pair, each every SCRAPE_EVERY s.
        record scrape_every "$SCRAPE_EVERY"
        local scrapers enc prefix gzip
        for scrapers in 1 2; do
            for enc in plain gzip; do
                prefix="scrape_${scrapers}_${enc}_"
                gzip=()
                if [[ $enc == gzip ]]; then gzip=(--gzip); fi
                log "$scrapers scraper(s) every ${SCRAPE_EVERY}s, $enc, for ${WINDOW_SCRAPERS}s"
                helper "$prefix" scrapers --pid "$AGENT_PID" --port "$api_port" \
                    --scrapers "$scrapers" --every "$SCRAPE_EVERY" --seconds "$WINDOW_SCRAPERS" \
                    --bg-rate "$bg" "${gzip[@]}"
                log "  $(kv "${prefix}scrapes") scrapes, $(kv "${prefix}bytes") B and" \
                    "$(kv "${prefix}cpu_per_scrape_ms") ms agent CPU each, $(kv "${prefix}renders") renders"
            done
        done
    fi

    alive "$AGENT_PID" || die "agent with $n endpoints died; see its log"
    stop_pids "$AGENT_PID"
    AGENT_PID=""
    check_agent_log "$alog" "$n"
}

# ---------------------------------------------------------------- redis_exporter

run_exporter() { # run_exporter N
    local n=$1 port paths=$TMP/paths-$1 elog=$TMP/exporter-$1.log repeat addr
    pick_port
    port=$PORT
    if ((n == 1)); then
        addr="redis://127.0.0.1:${REDIS_PORTS[0]}"
        for ((i = 0; i < EXPORTER_SCRAPES; i++)); do echo /metrics; done >"$paths"
        repeat=1
    else
        addr=""
        for ((i = 0; i < n; i++)); do
            echo "/scrape?target=redis://127.0.0.1:${REDIS_PORTS[i % REDIS_SERVERS]}"
        done >"$paths"
        # At least ~1,000 target scrapes per N.
        repeat=$(((1000 + n - 1) / n))
    fi
    log "redis_exporter: $n target(s), $(($(wc -l <"$paths") * repeat)) scrapes, on 127.0.0.1:$port"
    prometheus-redis-exporter -redis.addr "$addr" -web.listen-address "127.0.0.1:$port" \
        -redis-only-metrics 2>"$elog" &
    EXPORTER_PID=$!
    wait_http "http://127.0.0.1:$port/" "$EXPORTER_PID" 30 || {
        tail -20 "$elog" >&2
        die "redis_exporter did not start (log above)"
    }
    helper "exp_${n}_" scrape --pid "$EXPORTER_PID" --port "$port" --paths "$paths" \
        --repeat "$repeat" --warmup 20
    record "exp_${n}_rss_mb" "$(rss_mb "$EXPORTER_PID")"
    log "redis_exporter $n: $(kv "exp_${n}_scrapes") scrapes, $(kv "exp_${n}_cpu_s") s CPU" \
        "(ticks say $(kv "exp_${n}_tick_cpu_s") s), $(kv "exp_${n}_bad") bad, RSS $(kv "exp_${n}_rss_mb") MB"
    (($(kv "exp_${n}_bad") == 0)) || warn "redis_exporter: $(kv "exp_${n}_bad") scrapes without redis_up 1"
    stop_pids "$EXPORTER_PID"
    EXPORTER_PID=""
}

# --------------------------------------------------------------------------- run

STARTED=$SECONDS
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
run_agent 1 "$INTERVAL_SMALL" "$WINDOW_1"
run_exporter 1
run_agent 50 "$INTERVAL_SMALL" "$WINDOW_50"
run_exporter 50
run_agent 1000 "$INTERVAL_LARGE" "$WINDOW_1000"
run_exporter 1000

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
redis_version=$(redis-server --version | grep -o 'v=[^ ]*' | cut -d= -f2)
exporter_version=$(prometheus-redis-exporter -version 2>&1 | grep -o 'Exporter [^ ]*' | head -1 | cut -d' ' -f2)
agent_version=$("$AGENT_BIN" --version 2>/dev/null | awk '{ print $NF }')
agent_rev=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
record machine "$(nproc) CPU(s), ${cpu_model:-unknown CPU}, $(uname -sr)"
record versions "redis-failover-agent ${agent_version:-?} (git ${agent_rev}), redis_exporter ${exporter_version:-?} (Debian prometheus-redis-exporter), redis-server ${redis_version:-?}"
record run "$(date -u +%Y-%m-%d), measured in $((SECONDS - STARTED)) s (load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)); windows ${WINDOW_1}/${WINDOW_50}/${WINDOW_1000} s, scrapers ${WINDOW_SCRAPERS} s each, agent intervals ${INTERVAL_SMALL}/${INTERVAL_SMALL}/${INTERVAL_LARGE} s, ${REDIS_SERVERS} redis-servers"

table=$(python3 "$HELPER" report "$RESULTS")
printf '%s\n' "$table"
if [[ -n $OUT ]]; then
    printf '%s\n' "$table" >"$OUT"
    log "table written to $OUT"
fi
