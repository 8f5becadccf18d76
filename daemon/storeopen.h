/*
 * Choosing the store's back end from the `database' setting: a libpq URI
 * selects PostgreSQL, anything else is a SQLite path.  Kept apart from
 * backend.c, which the back ends themselves use, so that the interface
 * does not depend on its implementations.
 */
#ifndef TODOD_STOREOPEN_H
#define TODOD_STOREOPEN_H

#include <stddef.h>

#include "backend.h"

struct event_base;

int	store_backend_is_uri(const char *);
int	store_backend_open(struct store_backend *, const char *,
	    struct event_base *, char *, size_t);

#endif
