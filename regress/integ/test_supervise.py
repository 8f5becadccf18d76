#!/usr/bin/env python3
"""Supervision and durability: children that die are restarted (with
back-off when they keep dying), the keyholder recovers, SIGTERM lets
in-flight requests finish, a killed parent leaves no orphans, and every
acknowledged write survives kill -9 of any process or of all of them."""

import json
import os
import random
import signal
import socket
import threading
import time

from todtest import Todod, args, done, ok, pid_alive, wait_until

a = args()
t = Todod(a.build, prefork=2)
t.start()


def get_ok(client="mtls-client"):
    try:
        st, h, b = t.request("GET", "/todo", client=client)
        return st == 200
    except OSError:
        return False


def sockets(pid):
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(
                    "socket:"):
                n += 1
        except OSError:
            pass
    return n


try:
    # --- connections are spread over the workers (SO_REUSEPORT) ---------
    w = t.workers()
    ok(len(w) == 2, "two workers")
    base = {p: sockets(p) for p in w}
    held = [t.conn() for i in range(24)]
    for c in held:
        c.request("GET", "/todo")
        c.getresponse().read()
    got = {p: sockets(p) - base[p] for p in w}
    ok(all(v >= 3 for v in got.values()) and sum(got.values()) == 24,
       "24 keep-alive connections spread over both workers (%s)" %
       sorted(got.values()))
    for c in held:
        c.close()

    # --- a worker killed with SIGKILL is replaced -----------------------
    os.kill(w[0], signal.SIGKILL)
    ok(wait_until(lambda: len(t.workers()) == 2 and w[0] not in
                  t.workers(), 5), "the dead worker is replaced")
    ok(t.wait_log(r"worker \d killed by signal 9", 2), "the death is logged")
    ok(wait_until(get_ok, 5), "service continues")
    ok(w[1] in t.workers(), "the other worker was not disturbed")

    # --- a crash loop backs off ------------------------------------------
    for i in range(4):
        ok(wait_until(lambda: len(t.workers()) == 2, 20),
           "worker back (round %d)" % i)
        os.kill(t.workers()[0], signal.SIGKILL)
        time.sleep(0.2)
    ok(t.wait_log(r"restarting in [248]s \(failing repeatedly: backing off\)",
                  10), "repeated deaths back off, and the log says so")
    ok(t.proc.poll() is None, "the parent never exits because a child died")
    ok(wait_until(lambda: len(t.workers()) == 2, 30),
       "workers come back after the back-off")

    # --- the keyholder killed: recovery within 2 s ---------------------
    kh = t.keyholders()
    ok(len(kh) >= 1, "keyholders running (%d)" % len(kh))
    for pid in kh:
        os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    ok(wait_until(get_ok, 5), "new handshakes succeed after the keyholder "
       "was killed")
    took = time.monotonic() - t0
    ok(took < 2.5, "recovered in %.2f s" % took)
    ok(len(t.workers()) == 2, "no worker crashed with the keyholder")
    ok(all(p not in t.keyholders() for p in kh), "keyholders replaced")
    m = t.metrics()
    ok(m.get('todod_child_restarts_total{role="keyholder"}', 0) >= 1 and
       m.get('todod_child_restarts_total{role="worker"}', 0) >= 5,
       "restarts counted by role in /metrics")

    # --- durability: acknowledged writes survive kill -9 -----------------
    acked = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n):
        i = 0
        while not stop.is_set() and i < 100000:
            i += 1
            try:
                st, h, b = t.request("POST", "/todo",
                                     {"task": "w%d-%d" % (n, i)})
            except (OSError, ValueError):
                continue
            if st == 201:
                with lock:
                    acked.append(b["todo"])

    rounds = 4
    lost_total = 0
    for rnd in range(rounds):
        stop.clear()
        threads = [threading.Thread(target=writer, args=(n,))
                   for n in range(4)]
        for th in threads:
            th.start()
        time.sleep(0.5 + random.random())
        kids = t.children()
        if rnd % 2 == 0:
            t.kill9_all()
            what = "every process"
        else:
            os.kill(t.proc.pid, signal.SIGKILL)
            t.proc.wait(5)
            what = "the parent"
        stop.set()
        for th in threads:
            th.join(30)
        if rnd % 2 == 1:
            # children notice the dead parent and leave
            kids_gone = wait_until(lambda: not any(
                pid_alive(p) for p in kids), 3)
            ok(kids_gone and len(kids) >= 3, "round %d: all %d children "
               "exit within 3 s of the parent's SIGKILL" % (rnd, len(kids)))
            t.proc = None
            t.logf.close()
        t.start()
        st, h, b = t.request("GET", "/todo")
        have = {x["id"]: x for x in b["todos"]}
        lost = [x for x in acked if have.get(x["id"]) != x]
        lost_total += len(lost)
        ok(not lost, "round %d (kill -9 of %s): %d acknowledged writes, "
           "%d lost" % (rnd, what, len(acked), len(lost)))
    ok(len(acked) > 50, "enough writes were acknowledged to mean something "
       "(%d)" % len(acked))

    # --- SIGTERM lets an in-flight request finish ------------------------
    s = socket.create_connection(("127.0.0.1", t.port), timeout=10)
    tls = t.ctx().wrap_socket(s, server_hostname="localhost")
    body = b'{"task":"in flight"}'
    tls.sendall(b"POST /todo HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body))
    time.sleep(0.3)
    kids = t.children()
    t.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    tls.sendall(body)
    got = b""
    try:
        while True:
            d = tls.recv(4096)
            if not d:
                break
            got += d
    except OSError:
        pass
    ok(got.startswith(b"HTTP/1.1 201") and b"Connection: close" in got,
       "SIGTERM: the request in flight is answered (201, then close)")
    try:
        rc = t.proc.wait(20)
    except Exception:
        rc = None
    ok(rc == 0, "SIGTERM: the parent exits 0 (%s)" % rc)
    t.proc = None
    t.logf.close()
    ok(not any(pid_alive(p) for p in kids), "no todod process left")
    t.start()
    st, h, b = t.request("GET", "/todo")
    ok(any(x["task"] == "in flight" for x in b["todos"]),
       "the in-flight write was committed")
finally:
    t.stop()
    t.cleanup()
done()
