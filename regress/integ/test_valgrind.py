#!/usr/bin/env python3
"""Valgrind memcheck on a short daemon run: the parent, the workers and the
keyholder under memcheck (build/vg: the relaxed sandbox build, whose
seccomp filter valgrind's own system calls would not survive), some real
traffic including failures, a reload, then SIGTERM.  Every process must
report no errors and no definitely lost memory."""

import glob
import os
import re
import shutil
import signal
import subprocess
import sys

from todtest import TOP, Todod, args, done, ok, wait_until

a = args()
# TODOD_VGBUILD: another relaxed build tree (e.g. one built beside a
# running make check) in place of build/vg.
vgbuild = os.environ.get("TODOD_VGBUILD", "build/vg")
# where the valgrind logs are kept when a check fails: the daemon's own
# directory is removed at the end, and a CI failure must stay diagnosable.
keepdir = os.path.join(TOP, vgbuild, "vg-logs")
if not os.path.exists(os.path.join(TOP, vgbuild, "todod")) or \
        not shutil.which("valgrind"):
    ok(False, "needs valgrind and %s (make check builds it)" % vgbuild)
    done()

t = Todod(vgbuild, prefork=1, ths=60, treq=60,
          env={"TODOD_SANDBOX_DISABLE": "1"})
logdir = os.path.join(t.dir, "vg")
os.mkdir(logdir)
os.chmod(logdir, 0o1777)
todod = os.path.join(t.build, "todod")
t.proc = None
t.logf = open(t.logfile, "ab")
t.logmark = 0
cmd = ["valgrind", "--quiet", "--trace-children=yes",
       "--trace-children-skip=*/curl,*/openssl",
       "--leak-check=full", "--errors-for-leak-kinds=definite",
       "--show-leak-kinds=definite", "--child-silent-after-fork=yes",
       "--log-file=" + os.path.join(logdir, "vg.%p.log"),
       todod, "-d", "-f", t.conf]
t.proc = subprocess.Popen(cmd, stdout=t.logf, stderr=subprocess.STDOUT,
                          env=t.env)


def traffic():
    """Requests good and bad, a refused client, metrics, a reload."""
    st, h, b = t.request("POST", "/todo", {"task": "under valgrind"})
    ok(st == 201, "POST answered")
    st, h, b = t.request("GET", "/todo")
    ok(st == 200 and b["todos"], "GET answered")
    st, h, b = t.request("PATCH", "/todo/%d" % b["todos"][0]["id"],
                         {"done": True})
    ok(st == 200, "PATCH answered")
    st, h, b = t.request("POST", "/todo", b'{"task":', )
    ok(st == 400, "bad JSON answered")
    try:
        t.request("GET", "/todo", client="revoked")
        refused = False
    except OSError:
        refused = True
    ok(refused, "a revoked client is refused")
    st, h, b = t.request("GET", "/metrics")
    ok(st == 200, "metrics answered")
    n = t.log().count("configuration reloaded")
    t.reload()
    ok(t.wait_log("configuration reloaded", 120, count=n + 1),
       "a reload under valgrind")
    st, h, b = t.request("GET", "/todo")
    ok(st == 200, "served after the reload")


try:
    # a daemon that gave up (a child too slow to start, say) ends the wait
    wait_until(lambda: "parent: started" in t.log() or
               t.proc.poll() is not None, 180)
    if ok("parent: started" in t.log() and t.proc.poll() is None,
          "todod starts under valgrind"):
        try:
            traffic()
        except (OSError, ValueError, KeyError, TypeError) as e:
            # the memcheck logs below are checked all the same
            ok(False, "traffic under valgrind: %r" % e)
    else:
        for line in t.log().splitlines()[-15:]:
            print("# " + line, flush=True)
finally:
    rc = t.stop(timeout=180)
ok(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
logs = sorted(glob.glob(os.path.join(logdir, "vg.*.log")))
ok(len(logs) >= 3, "valgrind logs from parent, worker and keyholder (%d)" %
   len(logs))


def first_block(text):
    """The first error report of a valgrind log: its lines from the first
    error up to the blank "==pid== " line that ends it."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if ERR.match(line):
            block = []
            for more in lines[i:i + 40]:
                if block and re.match(r"^==\d+== ?$", more):
                    break
                block.append(more)
            return block
    return []


ERR = re.compile(r"^==\d+== (Invalid .*|Conditional jump.*|"
                 r"Use of uninitialised.*|Syscall param.*|"
                 r"Mismatched free.*|.*definitely lost in.*)$")
shutil.rmtree(keepdir, ignore_errors=True)
kept = False
for path in logs:
    text = open(path, errors="replace").read()
    name = os.path.basename(path)
    bad = [m.group(1) for m in map(ERR.match, text.splitlines()) if m]
    ok(not bad, "%s: no memcheck errors%s" %
       (name, ": " + "; ".join(bad[:3]) if bad else ""))
    if bad:
        for line in first_block(text):
            print("# " + line, flush=True)
        os.makedirs(keepdir, exist_ok=True)
        shutil.copy(path, keepdir)
        kept = True
if kept:
    print("# valgrind logs kept in %s" % keepdir, flush=True)
t.cleanup()
done()
