/*
 * The worker's read cache of the TODO list: every item with its JSON
 * already rendered, in id order.  The parent feeds it (a snapshot when the
 * worker starts, then every committed change); the worker answers GETs
 * from it once its sequence has caught up with the store's.
 */
#ifndef TODOD_CACHE_H
#define TODOD_CACHE_H

#include <sys/tree.h>

#include <stddef.h>
#include <stdint.h>

struct cache_item {
	RB_ENTRY(cache_item)	 entry;
	int64_t			 id;
	size_t			 len;
	char			 json[];	/* {"id":..,"task":..,"done":..} */
};
RB_HEAD(cache_tree, cache_item);
int	cache_cmp(const struct cache_item *, const struct cache_item *);
RB_PROTOTYPE(cache_tree, cache_item, entry, cache_cmp);

struct cache {
	struct cache_tree	 tree;
	uint64_t		 seq;		/* last change applied */
	size_t			 count;
	size_t			 bytes;		/* sum of json lengths */
	int			 ready;		/* snapshot complete */
};

void			 cache_init(struct cache *);
void			 cache_clear(struct cache *);
int			 cache_put(struct cache *, int64_t, const char *,
			    size_t, int);
void			 cache_del(struct cache *, int64_t);
struct cache_item	*cache_get(struct cache *, int64_t);
struct cache_item	*cache_first(struct cache *);
struct cache_item	*cache_after(struct cache *, int64_t);
size_t			 cache_list_size(const struct cache *, size_t);

#endif
