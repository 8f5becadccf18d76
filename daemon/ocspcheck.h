/*
 * The parent's side of client certificate OCSP, without the transport:
 * from a client certificate a worker sent, the query to make (after
 * checking that the configured CA signed the certificate: only then is
 * its AIA responder URL trusted), and the verification of the responder's
 * answer (signature against the client CA, the same cert id, the nonce
 * echoed, thisUpdate and nextUpdate sane).  The HTTP exchange itself is
 * the fetch module's; this module never touches the network.
 */
#ifndef TODOD_OCSPCHECK_H
#define TODOD_OCSPCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ocspcache.h"

struct ocsp_cert_id_st;
struct ocsp_request_st;
struct x509_store_st;

#define OCSPCHECK_URL_MAX	1024		/* bytes */
#define OCSPCHECK_RESP_MAX	(64 * 1024)	/* a response, DER bytes */
#define OCSPCHECK_SKEW		300		/* clock skew allowed, s */
#define OCSPCHECK_KEEP_MAX	(7 * 86400)	/* longest an answer is kept */

struct ocspcheck_query {
	struct ocsp_cert_id_st	*id;
	struct ocsp_request_st	*req;		/* carries the nonce */
	uint8_t			 key[OCSPCACHE_KEYLEN];	/* cache key */
	uint8_t			*der;		/* the request to POST */
	size_t			 derlen;
	char			 url[OCSPCHECK_URL_MAX + 1];
	/* where to look for the responder's certificate besides the answer */
	struct stack_st_X509	*signers;	/* NULL: the answer only */
};

int	ocspcheck_query_new(struct ocspcheck_query *, const void *, size_t,
	    struct x509_store_st *, const char *, char *, size_t);
void	ocspcheck_query_free(struct ocspcheck_query *);
int	ocspcheck_verify(const struct ocspcheck_query *, const void *, size_t,
	    struct x509_store_st *, time_t, uint32_t *, time_t *, char *,
	    size_t);
int	ocspcheck_url_ok(const char *);

/* A verified answer: status (enum ocspmsg_status) and times. */
struct ocspcheck_answer {
	uint32_t	 status;
	time_t		 thisupd;
	time_t		 nextupd;	/* 0: none given */
	time_t		 until;		/* kept until (now: use once) */
};

int	ocspcheck_verify_answer(const struct ocspcheck_query *, const void *,
	    size_t, struct x509_store_st *, time_t, struct ocspcheck_answer *,
	    char *, size_t);

#endif
