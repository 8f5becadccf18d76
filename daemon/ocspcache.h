/*
 * The parent's cache of verified OCSP answers for client certificates,
 * keyed by a digest of the OCSP cert id (issuer name and key hashes and
 * serial).  An answer is kept until its nextUpdate, never longer; the
 * cache is bounded both in entries and in bytes, and evicts the least
 * recently used answer to make room.  The DER response is kept with its
 * verdict so that a reload that changes the CA can verify it again
 * rather than trust it.
 */
#ifndef TODOD_OCSPCACHE_H
#define TODOD_OCSPCACHE_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define OCSPCACHE_KEYLEN	32	/* SHA-256 of the cert id DER */
#define OCSPCACHE_ENTRIES	4096	/* defaults */
#define OCSPCACHE_BYTES		(8U * 1024 * 1024)

struct ocspcache_entry {
	RB_ENTRY(ocspcache_entry)	 tree;
	TAILQ_ENTRY(ocspcache_entry)	 lru;	/* most recent first */
	uint8_t				 key[OCSPCACHE_KEYLEN];
	uint32_t			 status;	/* enum ocspmsg_status */
	time_t				 until;		/* nextUpdate */
	uint8_t				*der;		/* the response */
	size_t				 derlen;
};

RB_HEAD(ocspcache_tree, ocspcache_entry);
int	ocspcache_cmp(struct ocspcache_entry *, struct ocspcache_entry *);
RB_PROTOTYPE(ocspcache_tree, ocspcache_entry, tree, ocspcache_cmp);

struct ocspcache {
	struct ocspcache_tree			 tree;
	TAILQ_HEAD(ocspcache_lru, ocspcache_entry)	 lru;
	size_t					 n;
	size_t					 bytes;
	size_t					 maxn;
	size_t					 maxbytes;
};

void	ocspcache_init(struct ocspcache *, size_t, size_t);
void	ocspcache_clear(struct ocspcache *);
int	ocspcache_put(struct ocspcache *, const uint8_t *, uint32_t, time_t,
	    const void *, size_t, time_t);
const struct ocspcache_entry *ocspcache_get(struct ocspcache *,
	    const uint8_t *, time_t);
void	ocspcache_expire(struct ocspcache *, time_t);
size_t	ocspcache_entry_size(size_t);

#endif
