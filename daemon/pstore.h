/*
 * The parent's side of the TODO store: the workers' write requests,
 * committed in groups, the changes broadcast to every worker's cache, and
 * the snapshot a new worker starts from.
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
};

void	pstore_init(struct pstore *, struct event_base *, struct proc_group *,
	    struct metrics *);
void	pstore_request(struct pstore *, struct proc *, struct ipc_msg *);
void	pstore_worker_start(struct pstore *, struct proc *);
void	pstore_child_gone(struct pstore *, struct proc *);
void	pstore_sync_request(struct pstore *, struct proc *, struct ipc_msg *);
void	pstore_remote_change(struct pstore *, const struct store_item *, int);
void	pstore_remote_changed(struct pstore *, int64_t);

#endif
