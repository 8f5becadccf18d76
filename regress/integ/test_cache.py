#!/usr/bin/env python3
"""A worker's memory does not grow with the data (`cache size`).  A store
of 200,000 items, filled straight into the database, is served by workers
whose cache holds a few hundred: every GET /todo/ID (hits, misses, many at
once, absent ids) and GET /todo (streamed from the store, chunked and
HTTP/1.0) returns every item, with writes interleaved and read-your-writes
kept; the workers' VmRSS stays near an empty daemon's.  The same store
with a large cache keeps everything, and its workers' RSS shows it.  Then
the same on PostgreSQL (misses and pages on the parent's read
connection)."""

import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import threading
import time

from todtest import PG_BIN, Postgres, Todod, args, asan, done, ok, rss_kb, \
    skip, wait_until

a = args()
N = 200000
TINY = "cache size 64K"
LARGE = "cache size 1G"


def task_of(i):
    return "item %d of the big list" % i


def fill_sqlite(path, n):
    """n items straight into todod's own schema (it made the table)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("INSERT INTO todo (task, done, created_by, created_at, "
               "updated_by, updated_at) WITH RECURSIVE c(x) AS (SELECT 1 "
               "UNION ALL SELECT x + 1 FROM c LIMIT ?) SELECT 'item ' || x "
               "|| ' of the big list', x % 2, 'filler', 0, 'filler', 0 "
               "FROM c", (n,))
    db.commit()
    db.close()


def worker_rss(t):
    return [rss_kb(p) for p in t.workers()]


def get_list(t, version=None):
    """GET /todo on its own connection: (status, transfer, todos)."""
    c = t.conn(version=version, timeout=60)
    if version == "1.0":
        c._http_vsn, c._http_vsn_str = 10, "HTTP/1.0"
    c.request("GET", "/todo")
    r = c.getresponse()
    te = r.getheader("Transfer-Encoding") or r.getheader("Content-Length")
    body = r.read()
    c.close()
    try:
        return r.status, te, json.loads(body)["todos"]
    except (ValueError, KeyError):
        return r.status, te, None


def list_whole(todos, n, extra=()):
    """Every id 1..n in order, each with its task, then the extra ids."""
    if todos is None or len(todos) != n + len(extra):
        return False
    for i, it in enumerate(todos[:n], 1):
        if it["id"] != i or it["task"] != task_of(i) or it["done"] != \
                bool(i & 1):
            return False
    return [it["id"] for it in todos[n:]] == list(extra)


class Getter(threading.Thread):
    """GET /todo/ID of random ids on one keep-alive connection."""

    def __init__(self, t, n, count, seed):
        super().__init__(daemon=True)
        self.t, self.n, self.count = t, n, count
        self.rng = random.Random(seed)
        self.bad = []

    def run(self):
        c = self.t.conn(timeout=30)
        for _ in range(self.count):
            i = self.rng.randint(1, self.n)
            c.request("GET", "/todo/%d" % i)
            r = c.getresponse()
            body = r.read()
            try:
                it = json.loads(body)["todo"]
            except (ValueError, KeyError):
                it = None
            if r.status != 200 or it is None or it["id"] != i or \
                    it["task"] != task_of(i):
                self.bad.append((i, r.status, body[:100]))
        c.close()


def many_gets(t, n, threads=8, each=150):
    g = [Getter(t, n, each, s) for s in range(threads)]
    for x in g:
        x.start()
    for x in g:
        x.join(120)
    return sum(len(x.bad) for x in g), g[0].bad[:3]


def metric_sum(t, name):
    m = t.metrics()
    return sum(v for k, v in m.items() if k.split("{")[0] == name)


def writes_interleaved(t, n, what):
    """POST, PATCH and DELETE with GETs between them, each on a new
    connection (so on any worker): what was acknowledged is what is read."""
    st, _, b = t.request("POST", "/todo", {"task": "new after the fill"})
    new = b["todo"]["id"] if st == 201 else None
    st2, _, g = t.request("GET", "/todo/%d" % new) if new else (0, 0, 0)
    ok(st == 201 and st2 == 200 and g["todo"]["task"] ==
       "new after the fill", "%s: a POST then GET of the new item on a new "
       "connection: 200" % what)
    old = n // 2 + 7                  # far from any worker's recent use
    st, _, _ = t.request("PATCH", "/todo/%d" % old,
                         {"task": "patched", "done": True})
    st2, _, g = t.request("GET", "/todo/%d" % old)
    ok(st == 200 and st2 == 200 and g["todo"]["task"] == "patched" and
       g["todo"]["done"] is True, "%s: PATCH of an item no cache holds, "
       "then GET sees it" % what)
    st, _, _ = t.request("DELETE", "/todo/%d" % (old + 1))
    st2, _, _ = t.request("GET", "/todo/%d" % (old + 1))
    ok(st == 200 and st2 == 404, "%s: DELETE then GET: 404" % what)
    st, _, todos = get_list(t)
    ids = [x["id"] for x in todos] if todos else []
    okl = todos is not None and len(todos) == n and new in ids and \
        old + 1 not in ids and ids == sorted(ids) and \
        [x for x in todos if x["id"] == old][0]["task"] == "patched"
    ok(st == 200 and okl, "%s: GET /todo after them: %d items, the new one "
       "in, the deleted one out, the patch seen" % (what, len(ids)))
    # put the list back as it was for the checks that follow
    t.request("PATCH", "/todo/%d" % old, {"task": task_of(old),
                                          "done": bool(old & 1)})
    return new, old + 1


def racing_writes(t, n):
    """GETs of the list while POSTs go on: each item 201'd before a GET
    started is in that GET's list."""
    acked, stop, bad = [], [], []

    def writer():
        c = t.conn(timeout=30)
        k = 0
        while not stop and k < 400:
            c.request("POST", "/todo", json.dumps({"task": "race %d" % k}),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            b = json.loads(r.read())
            if r.status == 201:
                acked.append(b["todo"]["id"])
            k += 1
        c.close()

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    rounds = 0
    while w.is_alive() and rounds < 5:
        before = set(acked)
        st, _, todos = get_list(t)
        ids = set(x["id"] for x in todos) if todos else set()
        if st != 200 or not before <= ids:
            bad.append((st, len(before - ids)))
        rounds += 1
    stop.append(1)
    w.join(60)
    ok(rounds > 0 and not bad, "GET /todo during %d POSTs: every item "
       "acknowledged before a GET started is in its list (%d lists)" %
       (len(acked), rounds))
    return acked


def sqlite_part():
    t = Todod(a.build, prefork=2, extra=TINY)
    try:
        t.start()
        wait_until(lambda: len(t.workers()) == 2, 10)
        time.sleep(0.5)
        base = max(worker_rss(t))
        st, _, b = t.request("GET", "/todo")
        ok(st == 200 and b["todos"] == [], "tiny cache, empty store: "
           "GET /todo is an empty list")
        t.stop()
        fill_sqlite(t.params["db"], N)
        t0 = time.monotonic()
        t.start()
        ok(wait_until(lambda: len(t.workers()) == 2, 20),
           "tiny cache: todod starts on %d items (%.1f s)" %
           (N, time.monotonic() - t0))

        bad, first = many_gets(t, N)
        ok(bad == 0, "tiny cache: 1,200 GET /todo/ID of random ids on 8 "
           "connections at once: every one 200 with its item %s" %
           (first if bad else ""))
        st, _, g = t.request("GET", "/todo/%d" % (N + 1000))
        st2, _, g2 = t.request("GET", "/todo/1")
        ok(st == 404 and st2 == 200 and g2["todo"]["task"] == task_of(1),
           "tiny cache: an absent id is 404, the first item 200")
        misses = metric_sum(t, "todod_cache_misses_total")
        ok(misses >= 1000, "tiny cache: the misses went to the store "
           "(todod_cache_misses_total %d)" % misses)

        t0 = time.monotonic()
        st, te, todos = get_list(t)
        dt = time.monotonic() - t0
        ok(st == 200 and te == "chunked" and list_whole(todos, N),
           "tiny cache: GET /todo streams all %d items from the store, "
           "chunked (%.1f s)" % (N, dt))
        st, te, todos = get_list(t, "1.0")
        ok(st == 200 and list_whole(todos, N), "tiny cache: GET /todo "
           "over HTTP/1.0 (until the close): all %d items" % N)

        new, gone = writes_interleaved(t, N, "tiny cache")
        acked = racing_writes(t, N)

        rss = worker_rss(t)
        if asan():
            # its quarantine keeps freed memory: RSS says nothing here
            skip("worker VmRSS under AddressSanitizer (%s kB)" % rss)
        else:
            ok(len(rss) == 2 and max(rss) < base + 12 * 1024,
               "tiny cache: worker VmRSS %s kB after all that, an empty "
               "daemon's %d kB: it does not grow with %d items" %
               (rss, base, N))
        t.stop()

        t.write_conf(extra=LARGE)
        t.start()
        wait_until(lambda: len(t.workers()) == 2, 20)
        st, _, todos = get_list(t)
        ok(st == 200 and todos is not None and len(todos) == N + 1 +
           len(acked) - 1, "large cache: GET /todo from the cache: %d items"
           % (len(todos) if todos else 0))
        bad, first = many_gets(t, N)
        ok(bad == 0 and metric_sum(t, "todod_cache_misses_total") == 0,
           "large cache: 1,200 GET /todo/ID, every one from the cache")
        rss2 = worker_rss(t)
        ok(len(rss2) == 2 and min(rss2) > base + N * 80 // 1024 and
           (asan() or min(rss2) > max(rss) + 10 * 1024),
           "large cache: worker VmRSS %s kB holds every item (tiny cache: "
           "%s kB)" % (rss2, rss))
        items = metric_sum(t, "todod_cache_items")
        ok(items >= 2 * (N - 1), "large cache: todod_cache_items %d (every "
           "item in each worker)" % items)
        t.stop()
        ok(re.search(r"ERROR|AddressSanitizer|runtime error", t.log()) is
           None, "no sanitizer report in the log")
    finally:
        t.cleanup()


def pg_part():
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        skip("PostgreSQL 15 is not installed")
        return
    pg = Postgres()
    t = None
    try:
        pg.start()
        pg.createdb("cache")
        n = 20000
        t = Todod(a.build, prefork=2, extra=TINY, database=pg.uri("cache"))
        t.start()
        t.stop()
        # Filled as one group of writes would be: the change counter
        # moves on, the rows carry its number, the count follows.
        pg.psql("WITH s AS (UPDATE todod_seq SET seq = seq + 1, "
                "n = n + %d RETURNING seq) "
                "INSERT INTO todo (task, done, created_by, updated_by, chg) "
                "SELECT 'item ' || x || ' of the big list', x %% 2 = 1, "
                "'filler', 'filler', (SELECT seq FROM s) "
                "FROM generate_series(1, %d) x" % (n, n),
                db="cache")
        t.start()
        wait_until(lambda: len(t.workers()) == 2, 20)
        bad, first = many_gets(t, n, threads=4, each=100)
        ok(bad == 0, "PostgreSQL, tiny cache: 400 GET /todo/ID at once, "
           "each 200 %s" % (first if bad else ""))
        st, te, todos = get_list(t)
        ok(st == 200 and list_whole(todos, n), "PostgreSQL, tiny cache: "
           "GET /todo streams all %d items from the store" % n)
        writes_interleaved(t, n, "PostgreSQL, tiny cache")
        t.stop()
    finally:
        if t is not None:
            t.cleanup()
        pg.cleanup()


sqlite_part()
pg_part()
done()
