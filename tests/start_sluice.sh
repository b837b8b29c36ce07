# Sourced by the client, sender and console test runners (run from the repository's root).
#
# runner_setup: `bin` (SLUICE_BIN, default target/debug/sluice, built when missing), `work` (a
# temporary folder, removed at exit), `venv` (VENV, default inside `work`) and `pid` (the server,
# stopped at exit). A runner with more to stop adds it to `extra_pids`.
runner_setup() {
    bin=${SLUICE_BIN:-target/debug/sluice}
    [ -x "$bin" ] || cargo build --quiet --bin sluice
    work=$(mktemp -d)
    venv=${VENV:-$work/venv}
    pid=""
    extra_pids=()
    trap runner_cleanup EXIT
}

runner_cleanup() {
    local p
    for p in "${extra_pids[@]}" $pid; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}

# python_venv PACKAGE==VERSION...: a venv at `venv` with these pinned packages from PyPI (kept as
# it is when VENV names one that exists).
python_venv() {
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    fi
}

# start_sluice ARG...: starts `$bin serve` on a free port with the given arguments (the admin
# password from SLUICE_ADMIN_PASSWORD), its log in $work/log, and sets `pid` and `address`
# (http://127.0.0.1:PORT, or https:// with TLS) once it listens; exits 2 with the log if it does not.
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
