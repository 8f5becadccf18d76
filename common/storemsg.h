/*
 * The TODO store's messages, both directions, in one place: the item, the
 * workers' write requests (CREATE, UPDATE, DELETE), the parent's REPLY,
 * the CHANGE broadcast, the SNAPSHOT a new worker's cache starts from, and
 * the reads (READ, PAGE) a worker whose cache does not hold every item
 * sends, answered with ITEMS.
 *
 * Encoders return a message ready for ipc_send() (NULL and errno when
 * the values are out of bounds or memory is short); they refuse what the
 * decoders would refuse, so a worker never sends a request its parent
 * must treat as hostile.  Decoders return 0, or -1 with errno EBADMSG;
 * their strings point into the message and live as long as it does.
 * The item decoders (SNAPSHOT, ITEMS) set the sequence before they give
 * the first item to their callback.
 *
 * Wire form (ipc_add_* order):
 *	item		i64 id, str task, u8 done
 *	CREATE		str cn, str task, u8 done
 *	UPDATE		str cn, i64 id, u32 mask, str task, u8 done
 *			(task "" without STORE_SET_TASK, done 0 without
 *			STORE_SET_DONE)
 *	DELETE		str cn, i64 id
 *	REPLY		u32 status, u64 seq, item if status is STORE_OK
 *	CHANGE		u64 seq, u32 op, item (i64 id only for a delete)
 *	SNAPSHOT	u64 seq, u32 count, count items
 *	SNAPSHOT_END	u64 seq, u8 complete (every item was sent)
 *	READ		u32 count, count i64 ids
 *	PAGE		i64 after, u32 limit
 *	ITEMS		u64 seq, u32 count, count items, u8 flags
 *	SYNC		(empty)
 *	SYNCED		u32 status (STORE_OK or STORE_UNAVAILABLE)
 */
#ifndef TODOD_STOREMSG_H
#define TODOD_STOREMSG_H

#include <stddef.h>
#include <stdint.h>

#include "ipc.h"
#include "proto.h"

/*
 * X.509 bounds a commonName to 64 characters (ub-common-name); in UTF-8
 * that is at most 256 bytes.  A worker claiming a longer one is lying.
 */
#define STOREMSG_CN_MAX		256

/*
 * Reads, worker -> parent, past a cache that does not hold every item:
 * by id (the misses of one turn of the worker's loop, at most
 * STOREMSG_READ_IDS), or a page of the list in id order (the items after
 * `after`, at most `limit`; the parent may send fewer).  A worker keeps
 * at most STOREMSG_READS_MAX unanswered; the parent kills one with more.
 * Their answers then fit the bound of the worker's queue (PROC_QUEUE_MAX):
 * 8 reads of 64 items of at most 4 KiB, or pages the parent cuts at
 * 128 KiB.
 */
#define STOREMSG_READ_IDS	64
#define STOREMSG_PAGE_MAX	4096
#define STOREMSG_READS_MAX	8

/* ITEMS flags */
#define STOREMSG_ITEMS_LAST	0x1	/* a page: nothing after it */
#define STOREMSG_ITEMS_FAILED	0x2	/* the store could not answer */

struct storemsg_item {
	int64_t		 id;		/* > 0 */
	const char	*task;
	size_t		 tasklen;	/* at most TODO_TASK_MAX */
	int		 done;
};

/* A write, worker -> parent; peerid carries the worker's request id. */
struct storemsg_req {
	uint32_t	 type;		/* IMSG_STORE_CREATE, UPDATE, DELETE */
	const char	*cn;		/* the client; "" when it has none */
	int64_t		 id;		/* UPDATE, DELETE */
	uint32_t	 mask;		/* UPDATE: STORE_SET_* */
	const char	*task;		/* NULL unless CREATE or SET_TASK */
	size_t		 tasklen;
	int		 done;
};

struct storemsg_reply {
	uint32_t		 status;	/* enum store_status */
	uint64_t		 seq;
	struct storemsg_item	 item;		/* STORE_OK */
};

struct storemsg_change {
	uint64_t		 seq;
	uint32_t		 op;		/* enum store_op */
	struct storemsg_item	 item;		/* id only for a delete */
};

struct storemsg_read {
	uint32_t	 type;		/* IMSG_STORE_READ or IMSG_STORE_PAGE */
	uint32_t	 nids;		/* READ: 1..STOREMSG_READ_IDS */
	int64_t		 ids[STOREMSG_READ_IDS];	/* > 0 */
	int64_t		 after;		/* PAGE: >= 0 */
	uint32_t	 limit;		/* PAGE: 1..STOREMSG_PAGE_MAX */
};

/* A SNAPSHOT or ITEMS message being filled, item by item. */
struct storemsg_snap {
	struct ipc_wbuf		*wb;
	uint32_t		 type;
	uint32_t		 reqid;
	uint64_t		 seq;
	uint32_t		 count;
};

typedef int	(*storemsg_item_fn)(void *, const struct storemsg_item *);

struct ipc_wbuf	*storemsg_encode_request(uint32_t,
		    const struct storemsg_req *);
int		 storemsg_decode_request(struct ipc_msg *,
		    struct storemsg_req *);
struct ipc_wbuf	*storemsg_encode_reply(uint32_t,
		    const struct storemsg_reply *);
int		 storemsg_decode_reply(struct ipc_msg *,
		    struct storemsg_reply *);
struct ipc_wbuf	*storemsg_encode_change(const struct storemsg_change *);
int		 storemsg_decode_change(struct ipc_msg *,
		    struct storemsg_change *);

void		 storemsg_snap_init(struct storemsg_snap *, uint64_t);
int		 storemsg_snap_add(struct storemsg_snap *,
		    const struct storemsg_item *);
size_t		 storemsg_snap_size(const struct storemsg_snap *);
struct ipc_wbuf	*storemsg_snap_take(struct storemsg_snap *);
void		 storemsg_snap_clear(struct storemsg_snap *);
int		 storemsg_decode_snapshot(struct ipc_msg *, uint64_t *,
		    storemsg_item_fn, void *);
struct ipc_wbuf	*storemsg_encode_snapshot_end(uint64_t, int);
int		 storemsg_decode_snapshot_end(struct ipc_msg *, uint64_t *,
		    int *);

struct ipc_wbuf	*storemsg_encode_read(uint32_t, const struct storemsg_read *);
int		 storemsg_decode_read(struct ipc_msg *,
		    struct storemsg_read *);
void		 storemsg_items_init(struct storemsg_snap *, uint32_t,
		    uint64_t);
struct ipc_wbuf	*storemsg_items_take(struct storemsg_snap *, uint8_t);
int		 storemsg_decode_items(struct ipc_msg *, uint64_t *,
		    uint8_t *, storemsg_item_fn, void *);

struct ipc_wbuf	*storemsg_encode_sync(uint32_t);
int		 storemsg_decode_sync(struct ipc_msg *);
struct ipc_wbuf	*storemsg_encode_synced(uint32_t, uint32_t);
int		 storemsg_decode_synced(struct ipc_msg *, uint32_t *);

int		 storemsg_item_ok(const struct storemsg_item *);

#endif
