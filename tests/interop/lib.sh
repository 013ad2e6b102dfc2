# Shell helpers shared by the interop scripts (sourced, not run, after `here` and
# `binary` are set).

# Waits for a log line and prints the value of `field=` in it (the port was chosen by the OS).
logged() {
    local file=$1 field=$2
    for _ in $(seq 100); do
        if grep -qo "$field=[^ ]*" "$file" 2>/dev/null; then
            grep -o "$field=[^ ]*" "$file" | head -n 1 | cut -d= -f2-
            return 0
        fi
        sleep 0.1
    done
    echo "no $field in $file:" >&2
    cat "$file" >&2
    return 1
}

# A free loopback port (for the tools that cannot take port 0 and say which they got).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The repository's root: its package.json holds every Node package of the examples and
# of the interop clients in one lockfile (npm workspaces), installed in ./node_modules.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Installs the pinned Node packages (`npm ci` at the repository's root; and Node.js itself
# where the machine lacks it), unless an install newer than the lockfile is there.
install_clients() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        # The machine image ships Node.js; a bare one gets Debian's.
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    fi
    if [ "$repo_root/node_modules/.package-lock.json" -nt "$repo_root/package-lock.json" ]; then
        return 0
    fi
    (cd "$repo_root" && npm ci --no-audit --no-fund --loglevel=error)
}

# Installs the pinned Python clients into tests/interop/.venv.
install_python_clients() {
    if ! command -v python3 >/dev/null; then
        apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    [ -x "$here/.venv/bin/python" ] || python3 -m venv "$here/.venv"
    "$here/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
}

# Installs Debian's Chromium where it is missing (the browser test drives it;
# playwright-core downloads no browser of its own).
install_chromium() {
    if [ ! -x /usr/bin/chromium ]; then
        apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    fi
}

# Set-up the scripts share once they have set `binary`: a log folder, and every
# process started here stopped at exit.
logs="$(mktemp -d)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$logs"' EXIT
export NO_COLOR=1 RUST_LOG=info

# Starts the simulator on a free loopback port, with extra flags; exports SIMULATOR_URL.
start_simulator() {
    "$binary" simulate --listen 127.0.0.1:0 "$@" >"$logs/simulator.log" 2>&1 &
    pids+=($!)
    base_url="$(logged "$logs/simulator.log" base_url)"
    export SIMULATOR_URL="${base_url%/client/v4}"
}

# Starts the gateway in front of that simulator, with extra flags; exports
# GATEWAY_URL and GATEWAY_WS_URL.
start_gateway() {
    env -u CLOUDFLARE_EMAIL -u CLOUDFLARE_API_KEY \
        CLOUDFLARE_BASE_URL="$base_url" CLOUDFLARE_API_TOKEN=interop-token \
        CLOUDFLARE_ACCOUNT_ID=023e105f4ecef8ad9ca31a8372d0c353 \
        "$binary" --listen 127.0.0.1:0 "$@" >"$logs/gateway.log" 2>&1 &
    pids+=($!)
    local address
    address="$(logged "$logs/gateway.log" address)"
    export GATEWAY_URL="http://$address" GATEWAY_WS_URL="ws://$address"
}
