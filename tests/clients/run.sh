#!/usr/bin/env bash
# Real clients against the built binary: starts `sluice serve` on a free port with a fresh data
# folder and a known admin password, makes a Python venv with pysnc (from PyPI) and runs
# tests/clients/pysnc_attachments.py against it. Exit status: the script's.
#   SLUICE_BIN   the binary (default: target/debug/sluice, built when missing)
#   VENV         where the venv is kept between runs (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/../.."

. tests/start_sluice.sh
runner_setup
python_venv 'pysnc==1.2.1' requests

password="clients-$(date +%s)-Secret"
SLUICE_ADMIN_PASSWORD=$password start_sluice --data "$work/data"

SN_URL=$address SN_USER=admin SN_PASS=$password "$venv/bin/python" tests/clients/pysnc_attachments.py
