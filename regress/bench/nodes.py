#!/usr/bin/env python3
"""make bench, several nodes (BENCH_NODES=1, or run alone): POST and GET
/todo/ID on one todod on SQLite, one todod on PostgreSQL and two todod
nodes on one PostgreSQL 15 that this script starts (initdb in a temporary
directory, a Unix socket), all on loopback, with build/bench/todod-bench.
With two nodes the connections are split between them and the figures
summed.  Each GET on PostgreSQL waits for its node to catch up with the
database (one query for all the GETs waiting meanwhile): the difference
between the rows is that cost.

Environment: BENCH_SECS (5), BENCH_CONNS (16), BENCH_PREFORK (2)."""

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integ"))
from todtest import TOP, Postgres, Todod  # noqa: E402

BUILD = os.environ.get("B", "build")
SECS = int(os.environ.get("BENCH_SECS", "5"))
CONNS = int(os.environ.get("BENCH_CONNS", "16"))
PREFORK = int(os.environ.get("BENCH_PREFORK") or "2")
GEN = os.path.join(TOP, BUILD, "bench", "todod-bench")


def gen_start(t, mode, conns, path="/todo"):
    pki = t.pki
    return subprocess.Popen(
        [GEN, "-q", "-p", str(t.port), "-C", os.path.join(pki, "ca.crt"),
         "-c", os.path.join(pki, "mtls-client.crt"),
         "-k", os.path.join(pki, "mtls-client.key"), "-m", mode,
         "-t", str(conns), "-d", str(SECS), "-w", "1", "-P", path],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def fields(line):
    return dict(x.split("=", 1) for x in line.split() if "=" in x)


def run(nodes, mode, path="/todo"):
    """One run split over the nodes: summed req/s, the worst p50/p99."""
    per = max(1, CONNS // len(nodes))
    ps = [gen_start(t, mode, per, path) for t in nodes]
    out = [fields(p.communicate(timeout=SECS + 120)[0]) for p in ps]
    if any("rps" not in f for f in out):
        return "failed"
    rps = sum(float(f["rps"]) for f in out)
    err = sum(int(f["err"]) for f in out)
    return "%8.0f req/s  p50 %6s us  p99 %6s us  errors %d" % (
        rps, max(int(f["p50"]) for f in out),
        max(int(f["p99"]) for f in out), err)


def bench(label, nodes):
    print("  %-26s POST %s" % (label, run(nodes, "post")), flush=True)
    st, h, b = nodes[0].request("POST", "/todo", {"task": "probe"})
    path = "/todo/%d" % b["todo"]["id"]
    print("  %-26s GET  %s" % ("", run(nodes, "get", path)), flush=True)


def main():
    if not os.access(GEN, os.X_OK):
        sys.exit("%s is not built: run make tools" % GEN)
    print("== Extra 5: several nodes (todod-bench, c=%d in all, %d s each, "
          "keep-alive; prefork %d per node)" % (CONNS, SECS, PREFORK))
    print("  GET /todo/ID and POST /todo; PostgreSQL 15 on a Unix socket, "
          "fsync on, synchronous_commit on for todod's transactions")
    pg = None
    nodes = []
    work = tempfile.mkdtemp(prefix="todod-bench-nodes-")
    try:
        t = Todod(BUILD, prefork=PREFORK,
                  database=os.path.join(work, "todo.db"))
        nodes = [t.start()]
        bench("1 node, SQLite", nodes)
        t.stop()
        t.cleanup()
        pg = Postgres()
        uri = pg.createdb("bench")
        nodes = [Todod(BUILD, prefork=PREFORK, database=uri).start()]
        bench("1 node, PostgreSQL", nodes)
        nodes.append(Todod(BUILD, prefork=PREFORK, database=uri).start())
        bench("2 nodes, one PostgreSQL", nodes)
    finally:
        for t in nodes:
            t.stop()
            t.cleanup()
        if pg is not None:
            pg.cleanup()
        os.rmdir(work) if os.path.isdir(work) and \
            not os.listdir(work) else None
    print()


main()
