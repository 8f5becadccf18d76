#!/usr/bin/env python3
"""CRL refresh (`crl url ... refresh N`) against Python's http.server on
loopback: the CRL is fetched and installed, a newly revoked client is
refused and its open connection cut; garbage, a CRL from another CA and an
out-of-date CRL are ignored with a log line, the CRL in use kept."""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time

from todtest import (Todod, args, count_responses, done, free_port, ok,
                     wait_until)

a = args()
t = Todod(a.build, prefork=2, crl=False,
          rules=['allow all from cn "mtls-client"',
                 'allow all from cn "fetched-out"'])
PKI = t.private_pki()
pki = t.pki
subprocess.run(PKI + ["client", "fetched-out"], check=True,
               capture_output=True)
www = os.path.join(t.dir, "www")
os.mkdir(www)
live = os.path.join(t.dir, "crl-live.pem")
shutil.copy(os.path.join(pki, "crl.pem"), live)
served = os.path.join(www, "crl.der")


def serve_der(pem):
    """Publish a PEM CRL as DER, atomically."""
    subprocess.run(["openssl", "crl", "-in", pem, "-outform", "DER", "-out",
                    served + ".tmp"], check=True, capture_output=True)
    os.replace(served + ".tmp", served)


def gencrl(ca, out, secs=None):
    env = dict(os.environ, TODOD_PKI_DB=os.path.join(pki, ".pki", ca))
    cmd = ["openssl", "ca", "-gencrl", "-config",
           os.path.join(pki, ".pki", ca, "openssl.cnf"), "-cert",
           os.path.join(pki, ca + ".crt"), "-keyfile",
           os.path.join(pki, ca + ".key"), "-out", out]
    cmd += ["-crlsec", str(secs)] if secs else ["-crldays", "30"]
    return subprocess.run(cmd, env=env, capture_output=True).returncode == 0


serve_der(live)
hport = free_port()
httpd = subprocess.Popen([sys.executable, "-m", "http.server", str(hport),
                          "--bind", "127.0.0.1", "--directory", www],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
url = "http://127.0.0.1:%d/crl.der" % hport
t.write_conf(tlsextra='crl "%s"\n\tcrl url "%s" refresh 1' % (live, url))


def keepalive_get(tls):
    tls.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while count_responses(buf) < 1:
        d = tls.recv(65536)
        if not d:
            return None
        buf += d
    return int(buf.split(b" ")[1])


def refused(client):
    try:
        t.request("GET", "/todo", client=client)
        return False
    except (ssl.SSLError, ConnectionError, OSError):
        return True


def live_bytes():
    with open(live, "rb") as f:
        return f.read()


try:
    r = subprocess.run([os.path.join(t.build, "todod"), "-n", "-f",
                        t.conf], capture_output=True, env=t.env)
    ok(r.returncode == 0, "-n accepts crl url (%s)" % r.stderr[-200:])
    t.start()
    wait_until(lambda: httpd.poll() is None, 2)
    st, _, _ = t.request("GET", "/todo", client="fetched-out")
    ok(st == 200, "a client not yet revoked is served")
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    tls = t.ctx("fetched-out").wrap_socket(s, server_hostname="localhost")
    ok(keepalive_get(tls) == 200, "its keep-alive connection is served")

    # --- a new CRL is published: fetched, installed, enforced -----------
    n = t.log().count("configuration reloaded")
    subprocess.run(PKI + ["revoke", "fetched-out"], check=True,
                   capture_output=True)
    serve_der(os.path.join(pki, "crl.pem"))
    ok(t.wait_log(r"CRL from http://127\.0\.0\.1:\d+/crl\.der installed",
                  15), "the new CRL is fetched and installed")
    ok(t.wait_log("configuration reloaded", 10, count=n + 1),
       "and applied by a reload")
    ok(keepalive_get(tls) == 403, "the open connection of the revoked "
       "client gets a 403")
    tls.close()
    ok(refused("fetched-out"), "a new connection of it is refused")
    st, _, _ = t.request("GET", "/todo")
    ok(st == 200, "other clients are served")
    good = live_bytes()
    ok(b"BEGIN X509 CRL" in good, "the CRL file holds the fetched CRL")

    # --- bad CRLs: ignored, the CRL in use kept -------------------------
    def bad(what, pattern):
        c = len(__import__("re").findall(pattern, t.log()))
        ok(t.wait_log(pattern, 15, count=c + 1), "%s: refused and logged"
           % what)
        ok(live_bytes() == good, "%s: the CRL file is unchanged" % what)
        ok(refused("fetched-out"), "%s: the revoked client stays refused"
           % what)
        st, _, _ = t.request("GET", "/todo")
        ok(st == 200, "%s: other clients are served" % what)

    with open(served + ".tmp", "wb") as f:
        f.write(b"this is not a CRL\n")
    os.replace(served + ".tmp", served)
    bad("garbage", r"CRL from \S+(: HTTP exchange failed| refused: not a "
        r"DER CRL).*; keeping the CRL in use")

    other = os.path.join(t.dir, "other.pem")
    ok(gencrl("untrusted-ca", other), "made a CRL signed by another CA")
    serve_der(other)
    bad("another CA's CRL", r"CRL from \S+ refused: .*untrusted|"
        r"CRL from \S+ refused: .*(issuer|CA)")

    stale = os.path.join(t.dir, "stale.pem")
    ok(gencrl("ca", stale, secs=1), "made a CRL that expires in a second")
    time.sleep(2)
    serve_der(stale)
    bad("an out-of-date CRL", r"CRL from \S+ refused: it is out of date")

    os.remove(served)
    bad("a 404", r"CRL from \S+: .*404.*; keeping the CRL in use")

    # --- the server is down ---------------------------------------------
    httpd.terminate()
    httpd.wait(10)
    bad("the server down", r"CRL from \S+: connect to .*refused")

    m = t.metrics()
    ok(m.get('todod_crl_fetches_total{result="ok"}', 0) >= 1 and
       m.get('todod_crl_fetches_total{result="failed"}', 0) >= 5,
       "CRL fetches counted by result")
    ok(m.get("todod_crl_age_seconds", -1) >= 0,
       "the age of the last good CRL fetch is shown")

    t.write_conf(tlsextra='crl url "%s" refresh 1' % url)
    r = subprocess.run([os.path.join(t.build, "todod"), "-n", "-f",
                        t.conf], capture_output=True, env=t.env)
    ok(r.returncode != 0 and b"crl url needs crl" in r.stderr + r.stdout,
       "-n: crl url without a crl file is an error")
    t.write_conf(tlsextra='crl "%s"\n\tcrl url "https://x/c" refresh 1'
                 % live)
    r = subprocess.run([os.path.join(t.build, "todod"), "-n", "-f",
                        t.conf], capture_output=True, env=t.env)
    ok(r.returncode != 0 and b"http://" in r.stderr + r.stdout,
       "-n: an https URL is an error")
finally:
    if httpd.poll() is None:
        httpd.terminate()
        httpd.wait(10)
    rc = t.stop()
    ok(rc == 0, "clean exit")
    t.cleanup()
done()
