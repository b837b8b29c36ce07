#!/usr/bin/env bash
# The Debian package as a user gets it (CI, as root, on a fresh machine): installs
# target/debian/sluice_*.deb with dpkg, checks what it put where, starts the service as packaged
# and creates a ticket through it, then purges the package.
# Where systemd runs (PID 1), `systemctl start sluice`. Where it does not (CI containers), the
# unit's own ExecStart line runs with the unit's environment, as an unprivileged user in the
# state directory, which is what DynamicUser= and StateDirectory= give the service.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$(ls -t target/debian/sluice_*.deb | head -n 1)
port=${SLUICE_DEB_PORT:-18480}
password=packaged-admin-password-1
echo "== $deb"
dpkg-deb --info "$deb" | grep -E "Package|Version|Depends"
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/sluice ./etc/sluice/sluice.toml ./etc/sluice/sluice.env ./usr/share/man/man1/sluice.1.gz \
    ./usr/share/man/man1/sluice-serve.1.gz ./usr/share/bash-completion/completions/sluice \
    ./usr/share/zsh/vendor-completions/_sluice ./usr/share/fish/vendor_completions.d/sluice.fish \
    ./usr/share/doc/sluice/CHANGELOG.md ./usr/share/doc/sluice/configuration.md; do
    echo "$contents" | grep -q " $path\$" || { echo "missing from the package: $path" >&2; exit 1; }
done
unit_in_deb=$(echo "$contents" | grep -oE '\./(usr/)?lib/systemd/system/sluice\.service$' | head -n 1)
[ -n "$unit_in_deb" ] || { echo "no systemd unit in the package" >&2; exit 1; }
echo "$contents" | grep -E " ./etc/sluice/sluice.env$" | grep -q "^-rw-------" || { echo "sluice.env must be 0600" >&2; exit 1; }

cleanup() {
    [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
    dpkg --purge sluice >/dev/null 2>&1 || true
    rm -rf /var/lib/sluice
    userdel sluice-pkgtest 2>/dev/null || true
}
trap cleanup EXIT

dpkg -i "$deb"
unit=/${unit_in_deb#./}
sluice version
if command -v systemd-analyze >/dev/null; then systemd-analyze verify "$unit"; else echo "no systemd-analyze here: unit not verified"; fi
zcat /usr/share/man/man1/sluice.1.gz | grep -q "check\\\\-config" || { echo "man page lacks check-config" >&2; exit 1; }
bash -c 'source /usr/share/bash-completion/completions/sluice && complete -p sluice' >/dev/null
sluice check-config --config /etc/sluice/sluice.toml

if [ -d /run/systemd/system ]; then
    mkdir -p /etc/systemd/system/sluice.service.d
    printf '[Service]\nEnvironment=SLUICE_LISTEN=127.0.0.1:%s SLUICE_ADMIN_PASSWORD=%s\n' "$port" "$password" \
        >/etc/systemd/system/sluice.service.d/test.conf
    systemctl daemon-reload
    systemctl restart sluice
    trap 'systemctl stop sluice || true; rm -rf /etc/systemd/system/sluice.service.d; cleanup' EXIT
else
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
    unit_env=$(sed -n 's/^Environment=//p' "$unit")
    state=/var/lib/$(sed -n 's/^StateDirectory=//p' "$unit")
    echo "no systemd here: running the unit's ExecStart ($exec_start) as an unprivileged user in $state"
    useradd --system --no-create-home --shell /usr/sbin/nologin sluice-pkgtest
    install -d -o sluice-pkgtest -m 0750 "$state"
    (
        set -a
        # shellcheck disable=SC1091
        . /etc/sluice/sluice.env
        set +a
        cd "$state"
        # shellcheck disable=SC2086
        exec setpriv --reuid=sluice-pkgtest --regid=sluice-pkgtest --clear-groups --no-new-privs \
            env $unit_env SLUICE_LISTEN="127.0.0.1:$port" SLUICE_ADMIN_PASSWORD="$password" $exec_start
    ) >/tmp/sluice-pkgtest.log 2>&1 &
    pid=$!
fi

for _ in $(seq 60); do
    sluice health --url "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.5
done
sluice health --url "http://127.0.0.1:$port/healthz"
answer=$(curl -fsS -u "admin:$password" -H 'Content-Type: application/json' \
    -d '{"u_short_description":"Created through the Debian package","u_urgency":"2"}' \
    "http://127.0.0.1:$port/api/now/import/u_incident_import")
echo "$answer"
number=$(echo "$answer" | python3 -c 'import json,sys; r=json.load(sys.stdin)["result"][0]; assert r["status"]=="inserted", r; print(r["display_value"])')
case $number in INC*) ;; *) echo "no ticket number in the answer" >&2; exit 1 ;; esac
# The ticket is in the packaged state directory, owned by the service's user.
[ -f /var/lib/sluice/sluice.db ] || { echo "no database in /var/lib/sluice" >&2; exit 1; }
if [ -n "${pid:-}" ]; then
    kill -TERM "$pid"
    wait "$pid"
    pid=""
    grep -q '"listening on\|sluice listening on' /tmp/sluice-pkgtest.log
fi
echo "ticket $number created through the installed package"
