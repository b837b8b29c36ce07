#!/usr/bin/env bash
# The web console in a real browser: starts `sluice serve` on a free port with a fresh data folder,
# an integrations folder the test rewrites, and accounts made with the CLI (an interactive itil
# account, a web-service-only one); makes a Python venv with selenium (from PyPI) and runs
# tests/console/test_console.py against Debian's headless chromium through chromedriver.
#   SLUICE_BIN          the binary (default: target/debug/sluice, built when missing)
#   SLUICE_SCREENSHOTS  where the screenshots go (default: target/console-screenshots)
#   SLUICE_CONSOLE_DATABASE  an empty PostgreSQL database to serve from (default: SQLite in the data folder)
#   VENV                where the venv is kept between runs (default: a temporary folder)
#   CHROMIUM, CHROMEDRIVER  the browser and its driver (default: /usr/bin/chromium, /usr/bin/chromedriver)
# Exit status: the script's.
set -euo pipefail
cd "$(dirname "$0")/../.."

. tests/start_sluice.sh
runner_setup
export SLUICE_SCREENSHOTS=${SLUICE_SCREENSHOTS:-target/console-screenshots}
mkdir -p "$SLUICE_SCREENSHOTS"
# Pinned; the newest selenium wants a certifi newer than the registry may have.
python_venv 'selenium==4.35.0' 'requests==2.32.3'

# The integrations: the built-in default (its u_impact choices give an error row at /u_impact)
# and a partner desk whose value_map the test extends, reloads and replays.
integrations=$work/integrations
mkdir -p "$integrations"
cp crates/sluice-core/integrations/u_incident_import.toml "$integrations/"
cp tests/console/u_console_partner.toml "$integrations/"

store=(--data "$work/data")
[ -n "${SLUICE_CONSOLE_DATABASE:-}" ] && store=(--database "$SLUICE_CONSOLE_DATABASE")

password="console-$(date +%s)-Secret"
agent_password="agent-$(date +%s)-Secret"
robot_password="robot-$(date +%s)-Secret"
boss_password="boss-$(date +%s)-Secret"
SLUICE_ADMIN_PASSWORD=$password start_sluice "${store[@]}" --integrations "$integrations"

# After the first start: the bootstrap admin is made only in an empty database.
printf '%s' "$agent_password" | "$bin" account add agent --role itil --web-service-only false --password-stdin "${store[@]}" >/dev/null
# The bootstrap admin is web-service-only: an interactive admin for the console's admin pages.
printf '%s' "$boss_password" | "$bin" account add boss --role admin --web-service-only false --password-stdin "${store[@]}" >/dev/null
printf '%s' "$robot_password" | "$bin" account add robot --role itil --role import_set_loader --web-service-only true --password-stdin "${store[@]}" >/dev/null

status=0
SN_URL=$address ADMIN_PASS=$password AGENT_PASS=$agent_password ROBOT_PASS=$robot_password BOSS_PASS=$boss_password \
    INTEGRATIONS_DIR=$integrations CHROMIUM=${CHROMIUM:-/usr/bin/chromium} CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} \
    "$venv/bin/python" tests/console/test_console.py || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- sluice log (last 40 lines) ---" >&2
    tail -n 40 "$work/log" >&2
fi
exit "$status"
