#!/usr/bin/env python3
"""The mTLS lab's server, re-created as the benchmark baseline.

What the user started from, the mutual-TLS lab: Python's http.server with
ssl, one thread, HTTP/1.0 (one request per connection), client certificate
required and checked against the lab CA, TLS 1.2 at least, GET and POST
/todo with JSON bodies, an in-memory list seeded with the lab's five items,
and a line on stderr for every request.  This is written from that
description, not copied; it exists so that todod can be measured against
the thing it replaces.
"""

import argparse
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

SEED_ITEMS = [
    ("Set up local CA", True),
    ("Issue server certificate", True),
    ("Issue client certificate", True),
    ("Configure mTLS server", True),
    ("Validate mutual auth", False),
]


def log(line):
    sys.stderr.write("[SERVER] %s\n" % line)
    sys.stderr.flush()


class TodoStore:
    """The lab keeps its list in memory: lost on restart."""

    def __init__(self):
        self.items = [
            {"id": i + 1, "task": task, "done": done}
            for i, (task, done) in enumerate(SEED_ITEMS)
        ]

    def add(self, task, done):
        next_id = max((it["id"] for it in self.items), default=0) + 1
        item = {"id": next_id, "task": task, "done": done}
        self.items.append(item)
        return item


class LabHandler(BaseHTTPRequestHandler):
    # HTTP/1.0, as in the lab: the server closes after every response.
    protocol_version = "HTTP/1.0"

    def peer_cn(self):
        cert = self.connection.getpeercert() or {}
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return value
        return None

    def log_message(self, fmt, *args):
        log("REQUEST | peer=%s | cert-CN=%r | %s"
            % (self.client_address[0], self.peer_cn(), fmt % args))

    def send_json(self, status, obj):
        body = json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/todo":
            self.send_json(404, {"error": "not found"})
            return
        cn = self.peer_cn()
        self.send_json(200, {"client": cn, "todos": self.server.store.items})
        log("AUTHENTICATED | CN=%r | serving /todo" % cn)

    def read_json(self):
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return None, "bad Content-Length"
        if length < 0 or length > 65536:
            return None, "bad Content-Length"
        try:
            return json.loads(self.rfile.read(length).decode("utf-8")), None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None, "body is not valid JSON"

    def do_POST(self):
        if self.path != "/todo":
            self.send_json(404, {"error": "not found"})
            return
        cn = self.peer_cn()
        data, err = self.read_json()
        if err is None and not isinstance(data, dict):
            err = "body must be a JSON object"
        if err is None:
            task = data.get("task")
            done = data.get("done", False)
            if not isinstance(task, str) or not task.strip():
                err = "'task' must be a non-empty string"
            elif not isinstance(done, bool):
                err = "'done' must be a boolean"
        if err is not None:
            self.send_json(400, {"error": err})
            return
        item = self.server.store.add(task, done)
        self.send_json(201, {"client": cn, "message": "TODO item created",
                             "todo": item})
        log("AUTHENTICATED | CN=%r | creating TODO" % cn)
        log("TODO CREATED | CN=%r | item=%r" % (cn, item))


def tls_context(cert, key, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=ca)
    ctx.load_cert_chain(certfile=cert, keyfile=key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18445)
    ap.add_argument("--cert", required=True, help="server certificate (PEM)")
    ap.add_argument("--key", required=True, help="server key (PEM)")
    ap.add_argument("--ca", required=True, help="CA clients must chain to")
    ap.add_argument("--backlog", type=int, default=HTTPServer.request_queue_size,
                    help="listen backlog (the stdlib's default: %(default)s)")
    args = ap.parse_args()

    try:
        ctx = tls_context(args.cert, args.key, args.ca)
        httpd = HTTPServer((args.host, args.port), LabHandler,
                           bind_and_activate=False)
        httpd.request_queue_size = args.backlog
        httpd.server_bind()
        httpd.server_activate()
    except (OSError, ssl.SSLError) as e:
        sys.exit("labserver: %s" % e)
    httpd.store = TodoStore()
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    log("mTLS server listening on https://%s:%d" % (args.host, args.port))
    log("Requiring client cert signed by: %s" % args.ca)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()


if __name__ == "__main__":
    main()
