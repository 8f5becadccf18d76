#!/usr/bin/env python3
"""Faults of the files and processes around the store: a second todod on the
same database or pidfile is refused and leaves the first one's pidfile
alone; a damaged database is refused at start; a database removed or
replaced while todod runs makes writes fail with 503 (logged, counted) and
loses nothing acknowledged; a stopped worker dies with its parent and the
restart binds; the keyholder survives SIGHUP."""

import os
import random
import shutil
import signal
import subprocess
import time

from todtest import (TOP, Todod, args, done, is_root, ok, pid_alive,
                     wait_until)

a = args()
TODOD = None


def launch(t, conf=None):
    """todod without -d, as an operator starts it: (rc, stderr)."""
    r = subprocess.run([TODOD, "-f", conf or t.conf], capture_output=True,
                       text=True, timeout=60, env=t.env)
    return r.returncode, r.stderr.strip()


def post(t, task):
    try:
        st, _, body = t.request("POST", "/todo", {"task": task})
    except OSError as e:
        return None, str(e)
    return st, body


def listed(t):
    st, _, body = t.request("GET", "/todo")
    return [x["task"] for x in body["todos"]] if st == 200 else None


def test_second_instance():
    t = Todod(a.build, prefork=1)
    pidfile = os.path.join(t.dir, "todod.pid")
    t.write_conf(extra='pidfile "%s"' % pidfile)
    other = None
    try:
        t.start()
        ok(wait_until(lambda: os.path.exists(pidfile) and
                      open(pidfile).read().strip() == str(t.proc.pid), 5),
           "the first todod writes its pid file")
        db = t.params["db"]
        # same database, another port and pid file
        other = Todod(a.build, prefork=1)
        other.write_conf(db=db, extra='pidfile "%s"' %
                         os.path.join(other.dir, "todod.pid"))
        rc, err = launch(other)
        want = "database %s in use by pid %d" % (db, t.proc.pid)
        ok(rc == 1 and want in err,
           "second todod on the database: exit 1, %r" % err[:160])
        ok(open(pidfile).read().strip() == str(t.proc.pid),
           "the first one's pid file is intact")
        # same pid file, another database
        other.write_conf(db=os.path.join(other.dir, "todo.db"),
                         extra='pidfile "%s"' % pidfile)
        rc, err = launch(other)
        ok(rc == 1 and "pidfile %s in use by pid %d" % (pidfile, t.proc.pid)
           in err, "second todod on the pid file: exit 1, %r" % err[:160])
        ok(os.path.exists(pidfile) and
           open(pidfile).read().strip() == str(t.proc.pid),
           "the pid file is still there and still the first one's")
        st, _ = post(t, "still mine")
        ok(st == 201, "the first todod serves on")
        t.stop()
        ok(not os.path.exists(pidfile), "its owner removes the pid file")
        # the lock went with it: the database is free again
        other.write_conf(db=db, extra="")
        other.start()
        ok(listed(other) == ["still mine"],
           "after it exits, another todod takes the database")
        other.stop()
    finally:
        t.cleanup()
        if other:
            other.cleanup()


def make_items(t, n, size):
    """n acknowledged items through the API."""
    good = 0
    c = t.conn()
    for i in range(n):
        c.request("POST", "/todo", body='{"task":"%05d %s"}' % (i, "x" * size),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        good += r.status == 201
    c.close()
    return good


def test_damaged():
    t = Todod(a.build, prefork=1)
    try:
        t.start()
        n = make_items(t, 500, 200)
        ok(n == 500, "500 items written (%d)" % n)
        t.stop()
        db = t.params["db"]
        ok(t.wait_log(r"integrity checked in [0-9.]+ s"),
           "start-up checks the database and says how long it took")
        # a copy, damaged in the middle: one b-tree page of junk
        bad = os.path.join(t.dir, "damaged.db")
        shutil.copy(db, bad)
        pages = os.path.getsize(bad) // 4096
        rnd = random.Random(12)
        with open(bad, "r+b") as f:
            f.seek((pages // 2) * 4096)
            f.write(bytes(rnd.randrange(256) for _ in range(4096)))
        t.write_conf(db=bad)
        rc, err = launch(t)
        ok(rc == 1 and "database %s is damaged" % bad in err and
           "restore it from a backup" in err and "started" not in err,
           "a damaged page (of %d) is refused at start: %r" % (pages,
                                                              err[:200]))
        # not a database at all
        with open(bad, "wb") as f:
            f.write(b"this is not a database\n" * 400)
        rc, err = launch(t)
        ok(rc == 1 and "database %s is damaged (file is not a database)" %
           bad in err, "a file that is no database is refused: %r" %
           err[:120])
        # the undamaged original still starts, with every item
        t.write_conf(db=db)
        t.start()
        ok(len(listed(t) or []) == 500, "the undamaged copy serves 500")
        t.stop()
    finally:
        t.cleanup()


def test_removed(how):
    t = Todod(a.build, prefork=2)
    try:
        t.start()
        db = t.params["db"]
        acked = []
        for i in range(5):
            st, body = post(t, "before %d" % i)
            if st == 201:
                acked.append("before %d" % i)
        ok(len(acked) == 5, "%s: five writes acknowledged" % how)
        if how == "removed":
            os.unlink(db)
        else:
            shutil.copy(db, db + ".new")
            os.rename(db + ".new", db)
        statuses = []
        for i in range(3):
            st, body = post(t, "after %d" % i)
            statuses.append(st)
            if st == 201:
                acked.append("after %d" % i)
        ok(statuses == [503, 503, 503] and
           body == {"error": "store unavailable"},
           "%s: every later POST gets 503 with a JSON error (%s, %s)" %
           (how, statuses, body))
        st, _, body = t.request("PATCH", "/todo/1", {"done": True})
        ok(st == 503, "%s: PATCH too (%s)" % (how, st))
        ok(t.wait_log(r"database %s was %s.* while in use: every write is "
                      r"refused" % (db, "removed" if how == "removed" else
                                    "replaced by another file")),
           "%s: a loud log line names the file" % how)
        m = t.metrics()
        ok(m.get("todod_store_unavailable") == 1 and
           m.get("todod_store_writes_refused_total", 0) >= 4,
           "%s: metrics todod_store_unavailable 1, writes refused %s" %
           (how, m.get("todod_store_writes_refused_total")))
        got = listed(t)
        ok(got == acked,
           "%s: every acknowledged item is still served, nothing refused "
           "appears (%s)" % (how, got))
    finally:
        t.cleanup()


def test_orphans():
    """As root the children change uid, which clears PR_SET_PDEATHSIG."""
    if not is_root():
        ok(True, "stopped worker dies with its parent # SKIP not root")
        return
    t = Todod(a.build, prefork=2)
    try:
        t.start()
        kids = t.children()
        w = t.workers()
        os.kill(w[0], signal.SIGSTOP)
        t.proc.kill()
        t.proc.wait(10)
        t.proc = None
        t.logf.close()
        ok(wait_until(lambda: not any(pid_alive(p) for p in kids), 5),
           "a SIGSTOPped worker and every other child die with the "
           "SIGKILLed parent (%s)" % [p for p in kids if pid_alive(p)])
        for p in kids:
            if pid_alive(p):
                os.kill(p, signal.SIGKILL)
        t.start(wait=False)
        ok(t.wait_log(r"parent: started", 20, since=True),
           "the restart binds the same port")
        ok(listed(t) == [], "and serves")
    finally:
        t.cleanup()


def test_keyholder_sighup():
    t = Todod(a.build, prefork=1)
    try:
        t.start()
        kh = t.keyholders()
        for p in kh:
            os.kill(p, signal.SIGHUP)
        time.sleep(0.5)
        ok(kh and all(pid_alive(p) for p in kh) and t.keyholders() == kh,
           "the keyholder survives SIGHUP sent to it")
        # a new context: a full handshake, signed by the keyholder
        try:
            st, _, _ = t.request("GET", "/todo")
        except OSError as e:
            st = str(e)
        ok(st == 200, "and still signs handshakes (%s)" % st)
        ok("killed by signal" not in t.log(), "no child died")
    finally:
        t.cleanup()


def main():
    global TODOD
    TODOD = os.path.join(TOP, a.build, "todod")
    test_second_instance()
    test_damaged()
    test_removed("removed")
    test_removed("replaced")
    test_orphans()
    test_keyholder_sighup()
    done()


if __name__ == "__main__":
    main()
