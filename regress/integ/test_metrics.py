#!/usr/bin/env python3
"""GET /metrics in the Prometheus text format, scraped with a real client:
the figures are aggregated over all workers and move with the traffic."""

import re
import ssl
import urllib.request
import os

from todtest import Todod, args, done, ok

a = args()
t = Todod(a.build, prefork=2)
t.start()


def scrape():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(os.path.join(t.pki, "ca.crt"))
    ctx.load_cert_chain(os.path.join(t.pki, "mtls-client.crt"),
                        os.path.join(t.pki, "mtls-client.key"))
    with urllib.request.urlopen("https://localhost:%d/metrics" % t.port,
                                context=ctx) as r:
        return r.status, r.headers["Content-Type"], r.read().decode()


def parse(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, val = line.rpartition(" ")
            out[name] = float(val)
    return out


try:
    st, ctype, text = scrape()
    ok(st == 200 and ctype.startswith("text/plain; version=0.0.4"),
       "/metrics is Prometheus text (%s)" % ctype)
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, kind in [("todod_requests_total", "counter"),
                       ("todod_handshakes_total", "counter"),
                       ("todod_handshakes_resumed_total", "counter"),
                       ("todod_handshake_failures_total", "counter"),
                       ("todod_connections_open", "gauge"),
                       ("todod_keyholder_sign_seconds", "histogram"),
                       ("todod_keyholder_signatures_total", "counter"),
                       ("todod_store_commit_seconds", "histogram"),
                       ("todod_todos", "gauge"),
                       ("todod_child_restarts_total", "counter"),
                       ("todod_reloads_total", "counter"),
                       ("todod_certificate_expiry_seconds", "gauge"),
                       ("todod_crl_next_update_seconds", "gauge")]:
        ok(types.get(name) == kind, "%s is a %s" % (name, kind))
    before = parse(text)
    n = 30
    for i in range(n):
        t.request("POST", "/todo", {"task": "m%d" % i})
    for i in range(n):
        t.request("GET", "/todo")
    try:
        t.request("GET", "/todo", client="expired")
    except OSError:
        pass
    after = parse(scrape()[2])
    d = lambda k: after.get(k, 0) - before.get(k, 0)
    ok(d('todod_requests_total{method="POST",code="201"}') == n,
       "POSTs counted over both workers (%d)" %
       d('todod_requests_total{method="POST",code="201"}'))
    ok(d('todod_requests_total{method="GET",code="200"}') >= n,
       "GETs counted")
    ok(d("todod_handshakes_total") >= 2 * n, "handshakes counted (%d)" %
       d("todod_handshakes_total"))
    ok(d('todod_handshake_failures_total{reason="expired"}') == 1,
       "a failure counted by reason")
    ok(d("todod_keyholder_sign_seconds_count") >= 2 * n,
       "keyholder signatures counted (%d)" %
       d("todod_keyholder_sign_seconds_count"))
    per = [k for k in after
           if k.startswith("todod_keyholder_signatures_total{")]
    okw = sum(after[k] for k in per if 'result="ok"' in k)
    ok(len(per) == 4 and okw == after.get("todod_keyholder_sign_seconds_count"),
       "signatures by worker: %d series, %d signed, the histogram's count"
       % (len(per), okw))
    ok(after.get('todod_keyholder_sign_seconds_bucket{le="+Inf"}') ==
       after.get("todod_keyholder_sign_seconds_count"),
       "histogram +Inf bucket equals its count")
    ok(d("todod_store_commit_seconds_count") >= 1 and
       d("todod_store_writes_total") == n, "commits and writes counted")
    ok(after.get("todod_todos") == before.get("todod_todos", 0) + n,
       "todo count follows the store")
    ok(after.get("todod_connections_open", 0) >= 1,
       "the scraping connection is open")
    days = after.get('todod_certificate_expiry_seconds{certificate="server"}',
                     0) / 86400
    ok(300 < days <= 366, "server certificate expires in %.0f days" % days)
    days = after.get('todod_certificate_expiry_seconds{certificate="ca"}',
                     0) / 86400
    ok(3000 < days <= 3651, "CA expires in %.0f days" % days)
    ok(0 < after.get("todod_crl_next_update_seconds", 0) <= 31 * 86400,
       "CRL next update within 30 days")
    ok(after.get("todod_workers") == 2, "two workers")
finally:
    t.stop()
    t.cleanup()
done()
