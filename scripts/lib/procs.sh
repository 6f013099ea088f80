# Process helpers shared by the scripts that start servers. Source it; it defines:
#   alive PID        running and not a zombie waiting to be reaped
#   stop_pids PID... TERM them all, wait up to 10 s, then KILL (empty PIDs are skipped)

alive() {
    local state
    state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

stop_pids() {
    local pid live i
    for pid in "$@"; do
        [[ -n $pid ]] && alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
    done
    for ((i = 0; i < 100; i++)); do
        live=0
        for pid in "$@"; do
            [[ -n $pid ]] && alive "$pid" && live=1
        done
        ((live)) || break
        sleep 0.1
    done
    for pid in "$@"; do
        [[ -n $pid ]] && alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
        # Reaps our own children; for other processes wait just fails.
        [[ -n $pid ]] && wait "$pid" 2>/dev/null || true
    done
    return 0
}
