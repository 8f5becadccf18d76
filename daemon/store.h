/*
 * The TODO store: one SQLite file owned by the parent.  Writes are grouped:
 * the parent opens a transaction, applies every request that arrived in one
 * turn of its event loop, and commits once (WAL, synchronous=FULL: the
 * commit returns after the log is on disk), and only then answers.
 * The file is locked (DATABASE.lock: one todod per database), checked for
 * damage when opened, and checked to be still in place around every commit.
 */
#ifndef TODOD_STORE_H
#define TODOD_STORE_H

#include <stddef.h>
#include <stdint.h>

struct store;

struct store_item {
	int64_t		 id;
	const char	*task;		/* valid until the next store call */
	size_t		 tasklen;
	int		 done;
};

typedef int	(*store_iter_fn)(void *, const struct store_item *);

/* The most ids one read by id may ask for. */
#define STORE_READ_IDS_MAX	256

struct store	*store_open(const char *, char *, size_t);
void		 store_close(struct store *);
int		 store_begin(struct store *);
int		 store_commit(struct store *);
void		 store_rollback(struct store *);
int		 store_create(struct store *, const char *, const char *,
		    size_t, int, struct store_item *);
int		 store_update(struct store *, int64_t, const char *,
		    uint32_t, const char *, size_t, int, struct store_item *);
int		 store_delete(struct store *, int64_t, const char *,
		    struct store_item *);
int		 store_foreach(struct store *, store_iter_fn, void *);
int		 store_read_ids(struct store *, const int64_t *, int,
		    store_iter_fn, void *);
int		 store_read_page(struct store *, int64_t, int, store_iter_fn,
		    void *);
int64_t		 store_count(struct store *);
const char	*store_error(struct store *);
int		 store_unavailable(struct store *);

#endif
