#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fetch.h"
#include "ocspcheck.h"
#include "ocspmsg.h"

static int
ocspcheck_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	ERR_clear_error();	/* the reason is in err, not queued */
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * A URL the fetch module takes (http:// only: the answer is signed),
 * bounded, and of printable ASCII without spaces: it comes from a
 * certificate and goes into an HTTP request line and the logs.
 */
int
ocspcheck_url_ok(const char *url)
{
	char	 err[256];
	size_t	 i, n = strnlen(url, OCSPCHECK_URL_MAX + 1);

	if (n > OCSPCHECK_URL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (url[i] <= ' ' || url[i] >= 0x7f)
			return 0;
	return fetch_url_ok(url, err, sizeof(err));
}

/* The whole DER is one certificate, nothing before or after it. */
static X509 *
ocspcheck_parse(const void *der, size_t len)
{
	const unsigned char	*p = der;
	X509			*x;

	if (len == 0 || len > OCSPMSG_CERT_MAX ||
	    (x = d2i_X509(NULL, &p, (long)len)) == NULL)
		return NULL;
	if (p != (const unsigned char *)der + len) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* The issuer of leaf, from a chain the CA store verifies for a client. */
static X509 *
ocspcheck_issuer(X509 *leaf, X509_STORE *ca, char *err, size_t errlen)
{
	X509_STORE_CTX	*ctx;
	X509		*issuer = NULL;

	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(ctx, ca, leaf, NULL) ||
	    !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)) {
		ocspcheck_fail(err, errlen, "out of memory");
		goto done;
	}
	if (X509_verify_cert(ctx) != 1) {
		ocspcheck_fail(err, errlen, "certificate not signed by the "
		    "client CA: %s", X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
		goto done;
	}
	if (sk_X509_num(X509_STORE_CTX_get0_chain(ctx)) < 2) {
		ocspcheck_fail(err, errlen, "certificate is its own issuer");
		goto done;
	}
	issuer = sk_X509_value(X509_STORE_CTX_get0_chain(ctx), 1);
	X509_up_ref(issuer);
 done:
	X509_STORE_CTX_free(ctx);
	return issuer;
}

/* The configured URL, else the first usable one in the AIA. */
static int
ocspcheck_pick_url(struct ocspcheck_query *q, X509 *leaf, const char *url,
    char *err, size_t errlen)
{
	STACK_OF(OPENSSL_STRING)	*aia;
	int				 i;

	q->url[0] = '\0';
	if (url != NULL) {
		if (!ocspcheck_url_ok(url))
			return ocspcheck_fail(err, errlen, "bad OCSP URL");
		strlcpy(q->url, url, sizeof(q->url));
		return 0;
	}
	aia = X509_get1_ocsp(leaf);
	for (i = 0; i < sk_OPENSSL_STRING_num(aia); i++) {
		if (ocspcheck_url_ok(sk_OPENSSL_STRING_value(aia, i))) {
			strlcpy(q->url, sk_OPENSSL_STRING_value(aia, i),
			    sizeof(q->url));
			break;
		}
	}
	X509_email_free(aia);
	if (q->url[0] == '\0')
		return ocspcheck_fail(err, errlen, "no usable OCSP URL in the "
		    "certificate");
	return 0;
}

/* The cache key: a digest of the DER cert id (hashes and serial). */
static int
ocspcheck_key(struct ocspcheck_query *q)
{
	unsigned char	*der = NULL;
	unsigned int	 n = 0;
	int		 len, ok;

	if ((len = i2d_OCSP_CERTID(q->id, &der)) <= 0)
		return -1;
	ok = EVP_Digest(der, (size_t)len, q->key, &n, EVP_sha256(), NULL);
	OPENSSL_free(der);
	return ok && n == sizeof(q->key) ? 0 : -1;
}

/* The request, with the cert id and a fresh nonce, as DER. */
static int
ocspcheck_request(struct ocspcheck_query *q)
{
	OCSP_CERTID	*id;
	unsigned char	*der = NULL;
	int		 len;

	if ((q->req = OCSP_REQUEST_new()) == NULL ||
	    (id = OCSP_CERTID_dup(q->id)) == NULL)
		return -1;
	if (OCSP_request_add0_id(q->req, id) == NULL) {
		OCSP_CERTID_free(id);
		return -1;
	}
	if (!OCSP_request_add1_nonce(q->req, NULL, -1) ||
	    (len = i2d_OCSP_REQUEST(q->req, &der)) <= 0)
		return -1;
	q->der = der;
	q->derlen = (size_t)len;
	return 0;
}

/*
 * Build the query for a client certificate (DER, as a worker sent it).
 * url is the configured responder or NULL for the certificate's AIA.
 * Returns 0, or -1 with the reason in err; either way the query is to be
 * freed with ocspcheck_query_free.
 */
int
ocspcheck_query_new(struct ocspcheck_query *q, const void *der, size_t len,
    X509_STORE *ca, const char *url, char *err, size_t errlen)
{
	X509	*leaf, *issuer = NULL;
	int	 rv = -1;

	memset(q, 0, sizeof(*q));
	if ((leaf = ocspcheck_parse(der, len)) == NULL)
		return ocspcheck_fail(err, errlen, "not a certificate");
	if ((issuer = ocspcheck_issuer(leaf, ca, err, errlen)) == NULL ||
	    ocspcheck_pick_url(q, leaf, url, err, errlen) == -1)
		goto done;
	if ((q->id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer)) == NULL ||
	    ocspcheck_key(q) == -1 || ocspcheck_request(q) == -1) {
		ocspcheck_fail(err, errlen, "cannot build the OCSP request");
		goto done;
	}
	rv = 0;
 done:
	X509_free(issuer);
	X509_free(leaf);
	return rv;
}

void
ocspcheck_query_free(struct ocspcheck_query *q)
{
	OCSP_CERTID_free(q->id);
	OCSP_REQUEST_free(q->req);
	OPENSSL_free(q->der);
	sk_X509_pop_free(q->signers, X509_free);
	memset(q, 0, sizeof(*q));
}

/* An ASN1 time as UNIX time; -1 if it does not convert. */
static time_t
ocspcheck_time(const ASN1_GENERALIZEDTIME *t)
{
	struct tm	 tm;

	if (!ASN1_TIME_to_tm(t, &tm))
		return -1;
	return timegm(&tm);
}

/*
 * thisUpdate not in the future, nextUpdate after it and not past; an
 * answer without nextUpdate is used once if it is fresh.  Sets until to
 * the time the answer may be kept to (now: not at all), capped.
 */
static int
ocspcheck_dates(ASN1_GENERALIZEDTIME *thisupd, ASN1_GENERALIZEDTIME *nextupd,
    time_t now, struct ocspcheck_answer *a, char *err, size_t errlen)
{
	time_t	 tu, nu, *until = &a->until;

	if (thisupd == NULL || (tu = ocspcheck_time(thisupd)) == -1)
		return ocspcheck_fail(err, errlen, "bad thisUpdate");
	if (tu > now + OCSPCHECK_SKEW)
		return ocspcheck_fail(err, errlen, "thisUpdate in the future");
	a->thisupd = tu;
	a->nextupd = 0;
	if (nextupd == NULL) {
		if (tu < now - OCSPCHECK_SKEW)
			return ocspcheck_fail(err, errlen, "stale answer "
			    "without nextUpdate");
		*until = now;
		return 0;
	}
	if ((nu = ocspcheck_time(nextupd)) == -1 || nu < tu)
		return ocspcheck_fail(err, errlen, "bad nextUpdate");
	if (nu <= now)
		return ocspcheck_fail(err, errlen, "answer expired (nextUpdate "
		    "passed)");
	a->nextupd = nu;
	*until = nu - now > OCSPCHECK_KEEP_MAX ? now + OCSPCHECK_KEEP_MAX : nu;
	return 0;
}

/*
 * The signed part: signer, nonce (unless q has no request: a staple is
 * fetched once for every client, without one), and the status of our
 * cert id.
 */
static int
ocspcheck_basic(const struct ocspcheck_query *q, OCSP_BASICRESP *bs,
    X509_STORE *ca, time_t now, struct ocspcheck_answer *a, char *err,
    size_t errlen)
{
	ASN1_GENERALIZEDTIME	*rev, *thisupd, *nextupd;
	int			 st, reason;

	if (OCSP_basic_verify(bs, q->signers, ca, 0) != 1)
		return ocspcheck_fail(err, errlen, "response not signed by "
		    "the issuer or a responder it delegated to");
	if (OCSP_resp_find_status(bs, q->id, &st, &reason, &rev, &thisupd,
	    &nextupd) != 1)
		return ocspcheck_fail(err, errlen, "no status for this "
		    "certificate in the response");
	/* 1: ours echoed; a responder that ignores nonces is refused */
	if (q->req != NULL && OCSP_check_nonce(q->req, bs) != 1)
		return ocspcheck_fail(err, errlen, "nonce missing or wrong");
	if (ocspcheck_dates(thisupd, nextupd, now, a, err, errlen) == -1)
		return -1;
	switch (st) {
	case V_OCSP_CERTSTATUS_GOOD:
		a->status = OCSPMSG_GOOD;
		break;
	case V_OCSP_CERTSTATUS_REVOKED:
		a->status = OCSPMSG_REVOKED;
		break;
	default:
		a->status = OCSPMSG_UNKNOWN;
		break;
	}
	return 0;
}

/*
 * Verify a responder's answer (DER) to query q at time now.  Returns 0
 * with the status (enum ocspmsg_status) and the time the answer may be
 * kept until (now: use once), or -1 with the reason in err.
 */
int
ocspcheck_verify(const struct ocspcheck_query *q, const void *der,
    size_t len, X509_STORE *ca, time_t now, uint32_t *status, time_t *until,
    char *err, size_t errlen)
{
	struct ocspcheck_answer	 a;

	if (ocspcheck_verify_answer(q, der, len, ca, now, &a, err,
	    errlen) == -1)
		return -1;
	*status = a.status;
	*until = a.until;
	return 0;
}

/*
 * The same, with the answer's times: what a staple needs (its age, when
 * to fetch the next).  q->req NULL: no nonce is expected.
 */
int
ocspcheck_verify_answer(const struct ocspcheck_query *q, const void *der,
    size_t len, X509_STORE *ca, time_t now, struct ocspcheck_answer *a,
    char *err, size_t errlen)
{
	const unsigned char	*p = der;
	OCSP_RESPONSE		*resp = NULL;
	OCSP_BASICRESP		*bs = NULL;
	int			 rv = -1;

	if (len == 0 || len > OCSPCHECK_RESP_MAX)
		return ocspcheck_fail(err, errlen, "response size %zu out of "
		    "bounds", len);
	if ((resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len)) == NULL ||
	    p != (const unsigned char *)der + len) {
		ocspcheck_fail(err, errlen, "malformed response");
		goto done;
	}
	if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		ocspcheck_fail(err, errlen, "responder says %s",
		    OCSP_response_status_str(OCSP_response_status(resp)));
		goto done;
	}
	if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
		ocspcheck_fail(err, errlen, "not a basic response");
		goto done;
	}
	memset(a, 0, sizeof(*a));
	rv = ocspcheck_basic(q, bs, ca, now, a, err, errlen);
 done:
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	return rv;
}
