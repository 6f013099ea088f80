# redis-failover-agent as a container image: a stripped binary on distroless (glibc, CA
# certificates, no shell, no package manager), running as uid 65532.
#
#   docker build -t redis-failover-agent \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run --rm -v "$PWD/agent.yaml:/etc/redis-failover-agent/agent.yaml:ro" \
#     -p 127.0.0.1:8080:8080 redis-failover-agent
#
# The image has no configuration of its own: mount one at
# /etc/redis-failover-agent/agent.yaml (docker-compose.monitoring.yml mounts
# examples/compose.yaml there). Without it the agent exits with status 64 and says so.
# Secrets go in files (e.g. /run/secrets/...) named by the configuration's *_file keys.
# Flags can be given as REDIS_FAILOVER_AGENT_* variables (docs/getting-started.md).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /build

# protoc and the protobuf well-known types: etcd-client builds its gRPC code with them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
 && rm -rf /var/lib/apt/lists/*

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
# than the stub build above: touch them so Cargo rebuilds the crate. The release profile
# strips the binary (Cargo.toml). The state directory is made here, owned by the image's
# user, because the final stage has no shell to make it.
COPY src ./src
RUN touch src/lib.rs src/main.rs \
 && cargo build --release --locked \
 && install -D -m 0755 target/release/redis-failover-agent /out/redis-failover-agent \
 && /out/redis-failover-agent --version \
 && install -d -m 0750 /out/state /out/state/models

# cc: glibc, libgcc and the CA certificates (for `tls: true` endpoints and HTTPS
# integrations), nothing else; :nonroot runs as uid and gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://github.com/redis-failover-agent/redis-failover-agent
LABEL org.opencontainers.image.title="redis-failover-agent" \
      org.opencontainers.image.description="Watches Redis across datacenters, publishes what it sees to Prometheus, and moves traffic by DNS when a datacenter is confirmed to be in trouble." \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.documentation="${SOURCE}/tree/main/docs" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"

COPY --from=build /out/redis-failover-agent /usr/local/bin/redis-failover-agent
# The state directory (the decision journal, model_path and the anomaly training
# windows) belongs to the user, so a named volume mounted there inherits the ownership.
COPY --from=build --chown=65532:65532 /out/state /var/lib/redis-failover-agent

USER 65532:65532
# model_path defaults to ./models: relative to here, inside the volume.
WORKDIR /var/lib/redis-failover-agent
VOLUME ["/var/lib/redis-failover-agent"]
EXPOSE 8080

# The agent and its health check read the same configuration and REDIS_FAILOVER_AGENT_*
# variables, so the check asks the port the agent listens on, over HTTPS when
# REDIS_FAILOVER_AGENT_WEB_CONFIG_FILE gives the listener TLS. With basic_auth_users,
# set REDIS_FAILOVER_AGENT_URL=https://USER:PASSWORD@127.0.0.1:8080/ for it, and
# REDIS_FAILOVER_AGENT_INSECURE=true unless the certificate names 127.0.0.1.
ENV REDIS_FAILOVER_AGENT_CONFIG=/etc/redis-failover-agent/agent.yaml
# The check gives up after 3 s (--timeout), within Docker's 5 s.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/redis-failover-agent", "healthcheck"]

# SIGTERM drains and stops (up to 10 s); SIGHUP re-reads the configuration file.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/redis-failover-agent"]
