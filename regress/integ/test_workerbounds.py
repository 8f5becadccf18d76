#!/usr/bin/env python3
"""A compromised worker on the real channel: the parent bounds every field
of a store request (common/storemsg.c).  The daemon runs from a copy of
the build; the copy of todod is swapped for a program that speaks the
IPC protocol on fd 3 and a worker is killed, so the parent starts the
impostor in its place.  A request whose CN is at the X.509 bound (256
bytes) is stored; one with a 1 MB CN gets the worker killed and nothing
stored, and a real worker serves again once the binary is back.  Reads
past the cache are bounded too: a READ of 65 ids (the batch is 64) and a
ninth unanswered read each get the worker killed."""

import os
import shutil
import struct
import signal
import sqlite3
import stat
import tempfile

from todtest import TOP, Todod, args, done, imsg_types, ok, wait_until

CN_AT_BOUND = "\u00e9" * 128          # 256 bytes of UTF-8
TASK_OK = "from a worker at the CN bound"
TASK_BIG = "from a worker past the CN bound"

IMPOSTOR = r'''#!/usr/bin/python3
import os, struct, time
CREATE = %(create)d
def frame(typ, payload, reqid):
    return struct.pack("=IIIII", typ, len(payload), 0, reqid,
                       os.getpid()) + payload
def text(b):
    return struct.pack("=I", len(b) + 1) + b + b"\0"
def create(cn, task, reqid):
    return frame(CREATE, text(cn) + text(task) + b"\0", reqid)
os.set_blocking(3, True)
out = create(%(cn)r, %(task_ok)r, 1) + create(b"c" * (1 << 20), %(task_big)r, 2)
while out:
    out = out[os.write(3, out):]
end = time.monotonic() + 30
while time.monotonic() < end and os.read(3, 65536):
    pass
'''


READER = r'''#!/usr/bin/python3
import os, time
os.set_blocking(3, True)
out = bytes.fromhex(%(out)r)
while out:
    out = out[os.write(3, out):]
end = time.monotonic() + 30
while time.monotonic() < end and os.read(3, 65536):
    pass
'''


def frame(typ, payload, reqid):
    return struct.pack("=IIIII", typ, len(payload), 0, reqid, 0) + payload


def read_msg(nids, reqid):
    return frame(imsg_types()["IMSG_STORE_READ"], struct.pack("=I", nids) +
                 b"".join(struct.pack("=q", i + 1) for i in range(nids)),
                 reqid)


def reader_impostor(out, why):
    """A worker that sends out (bytes) is killed for why; then a real
    one serves again."""
    with open(impostor, "w") as f:
        f.write(READER % dict(out=out.hex()))
    os.chmod(impostor, 0o755)
    shutil.copy2(real, real + ".real")
    os.replace(impostor, real)
    os.kill(t.workers()[0], signal.SIGKILL)
    ok(t.wait_log(why, 20), "a worker that sends %d bytes of reads is "
       "killed (%s)" % (len(out), why))
    os.replace(real + ".real", real)
    ok(wait_until(lambda: tasks() is not None, 30),
       "a real worker replaces it and serves")


def tasks():
    try:
        st, _, body = t.request("GET", "/todo")
    except OSError:
        return None
    return [x["task"] for x in body["todos"]] if st == 200 else None


a = args()
bindir = tempfile.mkdtemp(prefix="todod-bin-")
os.chmod(bindir, 0o755)
for name in ("todod", "todod-keyholder"):
    shutil.copy2(os.path.join(TOP, a.build, name), bindir)
real = os.path.join(bindir, "todod")
shutil.copy2(real, real + ".real")
impostor = os.path.join(bindir, "impostor")
with open(impostor, "w") as f:
    f.write(IMPOSTOR % dict(create=imsg_types()["IMSG_STORE_CREATE"],
                            cn=CN_AT_BOUND.encode(),
                            task_ok=TASK_OK.encode(),
                            task_big=TASK_BIG.encode()))
os.chmod(impostor, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP |
         stat.S_IROTH | stat.S_IXOTH)

t = Todod(a.build, prefork=1)
t.build = bindir
t.start()
try:
    ok(tasks() == [], "the daemon runs from a copy of the build")
    os.replace(impostor, real)
    w = t.workers()
    os.kill(w[0], signal.SIGKILL)
    ok(t.wait_log(r"malformed store request; killing it", 20),
       "a store request with a 1 MB CN gets the worker killed")
    os.replace(real + ".real", real)
    ok(t.proc.poll() is None, "the parent keeps running")
    ok(wait_until(lambda: tasks() is not None, 30),
       "a real worker replaces the impostor and serves")
    got = tasks() or []
    ok(TASK_OK in got, "the request with a 256-byte CN was stored")
    ok(TASK_BIG not in got, "the request with a 1 MB CN was not")
    db = sqlite3.connect(t.params["db"])
    rows = db.execute("SELECT task, created_by FROM todo").fetchall()
    db.close()
    ok(rows == [(TASK_OK, CN_AT_BOUND)],
       "the database holds the first request alone, with its CN")
    # a new parent: its restart back-off starts again
    t.stop()
    t.start()
    reader_impostor(read_msg(65, 1), r"malformed store read; killing it")
    reader_impostor(b"".join(read_msg(1, i + 1) for i in range(9)),
                    r"more than 8 store reads unanswered; killing it")
finally:
    t.cleanup()
    shutil.rmtree(bindir, ignore_errors=True)
done()
