#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cache.h"
#include "json.h"

int
cache_cmp(const struct cache_item *a, const struct cache_item *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

RB_GENERATE(cache_tree, cache_item, entry, cache_cmp);

void
cache_init(struct cache *c)
{
	memset(c, 0, sizeof(*c));
	RB_INIT(&c->tree);
}

void
cache_clear(struct cache *c)
{
	struct cache_item	*it, *next;

	RB_FOREACH_SAFE(it, cache_tree, &c->tree, next) {
		RB_REMOVE(cache_tree, &c->tree, it);
		free(it);
	}
	c->count = c->bytes = 0;
	c->ready = 0;
}

/* Insert or replace item id. */
int
cache_put(struct cache *c, int64_t id, const char *task, size_t tasklen,
    int done)
{
	struct cache_item	*it, *old;
	struct buf		 b;

	buf_init(&b, 0);
	if (json_add_todo(&b, id, task, tasklen, done) == -1 ||
	    (it = malloc(sizeof(*it) + b.len + 1)) == NULL) {
		buf_free(&b);
		return -1;
	}
	it->id = id;
	it->len = b.len;
	memcpy(it->json, b.data, b.len + 1);
	buf_free(&b);
	if ((old = RB_INSERT(cache_tree, &c->tree, it)) != NULL) {
		RB_REMOVE(cache_tree, &c->tree, old);
		c->bytes -= old->len;
		c->count--;
		free(old);
		RB_INSERT(cache_tree, &c->tree, it);
	}
	c->bytes += it->len;
	c->count++;
	return 0;
}

void
cache_del(struct cache *c, int64_t id)
{
	struct cache_item	*it;

	if ((it = cache_get(c, id)) == NULL)
		return;
	RB_REMOVE(cache_tree, &c->tree, it);
	c->bytes -= it->len;
	c->count--;
	free(it);
}

struct cache_item *
cache_get(struct cache *c, int64_t id)
{
	struct cache_item	 key;

	key.id = id;
	return RB_FIND(cache_tree, &c->tree, &key);
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
