#!/usr/bin/env python3
"""The built-in page in a real browser (issue 17): headless Chromium with
an NSS database holding the dev CA and a client certificate (todod-pki
pkcs12, imported with pk12util) and the AutoSelectCertificateForUrls
policy, driven over the DevTools protocol (--remote-debugging-pipe, no
websocket needed).  It opens the page, sees the list and the CN, adds,
completes, edits and deletes items with real clicks and key presses and
finds the changes in the store; a read-only certificate sees its 403 on
the page; without a certificate the page does not load; a cross-site form
POST and fetch from another loopback origin are refused (todod's log and
store say so).  A screenshot is kept under build/ and its path printed."""

import base64
import fcntl
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time

from todtest import TOP, Todod, args, done, ok, wait_until

POLICY_DIR = "/etc/chromium/policies/managed"
PASS = "todod-test"
REFUSED = r'cn="mtls-client" "POST /todo HTTP/1\.1" 403'


class Chromium:
    """One headless Chromium with its own HOME (NSS database) and profile,
    spoken to over the DevTools pipe: fd 3 commands in, fd 4 answers out,
    each message JSON ended by a NUL byte."""

    def __init__(self, home, logpath):
        self.home = home
        self.profile = tempfile.mkdtemp(prefix="todod-chromium-")
        cmd_r, self.cmd_w = self._pipe()
        self.out_r, out_w = self._pipe()

        def child_fds():
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        env = dict(os.environ, HOME=home)
        self.log = open(logpath, "ab")
        self.proc = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--window-size=900,640", "--user-data-dir=" + self.profile,
             "--remote-debugging-pipe", "about:blank"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=child_fds, pass_fds=(3, 4))
        os.close(cmd_r)
        os.close(out_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    @staticmethod
    def _pipe():
        """A pipe whose ends are above fd 4, so dup2 to 3 and 4 in the
        child cannot overwrite one of them."""
        r, w = os.pipe()
        hi = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (r, w)]
        os.close(r)
        os.close(w)
        return hi[0], hi[1]

    def _read_msg(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            rd, _, _ = select.select([self.out_r], [], [], left)
            if not rd:
                return None
            chunk = os.read(self.out_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self.buf += chunk
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def call(self, method, params=None, timeout=60, session=True):
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_msg(deadline)
            if m is None:
                raise RuntimeError("no answer to %s" % method)
            if m.get("id") == mid:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def open_tab(self):
        tid = self.call("Target.createTarget", {"url": "about:blank"},
                        session=False)["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": tid, "flatten": True},
                                 session=False)["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Log.enable")

    def console(self):
        """What the page logged: console calls, CSP and network errors."""
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e.get("method") == "Log.entryAdded":
                out.append(p["entry"].get("text", ""))
            elif e.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(p.get("exceptionDetails", {})))
        return out

    def navigate(self, url):
        return self.call("Page.navigate", {"url": url})

    def js(self, expr, timeout=60):
        r = self.call("Runtime.evaluate",
                      {"expression": expr, "returnByValue": True,
                       "awaitPromise": True}, timeout=timeout)
        if "exceptionDetails" in r:
            return None
        return r.get("result", {}).get("value")

    def wait_js(self, expr, timeout=45):
        """Poll expr until it is truthy; returns its last value."""
        end = time.monotonic() + timeout
        v = None
        while time.monotonic() < end:
            try:
                v = self.js(expr)
            except RuntimeError:
                v = None
            if v:
                return v
            time.sleep(0.2)
        return v

    def click(self, selector):
        """A real mouse click in the middle of the element."""
        r = self.js("(() => { const e = document.querySelector(%s); "
                    "if (!e) return null; e.scrollIntoView(); "
                    "const b = e.getBoundingClientRect(); "
                    "return [b.x + b.width / 2, b.y + b.height / 2]; })()" %
                    json.dumps(selector))
        if not r:
            return False
        for t in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent",
                      {"type": t, "x": r[0], "y": r[1], "button": "left",
                       "clickCount": 1})
        return True

    def type_text(self, selector, text, clear=False):
        self.js("(() => { const e = document.querySelector(%s); e.focus(); "
                "%s })()" % (json.dumps(selector),
                             "e.select();" if clear else ""))
        self.call("Input.insertText", {"text": text})

    def key(self, key, code, vk):
        for t in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent",
                      {"type": t, "key": key, "code": code,
                       "windowsVirtualKeyCode": vk})

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for fd in (self.cmd_w, self.out_r):
            os.close(fd)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def nss_home(pki, client):
    """A HOME whose ~/.pki/nssdb trusts the dev CA and, if client is set,
    holds that client's certificate and key, imported from a PKCS#12 made
    by todod-pki (so the bundle format is tested too)."""
    home = tempfile.mkdtemp(prefix="todod-home-")
    db = os.path.join(home, ".pki", "nssdb")
    os.makedirs(db)
    nss = "sql:" + db
    subprocess.run(["certutil", "-N", "-d", nss, "--empty-password"],
                   check=True, capture_output=True, timeout=30)
    subprocess.run(["certutil", "-A", "-d", nss, "-n", "todod dev CA", "-t",
                    "C,,", "-i", os.path.join(pki, "ca.crt")], check=True,
                   capture_output=True, timeout=30)
    if client:
        work = tempfile.mkdtemp(prefix="todod-p12-")
        for f in ("ca.crt", client + ".crt", client + ".key"):
            shutil.copy(os.path.join(pki, f), work)
        subprocess.run(["sh", os.path.join(TOP, "certs", "todod-pki"), "-d",
                        work, "pkcs12", client],
                       env=dict(os.environ, TODOD_PKI_PASS=PASS), check=True,
                       capture_output=True, timeout=60)
        subprocess.run(["pk12util", "-d", nss, "-i",
                        os.path.join(work, client + ".p12"), "-W", PASS],
                       check=True, capture_output=True, timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    return home


def write_policy(path, port):
    """Chromium picks the client certificate for the daemon's origin
    without asking (there is nobody to ask in headless mode)."""
    rule = {"pattern": "https://127.0.0.1:%d" % port,
            "filter": {"ISSUER": {"CN": "todod dev CA"}}}
    made = not os.path.isdir(POLICY_DIR)
    os.makedirs(POLICY_DIR, exist_ok=True)
    with open(path, "w") as f:
        json.dump({"AutoSelectCertificateForUrls": [json.dumps(rule)]}, f)
    return made


def store():
    r = t.curl(t.url("/todo"))
    try:
        return {x["task"]: x for x in json.loads(r.stdout)["todos"]}
    except (ValueError, KeyError):
        return None


def evil_server(port):
    """Another origin on loopback: a page that makes the browser POST to
    todod, once with fetch (no Content-Type, which todod's JSON rule
    alone would let through) and once with an auto-submitted form."""
    target = "https://127.0.0.1:%d/todo" % port
    page = ("<!DOCTYPE html><title>elsewhere</title>"
            "<form id=f method=POST enctype=text/plain action=%s>"
            "<input name='{\"task\":\"forged by form\",\"x\":\"' value='\"}'>"
            "</form><script>"
            "fetch(%s, {method: 'POST', mode: 'no-cors', credentials: "
            "'include', body: new Blob(['{\"task\":\"forged by fetch\"}'])})"
            ".catch(() => 0).finally(() => { document.title = 'sent'; "
            "setTimeout(() => document.getElementById('f').submit(), 200); "
            "});</script>" % (target, json.dumps(target))).encode()

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def test_page(c):
    c.open_tab()
    c.navigate(t.url("/"))
    n = c.wait_js("document.body && document.body.dataset.loaded")
    ok(n == "2", "the page loads and shows the list (%r items)" % n)
    who = c.js("document.getElementById('who').textContent")
    ok(who == "mtls-client", "the page shows the certificate's CN (%r)" % who)
    items = c.js("[...document.querySelectorAll('#list li .task')]"
                 ".map(e => e.textContent)")
    ok(items == ["first seed", "<b>second</b> seed"],
       "the list as the store has it, markup shown as text (%r)" % items)
    ok(c.js("document.querySelectorAll('#list b').length") == 0,
       "a task's text is not parsed as HTML")

    c.type_text("#new-task", "added in chromium")
    c.click("#add-form button[type=submit]")
    ok(c.wait_js("document.body.dataset.loaded === '3'") is True,
       "after Add the page lists three items")
    s = store()
    ok(s is not None and "added in chromium" in s,
       "the item added through the page is in the store")
    ok(t.wait_log(r'cn="mtls-client" "POST /todo HTTP/1\.1" 201', 30),
       "todod logged the page's POST as 201")

    c.click("#list li:nth-child(1) input[type=checkbox]")
    ok(wait_until(lambda: (store() or {}).get("first seed", {})
                  .get("done") is True, 30),
       "ticking the box completes the item in the store")
    c.wait_js("document.querySelector('#list li:nth-child(1)')"
              ".classList.contains('done')")

    c.click("#list li:nth-child(3) .edit-button")
    c.wait_js("document.querySelector('#list li:nth-child(3) input.edit')")
    c.type_text("#list li:nth-child(3) input.edit", "edited in chromium",
                clear=True)
    c.key("Enter", "Enter", 13)
    ok(wait_until(lambda: "edited in chromium" in (store() or {}), 30),
       "Edit, new text, Enter: the store has the new text")

    c.click("#list li:nth-child(2) .delete-button")
    ok(wait_until(lambda: "<b>second</b> seed" not in (store() or {"x": 1}),
                  30), "Delete removes the item from the store")
    c.wait_js("document.body.dataset.loaded === '2'")
    status = c.js("document.getElementById('status').hidden")
    ok(status is True, "no error shown after the successful writes")
    bad = [m for m in c.console() if "Content Security Policy" in m or
           "Uncaught" in m or "exception" in m.lower()]
    ok(not bad, "no CSP violation or script error on the page (%r)" % bad)


def test_readonly(home_ro, logpath):
    """The auditor certificate may read: the page shows the list, and an
    Add shows the 403 plainly."""
    c = Chromium(home_ro, logpath)
    try:
        c.open_tab()
        c.navigate(t.url("/"))
        n = c.wait_js("document.body && document.body.dataset.loaded")
        who = c.js("document.getElementById('who') && "
                   "document.getElementById('who').textContent")
        ok(n == "2" and who == "auditor",
           "read-only certificate: the page lists the items (%r, %r)" %
           (n, who))
        c.type_text("#new-task", "not allowed")
        c.click("#add-form button[type=submit]")
        msg = c.wait_js("!document.getElementById('status').hidden && "
                        "document.getElementById('status').textContent")
        ok(isinstance(msg, str) and "403" in msg and "not authorized" in msg,
           "read-only certificate: the page shows the 403 (%r)" % msg)
        c.screenshot(shot_ro)
    finally:
        c.close()


def test_cross_site(c):
    srv = evil_server(t.port)
    try:
        before = len(t.log())
        refused = len(re.findall(REFUSED, t.log()))
        c.navigate("http://127.0.0.1:%d/" % srv.server_address[1])
        ok(c.wait_js("document.title === 'sent'") is True,
           "the other origin's page ran its fetch")
        got = t.wait_log(REFUSED, 45, count=refused + 2)
        new = t.log()[before:]
        ok(got, "todod refused both cross-site POSTs with 403, certificate "
           "presented (log: %r)" % [ln for ln in new.splitlines()
                                     if "POST" in ln])
        ok("201" not in "".join(ln for ln in new.splitlines()
                                if "POST" in ln),
           "no cross-site POST was accepted")
        body = c.wait_js("document.body && document.body.innerText."
                         "includes('cross-site write refused') && "
                         "document.body.innerText")
        ok(body and "cross-site write refused" in body,
           "the form POST's answer is the 403 JSON")
        s = store()
        ok(s is not None and not any("forged" in k for k in s),
           "nothing forged reached the store")
    finally:
        srv.shutdown()


def test_no_cert(home_none, logpath):
    c = Chromium(home_none, logpath)
    try:
        c.open_tab()
        before = len(t.log())
        c.navigate(t.url("/"))
        # bounded: the handshake fails at once, a loaded machine is slow
        t.wait_log("tls handshake failed", 30, count=t.log().count(
            "tls handshake failed") + 1)
        time.sleep(1)
        who = c.js("document.getElementById('who') !== null")
        ok(who is False, "without a certificate the page does not load")
        new = t.log()[before:]
        ok('"GET / HTTP/1.1" 200' not in new and
           "tls handshake failed" in new,
           "todod logged a failed handshake and served nothing (%r)" %
           new.strip().splitlines()[-1:])
    finally:
        c.close()


a = args()
t = Todod(a.build, prefork=1)
t.start()
outdir = os.path.join(TOP, a.build, "chromium")
os.makedirs(outdir, exist_ok=True)
shot = os.path.join(outdir, "todod-page.png")
shot_ro = os.path.join(outdir, "todod-page-readonly.png")
clog = os.path.join(outdir, "chromium.log")
open(clog, "w").close()
policy = os.path.join(POLICY_DIR, "todod-test-%d.json" % os.getpid())
homes = []
made_dir = False
try:
    for task in ("first seed", "<b>second</b> seed"):
        t.curl("-X", "POST", "-H", "Content-Type: application/json", "-d",
               json.dumps({"task": task}), t.url("/todo"))
    ok(shutil.which("chromium") is not None and
       shutil.which("pk12util") is not None,
       "chromium and pk12util are installed")
    homes = [nss_home(t.pki, "mtls-client"), nss_home(t.pki, "auditor"),
             nss_home(t.pki, None)]
    made_dir = write_policy(policy, t.port)
    b = Chromium(homes[0], clog)
    try:
        test_page(b)
        b.screenshot(shot)
        test_cross_site(b)
    finally:
        b.close()
    test_readonly(homes[1], clog)
    test_no_cert(homes[2], clog)
    ok(os.path.getsize(shot) > 1000, "screenshot kept")
    print("# screenshot: %s" % shot)
    print("# read-only screenshot: %s" % shot_ro)
finally:
    if os.path.exists(policy):
        os.unlink(policy)
    if made_dir:
        # only what this test created, and only if nothing else is there
        for d in (POLICY_DIR, os.path.dirname(POLICY_DIR)):
            try:
                os.rmdir(d)
            except OSError:
                break
    for h in homes:
        shutil.rmtree(h, ignore_errors=True)
    t.cleanup()
done()
