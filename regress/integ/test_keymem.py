#!/usr/bin/env python3
"""No private key material in a worker or in the parent: after serving
handshakes (TLS 1.2 and 1.3), read every readable mapping of each worker
and of the parent through /proc/PID/mem and look for the private scalar,
primes and exponents (both byte orders) and the PEM body of the key.
The same scan of the keyholder must find them: it shows the scan works."""

import base64
import os
import re
import subprocess

from todtest import Todod, args, done, ok

a = args()


def secrets(keyfile):
    """Byte strings that only the private key contains."""
    txt = subprocess.run(["openssl", "pkey", "-in", keyfile, "-noout",
                          "-text"], capture_output=True, text=True).stdout
    out = []
    for field in ("priv", "privateExponent", "prime1", "prime2",
                  "exponent1", "exponent2", "coefficient"):
        m = re.search(r"^%s:\n((?:\s+[0-9a-f:]+\n)+)" % field, txt, re.M)
        if not m:
            continue
        raw = bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
        raw = raw.lstrip(b"\0")
        # big-endian as in DER, little-endian as in BIGNUM limbs on x86-64
        out.append((field, raw[:24]))
        out.append((field + " (reversed)", raw[::-1][:24]))
    pem = open(keyfile).read()
    body = "".join(l for l in pem.splitlines() if not l.startswith("-----"))
    out.append(("PEM body", body[:40].encode()))
    der = base64.b64decode(body)
    out.append(("DER", der[len(der) // 2:len(der) // 2 + 24]))
    return out


def scan(pid, needles):
    """Names of the needles found in the readable memory of pid."""
    found = set()
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            parts = line.split()
            addr, perms = parts[0], parts[1]
            name = parts[5] if len(parts) > 5 else ""
            if "r" not in perms or name in ("[vvar]", "[vsyscall]"):
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if hi - lo > 1 << 30:
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            for what, n in needles:
                if n in data:
                    found.add(what)
    return found


def check(server):
    t = Todod(a.build, server=server)
    t.start()
    try:
        for i in range(10):
            for v in ("1.2", "1.3"):
                st, h, b = t.request("GET", "/todo", version=v)
        ok(st == 200, "%s: 20 handshakes served" % server)
        needles = secrets(os.path.join(t.pki, server + ".key"))
        ok(len(needles) >= 4, "%s: %d patterns from the key" %
           (server, len(needles)))
        for pid, role in [(t.proc.pid, "parent")] + \
                [(w, "worker") for w in t.workers()]:
            try:
                found = scan(pid, needles)
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
            found = scan(kh, needles)
            ok(found, "%s: control: the same scan finds the key in the "
               "keyholder (%s)" % (server, ", ".join(sorted(found))[:80]))
    finally:
        t.stop()
        t.cleanup()


check("localhost")
check("localhost-rsa")
done()
