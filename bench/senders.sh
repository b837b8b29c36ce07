#!/usr/bin/env bash
# Throughput of each sender adapter beside the Import Set API, on one machine, same settings:
#   bench/senders.sh BINARY [ROUNDS] [pg]
# Each run: a fresh data folder (or, with `pg`, a fresh PostgreSQL database on 127.0.0.1:5432),
# `serve` on 127.0.0.1:8092 with the built-in integrations plus bench/integrations/, then
# DURATION (10 s) of wrk at CONNECTIONS (64) keep-alive connections, every request a new
# incident. After each run the incidents are counted through the Table API and compared with
# wrk's completed requests. Prints one line per run, then the median of each scenario.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?usage: bench/senders.sh BINARY [ROUNDS] [pg]}
rounds=${2:-3}
pg=${3:-}
duration=${DURATION:-10s}
connections=${CONNECTIONS:-64}
scenarios=${SCENARIOS:-import alertmanager webhook pagerduty signed}
base=http://127.0.0.1:8092
password=admin-password-123
results=$(mktemp)
signed=$(mktemp)
trap 'rm -f "$results" "$signed"' EXIT
export SLUICE_BENCH_SECRET=bench-webhook-secret-0123456789
# Signed bodies for the `signed` scenario (HMAC-SHA256, GitHub's header): more than a run sends.
python3 - "$signed" "${SIGNED_BODIES:-400000}" <<'PY'
import hashlib, hmac, os, sys
secret = os.environ["SLUICE_BENCH_SECRET"].encode()
with open(sys.argv[1], "w") as out:
    for n in range(int(sys.argv[2])):
        body = ('{"event":{"id":"s-%d-%s","title":"Disk usage above 95%% on db-%d"},"level":"2"}'
                % (n, os.urandom(4).hex(), n % 100))
        out.write(hmac.new(secret, body.encode(), hashlib.sha256).hexdigest() + "\t" + body + "\n")
PY

run() { # SCENARIO
    local scenario=$1 work db="" dbarg=() out pid
    work=$(mktemp -d)
    mkdir "$work/integrations"
    cp "$here"/../crates/sluice-core/integrations/*.toml "$here"/integrations/*.toml "$work/integrations/"
    if [ -n "$pg" ]; then
        db="bench_senders_$(date +%s%N)"
        psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"
        dbarg=(--database "postgres://postgres@127.0.0.1:5432/$db")
    fi
    SLUICE_ADMIN_PASSWORD=$password "$bin" serve --data "$work/data" --listen 127.0.0.1:8092 \
        --integrations "$work/integrations" --rate-per-ip 0 --rate-per-account 0 "${dbarg[@]}" \
        >"$work/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$work/log" && break; sleep 0.2; done
    grep -q "listening on" "$work/log" || { cat "$work/log" >&2; exit 2; }
    local key=""
    if [ "$scenario" = pagerduty ]; then
        key=$(curl -fsS -u "admin:$password" -H 'Content-Type: application/json' \
            -d '{"label": "bench", "integration": "pagerduty"}' "$base/api/sluice/v1/accounts/admin/tokens" |
            python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["token"])')
    fi
    case $scenario in
        import) out=$(wrk --latency -t2 -c"$connections" -d"$duration" -s "$here/wrk/import.lua" "$base" 2>&1) ;;
        *) out=$(SLUICE_BENCH_SENDER=$scenario SLUICE_BENCH_ROUTING_KEY=$key SLUICE_BENCH_SIGNED=$signed wrk --latency -t2 -c"$connections" -d"$duration" \
            -s "$here/wrk/sender.lua" "$base" 2>&1) ;;
    esac
    local requests incidents
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    incidents=$(curl -s -D - -o /dev/null -u "admin:$password" "$base/api/now/table/incident?sysparm_limit=1" |
        tr -d '\r' | awk -F': ' 'tolower($1)=="x-total-count" {print $2}')
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$work"
    [ -n "$db" ] && psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    local rps p50 p99 note=""
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    # wrk stops mid-request at the deadline: a few answered requests may not be counted by it.
    [ "${incidents:-0}" -lt "${requests:-0}" ] && note=" MISSING=$((requests - incidents))"
    printf '%-13s%s rps=%-9s p50=%-9s p99=%-9s requests=%s incidents=%s%s\n' "$scenario" "${pg:+ (pg)}" \
        "$rps" "$p50" "$p99" "$requests" "$incidents" "$note"
    echo "$scenario $rps $p99" >>"$results"
}

for _ in $(seq "$rounds"); do
    for scenario in $scenarios; do run "$scenario"; done
done
echo "medians of $rounds (${pg:-sqlite}):"
# shellcheck source=bench/medians.sh
. "$here/medians.sh"
print_medians "$results" 13 $scenarios
