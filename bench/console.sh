#!/usr/bin/env bash
# Page render times of the web console with 100,000 incidents:
#   bench/console.sh BINARY [POSTGRES_URL]
# Starts `serve` on 127.0.0.1:8091 with a fresh data folder (or the given, empty, PostgreSQL
# database), seeds 100,000 incidents through insertMultiple (sync, 10,000 records a request),
# logs an interactive admin into the console with curl (cookie jar, CSRF token scraped from the
# login form when it has one), then runs wrk for $DURATION (default 10s) with $CONNECTIONS
# (default 8) on every page: the incidents list (all, filtered), one incident, home, import rows
# (all, errored of one integration), one row, one integration, accounts, admin audit.
# Prints one line per page: requests/s, p50, p99. Target: p99 <= 50 ms. Needs wrk and curl.
# PAGES=REGEX measures only the pages whose path matches (e.g. PAGES=integrations/).
set -euo pipefail
bin=${1:?usage: bench/console.sh BINARY [POSTGRES_URL]}
database=${2:-}
base=http://127.0.0.1:8091
duration=${DURATION:-10s}
connections=${CONNECTIONS:-8}
records=${RECORDS:-100000}
work=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

dbargs=(--data "$work/data")
[ -n "$database" ] && dbargs=(--database "$database")
admin_password=bench-admin-password-123
SLUICE_ADMIN_PASSWORD=$admin_password "$bin" serve --listen 127.0.0.1:8091 "${dbargs[@]}" \
    --request-timeout 600 --rate-per-ip 0 --rate-per-account 0 >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/log" && break; sleep 0.2; done
grep -q "listening on" "$work/log" || { cat "$work/log" >&2; exit 2; }
# The bootstrap admin is web-service-only: an interactive admin (the server runs without rate limits).
password=bench-console-password-123
printf '%s' "$password" | "$bin" account add bench --role admin --web-service-only false \
    --password-stdin "${dbargs[@]}" >/dev/null

echo "seeding $records incidents ..." >&2
start=$(date +%s)
for ((done_ = 0; done_ < records; done_ += 10000)); do
    python3 - "$done_" "$((records - done_ < 10000 ? records - done_ : 10000))" >"$work/batch.json" <<'PY'
import json, sys
first, count = int(sys.argv[1]), int(sys.argv[2])
categories = ["inquiry", "software", "hardware", "network", "database"]
print(json.dumps({"records": [
    {"u_short_description": f"Bench incident {n}: disk usage above threshold on host-{n % 997}",
     "u_impact": str(1 + n % 3), "u_urgency": str(1 + (n // 3) % 3),
     "u_category": categories[n % 5], "u_correlation_id": f"bench:{n}"}
    for n in range(first, first + count)]}))
PY
    status=$(curl -s -o "$work/answer" -w '%{http_code}' -u "admin:$admin_password" \
        -H 'Content-Type: application/json' --data-binary "@$work/batch.json" \
        "$base/api/now/import/u_incident_import/insertMultiple?sysparm_sluice_sync=true")
    [ "$status" = 201 ] || { echo "insertMultiple answered $status: $(head -c 300 "$work/answer")" >&2; exit 1; }
done
total=$(curl -s -D - -o /dev/null -u "admin:$admin_password" "$base/api/now/table/incident?sysparm_limit=1" |
    tr -d '\r' | awk -F': ' 'tolower($1)=="x-total-count" {print $2}')
echo "seeded: $total incidents in $(($(date +%s) - start)) s" >&2
# PostgreSQL plans from table statistics, which autovacuum refreshes about a minute after a load
# this size; where autovacuum is off (as on the benchmark machine), gather them now.
[ -n "$database" ] && psql -q "$database" -c ANALYZE

# Log in as a browser would: the login form (and its csrf field, if any), then the POST.
jar=$work/cookies
login_page=$(curl -s -c "$jar" -b "$jar" "$base/console/login")
csrf=$(printf '%s' "$login_page" | sed -n 's/.*name="csrf"[^>]*value="\([^"]*\)".*/\1/p' | head -n 1)
code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" -H 'Sec-Fetch-Site: same-origin' \
    --data-urlencode "user_name=bench" --data-urlencode "password=$password" --data-urlencode "csrf=$csrf" \
    "$base/console/login")
token=$(awk '$6 == "sluice_session" {print $7}' "$jar")
[ -n "$token" ] || { echo "console login failed (HTTP $code): no sluice_session cookie" >&2; exit 1; }

incident=$(curl -s -u "admin:$admin_password" \
    "$base/api/now/table/incident?sysparm_limit=1&sysparm_fields=sys_id&sysparm_query=priority=1" |
    sed -n 's/.*"sys_id":"\([0-9a-f]\{32\}\)".*/\1/p')
row=$(curl -s -u "admin:$admin_password" \
    "$base/api/now/table/u_incident_import?sysparm_limit=1&sysparm_fields=sys_id" |
    sed -n 's/.*"sys_id":"\([0-9a-f]\{32\}\)".*/\1/p')
threads=$((connections < 2 ? connections : 2))
echo "wrk: $connections connections, $duration per page; target p99 <= 50 ms"
for path in "/console/incidents" "/console/incidents?sysparm_query=priority=1" \
    "/console/incidents/$incident" "/console" "/console/import_sets" \
    "/console/import_sets?state=error&integration=u_incident_import" "/console/import_sets/rows/$row" \
    "/console/integrations/u_incident_import" "/console/accounts" "/console/admin_audit"; do
    # PAGES (a regular expression) measures only the pages whose path matches it.
    [[ "$path" =~ ${PAGES:-.} ]] || continue
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: sluice_session=$token" "$base$path")
    if [ "$code" != 200 ]; then
        echo "$path: HTTP $code, not measured"
        continue
    fi
    out=$(wrk --latency -t"$threads" -c"$connections" -d"$duration" -H "Cookie: sluice_session=$token" \
        "$base$path" 2>&1) || { echo "$path: wrk failed: $out"; continue; }
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    printf '%-48s rps=%-9s p50=%-9s p99=%-9s%s\n' "$path" \
        "$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
        "$(echo "$out" | awk '$1=="50%" {print $2}')" \
        "$(echo "$out" | awk '$1=="99%" {print $2}')" \
        "${non2xx:+ non-2xx=$non2xx}"
done
