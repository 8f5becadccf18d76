#!/usr/bin/env python3
"""A compromised worker floods the parent without reading the answers.

The test plays that worker on the real channel: it stops a real worker
(SIGSTOP), takes a copy of its fd 3 with pidfd_open + pidfd_getfd, and
writes requests in the wire format of common/ipc.h (five uint32: type,
len, flags, peerid, pid; then the payload) without ever reading.  The
parent must kill and replace that worker, say so, and keep its own memory
bounded (VmRSS) whatever the worker sends.  Needs root (pidfd_getfd on
another user's process)."""

import errno
import json
import os
import select
import signal
import struct
import sys
import time

from todtest import (Todod, args, asan, done, imsg_types, ipc_msg, ipc_str,
                     is_root, ok, pid_alive, rss_kb, skip, steal_channel,
                     wait_until)

FLOOD_MAX = 400000          # requests per round, at most
FLOOD_SECONDS = 20          # per round, at most
RSS_GROWTH_MAX_KB = 48 * 1024


def flood(fd, one, parent):
    """Write one request after another without reading; returns (sent,
    peak parent RSS in kB, why it stopped)."""
    peak = rss_kb(parent)
    sent = 0
    batch = one * 256
    end = time.monotonic() + FLOOD_SECONDS
    why = "limit"
    while sent < FLOOD_MAX and time.monotonic() < end:
        _, w, _ = select.select([], [fd], [], 0.2)
        peak = max(peak, rss_kb(parent))
        if not w:
            continue
        try:
            n = os.write(fd, batch)
        except OSError as e:
            if e.errno in (errno.EPIPE, errno.ECONNRESET):
                why = "closed"
                break
            if e.errno == errno.EAGAIN:
                continue
            raise
        sent += n // len(one)
    for i in range(20):
        peak = max(peak, rss_kb(parent))
        time.sleep(0.05)
    return sent, peak, why


def round_(t, name, one, pattern, count):
    """One flood through a stopped worker; checks the parent's answer."""
    victim = t.workers()[0]
    others = [p for p in t.workers() if p != victim]
    parent = t.proc.pid
    rss0 = rss_kb(parent)
    os.kill(victim, signal.SIGSTOP)
    fd = steal_channel(victim)
    os.set_blocking(fd, False)
    sent, peak, why = flood(fd, one, parent)
    os.close(fd)
    growth = peak - rss0
    print("# %s: %d requests sent, parent RSS %d kB before, %d kB at most "
          "(+%d kB), channel %s" % (name, sent, rss0, peak, growth, why))
    ok(growth < RSS_GROWTH_MAX_KB,
       "%s: the parent's RSS stays bounded (%d kB -> %d kB, +%d kB)" %
       (name, rss0, peak, growth))
    ok(why == "closed", "%s: the parent closed the flooding channel after "
       "%d requests" % (name, sent))
    ok(t.wait_log(pattern, 10, count=count), "%s: the log names the worker and why" %
       name)
    ok(wait_until(lambda: not pid_alive(victim), 10),
       "%s: the flooding worker is gone" % name)
    ok(wait_until(lambda: len(t.workers()) == 2 and victim not in
                  t.workers(), 15), "%s: it is replaced (%s -> %s)" %
       (name, victim, [p for p in t.workers() if p not in others]))
    ok(all(p in t.workers() for p in others),
       "%s: the other worker was not disturbed" % name)
    ok(wait_until(lambda: all(get_ok(t) for i in range(4)), 10),
       "%s: service works (4 requests)" % name)


def get_ok(t):
    try:
        st, h, b = t.request("GET", "/todo")
        return st == 200
    except OSError:
        return False


if not is_root():
    skip("needs root for pidfd_getfd on a worker")
    done()

a = args()
env = None
if asan():
    # a small quarantine, or freed memory looks like growth
    env = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:"
           "quarantine_size_mb=8"}
t = Todod(a.build, prefork=2, env=env)
t.start()
T = imsg_types()
try:
    ok(wait_until(lambda: get_ok(t), 10), "the daemon serves")
    st, h, b = t.request("POST", "/todo", body={"task": "before"})
    ok(st == 201, "a write before the floods")
    round_(t, "metrics requests", ipc_msg(T["IMSG_METRICS_REQ"], peerid=1),
           r"worker \d: does not read its channel .*killing it", 1)
    # a delete of an item that does not exist: an answer for every request,
    # nothing written
    del_req = ipc_msg(T["IMSG_STORE_DELETE"], ipc_str("mtls-client") +
                  struct.pack("=q", 10 ** 12), peerid=2)
    round_(t, "store requests", del_req,
           r"worker \d: does not read its channel .*killing it", 2)
    st, h, b = t.request("GET", "/todo")
    ok(st == 200 and "before" in json.dumps(b), "the store is intact")
    ok(t.proc.poll() is None, "the parent is still running")
finally:
    t.cleanup()
done()
