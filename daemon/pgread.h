/*
 * PostgreSQL reads past the workers' caches (misses by id, pages of the
 * list), on a connection of their own: they never wait behind a group of
 * writes in flight, nor break one.  Non-blocking, its socket in the
 * parent's event loop, one query at a time.
 */
#ifndef TODOD_PGREAD_H
#define TODOD_PGREAD_H

#include "backend.h"

struct event_base;
struct pgread;

struct pgread	*pgread_open(const char *, struct event_base *);
void		 pgread_close(struct pgread *);
void		 pgread_read(struct pgread *, const struct store_read *,
		    store_iter_fn, store_read_fn, void *);

#endif
