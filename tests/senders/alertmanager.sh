#!/usr/bin/env bash
# Acceptance with the real Prometheus Alertmanager (Debian's prometheus-alertmanager, installed
# when missing): two Alertmanagers, not clustered (as an HA pair whose gossip has not caught up,
# so both notify), each with a webhook receiver using basic auth to sluice's built-in
# `alertmanager` integration. An alert pushed through their API must open one incident; the
# repeats (repeat_interval) and the second peer's copies must not add one; the alert pushed again
# with endsAt in the past must resolve it (state 6).
#   SLUICE_BIN                  the binary (default: target/debug/sluice, built when missing)
#   SLUICE_SENDERS_DATABASE     a PostgreSQL URL (an empty database) instead of SQLite
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v prometheus-alertmanager >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-alertmanager >/dev/null
fi
for tool in curl python3; do
    command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
done

. tests/start_sluice.sh
runner_setup
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/log "$work"/am*/log; do echo "--- $f" >&2; tail -n 40 "$f" >&2; done
    exit 1
}

password="senders-$(date +%s)-Secret"
sender_password="am-sender-$(date +%s)-Secret"
database_args=()
[ -n "${SLUICE_SENDERS_DATABASE:-}" ] && database_args=(--database "$SLUICE_SENDERS_DATABASE")
SLUICE_ADMIN_PASSWORD=$password start_sluice --data "$work/data" "${database_args[@]}"
# The account Alertmanager sends as: may post to integrations, nothing else.
printf '%s' "$sender_password" |
    "$bin" account add am-sender --role import_set_loader --password-stdin --data "$work/data" "${database_args[@]}" >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# One Alertmanager: own folder, config and data; clustering off. Sets `am` to its address. Not
# run in a subshell, so that its pid reaches `extra_pids` and it is stopped at exit.
start_alertmanager() {
    local name=$1 port
    port=$(free_port)
    mkdir -p "$work/$name"
    cat >"$work/$name/alertmanager.yml" <<YAML
route:
  receiver: sluice
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 3s
receivers:
  - name: sluice
    webhook_configs:
      - url: ${address}/api/sluice/v1/hooks/alertmanager
        send_resolved: true
        http_config:
          basic_auth:
            username: am-sender
            password: ${sender_password}
YAML
    prometheus-alertmanager --config.file="$work/$name/alertmanager.yml" --storage.path="$work/$name/data" \
        --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >"$work/$name/log" 2>&1 &
    extra_pids+=($!)
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null || fail "$name did not start"
    am="http://127.0.0.1:$port"
}
start_alertmanager am1
am1=$am
start_alertmanager am2
am2=$am

# The alert as Prometheus pushes it, to both peers (endsAt: $1).
push() {
    local ends_at=$1 body
    body=$(printf '[{"labels": {"alertname": "SluiceAcceptance", "instance": "db-01", "severity": "critical"},
        "annotations": {"summary": "Disk full on db-01", "description": "Root file system over 95%%"},
        "startsAt": "%s", "endsAt": "%s", "generatorURL": "http://prometheus.example/graph"}]' "$started" "$ends_at")
    for am in "$am1" "$am2"; do
        curl -fsS -X POST -H 'Content-Type: application/json' -d "$body" "$am/api/v2/alerts" >/dev/null ||
            fail "$am refused the alert"
    done
}
started=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
push "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"

fingerprint=$(curl -fsS "$am1/api/v2/alerts" | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["fingerprint"])')
table() { curl -fsS -u "admin:$password" "$address/api/now/table/$1?$2"; }
count() { python3 -c 'import json, sys; print(len(json.load(sys.stdin)["result"]))'; }
field() { python3 -c "import json, sys; r = json.load(sys.stdin)['result']; print(r[0]['$1'] if r else '')"; }
incidents="sysparm_query=correlation_id=alertmanager:$fingerprint&sysparm_fields=number,state,close_code,close_notes"
deliveries="sysparm_query=u_correlation_key=$fingerprint&sysparm_fields=sys_import_state&sysparm_limit=1000"
errored="sysparm_query=u_correlation_key=$fingerprint^sys_import_state=error&sysparm_fields=sys_import_state"

# Firing → one incident.
for _ in $(seq 100); do
    [ "$(table incident "$incidents" | count)" -ge 1 ] && break
    sleep 0.2
done
[ "$(table incident "$incidents" | count)" = 1 ] || fail "no incident (or more than one) for the firing alert"
number=$(table incident "$incidents" | field number)
echo "firing: $number opened for fingerprint $fingerprint"

# Repeats: both peers notify again every repeat_interval; wait for at least four deliveries.
for _ in $(seq 150); do
    [ "$(table u_alertmanager "$deliveries" | count)" -ge 4 ] && break
    sleep 0.2
done
delivered=$(table u_alertmanager "$deliveries" | count)
[ "$delivered" -ge 4 ] || fail "only $delivered deliveries arrived"
[ "$(table incident "$incidents" | count)" = 1 ] || fail "a repeat created another incident"
errors=$(table u_alertmanager "$errored" | count)
[ "$errors" = 0 ] || fail "$errors deliveries were staged as errors"
echo "repeats: $delivered deliveries from two peers, still one incident"

# Resolved: the alert pushed again with endsAt in the past.
push "$(date -u -d '-5 sec' +%Y-%m-%dT%H:%M:%SZ)"
for _ in $(seq 150); do
    [ "$(table incident "$incidents" | field state)" = 6 ] && break
    sleep 0.2
done
[ "$(table incident "$incidents" | field state)" = 6 ] || fail "the incident was not resolved"
[ "$(table incident "$incidents" | count)" = 1 ] || fail "the resolution created another incident"
notes=$(table incident "$incidents" | field close_notes)
[ "$notes" = "Resolved in Alertmanager: Disk full on db-01" ] || fail "close notes: $notes"
echo "resolved: $number is state 6 ($(table incident "$incidents" | field close_code))"
echo "ok: the real Alertmanager (two peers, basic auth) opened, repeated and resolved one incident"
