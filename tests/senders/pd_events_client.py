"""(Not named pagerduty.py: it would shadow the package it imports.) PagerDuty's own Python client (`pagerduty` from PyPI, EventsApiV2Client) pointed at sluice:
trigger, repeat, acknowledge, resolve and trigger again, checked through the Table API.
The client takes https:// URLs only: sluice serves HTTPS with a certificate made for the run.
Environment: SN_URL, SN_USER, SN_PASS (an admin, for the Table API), PD_ROUTING_KEY, PD_CA_FILE
(the certificate to trust)."""

import base64
import json
import os
import ssl
import sys
import urllib.parse
import urllib.request

import pagerduty

base = os.environ["SN_URL"]
auth = base64.b64encode(f'{os.environ["SN_USER"]}:{os.environ["SN_PASS"]}'.encode()).decode()
tls = ssl.create_default_context(cafile=os.environ["PD_CA_FILE"])
events = pagerduty.EventsApiV2Client(os.environ["PD_ROUTING_KEY"], base_url=base, verify=tls)


def incidents(dedup_key):
    query = urllib.parse.urlencode({
        "sysparm_query": f"correlation_id=pagerduty:{dedup_key}^ORDERBYnumber",
        "sysparm_fields": "number,state,impact,urgency,short_description,close_code",
    })
    request = urllib.request.Request(f"{base}/api/now/table/incident?{query}",
                                     headers={"Authorization": f"Basic {auth}", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10, context=tls) as r:
        return json.load(r)["result"]


def check(what, got, expected):
    if got != expected:
        sys.exit(f"FAIL: {what}: {got!r}, expected {expected!r}")
    print(f"ok: {what}")


key = events.trigger("Disk full on db-01", "db-01.example.com", dedup_key="db-01/disk", severity="warning",
                     custom_details={"free": "2%"}, links=[{"href": "https://grafana.example.com/d/disk"}])
check("trigger answers its dedup_key", key, "db-01/disk")
opened = incidents(key)
check("one incident", [(i["state"], i["impact"], i["urgency"]) for i in opened], [("1", "2", "2")])
check("summary", opened[0]["short_description"], "Disk full on db-01")

events.trigger("Disk full on db-01", "db-01.example.com", dedup_key=key, severity="warning")
check("a repeat is no duplicate", len(incidents(key)), 1)

check("acknowledge answers the key", events.acknowledge(key), key)
check("acknowledged: In Progress", incidents(key)[0]["state"], "2")

check("resolve answers the key", events.resolve(key), key)
check("resolved", [(i["state"], i["close_code"]) for i in incidents(key)], [("6", "Solution provided")])

events.resolve(key)
check("a second resolve is dropped", len(incidents(key)), 1)
events.trigger("Disk full on db-01 again", "db-01.example.com", dedup_key=key, severity="critical")
check("after a resolve a trigger opens a new one", [i["state"] for i in incidents(key)], ["6", "1"])

generated = events.trigger("No dedup key", "web-01.example.com", severity="info")
check("a generated dedup_key (UUID text)", (len(generated), generated.count("-")), (36, 4))
check("its incident", [(i["impact"], i["urgency"]) for i in incidents(generated)], [("3", "3")])

try:
    pagerduty.EventsApiV2Client("0" * 32, base_url=base, verify=tls).trigger("x", "y")
    sys.exit("FAIL: an unknown routing key was taken")
except pagerduty.Error as e:
    check("an unknown routing key is refused with 400", getattr(e.response, "status_code", None), 400)
    check("PagerDuty's body", e.response.json()["errors"], ["Invalid routing key"])
print("pagerduty client: all checks passed")
