/*
 * The worker's read cache of the TODO list: items with their JSON already
 * rendered, in id order, within a byte budget (`cache size`).  The parent
 * feeds it (a snapshot of what fits when the worker starts, then every
 * committed change); the worker answers GETs from it once its sequence has
 * caught up with the store's.  When the store holds more than fits, the
 * least recently used items are dropped and the cache is no longer
 * complete: a miss then asks the parent, and GET /todo reads the store.
 */
#ifndef TODOD_CACHE_H
#define TODOD_CACHE_H

#include <sys/queue.h>
#include <sys/tree.h>

#include <stddef.h>
#include <stdint.h>

struct cache_item {
	RB_ENTRY(cache_item)	 entry;
	TAILQ_ENTRY(cache_item)	 lru;
	int64_t			 id;
	size_t			 len;
	char			 json[];	/* {"id":..,"task":..,"done":..} */
};
RB_HEAD(cache_tree, cache_item);
TAILQ_HEAD(cache_lru, cache_item);
int	cache_cmp(const struct cache_item *, const struct cache_item *);
RB_PROTOTYPE(cache_tree, cache_item, entry, cache_cmp);

struct cache {
	struct cache_tree	 tree;
	struct cache_lru	 lru;		/* most recently used first */
	uint64_t		 seq;		/* last change applied */
	size_t			 count;
	size_t			 bytes;		/* sum of json lengths */
	size_t			 cost;		/* memory the items take */
	size_t			 limit;		/* bound on cost */
	uint64_t		 evicted;	/* items dropped, ever */
	int			 ready;		/* snapshot complete */
	int			 complete;	/* every item of the store */
};

void			 cache_init(struct cache *);
void			 cache_clear(struct cache *);
void			 cache_set_limit(struct cache *, size_t);
size_t			 cache_item_cost(size_t);
int			 cache_put(struct cache *, int64_t, const char *,
			    size_t, int);
void			 cache_del(struct cache *, int64_t);
struct cache_item	*cache_get(struct cache *, int64_t);
struct cache_item	*cache_first(struct cache *);
struct cache_item	*cache_after(struct cache *, int64_t);
size_t			 cache_list_size(const struct cache *, size_t);

#endif
