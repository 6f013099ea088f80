// Checks of grafana/dashboards/*.json beyond the JSON-module type check of dashboards.ts:
//
// 1. Literal types. Each file's text, unchanged, becomes the body of a TypeScript module
//    `export const dashboard = (<file>) satisfies TypedDashboard;` that the TypeScript
//    compiler checks in memory. A literal keeps its literal types, so enum and union values
//    are checked (`"mode": "palete-classic"`, a variable `"type": "querry"`), TypeScript's
//    own excess-property check applies, and every panel's options are checked against its
//    plugin's types (see schema.ts). Errors point at the line of the dashboard file.
// 2. This project's conventions, which no type says: the `datasource` variable behind every
//    panel, query and annotation (no data source uid in the file), the import form's
//    `__inputs` and the `__requires` of the plugins used, the variables, the
//    $job/$instance and $redis_instance/$datacenter/$observer filters on every series, no
//    recording rule, legends, ids and layout.
//
// Usage: node runtime.js <repository root>. Prints one line per dashboard; on any problem
// prints every problem and exits 1.

import * as fs from 'node:fs';
import * as path from 'node:path';

import ts from 'typescript';

type Obj = Record<string, unknown>;

/** The file name, uid and title of every dashboard (CONTRACT: Grafana conventions). */
const EXPECTED: Record<string, { uid: string; title: string }> = {
  'redis-overview.json': { uid: 'redis-overview', title: 'Redis overview' },
  'redis-failover.json': { uid: 'redis-failover', title: 'Datacenters and failover' },
};

/**
 * Every panel, query, query variable and annotation reads the data source that the
 * `datasource` variable holds, so that one file works wherever it is loaded: imported, the
 * variable starts at the data source picked in the import form (`${DS_PROMETHEUS}`, the
 * only input); provisioned, Grafana finds no data source with that uid and takes the one
 * whose name is the variable's text, the provisioned one (see checkDatasourceVariable).
 */
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const BUILT_IN = { type: 'grafana', uid: '-- Grafana --' };
const INPUT = '${DS_PROMETHEUS}';

/** The selectors of the agent variables: every series Prometheus scrapes carries both. */
const AGENT = 'job=~"$job", instance=~"$instance"';
const VARIABLE_QUERIES: Record<string, string> = {
  // The scrape job (a fleet, or a single agent) and its targets, from a series every agent
  // exports exactly once.
  job: 'label_values(redis_agent_build_info, job)',
  instance: 'label_values(redis_agent_build_info{job=~"$job"}, instance)',
  datacenter: `label_values(redis_up{${AGENT}}, datacenter)`,
  redis_instance: `label_values(redis_up{${AGENT}, datacenter=~"$datacenter"}, redis_instance)`,
  // In a fleet, the agent whose view a series is (issue 18); none for a single agent.
  observer: `label_values(redis_up{${AGENT}}, observer)`,
};
/** The order of the variables in the bar: where the data is, then what of it. */
const VARIABLE_ORDER = ['datasource', 'job', 'instance', 'datacenter', 'redis_instance', 'observer'];

/** Variables a query may use: the end-to-end test substitutes exactly these. */
const QUERY_VARIABLES = new Set([
  'job',
  'instance',
  'redis_instance',
  'datacenter',
  'observer',
  '__rate_interval',
  '__interval',
  '__range',
]);

/** The panel plugins' names as Grafana's export writes them into `__requires`. */
const PANEL_NAMES: Record<string, string> = {
  timeseries: 'Time series',
  stat: 'Stat',
  gauge: 'Gauge',
  bargauge: 'Bar gauge',
  table: 'Table',
  'state-timeline': 'State timeline',
  'status-history': 'Status history',
  text: 'Text',
};

type SeriesLabel = 'job' | 'instance' | 'redis_instance' | 'datacenter' | 'observer';
type EndpointLabel = Exclude<SeriesLabel, 'job' | 'instance'>;
/**
 * Which of the endpoint labels each series carries (docs/metrics.md); others carry all
 * three. `observer` is on every series of an endpoint or a datacenter that a fleet's agent
 * exports (src/metrics/observer.rs); the variable's All (`.*`) also matches a single
 * agent's series, which have none. Every `redis_*` series also carries the `job` and
 * `instance` that Prometheus attaches to what it scrapes. `ALERTS` and `ALERTS_FOR_STATE`
 * are not checked: an alert keeps only the labels of its expression, and the failover
 * candidates are aggregated across the agents (by job, or across jobs).
 */
const SERIES_LABELS: Array<[RegExp, EndpointLabel[]]> = [
  [/^redis_datacenter_health_(score|status)$/, ['datacenter', 'observer']],
  // A datacenter's Redis Enterprise cluster, as each agent polls its REST API.
  [/^redis_enterprise_[a-z_]+$/, ['datacenter', 'observer']],
  // An instance's max_data_loss: the agent's configuration, not a datacenter's series.
  [/^redis_data_loss_budget_(bytes|seconds)$/, ['redis_instance']],
  [/^redis_agent_(decisions_total|failovers_total|last_failover_timestamp_seconds)$/, ['redis_instance']],
  [
    /^redis_(anomaly_threshold|agent_build_info|agent_endpoints|agent_metrics_render_seconds|agent_config_reloads_total|agent_webhook_requests_total|agent_advisor_calls_total|agent_coordination_up|agent_leader|agent_leader_changes_total|agent_fenced_refusals_total|agent_advisor_call_duration_seconds(_bucket|_sum|_count)?)$/,
    [],
  ],
];
const FILTER: Record<SeriesLabel, string> = {
  job: 'job=~"$job"',
  instance: 'instance=~"$instance"',
  redis_instance: 'redis_instance=~"$redis_instance"',
  datacenter: 'datacenter=~"$datacenter"',
  observer: 'observer=~"$observer"',
};
const ENDPOINT_LEGEND = '{{redis_instance}}@{{datacenter}}';

const problems: string[] = [];
let where = '';
function fail(message: string): void {
  problems.push(`${where}: ${message}`);
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function get(v: unknown, dotted: string): unknown {
  let cur = v;
  for (const k of dotted.split('.')) {
    if (!isObj(cur)) return undefined;
    cur = cur[k];
  }
  return cur;
}
function isPrometheus(ds: unknown): boolean {
  return isObj(ds) && ds.type === DATASOURCE.type && ds.uid === DATASOURCE.uid && Object.keys(ds).length === 2;
}

function seriesLabels(metric: string): SeriesLabel[] {
  for (const [re, labels] of SERIES_LABELS) if (re.test(metric)) return ['job', 'instance', ...labels];
  return ['job', 'instance', 'redis_instance', 'datacenter', 'observer'];
}

/** Checks a query; returns the endpoint labels every series it reads carries. */
function checkExpr(label: string, expr: unknown): SeriesLabel[] {
  if (typeof expr !== 'string' || expr.trim() === '') {
    fail(`${label} has no expr`);
    return [];
  }
  if (expr.includes('[[')) fail(`${label} uses the deprecated [[variable]] syntax`);
  for (const m of expr.matchAll(/\$\{?([A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (!QUERY_VARIABLES.has(m[1])) {
      fail(`${label} uses $${m[1]}; queries may use only ${[...QUERY_VARIABLES].map((v) => '$' + v).join(', ')}`);
    }
  }
  // A recording rule (level:metric:operation) exists only where prometheus/rules/ is loaded;
  // the dashboards must work on any Prometheus that scrapes the agents.
  const unquoted = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  for (const m of unquoted.matchAll(/(?<![\w:$])([A-Za-z_][\w]*:[\w:]*)/g)) {
    fail(`${label} reads the recording rule ${m[1]}; query the agent's series instead`);
  }
  // An aggregation that keeps one agent's view (`observer`) keeps the agent too: single
  // agents have no observer label, and two of them (or two jobs) must not be added up.
  for (const m of expr.matchAll(/\bby\s*\(([^)]*)\)/g)) {
    const kept = m[1].split(',').map((l) => l.trim());
    if (kept.includes('observer') && !(kept.includes('job') && kept.includes('instance'))) {
      fail(`${label}: ${m[0]} keeps observer but not job and instance`);
    }
  }
  let common: SeriesLabel[] | undefined;
  // A metric name, then its matchers if any. Label names (redis_instance) are not metrics.
  for (const m of expr.matchAll(/(?<![\w"$])(redis_[A-Za-z0-9_]+)\s*(\{[^}]*\})?/g)) {
    const metric = m[1];
    if (metric === 'redis_instance') continue;
    const matchers = m[2] ?? '';
    const labels = seriesLabels(metric);
    for (const l of labels) {
      if (!matchers.includes(FILTER[l])) fail(`${label}: ${metric} is not filtered by ${FILTER[l]}`);
    }
    common = common ? common.filter((l) => labels.includes(l)) : labels;
  }
  return common ?? [];
}

function checkThresholds(label: string, thresholds: unknown): void {
  const steps = get(thresholds, 'steps');
  if (!Array.isArray(steps)) return;
  steps.forEach((s, i) => {
    const value = get(s, 'value');
    if (i === 0 && value !== null) fail(`${label}.steps[0].value must be null (the base step)`);
    if (i > 0 && typeof value !== 'number') fail(`${label}.steps[${i}].value must be a number`);
    if (i > 1 && typeof value === 'number' && value <= (get(steps[i - 1], 'value') as number)) {
      fail(`${label}.steps must ascend`);
    }
  });
}

interface Box {
  id: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

function checkPanel(p: Obj, ids: Set<number>, boxes: Box[], stats: { queries: number }): void {
  const id = p.id;
  const title = typeof p.title === 'string' ? p.title : '';
  const label = `panel ${String(id)} "${title}"`;
  if (typeof id !== 'number' || !Number.isInteger(id)) fail(`${label} has no integer id`);
  else if (ids.has(id)) fail(`${label}: id ${id} is used twice`);
  else ids.add(id);
  if (title.trim() === '') fail(`${label} has no title`);
  const type = String(p.type);

  const g = p.gridPos;
  if (!isObj(g)) fail(`${label} has no gridPos`);
  else {
    const [x, y, w, h] = [g.x, g.y, g.w, g.h];
    if (![x, y, w, h].every((n) => typeof n === 'number' && Number.isInteger(n))) {
      fail(`${label} gridPos needs integer x, y, w and h`);
    } else {
      const b = { id: id as number, x: x as number, y: y as number, w: w as number, h: h as number };
      if (b.w < 1 || b.h < 1 || b.x < 0 || b.y < 0 || b.x + b.w > 24) {
        fail(`${label} gridPos ${JSON.stringify(g)} is outside the 24-column grid`);
      }
      for (const o of boxes) {
        if (b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h) {
          fail(`${label} overlaps panel ${o.id}`);
        }
      }
      boxes.push(b);
    }
  }

  if (type === 'row') {
    if (p.collapsed === false && Array.isArray(p.panels) && p.panels.length > 0) {
      fail(`${label}: an expanded row keeps its panels at the top level, not in "panels"`);
    }
    return;
  }
  if (type === 'text') return;

  if (!isPrometheus(p.datasource)) fail(`${label} datasource must be ${JSON.stringify(DATASOURCE)}`);
  checkThresholds(`${label} fieldConfig.defaults.thresholds`, get(p, 'fieldConfig.defaults.thresholds'));
  if ((type === 'stat' || type === 'gauge' || type === 'bargauge')) {
    const calcs = get(p, 'options.reduceOptions.calcs');
    if (!Array.isArray(calcs) || calcs.length === 0) fail(`${label} options.reduceOptions.calcs is empty`);
  }

  const targets = p.targets;
  if (!Array.isArray(targets) || targets.length === 0) {
    fail(`${label} has no queries`);
    return;
  }
  const refIds = new Set<string>();
  targets.forEach((t, i) => {
    const tl = `${label} query ${i}`;
    if (!isObj(t)) return fail(`${tl} is not an object`);
    if (typeof t.refId !== 'string' || t.refId === '') fail(`${tl} has no refId`);
    else if (refIds.has(t.refId)) fail(`${tl}: refId ${t.refId} is used twice`);
    else refIds.add(t.refId);
    if (t.datasource !== undefined && !isPrometheus(t.datasource)) {
      fail(`${tl} datasource must be ${JSON.stringify(DATASOURCE)}`);
    }
    const carried = checkExpr(tl, t.expr);
    stats.queries++;
    const legend = t.legendFormat;
    if (type !== 'table') {
      if (typeof legend !== 'string' || legend.trim() === '') fail(`${tl} has no legendFormat`);
      else if (
        legend.includes('{{redis_instance}}') &&
        carried.includes('datacenter') &&
        !legend.includes(ENDPOINT_LEGEND)
      ) {
        fail(`${tl} legend ${JSON.stringify(legend)} must name the endpoint as ${ENDPOINT_LEGEND}`);
      }
    }
  });
}

function checkVariables(d: Obj, provisioned: string): void {
  const list = get(d, 'templating.list');
  if (!Array.isArray(list)) return fail('templating.list is missing');
  const names = new Set<string>();
  for (const v of list) {
    const name = String(get(v, 'name'));
    const label = `variable ${name}`;
    if (names.has(name)) fail(`${label} is defined twice`);
    names.add(name);
    if (name === 'datasource') {
      checkDatasourceVariable(label, v as Obj, provisioned);
      continue;
    }
    const expected = VARIABLE_QUERIES[name];
    if (expected === undefined) continue;
    if (get(v, 'type') !== 'query') fail(`${label} must be a query variable`);
    if (!isPrometheus(get(v, 'datasource'))) fail(`${label} datasource must be ${JSON.stringify(DATASOURCE)}`);
    const query = get(v, 'query');
    const text = isObj(query) ? query.query : query;
    if (text !== expected) fail(`${label} query is ${JSON.stringify(text)}, expected ${JSON.stringify(expected)}`);
    if (get(v, 'multi') !== true) fail(`${label} must allow several values (multi)`);
    if (get(v, 'includeAll') !== true) fail(`${label} must include All`);
  }
  for (const name of VARIABLE_ORDER) {
    if (!names.has(name)) fail(`variable ${name} is missing`);
  }
  const order = [...names].filter((n) => VARIABLE_ORDER.includes(n));
  if (order.join() !== VARIABLE_ORDER.filter((n) => names.has(n)).join()) {
    fail(`variables are in the order ${order.join(', ')}; expected ${VARIABLE_ORDER.join(', ')}`);
  }
}

/**
 * The data source variable: one Prometheus, no All. Its `current` is what makes one file
 * both importable and provisionable. Imported, Grafana replaces `${DS_PROMETHEUS}` in the
 * value with the uid of the data source picked in the form. Provisioned, nothing replaces
 * it; Grafana keeps a value only if a data source has it as uid, else takes the one whose
 * name is the text, else the first Prometheus: the text must be the provisioned name.
 */
function checkDatasourceVariable(label: string, v: Obj, provisioned: string): void {
  if (v.type !== 'datasource') fail(`${label} must be a datasource variable`);
  if (v.query !== DATASOURCE.type) fail(`${label} query must be ${JSON.stringify(DATASOURCE.type)} (the plugin id)`);
  if (v.multi === true || v.includeAll === true) fail(`${label} must hold one data source (no multi, no All)`);
  if (typeof v.regex === 'string' && v.regex !== '') fail(`${label} regex must be empty: it would hide data sources`);
  if (get(v, 'current.value') !== INPUT) {
    fail(`${label} current.value must be ${INPUT}, which the import replaces with the data source picked`);
  }
  if (get(v, 'current.text') !== provisioned) {
    fail(
      `${label} current.text must be ${JSON.stringify(provisioned)}, the name of the provisioned data source ` +
        '(grafana/provisioning/datasources/), by which a provisioned dashboard finds it',
    );
  }
}

/**
 * Every `datasource` in the file is the variable (or, for the built-in annotation, Grafana
 * itself): a uid written anywhere would break the dashboard in every other Grafana.
 */
function checkDatasourceRefs(v: unknown, at: string): void {
  if (Array.isArray(v)) return v.forEach((x, i) => checkDatasourceRefs(x, `${at}[${i}]`));
  if (!isObj(v)) return;
  for (const [k, x] of Object.entries(v)) {
    const path = at === '' ? k : `${at}.${k}`;
    if (k === 'datasource' && !isPrometheus(x) && !(v.builtIn === 1 && isEqual(x, BUILT_IN))) {
      fail(`${path} is ${JSON.stringify(x)}; every data source must be ${JSON.stringify(DATASOURCE)}`);
    } else {
      checkDatasourceRefs(x, path);
    }
  }
}

function isEqual(a: unknown, b: Obj): boolean {
  return isObj(a) && Object.keys(a).length === Object.keys(b).length && Object.keys(b).every((k) => a[k] === b[k]);
}

/** Every string of the file, with its path. */
function strings(v: unknown, at: string, out: Array<[string, string]>): Array<[string, string]> {
  if (typeof v === 'string') out.push([at, v]);
  else if (Array.isArray(v)) v.forEach((x, i) => strings(x, `${at}[${i}]`, out));
  else if (isObj(v)) for (const [k, x] of Object.entries(v)) strings(x, at === '' ? k : `${at}.${k}`, out);
  return out;
}

/** Panel plugins used, nested rows included; a row is not a plugin. */
function panelTypes(panels: unknown, out: Set<string>): Set<string> {
  for (const p of Array.isArray(panels) ? panels : []) {
    if (!isObj(p)) continue;
    if (p.type !== 'row') out.add(String(p.type));
    panelTypes(p.panels, out);
  }
  return out;
}

/**
 * `__inputs`, `__elements` and `__requires` as Grafana's export "for sharing externally"
 * writes them: the import form asks for the one Prometheus and replaces `${DS_PROMETHEUS}`,
 * which stands only in the datasource variable's value; `__requires` lists Grafana (the
 * version the files are checked against and compose runs), the Prometheus data source and
 * exactly the panel plugins used, sorted by id.
 */
function checkShareable(d: Obj, grafanaVersion: string): void {
  const inputs = d.__inputs;
  const expected = {
    name: 'DS_PROMETHEUS',
    label: 'Prometheus',
    type: 'datasource',
    pluginId: 'prometheus',
    pluginName: 'Prometheus',
  };
  if (!Array.isArray(inputs) || inputs.length !== 1 || !isObj(inputs[0])) {
    fail(`__inputs must be the one data source input ${JSON.stringify(expected)}`);
  } else {
    for (const [k, v] of Object.entries(expected)) {
      const got = JSON.stringify(inputs[0][k]);
      if (inputs[0][k] !== v) fail(`__inputs[0].${k} is ${got}, expected ${JSON.stringify(v)}`);
    }
  }
  if (!isObj(d.__elements) || Object.keys(d.__elements).length > 0) fail('__elements must be {} (no library panels)');

  // The import replaces `${NAME}` for each input; any other upper-case `${...}` would stay.
  const found = strings(d, '', [])
    .filter(([, s]) => /\$\{[A-Z]/.test(s))
    .map(([at]) => at);
  const variables = get(d, 'templating.list');
  const index = Array.isArray(variables) ? variables.findIndex((v) => get(v, 'name') === 'datasource') : -1;
  const valueAt = `templating.list[${index}].current.value`;
  if (found.join() !== valueAt) {
    const at = found.join(', ') || 'nowhere';
    fail(`${INPUT} must stand only in the datasource variable's value (${valueAt}); found at ${at}`);
  }

  const requires = d.__requires;
  if (!Array.isArray(requires)) return fail('__requires is missing');
  const want: Obj[] = [
    { type: 'grafana', id: 'grafana', name: 'Grafana', version: grafanaVersion },
    { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
  ];
  for (const t of panelTypes(d.panels, new Set())) {
    const name = PANEL_NAMES[t];
    if (name === undefined) fail(`panel plugin ${t} has no name in runtime.ts PANEL_NAMES`);
    want.push({ type: 'panel', id: t, name: name ?? t, version: '' });
  }
  want.sort((a, b) => String(a.id).localeCompare(String(b.id)));
  const got = requires.map((r) => JSON.stringify(r));
  const expectedRequires = want.map((r) => JSON.stringify(r));
  if (got.join('\n') !== expectedRequires.join('\n')) {
    fail(
      `__requires is\n    ${got.join('\n    ')}\n  expected (Grafana, Prometheus and the panel plugins used, ` +
        `by id)\n    ${expectedRequires.join('\n    ')}`,
    );
  }
}

function checkAnnotations(d: Obj): number {
  const list = get(d, 'annotations.list');
  let queries = 0;
  if (!Array.isArray(list)) return 0;
  list.forEach((a, i) => {
    const label = `annotation ${i} "${String(get(a, 'name'))}"`;
    if (get(a, 'builtIn') === 1) return;
    if (!isPrometheus(get(a, 'datasource'))) fail(`${label} datasource must be ${JSON.stringify(DATASOURCE)}`);
    checkExpr(label, get(a, 'target.expr'));
    if (typeof get(a, 'target.refId') !== 'string') fail(`${label} target has no refId`);
    queries++;
  });
  return queries;
}

function checkDashboard(file: string, d: Obj, provisioned: string, grafanaVersion: string): string {
  const expected = EXPECTED[file];
  if (expected === undefined) {
    fail(`unexpected dashboard; known: ${Object.keys(EXPECTED).join(', ')} (add it to runtime.ts EXPECTED)`);
  } else {
    if (d.uid !== expected.uid) fail(`uid is ${JSON.stringify(d.uid)}, expected ${JSON.stringify(expected.uid)}`);
    if (d.title !== expected.title) fail(`title is ${JSON.stringify(d.title)}, expected ${JSON.stringify(expected.title)}`);
  }
  if (d.id !== null && d.id !== undefined) fail('id must be null: Grafana assigns it when it provisions the file');
  checkShareable(d, grafanaVersion);
  checkDatasourceRefs(d, '');
  checkVariables(d, provisioned);
  const annotationQueries = checkAnnotations(d);

  const ids = new Set<number>();
  const boxes: Box[] = [];
  const stats = { queries: 0 };
  let count = 0;
  const panels = Array.isArray(d.panels) ? d.panels : [];
  if (panels.length === 0) fail('has no panels');
  for (const p of panels) {
    if (!isObj(p)) {
      fail('a panel is not an object');
      continue;
    }
    checkPanel(p, ids, boxes, stats);
    count++;
    if (p.type === 'row' && Array.isArray(p.panels)) {
      const nested: Box[] = [];
      for (const q of p.panels) if (isObj(q)) (checkPanel(q, ids, nested, stats), count++);
    }
  }
  return (
    `${file}: "${String(d.title)}" (uid ${String(d.uid)}): ${count} panels, ${stats.queries} panel queries, ` +
    `${annotationQueries} annotation queries; every data source \${datasource}, input DS_PROMETHEUS, requires ` +
    (Array.isArray(d.__requires) ? d.__requires.map((r) => `${String(get(r, 'id'))}`).join(', ') : '?')
  );
}

/**
 * Type-checks each dashboard's text as a TypeScript literal against `TypedDashboard`, in
 * memory, with the options of tsconfig.json. Reports problems by line of the JSON file.
 */
function checkLiterals(checkDir: string, texts: Map<string, string>): void {
  const config = ts.readConfigFile(path.join(checkDir, 'tsconfig.json'), ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, checkDir);
  const options: ts.CompilerOptions = { ...parsed.options, noEmit: true, noUnusedLocals: false };
  const HEAD = "import type { TypedDashboard } from './schema';\nexport const dashboard = (\n";
  const virtual = new Map<string, string>();
  const origin = new Map<string, string>();
  for (const [file, text] of texts) {
    const name = path.join(checkDir, `${file}.literal.ts`);
    virtual.set(name, `${HEAD}${text}\n) satisfies TypedDashboard;\n`);
    origin.set(name, file);
  }
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, onError, create) => {
    const text = virtual.get(name);
    return text === undefined ? getSourceFile(name, language, onError, create) : ts.createSourceFile(name, text, language);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => virtual.has(name) || fileExists(name);
  const readFile = host.readFile.bind(host);
  host.readFile = (name) => virtual.get(name) ?? readFile(name);
  const program = ts.createProgram({ rootNames: [...virtual.keys()], options, host });
  const headLines = HEAD.split('\n').length - 1;
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n    ');
    const file = d.file ? origin.get(d.file.fileName) : undefined;
    if (d.file && file !== undefined && d.start !== undefined) {
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      where = `grafana/dashboards/${file}:${line + 1 - headLines}:${character + 1}`;
    } else {
      where = d.file ? d.file.fileName : 'typescript';
    }
    fail(message);
  }
}

/**
 * What the dashboards must agree with: the name of the provisioned data source, and the
 * Grafana version, which is that of @grafana/schema (the type check) and of the image
 * docker-compose.monitoring.yml runs.
 */
function environment(root: string): { provisioned: string; grafanaVersion: string } {
  where = 'grafana/provisioning/datasources/prometheus.yml';
  const yml = fs.readFileSync(path.join(root, where), 'utf8');
  const names = [...yml.matchAll(/^\s*-?\s*name:\s*"?([^"\n]+?)"?\s*$/gm)].map((m) => m[1]);
  if (names.length !== 1) fail(`expected one data source, found the names ${JSON.stringify(names)}`);
  const schema = path.join(root, 'grafana', 'check', 'node_modules', '@grafana', 'schema', 'package.json');
  const grafanaVersion = String(JSON.parse(fs.readFileSync(schema, 'utf8')).version);
  where = 'docker-compose.monitoring.yml';
  const image = /image:\s*"?grafana\/grafana:([^"\s]+)/.exec(fs.readFileSync(path.join(root, where), 'utf8'));
  if (image === null || image[1] !== grafanaVersion) {
    const runs = image?.[1] ?? '?';
    fail(`runs grafana/grafana:${runs}; the dashboards are checked against @grafana/schema ${grafanaVersion}`);
  }
  return { provisioned: names[0] ?? 'Prometheus', grafanaVersion };
}

function main(): void {
  const root = process.argv[2];
  if (!root) {
    console.error('usage: node runtime.js <repository root>');
    process.exit(2);
  }
  const dir = path.join(root, 'grafana', 'dashboards');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  // Every dashboard must be imported by dashboards.ts, or tsc never checks it.
  const typed = fs.readFileSync(path.join(root, 'grafana', 'check', 'dashboards.ts'), 'utf8');
  const { provisioned, grafanaVersion } = environment(root);
  const uids = new Map<string, string>();
  const lines: string[] = [];
  const texts = new Map<string, string>();
  for (const file of files) {
    where = `grafana/dashboards/${file}`;
    if (!typed.includes(`from '../dashboards/${file}'`) || !typed.includes(`'${file}': true`)) {
      fail('is not type-checked: import it in grafana/check/dashboards.ts and add it to `closed` there');
    }
    let d: unknown;
    try {
      const text = fs.readFileSync(path.join(dir, file), 'utf8');
      d = JSON.parse(text);
      texts.set(file, text);
    } catch (e) {
      fail(`is not valid JSON: ${(e as Error).message}`);
      continue;
    }
    if (!isObj(d)) {
      fail('is not a JSON object');
      continue;
    }
    const uid = String(d.uid);
    if (uids.has(uid)) fail(`uid ${uid} is also used by ${uids.get(uid)}`);
    uids.set(uid, file);
    lines.push(checkDashboard(file, d, provisioned, grafanaVersion));
  }
  for (const file of Object.keys(EXPECTED)) {
    if (!files.includes(file)) {
      where = `grafana/dashboards/${file}`;
      fail('is missing');
    }
  }
  checkLiterals(path.join(root, 'grafana', 'check'), texts);
  if (problems.length > 0) {
    for (const p of problems) console.error(`grafana: ${p}`);
    console.error(`grafana: ${problems.length} problem(s) in the dashboards`);
    process.exit(1);
  }
  console.log(
    `grafana: ok literal types: ${files.join(', ')} as TypeScript literals against TypedDashboard ` +
      '(enum and union values; each panel\'s options and field config against its plugin\'s types)',
  );
  for (const line of lines) console.log(`grafana: ok conventions: ${line}`);
}

main();
