#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <tls.h>

#include "buf.h"
#include "json.h"
#include "log.h"
#include "peer.h"
#include "tlsmat.h"

/*
 * OpenSSL 3.0 decodes a certificate's public key through its provider
 * machinery, which costs more than a resumed handshake itself.  So the
 * worker parses a client certificate once and keeps the result in a small
 * cache keyed by the certificate's hash (which libtls computes anyway):
 * a client that reconnects does not pay again.  What changes with the
 * configuration (the CRL, the rules) is not cached; only what the
 * certificate itself says.
 */

void
peer_unref(struct peer *p)
{
	if (p == NULL || --p->refs > 0)
		return;
	authz_identity_clear(&p->id);
	free(p->cnjson);
	free(p->cnlog);
	ASN1_INTEGER_free(p->serial);
	X509_NAME_free(p->issuer);
	OPENSSL_free(p->der);
	free(p);
}

static struct peer *
peer_parse(struct tls *tls, const char *hash, char *err, size_t errlen)
{
	struct peer	*p;
	const uint8_t	*pem;
	struct buf	 b;
	X509		*x = NULL;
	size_t		 len, n;
	int		 dlen;

	if ((pem = tls_peer_cert_chain_pem(tls, &len)) == NULL) {
		snprintf(err, errlen, "no peer certificate");
		return NULL;
	}
	if ((x = tlsmat_pem_cert(pem, len)) == NULL) {
		snprintf(err, errlen, "peer certificate does not parse");
		return NULL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto fail;
	if (authz_identity_from_x509(&p->id, x, err, errlen) == -1) {
		free(p);
		p = NULL;
		goto fail;
	}
	strlcpy(p->hash, hash, sizeof(p->hash));
	p->notbefore = tlsmat_time(X509_get0_notBefore(x));
	p->notafter = tlsmat_time(X509_get0_notAfter(x));
	p->serial = ASN1_INTEGER_dup(X509_get0_serialNumber(x));
	p->issuer = X509_NAME_dup(X509_get_issuer_name(x));
	if ((dlen = i2d_X509(x, &p->der)) > 0)
		p->derlen = (size_t)dlen;
	if (p->id.cn == NULL)
		p->id.cn = strdup("");
	buf_init(&b, 0);
	if (p->id.cn == NULL || p->serial == NULL || p->issuer == NULL ||
	    buf_add_str(&b, "{\"client\":") == -1 ||
	    json_add_string(&b, p->id.cn, strlen(p->id.cn)) == -1) {
		buf_free(&b);
		goto nomem;
	}
	p->cnjson = (char *)b.data;
	n = strlen(p->id.cn);
	if ((p->cnlog = malloc(LOG_ESCAPE_SIZE(n))) == NULL)
		goto nomem;
	log_escape(p->cnlog, LOG_ESCAPE_SIZE(n), p->id.cn, n);
	X509_free(x);
	return p;
 nomem:
	snprintf(err, errlen, "out of memory");
	p->refs = 1;
	peer_unref(p);
	p = NULL;
 fail:
	X509_free(x);
	return p;
}

/*
 * The peer of a connection whose handshake just completed, with a
 * reference for the caller.
 */
struct peer *
peer_get(struct peer_cache *pc, struct tls *tls, char *err, size_t errlen)
{
	struct peer	*p;
	const char	*hash;
	int		 i, victim = 0;

	if ((hash = tls_peer_cert_hash(tls)) == NULL || *hash == '\0') {
		snprintf(err, errlen, "no peer certificate");
		return NULL;
	}
	for (i = 0; i < PEER_CACHE; i++) {
		if ((p = pc->slot[i]) == NULL) {
			victim = i;
			continue;
		}
		if (strcmp(p->hash, hash) == 0) {
			p->used = ++pc->tick;
			p->refs++;
			return p;
		}
		if (pc->slot[victim] != NULL &&
		    p->used < pc->slot[victim]->used)
			victim = i;
	}
	if ((p = peer_parse(tls, hash, err, errlen)) == NULL)
		return NULL;
	peer_unref(pc->slot[victim]);
	pc->slot[victim] = p;
	p->used = ++pc->tick;
	p->refs = 2;		/* the cache's and the caller's */
	return p;
}

/*
 * The cached peer of a certificate hash, as tls_peer_cert_hash() writes
 * it, or NULL.
 */
struct peer *
peer_find(struct peer_cache *pc, const char *hash)
{
	int	 i;

	for (i = 0; i < PEER_CACHE; i++)
		if (pc->slot[i] != NULL && strcmp(pc->slot[i]->hash, hash) == 0)
			return pc->slot[i];
	return NULL;
}

/*
 * Check a certificate verified earlier against the current CRL and its
 * dates: a resumed session skipped verification, and a connection opened
 * before a reload was verified against the CRL of its time.  A serial
 * counts only in a CRL of the certificate's own issuer (another CA's
 * serials are another numbering).  Returns 1 when fine.
 */
int
peer_check(const struct peer *p, X509_CRL *crl, char *why, size_t whylen)
{
	X509_REVOKED	*rev;
	time_t		 now = time(NULL);

	if (p->notafter != 0 && now > p->notafter)
		snprintf(why, whylen, "certificate has expired");
	else if (now < p->notbefore)
		snprintf(why, whylen, "certificate is not yet valid");
	else if (crl != NULL &&
	    X509_NAME_cmp(X509_CRL_get_issuer(crl), p->issuer) == 0 &&
	    X509_CRL_get0_by_serial(crl, &rev, p->serial) == 1)
		snprintf(why, whylen, "certificate revoked");
	else
		return 1;
	return 0;
}
