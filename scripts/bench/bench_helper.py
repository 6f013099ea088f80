#!/usr/bin/env python3
"""Measurement helper for scripts/bench-collect.sh (python3 standard library only).

Subcommands:
  config        write an agent configuration with N endpoints over a few redis-servers
  agent-window  CPU time of a running agent against its collection rounds over a window
  scrape        CPU time of a running redis_exporter over sequential scrapes
  render        wall time of sequential GETs of /metrics (curl), plus the agent CPU spent
  scrapers      one or more scrapers at a pace, with or without gzip: bytes on the wire
                and agent CPU per scrape
  report        the Markdown table, from the key/value file the shell script filled

CPU time is read per thread from /proc/PID/task/TID/schedstat (nanoseconds), polled
every 0.5 s so threads that exit during a window are still counted up to their last
poll; utime+stime from /proc/PID/stat (clock ticks, 10 ms here) is printed alongside
as a cross-check. Output is "key value" lines.
"""

import argparse
import http.client
import os
import random
import threading
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- CPU


def tick_cpu_seconds(pid):
    """utime + stime of the whole process (all threads, living or not), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class CpuMeter:
    """Sum of per-thread run time (schedstat, ns) since start()."""

    def __init__(self, pid):
        self.pid = pid
        self.base = {}
        self.last = {}
        self.ticks0 = None
        self.precise = os.path.exists(f"/proc/{pid}/task/{pid}/schedstat")

    def _read(self):
        out = {}
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except FileNotFoundError:
            sys.exit(f"process {self.pid} is gone")
        for tid in tids:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat") as f:
                    out[tid] = int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
        return out

    def start(self):
        self.base = self._read() if self.precise else {}
        self.last = dict(self.base)
        self.ticks0 = tick_cpu_seconds(self.pid)

    def poll(self):
        if self.precise:
            self.last.update(self._read())

    def stop(self):
        """(precise seconds, tick seconds) since start()."""
        self.poll()
        ticks = tick_cpu_seconds(self.pid) - self.ticks0
        if not self.precise:
            return ticks, ticks
        ns = sum(v - self.base.get(tid, 0) for tid, v in self.last.items())
        return ns / 1e9, ticks


def sleep_polling(meter, seconds, step=0.5):
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(step, left))
        meter.poll()


# ------------------------------------------------------------------------ metrics


def http_get(host, port, path, headers=None, timeout=30):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            sys.exit(f"GET http://{host}:{port}{path}: HTTP {resp.status}: {body[:200]!r}")
        return body.decode("utf-8", "replace")
    finally:
        conn.close()


def samples(text, name):
    """Values of every sample of metric `name` in Prometheus text."""
    out = []
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name):]
        if rest.startswith("{"):
            rest = rest[rest.rindex("}") + 1:]
        elif not rest.startswith(" "):
            continue  # a longer name sharing the prefix
        out.append(float(rest.split()[0]))
    return out


def agent_state(port):
    text = http_get("127.0.0.1", port, "/metrics")
    up = samples(text, "redis_up")
    return {
        "rounds": sum(samples(text, "redis_agent_collection_rounds_total")),
        "errors": sum(samples(text, "redis_agent_collection_errors_total")),
        "endpoints": sum(samples(text, "redis_agent_endpoints")),
        "up": sum(1 for v in up if v == 1),
        "up_series": len(up),
    }


# ------------------------------------------------------------------- subcommands


def cmd_config(a):
    ports = [int(p) for p in a.ports.split(",")]
    dcs = ["dc1"] if a.endpoints == 1 else ["dc1", "dc2"]
    if a.endpoints % len(dcs):
        sys.exit("--endpoints must be 1 or even")
    lines = ["instances:"]
    k = 0
    for i in range(a.endpoints // len(dcs)):
        lines += [f"  - uid: bench-{i + 1:04d}", "    active_dc: dc1", "    endpoints:"]
        for dc in dcs:
            lines.append(f"      {dc}: {{host: 127.0.0.1, port: {ports[k % len(ports)]}}}")
            k += 1
    lines += [
        "datacenters: {" + ", ".join(f"{d}: {{name: {d}}}" for d in dcs) + "}",
        f"monitoring_interval: {a.interval}",
        "timeouts: {connect: 2s, command: 2s}",
        "auto_failover: false",
        f"api: {{host: 127.0.0.1, port: {a.api_port}}}",
    ]
    print("\n".join(lines))


def cmd_agent_window(a):
    meter = CpuMeter(a.pid)
    s0 = agent_state(a.port)
    meter.start()
    t0 = time.monotonic()
    sleep_polling(meter, a.seconds)
    cpu, ticks = meter.stop()
    wall = time.monotonic() - t0
    s1 = agent_state(a.port)
    print(f"cpu_s {cpu:.6f}")
    print(f"tick_cpu_s {ticks:.2f}")
    print(f"wall_s {wall:.3f}")
    print(f"rounds {s1['rounds'] - s0['rounds']:.0f}")
    print(f"errors {s1['errors'] - s0['errors']:.0f}")
    print(f"endpoints {s1['endpoints']:.0f}")
    print(f"up {s1['up']}")
    print(f"up_series {s1['up_series']}")
    print(f"precise {int(meter.precise)}")


def cmd_scrape(a):
    with open(a.paths) as f:
        paths = [p.strip() for p in f if p.strip()]
    paths = paths * a.repeat
    meter = CpuMeter(a.pid)
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)

    def get(path):
        nonlocal conn
        for attempt in (1, 2):
            try:
                conn.request("GET", path)  # no Accept-Encoding: no gzip
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    for path in paths[: a.warmup]:
        get(path)
    bad = 0
    meter.start()
    t0 = time.monotonic()
    last_poll = t0
    for path in paths:
        status, body = get(path)
        if status != 200 or b"\nredis_up 1\n" not in body:
            bad += 1
        now = time.monotonic()
        if now - last_poll > 0.5:
            meter.poll()
            last_poll = now
    cpu, ticks = meter.stop()
    wall = time.monotonic() - t0
    conn.close()
    print(f"cpu_s {cpu:.6f}")
    print(f"tick_cpu_s {ticks:.2f}")
    print(f"wall_s {wall:.3f}")
    print(f"scrapes {len(paths)}")
    print(f"bad {bad}")
    print(f"bytes_last {len(body)}")
    print(f"precise {int(meter.precise)}")


def cmd_render(a):
    """Sequential GETs of /metrics. Two figures: the wall time of each GET as curl sees
    it (render, transfer of ~17 MB over loopback, and curl itself, all on the same two
    cores), and the render time the agent reports in `redis_agent_metrics_render_seconds`
    (each body carries the latest render's time; GETs within a round are mostly served
    the body already rendered, see docs/metrics.md "Serving a scrape")."""
    meter = CpuMeter(a.pid)
    tmp = f"/tmp/bench-render-{os.getpid()}.txt"
    cmd = ["curl", "-sS", "-o", tmp, "-w", "%{http_code} %{time_total} %{size_download}"]
    if a.accept:
        cmd += ["-H", f"Accept: {a.accept}"]
    cmd.append(a.url)
    times, sizes, renders = [], set(), []
    meter.start()
    t0 = time.monotonic()
    try:
        for i in range(a.count + 1):
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
            if out[0] != "200":
                sys.exit(f"GET {a.url}: HTTP {out[0]}")
            with open(tmp, "rb") as f:
                for line in f:
                    if line.startswith(b"redis_agent_metrics_render_seconds "):
                        if i > 0:
                            renders.append(float(line.split()[1]) * 1000)
                        break
            if i < a.count:
                times.append(float(out[1]) * 1000)
                sizes.add(int(out[2]))
            meter.poll()
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    cpu, _ = meter.stop()
    wall = time.monotonic() - t0

    def p90(xs):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, max(0, -(-9 * len(xs) // 10) - 1))]  # nearest rank

    print(f"median_ms {statistics.median(times):.2f}")
    print(f"p90_ms {p90(times):.2f}")
    print(f"max_ms {max(times):.2f}")
    print(f"render_median_ms {statistics.median(renders):.2f}")
    print(f"render_p90_ms {p90(renders):.2f}")
    print(f"bytes {max(sizes)}")
    # Agent CPU per GET, less what collection costs over the same wall time.
    per_get = max(0.0, cpu - a.bg_rate * wall) / (a.count + 1)
    print(f"cpu_per_get_ms {per_get * 1000:.2f}")


def renders_so_far(port):
    """`redis_agent_metrics_renders_total`, both formats."""
    return sum(samples(http_get("127.0.0.1", port, "/metrics"), "redis_agent_metrics_renders_total"))


def cmd_scrapers(a):
    """`--scrapers` scrapers, each on its own keep-alive connection, GET /metrics every
    `--every` seconds (0: back to back; the first at a random offset within `--every`,
    as Prometheus spreads its targets) for `--seconds`, with `Accept-Encoding: gzip` when
    `--gzip`. Bytes on the wire per scrape (the body as sent), agent CPU per scrape less
    what collection costs over the same wall time, and the renders the agent counted."""
    headers = {"Accept-Encoding": "gzip"} if a.gzip else {}
    before = renders_so_far(a.port)
    sizes, errors, lock = [], [], threading.Lock()
    rng = random.Random(a.seed)
    offsets = [rng.uniform(0, a.every) if a.every > 0 else 0.0 for _ in range(a.scrapers)]
    meter = CpuMeter(a.pid)
    meter.start()
    t0 = time.monotonic()
    end = t0 + a.seconds

    def scraper(offset):
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=60)
        due = t0 + offset
        try:
            while due < end:
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                conn.request("GET", "/metrics", headers=headers)
                resp = conn.getresponse()
                body = resp.read()  # http.client leaves the body compressed
                gzipped = resp.getheader("Content-Encoding") == "gzip"
                if resp.status != 200 or gzipped != a.gzip:
                    raise RuntimeError(f"HTTP {resp.status}, Content-Encoding gzip: {gzipped}")
                with lock:
                    sizes.append(len(body))
                due = due + a.every if a.every > 0 else time.monotonic()
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append(str(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=scraper, args=(o,)) for o in offsets]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(0.5)
        meter.poll()
    cpu, _ = meter.stop()
    wall = time.monotonic() - t0
    if errors or not sizes:
        sys.exit(f"scrapers: {errors[:3] or 'no scrape finished'}")
    renders = renders_so_far(a.port) - before
    print(f"scrapes {len(sizes)}")
    print(f"bytes {statistics.mean(sizes):.0f}")
    print(f"cpu_per_scrape_ms {max(0.0, cpu - a.bg_rate * wall) / len(sizes) * 1000:.2f}")
    print(f"renders {renders:.0f}")


# ------------------------------------------------------------------------- report


def cmd_report(a):
    kv = {}
    with open(a.results) as f:
        for line in f:
            if line.strip():
                k, _, v = line.rstrip("\n").partition(" ")
                kv[k] = v

    def num(k):
        return float(kv[k])

    def verdict(ok):
        return "**PASS**" if ok else "**MISS**"

    rows = []
    ns = [n for n in (1, 50, 1000) if f"agent_{n}_cpu_s" in kv]
    for n in ns:
        agent_ms = num(f"agent_{n}_cpu_s") / num(f"agent_{n}_rounds") * 1000
        exp_ms = num(f"exp_{n}_cpu_s") / num(f"exp_{n}_scrapes") * 1000
        ratio = agent_ms / exp_ms
        detail_a = f"{num(f'agent_{n}_rounds'):.0f} rounds, {kv[f'agent_{n}_interval']} s interval"
        detail_e = f"{num(f'exp_{n}_scrapes'):.0f} scrapes"
        rows.append(
            [
                f"CPU per endpoint collection, {n:,} endpoint{'s' if n > 1 else ''}",
                f"{agent_ms:.3f} ms ({detail_a})",
                f"{exp_ms:.3f} ms ({detail_e})",
                f"{ratio:.3f}",
                "ratio ≤ 0.125",
                verdict(ratio <= 0.125),
            ]
        )
    for n in ns:
        rows.append(
            [
                f"RSS after the {n:,}-endpoint run",
                f"{num(f'agent_{n}_rss_mb'):.1f} MB",
                f"{num(f'exp_{n}_rss_mb'):.1f} MB",
                f"{num(f'agent_{n}_rss_mb') / num(f'exp_{n}_rss_mb'):.2f}",
                "< 150 MB (1,000)" if n == 1000 else "",
                verdict(num("agent_1000_rss_mb") < 150) if n == 1000 else "",
            ]
        )
    if "agent_1000_cpu_s" in kv:
        pct = num("agent_1000_cpu_s") / num("agent_1000_wall_s") * 100
        rows.append(
            [
                f"Agent CPU, 1,000 endpoints every {kv['agent_1000_interval']} s",
                f"{pct:.2f} % of one core",
                "",
                "",
                "< 20 %",
                verdict(pct < 20),
            ]
        )
    for fmt, label in (("text", "text 0.0.4"), ("om", "OpenMetrics 1.0.0")):
        if f"render_{fmt}_median_ms" not in kv:
            continue
        p90 = num(f"render_{fmt}_render_p90_ms")
        rows.append(
            [
                f"`/metrics` render at 1,000 endpoints, {label} ({kv['render_count']} GETs)",
                f"render median {num(f'render_{fmt}_render_median_ms'):.1f} ms, p90 {p90:.1f} ms "
                f"(agent's own measure); whole GET as curl sees it: median "
                f"{num(f'render_{fmt}_median_ms'):.1f} ms, p90 {num(f'render_{fmt}_p90_ms'):.1f} ms; "
                f"{num(f'render_{fmt}_bytes') / 1e6:.2f} MB, "
                f"~{num(f'render_{fmt}_cpu_per_get_ms'):.0f} ms agent CPU per GET",
                "",
                "",
                "render p90 < 50 ms",
                verdict(p90 < 50),
            ]
        )
    for n in (1, 2):
        for enc in ("plain", "gzip"):
            k = f"scrape_{n}_{enc}_"
            if f"{k}scrapes" not in kv:
                continue
            rows.append(
                [
                    f"`/metrics` at 1,000 endpoints, {n} scraper{'s' if n > 1 else ''} every "
                    f"{kv['scrape_every']} s, {'gzip' if enc == 'gzip' else 'no gzip'}",
                    f"{num(k + 'bytes') / 1e6:.2f} MB on the wire and "
                    f"{num(k + 'cpu_per_scrape_ms'):.1f} ms agent CPU per scrape "
                    f"({num(k + 'scrapes'):.0f} scrapes, {num(k + 'renders'):.0f} renders)",
                    "",
                    "",
                    "",
                    "",
                ]
            )

    out = []
    out.append("| Measure | redis-failover-agent | redis_exporter | agent / exporter | Goal | Result |")
    out.append("|---|---|---|---|---|---|")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out.append("")
    out.append(f"Machine: {kv.get('machine', '?')}.  ")
    out.append(f"Versions: {kv.get('versions', '?')}.  ")
    out.append(f"Run: {kv.get('run', '?')}.")
    out.append("")
    out.append(
        "CPU is the process's run time summed over its threads (`/proc/PID/task/*/schedstat`), "
        "cross-checked against utime+stime in `/proc/PID/stat`. "
        "Agent: total CPU over a window after warm-up divided by the growth of "
        "`redis_agent_collection_rounds_total` (summed over endpoints); the two `/metrics` reads "
        "that bound the window fall outside the CPU window, so the figure is collection plus "
        "whatever else the agent does at rest. "
        "redis_exporter: CPU over sequential scrapes (one keep-alive connection, no gzip, "
        "`-redis-only-metrics`) divided by the scrapes; N = 1 scrapes `/metrics` of a "
        "single-target exporter, N = 50 and 1,000 scrape `/scrape?target=` over N targets "
        "that repeat the same redis-servers. Neither figure includes redis-server CPU or the "
        "client's. RSS is VmRSS at the end of each run."
    )
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("config")
    c.add_argument("--endpoints", type=int, required=True)
    c.add_argument("--ports", required=True, help="comma-separated redis-server ports")
    c.add_argument("--interval", type=int, required=True, help="seconds")
    c.add_argument("--api-port", type=int, required=True)
    c.set_defaults(func=cmd_config)

    c = sub.add_parser("agent-window")
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--seconds", type=float, required=True)
    c.set_defaults(func=cmd_agent_window)

    c = sub.add_parser("scrape")
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--paths", required=True, help="file with one URL path per line")
    c.add_argument("--repeat", type=int, default=1)
    c.add_argument("--warmup", type=int, default=20)
    c.set_defaults(func=cmd_scrape)

    c = sub.add_parser("render")
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("--url", required=True)
    c.add_argument("--count", type=int, default=20)
    c.add_argument("--accept")
    c.add_argument("--bg-rate", type=float, default=0.0, help="background CPU s per wall s")
    c.set_defaults(func=cmd_render)

    c = sub.add_parser("scrapers")
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("--port", type=int, required=True)
    c.add_argument("--scrapers", type=int, default=1)
    c.add_argument("--every", type=float, default=5.0, help="seconds between a scraper's GETs")
    c.add_argument("--seconds", type=float, required=True)
    c.add_argument("--gzip", action="store_true")
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--bg-rate", type=float, default=0.0, help="background CPU s per wall s")
    c.set_defaults(func=cmd_scrapers)

    c = sub.add_parser("report")
    c.add_argument("results")
    c.set_defaults(func=cmd_report)

    a = p.parse_args()
    a.func(a)


if __name__ == "__main__":
    main()
