"""Data for the console's browser test, made through sluice's public API (as a sender would)."""

import os
import re

import requests


class Api:
    """The Table, Import Set and sluice APIs with basic auth."""

    def __init__(self, base, user, password):
        self.base = base
        self.http = requests.Session()
        self.http.auth = (user, password)
        self.http.headers["Accept"] = "application/json"

    def _check(self, r):
        assert r.status_code < 300, f"{r.request.method} {r.url}: {r.status_code} {r.text[:300]}"
        return r.json()

    def get(self, path, **params):
        return self._check(self.http.get(self.base + path, params=params, timeout=30))["result"]

    def get_own(self, path, **params):
        return self.get(path, **params)

    def post(self, path, body):
        return self._check(self.http.post(self.base + path, json=body, timeout=60))

    def count(self, table, query):
        r = self.http.get(
            f"{self.base}/api/now/table/{table}", params={"sysparm_query": query, "sysparm_limit": 1}, timeout=30
        )
        self._check(r)
        return int(r.headers["X-Total-Count"])

    def import_row(self, staging_table, sys_id):
        return self._check(self.http.get(f"{self.base}/api/now/import/{staging_table}/{sys_id}", timeout=30))["row"]

    def stage(self, staging_table, payload):
        return self.post(f"/api/now/import/{staging_table}", payload)["result"][0]


def seed(api):
    """Incidents to filter and page through, and import rows that fail on a known field."""
    state = {}
    p1 = api.post(
        "/api/now/table/incident",
        {"short_description": "Console P1 database down", "impact": "1", "urgency": "1", "caller_id": "agent"},
    )["result"]
    state["p1"], state["p1_number"] = p1["sys_id"], p1["number"]
    state["others"] = [
        api.post(
            "/api/now/table/incident",
            {"short_description": f"Console low printer {i}", "impact": "3", "urgency": "3"},
        )["result"]["sys_id"]
        for i in range(60)
    ]
    # The default integration's u_impact takes 1, 2 or 3: "9" is an error row at /u_impact.
    bad = api.stage("u_incident_import", {"u_short_description": "Console import with a bad impact", "u_impact": "9"})
    assert bad["status"] == "error" and bad["errors"][0]["path"] == "/u_impact", bad
    state["bad_impact_row"] = bad["staging_sys_id"]
    # A row that went through: its incident's activity links back to it.
    good = api.stage("u_incident_import", {"u_short_description": "Console import that worked", "u_impact": "2"})
    assert good["status"] == "inserted", good
    state["good_row"], state["good_incident"] = good["staging_sys_id"], good["sys_id"]
    # The partner desk's value_map lacks "blocker" until fix_partner_mapping adds it.
    state["partner_rows"] = []
    for ticket in ("CP-1", "CP-2", "CP-3"):
        row = api.stage("u_console_partner", {"u_ticket": ticket, "u_summary": f"Partner {ticket}", "u_severity": "blocker"})
        assert row["status"] == "error" and row["errors"][0]["path"] == "/u_severity", row
        state["partner_rows"].append(row["staging_sys_id"])
    return state


def fix_partner_mapping(api, folder):
    """The mapping fix an integration owner makes: "blocker" is a critical, version 2; reloaded."""
    path = os.path.join(folder, "u_console_partner.toml")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    text = text.replace('value_map = { critical = "1"', 'value_map = { blocker = "1", critical = "1"')
    text = re.sub(r'^version = "1"$', 'version = "2"', text, flags=re.M)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    result = api.post("/api/sluice/v1/integrations/reload", {})["result"]
    assert result["reloaded"], result
    versions = {i["name"]: i["version"] for i in result["integrations"]}
    assert versions["u_console_partner"] == "2", versions
