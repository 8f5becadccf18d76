/*
 * The PostgreSQL store: libpq driven from the parent's event loop, one
 * connection, one group of writes in flight in one transaction (pipeline
 * mode), reconnection with back-off when the database goes away.
 */
#ifndef TODOD_PGSTORE_H
#define TODOD_PGSTORE_H

#include <stddef.h>

#include "backend.h"

struct event_base;
struct pgstore;

extern const struct store_backend_ops	store_pg_ops;

struct pgstore	*pgstore_open(const char *, struct event_base *, char *,
		    size_t);
int		 pgstore_check_uri(const char *, char *, size_t);

#endif
