#!/usr/bin/env python3
"""Three todod nodes on one real PostgreSQL 15 that the test starts: the API
on each node, read-your-writes across nodes, TLS sessions that resume on any
node (and stop resuming where the rules changed), kill -9 of a node during
writes, the database restarted during writes."""

import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

from todtest import TOP, Postgres, Todod, args, done, ok, wait_until

a = args()
NAMES = "ABC"


class Client:
    """One keep-alive connection to a node, reopened when it breaks."""

    def __init__(self, t):
        self.t = t
        self.c = None

    def req(self, method, path, body=None):
        for attempt in range(2):
            if self.c is None:
                self.c = self.t.conn(timeout=15)
            try:
                h = {}
                data = None
                if body is not None:
                    data = json.dumps(body)
                    h["Content-Type"] = "application/json"
                self.c.request(method, path, body=data, headers=h)
                r = self.c.getresponse()
                raw = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                return r.status, json.loads(raw) if raw else None
            except (OSError, http.client.HTTPException, ValueError):
                self.close()
                if attempt == 1:
                    return None, None
        return None, None

    def close(self):
        if self.c is not None:
            self.c.close()
        self.c = None


def api_checks(t, name):
    """The API's main answers on one node of the cluster."""
    c = Client(t)
    st, b = c.req("POST", "/todo", {"task": "on " + name})
    ok(st == 201 and b["todo"]["task"] == "on " + name,
       "%s: POST /todo is 201" % name)
    tid = b["todo"]["id"] if st == 201 else 0
    st, b = c.req("GET", "/todo/%d" % tid)
    ok(st == 200 and b["todo"] == {"id": tid, "task": "on " + name,
                                   "done": False},
       "%s: GET /todo/ID is the item" % name)
    st, b = c.req("PATCH", "/todo/%d" % tid, {"done": True})
    ok(st == 200 and b["todo"]["done"] is True, "%s: PATCH is 200" % name)
    st, b = c.req("GET", "/todo")
    ok(st == 200 and {"id": tid, "task": "on " + name, "done": True} in
       b["todos"], "%s: GET /todo lists it as changed" % name)
    st, b = c.req("POST", "/todo", {"task": 5})
    ok(st == 400 and "error" in b, "%s: a bad body is 400" % name)
    st, b = c.req("PUT", "/todo")
    ok(st == 405, "%s: PUT is 405" % name)
    st, h, b = t.request("POST", "/todo", {"task": "x"}, client="auditor")
    ok(st == 403, "%s: the auditor may not write" % name)
    st, b = c.req("DELETE", "/todo/%d" % tid)
    ok(st == 200 and b["todo"]["id"] == tid, "%s: DELETE is 200" % name)
    st, b = c.req("GET", "/todo/%d" % tid)
    ok(st == 404, "%s: the deleted item is 404" % name)
    c.close()


def api_suite(uri):
    """test_api.py, whole, on a fourth node of the running cluster."""
    env = dict(os.environ, TODOD_TEST_DATABASE=uri)
    r = subprocess.run([sys.executable,
                        os.path.join(TOP, "regress", "integ", "test_api.py"),
                        "--build", a.build], capture_output=True, text=True,
                       env=env, timeout=300)
    n = bad = 0
    for line in r.stdout.splitlines():
        m = re.match(r"(not )?ok \d+ - (.*)", line)
        if m:
            n += 1
            if m.group(1):
                bad += 1
                ok(False, "api beside three nodes: " + m.group(2))
    ok(r.returncode == 0 and n > 50 and bad == 0,
       "test_api.py on a node beside three others: %d checks, %d failed, "
       "exit %d" % (n, bad, r.returncode))


def read_your_writes(nodes, rounds):
    """Write on one node, read at once on the two others."""
    cl = [Client(t) for t in nodes]
    miss = []
    for i in range(rounds):
        w = i % 3
        st, b = cl[w].req("POST", "/todo", {"task": "ryw %d" % i})
        if st != 201:
            miss.append((i, "POST", st))
            continue
        tid = b["todo"]["id"]
        for r in range(3):
            if r == w:
                continue
            st, b = cl[r].req("GET", "/todo/%d" % tid)
            if st != 200 or b["todo"]["task"] != "ryw %d" % i:
                miss.append((i, NAMES[w] + "->" + NAMES[r], st))
        # an update on the next node, read on the one after
        u, r = (w + 1) % 3, (w + 2) % 3
        st, b = cl[u].req("PATCH", "/todo/%d" % tid, {"done": True})
        st2, b2 = cl[r].req("GET", "/todo/%d" % tid)
        if st != 200 or st2 != 200 or b2["todo"]["done"] is not True:
            miss.append((i, "PATCH " + NAMES[u] + "->" + NAMES[r], st2))
        if i % 4 == 0:
            st, b = cl[r].req("DELETE", "/todo/%d" % tid)
            st2, b2 = cl[w].req("GET", "/todo/%d" % tid)
            if st != 200 or st2 != 404:
                miss.append((i, "DELETE " + NAMES[r] + "->" + NAMES[w],
                             st2))
    for c in cl:
        c.close()
    return miss


class Writer(threading.Thread):
    """POSTs to one node until told to stop; keeps every answer."""

    def __init__(self, t, name):
        super().__init__(daemon=True)
        self.t, self.name_ = t, name
        self.stopping = False
        self.results = []	# (status, id or None, seconds)

    def run(self):
        c = Client(self.t)
        for i in range(5000):
            if self.stopping:
                break
            t0 = time.monotonic()
            task = "%s %d" % (self.name_, i)
            st, b = c.req("POST", "/todo", {"task": task})
            rid = b["todo"]["id"] if st == 201 else None
            self.results.append((st, rid, time.monotonic() - t0, task))
            if st is None:
                time.sleep(0.05)
        c.close()


def writers(nodes, prefix="w"):
    ws = [Writer(t, "%s%s" % (prefix, NAMES[i])) for i, t in
          enumerate(nodes) if t is not None]
    for w in ws:
        w.start()
    return ws


def stop_writers(ws):
    for w in ws:
        w.stopping = True
    for w in ws:
        w.join(60)
    return [r for w in ws for r in w.results]


def post_ok(t):
    try:
        return t.request("POST", "/todo", {"task": "back"})[0] == 201
    except (OSError, http.client.HTTPException):
        return False


def all_ids(t):
    st, h, b = t.request("GET", "/todo")
    return set(x["id"] for x in b["todos"]) if st == 200 else None


def new_session(ctx, t):
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    tls = ctx.wrap_socket(s, server_hostname="localhost")
    tls.sendall(b"GET /todo/1 HTTP/1.1\r\nHost: x\r\n"
                b"Connection: close\r\n\r\n")
    while tls.recv(65536):
        pass
    sess = tls.session
    tls.close()
    return sess


def resumes(ctx, sess, t):
    """A connection to t with sess: did it resume, and was it served?"""
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    try:
        tls = ctx.wrap_socket(s, server_hostname="localhost", session=sess)
        tls.sendall(b"GET /todo/1 HTTP/1.1\r\nHost: x\r\n"
                    b"Connection: close\r\n\r\n")
        data = b""
        for i in range(100):
            d = tls.recv(65536)
            if not d:
                break
            data += d
        r = tls.session_reused
        tls.close()
        return r, data.startswith(b"HTTP/1.1 ")
    except (ssl.SSLError, OSError):
        return False, False


def resumption(nodes, version):
    """A session from each node, resumed on every other one."""
    good = total = 0
    for i, t in enumerate(nodes):
        for j, u in enumerate(nodes):
            if i == j:
                continue
            ctx = t.ctx(version=version)
            sess = new_session(ctx, t)
            r, served = resumes(ctx, sess, u)
            good += r and served
            total += 1
    return good, total


pg = Postgres()
nodes = []
try:
    uri = pg.createdb("nodes")
    for i in range(3):
        nodes.append(Todod(a.build, database=uri, prefork=2))
    for t in nodes:
        t.start()
    ok(True, "three nodes started on one database")
    pg.psql("INSERT INTO todo (task, done, created_by, updated_by) "
            "VALUES ('v1', false, 'x', 'x')", db="nodes", check=False)
    r = pg.psql("SELECT count(*) FROM todo WHERE task = 'v1'", db="nodes")
    ok(r == "0", "a write the way todod 1.0 made it (no change number) is "
       "refused: an old node cannot write what the others never hear of")

    # --- a database of version 1 is brought to version 2 ----------------
    old = pg.createdb("v1")
    pg.psql("CREATE TABLE todod_schema (version integer NOT NULL); "
            "INSERT INTO todod_schema VALUES (1); "
            "CREATE TABLE todo (id bigint GENERATED ALWAYS AS IDENTITY "
            "PRIMARY KEY, task text NOT NULL, done boolean NOT NULL, "
            "created_by text NOT NULL, created_at timestamptz NOT NULL "
            "DEFAULT now(), updated_by text NOT NULL, updated_at "
            "timestamptz NOT NULL DEFAULT now()); "
            "INSERT INTO todo (task, done, created_by, updated_by) VALUES "
            "('one', false, 'a', 'a'), ('two', true, 'a', 'a'); "
            "ALTER TABLE todo OWNER TO todod; "
            "ALTER TABLE todod_schema OWNER TO todod", db="v1")
    t = Todod(a.build, database=old, prefork=1).start()
    st, h, b = t.request("GET", "/todo")
    st2, h, b2 = t.request("PATCH", "/todo/1", {"done": True})
    st3, h, b3 = t.request("POST", "/todo", {"task": "three"})
    ok(st == 200 and [x["task"] for x in b["todos"]] == ["one", "two"] and
       st2 == 200 and st3 == 201 and b3["todo"]["id"] == 3 and
       pg.psql("SELECT version FROM todod_schema", db="v1") == "3",
       "a database of version 1: brought to version 3 in place, its items "
       "kept, changed and added to")
    t.stop()
    t.cleanup()

    # --- the API on each node ------------------------------------------
    for i, t in enumerate(nodes):
        api_checks(t, NAMES[i])

    # --- read-your-writes across nodes ---------------------------------
    t0 = time.monotonic()
    miss = read_your_writes(nodes, 150)
    el = time.monotonic() - t0
    ok(not miss, "150 rounds of POST on one node, GET at once on the two "
       "others, PATCH and DELETE seen across nodes: %d misses %s (%.1f s)"
       % (len(miss), miss[:5], el))
    lists = [all_ids(t) for t in nodes]
    ok(lists[0] is not None and lists[0] == lists[1] == lists[2],
       "GET /todo lists the same %d items on the three nodes" %
       len(lists[0] or ()))

    # --- a worker replaced while other nodes write ----------------------
    A = nodes[0]
    ws = writers(nodes[1:])
    old = A.workers()
    os.kill(old[0], signal.SIGKILL)
    ok(wait_until(lambda: len(A.workers()) == 2 and old[0] not in
                  A.workers(), 20), "a killed worker of A is replaced "
       "while B and C write")
    time.sleep(1)
    res = stop_writers(ws)
    acked = set(r[1] for r in res if r[0] == 201)
    want = all_ids(nodes[1])
    lists = [all_ids(A) for i in range(8)]
    ok(len(acked) > 10 and all(x == want and acked <= x for x in lists),
       "every worker of A, the new one too, lists every item the others "
       "acknowledged meanwhile (%d)" % len(acked))

    # --- the database frozen while a worker is replaced ------------------
    pids = pg.pids()
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        old = A.workers()
        os.kill(old[0], signal.SIGKILL)
        wait_until(lambda: len(A.workers()) == 2 and old[0] not in
                   A.workers(), 10)
        time.sleep(0.5)
        t0 = time.monotonic()
        st, h, b = A.request("GET", "/metrics")
        el = time.monotonic() - t0
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)
    ok(st == 200 and el < 2, "the parent does not wait for a frozen "
       "database to read a new worker's snapshot: /metrics in %.1f s" % el)
    ok(wait_until(lambda: all(all_ids(A) == all_ids(nodes[1])
                              for i in range(4)), 40, 0.5),
       "once it thaws, the new worker has every item")

    # --- sessions resume on any node -----------------------------------
    ok(wait_until(lambda: all(re.search(r"parent: started", t.log())
                              for t in nodes), 10), "all nodes serving")
    for v in ("1.3", "1.2"):
        good, total = resumption(nodes, v)
        ok(good == total, "TLS %s: %d of %d sessions made on one node "
           "resume on another" % (v, good, total))
    # a rule change on C: C's own keys change, A and B still share theirs
    C = nodes[2]
    C.write_conf(rules="\n".join(['allow all from cn "mtls-client"',
                                  'allow read from cn "auditor"',
                                  'allow write from ou "ops"',
                                  'allow read from cn "nobody-at-all"']))
    C.reload()
    ok(C.wait_log(r"configuration reloaded", 10), "C reloaded with "
       "another rule")
    ctx = nodes[0].ctx(version="1.3")
    r, served = resumes(ctx, new_session(ctx, nodes[0]), C)
    ok(not r and served, "a session of A does not resume on C after C's "
       "rules changed (full handshake, served)")
    r, served = resumes(ctx, new_session(ctx, nodes[0]), nodes[1])
    ok(r and served, "a session of A still resumes on B")
    ctx = C.ctx(version="1.3")
    r, served = resumes(ctx, new_session(ctx, C), C)
    ok(r and served, "a session of C resumes on C")

    # --- the whole test_api.py beside the three nodes -------------------
    api_suite(uri)

    # --- kill -9 of a node during writes --------------------------------
    ws = writers(nodes)
    time.sleep(1.5)
    nodes[1].kill9_all()
    time.sleep(0.5)
    res = stop_writers(ws)
    acked = set(r[1] for r in res if r[0] == 201)
    ok(len(acked) > 20, "writes on three nodes, B killed with -9: %d "
       "acknowledged" % len(acked))
    for i in (0, 2):
        have = all_ids(nodes[i])
        ok(have is not None and acked <= have, "%s has every acknowledged "
           "item (missing %s)" % (NAMES[i], sorted(acked - (have or
                                                             set()))[:5]))
    nodes[1].start()
    have = all_ids(nodes[1])
    ok(have is not None and acked <= have, "B, restarted, has every "
       "acknowledged item before it serves")
    st, h, b = nodes[1].request("POST", "/todo", {"task": "B is back"})
    ok(st == 201 and b["todo"]["id"] > max(acked), "B writes again; ids "
       "not reused")

    # --- connections cut during writes: each lost group's fate is learnt -
    ws = writers(nodes, "cut")
    for i in range(8):
        time.sleep(0.5)
        pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE usename = 'todod' AND datname = 'nodes'",
                db="postgres")
    time.sleep(0.5)
    res = stop_writers(ws)
    acked = set(r[1] for r in res if r[0] == 201)
    tasks = set(pg.psql("SELECT task FROM todo", db="nodes").splitlines())
    dbids = set(int(x) for x in pg.psql("SELECT id FROM todo",
                                        db="nodes").split())
    refused = [r[3] for r in res if r[0] == 503]
    ghosts = [x for x in refused if x in tasks]
    ok(set(r[0] for r in res) <= {201, 503} and acked <= dbids,
       "%d sessions cut during writes: every write 201 or 503, every 201 "
       "in the database (%d acknowledged, %d refused)" %
       (8, len(acked), len(refused)))
    logs = "".join(t.log() for t in nodes)
    unknown = sum(int(x) for x in re.findall(
        r"is not known: its (\d+) writes get 503", logs))
    ok(len(ghosts) <= unknown, "a POST answered 503 left an item behind "
       "only if its group's fate stayed unknown: %d such items, %d writes "
       "of unknown fate; %d lost groups learnt committed, their creations "
       "answered 201" % (len(ghosts), unknown,
                         len(re.findall(r"did commit", logs))))

    # --- the database restarted during writes ----------------------------
    ws = writers(nodes)
    time.sleep(1)
    pg.stop()
    time.sleep(1)
    t0 = time.monotonic()
    sts = [t.request("POST", "/todo", {"task": "down"})[0] for t in nodes]
    el = time.monotonic() - t0
    ok(sts == [503] * 3 and el < 9, "a write on each node while the "
       "database is down: %s in %.1f s" % (sts, el))
    sts = [t.request("GET", "/todo")[0] for t in nodes]
    ok(sts == [503] * 3, "a read on each node while the database is down: "
       "503 (the node cannot know what others acknowledged): %s" % sts)
    # a worker replaced while the database is down: its snapshot may come
    # back before the parent's own connection does
    old = A.workers()
    os.kill(old[0], signal.SIGKILL)
    time.sleep(2.5)
    pg.start()
    for i, t in enumerate(nodes):
        ok(wait_until(lambda: post_ok(t), 20, 0.2),
           "%s writes again after the restart" % NAMES[i])
    res = stop_writers(ws)
    ok(A.proc.poll() is None and wait_until(lambda: len(A.workers()) == 2
                                             and old[0] not in A.workers(),
                                             20),
       "A, whose worker was replaced while the database was down, runs "
       "with two workers")
    sts = set(r[0] for r in res)
    ok(sts <= {201, 503}, "during the restart every write got 201 or 503 "
       "(%s)" % sorted(sts, key=str))
    ok(max(r[2] for r in res) < 10, "none waited longer than the request "
       "timeout (%.1f s)" % max(r[2] for r in res))
    acked = set(r[1] for r in res if r[0] == 201)
    lists = [all_ids(t) for t in nodes]
    ok(all(x is not None and acked <= x for x in lists) and
       lists[0] == lists[1] == lists[2], "after the restart the three "
       "nodes list the same items, every acknowledged one among them "
       "(%d acknowledged)" % len(acked))
    miss = read_your_writes(nodes, 30)
    ok(not miss, "read-your-writes across nodes after the restart: %s" %
       miss[:5])
    for i, t in enumerate(nodes):
        ok(t.stop() == 0, "%s: SIGTERM, exit status 0" % NAMES[i])
finally:
    for t in nodes:
        t.stop()
        t.cleanup()
    pg.cleanup()
done()
