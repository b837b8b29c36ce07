#!/usr/bin/env python3
"""pysnc_attachments.py -- ServiceNow's own Python client (pysnc 1.2.1) uploads, lists, reads
and deletes attachments through sluice's Attachment API.

Run:  SN_URL=http://127.0.0.1:8080 SN_USER=admin SN_PASS=secret python3 pysnc_attachments.py
      (tests/clients/run.sh starts a server and a venv and runs this.)

pysnc refuses http:// base URLs, so for http only its URL normaliser (pysnc.client.get_instance)
is replaced; requests, parameters and answer parsing are pysnc's own code.

What it drives: GlideRecord.add_attachment (-> AttachmentAPI.upload_file, POST
/api/now/v1/attachment/file with the raw body), GlideRecord.get_attachments (-> AttachmentAPI.list
with sysparm_query table_name=...^table_sys_id=..., paged on X-Total-Count), Attachment.read /
as_temp_file (-> AttachmentAPI.get_file), Attachment.get and Attachment.delete.

Exit status: 0 every check passed, 1 a check failed, 2 the client raised or setup failed.
"""
import hashlib
import os
import sys
import traceback
import uuid

try:
    import pysnc
    import pysnc.client
except ImportError:
    print("pysnc is not installed: pip install 'pysnc==1.2.1' requests")
    sys.exit(2)

URL = os.environ.get("SN_URL", "").rstrip("/")
USER = os.environ.get("SN_USER", "")
PASS = os.environ.get("SN_PASS", "")
if not (URL and USER and PASS):
    print("set SN_URL, SN_USER and SN_PASS")
    sys.exit(2)

FAILS = []


def check(cond, what, got=None):
    if cond:
        print("ok   - " + what)
    else:
        FAILS.append(what)
        print("FAIL - %s%s" % (what, "" if got is None else "  (got %r)" % (got,)))
    return cond


def client():
    if URL.startswith("http://"):
        pysnc.client.get_instance = lambda instance: instance.rstrip("/")
    return pysnc.ServiceNowClient(URL, (USER, PASS))


def main():
    c = client()
    marker = "pysnc-attach-" + uuid.uuid4().hex[:10]
    gr = c.GlideRecord("incident")
    gr.initialize()
    gr.short_description = marker
    sys_id = str(gr.insert())
    check(len(sys_id) == 32, "an incident to attach to", sys_id)
    gr = c.GlideRecord("incident")
    check(gr.get(sys_id), "GlideRecord.get finds it")

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    text = ("disk full on db-01\n" * 100).encode()
    location = gr.add_attachment("screen shot.png", png, "image/png")
    check(isinstance(location, str) and "/api/now/attachment/" in location,
          "add_attachment returns the Location of the new attachment", location)
    gr.add_attachment("notes.txt", text, "text/plain")
    # A label the bytes do not bear out is not trusted.
    gr.add_attachment("page.html", b"<script>alert(1)</script>", "text/html")

    attachments = gr.get_attachments()
    check(len(attachments) == 3, "get_attachments lists three (X-Total-Count)", len(attachments))
    seen = {}
    for a in attachments:
        seen[a.file_name] = (a.sys_id, a.content_type, a.size_bytes, a.hash, a.read())
    check(set(seen) == {"screen shot.png", "notes.txt", "page.html"}, "every file name listed", sorted(seen))
    sid, ctype, size, digest, content = seen.get("screen shot.png", (None,) * 5)
    check(content == png, "the PNG reads back byte for byte")
    check(ctype == "image/png" and size == str(len(png)), "its content_type and size_bytes", (ctype, size))
    check(digest == hashlib.sha256(png).hexdigest(), "its hash is the SHA-256 of the bytes", digest)
    check(seen.get("notes.txt", (None,) * 5)[4] == text, "the text file reads back")
    check(seen.get("page.html", (None,) * 5)[1] == "text/plain", "HTML labelled text/html is stored as text/plain",
          seen.get("page.html", (None,) * 5)[1])

    one = c.Attachment("incident")
    check(one.get(sid), "Attachment.get by sys_id")
    check(one.file_name == "screen shot.png" and one.table_sys_id == sys_id, "its metadata",
          (one.file_name, one.table_sys_id))
    with one.as_temp_file() as f:
        check(f.read() == png, "as_temp_file streams the same bytes")
    one.delete()
    check(not c.Attachment("incident").get(sid), "after delete() the attachment is gone")
    check(len(gr.get_attachments()) == 2, "two attachments left")

    gr.delete()
    check(len(gr.get_attachments()) == 0, "deleting the incident deletes its attachments")


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(2)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all attachment checks passed")
