#include <sys/types.h>

#include <event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "parent.h"
#include "proto.h"
#include "store.h"

/*
 * Store requests from the workers, committed in groups: every request
 * read in one turn of the event loop goes into one transaction and one
 * fsync, and each gets its answer only after that commit.  Then, in this
 * order: the change goes to every worker's cache, the shared sequence
 * number moves on, the answers go out.  A worker that sees the new
 * sequence therefore already has, or is about to read, the change.
 */

#define PSTORE_SNAPSHOT_CHUNK	(256 * 1024)

struct pstore_op {
	TAILQ_ENTRY(pstore_op)	 entry;
	struct child		*w;		/* NULL: the worker died */
	pid_t			 pid;
	uint32_t		 reqid;
	uint32_t		 type;
	char			*cn;
	int64_t			 id;
	uint32_t		 mask;
	char			*task;
	uint8_t			 done;
	/* the result */
	uint32_t		 status;
	uint64_t		 seq;
	int64_t			 rid;
	char			*rtask;
	uint8_t			 rdone;
};

static void	pstore_commit(int, short, void *);

void
pstore_init(struct parent *p)
{
	event_assign(&p->commit_ev, p->base, -1, 0, pstore_commit, p);
}

static void
pstore_op_free(struct pstore_op *op)
{
	free(op->cn);
	free(op->task);
	free(op->rtask);
	free(op);
}

/* Workers are not trusted: everything is checked again here. */
static int
pstore_parse(struct pstore_op *op, struct ipc_msg *msg)
{
	const char	*cn, *task = NULL;
	size_t		 len;

	if (ipc_get_str(msg, &cn) == -1)
		return -1;
	if (op->type != IMSG_STORE_CREATE && (ipc_get_i64(msg, &op->id) ==
	    -1 || op->id <= 0))
		return -1;
	if (op->type == IMSG_STORE_UPDATE && (ipc_get_u32(msg, &op->mask) ==
	    -1 || op->mask == 0 || (op->mask & ~(STORE_SET_TASK |
	    STORE_SET_DONE)) != 0))
		return -1;
	if (op->type != IMSG_STORE_DELETE) {
		if (ipc_get_str(msg, &task) == -1 ||
		    ipc_get_u8(msg, &op->done) == -1 || op->done > 1)
			return -1;
		len = strlen(task);
		if ((op->type == IMSG_STORE_CREATE ||
		    (op->mask & STORE_SET_TASK)) &&
		    (len == 0 || len > TODO_TASK_MAX))
			return -1;
	}
	if (ipc_get_end(msg) == -1)
		return -1;
	if ((op->cn = strdup(cn)) == NULL ||
	    (task != NULL && (op->task = strdup(task)) == NULL))
		fatal("%s", __func__);
	return 0;
}

/*
 * The decoder alone, for the fuzz target: 0 when a worker's request of
 * this type and payload would be accepted.
 */
int
pstore_check_request(uint32_t type, const void *data, size_t len)
{
	struct pstore_op	*op;
	struct ipc_msg		 msg;
	int			 r;

	if (type != IMSG_STORE_CREATE && type != IMSG_STORE_UPDATE &&
	    type != IMSG_STORE_DELETE)
		return -1;
	if ((op = calloc(1, sizeof(*op))) == NULL)
		return -1;
	memset(&msg, 0, sizeof(msg));
	msg.hdr.type = type;
	msg.hdr.len = len;
	msg.data = data;
	msg.len = len;
	msg.fd = -1;
	op->type = type;
	r = pstore_parse(op, &msg);
	pstore_op_free(op);
	return r;
}

void
pstore_request(struct parent *p, struct child *w, struct ipc_msg *msg)
{
	struct pstore_op	*op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		fatal("%s", __func__);
	op->w = w;
	op->pid = w->pid;
	op->reqid = msg->hdr.peerid;
	op->type = msg->hdr.type;
	if (pstore_parse(op, msg) == -1) {
		pstore_op_free(op);
		parent_child_kill(w, "malformed store request");
		return;
	}
	TAILQ_INSERT_TAIL(&p->ops, op, entry);
	/* after the other events of this turn: they may bring more writes */
	if (p->nops++ == 0)
		event_active(&p->commit_ev, EV_TIMEOUT, 1);
}

static int
pstore_apply(struct parent *p, struct pstore_op *op)
{
	struct store_item	 it;
	int			 r;

	switch (op->type) {
	case IMSG_STORE_CREATE:
		r = store_create(p->store, op->cn, op->task, strlen(op->task),
		    op->done, &it);
		break;
	case IMSG_STORE_UPDATE:
		r = store_update(p->store, op->id, op->cn, op->mask,
		    op->task, op->task ? strlen(op->task) : 0, op->done, &it);
		break;
	default:
		r = store_delete(p->store, op->id, op->cn, &it);
		break;
	}
	if (r == -1)
		return -1;
	if (r == 1) {
		op->status = STORE_NOTFOUND;
		return 0;
	}
	op->status = STORE_OK;
	op->rid = it.id;
	op->rdone = it.done ? 1 : 0;
	if ((op->rtask = strndup(it.task, it.tasklen)) == NULL)
		fatal("%s", __func__);
	return 0;
}

static void
pstore_broadcast(struct parent *p, struct pstore_op *op)
{
	struct ipc_wbuf	*wb;
	struct child	*w;
	uint32_t	 kind;
	int		 i;

	kind = op->type == IMSG_STORE_CREATE ? STORE_OP_CREATE :
	    op->type == IMSG_STORE_UPDATE ? STORE_OP_UPDATE : STORE_OP_DELETE;
	for (i = 0; i < p->nworkers; i++) {
		w = &p->workers[i];
		if (w->pid == 0 || w->ipc.fd == -1)
			continue;
		if ((wb = ipc_create(IMSG_STORE_CHANGE, 0,
		    32 + strlen(op->rtask))) == NULL)
			fatal("%s", __func__);
		ipc_add_u64(wb, op->seq);
		ipc_add_u32(wb, kind);
		ipc_add_i64(wb, op->rid);
		if (kind != STORE_OP_DELETE) {
			ipc_add_str(wb, op->rtask);
			ipc_add_u8(wb, op->rdone);
		}
		if (ipc_send(&w->ipc, wb, -1) == -1)
			log_warn("worker %d: store change", w->id);
	}
}

static void
pstore_reply(struct parent *p, struct pstore_op *op)
{
	struct ipc_wbuf	*wb;

	if (op->w == NULL || op->w->pid != op->pid || op->w->ipc.fd == -1)
		return;
	if ((wb = ipc_create(IMSG_STORE_REPLY, op->reqid,
	    32 + (op->rtask ? strlen(op->rtask) : 0))) == NULL)
		fatal("%s", __func__);
	ipc_add_u32(wb, op->status);
	ipc_add_u64(wb, op->seq);
	if (op->status == STORE_OK) {
		ipc_add_i64(wb, op->rid);
		ipc_add_str(wb, op->rtask);
		ipc_add_u8(wb, op->rdone);
	}
	if (ipc_send(&op->w->ipc, wb, -1) == -1)
		log_warn("worker %d: store reply", op->w->id);
}

static void
pstore_commit(int fd, short ev, void *arg)
{
	struct parent	*p = arg;
	struct pstore_op	*op;
	struct timespec	 t0, t1;
	int		 ok = 1, i, n = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (store_begin(p->store) == -1)
		ok = 0;
	TAILQ_FOREACH(op, &p->ops, entry) {
		if (!ok)
			break;
		if (pstore_apply(p, op) == -1)
			ok = 0;
		n++;
	}
	if (ok && store_commit(p->store) == -1)
		ok = 0;
	if (!ok) {
		store_rollback(p->store);
		log_warnx("store commit failed: %s; %d writes refused",
		    store_error(p->store), p->nops);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_commit(p, (t1.tv_sec - t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000);

	TAILQ_FOREACH(op, &p->ops, entry) {
		if (!ok) {
			op->status = STORE_FAILED;
			continue;
		}
		if (op->status != STORE_OK)
			continue;
		op->seq = ++p->seq;
		pstore_broadcast(p, op);
		if (op->type == IMSG_STORE_CREATE)
			p->state->todo_count++;
		else if (op->type == IMSG_STORE_DELETE)
			p->state->todo_count--;
		p->store_writes++;
	}
	__atomic_store_n(&p->state->store_seq, p->seq, __ATOMIC_RELEASE);
	while ((op = TAILQ_FIRST(&p->ops)) != NULL) {
		TAILQ_REMOVE(&p->ops, op, entry);
		pstore_reply(p, op);
		pstore_op_free(op);
	}
	p->nops = 0;
	for (i = 0; i < p->nworkers; i++)
		parent_child_flush(&p->workers[i]);
	log_debug("committed %d writes", n);
}

/* The same bytes as ipc_add_i64 + ipc_add_str + ipc_add_u8. */
static int
pstore_item_add(struct buf *b, const struct store_item *it)
{
	uint32_t	 n = it->tasklen + 1;
	uint8_t		 done = it->done ? 1 : 0;

	if (buf_add(b, &it->id, sizeof(it->id)) == -1 ||
	    buf_add(b, &n, sizeof(n)) == -1 ||
	    buf_add(b, it->task, it->tasklen) == -1 ||
	    buf_add(b, "", 1) == -1 ||
	    buf_add(b, &done, 1) == -1)
		return -1;
	return 0;
}

struct pstore_snap {
	struct parent	*p;
	struct child	*w;
	struct buf	 items;
	uint32_t	 count;
};

static void
pstore_snapshot_flush(struct pstore_snap *s)
{
	struct ipc_wbuf	*wb;

	if (s->count == 0)
		return;
	if ((wb = ipc_create(IMSG_STORE_SNAPSHOT, 0, s->items.len + 16)) ==
	    NULL)
		fatal("%s", __func__);
	ipc_add_u64(wb, s->p->seq);
	ipc_add_u32(wb, s->count);
	ipc_add(wb, s->items.data, s->items.len);
	if (ipc_send(&s->w->ipc, wb, -1) == -1)
		log_warn("worker %d: snapshot", s->w->id);
	buf_reset(&s->items);
	s->count = 0;
}

static int
pstore_snapshot_item(void *arg, const struct store_item *it)
{
	struct pstore_snap	*s = arg;

	/* a task's length is bounded; a corrupt row must not break IPC */
	if (it->tasklen > TODO_TASK_MAX || memchr(it->task, '\0',
	    it->tasklen) != NULL) {
		log_warnx("todo %lld: unusable task in the database, skipped",
		    (long long)it->id);
		return 0;
	}
	if (pstore_item_add(&s->items, it) == -1)
		fatal("%s", __func__);
	s->count++;
	if (s->items.len >= PSTORE_SNAPSHOT_CHUNK)
		pstore_snapshot_flush(s);
	return 0;
}

/* Fill a new worker's cache: every item, then the sequence it is at. */
void
pstore_snapshot(struct parent *p, struct child *w)
{
	struct pstore_snap	 s;

	memset(&s, 0, sizeof(s));
	s.p = p;
	s.w = w;
	buf_init(&s.items, 0);
	if (store_foreach(p->store, pstore_snapshot_item, &s) == -1)
		log_warnx("snapshot for worker %d incomplete", w->id);
	pstore_snapshot_flush(&s);
	buf_free(&s.items);
	ipc_compose(&w->ipc, IMSG_STORE_SNAPSHOT_END, 0, -1, &p->seq,
	    sizeof(p->seq));
}

void
pstore_child_gone(struct parent *p, struct child *w)
{
	struct pstore_op	*op;

	TAILQ_FOREACH(op, &p->ops, entry)
		if (op->w == w)
			op->w = NULL;
}
