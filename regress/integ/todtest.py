"""Helpers for todod's integration tests: a dev PKI, a daemon on a free
loopback port, real clients (Python's ssl, curl, openssl s_client), and TAP
output.  Only loopback; every wait is bounded."""

import argparse
import base64
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

_n = 0
_failed = 0


def ok(cond, what):
    """Print one TAP line; returns cond so tests can branch on it."""
    global _n, _failed
    _n += 1
    if not cond:
        _failed += 1
    print("%sok %d - %s" % ("" if cond else "not ", _n, what), flush=True)
    return cond


def done():
    print("1..%d" % _n, flush=True)
    sys.exit(1 if _failed else 0)


def args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    return ap.parse_args()


def is_root():
    return os.geteuid() == 0


def asan():
    return os.environ.get("TODOD_ASAN") == "1"


def pki_dir(build):
    """One dev PKI per build tree, made by todod-pki and reused."""
    d = os.path.join(TOP, build, "regress-pki")
    if not os.path.exists(os.path.join(d, "mtls-client.p12")):
        subprocess.run(["sh", os.path.join(TOP, "certs", "todod-pki"), "-d",
                        d, "dev"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ensure_user():
    """As root the daemon drops to _todod: make sure it exists."""
    if not is_root():
        return
    if subprocess.run(["getent", "passwd", "_todod"],
                      stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["useradd", "-r", "-d", "/var/empty", "-s",
                        "/usr/sbin/nologin", "_todod"], check=True)


CONF = """\
port = {port}
listen on 127.0.0.1 port $port
{listen6}
prefork {prefork}
database "{db}"
timeout request {treq}
timeout idle {tidle}
timeout handshake {ths}
{extra}
tls {{
	certificate "{cert}"
	key "{key}"
	client ca "{ca}"
	{crl}
	{tlsextra}
}}
{rules}
"""


PG_BIN = "/usr/lib/postgresql/15/bin"


class Postgres:
    """A PostgreSQL 15 of the test's own: initdb in a temporary directory,
    listening only on a Unix socket there, run as nobody when the test
    runs as root.  cleanup() stops it and removes it, whatever happened."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="todod-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.proc = None
        self.kw = {}
        if is_root():
            import pwd
            pw = pwd.getpwnam("nobody")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        subprocess.run([os.path.join(PG_BIN, "initdb"), "-D", self.data,
                        "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--locale=C", "--no-sync"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       cwd=self.dir, **self.kw)
        self.start()
        self.psql("CREATE ROLE todod LOGIN")

    def start(self):
        self.logf = open(os.path.join(self.dir, "postgres.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(PG_BIN, "postgres"), "-D", self.data, "-k",
             self.dir, "-p", str(self.port), "-c", "listen_addresses=",
             "-c", "fsync=on", "-c", "synchronous_commit=off"],
            stdout=self.logf, stderr=subprocess.STDOUT, cwd=self.dir,
            **self.kw)
        if not wait_until(lambda: self.psql("SELECT 1", check=False) == "1",
                          30, 0.1):
            raise RuntimeError("postgres did not start")

    def stop(self, sig=signal.SIGINT):
        """SIGINT: the fast shutdown; SIGQUIT: the immediate one."""
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        self.logf.close()

    def pids(self):
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [self.proc.pid] + [int(x) for x in out.split()]

    def psql(self, sql, db="postgres", check=True):
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-AtX", "-h",
                            self.dir, "-p", str(self.port), "-U", "postgres",
                            "-d", db, "-c", sql], capture_output=True,
                           text=True, timeout=20)
        if check and r.returncode != 0:
            raise RuntimeError("psql: %s: %s" % (sql, r.stderr))
        return r.stdout.strip()

    def createdb(self, name):
        self.psql("CREATE DATABASE %s OWNER todod" % name)
        return self.uri(name)

    def uri(self, name):
        return "postgresql:///%s?host=%s&port=%d&user=todod" % (
            name, self.dir, self.port)

    def cleanup(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class OcspResponder:
    """The real `openssl ocsp` answering for a todod-pki CA on a free
    loopback port (regress/tools/ocspresp.py): url, count, stop() for a
    responder that is down, start() to bring it back, delay and override
    for a slow or broken one.  signer is the name of the responder
    certificate in the PKI directory (the CA itself by default)."""

    def __init__(self, pki, ca="ca", signer=None, nmin=None, ndays=None,
                 port=0):
        sys.path.insert(0, os.path.join(TOP, "regress", "tools"))
        import ocspresp
        signer = signer or ca
        self.r = ocspresp.Responder(
            os.path.join(pki, ".pki", ca, "index.txt"),
            os.path.join(pki, ca + ".crt"),
            os.path.join(pki, signer + ".crt"),
            os.path.join(pki, signer + ".key"),
            nmin=nmin, ndays=ndays, port=port)
        self.r.start()

    @property
    def url(self):
        return self.r.url

    @property
    def count(self):
        return self.r.count

    def __getattr__(self, name):
        return getattr(self.r, name)

    def __setattr__(self, name, value):
        if name in ("delay", "override"):
            setattr(self.r, name, value)
        else:
            object.__setattr__(self, name, value)

    def start(self):
        self.r.start()
        return self

    def stop(self):
        self.r.stop()

    def cleanup(self):
        self.r.cleanup()


def ocsp_query(pki, cert, url, issuer="ca", nonce=True, timeout=10):
    """Ask url about certificate NAME with the real `openssl ocsp` client,
    verifying against the PKI's CA: (returncode, stdout+stderr)."""
    cmd = ["openssl", "ocsp", "-issuer", os.path.join(pki, issuer + ".crt"),
           "-cert", os.path.join(pki, cert + ".crt"), "-url", url,
           "-CAfile", os.path.join(pki, issuer + ".crt"),
           "-timeout", str(timeout), "-resp_text"]
    cmd.append("-nonce" if nonce else "-no_nonce")
    r = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=timeout + 10)
    return r.returncode, r.stdout + r.stderr


class Todod:
    """A todod started with -d on a free loopback port."""

    def __init__(self, build, prefork=2, rules=None, extra="",
                 tlsextra="", server="localhost", crl=True, treq=10,
                 tidle=60, ths=10, ipv6=False, env=None, workdir=None,
                 key=None, database=None):
        self.build = os.path.join(TOP, build)
        self.pki = pki_dir(build)
        self.dir = workdir or tempfile.mkdtemp(prefix="todod-test-")
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.conf = os.path.join(self.dir, "todod.conf")
        self.logfile = os.path.join(self.dir, "todod.log")
        self.proc = None
        self.logmark = 0
        self.env = dict(os.environ)
        if asan():
            self.env["TODOD_SANDBOX_DISABLE"] = "1"
            self.env.setdefault("ASAN_OPTIONS",
                                "detect_leaks=1:abort_on_error=0")
        if env:
            self.env.update(env)
        if rules is None:
            rules = ['allow all from cn "mtls-client"',
                     'allow read from cn "auditor"',
                     'allow write from ou "ops"']
        self.params = dict(port=self.port, prefork=prefork,
                           db=database or
                           os.environ.get("TODOD_TEST_DATABASE") or
                           os.path.join(self.dir, "todo.db"),
                           treq=treq, tidle=tidle, ths=ths, extra=extra,
                           tlsextra=tlsextra, server=server,
                           crl=crl, rules="\n".join(rules), ipv6=ipv6,
                           key=key)
        self.write_conf()
        ensure_user()

    def write_conf(self, **kw):
        self.params.update(kw)
        p = self.params
        self.port = p["port"]
        text = CONF.format(
            port=p["port"],
            listen6="listen on ::1 port $port" if p["ipv6"] else "",
            prefork=p["prefork"], db=p["db"], treq=p["treq"],
            tidle=p["tidle"], ths=p["ths"], extra=p["extra"],
            cert=os.path.join(self.pki, p["server"] + ".crt"),
            key=p.get("key") or os.path.join(self.pki, p["server"] + ".key"),
            ca=os.path.join(self.pki, "ca.crt"),
            crl=('crl "%s"' % os.path.join(self.pki, "crl.pem"))
            if p["crl"] else "",
            tlsextra=p["tlsextra"], rules=p["rules"])
        with open(self.conf, "w") as f:
            f.write(text)

    def private_pki(self):
        """A copy of the PKI for a test that revokes or issues; returns
        the todod-pki command line for it."""
        pki = os.path.join(self.dir, "pki")
        shutil.copytree(self.pki, pki, symlinks=True)
        self.pki = pki
        return ["sh", os.path.join(TOP, "certs", "todod-pki"), "-d", pki]

    def on_postgres(self):
        return self.params["db"].startswith("postgresql://")

    def store_row(self, where):
        """One row of the todo table as (created_by, updated_by,
        created_at, updated_at, task) in seconds, from either store."""
        if not self.on_postgres():
            import sqlite3
            db = sqlite3.connect("file:%s?mode=ro" % self.params["db"],
                                 uri=True)
            row = db.execute("SELECT created_by, updated_by, created_at, "
                             "updated_at, task FROM todo WHERE " +
                             where).fetchone()
            db.close()
            return row
        out = subprocess.run(
            [os.path.join(PG_BIN, "psql"), "-AtX", "-F", "\x1f", "-d", self.params["db"], "-c",
             "SELECT created_by, updated_by, extract(epoch FROM "
             "created_at)::bigint, extract(epoch FROM updated_at)::bigint, "
             "task FROM todo WHERE " + where], capture_output=True,
            text=True, timeout=20).stdout.rstrip("\n")
        if not out:
            return None
        f = out.split("\x1f")
        return (f[0], f[1], int(f[2]), int(f[3]), f[4])

    # -- process control ------------------------------------------------
    def start(self, wait=True, expect_fail=False):
        self.logf = open(self.logfile, "ab")
        self.logmark = self.logf.tell()
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "todod"), "-d", "-f", self.conf],
            stdout=self.logf, stderr=subprocess.STDOUT, env=self.env)
        if wait and not expect_fail:
            if not self.wait_log(r"parent: started", 20, since=True):
                raise RuntimeError("todod did not start:\n" + self.log())
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
        self.proc = None
        self.logf.close()
        return rc

    def kill9_all(self):
        """SIGKILL the parent and every child at once."""
        pids = [self.proc.pid] + self.children()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self.proc = None
        self.logf.close()
        wait_until(lambda: not any(pid_alive(p) for p in pids), 5)

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def children(self, title=None):
        """pids of the daemon's children, optionally by process title."""
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    st = f.read()
                ppid = int(st[st.rindex(")") + 2:].split()[1])
                if ppid != self.proc.pid:
                    continue
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(
                        "ascii", "replace")
            except (OSError, ValueError):
                continue
            if title is None or title in cmd:
                out.append(int(pid))
        return sorted(out)

    def workers(self):
        return self.children("worker")

    def keyholders(self):
        return self.children("todod-keyholder")

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=10, count=1, since=False):
        """Wait for pattern in the log (since=True: since the last start)."""
        rx = re.compile(pattern)
        start = self.logmark if since else 0
        return wait_until(lambda: len(rx.findall(self.log()[start:])) >=
                          count, timeout)

    # -- clients ------------------------------------------------------
    def ctx(self, client="mtls-client", version=None, cafile=None):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(cafile or os.path.join(self.pki, "ca.crt"))
        if client:
            c.load_cert_chain(os.path.join(self.pki, client + ".crt"),
                              os.path.join(self.pki, client + ".key"))
        if version == "1.2":
            c.maximum_version = ssl.TLSVersion.TLSv1_2
        elif version == "1.3":
            c.minimum_version = ssl.TLSVersion.TLSv1_3
        return c

    def conn(self, client="mtls-client", version=None, timeout=10):
        return http.client.HTTPSConnection(
            "localhost", self.port, context=self.ctx(client, version),
            timeout=timeout)

    def request(self, method, path, body=None, client="mtls-client",
                headers=None, version=None):
        """One request on a new connection: (status, headers, parsed body)."""
        c = self.conn(client, version)
        h = dict(headers or {})
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else \
                json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return r.status, dict(r.getheaders()), parsed

    def raw(self, data, client="mtls-client", timeout=5, read=True,
            responses=None):
        """Send raw bytes over TLS; return what the server answered: all of
        it until the close, or the first `responses` complete responses."""
        s = socket.create_connection(("127.0.0.1", self.port),
                                     timeout=timeout)
        t = self.ctx(client).wrap_socket(s, server_hostname="localhost")
        t.sendall(data)
        out = b""
        if read:
            try:
                while responses is None or \
                        count_responses(out) < responses:
                    b = t.recv(65536)
                    if not b:
                        break
                    out += b
            except (socket.timeout, ssl.SSLError, ConnectionError):
                pass
        t.close()
        return out

    def curl(self, *extra, client="mtls-client"):
        cmd = ["curl", "-sS", "--max-time", "10", "--cacert",
               os.path.join(self.pki, "ca.crt")]
        if client:
            cmd += ["--cert", os.path.join(self.pki, client + ".crt"),
                    "--key", os.path.join(self.pki, client + ".key")]
        cmd += list(extra)
        return subprocess.run(cmd, capture_output=True, timeout=30)

    def url(self, path="/todo"):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def s_client(self, client="mtls-client", extra=(), data=b""):
        cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.port,
               "-CAfile", os.path.join(self.pki, "ca.crt"),
               "-servername", "localhost", "-verify_return_error",
               "-ign_eof"]
        if client:
            cmd += ["-cert", os.path.join(self.pki, client + ".crt"),
                    "-key", os.path.join(self.pki, client + ".key")]
        cmd += list(extra)
        return subprocess.run(cmd, input=data, capture_output=True,
                              timeout=30)

    def metrics(self, client="mtls-client"):
        st, _, body = self.request("GET", "/metrics", client=client)
        out = {}
        if st != 200:
            return out
        text = body.decode() if isinstance(body, bytes) else str(body)
        for line in text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, val = line.rpartition(" ")
            out[name] = float(val)
        return out


def key_secrets(keyfile):
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


def scan_memory(pid, needles):
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


def count_responses(data):
    """Complete final responses (Content-Length framed) at the start of
    data; 100 Continue does not count."""
    n = 0
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return n
        head = data[:end].decode("latin-1")
        m = re.search(r"(?im)^content-length: *(\d+)", head)
        if head.startswith("HTTP/1.1 100"):
            data = data[end + 4:]
            continue
        if m is None:
            return n
        size = end + 4 + int(m.group(1))
        if len(data) < size:
            return n
        n += 1
        data = data[size:]


# -- a child's channel, for tests that play a compromised worker -------
def imsg_types():
    """The message numbers, read from common/proto.h in enum order."""
    with open(os.path.join(TOP, "common", "proto.h")) as f:
        text = f.read()
    body = text[text.index("enum imsg_type {"):]
    body = re.sub(r"/\*.*?\*/", "", body[:body.index("};")], flags=re.S)
    return {n: i for i, n in enumerate(re.findall(r"\b(IMSG_\w+)\b", body))}


SYS_pidfd_open = 434
SYS_pidfd_getfd = 438


def steal_channel(pid):
    """A copy of process pid's fd 3 (its channel to the parent), taken
    with pidfd_open + pidfd_getfd (root: the process is another user's)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pidfd = libc.syscall(SYS_pidfd_open, pid, 0)
    if pidfd < 0:
        raise OSError(ctypes.get_errno(), "pidfd_open")
    try:
        fd = libc.syscall(SYS_pidfd_getfd, pidfd, 3, 0)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "pidfd_getfd")
    finally:
        os.close(pidfd)
    return fd


def ipc_msg(mtype, payload=b"", peerid=0):
    return struct.pack("=5I", mtype, len(payload), 0, peerid, 0) + payload


def ipc_str(s):
    b = s.encode() + b"\0"
    return struct.pack("=I", len(b)) + b


def ipc_read_msg(sock):
    """One message from a stream socket: (type, payload); descriptors
    passed along are discarded."""
    def exact(n):
        b = b""
        while len(b) < n:
            d = sock.recv(n - len(b))
            if not d:
                raise EOFError
            b += d
        return b
    mtype, mlen, flags, peerid, pid = struct.unpack("=5I", exact(20))
    return mtype, exact(mlen) if mlen else b""


def skip(why):
    """One TAP line for a check that cannot run here."""
    global _n
    _n += 1
    print("ok %d # skip %s" % (_n, why), flush=True)


def wait_until(fn, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if fn():
            return True
        time.sleep(step)
    return bool(fn())


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def rss_kb(pid):
    return int(proc_status(pid)["VmRSS"].split()[0])
