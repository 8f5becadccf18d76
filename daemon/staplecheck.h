/*
 * The one check of an OCSP staple, for check_config() (-n, start-up,
 * reload) and for every response the staple service fetches.
 */
#ifndef TODOD_STAPLECHECK_H
#define TODOD_STAPLECHECK_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "ocspcheck.h"

struct config;
struct tlsmat;

#define STAPLE_MAX		OCSPCHECK_RESP_MAX	/* DER bytes */

/* Verify a staple (DER) for the server certificate of m at now. */
int	staple_verify(const struct tlsmat *, const void *, size_t, time_t,
	    struct ocspcheck_answer *, char *, size_t);
/*
 * check_config's step: a staple file is read into m->staple and
 * verified; in auto mode the responder URL and the issuer must be known.
 * The message names FILE:LINE and the setting and says what to do.
 */
int	staple_check(const struct config *, struct tlsmat *, char *, size_t);
/* The responder: `ocsp url`, else the certificate's AIA OCSP URL. */
int	staple_url(const struct config *, const struct tlsmat *, char *,
	    size_t, char *, size_t);

/*
 * The query a staple must answer: the server certificate and its issuer
 * in q; returns the store of signers to trust, NULL with err set.
 */
X509_STORE	*staple_query(const struct tlsmat *, struct ocspcheck_query *,
		    char *, size_t);

#endif
