#!/usr/bin/env python3
"""A hung worker never blocks a reload, and is replaced.

One worker is stopped with SIGSTOP, then a new CRL revoking a client is
installed with SIGHUP.  The reload must complete on the healthy workers
(not "reload failed: timed out waiting for the workers"), the watchdog
must kill the stopped worker within a few seconds (logged) and start a new
one with the new configuration, and the revoked client must be refused on
every new connection, whichever worker takes it."""

import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time

from todtest import (Todod, args, done, imsg_types, ipc_msg, ipc_read_msg,
                     ipc_str, is_root, ok, pid_alive, skip, steal_channel,
                     wait_until)

NWORKERS = 3
REPLACE_WITHIN = 10         # seconds from SIGSTOP to a new worker
TRIES = 8                   # new connections per client

a = args()
t = Todod(a.build, prefork=NWORKERS)
pki = os.path.join(t.dir, "pki")
shutil.copytree(t.pki, pki, symlinks=True)
t.pki = pki
PKI = ["sh", os.path.join(os.path.dirname(__file__), "..", "..", "certs",
                          "todod-pki"), "-d", pki]
for c in ("victim", "victim2"):
    subprocess.run(PKI + ["client", c], check=True, capture_output=True)
t.write_conf(rules='allow all from cn "mtls-client"\n'
             'allow all from cn "victim"\nallow all from cn "victim2"')
t.start()


def served(client):
    """How many of TRIES new connections get a 200."""
    n = 0
    for i in range(TRIES):
        try:
            st, h, b = t.request("GET", "/todo", client=client)
            n += st == 200
        except (ssl.SSLError, ConnectionError, OSError):
            pass
    return n


def read_txn(chan, T):
    """Read a configuration transaction; returns its generation."""
    gen = None
    for i in range(1000):
        mtype, payload = ipc_read_msg(chan)
        if mtype == T["IMSG_CFG_BEGIN"]:
            gen = struct.unpack("=I", payload)[0]
        elif mtype == T["IMSG_CFG_END"] and gen is not None:
            return gen
    return None


try:
    ok(served("victim") == TRIES, "the client to revoke is served first")
    w = t.workers()
    ok(len(w) == NWORKERS, "%d workers" % NWORKERS)
    stopped = w[0]
    n = t.log().count("configuration reloaded")
    subprocess.run(PKI + ["revoke", "victim"], check=True,
                   capture_output=True)
    t0 = time.monotonic()
    os.kill(stopped, signal.SIGSTOP)
    t.reload()
    ok(t.wait_log("configuration reloaded", 15, count=n + 1),
       "the reload completes with a stopped worker (%.1f s)" %
       (time.monotonic() - t0))
    ok("reload failed" not in t.log(), "no reload failed")
    ok(t.wait_log(r"worker \d: no answer to a ping for \d+s; killing it",
                  REPLACE_WITHIN), "the watchdog names the stopped worker")
    ok(wait_until(lambda: not pid_alive(stopped), REPLACE_WITHIN),
       "the stopped worker is killed")
    ok(wait_until(lambda: len(t.workers()) == NWORKERS and stopped not in
                  t.workers(), REPLACE_WITHIN),
       "and replaced %.1f s after it stopped" % (time.monotonic() - t0))
    ok(t.wait_log(r"worker \d killed by signal 9", 5),
       "its death is logged")
    # every worker now has the new CRL, the new one included
    time.sleep(0.5)
    refused = TRIES - served("victim")
    ok(refused == TRIES, "the revoked client is refused on %d of %d new "
       "connections" % (refused, TRIES))
    good = served("mtls-client")
    ok(good == TRIES, "a good client is served on %d of %d" % (good, TRIES))
    ok(all(pid_alive(p) for p in w[1:]),
       "the healthy workers were not disturbed")

    # --- a worker that refuses what the others take is replaced --------
    # A compromised worker answers CFG_FAILED to veto every reload.  The
    # test plays it on a real stopped worker's channel (needs root).
    if is_root():
        T = imsg_types()
        w = t.workers()
        liar = w[0]
        n = t.log().count("configuration reloaded")
        subprocess.run(PKI + ["revoke", "victim2"], check=True,
                       capture_output=True)
        os.kill(liar, signal.SIGSTOP)
        chan = socket.socket(fileno=steal_channel(liar))
        chan.settimeout(5)
        t.reload()
        gen = read_txn(chan, T)
        ok(gen is not None, "the stopped worker's channel gets the "
           "configuration (generation %s)" % gen)
        if gen is not None:
            chan.sendall(ipc_msg(T["IMSG_CFG_FAILED"],
                                 struct.pack("=I", gen) +
                                 ipc_str("no, never")))
        ok(t.wait_log("configuration reloaded", 10, count=n + 1),
           "the reload completes despite one worker's refusal")
        ok(t.wait_log(r"worker \d: did not take the configuration; "
                      r"killing it", 5), "the refusing worker is killed")
        chan.close()
        ok(wait_until(lambda: not pid_alive(liar) and
                      len(t.workers()) == NWORKERS, REPLACE_WITHIN),
           "and replaced")
        time.sleep(0.5)
        refused = TRIES - served("victim2")
        ok(refused == TRIES, "the newly revoked client is refused on %d of "
           "%d new connections" % (refused, TRIES))
    else:
        skip("the refusing worker needs root")
    ok(t.proc.poll() is None, "the parent is running")
finally:
    if os.environ.get("KEEP"):
        print("# log: " + t.logfile)
        t.stop()
    else:
        t.cleanup()
done()
