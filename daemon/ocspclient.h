/*
 * The parent's client certificate OCSP service: answers workers'
 * OCSP_QUERY messages from the cache (ocspcache), or by asking the
 * responder (fetch) once per certificate however many ask (ocspwait),
 * verifying the answer (ocspcheck).  A fresh "revoked" answer goes to
 * every worker (OCSP_REVOKED), which cut the connections open for that
 * certificate.  Runs in the parent's event loop and never blocks it.
 *
 * The configuration is the one apply.c has committed, taken at the next
 * query: the client CA is the very PEM the workers verify clients with.
 */
#ifndef TODOD_OCSPCLIENT_H
#define TODOD_OCSPCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ocspcache.h"
#include "ocspwait.h"

struct apply;
struct event_base;
struct ipc_msg;
struct metrics;
struct proc;
struct proc_group;
struct x509_store_st;

struct ocspclient {
	struct event_base	*base;
	struct proc_group	*workers;
	struct apply		*apply;		/* the configuration in use */
	struct metrics		*metrics;
	uint32_t		 gen;		/* apply's, last taken */
	int			 mode;		/* enum config_ocsp */
	struct x509_store_st	*ca;		/* NULL: OCSP off */
	struct buf		 capem;		/* what ca was made from */
	char			*url;		/* NULL: the AIA's */
	int			 timeout;	/* seconds */
	struct ocspcache	 cache;
	struct ocspwait		 wait;
};

void	ocspclient_init(struct ocspclient *, struct event_base *,
	    struct proc_group *, struct apply *, struct metrics *);
int	ocspclient_configure(struct ocspclient *, int, const struct buf *,
	    const char *, int, char *, size_t);
void	ocspclient_query(struct ocspclient *, struct proc *,
	    struct ipc_msg *);
void	ocspclient_worker_gone(struct ocspclient *, struct proc *);
void	ocspclient_clear(struct ocspclient *);
struct x509_store_st *ocspclient_store(const void *, size_t);

#endif
