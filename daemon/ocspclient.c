#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "apply.h"
#include "config.h"
#include "fetch.h"
#include "ipc.h"
#include "log.h"
#include "metrics.h"
#include "ocspcheck.h"
#include "ocspclient.h"
#include "ocspmsg.h"
#include "proc.h"
#include "proto.h"
#include "tlsmat.h"

/* One responder exchange in flight, for every query about its cert. */
struct ocspclient_fetch {
	struct ocspclient	*oc;
	struct ocspwait_entry	*e;
	struct ocspcheck_query	 q;
	struct fetch		*f;
	uint8_t			 digest[OCSPMSG_DIGEST_LEN];	/* the cert */
};

/* What every waiter of one certificate is told. */
struct ocspclient_verdict {
	struct ocspclient	*oc;
	uint32_t		 status;
	time_t			 until;
	const char		*why;
};

void
ocspclient_init(struct ocspclient *oc, struct event_base *base,
    struct proc_group *workers, struct apply *apply, struct metrics *m)
{
	memset(oc, 0, sizeof(*oc));
	oc->base = base;
	oc->workers = workers;
	oc->apply = apply;
	oc->metrics = m;
	buf_init(&oc->capem, 0);
	ocspcache_init(&oc->cache, OCSPCACHE_ENTRIES, OCSPCACHE_BYTES);
	ocspwait_init(&oc->wait);
}

/* A store of every certificate in a PEM buffer (the client CA file). */
X509_STORE *
ocspclient_store(const void *pem, size_t len)
{
	STACK_OF(X509)	*certs;
	X509_STORE	*st;
	int		 i, ok = 1;

	if ((certs = tlsmat_pem_certs(pem, len)) == NULL)
		return NULL;
	if ((st = X509_STORE_new()) == NULL)
		ok = 0;
	for (i = 0; ok && i < sk_X509_num(certs); i++)
		ok = X509_STORE_add_cert(st, sk_X509_value(certs, i));
	sk_X509_pop_free(certs, X509_free);
	if (!ok) {
		X509_STORE_free(st);
		return NULL;
	}
	return st;
}

static void
ocspclient_send(struct proc *w, uint32_t qid, uint32_t status, time_t until,
    const char *why)
{
	struct ocspmsg_answer	 a;
	struct ipc_wbuf		*wb;

	a.qid = qid;
	a.status = status;
	a.until = until;
	a.why = why;
	if ((wb = ocspmsg_encode_answer(&a)) == NULL)
		proc_kill(w, "ocsp answer: %s", strerror(errno));
	else if (proc_send(w, wb, -1) == 0)	/* a failure kills it */
		proc_flush(w);
}

static void
ocspclient_tell(void *arg, uint32_t worker, uint32_t qid)
{
	struct ocspclient_verdict	*v = arg;
	struct proc			*w;

	if (worker < 1 || (int)worker > v->oc->workers->n)
		return;
	w = &v->oc->workers->procs[worker - 1];
	if (proc_alive(w))
		ocspclient_send(w, qid, v->status, v->until, v->why);
}

/*
 * Drop what is in flight, telling its waiters there is no answer (their
 * clients are not left to the timeout).
 */
static void
ocspclient_drop_flight(struct ocspclient *oc, const char *why)
{
	struct ocspclient_verdict	 v = { oc, OCSPMSG_NOANSWER, 0, why };
	struct ocspwait_entry		*e;
	struct ocspclient_fetch		*of;

	while ((e = RB_MIN(ocspwait_tree, &oc->wait.tree)) != NULL) {
		if ((of = e->arg) != NULL) {
			fetch_cancel(of->f);
			ocspcheck_query_free(&of->q);
			free(of);
		}
		ocspwait_done(&oc->wait, e, ocspclient_tell, &v);
	}
}

/* Cancel what is in flight, forget what is cached and configured. */
void
ocspclient_clear(struct ocspclient *oc)
{
	ocspclient_drop_flight(oc, "the configuration changed");
	ocspcache_clear(&oc->cache);
	X509_STORE_free(oc->ca);
	oc->ca = NULL;
	buf_free(&oc->capem);
	free(oc->url);
	oc->url = NULL;
}

static int
ocspclient_same(const struct ocspclient *oc, const struct buf *capem,
    const char *url)
{
	if (oc->ca == NULL || oc->capem.len != capem->len ||
	    memcmp(oc->capem.data, capem->data, capem->len) != 0)
		return 0;
	if (url == NULL || oc->url == NULL)
		return url == oc->url;
	return strcmp(url, oc->url) == 0;
}

/*
 * A configuration: the mode (enum config_ocsp), the client CA as PEM,
 * the configured responder or NULL, the timeout.  The same CA and
 * responder keep the cache and what is in flight; otherwise answers
 * verified under the old ones are not trusted: everything starts again.
 */
int
ocspclient_configure(struct ocspclient *oc, int mode, const struct buf *capem,
    const char *url, int timeout, char *err, size_t errlen)
{
	X509_STORE	*ca = NULL;
	char		*u = NULL;

	oc->mode = mode;
	oc->timeout = timeout;
	if (mode == CONFIG_OCSP_OFF) {
		ocspclient_clear(oc);
		return 0;
	}
	if (ocspclient_same(oc, capem, url))
		return 0;
	if ((ca = ocspclient_store(capem->data, capem->len)) == NULL) {
		snprintf(err, errlen, "client ocsp: the client CA does not "
		    "load");
		goto fail;
	}
	if (url != NULL && (u = strdup(url)) == NULL)
		goto nomem;
	ocspclient_clear(oc);
	if (buf_add(&oc->capem, capem->data, capem->len) == -1) {
		ocspclient_clear(oc);
		goto nomem;
	}
	oc->ca = ca;
	oc->url = u;
	return 0;
 nomem:
	snprintf(err, errlen, "client ocsp: out of memory");
 fail:
	X509_STORE_free(ca);
	free(u);
	return -1;
}

/* Take the configuration apply.c committed since the last query. */
static void
ocspclient_sync(struct ocspclient *oc)
{
	const struct config	*conf = oc->apply->conf;
	char			 err[256];

	if (oc->gen == oc->apply->gen_committed || oc->apply->mat == NULL)
		return;
	oc->gen = oc->apply->gen_committed;
	if (ocspclient_configure(oc, conf->tls.client_ocsp,
	    &oc->apply->mat->ca, conf->tls.client_ocsp_url,
	    conf->timeout_ocsp, err, sizeof(err)) == -1) {
		log_warnx("%s", err);
		ocspclient_clear(oc);
	}
}

/* Every worker cuts the connections of a certificate found revoked. */
static void
ocspclient_revoked(struct ocspclient *oc, struct ocspclient_fetch *of)
{
	char	 hex[2 * OCSPMSG_DIGEST_LEN + 1];
	size_t	 i;

	for (i = 0; i < OCSPMSG_DIGEST_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", of->digest[i]);
	log_info("ocsp: responder %s: certificate SHA256:%s is revoked",
	    of->q.url, hex);
	proc_group_compose(oc->workers, IMSG_OCSP_REVOKED, of->digest,
	    sizeof(of->digest));
}

/* The responder answered, or failed: verify, keep, tell every waiter. */
static void
ocspclient_done(void *arg, const uint8_t *der, size_t len, const char *ferr)
{
	struct ocspclient_fetch		*of = arg;
	struct ocspclient		*oc = of->oc;
	struct ocspclient_verdict	 v = { oc, OCSPMSG_NOANSWER, 0, "" };
	char				 err[OCSPCHECK_URL_MAX + 512], why[256];
	char				 esc[LOG_ESCAPE_SIZE(OCSPMSG_WHY_MAX)];
	time_t				 now = time(NULL);

	if (der == NULL)
		snprintf(err, sizeof(err), "responder %s: %s", of->q.url,
		    ferr);
	else if (ocspcheck_verify(&of->q, der, len, oc->ca, now, &v.status,
	    &v.until, why, sizeof(why)) == -1) {
		v.status = OCSPMSG_NOANSWER;
		snprintf(err, sizeof(err), "responder %s: %s", of->q.url, why);
	} else if (v.until > now)
		(void)ocspcache_put(&oc->cache, of->q.key, v.status, v.until,
		    der, len, now);
	metrics_ocsp_fetch(oc->metrics, v.status != OCSPMSG_NOANSWER);
	if (v.status == OCSPMSG_NOANSWER) {
		/* the responder's words may be in it: escaped, and bounded */
		log_escape(esc, sizeof(esc), err, strnlen(err,
		    OCSPMSG_WHY_MAX));
		log_warnx("ocsp: %s", esc);
		v.why = esc;
	} else if (v.status == OCSPMSG_REVOKED)
		ocspclient_revoked(oc, of);
	of->f = NULL;		/* fetch frees itself after this call */
	ocspwait_done(&oc->wait, of->e, ocspclient_tell, &v);
	ocspcheck_query_free(&of->q);
	free(of);
}

/* Ask the responder about q's certificate for the waiters of e. */
static int
ocspclient_start(struct ocspclient *oc, struct ocspwait_entry *e,
    struct ocspcheck_query *q, const void *der, size_t len, char *err,
    size_t errlen)
{
	struct ocspclient_fetch	*of;

	if ((of = calloc(1, sizeof(*of))) == NULL ||
	    ocspmsg_cert_digest(der, len, of->digest) == -1) {
		free(of);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	of->oc = oc;
	of->e = e;
	of->q = *q;		/* the fetch owns the query from here */
	memset(q, 0, sizeof(*q));
	of->f = fetch_start(oc->base, of->q.url, "application/ocsp-request",
	    of->q.der, of->q.derlen, OCSPCHECK_RESP_MAX, oc->timeout,
	    ocspclient_done, of, err, errlen);
	if (of->f == NULL) {
		ocspcheck_query_free(&of->q);
		free(of);
		return -1;
	}
	e->arg = of;
	return 0;
}

/* A query the cache answers, or -1. */
static int
ocspclient_cached(struct ocspclient *oc, struct proc *w, uint32_t qid,
    const struct ocspcheck_query *q, time_t now)
{
	const struct ocspcache_entry	*ce;

	if ((ce = ocspcache_get(&oc->cache, q->key, now)) == NULL)
		return -1;
	metrics_ocsp_cache_hit(oc->metrics);
	ocspclient_send(w, qid, ce->status, ce->until, "");
	return 0;
}

/*
 * A worker's query.  Every path answers it exactly once, now or when the
 * responder does; a malformed one kills the worker.
 */
void
ocspclient_query(struct ocspclient *oc, struct proc *w, struct ipc_msg *msg)
{
	struct ocspcheck_query		 q;
	struct ocspwait_entry		*e;
	const void			*der;
	size_t				 len;
	uint32_t			 qid;
	char				 err[256];
	time_t				 now = time(NULL);
	int				 r;

	if (ocspmsg_get_query(msg, &qid, &der, &len) == -1) {
		proc_kill(w, "malformed ocsp query");
		return;
	}
	ocspclient_sync(oc);
	if (oc->ca == NULL || !ocspwait_allow(&oc->wait, (uint32_t)w->id,
	    now)) {
		ocspclient_send(w, qid, OCSPMSG_NOANSWER, 0, oc->ca == NULL ?
		    "client ocsp is off" : "too many ocsp queries");
		return;
	}
	/* verifies the chain: a certificate the CA did not sign stops here */
	if (ocspcheck_query_new(&q, der, len, oc->ca, oc->url, err,
	    sizeof(err)) == -1)
		goto noanswer;
	if (ocspclient_cached(oc, w, qid, &q, now) == 0) {
		ocspcheck_query_free(&q);
		return;
	}
	if ((r = ocspwait_add(&oc->wait, q.key, (uint32_t)w->id, qid,
	    &e)) == -1) {
		snprintf(err, sizeof(err), "ocsp queries: %s", strerror(errno));
		goto noanswer;
	}
	if (r == 1 && ocspclient_start(oc, e, &q, der, len, err,
	    sizeof(err)) == -1) {
		ocspwait_done(&oc->wait, e, NULL, NULL);
		goto noanswer;
	}
	ocspcheck_query_free(&q);
	return;
 noanswer:
	ocspcheck_query_free(&q);
	ocspclient_send(w, qid, OCSPMSG_NOANSWER, 0, err);
}

void
ocspclient_worker_gone(struct ocspclient *oc, struct proc *w)
{
	ocspwait_drop_worker(&oc->wait, (uint32_t)w->id);
}
