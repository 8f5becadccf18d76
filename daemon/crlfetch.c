#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "apply.h"
#include "buf.h"
#include "config.h"
#include "crlfetch.h"
#include "fetch.h"
#include "log.h"
#include "metrics.h"
#include "tlsmat.h"

#define CRLFETCH_IDLE	60	/* seconds between looks when there is no URL */
#define CRLFETCH_BUSY	1	/* a reload is under way: try again soon */

static void	crlfetch_tick(int, short, void *);

static void
crlfetch_arm(struct crlfetch *cf, int seconds)
{
	struct timeval	 tv = { seconds, 0 };

	evtimer_add(&cf->timer, &tv);
}

/* The first CRL of the PEM in use, or NULL. */
static X509_CRL *
crlfetch_current(const struct buf *cur)
{
	STACK_OF(X509_CRL)	*crls;
	X509_CRL		*crl = NULL;

	if (cur->len > 0 &&
	    (crls = tlsmat_pem_crls(cur->data, cur->len)) != NULL) {
		crl = sk_X509_CRL_shift(crls);
		sk_X509_CRL_pop_free(crls, X509_CRL_free);
	}
	return crl;
}

/*
 * What the validator does not ask of a CRL file but a refresh must: a
 * fetched CRL is current (an out-of-date one is an attacker's replay or a
 * broken publisher) and not older than the one it replaces.
 */
static int
crlfetch_fresh(const X509_CRL *crl, const struct buf *cur, char *err,
    size_t errlen)
{
	X509_CRL	*old;
	time_t		 next, now = time(NULL);
	int		 ok = 1;

	next = tlsmat_time(X509_CRL_get0_nextUpdate(crl));
	if (next != 0 && next <= now) {
		snprintf(err, errlen, "it is out of date (nextUpdate passed)");
		return 0;
	}
	old = crlfetch_current(cur);
	if (old != NULL && X509_NAME_cmp(X509_CRL_get_issuer(old),
	    X509_CRL_get_issuer(crl)) == 0 &&
	    tlsmat_time(X509_CRL_get0_lastUpdate(crl)) <
	    tlsmat_time(X509_CRL_get0_lastUpdate(old))) {
		snprintf(err, errlen, "it is older than the CRL in use");
		ok = 0;
	}
	X509_CRL_free(old);
	return ok;
}

/* The CRL as PEM into path (created 0644: it is public data). */
static int
crlfetch_write(const char *path, X509_CRL *crl, char *err, size_t errlen)
{
	BIO	*bio;
	int	 fd, ok;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1 || fchmod(fd, 0644) == -1) {
		snprintf(err, errlen, "%.900s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		return -1;
	}
	if ((bio = BIO_new_fd(fd, BIO_CLOSE)) == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ok = PEM_write_bio_X509_CRL(bio, crl) == 1 && BIO_flush(bio) == 1 &&
	    fsync(fd) == 0;
	BIO_free(bio);
	if (!ok)
		snprintf(err, errlen, "%.900s: write failed", path);
	return ok ? 0 : -1;
}

/*
 * Check the new CRL exactly as a CRL file is checked at -n, start-up and
 * reload: the configuration in use, with the new file in place of the
 * old one.  Returns 1 if it passed, 0 if it was refused (err).
 */
static int
crlfetch_validate(const struct config *conf, const char *path, char *err,
    size_t errlen)
{
	struct config	 tmp = *conf;
	struct tlsmat	*m;

	tmp.tls.crl = (char *)path;
	if ((m = tlsmat_load(&tmp, err, errlen)) == NULL)
		return 0;
	tlsmat_free(m);
	return 1;
}

static int
crlfetch_apply(struct crlfetch *cf, const uint8_t *der, size_t len,
    char *err, size_t errlen)
{
	const struct config	*conf = cf->apply->conf;
	const unsigned char	*p = der;
	X509_CRL		*crl;
	char			 tmp[PATH_MAX];
	int			 r = -1;

	if ((crl = d2i_X509_CRL(NULL, &p, len)) == NULL || p != der + len) {
		snprintf(err, errlen, "not a DER CRL");
		X509_CRL_free(crl);
		return -1;
	}
	if (!crlfetch_fresh(crl, &cf->apply->mat->crl, err, errlen))
		goto done;
	if (snprintf(tmp, sizeof(tmp), "%s.fetched", conf->tls.crl) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errlen, "%s: path too long", conf->tls.crl);
		goto done;
	}
	if (crlfetch_write(tmp, crl, err, errlen) == -1)
		goto done;
	if (!crlfetch_validate(conf, tmp, err, errlen)) {
		unlink(tmp);
		goto done;
	}
	if (rename(tmp, conf->tls.crl) == -1) {
		snprintf(err, errlen, "%s: %s", conf->tls.crl,
		    strerror(errno));
		unlink(tmp);
		goto done;
	}
	r = 0;
 done:
	X509_CRL_free(crl);
	return r;
}

/* Whether der is the CRL in use already (nothing to reload). */
static int
crlfetch_same(const struct buf *cur, const uint8_t *der, size_t len)
{
	X509_CRL	*old;
	uint8_t		*d = NULL;
	int		 n = -1, same;

	if ((old = crlfetch_current(cur)) != NULL)
		n = i2d_X509_CRL(old, &d);
	same = n >= 0 && (size_t)n == len && memcmp(d, der, len) == 0;
	OPENSSL_free(d);
	X509_CRL_free(old);
	return same;
}

static void
crlfetch_done(void *arg, const uint8_t *der, size_t len, const char *ferr)
{
	struct crlfetch		*cf = arg;
	const struct config	*conf = cf->apply->conf;
	char			 err[1024];

	cf->f = NULL;
	crlfetch_arm(cf, conf->tls.crl_url ? conf->tls.crl_refresh :
	    CRLFETCH_IDLE);
	if (der == NULL) {
		metrics_crl_fetch(cf->apply->metrics, 0);
		log_warnx("CRL from %s: %s; keeping the CRL in use",
		    conf->tls.crl_url, ferr);
		return;
	}
	if (crlfetch_same(&cf->apply->mat->crl, der, len)) {
		metrics_crl_fetch(cf->apply->metrics, 1);
		log_debug("CRL from %s: unchanged", conf->tls.crl_url);
		return;
	}
	if (apply_busy(cf->apply)) {
		crlfetch_arm(cf, CRLFETCH_BUSY);
		return;
	}
	if (crlfetch_apply(cf, der, len, err, sizeof(err)) == -1) {
		metrics_crl_fetch(cf->apply->metrics, 0);
		log_warnx("CRL from %s refused: %s; keeping the CRL in use",
		    conf->tls.crl_url, err);
		return;
	}
	metrics_crl_fetch(cf->apply->metrics, 1);
	log_info("CRL from %s installed as %s: reloading", conf->tls.crl_url,
	    conf->tls.crl);
	cf->reload(cf->arg);
}

static void
crlfetch_tick(int fd, short ev, void *arg)
{
	struct crlfetch		*cf = arg;
	const struct config	*conf = cf->apply->conf;
	char			 err[512];

	if (conf == NULL || cf->apply->mat == NULL || apply_busy(cf->apply)) {
		crlfetch_arm(cf, CRLFETCH_BUSY);
		return;
	}
	if (conf->tls.crl_url == NULL) {
		crlfetch_arm(cf, CRLFETCH_IDLE);
		return;
	}
	cf->f = fetch_start(cf->base, conf->tls.crl_url, NULL, NULL, 0,
	    CRLFETCH_MAX, CRLFETCH_TIMEOUT, crlfetch_done, cf, err,
	    sizeof(err));
	if (cf->f == NULL) {
		metrics_crl_fetch(cf->apply->metrics, 0);
		log_warnx("CRL from %s: %s", conf->tls.crl_url, err);
		crlfetch_arm(cf, conf->tls.crl_refresh);
	}
}

void
crlfetch_init(struct crlfetch *cf, struct event_base *base,
    struct apply *a, void (*reload)(void *), void *arg)
{
	memset(cf, 0, sizeof(*cf));
	cf->base = base;
	cf->apply = a;
	cf->reload = reload;
	cf->arg = arg;
	evtimer_assign(&cf->timer, base, crlfetch_tick, cf);
	crlfetch_arm(cf, CRLFETCH_BUSY);
}

void
crlfetch_stop(struct crlfetch *cf)
{
	evtimer_del(&cf->timer);
	fetch_cancel(cf->f);
	cf->f = NULL;
}
