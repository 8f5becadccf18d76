#!/usr/bin/env python3
"""todod without -d: it detaches, the command returns 0 once it serves (or
1 with a one-line reason naming the file or setting), it writes its pid
file, and SIGTERM through the pid file stops everything."""

import os
import signal
import socket
import subprocess
import time

from todtest import Todod, args, done, is_root, ok, pid_alive, wait_until

a = args()
t = Todod(a.build)
pidfile = os.path.join(t.dir, "todod.pid")
t.write_conf(extra='pidfile "%s"' % pidfile)
todod = os.path.join(t.build, "todod")


def launch(conf=None):
    start = time.monotonic()
    r = subprocess.run([todod, "-f", conf or t.conf], capture_output=True,
                       text=True, timeout=30, env=t.env)
    return r, time.monotonic() - start


try:
    r, took = launch()
    ok(r.returncode == 0 and r.stderr == "",
       "todod detaches and returns 0 when it serves (%.1f s)" % took)
    ok(wait_until(lambda: os.path.exists(pidfile), 5), "pid file written")
    pid = int(open(pidfile).read())
    ok(pid_alive(pid), "the pid in the file is running")
    with open("/proc/%d/stat" % pid) as f:
        st = f.read()
    ok(int(st[st.rindex(")") + 2:].split()[3]) == pid,
       "it leads its own session")
    st_, h, b = t.request("GET", "/todo")
    ok(st_ == 200, "and serves")
    # a second instance on the same port (its own database and pid file:
    # the same ones are refused before the port is tried)
    other = os.path.join(t.dir, "other.conf")
    with open(other, "w") as f:
        f.write(open(t.conf).read().replace(
            t.params["db"], os.path.join(t.dir, "other.db")).replace(
            pidfile, os.path.join(t.dir, "other.pid")))
    r, took = launch(other)
    ok(r.returncode == 1 and "listen on 127.0.0.1:%d" % t.port in r.stderr
       and "Address already in use" in r.stderr,
       "port in use: exit 1, one line naming the address: %s" %
       r.stderr.strip())
    os.kill(pid, signal.SIGTERM)
    ok(wait_until(lambda: not pid_alive(pid), 20), "SIGTERM stops it")
    ok(not os.path.exists(pidfile), "and removes the pid file")

    # startup errors, each on one line naming the file or setting
    bad = os.path.join(t.dir, "bad.conf")
    conf = open(t.conf).read()
    cases = [
        (conf.replace(os.path.join(t.pki, "localhost.key"),
                      os.path.join(t.pki, "nope.key")), "nope.key",
         "missing key file"),
        (conf.replace(os.path.join(t.pki, "localhost.key"),
                      os.path.join(t.pki, "localhost-rsa.key")),
         "localhost-rsa.key: key does not match certificate",
         "key not matching"),
        (conf + "\nbogus keyword\n", "bad.conf:", "syntax error"),
    ]
    if is_root():
        cases.append((conf + '\nuser "no-such-user-xyz"\n',
                      'user "no-such-user-xyz" does not exist',
                      "unknown user"))
    for text, want, what in cases:
        with open(bad, "w") as f:
            f.write(text)
        r, took = launch(bad)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        ok(r.returncode == 1 and want in r.stderr and len(lines) <= 2,
           "%s: exit 1 with %r" % (what, r.stderr.strip()[:120]))
    os.chmod(os.path.join(t.pki, "ops-user.key"), 0o640)
    with open(bad, "w") as f:
        f.write(conf.replace(os.path.join(t.pki, "localhost.key"),
                             os.path.join(t.pki, "ops-user.key")))
    r, took = launch(bad)
    os.chmod(os.path.join(t.pki, "ops-user.key"), 0o600)
    ok(r.returncode == 1 and "ops-user.key: group or world readable" in
       r.stderr, "readable key: exit 1 (%s)" % r.stderr.strip()[:100])
finally:
    if os.path.exists(pidfile):
        try:
            os.kill(int(open(pidfile).read()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
    t.cleanup()
done()
