/*
 * The parent's client OCSP queries in flight: one responder exchange per
 * certificate however many workers ask about it at once (keyed like the
 * answer cache), and the bounds on what a worker, which may be
 * compromised, can make the parent do: queries per second (a token
 * bucket), queries waiting at once, and certificates in flight overall.
 */
#ifndef TODOD_OCSPWAIT_H
#define TODOD_OCSPWAIT_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ocspcache.h"

#define OCSPWAIT_WORKERS	65	/* worker ids 1..64 */
#define OCSPWAIT_MAX		256	/* certificates in flight */
#define OCSPWAIT_PER_WORKER	64	/* a worker's queries waiting */
#define OCSPWAIT_RATE		20	/* a worker's queries per second */
#define OCSPWAIT_BURST		40

struct ocspwait_waiter {
	TAILQ_ENTRY(ocspwait_waiter)	 entry;
	uint32_t			 worker;
	uint32_t			 qid;
};

struct ocspwait_entry {
	RB_ENTRY(ocspwait_entry)		 tree;
	uint8_t					 key[OCSPCACHE_KEYLEN];
	TAILQ_HEAD(, ocspwait_waiter)		 waiters;
	void					*arg;	/* the caller's */
};

RB_HEAD(ocspwait_tree, ocspwait_entry);
int	ocspwait_cmp(struct ocspwait_entry *, struct ocspwait_entry *);
RB_PROTOTYPE(ocspwait_tree, ocspwait_entry, tree, ocspwait_cmp);

struct ocspwait_bucket {
	uint32_t	 waiting;
	uint32_t	 tokens;
	time_t		 refilled;
};

struct ocspwait {
	struct ocspwait_tree	 tree;
	size_t			 n;
	struct ocspwait_bucket	 w[OCSPWAIT_WORKERS];
};

typedef void	ocspwait_cb(void *, uint32_t, uint32_t);

void	ocspwait_init(struct ocspwait *);
int	ocspwait_allow(struct ocspwait *, uint32_t, time_t);
int	ocspwait_add(struct ocspwait *, const uint8_t *, uint32_t, uint32_t,
	    struct ocspwait_entry **);
struct ocspwait_entry *ocspwait_find(struct ocspwait *, const uint8_t *);
void	ocspwait_done(struct ocspwait *, struct ocspwait_entry *,
	    ocspwait_cb *, void *);
void	ocspwait_drop_worker(struct ocspwait *, uint32_t);
void	ocspwait_clear(struct ocspwait *, void (*)(void *));

#endif
