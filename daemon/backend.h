/*
 * The store back ends as the parent's pstore drives them.  A group of
 * writes is submitted at once and completed through one callback: SQLite
 * (store.c) completes it before submit returns, PostgreSQL (pgstore.c)
 * later, from the event loop.  A database named by a libpq URI
 * ("postgresql://" or "postgres://") is PostgreSQL, anything else a SQLite
 * file.
 */
#ifndef TODOD_BACKEND_H
#define TODOD_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "store.h"

struct event_base;

/* One write of a group, and what it left. */
struct store_write {
	uint32_t	 type;		/* IMSG_STORE_CREATE, _UPDATE, _DELETE */
	const char	*cn;
	int64_t		 id;
	uint32_t	 mask;		/* STORE_SET_* */
	const char	*task;		/* NULL: unchanged */
	int		 done;
	/* filled when the group committed */
	uint32_t	 status;	/* STORE_OK or STORE_NOTFOUND */
	int64_t		 rid;
	char		*rtask;		/* the caller frees it */
	int		 rdone;
};

enum store_group {
	STORE_GROUP_OK,
	STORE_GROUP_FAILED,		/* nothing of it committed */
	STORE_GROUP_UNAVAILABLE		/* the database is unreachable: 503 */
};

typedef void	(*store_done_fn)(void *, enum store_group);
typedef void	(*store_synced_fn)(void *, int);	/* 1: caught up */
typedef void	(*store_snapped_fn)(void *, int);	/* 1: complete */

/*
 * What a store shared by several nodes (PostgreSQL) tells the parent: the
 * other nodes' changes (an item as it is now, or gone), the count of
 * items after a batch of them, and the session ticket secrets the nodes
 * share (keyrev: their number, key: the secret each node derives its
 * ticket keys from) when they change.
 */
struct store_shared_hooks {
	void	(*change)(void *, const struct store_item *, int);
	void	(*changed)(void *, int64_t);
	void	(*tickets)(void *, const struct proto_ticket_key *, int);
};

/*
 * A read past the workers' caches: the items among ids (nids > 0), or at
 * most limit items after the id after, in id order.  Each row goes to
 * the iterator (which may stop it by returning non-zero), then the end to
 * the callback: 0, or -1 when the store could not answer (the rows given
 * are then not the whole answer).  One read at a time per back end.
 */
struct store_read {
	const int64_t	*ids;
	int		 nids;		/* at most STORE_READ_IDS_MAX */
	int64_t		 after;
	int		 limit;
};

typedef void	(*store_read_fn)(void *, int);

struct store_backend_ops {
	void		(*submit)(void *, struct store_write **, int,
			    store_done_fn, void *);
	/* every item, at once: for a store without snapshot (below) */
	int		(*foreach)(void *, store_iter_fn, void *);
	int64_t		(*count)(void *);
	int		(*unavailable)(void *);
	const char	*(*error)(void *);
	void		(*close)(void *);
	/* NULL for a store of this node's only (SQLite) */
	void		(*share)(void *, const struct store_shared_hooks *,
			    void *, int);
	void		(*sync)(void *, store_synced_fn, void *);
	/* every item, from the event loop; NULL: foreach, at once */
	void		(*snapshot)(void *, store_iter_fn, store_snapped_fn,
			    void *);
	void		(*read)(void *, const struct store_read *,
			    store_iter_fn, store_read_fn, void *);
};

struct store_backend {
	const struct store_backend_ops	*ops;
	void				*be;
};

int	store_write_result(struct store_write *, int, const struct store_item *);

extern const struct store_backend_ops	store_sqlite_ops;

#endif
