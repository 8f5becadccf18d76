/*
 * The worker's side of client certificate OCSP: a connection whose
 * certificate needs an answer asks the parent (OCSP_QUERY), one query per
 * certificate however many connections wait for it; the answer is kept
 * on the certificate's struct peer (the worker's small cache) while it
 * holds, and every waiting connection is told.  Which answers let a
 * client in is decided here too, for `client ocsp require' and `prefer'.
 * No sockets, no timers: server.c does the waiting (regress/unit/
 * test_ocspask.c tests this without them).
 */
#ifndef TODOD_OCSPASK_H
#define TODOD_OCSPASK_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ocspmsg.h"

struct ipc_msg;
struct peer;

#define OCSPASK_MAX	48	/* queries in flight (the parent takes 64) */

struct ocspask_query;

/* A connection waiting for an answer (embedded in it). */
struct ocspask_waiter {
	TAILQ_ENTRY(ocspask_waiter)	 entry;
	struct ocspask_query		*q;	/* NULL: not waiting */
	void				*arg;	/* the connection */
};

struct ocspask_query {
	RB_ENTRY(ocspask_query)		 tree;
	uint32_t			 qid;
	struct peer			*peer;	/* a reference */
	TAILQ_HEAD(, ocspask_waiter)	 waiters;
};

RB_HEAD(ocspask_tree, ocspask_query);
int	ocspask_cmp(struct ocspask_query *, struct ocspask_query *);
RB_PROTOTYPE(ocspask_tree, ocspask_query, tree, ocspask_cmp);

/* Sends OCSP_QUERY qid about der/len to the parent: 0, or -1 and errno. */
typedef int	ocspask_send_fn(void *, uint32_t, const void *, size_t);

struct ocspask {
	struct ocspask_tree	 tree;
	size_t			 n;
	uint32_t		 nextqid;
	ocspask_send_fn		*send;		/* worker.c owns the channel */
	void			*arg;
};

/* What a client gets, from the mode and the answer. */
enum ocspask_verdict {
	OCSPASK_ACCEPT,
	OCSPASK_WARN,		/* accepted without a good answer: prefer */
	OCSPASK_REFUSE
};

typedef void	ocspask_cb(void *, void *, const struct ocspmsg_answer *);

void	ocspask_init(struct ocspask *, ocspask_send_fn *, void *);
int	ocspask_needed(int, const struct peer *, time_t);
int	ocspask_ask(struct ocspask *, struct peer *, struct ocspask_waiter *,
	    void *);
void	ocspask_leave(struct ocspask_waiter *);
int	ocspask_answer(struct ocspask *, struct ipc_msg *, time_t,
	    ocspask_cb *, void *);
enum ocspask_verdict ocspask_verdict(int, uint32_t);
void	ocspask_clear(struct ocspask *);

#endif
