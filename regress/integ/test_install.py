#!/usr/bin/env python3
"""make install / uninstall into a DESTDIR; an installed todod (its own
PREFIX) that finds its keyholder in libexec and serves; the systemd unit
checked by systemd-analyze; man pages lint-clean; the rc.d script parses."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from todtest import TOP, args, done, ok, wait_until, free_port, ensure_user

a = args()
tmp = tempfile.mkdtemp(prefix="todod-install-")
os.chmod(tmp, 0o755)


def make(*targets, **vars):
    cmd = ["make", "-s", "-C", TOP] + ["%s=%s" % kv for kv in vars.items()] \
        + list(targets)
    return subprocess.run(cmd, capture_output=True, text=True)


try:
    # --- man pages ----------------------------------------------------------
    for page in ("daemon/todod.8", "daemon/todod.conf.5",
                 "certs/todod-pki.1"):
        r = subprocess.run(["mandoc", "-Tlint", "-W", "warning",
                            os.path.join(TOP, page)], capture_output=True,
                           text=True)
        ok(r.returncode == 0 and r.stdout.strip() == "",
           "mandoc -Tlint clean: %s %s" % (page, r.stdout.strip()[:200]))
    r = subprocess.run(["sh", "-n", os.path.join(TOP, "rc.d", "todod")],
                       capture_output=True)
    ok(r.returncode == 0, "rc.d/todod parses")

    # --- DESTDIR install -----------------------------------------------------
    dest = os.path.join(tmp, "dest")
    r = make("install", B=a.build, DESTDIR=dest)
    ok(r.returncode == 0, "make install DESTDIR=... (%s)" % r.stderr[-200:])
    files = {
        "usr/local/sbin/todod": 0o755,
        "usr/local/libexec/todod-keyholder": 0o755,
        "usr/local/bin/todod-pki": 0o755,
        "usr/local/share/man/man8/todod.8": 0o644,
        "usr/local/share/man/man5/todod.conf.5": 0o644,
        "usr/local/share/man/man1/todod-pki.1": 0o644,
        "usr/local/lib/systemd/system/todod.service": 0o644,
        "etc/todod.conf": 0o644,
    }
    for f, mode in files.items():
        p = os.path.join(dest, f)
        ok(os.path.exists(p) and os.stat(p).st_mode & 0o777 == mode,
           "installed %s mode %o" % (f, mode))
    conf = os.path.join(dest, "etc", "todod.conf")
    with open(conf, "a") as fp:
        fp.write("# edited by the operator\n")
    r = make("install", B=a.build, DESTDIR=dest)
    ok(r.returncode == 0 and "edited by the operator" in open(conf).read(),
       "a second install keeps the edited configuration")
    unit = os.path.join(dest, "usr/local/lib/systemd/system/todod.service")
    text = open(unit).read()
    for key in ("ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                "CapabilityBoundingSet=CAP_SETUID CAP_SETGID CAP_SYS_CHROOT",
                "RestrictAddressFamilies=", "SystemCallArchitectures=native",
                "StateDirectory=todod", "ExecReload=/usr/local/sbin/todod -n",
                "ExecReload=/bin/kill -HUP $MAINPID", "Type=notify",
                "NotifyAccess=main", "ExecStart=/usr/local/sbin/todod -d "):
        ok(key in text, "unit has %s" % key)
    # the sample configuration writes only where the unit lets it
    unitkv = dict(l.split("=", 1) for l in text.splitlines()
                  if "=" in l and not l.startswith("#"))
    sample = open(os.path.join(TOP, "etc", "todod.conf")).read()
    db = re.search(r'^database "([^"]+)"', sample, re.M)
    ok(db and os.path.dirname(db.group(1)) ==
       "/var/lib/" + unitkv.get("StateDirectory", "?"),
       "the sample database is in the unit's StateDirectory (%s)" %
       (db and db.group(1)))
    ch = re.search(r'^chroot "([^"]+)"', sample, re.M)
    ok(ch and ch.group(1) == "/run/" + unitkv.get("RuntimeDirectory", "?"),
       "the sample chroot is the unit's RuntimeDirectory (%s)" %
       (ch and ch.group(1)))
    if shutil.which("systemd-analyze"):
        check = os.path.join(tmp, "todod.service")
        with open(check, "w") as fp:
            fp.write(text.replace("/usr/local/sbin/todod",
                                  os.path.join(dest, "usr/local/sbin/todod")))
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", check],
                           capture_output=True, text=True)
        ok(r.returncode == 0, "systemd-analyze verify: %s" %
           (r.stderr.strip()[:200] or "clean"))
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                            "--man=no", check], capture_output=True,
                           text=True)
        ok(r.returncode == 0 and "Overall exposure level" in r.stdout,
           "systemd-analyze security: %s" %
           [l for l in r.stdout.splitlines() if "Overall" in l][:1])
    else:
        ok(False, "systemd-analyze is not installed")
    r = make("uninstall", B=a.build, DESTDIR=dest)
    left = [os.path.relpath(os.path.join(d, f), dest)
            for d, _, fs in os.walk(dest) for f in fs]
    ok(r.returncode == 0 and left == ["etc/todod.conf"],
       "make uninstall removes everything but the configuration (%s)" %
       left)

    # --- an installed todod in its own prefix --------------------------------
    prefix = os.path.join(tmp, "usr")
    etc = os.path.join(tmp, "etc")
    r = make("install", "-j2", B=os.path.join(tmp, "build"), PREFIX=prefix,
             SYSCONFDIR=etc)
    ok(r.returncode == 0, "make install PREFIX=%s" % prefix)
    pkidir = os.path.join(tmp, "pki")
    r = subprocess.run(["sh", os.path.join(prefix, "bin", "todod-pki"), "-d",
                        pkidir, "dev"], capture_output=True)
    ok(r.returncode == 0, "installed todod-pki makes a dev PKI")
    port = free_port()
    with open(os.path.join(etc, "todod.conf"), "w") as fp:
        fp.write("""listen on 127.0.0.1 port %d
prefork 1
database "%s/db/todo.db"
tls {
	certificate "%s/localhost.crt"
	key "%s/localhost.key"
	client ca "%s/ca.crt"
}
""" % (port, tmp, pkidir, pkidir, pkidir))
    ensure_user()
    todod = os.path.join(prefix, "sbin", "todod")
    r = subprocess.run([todod, "-n"], capture_output=True, text=True)
    ok(r.returncode == 0 and "configuration OK" in r.stdout,
       "installed todod -n reads %s/todod.conf by default" % etc)
    env = dict(os.environ)
    if os.environ.get("TODOD_ASAN") == "1":
        env["TODOD_SANDBOX_DISABLE"] = "1"
    log = open(os.path.join(tmp, "todod.log"), "wb")
    p = subprocess.Popen([todod, "-d"], stdout=log, stderr=log, env=env)
    started = wait_until(lambda: b"parent: started" in
                         open(log.name, "rb").read(), 20)
    ok(started, "the installed todod starts")
    exes = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                exes.append(os.readlink("/proc/%s/exe" % pid))
            except OSError:
                pass
    ok(os.path.join(prefix, "libexec", "todod-keyholder") in exes,
       "it runs the keyholder from its libexec")
    r = subprocess.run(["curl", "-sS", "--cacert", pkidir + "/ca.crt",
                        "--cert", pkidir + "/mtls-client.crt", "--key",
                        pkidir + "/mtls-client.key", "-d",
                        '{"task":"installed"}', "-H",
                        "Content-Type: application/json",
                        "https://127.0.0.1:%d/todo" % port],
                       capture_output=True, text=True, timeout=20)
    ok('"task":"installed"' in r.stdout, "and serves curl")
    p.send_signal(signal.SIGTERM)
    ok(p.wait(30) == 0, "and stops cleanly")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
done()
