#!/usr/bin/env bash
# What forwarding costs the senders (docs/forwarding.md), one machine, same settings:
#   bench/forward.sh BINARY [ROUNDS] [pg]
# Scenarios, each on a fresh data folder (or, with `pg`, a fresh PostgreSQL database):
#   plain    the built-in u_incident_import, nothing forwarded (the baseline);
#   stub     the same definition forwarding to bench/forward/upstream_stub.py on 127.0.0.1:8095,
#            an Import Set API upstream that answers at once and costs little: what forwarding
#            itself costs the sending sluice;
#   forward  forwarding to an upstream sluice (Import Set API, basic auth) on 127.0.0.1:8093, on
#            the same machine (its work competes with the sender's for the same cores);
#   down     forwarding to 127.0.0.1:8094, where nothing listens: every delivery fails and retries.
# Each: DURATION (10 s) of wrk at CONNECTIONS (64) keep-alive connections on 127.0.0.1:8092, every
# request a new incident. `stub` and `forward` then wait for the outbox to drain and check that
# the upstream received exactly one correlation id per local incident. Prints one line per run,
# then medians.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: bench/forward.sh BINARY [ROUNDS] [pg]}
rounds=${2:-3}
pg=${3:-}
duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
scenarios=${SCENARIOS:-plain stub forward down}
base=http://127.0.0.1:8092
upstream=http://127.0.0.1:8093
password=admin-password-123
export SLUICE_BENCH_UPSTREAM_PASSWORD=$password
results=$(mktemp)
trap 'rm -f "$results"' EXIT

start() { # LOG ARGS...: serve in the background; sets $started to its pid
    local log=$1; shift
    SLUICE_ADMIN_PASSWORD=$password "$bin" serve --rate-per-ip 0 --rate-per-account 0 "$@" >"$log" 2>&1 &
    started=$!
    for _ in $(seq 100); do grep -q "listening on" "$log" && break; sleep 0.2; done
    grep -q "listening on" "$log" || { cat "$log" >&2; exit 2; }
}

count() { # BASE QUERY: the incidents the Table API counts
    curl -s -D - -o /dev/null -u "admin:$password" "$1/api/now/table/incident?sysparm_limit=1&sysparm_query=$2" |
        tr -d '\r' | awk -F': ' 'tolower($1)=="x-total-count" {print $2}'
}

run() { # SCENARIO
    local scenario=$1 work db="" dbarg=() out pid upid="" drain="-" remote="-"
    work=$(mktemp -d)
    mkdir "$work/integrations"
    cp "$here/../crates/sluice-core/integrations/u_incident_import.toml" "$work/integrations/"
    if [ "$scenario" != plain ]; then
        local target=$upstream
        [ "$scenario" = down ] && target=http://127.0.0.1:8094
        [ "$scenario" = stub ] && target=http://127.0.0.1:8095
        printf '\n[forward]\nkind = "servicenow-import"\nurl = "%s"\ntable = "u_incident_import"\nuser = "admin"\npassword_env = "SLUICE_BENCH_UPSTREAM_PASSWORD"\n%s\n' \
            "$target" "${FORWARD_EXTRA:-}" >>"$work/integrations/u_incident_import.toml"
    fi
    if [ "$scenario" = forward ]; then
        start "$work/upstream.log" --data "$work/upstream" --listen 127.0.0.1:8093
        upid=$started
    elif [ "$scenario" = stub ]; then
        python3 "$here/forward/upstream_stub.py" 8095 >"$work/upstream.log" 2>&1 &
        upid=$!
        for _ in $(seq 50); do grep -q listening "$work/upstream.log" && break; sleep 0.1; done
    fi
    if [ -n "$pg" ]; then
        db="bench_forward_$(date +%s%N)"
        psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"
        dbarg=(--database "postgres://postgres@127.0.0.1:5432/$db")
    fi
    start "$work/log" --data "$work/data" --listen 127.0.0.1:8092 --integrations "$work/integrations" "${dbarg[@]}"
    pid=$started
    out=$(wrk --latency -t2 -c"$connections" -d"$duration" -s "$here/wrk/import.lua" "$base" 2>&1)
    local requests incidents
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    incidents=$(count "$base" "")
    if [ "$scenario" = forward ] || [ "$scenario" = stub ]; then
        local t0=$SECONDS
        until curl -fsS -u "admin:$password" "$base/api/sluice/v1/integrations/u_incident_import/outbox?limit=1" |
            python3 -c 'import json,sys; c=json.load(sys.stdin)["result"]["counts"]; sys.exit(0 if c["pending"] == 0 else 1)'; do
            sleep 1
            [ $((SECONDS - t0)) -gt 900 ] && { echo "the outbox did not drain" >&2; break; }
        done
        drain="$((SECONDS - t0))s"
        if [ "$scenario" = stub ]; then
            remote=$(curl -fsS http://127.0.0.1:8095/count | python3 -c 'import json,sys; print(json.load(sys.stdin)["correlations"])')
        else
            remote=$(count "$upstream" "correlation_idSTARTSWITHsluice:")
        fi
    fi
    kill "$pid"; wait "$pid" 2>/dev/null || true
    [ -n "$upid" ] && { kill "$upid"; wait "$upid" 2>/dev/null || true; }
    rm -rf "$work"
    [ -n "$db" ] && psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    local rps p50 p99 note=""
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    [ "${incidents:-0}" -lt "${requests:-0}" ] && note=" MISSING=$((requests - incidents))"
    [ "$remote" != "-" ] && [ "$remote" != "$incidents" ] && note="$note UPSTREAM=$remote"
    printf '%-8s%s rps=%-9s p50=%-9s p99=%-9s requests=%s incidents=%s drained=%s%s\n' "$scenario" \
        "${pg:+ (pg)}" "$rps" "$p50" "$p99" "$requests" "$incidents" "$drain" "$note"
    echo "$scenario $rps $p99" >>"$results"
}

for _ in $(seq "$rounds"); do
    for scenario in $scenarios; do run "$scenario"; done
done
echo "medians of $rounds (${pg:-sqlite}):"
# shellcheck source=bench/medians.sh
. "$here/medians.sh"
print_medians "$results" 8 $scenarios
