#!/usr/bin/env python3
"""The request path as one state machine (issue 11 section 4), against a
real todod with raw TLS sockets: a body error draws exactly one response
and a close; a refused request's small body is dropped and the connection
kept; Content-Length: 0 is a 400; under concurrent keep-alive writers, a
GET for an acknowledged item never answers 404."""

import json
import re
import socket
import ssl
import threading
import time

from todtest import Todod, args, done, ok

a = args()
t = Todod(a.build, prefork=1, treq=2)
t.start()


def tls_connect(client="mtls-client", timeout=5):
    s = socket.create_connection(("127.0.0.1", t.port), timeout=timeout)
    return t.ctx(client).wrap_socket(s, server_hostname="localhost")


def read_until_close(c, limit=5.0):
    """Everything the server sends until it closes (or limit seconds);
    returns (bytes, closed)."""
    out = b""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        c.settimeout(max(0.05, end - time.monotonic()))
        try:
            d = c.recv(65536)
        except socket.timeout:
            return out, False
        except (ssl.SSLError, ConnectionError):
            return out, True
        if not d:
            return out, True
        out += d
        if len(out) > 1 << 20:
            break
    return out, False


def statuses(data):
    return [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", data)]


def read_response(c, limit=5.0):
    """One Content-Length framed response: (status, body)."""
    buf = b""
    end = time.monotonic() + limit
    while b"\r\n\r\n" not in buf and time.monotonic() < end:
        d = c.recv(65536)
        if not d:
            break
        buf += d
    hd, _, rest = buf.partition(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length: *(\d+)", hd)
    n = int(m.group(1)) if m else 0
    while len(rest) < n and time.monotonic() < end:
        d = c.recv(65536)
        if not d:
            break
        rest += d
    st = re.match(rb"HTTP/1\.1 (\d{3})", hd)
    return (int(st.group(1)) if st else None), rest[:n]


POST = (b"POST /todo HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\n")

try:
    # --- a body error: one response, then the connection closes ----------
    cases = [
        ("bad chunk framing", POST + b"Transfer-Encoding: chunked\r\n\r\n"
         b"5\r\n{\"tasXX\r\n", 400),
        ("chunk over the limit", POST + b"Transfer-Encoding: chunked\r\n"
         b"\r\n" + b"%x\r\n" % (70000) + b"a" * 1000, 413),
        ("a body that stops arriving", POST + b"Content-Length: 40\r\n\r\n"
         b"{\"task\":", 408),
        ("a chunked body that stops arriving", POST +
         b"Transfer-Encoding: chunked\r\n\r\n4\r\n{\"ta", 408),
    ]
    for what, data, want in cases:
        c = tls_connect()
        start = time.monotonic()
        c.sendall(data)
        out, closed = read_until_close(c, 6)
        took = time.monotonic() - start
        c.close()
        st = statuses(out)
        ok(st == [want], "%s: exactly one response %d (got %s)" %
           (what, want, st[:5] if len(st) < 6 else
            "%d responses" % len(st)))
        ok(closed, "%s: then the connection closes (%.1f s)" % (what, took))
        ok(b"Connection: close" in out, "%s: the response says close" %
           what)

    # the worker is not left busy: a good request is served at once
    start = time.monotonic()
    st, _, _ = t.request("GET", "/todo")
    ok(st == 200 and time.monotonic() - start < 1.0,
       "after the body errors a good client is served at once")
    n400 = t.log().count('"POST /todo HTTP/1.1" 400')
    ok(n400 == 1, "the log holds one 400 for the bad framing (%d)" % n400)

    # --- Content-Length: 0 is a 400 ---------------------------------------
    st, _, b = t.request("POST", "/todo", body=b"")
    ok(st == 400 and "error" in b, "POST with Content-Length: 0 is 400")
    st, _, created = t.request("POST", "/todo", {"task": "cl0"})
    iid = created["todo"]["id"]
    st, _, b = t.request("PATCH", "/todo/%d" % iid, body=b"")
    ok(st == 400, "PATCH with Content-Length: 0 is 400")
    c = tls_connect()
    c.sendall(b"POST /todo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
              b"GET /todo/%d HTTP/1.1\r\nHost: x\r\n\r\n" % iid)
    s1, _ = read_response(c)
    s2, body = read_response(c)
    ok(s1 == 400 and s2 == 200 and b'"cl0"' in body,
       "after the 400 for an empty body the connection carries on")
    c.close()

    # --- refused with a small body: read and dropped, connection kept ----
    refusals = [
        ("404", "mtls-client", b"POST /nope HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 13\r\n\r\n{\"task\":\"n\"}\n", 404),
        ("405", "mtls-client", b"PUT /todo HTTP/1.1\r\nHost: x\r\n"
         b"Content-Length: 13\r\n\r\n{\"task\":\"n\"}\n", 405),
        ("403", "auditor", POST + b"Content-Length: 13\r\n\r\n"
         b"{\"task\":\"n\"}\n", 403),
        ("415", "mtls-client", b"POST /todo HTTP/1.1\r\nHost: x\r\n"
         b"Content-Type: text/plain\r\nContent-Length: 5000\r\n\r\n" +
         b"x" * 5000, 415),
        ("403 chunked", "auditor", POST + b"Transfer-Encoding: chunked\r\n"
         b"\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n", 403),
    ]
    for what, client, data, want in refusals:
        c = tls_connect(client)
        c.sendall(data + b"GET /todo HTTP/1.1\r\nHost: x\r\n\r\n")
        s1, _ = read_response(c)
        s2, body = read_response(c)
        ok(s1 == want and s2 == 200 and b'"todos"' in body,
           "%s with a body: dropped, the next request is served (%s, %s)"
           % (what, s1, s2))
        c.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\nConnection: close"
                  b"\r\n\r\n")
        out, closed = read_until_close(c, 5)
        ok(statuses(out) == [200] and closed,
           "%s: a third request on the same connection" % what)
        c.close()
    # the body is dropped when it arrives after the refusal, too
    c = tls_connect("auditor")
    late = b"{\"task\":\"sent late, dropped\"}"
    c.sendall(POST + b"Content-Length: %d\r\n\r\n" % len(late))
    s1, _ = read_response(c)
    c.sendall(late)
    c.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\n\r\n")
    s2, body = read_response(c)
    ok(s1 == 403 and s2 == 200 and b"dropped" not in body,
       "a body sent after the refusal is dropped (%s, %s)" % (s1, s2))
    c.close()
    # one answer, then close: a body over 64 KiB is not awaited; a dropped
    # body with bad framing or that stalls gets no second answer
    for what, client, data, want in (
            ("a body over 64 KiB", "mtls-client",
             b"Content-Length: 70000\r\n\r\n", 413),
            ("a refused body over 64 KiB", "auditor",
             b"Content-Length: 70000\r\n\r\n", 403),
            ("a dropped body with bad framing", "auditor",
             b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 403),
            ("a dropped body that stalls", "auditor",
             b"Content-Length: 30\r\n\r\n{", 403)):
        c = tls_connect(client)
        c.sendall(POST + data)
        out, closed = read_until_close(c, 6)
        ok(statuses(out) == [want] and closed,
           "%s: %d, then close, no second answer (%s)" %
           (what, want, statuses(out)[:3]))
        c.close()

    # --- concurrent keep-alive writers: no 404 for acknowledged items ----
    stop = time.monotonic() + 5
    results = {"gets": 0, "404": 0, "errors": 0, "posts": 0}
    lock = threading.Lock()

    def writer(n):
        try:
            w = tls_connect(timeout=10)
            r = tls_connect(timeout=10)
        except OSError:
            with lock:
                results["errors"] += 1
            return
        i = 0
        while time.monotonic() < stop and i < 5000:
            i += 1
            body = json.dumps({"task": "w%d-%d" % (n, i)}).encode()
            w.sendall(POST + b"Content-Length: %d\r\n\r\n%s" %
                      (len(body), body))
            st, b = read_response(w)
            if st != 201:
                with lock:
                    results["errors"] += 1
                break
            iid = json.loads(b)["todo"]["id"]
            # acknowledged: a GET sent now must find it
            r.sendall(b"GET /todo/%d HTTP/1.1\r\nHost: x\r\n\r\n" % iid)
            st, b = read_response(r)
            with lock:
                results["posts"] += 1
                results["gets"] += 1
                if st == 404:
                    results["404"] += 1
                elif st != 200:
                    results["errors"] += 1
        w.close()
        r.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    ok(results["gets"] >= 100 and results["errors"] == 0,
       "8 keep-alive writers with readers: %d writes, %d reads, %d errors"
       % (results["posts"], results["gets"], results["errors"]))
    ok(results["404"] == 0, "no 404 for an acknowledged item (%d)" %
       results["404"])
finally:
    rc = t.stop()
ok(rc == 0, "daemon stopped cleanly")
done()
