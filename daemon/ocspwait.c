#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ocspwait.h"

int
ocspwait_cmp(struct ocspwait_entry *a, struct ocspwait_entry *b)
{
	return memcmp(a->key, b->key, sizeof(a->key));
}

RB_GENERATE(ocspwait_tree, ocspwait_entry, tree, ocspwait_cmp);

void
ocspwait_init(struct ocspwait *ow)
{
	uint32_t	 i;

	memset(ow, 0, sizeof(*ow));
	RB_INIT(&ow->tree);
	for (i = 0; i < OCSPWAIT_WORKERS; i++)
		ow->w[i].tokens = OCSPWAIT_BURST;
}

/*
 * Whether worker may make one more query now (any query, answered from
 * the cache or not: each costs the parent a certificate verification).
 * A bucket of OCSPWAIT_BURST tokens refilled at OCSPWAIT_RATE a second.
 */
int
ocspwait_allow(struct ocspwait *ow, uint32_t worker, time_t now)
{
	struct ocspwait_bucket	*b;
	time_t			 dt;

	if (worker == 0 || worker >= OCSPWAIT_WORKERS)
		return 0;
	b = &ow->w[worker];
	dt = now - b->refilled;
	if (dt > 0) {
		if (dt >= OCSPWAIT_BURST / OCSPWAIT_RATE + 1)
			b->tokens = OCSPWAIT_BURST;
		else if ((b->tokens += (uint32_t)dt * OCSPWAIT_RATE) >
		    OCSPWAIT_BURST)
			b->tokens = OCSPWAIT_BURST;
		b->refilled = now;
	} else if (dt < 0)
		b->refilled = now;	/* the clock stepped back */
	if (b->tokens == 0)
		return 0;
	b->tokens--;
	return 1;
}

struct ocspwait_entry *
ocspwait_find(struct ocspwait *ow, const uint8_t *key)
{
	struct ocspwait_entry	 find;

	memcpy(find.key, key, sizeof(find.key));
	return RB_FIND(ocspwait_tree, &ow->tree, &find);
}

static struct ocspwait_entry *
ocspwait_new(struct ocspwait *ow, const uint8_t *key)
{
	struct ocspwait_entry	*e;

	if (ow->n >= OCSPWAIT_MAX) {
		errno = ENOSPC;
		return NULL;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->key, key, sizeof(e->key));
	TAILQ_INIT(&e->waiters);
	RB_INSERT(ocspwait_tree, &ow->tree, e);
	ow->n++;
	return e;
}

/*
 * Worker's query qid waits for the answer about key.  Returns 1 when the
 * certificate was not in flight (the caller starts the exchange and may
 * set (*ep)->arg), 0 when the query joined one in flight, -1 and errno:
 * EINVAL a worker id out of range, EAGAIN the worker has too many
 * queries waiting, ENOSPC too many certificates in flight, ENOMEM.
 */
int
ocspwait_add(struct ocspwait *ow, const uint8_t *key, uint32_t worker,
    uint32_t qid, struct ocspwait_entry **ep)
{
	struct ocspwait_entry	*e;
	struct ocspwait_waiter	*wt;
	int			 isnew = 0;

	if (worker == 0 || worker >= OCSPWAIT_WORKERS) {
		errno = EINVAL;
		return -1;
	}
	if (ow->w[worker].waiting >= OCSPWAIT_PER_WORKER) {
		errno = EAGAIN;
		return -1;
	}
	if ((e = ocspwait_find(ow, key)) == NULL) {
		if ((e = ocspwait_new(ow, key)) == NULL)
			return -1;
		isnew = 1;
	}
	if ((wt = calloc(1, sizeof(*wt))) == NULL) {
		if (isnew) {
			RB_REMOVE(ocspwait_tree, &ow->tree, e);
			ow->n--;
			free(e);
		}
		return -1;
	}
	wt->worker = worker;
	wt->qid = qid;
	TAILQ_INSERT_TAIL(&e->waiters, wt, entry);
	ow->w[worker].waiting++;
	*ep = e;
	return isnew;
}

/* The answer is in (or will never be): tell every waiter, drop e. */
void
ocspwait_done(struct ocspwait *ow, struct ocspwait_entry *e,
    ocspwait_cb *cb, void *arg)
{
	struct ocspwait_waiter	*wt;

	RB_REMOVE(ocspwait_tree, &ow->tree, e);
	ow->n--;
	while ((wt = TAILQ_FIRST(&e->waiters)) != NULL) {
		TAILQ_REMOVE(&e->waiters, wt, entry);
		ow->w[wt->worker].waiting--;
		if (cb != NULL)
			cb(arg, wt->worker, wt->qid);
		free(wt);
	}
	free(e);
}

/*
 * A worker went away: forget its queries.  The exchanges go on: their
 * answers still fill the cache for whoever asks next.
 */
void
ocspwait_drop_worker(struct ocspwait *ow, uint32_t worker)
{
	struct ocspwait_entry	*e;
	struct ocspwait_waiter	*wt, *next;

	if (worker == 0 || worker >= OCSPWAIT_WORKERS)
		return;
	RB_FOREACH(e, ocspwait_tree, &ow->tree) {
		TAILQ_FOREACH_SAFE(wt, &e->waiters, entry, next) {
			if (wt->worker != worker)
				continue;
			TAILQ_REMOVE(&e->waiters, wt, entry);
			free(wt);
		}
	}
	ow->w[worker].waiting = 0;
}

/* Drop everything in flight; cancel is called with each entry's arg. */
void
ocspwait_clear(struct ocspwait *ow, void (*cancel)(void *))
{
	struct ocspwait_entry	*e;

	while ((e = RB_MIN(ocspwait_tree, &ow->tree)) != NULL) {
		if (cancel != NULL && e->arg != NULL)
			cancel(e->arg);
		ocspwait_done(ow, e, NULL, NULL);
	}
}
