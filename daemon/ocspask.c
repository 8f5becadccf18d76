#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ipc.h"
#include "ocspask.h"
#include "ocspmsg.h"
#include "peer.h"

int
ocspask_cmp(struct ocspask_query *a, struct ocspask_query *b)
{
	return a->qid < b->qid ? -1 : a->qid > b->qid;
}

RB_GENERATE(ocspask_tree, ocspask_query, tree, ocspask_cmp);

void
ocspask_init(struct ocspask *oa, ocspask_send_fn *send, void *arg)
{
	memset(oa, 0, sizeof(*oa));
	RB_INIT(&oa->tree);
	oa->send = send;
	oa->arg = arg;
}

/*
 * Whether a connection of this peer must wait for the parent: client
 * OCSP is on and the worker holds no answer still valid (a revoked one
 * stays for good: no question to ask).
 */
int
ocspask_needed(int mode, const struct peer *p, time_t now)
{
	if (mode == CONFIG_OCSP_OFF || p->revoked)
		return 0;
	return p->ocsp_until <= now;
}

/* `require' lets in only a good answer; `prefer' all but a revoked one. */
enum ocspask_verdict
ocspask_verdict(int mode, uint32_t status)
{
	if (mode == CONFIG_OCSP_OFF || status == OCSPMSG_GOOD)
		return OCSPASK_ACCEPT;
	if (status == OCSPMSG_REVOKED || mode == CONFIG_OCSP_REQUIRE)
		return OCSPASK_REFUSE;
	return OCSPASK_WARN;
}

static struct ocspask_query *
ocspask_of_peer(struct ocspask *oa, const struct peer *p)
{
	struct ocspask_query	*q;

	/* at most OCSPASK_MAX: a walk costs less than a second index */
	RB_FOREACH(q, ocspask_tree, &oa->tree)
		if (q->peer == p)
			return q;
	return NULL;
}

static struct ocspask_query *
ocspask_new(struct ocspask *oa, struct peer *p)
{
	struct ocspask_query	*q;

	if (oa->n >= OCSPASK_MAX) {
		errno = EAGAIN;
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	/* ids are ours; 0 is never one */
	do
		q->qid = ++oa->nextqid;
	while (q->qid == 0 || RB_FIND(ocspask_tree, &oa->tree, q) != NULL);
	if (p->der == NULL || p->derlen == 0 ||
	    p->derlen > OCSPMSG_CERT_MAX) {
		free(q);
		errno = EMSGSIZE;
		return NULL;
	}
	if (oa->send(oa->arg, q->qid, p->der, p->derlen) == -1) {
		free(q);
		return NULL;
	}
	q->peer = p;
	p->refs++;
	TAILQ_INIT(&q->waiters);
	RB_INSERT(ocspask_tree, &oa->tree, q);
	oa->n++;
	return q;
}

/*
 * Connection arg (waiter w) waits for an answer about peer p: it joins
 * the query in flight for p, or one is sent.  0, or -1 and errno
 * (EAGAIN: too many in flight; EMSGSIZE: a certificate too big to ask
 * about); then nothing waits.
 */
int
ocspask_ask(struct ocspask *oa, struct peer *p, struct ocspask_waiter *w,
    void *arg)
{
	struct ocspask_query	*q;

	if ((q = ocspask_of_peer(oa, p)) == NULL &&
	    (q = ocspask_new(oa, p)) == NULL)
		return -1;
	w->q = q;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&q->waiters, w, entry);
	return 0;
}

/*
 * The connection stops waiting (it timed out, or is gone).  Its query
 * stays in flight: the answer still fills the peer's cache.
 */
void
ocspask_leave(struct ocspask_waiter *w)
{
	if (w->q == NULL)
		return;
	TAILQ_REMOVE(&w->q->waiters, w, entry);
	w->q = NULL;
}

static void
ocspask_free(struct ocspask *oa, struct ocspask_query *q)
{
	struct ocspask_waiter	*w;

	while ((w = TAILQ_FIRST(&q->waiters)) != NULL)
		ocspask_leave(w);
	RB_REMOVE(ocspask_tree, &oa->tree, q);
	oa->n--;
	peer_unref(q->peer);
	free(q);
}

/* Keep what the parent said on the peer for as long as it holds. */
static void
ocspask_note(struct peer *p, const struct ocspmsg_answer *a, time_t now)
{
	if (a->status == OCSPMSG_REVOKED)
		p->revoked = 1;
	if (a->status == OCSPMSG_NOANSWER || a->until <= now)
		return;
	p->ocsp_status = a->status;
	p->ocsp_until = a->until;
}

/*
 * An OCSP_ANSWER: noted on its peer, then cb(cbarg, connection, answer)
 * for every connection waiting, each already out of the wait (cb may
 * close it).  An answer nobody asked for is ignored: 0; a malformed
 * one: -1.
 */
int
ocspask_answer(struct ocspask *oa, struct ipc_msg *msg, time_t now,
    ocspask_cb *cb, void *cbarg)
{
	struct ocspmsg_answer	 a;
	struct ocspask_query	*q, find;
	struct ocspask_waiter	*w;

	if (ocspmsg_get_answer(msg, &a) == -1)
		return -1;
	find.qid = a.qid;
	if ((q = RB_FIND(ocspask_tree, &oa->tree, &find)) == NULL)
		return 0;
	ocspask_note(q->peer, &a, now);
	while ((w = TAILQ_FIRST(&q->waiters)) != NULL) {
		ocspask_leave(w);
		cb(cbarg, w->arg, &a);
	}
	ocspask_free(oa, q);
	return 0;
}

/* Forget every query (the worker is going): nobody waits any more. */
void
ocspask_clear(struct ocspask *oa)
{
	struct ocspask_query	*q;

	while ((q = RB_MIN(ocspask_tree, &oa->tree)) != NULL)
		ocspask_free(oa, q);
}
