/*
 * Connections that have not finished their TLS handshake, so that they
 * can never hold all of a worker's capacity: a budget for all of them and
 * a cap per source address.  When its source's cap is full, a source's
 * oldest unfinished connection makes room for its new one; when the
 * budget is full, the oldest of the source that has most.  A handshake
 * that makes progress goes to the back.  An attacker without a
 * certificate can slow handshakes down, never stop them.
 */
#ifndef TODOD_HSLIMIT_H
#define TODOD_HSLIMIT_H

#include <sys/queue.h>
#include <sys/tree.h>
#include <sys/socket.h>

#include <stdint.h>

struct hssource;

struct hsentry {
	TAILQ_ENTRY(hsentry)	 all;	/* every source, oldest first */
	TAILQ_ENTRY(hsentry)	 same;	/* this source, oldest first */
	struct hssource		*src;	/* NULL: not counted */
	void			*owner;
};
TAILQ_HEAD(hsentries, hsentry);

/* IPv4 address, or IPv6 /64 (one host usually has a whole /64). */
struct hssource {
	RB_ENTRY(hssource)	 entry;
	uint8_t			 key[9];	/* family tag, address */
	int			 n;
	struct hsentries	 entries;
};
RB_HEAD(hssources, hssource);
int	hssource_cmp(struct hssource *, struct hssource *);
RB_PROTOTYPE(hssources, hssource, entry, hssource_cmp);

struct hslimit {
	struct hsentries	 all;
	struct hssources	 sources;
	int			 n;
};

/* The budget and the per-source cap for a worker's max connections. */
#define HSLIMIT_BUDGET(max)	((max) / 2 > 0 ? (max) / 2 : 1)
#define HSLIMIT_PERSOURCE(max)	\
	(HSLIMIT_BUDGET(max) / 4 > 0 ? HSLIMIT_BUDGET(max) / 4 : 1)

void		 hslimit_init(struct hslimit *);
struct hsentry	*hslimit_victim(struct hslimit *,
		    const struct sockaddr_storage *, int, int);
struct hsentry	*hslimit_oldest(struct hslimit *);
int		 hslimit_add(struct hslimit *, struct hsentry *,
		    const struct sockaddr_storage *, void *);
void		 hslimit_touch(struct hslimit *, struct hsentry *);
void		 hslimit_remove(struct hslimit *, struct hsentry *);
int		 hslimit_source_count(struct hslimit *,
		    const struct sockaddr_storage *);

#endif
