#!/usr/bin/env bash
# Checks prometheus/: the configuration and the rules load in promtool, every alert's unit
# tests pass, and every rule follows the label and annotation conventions and has tests:
#   - promtool check config prometheus/prometheus.yml (rule files included)
#   - promtool check rules prometheus/rules/*.yml
#   - promtool test rules prometheus/tests/*.yml
#   - every alert has labels severity (critical|warning|info) and scope
#     (instance|datacenter|monitoring), annotations summary, description,
#     runbook_url (<base><AlertName>.md, one absolute base for every rule: see
#     docs/runbooks/README.md and scripts/runbook-base.sh) and dashboard
#     (/d/redis-overview/... or /d/redis-failover/...); failover
#     candidates have failover_candidate="true" and scope instance or datacenter;
#   - every alert has a promtool test where it fires and one where it stays silent
#     (except the always-firing Watchdog); every recording rule is queried by a test,
#     and used by an alert or a dashboard (grafana/dashboards/*.json);
#     every rule file is loaded by a test file;
#   - runbook pages: every alert's page docs/runbooks/<AlertName>.md exists and shows each
#     of its rules' expressions as written in the rule file (a ```promql block), and every
#     page there is an alert's (but README.md and the shared pages, named in lower case).
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() { echo "error: $*" >&2; exit 1; }

command -v promtool >/dev/null ||
  fail "promtool is missing. Install it with: apt-get install -y --no-install-recommends prometheus"
command -v python3 >/dev/null ||
  fail "python3 is missing. Install it with: apt-get install -y python3 python3-yaml"
python3 -c 'import yaml' 2>/dev/null ||
  fail "PyYAML is missing. Install it with: apt-get install -y python3-yaml (or: python3 -m pip install pyyaml)"

shopt -s nullglob
rules=(prometheus/rules/*.yml)
tests=(prometheus/tests/*.yml)
[ ${#rules[@]} -gt 0 ] || fail "no rule files in prometheus/rules/"
[ ${#tests[@]} -gt 0 ] || fail "no test files in prometheus/tests/"

echo "== promtool check config prometheus/prometheus.yml"
promtool check config prometheus/prometheus.yml || fail "prometheus/prometheus.yml does not load"

echo "== promtool check rules prometheus/rules/*.yml"
promtool check rules "${rules[@]}" || fail "a rule file does not load"

echo "== promtool test rules prometheus/tests/*.yml"
promtool test rules "${tests[@]}" || fail "a rule unit test failed"

echo "== conventions: labels, annotations, test coverage, runbook pages"
python3 - "${rules[@]}" -- "${tests[@]}" <<'PY' || fail "prometheus/ breaks the conventions above"
import glob, os, re, sys, yaml

args = sys.argv[1:]
sep = args.index('--')
rule_files, test_files = args[:sep], args[sep + 1:]
problems = []

SEVERITIES = {'critical', 'warning', 'info'}
SCOPES = {'instance', 'datacenter', 'monitoring'}
ANNOTATIONS = ('summary', 'description', 'runbook_url', 'dashboard')
DASHBOARDS = ('/d/redis-overview/redis-overview', '/d/redis-failover/datacenters-and-failover')
RUNBOOK_DIR = 'docs/runbooks'
RUNBOOK = r'(https?://\S+/)([A-Za-z0-9]+)\.md'
bases = {}     # runbook_url base -> first alert using it

def promql_blocks(page):
    """The ```promql code blocks of a runbook page, stripped."""
    text = open(page).read()
    return [b.strip() for b in re.findall(r'^```promql\n(.*?)^```', text, re.S | re.M)]

alerts = {}      # name -> list of (file, rule)
records = {}     # name -> file
for path in rule_files:
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    for group in doc.get('groups', []):
        for rule in group.get('rules', []):
            if 'record' in rule:
                name = rule['record']
                if name in records:
                    problems.append(f'{path}: recording rule {name} is also defined in {records[name]}')
                records[name] = path
                if name.count(':') < 1:
                    problems.append(f'{path}: recording rule {name} is not named level:metric:operation')
                continue
            name = rule['alert']
            alerts.setdefault(name, []).append((path, rule))
            where = f'{path}: alert {name}'
            labels = rule.get('labels') or {}
            ann = rule.get('annotations') or {}
            sev, scope = labels.get('severity'), labels.get('scope')
            if sev not in SEVERITIES:
                problems.append(f'{where}: severity {sev!r} is not one of {sorted(SEVERITIES)}')
            if scope not in SCOPES:
                problems.append(f'{where}: scope {scope!r} is not one of {sorted(SCOPES)}')
            for key in ANNOTATIONS:
                if not str(ann.get(key, '')).strip():
                    problems.append(f'{where}: annotation {key} is missing or empty')
            if 'runbook' in ann:
                problems.append(f'{where}: annotation runbook is replaced by runbook_url')
            runbook = str(ann.get('runbook_url', ''))
            m = re.fullmatch(RUNBOOK, runbook)
            if runbook and not m:
                problems.append(f'{where}: runbook_url {runbook!r} is not <base>{name}.md with an absolute base')
            elif m:
                bases.setdefault(m.group(1), name)
                if m.group(2) != name:
                    problems.append(f'{where}: runbook_url {runbook!r} names another page than {name}.md')
                page = os.path.join(RUNBOOK_DIR, name + '.md')
                if not os.path.isfile(page):
                    problems.append(f'{where}: no runbook page {page}')
                elif str(rule.get('expr', '')).strip() not in promql_blocks(page):
                    problems.append(f'{where}: {page} does not show its expression as in {path} '
                                    '(a ```promql block)')
            dash = str(ann.get('dashboard', ''))
            if dash and not dash.startswith(DASHBOARDS):
                problems.append(f'{where}: dashboard {dash!r} is not a path under {DASHBOARDS}')
            if 'failover_candidate' in labels:
                if labels['failover_candidate'] != 'true':
                    problems.append(f'{where}: failover_candidate must be "true" (or absent)')
                if scope not in ('instance', 'datacenter'):
                    problems.append(f'{where}: a failover candidate needs scope instance or datacenter')

# Severity variants of one alert share the name; two rules with the same name and
# severity are a mistake.
for name, defs in alerts.items():
    sevs = [(r.get('labels') or {}).get('severity') for _, r in defs]
    if len(sevs) != len(set(sevs)):
        problems.append(f'alert {name}: several rules with the same severity')

fires, silent, queried, loaded = set(), set(), [], set()
for path in test_files:
    with open(path) as f:
        doc = yaml.safe_load(f) or {}
    base = os.path.dirname(path)
    for rf in doc.get('rule_files', []):
        loaded.add(os.path.normpath(os.path.join(base, rf)))
    for test in doc.get('tests', []):
        for case in test.get('alert_rule_test', []) or []:
            (fires if case.get('exp_alerts') else silent).add(case['alertname'])
        for case in test.get('promql_expr_test', []) or []:
            queried.append(case['expr'])

for path in rule_files:
    if os.path.normpath(path) not in loaded:
        problems.append(f'{path}: no test file loads it (rule_files)')
for name, defs in alerts.items():
    if name not in fires:
        problems.append(f'alert {name}: no promtool test where it fires')
    always = all(str(r.get('expr', '')).strip() == 'vector(1)' for _, r in defs)
    if name not in silent and not always:
        problems.append(f'alert {name}: no promtool test where it stays silent (a near miss)')
def uses(name, text):
    return re.search(r'(?<![\w:])' + re.escape(name) + r'(?![\w:])', text) is not None

alert_exprs = [str(r.get('expr', '')) for defs in alerts.values() for _, r in defs]
dashboards = [open(d).read() for d in sorted(glob.glob('grafana/dashboards/*.json'))]
for name in records:
    if not any(uses(name, e) for e in queried):
        problems.append(f'recording rule {name}: no promql_expr_test queries it')
    if not any(uses(name, t) for t in alert_exprs + dashboards):
        problems.append(f'recording rule {name}: no alert and no dashboard uses it (remove it)')

# One base for every runbook_url (scripts/runbook-base.sh sets it), and every page under
# docs/runbooks/ is an alert's, but README.md and the shared pages (lower-case names).
if len(bases) > 1:
    problems.append('runbook_url: several bases (' + ', '.join(f'{b} in {a}' for b, a in sorted(bases.items()))
                    + '); set one with scripts/runbook-base.sh')
for page in sorted(os.listdir(RUNBOOK_DIR)) if os.path.isdir(RUNBOOK_DIR) else ():
    stem, ext = os.path.splitext(page)
    if ext != '.md' or page == 'README.md' or stem == stem.lower():
        continue
    if stem not in alerts:
        problems.append(f'{RUNBOOK_DIR}/{page}: no alert {stem} in the rules (shared pages are named in lower case)')
for base in bases:
    print(f'  runbook_url base {base}: every alert has its page under {RUNBOOK_DIR}/, every page there its alert')

if problems:
    print('\n'.join('  ' + p for p in problems), file=sys.stderr)
    sys.exit(1)
n_rules = sum(len(d) for d in alerts.values())
print(f'  {len(alerts)} alerts ({n_rules} rules) and {len(records)} recording rules: '
      'labels, annotations and tests complete')
PY
echo "prometheus: all checks passed"
