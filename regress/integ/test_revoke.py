#!/usr/bin/env python3
"""Revocation that reaches every connection: a keep-alive connection open
for a certificate that a reload revokes gets a 403 and is closed at its
next request; new handshakes are refused; other clients are not
affected."""

import json
import os
import socket
import ssl
import subprocess

from todtest import Todod, args, count_responses, done, ok

a = args()
t = Todod(a.build, prefork=2, rules=['allow all from cn "mtls-client"',
                                     'allow all from cn "doomed"'])
PKI = t.private_pki()
pki = t.pki
subprocess.run(PKI + ["client", "doomed"], check=True, capture_output=True)
t.write_conf()
t.start()


def reload_and_wait(expect="configuration reloaded"):
    n = t.log().count(expect)
    t.reload()
    return t.wait_log(expect, 10, count=n + 1)


class KeepAlive:
    """One TLS connection carrying several requests."""

    def __init__(self, client):
        s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
        self.tls = t.ctx(client).wrap_socket(s, server_hostname="localhost")
        self.buf = b""

    def get(self):
        """(status, head, body) of GET /todo; Nones at EOF."""
        self.tls.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\n\r\n")
        while count_responses(self.buf) < 1:
            d = self.tls.recv(65536)
            if not d:
                return None, None, None
            self.buf += d
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        n = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                 if ln.lower().startswith(b"content-length:")][0])
        body, self.buf = rest[:n], rest[n:]
        return int(head.split(b" ")[1]), head, json.loads(body)

    def at_eof(self):
        try:
            return self.tls.recv(1) == b""
        except (ssl.SSLError, ConnectionError):
            return True

    def close(self):
        self.tls.close()


def refused(client):
    try:
        st, _, _ = t.request("GET", "/todo", client=client)
        return False
    except (ssl.SSLError, ConnectionError, OSError):
        return True


try:
    doomed = KeepAlive("doomed")
    other = KeepAlive("mtls-client")
    st, _, body = doomed.get()
    ok(st == 200 and body.get("client") == "doomed",
       "the keep-alive connection of the client to revoke is served")
    st, _, _ = doomed.get()
    ok(st == 200, "a second request on it too")
    st, _, _ = other.get()
    ok(st == 200, "another client's keep-alive connection is served")
    m0 = t.metrics()

    ok(reload_and_wait(), "a reload that changes nothing")
    st, _, _ = doomed.get()
    ok(st == 200, "after it, the connection is still served")

    subprocess.run(PKI + ["revoke", "doomed"], check=True,
                   capture_output=True)
    ok(reload_and_wait(), "reload with a CRL that revokes it")
    st, head, body = doomed.get()
    ok(st == 403, "its next request is refused (%s)" % st)
    ok(isinstance(body, dict) and "revoked" in body.get("error", ""),
       "with a JSON error that says why (%s)" % body)
    ok(b"connection: close" in head.lower(), "the response says close")
    ok(doomed.at_eof(), "and the connection is closed")
    doomed.close()
    ok(t.wait_log(r'cn="doomed" connection cut: certificate revoked', 3),
       "the cut is logged with the client's name")
    ok(refused("doomed"), "a new connection is refused at the handshake")
    st, _, _ = other.get()
    ok(st == 200, "the other client's open connection is still served")
    st, _, _ = t.request("GET", "/todo")
    ok(st == 200, "and new connections of other clients too")
    other.close()
    m = t.metrics()
    ok(m.get("todod_connections_cut_total", 0) ==
       m0.get("todod_connections_cut_total", 0) + 1,
       "todod_connections_cut_total counts the cut")
    key = 'todod_revocation_checks_total{source="crl",result="revoked"}'
    ok(m.get(key, 0) >= m0.get(key, 0) + 2,
       "revoked CRL checks counted (live and handshake): %s" % m.get(key))
    key = 'todod_revocation_checks_total{source="crl",result="good"}'
    ok(m.get(key, 0) > m0.get(key, 0), "good CRL checks counted")
finally:
    rc = t.stop()
    ok(rc == 0, "clean exit")
    t.cleanup()
done()
