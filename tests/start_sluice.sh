# Sourced by the client and console test runners: starts `$bin serve` on a free port with the
# given arguments (the admin password from SLUICE_ADMIN_PASSWORD), its log in $work/log, and sets
# `pid` and `address` (http://127.0.0.1:PORT) once it listens; exits 2 with the log if it does not.
start_sluice() {
    "$bin" serve --listen 127.0.0.1:0 "$@" >"$work/log" 2>&1 &
    pid=$!
    address=""
    for _ in $(seq 100); do
        address=$(sed -n 's/^sluice listening on \(http[^ ]*\).*/\1/p' "$work/log" | head -n 1)
        [ -n "$address" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$address" ]; then
        echo "sluice did not start:" >&2
        cat "$work/log" >&2
        exit 2
    fi
}
