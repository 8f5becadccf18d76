/*
 * Unit tests for common/storemsg.c: every store message encoded by one
 * end and decoded by the other across a real channel, the bounds the
 * encoders keep, and malformed messages (truncated, extra bytes, a CN or
 * task too long, a bad mask, a missing terminator) that the decoders must
 * refuse: the parent's decoder is its defence against a worker.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "ipcpair.h"
#include "proto.h"
#include "storemsg.h"
#include "tap.h"

static struct ipc	 wk, pa;	/* the worker's end, the parent's end */
static char		 cn256[STOREMSG_CN_MAX + 1];	/* 64 x U+1F600 */
static char		 task4096[TODO_TASK_MAX + 2];

/* Send wb from one end, decode it at the other. */
static int
over(struct ipc *from, struct ipc *to, struct ipc_wbuf *wb,
    struct ipc_msg *msg)
{
	if (wb == NULL || ipc_send(from, wb, -1) == -1)
		return -1;
	return xfer(from, to, msg);
}

static int
req_roundtrip(const struct storemsg_req *r, struct storemsg_req *got,
    uint32_t *reqid)
{
	struct ipc_msg	 msg;

	if (over(&wk, &pa, storemsg_encode_request(77, r), &msg) == -1 ||
	    storemsg_decode_request(&msg, got) == -1)
		return -1;
	*reqid = msg.hdr.peerid;
	return 0;
}

static int
same_text(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static void
test_requests(void)
{
	struct storemsg_req	 r, g;
	uint32_t		 id;

	memset(&r, 0, sizeof(r));
	r.type = IMSG_STORE_CREATE;
	r.cn = "mtls-client";
	r.task = "buy milk";
	r.tasklen = 8;
	r.done = 1;
	TAP_OK(req_roundtrip(&r, &g, &id) == 0 && id == 77 &&
	    g.type == IMSG_STORE_CREATE && strcmp(g.cn, r.cn) == 0 &&
	    same_text(g.task, g.tasklen, "buy milk", 8) && g.done == 1,
	    "CREATE round-trips");

	r.cn = cn256;
	r.task = task4096;
	r.tasklen = TODO_TASK_MAX;
	TAP_OK(req_roundtrip(&r, &g, &id) == 0 && strcmp(g.cn, cn256) == 0 &&
	    g.tasklen == TODO_TASK_MAX,
	    "CREATE with a 256-byte CN and a 4096-byte task");

	r.cn = "";
	r.task = "x";
	r.tasklen = 1;
	TAP_OK(req_roundtrip(&r, &g, &id) == 0 && *g.cn == '\0',
	    "CREATE from a client without CN");

	r.type = IMSG_STORE_UPDATE;
	r.cn = "c";
	r.id = 42;
	r.mask = STORE_SET_TASK;
	r.task = "new";
	r.tasklen = 3;
	r.done = 1;	/* not set: must not travel */
	TAP_OK(req_roundtrip(&r, &g, &id) == 0 && g.id == 42 &&
	    g.mask == STORE_SET_TASK &&
	    same_text(g.task, g.tasklen, "new", 3) && g.done == 0,
	    "UPDATE of the task alone round-trips");

	r.mask = STORE_SET_DONE;
	r.task = NULL;
	r.tasklen = 0;
	TAP_OK(req_roundtrip(&r, &g, &id) == 0 && g.mask == STORE_SET_DONE &&
	    g.task == NULL && g.done == 1, "UPDATE of done alone round-trips");

	r.mask = STORE_SET_TASK | STORE_SET_DONE;
	r.task = "both";
	r.tasklen = 4;
	r.done = 0;
	TAP_OK(req_roundtrip(&r, &g, &id) == 0 &&
	    g.mask == (STORE_SET_TASK | STORE_SET_DONE) &&
	    same_text(g.task, g.tasklen, "both", 4) && g.done == 0,
	    "UPDATE of both round-trips");

	memset(&r, 0, sizeof(r));
	r.type = IMSG_STORE_DELETE;
	r.cn = "c";
	r.id = INT64_MAX;
	TAP_OK(req_roundtrip(&r, &g, &id) == 0 && g.type == IMSG_STORE_DELETE &&
	    g.id == INT64_MAX && g.task == NULL, "DELETE round-trips");
}

/* The encoder refuses what the parent would refuse: nothing is sent. */
static void
test_request_bounds(void)
{
	static char		 longcn[STOREMSG_CN_MAX + 2];
	struct storemsg_req	 good, r;

	memset(longcn, 'c', sizeof(longcn) - 1);
	memset(&good, 0, sizeof(good));
	good.type = IMSG_STORE_UPDATE;
	good.cn = "c";
	good.id = 1;
	good.mask = STORE_SET_TASK;
	good.task = "t";
	good.tasklen = 1;
#define REFUSED(what, change) do {					\
	r = good;							\
	change;								\
	errno = 0;							\
	TAP_OK(storemsg_encode_request(1, &r) == NULL &&		\
	    errno == EMSGSIZE, "encoder refuses %s", what);		\
} while (0)
	REFUSED("a CN over 256 bytes", r.cn = longcn);
	REFUSED("a task over 4096 bytes", (r.task = task4096,
	    r.tasklen = TODO_TASK_MAX + 1));
	REFUSED("an empty task", r.tasklen = 0);
	REFUSED("a task with a NUL", (r.task = "a\0b", r.tasklen = 3));
	REFUSED("an empty mask", r.mask = 0);
	REFUSED("an unknown mask bit", r.mask |= 0x4);
	REFUSED("id 0", r.id = 0);
	REFUSED("a negative id", r.id = -3);
	REFUSED("done 2", r.done = 2);
	REFUSED("another type", r.type = IMSG_STORE_REPLY);
	REFUSED("no CN", r.cn = NULL);
#undef REFUSED
}

enum field { F_CN, F_ID, F_MASK, F_TASK, F_DONE, F_END };

/* A write request built field by field, some of them wrong. */
struct craft {
	uint32_t	 type;
	const char	*cn;		/* NULL: data without terminator */
	size_t		 cnlen;
	int64_t		 id;
	uint32_t	 mask;
	const char	*task;
	uint8_t		 done;
	int		 cut;		/* stop before this field */
	int		 extra;		/* a byte after the end */
};

static struct ipc_wbuf *
craft_request(const struct craft *c)
{
	struct ipc_wbuf	*wb;

	wb = ipc_create(c->type, 1, 0);
	if (c->cut > F_CN)
		c->cn != NULL ? ipc_add_strn(wb, c->cn, c->cnlen) :
		    ipc_add_data(wb, "cn", 2);
	if (c->cut > F_ID && c->type != IMSG_STORE_CREATE)
		ipc_add_i64(wb, c->id);
	if (c->cut > F_MASK && c->type == IMSG_STORE_UPDATE)
		ipc_add_u32(wb, c->mask);
	if (c->cut > F_TASK && c->type != IMSG_STORE_DELETE)
		c->task != NULL ? ipc_add_str(wb, c->task) :
		    ipc_add_data(wb, "task", 4);
	if (c->cut > F_DONE && c->type != IMSG_STORE_DELETE)
		ipc_add_u8(wb, c->done);
	if (c->extra)
		ipc_add_u8(wb, 0);
	return wb;
}

static int
craft_decodes(const struct craft *c, int withfd)
{
	struct storemsg_req	 r;
	struct ipc_msg		 msg;
	int			 fd = -1, rv;

	if (withfd && (fd = open("/dev/null", O_RDONLY)) == -1)
		abort();
	if (ipc_send(&wk, craft_request(c), fd) == -1 ||
	    xfer(&wk, &pa, &msg) == -1)
		return -2;
	rv = storemsg_decode_request(&msg, &r);
	ipc_msg_free(&msg);
	return rv;
}

static void
test_request_malformed(void)
{
	static const uint32_t	 types[] = { IMSG_STORE_CREATE,
				    IMSG_STORE_UPDATE, IMSG_STORE_DELETE };
	static const char	*names[] = { "CREATE", "UPDATE", "DELETE" };
	static char		 big[1024 * 1024];
	struct craft		 good, c;
	int			 t, cut, ok;

	memset(big, 'c', sizeof(big));
	for (t = 0; t < 3; t++) {
		memset(&good, 0, sizeof(good));
		good.type = types[t];
		good.cn = "mtls-client";
		good.cnlen = strlen(good.cn);
		good.id = 5;
		good.mask = STORE_SET_TASK | STORE_SET_DONE;
		good.task = "task";
		good.done = 1;
		good.cut = F_END;
		TAP_OK(craft_decodes(&good, 0) == 0, "%s: control accepted",
		    names[t]);
		ok = 1;
		for (cut = F_CN; cut < F_END; cut++) {
			c = good;
			c.cut = cut;
			if (t == 2 && cut > F_ID)
				break;	/* a DELETE ends after its id */
			ok &= craft_decodes(&c, 0) == -1;
		}
		TAP_OK(ok, "%s: every truncation refused", names[t]);
		c = good;
		c.extra = 1;
		TAP_OK(craft_decodes(&c, 0) == -1,
		    "%s: a byte left over refused", names[t]);
		c = good;
		c.cnlen = STOREMSG_CN_MAX + 1;
		c.cn = big;
		TAP_OK(craft_decodes(&c, 0) == -1,
		    "%s: a 257-byte CN refused", names[t]);
		c.cnlen = sizeof(big) - 1;
		TAP_OK(craft_decodes(&c, 0) == -1,
		    "%s: a 1 MB CN refused", names[t]);
		c = good;
		c.cn = NULL;
		TAP_OK(craft_decodes(&c, 0) == -1,
		    "%s: a CN without terminator refused", names[t]);
		TAP_OK(craft_decodes(&good, 1) == -1,
		    "%s: a descriptor attached refused", names[t]);
	}
}

static void
test_update_malformed(void)
{
	struct craft	 good, c;

	memset(&good, 0, sizeof(good));
	good.type = IMSG_STORE_UPDATE;
	good.cn = "c";
	good.cnlen = 1;
	good.id = 9;
	good.mask = STORE_SET_TASK;
	good.task = "t";
	good.cut = F_END;
#define BAD(what, change) do {						\
	c = good;							\
	change;								\
	TAP_OK(craft_decodes(&c, 0) == -1, "UPDATE: %s refused", what);	\
} while (0)
	BAD("mask 0", c.mask = 0);
	BAD("an unknown mask bit", c.mask = STORE_SET_TASK | 0x80);
	BAD("id 0", c.id = 0);
	BAD("a negative id", c.id = -1);
	BAD("done 2", (c.mask = STORE_SET_DONE, c.task = "", c.done = 2));
	BAD("done without its mask bit", c.done = 1);
	BAD("a task without its mask bit", c.mask = STORE_SET_DONE);
	BAD("an empty task with its mask bit", c.task = "");
	BAD("a 4097-byte task", c.task = task4096);
	BAD("a task without terminator", c.task = NULL);
	BAD("another type", c.type = IMSG_STORE_CHANGE);
#undef BAD
	c = good;
	c.type = IMSG_STORE_CREATE;
	c.task = "";
	c.cut = F_END;
	TAP_OK(craft_decodes(&c, 0) == -1, "CREATE: an empty task refused");
}

static void
test_replies(void)
{
	struct storemsg_reply	 r, g;
	struct ipc_msg		 msg;
	int			 ok;

	memset(&r, 0, sizeof(r));
	r.status = STORE_OK;
	r.seq = 1234;
	r.item.id = 3;
	r.item.task = "buy milk";
	r.item.tasklen = 8;
	r.item.done = 1;
	TAP_OK(over(&pa, &wk, storemsg_encode_reply(66, &r), &msg) == 0 &&
	    msg.hdr.peerid == 66 && storemsg_decode_reply(&msg, &g) == 0 &&
	    g.status == STORE_OK && g.seq == 1234 && g.item.id == 3 &&
	    same_text(g.item.task, g.item.tasklen, "buy milk", 8) &&
	    g.item.done == 1, "REPLY ok with its item round-trips");
	r.status = STORE_NOTFOUND;
	r.seq = 0;
	ok = over(&pa, &wk, storemsg_encode_reply(1, &r), &msg) == 0 &&
	    storemsg_decode_reply(&msg, &g) == 0 &&
	    g.status == STORE_NOTFOUND && g.item.id == 0;
	r.status = STORE_FAILED;
	ok &= over(&pa, &wk, storemsg_encode_reply(1, &r), &msg) == 0 &&
	    storemsg_decode_reply(&msg, &g) == 0 && g.status == STORE_FAILED;
	r.status = STORE_UNAVAILABLE;
	ok &= over(&pa, &wk, storemsg_encode_reply(1, &r), &msg) == 0 &&
	    storemsg_decode_reply(&msg, &g) == 0 &&
	    g.status == STORE_UNAVAILABLE;
	TAP_OK(ok, "REPLY not found, failed and unavailable round-trip");
	r.status = 9;
	TAP_OK(storemsg_encode_reply(1, &r) == NULL,
	    "encoder refuses an unknown status");
	r.status = STORE_OK;
	r.item.id = 0;
	TAP_OK(storemsg_encode_reply(1, &r) == NULL,
	    "encoder refuses an item with id 0");
}

static int
raw_reply(uint32_t status, int item, int extra)
{
	struct storemsg_reply	 g;
	struct ipc_wbuf		*wb;
	struct ipc_msg		 msg;

	wb = ipc_create(IMSG_STORE_REPLY, 1, 0);
	ipc_add_u32(wb, status);
	ipc_add_u64(wb, 1);
	if (item) {
		ipc_add_i64(wb, 1);
		ipc_add_str(wb, "t");
		ipc_add_u8(wb, 0);
	}
	if (extra)
		ipc_add_u8(wb, 0);
	if (over(&pa, &wk, wb, &msg) == -1)
		return -2;
	return storemsg_decode_reply(&msg, &g);
}

static void
test_reply_malformed(void)
{
	TAP_OK(raw_reply(STORE_OK, 1, 0) == 0, "REPLY: control accepted");
	TAP_OK(raw_reply(STORE_OK, 0, 0) == -1, "REPLY: ok without item "
	    "refused");
	TAP_OK(raw_reply(STORE_NOTFOUND, 1, 0) == -1,
	    "REPLY: not found with an item refused");
	TAP_OK(raw_reply(STORE_OK, 1, 1) == -1,
	    "REPLY: a byte left over refused");
	TAP_OK(raw_reply(7, 0, 0) == -1, "REPLY: unknown status refused");
}

static void
test_changes(void)
{
	struct storemsg_change	 c, g;
	struct ipc_msg		 msg;
	struct ipc_wbuf		*wb;
	uint32_t		 op;

	memset(&c, 0, sizeof(c));
	c.item.id = 8;
	c.item.task = task4096;
	c.item.tasklen = TODO_TASK_MAX;
	for (op = STORE_OP_CREATE; op <= STORE_OP_UPDATE; op++) {
		c.seq = 100 + op;
		c.op = op;
		c.item.done = op == STORE_OP_UPDATE;
		TAP_OK(over(&pa, &wk, storemsg_encode_change(&c), &msg) == 0 &&
		    storemsg_decode_change(&msg, &g) == 0 && g.seq == c.seq &&
		    g.op == op && g.item.id == 8 &&
		    g.item.tasklen == TODO_TASK_MAX &&
		    g.item.done == c.item.done, "CHANGE op %u round-trips", op);
	}
	c.op = STORE_OP_DELETE;
	c.item.task = NULL;
	c.item.tasklen = 0;
	TAP_OK(over(&pa, &wk, storemsg_encode_change(&c), &msg) == 0 &&
	    msg.len == 8 + 4 + 8 && storemsg_decode_change(&msg, &g) == 0 &&
	    g.op == STORE_OP_DELETE && g.item.id == 8,
	    "CHANGE delete carries the id alone");
	c.op = 0;
	TAP_OK(storemsg_encode_change(&c) == NULL,
	    "encoder refuses an unknown op");

	wb = ipc_create(IMSG_STORE_CHANGE, 0, 0);
	ipc_add_u64(wb, 1);
	ipc_add_u32(wb, 9);
	ipc_add_i64(wb, 1);
	TAP_OK(over(&pa, &wk, wb, &msg) == 0 &&
	    storemsg_decode_change(&msg, &g) == -1,
	    "CHANGE: unknown op refused");
	wb = ipc_create(IMSG_STORE_CHANGE, 0, 0);
	ipc_add_u64(wb, 1);
	ipc_add_u32(wb, STORE_OP_DELETE);
	ipc_add_i64(wb, 1);
	ipc_add_u8(wb, 0);
	TAP_OK(over(&pa, &wk, wb, &msg) == 0 &&
	    storemsg_decode_change(&msg, &g) == -1,
	    "CHANGE: a byte after a delete refused");
	wb = ipc_create(IMSG_STORE_CHANGE, 0, 0);
	ipc_add_u64(wb, 1);
	ipc_add_u32(wb, STORE_OP_CREATE);
	ipc_add_i64(wb, 1);
	ipc_add_str(wb, task4096);
	ipc_add_u8(wb, 0);
	TAP_OK(over(&pa, &wk, wb, &msg) == 0 &&
	    storemsg_decode_change(&msg, &g) == -1,
	    "CHANGE: a 4097-byte task refused");
}

struct seen {
	int64_t		 next;		/* id expected */
	int		 bad;
};

static int
snap_item(void *arg, const struct storemsg_item *it)
{
	struct seen	*s = arg;
	char		 want[32];
	int		 n;

	n = snprintf(want, sizeof(want), "task %lld", (long long)s->next);
	if (it->id != s->next || !same_text(it->task, it->tasklen, want, n) ||
	    it->done != (int)(it->id & 1))
		s->bad++;
	s->next++;
	return 0;
}

static void
test_snapshot(void)
{
	struct storemsg_snap	 snap;
	struct storemsg_item	 it;
	struct ipc_msg		 msg;
	struct seen		 seen = { 1, 0 };
	char			 task[32];
	uint64_t		 seq;
	int			 i, msgs = 0, ok = 1, complete;

	storemsg_snap_init(&snap, 555);
	TAP_OK(storemsg_snap_take(&snap) == NULL, "an empty snapshot is no "
	    "message");
	for (i = 1; i <= 1000; i++) {
		it.id = i;
		it.tasklen = snprintf(task, sizeof(task), "task %d", i);
		it.task = task;
		it.done = i & 1;
		ok &= storemsg_snap_add(&snap, &it) == 0;
		if (i % 300 == 0 || i == 1000) {
			/* a message per chunk, as the parent cuts them */
			ok &= over(&pa, &wk, storemsg_snap_take(&snap),
			    &msg) == 0 && storemsg_decode_snapshot(&msg, &seq,
			    snap_item, &seen) == 0 && seq == 555;
			msgs++;
		}
	}
	TAP_OK(ok && msgs == 4 && seen.next == 1001 && seen.bad == 0,
	    "SNAPSHOT of 1000 items in 4 messages round-trips");
	it.id = 0;
	TAP_OK(storemsg_snap_add(&snap, &it) == -1 && errno == EINVAL &&
	    storemsg_snap_size(&snap) == 0, "an item with id 0 is refused");
	it.id = 1;
	it.task = "a\0b";
	it.tasklen = 3;
	TAP_OK(storemsg_snap_add(&snap, &it) == -1 && errno == EINVAL,
	    "an item whose task holds a NUL is refused");
	it.task = "ok";
	it.tasklen = 2;
	ok = storemsg_snap_add(&snap, &it) == 0;
	storemsg_snap_clear(&snap);
	TAP_OK(ok && storemsg_snap_size(&snap) == 0 &&
	    storemsg_snap_take(&snap) == NULL, "a cleared snapshot is empty");

	TAP_OK(over(&pa, &wk, storemsg_encode_snapshot_end(556, 1), &msg) ==
	    0 && storemsg_decode_snapshot_end(&msg, &seq, &complete) == 0 &&
	    seq == 556 && complete == 1, "SNAPSHOT_END round-trips");
	TAP_OK(over(&pa, &wk, storemsg_encode_snapshot_end(557, 0), &msg) ==
	    0 && storemsg_decode_snapshot_end(&msg, &seq, &complete) == 0 &&
	    seq == 557 && complete == 0,
	    "SNAPSHOT_END of a snapshot cut short round-trips");
}

static int
raw_snapshot(uint32_t count, int items, int extra)
{
	struct ipc_wbuf	*wb;
	struct ipc_msg	 msg;
	struct seen	 seen = { 1, 0 };
	uint64_t	 seq;
	char		 task[32];
	int		 i;

	wb = ipc_create(IMSG_STORE_SNAPSHOT, 0, 0);
	ipc_add_u64(wb, 1);
	ipc_add_u32(wb, count);
	for (i = 1; i <= items; i++) {
		snprintf(task, sizeof(task), "task %d", i);
		ipc_add_i64(wb, i);
		ipc_add_str(wb, task);
		ipc_add_u8(wb, i & 1);
	}
	if (extra)
		ipc_add_u8(wb, 0);
	if (over(&pa, &wk, wb, &msg) == -1)
		return -2;
	return storemsg_decode_snapshot(&msg, &seq, snap_item, &seen);
}

static void
test_snapshot_malformed(void)
{
	struct ipc_msg	 msg;
	uint64_t	 seq;

	TAP_OK(raw_snapshot(3, 3, 0) == 0, "SNAPSHOT: control accepted");
	TAP_OK(raw_snapshot(4, 3, 0) == -1, "SNAPSHOT: count past the items "
	    "refused");
	TAP_OK(raw_snapshot(UINT32_MAX, 3, 0) == -1,
	    "SNAPSHOT: a count no payload could hold refused");
	TAP_OK(raw_snapshot(2, 3, 0) == -1,
	    "SNAPSHOT: an item past the count refused");
	TAP_OK(raw_snapshot(3, 3, 1) == -1,
	    "SNAPSHOT: a byte left over refused");
	struct ipc_wbuf	*wb;
	int		 complete;

	TAP_OK(over(&pa, &wk, ipc_create(IMSG_STORE_SNAPSHOT_END, 0, 0),
	    &msg) == 0 && storemsg_decode_snapshot_end(&msg, &seq,
	    &complete) == -1, "SNAPSHOT_END without its sequence refused");
	wb = ipc_create(IMSG_STORE_SNAPSHOT_END, 0, 0);
	ipc_add_u64(wb, 1);
	ipc_add_u8(wb, 2);
	TAP_OK(over(&pa, &wk, wb, &msg) == 0 &&
	    storemsg_decode_snapshot_end(&msg, &seq, &complete) == -1,
	    "SNAPSHOT_END: complete other than 0 or 1 refused");
}

static int
read_roundtrip(const struct storemsg_read *r, struct storemsg_read *g)
{
	struct ipc_msg	 msg;

	if (over(&wk, &pa, storemsg_encode_read(9, r), &msg) == -1 ||
	    msg.hdr.peerid != 9)
		return -1;
	return storemsg_decode_read(&msg, g);
}

static void
test_reads(void)
{
	struct storemsg_read	 r, g;
	int			 i;

	memset(&r, 0, sizeof(r));
	r.type = IMSG_STORE_READ;
	r.nids = STOREMSG_READ_IDS;
	for (i = 0; i < STOREMSG_READ_IDS; i++)
		r.ids[i] = INT64_MAX - i;
	TAP_OK(read_roundtrip(&r, &g) == 0 && g.type == IMSG_STORE_READ &&
	    g.nids == STOREMSG_READ_IDS && memcmp(g.ids, r.ids,
	    sizeof(r.ids)) == 0, "READ of %d ids round-trips",
	    STOREMSG_READ_IDS);
	r.nids = 0;
	TAP_OK(storemsg_encode_read(1, &r) == NULL && errno == EINVAL,
	    "READ of no id is not encoded");
	r.nids = STOREMSG_READ_IDS + 1;
	TAP_OK(storemsg_encode_read(1, &r) == NULL,
	    "READ of %d ids is not encoded", STOREMSG_READ_IDS + 1);
	r.nids = 2;
	r.ids[1] = 0;
	TAP_OK(storemsg_encode_read(1, &r) == NULL,
	    "READ of id 0 is not encoded");
	memset(&r, 0, sizeof(r));
	r.type = IMSG_STORE_PAGE;
	r.after = 12345;
	r.limit = STOREMSG_PAGE_MAX;
	TAP_OK(read_roundtrip(&r, &g) == 0 && g.type == IMSG_STORE_PAGE &&
	    g.after == 12345 && g.limit == STOREMSG_PAGE_MAX,
	    "PAGE round-trips");
	r.limit = STOREMSG_PAGE_MAX + 1;
	TAP_OK(storemsg_encode_read(1, &r) == NULL,
	    "PAGE past the limit bound is not encoded");
	r.limit = 0;
	TAP_OK(storemsg_encode_read(1, &r) == NULL,
	    "PAGE of limit 0 is not encoded");
	r.limit = 1;
	r.after = -1;
	TAP_OK(storemsg_encode_read(1, &r) == NULL,
	    "PAGE after a negative id is not encoded");
	r.type = IMSG_STORE_CREATE;
	TAP_OK(storemsg_encode_read(1, &r) == NULL,
	    "a read of another type is not encoded");
}

/* A raw READ with count claimed and n ids of value v, extra bytes. */
static int
raw_read(uint32_t count, int n, int64_t v, int extra)
{
	struct storemsg_read	 g;
	struct ipc_wbuf		*wb;
	struct ipc_msg		 msg;
	int			 i;

	wb = ipc_create(IMSG_STORE_READ, 1, 0);
	ipc_add_u32(wb, count);
	for (i = 0; i < n; i++)
		ipc_add_i64(wb, v);
	if (extra)
		ipc_add_u8(wb, 0);
	if (over(&wk, &pa, wb, &msg) == -1)
		return -2;
	return storemsg_decode_read(&msg, &g);
}

static int
raw_page(int64_t after, uint32_t limit, int truncate)
{
	struct storemsg_read	 g;
	struct ipc_wbuf		*wb;
	struct ipc_msg		 msg;

	wb = ipc_create(IMSG_STORE_PAGE, 1, 0);
	ipc_add_i64(wb, after);
	if (!truncate)
		ipc_add_u32(wb, limit);
	if (over(&wk, &pa, wb, &msg) == -1)
		return -2;
	return storemsg_decode_read(&msg, &g);
}

static void
test_reads_malformed(void)
{
	TAP_OK(raw_read(3, 3, 5, 0) == 0, "READ: control accepted");
	TAP_OK(raw_read(4, 3, 5, 0) == -1 && errno == EBADMSG,
	    "READ: a count past the ids refused");
	TAP_OK(raw_read(2, 3, 5, 0) == -1, "READ: an id past the count "
	    "refused");
	TAP_OK(raw_read(3, 3, 5, 1) == -1, "READ: a byte left over refused");
	TAP_OK(raw_read(0, 0, 5, 0) == -1, "READ: no id refused");
	TAP_OK(raw_read(STOREMSG_READ_IDS + 1, STOREMSG_READ_IDS + 1, 5,
	    0) == -1, "READ: %d ids refused (a batch is at most %d)",
	    STOREMSG_READ_IDS + 1, STOREMSG_READ_IDS);
	TAP_OK(raw_read(UINT32_MAX, 3, 5, 0) == -1,
	    "READ: a count of 2^32-1 refused");
	TAP_OK(raw_read(2, 2, -5, 0) == -1, "READ: a negative id refused");
	TAP_OK(raw_read(2, 2, 0, 0) == -1, "READ: id 0 refused");
	TAP_OK(raw_page(0, 10, 0) == 0, "PAGE: control accepted");
	TAP_OK(raw_page(-1, 10, 0) == -1, "PAGE: after -1 refused");
	TAP_OK(raw_page(0, 0, 0) == -1, "PAGE: limit 0 refused");
	TAP_OK(raw_page(0, STOREMSG_PAGE_MAX + 1, 0) == -1,
	    "PAGE: a limit past %d refused", STOREMSG_PAGE_MAX);
	TAP_OK(raw_page(0, 10, 1) == -1, "PAGE: without its limit refused");
}

static void
test_items(void)
{
	struct storemsg_snap	 s;
	struct storemsg_item	 it;
	struct ipc_msg		 msg;
	struct seen		 seen = { 1, 0 };
	struct ipc_wbuf		*wb;
	char			 task[32];
	uint64_t		 seq;
	uint8_t			 flags;
	int			 i, ok = 1;

	storemsg_items_init(&s, 42, 777);
	for (i = 1; i <= 64; i++) {
		snprintf(task, sizeof(task), "task %d", i);
		it.id = i;
		it.task = task;
		it.tasklen = strlen(task);
		it.done = i & 1;
		ok &= storemsg_snap_add(&s, &it) == 0;
	}
	TAP_OK(ok && over(&pa, &wk, storemsg_items_take(&s,
	    STOREMSG_ITEMS_LAST), &msg) == 0 && msg.hdr.peerid == 42 &&
	    storemsg_decode_items(&msg, &seq, &flags, snap_item, &seen) == 0 &&
	    seq == 777 && flags == STOREMSG_ITEMS_LAST && seen.next == 65 &&
	    seen.bad == 0, "ITEMS of 64 items round-trips with its request id");
	seen.next = 1;
	storemsg_items_init(&s, 43, 778);
	TAP_OK(over(&pa, &wk, storemsg_items_take(&s, 0), &msg) == 0 &&
	    storemsg_decode_items(&msg, &seq, &flags, snap_item, &seen) == 0 &&
	    seq == 778 && flags == 0 && seen.next == 1,
	    "ITEMS without an item round-trips");
	storemsg_items_init(&s, 44, 779);
	TAP_OK(over(&pa, &wk, storemsg_items_take(&s, STOREMSG_ITEMS_FAILED),
	    &msg) == 0 && storemsg_decode_items(&msg, &seq, &flags, snap_item,
	    &seen) == 0 && flags == STOREMSG_ITEMS_FAILED,
	    "ITEMS saying the store failed round-trips");
	storemsg_items_init(&s, 45, 780);
	it.id = 1;
	storemsg_snap_add(&s, &it);
	TAP_OK(storemsg_items_take(&s, STOREMSG_ITEMS_FAILED) == NULL &&
	    errno == EINVAL, "ITEMS both failed and holding items is not "
	    "encoded");
	storemsg_items_init(&s, 46, 781);
	TAP_OK(storemsg_items_take(&s, 0x4) == NULL,
	    "ITEMS with an unknown flag is not encoded");
	wb = ipc_create(IMSG_STORE_ITEMS, 1, 0);
	ipc_add_u64(wb, 1);
	ipc_add_u32(wb, 0);
	ipc_add_u8(wb, 0x80);
	TAP_OK(over(&pa, &wk, wb, &msg) == 0 && storemsg_decode_items(&msg,
	    &seq, &flags, snap_item, &seen) == -1,
	    "ITEMS: an unknown flag refused");
	wb = ipc_create(IMSG_STORE_ITEMS, 1, 0);
	ipc_add_u64(wb, 1);
	ipc_add_u32(wb, 0);
	TAP_OK(over(&pa, &wk, wb, &msg) == 0 && storemsg_decode_items(&msg,
	    &seq, &flags, snap_item, &seen) == -1,
	    "ITEMS: without its flags refused");
	wb = ipc_create(IMSG_STORE_ITEMS, 1, 0);
	ipc_add_u64(wb, 1);
	ipc_add_u32(wb, 5);
	ipc_add_u8(wb, 0);
	TAP_OK(over(&pa, &wk, wb, &msg) == 0 && storemsg_decode_items(&msg,
	    &seq, &flags, snap_item, &seen) == -1,
	    "ITEMS: a count past the payload refused");
}

static void
test_sync(void)
{
	struct ipc_wbuf	*wb;
	struct ipc_msg	 msg;
	uint32_t	 status;

	TAP_OK(over(&wk, &pa, storemsg_encode_sync(7), &msg) == 0 &&
	    msg.hdr.peerid == 7 && storemsg_decode_sync(&msg) == 0,
	    "SYNC round-trips with its request id");
	wb = ipc_create(IMSG_STORE_SYNC, 1, 0);
	ipc_add_u8(wb, 0);
	TAP_OK(over(&wk, &pa, wb, &msg) == 0 &&
	    storemsg_decode_sync(&msg) == -1, "SYNC with a payload refused");
	TAP_OK(over(&pa, &wk, storemsg_encode_synced(9, STORE_UNAVAILABLE),
	    &msg) == 0 && storemsg_decode_synced(&msg, &status) == 0 &&
	    status == STORE_UNAVAILABLE && msg.hdr.peerid == 9,
	    "SYNCED round-trips");
	TAP_OK(storemsg_encode_synced(9, STORE_NOTFOUND) == NULL &&
	    errno == EINVAL, "SYNCED with another status is not encoded");
	wb = ipc_create(IMSG_STORE_SYNCED, 1, 0);
	ipc_add_u32(wb, STORE_FAILED);
	TAP_OK(over(&pa, &wk, wb, &msg) == 0 &&
	    storemsg_decode_synced(&msg, &status) == -1,
	    "SYNCED with another status refused");
	TAP_OK(over(&pa, &wk, ipc_create(IMSG_STORE_SYNCED, 1, 0), &msg) ==
	    0 && storemsg_decode_synced(&msg, &status) == -1,
	    "SYNCED without its status refused");
}

int
main(void)
{
	memset(cn256, 0, sizeof(cn256));
	while (strlen(cn256) < STOREMSG_CN_MAX)
		strlcat(cn256, "\xf0\x9f\x98\x80", sizeof(cn256));
	memset(task4096, 't', TODO_TASK_MAX + 1);
	pair(&wk, &pa);
	test_requests();
	test_request_bounds();
	test_request_malformed();
	test_update_malformed();
	test_replies();
	test_reply_malformed();
	test_changes();
	test_snapshot();
	test_snapshot_malformed();
	test_sync();
	test_reads();
	test_reads_malformed();
	test_items();
	ipc_clear(&wk);
	ipc_clear(&pa);
	return tap_done();
}
