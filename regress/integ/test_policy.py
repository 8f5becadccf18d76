#!/usr/bin/env python3
"""Authorization beyond CN with real certificates (DNS, URI and IP SANs,
OU, fingerprint pinning, method and path limits), `todod -n -C` policy dry
runs, and `todod -n` errors naming the file and problem."""

import os
import re
import subprocess

from todtest import TOP, Todod, args, done, ok

a = args()


def fingerprint(pki, name):
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint",
                          "-sha256", "-in", os.path.join(pki, name + ".crt")],
                         capture_output=True, text=True).stdout
    return "SHA256:" + out.split("=", 1)[1].strip().replace(":", "").lower()


t0 = Todod(a.build)
fp = fingerprint(t0.pki, "auditor")
t0.cleanup()
rules = [
    'allow read from san uri "spiffe://example.org/ns/prod/*"',
    'allow write from san dns "svc.example.org" method POST path "/todo"',
    'allow read from san ip "127.0.0.2"',
    'allow { read write } from ou "ops" cn "ops-user"',
    'allow metrics from cn "mtls-client"',
    'allow read from fingerprint "%s"' % fp.upper().replace("SHA256",
                                                             "sha256"),
    'allow write from cn "mtls-client" ou "nobody-has-this"',
]
t = Todod(a.build, rules=rules)
t.start()


def st(method, path, client, body=None):
    if body is None and method in ("POST", "PATCH"):
        body = {"task": "by " + client} if method == "POST" else \
            {"done": True}
    return t.request(method, path, body, client=client)[0]


try:
    st_, h, b = t.request("POST", "/todo", {"task": "seed"},
                          client="ops-user")
    item = "/todo/%d" % b["todo"]["id"]
    cases = [
        ("spiffe-client", "GET", "/todo", 200, "URI SAN prefix rule: read"),
        ("spiffe-client", "POST", "/todo", 403, "URI SAN rule gives no "
         "write"),
        ("san-client", "POST", "/todo", 201, "DNS SAN rule limited to POST "
         "/todo"),
        ("san-client", "PATCH", item, 403, "DNS SAN rule: not PATCH"),
        ("san-client", "DELETE", item, 403, "DNS SAN rule: not DELETE"),
        ("san-client", "GET", "/todo", 200, "IP SAN rule: read"),
        ("ops-user", "GET", "/todo", 200, "OU and CN together: read"),
        ("ops-user", "PATCH", item, 200, "OU and CN together: write"),
        ("auditor", "GET", item, 200, "fingerprint pin (either case in "
         "todod.conf)"),
        ("auditor", "POST", "/todo", 403, "the pin gives read only"),
        ("mtls-client", "GET", "/metrics", 200, "metrics class"),
        ("mtls-client", "GET", "/todo", 403, "metrics does not imply read"),
        ("mtls-client", "POST", "/todo", 403, "a rule needs ALL its "
         "conditions (OU missing)"),
        ("noeku-client", "GET", "/todo", 403, "no rule matches: 403"),
    ]
    for client, method, path, want, what in cases:
        got = st(method, path, client)
        ok(got == want, "%s: %s %s -> %d (%s)" % (client, method, path, got,
                                                  what))
finally:
    t.stop()

# --- todod -n and -n -C ------------------------------------------------
todod = os.path.join(t.build, "todod")


def dry(cert):
    r = subprocess.run([todod, "-n", "-f", t.conf, "-C",
                        os.path.join(t.pki, cert + ".crt")],
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


rc, out = dry("spiffe-client")
ok(rc == 0 and "accepted" in out and
   "classes: read yes, write no, metrics no" in out and
   re.search(r"todod\.conf:\d+: allow read from san uri", out),
   "-n -C spiffe-client: accepted, read only, by the URI rule")
rc, out = dry("san-client")
ok(rc == 0 and "read yes, write yes" in out and 'method POST path "/todo"'
   in out, "-n -C san-client: both rules shown, with the method/path limit")
rc, out = dry("ops-user")
ok(rc == 0 and "read yes, write yes, metrics no" in out,
   "-n -C ops-user: read and write")
rc, out = dry("mtls-client")
ok(rc == 0 and "read no, write no, metrics yes" in out,
   "-n -C mtls-client: metrics only (the OU rule does not match)")
rc, out = dry("revoked")
ok(rc == 1 and "REJECTED: certificate revoked" in out,
   "-n -C revoked: rejected, exit 1")
rc, out = dry("intruder")
ok(rc == 1 and "REJECTED" in out, "-n -C intruder: rejected")
rc, out = dry("server-eku-only")
ok(rc == 1 and "unsuitable certificate purpose" in out,
   "-n -C server-eku-only: rejected for its purpose")
rc, out = dry("expired")
ok(rc == 1 and "expired" in out, "-n -C expired: rejected")

r = subprocess.run([todod, "-n", "-f", t.conf], capture_output=True,
                   text=True)
ok(r.returncode == 0 and r.stdout.strip() == "configuration OK",
   "-n: configuration OK")
# problems named by file
conf = open(t.conf).read()
bad = os.path.join(t.dir, "bad.conf")


def check(text):
    with open(bad, "w") as f:
        f.write(text)
    r = subprocess.run([todod, "-n", "-f", bad], capture_output=True,
                       text=True)
    return r.returncode, r.stdout + r.stderr


rc, out = check(conf.replace(os.path.join(t.pki, "localhost.key"),
                             os.path.join(t.pki, "localhost-rsa.key")))
ok(rc == 1 and "localhost-rsa.key" in out and "does not match" in out,
   "-n: a key that does not match names the key file")
os.chmod(os.path.join(t.pki, "auditor.key"), 0o644)
rc, out = check(conf.replace(os.path.join(t.pki, "localhost.key"),
                             os.path.join(t.pki, "auditor.key")))
os.chmod(os.path.join(t.pki, "auditor.key"), 0o600)
ok(rc == 1 and "auditor.key: group or world readable" in out,
   "-n: a group/world-readable key is an error")
rc, out = check(conf.replace(os.path.join(t.pki, "ca.crt"),
                             os.path.join(t.dir, "missing-ca.crt")))
ok(rc == 1 and "missing-ca.crt" in out, "-n: a missing CA names the file")
rc, out = check(conf + "\nprefork 0\n")
ok(rc == 1 and re.search(r"bad\.conf:\d+: ", out),
   "-n: a bad value names file and line")
rc, out = check(conf.replace('allow metrics from cn "mtls-client"',
                             'allow metrics from fingerprint "SHA256:ab:cd"'))
ok(rc == 1 and "fingerprint" in out, "-n: a fingerprint with colons is a "
   "configuration error")
r = subprocess.run([todod, "-n", "-f", t.conf, "-D", "port=notaport"],
                   capture_output=True, text=True)
ok(r.returncode == 1, "-D overrides a macro of the file")
t.cleanup()
done()
