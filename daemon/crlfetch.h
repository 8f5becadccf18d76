/*
 * CRL refresh (`crl url "http://..." refresh N`): the parent fetches the
 * CRL every N seconds.  A CRL that passes the checks every CRL file passes
 * (tlsmat_load, the one validator of -n, start-up and reload) and is not
 * older than the one in use replaces the configured `crl` file (so that a
 * restart starts from the last good one) and is applied by a reload;
 * anything else is logged and the CRL in use stays.
 */
#ifndef TODOD_CRLFETCH_H
#define TODOD_CRLFETCH_H

#include <event.h>
#include <stdint.h>
#include <time.h>

struct apply;
struct fetch;

#define CRLFETCH_MAX		(4 * 1024 * 1024)	/* bytes */
#define CRLFETCH_TIMEOUT	30			/* seconds */

struct crlfetch {
	struct event_base	*base;
	struct apply		*apply;		/* its conf: the URL, the file */
	void			(*reload)(void *);
	void			*arg;
	struct event		 timer;
	struct fetch		*f;
};

void	crlfetch_init(struct crlfetch *, struct event_base *, struct apply *,
	    void (*)(void *), void *);
void	crlfetch_stop(struct crlfetch *);

#endif
