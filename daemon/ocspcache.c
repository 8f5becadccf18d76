#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ocspcache.h"

int
ocspcache_cmp(struct ocspcache_entry *a, struct ocspcache_entry *b)
{
	return memcmp(a->key, b->key, sizeof(a->key));
}

RB_GENERATE(ocspcache_tree, ocspcache_entry, tree, ocspcache_cmp);

/* What an entry costs against the byte bound: its response and itself. */
size_t
ocspcache_entry_size(size_t derlen)
{
	return sizeof(struct ocspcache_entry) + derlen;
}

void
ocspcache_init(struct ocspcache *c, size_t maxn, size_t maxbytes)
{
	memset(c, 0, sizeof(*c));
	RB_INIT(&c->tree);
	TAILQ_INIT(&c->lru);
	c->maxn = maxn;
	c->maxbytes = maxbytes;
}

static void
ocspcache_remove(struct ocspcache *c, struct ocspcache_entry *e)
{
	RB_REMOVE(ocspcache_tree, &c->tree, e);
	TAILQ_REMOVE(&c->lru, e, lru);
	c->n--;
	c->bytes -= ocspcache_entry_size(e->derlen);
	free(e->der);
	free(e);
}

void
ocspcache_clear(struct ocspcache *c)
{
	struct ocspcache_entry	*e;

	while ((e = TAILQ_FIRST(&c->lru)) != NULL)
		ocspcache_remove(c, e);
}

/* Drop every answer whose nextUpdate has come. */
void
ocspcache_expire(struct ocspcache *c, time_t now)
{
	struct ocspcache_entry	*e, *next;

	for (e = TAILQ_FIRST(&c->lru); e != NULL; e = next) {
		next = TAILQ_NEXT(e, lru);
		if (e->until <= now)
			ocspcache_remove(c, e);
	}
}

/* Make room for one more entry of size bytes: expired first, then LRU. */
static void
ocspcache_room(struct ocspcache *c, size_t size, time_t now)
{
	ocspcache_expire(c, now);
	while (c->n > 0 && (c->n + 1 > c->maxn ||
	    c->bytes + size > c->maxbytes))
		ocspcache_remove(c, TAILQ_LAST(&c->lru, ocspcache_lru));
}

/*
 * Keep an answer until `until', replacing any older one for the key.
 * Returns 0, or -1 and errno: EINVAL for an answer already stale,
 * EMSGSIZE for one bigger than the whole cache, ENOMEM.
 */
int
ocspcache_put(struct ocspcache *c, const uint8_t *key, uint32_t status,
    time_t until, const void *der, size_t derlen, time_t now)
{
	struct ocspcache_entry	*e, find;
	size_t			 size = ocspcache_entry_size(derlen);

	if (until <= now) {
		errno = EINVAL;
		return -1;
	}
	if (c->maxn == 0 || size > c->maxbytes) {
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(find.key, key, sizeof(find.key));
	if ((e = RB_FIND(ocspcache_tree, &c->tree, &find)) != NULL)
		ocspcache_remove(c, e);
	ocspcache_room(c, size, now);
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (derlen > 0 && (e->der = malloc(derlen)) == NULL)) {
		free(e);
		return -1;
	}
	memcpy(e->key, key, sizeof(e->key));
	if (derlen > 0)
		memcpy(e->der, der, derlen);
	e->derlen = derlen;
	e->status = status;
	e->until = until;
	RB_INSERT(ocspcache_tree, &c->tree, e);
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	c->n++;
	c->bytes += size;
	return 0;
}

/* A live answer for key, or NULL; a stale one is dropped on the way. */
const struct ocspcache_entry *
ocspcache_get(struct ocspcache *c, const uint8_t *key, time_t now)
{
	struct ocspcache_entry	*e, find;

	memcpy(find.key, key, sizeof(find.key));
	if ((e = RB_FIND(ocspcache_tree, &c->tree, &find)) == NULL)
		return NULL;
	if (e->until <= now) {
		ocspcache_remove(c, e);
		return NULL;
	}
	TAILQ_REMOVE(&c->lru, e, lru);
	TAILQ_INSERT_HEAD(&c->lru, e, lru);
	return e;
}
