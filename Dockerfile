# redis-failover-agent as a container image.
#
#   docker build -t redis-failover-agent .
#   docker run --rm -v "$PWD/agent.yaml:/etc/redis-failover-agent/agent.yaml:ro" \
#     -p 127.0.0.1:8080:8080 redis-failover-agent
#
# The image has no configuration of its own: mount one at
# /etc/redis-failover-agent/agent.yaml (docker-compose.monitoring.yml mounts
# examples/compose.yaml there). Without it the agent exits with status 64 and says so.
# Secrets go in files (e.g. /run/secrets/...) named by the configuration's *_file keys.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /build

# Dependencies first, in their own layer: it is rebuilt only when Cargo.toml or
# Cargo.lock change. Stub targets let Cargo parse the manifest and build every
# dependency; benches/anomaly.rs must exist because Cargo.toml declares the bench.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs benches/anomaly.rs \
 && cargo build --release --locked \
 && rm -rf src

# The agent itself. COPY keeps the files' own modification times, which can be older
# than the stub build above: touch them so Cargo rebuilds the crate.
COPY src ./src
RUN touch src/lib.rs src/main.rs \
 && cargo build --release --locked \
 && install -D -m 0755 target/release/redis-failover-agent /out/redis-failover-agent \
 && /out/redis-failover-agent --version

FROM debian:${DEBIAN_RELEASE}-slim

# ca-certificates: the system roots for `tls: true` endpoints and HTTPS integrations.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A dedicated unprivileged user; the state directory (model_path, the anomaly training
# windows) belongs to it, so a named volume mounted there inherits the ownership.
RUN groupadd --system --gid 10001 redis-failover-agent \
 && useradd --system --uid 10001 --gid redis-failover-agent \
      --home-dir /var/lib/redis-failover-agent --no-create-home \
      --shell /usr/sbin/nologin redis-failover-agent \
 && install -d -m 0750 -o redis-failover-agent -g redis-failover-agent \
      /var/lib/redis-failover-agent /var/lib/redis-failover-agent/models \
 && install -d -m 0755 /etc/redis-failover-agent

COPY --from=build /out/redis-failover-agent /usr/local/bin/redis-failover-agent

USER 10001:10001
# model_path defaults to ./models: relative to here, inside the volume.
WORKDIR /var/lib/redis-failover-agent
VOLUME ["/var/lib/redis-failover-agent"]
EXPOSE 8080

# No curl in the slim image: bash's /dev/tcp asks GET /healthz (200 while the process
# serves) on the default port 8080.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && IFS= read -r status <&3 && [[ $status == *' 200 '* ]]"]

# SIGTERM drains and stops (up to 10 s); SIGHUP re-reads the configuration file.
STOPSIGNAL SIGTERM
ENTRYPOINT ["redis-failover-agent"]
CMD ["--config", "/etc/redis-failover-agent/agent.yaml"]
