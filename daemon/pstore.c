#include <sys/types.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "log.h"
#include "metrics.h"
#include "proc.h"
#include "proto.h"
#include "pstore.h"
#include "shm.h"
#include "backend.h"
#include "storemsg.h"

/*
 * Store requests from the workers, committed in groups: every request
 * read in one turn of the event loop goes into one transaction and one
 * fsync, and each gets its answer only after that commit.  Then, in this
 * order: the change goes to every worker's cache, the shared sequence
 * number moves on, the answers go out.  A worker that sees the new
 * sequence therefore already has, or is about to read, the change.
 * The back end may complete a group later (PostgreSQL): writes that come
 * meanwhile wait for the next group, one group in flight at a time.
 */

#define PSTORE_SNAPSHOT_CHUNK	(256 * 1024)
/* GETs waiting for a catch-up; past it they get 503 (a worker floods) */
#define PSTORE_SYNC_MAX		65536

/*
 * Reads past the workers' caches.  A worker has at most STOREMSG_READS_MAX
 * unanswered (more: it is killed), and PSTORE_READ_RATE a second with a
 * burst of PSTORE_READ_BURST (more: answered "failed", the client gets
 * 503); the parent answers at most PSTORE_READS_TURN in one turn of its
 * loop, so that reads never hold writes and other workers back for long.
 * A page is cut at PSTORE_PAGE_BYTES: the parent never holds the list.
 */
#define PSTORE_READ_RATE	20000
#define PSTORE_READ_BURST	2000
#define PSTORE_READS_TURN	32
#define PSTORE_PAGE_BYTES	(128 * 1024)

/* A task's JSON beyond its bytes: {"id":N,"task":"","done":false} */
#define PSTORE_ITEM_JSON	48

struct pstore_read {
	TAILQ_ENTRY(pstore_read)	 entry;
	struct pstore			*ps;
	struct proc			*w;	/* NULL: the worker died */
	pid_t				 pid;
	uint32_t			 reqid;
	struct storemsg_read		 q;
	struct storemsg_snap		 msg;	/* the answer */
	uint32_t			 rows;
	int				 cut;	/* at PSTORE_PAGE_BYTES */
};

struct pstore_op {
	TAILQ_ENTRY(pstore_op)	 entry;
	struct proc		*w;		/* NULL: the worker died */
	pid_t			 pid;
	uint32_t		 reqid;
	struct store_write	 wr;		/* owns cn and task */
	uint64_t		 seq;
};

struct pstore_sync {
	TAILQ_ENTRY(pstore_sync) entry;
	struct proc		*w;		/* NULL: the worker died */
	pid_t			 pid;
	uint32_t		 reqid;
};

/*
 * A worker's snapshot read in the event loop: waiting for it, receiving
 * it, then waiting for a catch-up that starts after it (what changed
 * since the snapshot's view) before it is told the sequence it is at.
 */
enum {
	PSTORE_SNAP_NONE,
	PSTORE_SNAP_WAITING,
	PSTORE_SNAP_RECEIVING,
	PSTORE_SNAP_CATCHUP_NEXT,
	PSTORE_SNAP_CATCHUP
};

static void	pstore_commit(int, short, void *);
static void	pstore_done(void *, enum store_group);
static void	pstore_snap_start(int, short, void *);
static void	pstore_sync_start(struct pstore *);
static int	pstore_snap_catchup(struct pstore *, int, int);
static void	pstore_read_next(int, short, void *);

/* store, state and state_fd are set by whoever opened the store. */
void
pstore_init(struct pstore *ps, struct event_base *base,
    struct proc_group *workers, struct metrics *metrics)
{
	ps->workers = workers;
	ps->metrics = metrics;
	TAILQ_INIT(&ps->ops);
	TAILQ_INIT(&ps->group);
	TAILQ_INIT(&ps->sync_next);
	TAILQ_INIT(&ps->sync_cur);
	ps->nops = 0;
	ps->busy = 0;
	event_assign(&ps->commit_ev, base, -1, 0, pstore_commit, ps);
	event_assign(&ps->snap_ev, base, -1, 0, pstore_snap_start, ps);
	evtimer_assign(&ps->snap_retry, base, pstore_snap_start, ps);
	TAILQ_INIT(&ps->reads);
	ps->reading = NULL;
	event_assign(&ps->read_ev, base, -1, 0, pstore_read_next, ps);
}

static void
pstore_op_free(struct pstore_op *op)
{
	free((char *)op->wr.cn);
	free((char *)op->wr.task);
	free(op->wr.rtask);
	free(op);
}

/* Workers are not trusted: storemsg bounds every field. */
static int
pstore_parse(struct pstore_op *op, struct ipc_msg *msg)
{
	struct storemsg_req	 req;

	if (storemsg_decode_request(msg, &req) == -1)
		return -1;
	op->wr.id = req.id;
	op->wr.mask = req.mask;
	op->wr.done = req.done;
	if ((op->wr.cn = strdup(req.cn)) == NULL ||
	    (req.task != NULL && (op->wr.task = strndup(req.task,
	    req.tasklen)) == NULL))
		fatal("%s", __func__);
	return 0;
}

void
pstore_request(struct pstore *ps, struct proc *w, struct ipc_msg *msg)
{
	struct pstore_op	*op;

	if ((op = calloc(1, sizeof(*op))) == NULL)
		fatal("%s", __func__);
	op->w = w;
	op->pid = w->pid;
	op->reqid = msg->hdr.peerid;
	op->wr.type = msg->hdr.type;
	if (pstore_parse(op, msg) == -1) {
		pstore_op_free(op);
		proc_kill(w, "malformed store request");
		return;
	}
	TAILQ_INSERT_TAIL(&ps->ops, op, entry);
	/* after the other events of this turn: they may bring more writes */
	if (ps->nops++ == 0 && !ps->busy)
		event_active(&ps->commit_ev, EV_TIMEOUT, 1);
}

/* The item a committed write left (or removed). */
static void
pstore_op_item(const struct pstore_op *op, struct storemsg_item *it)
{
	memset(it, 0, sizeof(*it));
	it->id = op->wr.rid;
	it->task = op->wr.rtask;
	it->tasklen = op->wr.rtask != NULL ? strlen(op->wr.rtask) : 0;
	it->done = op->wr.rdone;
}

/* A change goes to every cache, on the bounded queues: see proc_send. */
static void
pstore_broadcast_change(struct pstore *ps, const struct storemsg_change *chg)
{
	struct ipc_wbuf		*wb;
	struct proc		*w;
	int			 i;

	for (i = 0; i < ps->workers->n; i++) {
		w = &ps->workers->procs[i];
		/* one still reading its snapshot gets the changes after it */
		if (!proc_alive(w) || ps->loading[i] == PSTORE_SNAP_WAITING ||
		    ps->loading[i] == PSTORE_SNAP_RECEIVING)
			continue;
		if ((wb = storemsg_encode_change(chg)) == NULL)
			fatal("%s", __func__);
		proc_send(w, wb, -1);	/* a failure kills it, and says so */
	}
}

static void
pstore_broadcast(struct pstore *ps, struct pstore_op *op)
{
	struct storemsg_change	 chg;

	chg.seq = op->seq;
	chg.op = op->wr.type == IMSG_STORE_CREATE ? STORE_OP_CREATE :
	    op->wr.type == IMSG_STORE_UPDATE ? STORE_OP_UPDATE : STORE_OP_DELETE;
	pstore_op_item(op, &chg.item);
	pstore_broadcast_change(ps, &chg);
}

/*
 * Another node's change, as the item is now (or gone): every cache takes
 * it whether it had the item or not.  A row the caches cannot hold (a NUL,
 * too long) is dropped, as from a snapshot.
 */
void
pstore_remote_change(struct pstore *ps, const struct store_item *row,
    int gone)
{
	struct storemsg_change	 chg;

	memset(&chg, 0, sizeof(chg));
	chg.op = gone ? STORE_OP_DELETE : STORE_OP_UPDATE;
	chg.item.id = row->id;
	if (!gone) {
		chg.item.task = row->task;
		chg.item.tasklen = row->tasklen;
		chg.item.done = row->done ? 1 : 0;
		if (!storemsg_item_ok(&chg.item)) {
			log_warnx("todo %lld: unusable task in the database, "
			    "skipped", (long long)row->id);
			return;
		}
	}
	chg.seq = ++ps->seq;
	pstore_broadcast_change(ps, &chg);
}

/* A catch-up is through: what the workers read of it moves on. */
void
pstore_remote_changed(struct pstore *ps, int64_t count)
{
	int	 i;

	ps->state->todo_count = count;
	__atomic_store_n(&ps->state->store_seq, ps->seq, __ATOMIC_RELEASE);
	for (i = 0; i < ps->workers->n; i++)
		proc_flush(&ps->workers->procs[i]);
}

/* The answer goes on the worker's bounded queue: see proc_send. */
static void
pstore_reply(struct pstore_op *op)
{
	struct storemsg_reply	 rep;
	struct ipc_wbuf		*wb;

	if (op->w == NULL || op->w->pid != op->pid || !proc_alive(op->w))
		return;
	rep.status = op->wr.status;
	rep.seq = op->seq;
	pstore_op_item(op, &rep.item);
	if ((wb = storemsg_encode_reply(op->reqid, &rep)) == NULL)
		fatal("%s", __func__);
	proc_send(op->w, wb, -1);
}

/* Every write read this turn becomes one group for the back end. */
static void
pstore_commit(int fd, short ev, void *arg)
{
	struct pstore		*ps = arg;
	struct store_write	**wv;
	struct pstore_op	*op;
	int			 n = 0;

	if (ps->busy || ps->nops == 0)
		return;
	if ((wv = reallocarray(NULL, ps->nops, sizeof(*wv))) == NULL)
		fatal("%s", __func__);
	TAILQ_CONCAT(&ps->group, &ps->ops, entry);
	TAILQ_FOREACH(op, &ps->group, entry)
		wv[n++] = &op->wr;
	ps->ngroup = n;
	ps->nops = 0;
	ps->busy = 1;
	clock_gettime(CLOCK_MONOTONIC, &ps->t0);
	ps->be.ops->submit(ps->be.be, wv, n, pstore_done, ps);
	free(wv);
}

static void
pstore_account(struct pstore *ps, enum store_group g)
{
	struct pstore_op	*op;
	struct timespec		 t1;
	int			 nw = 0;

	if (g != STORE_GROUP_OK) {
		metrics_refused(ps->metrics, ps->ngroup);
		if (g != STORE_GROUP_UNAVAILABLE)
			log_warnx("store commit failed: %s; %d writes "
			    "refused", ps->be.ops->error(ps->be.be),
			    ps->ngroup);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	TAILQ_FOREACH(op, &ps->group, entry)
		if (g == STORE_GROUP_OK && op->wr.status == STORE_OK)
			nw++;
	metrics_commit(ps->metrics, (t1.tv_sec - ps->t0.tv_sec) * 1000000 +
	    (t1.tv_nsec - ps->t0.tv_nsec) / 1000, nw);
}

/* The group is done: its changes go out, then its answers. */
static void
pstore_done(void *arg, enum store_group g)
{
	struct pstore		*ps = arg;
	struct pstore_op	*op;
	int			 i;

	pstore_account(ps, g);
	TAILQ_FOREACH(op, &ps->group, entry) {
		if (g != STORE_GROUP_OK) {
			op->wr.status = g == STORE_GROUP_UNAVAILABLE ?
			    STORE_UNAVAILABLE : STORE_FAILED;
			continue;
		}
		if (op->wr.status != STORE_OK)
			continue;
		op->seq = ++ps->seq;
		pstore_broadcast(ps, op);
		if (op->wr.type == IMSG_STORE_CREATE)
			ps->state->todo_count++;
		else if (op->wr.type == IMSG_STORE_DELETE)
			ps->state->todo_count--;
	}
	__atomic_store_n(&ps->state->store_seq, ps->seq, __ATOMIC_RELEASE);
	while ((op = TAILQ_FIRST(&ps->group)) != NULL) {
		TAILQ_REMOVE(&ps->group, op, entry);
		pstore_reply(op);
		pstore_op_free(op);
	}
	for (i = 0; i < ps->workers->n; i++)
		proc_flush(&ps->workers->procs[i]);
	log_debug("committed a group of %d writes", ps->ngroup);
	ps->busy = 0;
	ps->ngroup = 0;
	if (ps->nops > 0)
		event_active(&ps->commit_ev, EV_TIMEOUT, 1);
}

struct pstore_snap {
	struct proc		*w;
	struct storemsg_snap	 msg;
	size_t			 cost;		/* of the items sent */
	size_t			 budget;	/* the worker's cache size */
	int			 cut;		/* not every item was sent */
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

static void
pstore_item_from_row(struct storemsg_item *it, const struct store_item *row)
{
	it->id = row->id;
	it->task = row->task;
	it->tasklen = row->tasklen;
	it->done = row->done ? 1 : 0;
}

/* A corrupt row (a task too long, a NUL) must not break IPC. */
static int
pstore_item_add(struct storemsg_snap *msg, const struct store_item *row)
{
	struct storemsg_item	 it;

	pstore_item_from_row(&it, row);
	if (storemsg_snap_add(msg, &it) == 0)
		return 0;
	if (errno != EINVAL)
		fatal("%s", __func__);
	log_warnx("todo %lld: unusable task in the database, skipped",
	    (long long)row->id);
	return -1;
}

/* Items go until the worker's cache would be full: it reads the rest. */
static int
pstore_snapshot_item(void *arg, const struct store_item *row)
{
	struct pstore_snap	*s = arg;
	size_t			 cost;

	cost = cache_item_cost(row->tasklen + PSTORE_ITEM_JSON);
	if (s->cost + cost > s->budget) {
		s->cut = 1;
		return 1;
	}
	if (pstore_item_add(&s->msg, row) == 0)
		s->cost += cost;
	if (storemsg_snap_size(&s->msg) >= PSTORE_SNAPSHOT_CHUNK)
		pstore_snapshot_flush(s);
	return 0;
}

/* The snapshot at once, from a local store (SQLite): what fits. */
static void
pstore_snapshot_now(struct pstore *ps, struct proc *w)
{
	struct pstore_snap	 s;
	struct ipc_wbuf		*wb;
	size_t			 mark = proc_queue_cost(w);

	memset(&s, 0, sizeof(s));
	s.w = w;
	s.budget = ps->cache_size;
	storemsg_snap_init(&s.msg, ps->seq);
	if (ps->be.ops->foreach(ps->be.be, pstore_snapshot_item, &s) == -1) {
		log_warnx("snapshot for worker %d incomplete: it reads the "
		    "rest from the store", w->id);
		s.cut = 1;
	}
	pstore_snapshot_flush(&s);
	storemsg_snap_clear(&s.msg);
	if ((wb = storemsg_encode_snapshot_end(ps->seq, !s.cut)) == NULL)
		fatal("%s", __func__);
	if (ipc_send(&w->ipc, wb, -1) == -1)
		log_warn("worker %d: snapshot", w->id);
	proc_allow(w, mark);
}

/*
 * A new worker gets the shared state page (read-only for it), and fills its
 * cache: the items that fit it (`cache size`), then the sequence it is at
 * and whether that was every item.  The snapshot is ours to send, whatever
 * its size: it does not count against the worker's bound.
 * From a database elsewhere it is read in the event loop, for every worker
 * that started meanwhile at once.
 */
void
pstore_worker_start(struct pstore *ps, struct proc *w)
{
	uint32_t	 kind = SHM_STATE;
	int		 fd;

	if ((fd = fcntl(ps->state_fd, F_DUPFD_CLOEXEC, 0)) == -1)
		fatal("dup state segment");
	ipc_compose(&w->ipc, IMSG_SHM, 0, fd, &kind, sizeof(kind));
	if (ps->be.ops->snapshot == NULL) {
		pstore_snapshot_now(ps, w);
		return;
	}
	if (ps->loading[w->id - 1] == PSTORE_SNAP_RECEIVING)
		storemsg_snap_clear(&ps->snaps[w->id - 1]);
	ps->loading[w->id - 1] = PSTORE_SNAP_WAITING;
	ps->loadpid[w->id - 1] = w->pid;
	if (!ps->snapping)
		event_active(&ps->snap_ev, EV_TIMEOUT, 1);
}

static int
pstore_snap_live(struct pstore *ps, int i)
{
	struct proc	*w = &ps->workers->procs[i];

	return proc_alive(w) && w->pid == ps->loadpid[i];
}

/* A chunk goes out; the worker's bound grows by what it costs. */
static void
pstore_snap_chunk(struct pstore *ps, int i)
{
	struct proc	*w = &ps->workers->procs[i];
	struct ipc_wbuf	*wb;
	size_t		 mark = proc_queue_cost(w);

	if ((wb = storemsg_snap_take(&ps->snaps[i])) == NULL)
		return;
	if (ipc_send(&w->ipc, wb, -1) == -1) {
		log_warn("worker %d: snapshot", w->id);
		return;
	}
	ps->loadsent[i]++;
	proc_allow(w, mark);
	proc_flush(w);
}

/* Worker i takes this row if it fits its cache; 1 if it did. */
static int
pstore_snap_fits(struct pstore *ps, int i, const struct store_item *row)
{
	size_t	 cost = cache_item_cost(row->tasklen + PSTORE_ITEM_JSON);

	if (ps->loadcut[i] || ps->loadcost[i] + cost > ps->cache_size) {
		ps->loadcut[i] = 1;
		return 0;
	}
	ps->loadcost[i] += cost;
	return 1;
}

/* One row for every worker receiving; enough once none has room left. */
static int
pstore_snap_row(void *arg, const struct store_item *row)
{
	struct pstore		*ps = arg;
	int			 i, room = 0;

	for (i = 0; i < ps->workers->n; i++) {
		if (ps->loading[i] != PSTORE_SNAP_RECEIVING ||
		    !pstore_snap_live(ps, i) || !pstore_snap_fits(ps, i, row))
			continue;
		room = 1;
		if (pstore_item_add(&ps->snaps[i], row) == -1)
			continue;
		if (storemsg_snap_size(&ps->snaps[i]) >= PSTORE_SNAPSHOT_CHUNK)
			pstore_snap_chunk(ps, i);
	}
	return room ? 0 : 1;
}

/*
 * The snapshot is over.  Complete: each worker gets the rest, then the
 * changes, and waits for the catch-up that brings what changed since the
 * snapshot's view (pstore_snap_ready).  Failed: a worker that got part of
 * it starts again; the others wait for the next try.
 */
static void
pstore_snap_done(void *arg, int ok)
{
	struct pstore	*ps = arg;
	struct timeval	 tv = { 1, 0 };
	int		 i, again = 0;

	ps->snapping = 0;
	for (i = 0; i < ps->workers->n; i++) {
		if (ps->loading[i] != PSTORE_SNAP_RECEIVING)
			continue;
		if (!pstore_snap_live(ps, i) || !ok) {
			storemsg_snap_clear(&ps->snaps[i]);
			ps->loading[i] = PSTORE_SNAP_WAITING;
			again = 1;
			if (pstore_snap_live(ps, i) && ps->loadsent[i] > 0)
				proc_kill(&ps->workers->procs[i],
				    "its snapshot broke off");
			continue;
		}
		pstore_snap_chunk(ps, i);
		storemsg_snap_clear(&ps->snaps[i]);
		ps->loading[i] = PSTORE_SNAP_CATCHUP_NEXT;
	}
	pstore_sync_start(ps);
	if (again)
		evtimer_add(&ps->snap_retry, &tv);
	else
		event_active(&ps->snap_ev, EV_TIMEOUT, 1);
}

/*
 * A catch-up that started after their snapshot went through: those
 * workers have every change, and learn the sequence they are at.  Failed:
 * they wait for the next one.
 */
static void
pstore_snap_ready(struct pstore *ps, int ok)
{
	struct ipc_wbuf	*wb;
	struct timeval	 tv = { 1, 0 };
	int		 i;

	if (!ok) {
		if (pstore_snap_catchup(ps, PSTORE_SNAP_CATCHUP,
		    PSTORE_SNAP_CATCHUP_NEXT))
			evtimer_add(&ps->snap_retry, &tv);
		return;
	}
	for (i = 0; i < ps->workers->n; i++) {
		if (ps->loading[i] != PSTORE_SNAP_CATCHUP)
			continue;
		ps->loading[i] = PSTORE_SNAP_NONE;
		if (!pstore_snap_live(ps, i))
			continue;
		if ((wb = storemsg_encode_snapshot_end(ps->seq,
		    !ps->loadcut[i])) == NULL)
			fatal("%s", __func__);
		if (ipc_send(&ps->workers->procs[i].ipc, wb, -1) == -1)
			log_warn("worker %d: snapshot", i + 1);
	}
}

/* The workers waiting for a snapshot all take the next one. */
static void
pstore_snap_start(int fd, short ev, void *arg)
{
	struct pstore	*ps = arg;
	int		 i, n = 0;

	if (ps->snapping)
		return;
	for (i = 0; i < ps->workers->n; i++) {
		if (ps->loading[i] != PSTORE_SNAP_WAITING)
			continue;
		if (!pstore_snap_live(ps, i)) {
			ps->loading[i] = PSTORE_SNAP_NONE;
			continue;
		}
		ps->loading[i] = PSTORE_SNAP_RECEIVING;
		ps->loadsent[i] = 0;
		ps->loadcost[i] = 0;
		ps->loadcut[i] = 0;
		storemsg_snap_init(&ps->snaps[i], ps->seq);
		n++;
	}
	pstore_sync_start(ps);
	if (n == 0)
		return;
	ps->snapping = 1;
	ps->be.ops->snapshot(ps->be.be, pstore_snap_row, pstore_snap_done,
	    ps);
}

static void
pstore_sync_reply(struct pstore_sync *sy, uint32_t status)
{
	struct ipc_wbuf	*wb;

	if (sy->w == NULL || sy->w->pid != sy->pid || !proc_alive(sy->w))
		return;
	if ((wb = storemsg_encode_synced(sy->reqid, status)) == NULL)
		fatal("%s", __func__);
	proc_send(sy->w, wb, -1);
}

static void	pstore_synced(void *, int);
static void	pstore_snap_ready(struct pstore *, int);

/* Workers past their snapshot, waiting for the catch-up; 1 if any. */
static int
pstore_snap_catchup(struct pstore *ps, int from, int to)
{
	int	 i, n = 0;

	for (i = 0; i < ps->workers->n; i++)
		if (ps->loading[i] == from) {
			ps->loading[i] = to;
			n++;
		}
	return n > 0;
}

static void
pstore_sync_start(struct pstore *ps)
{
	int	 catchup;

	if (ps->syncing)
		return;
	catchup = pstore_snap_catchup(ps, PSTORE_SNAP_CATCHUP_NEXT,
	    PSTORE_SNAP_CATCHUP);
	if (TAILQ_EMPTY(&ps->sync_next) && !catchup)
		return;
	TAILQ_CONCAT(&ps->sync_cur, &ps->sync_next, entry);
	ps->syncing = 1;
	ps->be.ops->sync(ps->be.be, pstore_synced, ps);
}

/*
 * The catch-up answered: the changes went to the caches before this, so
 * each GET now waits for its cache to reach the sequence published here.
 * Without the database a GET cannot know what other nodes acknowledged:
 * it gets 503.
 */
static void
pstore_synced(void *arg, int ok)
{
	struct pstore		*ps = arg;
	struct pstore_sync	*sy;
	int			 i;

	__atomic_store_n(&ps->state->store_seq, ps->seq, __ATOMIC_RELEASE);
	while ((sy = TAILQ_FIRST(&ps->sync_cur)) != NULL) {
		TAILQ_REMOVE(&ps->sync_cur, sy, entry);
		pstore_sync_reply(sy, ok ? STORE_OK : STORE_UNAVAILABLE);
		free(sy);
		ps->nsync--;
	}
	pstore_snap_ready(ps, ok);
	for (i = 0; i < ps->workers->n; i++)
		proc_flush(&ps->workers->procs[i]);
	ps->syncing = 0;
	/*
	 * After a failure only GETs that came meanwhile go on at once (and
	 * fail at once without the database); workers past their snapshot
	 * try again from the retry timer, not in a loop here.
	 */
	if (ok || !TAILQ_EMPTY(&ps->sync_next))
		pstore_sync_start(ps);
}

void
pstore_sync_request(struct pstore *ps, struct proc *w, struct ipc_msg *msg)
{
	struct pstore_sync	 one, *sy;

	if (storemsg_decode_sync(msg) == -1) {
		proc_kill(w, "malformed store sync");
		return;
	}
	one.w = w;
	one.pid = w->pid;
	one.reqid = msg->hdr.peerid;
	/* a store of this node only: the caches have every write */
	if (ps->be.ops->sync == NULL || ps->nsync >= PSTORE_SYNC_MAX) {
		pstore_sync_reply(&one, ps->be.ops->sync == NULL ? STORE_OK :
		    STORE_UNAVAILABLE);
		proc_flush(w);
		return;
	}
	if ((sy = malloc(sizeof(*sy))) == NULL)
		fatal("%s", __func__);
	*sy = one;
	TAILQ_INSERT_TAIL(&ps->sync_next, sy, entry);
	ps->nsync++;
	pstore_sync_start(ps);
}

/* The bounds of one worker's reads, started afresh for a new process. */
static struct pstore_reader *
pstore_reader(struct pstore *ps, struct proc *w)
{
	struct pstore_reader	*rd;

	if (w->id < 1 || w->id > PROC_MAX)
		fatalx("%s: worker %d", __func__, w->id);
	rd = &ps->readers[w->id - 1];
	if (rd->pid != w->pid) {
		memset(rd, 0, sizeof(*rd));
		rd->pid = w->pid;
		rd->tokens = PSTORE_READ_BURST;
		clock_gettime(CLOCK_MONOTONIC, &rd->last);
	}
	return rd;
}

/* A token bucket: PSTORE_READ_RATE a second, PSTORE_READ_BURST at once. */
static int
pstore_reader_take(struct pstore_reader *rd)
{
	struct timespec	 now;
	double		 dt;

	clock_gettime(CLOCK_MONOTONIC, &now);
	dt = (now.tv_sec - rd->last.tv_sec) +
	    (now.tv_nsec - rd->last.tv_nsec) / 1e9;
	rd->last = now;
	rd->tokens += dt * PSTORE_READ_RATE;
	if (rd->tokens > PSTORE_READ_BURST)
		rd->tokens = PSTORE_READ_BURST;
	if (rd->tokens < 1)
		return 0;
	rd->tokens -= 1;
	return 1;
}

static void
pstore_read_free(struct pstore_read *r)
{
	storemsg_snap_clear(&r->msg);
	free(r);
}

/* The answer goes on the worker's bounded queue: see STOREMSG_READS_MAX. */
static void
pstore_read_answer(struct pstore *ps, struct pstore_read *r, uint8_t flags)
{
	struct ipc_wbuf	*wb;

	if (r->w != NULL && r->w->pid == r->pid && proc_alive(r->w)) {
		pstore_reader(ps, r->w)->outstanding--;
		if (flags & STOREMSG_ITEMS_FAILED)
			storemsg_snap_clear(&r->msg);
		if ((wb = storemsg_items_take(&r->msg, flags)) == NULL)
			fatal("%s", __func__);
		proc_send(r->w, wb, -1);
		proc_flush(r->w);
	}
	pstore_read_free(r);
}

/*
 * A read from a worker: bounded by storemsg (fields, batch, page), by the
 * number it has unanswered and by its rate.
 */
void
pstore_read_request(struct pstore *ps, struct proc *w, struct ipc_msg *msg)
{
	struct pstore_reader	*rd = pstore_reader(ps, w);
	struct pstore_read	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		fatal("%s", __func__);
	if (storemsg_decode_read(msg, &r->q) == -1) {
		free(r);
		proc_kill(w, "malformed store read");
		return;
	}
	if (rd->outstanding >= STOREMSG_READS_MAX) {
		free(r);
		proc_kill(w, "more than %d store reads unanswered",
		    STOREMSG_READS_MAX);
		return;
	}
	rd->outstanding++;
	r->ps = ps;
	r->w = w;
	r->pid = w->pid;
	r->reqid = msg->hdr.peerid;
	storemsg_items_init(&r->msg, r->reqid, ps->seq);
	if (!pstore_reader_take(rd)) {
		if (rd->refused++ == 0)
			log_warnx("worker %d: more than %d store reads a "
			    "second: refused (503)", w->id, PSTORE_READ_RATE);
		pstore_read_answer(ps, r, STOREMSG_ITEMS_FAILED);
		return;
	}
	TAILQ_INSERT_TAIL(&ps->reads, r, entry);
	if (ps->reading == NULL)
		event_active(&ps->read_ev, EV_TIMEOUT, 1);
}

static int
pstore_read_item(void *arg, const struct store_item *row)
{
	struct pstore_read	*r = arg;

	pstore_item_add(&r->msg, row);
	r->rows++;
	if (r->q.type == IMSG_STORE_PAGE &&
	    storemsg_snap_size(&r->msg) >= PSTORE_PAGE_BYTES) {
		r->cut = 1;
		return 1;
	}
	return 0;
}

static void
pstore_read_done(void *arg, int result)
{
	struct pstore_read	*r = arg;
	struct pstore		*ps = r->ps;
	uint8_t			 flags = 0;

	if (result == -1)
		flags = STOREMSG_ITEMS_FAILED;
	else if (r->q.type == IMSG_STORE_PAGE && !r->cut &&
	    r->rows < r->q.limit)
		flags = STOREMSG_ITEMS_LAST;
	ps->reading = NULL;
	pstore_read_answer(ps, r, flags);
	if (!TAILQ_EMPTY(&ps->reads))
		event_active(&ps->read_ev, EV_TIMEOUT, 1);
}

/*
 * The next reads, one at a time with the back end (SQLite answers at
 * once, PostgreSQL later).  The answer carries the sequence the store was
 * at when the read was sent: every change up to it is in the answer.
 */
static void
pstore_read_next(int fd, short ev, void *arg)
{
	struct pstore		*ps = arg;
	struct pstore_read	*r;
	struct store_read	 q;
	int			 n = 0;

	while (ps->reading == NULL && (r = TAILQ_FIRST(&ps->reads)) != NULL) {
		if (n++ == PSTORE_READS_TURN) {
			event_active(&ps->read_ev, EV_TIMEOUT, 1);
			return;
		}
		TAILQ_REMOVE(&ps->reads, r, entry);
		if (r->w == NULL) {
			pstore_read_free(r);
			continue;
		}
		memset(&q, 0, sizeof(q));
		q.ids = r->q.ids;
		q.nids = r->q.type == IMSG_STORE_READ ? (int)r->q.nids : 0;
		q.after = r->q.after;
		q.limit = (int)r->q.limit;
		r->msg.seq = ps->seq;
		ps->reading = r;
		ps->be.ops->read(ps->be.be, &q, pstore_read_item,
		    pstore_read_done, r);
	}
}

void
pstore_child_gone(struct pstore *ps, struct proc *w)
{
	struct pstore_op	*op;
	struct pstore_sync	*sy;
	struct pstore_read	*r;

	TAILQ_FOREACH(op, &ps->ops, entry)
		if (op->w == w)
			op->w = NULL;
	TAILQ_FOREACH(op, &ps->group, entry)
		if (op->w == w)
			op->w = NULL;
	TAILQ_FOREACH(sy, &ps->sync_next, entry)
		if (sy->w == w)
			sy->w = NULL;
	TAILQ_FOREACH(sy, &ps->sync_cur, entry)
		if (sy->w == w)
			sy->w = NULL;
	TAILQ_FOREACH(r, &ps->reads, entry)
		if (r->w == w)
			r->w = NULL;
	if (ps->reading != NULL && ps->reading->w == w)
		ps->reading->w = NULL;
}
