/*
 * OCSP stapling of the server certificate (`ocsp staple "FILE"`, `ocsp
 * staple auto`, `ocsp url "http://..."` in the tls block).
 *
 * One check for every staple, wherever it comes from (staplecheck.h):
 * staple_verify() wants a successful basic OCSP response about the server certificate,
 * signed by its issuer or by a responder the issuer delegated to, whose
 * status is good and whose nextUpdate has not passed (ocspcheck's
 * verification, without a nonce).  check_config() runs it on a staple
 * file for -n, start-up and reload; the parent runs it on every response
 * it fetches in auto mode.
 *
 * The staple service in the parent keeps the staple in use: in auto mode
 * it fetches one (fetch module, never blocking the loop), refreshes it at
 * half its validity within [STAPLE_REFRESH_MIN, STAPLE_REFRESH_MAX], keeps
 * the last good one when a fetch fails (retrying sooner), warns as it
 * nears its nextUpdate and stops stapling it once that has passed; in
 * both modes it gives new staples to the workers without a reload and
 * reports the staple's age to the metrics.
 */
#ifndef TODOD_STAPLE_H
#define TODOD_STAPLE_H

#include <event.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "ocspcheck.h"

struct apply;
struct config;
struct fetch;
struct tlsmat;

#define STAPLE_TIMEOUT		15		/* one fetch, seconds */
#define STAPLE_REFRESH_MIN	20		/* seconds */
#define STAPLE_REFRESH_MAX	(12 * 3600)
#define STAPLE_RETRY_MIN	10		/* after a failed fetch */
#define STAPLE_RETRY_MAX	600
#define STAPLE_IDLE		60		/* nothing to do: look again */

typedef void	staple_push_cb(void *, const uint8_t *, size_t);

struct staple {
	struct event_base	*base;
	struct apply		*apply;	/* conf and mat in use, metrics */
	staple_push_cb		*push;	/* to every worker */
	void			*arg;
	struct event		 timer;
	struct fetch		*f;
	struct ocspcheck_query	 q;	/* the fetch's */
	struct buf		 der;	/* auto: the last good staple */
	uint8_t			 cert[32];	/* which certificate's */
	char			 url[OCSPCHECK_URL_MAX + 1];	/* from */
	struct ocspcheck_answer	 ans;	/* of the staple in use */
	time_t			 next;	/* auto: the next fetch */
	int			 fails;	/* failed fetches in a row */
	int			 warned;	/* file: about its expiry */
};

void	staple_init(struct staple *, struct event_base *, struct apply *,
	    staple_push_cb *, void *);
/* A new configuration's material: give it the staple in use (auto). */
void	staple_carry(struct staple *, const struct config *, struct tlsmat *);
void	staple_stop(struct staple *);

#endif
