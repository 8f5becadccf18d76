#include <sys/types.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"
#include "paths.h"
#include "proc.h"
#include "proto.h"
#include "shm.h"
#include "backend.h"

/*
 * /metrics in the Prometheus text format.  A worker forwards the request;
 * the parent sums the counters of every worker (from their shared
 * segments, plus what workers that died had counted) and adds its own, so
 * a scrape through any worker sees the whole daemon.
 */

static const char *met_methods[MET_NMETHODS] = {
	"GET", "POST", "PATCH", "DELETE", "other"
};

static const char *met_hsfail[HSF_MAX] = {
	[HSF_NO_CERT] = "no_certificate",
	[HSF_UNKNOWN_CA] = "unknown_ca",
	[HSF_EXPIRED] = "expired",
	[HSF_NOT_YET_VALID] = "not_yet_valid",
	[HSF_REVOKED] = "revoked",
	[HSF_BAD_USAGE] = "bad_usage",
	[HSF_BAD_CERT] = "bad_certificate",
	[HSF_PROTOCOL] = "protocol",
	[HSF_TIMEOUT] = "timeout",
	[HSF_CLOSED] = "closed",
	[HSF_KEYHOLDER] = "keyholder",
	[HSF_OTHER] = "other",
};

static const char *met_rev_sources[MET_REV_NSOURCE] = { "crl", "ocsp" };
static const char *met_rev_results[MET_REV_NRESULT] = {
	"good", "revoked", "unknown", "noanswer"
};

static void
metrics_add(struct shm_counters *sum, const struct shm_counters *c)
{
	const uint64_t	*src = (const uint64_t *)c;
	uint64_t	*dst = (uint64_t *)sum;
	size_t		 i;

	/* the struct is nothing but uint64_t counters */
	for (i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		dst[i] += __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void
metrics_init(struct metrics *m, struct proc_group *workers,
    const struct shm_state *state,
    const struct store_backend *store)
{
	memset(m, 0, sizeof(*m));
	m->workers = workers;
	m->state = state;
	m->store = store;
}

/* A new worker's counters segment: it writes, we only read. */
void
metrics_worker_start(struct metrics *m, struct proc *w)
{
	struct ipc_wbuf	*wb;
	void		*map;
	int		 fd;

	if ((fd = shm_create("todod-counters", sizeof(struct shm_counters),
	    &map)) == -1)
		fatal("counters segment");
	shm_unmap(map, sizeof(struct shm_counters));
	if ((m->ctr[w->id - 1] = shm_map(fd, sizeof(struct shm_counters),
	    0)) == NULL)
		fatal("map counters");
	if ((wb = ipc_create(IMSG_SHM, 0, sizeof(uint32_t))) == NULL)
		fatal("%s", __func__);
	ipc_add_u32(wb, SHM_COUNTERS);
	proc_send(w, wb, fd);
}

/* Keep what a dead worker counted; its open connections are gone. */
void
metrics_retire(struct metrics *m, struct proc *w)
{
	struct shm_counters	*c = m->ctr[w->id - 1];

	if (c == NULL)
		return;
	metrics_add(&m->retired, c);
	m->retired.conns_open -= c->conns_open;
	m->retired.cache_items -= c->cache_items;
	m->retired.cache_bytes -= c->cache_bytes;
	shm_unmap(c, sizeof(*c));
	m->ctr[w->id - 1] = NULL;
}

/* A group commit of nwrites took usec. */
void
metrics_commit(struct metrics *m, uint64_t usec, int nwrites)
{
	static const uint64_t	 bounds[MET_SIGN_NB] = MET_SIGN_BOUNDS;
	int			 i;

	for (i = 0; i < MET_SIGN_NB && usec > bounds[i]; i++)
		;
	m->commit_bucket[i]++;
	m->commit_count++;
	m->commit_sum_us += usec;
	m->store_writes += nwrites;
}

/* Writes refused because the store failed. */
void
metrics_refused(struct metrics *m, int n)
{
	m->store_refused += n;
}

void
metrics_restart(struct metrics *m, enum metrics_role role)
{
	m->restarts[role]++;
}

void
metrics_reload(struct metrics *m, int ok)
{
	if (ok)
		m->reloads_ok++;
	else
		m->reloads_failed++;
}

/* A CRL refresh: ok 1 when a good CRL came (new or unchanged). */
void
metrics_crl_fetch(struct metrics *m, int ok)
{
	m->crl_fetches[ok ? 1 : 0]++;
	if (ok)
		m->crl_fetched = time(NULL);
}

/* The staple in use: its thisUpdate and nextUpdate (0: none). */
void
metrics_staple(struct metrics *m, time_t thisupd, time_t nextupd)
{
	m->staple_thisupd = thisupd;
	m->staple_nextupd = nextupd;
}

void
metrics_staple_fetch(struct metrics *m, enum metrics_staple_result r)
{
	m->staple_fetches[r]++;
}

/* A client OCSP responder exchange: ok is a verified answer. */
void
metrics_ocsp_fetch(struct metrics *m, int ok)
{
	m->ocsp_fetches[ok ? 1 : 0]++;
}

void
metrics_ocsp_cache_hit(struct metrics *m)
{
	m->ocsp_cache_hits++;
}

/* When the configuration in use expires; crl 0: it has no CRL. */
void
metrics_expiry(struct metrics *m, time_t cert, time_t ca, time_t crl)
{
	m->have_expiry = 1;
	m->cert_notafter = cert;
	m->ca_notafter = ca;
	m->crl_nextupdate = crl;
}

static void
metrics_head(struct buf *b, const char *name, const char *type,
    const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A metric with a single, unlabelled value. */
static void
metrics_one(struct buf *b, const char *name, const char *type,
    const char *help, long long v)
{
	metrics_head(b, name, type, help);
	buf_printf(b, "%s %lld\n", name, v);
}

static void
metrics_histogram(struct buf *b, const char *name, const char *help,
    const uint64_t *buckets, uint64_t count, uint64_t sum_us)
{
	static const uint64_t	 bounds[MET_SIGN_NB] = MET_SIGN_BOUNDS;
	uint64_t		 cum = 0;
	int			 i;

	metrics_head(b, name, "histogram", help);
	for (i = 0; i < MET_SIGN_NB; i++) {
		cum += buckets[i];
		buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name,
		    bounds[i] / 1e6, (unsigned long long)cum);
	}
	cum += buckets[MET_SIGN_NB];
	buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name,
	    (unsigned long long)cum);
	buf_printf(b, "%s_sum %.6f\n%s_count %llu\n", name, sum_us / 1e6,
	    name, (unsigned long long)count);
}

/*
 * Signatures by worker, as each worker counts its own: a worker whose
 * requests the keyholder refuses shows here, and a compromised one that
 * stops counting loses its channel at its first refused request.
 */
static void
metrics_sign_workers(struct metrics *m, struct buf *b)
{
	const struct shm_counters	*c;
	int				 i;

	metrics_head(b, "todod_keyholder_signatures_total", "counter",
	    "Signatures asked of the keyholder, by worker and result.");
	for (i = 0; i < m->workers->n; i++) {
		if ((c = m->ctr[i]) == NULL)
			continue;
		buf_printf(b, "todod_keyholder_signatures_total{worker=\"%d\","
		    "result=\"ok\"} %llu\n", i + 1,
		    (unsigned long long)c->sign_count);
		buf_printf(b, "todod_keyholder_signatures_total{worker=\"%d\","
		    "result=\"failed\"} %llu\n", i + 1,
		    (unsigned long long)c->sign_failed);
	}
}

/* The parent's side of client OCSP: the responder, and its cache. */
static void
metrics_ocsp(struct metrics *m, struct buf *b)
{
	metrics_head(b, "todod_ocsp_responder_requests_total", "counter",
	    "Client certificate OCSP requests to the responder, by result "
	    "(ok: a verified answer).");
	buf_printf(b, "todod_ocsp_responder_requests_total{result=\"ok\"} "
	    "%llu\ntodod_ocsp_responder_requests_total{result=\"failed\"} "
	    "%llu\n", (unsigned long long)m->ocsp_fetches[1],
	    (unsigned long long)m->ocsp_fetches[0]);
	metrics_one(b, "todod_ocsp_cache_hits_total", "counter",
	    "Client certificate OCSP queries answered from the cache.",
	    m->ocsp_cache_hits);
}

static void
metrics_revocation(struct buf *b, const struct shm_counters *s)
{
	int	 i, j;

	metrics_head(b, "todod_revocation_checks_total", "counter",
	    "Client certificates checked for revocation, by source and "
	    "result.");
	for (i = 0; i < MET_REV_NSOURCE; i++)
		for (j = 0; j < MET_REV_NRESULT; j++)
			buf_printf(b, "todod_revocation_checks_total{source="
			    "\"%s\",result=\"%s\"} %llu\n",
			    met_rev_sources[i], met_rev_results[j],
			    (unsigned long long)s->revchecks[i][j]);
	metrics_one(b, "todod_connections_cut_total", "counter",
	    "Open connections closed because their certificate was revoked.",
	    s->conns_cut);
}

static void
metrics_render_staple(const struct metrics *m, struct buf *b, time_t now)
{
	static const char	*res[] = { "ok", "failed", "invalid" };
	size_t			 i;

	if (m->staple_thisupd != 0) {
		metrics_one(b, "todod_ocsp_staple_age_seconds", "gauge",
		    "Seconds since the thisUpdate of the OCSP staple in use.",
		    (long long)(now - m->staple_thisupd));
		metrics_one(b, "todod_ocsp_staple_next_update_seconds",
		    "gauge", "Seconds until the OCSP staple's nextUpdate.",
		    (long long)(m->staple_nextupd - now));
	}
	if (m->staple_fetches[0] + m->staple_fetches[1] +
	    m->staple_fetches[2] == 0)
		return;
	metrics_head(b, "todod_ocsp_staple_fetches_total", "counter",
	    "OCSP staple fetches (ocsp staple auto), by result.");
	for (i = 0; i < 3; i++)
		buf_printf(b, "todod_ocsp_staple_fetches_total{result=\"%s\"} "
		    "%llu\n", res[i], (unsigned long long)m->staple_fetches[i]);
}

static void
metrics_cache(struct buf *b, const struct shm_counters *s)
{
	metrics_one(b, "todod_cache_hits_total", "counter",
	    "GET /todo/ID answered from a worker's cache.", s->cache_hits);
	metrics_one(b, "todod_cache_misses_total", "counter",
	    "GET /todo/ID that read the store: the item was not cached.",
	    s->cache_misses);
	metrics_one(b, "todod_cache_evictions_total", "counter",
	    "Items dropped from a worker's cache to stay within cache size.",
	    s->cache_evicted);
	metrics_one(b, "todod_cache_items", "gauge",
	    "Items in the workers' caches (summed over workers).",
	    s->cache_items);
	metrics_one(b, "todod_cache_bytes", "gauge",
	    "Memory the workers' caches take (summed over workers).",
	    s->cache_bytes);
	metrics_one(b, "todod_store_pages_total", "counter",
	    "Pages of GET /todo read from the store (the cache did not hold "
	    "every item).", s->store_pages);
}

static void
metrics_render(struct metrics *m, struct buf *b)
{
	static const int	 codes[MET_NSTATUS] = MET_STATUSES;
	struct shm_counters	 s;
	time_t			 now = time(NULL);
	int			 i, j, nw = 0;

	memcpy(&s, &m->retired, sizeof(s));
	for (i = 0; i < m->workers->n; i++)
		if (m->ctr[i] != NULL) {
			metrics_add(&s, m->ctr[i]);
			if (m->workers->procs[i].pid != 0)
				nw++;
		}

	metrics_head(b, "todod_build_info", "gauge",
	    "Always 1; the label is the version of the running todod.");
	buf_printf(b, "todod_build_info{version=\"%s\"} 1\n", TODOD_VERSION);
	metrics_head(b, "todod_requests_total", "counter",
	    "HTTP requests answered, by method and status.");
	for (i = 0; i < MET_NMETHODS; i++)
		for (j = 0; j < MET_NSTATUS; j++)
			if (s.requests[i][j] > 0)
				buf_printf(b, "todod_requests_total{method=\"%s\","
				    "code=\"%d\"} %llu\n", met_methods[i],
				    codes[j],
				    (unsigned long long)s.requests[i][j]);
	metrics_one(b, "todod_handshakes_total", "counter",
	    "Completed TLS handshakes.", s.handshakes);
	metrics_one(b, "todod_handshakes_resumed_total", "counter",
	    "Completed TLS handshakes that resumed a session.", s.resumed);
	metrics_head(b, "todod_handshake_failures_total", "counter",
	    "Failed TLS handshakes, by reason.");
	for (i = 0; i < HSF_MAX; i++)
		buf_printf(b, "todod_handshake_failures_total{reason=\"%s\"} "
		    "%llu\n", met_hsfail[i], (unsigned long long)s.hsfail[i]);
	metrics_one(b, "todod_connections_open", "gauge",
	    "Client connections open now.", s.conns_open);
	metrics_one(b, "todod_connections_total", "counter",
	    "Client connections accepted.", s.conns_total);
	metrics_one(b, "todod_connections_refused_total", "counter",
	    "Connections closed at once: the worker was at its limit.",
	    s.conns_refused);
	metrics_revocation(b, &s);
	metrics_ocsp(m, b);
	metrics_one(b, "todod_response_bytes_total", "counter",
	    "Bytes of HTTP responses written.", s.bytes_out);
	metrics_histogram(b, "todod_keyholder_sign_seconds",
	    "Round trip of a signature through the keyholder.",
	    s.sign_bucket, s.sign_count, s.sign_sum_us);
	metrics_one(b, "todod_keyholder_sign_failures_total", "counter",
	    "Signatures the keyholder did not deliver.", s.sign_failed);
	metrics_sign_workers(m, b);
	metrics_histogram(b, "todod_store_commit_seconds",
	    "Time to commit a group of writes durably.", m->commit_bucket,
	    m->commit_count, m->commit_sum_us);
	metrics_one(b, "todod_store_writes_total", "counter",
	    "Writes committed to the store.", m->store_writes);
	metrics_one(b, "todod_store_writes_refused_total", "counter",
	    "Writes refused because the store failed.", m->store_refused);
	metrics_one(b, "todod_store_unavailable", "gauge",
	    "1 when the database file was removed or replaced.",
	    m->store->ops->unavailable(m->store->be));
	metrics_one(b, "todod_todos", "gauge", "TODO items stored.",
	    m->state->todo_count);
	metrics_cache(b, &s);
	metrics_one(b, "todod_workers", "gauge", "Workers running.", nw);
	metrics_head(b, "todod_child_restarts_total", "counter",
	    "Children restarted after they died, by role.");
	buf_printf(b, "todod_child_restarts_total{role=\"worker\"} %llu\n",
	    (unsigned long long)m->restarts[METRICS_WORKER]);
	buf_printf(b, "todod_child_restarts_total{role=\"keyholder\"} %llu\n",
	    (unsigned long long)m->restarts[METRICS_KEYHOLDER]);
	metrics_head(b, "todod_reloads_total", "counter",
	    "Configuration reloads, by result.");
	buf_printf(b, "todod_reloads_total{result=\"ok\"} %llu\n",
	    (unsigned long long)m->reloads_ok);
	buf_printf(b, "todod_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)m->reloads_failed);
	metrics_render_staple(m, b, now);
	if (!m->have_expiry)
		return;
	metrics_head(b, "todod_certificate_expiry_seconds", "gauge",
	    "Seconds until a certificate expires (negative: expired).");
	buf_printf(b, "todod_certificate_expiry_seconds{certificate=\"server\"}"
	    " %lld\n", (long long)(m->cert_notafter - now));
	buf_printf(b, "todod_certificate_expiry_seconds{certificate=\"ca\"}"
	    " %lld\n", (long long)(m->ca_notafter - now));
	if (m->crl_nextupdate != 0) {
		metrics_head(b, "todod_crl_next_update_seconds", "gauge",
		    "Seconds until the CRL's nextUpdate (negative: past).");
		buf_printf(b, "todod_crl_next_update_seconds %lld\n",
		    (long long)(m->crl_nextupdate - now));
	}
	if (m->crl_fetches[0] + m->crl_fetches[1] == 0)
		return;
	metrics_head(b, "todod_crl_fetches_total", "counter",
	    "CRL refreshes (crl url), by result.");
	buf_printf(b, "todod_crl_fetches_total{result=\"ok\"} %llu\n"
	    "todod_crl_fetches_total{result=\"failed\"} %llu\n",
	    (unsigned long long)m->crl_fetches[1],
	    (unsigned long long)m->crl_fetches[0]);
	if (m->crl_fetched != 0)
		metrics_one(b, "todod_crl_age_seconds", "gauge",
		    "Seconds since a good CRL was last fetched.",
		    (long long)(now - m->crl_fetched));
}

/*
 * A worker asks: the answer goes on its bounded queue, so a worker that
 * asks without reading is killed rather than filling our memory.
 */
void
metrics_request(struct metrics *m, struct proc *w, struct ipc_msg *msg)
{
	struct ipc_wbuf	*wb;
	struct buf	 b;

	if (ipc_get_end(msg) == -1) {
		proc_kill(w, "malformed metrics request");
		return;
	}
	buf_init(&b, 0);
	metrics_render(m, &b);
	if ((wb = ipc_create(IMSG_METRICS_REPLY, msg->hdr.peerid,
	    b.len + 8)) == NULL)
		fatal("%s", __func__);
	ipc_add_data(wb, b.data, b.len);
	proc_send(w, wb, -1);	/* a failure kills it, and says so */
	buf_free(&b);
}
