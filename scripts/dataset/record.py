#!/usr/bin/env python3
"""Record a labelled dataset of Redis INFO snapshots with scripted faults.

Helper of scripts/record-dataset.sh, python3 standard library only. The shell script
starts a primary and a replica on 127.0.0.1 and then runs `record.py run ...`, which:

  * starts a load generator (`record.py load`, its own process) against the primary,
  * starts a sampler (`record.py sample`, its own process, so that the other work here
    does not hold the GIL while it times PING) that every 1.0 s sends PING then INFO ALL
    to each endpoint over a persistent connection,
  * runs the fault schedule chosen by the seed (in this process),
  * labels every sample with the fault active when it started, writes gzip'd JSON Lines,
  * checks the result and prints the schedule and a per-label summary in Markdown.

Other subcommands: `check FILE.jsonl.gz` (checks and summary of an existing file),
`plan --seed N --minutes M` (prints the schedule a seed would run), `ports N` (free ports).
Every connection goes to 127.0.0.1 only.
"""

import argparse
import gzip
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"

INFO_FIELDS = (
    "redis_version run_id uptime_in_seconds role connected_clients blocked_clients "
    "maxclients used_memory used_memory_rss maxmemory total_system_memory "
    "mem_fragmentation_ratio total_connections_received total_commands_processed "
    "instantaneous_ops_per_sec total_net_input_bytes total_net_output_bytes "
    "rejected_connections expired_keys evicted_keys keyspace_hits keyspace_misses "
    "total_error_replies used_cpu_sys used_cpu_user connected_slaves master_repl_offset "
    "slave_repl_offset master_link_status master_last_io_seconds_ago "
    "master_link_down_since_seconds master_sync_in_progress loading slave0 errorstat_OOM"
).split()
INFO_FIELD_SET = frozenset(INFO_FIELDS)

FAULTS = (
    "memory_pressure",
    "latency_debug_sleep",
    "client_pause",
    "connection_storm",
    "expensive_commands",
    "replication_break",
)

# Key spaces. The load generator owns "k:", "c:", "h:"; faults use "fill:" and "exp:".
LOAD_KEYS = 3000  # string keys k:0 .. k:2999, written by SET
GET_SPACE = 3500  # GETs pick from k:0 .. k:3499, so ~1/7 of GETs miss by design
COUNTERS = 100
HASHES = 50


def log(msg):
    sys.stderr.write("[record %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def die_with_parent():
    """Have the kernel send SIGTERM to this process when its parent dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# --------------------------------------------------------------------------- RESP


class RespError(Exception):
    """An error reply from the server (returned, not raised, by Resp.read)."""


class Resp:
    """A tiny blocking RESP2 client over one TCP connection."""

    def __init__(self, port, timeout=1.0, connect_timeout=None):
        self.sock = socket.create_connection(
            (HOST, port), timeout=connect_timeout if connect_timeout is not None else timeout
        )
        self.sock.settimeout(timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def settimeout(self, t):
        self.sock.settimeout(t)

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, int):
                a = b"%d" % a
            elif isinstance(a, float):
                a = repr(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def send(self, *commands):
        self.sock.sendall(b"".join(self.encode(c) for c in commands))

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return line
            self._fill()

    def read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data = bytes(self.buf[:n])
            del self.buf[: n + 2]
            return data
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        raise ConnectionError("bad RESP line: %r" % line[:80])

    def call(self, *args):
        self.send(args)
        return self.read()

    def pipeline(self, commands):
        if not commands:
            return []
        self.send(*commands)
        return [self.read() for _ in commands]


def must(reply):
    if isinstance(reply, RespError):
        raise reply
    return reply


def parse_info(text):
    out = {}
    for line in text.split("\r\n"):
        if not line or line[0] == "#":
            continue
        k, sep, v = line.partition(":")
        if sep and k in INFO_FIELD_SET:
            out[k] = v
    return out


# ------------------------------------------------------------------------ sampler


def cmd_sample(a):
    die_with_parent()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    lock = threading.Lock()
    out = open(a.out, "a", buffering=1)
    parent = os.getppid()

    def endpoint(name, port):
        conn = None
        k = 0
        while not stop.is_set():
            tick = a.t0 + k
            delay = tick - time.time()
            if delay > 0 and stop.wait(delay):
                break
            if os.getppid() != parent:
                stop.set()
                break
            if time.time() > tick + 0.5:  # more than half a period late: skip this tick
                k = int(math.floor(time.time() - a.t0)) + 1
                continue
            t = time.time()
            rec = {"t": round(t, 3), "endpoint": name, "up": False}
            try:
                if conn is None:
                    conn = Resp(port, timeout=1.0)
                t1 = time.perf_counter()
                pong = conn.call("PING")
                rec["ping_ms"] = round((time.perf_counter() - t1) * 1000.0, 3)
                if isinstance(pong, RespError):
                    rec["ping_error"] = str(pong)[:120]  # e.g. LOADING: still an answer
                info = conn.call("INFO", "ALL")
                if isinstance(info, RespError):
                    raise ConnectionError("INFO: %s" % info)
                rec["up"] = True
                rec["info"] = parse_info(info.decode("utf-8", "replace"))
            except (OSError, ConnectionError, ValueError) as e:
                rec["error"] = ("timeout" if isinstance(e, socket.timeout) else str(e))[:120]
                if conn is not None:
                    conn.close()
                conn = None
            line = json.dumps(rec, separators=(",", ":"))
            with lock:
                out.write(line + "\n")
            k += 1
        if conn is not None:
            conn.close()

    threads = [
        threading.Thread(target=endpoint, args=("primary", a.primary_port), daemon=True),
        threading.Thread(target=endpoint, args=("replica", a.replica_port), daemon=True),
    ]
    for th in threads:
        th.start()
    while not stop.is_set():
        stop.wait(0.5)
    for th in threads:
        th.join(timeout=3)
    out.close()


# ----------------------------------------------------------------- load generator


def load_rate(t, t0, seed):
    """Target ops/s: a slow sine between ~300 and ~3,000 plus a slowly wandering noise."""
    rng = random.Random(seed * 7919 + 17)
    period = rng.uniform(240.0, 360.0)
    phase = rng.uniform(0, 2 * math.pi)
    x = t - t0
    base = 1650.0 + 1350.0 * math.sin(2 * math.pi * x / period + phase)
    # noise: sum of a few incommensurate slow sines (+-~12%) and a fast wobble (+-~5%)
    noise = 0.0
    for i in range(3):
        p = rng.uniform(20.0, 70.0)
        ph = rng.uniform(0, 2 * math.pi)
        noise += 0.04 * math.sin(2 * math.pi * x / p + ph)
    noise += 0.05 * math.sin(2 * math.pi * x / 3.7 + phase)
    return max(150.0, base * (1.0 + noise))


def cmd_load(a):
    die_with_parent()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent = os.getppid()
    blob = bytes(random.Random(a.seed).getrandbits(8) for _ in range(4096))

    # Populate the working set (~3-4 MB) before anything is sampled.
    rng = random.Random(a.seed)
    c = Resp(a.port, timeout=10)
    cmds = []
    for i in range(LOAD_KEYS):
        n = rng.randint(100, 2000)
        o = rng.randint(0, 4096 - n)
        cmds.append(("SET", "k:%d" % i, blob[o : o + n]))
    for i in range(COUNTERS):
        cmds.append(("SET", "c:%d" % i, rng.randint(0, 1000)))
    for i in range(HASHES):
        args = ["HSET", "h:%d" % i]
        for f in range(10):
            args += ["f%d" % f, blob[f * 50 : f * 50 + rng.randint(10, 80)]]
        cmds.append(tuple(args))
    for i in range(0, len(cmds), 500):
        for r in c.pipeline(cmds[i : i + 500]):
            must(r)
    c.close()
    if a.ready:
        open(a.ready, "w").close()

    nthreads = a.threads
    counters = [[0, 0, 0, 0] for _ in range(nthreads)]  # ops, error replies, OOM, conn errors
    t0 = a.t0 if a.t0 else time.time()

    def worker(idx):
        r = random.Random(a.seed * 1000 + idx)
        cnt = counters[idx]
        conn = None
        tick = 0.05
        nxt = time.monotonic()
        debt = 0.0
        while not stop.is_set():
            rate = load_rate(time.time(), t0, a.seed) / nthreads
            debt = min(debt + rate * tick, rate * tick * 2 + 1)
            n = int(debt)
            debt -= n
            try:
                if conn is None:
                    conn = Resp(a.port, timeout=5.0)
                for _ in range(n):
                    p = r.random()
                    if p < 0.70:
                        cmd = ("GET", "k:%d" % r.randrange(GET_SPACE))
                    elif p < 0.85:
                        ln = r.randint(100, 2000)
                        o = r.randint(0, 4096 - ln)
                        cmd = ("SET", "k:%d" % r.randrange(LOAD_KEYS), blob[o : o + ln])
                    elif p < 0.92:
                        cmd = ("INCR", "c:%d" % r.randrange(COUNTERS))
                    elif p < 0.95:
                        cmd = ("EXPIRE", "k:%d" % r.randrange(LOAD_KEYS), r.randint(5, 60))
                    elif p < 0.98:
                        cmd = ("MGET",) + tuple(
                            "k:%d" % r.randrange(GET_SPACE) for _ in range(r.randint(5, 10))
                        )
                    else:
                        cmd = ("HGETALL", "h:%d" % r.randrange(HASHES))
                    reply = conn.call(*cmd)
                    cnt[0] += 1
                    if isinstance(reply, RespError):
                        cnt[1] += 1
                        if str(reply).startswith("OOM"):
                            cnt[2] += 1
                    if stop.is_set():
                        break
            except (OSError, ConnectionError, ValueError):
                cnt[3] += 1
                if conn is not None:
                    conn.close()
                conn = None
                stop.wait(0.2)
            nxt += tick
            d = nxt - time.monotonic()
            if d > 0:
                stop.wait(d)
            elif d < -1.0:
                nxt = time.monotonic()  # fell behind (server stalled): do not catch up
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(nthreads)]
    for th in threads:
        th.start()
    logf = open(a.log, "a", buffering=1) if a.log else None
    prev = [0, 0, 0, 0]
    nxt = math.floor(time.time()) + 1
    while not stop.is_set():
        if stop.wait(max(0.0, nxt - time.time())):
            break
        if os.getppid() != parent:
            break
        tot = [sum(c[i] for c in counters) for i in range(4)]
        d = [tot[i] - prev[i] for i in range(4)]
        prev = tot
        if logf:
            logf.write(
                "%d target=%d ops=%d err=%d oom=%d conn_err=%d\n"
                % (nxt, load_rate(nxt, t0, a.seed), d[0], d[1], d[2], d[3])
            )
        nxt += 1
    stop.set()
    for th in threads:
        th.join(timeout=6)


# ------------------------------------------------------------------------- faults


class Ctx:
    def __init__(self, primary, replica, dead, stop):
        self.primary = primary
        self.replica = replica
        self.dead = dead
        self.stop = stop

    def sleep_until(self, t):
        while True:
            d = t - time.time()
            if d <= 0:
                return
            if self.stop.wait(min(d, 0.5)):
                raise KeyboardInterrupt


def fault_memory_pressure(ctx, p, dur):
    ctl = Resp(ctx.primary, timeout=10)
    maxmem = int(must(ctl.call("CONFIG", "GET", "maxmemory"))[1])
    value = b"F" * (p["value_kb"] * 1024)
    per_s = p["fill_mb_s"] * 1024.0 / p["value_kb"]
    inject = time.time()
    end = inject + dur
    switch_at = inject + dur * (1.0 - p["noeviction_frac"])
    n = 0
    ooms = 0
    switched = None
    reached = None
    debt = 0.0
    nxt = time.time()
    while time.time() < end:
        if switched is None and time.time() >= switch_at:
            must(ctl.call("CONFIG", "SET", "maxmemory-policy", "noeviction"))
            switched = time.time()
        debt += per_s * 0.1
        k = int(debt)
        debt -= k
        cmds = [("SET", "fill:%d" % (n + i), value) for i in range(k)]
        for r in ctl.pipeline(cmds):
            if isinstance(r, RespError):
                ooms += 1
        n += k
        if reached is None:
            info = parse_info(must(ctl.call("INFO", "memory")).decode())
            if int(info.get("used_memory", 0)) >= maxmem * 0.98:
                reached = time.time()
        nxt += 0.1
        ctx.sleep_until(nxt)
    t_clean = time.time()
    for i in range(0, n, 500):
        must(ctl.call("UNLINK", *["fill:%d" % j for j in range(i, min(n, i + 500))]))
    must(ctl.call("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"))
    removed = time.time()
    ctl.close()
    return inject, removed, {
        "filler_sets": n,
        "filler_oom_replies": ooms,
        "maxmemory_reached_after_s": round(reached - inject, 1) if reached else None,
        "noeviction_from_s": round(switched - inject, 1) if switched else None,
        "cleanup_s": round(removed - t_clean, 1),
    }


def fault_latency_debug_sleep(ctx, p, dur):
    c = Resp(ctx.primary, timeout=p["sleep_s"] + 5)
    inject = time.time()
    end = inject + dur
    sleeps = 0
    # With a fixed period the sleeps would stay phase-locked with the 1 s sampling tick
    # (and could miss every sample): the gaps between sleeps are 0.5-1.5 x every_s, random.
    rng = random.Random(int(inject * 1000))
    nxt = inject
    while True:
        left = end - time.time()
        if left < 0.05:
            break
        must(c.call("DEBUG", "SLEEP", "%.3f" % min(p["sleep_s"], left)))
        sleeps += 1
        if p["every_s"] > 0:
            nxt += p["every_s"] * rng.uniform(0.5, 1.5)
            if nxt >= end:
                ctx.sleep_until(end)
                break
            ctx.sleep_until(nxt)
    removed = time.time()
    c.close()
    return inject, removed, {"debug_sleeps": sleeps}


def fault_client_pause(ctx, p, dur):
    c = Resp(ctx.primary, timeout=p["pause_ms"] / 1000.0 + 10)
    inject = time.time()
    end = inject + dur
    pauses = 0
    while True:
        left_ms = int((end - time.time()) * 1000)
        if left_ms < 50:
            break
        ms = min(p["pause_ms"], left_ms)
        must(c.call("CLIENT", "PAUSE", ms, p["mode"]))
        issued = time.time()
        pauses += 1
        # Re-issue just before this pause runs out (mode ALL also postpones our own
        # command until then, so it lands right as the previous pause expires).
        ctx.sleep_until(min(end, issued + ms / 1000.0 - 0.05))
    if p["mode"] == "WRITE":
        must(c.call("CLIENT", "UNPAUSE"))
    else:
        ctx.sleep_until(end)
        must(c.call("PING"))  # answered once the last pause has expired
    removed = time.time()
    c.close()
    return inject, removed, {"pauses_issued": pauses}


def fault_connection_storm(ctx, p, dur):
    ctl = Resp(ctx.primary, timeout=5)
    orig = must(ctl.call("CONFIG", "GET", "maxclients"))[1].decode()
    held = []
    refused = 0
    inject = time.time()
    must(ctl.call("CONFIG", "SET", "maxclients", p["maxclients"]))
    end = inject + dur

    def attempt():
        nonlocal refused
        try:
            c = Resp(ctx.primary, timeout=2)
            r = c.call("PING")
        except (OSError, ConnectionError):
            refused += 1
            return False
        if isinstance(r, RespError):
            refused += 1
            c.close()
            return False
        held.append(c)
        return True

    while time.time() < end and len(held) < 2000:  # open until the first refusal
        if not attempt():
            break
    full_after = time.time() - inject
    while time.time() < end:
        ctx.sleep_until(min(end, time.time() + 1.0 / p["attempts_per_s"]))
        if time.time() < end:
            attempt()
    n_held = len(held)
    for c in held:
        c.close()
    must(ctl.call("CONFIG", "SET", "maxclients", orig))
    removed = time.time()
    ctl.close()
    return inject, removed, {
        "connections_held": n_held,
        "refused_attempts": refused,
        "full_after_s": round(full_after, 2),
        "maxclients_restored": int(orig),
    }


# A pure Lua loop: calls nothing in Redis (a redis.call('TIME') in the loop would count
# every call in total_commands_processed), so it is calibrated to the wanted length first.
LUA_SPIN = "local n = tonumber(ARGV[1]) local x = 0 for i = 1, n do x = x + i end return 1"


def calibrate_spin(conn, target_ms):
    n = 1000000
    for _ in range(12):
        t = time.perf_counter()
        must(conn.call("EVAL", LUA_SPIN, 0, n))
        ms = (time.perf_counter() - t) * 1000.0
        if ms >= 20:
            return max(1, int(n * target_ms / ms)), ms * target_ms / ms
        n *= 4
    return n, ms


def fault_expensive_commands(ctx, p, dur):
    ctl = Resp(ctx.primary, timeout=30)
    inject = time.time()
    end = inject + dur
    variant = p["variant"]
    created = []
    if variant == "keys":
        nk = p["keys"]
        cmds = []
        for i in range(0, nk, 1000):
            args = ["MSET"]
            for j in range(i, min(nk, i + 1000)):
                args += ["exp:%d" % j, "v%d" % j]
            cmds.append(tuple(args))
        for i in range(0, len(cmds), 20):
            for r in ctl.pipeline(cmds[i : i + 20]):
                must(r)
        command = ("KEYS", "exp:*99")  # walks the whole keyspace, returns ~1% of it
    elif variant == "sort":
        for li in range(p["lists"]):
            name = "exp:list:%d" % li
            created.append(name)
            rng = random.Random(li)
            cmds = []
            for i in range(0, p["list_len"], 2000):
                cmds.append(
                    ("RPUSH", name)
                    + tuple(rng.randrange(10**9) for _ in range(min(2000, p["list_len"] - i)))
                )
            for r in ctl.pipeline(cmds):
                must(r)
        command = None  # SORT exp:list:<conn % lists> LIMIT 0 10
    else:  # lua
        spin, _ = calibrate_spin(ctl, p["lua_ms"])
        command = ("EVAL", LUA_SPIN, 0, spin)
    prepared = time.time()
    stats = {"calls": 0, "errors": 0}
    lock = threading.Lock()

    def hammer(idx):
        c = Resp(ctx.primary, timeout=30)
        cmd = command or ("SORT", created[idx % len(created)], "LIMIT", 0, 10)
        calls = errs = 0
        while time.time() < end and not ctx.stop.is_set():
            r = c.call(*cmd)
            calls += 1
            if isinstance(r, RespError):
                errs += 1
        c.close()
        with lock:
            stats["calls"] += calls
            stats["errors"] += errs

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(p["conns"])]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t_clean = time.time()
    if variant == "keys":
        nk = p["keys"]
        for i in range(0, nk, 2000):
            must(ctl.call("UNLINK", *["exp:%d" % j for j in range(i, min(nk, i + 2000))]))
    elif created:
        must(ctl.call("UNLINK", *created))
    removed = time.time()
    ctl.close()
    notes = {"lua_iterations": command[3]} if variant == "lua" else {}
    return inject, removed, notes | {
        "prepare_s": round(prepared - inject, 1),
        "expensive_calls": stats["calls"],
        "call_errors": stats["errors"],
        "mean_call_latency_ms": round((t_clean - prepared) * 1000.0 * p["conns"] / max(1, stats["calls"]), 1),
        "cleanup_s": round(removed - t_clean, 1),
    }


def fault_replication_break(ctx, p, dur):
    # The dead port must still refuse connections.
    try:
        socket.create_connection((HOST, ctx.dead), timeout=1).close()
        raise RuntimeError("port %d is in use; it was supposed to be dead" % ctx.dead)
    except ConnectionRefusedError:
        pass
    c = Resp(ctx.replica, timeout=10)
    must(c.call("REPLICAOF", HOST, ctx.dead))
    inject = time.time()
    ctx.sleep_until(inject + dur)
    must(c.call("REPLICAOF", HOST, ctx.primary))
    removed = time.time()
    c.close()
    return inject, removed, {"dead_port": ctx.dead}


FAULT_FUNCS = {
    "memory_pressure": fault_memory_pressure,
    "latency_debug_sleep": fault_latency_debug_sleep,
    "client_pause": fault_client_pause,
    "connection_storm": fault_connection_storm,
    "expensive_commands": fault_expensive_commands,
    "replication_break": fault_replication_break,
}


def describe(name, p):
    if name == "memory_pressure":
        return "SET fill:* %d KB values at %d MB/s; maxmemory-policy noeviction for the last %d%%" % (
            p["value_kb"], p["fill_mb_s"], round(p["noeviction_frac"] * 100))
    if name == "latency_debug_sleep":
        how = "back to back" if p["every_s"] == 0 else "every %g s on average (0.5-1.5x, random)" % p["every_s"]
        return "DEBUG SLEEP %g %s" % (p["sleep_s"], how)
    if name == "client_pause":
        return "CLIENT PAUSE %d %s, re-issued as each expires" % (p["pause_ms"], p["mode"])
    if name == "connection_storm":
        return "maxclients %d, open until refused, then %g new attempts/s" % (
            p["maxclients"], p["attempts_per_s"])
    if name == "expensive_commands":
        if p["variant"] == "keys":
            return "KEYS exp:*99 over %dk extra keys from %d connections" % (p["keys"] // 1000, p["conns"])
        if p["variant"] == "sort":
            return "SORT ... LIMIT 0 10 of %d lists x %dk numbers from %d connections" % (
                p["lists"], p["list_len"] // 1000, p["conns"])
        return "EVAL busy Lua loop of %d ms from %d connections" % (p["lua_ms"], p["conns"])
    if name == "replication_break":
        return "replica: REPLICAOF 127.0.0.1 <dead port>, then back to the primary"
    return ""


# ----------------------------------------------------------------------- schedule


def env_float(name, default):
    v = os.environ.get(name)
    return float(v) if v else default


def make_plan(seed, minutes):
    """Fault order, durations, intensities and planned start offsets for a seed."""
    rng = random.Random("record-dataset-%d" % seed)
    lead = env_float("RECORD_LEAD_S", 360.0)
    gap = env_float("RECORD_GAP_S", 90.0)
    tail = env_float("RECORD_TAIL_S", 75.0)
    dmin = env_float("RECORD_MIN_DUR_S", 30.0)
    dmax = env_float("RECORD_MAX_DUR_S", 60.0)
    names = [f for f in os.environ.get("RECORD_FAULTS", ",".join(FAULTS)).split(",") if f]
    for f in names:
        if f not in FAULT_FUNCS:
            raise SystemExit("unknown fault in RECORD_FAULTS: %s" % f)
    rng.shuffle(names)
    k = (seed - 1) % len(names)  # so that seeds 1 and 2 do not open with the same fault
    names = names[k:] + names[:k]
    total = minutes * 60.0
    # Cleanup after memory_pressure/expensive_commands takes a few seconds: keep room.
    extra = {"memory_pressure": 4.0, "expensive_commands": 5.0}
    durs = [float(rng.randint(int(dmin), int(dmax))) for _ in names]
    budget = total - lead - tail - gap * (len(names) - 1) - sum(extra.get(n, 0) for n in names)
    if sum(durs) > budget:
        over = sum(durs) - budget
        room = sum(d - dmin for d in durs)
        if over > room:
            raise SystemExit(
                "--minutes %g is too short for %d faults (needs about %.1f)"
                % (minutes, len(names), (total + over - room) / 60.0))
        durs = [d - (d - dmin) * over / room for d in durs]
        durs = [float(math.floor(d)) for d in durs]
    slack = max(0.0, budget - sum(durs))
    weights = [rng.random() for _ in range(len(names))]  # before first, and each gap
    ws = sum(weights) or 1.0
    # keep a share of the slack at the end
    slack *= 0.8
    plan = []
    t = lead
    for i, name in enumerate(names):
        t += slack * weights[i] / ws
        plan.append({"fault": name, "start": round(t), "duration": durs[i],
                     "params": fault_params(name, rng, seed)})
        t = round(t) + durs[i] + extra.get(name, 0) + gap
    return plan, total, tail, gap


def fault_params(name, rng, seed):
    # Odd and even seeds draw from different choices, so sessions 1 and 2 always differ.
    odd = seed % 2 == 1
    if name == "memory_pressure":
        return {"value_kb": rng.choice([32, 64] if odd else [100]),
                "fill_mb_s": rng.choice([6, 10] if odd else [16]),
                "noeviction_frac": rng.choice([0.35, 0.4] if odd else [0.5])}
    if name == "latency_debug_sleep":
        return {"sleep_s": rng.choice([0.3, 0.4, 0.5] if odd else [0.2, 0.3, 0.4]),
                "every_s": 0 if odd else rng.choice([1, 2])}
    if name == "client_pause":
        return {"pause_ms": rng.choice([1000, 1500, 2000, 3000]), "mode": "ALL" if odd else "WRITE"}
    if name == "connection_storm":
        return {"maxclients": rng.choice([48, 64] if odd else [80, 96]),
                "attempts_per_s": rng.choice([5, 10] if odd else [3, 20])}
    if name == "expensive_commands":
        variant = ["keys", "lua", "sort"][(seed - 1) % 3]
        return {"variant": variant, "conns": rng.randint(2, 4),
                "keys": rng.choice([150000, 200000, 250000]),
                "lua_ms": rng.choice([50, 70, 100]),
                "lists": 2, "list_len": rng.choice([100000, 150000])}
    return {}


def plan_markdown(plan):
    rows = ["| # | fault | planned start (s) | duration (s) | intensity |",
            "|---|---|---|---|---|"]
    for i, f in enumerate(plan, 1):
        rows.append("| %d | %s | %d | %d | %s |" % (
            i, f["fault"], f["start"], f["duration"], describe(f["fault"], f["params"])))
    return "\n".join(rows)


def cmd_plan(a):
    plan, total, tail, gap = make_plan(a.seed, a.minutes)
    print("seed %d, %g minutes" % (a.seed, a.minutes))
    print(plan_markdown(plan))


def cmd_ports(a):
    rng = random.Random()
    found = []
    tries = 0
    while len(found) < a.n:
        tries += 1
        if tries > 5000:
            raise SystemExit("no free ports in %d-%d" % (a.low, a.high))
        port = rng.randint(a.low, a.high)
        if port in found:
            continue
        s = socket.socket()
        try:
            s.bind((HOST, port))
        except OSError:
            continue
        finally:
            s.close()
        # and nothing listening on another address with the same port
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            continue
        except OSError:
            pass
        found.append(port)
    print(" ".join(map(str, found)))


# ---------------------------------------------------------------------------- run


def spawn(args, **kw):
    return subprocess.Popen([sys.executable, os.path.abspath(__file__)] + args, **kw)


def stop_child(p, timeout=8):
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def summarize_load(path, t0, t1):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                t = int(parts[0])
                if t0 <= t < t1:
                    rows.append({k: int(v) for k, v in (x.split("=") for x in parts[1:])} | {"t": t})
    except OSError:
        pass
    return rows


def cmd_run(a):
    stop = threading.Event()

    def on_signal(*_):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    plan, total, tail, gap = make_plan(a.seed, a.minutes)
    log("seed %d: planned schedule (offsets from session start)\n%s" % (a.seed, plan_markdown(plan)))
    os.makedirs(a.workdir, exist_ok=True)
    raw = os.path.join(a.workdir, "samples.raw.jsonl")
    load_log = os.path.join(a.workdir, "load.log")
    ready = os.path.join(a.workdir, "load.ready")
    for f in (raw, load_log, ready):
        if os.path.exists(f):
            os.unlink(f)

    # Wait for the replica to be in sync with the primary.
    deadline = time.time() + 60
    while True:
        try:
            c = Resp(a.replica_port, timeout=2)
            info = parse_info(must(c.call("INFO", "replication")).decode())
            c.close()
            if info.get("master_link_status") == "up":
                break
        except (OSError, ConnectionError):
            pass
        if time.time() > deadline:
            raise SystemExit("replica did not reach master_link_status:up within 60 s")
        time.sleep(0.2)

    load = sampler = None
    ctx = Ctx(a.primary_port, a.replica_port, a.dead_port, stop)
    executed = []
    try:
        t_load0 = time.time()
        load = spawn(["load", "--port", str(a.primary_port), "--seed", str(a.seed),
                      "--threads", str(a.threads), "--log", load_log, "--ready", ready,
                      "--t0", "%.3f" % (math.ceil(t_load0) + 3)])
        while not os.path.exists(ready):
            if load.poll() is not None:
                raise SystemExit("load generator exited with %s" % load.returncode)
            if stop.wait(0.1):
                raise KeyboardInterrupt
        t0 = float(math.ceil(time.time()) + 2)
        sampler = spawn(["sample", "--primary-port", str(a.primary_port),
                         "--replica-port", str(a.replica_port), "--t0", "%.3f" % t0, "--out", raw])
        log("session start t0=%.3f; load generator pid %d, sampler pid %d; %d min planned"
            % (t0, load.pid, sampler.pid, a.minutes))
        ctx.sleep_until(t0)
        last_end = None
        next_report = t0 + 30
        for f in plan:
            # Inject half-way between two ticks, so no sample is in flight at the moment.
            start = t0 + f["start"] + 0.5
            if last_end is not None and start < last_end + gap:
                start = t0 + math.ceil(last_end + gap - t0 - 0.5) + 0.5
            while time.time() < start:
                ctx.sleep_until(min(start, next_report))
                if time.time() >= next_report:
                    report_load(load_log, next_report - 30, next_report)
                    next_report += 30
                for p, nm in ((load, "load generator"), (sampler, "sampler")):
                    if p.poll() is not None:
                        raise SystemExit("%s exited with %s" % (nm, p.returncode))
            log("injecting %s for %ds: %s" % (f["fault"], f["duration"], describe(f["fault"], f["params"])))
            inject, removed, notes = FAULT_FUNCS[f["fault"]](ctx, f["params"], f["duration"])
            last_end = removed
            e = {"fault": f["fault"], "inject": inject, "removed": removed,
                 "start_s": round(inject - t0, 1), "window_s": round(removed - inject, 1),
                 "params": f["params"], "notes": notes}
            executed.append(e)
            log("removed %s: window %.1f-%.1f s (%.1f s) %s" % (
                f["fault"], e["start_s"], removed - t0, e["window_s"], json.dumps(notes)))
            while next_report <= time.time():
                next_report += 30
        t_end = max(t0 + total, (last_end or t0) + tail)
        while time.time() < t_end:
            ctx.sleep_until(min(t_end, next_report))
            if time.time() >= next_report:
                report_load(load_log, next_report - 30, next_report)
                next_report += 30
        time.sleep(0.3)
    except KeyboardInterrupt:
        raise SystemExit("interrupted")
    finally:
        stop_child(sampler)
        stop_child(load)

    duration = t_end - t0
    with open(os.path.join(a.workdir, "schedule.json"), "w") as f:
        json.dump({"seed": a.seed, "t0": t0, "duration_s": duration, "faults": executed}, f, indent=1)
    n = write_labelled(raw, a.out, executed, t0, t_end)
    log("wrote %d samples to %s (%d bytes)" % (n, a.out, os.path.getsize(a.out)))

    load_rows = summarize_load(load_log, int(t0), int(t_end))
    md = [
        "### seed %d: %s" % (a.seed, os.path.basename(a.out)),
        "",
        "Recorded %s UTC, %.0f s (%.1f min), %d samples; first %d s normal (training)."
        % (time.strftime("%Y-%m-%d %H:%M", time.gmtime(t0)), duration, duration / 60.0, n,
           int(min(e["start_s"] for e in executed)) if executed else int(duration)),
    ]
    if load_rows:
        ops = [r["ops"] for r in load_rows]
        md.append("Load generator (%d connections): %d-%d ops/s, mean %.0f (min/max over 1 s); "
                  "%d error replies (%d OOM), %d connection errors in total."
                  % (a.threads, min(ops), max(ops), statistics.mean(ops),
                     sum(r["err"] for r in load_rows), sum(r["oom"] for r in load_rows),
                     sum(r["conn_err"] for r in load_rows)))
    md += ["", "Executed schedule (offsets in seconds from session start = first sample):", "",
           "| # | fault | start (s) | end (s) | window (s) | intensity | what the injector saw |",
           "|---|---|---|---|---|---|---|"]
    for i, e in enumerate(executed, 1):
        md.append("| %d | %s | %.1f | %.1f | %.1f | %s | %s |" % (
            i, e["fault"], e["start_s"], e["start_s"] + e["window_s"], e["window_s"],
            describe(e["fault"], e["params"]),
            ", ".join("%s=%s" % kv for kv in e["notes"].items())))
    print("\n".join(md) + "\n")
    ok = check_file(a.out, expect_duration=duration)
    sys.stdout.flush()
    if not ok:
        raise SystemExit("checks failed")


def report_load(path, t0, t1):
    rows = summarize_load(path, int(t0), int(t1))
    if rows:
        ops = [r["ops"] for r in rows]
        log("load %ds: target %d-%d ops/s, did %d-%d (mean %.0f), err %d, oom %d, conn_err %d"
            % (len(rows), min(r["target"] for r in rows), max(r["target"] for r in rows),
               min(ops), max(ops), statistics.mean(ops), sum(r["err"] for r in rows),
               sum(r["oom"] for r in rows), sum(r["conn_err"] for r in rows)))


def write_labelled(raw, out, executed, t0, t_end):
    windows = sorted((e["inject"], e["removed"], e["fault"]) for e in executed)
    recs = []
    with open(raw) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut short when the sampler was stopped
            if t0 - 0.001 <= r["t"] < t_end:
                recs.append(r)
    recs.sort(key=lambda r: (r["t"], r["endpoint"]))
    tmp = out + ".part"
    with gzip.open(tmp, "wt", compresslevel=9) as g:
        for r in recs:
            label = "normal"
            for a, b, name in windows:
                if a <= r["t"] < b:
                    label = name
                    break
            o = {"t": r["t"], "endpoint": r["endpoint"], "label": label, "up": r["up"]}
            for k in ("ping_ms", "ping_error", "error", "info"):
                if k in r:
                    o[k] = r[k]
            g.write(json.dumps(o, separators=(",", ":")) + "\n")
    os.replace(tmp, out)
    return len(recs)


# -------------------------------------------------------------------------- check


def num(info, k):
    v = info.get(k)
    if v is None:
        return None
    try:
        return float(v)
    except ValueError:
        return None


def cmd_check(a):
    if not check_file(a.file):
        raise SystemExit(1)


def check_file(path, expect_duration=None):
    recs = []
    with gzip.open(path, "rt") as g:
        for line in g:
            recs.append(json.loads(line))
    by_ep = {"primary": [], "replica": []}
    for r in recs:
        by_ep[r["endpoint"]].append(r)
    failures = []
    out = []

    def fail(msg):
        failures.append(msg)

    t0 = recs[0]["t"]
    t1 = recs[-1]["t"]
    dur = expect_duration or (t1 - t0 + 1)
    if any(recs[i]["t"] < recs[i - 1]["t"] for i in range(1, len(recs))):
        fail("timestamps are not in order")
    for ep, rs in by_ep.items():
        if any(rs[i]["t"] <= rs[i - 1]["t"] for i in range(1, len(rs))):
            fail("%s: timestamps not strictly increasing" % ep)
        if abs(len(rs) - dur) > max(5, 0.02 * dur):
            fail("%s: %d samples for %.0f s" % (ep, len(rs), dur))
    run_ids = {r["info"].get("run_id") for r in recs if r.get("info")}
    labels = []
    for r in recs:
        if r["label"] not in labels:
            labels.append(r["label"])
    for f in FAULTS:
        if f not in labels:
            fail("label %s missing" % f)

    out.append("Per-label samples (up/total) and PING round trip of the samples that answered:")
    out.append("")
    out.append("| label | primary up/total | primary ping p50 / max (ms) | replica up/total | replica ping p50 / max (ms) |")
    out.append("|---|---|---|---|---|")
    for lab in ["normal"] + [l for l in labels if l != "normal"]:
        cells = [lab]
        for ep in ("primary", "replica"):
            rs = [r for r in by_ep[ep] if r["label"] == lab]
            up = [r for r in rs if r["up"]]
            pings = sorted(r["ping_ms"] for r in rs if "ping_ms" in r)
            cells.append("%d/%d" % (len(up), len(rs)))
            cells.append("%.2f / %.1f" % (statistics.median(pings), pings[-1]) if pings else "-")
        out.append("| " + " | ".join(cells) + " |")
    out.append("")

    # Windows: contiguous runs of the same label on the primary.
    def windows(label):
        ws = []
        cur = None
        for r in by_ep["primary"]:
            if r["label"] == label:
                if cur is None:
                    cur = [r["t"], r["t"]]
                cur[1] = r["t"]
            elif cur is not None:
                ws.append(cur)
                cur = None
        if cur is not None:
            ws.append(cur)
        return ws

    def around(ep, a, b, pre=30.0):
        before = [r for r in by_ep[ep] if a - pre <= r["t"] < a and r.get("info")]
        inside = [r for r in by_ep[ep] if a <= r["t"] <= b]
        return before, inside

    def rate(rs, key):
        """Per-second increase of a counter over the samples of rs that answered."""
        pts = [(r["t"], num(r["info"], key)) for r in rs if r.get("info") and num(r["info"], key) is not None]
        if len(pts) < 2 or pts[-1][0] == pts[0][0]:
            return None
        return (pts[-1][1] - pts[0][1]) / (pts[-1][0] - pts[0][0])

    def delta(rs, key, before=None):
        pts = [num(r["info"], key) for r in rs if r.get("info") and num(r["info"], key) is not None]
        if before:
            b = [num(r["info"], key) for r in before if num(r["info"], key) is not None]
            if b:
                pts = [b[-1]] + pts
        if len(pts) < 2:
            return 0
        return pts[-1] - pts[0]

    def hit_rate(rs, before=None):
        h = delta(rs, "keyspace_hits", before)
        m = delta(rs, "keyspace_misses", before)
        return h / (h + m) if h + m else None

    out.append("What changed in each fault window (primary unless marked; 'before' = the 30 s before it):")
    out.append("")
    bullets = []
    for lab in FAULTS:
        for a, b in windows(lab):
            before, inside = around("primary", a, b)
            rbefore, rinside = around("replica", a, b)
            up_in = [r for r in inside if r.get("info")]
            pings = [r["ping_ms"] for r in inside if "ping_ms" in r]
            down = sum(1 for r in inside if not r["up"])
            cps_b = rate(before, "total_commands_processed")
            cps_i = rate(up_in, "total_commands_processed")
            base = "%s @%.0f-%.0f s: " % (lab, a - t0, b - t0)
            parts = []
            if lab == "memory_pressure":
                mm = max(num(r["info"], "maxmemory") or 0 for r in up_in) or 1
                um = max(num(r["info"], "used_memory") for r in up_in)
                ev = delta(up_in, "evicted_keys", before)
                oom_vals = [int(r["info"]["errorstat_OOM"].split("=")[1].split(",")[0])
                            for r in up_in if "errorstat_OOM" in r["info"]]
                oom_b = [int(r["info"]["errorstat_OOM"].split("=")[1].split(",")[0])
                         for r in before if "errorstat_OOM" in r["info"]]
                oom = (max(oom_vals) - (oom_b[-1] if oom_b else 0)) if oom_vals else 0
                hr_b, hr_i = hit_rate(before), hit_rate(up_in, before)
                parts.append("used_memory up to %.1f MB = %.0f%% of maxmemory" % (um / 2**20, 100 * um / mm))
                parts.append("evicted_keys +%d" % ev)
                parts.append("OOM error replies +%d" % oom)
                parts.append("hit rate %s -> %s" % (pct(hr_b), pct(hr_i)))
                rm = max((num(r["info"], "used_memory") or 0) for r in rinside if r.get("info")) if any(r.get("info") for r in rinside) else 0
                parts.append("replica used_memory up to %.1f MB" % (rm / 2**20))
                if ev <= 0:
                    fail("memory_pressure: evicted_keys did not grow")
                if oom <= 0:
                    fail("memory_pressure: no OOM error replies")
            elif lab in ("latency_debug_sleep", "client_pause", "expensive_commands"):
                slow = sum(1 for p in pings if p > 100)
                parts.append("ping p50 %.1f ms, max %.1f ms, %d samples > 100 ms, %d of %d samples down"
                             % (statistics.median(pings) if pings else float("nan"),
                                max(pings) if pings else float("nan"), slow, down, len(inside)))
                if cps_b and cps_i is not None:
                    parts.append("commands/s %.0f -> %.0f" % (cps_b, cps_i))
                cpu_b = (rate(before, "used_cpu_user") or 0) + (rate(before, "used_cpu_sys") or 0)
                cpu_i = (rate(up_in, "used_cpu_user") or 0) + (rate(up_in, "used_cpu_sys") or 0)
                parts.append("CPU %.0f%% -> %.0f%%" % (100 * cpu_b, 100 * cpu_i))
                if lab == "latency_debug_sleep" and slow == 0:
                    fail("latency_debug_sleep: no PING over 100 ms")
                if lab == "client_pause" and slow == 0 and down == 0 and not (
                        cps_b and cps_i is not None and cps_i < 0.5 * cps_b):
                    fail("client_pause: no slow PING, no down sample and no drop in commands/s")
                if lab == "expensive_commands" and not (cpu_i > cpu_b + 0.2 or slow):
                    fail("expensive_commands: neither CPU nor PING went up")
            elif lab == "connection_storm":
                rej = delta(up_in, "rejected_connections", before)
                cc = max(num(r["info"], "connected_clients") for r in up_in)
                ccb = max(num(r["info"], "connected_clients") for r in before) if before else 0
                mc = min(num(r["info"], "maxclients") for r in up_in)
                parts.append("maxclients %d, connected_clients %d -> %d, rejected_connections +%d, "
                             "total_connections_received +%d"
                             % (mc, ccb, cc, rej, delta(up_in, "total_connections_received", before)))
                if rej <= 0:
                    fail("connection_storm: rejected_connections did not grow")
            elif lab == "replication_break":
                rup = [r for r in rinside if r.get("info")]
                downs = sum(1 for r in rup if r["info"].get("master_link_status") == "down")
                slaves = [num(r["info"], "connected_slaves") for r in up_in]
                lds = [num(r["info"], "master_link_down_since_seconds") or 0 for r in rup]
                parts.append("replica master_link_status down in %d of %d samples (down_since up to %d s); "
                             "primary connected_slaves %d -> %d"
                             % (downs, len(rup), max(lds) if lds else 0,
                                max(num(r["info"], "connected_slaves") for r in before) if before else -1,
                                min(slaves) if slaves else -1))
                if downs == 0:
                    fail("replication_break: master_link_status never down on the replica")
            bullets.append((a, "- " + base + "; ".join(parts)))
    out += [b for _, b in sorted(bullets)]
    out.append("")
    ends = [b for lab in FAULTS for _, b in windows(lab)]
    for ep in ("primary", "replica"):
        odd = [r for r in by_ep[ep] if r["label"] == "normal"
               and (not r["up"] or r.get("ping_ms", 0) > 100)]
        after = [r for r in odd if any(0 < r["t"] - e <= 31 for e in ends)]
        out.append("Normal-labelled %s samples that were down or had PING > 100 ms: %d within 30 s "
                   "after a fault, %d elsewhere%s." % (
                       ep, len(after), len(odd) - len(after),
                       "" if len(odd) == len(after) else " (at %s s)" % ", ".join(
                           "%.0f" % (r["t"] - t0) for r in odd if r not in after)))
    out.append("")
    out.append("Checks: %d samples (primary %d, replica %d) over %.0f s; run_ids %s; %s."
               % (len(recs), len(by_ep["primary"]), len(by_ep["replica"]), dur,
                  ", ".join(sorted(x[:8] + "…" for x in run_ids if x)),
                  "all passed" if not failures else "FAILED: " + "; ".join(failures)))
    print("\n".join(out) + "\n")
    return not failures


def pct(x):
    return "-" if x is None else "%.0f%%" % (100 * x)


# ---------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run")
    r.add_argument("--primary-port", type=int, required=True)
    r.add_argument("--replica-port", type=int, required=True)
    r.add_argument("--dead-port", type=int, required=True)
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--minutes", type=float, default=20.0)
    r.add_argument("--threads", type=int, default=6)
    r.add_argument("--out", required=True)
    r.add_argument("--workdir", required=True)
    r.set_defaults(fn=cmd_run)

    s = sub.add_parser("sample")
    s.add_argument("--primary-port", type=int, required=True)
    s.add_argument("--replica-port", type=int, required=True)
    s.add_argument("--t0", type=float, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_sample)

    l = sub.add_parser("load")
    l.add_argument("--port", type=int, required=True)
    l.add_argument("--seed", type=int, default=1)
    l.add_argument("--threads", type=int, default=6)
    l.add_argument("--t0", type=float, default=0.0)
    l.add_argument("--log")
    l.add_argument("--ready")
    l.set_defaults(fn=cmd_load)

    c = sub.add_parser("check")
    c.add_argument("file")
    c.set_defaults(fn=cmd_check)

    p = sub.add_parser("plan")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--minutes", type=float, default=20.0)
    p.set_defaults(fn=cmd_plan)

    q = sub.add_parser("ports")
    q.add_argument("n", type=int)
    q.add_argument("--low", type=int, default=45000)
    q.add_argument("--high", type=int, default=46999)
    q.set_defaults(fn=cmd_ports)

    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
