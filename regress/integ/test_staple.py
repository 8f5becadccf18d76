#!/usr/bin/env python3
"""OCSP stapling against the real `openssl ocsp` responder on loopback and
the real `openssl s_client -status`: a staple file and `ocsp staple auto`
are seen by the client; bad staple files (another certificate, garbage, a
revoked certificate, a signer the CA did not delegate to, expired) are
refused by -n, start-up and reload with one message; in auto mode the
staple is refreshed and pushed to the workers without a reload, a
responder that is down leaves the daemon serving with the last good staple
and a warning, and a staple past its nextUpdate is no longer sent."""

import os
import re
import subprocess
import time

from todtest import (OcspResponder, Todod, args, done, ok, wait_until)

a = args()
t = Todod(a.build, prefork=2)
PKI = t.private_pki()
pki = t.pki
P = lambda name: os.path.join(pki, name)   # noqa: E731
TODOD = os.path.join(t.build, "todod")
# a set made before the delegated responder existed gets it now
subprocess.run(PKI + ["dev"], check=True, capture_output=True)

# answers valid for a minute: refreshed at 30 s, expired at 60 s
r = OcspResponder(pki, nmin=1)
SAN = "DNS:localhost,IP:127.0.0.1"
for name in ("stapled", "stapled-rev"):
    subprocess.run(PKI + ["server", name, "--san", SAN, "--ocsp-url",
                          r.url], check=True, capture_output=True)
subprocess.run(PKI + ["server", "noaia", "--san", SAN], check=True,
               capture_output=True)


def respout(cert, out, url=None):
    """A staple fetched with the real openssl ocsp client."""
    res = subprocess.run(["openssl", "ocsp", "-issuer", P("ca.crt"),
                          "-cert", P(cert + ".crt"), "-url", url or r.url,
                          "-no_nonce", "-noverify", "-respout", out],
                         capture_output=True, text=True, timeout=30)
    return res.returncode == 0 and os.path.getsize(out) > 0


def status(client="mtls-client"):
    """What openssl s_client -status sees of the staple: its text."""
    res = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % t.port,
         "-CAfile", P("ca.crt"), "-servername", "localhost",
         "-verify_return_error", "-status", "-cert", P(client + ".crt"),
         "-key", P(client + ".key")],
        input=b"GET /todo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=30)
    return res.stdout.decode("utf-8", "replace")


def stapled(out):
    return "OCSP Response Status: successful" in out and \
        "Cert Status: good" in out


def this_update(out):
    m = re.search(r"This Update: (.*)", out)
    return m.group(1).strip() if m else None


def dry_run(conf):
    res = subprocess.run([TODOD, "-n", "-f", conf], capture_output=True,
                         text=True, timeout=60, env=t.env)
    return res.returncode, res.stdout + res.stderr


STAPLE = os.path.join(t.dir, "staple.der")
ok(respout("stapled", STAPLE), "openssl ocsp fetched a staple for stapled")
# fetched now, expired in a minute: tried at the end
EARLY = os.path.join(t.dir, "early.der")
respout("stapled", EARLY)
T0 = time.monotonic()

# -- file mode ------------------------------------------------------------
t.write_conf(server="stapled", tlsextra='ocsp staple "%s"' % STAPLE)
rc, out = dry_run(t.conf)
ok(rc == 0, "-n accepts a good staple file: %s" % out.strip()[-200:])
t.start()
out = status()
ok(stapled(out), "s_client -status sees the stapled response (file)")
ok("Responder Id: O = todod, CN = todod dev CA" in out or
   "todod dev CA" in out, "signed by the CA")
wait_until(lambda: "todod_ocsp_staple_age_seconds" in t.metrics(), 5)
m = t.metrics()
ok(0 <= m.get("todod_ocsp_staple_age_seconds", -1) < 120,
   "metrics: staple age %s" % m.get("todod_ocsp_staple_age_seconds"))
ok(0 < m.get("todod_ocsp_staple_next_update_seconds", -1) <= 60,
   "metrics: staple next update in %s s" %
   m.get("todod_ocsp_staple_next_update_seconds"))

# the bad ones: (what, make the file, message regex)
subprocess.run(PKI + ["revoke", "stapled-rev"], check=True,
               capture_output=True)
mis = OcspResponder(pki, signer="mtls-client", nmin=1)
BAD = []


def bad(name, what, rx, make):
    path = os.path.join(t.dir, name)
    make(path)
    BAD.append((what, path, rx))


bad("other.der", "a staple for another certificate", "no status for this "
    "certificate", lambda p: respout("mtls-client", p))
bad("garbage.der", "garbage", "malformed response",
    lambda p: open(p, "wb").write(os.urandom(300)))
bad("empty.der", "an empty file", "empty|malformed|out of bounds",
    lambda p: open(p, "wb").close())
bad("forged.der", "a staple signed by a certificate the CA did not "
    "delegate to", "not signed by",
    lambda p: respout("stapled", p, url=mis.url))


def rev_staple(p):
    # the server certificate stapled-rev, revoked: configured with it
    respout("stapled-rev", p)


bad("revoked.der", "a staple saying the certificate is revoked",
    "REVOKED", rev_staple)
mis.cleanup()

GOODCONF = open(t.conf).read()
reloads = 0
for what, path, rx in BAD:
    text = GOODCONF.replace(STAPLE, path)
    if what.startswith("a staple saying"):
        text = text.replace(P("stapled.crt"), P("stapled-rev.crt")).replace(
            P("stapled.key"), P("stapled-rev.key"))
    bconf = os.path.join(t.dir, "bad.conf")
    with open(bconf, "w") as f:
        f.write(text)
    rc, out = dry_run(bconf)
    lines = [ln for ln in out.splitlines() if ln.strip() and
             "warning" not in ln]
    full = r"bad\.conf:\d+: ocsp staple \S+: not a usable OCSP response " \
        r"for the server certificate: .*(%s).*; fetch a new one" % rx
    ok(rc == 1 and len(lines) == 1 and re.search(full, lines[0]),
       "-n refuses %s with one line: %s" % (what, lines[:2]))
    msg = lines[0].split(": ", 1)[1] if lines else "?"
    res = subprocess.run([TODOD, "-d", "-f", bconf], capture_output=True,
                         text=True, timeout=60, env=t.env)
    ok(res.returncode == 1 and msg in res.stdout + res.stderr,
       "start-up refuses %s with the same message" % what)
    with open(t.conf, "w") as f:
        f.write(text.replace(bconf, t.conf))
    t.reload()
    reloads += 1
    ok(t.wait_log(r"reload failed: .*" + re.escape(msg.split(": ", 1)[1]),
                  10), "SIGHUP refuses %s with the same message" % what)
with open(t.conf, "w") as f:
    f.write(GOODCONF)
ok(stapled(status()), "after the refused reloads: still stapling")
ok(t.request("GET", "/todo")[0] == 200, "and serving")
ok(t.stop() == 0 and "Sanitizer" not in t.log(),
   "file mode: a clean exit")

# -- auto mode ------------------------------------------------------------
t.write_conf(server="noaia", tlsextra="ocsp staple auto")
rc, out = dry_run(t.conf)
ok(rc == 1 and re.search(r"todod\.conf:\d+: ocsp staple auto: the server "
                         r"certificate names no http:// OCSP responder .*"
                         r"set ocsp url", out),
   "-n: auto without a responder to ask: %s" % out.strip()[-160:])
t.write_conf(server="noaia", tlsextra='ocsp url "%s"' % r.url)
rc, out = dry_run(t.conf)
ok(rc == 1 and "ocsp url is where ocsp staple auto fetches from" in out,
   "-n: ocsp url without ocsp staple auto")

r.reset()
t.write_conf(server="stapled", tlsextra="ocsp staple auto")
rc, out = dry_run(t.conf)
ok(rc == 0 and r.count == 0, "-n accepts auto and asks no responder")
t.start()
ok(t.wait_log(r"OCSP staple from %s: good" % re.escape(r.url), 20),
   "auto: fetched from the certificate's AIA responder")
out = status()
ok(stapled(out), "s_client -status sees the fetched staple (auto)")
first = this_update(out)

# ocsp url: a responder the CA delegated to, asked at once on reload
d = OcspResponder(pki, signer="ocsp-responder", nmin=1)
t.write_conf(server="stapled",
             tlsextra='ocsp staple auto\n\tocsp url "%s"' % d.url)
t.reload()
ok(t.wait_log(r"OCSP staple from %s: good" % re.escape(d.url), 20),
   "reload with ocsp url: the delegated responder is asked at once")
ok(wait_until(lambda: "ocsp-responder" in status(), 10),
   "its staple (signed by the delegated responder) is served")
n_reloads = len(re.findall("configuration reloaded", t.log()))

# refreshed at half its validity, pushed without a reload
c0 = d.count
ok(wait_until(lambda: d.count > c0, 45),
   "refreshed at half its validity (%d fetches)" % d.count)
time.sleep(1)
out = status()
ok(stapled(out) and this_update(out) != first,
   "the workers staple the new response (This Update %s)" %
   this_update(out))
ok(len(re.findall("configuration reloaded", t.log())) == n_reloads,
   "without a reload")

# the responder down: the last good staple stays, with a warning
d.stop()
ok(t.wait_log(r"OCSP staple from %s: .*keeping the staple of" %
              re.escape(d.url), 45), "responder down: a warning, the "
   "staple kept")
ok(stapled(status()), "responder down: still stapled")
ok(t.request("GET", "/todo")[0] == 200, "responder down: still serving")
m = t.metrics()
ok(m.get('todod_ocsp_staple_fetches_total{result="failed"}', 0) >= 1 and
   m.get('todod_ocsp_staple_fetches_total{result="ok"}', 0) >= 2,
   "metrics: fetches by result (%s ok, %s failed)" %
   (m.get('todod_ocsp_staple_fetches_total{result="ok"}'),
    m.get('todod_ocsp_staple_fetches_total{result="failed"}')))
# back up: the next retry gets a new one
d.start()
ok(t.wait_log(r"OCSP staple from %s: good" % re.escape(d.url), 30,
              count=3), "responder back: a new staple")
# down for good: once the nextUpdate passes, no staple is sent
d.stop()
ok(t.wait_log(r"OCSP staple expired .* no longer stapled", 75),
   "responder down past nextUpdate: the expired staple is dropped")
out = status()
ok("OCSP response: no response sent" in out, "no staple sent any more")
ok(t.request("GET", "/todo")[0] == 200, "and the daemon still serves")
ok("todod_ocsp_staple_age_seconds" not in t.metrics(),
   "metrics: no staple age without a staple")
ok(t.stop() == 0 and "Sanitizer" not in t.log(),
   "auto mode: a clean exit (the fetch state freed)")
d.cleanup()

# the staple fetched at the start has expired by now
left = 62 - (time.monotonic() - T0)
if left > 0:
    time.sleep(left)
t.write_conf(server="stapled", tlsextra='ocsp staple "%s"' % EARLY)
rc, out = dry_run(t.conf)
ok(rc == 1 and re.search(r"ocsp staple \S*early\.der: not a usable OCSP "
                         r"response .*expired", out),
   "-n refuses an expired staple: %s" % out.strip()[-200:])
r.cleanup()
t.cleanup()
done()
