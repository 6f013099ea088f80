#!/usr/bin/env bash
# Checks alertmanager/ (alertmanager.yml and templates/) with the real Alertmanager 0.25
# programs:
#   1. `amtool check-config` on the shipped file (its *_file secrets need not exist: Alertmanager
#      reads them when it sends), and on the variants with the ready-to-enable PagerDuty and
#      e-mail routes, and the fleet's second agent, uncommented; statically, that no inhibit
#      rule can target a failover candidate, and that the fleet's receiver sends to every
#      agent with the same token.
#   2. Routing: every case of alertmanager/tests/routes.tsv with `amtool config routes test
#      --verify.receivers`, and every alerting rule of prometheus/rules/*.yml: candidates go to
#      the agent first and then to people, the Watchdog to the null receiver, the rest to the
#      Slack receiver of their severity.
#   3. Templates: `amtool template render` of the Slack, PagerDuty and e-mail templates with
#      alertmanager/tests/*.json; the messages carry what, where, values, the runbook link
#      (annotation runbook_url, absolute) and the dashboard link (redis.grafana_url +
#      annotation dashboard).
#   4. A real Alertmanager on 127.0.0.1, started with a generated overlay of alertmanager.yml
#      (secret files -> temp files, the agent's URL and the Slack webhook URL -> a local
#      recording receiver, group_wait/group_interval shortened; nothing else changes). The
#      alerts of alertmanager/tests/inhibition.tsv are posted at once: each must be active or
#      inhibited as listed, active candidates reach the agent's webhook with the bearer token,
#      active alerts reach Slack with the templated message, no inhibited alert is delivered
#      anywhere, and resolving the candidates delivers "resolved" to the agent.
#
# Tools: amtool and prometheus-alertmanager (Debian/Ubuntu: apt-get install
# prometheus-alertmanager; or the release tarball from prometheus.io), python3 with PyYAML,
# curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
# shellcheck source=scripts/lib/procs.sh
source scripts/lib/procs.sh

config=alertmanager/alertmanager.yml
templates_glob='alertmanager/templates/*.tmpl'
routes_cases=alertmanager/tests/routes.tsv
inhibition_cases=alertmanager/tests/inhibition.tsv

fail() {
    echo "alertmanager check FAILED: $*" >&2
    exit 1
}

for tool in amtool prometheus-alertmanager python3 curl; do
    if ! command -v "$tool" >/dev/null; then
        case $tool in
            amtool | prometheus-alertmanager)
                hint="apt-get install -y --no-install-recommends prometheus-alertmanager (or the release tarball from https://prometheus.io/download/)" ;;
            python3) hint="apt-get install -y python3 python3-yaml" ;;
            curl) hint="apt-get install -y curl" ;;
        esac
        fail "$tool is not installed; install it with: $hint"
    fi
done
python3 -c 'import yaml' 2>/dev/null || fail "python3 has no PyYAML; install it with: apt-get install -y python3-yaml (or pip install pyyaml)"
echo "using $(amtool --version 2>&1 | head -1)"

tmp=$(mktemp -d)
pids=()
cleanup() {
    stop_pids "${pids[@]}"
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------
echo "== 1. amtool check-config"
amtool check-config "$config" >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out" >&2; fail "amtool check-config $config"; }
grep -q ' - [1-9][0-9]* templates' "$tmp/check.out" || { cat "$tmp/check.out" >&2; fail "$config loads no template (templates: must find alertmanager/templates/*.tmpl relative to the file)"; }
echo "ok   $config: $(grep -E '^ - ' "$tmp/check.out" | sed 's/^ - //' | paste -sd, | sed 's/,/, /g')"

# Variants with the commented "# [pagerduty] " / "# [email] " route lines enabled, next to a
# link to the templates so that the relative templates: path resolves as in the repository.
mkdir -p "$tmp/variants"
ln -s "$repo/alertmanager/templates" "$tmp/variants/templates"
make_variant() { # NAME SED-EXPRESSION
    sed -E "$2" "$config" >"$tmp/variants/$1.yml"
}
make_variant base 's/^//'
make_variant pagerduty 's/^( *)# \[pagerduty\] /\1/'
make_variant email 's/^( *)# \[email\] /\1/'
make_variant fleet 's/^( *)# \[fleet\] /\1/'
make_variant all 's/^( *)# \[(pagerduty|email|fleet)\] /\1/'
for variant in pagerduty email fleet all; do
    cmp -s "$tmp/variants/base.yml" "$tmp/variants/$variant.yml" && fail "variant $variant: no '# [$variant] ' lines to enable in $config"
    amtool check-config "$tmp/variants/$variant.yml" >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out" >&2; fail "amtool check-config with the $variant routes enabled"; }
    echo "ok   $config with the $variant route(s) uncommented"
done

# A fleet: the agent's receiver lists each agent once, all with the agent's settings and the
# same token file, so that any agent's delivery counts the same.
python3 - "$tmp/variants/fleet.yml" <<'PY' || fail "the fleet's agent receiver (see above)"
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
[agent] = [r for r in cfg["receivers"] if r["name"] == "redis-failover-agent"]
hooks = agent.get("webhook_configs") or []
urls = [h.get("url", "") for h in hooks]
problems = []
if len(hooks) < 2:
    problems.append(f"{len(hooks)} webhook_configs: the fleet variant must list two agents or more")
if len(set(urls)) != len(urls):
    problems.append(f"an agent is listed twice: {urls}")
for h in hooks:
    auth = (h.get("http_config") or {}).get("authorization") or {}
    if not h.get("url", "").endswith("/webhook/alertmanager"):
        problems.append(f"{h.get('url')!r} is not an agent's /webhook/alertmanager")
    if h.get("send_resolved") is not True or h.get("max_alerts") != 0:
        problems.append(f"{h.get('url')}: send_resolved: true and max_alerts: 0, as the first agent")
    if auth != (hooks[0].get("http_config") or {}).get("authorization") or auth.get("type") != "Bearer":
        problems.append(f"{h.get('url')}: not the same bearer token as {urls[0]}: {auth}")
print("\n".join(problems), file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "ok   $config with the fleet uncommented: every agent once, the same bearer token file"

# Inhibited alerts reach no receiver at all, the agent's webhook included: every inhibit rule
# must exclude failover candidates from its targets.
python3 - "$config" <<'PY' || fail "an inhibit rule can silence a failover candidate or an agent notice (see above)"
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
bad = 0
for i, rule in enumerate(cfg.get("inhibit_rules") or []):
    if rule.get("target_match") or rule.get("target_match_re"):
        print(f"inhibit rule {i}: use target_matchers, not target_match/target_match_re", file=sys.stderr)
        bad += 1
    targets = [m.replace(" ", "") for m in rule.get("target_matchers") or []]
    if 'failover_candidate!="true"' not in targets:
        print(f"inhibit rule {i}: target_matchers {targets} lack failover_candidate!=\"true\"", file=sys.stderr)
        bad += 1
    if 'source!="redis-failover-agent"' not in targets:
        print(f"inhibit rule {i}: target_matchers {targets} lack source!=\"redis-failover-agent\"", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
PY
echo "ok   no inhibit rule targets failover_candidate=\"true\" or the agent's notices"

# ---------------------------------------------------------------------------------------
echo "== 2. routing (amtool config routes test --verify.receivers)"
route_failures=0
route_count=0
# route_test VARIANT EXPECTED WHAT LABELS...
route_test() {
    local variant=$1 expected=$2 what=$3 got
    shift 3
    route_count=$((route_count + 1))
    if got=$(amtool config routes test --config.file="$tmp/variants/$variant.yml" --verify.receivers="$expected" "$@" </dev/null 2>&1); then
        printf 'ok   %-9s %-50s %s\n' "$variant" "$expected" "$what"
    else
        printf 'FAIL %-9s %s\n       labels:   %s\n       expected: %s\n       got:      %s\n' \
            "$variant" "$what" "$*" "$expected" "$(head -1 <<<"$got")" >&2
        route_failures=$((route_failures + 1))
    fi
}
while IFS=$'\t' read -r variant expected labels what; do
    [[ -z $variant || $variant == \#* ]] && continue
    [[ -n $expected && -n $labels ]] || fail "$routes_cases: malformed line: $variant $expected $labels"
    read -r -a label_args <<<"$labels"
    route_test "$variant" "$expected" "$what" "${label_args[@]}"
done <"$routes_cases"

# Every alerting rule Prometheus evaluates, with its static labels.
if compgen -G 'prometheus/rules/*.yml' >/dev/null; then
    python3 - prometheus/rules/*.yml >"$tmp/rule-cases.tsv" <<'PY'
import sys, yaml
people = {"critical": "slack-critical", "warning": "slack-warning", "info": "slack-info"}
for path in sys.argv[1:]:
    doc = yaml.safe_load(open(path)) or {}
    for group in doc.get("groups") or []:
        for rule in group.get("rules") or []:
            if "alert" not in rule:
                continue
            labels = {"alertname": rule["alert"]}
            labels.update({k: str(v) for k, v in (rule.get("labels") or {}).items() if "{{" not in str(v)})
            scope = labels.get("scope")
            if scope == "instance":
                labels.setdefault("redis_instance", "redis-app-01")
                labels.setdefault("datacenter", "east")
            elif scope == "datacenter":
                labels.setdefault("datacenter", "east")
            if rule["alert"] == "Watchdog":
                expected = "deadmans-switch"
            else:
                expected = people.get(labels.get("severity"), "slack-warning")
                if labels.get("failover_candidate") == "true":
                    expected = "redis-failover-agent," + expected
            args = " ".join(f"{k}={v}" for k, v in labels.items())
            print(f"{expected}\t{args}\t{path}: {rule['alert']}")
PY
    rules_count=0
    while IFS=$'\t' read -r expected labels what; do
        read -r -a label_args <<<"$labels"
        route_test base "$expected" "$what" "${label_args[@]}"
        rules_count=$((rules_count + 1))
    done <"$tmp/rule-cases.tsv"
    [[ $rules_count -gt 0 ]] || fail "prometheus/rules/*.yml has no alerting rule"
    grep -q $'^redis-failover-agent,' "$tmp/rule-cases.tsv" || fail "prometheus/rules/*.yml has no failover_candidate=\"true\" alert to route to the agent"
else
    echo "note prometheus/rules/*.yml not found: only the cases of $routes_cases were routed"
fi
[[ $route_failures -eq 0 ]] || fail "$route_failures of $route_count routing cases"
echo "ok   $route_count routing cases"

# ---------------------------------------------------------------------------------------
echo "== 3. templates (amtool template render)"
render() { # DATA TEMPLATE-NAME [html]
    amtool template render --template.glob="$templates_glob" --template.data="$1" \
        --template.type="${3:-text}" --template.text="{{ template \"$2\" . }}" ||
        fail "amtool template render of $2 with $1"
}
runbook_base=$(scripts/runbook-base.sh) || fail "the rules' runbook_url base (scripts/runbook-base.sh)"
grafana_url=$(amtool template render --template.glob="$templates_glob" --template.text='{{ template "redis.grafana_url" . }}') || fail "redis.grafana_url is not defined in $templates_glob"
[[ $grafana_url =~ ^https?://[^[:space:]]*[^/]$ ]] || fail "redis.grafana_url must be an http(s) URL without a trailing '/', is '$grafana_url'"
echo "ok   runbook_url base (rules) = $runbook_base, redis.grafana_url = $grafana_url"

for data in alertmanager/tests/*.json; do
    for name in slack.redis.title slack.redis.title_link slack.redis.text slack.redis.color slack.redis.fallback \
        pagerduty.redis.severity pagerduty.redis.description pagerduty.redis.details \
        redis.group.runbook_url redis.group.dashboard_url email.redis.subject email.redis.text; do
        render "$data" "$name" >"$tmp/render.$name"
    done
    render "$data" email.redis.html html >"$tmp/render.email.redis.html"
    GRAFANA_URL=$grafana_url python3 - "$data" "$tmp" <<'PY' || fail "rendered messages for $data (see above)"
import html, json, os, sys
data, tmp = json.load(open(sys.argv[1])), sys.argv[2]
out = lambda name: open(f"{tmp}/render.{name}").read()
problems = []
def want(name, text, why):
    if text not in out(name):
        problems.append(f"{name} lacks {why}: {text!r}\n--- rendered:\n{out(name)}\n---")
def avoid(name, text, why):
    if text in out(name):
        problems.append(f"{name} has {why}: {text!r}")

status, alerts, common = data["status"], data["alerts"], data["commonLabels"]
firing = [a for a in alerts if a["status"] == "firing"]
headline = f"[{status.upper()}" + (f":{len(firing)}" if status == "firing" else "") 
for name in ("slack.redis.title", "email.redis.subject", "pagerduty.redis.description"):
    want(name, headline, "the status and count")
    want(name, common["alertname"], "the alertname")
    want(name, common.get("redis_instance") or common["datacenter"], "where")
want("pagerduty.redis.severity", common["severity"] if common["severity"] in ("critical", "warning") else "info", "the severity")
want("slack.redis.color", "good" if status == "resolved" else {"critical": "danger", "warning": "warning"}.get(common["severity"], "#"), "the colour")
first = alerts[0]["annotations"]
want("slack.redis.title_link", os.environ["GRAFANA_URL"] + first["dashboard"], "the first alert's dashboard")
want("redis.group.runbook_url", first["runbook_url"], "the first alert's runbook")
want("redis.group.dashboard_url", os.environ["GRAFANA_URL"] + first["dashboard"], "the first alert's dashboard")
for a in alerts:
    lab, ann = a["labels"], a["annotations"]
    runbook = ann["runbook_url"]
    dashboard = os.environ["GRAFANA_URL"] + ann["dashboard"]
    where = f"{lab['redis_instance']} @ {lab['datacenter']}" if "redis_instance" in lab else f"datacenter {lab['datacenter']}"
    want("slack.redis.text", f"<{runbook}|", "the runbook link")
    want("slack.redis.text", f"<{dashboard}|", "the dashboard link")
    want("slack.redis.text", ann["summary"], "the summary (what)")
    want("slack.redis.text", ann["description"], "the description (values)")
    want("slack.redis.text", where, "where")
    want("email.redis.text", runbook, "the runbook link")
    want("email.redis.text", dashboard, "the dashboard link")
    want("email.redis.html", f'href="{html.escape(runbook)}"', "the runbook link")
    want("email.redis.html", f'href="{html.escape(dashboard)}"', "the dashboard link")
    want("email.redis.html", html.escape(ann["description"]), "the description")
    if a["status"] == "firing":
        want("pagerduty.redis.details", runbook, "the runbook link")
        want("pagerduty.redis.details", dashboard, "the dashboard link")
if common.get("failover_candidate") == "true":
    for name in ("slack.redis.text", "email.redis.text", "email.redis.html", "pagerduty.redis.details"):
        want(name, "ailover candidate", "the failover-candidate note")
else:
    for name in ("slack.redis.text", "email.redis.text", "pagerduty.redis.details"):
        avoid(name, "ailover candidate", "a failover-candidate note for a non-candidate")
for name in ("slack.redis.text", "slack.redis.title", "email.redis.text", "email.redis.html", "pagerduty.redis.details"):
    avoid(name, "<no value>", "an unset field")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY
    echo "ok   $data: Slack title/text/colour/link, PagerDuty and e-mail carry what, where, values, runbook and dashboard links"
done

# ---------------------------------------------------------------------------------------
echo "== 4. a real Alertmanager: delivery and inhibition"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# A recording HTTP receiver for the agent's webhook and Slack: one JSON line per POST.
cat >"$tmp/receiver.py" <<'PY'
import http.server, json, sys
log, portfile = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "authorization": self.headers.get("Authorization"),
                                "body": json.loads(body or b"null")}) + "\n")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
open(portfile + ".tmp", "w").write(str(server.server_address[1]))
__import__("os").rename(portfile + ".tmp", portfile)
server.serve_forever()
PY
: >"$tmp/deliveries.jsonl"
python3 "$tmp/receiver.py" "$tmp/deliveries.jsonl" "$tmp/receiver.port" &
pids+=($!)
for _ in $(seq 100); do [[ -s $tmp/receiver.port ]] && break; sleep 0.05; done
[[ -s $tmp/receiver.port ]] || fail "the recording receiver did not start"
receiver="http://127.0.0.1:$(cat "$tmp/receiver.port")"

# The overlay: secret files -> temp files, the agent's URL -> the receiver, templates -> the
# repository's, group_wait/group_interval -> 1s/2s. Everything else as shipped.
mkdir -p "$tmp/secrets"
echo "test-webhook-token-$$" >"$tmp/secrets/webhook_token"
echo "$receiver/slack" >"$tmp/secrets/slack_webhook_url"
echo "test-routing-key" >"$tmp/secrets/pagerduty_routing_key"
echo "test-smtp-password" >"$tmp/secrets/smtp_password"
SECRETS=$tmp/secrets RECEIVER=$receiver TEMPLATES="$repo/$templates_glob" python3 - "$config" >"$tmp/overlay.yml" <<'PY' || fail "could not generate the test overlay"
import os, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
secrets = os.environ["SECRETS"]
def secret_files(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_file") and isinstance(value, str) and value.startswith("/run/secrets/"):
                node[key] = os.path.join(secrets, os.path.basename(value))
            else:
                secret_files(value)
    elif isinstance(node, list):
        for item in node:
            secret_files(item)
secret_files(cfg)
agent = [r for r in cfg["receivers"] if r["name"] == "redis-failover-agent"]
assert len(agent) == 1 and len(agent[0]["webhook_configs"]) == 1, "one redis-failover-agent webhook expected"
agent[0]["webhook_configs"][0]["url"] = os.environ["RECEIVER"] + "/webhook/alertmanager"
cfg["templates"] = [os.environ["TEMPLATES"]]
def timings(route):
    if "group_wait" in route or route is cfg["route"]:
        route["group_wait"] = "1s"
    if "group_interval" in route or route is cfg["route"]:
        route["group_interval"] = "2s"
    for child in route.get("routes") or []:
        timings(child)
timings(cfg["route"])
yaml.safe_dump(cfg, sys.stdout, sort_keys=False)
PY
amtool check-config "$tmp/overlay.yml" >"$tmp/check.out" 2>&1 || { cat "$tmp/check.out" >&2; fail "the generated overlay does not load"; }

am_port=$(free_port)
am="http://127.0.0.1:$am_port"
prometheus-alertmanager --config.file="$tmp/overlay.yml" --storage.path="$tmp/am-data" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= \
    --log.level=warn >"$tmp/alertmanager.log" 2>&1 &
am_pid=$!
pids+=("$am_pid")
for _ in $(seq 200); do
    curl -fsS "$am/-/ready" >/dev/null 2>&1 && break
    alive "$am_pid" || { cat "$tmp/alertmanager.log" >&2; fail "Alertmanager exited at start"; }
    sleep 0.05
done
curl -fsS "$am/-/ready" >/dev/null 2>&1 || { cat "$tmp/alertmanager.log" >&2; fail "Alertmanager was not ready within 10 s"; }
echo "ok   Alertmanager $(prometheus-alertmanager --version 2>&1 | head -1 | awk '{print $3}') on $am (pid $am_pid) with the overlay"

# post_alerts FILTER: post the cases of inhibition.tsv (FILTER: all | candidates-resolved).
post_alerts() {
    RUNBOOK_BASE=$runbook_base python3 - "$inhibition_cases" "$1" >"$tmp/post.json" <<'PY'
import datetime, json, os, sys
now = datetime.datetime.now(datetime.timezone.utc)
alerts = []
for line in open(sys.argv[1]):
    if not line.strip() or line.startswith("#"):
        continue
    state, labels, what = line.rstrip("\n").split("\t")
    labels = dict(kv.split("=", 1) for kv in labels.split())
    alert = {"labels": labels,
             "annotations": {"summary": f"test: {what}",
                             "description": f"test alert ({state} expected)",
                             "runbook_url": os.environ["RUNBOOK_BASE"] + labels["alertname"] + ".md",
                             "dashboard": "/d/redis-overview/redis-overview?var-redis_instance="
                                          + labels.get("redis_instance", "") + "&var-datacenter=" + labels.get("datacenter", "")},
             # Now, not earlier: Alertmanager flushes a new group at once when an alert
             # started more than group_wait ago, which races with the inhibitor learning
             # the source alerts posted in the same request.
             "startsAt": now.isoformat(),
             "generatorURL": "http://127.0.0.1:9090/graph"}
    if sys.argv[2] == "candidates-resolved":
        if labels.get("failover_candidate") != "true":
            continue
        alert["startsAt"] = (now - datetime.timedelta(minutes=1)).isoformat()
        alert["endsAt"] = (now - datetime.timedelta(seconds=1)).isoformat()
    alerts.append(alert)
print(json.dumps(alerts))
PY
    curl -fsS -X POST -H 'Content-Type: application/json' --data-binary @"$tmp/post.json" "$am/api/v2/alerts" >/dev/null ||
        fail "POST $am/api/v2/alerts was refused"
}
post_alerts all

# Inhibition state as Alertmanager reports it (computed when asked).
curl -fsS "$am/api/v2/alerts" >"$tmp/alerts.json" || fail "GET $am/api/v2/alerts"
python3 - "$inhibition_cases" "$tmp/alerts.json" <<'PY' || fail "inhibition (see above)"
import json, sys
got = {}
for a in json.load(open(sys.argv[2])):
    key = tuple(sorted(a["labels"].items()))
    got[key] = "inhibited" if a["status"]["inhibitedBy"] else a["status"]["state"]
bad = 0
for line in open(sys.argv[1]):
    if not line.strip() or line.startswith("#"):
        continue
    state, labels, what = line.rstrip("\n").split("\t")
    key = tuple(sorted(kv.split("=", 1) for kv in labels.split()))
    key = tuple((k, v) for k, v in key)
    actual = got.get(key, "missing")
    ok = actual == state
    bad += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {state:9} {what}" + ("" if ok else f"  (Alertmanager says {actual}: {labels})"),
          file=sys.stdout if ok else sys.stderr)
sys.exit(1 if bad else 0)
PY

# Deliveries: wait until every active alert reached its receivers, then a little longer so
# that an inhibited alert (grouped and flushed at the same time) would have arrived too.
check_deliveries() { # PHASE: firing | resolved; exit 0 = complete and correct, 1 = wrong, 2 = not yet
    TOKEN=$(cat "$tmp/secrets/webhook_token") RUNBOOK_BASE=$runbook_base python3 - "$inhibition_cases" "$tmp/deliveries.jsonl" "$1" <<'PY'
import json, os, sys
cases, phase = [], sys.argv[3]
for line in open(sys.argv[1]):
    if line.strip() and not line.startswith("#"):
        state, labels, what = line.rstrip("\n").split("\t")
        cases.append((state, dict(kv.split("=", 1) for kv in labels.split()), what))
key = lambda labels: tuple(sorted(labels.items()))
candidates = {key(l) for s, l, _ in cases if s == "active" and l.get("failover_candidate") == "true"}
people = {key(l) for s, l, _ in cases if s == "active" and l["alertname"] != "Watchdog"}
silent = {key(l) for s, l, _ in cases if s == "inhibited" or l["alertname"] == "Watchdog"}
agent, slack, problems = {}, {}, []
for line in open(sys.argv[2]):
    d = json.loads(line)
    body = d["body"]
    if d["path"] == "/webhook/alertmanager":
        if d["authorization"] != "Bearer " + os.environ["TOKEN"]:
            problems.append(f"agent webhook without the bearer token: Authorization={d['authorization']!r}")
        if body.get("receiver") != "redis-failover-agent" or body.get("version") != "4":
            problems.append(f"agent webhook payload: receiver {body.get('receiver')!r}, version {body.get('version')!r}")
        if set(body.get("groupLabels", {})) - {"alertname", "redis_instance", "datacenter"}:
            problems.append(f"agent webhook groupLabels {body.get('groupLabels')}")
        for a in body["alerts"]:
            agent.setdefault(key(a["labels"]), set()).add(a["status"])
    elif d["path"] == "/slack":
        # A Slack message is per group; every case has its own summary "test: <what>".
        for att in body.get("attachments", []):
            for state, labels, what in cases:
                if f"] test: {what}\n" in att.get("text", ""):
                    slack.setdefault(key(labels), []).append(att)
    else:
        problems.append(f"unexpected POST to {d['path']}")
for k in agent:
    if k not in candidates:
        problems.append(f"the agent received a non-candidate or inhibited alert: {dict(k)}")
# Once the candidates resolve, what they inhibited is active again and may reach Slack.
for k in (silent if phase == "firing" else ()):
    if k in slack:
        problems.append(f"Slack received an alert that must be silent: {dict(k)}")
for k, atts in slack.items():
    l = dict(k)
    for att in atts:
        for part in (os.environ["RUNBOOK_BASE"] + l["alertname"] + ".md", "/d/redis-overview/redis-overview?var-redis_instance=",
                     "test: "):
            if part not in att["text"]:
                problems.append(f"Slack text for {l['alertname']} lacks {part!r}:\n{att['text']}")
        if not att.get("title", "").startswith("[FIRING:" if phase == "firing" else ("[FIRING:", "[RESOLVED]")):
            problems.append(f"Slack title for {l['alertname']}: {att.get('title')!r}")
        if "/d/redis-overview/redis-overview" not in att.get("title_link", ""):
            problems.append(f"Slack title_link for {l['alertname']}: {att.get('title_link')!r}")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
if phase == "firing":
    missing = [dict(k) for k in candidates if "firing" not in agent.get(k, ())]
    missing += [dict(k) for k in people if k not in slack]
else:
    missing = [dict(k) for k in candidates if "resolved" not in agent.get(k, ())]
    missing += [{"slack": "[RESOLVED]", **dict(k)} for k in candidates
                if not any(att.get("title", "").startswith("[RESOLVED]") for att in slack.get(k, ()))]
if missing:
    open(sys.argv[2] + ".missing", "w").write("\n".join(map(str, missing)) + "\n")
    sys.exit(2)
sys.exit(0)
PY
}

wait_deliveries() { # PHASE
    local rc deadline=$((SECONDS + 30))
    while :; do
        rc=0
        check_deliveries "$1" || rc=$?
        case $rc in
            0) return 0 ;;
            1) fail "deliveries ($1): see above" ;;
        esac
        if ((SECONDS > deadline)); then
            echo "not delivered within 30 s:" >&2
            cat "$tmp/deliveries.jsonl.missing" >&2
            tail -20 "$tmp/alertmanager.log" >&2
            fail "deliveries ($1)"
        fi
        sleep 0.5
    done
}
started=$SECONDS
wait_deliveries firing
sleep 3
check_deliveries firing || fail "deliveries after 3 s more: see above"
echo "ok   firing: candidates reached the agent's webhook (Authorization: Bearer <webhook_token>), every active alert but the Watchdog reached Slack with runbook and dashboard links, nothing inhibited was delivered ($((SECONDS - started)) s)"

post_alerts candidates-resolved
wait_deliveries resolved
check_deliveries resolved || fail "deliveries after resolving: see above"
echo "ok   resolved: the agent received status \"resolved\" for every candidate, and Slack a [RESOLVED] message (send_resolved)"

grep -iE 'level=(error|warn)' "$tmp/alertmanager.log" | grep -v -iE 'cluster|gossip' >"$tmp/am-warnings" || true
if [[ -s $tmp/am-warnings ]]; then
    cat "$tmp/am-warnings" >&2
    fail "Alertmanager logged warnings or errors (see above)"
fi

echo "alertmanager check passed"
