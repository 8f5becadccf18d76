#!/usr/bin/env python3
"""The HTTP API of todod(8) against a real todod, with Python's ssl and
http.client: every status code, the order of checks, keep-alive,
pipelining, chunked bodies, 100-continue, the log line, restart."""

import json
import os
import re
import socket
import ssl
import time
import urllib.request

from todtest import Todod, args, done, ok

a = args()
t = Todod(a.build, treq=3)
t.start()


def raw_status(data, client="mtls-client"):
    out = t.raw(data, client=client, responses=1)
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", out)
    return (int(m.group(1)) if m else None), out


try:
    # --- the lab's scenario, as its Python client does it ---------------
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(t.pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(t.pki, "mtls-client.crt"),
                        os.path.join(t.pki, "mtls-client.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ctx))
    body = json.dumps({"task": "Añadir endpoint POST",
                       "done": False}).encode()
    req = urllib.request.Request(t.url("/todo").replace("127.0.0.1",
                                                        "localhost"),
                                 data=body, method="POST",
                                 headers={"Content-Type":
                                          "application/json"})
    with opener.open(req) as r:
        created = json.loads(r.read())
        ok(r.status == 201, "seed client: POST /todo is 201")
        ok(r.headers["Location"] == "/todo/%d" % created["todo"]["id"],
           "POST answer carries Location: /todo/ID")
    ok(created == {"client": "mtls-client", "message": "TODO item created",
                   "todo": {"id": created["todo"]["id"],
                            "task": "Añadir endpoint POST",
                            "done": False}},
       "POST body is exactly the documented object")
    with opener.open(t.url("/todo").replace("127.0.0.1", "localhost")) \
            as r:
        listed = json.loads(r.read())
    ok(listed["client"] == "mtls-client" and
       created["todo"] in listed["todos"], "seed client: GET /todo lists it")
    ok(r.headers["Content-Type"] == "application/json",
       "Content-Type application/json")

    # --- items: create, read, update, delete; ids never reused ----------
    ids = []
    for i in range(3):
        st, h, b = t.request("POST", "/todo", {"task": "item %d" % i})
        ids.append(b["todo"]["id"])
    ok(ids == sorted(ids) and len(set(ids)) == 3, "ids increase")
    st, h, b = t.request("GET", "/todo")
    ok([x["id"] for x in b["todos"]] == sorted(x["id"] for x in
                                               b["todos"]),
       "GET /todo ordered by id")
    st, h, b = t.request("GET", "/todo/%d" % ids[0])
    ok(st == 200 and b == {"client": "mtls-client",
                           "todo": {"id": ids[0], "task": "item 0",
                                    "done": False}}, "GET /todo/ID")
    st, h, b = t.request("PATCH", "/todo/%d" % ids[0], {"done": True})
    ok(st == 200 and b["message"] == "TODO item updated" and
       b["todo"] == {"id": ids[0], "task": "item 0", "done": True},
       "PATCH done")
    st, h, b = t.request("PATCH", "/todo/%d" % ids[0], {"task": "renamed"})
    ok(st == 200 and b["todo"] == {"id": ids[0], "task": "renamed",
                                   "done": True},
       "PATCH task keeps done")
    st, h, b = t.request("DELETE", "/todo/%d" % ids[2])
    ok(st == 200 and b["message"] == "TODO item deleted" and
       b["todo"]["id"] == ids[2], "DELETE returns the deleted item")
    st, h, b = t.request("GET", "/todo/%d" % ids[2])
    ok(st == 404, "deleted item is gone")
    st, h, b = t.request("POST", "/todo", {"task": "after delete"})
    ok(b["todo"]["id"] > ids[2], "the highest id is not reused after "
       "its delete")
    st, h, b = t.request("POST", "/todo", {"task": "x", "done": True})
    ok(st == 201 and b["todo"]["done"] is True, "POST with done true")
    st, h, b = t.request("POST", "/todo", {"task": "日本語 🎉 \"q\" \\ \n"})
    ok(st == 201 and b["todo"]["task"] == "日本語 🎉 \"q\" \\ \n",
       "unicode and escapes round-trip")

    # --- 400 -------------------------------------------------------------
    bad = [
        (b'{"task":', "truncated JSON"),
        (b'[]', "array"),
        (b'{"task":""}', "empty task"),
        (b'{"task":5}', "task not a string"),
        (b'{"task":"a","done":"yes"}', "done not boolean"),
        (b'{"task":"a","extra":1}', "unknown member"),
        (b'{"task":"a","task":"b"}', "duplicate member"),
        (b'{"task":"a\\u0000b"}', "\\u0000"),
        (b'{"task":"\\ud800"}', "lone surrogate"),
        (b'{"task":"' + b"x" * 4097 + b'"}', "task of 4097 bytes"),
        (b'{"task":"a"} x', "trailing garbage"),
        (b'{"done":true}', "POST without task"),
        (b'\xff\xfe', "not UTF-8"),
    ]
    for data, what in bad:
        st, h, b = t.request("POST", "/todo", data)
        ok(st == 400 and isinstance(b, dict) and "error" in b,
           "400 for %s" % what)
    st, h, b = t.request("POST", "/todo", b'{"task":"' + b"y" * 4096 +
                         b'"}')
    ok(st == 201, "task of exactly 4096 bytes is accepted")
    st, h, b = t.request("PATCH", "/todo/%d" % ids[0], {})
    ok(st == 400, "PATCH {} is 400")
    st, _ = raw_status(b"GET /todo HTTP/1.1\r\n\r\n")
    ok(st == 400, "HTTP/1.1 without Host is 400")
    st, out = raw_status(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: 5\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    ok(st == 400 and b"Connection: close" in out,
       "Content-Length with Transfer-Encoding: 400 and close")
    st, _ = raw_status(b"GET /todo HTTP/1.1\r\nHost: x\r\nBad Header: 1"
                       b"\r\n\r\n")
    ok(st == 400, "space in a header name is 400")
    st, _ = raw_status(b"GET /todo HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n")
    ok(st == 400, "bare CR in a header value (CRLF injection) is 400")
    st, _ = raw_status(b"GET /todo HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n")
    ok(st == 400, "NUL in a header value is 400")

    # --- 403: authorization per class ----------------------------------
    st, h, b = t.request("POST", "/todo", {"task": "a"}, client="auditor")
    ok(st == 403 and b == {"error": "not authorized"},
       "auditor may not write")
    st, h, b = t.request("GET", "/todo", client="auditor")
    ok(st == 200 and b["client"] == "auditor", "auditor may read")
    st, h, b = t.request("GET", "/todo", client="ops-user")
    ok(st == 403, "OU ops may not read")
    st, h, b = t.request("POST", "/todo", {"task": "from ops"},
                         client="ops-user")
    ok(st == 201 and b["client"] == "ops-user", "OU ops may write")
    st, h, b = t.request("GET", "/todo", client="noeku-client")
    ok(st == 403, "a certificate without EKU is accepted by TLS, then 403 "
       "without a rule")
    st, h, b = t.request("GET", "/metrics", client="auditor")
    ok(st == 403, "metrics needs the metrics class")

    # --- 404, 405 ---------------------------------------------------------
    for path in ("/nope", "/todo/abc", "/todo/0", "/todo/01", "/todo/",
                 "/TODO", "/todo/1/x"):
        st, h, b = t.request("GET", path)
        ok(st == 404 and "error" in b, "404 for %s" % path)
    st, h, b = t.request("GET", "/todo/999999")
    ok(st == 404, "404 for a missing item")
    st, h, b = t.request("PATCH", "/todo/999999", {"done": True})
    ok(st == 404, "PATCH of a missing item is 404")
    st, h, b = t.request("DELETE", "/todo/999999")
    ok(st == 404, "DELETE of a missing item is 404")
    st, h, b = t.request("PUT", "/todo", {"task": "a"})
    ok(st == 405 and h.get("Allow") == "GET, POST", "PUT /todo is 405 "
       "with Allow: GET, POST")
    st, h, b = t.request("DELETE", "/todo")
    ok(st == 405 and h.get("Allow") == "GET, POST", "DELETE /todo is 405")
    st, h, b = t.request("POST", "/todo/%d" % ids[0], {"task": "a"})
    ok(st == 405 and h.get("Allow") == "GET, PATCH, DELETE",
       "POST /todo/ID is 405 with Allow")
    st, h, b = t.request("POST", "/metrics", {"task": "a"})
    ok(st == 405 and h.get("Allow") == "GET", "POST /metrics is 405")

    # --- 411, 413, 414, 415, 417, 431, 501, 505 ----------------------------
    st, _ = raw_status(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\n\r\n")
    ok(st == 411, "POST without a length is 411")
    st, out = raw_status(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: 70000\r\n\r\n")
    ok(st == 413, "Content-Length over 64 KiB is 413 (body not awaited)")
    st, out = raw_status(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: 99999999999999999999999\r\n\r\n")
    ok(st == 413, "absurd Content-Length is 413")
    chunk = b"%x\r\n%s\r\n" % (40000, b"a" * 40000)
    st, out = raw_status(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 2 +
                         b"0\r\n\r\n")
    ok(st == 413, "chunked body over 64 KiB decoded is 413")
    st, _ = raw_status(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x"
                       b"\r\n\r\n")
    ok(st == 414, "target over 8 KiB is 414")
    st, h, b = t.request("POST", "/todo", b'{"task":"a"}',
                         headers={"Content-Type": "text/plain"})
    ok(st == 415, "text/plain is 415")
    st, h, b = t.request("POST", "/todo", b'{"task":"a"}',
                         headers={"Content-Type":
                                  "application/json; charset=latin1"})
    ok(st == 415, "charset other than utf-8 is 415")
    st, h, b = t.request("POST", "/todo", b'{"task":"ct"}',
                         headers={"Content-Type":
                                  "Application/JSON; charset=UTF-8"})
    ok(st == 201, "Content-Type matched case-insensitively, utf-8 ok")
    st, _ = raw_status(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 12\r\n\r\n{\"task\":\"a\"}")
    ok(st == 201, "no Content-Type is accepted")
    st, _ = raw_status(b"GET /todo HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n"
                       b"\r\n")
    ok(st == 417, "unknown expectation is 417")
    st, _ = raw_status(b"GET /todo HTTP/1.1\r\nHost: x\r\n" +
                       b"X-Filler: " + b"f" * 17000 + b"\r\n\r\n")
    ok(st == 431, "head over 16 KiB is 431")
    st, _ = raw_status(b"GET /todo HTTP/1.1\r\nHost: x\r\n" +
                       b"A: b\r\n" * 10000 + b"\r\n")
    ok(st == 431, "10,000 headers is 431")
    st, _ = raw_status(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: application/json\r\n"
                       b"Transfer-Encoding: gzip\r\n\r\n")
    ok(st == 501, "Transfer-Encoding other than chunked is 501")
    st, _ = raw_status(b"GET /todo HTTP/2.0\r\nHost: x\r\n\r\n")
    ok(st == 505, "HTTP/2.0 request line is 505")

    # --- order of checks --------------------------------------------------
    st, h, b = t.request("POST", "/nope", b"garbage",
                         headers={"Content-Type": "text/plain"})
    ok(st == 404, "routing before everything (404 over 415/400)")
    st, h, b = t.request("PUT", "/todo", b"garbage", client="auditor")
    ok(st == 405, "405 before authorization")
    st, h, b = t.request("POST", "/todo", b"garbage", client="auditor",
                         headers={"Content-Type": "text/plain"})
    ok(st == 403, "authorization (403) before the body (415)")
    st, _ = raw_status(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: text/plain\r\n\r\n")
    ok(st == 411, "411 before 415")
    st, _ = raw_status(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Type: text/plain\r\n"
                       b"Content-Length: 70000\r\n\r\n")
    ok(st == 413, "413 before 415")
    st, h, b = t.request("POST", "/todo", b"not json",
                         headers={"Content-Type": "text/plain"})
    ok(st == 415, "415 before 400")
    st, h, b = t.request("PATCH", "/todo/999999", b"not json")
    ok(st == 400, "400 before the item's 404")

    # --- keep-alive, pipelining, HTTP/1.0, chunked, 100-continue ---------
    c = t.conn()
    statuses = []
    for i in range(20):
        c.request("GET", "/todo/%d" % ids[0])
        r = c.getresponse()
        r.read()
        statuses.append(r.status)
    ok(statuses == [200] * 20, "20 requests on one keep-alive connection")
    c.request("POST", "/todo", body=json.dumps({"task": "ka"}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    ok(r.status == 201, "POST on the same connection")
    c.close()
    out = t.raw(b"GET /todo/%d HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /todo/%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"\r\n" % (ids[0], ids[0]))
    codes = re.findall(rb"HTTP/1\.1 (\d{3}) ", out)
    ok(codes == [b"200", b"404", b"200"], "pipelined requests answered in "
       "order (%s)" % codes)
    out = t.raw(b"GET /todo/%d HTTP/1.0\r\n\r\n" % ids[0])
    ok(out.startswith(b"HTTP/1.1 200") and b"Connection: close" in out,
       "HTTP/1.0 without keep-alive is closed after the answer")
    out = t.raw(b"GET /todo/%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                b"GET /todo/%d HTTP/1.0\r\n\r\n" % (ids[0], ids[0]))
    ok(len(re.findall(rb"HTTP/1\.1 200", out)) == 2 and
       b"Connection: keep-alive" in out, "HTTP/1.0 keep-alive honoured")
    out = t.raw(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                b"5;ext=1\r\n{\"tas\r\n9\r\nk\":\"chunk\r\n2\r\n\"}\r\n"
                b"0\r\nTrailer: x\r\n\r\n")
    ok(out.startswith(b"HTTP/1.1 201") and b'"task":"chunk"' in out,
       "chunked request body decoded (extensions, trailer)")
    # Expect: 100-continue: the head alone gets the interim answer
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    tls = t.ctx().wrap_socket(s, server_hostname="localhost")
    body = b'{"task":"continued"}'
    tls.sendall(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nExpect: 100-continue\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
    first = tls.recv(1024)
    ok(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"),
       "Expect: 100-continue answered before the body")
    tls.sendall(body)
    rest = b""
    while b"continued" not in rest:
        d = tls.recv(4096)
        if not d:
            break
        rest += d
    ok(rest.startswith(b"HTTP/1.1 201"), "then 201 for the body")
    tls.close()

    # --- 408: a request not complete in time -------------------------------
    s = socket.create_connection(("127.0.0.1", t.port), timeout=10)
    tls = t.ctx().wrap_socket(s, server_hostname="localhost")
    tls.sendall(b"GET /todo HTTP/1.1\r\nHost:")
    start = time.monotonic()
    got = b""
    try:
        while True:
            d = tls.recv(4096)
            if not d:
                break
            got += d
    except (socket.timeout, ssl.SSLError, ConnectionError):
        pass
    took = time.monotonic() - start
    ok(got.startswith(b"HTTP/1.1 408") and b"Connection: close" in got,
       "incomplete request gets 408 and close (after %.1fs)" % took)
    tls.close()

    # --- the request log line ---------------------------------------------
    log = t.log()
    ok(re.search(r'peer=127\.0\.0\.1:\d+ cn="mtls-client" "POST /todo '
                 r'HTTP/1\.1" 201 \d+', log) is not None,
       "request log line: peer, cn, request line, status, size")
    ok(re.search(r'peer=127\.0\.0\.1:\d+ cn="auditor" "POST /todo '
                 r'HTTP/1\.1" 403 \d+', log) is not None,
       "403 logged with the identity")

    # --- the store keeps who made and changed an item, and when ----------
    row = t.store_row("id = %d" % ids[0])
    ok(row is not None and row[0] == "mtls-client" and
       row[1] == "mtls-client" and abs(row[2] - time.time()) < 600 and
       row[3] >= row[2], "the store records creator, last changer and "
       "times (%s)" % (row,))
    row = t.store_row("task = 'from ops'")
    row = row[:1] if row else None
    ok(row == ("ops-user",), "an item created by ops-user says so")

    # --- a list too long to render at once is streamed from the cache ---
    c = t.conn()
    big = "x" * 4000
    made = 0
    for i in range(80):
        c.request("POST", "/todo", body=json.dumps({"task": big}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        made += r.status == 201
    c.close()
    ok(made == 80, "80 items of 4000 bytes made (%d)" % made)
    st, h, listed = t.request("GET", "/todo")
    hl = {k.lower(): v for k, v in h.items()}
    ok(st == 200 and hl.get("transfer-encoding") == "chunked" and
       "content-length" not in hl, "HTTP/1.1: the long list is chunked")
    ok(isinstance(listed, dict) and listed.get("client") == "mtls-client"
       and sum(x["task"] == big for x in listed["todos"]) == 80,
       "and complete: every item once, in one JSON document")
    out = t.raw(b"GET /todo HTTP/1.0\r\n\r\n", timeout=10)
    head, _, body = out.partition(b"\r\n\r\n")
    try:
        streamed = json.loads(body)
    except ValueError:
        streamed = None
    ok(head.startswith(b"HTTP/1.1 200 ") and b"Content-Length" not in head
       and b"chunked" not in head and b"Connection: close" in head and
       streamed is not None and streamed["todos"] == listed["todos"],
       "HTTP/1.0: the same list, ended by the close")

    # --- restart keeps every item ---------------------------------------
    st, h, before = t.request("GET", "/todo")
    t.stop()
    t.start()
    st, h, after = t.request("GET", "/todo")
    ok(st == 200 and after["todos"] == before["todos"] and
       len(after["todos"]) > 5, "a restart keeps every item (%d)" %
       len(after["todos"]))
    st, h, b = t.request("POST", "/todo", {"task": "after restart"})
    ok(b["todo"]["id"] > max(x["id"] for x in before["todos"]),
       "ids continue after a restart")
finally:
    rc = t.stop()
    ok(rc == 0, "SIGTERM: exit status 0")
    t.cleanup()
done()
