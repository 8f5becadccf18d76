#!/usr/bin/env python3
"""No private key material in a worker or in the parent: after serving
handshakes (TLS 1.2 and 1.3), read every readable mapping of each worker
and of the parent through /proc/PID/mem and look for the private scalar,
primes and exponents (both byte orders) and the PEM body of the key.
The same scan of the keyholder must find them: it shows the scan works."""

import os

from todtest import Todod, args, done, key_secrets, ok, scan_memory

a = args()


def check(server):
    t = Todod(a.build, server=server)
    t.start()
    try:
        for i in range(10):
            for v in ("1.2", "1.3"):
                st, h, b = t.request("GET", "/todo", version=v)
        ok(st == 200, "%s: 20 handshakes served" % server)
        needles = key_secrets(os.path.join(t.pki, server + ".key"))
        ok(len(needles) >= 4, "%s: %d patterns from the key" %
           (server, len(needles)))
        for pid, role in [(t.proc.pid, "parent")] + \
                [(w, "worker") for w in t.workers()]:
            try:
                found = scan_memory(pid, needles)
            except PermissionError:
                ok(False, "%s: cannot read the memory of %s %d (run as "
                   "root)" % (server, role, pid))
                continue
            ok(not found, "%s: no key material in the %s (pid %d)%s" %
               (server, role, pid, ": " + ", ".join(sorted(found))
                if found else ""))
        # control: the keyholder does hold the key (needs root: it is
        # not dumpable, so only root may read its memory)
        if os.geteuid() == 0:
            kh = t.keyholders()[0]
            found = scan_memory(kh, needles)
            ok(found, "%s: control: the same scan finds the key in the "
               "keyholder (%s)" % (server, ", ".join(sorted(found))[:80]))
    finally:
        t.stop()
        t.cleanup()


check("localhost")
check("localhost-rsa")
done()
