#!/usr/bin/env bash
# Checks prometheus/: the configuration and the rules load in promtool, every alert's unit
# tests pass, and every rule follows the label and annotation conventions and has tests:
#   - promtool check config prometheus/prometheus.yml (rule files included)
#   - promtool check rules prometheus/rules/*.yml
#   - promtool test rules prometheus/tests/*.yml
#   - every alert has labels severity (critical|warning|info) and scope
#     (instance|datacenter|monitoring), annotations summary, description,
#     runbook (README.md#anchor, or docs/<page>.md#anchor for a concern with its own
#     page) and dashboard (/d/redis-overview/... or /d/redis-failover/...); failover
#     candidates have failover_candidate="true" and scope instance or datacenter;
#   - every alert has a promtool test where it fires and one where it stays silent
#     (except the always-firing Watchdog); every recording rule is queried by a test;
#     every rule file is loaded by a test file;
#   - every runbook anchor is a heading of the "## Alerts and runbooks" section of the
#     page it points to, and the alert is named in that section (README.md: once it has
#     the section; a docs/ page must have it).
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

echo "== conventions: labels, annotations, test coverage, runbook anchors"
python3 - "${rules[@]}" -- "${tests[@]}" <<'PY' || fail "prometheus/ breaks the conventions above"
import os, re, sys, yaml

args = sys.argv[1:]
sep = args.index('--')
rule_files, test_files = args[:sep], args[sep + 1:]
problems = []

SEVERITIES = {'critical', 'warning', 'info'}
SCOPES = {'instance', 'datacenter', 'monitoring'}
ANNOTATIONS = ('summary', 'description', 'runbook', 'dashboard')
DASHBOARDS = ('/d/redis-overview/redis-overview', '/d/redis-failover/datacenters-and-failover')
RUNBOOK = r'(README\.md|docs/[a-z0-9_-]+\.md)#[a-z0-9_-]+'

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
            runbook = str(ann.get('runbook', ''))
            if runbook and not re.fullmatch(RUNBOOK, runbook):
                problems.append(f'{where}: runbook {runbook!r} is not README.md#<anchor> or docs/<page>.md#<anchor>')
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
for name in records:
    if not any(re.search(r'(?<![\w:])' + re.escape(name) + r'(?![\w:])', e) for e in queried):
        problems.append(f'recording rule {name}: no promql_expr_test queries it')

# Runbook anchors against the "## Alerts and runbooks" section of the page each runbook
# points to (README.md, or a docs/ page), once that page has the section.
def slug(text):
    text = re.sub(r'[^\w\- ]', '', text.strip().lower())
    return text.replace(' ', '-')

section_title = '## Alerts and runbooks'

def runbook_section(page):
    """The anchors of the headings in the page's section, and the section's text."""
    lines = open(page).read().split('\n')
    anchors, counts, in_fence, in_section, text = set(), {}, False, False, []
    for line in lines:
        if line.lstrip().startswith('```'):
            in_fence = not in_fence
        if not in_fence and re.match(r'#{1,6} ', line):
            level = len(line) - len(line.lstrip('#'))
            if level == 2:
                in_section = line.strip() == section_title
            a = slug(line.lstrip('#'))
            n = counts.get(a, 0)
            counts[a] = n + 1
            if n:
                a = f'{a}-{n}'
            if in_section:
                anchors.add(a)
        if in_section:
            text.append(line)
    return anchors, '\n'.join(text)

pages = {}
for name, defs in alerts.items():
    for path, rule in defs:
        page, _, anchor = str((rule.get('annotations') or {}).get('runbook', '')).partition('#')
        if not page:
            continue
        if not os.path.exists(page):
            problems.append(f'{path}: alert {name}: runbook page {page} does not exist')
            continue
        if page not in pages:
            pages[page] = runbook_section(page)
        anchors, text = pages[page]
        if not text:
            if page != 'README.md':
                problems.append(f'{path}: alert {name}: {page} has no "{section_title}" section')
            continue
        if anchor not in anchors:
            problems.append(f'{path}: alert {name}: runbook anchor #{anchor} is no heading of '
                            f'{page} "{section_title}"')
        named = f'alert {name} is not mentioned in {page} "{section_title}"'
        if not re.search(r'\b' + re.escape(name) + r'\b', text) and named not in problems:
            problems.append(named)
for page, (_, text) in sorted(pages.items()):
    if text:
        print(f'  runbook anchors checked against {page} "{section_title}"')
    else:
        print(f'  warning: {page} has no "{section_title}" section yet: runbook anchors not checked')

if problems:
    print('\n'.join('  ' + p for p in problems), file=sys.stderr)
    sys.exit(1)
n_rules = sum(len(d) for d in alerts.values())
print(f'  {len(alerts)} alerts ({n_rules} rules) and {len(records)} recording rules: '
      'labels, annotations and tests complete')
PY
echo "prometheus: all checks passed"
