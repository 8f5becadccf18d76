#include <sys/types.h>

#include <errno.h>
#include <event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "parent.h"
#include "proto.h"
#include "store.h"
#include "storemsg.h"

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

/* Workers are not trusted: storemsg bounds every field. */
static int
pstore_parse(struct pstore_op *op, struct ipc_msg *msg)
{
	struct storemsg_req	 req;

	if (storemsg_decode_request(msg, &req) == -1)
		return -1;
	op->id = req.id;
	op->mask = req.mask;
	op->done = req.done;
	if ((op->cn = strdup(req.cn)) == NULL ||
	    (req.task != NULL && (op->task = strndup(req.task,
	    req.tasklen)) == NULL))
		fatal("%s", __func__);
	return 0;
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

/* The item a committed write left (or removed). */
static void
pstore_op_item(const struct pstore_op *op, struct storemsg_item *it)
{
	memset(it, 0, sizeof(*it));
	it->id = op->rid;
	it->task = op->rtask;
	it->tasklen = op->rtask != NULL ? strlen(op->rtask) : 0;
	it->done = op->rdone;
}

static void
pstore_broadcast(struct parent *p, struct pstore_op *op)
{
	struct storemsg_change	 chg;
	struct ipc_wbuf		*wb;
	struct child		*w;
	int			 i;

	chg.seq = op->seq;
	chg.op = op->type == IMSG_STORE_CREATE ? STORE_OP_CREATE :
	    op->type == IMSG_STORE_UPDATE ? STORE_OP_UPDATE : STORE_OP_DELETE;
	pstore_op_item(op, &chg.item);
	for (i = 0; i < p->nworkers; i++) {
		w = &p->workers[i];
		if (w->pid == 0 || w->ipc.fd == -1)
			continue;
		if ((wb = storemsg_encode_change(&chg)) == NULL)
			fatal("%s", __func__);
		if (ipc_send(&w->ipc, wb, -1) == -1)
			log_warn("worker %d: store change", w->id);
	}
}

static void
pstore_reply(struct parent *p, struct pstore_op *op)
{
	struct storemsg_reply	 rep;
	struct ipc_wbuf		*wb;

	if (op->w == NULL || op->w->pid != op->pid || op->w->ipc.fd == -1)
		return;
	rep.status = op->status;
	rep.seq = op->seq;
	pstore_op_item(op, &rep.item);
	if ((wb = storemsg_encode_reply(op->reqid, &rep)) == NULL)
		fatal("%s", __func__);
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
		p->store_refused += p->nops;
		if (!store_unavailable(p->store))
			log_warnx("store commit failed: %s; %d writes refused",
			    store_error(p->store), p->nops);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	metrics_commit(p, (t1.tv_sec - t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000);

	TAILQ_FOREACH(op, &p->ops, entry) {
		if (!ok) {
			op->status = store_unavailable(p->store) ?
			    STORE_UNAVAILABLE : STORE_FAILED;
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

struct pstore_snap {
	struct child		*w;
	struct storemsg_snap	 msg;
};

static void
pstore_snapshot_flush(struct pstore_snap *s)
{
	struct ipc_wbuf	*wb;

	if ((wb = storemsg_snap_take(&s->msg)) == NULL)
		return;
	if (ipc_send(&s->w->ipc, wb, -1) == -1)
		log_warn("worker %d: snapshot", s->w->id);
}

static int
pstore_snapshot_item(void *arg, const struct store_item *row)
{
	struct pstore_snap	*s = arg;
	struct storemsg_item	 it;

	it.id = row->id;
	it.task = row->task;
	it.tasklen = row->tasklen;
	it.done = row->done ? 1 : 0;
	/* a corrupt row (a task too long, a NUL) must not break IPC */
	if (storemsg_snap_add(&s->msg, &it) == -1) {
		if (errno != EINVAL)
			fatal("%s", __func__);
		log_warnx("todo %lld: unusable task in the database, skipped",
		    (long long)row->id);
		return 0;
	}
	if (storemsg_snap_size(&s->msg) >= PSTORE_SNAPSHOT_CHUNK)
		pstore_snapshot_flush(s);
	return 0;
}

/* Fill a new worker's cache: every item, then the sequence it is at. */
void
pstore_snapshot(struct parent *p, struct child *w)
{
	struct pstore_snap	 s;
	struct ipc_wbuf		*wb;

	s.w = w;
	storemsg_snap_init(&s.msg, p->seq);
	if (store_foreach(p->store, pstore_snapshot_item, &s) == -1)
		log_warnx("snapshot for worker %d incomplete", w->id);
	pstore_snapshot_flush(&s);
	storemsg_snap_clear(&s.msg);
	if ((wb = storemsg_encode_snapshot_end(p->seq)) == NULL)
		fatal("%s", __func__);
	if (ipc_send(&w->ipc, wb, -1) == -1)
		log_warn("worker %d: snapshot", w->id);
}

void
pstore_child_gone(struct parent *p, struct child *w)
{
	struct pstore_op	*op;

	TAILQ_FOREACH(op, &p->ops, entry)
		if (op->w == w)
			op->w = NULL;
}
