#include <sys/types.h>

#include <string.h>

#include "backend.h"
#include "pgstore.h"
#include "store.h"
#include "storeopen.h"

int
store_backend_is_uri(const char *database)
{
	return strncmp(database, "postgresql://", 13) == 0 ||
	    strncmp(database, "postgres://", 11) == 0;
}

int
store_backend_open(struct store_backend *b, const char *database,
    struct event_base *base, char *err, size_t errlen)
{
	if (store_backend_is_uri(database)) {
		b->ops = &store_pg_ops;
		b->be = pgstore_open(database, base, err, errlen);
	} else {
		b->ops = &store_sqlite_ops;
		b->be = store_open(database, err, errlen);
	}
	return b->be == NULL ? -1 : 0;
}
