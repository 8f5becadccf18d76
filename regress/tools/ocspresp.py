#!/usr/bin/env python3
"""A loopback OCSP responder for tests, in front of the real `openssl ocsp`.

`openssl ocsp -port N` listens on every address ([::]:N), and tests use
loopback only.  So Python's http.server listens on 127.0.0.1 and, for each
request (POST of DER, or GET /BASE64 as RFC 6960 appendix A.1 allows), runs

    openssl ocsp -index INDEX -CA CA -rsigner R -rkey K \
        -reqin req.der -respout resp.der [-nmin N | -ndays N]

and answers with the DER, Content-Type application/ocsp-response.  The
answer is openssl's own: it reads the CA database afresh each time (so a
revocation made by `todod-pki revoke` is answered at once) and echoes the
request's nonce.

From a test (see OcspResponder in regress/integ/todtest.py):

    r = Responder(index, ca, rsigner, rkey, nmin=5).start()
    r.url             # http://127.0.0.1:PORT/
    r.count           # requests answered or attempted
    r.delay = 3       # answer late (a slow responder)
    r.override = b""  # answer with these bytes instead (garbage)
    r.stop()          # responder down: connections are refused

From a shell:

    ocspresp.py --index .pki/ca/index.txt --ca ca.crt --rsigner ca.crt \
        --rkey ca.key [--port N] [--nmin N | --ndays N]
"""

import argparse
import base64
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse

MAX_REQUEST = 64 * 1024		# an OCSP request is a few hundred bytes
OPENSSL_TIMEOUT = 20		# seconds for one openssl ocsp run
MAX_DELAY = 60			# bound on the artificial delay


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        if self.server.owner.verbose:
            sys.stderr.write("ocspresp: " + (fmt % args) + "\n")

    def do_POST(self):
        try:
            n = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.send_error(411, "Content-Length required")
            return
        if n < 0 or n > MAX_REQUEST:
            self.send_error(413, "request too large")
            return
        self._answer(self.rfile.read(n))

    def do_GET(self):
        b64 = urllib.parse.unquote(self.path.lstrip("/"))
        if not b64 or len(b64) > MAX_REQUEST:
            self.send_error(400, "no request in the path")
            return
        try:
            req = base64.b64decode(b64, validate=True)
        except ValueError:
            self.send_error(400, "bad base64 in the path")
            return
        self._answer(req)

    def _answer(self, req):
        owner = self.server.owner
        with owner.lock:
            owner.count += 1
            owner.last_request = req
            delay, override = owner.delay, owner.override
        if delay and owner.stopping.wait(min(delay, MAX_DELAY)):
            return
        if override is not None:
            resp = override
        else:
            resp = owner.respond(req)
            if resp is None:
                self.send_error(500, "openssl ocsp failed")
                return
        with owner.lock:
            owner.last_response = resp
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(resp)))
        self.end_headers()
        self.wfile.write(resp)


class Responder:
    """openssl ocsp behind a loopback HTTP listener (see the module
    comment).  start() returns self; stop() may be called more than once
    and start() again after it (same port when it is still free)."""

    def __init__(self, index, ca, rsigner, rkey, nmin=None, ndays=None,
                 port=0, host="127.0.0.1", verbose=False):
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("loopback only: %s" % host)
        self.index, self.ca = index, ca
        self.rsigner, self.rkey = rsigner, rkey
        self.nmin, self.ndays = nmin, ndays
        self.host, self.port = host, port
        self.verbose = verbose
        self.count = 0
        self.failures = 0
        self.delay = 0
        self.override = None
        self.last_request = None
        self.last_response = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = None
        self.thread = None
        self.tmp = tempfile.mkdtemp(prefix="ocspresp-")

    @property
    def url(self):
        return "http://%s:%d/" % (self.host, self.port)

    def command(self, reqin, respout):
        cmd = ["openssl", "ocsp", "-index", self.index, "-CA", self.ca,
               "-rsigner", self.rsigner, "-rkey", self.rkey,
               "-reqin", reqin, "-respout", respout]
        if self.nmin is not None:
            cmd += ["-nmin", str(self.nmin)]
        elif self.ndays is not None:
            cmd += ["-ndays", str(self.ndays)]
        return cmd

    def respond(self, req):
        """openssl ocsp's DER answer to the DER request req, or None."""
        fd, reqin = tempfile.mkstemp(dir=self.tmp, suffix=".req")
        respout = reqin[:-4] + ".resp"
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(req)
            r = subprocess.run(self.command(reqin, respout),
                               capture_output=True,
                               timeout=OPENSSL_TIMEOUT)
            if r.returncode != 0 or not os.path.exists(respout):
                with self.lock:
                    self.failures += 1
                if self.verbose:
                    sys.stderr.write(r.stderr.decode("utf-8", "replace"))
                return None
            with open(respout, "rb") as f:
                return f.read()
        except subprocess.TimeoutExpired:
            with self.lock:
                self.failures += 1
            return None
        finally:
            for p in (reqin, respout):
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass

    def start(self):
        if self.httpd is not None:
            return self
        self.stopping.clear()
        cls = http.server.ThreadingHTTPServer
        if ":" in self.host:
            cls = type("V6Server", (cls,),
                       {"address_family": socket.AF_INET6})
        self.httpd = cls((self.host, self.port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        """Responder down: the listening socket is closed, so a client
        gets a connection refused; delayed answers are dropped."""
        if self.httpd is None:
            return
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
        self.httpd = None
        self.thread = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def reset(self):
        with self.lock:
            self.count = 0
            self.failures = 0


def main():
    ap = argparse.ArgumentParser(description="loopback OCSP responder "
                                 "over openssl ocsp")
    ap.add_argument("--index", required=True, help="CA database index.txt")
    ap.add_argument("--ca", required=True, help="CA certificate (PEM)")
    ap.add_argument("--rsigner", required=True,
                    help="responder certificate (the CA or a delegate)")
    ap.add_argument("--rkey", required=True, help="responder key")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--nmin", type=int)
    g.add_argument("--ndays", type=int)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    r = Responder(a.index, a.ca, a.rsigner, a.rkey, nmin=a.nmin,
                  ndays=a.ndays, port=a.port, host=a.host,
                  verbose=a.verbose).start()
    print(r.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        r.cleanup()


if __name__ == "__main__":
    main()
