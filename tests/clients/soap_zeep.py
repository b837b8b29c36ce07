"""zeep (a WSDL-driven SOAP client from PyPI) against sluice's SOAP intake: reads the WSDL with
basic auth, inserts a row (the answer names the incident), gets a contract error as a
zeep.exceptions.Fault whose detail names the field, and finds the row with getRecords.
Environment: SN_URL (http://host:port), SN_USER, SN_PASS; SN_SOAP12=1 to use the SOAP 1.2 port."""

import os
import sys

import requests
import zeep
from lxml import etree
from zeep.transports import Transport

url, user, password = os.environ["SN_URL"], os.environ["SN_USER"], os.environ["SN_PASS"]
table = "u_incident_import"
session = requests.Session()
session.auth = (user, password)
client = zeep.Client(f"{url}/{table}.do?WSDL", transport=Transport(session=session))
if os.environ.get("SN_SOAP12") == "1":
    service = client.bind(f"ServiceNow_{table}", "ServiceNowSoap12")
else:
    service = client.service
marker = f"zeep:{os.getpid()}"

answer = service.insert(u_short_description="Disk full (zeep)", u_urgency="1", u_impact="2", u_correlation_id=marker)
assert answer.status == "inserted", answer
assert answer.table == "incident", answer
assert answer.display_name == "number", answer
assert answer.display_value.startswith("INC"), answer
print("insert:", answer.display_value, answer.sys_id)

try:
    service.insert(u_short_description="bad urgency", u_urgency="9")
except zeep.exceptions.Fault as fault:
    detail = etree.tostring(fault.detail).decode() if fault.detail is not None else ""
    assert "u_urgency" in fault.message, fault.message
    assert "<field>u_urgency</field>" in detail, detail
    assert "<code>invalid_field_values</code>" in detail, detail
    assert "<staging_sys_id>" in detail, detail
    print("fault:", fault.message)
else:
    sys.exit("a contract error did not raise zeep.exceptions.Fault")

found = service.getRecords(u_correlation_id=marker)
assert len(found) == 1, found
assert found[0].u_short_description == "Disk full (zeep)", found[0]
assert found[0].sys_import_state == "inserted", found[0]
print("getRecords:", found[0].sys_id)

many = service.insertMultiple(record=[{"u_short_description": "one"}, {"u_short_description": "two", "u_urgency": "7"}])
assert [r.status for r in many] == ["inserted", "error"], many
assert "u_urgency" in many[1].error_message, many[1]
print("insertMultiple:", [r.status for r in many])

# Display values (`?displayvalue=all&SOAP`): each value with its dv_ element, as the WSDL lists.
binding = "{%s}ServiceNowSoap%s" % (f"http://www.service-now.com/{table}", "12" if os.environ.get("SN_SOAP12") == "1" else "")
shown = client.create_service(binding, f"{url}/{table}.do?displayvalue=all&SOAP").getRecords(u_correlation_id=marker)
assert len(shown) == 1, shown
assert shown[0].sys_target_sys_id == answer.sys_id, shown[0]
assert shown[0].dv_sys_target_sys_id == answer.display_value, shown[0]
print("getRecords displayvalue=all:", shown[0].dv_sys_target_sys_id)

row = service.get(sys_id=found[0].sys_id)
assert row.u_correlation_id == marker, row
print("get:", row.sys_id)
print("zeep", zeep.__version__, "OK")
