#!/usr/bin/env python3
"""Logs nobody can forge: a CA-issued client certificate whose CN holds a
newline and quotes gives exactly one escaped access-log line; a failed
handshake with a crafted subject is escaped; lines a (compromised) worker
writes on its channel are named by the parent, escaped and rate-limited."""

import ctypes
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time

from todtest import Todod, args, done, ok, wait_until

a = args()
t = Todod(a.build, prefork=1)
tmp = tempfile.mkdtemp(prefix="todod-logs-")
EVIL = 'evil\npeer=::1 cn="a" "DELETE /todo/1 HTTP/1.1" 204 0\x07"'


def openssl(*argv):
    r = subprocess.run(["openssl"] + list(argv), capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.decode())


def make_client(name, cn, ca=True):
    """A client certificate for cn: issued by the dev CA, or self-signed."""
    subj = "/CN=" + cn.replace("\\", "\\\\").replace("/", "\\/")
    key = os.path.join(tmp, name + ".key")
    crt = os.path.join(tmp, name + ".crt")
    ext = os.path.join(tmp, "ext.cnf")
    with open(ext, "w") as f:
        f.write("extendedKeyUsage = clientAuth\n")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-out", key)
    if ca:
        csr = os.path.join(tmp, name + ".csr")
        openssl("req", "-new", "-utf8", "-key", key, "-subj", subj,
                "-out", csr)
        openssl("x509", "-req", "-in", csr, "-CA",
                os.path.join(t.pki, "ca.crt"), "-CAkey",
                os.path.join(t.pki, "ca.key"), "-days", "2",
                "-extfile", ext, "-out", crt)
    else:
        openssl("req", "-x509", "-new", "-utf8", "-key", key, "-subj",
                subj + "/O=x\"y", "-days", "2", "-out", crt)
    return crt, key


def tls(crt, key):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(os.path.join(t.pki, "ca.crt"))
    c.load_cert_chain(crt, key)
    s = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    return c.wrap_socket(s, server_hostname="localhost")


t.start()
try:
    # --- a CA-issued certificate whose CN forges a line ----------------
    crt, key = make_client("evil", EVIL)
    s = tls(crt, key)
    s.sendall(b"GET /todo/\"x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              b"\r\n")
    resp = b"".join(iter(lambda: s.recv(4096), b""))
    s.close()
    ok(resp.startswith(b"HTTP/1.1 "), "the evil client gets a response")
    ok(t.wait_log(r'cn="evil\\n', 5), "its request is logged")
    log = t.log()
    lines = [x for x in log.splitlines() if 'cn="evil' in x]
    ok(len(lines) == 1, "exactly one line names it (%d)" % len(lines))
    want = ('cn="evil\\npeer=::1 cn=\\"a\\" \\"DELETE /todo/1 '
            'HTTP/1.1\\" 204 0\\007\\""')
    ok(lines and want in lines[0], "the CN is escaped: %r" %
       (lines[0] if lines else None))
    ok(not re.search(r'^peer=::1 ', log, re.M) and
       "DELETE /todo/1" not in log.replace(want, ""),
       "no forged access-log line")
    ok(lines and re.search(r'"GET /todo/\\"x HTTP/1\.1" \d+ \d+$',
                           lines[0]) is not None,
       "the request target is escaped too: %r" %
       (lines[0][-40:] if lines else None))

    r = subprocess.run([os.path.join(t.build, "todod"), "-n", "-f", t.conf, "-C",
                        crt], capture_output=True, text=True)
    ok('subject CN "evil\\npeer=::1 cn=\\"a\\" ' in r.stdout and
       "\npeer=::1" not in r.stdout,
       "todod -C prints the CN escaped: %r" % r.stdout[:80])

    # --- a failed handshake presents a crafted subject ------------------
    crt, key = make_client("stranger", 'a"b\nc', ca=False)
    try:
        s = tls(crt, key)
        s.sendall(b"GET /todo HTTP/1.1\r\nHost: x\r\n\r\n")
        s.recv(100)
        s.close()
    except (ssl.SSLError, ConnectionError, socket.timeout):
        pass
    ok(t.wait_log(r'tls handshake failed: .*\(certificate '
                  r'"/CN=a\\"b\\nc/O=x\\"y"\)$', 5),
       "a failed handshake logs the presented subject escaped")
    ok("a\"b\nc" not in t.log() and not re.search(r'^c/O=', t.log(), re.M),
       "no raw quote or newline from the subject")

    # --- a worker's channel, written by someone else --------------------
    wpid = t.workers()[0]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pidfd = libc.syscall(434, wpid, 0)            # pidfd_open
    fd = libc.syscall(438, pidfd, 3, 0) if pidfd >= 0 else -1  # pidfd_getfd
    ok(fd >= 0, "the worker's channel, taken with pidfd_getfd (%d)" % fd)
    os.kill(wpid, signal.SIGSTOP)
    try:
        def frame(pri, text):
            s = text.encode() + b"\0"
            body = struct.pack("=II", pri, len(s)) + s
            return struct.pack("=IIIII", 3, len(body), 0, 0, wpid) + body

        os.set_blocking(fd, True)
        forged = 'parent: started\nparent: FORGED \x1b[2J'
        os.write(fd, frame(0, forged))            # LOG_EMERG
        data = b"".join(frame(6, "spam %d" % i) for i in range(7000))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        time.sleep(0.3)
        os.write(fd, frame(6, "after the flood"))
    finally:
        os.kill(wpid, signal.SIGCONT)
    ok(t.wait_log(r"worker 0: after the flood", 10) or
       t.wait_log(r"worker \d+: after the flood", 1),
       "the parent writes the lines it accepts")
    log = t.log()
    # foreground lines start with the UTC time (todod -d)
    ts = r"(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ )?"
    ok(re.search(r"^" + ts + r"worker \d+: parent: started\\nparent: FORGED "
                 r"\\033\[2J$", log, re.M) is not None,
       "the parent names the sender and escapes its newline and ESC")
    ok(not re.search(r"^parent: FORGED", log, re.M),
       "no line looks like the parent's")
    nspam = len(re.findall(r"^" + ts + r"worker \d+: spam \d+$", log,
                           re.M))
    sup = [int(x) for x in re.findall(r"^" + ts + r"worker \d+: (\d+) lines "
                                      r"suppressed \(over 1000 a second\)$",
                                      log, re.M)]
    ok(sup and nspam < 7000 and nspam + sum(sup) == 7000 and
       len(sup) <= 1 + nspam - 5000,
       "rate-limited: %d of 7000 written, %d suppressed, said in %d lines" %
       (nspam, sum(sup), len(sup)))
    os.close(fd)
    os.close(pidfd)
    ok(wait_until(lambda: t.request("GET", "/todo")[0] == 200, 5),
       "the worker serves on")
finally:
    rc = t.stop()
    ok(rc == 0, "clean exit")
    t.cleanup()
done()
