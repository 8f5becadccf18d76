#!/usr/bin/env python3
"""What operators expect of a daemon: -V and -h, the version in the log and
in /metrics, the systemd notification protocol (READY=1 once it serves,
RELOADING=1 then READY=1 around a reload, STOPPING=1) heard on a real unix
datagram socket, and UTC time stamps on foreground log lines unless stderr
is the journal."""

import os
import re
import socket
import subprocess
import time

from todtest import Todod, TOP, args, done, ok

a = args()
todod = os.path.join(TOP, a.build, "todod")


def listener(name):
    """A datagram socket standing in for systemd's notify socket."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(name)
    return s


def hear(s, want, timeout=20):
    """Messages up to and including the first one that has want, or None."""
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s.settimeout(max(0.05, end - time.monotonic()))
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        got.append(msg)
        if want in msg.split("\n"):
            return got
    return None


# --- -V and -h ---------------------------------------------------------------
r = subprocess.run([todod, "-V"], capture_output=True, text=True)
ok(r.returncode == 0 and re.match(r"^todod \d+\.\d+", r.stdout),
   "todod -V prints the version (%s)" % r.stdout.strip())
version = r.stdout.split()[1] if r.returncode == 0 else "?"
r = subprocess.run([todod, "-h"], capture_output=True, text=True)
ok(r.returncode == 0 and r.stdout.startswith("usage: todod") and
   r.stderr == "", "todod -h prints the usage on stdout and exits 0")
r = subprocess.run([todod, "-Z"], capture_output=True, text=True)
ok(r.returncode == 1 and "usage: todod" in r.stderr,
   "a bad option prints the usage on stderr and exits 1")

# --- the notification protocol, path socket --------------------------------
t = Todod(a.build, prefork=2)
sock_path = os.path.join(t.dir, "notify")
ln = listener(sock_path)
t.env["NOTIFY_SOCKET"] = sock_path
try:
    t.start(wait=False)
    got = hear(ln, "READY=1")
    ok(got is not None, "READY=1 at start-up (%s)" % got)
    # READY=1 means serving: a request right now succeeds
    st, _, _ = t.request("GET", "/todo")
    ok(st == 200, "READY=1 came once it serves (GET /todo %s)" % st)
    ok(len(t.workers()) == 2 and len(t.keyholders()) >= 1,
       "and its workers and keyholders are up")
    ok(t.wait_log(r"parent: started, version %s" % re.escape(version), 5),
       "the start-up log line names the version")
    leaked = []
    for pid in t.children():
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if b"NOTIFY_SOCKET=" in f.read():
                    leaked.append(pid)
        except OSError:
            pass
    ok(not leaked, "children do not inherit NOTIFY_SOCKET (%s)" % leaked)
    m = t.metrics()
    ok(m.get('todod_build_info{version="%s"}' % version) == 1,
       "/metrics has todod_build_info{version=\"%s\"} 1" % version)

    t.reload()
    got = hear(ln, "READY=1")
    ok(got is not None and "RELOADING=1" in got[0].split("\n"),
       "SIGHUP: RELOADING=1, then READY=1 (%s)" % got)
    ok(got is not None and re.search(r"^MONOTONIC_USEC=\d+$", got[0], re.M),
       "RELOADING=1 carries MONOTONIC_USEC")
    ok(t.wait_log(r"configuration reloaded", 10), "the reload succeeded")

    # a reload that fails still ends with READY=1: the old config serves
    with open(t.conf, "a") as f:
        f.write("this is not todod.conf\n")
    t.reload()
    got = hear(ln, "READY=1")
    ok(got is not None and "RELOADING=1" in got[0].split("\n") and
       t.wait_log(r"reload failed", 10),
       "a failed reload: RELOADING=1, reload failed, READY=1")
    t.write_conf()

    t.proc.send_signal(15)
    got = hear(ln, "STOPPING=1")
    ok(got is not None, "SIGTERM: STOPPING=1 (%s)" % got)
    ok(t.stop() == 0, "and exits 0")

    # foreground log lines: UTC time first
    line = [l for l in t.log().splitlines() if "parent: started" in l][:1]
    ok(line and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ parent: ",
                         line[0]),
       "foreground log lines start with the UTC time (%s)" % line)
finally:
    t.cleanup()
    ln.close()

# --- an abstract socket name, and stderr as the journal ---------------------
t = Todod(a.build, prefork=1)
name = "@todod-test-%d" % os.getpid()
ln = listener("\0" + name[1:])
t.env["NOTIFY_SOCKET"] = name
try:
    # the log file is the daemon's stderr: call it the journal stream
    open(t.logfile, "ab").close()
    st = os.stat(t.logfile)
    t.env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    t.start(wait=False)
    got = hear(ln, "READY=1")
    ok(got is not None, "READY=1 on an abstract socket %s" % name)
    ok(t.wait_log(r"parent: started", 10), "started")
    lines = [l for l in t.log().splitlines() if "started" in l]
    ok(lines and not re.match(r"^\d{4}-", lines[0]),
       "stderr is the journal: no time stamp (%s)" % lines[:1])
    ok(t.stop() == 0, "stops")
finally:
    t.cleanup()
    ln.close()

# --- a bad NOTIFY_SOCKET is reported, not fatal ------------------------------
t = Todod(a.build, prefork=1)
t.env["NOTIFY_SOCKET"] = os.path.join(t.dir, "nobody-listens")
try:
    t.start()
    ok(t.wait_log(r"NOTIFY_SOCKET .*nobody-listens", 10),
       "a NOTIFY_SOCKET nobody listens on is logged, todod serves on")
    ok(t.request("GET", "/todo")[0] == 200, "and serves")
finally:
    t.cleanup()
done()
