/*
 * The parent's side of the TODO store: the workers' write requests,
 * committed in groups, the changes broadcast to every worker's cache, the
 * snapshot a new worker starts from (what fits its cache), and the reads
 * of workers whose cache does not hold every item.
 */
#ifndef TODOD_PSTORE_H
#define TODOD_PSTORE_H

#include <sys/queue.h>

#include <event.h>
#include <time.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "ipc.h"
#include "proc.h"
#include "storemsg.h"

struct metrics;
struct proc;
struct proc_group;
struct shm_state;
struct store;

struct pstore_op;
TAILQ_HEAD(pstore_ops, pstore_op);
struct pstore_sync;
TAILQ_HEAD(pstore_syncs, pstore_sync);
struct pstore_read;
TAILQ_HEAD(pstore_reads, pstore_read);

/* What one worker has asked to read: its bounds. */
struct pstore_reader {
	pid_t			 pid;
	int			 outstanding;
	double			 tokens;
	struct timespec		 last;
	uint64_t		 refused;
};

struct pstore {
	struct store_backend	 be;		/* opened by the caller */
	struct shm_state	*state;		/* what workers read of it */
	int			 state_fd;
	struct proc_group	*workers;
	struct metrics		*metrics;
	struct pstore_ops	 ops;		/* read since, to commit */
	int			 nops;
	struct pstore_ops	 group;		/* with the back end */
	int			 ngroup;
	int			 busy;
	struct timespec		 t0;		/* when the group went */
	struct event		 commit_ev;
	uint64_t		 seq;
	/* GETs waiting to see the other nodes' writes (shared store) */
	struct pstore_syncs	 sync_next;	/* for the next catch-up */
	struct pstore_syncs	 sync_cur;	/* for the one in flight */
	int			 nsync;
	int			 syncing;
	/* new workers' snapshots, read in the event loop (PostgreSQL) */
	struct event		 snap_ev;
	struct event		 snap_retry;
	int			 snapping;
	uint8_t			 loading[PROC_MAX];	/* by worker id - 1 */
	pid_t			 loadpid[PROC_MAX];
	size_t			 loadsent[PROC_MAX];	/* chunks sent */
	struct storemsg_snap	 snaps[PROC_MAX];
	size_t			 loadcost[PROC_MAX];	/* of what was sent */
	uint8_t			 loadcut[PROC_MAX];	/* not every item */
	size_t			 cache_size;	/* the workers' (snapshot) */
	/* reads past the workers' caches, one at a time with the back end */
	struct pstore_reads	 reads;
	struct pstore_read	*reading;
	struct event		 read_ev;
	struct pstore_reader	 readers[PROC_MAX];
};

void	pstore_init(struct pstore *, struct event_base *, struct proc_group *,
	    struct metrics *);
void	pstore_request(struct pstore *, struct proc *, struct ipc_msg *);
void	pstore_read_request(struct pstore *, struct proc *, struct ipc_msg *);
void	pstore_worker_start(struct pstore *, struct proc *);
void	pstore_child_gone(struct pstore *, struct proc *);
void	pstore_sync_request(struct pstore *, struct proc *, struct ipc_msg *);
void	pstore_remote_change(struct pstore *, const struct store_item *, int);
void	pstore_remote_changed(struct pstore *, int64_t);

#endif
