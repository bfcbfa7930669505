# The otlp-client agent image: otlp-rust/otlp-client (deploy/ runs
# otlp-rust/otlp-client:0.1.0). Build from the repository root:
#
#   docker build -t otlp-rust/otlp-client:0.1.0 .
#
# Two stages: the release binary is built with the toolchain pinned in
# rust-toolchain.toml (RUST_VERSION must match its channel; a test checks
# it), then copied alone into a slim runtime that runs as a non-root user.
# Linted by crates/otlp-client/tests/deploy.rs (no container engine in CI).

ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# jemalloc (the release allocator) is built from source with make.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p otlp-client \
    && install -m 0755 target/release/otlp-client /otlp-client

FROM debian:bookworm-slim AS runtime
# ca-certificates: the system roots for an https:// upstream.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 otlp \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin otlp \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/otlp-client/queue /etc/otlp
COPY --from=build /otlp-client /usr/local/bin/otlp-client
LABEL org.opencontainers.image.title="otlp-rust/otlp-client" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.description="The otlp-rust agent: OTLP in on 4317/4318, batched, queued and retried upstream"
USER 10001:10001
# OTLP/gRPC, OTLP/HTTP, admin (/health, /metrics; keep it off public Services).
EXPOSE 4317 4318 8080
VOLUME ["/var/lib/otlp-client/queue"]
# Arguments after the image name go to `otlp-client run`.
ENTRYPOINT ["/usr/local/bin/otlp-client", "run"]
CMD ["--config", "/etc/otlp/config.yaml"]
