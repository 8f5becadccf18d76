#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "storemsg.h"

/*
 * The smallest item on the wire: i64 id, u32 length and the terminator of
 * an empty task, u8 done.  Bounds the count a snapshot may claim.
 */
#define STOREMSG_ITEM_MIN	(8 + 4 + 1 + 1)

static int
storemsg_bad(void)
{
	errno = EBADMSG;
	return -1;
}

static int
storemsg_text_ok(const char *s, size_t len, size_t max)
{
	if (len > max || (len > 0 && s == NULL))
		return 0;
	return len == 0 || memchr(s, '\0', len) == NULL;
}

/* What every item must be, whichever end holds it. */
int
storemsg_item_ok(const struct storemsg_item *it)
{
	return it->id > 0 && (it->done == 0 || it->done == 1) &&
	    storemsg_text_ok(it->task, it->tasklen, TODO_TASK_MAX);
}

/* A message whose adds all went well, or NULL (errno) and it is freed. */
static struct ipc_wbuf *
storemsg_finish(struct ipc_wbuf *wb)
{
	if (wb != NULL && wb->error) {
		errno = wb->error;
		ipc_wbuf_free(wb);
		return NULL;
	}
	return wb;
}

static int
storemsg_add_item(struct ipc_wbuf *wb, const struct storemsg_item *it)
{
	if (ipc_add_i64(wb, it->id) == -1 ||
	    ipc_add_strn(wb, it->task != NULL ? it->task : "",
	    it->tasklen) == -1)
		return -1;
	return ipc_add_u8(wb, it->done ? 1 : 0);
}

/* A string bounded to max bytes (terminator excluded). */
static int
storemsg_get_text(struct ipc_msg *msg, const char **s, size_t *len,
    size_t max)
{
	if (ipc_get_str(msg, s) == -1)
		return -1;
	*len = strlen(*s);
	if (*len > max)
		return storemsg_bad();
	return 0;
}

static int
storemsg_get_done(struct ipc_msg *msg, int *done)
{
	uint8_t	 v;

	if (ipc_get_u8(msg, &v) == -1 || v > 1)
		return storemsg_bad();
	*done = v;
	return 0;
}

static int
storemsg_get_item(struct ipc_msg *msg, struct storemsg_item *it)
{
	if (ipc_get_i64(msg, &it->id) == -1 ||
	    storemsg_get_text(msg, &it->task, &it->tasklen,
	    TODO_TASK_MAX) == -1 ||
	    storemsg_get_done(msg, &it->done) == -1)
		return storemsg_bad();
	if (!storemsg_item_ok(it))
		return storemsg_bad();
	return 0;
}

static int
storemsg_has_task(const struct storemsg_req *r)
{
	return r->type == IMSG_STORE_CREATE ||
	    (r->type == IMSG_STORE_UPDATE && (r->mask & STORE_SET_TASK));
}

/*
 * The bounds of a write request: the parent's defence against a worker
 * that is not what it was.  The encoder applies them too.
 */
static int
storemsg_req_ok(const struct storemsg_req *r)
{
	if (r->type != IMSG_STORE_CREATE && r->type != IMSG_STORE_UPDATE &&
	    r->type != IMSG_STORE_DELETE)
		return 0;
	if (r->cn == NULL || strnlen(r->cn, STOREMSG_CN_MAX + 1) >
	    STOREMSG_CN_MAX)
		return 0;
	if (r->type != IMSG_STORE_CREATE && r->id <= 0)
		return 0;
	if (r->type == IMSG_STORE_UPDATE && (r->mask == 0 ||
	    (r->mask & ~(STORE_SET_TASK | STORE_SET_DONE)) != 0))
		return 0;
	if (r->done != 0 && r->done != 1)
		return 0;
	if (!storemsg_has_task(r))
		return 1;
	return r->tasklen > 0 &&
	    storemsg_text_ok(r->task, r->tasklen, TODO_TASK_MAX);
}

struct ipc_wbuf *
storemsg_encode_request(uint32_t reqid, const struct storemsg_req *r)
{
	struct ipc_wbuf	*wb;
	int		 task = storemsg_has_task(r), done;

	if (!storemsg_req_ok(r)) {
		errno = EMSGSIZE;
		return NULL;
	}
	if ((wb = ipc_create(r->type, reqid, 64 + r->tasklen)) == NULL)
		return NULL;
	ipc_add_str(wb, r->cn);
	if (r->type != IMSG_STORE_CREATE)
		ipc_add_i64(wb, r->id);
	if (r->type == IMSG_STORE_UPDATE)
		ipc_add_u32(wb, r->mask);
	if (r->type != IMSG_STORE_DELETE) {
		done = (r->type == IMSG_STORE_CREATE ||
		    (r->mask & STORE_SET_DONE)) ? r->done : 0;
		ipc_add_strn(wb, task ? r->task : "", task ? r->tasklen : 0);
		ipc_add_u8(wb, done);
	}
	return storemsg_finish(wb);
}

/* The task and done of CREATE and UPDATE; absent ones are empty. */
static int
storemsg_get_fields(struct ipc_msg *msg, struct storemsg_req *r)
{
	if (storemsg_get_text(msg, &r->task, &r->tasklen,
	    TODO_TASK_MAX) == -1 || storemsg_get_done(msg, &r->done) == -1)
		return -1;
	if (r->type == IMSG_STORE_UPDATE && !(r->mask & STORE_SET_DONE) &&
	    r->done != 0)
		return -1;
	if (!storemsg_has_task(r)) {
		if (r->tasklen != 0)
			return -1;
		r->task = NULL;
	}
	return 0;
}

int
storemsg_decode_request(struct ipc_msg *msg, struct storemsg_req *r)
{
	memset(r, 0, sizeof(*r));
	r->type = msg->hdr.type;
	if (msg->fd != -1 || ipc_get_str(msg, &r->cn) == -1)
		return storemsg_bad();
	if (r->type != IMSG_STORE_CREATE && ipc_get_i64(msg, &r->id) == -1)
		return storemsg_bad();
	if (r->type == IMSG_STORE_UPDATE && ipc_get_u32(msg, &r->mask) == -1)
		return storemsg_bad();
	if (r->type != IMSG_STORE_DELETE && storemsg_get_fields(msg, r) == -1)
		return storemsg_bad();
	if (ipc_get_end(msg) == -1 || !storemsg_req_ok(r))
		return storemsg_bad();
	return 0;
}

static int
storemsg_status_ok(uint32_t status)
{
	return status == STORE_OK || status == STORE_NOTFOUND ||
	    status == STORE_FAILED || status == STORE_UNAVAILABLE;
}

struct ipc_wbuf *
storemsg_encode_reply(uint32_t reqid, const struct storemsg_reply *r)
{
	struct ipc_wbuf	*wb;

	if (!storemsg_status_ok(r->status) || (r->status == STORE_OK &&
	    !storemsg_item_ok(&r->item))) {
		errno = EINVAL;
		return NULL;
	}
	if ((wb = ipc_create(IMSG_STORE_REPLY, reqid, 32 +
	    r->item.tasklen)) == NULL)
		return NULL;
	ipc_add_u32(wb, r->status);
	ipc_add_u64(wb, r->seq);
	if (r->status == STORE_OK)
		storemsg_add_item(wb, &r->item);
	return storemsg_finish(wb);
}

int
storemsg_decode_reply(struct ipc_msg *msg, struct storemsg_reply *r)
{
	memset(r, 0, sizeof(*r));
	if (msg->hdr.type != IMSG_STORE_REPLY || msg->fd != -1 ||
	    ipc_get_u32(msg, &r->status) == -1 ||
	    ipc_get_u64(msg, &r->seq) == -1 || !storemsg_status_ok(r->status))
		return storemsg_bad();
	if (r->status == STORE_OK && storemsg_get_item(msg, &r->item) == -1)
		return -1;
	return ipc_get_end(msg);
}

static int
storemsg_op_ok(uint32_t op)
{
	return op == STORE_OP_CREATE || op == STORE_OP_UPDATE ||
	    op == STORE_OP_DELETE;
}

struct ipc_wbuf *
storemsg_encode_change(const struct storemsg_change *c)
{
	struct ipc_wbuf	*wb;

	if (!storemsg_op_ok(c->op) || c->item.id <= 0 ||
	    (c->op != STORE_OP_DELETE && !storemsg_item_ok(&c->item))) {
		errno = EINVAL;
		return NULL;
	}
	if ((wb = ipc_create(IMSG_STORE_CHANGE, 0, 32 + c->item.tasklen)) ==
	    NULL)
		return NULL;
	ipc_add_u64(wb, c->seq);
	ipc_add_u32(wb, c->op);
	if (c->op == STORE_OP_DELETE)
		ipc_add_i64(wb, c->item.id);
	else
		storemsg_add_item(wb, &c->item);
	return storemsg_finish(wb);
}

int
storemsg_decode_change(struct ipc_msg *msg, struct storemsg_change *c)
{
	memset(c, 0, sizeof(*c));
	if (msg->hdr.type != IMSG_STORE_CHANGE || msg->fd != -1 ||
	    ipc_get_u64(msg, &c->seq) == -1 || ipc_get_u32(msg, &c->op) == -1 ||
	    !storemsg_op_ok(c->op))
		return storemsg_bad();
	if (c->op == STORE_OP_DELETE) {
		if (ipc_get_i64(msg, &c->item.id) == -1 || c->item.id <= 0)
			return storemsg_bad();
	} else if (storemsg_get_item(msg, &c->item) == -1)
		return -1;
	return ipc_get_end(msg);
}

/*
 * A snapshot (or ITEMS) is filled item by item; its count comes first on
 * the wire, so it is written in place when the message is taken.
 */
void
storemsg_snap_init(struct storemsg_snap *s, uint64_t seq)
{
	memset(s, 0, sizeof(*s));
	s->type = IMSG_STORE_SNAPSHOT;
	s->seq = seq;
}

static int
storemsg_snap_open(struct storemsg_snap *s)
{
	if (s->wb != NULL)
		return 0;
	if ((s->wb = ipc_create(s->type, s->reqid, 0)) == NULL)
		return -1;
	ipc_add_u64(s->wb, s->seq);
	ipc_add_u32(s->wb, 0);		/* the count, later */
	return 0;
}

/* -1 with EINVAL: this item cannot travel (the snapshot is unharmed). */
int
storemsg_snap_add(struct storemsg_snap *s, const struct storemsg_item *it)
{
	if (!storemsg_item_ok(it)) {
		errno = EINVAL;
		return -1;
	}
	if (storemsg_snap_open(s) == -1 ||
	    storemsg_add_item(s->wb, it) == -1)
		return -1;
	s->count++;
	return 0;
}

/* Payload bytes so far, for the caller to cut the snapshot in chunks. */
size_t
storemsg_snap_size(const struct storemsg_snap *s)
{
	return s->wb != NULL ? s->wb->len - IPC_HDR_SIZE : 0;
}

/* The message so far (NULL when empty or broken); s starts again. */
struct ipc_wbuf *
storemsg_snap_take(struct storemsg_snap *s)
{
	struct ipc_wbuf	*wb = s->wb;

	s->wb = NULL;
	if ((wb = storemsg_finish(wb)) != NULL)
		memcpy(wb->data + IPC_HDR_SIZE + sizeof(uint64_t), &s->count,
		    sizeof(s->count));
	s->count = 0;
	return wb;
}

void
storemsg_snap_clear(struct storemsg_snap *s)
{
	ipc_wbuf_free(s->wb);
	s->wb = NULL;
	s->count = 0;
}

/* u32 count, then as many items as it says, each given to fn. */
static int
storemsg_get_items(struct ipc_msg *msg, storemsg_item_fn fn, void *arg)
{
	struct storemsg_item	 it;
	uint32_t		 count, i;

	if (ipc_get_u32(msg, &count) == -1 ||
	    count > (msg->len - msg->off) / STOREMSG_ITEM_MIN)
		return storemsg_bad();
	for (i = 0; i < count; i++) {
		if (storemsg_get_item(msg, &it) == -1)
			return -1;
		if (fn(arg, &it) == -1)
			return -1;
	}
	return 0;
}

int
storemsg_decode_snapshot(struct ipc_msg *msg, uint64_t *seq,
    storemsg_item_fn fn, void *arg)
{
	if (msg->hdr.type != IMSG_STORE_SNAPSHOT || msg->fd != -1 ||
	    ipc_get_u64(msg, seq) == -1)
		return storemsg_bad();
	if (storemsg_get_items(msg, fn, arg) == -1)
		return -1;
	return ipc_get_end(msg);
}

/* complete: the snapshot held every item (the worker's cache may). */
struct ipc_wbuf *
storemsg_encode_snapshot_end(uint64_t seq, int complete)
{
	struct ipc_wbuf	*wb;

	if ((wb = ipc_create(IMSG_STORE_SNAPSHOT_END, 0, sizeof(seq) + 1)) ==
	    NULL)
		return NULL;
	ipc_add_u64(wb, seq);
	ipc_add_u8(wb, complete ? 1 : 0);
	return storemsg_finish(wb);
}

int
storemsg_decode_snapshot_end(struct ipc_msg *msg, uint64_t *seq,
    int *complete)
{
	if (msg->hdr.type != IMSG_STORE_SNAPSHOT_END || msg->fd != -1 ||
	    ipc_get_u64(msg, seq) == -1 || storemsg_get_done(msg,
	    complete) == -1)
		return storemsg_bad();
	return ipc_get_end(msg);
}

/* The bounds of a read: what a worker may make its parent look up. */
static int
storemsg_read_ok(const struct storemsg_read *r)
{
	uint32_t	 i;

	if (r->type == IMSG_STORE_PAGE)
		return r->after >= 0 && r->limit >= 1 &&
		    r->limit <= STOREMSG_PAGE_MAX;
	if (r->type != IMSG_STORE_READ || r->nids < 1 ||
	    r->nids > STOREMSG_READ_IDS)
		return 0;
	for (i = 0; i < r->nids; i++)
		if (r->ids[i] <= 0)
			return 0;
	return 1;
}

struct ipc_wbuf *
storemsg_encode_read(uint32_t reqid, const struct storemsg_read *r)
{
	struct ipc_wbuf	*wb;
	uint32_t	 i;

	if (!storemsg_read_ok(r)) {
		errno = EINVAL;
		return NULL;
	}
	if ((wb = ipc_create(r->type, reqid, 16 + 8 * r->nids)) == NULL)
		return NULL;
	if (r->type == IMSG_STORE_PAGE) {
		ipc_add_i64(wb, r->after);
		ipc_add_u32(wb, r->limit);
		return storemsg_finish(wb);
	}
	ipc_add_u32(wb, r->nids);
	for (i = 0; i < r->nids; i++)
		ipc_add_i64(wb, r->ids[i]);
	return storemsg_finish(wb);
}

/* The parent's side: a worker is not trusted, every field is bounded. */
int
storemsg_decode_read(struct ipc_msg *msg, struct storemsg_read *r)
{
	uint32_t	 i;

	memset(r, 0, sizeof(*r));
	r->type = msg->hdr.type;
	if (msg->fd != -1)
		return storemsg_bad();
	if (r->type == IMSG_STORE_PAGE) {
		if (ipc_get_i64(msg, &r->after) == -1 ||
		    ipc_get_u32(msg, &r->limit) == -1)
			return storemsg_bad();
	} else if (r->type == IMSG_STORE_READ) {
		if (ipc_get_u32(msg, &r->nids) == -1 ||
		    r->nids > STOREMSG_READ_IDS)
			return storemsg_bad();
		for (i = 0; i < r->nids; i++)
			if (ipc_get_i64(msg, &r->ids[i]) == -1)
				return storemsg_bad();
	}
	if (ipc_get_end(msg) == -1 || !storemsg_read_ok(r))
		return storemsg_bad();
	return 0;
}

struct ipc_wbuf *
storemsg_encode_sync(uint32_t reqid)
{
	return ipc_create(IMSG_STORE_SYNC, reqid, 0);
}

int
storemsg_decode_sync(struct ipc_msg *msg)
{
	if (msg->hdr.type != IMSG_STORE_SYNC || msg->fd != -1)
		return storemsg_bad();
	return ipc_get_end(msg);
}

struct ipc_wbuf *
storemsg_encode_synced(uint32_t reqid, uint32_t status)
{
	struct ipc_wbuf	*wb;

	if (status != STORE_OK && status != STORE_UNAVAILABLE) {
		errno = EINVAL;
		return NULL;
	}
	if ((wb = ipc_create(IMSG_STORE_SYNCED, reqid, sizeof(status))) ==
	    NULL)
		return NULL;
	ipc_add_u32(wb, status);
	return storemsg_finish(wb);
}

int
storemsg_decode_synced(struct ipc_msg *msg, uint32_t *status)
{
	if (msg->hdr.type != IMSG_STORE_SYNCED || msg->fd != -1 ||
	    ipc_get_u32(msg, status) == -1 || (*status != STORE_OK &&
	    *status != STORE_UNAVAILABLE))
		return storemsg_bad();
	return ipc_get_end(msg);
}

/* The answer to a read, filled with storemsg_snap_add(). */
void
storemsg_items_init(struct storemsg_snap *s, uint32_t reqid, uint64_t seq)
{
	memset(s, 0, sizeof(*s));
	s->type = IMSG_STORE_ITEMS;
	s->reqid = reqid;
	s->seq = seq;
}

static int
storemsg_flags_ok(uint8_t flags, uint32_t count)
{
	if (flags & ~(STOREMSG_ITEMS_LAST | STOREMSG_ITEMS_FAILED))
		return 0;
	return !(flags & STOREMSG_ITEMS_FAILED) || count == 0;
}

/* The answer, even with no item in it (NULL and errno: out of memory). */
struct ipc_wbuf *
storemsg_items_take(struct storemsg_snap *s, uint8_t flags)
{
	if (!storemsg_flags_ok(flags, s->count)) {
		storemsg_snap_clear(s);
		errno = EINVAL;
		return NULL;
	}
	if (storemsg_snap_open(s) == -1)
		return NULL;
	ipc_add_u8(s->wb, flags);
	return storemsg_snap_take(s);
}

struct storemsg_count {
	storemsg_item_fn	 fn;
	void			*arg;
	uint32_t		 n;
};

static int
storemsg_count_item(void *arg, const struct storemsg_item *it)
{
	struct storemsg_count	*c = arg;

	c->n++;
	return c->fn(c->arg, it);
}

int
storemsg_decode_items(struct ipc_msg *msg, uint64_t *seq, uint8_t *flags,
    storemsg_item_fn fn, void *arg)
{
	struct storemsg_count	 c = { fn, arg, 0 };

	if (msg->hdr.type != IMSG_STORE_ITEMS || msg->fd != -1 ||
	    ipc_get_u64(msg, seq) == -1)
		return storemsg_bad();
	if (storemsg_get_items(msg, storemsg_count_item, &c) == -1)
		return -1;
	if (ipc_get_u8(msg, flags) == -1 || !storemsg_flags_ok(*flags, c.n))
		return storemsg_bad();
	return ipc_get_end(msg);
}
