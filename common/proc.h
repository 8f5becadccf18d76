/*
 * Children of a todod process: fork+exec with the channel on
 * PROTO_CHANNEL_FD, channel I/O on a libevent base, a bounded outgoing
 * queue per child, a watchdog, restart with back-off.  This module knows
 * nothing of what the children do: the owner of a group gives a dispatch
 * function for their messages and a restart function that spawns one
 * again (building its command line and sending what a new child needs).
 *
 * A child is not trusted.  What it can make its parent queue is bounded:
 * a child that lets its queue grow past PROC_QUEUE_MAX (it does not read
 * the answers to what it asks) is killed, as is one that does not answer
 * a ping within PROC_PING_TIMEOUT seconds (stopped, looping).  Both are
 * logged and restarted.
 */
#ifndef TODOD_PROC_H
#define TODOD_PROC_H

#include <sys/types.h>

#include <event.h>
#include <stdint.h>
#include <time.h>

#include "ipc.h"

#define PROC_MAX		64	/* children in a group */
#define PROC_QUEUE_MAX		(4U * 1024 * 1024)
#define PROC_MSG_COST		128	/* what a queued message costs beyond
					   its bytes: its two allocations */
#define PROC_PING_INTERVAL	1	/* seconds between watchdog rounds */
#define PROC_PING_TIMEOUT	5	/* seconds a ping may stay unanswered */
#define PROC_START_GRACE	30	/* seconds before a new child's first */
#define PROC_BACKOFF_MAX	60	/* seconds between restarts, at most */
#define PROC_QUICK_DEATH	10	/* a child that dies sooner is failing */

struct proc;
struct proc_group;

struct proc_hooks {
	/* a message from a child; pings and pongs never get here */
	void	(*dispatch)(struct proc *, struct ipc_msg *, void *);
	/* time to start a dead child again: spawn it, or return -1 */
	int	(*restart)(struct proc *, void *);
};

struct proc {
	struct proc_group	*g;
	int			 id;		/* 1 .. g->n */
	pid_t			 pid;		/* 0: not running */
	struct ipc		 ipc;
	struct event		 ev;
	short			 events;
	struct event		 restart_ev;
	time_t			 started;	/* monotonic seconds */
	int			 fails;		/* quick deaths in a row */
	size_t			 bulk;		/* allowance beyond the bound */
	uint32_t		 ping_seq;
	time_t			 ping_sent;	/* 0: none unanswered */
	int			 answered;	/* a ping since it started */
};

struct proc_group {
	struct event_base	*base;
	const char		*name;		/* "worker": "worker 3" in logs */
	struct proc		 procs[PROC_MAX];
	int			 n;
	struct proc_hooks	 hooks;
	void			*arg;
	int			 keep_stderr;	/* foreground: children log too */
	int			 stopping;	/* no more restarts */
	struct event		 watchdog_ev;
};

void		 proc_group_init(struct proc_group *, struct event_base *,
		    const char *, int, const struct proc_hooks *, void *);
void		 proc_group_stop(struct proc_group *);
int		 proc_group_running(const struct proc_group *);
struct proc	*proc_group_find(struct proc_group *, pid_t);
void		 proc_group_signal(struct proc_group *, int);
void		 proc_group_compose(struct proc_group *, uint32_t,
		    const void *, size_t);

int		 proc_spawn(struct proc *, const char *, char *const []);
const char	*proc_name(const struct proc *, char *, size_t);
int		 proc_alive(const struct proc *);
int		 proc_send(struct proc *, struct ipc_wbuf *, int);
void		 proc_allow(struct proc *, size_t);
int		 proc_compose(struct proc *, uint32_t, uint32_t, int,
		    const void *, size_t);
void		 proc_flush(struct proc *);
void		 proc_kill(struct proc *, const char *, ...)
		    __attribute__((__format__(printf, 2, 3)));
void		 proc_exited(struct proc *, int);

int		 proc_backoff(int);
size_t		 proc_queue_cost(const struct proc *);
int		 proc_queue_fits(size_t, size_t, size_t, size_t);
int		 proc_answer_ping(struct ipc *, struct ipc_msg *);

#endif
