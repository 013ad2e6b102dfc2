# Shell helpers shared by the interop scripts (sourced, not run).

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

# Installs the pinned client packages (and Node.js itself where the machine lacks it).
install_clients() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        # The machine image ships Node.js; a bare one gets Debian's.
        apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
    fi
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
}
