"""A minimal Import Set API upstream for bench/forward.sh: answers every POST at once with one
`inserted` result (a fresh number and sys_id), keeps connections alive, and counts the POSTs and
the distinct correlation ids it was sent (GET /count). It costs the machine far less than a second
sluice, so the bench measures what forwarding costs the sending sluice, not the upstream's work.
Usage: python3 upstream_stub.py PORT"""
import asyncio
import json
import sys
import uuid

posts = 0
correlations = set()


async def handle(reader, writer):
    global posts
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method = lines[0].split(" ")[0]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            if method == "POST":
                posts += 1
                try:
                    correlations.add(json.loads(body).get("u_correlation_id", ""))
                except ValueError:
                    pass
                sys_id = uuid.uuid4().hex
                answer = json.dumps({"import_set": "ISET0010001", "staging_table": "u_incident_import", "result": [
                    {"transform_map": "Incident Import", "table": "incident", "display_name": "number",
                     "display_value": "INC%07d" % posts, "status": "inserted", "sys_id": sys_id}]}).encode()
                status = b"201 Created"
            else:
                answer = json.dumps({"posts": posts, "correlations": len(correlations)}).encode()
                status = b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(answer)).encode() + b"\r\n\r\n" + answer)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
