#!/usr/bin/env bash
# Compare two sluice builds on this machine, interleaved so that the machine's noise falls on both:
#   bench/compare.sh OLD_BINARY NEW_BINARY [ROUNDS]
# Each run: a fresh data folder (or PostgreSQL database), `serve` on 127.0.0.1:8090, 10 s of load.
# Scenarios: wrk import, `sluice bench` import / table / insert-multiple, the same on PostgreSQL
# (needs PostgreSQL on 127.0.0.1:5432 with trust auth, and wrk). Prints one line per run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
run() { # BIN LABEL SCENARIO [pg]
    local bin=$1 label=$2 scenario=$3 pg=${4:-} data db="" dbarg=()
    data=$(mktemp -d)
    if [ -n "$pg" ]; then
        db="bench_$(date +%s%N)"
        psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"
        dbarg=(--database "postgres://postgres@127.0.0.1:5432/$db")
    fi
    SLUICE_ADMIN_PASSWORD=admin-password-123 "$bin" serve --data "$data" --listen 127.0.0.1:8090 "${dbarg[@]}" >"$data/log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$data/log" && break; sleep 0.2; done
    if [ "$scenario" = wrk ]; then
        local out
        out=$(wrk --latency -t2 -c64 -d10s -s "$here/wrk/import.lua" http://127.0.0.1:8090 2>&1)
        echo "$label wrk${pg:+-pg} rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}') p99=$(echo "$out" | awk '$1=="99%" {print $2}')"
    else
        echo "$label $scenario${pg:+-pg} $("$bin" bench --target 127.0.0.1:8090 --password admin-password-123 \
            --scenario "$scenario" --connections 64 --duration 10 2>&1 | tr '\n' ' ' | tr -s ' ')"
    fi
    kill "$pid"; wait "$pid" 2>/dev/null
    rm -rf "$data"
    [ -n "$db" ] && psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
}
for _ in $(seq "${3:-3}"); do
    for scenario in "wrk" "import" "table" "insert-multiple" "wrk pg" "insert-multiple pg"; do
        set -- "$1" "$2"
        read -r sc pg <<<"$scenario"
        run "$1" old "$sc" "$pg"
        run "$2" new "$sc" "$pg"
    done
done
