#!/usr/bin/env python3
"""SIGHUP: configuration, certificate, key, CA and CRL rotation without
closing established connections; failed reloads change nothing; session
resumption across workers, and not across a policy change."""

import os
import socket
import ssl
import subprocess
import time

from todtest import Todod, args, done, ok, wait_until

a = args()
t = Todod(a.build, prefork=2)
# a private copy of the PKI: this test revokes and rotates
PKI = t.private_pki()
pki = t.pki
t.write_conf()
t.start()


def reload_and_wait(expect="configuration reloaded"):
    n = t.log().count(expect)
    t.reload()
    return t.wait_log(expect, 10, count=n + 1)


def new_session(client="mtls-client", version="1.3"):
    """A full handshake and a request; returns the TLS session."""
    ctx = t.ctx(client, version)
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    tls = ctx.wrap_socket(s, server_hostname="localhost")
    tls.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = tls.recv(65536)
        if not d:
            break
        data += d
    sess = tls.session
    tls.close()
    return ctx, sess, data


def resume(ctx, sess):
    """Reconnect with a session: (resumed?, HTTP status line or error)."""
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    try:
        tls = ctx.wrap_socket(s, server_hostname="localhost", session=sess)
        tls.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\n"
                    b"Connection: close\r\n\r\n")
        data = b""
        while True:
            d = tls.recv(65536)
            if not d:
                break
            data += d
        r = tls.session_reused
        nsess = tls.session
        tls.close()
        return r, data.split(b"\r\n")[0], nsess
    except (ssl.SSLError, ConnectionError, OSError) as e:
        return False, str(e).encode(), None


try:
    # --- session resumption works, across workers ----------------------
    for v in ("1.3", "1.2"):
        ctx, sess, _ = new_session(version=v)
        reused = 0
        for i in range(12):
            r, line, sess2 = resume(ctx, sess)
            reused += r
            if sess2 is not None:
                sess = sess2
        ok(reused == 12, "TLS %s: %d of 12 reconnects resumed (both "
           "workers share ticket keys)" % (v, reused))
    m = t.metrics()
    ok(m.get("todod_handshakes_resumed_total", 0) >= 24,
       "resumed handshakes counted")
    # TLS 1.3 tickets are used once: a resumption must bring a new one
    sess = os.path.join(t.dir, "s13.pem")
    r = t.s_client(extra=["-tls1_3", "-sess_out", sess],
                   data=b"GET /todo HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
    r = t.s_client(extra=["-tls1_3", "-sess_in", sess],
                   data=b"GET /todo HTTP/1.1\r\nHost: x\r\n"
                   b"Connection: close\r\n\r\n")
    out = r.stdout.decode("utf-8", "replace")
    ok("Reused, TLSv1.3" in out and "New Session Ticket arrived" in out,
       "a resumed TLS 1.3 connection gets a fresh ticket (s_client)")

    # --- a keep-alive connection survives a reload -----------------------
    keep = t.conn()
    keep.request("GET", "/todo")
    r = keep.getresponse()
    r.read()
    aud = t.conn("auditor")
    aud.request("GET", "/todo")
    r = aud.getresponse()
    r.read()
    ok(r.status == 200, "auditor may read before the reload")
    ctx, sess, _ = new_session(version="1.3")

    t.write_conf(rules='allow all from cn "mtls-client"\n'
                 'allow write from cn "auditor"')
    ok(reload_and_wait(), "reload with new rules")
    keep.request("GET", "/todo")
    r = keep.getresponse()
    r.read()
    ok(r.status == 200, "a keep-alive connection from before the reload "
       "keeps working")
    aud.request("GET", "/todo")
    r = aud.getresponse()
    r.read()
    ok(r.status == 403, "rules re-evaluated on a connection opened before "
       "the reload (auditor may no longer read)")
    aud.close()
    r, line, _ = resume(ctx, sess)
    ok(not r and line.startswith(b"HTTP/1.1 200"),
       "after a rule change an old session does not resume (full "
       "handshake instead)")
    ok(t.wait_log(r"reloading .*todod\.conf", 2), "reload is logged")

    # --- failed reloads change nothing ----------------------------------
    good = open(t.conf).read()
    with open(t.conf, "a") as f:
        f.write("\nthis is not a keyword\n")
    ok(reload_and_wait("reload failed"), "syntax error: reload failed")
    nlines = len(good.splitlines()) + 2
    ok(t.wait_log(r"reload failed: .*todod\.conf:%d: " % nlines, 2),
       "reload failed names file and line")
    st, h, b = t.request("GET", "/todo")
    ok(st == 200, "still serving after a failed reload")

    t.write_conf(server="no-such-server")
    ok(reload_and_wait("reload failed"), "missing certificate file: "
       "reload failed")
    ok(t.wait_log(r"reload failed: .*no-such-server\.crt: No such file", 2),
       "the message names the missing file")
    # a key that does not match its certificate
    t.write_conf(server="localhost")
    good = open(t.conf).read()
    with open(t.conf, "w") as f:
        f.write(good.replace(os.path.join(pki, "localhost.key"),
                             os.path.join(pki, "localhost-rsa.key")))
    ok(reload_and_wait("reload failed"), "mismatched key: reload failed")
    ok(t.wait_log(r"reload failed: .*localhost-rsa\.key: key does not match "
                  r"certificate", 2), "the message names the key file")
    # a world-readable key
    os.chmod(os.path.join(pki, "localhost-rsa.key"), 0o644)
    ok(reload_and_wait("reload failed"), "world-readable key refused")
    ok(t.wait_log(r"localhost-rsa\.key: group or world readable", 2),
       "the message says why")
    os.chmod(os.path.join(pki, "localhost-rsa.key"), 0o600)
    st, h, b = t.request("GET", "/todo")
    ok(st == 200, "still serving with the old material")
    ok(keep.sock is not None, "keep-alive connection still open")
    keep.request("GET", "/todo")
    r = keep.getresponse()
    r.read()
    ok(r.status == 200, "and still answered")

    # --- certificate and key rotation ---------------------------------
    t.write_conf(server="localhost-rsa")
    ok(reload_and_wait(), "rotate to an RSA certificate and key")
    ctx2 = t.ctx()
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    tls = ctx2.wrap_socket(s, server_hostname="localhost")
    der = tls.getpeercert(binary_form=True)
    tls.close()
    pem = ssl.DER_cert_to_PEM_cert(der)
    txt = subprocess.run(["openssl", "x509", "-noout", "-text"],
                         input=pem.encode(), capture_output=True).stdout
    ok(b"rsaEncryption" in txt, "new connections get the new certificate")
    keep.request("GET", "/todo")
    r = keep.getresponse()
    r.read()
    ok(r.status == 200, "the old connection continues across the rotation")
    keep.close()

    # --- expiry warnings ------------------------------------------------
    subprocess.run(PKI + ["server", "shortlived", "--days", "10", "--san",
                          "DNS:localhost,IP:127.0.0.1"], check=True,
                   capture_output=True)
    t.write_conf(server="shortlived")
    ok(reload_and_wait(), "reload with a certificate that expires in 10 "
       "days")
    ok(t.wait_log(r"server certificate .*shortlived\.crt expires on "
                  r"\d{4}-\d\d-\d\d .*\(in (9|10) days\)", 2),
       "warned, with the date, within the 30 days of `expiry warning`")
    t.write_conf(server="localhost-rsa")
    ok(reload_and_wait(), "back to the RSA certificate")

    # --- CRL rotation: revoke a client, reload -------------------------
    subprocess.run(PKI + ["client", "rotating"], check=True,
                   capture_output=True)
    t.write_conf(rules='allow all from cn "mtls-client"\n'
                 'allow all from cn "rotating"')
    ok(reload_and_wait(), "reload with a rule for a new client")
    st, h, b = t.request("GET", "/todo", client="rotating")
    ok(st == 200, "the new client is served")
    ctx, sess, _ = new_session(client="rotating")
    r, line, sess = resume(ctx, sess)
    ok(r, "its session resumes")
    subprocess.run(PKI + ["revoke", "rotating"], check=True,
                   capture_output=True)
    ok(reload_and_wait(), "reload with the new CRL")
    try:
        st, h, b = t.request("GET", "/todo", client="rotating")
        refused = False
    except (ssl.SSLError, ConnectionError, OSError):
        refused = True
    ok(refused, "a revoked client is refused after the reload")
    r, line, _ = resume(ctx, sess)
    ok(not line.startswith(b"HTTP/1.1 200"),
       "its old session does not get it in (%s)" % line[:60])
    ok(t.wait_log(r"tls handshake failed: certificate revoked", 3),
       "the refusal is logged as revoked")
    # --- an out-of-date CRL is still enforced -----------------------------
    env = dict(os.environ, TODOD_PKI_DB=os.path.join(pki, ".pki", "ca"))
    r = subprocess.run(["openssl", "ca", "-gencrl", "-config",
                        os.path.join(pki, ".pki", "ca", "openssl.cnf"),
                        "-cert", os.path.join(pki, "ca.crt"), "-keyfile",
                        os.path.join(pki, "ca.key"), "-crlsec", "1",
                        "-out", os.path.join(pki, "crl.pem")], env=env,
                       capture_output=True)
    ok(r.returncode == 0, "made a CRL that expires in a second")
    time.sleep(2)
    ok(reload_and_wait(), "reload with the expired CRL")
    ok(t.wait_log(r"CRL .*crl\.pem is out of date since .*still enforced",
                  2), "the log warns that the CRL is out of date and still "
       "enforced")
    st, h, b = t.request("GET", "/todo")
    ok(st == 200, "other clients are still accepted")
    for client in ("rotating", "revoked"):
        try:
            t.request("GET", "/todo", client=client)
            refused = False
        except (ssl.SSLError, ConnectionError, OSError):
            refused = True
        ok(refused, "%s stays refused under the expired CRL" % client)
    m = t.metrics()
    ok(m.get("todod_crl_next_update_seconds", 0) < 0,
       "metrics show the CRL's next update in the past")
    ok(m.get('todod_reloads_total{result="ok"}', 0) >= 4 and
       m.get('todod_reloads_total{result="failed"}', 0) >= 4,
       "reloads counted by result")
finally:
    rc = t.stop()
    ok(rc == 0, "clean exit")
    t.cleanup()
done()
