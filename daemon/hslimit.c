#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <stdlib.h>
#include <string.h>

#include "hslimit.h"

int
hssource_cmp(struct hssource *a, struct hssource *b)
{
	return memcmp(a->key, b->key, sizeof(a->key));
}

RB_GENERATE(hssources, hssource, entry, hssource_cmp);

void
hslimit_init(struct hslimit *hl)
{
	memset(hl, 0, sizeof(*hl));
	TAILQ_INIT(&hl->all);
	RB_INIT(&hl->sources);
}

/*
 * The source of a connection: an IPv4 address (also when mapped into
 * IPv6), or the /64 of an IPv6 one.
 */
static void
hslimit_key(const struct sockaddr_storage *ss, uint8_t key[9])
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;

	memset(key, 0, 9);
	if (ss->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		key[0] = 4;
		memcpy(key + 1, &sin6->sin6_addr.s6_addr[12], 4);
	} else if (ss->ss_family == AF_INET6) {
		key[0] = 6;
		memcpy(key + 1, sin6->sin6_addr.s6_addr, 8);
	} else if (ss->ss_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &sin->sin_addr, 4);
	}
}

static struct hssource *
hslimit_find(struct hslimit *hl, const struct sockaddr_storage *ss)
{
	struct hssource	 k;

	hslimit_key(ss, k.key);
	return RB_FIND(hssources, &hl->sources, &k);
}

/*
 * Which unfinished connection must go before one more from ss may be
 * counted: the oldest of its source when that source has persource, else
 * (the budget is full) the oldest of the source that has most.  NULL:
 * there is room.
 */
struct hsentry *
hslimit_victim(struct hslimit *hl, const struct sockaddr_storage *ss,
    int budget, int persource)
{
	struct hssource	*src;

	if ((src = hslimit_find(hl, ss)) != NULL && src->n >= persource)
		return TAILQ_FIRST(&src->entries);
	if (hl->n >= budget)
		return hslimit_oldest(hl);
	return NULL;
}

/*
 * The oldest unfinished connection of the source that has most of them:
 * a flood from many addresses churns its own connections, and a client
 * with one handshake in flight is the last to go.
 */
struct hsentry *
hslimit_oldest(struct hslimit *hl)
{
	struct hssource	*src, *most = NULL;

	RB_FOREACH(src, hssources, &hl->sources)
		if (most == NULL || src->n > most->n)
			most = src;
	if (most == NULL)
		return NULL;
	if (most->n == 1)	/* one each: plain age */
		return TAILQ_FIRST(&hl->all);
	return TAILQ_FIRST(&most->entries);
}

/* Count e (owned by owner) as unfinished; -1: out of memory. */
int
hslimit_add(struct hslimit *hl, struct hsentry *e,
    const struct sockaddr_storage *ss, void *owner)
{
	struct hssource	*src;

	if ((src = hslimit_find(hl, ss)) == NULL) {
		if ((src = calloc(1, sizeof(*src))) == NULL)
			return -1;
		hslimit_key(ss, src->key);
		TAILQ_INIT(&src->entries);
		RB_INSERT(hssources, &hl->sources, src);
	}
	e->src = src;
	e->owner = owner;
	src->n++;
	hl->n++;
	TAILQ_INSERT_TAIL(&src->entries, e, same);
	TAILQ_INSERT_TAIL(&hl->all, e, all);
	return 0;
}

/*
 * The handshake of e made progress: it goes to the back of the queues, so
 * that eviction takes connections that stall (a flood's) before those
 * that are getting somewhere (a good client on a slow path).
 */
void
hslimit_touch(struct hslimit *hl, struct hsentry *e)
{
	if (e->src == NULL)
		return;
	TAILQ_REMOVE(&e->src->entries, e, same);
	TAILQ_INSERT_TAIL(&e->src->entries, e, same);
	TAILQ_REMOVE(&hl->all, e, all);
	TAILQ_INSERT_TAIL(&hl->all, e, all);
}

/* The handshake finished, or the connection is gone; no-op if uncounted. */
void
hslimit_remove(struct hslimit *hl, struct hsentry *e)
{
	struct hssource	*src = e->src;

	if (src == NULL)
		return;
	TAILQ_REMOVE(&src->entries, e, same);
	TAILQ_REMOVE(&hl->all, e, all);
	hl->n--;
	if (--src->n == 0) {
		RB_REMOVE(hssources, &hl->sources, src);
		free(src);
	}
	e->src = NULL;
}

int
hslimit_source_count(struct hslimit *hl, const struct sockaddr_storage *ss)
{
	struct hssource	*src;

	return (src = hslimit_find(hl, ss)) != NULL ? src->n : 0;
}
