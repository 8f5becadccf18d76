#!/usr/bin/env python3
"""One validator: each misconfiguration goes through `todod -n`, a start-up
and a SIGHUP reload of a running daemon.  All three must refuse it, with the
same single message naming the file or setting; the running daemon keeps
its old configuration and keeps serving."""

import os
import re
import shutil
import signal
import subprocess
import tempfile

from todtest import Todod, args, done, free_port, is_root, ok

a = args()
t = Todod(a.build, prefork=1)
pki = os.path.join(t.dir, "pki")
shutil.copytree(t.pki, pki, symlinks=True)
t.pki = pki
t.write_conf()
t.start()
GOOD = open(t.conf).read()
TODOD = os.path.join(t.build, "todod")
P = lambda name: os.path.join(pki, name)   # noqa: E731
# root-owned, 0755 all the way: /tmp (1777) would fail every chroot case
SAFE = tempfile.mkdtemp(prefix="todod-misconfig.", dir="/var/lib") \
    if is_root() else None
if SAFE:
    os.chmod(SAFE, 0o755)


def swap(text, old, new):
    assert old in text, old
    return text.replace(old, new)


def key_copy(name, extra=b"", mode=0o600):
    with open(P("localhost.key"), "rb") as f:
        data = f.read()
    path = P(name)
    with open(path, "wb") as f:
        f.write(data + extra)
    os.chmod(path, mode)
    return path


def foreign_crl():
    """A CRL signed by another CA (the dev PKI's untrusted-ca)."""
    d = os.path.join(t.dir, "foreign-ca")
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("01\n")
    cnf = os.path.join(d, "ca.cnf")
    with open(cnf, "w") as f:
        f.write("[ca]\ndefault_ca = x\n[x]\ndatabase = %s/index.txt\n"
                "crlnumber = %s/crlnumber\ndefault_md = sha256\n"
                "default_crl_days = 30\n" % (d, d))
    subprocess.run(["openssl", "ca", "-batch", "-gencrl", "-config", cnf,
                    "-cert", P("untrusted-ca.crt"), "-keyfile",
                    P("untrusted-ca.key"), "-out", P("foreign.pem")],
                   check=True, capture_output=True)
    return P("foreign.pem")


def rsa1024():
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:1024",
                    "-nodes", "-keyout", P("rsa1024.key"), "-out",
                    P("rsa1024.crt"), "-subj", "/CN=localhost", "-days",
                    "30"], check=True, capture_output=True)
    os.chmod(P("rsa1024.key"), 0o600)
    return GOOD.replace(P("localhost.crt"), P("rsa1024.crt")).replace(
        P("localhost.key"), P("rsa1024.key"))


def write(name, text, mode=0o644):
    with open(P(name), "w") as f:
        f.write(text)
    os.chmod(P(name), mode)
    return P(name)


def jail(mode, owner=0, parent=None):
    d = os.path.join(parent or SAFE, "jail%o-%d" % (mode, owner))
    os.makedirs(d, exist_ok=True)
    os.chmod(d, mode)
    os.chown(d, owner, owner)
    return d


def conf_cert(cert, key=None):
    text = GOOD.replace(P("localhost.crt"), cert)
    return text.replace(P("localhost.key"), key) if key else text


def conf_extra(line):
    return GOOD.replace("prefork 1", "prefork 1\n" + line)


DB = t.params["db"]
# (what, make the configuration text, message regex, needs root)
CASES = [
    ("missing certificate file",
     lambda: conf_cert(P("nosuch.crt")),
     r"todod\.conf:\d+: certificate \S*nosuch\.crt: No such file", False),
    ("missing key file",
     lambda: swap(GOOD, P("localhost.key"), P("nosuch.key")),
     r"todod\.conf:\d+: key \S*nosuch\.key: No such file", False),
    ("missing client ca",
     lambda: swap(GOOD, P("ca.crt"), P("nosuch-ca.crt")),
     r"todod\.conf:\d+: client ca \S*nosuch-ca\.crt: No such file", False),
    ("missing crl",
     lambda: swap(GOOD, P("crl.pem"), P("nosuch-crl.pem")),
     r"todod\.conf:\d+: crl \S*nosuch-crl\.pem: No such file", False),
    ("certificate is a directory",
     lambda: conf_cert(pki),
     r"todod\.conf:\d+: certificate \S*pki: not a regular file", False),
    ("key readable by others",
     lambda: swap(GOOD, P("localhost.key"), key_copy("open.key",
                                                      mode=0o644)),
     r"open\.key: group or world readable \(mode 0644\): chmod 600 "
     r"\S*open\.key", False),
    ("key that does not match the certificate",
     lambda: swap(GOOD, P("localhost.key"), P("localhost-rsa.key")),
     r"localhost-rsa\.key: key does not match certificate \S*localhost\.crt",
     False),
    ("certificate and key files swapped",
     lambda: conf_cert("@KEY@", P("localhost.crt")).replace(
         "@KEY@", P("localhost.key")),
     r"certificate \S*localhost\.key: holds a private key, not a "
     r"certificate: are the certificate and key files swapped\?", False),
    ("key file over 64 KiB",
     lambda: swap(GOOD, P("localhost.key"),
                  key_copy("big.key", b"#" * 70000)),
     r"big\.key: larger than 64 KiB", False),
    ("RSA key of 1024 bits (the keyholder refuses it)",
     rsa1024, r"rsa1024\.key: RSA key of 1024 bits not supported", False),
    ("expired server certificate",
     lambda: conf_cert(P("expired.crt"), P("expired.key")),
     r"certificate \S*expired\.crt: expired on \d{4}-\d\d-\d\d .*every "
     r"client would refuse it", False),
    ("server certificate not valid yet",
     lambda: conf_cert(P("notyet.crt"), P("notyet.key")),
     r"certificate \S*notyet\.crt: not valid before \d{4}-", False),
    ("certificate file without a certificate",
     lambda: conf_cert(write("empty.crt", "nothing here\n")),
     r"certificate \S*empty\.crt: no PEM certificate", False),
    ("client ca holding no CA certificate",
     lambda: swap(GOOD, P("ca.crt"), P("mtls-client.crt")),
     r"client ca \S*mtls-client\.crt: no CA certificate in it", False),
    ("client ca holding a CRL",
     lambda: swap(GOOD, P("ca.crt"), P("crl.pem")).replace(
         'crl "%s"' % P("crl.pem"), ""),
     r"client ca \S*crl\.pem: holds a CRL, not a CA certificate", False),
    ("CRL not issued by the client CA",
     lambda: swap(GOOD, P("crl.pem"), foreign_crl()),
     r"crl \S*foreign\.pem: issued by .*untrusted.*, which is not a CA of "
     r"client ca", False),
    ("CRL file that is not a CRL",
     lambda: swap(GOOD, P("crl.pem"), write("garbage.pem",
                                            "not a crl\n")),
     r"crl \S*garbage\.pem: no PEM CRL", False),
    ("OCSP staple file that is not an OCSP response",
     lambda: swap(GOOD, 'crl "%s"' % P("crl.pem"), 'crl "%s"\n\tocsp staple '
                  '"%s"' % (P("crl.pem"), write("garbage.der",
                                                "not an OCSP response\n"))),
     r"todod\.conf:\d+: ocsp staple \S*garbage\.der: not a usable OCSP "
     r"response for the server certificate: malformed response; fetch a "
     r"new one", False),
    ("OCSP staple file that is a CRL",
     lambda: swap(GOOD, 'crl "%s"' % P("crl.pem"), 'crl "%s"\n\tocsp staple '
                  '"%s"' % (P("crl.pem"), P("crl.pem"))),
     r"todod\.conf:\d+: ocsp staple \S*crl\.pem: not a usable OCSP "
     r"response for the server certificate", False),
    ("database under a regular file",
     lambda: swap(GOOD, DB, P("ca.crt") + "/sub/todo.db"),
     r"database \S*: \S*ca\.crt is not a directory", False),
    ("pidfile in a missing directory",
     lambda: conf_extra('pidfile "/nonexistent-todod-dir/todod.pid"'),
     r"todod\.conf:\d+: pidfile /nonexistent-todod-dir/todod\.pid: its "
     r"directory does not exist", False),
    ("user that does not exist",
     lambda: conf_extra('user "nosuchuser_tdd"'),
     r"todod\.conf:\d+: user \"nosuchuser_tdd\" does not exist; create it "
     r"with: useradd", True),
    ("user root",
     lambda: conf_extra('user "root"'),
     r"user \"root\" has uid 0", True),
    ("chroot writable by group",
     lambda: conf_extra('chroot "%s"' % jail(0o775)),
     r"todod\.conf:\d+: chroot directory \S*jail775-0: writable by group "
     r"\(mode 0775\): chmod go-w", True),
    ("chroot not owned by root",
     lambda: conf_extra('chroot "%s"' % jail(0o755, 65534)),
     r"chroot directory \S*jail755-65534: owned by uid 65534, not root",
     True),
    ("chroot under a directory writable by others",
     lambda: conf_extra('chroot "%s"' % jail(0o755, 0, jail(0o1777))),
     r"component of chroot path \S*jail1777-0: writable by others "
     r"\(mode 1777\)", True),
    ("chroot whose parent directory is missing",
     lambda: conf_extra('chroot "%s/nodir/jail"' % SAFE),
     r"component of chroot path \S*nodir: No such file", True),
]


def error_lines(out):
    return [line for line in out.splitlines() if line.strip() and
            "warning" not in line and "expires on" not in line]


def dry_run(path):
    r = subprocess.run([TODOD, "-n", "-f", path], capture_output=True,
                       text=True, timeout=60, env=t.env)
    return r.returncode, r.stdout + r.stderr


def start(path, text):
    """Start a second todod on its own port and database."""
    text = re.sub(r"(?m)^port = \d+", "port = %d" % free_port(), text)
    text = text.replace(DB, os.path.join(t.dir, "start.db"))
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.Popen([TODOD, "-d", "-f", path], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=t.env)
    try:
        out, _ = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
        return "started", out
    return p.returncode, out


def reload(text):
    """SIGHUP the running daemon with text; the new log lines."""
    with open(t.conf, "w") as f:
        f.write(text)
    before = len(t.log())
    n = t.log().count("reload failed")
    t.reload()
    t.wait_log("reload failed|configuration reloaded", 20,
               count=n + 1 + t.log().count("configuration reloaded"))
    t.wait_log("reload failed", 2, count=n + 1)
    out = t.log()[before:]
    with open(t.conf, "w") as f:
        f.write(GOOD)
    return out


def message(out, rx):
    """The one line matching rx, from its first match to its end."""
    lines = [line for line in out.splitlines() if re.search(rx, line)]
    if len(lines) != 1:
        return None
    m = re.search(rx, lines[0])
    return lines[0], m


tested = 0
try:
    for what, make, rx, root in CASES:
        if root and not is_root():
            ok(True, "# SKIP %s: needs root" % what)
            continue
        text = make()
        tested += 1
        bad = os.path.join(t.dir, "bad.conf")
        with open(bad, "w") as f:
            f.write(text)
        rc, out = dry_run(bad)
        out = out.replace("bad.conf:", "todod.conf:")
        got = message(out, rx)
        errs = error_lines(out)
        ok(rc == 1 and got is not None and len(errs) == 1,
           "-n refuses %s with one line: %s" % (what, errs[:3]))
        # the text -n printed, after "todod: "
        text_n = errs[0].split(": ", 1)[1] if errs else "?"
        rc, out = start(os.path.join(t.dir, "todod.conf-start"), text)
        out = out.replace("todod.conf-start:", "todod.conf:")
        # a refused key is also in the keyholder's own (forwarded) log
        out = "\n".join(line for line in out.splitlines()
                        if not re.match(r"\S*\s*keyholder \d+: key \d+:",
                                        line))
        ok(rc == 1 and message(out, rx) is not None and
           text_n in out, "start-up refuses %s with the same message "
           "(rc %s): %s" % (what, rc, error_lines(out)[-2:]))
        out = reload(text)
        ok("reload failed: " + text_n in out,
           "SIGHUP refuses %s with the same message: %s" %
           (what, [line for line in out.splitlines()
                   if "reload failed" in line]))
    ok(tested >= 20 or not is_root(), "%d misconfigurations tried" % tested)

    st, _, _ = t.request("GET", "/todo")
    ok(st == 200, "the daemon still serves with its old configuration")
    ok(t.proc.poll() is None, "and is still running")

    # what a revoked certificate would be granted: nothing
    r = subprocess.run([TODOD, "-n", "-f", t.conf, "-C", P("revoked.crt")],
                       capture_output=True, text=True, timeout=60,
                       env=t.env)
    out = r.stdout + r.stderr
    ok(r.returncode == 1 and "REJECTED: certificate revoked" in out and
       "classes: read no, write no, metrics no" in out and
       "matched" not in out,
       "-n -C revoked: no class granted, no rule shown")
    r = subprocess.run([TODOD, "-n", "-f", t.conf, "-C",
                        P("mtls-client.crt")], capture_output=True,
                       text=True, timeout=60, env=t.env)
    ok(r.returncode == 0 and "read yes, write yes" in r.stdout,
       "-n -C mtls-client: the rules' classes")
finally:
    rc = t.stop()
    ok(rc == 0, "clean exit")
    t.cleanup()
    if SAFE:
        shutil.rmtree(SAFE, ignore_errors=True)
done()
