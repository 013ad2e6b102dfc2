# The gateway's image: `docker build -t registrar-gateway .` (or podman) from the repository root.
#
# Base images by tag. To reproduce a build byte for byte, pin both by digest, e.g.
#   FROM rust:1.95-slim-bookworm@sha256:<digest> AS toolchain
#   FROM debian:bookworm-slim@sha256:<digest>
# with the digests your registry reports (`docker buildx imagetools inspect rust:1.95-slim-bookworm`,
# `skopeo inspect docker://debian:bookworm-slim`); docs/containers.md says more.

# Build: a release binary with rustls (no OpenSSL needed).
FROM rust:1.95-slim-bookworm AS toolchain
# make builds jemalloc (the gateway's allocator, tikv-jemalloc-sys); the slim image has only gcc.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# The workspace as cargo needs it to build the dependencies: every member's manifest (whatever
# members the workspace has), Cargo.lock, build scripts, and an empty `fn main() {}` for each
# target root. This stage runs again on any change, but what it leaves in /plan changes only
# with the manifests, so the dependency layer below is rebuilt only then.
FROM toolchain AS plan
COPY . .
RUN find . -name Cargo.toml -not -path './target/*' -printf '%h\n' | while read -r member; do \
        mkdir -p "/plan/$member" && cp "$member/Cargo.toml" "/plan/$member/"; \
        if [ -f "$member/build.rs" ]; then cp "$member/build.rs" "/plan/$member/"; fi; \
        for root in "$member"/src/main.rs "$member"/src/lib.rs "$member"/src/bin/*.rs; do \
            if [ -f "$root" ]; then mkdir -p "/plan/$(dirname "$root")" && echo 'fn main() {}' > "/plan/$root"; fi; \
        done; \
    done \
    && cp Cargo.lock /plan/

# The dependencies, compiled in a stage of their own (reused while no manifest changes).
FROM toolchain AS deps
COPY --from=plan /plan/ ./
RUN cargo build --release --locked --bin registrar-gateway

# Then the workspace itself. Its files keep their own modification times, which may be older
# than the stubs' build: touching them makes cargo rebuild the workspace's crates from them.
FROM deps AS build
COPY . .
RUN find . -name '*.rs' -not -path './target/*' -exec touch {} + \
    && cargo build --release --locked --bin registrar-gateway \
    && strip target/release/registrar-gateway

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
