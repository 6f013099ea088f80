#!/usr/bin/env python3
"""Checks deploy/kubernetes/ without a cluster (run by scripts/check/kubernetes.sh).

For each installable directory (single/, fleet/), rendered by `kubectl kustomize`:
  1. schemas: every core object against Kubernetes' own (kubernetes-validate, strict:
     an unknown field fails, where the API server would drop it or refuse it), at the
     oldest and the newest version we support; every Prometheus Operator object
     against its CRD's openAPIV3Schema (tests/fixtures/prometheus-operator-crds/), with
     the fields the API server would silently prune counted as errors;
  2. wiring: Services select exactly their agent; Deployments never select each
     other's pods; the ServiceMonitor scrapes every agent Service on a port it has,
     under the job the rules query; the AlertmanagerConfig delivers to every agent
     with the token its configuration checks; each volume names an object that exists;
  3. the pods: the image of this version, one replica replaced with Recreate, the
     security settings of the "restricted" Pod Security level plus a read-only root
     file system, a numeric user, probes on the container's port, requests and
     limits, a grace period above the agent's 10 s drain;
  4. the agent's configuration as each pod sees it: every *_file is a mounted file,
     state_dir and model_path are on a writable volume, the listener is the
     container's port; then `redis-failover-agent check-config` with the pod's
     environment and the mounts laid out in a scratch directory;
and: the Secret example names every key a Deployment mounts; fleet/agent.yaml is
single/agent.yaml with a coordination section. Last, the agent itself answers the
probes', the ServiceMonitor's and the webhook's paths (it runs with the Deployment's
own arguments and a configuration that watches one Redis on 127.0.0.1 and listens on
loopback).

    scripts/check/kubernetes.py AGENT_BINARY
"""

import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("single", "fleet")
SECRET_EXAMPLE = BUNDLE / "secret.example.yaml"
CRDS = ROOT / "tests" / "fixtures" / "prometheus-operator-crds"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
OPERATOR_GROUP = "monitoring.coreos.com"
# The agent's own drain after SIGTERM (app::SHUTDOWN_GRACE).
AGENT_DRAIN_SECONDS = 10
WEBHOOK_PATH = "/webhook/alertmanager"
METRICS_PATH = "/metrics"

VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(encoding="utf-8"), re.M).group(1)

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


class Loader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: a bare `=` (an AlertmanagerConfig matchType, in the
    CRDs' enums) is a string, not YAML 1.1's value tag."""


Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_all(text):
    return [doc for doc in yaml.load_all(text, Loader=Loader) if doc is not None]


def name_of(obj):
    return f"{obj['kind']}/{obj['metadata']['name']}"


# --- schemas ---------------------------------------------------------------------------

def strict(schema):
    """The schema with additionalProperties: false wherever the API server prunes unknown
    fields (an object with properties and no x-kubernetes-preserve-unknown-fields)."""
    schema = dict(schema)
    if "properties" in schema:
        schema["properties"] = {name: strict(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), dict):
            schema[key] = strict(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            schema[key] = [strict(sub) for sub in schema[key]]
    return schema


def crd_validators():
    validators = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = load_all(path.read_text(encoding="utf-8"))[0]
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                # metadata is the API server's: the CRD says only `type: object`.
                schema = strict(version["schema"]["openAPIV3Schema"])
                validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft4Validator(schema)
    if not validators:
        problem(str(CRDS.relative_to(ROOT)), "no CRD files")
    return validators


def check_schemas(where, objects, validators):
    for obj in objects:
        what = f"{where}: {name_of(obj)}"
        api = obj["apiVersion"]
        if api.split("/")[0] == OPERATOR_GROUP:
            validator = validators.get((api, obj["kind"]))
            if validator is None:
                problem(what, f"no CRD schema for {api} {obj['kind']} in {CRDS.relative_to(ROOT)}")
                continue
            for error in sorted(validator.iter_errors(obj), key=lambda e: str(list(e.path))):
                field = ".".join(str(p) for p in error.absolute_path) or "(object)"
                problem(what, f"{field}: {error.message}")
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, True)
            except kubernetes_validate.SchemaNotFoundError:
                problem(what, f"no Kubernetes {version} schema for {api} {obj['kind']}")
            except kubernetes_validate.ValidationError as error:
                field = ".".join(str(p) for p in error.path) or "(object)"
                problem(what, f"Kubernetes {version}: {field}: {error.message}")


# --- wiring ----------------------------------------------------------------------------

def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def container_ports(c):
    return {p.get("name"): p["containerPort"] for p in c.get("ports", [])}


def agent_services(services):
    return [s for s in services if s["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "agent"]


def container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next((c for c in containers if c["name"] == "agent"), containers[0])


def check_pods(where, deployments):
    for d in deployments:
        what = f"{where}: {name_of(d)}"
        spec, pod, c = d["spec"], d["spec"]["template"]["spec"], container(d)
        if spec.get("replicas") != 1:
            problem(what, f"replicas {spec.get('replicas')}: one agent per Deployment, never two")
        if spec.get("strategy", {}).get("type") != "Recreate":
            problem(what, "strategy is not Recreate: a rolling update runs two agents side by side")
        if c.get("image") != f"redis-failover-agent:{VERSION}":
            problem(what, f"image {c.get('image')}: the bundle names redis-failover-agent:{VERSION} "
                          "(Cargo.toml's version); users set theirs with `images:`")
        if (pod.get("terminationGracePeriodSeconds", 30) or 0) <= AGENT_DRAIN_SECONDS:
            problem(what, f"terminationGracePeriodSeconds must exceed the agent's {AGENT_DRAIN_SECONDS} s drain")
        for part in ("requests", "limits"):
            if "memory" not in c.get("resources", {}).get(part, {}):
                problem(what, f"no memory {part}")
        check_security(what, pod.get("securityContext", {}), c.get("securityContext", {}))
        check_probes(what, c)


def check_security(what, psc, csc):
    """The "restricted" Pod Security level, a numeric user, a read-only root."""
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        problem(what, "runAsNonRoot is not set")
    for key in ("runAsUser", "runAsGroup"):
        value = csc.get(key, psc.get(key))
        if not isinstance(value, int) or value == 0:
            problem(what, f"{key} must be a non-zero number (got {value!r})")
    seccomp = csc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problem(what, f"seccompProfile {seccomp!r}: use RuntimeDefault")
    if csc.get("allowPrivilegeEscalation") is not False:
        problem(what, "allowPrivilegeEscalation is not false")
    if csc.get("readOnlyRootFilesystem") is not True:
        problem(what, "readOnlyRootFilesystem is not true")
    if csc.get("capabilities", {}).get("drop") != ["ALL"]:
        problem(what, "capabilities do not drop ALL")


def check_probes(what, c):
    ports = container_ports(c)
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/healthz")):
        get = c.get(probe, {}).get("httpGet")
        if get is None:
            problem(what, f"no {probe} (httpGet {path})")
            continue
        if get.get("path") != path:
            problem(what, f"{probe} asks {get.get('path')}, the agent answers it on {path}")
        if get.get("port") not in ports and get.get("port") not in ports.values():
            problem(what, f"{probe} port {get.get('port')!r} is not a port of the container")


def check_selectors(where, deployments, services):
    for d in deployments:
        selector = d["spec"]["selector"]["matchLabels"]
        for other in deployments:
            if other is not d and selects(selector, other["spec"]["template"]["metadata"]["labels"]):
                problem(f"{where}: {name_of(d)}", f"its selector also matches the pods of {name_of(other)}")
    for s in services:
        chosen = [d for d in deployments
                  if selects(s["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        if len(chosen) != 1:
            problem(f"{where}: {name_of(s)}",
                    f"selects the pods of {len(chosen)} Deployments ({', '.join(map(name_of, chosen)) or 'none'}), not one")
            continue
        ports = container_ports(container(chosen[0]))
        for port in s["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if target not in ports and target not in ports.values():
                problem(f"{where}: {name_of(s)}", f"targetPort {target!r} is not a port of {name_of(chosen[0])}")


def rule_job(objects):
    """The job RedisAgentDown asks for: the ServiceMonitor must scrape under it."""
    for obj in objects:
        if obj["kind"] != "PrometheusRule":
            continue
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == "RedisAgentDown":
                    match = re.search(r'up\{job="([^"]+)"\}', rule["expr"])
                    if match:
                        return match.group(1)
    return None


def check_service_monitors(where, objects, services):
    monitors = [o for o in objects if o["kind"] == "ServiceMonitor"]
    if len(monitors) != 1:
        problem(where, f"{len(monitors)} ServiceMonitors, expected one for every agent")
        return
    monitor = monitors[0]
    what = f"{where}: {name_of(monitor)}"
    job = rule_job(objects)
    if job is None:
        problem(where, "no RedisAgentDown rule with up{job=\"...\"} in the PrometheusRules")
    scraped = [s for s in services
               if selects(monitor["spec"]["selector"].get("matchLabels", {}), s["metadata"].get("labels", {}))]
    agents = agent_services(services)
    if {name_of(s) for s in scraped} != {name_of(s) for s in agents}:
        problem(what, f"scrapes {sorted(map(name_of, scraped))}, the agents' Services are {sorted(map(name_of, agents))}")
    for endpoint in monitor["spec"]["endpoints"]:
        if endpoint.get("path", "/metrics") != METRICS_PATH:
            problem(what, f"path {endpoint.get('path')}: the agent serves {METRICS_PATH}")
        for s in scraped:
            if endpoint.get("port") not in [p.get("name") for p in s["spec"]["ports"]]:
                problem(what, f"port {endpoint.get('port')!r} is not a named port of {name_of(s)}")
    job_label = monitor["spec"].get("jobLabel")
    for s in scraped:
        got = s["metadata"].get("labels", {}).get(job_label) if job_label else None
        got = got or s["metadata"]["name"]
        if job and got != job:
            problem(what, f"scrapes {name_of(s)} as job {got!r}; the rules ask for job {job!r}")


def check_alertmanager_configs(where, objects, services, namespace, token_keys):
    configs = [o for o in objects if o["kind"] == "AlertmanagerConfig"]
    if len(configs) != 1:
        problem(where, f"{len(configs)} AlertmanagerConfigs, expected one")
        return
    amc = configs[0]
    what = f"{where}: {name_of(amc)}"
    route = amc["spec"]["route"]
    if {"name": "failover_candidate", "matchType": "=", "value": "true"} not in route.get("matchers", []):
        problem(what, 'the route does not match failover_candidate="true"')
    receiver = next((r for r in amc["spec"]["receivers"] if r["name"] == route["receiver"]), None)
    if receiver is None:
        problem(what, f"no receiver {route['receiver']}")
        return
    agents = agent_services(services)
    wanted = {f"http://{s['metadata']['name']}.{namespace}.svc:{p['port']}{WEBHOOK_PATH}"
              for s in agents for p in s["spec"]["ports"] if p.get("name") == "http"}
    urls = set()
    for hook in receiver.get("webhookConfigs", []):
        urls.add(hook.get("url"))
        credentials = hook.get("httpConfig", {}).get("authorization", {}).get("credentials", {})
        if (credentials.get("name"), credentials.get("key")) not in token_keys:
            problem(what, f"{hook.get('url')}: sends the token of Secret {credentials.get('name')} key "
                          f"{credentials.get('key')}, the agents check {sorted(token_keys)}")
        if hook.get("maxAlerts", 0) != 0:
            problem(what, f"{hook.get('url')}: maxAlerts cuts deliveries; the agent wants every alert")
    if urls != wanted:
        problem(what, f"delivers to {sorted(urls)}; the agents' webhooks are {sorted(wanted)}")


# --- the agent's configuration, as each pod sees it -------------------------------------

def mounts_of(deployment, objects):
    """(mountPath, kind, files) for each volume mount of the agent: kind is configMap
    (files: name -> content), secret (name -> (Secret, key)) or writable (none)."""
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    what = name_of(deployment)
    result = []
    for mount in container(deployment).get("volumeMounts", []):
        volume = volumes.get(mount["name"])
        if volume is None:
            problem(what, f"mounts volume {mount['name']}, which it does not declare")
            continue
        if "configMap" in volume:
            config_map = by_name.get(("ConfigMap", volume["configMap"]["name"]))
            if config_map is None:
                problem(what, f"volume {mount['name']}: no ConfigMap {volume['configMap']['name']} in the bundle")
                continue
            files = {item["path"]: config_map["data"][item["key"]]
                     for item in volume["configMap"].get("items", [])} or dict(config_map["data"])
            result.append((mount["mountPath"], "configMap", files))
        elif "secret" in volume:
            items = volume["secret"].get("items")
            if not items:
                problem(what, f"volume {mount['name']}: list the Secret's keys (items), so a missing one is named")
                items = []
            files = {item["path"]: (volume["secret"]["secretName"], item["key"]) for item in items}
            result.append((mount["mountPath"], "secret", files))
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if ("PersistentVolumeClaim", claim) not in by_name:
                problem(what, f"volume {mount['name']}: no PersistentVolumeClaim {claim} in the bundle")
            result.append((mount["mountPath"], "writable", {}))
        elif "emptyDir" in volume:
            result.append((mount["mountPath"], "writable", {}))
        else:
            problem(what, f"volume {mount['name']}: a kind this check does not know")
    return result


def file_keys(node, path=""):
    """(key path, value) of every *_file key of the configuration."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if str(key).endswith("_file") and isinstance(value, str):
                yield sub, value
            else:
                yield from file_keys(value, sub)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from file_keys(value, f"{path}[{i}]")


def under(path, mount_path):
    return path == mount_path or path.startswith(mount_path.rstrip("/") + "/")


def check_agent_config(where, deployment, objects, binary, scratch):
    """Returns the (Secret, key) pairs of the webhook token this agent checks."""
    what = f"{where}: {name_of(deployment)}"
    c = container(deployment)
    args = c.get("args", [])
    if "--config" not in args:
        problem(what, "no --config argument")
        return set()
    config_path = args[args.index("--config") + 1]
    mounts = mounts_of(deployment, objects)
    text = None
    for mount_path, kind, files in mounts:
        if kind == "configMap" and under(config_path, mount_path):
            text = files.get(os.path.relpath(config_path, mount_path))
    if text is None:
        problem(what, f"--config {config_path} is not a file of a mounted ConfigMap")
        return set()
    config = yaml.safe_load(text)
    env = {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
    for e in c.get("env", []):
        if "value" not in e:
            problem(what, f"env {e['name']}: only literal values can be checked here")

    token_keys = set()
    for key, value in file_keys(config):
        mount = next(((m, k, f) for m, k, f in mounts if under(value, m)), None)
        if mount is None:
            problem(what, f"{key}: {value} is on no mounted volume")
            continue
        mount_path, kind, files = mount
        name = os.path.relpath(value, mount_path)
        if kind == "writable" or name not in files:
            problem(what, f"{key}: {value} is not a file of the {kind} mounted at {mount_path}")
        elif kind == "secret" and key == "webhook.bearer_token_file":
            token_keys.add(files[name])
    for key in ("state_dir", "model_path"):
        value = config.get(key)
        if not (isinstance(value, str) and value.startswith("/")
                and any(kind == "writable" and under(value, m) for m, kind, _ in mounts)):
            problem(what, f"{key}: {value!r} must be an absolute path on a writable volume "
                          "(the root file system is read-only)")
    ports = container_ports(c)
    api = config.get("api", {})
    if api.get("port", 8080) != ports.get("http"):
        problem(what, f"api.port {api.get('port', 8080)} is not the container port http ({ports.get('http')})")
    if api.get("host", "0.0.0.0") not in ("0.0.0.0", "::"):
        problem(what, f"api.host {api.get('host')}: the pod must listen on every address")

    # The mounts laid out under a scratch root; the configuration's paths moved there.
    root = pathlib.Path(tempfile.mkdtemp(dir=scratch))
    for mount_path, kind, files in mounts:
        base = root / mount_path.lstrip("/")
        base.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            if kind == "secret":
                content = f"placeholder-for-{content[1]}-check-only-0123456789\n"
            (base / name).write_text(content, encoding="utf-8")
    prefixes = sorted((m.rstrip("/") for m, _, _ in mounts), key=len, reverse=True)
    pattern = re.compile(r"(?<![\w/.-])(" + "|".join(map(re.escape, prefixes)) + r")/")
    moved = pattern.sub(lambda m: f"{root}{m.group(1)}/", text)
    checked = root / "agent.yaml"
    checked.write_text(moved, encoding="utf-8")
    run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    result = subprocess.run([binary, "check-config", "--config", str(checked)],
                            capture_output=True, text=True, env=run_env, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).replace(str(checked), config_path).replace(str(root), "")
        problem(what, f"check-config ({config_path}, env {sorted(env)}) exit {result.returncode}:\n"
                      + output.strip())
    else:
        print(f"   {what}: check-config {config_path}: {result.stdout.strip().split(': ', 1)[-1]}")
    return token_keys


def check_fleet_config():
    """fleet/agent.yaml says it is single/agent.yaml with a coordination section."""
    single = yaml.safe_load((BUNDLE / "single" / "agent.yaml").read_text(encoding="utf-8"))
    fleet = yaml.safe_load((BUNDLE / "fleet" / "agent.yaml").read_text(encoding="utf-8"))
    if "coordination" not in fleet:
        problem("fleet/agent.yaml", "no coordination section")
    fleet.pop("coordination", None)
    for key in sorted(set(single) | set(fleet)):
        if single.get(key) != fleet.get(key):
            problem("fleet/agent.yaml", f"{key} differs from single/agent.yaml: keep them alike but for coordination")


def check_secret_example(deployments_by_overlay):
    example = load_all(SECRET_EXAMPLE.read_text(encoding="utf-8"))
    check_schemas(SECRET_EXAMPLE.name, example, {})
    secrets = {o["metadata"]["name"]: set(o.get("stringData", {})) | set(o.get("data", {}))
               for o in example if o["kind"] == "Secret"}
    for overlay, deployments in deployments_by_overlay.items():
        for d in deployments:
            for v in d["spec"]["template"]["spec"].get("volumes", []):
                if "secret" not in v:
                    continue
                name = v["secret"]["secretName"]
                missing = {i["key"] for i in v["secret"].get("items", [])} - secrets.get(name, set())
                if missing:
                    problem(SECRET_EXAMPLE.name, f"{overlay}/ {name_of(d)} mounts keys {sorted(missing)} of "
                                                 f"Secret {name}, which the example does not show")


# --- the agent's routes ---------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, method="GET"):
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=3) as answer:
            return answer.status, answer.read(65536)
    except urllib.error.HTTPError as error:
        return error.code, b""


def check_routes(binary, deployment, scratch):
    """Starts the agent with the Deployment's arguments, its --config replaced by one
    that watches a single Redis on 127.0.0.1 and listens on a free loopback port, then
    asks every path the bundle uses."""
    port = free_port()
    workdir = pathlib.Path(tempfile.mkdtemp(dir=scratch))
    config = workdir / "agent.yaml"
    config.write_text(yaml.safe_dump({
        "instances": [{"name": "local", "uid": "local", "active_dc": "local",
                       "endpoints": {"local": {"host": "127.0.0.1", "port": 6379}}}],
        "datacenters": {"local": {"name": "local"}},
        "api": {"host": "127.0.0.1", "port": port},
        "state_dir": str(workdir / "state"),
        "model_path": str(workdir / "models"),
    }), encoding="utf-8")
    args = list(container(deployment).get("args", []))
    if "--config" in args:
        args[args.index("--config") + 1] = str(config)
    else:
        args += ["--config", str(config)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    agent = subprocess.Popen([binary, *args], cwd=workdir, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                fetch(base + "/healthz")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if agent.poll() is not None or time.monotonic() > deadline:
                    problem("routes", f"the agent ({binary} {' '.join(args)}) did not serve /healthz: "
                                      + (agent.stderr.read() if agent.poll() is not None else "timeout"))
                    return
                time.sleep(0.1)
        expected = [("/healthz", "GET", {200}), ("/readyz", "GET", {200, 503}),
                    (METRICS_PATH, "GET", {200}), (WEBHOOK_PATH, "POST", {401, 403})]
        for path, method, statuses in expected:
            status, body = fetch(base + path, method)
            if status not in statuses:
                problem("routes", f"{method} {path} answered {status}, expected {sorted(statuses)}")
            elif path == METRICS_PATH and b"# TYPE " not in body:
                problem("routes", f"GET {path} is not Prometheus exposition text")
        print(f"   the agent answers /healthz, /readyz, {METRICS_PATH} and {WEBHOOK_PATH} "
              f"(the arguments of {name_of(deployment)})")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(timeout=AGENT_DRAIN_SECONDS + 5)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()


def check_overlay(overlay, validators, binary, scratch):
    """Renders one installable directory and checks it; returns its Deployments."""
    where = f"{overlay}/"
    rendered = subprocess.run(["kubectl", "kustomize", str(BUNDLE / overlay)],
                              capture_output=True, text=True, check=False)
    if rendered.returncode != 0:
        problem(where, f"kubectl kustomize failed:\n{rendered.stderr.strip()}")
        return []
    objects = load_all(rendered.stdout)
    check_schemas(where, objects, validators)
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    if len(namespaces) != 1 or None in namespaces:
        problem(where, f"objects in namespaces {sorted(map(str, namespaces))}, expected one")
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    services = [o for o in objects if o["kind"] == "Service"]
    if not deployments:
        problem(where, "no Deployment")
    check_pods(where, deployments)
    check_selectors(where, deployments, services)
    check_service_monitors(where, objects, services)
    token_keys = set()
    for d in deployments:
        token_keys |= check_agent_config(where, d, objects, binary, scratch)
    check_alertmanager_configs(where, objects, services, next(iter(namespaces)), token_keys)
    kinds = sorted({o["kind"] for o in objects})
    print(f"   {where}: {len(objects)} objects ({', '.join(kinds)})")
    return deployments


def main():
    binary = sys.argv[1]
    validators = crd_validators()
    with tempfile.TemporaryDirectory() as scratch:
        deployments = {overlay: check_overlay(overlay, validators, binary, scratch) for overlay in OVERLAYS}
        check_secret_example(deployments)
        check_fleet_config()
        first = next((ds[0] for ds in deployments.values() if ds), None)
        if first is not None:
            check_routes(binary, first, scratch)
    if problems:
        print("\n".join(f"problem: {p}" for p in problems), file=sys.stderr)
        return 1
    print(f"ok: {', '.join(o + '/' for o in OVERLAYS)} valid for Kubernetes "
          f"{' and '.join(KUBERNETES_VERSIONS)} and the Prometheus Operator CRDs, wired, "
          "restricted, and accepted by the agent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
