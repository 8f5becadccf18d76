/*
 * Unit tests for daemon/ocspcache.c: answers kept until their nextUpdate
 * and not a second longer, replaced by a newer answer for the same key,
 * and the entry and byte bounds held by evicting the least recently used
 * answer (expired ones first).
 */
#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocspcache.h"
#include "ocspmsg.h"
#include "ocspkey.h"
#include "tap.h"

static void
test_expiry(void)
{
	struct ocspcache		 c;
	const struct ocspcache_entry	*e;
	static const char		 der[] = "\x30\x03\x0a\x01\x00";

	ocspcache_init(&c, 10, 1 << 20);
	TAP_OK(ocspcache_put(&c, key(1), OCSPMSG_GOOD, NOW + 60, der,
	    sizeof(der), NOW) == 0 && c.n == 1 &&
	    c.bytes == ocspcache_entry_size(sizeof(der)), "an answer is kept");
	e = ocspcache_get(&c, key(1), NOW + 59);
	TAP_OK(e != NULL && e->status == OCSPMSG_GOOD && e->until == NOW + 60 &&
	    e->derlen == sizeof(der) && memcmp(e->der, der, sizeof(der)) == 0,
	    "found before its nextUpdate, response intact");
	TAP_OK(ocspcache_get(&c, key(2), NOW) == NULL, "another key misses");
	TAP_OK(ocspcache_get(&c, key(1), NOW + 60) == NULL && c.n == 0 &&
	    c.bytes == 0, "gone at its nextUpdate, bytes returned");
	errno = 0;
	TAP_OK(ocspcache_put(&c, key(1), OCSPMSG_GOOD, NOW, der, sizeof(der),
	    NOW) == -1 && errno == EINVAL && c.n == 0,
	    "an answer already stale is refused");
	ocspcache_put(&c, key(1), OCSPMSG_GOOD, NOW + 10, NULL, 0, NOW);
	ocspcache_put(&c, key(1), OCSPMSG_REVOKED, NOW + 20, der, 3, NOW);
	e = ocspcache_get(&c, key(1), NOW + 15);
	TAP_OK(c.n == 1 && e != NULL && e->status == OCSPMSG_REVOKED &&
	    c.bytes == ocspcache_entry_size(3),
	    "a newer answer replaces the old one");
	ocspcache_put(&c, key(2), OCSPMSG_GOOD, NOW + 5, NULL, 0, NOW);
	ocspcache_put(&c, key(3), OCSPMSG_GOOD, NOW + 50, NULL, 0, NOW);
	ocspcache_expire(&c, NOW + 20);
	TAP_OK(c.n == 1 && ocspcache_get(&c, key(3), NOW + 20) != NULL,
	    "expire drops exactly the stale answers");
	ocspcache_clear(&c);
	TAP_OK(c.n == 0 && c.bytes == 0, "clear empties it");
}

static void
test_bounds(void)
{
	struct ocspcache	 c;
	static uint8_t		 der[1000];
	size_t			 one = ocspcache_entry_size(sizeof(der));
	int			 i, ok = 1;

	ocspcache_init(&c, 3, 1 << 20);
	for (i = 1; i <= 3; i++)
		ocspcache_put(&c, key(i), OCSPMSG_GOOD, NOW + 100, NULL, 0,
		    NOW);
	ocspcache_get(&c, key(1), NOW);		/* 2 is now the oldest */
	ocspcache_put(&c, key(4), OCSPMSG_GOOD, NOW + 100, NULL, 0, NOW);
	TAP_OK(c.n == 3 && ocspcache_get(&c, key(2), NOW) == NULL &&
	    ocspcache_get(&c, key(1), NOW) != NULL &&
	    ocspcache_get(&c, key(4), NOW) != NULL,
	    "entry bound: the least recently used goes");
	/* 3 is the oldest now, and goes for 5, which expires soonest */
	ocspcache_put(&c, key(5), OCSPMSG_GOOD, NOW + 1, NULL, 0, NOW);
	ocspcache_put(&c, key(6), OCSPMSG_GOOD, NOW + 100, NULL, 0, NOW + 1);
	TAP_OK(c.n == 3 && ocspcache_get(&c, key(5), NOW) == NULL &&
	    ocspcache_get(&c, key(1), NOW + 1) != NULL &&
	    ocspcache_get(&c, key(4), NOW + 1) != NULL,
	    "an expired answer goes before a live one");
	ocspcache_clear(&c);

	ocspcache_init(&c, 1000, 5 * one);
	for (i = 0; i < 20; i++) {
		if (ocspcache_put(&c, key(i), OCSPMSG_GOOD, NOW + 100, der,
		    sizeof(der), NOW) != 0 || c.bytes > 5 * one)
			ok = 0;
	}
	TAP_OK(ok && c.n == 5 && ocspcache_get(&c, key(19), NOW) != NULL &&
	    ocspcache_get(&c, key(14), NOW) == NULL,
	    "byte bound held: %zu entries, %zu bytes", c.n, c.bytes);
	errno = 0;
	TAP_OK(ocspcache_put(&c, key(99), OCSPMSG_GOOD, NOW + 100, der,
	    5 * one, NOW) == -1 && errno == EMSGSIZE && c.n == 5,
	    "an answer bigger than the cache is refused, nothing evicted");
	ocspcache_clear(&c);

	ocspcache_init(&c, 0, 1 << 20);
	TAP_OK(ocspcache_put(&c, key(1), OCSPMSG_GOOD, NOW + 100, NULL, 0,
	    NOW) == -1 && c.n == 0, "a cache of no entries keeps nothing");
}

/* Many keys, random order: the tree and the list agree throughout. */
static void
test_many(void)
{
	struct ocspcache	 c;
	int			 i, hits = 0;

	ocspcache_init(&c, 500, 1 << 20);
	for (i = 0; i < 5000; i++)
		ocspcache_put(&c, key((i * 7919) % 2000), i % OCSPMSG_NSTATUS,
		    NOW + 1 + i % 50, NULL, 0, NOW);
	for (i = 0; i < 2000; i++)
		hits += ocspcache_get(&c, key(i), NOW) != NULL;
	TAP_OK(c.n <= 500 && hits == (int)c.n, "5000 puts: %zu kept, %d found",
	    c.n, hits);
	ocspcache_expire(&c, NOW + 51);
	TAP_OK(c.n == 0 && c.bytes == 0, "all expired at the end");
	ocspcache_clear(&c);
}

int
main(void)
{
	test_expiry();
	test_bounds();
	test_many();
	return tap_done();
}
