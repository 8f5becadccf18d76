#!/usr/bin/env python3
"""Keys in a PKCS#11 token: a SoftHSM2 token made in a temporary directory
holds the EC P-256 and RSA-2048 keys of the dev PKI's localhost
certificates (imported, then used only through the token).  todod -n
checks the token key against the certificate; the daemon serves TLS 1.2
and 1.3 to Python, curl and openssl s_client; no todod parent or worker
holds the key; a wrong PIN, a key missing from the token and a PIN file
readable by others are refused with the setting named; a token that goes
away fails handshakes, and they succeed again when it returns; a reload
rotates to another token key."""

import os
import shutil
import subprocess
import tempfile
import time

from todtest import (Todod, args, done, key_secrets, ok, scan_memory,
                     wait_until)

a = args()
MODULE = "/usr/lib/softhsm/libsofthsm2.so"
URI = "pkcs11:token=todod;object=%s;type=private"
REQ = b"GET /todo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def sh(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def make_token(pki):
    """A token "todod" with both keys; returns (dir, env)."""
    d = tempfile.mkdtemp(prefix="todod-p11-")
    os.chmod(d, 0o755)
    os.mkdir(os.path.join(d, "tokens"))
    conf = os.path.join(d, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s/tokens\n"
                "objectstore.backend = file\nlog.level = ERROR\n" % d)
    env = dict(os.environ, SOFTHSM2_CONF=conf)
    r = sh("softhsm2-util", "--init-token", "--free", "--label", "todod",
           "--pin", "1234", "--so-pin", "5678", env=env)
    good = r.returncode == 0
    for name, kid in (("localhost", "11"), ("localhost-rsa", "12")):
        p8 = os.path.join(d, name + ".p8")
        good &= sh("openssl", "pkcs8", "-topk8", "-nocrypt", "-in",
                   os.path.join(pki, name + ".key"), "-out",
                   p8).returncode == 0
        good &= sh("softhsm2-util", "--import", p8, "--token", "todod",
                   "--label", name, "--id", kid, "--pin", "1234",
                   env=env).returncode == 0
        os.unlink(p8)
    for name, pin, mode in (("pin", "1234\n", 0o600),
                            ("badpin", "9999\n", 0o600),
                            ("openpin", "1234\n", 0o644)):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(pin)
        os.chmod(path, mode)
    # The keyholder runs as the todod user: the token files are its.
    if os.geteuid() == 0:
        shutil.chown(os.path.join(d, "tokens"), "_todod")
        for root, dirs, files in os.walk(os.path.join(d, "tokens")):
            for n in dirs + files:
                shutil.chown(os.path.join(root, n), "_todod")
    ok(good, "SoftHSM token with the P-256 and RSA-2048 keys in %s" % d)
    return d, env


def p11_conf(d, obj, pin="pin"):
    return dict(key=URI % obj,
                tlsextra='pin "%s/%s"\n\tpkcs11 module "%s"' %
                (d, pin, MODULE))


def dry_run(t):
    r = sh(os.path.join(t.build, "todod"), "-n", "-f", t.conf, env=t.env)
    return r.returncode, r.stdout + r.stderr


def handshakes(t, server):
    for v in ("1.2", "1.3"):
        st, _, _ = t.request("GET", "/todo", version=v)
        ok(st == 200, "%s in the token: Python TLS %s handshake, GET 200" %
           (server, v))
    for v in ("--tlsv1.2", "--tlsv1.3"):
        r = t.curl(v, "--tls-max", v[6:], "-o", "/dev/null", "-w",
                   "%{http_code}", t.url())
        ok(r.stdout == b"200", "%s: curl %s: %s %s" %
           (server, v, r.stdout.decode(), r.stderr.decode().strip()[:80]))
    for v in ("-tls1_2", "-tls1_3"):
        r = t.s_client(extra=(v,), data=REQ)
        out = r.stdout.decode(errors="replace")
        ok(r.returncode == 0 and "Verify return code: 0 (ok)" in out,
           "%s: openssl s_client %s verifies the server" % (server, v))


def no_key_in_daemon(t, server):
    needles = key_secrets(os.path.join(t.pki, server + ".key"))
    for pid, role in [(t.proc.pid, "parent")] + \
            [(w, "worker") for w in t.workers()]:
        found = scan_memory(pid, needles)
        ok(not found, "%s: no key material in the %s (pid %d)%s" %
           (server, role, pid, ": " + ", ".join(sorted(found))
            if found else ""))
    # Control: the scan finds the key where it is in the clear.  SoftHSM
    # keeps it encrypted under the token key even in the keyholder.
    pem = open(os.path.join(t.pki, server + ".key")).read()
    found = scan_memory(os.getpid(), needles)
    ok(found and pem, "%s: control: the same scan finds the key file's "
       "text in this test's memory (%s)" % (server, ", ".join(sorted(found))))


def refusals(d, env):
    t = Todod(a.build, server="localhost", env=env, **p11_conf(d, "rsa"))
    try:
        for what, kw, expect in [
                ("a key missing from the token", p11_conf(d, "nothere"),
                 "no single private key"),
                ("a wrong PIN", p11_conf(d, "localhost", "badpin"),
                 "wrong PIN"),
                ("a PIN file others can read",
                 p11_conf(d, "localhost", "openpin"),
                 "group or world readable"),
                ("a key that does not match the certificate",
                 p11_conf(d, "localhost-rsa"), "does not match"),
                ("a PIN in the URI",
                 dict(key=URI % "localhost" + "?pin-value=1234",
                      tlsextra='pkcs11 module "%s"' % MODULE),
                 "pin-value is not allowed")]:
            t.write_conf(**kw)
            rc, out = dry_run(t)
            ok(rc != 0 and expect in out, "-n refuses %s: %s" %
               (what, out.strip().splitlines()[-1] if out.strip() else ""))
    finally:
        t.cleanup()


def token_loss(t, d):
    """The token's files go away (a token pulled out), then return."""
    tok = os.path.join(d, "tokens")
    os.rename(tok, tok + ".away")
    try:
        try:
            st, _, _ = t.request("GET", "/todo", version="1.3")
        except OSError:
            st = 0
        ok(st != 200, "token gone: the handshake fails (status %s)" % st)
    finally:
        os.rename(tok + ".away", tok)
    def serves():
        try:
            # Several, so that both workers' keyholders have recovered.
            return all(t.request("GET", "/todo", version="1.3")[0] == 200
                       for i in range(8))
        except OSError:
            return False
    # The keyholder initialises the module again at most once a second.
    ok(wait_until(serves, 5), "token back: handshakes succeed again, "
       "no reload")


def main():
    if not os.path.exists(MODULE) or shutil.which("softhsm2-util") is None:
        ok(False, "softhsm2 is needed (make deps)")
        return
    t0 = Todod(a.build)
    d, env = make_token(t0.pki)
    t0.cleanup()
    refusals(d, env)
    t = Todod(a.build, server="localhost", env=env,
              **p11_conf(d, "localhost"))
    rc, out = dry_run(t)
    ok(rc == 0 and "configuration OK" in out,
       "-n: the token holds the key and it matches the certificate")
    t.start()
    try:
        handshakes(t, "localhost")
        if os.geteuid() == 0:
            no_key_in_daemon(t, "localhost")
        token_loss(t, d)
        # Rotation: another certificate, its key in the same token.
        t.write_conf(server="localhost-rsa", **p11_conf(d, "localhost-rsa"))
        t.reload()
        ok(wait_until(lambda: b"Server public key is 2048 bit" in
                      t.s_client(extra=("-tls1_3",), data=REQ).stdout, 10),
           "SIGHUP: the server now signs with the RSA key in the token")
        handshakes(t, "localhost-rsa")
        if os.geteuid() == 0:
            no_key_in_daemon(t, "localhost-rsa")
    finally:
        t.stop()
        t.cleanup()
        shutil.rmtree(d, ignore_errors=True)


main()
done()
