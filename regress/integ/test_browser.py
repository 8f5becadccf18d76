#!/usr/bin/env python3
"""People in browsers (issue 17), against a real todod with real clients:
the CertificateRequest names the client CA (openssl s_client, TLS 1.2 and
1.3); GET / serves the built-in page to Accept: text/html only, with its
security and caching headers, 304 on a matching ETag, /favicon.ico a 204;
writes whose Origin or Sec-Fetch-Site says another site are 403 and reach
no store; todod-pki pkcs12 bundles use AES-256/PBKDF2/SHA-256 (3DES/SHA-1
with --legacy) and NSS (Chromium's and Firefox's store) imports both.
The Chromium run is test_chromium.py."""

import os
import re
import shutil
import subprocess
import tempfile

from todtest import TOP, Todod, args, done, ok

a = args()
t = Todod(a.build, prefork=1)
t.start()
HTTP10 = b"GET /todo HTTP/1.0\r\n\r\n"


def ca_names(version):
    r = t.s_client(extra=(version,), data=HTTP10)
    out = r.stdout.decode("utf-8", "replace")
    m = re.search(r"Acceptable client certificate CA names\n(.*)\n", out)
    return m.group(1) if m else None, out


def test_ca_names():
    for v in ("-tls1_2", "-tls1_3"):
        name, out = ca_names(v)
        ok(name is not None and "CN = todod dev CA" in name,
           "%s: CertificateRequest names the client CA (%r)" % (v, name))
        ok("No client certificate CA names sent" not in out,
           "%s: not \"No client certificate CA names sent\"" % v)


def page(path="/", accept="text/html", client="mtls-client", extra=None):
    h = {"Accept": accept} if accept else {}
    h.update(extra or {})
    return t.request("GET", path, client=client, headers=h)


def test_page():
    st, h, body = page()
    ok(st == 200 and h.get("Content-Type") == "text/html; charset=utf-8",
       "GET / with Accept: text/html is the page (%d %s)" %
       (st, h.get("Content-Type")))
    html = body if isinstance(body, bytes) else b""
    ok(b'<script src="/todod.js"' in html and b"<form" in html and
       b"http" not in html.replace(b"<!DOCTYPE html>", b""),
       "the page loads its own script and names no other site")
    csp = h.get("Content-Security-Policy", "")
    for d in ("default-src 'none'", "script-src 'self'",
              "connect-src 'self'", "frame-ancestors 'none'",
              "form-action 'none'", "base-uri 'none'"):
        ok(d in csp, "CSP has %s" % d)
    ok("unsafe" not in csp, "CSP allows no unsafe-inline or unsafe-eval")
    ok(h.get("X-Content-Type-Options") == "nosniff" and
       h.get("X-Frame-Options") == "DENY", "nosniff, no framing")
    ok(h.get("Cache-Control") == "no-cache" and
       re.fullmatch(r'"[0-9a-f]{16}"', h.get("ETag", "")) is not None and
       h.get("Vary") == "Accept", "no-cache with an ETag, Vary: Accept")
    etag = h.get("ETag")
    st, h2, body = page(extra={"If-None-Match": etag})
    ok(st == 304 and body is None and "Content-Length" not in h2 and
       h2.get("ETag") == etag, "If-None-Match with its ETag: 304, no body")
    st, _, _ = page(extra={"If-None-Match": '"0000000000000000"'})
    ok(st == 200, "another ETag: 200")
    st, h, body = page(accept="text/html;q=0.9, */*;q=0.8")
    ok(st == 200, "a browser's Accept with q values gets the page")
    for acc in (None, "*/*", "application/json"):
        st, h, body = page(accept=acc)
        ok(st == 404 and body == {"error": "no such path"} and
           h.get("Content-Type") == "application/json",
           "GET / with Accept %r: 404 JSON as before" % acc)
    st, h, body = t.request("POST", "/", body={"task": "x"},
                            headers={"Accept": "text/html"})
    ok(st == 405 and h.get("Allow") == "GET", "POST /: 405, Allow: GET")
    for path, ctype in (("/todod.js", "text/javascript; charset=utf-8"),
                        ("/todod.css", "text/css; charset=utf-8")):
        st, h, body = page(path, accept="*/*")
        ok(st == 200 and h.get("Content-Type") == ctype and
           h.get("X-Content-Type-Options") == "nosniff" and
           h.get("Cross-Origin-Resource-Policy") == "same-origin" and
           "ETag" in h, "%s: %s, nosniff, same-origin, ETag" %
           (path, ctype))
    js = page("/todod.js", accept="*/*")[2]
    ok(b"innerHTML" not in js and b"textContent" in js and
       b"eval(" not in js, "the script sets text with textContent only")
    st, h, body = page("/favicon.ico", accept="image/*")
    ok(st == 204 and "Content-Length" not in h and body is None,
       "/favicon.ico: 204, no 404")


def test_page_authz():
    """GET / is a read: the read-only certificate may, a certificate with
    no rule may not."""
    st, _, _ = page(client="auditor")
    ok(st == 200, "read-only certificate gets the page")
    st, _, body = page(client="san-client")
    ok(st == 403 and body == {"error": "not authorized"},
       "certificate without a read rule: 403 for the page")


def store_tasks():
    st, _, body = t.request("GET", "/todo")
    return [x["task"] for x in body["todos"]] if st == 200 else None


def write(method, path, body, **headers):
    return t.request(method, path, body=body, headers=headers)


def test_cross_site():
    own = "https://localhost:%d" % t.port  # the Host http.client sends
    refused = [
        ("Origin: https://evil.example", {"Origin": "https://evil.example"}),
        ("Origin: null", {"Origin": "null"}),
        ("Origin of another port", {"Origin": "https://127.0.0.1:1"}),
        ("Origin over http", {"Origin": "http://127.0.0.1:%d" % t.port}),
        ("Sec-Fetch-Site: cross-site", {"Sec-Fetch-Site": "cross-site"}),
        ("Sec-Fetch-Site: same-site", {"Sec-Fetch-Site": "same-site"}),
        ("Sec-Fetch-Site unknown", {"Sec-Fetch-Site": "elsewhere"}),
        ("own Origin but Sec-Fetch-Site: cross-site",
         {"Origin": own, "Sec-Fetch-Site": "cross-site"}),
    ]
    for what, h in refused:
        st, _, body = write("POST", "/todo", {"task": "forged " + what}, **h)
        ok(st == 403 and body == {"error": "cross-site write refused"},
           "POST with %s: 403 (%d)" % (what, st))
    st, _, body = write("POST", "/todo", {"task": "same origin"},
                        Origin=own, **{"Sec-Fetch-Site": "same-origin"})
    ok(st == 201, "POST from the page's own origin: 201")
    iid = body["todo"]["id"] if st == 201 else 0
    st, _, _ = write("POST", "/todo", {"task": "plain client"})
    ok(st == 201, "POST without Origin or Sec-Fetch-Site (curl): 201")
    st, _, _ = write("PATCH", "/todo/%d" % iid, {"done": True},
                     Origin="https://evil.example")
    ok(st == 403, "PATCH from another origin: 403")
    st, _, _ = t.request("DELETE", "/todo/%d" % iid,
                         headers={"Sec-Fetch-Site": "cross-site"})
    ok(st == 403, "DELETE cross-site: 403")
    st, _, _ = t.request("GET", "/todo",
                         headers={"Sec-Fetch-Site": "cross-site"})
    ok(st == 200, "a cross-site GET is a read: answered (CORS keeps the "
       "body from the other site)")
    tasks = store_tasks()
    ok(tasks is not None and not any(x.startswith("forged") for x in tasks),
       "no refused write reached the store")
    st, _, body = t.request("GET", "/todo/%d" % iid)
    ok(st == 200 and body["todo"]["done"] is False, "refused PATCH changed "
       "nothing")
    # A form can send text/plain but not application/json; with its own
    # Origin the content type rule still applies.
    st, _, _ = write("POST", "/todo", '{"task":"form"}', Origin=own,
                     **{"Content-Type": "text/plain"})
    ok(st == 415, "own origin, text/plain body: still 415")
    # the check is part of authorization: before the body's checks
    st, _, _ = write("POST", "/todo", "not json",
                     Origin="https://evil.example",
                     **{"Content-Type": "text/plain"})
    ok(st == 403, "cross-site and text/plain: 403 first")
    st, _, _ = t.request("POST", "/todo", body={"task": "ro"},
                         client="auditor")
    ok(st == 403, "read-only certificate writing: 403")


def pkcs12_info(path, legacy):
    cmd = ["openssl", "pkcs12", "-info", "-noout", "-in", path, "-passin",
           "pass:todod-test"]
    if legacy:
        cmd.append("-legacy")
    r = subprocess.run(cmd, capture_output=True, timeout=30)
    return (r.stdout + r.stderr).decode("utf-8", "replace")


def nss_import(p12):
    db = tempfile.mkdtemp(prefix="todod-nss-")
    try:
        subprocess.run(["certutil", "-N", "-d", "sql:" + db,
                        "--empty-password"], check=True, capture_output=True)
        r = subprocess.run(["pk12util", "-d", "sql:" + db, "-i", p12, "-W",
                            "todod-test"], capture_output=True, timeout=30)
        listed = subprocess.run(["certutil", "-d", "sql:" + db, "-L"],
                                capture_output=True, timeout=30)
        return r.returncode == 0 and b"mtls-client" in listed.stdout
    finally:
        shutil.rmtree(db, ignore_errors=True)


def test_pkcs12():
    d = tempfile.mkdtemp(prefix="todod-p12-")
    try:
        for f in ("ca.crt", "mtls-client.crt", "mtls-client.key"):
            shutil.copy(os.path.join(t.pki, f), d)
        env = dict(os.environ, TODOD_PKI_PASS="todod-test")
        pki = os.path.join(TOP, "certs", "todod-pki")
        for legacy in (False, True):
            cmd = ["sh", pki, "-d", d, "pkcs12", "mtls-client", "--force"]
            if legacy:
                cmd.append("--legacy")
            r = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
            p12 = os.path.join(d, "mtls-client.p12")
            info = pkcs12_info(p12, legacy)
            if legacy:
                want = ("MAC: sha1", "pbeWithSHA1And3-KeyTripleDES-CBC")
            else:
                want = ("MAC: sha256", "PBKDF2, AES-256-CBC",
                        "PRF hmacWithSHA256")
            ok(r.returncode == 0 and all(w in info for w in want) and
               "3DES" not in info.replace("3-KeyTripleDES", "") and
               (legacy or "SHA1" not in info),
               "pkcs12%s: %s" % (" --legacy" if legacy else "",
                                 ", ".join(want)))
            ok(oct(os.stat(p12).st_mode & 0o777) == "0o600",
               "pkcs12%s: mode 0600" % (" --legacy" if legacy else ""))
            ok(nss_import(p12), "pkcs12%s: NSS (pk12util) imports it" %
               (" --legacy" if legacy else ""))
    finally:
        shutil.rmtree(d, ignore_errors=True)


try:
    test_ca_names()
    test_page()
    test_page_authz()
    test_cross_site()
    test_pkcs12()
    ok(re.search(r'cn="mtls-client" "POST /todo HTTP/1.1" 403 \d+',
                 t.log()) is not None, "refusals are in the log")
finally:
    t.cleanup()
done()
