# Build: a release binary with rustls (no OpenSSL needed).
FROM rust:1.95-slim-bookworm AS build
# make builds jemalloc (the gateway's allocator, tikv-jemalloc-sys); the slim image has only gcc.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The explorer's committed build, embedded at compile time (no Node needed).
COPY web/explorer/dist ./web/explorer/dist
# Workspace members: cargo needs their manifests and sources to load the workspace.
COPY loadgen ./loadgen
# The upstream simulator (sandbox mode) is a workspace crate the gateway depends on.
COPY simulator ./simulator
RUN cargo build --release --locked --bin registrar-gateway && strip target/release/registrar-gateway

# Run: Debian slim with the CA bundle rustls verifies against, as a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home gateway
COPY --from=build /src/target/release/registrar-gateway /usr/local/bin/registrar-gateway
USER 10001
ENV GATEWAY_LISTEN=0.0.0.0:8080 \
    GATEWAY_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["registrar-gateway", "healthcheck"]
ENTRYPOINT ["registrar-gateway"]
