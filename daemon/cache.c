#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cache.h"
#include "json.h"

/*
 * What an item costs: the allocation rounded as malloc rounds it, and
 * malloc's own word.  Close enough that the budget bounds the memory the
 * process really holds for the cache (measured in regress/integ).
 */
#define CACHE_MALLOC_ALIGN	16
#define CACHE_MALLOC_HEAD	16

int
cache_cmp(const struct cache_item *a, const struct cache_item *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_GENERATE(cache_tree, cache_item, entry, cache_cmp);

/*
 * An empty cache, complete since the store has not said otherwise, and
 * unbounded until the configuration gives it its size.
 */
void
cache_init(struct cache *c)
{
	memset(c, 0, sizeof(*c));
	RB_INIT(&c->tree);
	TAILQ_INIT(&c->lru);
	c->limit = SIZE_MAX;
	c->complete = 1;
}

size_t
cache_item_cost(size_t jsonlen)
{
	size_t	 n = sizeof(struct cache_item) + jsonlen + 1;

	n = (n + CACHE_MALLOC_ALIGN - 1) & ~(size_t)(CACHE_MALLOC_ALIGN - 1);
	return n + CACHE_MALLOC_HEAD;
}

static void
cache_unlink(struct cache *c, struct cache_item *it)
{
	RB_REMOVE(cache_tree, &c->tree, it);
	TAILQ_REMOVE(&c->lru, it, lru);
	c->bytes -= it->len;
	c->cost -= cache_item_cost(it->len);
	c->count--;
	free(it);
}

/* Starts again, complete, for a new snapshot. */
void
cache_clear(struct cache *c)
{
	struct cache_item	*it;

	while ((it = TAILQ_FIRST(&c->lru)) != NULL)
		cache_unlink(c, it);
	c->ready = 0;
	c->complete = 1;
}

/* The least recently used go until the rest fits: we no longer hold all. */
static void
cache_shrink(struct cache *c)
{
	struct cache_item	*it;

	while (c->cost > c->limit &&
	    (it = TAILQ_LAST(&c->lru, cache_lru)) != NULL) {
		cache_unlink(c, it);
		c->complete = 0;
		c->evicted++;
	}
}

void
cache_set_limit(struct cache *c, size_t limit)
{
	c->limit = limit;
	cache_shrink(c);
}

/*
 * Insert or replace item id, as the most recently used.  An item larger
 * than the whole budget is not kept (nor its old version).
 */
int
cache_put(struct cache *c, int64_t id, const char *task, size_t tasklen,
    int done)
{
	struct cache_item	*it, *old;
	struct buf		 b;

	if ((old = cache_get(c, id)) != NULL)
		cache_unlink(c, old);
	buf_init(&b, 0);
	if (json_add_todo(&b, id, task, tasklen, done) == -1) {
		buf_free(&b);
		return -1;
	}
	if (cache_item_cost(b.len) > c->limit) {
		buf_free(&b);
		c->complete = 0;
		c->evicted++;
		return 0;
	}
	if ((it = malloc(sizeof(*it) + b.len + 1)) == NULL) {
		buf_free(&b);
		return -1;
	}
	it->id = id;
	it->len = b.len;
	memcpy(it->json, b.data, b.len + 1);
	buf_free(&b);
	RB_INSERT(cache_tree, &c->tree, it);
	TAILQ_INSERT_HEAD(&c->lru, it, lru);
	c->bytes += it->len;
	c->cost += cache_item_cost(it->len);
	c->count++;
	cache_shrink(c);
	return 0;
}

void
cache_del(struct cache *c, int64_t id)
{
	struct cache_item	 key, *it;

	key.id = id;
	if ((it = RB_FIND(cache_tree, &c->tree, &key)) != NULL)
		cache_unlink(c, it);
}

/* A hit makes the item the most recently used: two list splices. */
struct cache_item *
cache_get(struct cache *c, int64_t id)
{
	struct cache_item	 key, *it;

	key.id = id;
	if ((it = RB_FIND(cache_tree, &c->tree, &key)) != NULL &&
	    it != TAILQ_FIRST(&c->lru)) {
		TAILQ_REMOVE(&c->lru, it, lru);
		TAILQ_INSERT_HEAD(&c->lru, it, lru);
	}
	return it;
}

struct cache_item *
cache_first(struct cache *c)
{
	return RB_MIN(cache_tree, &c->tree);
}

/* The first item whose id is greater than id: a cursor that survives
 * insertions and deletions between calls. */
struct cache_item *
cache_after(struct cache *c, int64_t id)
{
	struct cache_item	 key;

	if (id == INT64_MAX)
		return NULL;
	key.id = id + 1;
	return RB_NFIND(cache_tree, &c->tree, &key);
}

/* Bytes of `"todos":[...]` contents: items plus the commas between them. */
size_t
cache_list_size(const struct cache *c, size_t extra)
{
	return c->bytes + (c->count > 0 ? c->count - 1 : 0) + extra;
}
