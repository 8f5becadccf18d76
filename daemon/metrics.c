#include <sys/types.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"
#include "parent.h"
#include "proto.h"
#include "shm.h"
#include "store.h"

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

/* Keep what a dead worker counted; its open connections are gone. */
void
metrics_retire(struct parent *p, struct child *w)
{
	if (w->ctr == NULL)
		return;
	metrics_add(&p->retired, w->ctr);
	p->retired.conns_open -= w->ctr->conns_open;
	shm_unmap(w->ctr, sizeof(*w->ctr));
	w->ctr = NULL;
}

void
metrics_commit(struct parent *p, uint64_t usec)
{
	static const uint64_t	 bounds[MET_SIGN_NB] = MET_SIGN_BOUNDS;
	int			 i;

	for (i = 0; i < MET_SIGN_NB && usec > bounds[i]; i++)
		;
	p->commit_bucket[i]++;
	p->commit_count++;
	p->commit_sum_us += usec;
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
metrics_sign_workers(struct parent *p, struct buf *b)
{
	const struct shm_counters	*c;
	int				 i;

	metrics_head(b, "todod_keyholder_signatures_total", "counter",
	    "Signatures asked of the keyholder, by worker and result.");
	for (i = 0; i < p->nworkers; i++) {
		if ((c = p->workers[i].ctr) == NULL)
			continue;
		buf_printf(b, "todod_keyholder_signatures_total{worker=\"%d\","
		    "result=\"ok\"} %llu\n", p->workers[i].id,
		    (unsigned long long)c->sign_count);
		buf_printf(b, "todod_keyholder_signatures_total{worker=\"%d\","
		    "result=\"failed\"} %llu\n", p->workers[i].id,
		    (unsigned long long)c->sign_failed);
	}
}

static void
metrics_render(struct parent *p, struct buf *b)
{
	static const int	 codes[MET_NSTATUS] = MET_STATUSES;
	struct shm_counters	 s;
	time_t			 now = time(NULL);
	int			 i, j, nw = 0;

	memcpy(&s, &p->retired, sizeof(s));
	for (i = 0; i < p->nworkers; i++)
		if (p->workers[i].ctr != NULL) {
			metrics_add(&s, p->workers[i].ctr);
			if (p->workers[i].pid != 0)
				nw++;
		}

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
	metrics_one(b, "todod_response_bytes_total", "counter",
	    "Bytes of HTTP responses written.", s.bytes_out);
	metrics_histogram(b, "todod_keyholder_sign_seconds",
	    "Round trip of a signature through the keyholder.",
	    s.sign_bucket, s.sign_count, s.sign_sum_us);
	metrics_one(b, "todod_keyholder_sign_failures_total", "counter",
	    "Signatures the keyholder did not deliver.", s.sign_failed);
	metrics_sign_workers(p, b);
	metrics_histogram(b, "todod_store_commit_seconds",
	    "Time to commit a group of writes durably.", p->commit_bucket,
	    p->commit_count, p->commit_sum_us);
	metrics_one(b, "todod_store_writes_total", "counter",
	    "Writes committed to the store.", p->store_writes);
	metrics_one(b, "todod_store_writes_refused_total", "counter",
	    "Writes refused because the store failed.", p->store_refused);
	metrics_one(b, "todod_store_unavailable", "gauge",
	    "1 when the database file was removed or replaced.",
	    store_unavailable(p->store));
	metrics_one(b, "todod_todos", "gauge", "TODO items stored.",
	    p->state->todo_count);
	metrics_one(b, "todod_workers", "gauge", "Workers running.", nw);
	metrics_head(b, "todod_child_restarts_total", "counter",
	    "Children restarted after they died, by role.");
	buf_printf(b, "todod_child_restarts_total{role=\"worker\"} %llu\n",
	    (unsigned long long)p->restarts[ROLE_WORKER]);
	buf_printf(b, "todod_child_restarts_total{role=\"keyholder\"} %llu\n",
	    (unsigned long long)p->restarts[ROLE_KEYHOLDER]);
	metrics_head(b, "todod_reloads_total", "counter",
	    "Configuration reloads, by result.");
	buf_printf(b, "todod_reloads_total{result=\"ok\"} %llu\n",
	    (unsigned long long)p->reloads_ok);
	buf_printf(b, "todod_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)p->reloads_failed);
	if (p->mat == NULL)
		return;
	metrics_head(b, "todod_certificate_expiry_seconds", "gauge",
	    "Seconds until a certificate expires (negative: expired).");
	buf_printf(b, "todod_certificate_expiry_seconds{certificate=\"server\"}"
	    " %lld\n", (long long)(p->mat->cert_notafter - now));
	buf_printf(b, "todod_certificate_expiry_seconds{certificate=\"ca\"}"
	    " %lld\n", (long long)(p->mat->ca_notafter - now));
	if (p->mat->crl_nextupdate != 0) {
		metrics_head(b, "todod_crl_next_update_seconds", "gauge",
		    "Seconds until the CRL's nextUpdate (negative: past).");
		buf_printf(b, "todod_crl_next_update_seconds %lld\n",
		    (long long)(p->mat->crl_nextupdate - now));
	}
}

void
metrics_request(struct parent *p, struct child *w, struct ipc_msg *msg)
{
	struct ipc_wbuf	*wb;
	struct buf	 b;

	if (ipc_get_end(msg) == -1) {
		parent_child_kill(w, "malformed metrics request");
		return;
	}
	buf_init(&b, 0);
	metrics_render(p, &b);
	if ((wb = ipc_create(IMSG_METRICS_REPLY, msg->hdr.peerid,
	    b.len + 8)) == NULL)
		fatal("%s", __func__);
	ipc_add_data(wb, b.data, b.len);
	if (ipc_send(&w->ipc, wb, -1) == -1)
		log_warn("worker %d: metrics", w->id);
	buf_free(&b);
	parent_child_flush(w);
}
