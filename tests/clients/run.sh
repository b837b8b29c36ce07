#!/usr/bin/env bash
# Real clients against the built binary: starts `sluice serve` on a free port with a fresh data
# folder and a known admin password, makes a Python venv with pysnc (from PyPI) and runs
# tests/clients/pysnc_attachments.py against it. Exit status: the script's.
#   SLUICE_BIN   the binary (default: target/debug/sluice, built when missing)
#   VENV         where the venv is kept between runs (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${SLUICE_BIN:-target/debug/sluice}
[ -x "$bin" ] || cargo build --quiet --bin sluice
work=$(mktemp -d)
venv=${VENV:-$work/venv}
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'pysnc==1.2.1' requests
fi

password="clients-$(date +%s)-Secret"
. tests/start_sluice.sh
SLUICE_ADMIN_PASSWORD=$password start_sluice --data "$work/data"

SN_URL=$address SN_USER=admin SN_PASS=$password "$venv/bin/python" tests/clients/pysnc_attachments.py
