#!/usr/bin/env bash
# A real SOAP client against the built binary: starts `sluice serve` on a free port with a fresh
# data folder and a known admin password, makes a Python venv with zeep (from PyPI) and runs
# tests/clients/soap_zeep.py through the WSDL's SOAP 1.1 port, then its SOAP 1.2 port.
# Exit status: the script's.
#   SLUICE_BIN             the binary (default: target/debug/sluice, built when missing)
#   VENV                   where the venv is kept between runs (default: a temporary folder)
#   SLUICE_SOAP_DATABASE   a PostgreSQL URL (an empty database) instead of SQLite
set -euo pipefail
cd "$(dirname "$0")/../.."

. tests/start_sluice.sh
runner_setup
python_venv 'zeep==4.3.1'

password="soap-$(date +%s)-Secret"
database_args=()
[ -n "${SLUICE_SOAP_DATABASE:-}" ] && database_args=(--database "$SLUICE_SOAP_DATABASE")
SLUICE_ADMIN_PASSWORD=$password start_sluice --data "$work/data" "${database_args[@]}"

SN_URL=$address SN_USER=admin SN_PASS=$password "$venv/bin/python" tests/clients/soap_zeep.py
SN_SOAP12=1 SN_URL=$address SN_USER=admin SN_PASS=$password "$venv/bin/python" tests/clients/soap_zeep.py
