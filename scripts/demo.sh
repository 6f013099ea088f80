#!/usr/bin/env bash
# The whole system on this machine, on loopback: two datacenters (a and b, each a Redis
# primary with a replica), moto_server as Route53 with app.example.com pointing at a,
# Prometheus and Alertmanager with the shipped files (prometheus/, alertmanager/), and the
# agent, all on the shipped fast profile (profiles/fast.yaml). Installs what is missing
# first (scripts/install-deps.sh), then prints where to look.
#
#   scripts/demo.sh            start everything; Ctrl-C stops it all
#   scripts/demo.sh --outage   also stop datacenter a and narrate the failover as it
#                              happens: the alert, the webhook, each confirmation step,
#                              the DNS change, the agent's alert in Alertmanager
#   scripts/demo.sh --outage --exit
#                              the same, then stop; exit status 0 only if DNS moved to b
#                              and the agent's notice reached Alertmanager (for tests)
#
# Only 127.0.0.1 is used. Everything runs from a temporary directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

outage=false
exit_after=false
for arg in "$@"; do
  case "$arg" in
    --outage) outage=true ;;
    --exit) exit_after=true ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (see --help)" >&2; exit 64 ;;
  esac
done

scripts/install-deps.sh >&2
echo "building the agent (cargo build --locked) ..." >&2
cargo build --quiet --locked
agent_bin="$repo/target/debug/redis-failover-agent"

work=$(mktemp -d -t redis-failover-demo.XXXXXX)
pids=()
cleanup() {
  trap - EXIT INT TERM
  echo >&2
  echo "stopping everything the demo started ..." >&2
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for f in "$work"/redis-*.pid; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url what
  for _ in $(seq 1 120); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.5
  done
  echo "error: $2 did not answer at $1; its log: $work" >&2
  exit 1
}

redis_start() { # name port [replicaof-port]
  local name=$1 port=$2
  local args=(--port "$port" --bind 127.0.0.1 --save '' --appendonly yes
    --repl-diskless-sync-delay 0 --dir "$work" --appendfilename "$name.aof"
    --appenddirname "aof-$name" --daemonize yes --pidfile "$work/redis-$name.pid"
    --logfile "$work/redis-$name.log")
  if [ $# -ge 3 ]; then args+=(--replicaof 127.0.0.1 "$3"); fi
  redis-server "${args[@]}"
}

echo "starting in $work ..." >&2
declare -A port
for name in a0 a1 b0 b1 moto prometheus alertmanager agent sink; do
  port[$name]=$(free_port)
done
redis_start a0 "${port[a0]}"
redis_start a1 "${port[a1]}" "${port[a0]}"
redis_start b0 "${port[b0]}"
redis_start b1 "${port[b1]}" "${port[b0]}"

# What Alertmanager would send to Slack and PagerDuty lands here (sink.log).
python3 - "${port[sink]}" "$work/sink.log" >"$work/sink.out" 2>&1 <<'PY' &
import http.server, sys
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(log, "ab") as f:
            f.write(self.path.encode() + b" " + body + b"\n")
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
pids+=($!)
disown "$!"

moto_server -H 127.0.0.1 -p "${port[moto]}" >"$work/moto.log" 2>&1 &
pids+=($!)
disown "$!"
wait_http "http://127.0.0.1:${port[moto]}/moto-api/" "moto_server"

export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1
zone=$(python3 - "${port[moto]}" <<'PY'
import boto3, sys
r53 = boto3.client("route53", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}")
zone = r53.create_hosted_zone(Name="example.com", CallerReference="demo")["HostedZone"]["Id"]
r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{
    "Action": "UPSERT", "ResourceRecordSet": {"Name": "app.example.com", "Type": "CNAME",
    "TTL": 5, "ResourceRecords": [{"Value": "redis-a.example.com"}]}}]})
print(zone.split("/")[-1])
PY
)

token="demo-webhook-token-0123456789"
api_key="demo-operator-api-key-0123456789"
printf '%s' "$token" >"$work/webhook_token"

# Overlays of the shipped files: only addresses, secret paths and the fast profile's
# intervals change; rules, routes, receivers and templates are the shipped ones.
python3 - "$repo" "$work" "${port[agent]}" "${port[alertmanager]}" "${port[prometheus]}" \
  "${port[sink]}" <<'PY'
import os, sys, yaml
repo, work, agent, am, prom, sink = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
profile = yaml.safe_load(open(f"{repo}/profiles/fast.yaml"))
interval = profile["prometheus"]["scrape_interval"]

def secret(name, content):
    path = f"{work}/{name}"
    with open(path, "w") as f:
        f.write(content)
    return path

def rewrite(v, parent=""):
    if isinstance(v, dict):
        for k in list(v):
            if k == "credentials_file":
                v[k] = f"{work}/webhook_token"
            elif k in ("api_url_file", "slack_api_url_file"):
                v[k] = secret("slack_url", f"http://127.0.0.1:{sink}/slack")
            elif k.endswith("_file") and isinstance(v[k], str):
                v[k] = secret(k, "demo-secret")
            elif k == "url" and parent == "webhook_configs":
                v[k] = f"http://127.0.0.1:{agent}/webhook/alertmanager"
            elif k == "url" and parent == "pagerduty_configs":
                v[k] = f"http://127.0.0.1:{sink}/pagerduty"
            elif k in ("api_url", "slack_api_url"):
                v[k] = f"http://127.0.0.1:{sink}/slack"
            elif k == "pagerduty_url":
                v[k] = f"http://127.0.0.1:{sink}/pagerduty"
            else:
                rewrite(v[k], k)
    elif isinstance(v, list):
        for item in v:
            rewrite(item, parent)

am_cfg = yaml.safe_load(open(f"{repo}/alertmanager/alertmanager.yml"))
rewrite(am_cfg)
am_cfg["templates"] = [os.path.join(repo, "alertmanager", t) for t in am_cfg.get("templates", [])]
yaml.safe_dump(am_cfg, open(f"{work}/alertmanager.yml", "w"))

p = yaml.safe_load(open(f"{repo}/prometheus/prometheus.yml"))
p["global"]["scrape_interval"] = interval
p["global"]["evaluation_interval"] = profile["prometheus"]["evaluation_interval"]
p["global"].pop("scrape_timeout", None)
p["rule_files"] = [os.path.join(repo, "prometheus", f) for f in p["rule_files"]]
targets = {"redis-failover-agent": agent, "prometheus": prom, "alertmanager": am}
jobs = [j for j in p["scrape_configs"] if j["job_name"] in targets]
for j in jobs:
    j["scrape_interval"] = interval
    j.pop("scrape_timeout", None)
    j.pop("basic_auth", None)
    j["static_configs"] = [{"targets": [f"127.0.0.1:{targets[j['job_name']]}"]}]
p["scrape_configs"] = jobs
p["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am}"]}]}]}
yaml.safe_dump(p, open(f"{work}/prometheus.yml", "w"))
PY

fast=$(python3 -c 'import yaml,sys; print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))["agent"]))' profiles/fast.yaml)
cat >"$work/agent.yaml" <<EOF
instances:
  - uid: app
    active_dc: a
    endpoints:
      a: {host: 127.0.0.1, port: ${port[a0]}}
      b: {host: 127.0.0.1, port: ${port[b0]}}
datacenters: {a: {name: a}, b: {name: b}}
timeouts: {connect: 300ms, command: 300ms}
reconnect_max_backoff: 1s
$fast
auto_failover: true
state_dir: $work/state
model_path: $work/models
webhook: {bearer_token_file: $work/webhook_token}
api: {api_key: '\${DEMO_API_KEY}'}
alertmanager: {urls: ['http://127.0.0.1:${port[alertmanager]}']}
dns_provider: route53
dns_config:
  zone_id: '$zone'
  aws_access_key: '\${AWS_ACCESS_KEY_ID}'
  aws_secret_key: '\${AWS_SECRET_ACCESS_KEY}'
  endpoint_url: http://127.0.0.1:${port[moto]}
  records:
    - {instance_name: app, name: app.example.com, type: CNAME, ttl: 5,
       values: {a: redis-a.example.com, b: redis-b.example.com}}
EOF

DEMO_API_KEY="$api_key" "$agent_bin" --config "$work/agent.yaml" \
  --listen "127.0.0.1:${port[agent]}" >"$work/agent.log" 2>&1 &
pids+=($!)
disown "$!"
wait_http "http://127.0.0.1:${port[agent]}/healthz" "the agent"

prometheus-alertmanager --config.file="$work/alertmanager.yml" --storage.path="$work/am" \
  --web.listen-address="127.0.0.1:${port[alertmanager]}" --cluster.listen-address= \
  >"$work/alertmanager.log" 2>&1 &
pids+=($!)
disown "$!"
wait_http "http://127.0.0.1:${port[alertmanager]}/-/ready" "Alertmanager"

prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prom" \
  --web.listen-address="127.0.0.1:${port[prometheus]}" >"$work/prometheus.log" 2>&1 &
pids+=($!)
disown "$!"
wait_http "http://127.0.0.1:${port[prometheus]}/-/ready" "Prometheus"

cat <<EOF

Running (logs in $work):
  datacenter a    Redis 127.0.0.1:${port[a0]} (replica :${port[a1]})
  datacenter b    Redis 127.0.0.1:${port[b0]} (replica :${port[b1]})
  Route53         moto_server http://127.0.0.1:${port[moto]}  zone $zone, app.example.com -> redis-a.example.com
  agent metrics   http://127.0.0.1:${port[agent]}/metrics
  agent API       curl -H 'X-API-Key: $api_key' http://127.0.0.1:${port[agent]}/api/status
  decisions       curl -H 'X-API-Key: $api_key' http://127.0.0.1:${port[agent]}/api/failover/history
  Prometheus      http://127.0.0.1:${port[prometheus]}/alerts
  Alertmanager    http://127.0.0.1:${port[alertmanager]}/#/alerts
  Slack/PagerDuty what Alertmanager sent: $work/sink.log

EOF

if ! $outage; then
  echo "Ctrl-C stops everything."
  while sleep 1; do :; done
fi

echo "waiting until Prometheus sees both datacenters up ..."
python3 - "${port[prometheus]}" <<'PY'
import json, sys, time, urllib.request, urllib.parse
q = urllib.parse.quote('count(redis_up{redis_instance="app"} == 1)')
for _ in range(120):
    try:
        r = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v1/query?query={q}"))
        if r["data"]["result"] and r["data"]["result"][0]["value"][1] == "2":
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit("Prometheus never saw both datacenters up")
PY

echo "stopping datacenter a (kill -9 of its primary and replica) ..."
kill -9 "$(cat "$work/redis-a0.pid")" "$(cat "$work/redis-a1.pid")"
rm -f "$work/redis-a0.pid" "$work/redis-a1.pid"

set +e
python3 - "${port[prometheus]}" "${port[agent]}" "${port[alertmanager]}" "${port[moto]}" \
  "$zone" "$api_key" <<'PY'
import json, sys, time, urllib.request, urllib.parse
import boto3
prom, agent, am, moto = map(int, sys.argv[1:5])
zone, key = sys.argv[5], sys.argv[6]
r53 = boto3.client("route53", endpoint_url=f"http://127.0.0.1:{moto}")
t0 = time.time()
def say(text):
    print(f"  +{time.time() - t0:5.1f} s  {text}", flush=True)
def get(url, headers=None):
    return json.load(urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2))
def cname():
    for r in r53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]:
        if r["Name"].rstrip(".") == "app.example.com" and r["Type"] == "CNAME":
            return r["ResourceRecords"][0]["Value"]
say("datacenter a stopped")
seen_alert, seen_steps, seen_webhook, dns, notice = {}, 0, 0.0, "redis-a.example.com", False
while time.time() - t0 < 90 and not (notice and dns != "redis-a.example.com"):
    try:
        for a in get(f"http://127.0.0.1:{prom}/api/v1/alerts")["data"]["alerts"]:
            name, state = a["labels"]["alertname"], a["state"]
            if a["labels"].get("failover_candidate") == "true" and seen_alert.get(name) != state:
                seen_alert[name] = state
                say(f"Prometheus: {name} {state} (datacenter {a['labels'].get('datacenter')})")
        m = urllib.request.urlopen(f"http://127.0.0.1:{agent}/metrics", timeout=2).read().decode()
        for line in m.splitlines():
            if line.startswith('redis_agent_webhook_requests_total{result="accepted"}'):
                n = float(line.split()[-1])
                if n > seen_webhook:
                    say(f"agent: webhook delivery accepted from Alertmanager ({int(n)} so far)")
                    seen_webhook = n
        h = get(f"http://127.0.0.1:{agent}/api/failover/history?instance_uid=app&limit=1", {"X-API-Key": key})
        if h["incidents"]:
            steps = h["incidents"][0]["steps"]
            for s in steps[seen_steps:]:
                say(f"agent: {s['name']}: {s['detail']}")
            seen_steps = len(steps)
        now = cname()
        if now != dns:
            say(f"Route53: app.example.com -> {now}")
            dns = now
        if not notice:
            for a in get(f"http://127.0.0.1:{am}/api/v2/alerts"):
                if a["labels"].get("source") == "redis-failover-agent":
                    say(f"Alertmanager: {a['labels']['alertname']}: {a['annotations'].get('summary', '')}")
                    notice = True
    except Exception as e:  # a component restarting: keep narrating
        say(f"(waiting: {e})")
    time.sleep(0.5)
ok = notice and dns == "redis-b.example.com"
print("failover complete" if ok else "the failover did not complete within 90 s; see the logs")
sys.exit(0 if ok else 1)
PY
status=$?
set -e
if $exit_after; then
  exit "$status"
fi
echo "Ctrl-C stops everything."
while sleep 1; do :; done
