#!/usr/bin/env python3
"""Real clients nobody here wrote, as the lab used them: curl, openssl
s_client and Python's ssl module; TLS 1.2 and 1.3; EC and RSA server keys;
every certificate of the negative set refused at the handshake with the
reason in the log."""

import json
import os
import re
import socket
import ssl

from todtest import Todod, args, done, ok

a = args()


def handshake_refused(t, client, version=None):
    """True when the TLS connection fails before any HTTP status."""
    try:
        st, h, b = t.request("GET", "/todo", client=client,
                             version=version)
        return False, "got HTTP %s" % st
    except (ssl.SSLError, ConnectionError, OSError) as e:
        return True, str(e)


def check_server(server, ipv6=False):
    t = Todod(a.build, server=server, ipv6=ipv6)
    t.start()
    try:
        # curl exactly as the lab did: --cert --key --cacert
        r = t.curl("-X", "POST", t.url("/todo"), "-H",
                   "Content-Type: application/json", "-d",
                   '{"task":"from curl","done":false}')
        body = json.loads(r.stdout or b"{}")
        ok(r.returncode == 0 and body.get("message") ==
           "TODO item created", "%s: curl POST /todo" % server)
        r = t.curl(t.url("/todo"))
        ok(r.returncode == 0 and b'"task":"from curl"' in r.stdout,
           "%s: curl GET /todo sees it" % server)
        for v in ("--tlsv1.2 --tls-max 1.2", "--tlsv1.3"):
            r = t.curl(*v.split(), "-w", "%{http_code}", "-o", "/dev/null",
                       t.url("/todo"))
            ok(r.returncode == 0 and r.stdout == b"200",
               "%s: curl %s" % (server, v.split()[0]))
        r = t.curl("-o", "/dev/null", t.url("/todo"), client=None)
        ok(r.returncode != 0 and b"alert" in r.stderr,
           "%s: curl without a certificate fails in TLS (%s)" %
           (server, r.stderr.decode().strip()[-60:]))

        # openssl s_client, the lab's third client
        for v in ("-tls1_2", "-tls1_3"):
            r = t.s_client(extra=[v], data=b"GET /todo HTTP/1.1\r\n"
                           b"Host: localhost\r\nConnection: close\r\n\r\n")
            out = r.stdout.decode("utf-8", "replace")
            ok("Verify return code: 0 (ok)" in out and
               "HTTP/1.1 200 OK" in out and '"client":"mtls-client"' in out,
               "%s: openssl s_client %s verifies and gets 200" %
               (server, v))
        r = t.s_client(client=None, data=b"GET /todo HTTP/1.1\r\n"
                       b"Host: localhost\r\n\r\n")
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        ok("HTTP/1.1" not in out and "alert" in out,
           "%s: s_client without a certificate gets an alert, no HTTP" %
           server)

        # Python's ssl module, both protocol versions
        for v in ("1.2", "1.3"):
            c = t.conn(version=v)
            c.request("GET", "/todo")
            r = c.getresponse()
            r.read()
            ver = c.sock.version()
            ok(r.status == 200 and ver == "TLSv" + v,
               "%s: Python ssl over %s" % (server, ver))
            c.close()
        if ipv6:
            s = socket.create_connection(("::1", t.port), timeout=5)
            tls = t.ctx().wrap_socket(s, server_hostname="localhost")
            tls.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\n"
                        b"Connection: close\r\n\r\n")
            got = tls.recv(100)
            ok(got.startswith(b"HTTP/1.1 200"), "listen on ::1 works")
            tls.close()
    finally:
        rc = t.stop()
        ok(rc == 0, "%s: clean exit" % server)
        t.cleanup()


ipv6 = os.path.exists("/proc/net/if_inet6") and \
    " lo\n" in open("/proc/net/if_inet6").read()
check_server("localhost", ipv6=ipv6)
check_server("localhost-rsa")
check_server("localhost-ec384")

# --- the negative set --------------------------------------------------
t = Todod(a.build)
t.start()
try:
    cases = [
        (None, r"no client certificate", "no certificate"),
        ("intruder", r"unable to get local issuer certificate",
         "another CA"),
        ("expired", r"certificate has expired", "expired"),
        ("revoked", r"certificate revoked", "revoked by the CRL"),
        ("server-eku-only", r"unsuitable certificate purpose",
         "serverAuth only"),
        ("notyet", r"certificate is not yet valid", "not yet valid"),
    ]
    for client, logrx, what in cases:
        for v in ("1.2", "1.3"):
            refused, err = handshake_refused(t, client, v)
            ok(refused, "%s over TLS %s: handshake refused (%s)" %
               (what, v, err[:70]))
        ok(t.wait_log(r"peer=127\.0\.0\.1:\d+ tls handshake failed: %s" %
                      logrx, 5),
           "%s: the log says why and from which peer" % what)
        r = t.curl("-o", "/dev/null", t.url("/todo"), client=client)
        ok(r.returncode != 0, "%s: curl refused" % what)
        r = t.s_client(client=client, data=b"GET /todo HTTP/1.1\r\n"
                       b"Host: x\r\n\r\n")
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        ok("HTTP/1.1 " not in out, "%s: s_client never reads a status" %
           what)
    m = t.metrics()
    ok(m.get('todod_handshake_failures_total{reason="revoked"}', 0) >= 2 and
       m.get('todod_handshake_failures_total{reason="expired"}', 0) >= 2 and
       m.get('todod_handshake_failures_total{reason="no_certificate"}', 0)
       >= 2, "handshake failures counted by reason in /metrics")
    # the lab's negative test, in spirit
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(t.pki, "ca.crt"))
    try:
        s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
        tls = ctx.wrap_socket(s, server_hostname="localhost")
        tls.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\n\r\n")
        data = tls.recv(100)
        ok(False, "no-certificate client read %r" % data)
    except ssl.SSLError as e:
        ok("CERTIFICATE_REQUIRED" in str(e),
           "no certificate: TLSV13_ALERT_CERTIFICATE_REQUIRED as the seed "
           "expects (%s)" % e.reason)
    # plain HTTP to the TLS port
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    s.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        data = s.recv(100)
    except ConnectionError:
        data = b""
    ok(not data.startswith(b"HTTP/"), "plain HTTP gets no HTTP answer")
    s.close()
    st, h, b = t.request("GET", "/todo")
    ok(st == 200, "the daemon still serves after the negative set")
finally:
    t.stop()
    t.cleanup()
done()
