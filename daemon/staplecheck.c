/*
 * The one check of an OCSP staple (see staplecheck.h), apart from the
 * service that fetches staples, so that check_config() can use it
 * without depending on the parent's machinery.
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

#include "config.h"
#include "log.h"
#include "ocspmsg.h"
#include "staplecheck.h"
#include "tlsmat.h"

/* The issuer of leaf: later in its chain, else among the client CAs. */
static X509 *
staple_issuer(X509 *leaf, STACK_OF(X509) *chain, const struct tlsmat *m)
{
	STACK_OF(X509)	*cas;
	X509		*c, *issuer = NULL;
	int		 i;

	for (i = 1; i < sk_X509_num(chain) && issuer == NULL; i++)
		if (X509_check_issued(sk_X509_value(chain, i), leaf) ==
		    X509_V_OK)
			issuer = sk_X509_value(chain, i);
	cas = tlsmat_pem_certs(m->ca.data, m->ca.len);
	for (i = 0; i < sk_X509_num(cas) && issuer == NULL; i++) {
		c = sk_X509_value(cas, i);
		if (X509_check_issued(c, leaf) == X509_V_OK)
			issuer = c;
	}
	if (issuer != NULL)
		X509_up_ref(issuer);
	sk_X509_pop_free(cas, X509_free);
	return issuer;
}

/*
 * The cert id of the server certificate, and a store that trusts its
 * issuer alone (partial chain: it may be an intermediate), so that only
 * the issuer or a responder it certified can sign a staple.
 */
X509_STORE *
staple_query(const struct tlsmat *m, struct ocspcheck_query *q, char *err,
    size_t errlen)
{
	STACK_OF(X509)	*chain;
	X509		*issuer = NULL;
	X509_STORE	*st = NULL;

	memset(q, 0, sizeof(*q));
	if ((chain = tlsmat_pem_certs(m->cert.data, m->cert.len)) == NULL) {
		snprintf(err, errlen, "the certificate does not parse");
		return NULL;
	}
	if ((issuer = staple_issuer(sk_X509_value(chain, 0), chain,
	    m)) == NULL) {
		snprintf(err, errlen, "the issuer of the server certificate "
		    "is in neither the certificate file's chain nor the "
		    "client ca file: add it to the certificate file");
		goto done;
	}
	if ((q->id = OCSP_cert_to_id(EVP_sha1(), sk_X509_value(chain, 0),
	    issuer)) == NULL || (q->signers = sk_X509_new_null()) == NULL ||
	    !sk_X509_push(q->signers, issuer) ||
	    (st = X509_STORE_new()) == NULL ||
	    !X509_STORE_add_cert(st, issuer)) {
		snprintf(err, errlen, "out of memory");
		X509_STORE_free(st);
		st = NULL;
		goto done;
	}
	X509_up_ref(issuer);	/* one for q->signers */
	X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
 done:
	X509_free(issuer);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return st;
}

/* Good status, and a nextUpdate: a staple without one cannot be aged. */
static int
staple_usable(const struct ocspcheck_answer *a, char *err, size_t errlen)
{
	if (a->status == OCSPMSG_REVOKED)
		snprintf(err, errlen, "the responder says the server "
		    "certificate is REVOKED");
	else if (a->status != OCSPMSG_GOOD)
		snprintf(err, errlen, "the responder does not know the "
		    "server certificate (status unknown)");
	else if (a->nextupd == 0)
		snprintf(err, errlen, "the response has no nextUpdate");
	else
		return 0;
	return -1;
}

int
staple_verify(const struct tlsmat *m, const void *der, size_t len,
    time_t now, struct ocspcheck_answer *a, char *err, size_t errlen)
{
	struct ocspcheck_query	 q;
	X509_STORE		*st;
	int			 r = -1;

	if ((st = staple_query(m, &q, err, errlen)) == NULL)
		goto done;
	if (ocspcheck_verify_answer(&q, der, len, st, now, a, err,
	    errlen) == 0 && staple_usable(a, err, errlen) == 0)
		r = 0;
 done:
	X509_STORE_free(st);
	ocspcheck_query_free(&q);
	return r;
}

int
staple_url(const struct config *conf, const struct tlsmat *m, char *url,
    size_t urllen, char *err, size_t errlen)
{
	STACK_OF(OPENSSL_STRING)	*aia;
	X509				*leaf;
	int				 i;

	if (conf->tls.staple_url != NULL) {
		strlcpy(url, conf->tls.staple_url, urllen);
		return 0;
	}
	url[0] = '\0';
	if ((leaf = tlsmat_pem_cert(m->cert.data, m->cert.len)) == NULL) {
		snprintf(err, errlen, "the certificate does not parse");
		return -1;
	}
	aia = X509_get1_ocsp(leaf);
	for (i = 0; i < sk_OPENSSL_STRING_num(aia) && url[0] == '\0'; i++)
		if (ocspcheck_url_ok(sk_OPENSSL_STRING_value(aia, i)))
			strlcpy(url, sk_OPENSSL_STRING_value(aia, i), urllen);
	X509_email_free(aia);
	X509_free(leaf);
	if (url[0] != '\0')
		return 0;
	snprintf(err, errlen, "the server certificate names no http:// OCSP "
	    "responder (authorityInfoAccess): set ocsp url \"http://...\"");
	return -1;
}

/* A staple file: read, bounded, verified now; kept in m->staple. */
static int
staple_check_file(const struct config *conf, struct tlsmat *m, char *err,
    size_t errlen)
{
	struct ocspcheck_answer	 a;
	const char		*path = conf->tls.staple;
	char			 why[512];

	if (tlsmat_read_file(path, &m->staple, why, sizeof(why)) == -1) {
		config_problem(conf, "ocsp staple", path, err, errlen, "%s",
		    why);
		return -1;
	}
	if (m->staple.len > STAPLE_MAX) {
		config_problem(conf, "ocsp staple", path, err, errlen,
		    "larger than %d KiB: not an OCSP response", STAPLE_MAX /
		    1024);
		return -1;
	}
	if (staple_verify(m, m->staple.data, m->staple.len, time(NULL), &a,
	    why, sizeof(why)) == -1) {
		config_problem(conf, "ocsp staple", path, err, errlen,
		    "not a usable OCSP response for the server certificate: "
		    "%s; fetch a new one (openssl ocsp -issuer ISSUER -cert "
		    "CERT -url URL -respout FILE) or use ocsp staple auto", why);
		return -1;
	}
	return 0;
}

int
staple_check(const struct config *conf, struct tlsmat *m, char *err,
    size_t errlen)
{
	struct ocspcheck_query	 q;
	X509_STORE		*st;
	char			 url[OCSPCHECK_URL_MAX + 1], why[512];

	memset(&q, 0, sizeof(q));
	buf_free(&m->staple);	/* tlsmat_read_file starts it afresh */
	if (conf->tls.staple != NULL)
		return staple_check_file(conf, m, err, errlen);
	if (!conf->tls.staple_auto)
		return 0;
	if (staple_url(conf, m, url, sizeof(url), why, sizeof(why)) == -1 ||
	    (st = staple_query(m, &q, why, sizeof(why))) == NULL) {
		ocspcheck_query_free(&q);
		config_problem(conf, "ocsp staple", "auto", err, errlen, "%s",
		    why);
		return -1;
	}
	X509_STORE_free(st);
	ocspcheck_query_free(&q);
	return 0;
}
