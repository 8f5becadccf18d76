#!/usr/bin/env python3
"""Client certificate OCSP (client ocsp require|prefer) against the real
daemon and the real `openssl ocsp` answering for the CA on loopback
(regress/tools/ocspresp.py): good and revoked clients in both modes, the
responder from the certificate (AIA) or from the configuration, a
responder that is down or never answers, a keep-alive connection cut when
a later connection of its certificate learns that it was revoked (and its
session no longer resumes), the answers the parent caches until their
nextUpdate, and the metrics.  No CRL is configured: what refuses here is
OCSP alone."""

import json
import os
import socket
import ssl
import subprocess
import time

from todtest import (OcspResponder, Todod, args, count_responses, done, ok,
                     wait_until)

a = args()
t = Todod(a.build, prefork=2, crl=False, rules=["allow all from any"],
          extra="timeout ocsp 2", tlsextra="client ocsp require")
PKI = t.private_pki()
r = OcspResponder(t.pki)            # no nextUpdate: every answer used once


def pki(*argv):
    subprocess.run(PKI + list(argv), check=True, capture_output=True)


# clients whose certificate names the responder (AIA), and one that names
# none (the dev set's own certificates name the dev responder's port)
for name in ("good", "gone", "doomed"):
    pki("client", name, "--ocsp-url", r.url)
pki("client", "noaia")
pki("revoke", "gone")


def reload_and_wait(**conf):
    t.write_conf(**conf)
    n = t.log().count("configuration reloaded")
    t.reload()
    return t.wait_log("configuration reloaded", 10, count=n + 1)


CTX = {}


class Conn:
    """One TLS connection carrying several GET /todo (one client context
    per name: a session resumes only in the context it came from)."""

    def __init__(self, client, session=None):
        if client not in CTX:
            CTX[client] = t.ctx(client)
        s = socket.create_connection(("127.0.0.1", t.port), timeout=10)
        self.tls = CTX[client].wrap_socket(s, server_hostname="localhost",
                                           session=session)
        self.buf = b""

    def get(self):
        """(status, head, body) of GET /todo; Nones at EOF."""
        try:
            self.tls.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\n\r\n")
            while count_responses(self.buf) < 1:
                d = self.tls.recv(65536)
                if not d:
                    return None, None, None
                self.buf += d
        except (ssl.SSLError, ConnectionError, socket.timeout):
            return None, None, None
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        n = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                 if ln.lower().startswith(b"content-length:")][0])
        body, self.buf = rest[:n], rest[n:]
        return int(head.split(b" ")[1]), head, json.loads(body)

    def at_eof(self):
        try:
            return self.tls.recv(1) == b""
        except (ssl.SSLError, ConnectionError, socket.timeout):
            return True

    def close(self):
        self.tls.close()


def get(client):
    """(status, error or client name) of GET /todo on a new connection."""
    c = Conn(client)
    st, _, body = c.get()
    closed = st != 200 and c.at_eof()
    c.close()
    if st is None:
        return None, None
    if st != 200 and not closed:
        return st, "connection not closed"
    return st, body.get("error", body.get("client"))


def metric(m, key):
    return m.get(key, 0)


OCSP = 'todod_revocation_checks_total{source="ocsp",result="%s"}'

try:
    t.start()
    m0 = t.metrics("good")
    ok(m0, "require, responder up: a good client is served (/metrics)")

    # -- require --------------------------------------------------------
    st, what = get("good")
    ok(st == 200 and what == "good", "require: a good client is accepted "
       "(%s %s)" % (st, what))
    st, what = get("gone")
    ok(st == 403 and what == "certificate revoked (OCSP)",
       "require: a client revoked by OCSP gets 403, a JSON error, and the "
       "connection closes (%s %s)" % (st, what))
    ok(t.wait_log(r'cn="gone" connection refused: certificate revoked '
                  r'\(OCSP\)', 5), "the refusal is logged with its reason")
    ok(t.wait_log(r"parent: ocsp: responder http://127\.0\.0\.1:\d+/: "
                  r"certificate SHA256:[0-9a-f]{64} is revoked", 5),
       "the parent logs the revocation it learnt")
    st, what = get("noaia")
    ok(st == 403 and "no usable OCSP URL in the certificate" in str(what),
       "require: a certificate that names no responder is refused "
       "(%s %s)" % (st, what))

    ok(reload_and_wait(tlsextra="client ocsp require\n\tclient ocsp url "
                       '"%s"' % r.url), "reload: client ocsp url")
    st, what = get("noaia")
    ok(st == 200, "the configured responder is asked for any certificate "
       "(%s %s)" % (st, what))

    # the responder down, late, or answering nonsense: no good answer
    r.stop()
    st, what = get("good")
    ok(st == 403 and "Connection refused" in str(what),
       "require, responder down: refused (%s %s)" % (st, what))
    ok(t.wait_log(r'cn="good" connection refused: no good OCSP answer: '
                  r'responder http://127\.0\.0\.1:\d+/: connect to', 5),
       "the refusal is logged with the responder's failure")
    r.start()
    r.delay = 10
    t0 = time.monotonic()
    st, what = get("good")
    dt = time.monotonic() - t0
    ok(st == 403 and "no answer within 2 seconds" in str(what) and
       1.5 < dt < 5, "require, responder that does not answer: refused "
       "after timeout ocsp (%s %s, %.1f s)" % (st, what, dt))
    r.delay = 0
    r.override = b"\x30\x03\x0a\x01\x00garbage"
    st, what = get("good")
    ok(st == 403 and "no good OCSP answer: responder" in str(what),
       "require, a broken answer: refused (%s %s)" % (st, what))
    r.override = None

    # -- prefer ---------------------------------------------------------
    ok(reload_and_wait(tlsextra="client ocsp prefer"), "reload: prefer")
    st, what = get("good")
    ok(st == 200, "prefer: a good client is accepted (%s)" % st)
    st, what = get("gone")
    ok(st == 403 and what == "certificate revoked (OCSP)",
       "prefer: a client revoked by OCSP is refused (%s %s)" % (st, what))
    r.stop()
    st, what = get("good")
    ok(st == 200 and what == "good", "prefer, responder down: accepted "
       "(%s %s)" % (st, what))
    ok(t.wait_log(r'cn="good" client ocsp: no good OCSP answer: responder '
                  r'.*: accepted, prefer', 5),
       "with a warning that says why")
    m = t.metrics("good")
    ok(metric(m, OCSP % "noanswer") >= metric(m0, OCSP % "noanswer") + 4,
       "checks without an answer are counted (%s)" %
       metric(m, OCSP % "noanswer"))
    ok(metric(m, 'todod_ocsp_responder_requests_total{result="failed"}') >=
       4, "and so are the failed responder requests")
    r.start()

    # -- a live connection cut ------------------------------------------
    ok(reload_and_wait(tlsextra="client ocsp require"), "reload: require")
    m1 = t.metrics("good")
    doomed = [Conn("doomed"), Conn("doomed")]
    sts = [c.get()[0] for c in doomed]
    ok(sts == [200, 200], "two keep-alive connections of a client are "
       "served (%s)" % sts)
    sess = doomed[0].tls.session
    pki("revoke", "doomed")
    st, _, _ = doomed[0].get()
    ok(st == 200, "revoked at the CA: the open connection knows nothing "
       "yet (no polling)")
    n0 = r.count
    st, what = get("doomed")
    ok(st == 403 and what == "certificate revoked (OCSP)" and
       r.count == n0 + 1, "a new connection of it asks and is refused "
       "(%s %s)" % (st, what))
    for i, c in enumerate(doomed):
        st, head, body = c.get()
        ok(st == 403 and body.get("error") ==
           "certificate revoked (OCSP)" and
           b"connection: close" in head.lower() and c.at_eof(),
           "open connection %d: its next request gets 403 and the "
           "connection closes (%s)" % (i + 1, st))
        c.close()
    ok(t.wait_log(r'cn="doomed" connection cut: certificate revoked '
                  r'\(OCSP\)', 5, count=2), "both cuts are logged")
    c = Conn("doomed", session=sess)
    st, _, _ = c.get()
    ok(st is None or st == 403, "its session no longer serves a request "
       "(%s, resumed %s)" % (st, c.tls.session_reused))
    c.close()
    st, _ = get("good")
    ok(st == 200, "another client is still served")
    m = t.metrics("good")
    ok(metric(m, "todod_connections_cut_total") ==
       metric(m1, "todod_connections_cut_total") + 2,
       "todod_connections_cut_total counts the two cuts")
    ok(metric(m, OCSP % "revoked") >= metric(m1, OCSP % "revoked") + 1,
       "revoked OCSP checks are counted")

    # -- answers cached until their nextUpdate --------------------------
    r.stop()
    cached = OcspResponder(t.pki, nmin=5, port=r.port)
    try:
        ok(reload_and_wait(tlsextra="client ocsp require"),
           "responder with nextUpdate 5 minutes")
        m1 = t.metrics("good")     # the first answer about good: fetched
        n0 = cached.count
        sts = [get("good")[0] for _ in range(6)]
        ok(sts == [200] * 6, "six more connections are served (%s)" % sts)
        ok(cached.count == n0, "none of them reached the responder "
           "(%d requests in all)" % cached.count)
        m = t.metrics("good")
        ok(metric(m, OCSP % "good") >= metric(m1, OCSP % "good") + 6,
           "each is counted as a good OCSP check")
        hits = metric(m, "todod_ocsp_cache_hits_total")
        ok(cached.count == 1, "one responder request for one certificate "
           "(%d; the parent's cache answered %d worker queries)" %
           (cached.count, hits))
    finally:
        cached.cleanup()

    # -- a configuration todod -n refuses -------------------------------
    t.write_conf(tlsextra='client ocsp prefer\n\tclient ocsp url "http://"')
    p = subprocess.run([os.path.join(t.build, "todod"), "-n", "-f", t.conf],
                       capture_output=True, text=True, timeout=30)
    ok(p.returncode == 1 and 'client ocsp url "http://": not an http:// '
       'URL with a host' in p.stderr,
       "todod -n: a responder URL without a host (%s)" % p.stderr.strip())
finally:
    rc = t.stop()
    ok(rc == 0, "clean exit")
    r.cleanup()
    t.cleanup()
done()
