#!/usr/bin/env python3
"""The tests' OCSP responder (regress/tools/ocspresp.py through todtest's
OcspResponder), checked with the real `openssl ocsp` client: loopback
only, nonces echoed, answers from the CA database as it is now (a
revocation is answered at once), POST and GET, a delegated signer, the
request count, and down when stopped."""

import base64
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request

from todtest import (TOP, OcspResponder, args, done, ocsp_query, ok,
                     pki_dir)

a = args()
tmp = tempfile.mkdtemp(prefix="todod-ocspresp-")
pki = os.path.join(tmp, "pki")
shutil.copytree(pki_dir(a.build), pki, symlinks=True)
PKI = ["sh", os.path.join(TOP, "certs", "todod-pki"), "-d", pki]
# A set made before the delegated responder existed gets it now.
subprocess.run(PKI + ["dev"], check=True, capture_output=True)

r = OcspResponder(pki, nmin=5)
try:
    ok(r.url.startswith("http://127.0.0.1:"), "listens on loopback: %s"
       % r.url)
    ss = subprocess.run(["ss", "-Hltn", "sport = :%d" % r.r.port],
                        capture_output=True, text=True).stdout.split()
    ok(len(ss) >= 4 and ss[3] == "127.0.0.1:%d" % r.r.port,
       "bound to 127.0.0.1 only (%s)" % " ".join(ss[3:4]))

    rc, out = ocsp_query(pki, "mtls-client", r.url)
    ok(rc == 0 and "Response verify OK" in out and
       "mtls-client.crt: good" in out, "good for mtls-client, verified")
    ok("OCSP Nonce" in out, "the nonce is echoed")
    ok(r.count == 1, "one request counted (%d)" % r.count)
    ok("Next Update" in out, "a next update is given (-nmin)")

    rc, out = ocsp_query(pki, "revoked", r.url)
    ok(rc == 0 and "revoked.crt: revoked" in out, "revoked for revoked")

    rc, out = ocsp_query(pki, "auditor", r.url)
    ok("auditor.crt: good" in out, "auditor good before revoke")
    subprocess.run(PKI + ["revoke", "auditor"], check=True,
                   capture_output=True)
    rc, out = ocsp_query(pki, "auditor", r.url)
    ok("auditor.crt: revoked" in out,
       "todod-pki revoke is answered at once")

    rc, out = ocsp_query(pki, "intruder", r.url, issuer="untrusted-ca",
                         nonce=False)
    ok("Responder Error" in out or "unknown" in out or rc != 0,
       "another CA's certificate is not answered good")

    req = os.path.join(tmp, "req.der")
    subprocess.run(["openssl", "ocsp", "-issuer",
                    os.path.join(pki, "ca.crt"), "-cert",
                    os.path.join(pki, "mtls-client.crt"), "-no_nonce",
                    "-reqout", req], check=True, capture_output=True)
    with open(req, "rb") as f:
        b64 = base64.b64encode(f.read()).decode()
    with urllib.request.urlopen(r.url + urllib.parse.quote(b64, safe=""),
                                timeout=10) as resp:
        ctype = resp.headers.get("Content-Type")
        der = resp.read()
    ok(ctype == "application/ocsp-response", "GET: content type %s" % ctype)
    respf = os.path.join(tmp, "resp.der")
    with open(respf, "wb") as f:
        f.write(der)
    v = subprocess.run(["openssl", "ocsp", "-respin", respf, "-resp_text",
                        "-CAfile", os.path.join(pki, "ca.crt"), "-issuer",
                        os.path.join(pki, "ca.crt"), "-cert",
                        os.path.join(pki, "mtls-client.crt")],
                       capture_output=True, text=True)
    ok(v.returncode == 0 and "mtls-client.crt: good" in v.stdout,
       "GET /base64 answered and verified")

    r.override = b"not an OCSP response"
    rc, out = ocsp_query(pki, "mtls-client", r.url)
    ok(rc != 0 or "good" not in out, "override: garbage is served")
    r.override = None

    n = r.count
    r.stop()
    rc, out = ocsp_query(pki, "mtls-client", r.url, timeout=3)
    ok(rc != 0 and "good" not in out, "stopped: no answer")
    ok(r.count == n, "stopped: nothing counted")
    r.start()
    rc, out = ocsp_query(pki, "mtls-client", r.url)
    ok(rc == 0 and "good" in out, "started again on the same port")
finally:
    r.cleanup()

d = OcspResponder(pki, signer="ocsp-responder", ndays=1)
try:
    rc, out = ocsp_query(pki, "mtls-client", d.url)
    ok(rc == 0 and "Response verify OK" in out and "good" in out,
       "a delegated responder's answer verifies against the CA")
finally:
    d.cleanup()
shutil.rmtree(tmp, ignore_errors=True)
done()
