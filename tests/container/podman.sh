# Podman on a machine with no container registry (sourced by run.sh, not run): the tools,
# a private podman configuration and storage, and local stand-ins for the base images the
# Dockerfile and the compose files name. Sets `state`, exports CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF and TMPDIR, and defines `prepare_base_images`.
#
# The state folder (default /var/tmp/registrar-gateway-podman, or $PODMAN_STATE) keeps the
# storage between runs, so the base images are made once per machine: each is made again
# only when it is missing (the Redis, nginx and Prometheus stand-ins also when their
# Containerfile changes).

repo="$(cd "$here/../.." && pwd)"
state="${PODMAN_STATE:-/var/tmp/registrar-gateway-podman}"

# The tools (Debian's packages). runc, not crun: crun 1.8 refuses this machine's hybrid
# cgroup layout. netavark and aardvark-dns give compose networks their service names.
install_podman() {
    local missing=()
    for tool in podman runc mmdebstrap podman-compose netavark aardvark-dns; do
        dpkg -s "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# podman's configuration here: cgroupfs and a file event log (there is no systemd), rlimits
# the process may set, and the storage and run folders inside the state folder, so that the
# machine's own podman defaults are neither needed nor disturbed.
configure_podman() {
    mkdir -p "$state/storage" "$state/run" "$state/tmp"
    cat >"$state/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[network]
network_backend = "netavark"
network_config_dir = "$state/networks"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$state/events.log"
tmp_dir = "$state/run/libpod"
volume_path = "$state/storage/volumes"
EOF
    cat >"$state/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$state/storage"
runroot = "$state/run/storage"
EOF
    export CONTAINERS_CONF="$state/containers.conf" CONTAINERS_STORAGE_CONF="$state/storage.conf" \
        TMPDIR="$state/tmp"
}

# Builds `name` from the Containerfile on stdin in `context`, unless an image of that name made
# from the same Containerfile exists already (its digest is kept in a label).
stand_in() {
    local name=$1 context=$2
    local containerfile="$state/tmp/Containerfile"
    cat >"$containerfile"
    local digest
    digest="$(sha256sum "$containerfile" | cut -c1-16)"
    if [ "$(podman image inspect -f '{{index .Labels "stand-in"}}' "$name" 2>/dev/null)" = "$digest" ]; then
        return 0
    fi
    echo "container: making the stand-in $name"
    mkdir -p "$context"
    podman build --pull=never --network host --format docker -q --label "stand-in=$digest" \
        -t "$name" -f "$containerfile" "$context" >/dev/null
}

# The base images, under the exact names the Dockerfile uses, and the compose files'
# Redis, nginx and Prometheus (Debian's packages on the same base; the test override names them).
prepare_base_images() {
    local base=docker.io/library/debian:bookworm-slim
    local builder
    builder="docker.io/library/$(sed -n 's/^FROM \(rust:[^ @]*\).* AS .*/\1/p' "$repo/Dockerfile")"
    [ "$builder" != docker.io/library/ ] || { echo "container: no 'FROM rust:…' stage in the Dockerfile" >&2; return 1; }
    if ! podman image exists "$base"; then
        # A Debian minbase root filesystem from the machine's own apt sources (no mirror in the repo).
        echo "container: making the stand-in $base (mmdebstrap)"
        local sources=/etc/apt/sources.list
        [ -s "$sources" ] || sources="$(ls /etc/apt/sources.list.d/*.sources | head -n 1)"
        mmdebstrap --quiet --variant=minbase --format=tar --aptopt='Acquire::Check-Valid-Until "false"' \
            bookworm "$state/tmp/base.tar" "$sources"
        podman import --quiet --change 'CMD ["bash"]' "$state/tmp/base.tar" "$base" >/dev/null
        rm -f "$state/tmp/base.tar"
    fi
    if ! podman image exists "$builder"; then
        prepare_builder_context "$builder"
        stand_in "$builder" "$state/tmp/builder" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \
 && update-ca-certificates && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY rust/ /usr/local/rust/
RUN mkdir -p $CARGO_HOME/bin $RUSTUP_HOME && chmod -R a+w $CARGO_HOME $RUSTUP_HOME && cargo --version
EOF
        rm -rf "$state/tmp/builder"
    fi
    # As the official image's entrypoint does, redis-server runs without protected mode (the
    # compose network is the boundary), or it refuses the replicas' connections.
    stand_in localhost/stand-in/redis:test "$state/tmp/empty" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && printf '#!/bin/sh\nif [ "$1" = redis-server ]; then shift; set -- redis-server --protected-mode no "$@"; fi\nexec "$@"\n' \
    >/usr/local/bin/entrypoint && chmod +x /usr/local/bin/entrypoint
ENTRYPOINT ["/usr/local/bin/entrypoint"]
CMD ["redis-server"]
EOF
    stand_in localhost/stand-in/nginx:test "$state/tmp/empty" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/*
CMD ["nginx", "-g", "daemon off;"]
EOF
    stand_in localhost/stand-in/prometheus:test "$state/tmp/empty" <<'EOF'
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/usr/bin/prometheus"]
EOF
}

# The Rust builder's context: the build machine's own toolchain of the Dockerfile's version
# (nothing downloaded), only what cargo and rustc need, and the machine's locally added CA
# certificates so that cargo reaches the crate registry through the machine's TLS set-up.
# These certificates go into this local stand-in only, never into the project's image.
prepare_builder_context() {
    local version=${1##*rust:}
    version=${version%%-*}
    local toolchain=""
    for candidate in "${RUSTUP_HOME:-$HOME/.rustup}"/toolchains/*-x86_64-unknown-linux-gnu; do
        if "$candidate/bin/rustc" --version 2>/dev/null | grep -q "^rustc $version\.[0-9]"; then
            toolchain="$(realpath "$candidate")"
            break
        fi
    done
    [ -n "$toolchain" ] || { echo "container: no Rust $version toolchain on this machine (rustup toolchain install $version)" >&2; return 1; }
    local context="$state/tmp/builder"
    rm -rf "$context"
    mkdir -p "$context/rust/bin" "$context/rust/lib/rustlib" "$context/extra-ca"
    cp -a "$toolchain/bin/cargo" "$toolchain/bin/rustc" "$toolchain/bin/rustdoc" "$context/rust/bin/"
    cp -a "$toolchain"/lib/*.so* "$context/rust/lib/"
    cp -a "$toolchain/lib/rustlib/x86_64-unknown-linux-gnu" "$context/rust/lib/rustlib/"
    cp -a "$toolchain"/lib/rustlib/*.toml "$toolchain"/lib/rustlib/components "$context/rust/lib/rustlib/" 2>/dev/null || true
    cp /usr/local/share/ca-certificates/*.crt "$context/extra-ca/" 2>/dev/null || true
}

# What podman's networking (netavark) changes on the machine and leaves when its last container is
# gone: top-level iptables chains and their jumps, and IPv4 forwarding. Recorded before the check
# and undone after it, unless they were there already (someone else's podman).
record_network() {
    network_before="$(iptables-save 2>/dev/null | grep -c NETAVARK || true)"
    forwarding_before="$(cat /proc/sys/net/ipv4/ip_forward)"
}
restore_network() {
    if [ "${network_before:-1}" = 0 ]; then
        for table in filter nat; do
            iptables -t "$table" -S 2>/dev/null | grep -- '^-A .*NETAVARK' | sed 's/^-A/-D/' \
                | while read -r rule; do eval "iptables -t $table $rule"; done
            iptables -t "$table" -S 2>/dev/null | sed -n 's/^-N \(NETAVARK.*\)/\1/p' \
                | while read -r chain; do iptables -t "$table" -F "$chain" && iptables -t "$table" -X "$chain"; done
        done
    fi
    if [ -n "${forwarding_before:-}" ]; then echo "$forwarding_before" >/proc/sys/net/ipv4/ip_forward; fi
}
