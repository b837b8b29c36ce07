#!/usr/bin/env bash
# Peak resident memory of one sluice server under the request shapes that could make it hold the
# most: many large insertMultiple bodies at once, and Batch API requests whose inner answers are
# large. Each case on a fresh server (SQLite, or PostgreSQL with `pg` as second argument):
#   bench/rss.sh BINARY [pg]
# Prints the case, what was sent, the answers' status codes and the peak RSS (VmHWM) in MiB.
set -euo pipefail
bin=$(realpath "$1")
pg=${2:-}
port=8091
password=admin-password-123
base=http://127.0.0.1:$port
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Payloads: a 10,000-record insertMultiple of ~4 KiB records (~40 MiB, under the 64 MiB limit),
# a batch of 1,000 inner GETs of a 1,000-incident list.
python3 - "$work" <<'EOF'
import base64, json, sys
work = sys.argv[1]
text = "disk usage above threshold on db-prod-01 " * 150
records = [{"u_short_description": f"bulk {i}", "u_description": text[:3900], "u_correlation_id": f"rss-{i}",
            "u_caller": "monitoring.bot", "u_impact": "2", "u_urgency": "2"} for i in range(10_000)]
open(f"{work}/bulk.json", "w").write(json.dumps({"records": records}))
requests = [{"id": str(i), "method": "GET", "url": "/api/now/table/incident?sysparm_limit=1000",
             "headers": [{"name": "Accept", "value": "application/json"}]} for i in range(1000)]
open(f"{work}/batch.json", "w").write(json.dumps({"batch_request_id": "rss", "rest_requests": requests}))
EOF

start() {
    local data=$work/data-$1 dbarg=()
    mkdir -p "$data"
    if [ -n "$pg" ]; then
        db="rss_$(date +%s%N)"
        psql -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE $db"
        dbarg=(--database "postgres://postgres@127.0.0.1:5432/$db")
    fi
    SLUICE_ADMIN_PASSWORD=$password "$bin" serve --data "$data" --listen 127.0.0.1:$port "${dbarg[@]}" \
        >"$data/log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do grep -q "listening on" "$data/log" && break; sleep 0.2; done
}
stop() {
    kill "$pid"; wait "$pid" 2>/dev/null || true
    if [ -n "$pg" ]; then psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; fi
}
peak() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }
post() { # PATH FILE -> status code
    curl -s -o /dev/null -w '%{http_code}\n' -u "admin:$password" -H 'Content-Type: application/json' \
        --data-binary "@$2" "$base$1"
}

# 1. Sixteen 40 MiB insertMultiple requests at once (eight are read at a time, the rest wait).
start bulk
idle=$(peak)
for _ in $(seq 16); do post /api/now/import/u_incident_import/insertMultiple "$work/bulk.json" >>"$work/bulk.codes" & done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
echo "bulk${pg:+-pg}: 16 x $(du -m "$work/bulk.json" | cut -f1) MiB insertMultiple at once: $(sort "$work/bulk.codes" | uniq -c | tr -s ' \n' ' ')| idle ${idle} MiB, peak $(peak) MiB"
stop

# 2. Batch API: 1,000 incidents, then four batches of 1,000 inner list GETs at once.
start batch
idle=$(peak)
python3 - "$work" <<'EOF'
import json, sys
records = [{"u_short_description": f"listed {i}", "u_description": "x" * 2000, "u_caller": "monitoring.bot"} for i in range(1000)]
open(f"{sys.argv[1]}/seed.json", "w").write(json.dumps({"records": records}))
EOF
curl -s -o /dev/null -u "admin:$password" -H 'Content-Type: application/json' --data-binary "@$work/seed.json" \
    "$base/api/now/import/u_incident_import/insertMultiple?sysparm_sluice_sync=true"
for _ in $(seq 4); do post /api/now/v1/batch "$work/batch.json" >>"$work/batch.codes" & done
wait $(jobs -p | grep -v "^$pid$") 2>/dev/null || true
answer=$(curl -s -u "admin:$password" -H 'Content-Type: application/json' --data-binary "@$work/batch.json" "$base/api/now/v1/batch" |
    python3 -c 'import json,sys; a=json.load(sys.stdin); print(len(a.get("serviced_requests", [])), "serviced,", len(a.get("unserviced_requests", [])), "unserviced")')
echo "batch${pg:+-pg}: 4 x 1,000 inner GETs of 1,000 incidents at once: $(sort "$work/batch.codes" | uniq -c | tr -s ' \n' ' ')($answer) | idle ${idle} MiB, peak $(peak) MiB"
stop
