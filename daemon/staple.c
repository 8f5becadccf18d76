/*
 * OCSP stapling: the parent's service that keeps the staple in use (see
 * staple.h); the check of a staple is in staplecheck.c.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "apply.h"
#include "config.h"
#include "fetch.h"
#include "log.h"
#include "metrics.h"
#include "ocspmsg.h"
#include "staple.h"
#include "staplecheck.h"
#include "tlsmat.h"

static void	staple_arm(struct staple *, time_t);

/* Which certificate: the SHA-256 of the chain file's contents. */
static void
staple_cert_id(const struct tlsmat *m, uint8_t out[32])
{
	unsigned int	 n = 32;

	if (!EVP_Digest(m->cert.data, m->cert.len, out, &n, EVP_sha256(),
	    NULL))
		memset(out, 0, 32);
}

static int
staple_same(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 ||
	    memcmp(a->data, b->data, a->len) == 0);
}

/* The staple in use (mat's) becomes der: to the workers and metrics. */
static void
staple_install(struct staple *s, const struct buf *der,
    const struct ocspcheck_answer *a)
{
	struct tlsmat	*m = s->apply->mat;

	if (a != NULL)
		s->ans = *a;
	else
		memset(&s->ans, 0, sizeof(s->ans));
	metrics_staple(s->apply->metrics, s->ans.thisupd, s->ans.nextupd);
	if (staple_same(&m->staple, der))
		return;
	buf_reset(&m->staple);
	if (der->len > 0 && buf_add(&m->staple, der->data, der->len) == -1)
		fatal("%s", __func__);
	s->push(s->arg, m->staple.data, m->staple.len);
}

/* When to fetch again: half the validity, within the bounds. */
static time_t
staple_refresh_at(const struct ocspcheck_answer *a, time_t now)
{
	time_t	 half = (a->nextupd - a->thisupd) / 2, at = a->thisupd + half;

	if (at < now + STAPLE_REFRESH_MIN)
		at = now + STAPLE_REFRESH_MIN;
	if (at > now + STAPLE_REFRESH_MAX)
		at = now + STAPLE_REFRESH_MAX;
	/* never after the staple runs out */
	if (at >= a->nextupd && a->nextupd > now + STAPLE_RETRY_MIN)
		at = a->nextupd - STAPLE_RETRY_MIN;
	return at;
}

/* A failed fetch: sooner than a refresh, later each time, bounded. */
static time_t
staple_retry_at(struct staple *s, time_t now)
{
	time_t	 d = STAPLE_RETRY_MIN;
	int	 i;

	for (i = 1; i < s->fails && d < STAPLE_RETRY_MAX; i++)
		d *= 2;
	if (s->der.len > 0 && (s->ans.nextupd - now) / 4 < d)
		d = (s->ans.nextupd - now) / 4;
	if (d < STAPLE_RETRY_MIN)
		d = STAPLE_RETRY_MIN;
	return now + (d > STAPLE_RETRY_MAX ? STAPLE_RETRY_MAX : d);
}

static void
staple_failed(struct staple *s, const char *url, const char *why, int res)
{
	char	 tu[64], nu[64];
	time_t	 now = time(NULL);

	s->fails++;
	s->next = staple_retry_at(s, now);
	metrics_staple_fetch(s->apply->metrics, res);
	if (s->der.len == 0) {
		log_warnx("OCSP staple from %s: %s; no staple yet, trying "
		    "again in %llds", url, why, (long long)(s->next - now));
		return;
	}
	tlsmat_time_str(s->ans.thisupd, tu, sizeof(tu));
	tlsmat_time_str(s->ans.nextupd, nu, sizeof(nu));
	log_warnx("OCSP staple from %s: %s; keeping the staple of %s (%llds "
	    "old, expires %s, in %llds); trying again in %llds", url, why, tu,
	    (long long)(now - s->ans.thisupd), nu,
	    (long long)(s->ans.nextupd - now), (long long)(s->next - now));
}

static void
staple_done(void *arg, const uint8_t *der, size_t len, const char *ferr)
{
	struct staple		*s = arg;
	struct ocspcheck_answer	 a;
	const struct config	*conf = s->apply->conf;
	struct tlsmat		*m = s->apply->mat;
	char			 url[OCSPCHECK_URL_MAX + 1], why[512];
	time_t			 now = time(NULL);

	s->f = NULL;
	if (!conf->tls.staple_auto) {
		staple_arm(s, 0);	/* a reload turned auto off meanwhile */
		return;
	}
	if (staple_url(conf, m, url, sizeof(url), why, sizeof(why)) == -1)
		strlcpy(url, "?", sizeof(url));
	if (der == NULL)
		staple_failed(s, url, ferr, METRICS_STAPLE_FAILED);
	else if (staple_verify(m, der, len, now, &a, why, sizeof(why)) == -1)
		staple_failed(s, url, why, METRICS_STAPLE_INVALID);
	else {
		metrics_staple_fetch(s->apply->metrics, METRICS_STAPLE_OK);
		buf_reset(&s->der);
		if (buf_add(&s->der, der, len) == -1)
			fatal("%s", __func__);
		s->ans = a;
		s->fails = 0;
		s->next = staple_refresh_at(&a, now);
		log_info("OCSP staple from %s: good, next update in %llds; "
		    "next fetch in %llds", url, (long long)(a.nextupd - now),
		    (long long)(s->next - now));
		if (!apply_busy(s->apply))
			staple_install(s, &s->der, &s->ans);
	}
	staple_arm(s, 0);
}

static void
staple_fetch(struct staple *s)
{
	const struct config	*conf = s->apply->conf;
	char			 url[OCSPCHECK_URL_MAX + 1], why[512];
	X509_STORE		*st;
	OCSP_CERTID		*id;
	int			 n;

	ocspcheck_query_free(&s->q);
	if (staple_url(conf, s->apply->mat, url, sizeof(url), why,
	    sizeof(why)) == -1 ||
	    (st = staple_query(s->apply->mat, &s->q, why, sizeof(why))) ==
	    NULL) {
		staple_failed(s, "?", why, METRICS_STAPLE_FAILED);
		return;
	}
	X509_STORE_free(st);
	/* no nonce: one answer is stapled for every client */
	if ((s->q.req = OCSP_REQUEST_new()) == NULL ||
	    (id = OCSP_CERTID_dup(s->q.id)) == NULL ||
	    OCSP_request_add0_id(s->q.req, id) == NULL ||
	    (n = i2d_OCSP_REQUEST(s->q.req, &s->q.der)) <= 0)
		fatalx("%s: cannot build the OCSP request", __func__);
	s->q.derlen = (size_t)n;
	s->f = fetch_start(s->base, url, "application/ocsp-request",
	    s->q.der, s->q.derlen, STAPLE_MAX, STAPLE_TIMEOUT, staple_done, s,
	    why, sizeof(why));
	if (s->f == NULL)
		staple_failed(s, url, why, METRICS_STAPLE_FAILED);
}

/* A staple past its nextUpdate is worse than none: stop stapling it. */
static void
staple_expire(struct staple *s, time_t now)
{
	const struct config	*conf = s->apply->conf;
	struct buf		 none = { NULL, 0, 0, 0 };
	char			 nu[64];

	if (s->apply->mat->staple.len == 0 || s->ans.nextupd > now)
		return;
	tlsmat_time_str(s->ans.nextupd, nu, sizeof(nu));
	if (conf->tls.staple != NULL)
		log_warnx("ocsp staple %s expired %s: no longer stapled; "
		    "put a new response in it and reload", conf->tls.staple,
		    nu);
	else
		log_warnx("OCSP staple expired %s and no new one could be "
		    "fetched: no longer stapled", nu);
	buf_reset(&s->der);
	staple_install(s, &none, NULL);
}

/* Auto: the staple to keep, for this certificate, or a fetch to make. */
static void
staple_auto(struct staple *s, time_t now)
{
	uint8_t	 cert[32];
	char	 url[OCSPCHECK_URL_MAX + 1], why[512];

	staple_cert_id(s->apply->mat, cert);
	if (memcmp(cert, s->cert, sizeof(cert)) != 0) {
		/* another certificate: its staple is not ours to keep */
		memcpy(s->cert, cert, sizeof(cert));
		buf_reset(&s->der);
		s->fails = 0;
		s->next = now;
	}
	/* another responder (a reload): ask it now, keep the staple */
	if (staple_url(s->apply->conf, s->apply->mat, url, sizeof(url), why,
	    sizeof(why)) == 0 && strcmp(url, s->url) != 0) {
		strlcpy(s->url, url, sizeof(s->url));
		s->fails = 0;
		s->next = now;
	}
	if (s->der.len > 0 && !staple_same(&s->der, &s->apply->mat->staple))
		staple_install(s, &s->der, &s->ans);
	if (s->f == NULL && now >= s->next)
		staple_fetch(s);
}

/*
 * A staple file: its times for the metrics, and a warning once it is in
 * the last quarter of its validity (s->cert holds the file's digest).
 */
static void
staple_file(struct staple *s, time_t now)
{
	struct tlsmat	*m = s->apply->mat;
	uint8_t		 id[32];
	unsigned int	 n = sizeof(id);
	char		 why[512], nu[64];

	buf_reset(&s->der);
	if (m->staple.len == 0)
		return;
	if (!EVP_Digest(m->staple.data, m->staple.len, id, &n, EVP_sha256(),
	    NULL))
		memset(id, 0, sizeof(id));
	if (memcmp(id, s->cert, sizeof(id)) != 0) {
		memcpy(s->cert, id, sizeof(id));
		s->warned = 0;
		if (staple_verify(m, m->staple.data, m->staple.len, now,
		    &s->ans, why, sizeof(why)) == -1)
			memset(&s->ans, 0, sizeof(s->ans));
		metrics_staple(s->apply->metrics, s->ans.thisupd,
		    s->ans.nextupd);
	}
	if (!s->warned && s->ans.nextupd > now &&
	    s->ans.nextupd - now < (s->ans.nextupd - s->ans.thisupd) / 4) {
		s->warned = 1;
		tlsmat_time_str(s->ans.nextupd, nu, sizeof(nu));
		log_warnx("ocsp staple %s expires %s (in %llds): put a new "
		    "response in it and reload", s->apply->conf->tls.staple,
		    nu, (long long)(s->ans.nextupd - now));
	}
}

static void
staple_tick(int fd, short ev, void *arg)
{
	struct staple		*s = arg;
	const struct config	*conf = s->apply->conf;
	time_t			 now = time(NULL);

	if (conf == NULL || s->apply->mat == NULL || apply_busy(s->apply)) {
		staple_arm(s, 1);
		return;
	}
	if (!conf->tls.staple_auto) {
		fetch_cancel(s->f);
		s->f = NULL;
	}
	if (conf->tls.staple_auto)
		staple_auto(s, now);
	else if (conf->tls.staple != NULL)
		staple_file(s, now);
	else {
		buf_reset(&s->der);
		memset(&s->ans, 0, sizeof(s->ans));
		metrics_staple(s->apply->metrics, 0, 0);
	}
	staple_expire(s, now);
	staple_arm(s, 0);
}

/* In secs, or (0) when something next needs doing. */
static void
staple_arm(struct staple *s, time_t secs)
{
	struct timeval	 tv = { STAPLE_IDLE, 0 };
	time_t		 now = time(NULL), at = now + STAPLE_IDLE;

	if (secs > 0)
		at = now + secs;
	else {
		if (s->apply->conf != NULL && s->apply->conf->tls.staple_auto &&
		    s->f == NULL && s->next < at)
			at = s->next;
		if (s->ans.nextupd > now && s->ans.nextupd < at)
			at = s->ans.nextupd;
	}
	tv.tv_sec = at > now ? at - now : 0;
	evtimer_add(&s->timer, &tv);
}

void
staple_init(struct staple *s, struct event_base *base, struct apply *a,
    staple_push_cb *push, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->base = base;
	s->apply = a;
	s->push = push;
	s->arg = arg;
	buf_init(&s->der, 0);
	evtimer_assign(&s->timer, base, staple_tick, s);
	staple_arm(s, 1);
}

void
staple_carry(struct staple *s, const struct config *conf, struct tlsmat *m)
{
	uint8_t	 cert[32];

	if (s->base == NULL)
		return;		/* start-up: the service starts after */
	/* look at the new configuration as soon as it is in use */
	staple_arm(s, 1);
	if (!conf->tls.staple_auto || s->der.len == 0 ||
	    s->ans.nextupd <= time(NULL))
		return;
	staple_cert_id(m, cert);
	if (memcmp(cert, s->cert, sizeof(cert)) != 0)
		return;
	buf_reset(&m->staple);
	if (buf_add(&m->staple, s->der.data, s->der.len) == -1)
		fatal("%s", __func__);
}

void
staple_stop(struct staple *s)
{
	evtimer_del(&s->timer);
	fetch_cancel(s->f);
	s->f = NULL;
	ocspcheck_query_free(&s->q);
	buf_free(&s->der);
}
