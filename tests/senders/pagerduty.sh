#!/usr/bin/env bash
# Acceptance with PagerDuty's own Python client (`pagerduty` from PyPI, in a fresh venv): a
# routing key of the built-in `pagerduty` integration made through the token API, then
# tests/senders/pd_events_client.py sends trigger, repeat, acknowledge, resolve and trigger again to
# sluice's /v2/enqueue and checks the incidents through the Table API.
#   SLUICE_BIN                  the binary (default: target/debug/sluice, built when missing)
#   SLUICE_SENDERS_DATABASE     a PostgreSQL URL (an empty database) instead of SQLite
#   VENV                        where the venv is kept between runs (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in curl python3 openssl; do
    command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
done
. tests/start_sluice.sh
runner_setup
python_venv 'pagerduty==7.2.0'

password="senders-$(date +%s)-Secret"
database_args=()
[ -n "${SLUICE_SENDERS_DATABASE:-}" ] && database_args=(--database "$SLUICE_SENDERS_DATABASE")
# The client takes https:// only: a certificate for 127.0.0.1, made for this run.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
SLUICE_ADMIN_PASSWORD=$password start_sluice --data "$work/data" --tls-cert "$work/cert.pem" \
    --tls-key "$work/key.pem" "${database_args[@]}"
# The account the events are sent as: may post to integrations, nothing else.
"$bin" account add pd-sender --role import_set_loader --data "$work/data" "${database_args[@]}" >/dev/null
key=$(curl -fsS --cacert "$work/cert.pem" -u "admin:$password" -H 'Content-Type: application/json' \
    -d '{"label": "pagerduty client", "integration": "pagerduty"}' \
    "$address/api/sluice/v1/accounts/pd-sender/tokens" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["token"])')

if ! SN_URL=$address SN_USER=admin SN_PASS=$password PD_ROUTING_KEY=$key PD_CA_FILE=$work/cert.pem "$venv/bin/python" tests/senders/pd_events_client.py; then
    echo "--- sluice log" >&2
    tail -n 40 "$work/log" >&2
    exit 1
fi
