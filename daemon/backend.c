#include <sys/types.h>

#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "proto.h"

/*
 * What a write left: r is 0 with *it the row, 1 when no row matched.  The
 * task is copied: the row is only valid until the back end's next call.
 */
int
store_write_result(struct store_write *w, int r, const struct store_item *it)
{
	if (r == 1) {
		w->status = STORE_NOTFOUND;
		return 0;
	}
	w->status = STORE_OK;
	w->rid = it->id;
	w->rdone = it->done ? 1 : 0;
	free(w->rtask);
	if ((w->rtask = strndup(it->task, it->tasklen)) == NULL)
		fatal("%s", __func__);
	return 0;
}

/* SQLite: one transaction for the group, done before submit returns. */
static int
store_sqlite_apply(struct store *s, struct store_write *w)
{
	struct store_item	 it;
	int			 r;

	switch (w->type) {
	case IMSG_STORE_CREATE:
		r = store_create(s, w->cn, w->task, strlen(w->task), w->done,
		    &it);
		break;
	case IMSG_STORE_UPDATE:
		r = store_update(s, w->id, w->cn, w->mask, w->task,
		    w->task ? strlen(w->task) : 0, w->done, &it);
		break;
	default:
		r = store_delete(s, w->id, w->cn, &it);
		break;
	}
	if (r == -1)
		return -1;
	return store_write_result(w, r, &it);
}

static void
store_sqlite_submit(void *be, struct store_write **wv, int n,
    store_done_fn done, void *arg)
{
	struct store	*s = be;
	int		 i, ok = 1;

	if (store_begin(s) == -1)
		ok = 0;
	for (i = 0; ok && i < n; i++)
		if (store_sqlite_apply(s, wv[i]) == -1)
			ok = 0;
	if (ok && store_commit(s) == -1)
		ok = 0;
	if (!ok) {
		store_rollback(s);
		done(arg, store_unavailable(s) ? STORE_GROUP_UNAVAILABLE :
		    STORE_GROUP_FAILED);
		return;
	}
	done(arg, STORE_GROUP_OK);
}

static int
store_sqlite_foreach(void *be, store_iter_fn fn, void *arg)
{
	return store_foreach(be, fn, arg);
}

static int64_t
store_sqlite_count(void *be)
{
	return store_count(be);
}

static int
store_sqlite_unavailable(void *be)
{
	return store_unavailable(be);
}

static const char *
store_sqlite_error(void *be)
{
	return store_error(be);
}

static void
store_sqlite_close(void *be)
{
	store_close(be);
}

/* SQLite answers before it returns, like a write group. */
static void
store_sqlite_read(void *be, const struct store_read *q, store_iter_fn fn,
    store_read_fn done, void *arg)
{
	int	 r;

	if (q->nids > 0)
		r = store_read_ids(be, q->ids, q->nids, fn, arg);
	else
		r = store_read_page(be, q->after, q->limit, fn, arg);
	done(arg, r == -1 ? -1 : 0);
}

const struct store_backend_ops store_sqlite_ops = {
	store_sqlite_submit, store_sqlite_foreach, store_sqlite_count,
	store_sqlite_unavailable, store_sqlite_error, store_sqlite_close,
	NULL, NULL, NULL, store_sqlite_read
};
