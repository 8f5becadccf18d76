#!/usr/bin/env python3
"""todod on a real PostgreSQL 15 that the test starts (initdb in a temporary
directory, a Unix socket, as nobody when run as root): the URI and start-up
checks, every API test against it, kill -9 durability, the database
restarted and frozen during writes.  The server runs with
synchronous_commit=off so that todod's own setting is what counts."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

from todtest import TOP, Postgres, Todod, args, done, ok, wait_until

a = args()


def dryrun(t):
    return subprocess.run([os.path.join(t.build, "todod"), "-n", "-f",
                           t.conf], capture_output=True, text=True,
                          timeout=30)


def start_fails(t, pattern):
    t.start(expect_fail=True)
    try:
        rc = t.proc.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    t.stop()
    return rc == 1 and re.search(pattern, t.log()) is not None


def api_tests(uri):
    """test_api.py, whole, against a todod on this database."""
    env = dict(os.environ, TODOD_TEST_DATABASE=uri)
    r = subprocess.run([sys.executable,
                        os.path.join(TOP, "regress", "integ", "test_api.py"),
                        "--build", a.build], capture_output=True, text=True,
                       env=env, timeout=300)
    n = 0
    for line in r.stdout.splitlines():
        m = re.match(r"(not )?ok \d+ - (.*)", line)
        if m:
            n += 1
            ok(m.group(1) is None, "api on PostgreSQL: " + m.group(2))
    ok(r.returncode == 0 and n > 50, "test_api.py on PostgreSQL: %d checks, "
       "exit %d" % (n, r.returncode))


class Writer(threading.Thread):
    """POSTs until told to stop; keeps every status and acknowledged id."""

    def __init__(self, t, name):
        super().__init__(daemon=True)
        self.t, self.name_ = t, name
        self.stopping = False
        self.results = []	# (status, id or None, seconds)

    def run(self):
        i = 0
        while not self.stopping and i < 5000:
            t0 = time.monotonic()
            try:
                st, h, b = self.t.request("POST", "/todo",
                                          {"task": "%s %d" % (self.name_, i)})
                rid = b["todo"]["id"] if st == 201 else None
            except Exception:
                st, rid = None, None
            self.results.append((st, rid, time.monotonic() - t0))
            i += 1


def writers(t, n):
    ws = [Writer(t, "w%d" % i) for i in range(n)]
    for w in ws:
        w.start()
    return ws


def stop_writers(ws):
    for w in ws:
        w.stopping = True
    for w in ws:
        w.join(30)
    return [r for w in ws for r in w.results]


def all_ids(t):
    st, h, b = t.request("GET", "/todo")
    return set(x["id"] for x in b["todos"]) if st == 200 else set()


pg = Postgres()
t = None
try:
    # --- the URI and start-up -------------------------------------------
    t = Todod(a.build, database=pg.createdb("api"))
    r = dryrun(t)
    ok(r.returncode == 0, "-n accepts a PostgreSQL URI (%s)" % r.stderr)
    t.write_conf(db="postgresql:///x?host=/nonexistent&bogus=1")
    r = dryrun(t)
    ok(r.returncode == 1 and "database" in r.stderr and "bogus" in r.stderr,
       "-n: a URI that does not parse is named (%s)" % r.stderr.strip())
    t.write_conf(db="postgresql:///x?host=%s&port=1&user=todod" % pg.dir)
    ok(start_fails(t, r"PostgreSQL unreachable"),
       "an unreachable database: exit 1, and the log says so")
    t.cleanup()

    uri = pg.createdb("old")
    t = Todod(a.build, database=uri).start()
    t.stop()
    pg.psql("UPDATE todod_schema SET version = 99", db="old")
    ok(start_fails(t, r"schema version \"99\""),
       "an incompatible schema: exit 1, naming the version")
    t.cleanup()

    # --- every API test ---------------------------------------------------
    api_tests(pg.uri("api"))

    # --- kill -9 loses no acknowledged write -------------------------------
    t = Todod(a.build, database=pg.createdb("dur"), prefork=2).start()
    ws = writers(t, 4)
    time.sleep(1.5)
    t.kill9_all()
    res = stop_writers(ws)
    acked = set(r[1] for r in res if r[0] == 201)
    t.start()
    have = all_ids(t)
    ok(len(acked) > 10 and acked <= have, "kill -9 during writes: all %d "
       "acknowledged items there after the restart (missing %s)" %
       (len(acked), sorted(acked - have)[:5]))
    st, h, b = t.request("POST", "/todo", {"task": "after kill"})
    ok(st == 201 and b["todo"]["id"] > max(have), "ids never reused")

    # --- a restarted worker reads its cache from the database -------------
    old = t.workers()
    os.kill(old[0], signal.SIGKILL)
    ok(wait_until(lambda: len(t.workers()) == 2 and old[0] not in
                  t.workers(), 20), "a killed worker is replaced")
    time.sleep(0.5)
    lists = [all_ids(t) for i in range(6)]
    ok(all(x == have | {b["todo"]["id"]} for x in lists),
       "every worker, the new one too, serves every item")

    # --- the database restarted during writes -----------------------------
    ws = writers(t, 3)
    time.sleep(1)
    pg.stop()
    time.sleep(1)
    t0 = time.monotonic()
    st, h, b = t.request("GET", "/todo")
    # other nodes may have acknowledged writes this one cannot see: a GET
    # cannot know it sees every acknowledged write, and says so
    ok(st == 503 and time.monotonic() - t0 < 3, "a read while the "
       "database is down: 503 at once (%s)" % st)
    t0 = time.monotonic()
    st, h, b = t.request("POST", "/todo", {"task": "while down"})
    ok(st == 503 and time.monotonic() - t0 < 3,
       "a write while the database is down: 503 at once (%s)" % st)
    pg.start()
    ok(wait_until(lambda: t.request("POST", "/todo", {"task": "back"})[0]
                  == 201, 20, 0.2), "writes succeed again after a restart")
    res = stop_writers(ws)
    sts = set(r[0] for r in res)
    ok(sts <= {201, 503}, "during the restart every write got 201 or 503 "
       "(%s)" % sorted(sts, key=str))
    ok(max(r[2] for r in res) < 10, "none waited longer than the request "
       "timeout (%.1f s)" % max(r[2] for r in res))
    acked = set(r[1] for r in res if r[0] == 201)
    have = all_ids(t)
    ok(acked <= have, "no acknowledged write lost across the restart "
       "(%d acknowledged)" % len(acked))
    dbids = set(int(x) for x in
                pg.psql("SELECT id FROM todo", db="dur").split())
    n503 = sum(1 for r in res if r[0] == 503)
    # a write answered 503 may still have committed (the connection broke
    # after COMMIT went out): the database may hold those, the cache not
    ok(have <= dbids and len(dbids - have) <= n503,
       "the cache holds what the database holds, but for writes answered "
       "503 (%d in the cache, %d in the database, %d answered 503)" %
       (len(have), len(dbids), n503))
    ok(re.search(r"PostgreSQL connection lost", t.log()) and
       re.search(r"PostgreSQL connection back", t.log()),
       "the log says when the connection went and came back")

    # --- a frozen database: 503 within the request timeout ----------------
    pids = pg.pids()
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        st, h, b = t.request("POST", "/todo", {"task": "frozen"},)
        el = time.monotonic() - t0
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    ok(st == 503 and el < 10, "a write to a frozen database: 503 in %.1f s"
       % el)
    ok(wait_until(lambda: t.request("POST", "/todo", {"task": "thawed"})[0]
                  == 201, 20, 0.2), "writes succeed again once it thaws")
    rc = t.stop()
    ok(rc == 0, "SIGTERM: exit status 0")
finally:
    if t is not None:
        t.stop()
        t.cleanup()
    pg.cleanup()
done()
