/*
 * Unit tests for daemon/cache.c: the worker's item cache within its byte
 * budget.  Least recently used items go first, a hit counts as a use, the
 * cost charged stays within the limit whatever is put, and a cache that
 * dropped anything no longer claims to hold every item.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "tap.h"

static int
put(struct cache *c, int64_t id)
{
	char	 task[32];

	snprintf(task, sizeof(task), "task %lld", (long long)id);
	return cache_put(c, id, task, strlen(task), (int)(id & 1));
}

/* count, bytes and cost agree with the items actually held */
static int
consistent(struct cache *c)
{
	struct cache_item	*it;
	size_t			 n = 0, bytes = 0, cost = 0;

	for (it = cache_first(c); it != NULL; it = cache_after(c, it->id)) {
		n++;
		bytes += it->len;
		cost += cache_item_cost(it->len);
	}
	return n == c->count && bytes == c->bytes && cost == c->cost &&
	    c->cost <= c->limit;
}

static void
test_unbounded(void)
{
	struct cache		 c;
	struct cache_item	*it;
	int			 i, ok = 1;

	cache_init(&c);
	for (i = 1; i <= 1000; i++)
		ok &= put(&c, i) == 0;
	TAP_OK(ok && c.count == 1000 && c.complete && consistent(&c),
	    "an unbounded cache keeps every item and stays complete");
	it = cache_get(&c, 7);
	TAP_OK(it != NULL && strcmp(it->json,
	    "{\"id\":7,\"task\":\"task 7\",\"done\":true}") == 0,
	    "an item's JSON is rendered once, on put");
	put(&c, 7);
	cache_del(&c, 8);
	TAP_OK(c.count == 999 && cache_get(&c, 8) == NULL && consistent(&c),
	    "replace and delete keep the accounting");
	cache_clear(&c);
	TAP_OK(c.count == 0 && c.cost == 0 && c.bytes == 0 && c.complete,
	    "clear empties it");
}

static void
test_lru(void)
{
	struct cache	 c;
	size_t		 one;
	int		 i;

	cache_init(&c);
	put(&c, 1);
	one = c.cost;
	cache_clear(&c);
	cache_set_limit(&c, 3 * one);
	put(&c, 1);
	put(&c, 2);
	put(&c, 3);
	TAP_OK(c.count == 3 && c.complete, "three items fit a budget of three");
	cache_get(&c, 1);		/* 2 is now the least recently used */
	put(&c, 4);
	TAP_OK(c.count == 3 && !c.complete && cache_get(&c, 2) == NULL &&
	    cache_get(&c, 1) != NULL && cache_get(&c, 3) != NULL &&
	    cache_get(&c, 4) != NULL && c.evicted == 1,
	    "a hit protects an item; the least recently used goes; "
	    "the cache is no longer complete");
	for (i = 5; i < 100; i++)
		put(&c, i);
	TAP_OK(c.count == 3 && consistent(&c) && cache_get(&c, 99) != NULL,
	    "many puts: the cost stays within the limit");
	cache_set_limit(&c, one);
	TAP_OK(c.count == 1 && cache_get(&c, 99) != NULL && consistent(&c),
	    "a smaller limit drops down to it, most recent kept");
	cache_set_limit(&c, 0);
	TAP_OK(c.count == 0 && c.cost == 0, "limit 0: nothing is kept");
	TAP_OK(put(&c, 5) == 0 && c.count == 0 && !c.complete,
	    "an item larger than the budget is not kept");
	cache_clear(&c);
	TAP_OK(c.complete && c.evicted > 0,
	    "clear makes it complete again, for a new snapshot");
}

static void
test_big_tasks(void)
{
	struct cache	 c;
	char		*task;
	size_t		 limit = 64 * 1024;
	int		 i, ok = 1;

	if ((task = malloc(4096)) == NULL)
		exit(1);
	memset(task, 'x', 4096);
	cache_init(&c);
	cache_set_limit(&c, limit);
	for (i = 1; i <= 500; i++)
		ok &= cache_put(&c, i, task, (size_t)(i * 37) % 4096,
		    0) == 0 && c.cost <= limit;
	TAP_OK(ok && consistent(&c) && c.count > 10 && !c.complete,
	    "tasks of every size up to 4096: within 64 KiB at every step "
	    "(%zu items held)", c.count);
	free(task);
	cache_clear(&c);
}

/* A hit is a tree lookup and two list splices: as fast as before. */
static void
test_hit_speed(void)
{
	struct cache	 c;
	struct timespec	 t0, t1;
	double		 ns;
	int		 i, hits = 0;

	cache_init(&c);
	for (i = 1; i <= 100000; i++)
		put(&c, i);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 1000000; i++)
		hits += cache_get(&c, 1 + (int64_t)i * 7919 % 100000) !=
		    NULL;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
	    1e6;
	TAP_OK(hits == 1000000 && ns < 20000,
	    "a million hits in 100,000 items: %.0f ns each", ns);
	cache_clear(&c);
}

int
main(void)
{
	test_unbounded();
	test_lru();
	test_big_tasks();
	test_hit_speed();
	return tap_done();
}
