/*
 * Unit tests for the process layer (common/proc.c): the back-off, the
 * queue bound, the child's answer to a ping, and a real child that does
 * not read its channel being killed when its queue passes the bound.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <event.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "ipcpair.h"
#include "log.h"
#include "proc.h"
#include "proto.h"
#include "tap.h"

static int	 dispatched, restarted;

static void
test_dispatch(struct proc *p, struct ipc_msg *msg, void *arg)
{
	dispatched++;
}

static int
test_restart(struct proc *p, void *arg)
{
	restarted++;
	return 0;
}

static void
test_backoff(void)
{
	TAP_OK(proc_backoff(0) == 0, "back-off: none after a long life");
	TAP_OK(proc_backoff(1) == 1, "back-off: 1 s after one quick death");
	TAP_OK(proc_backoff(2) == 2 && proc_backoff(3) == 4 &&
	    proc_backoff(4) == 8, "back-off doubles (2, 4, 8)");
	TAP_OK(proc_backoff(7) == PROC_BACKOFF_MAX &&
	    proc_backoff(1000) == PROC_BACKOFF_MAX &&
	    proc_backoff(-3) == 0, "back-off: capped at %d s, never negative",
	    PROC_BACKOFF_MAX);
}

static void
test_queue_fits(void)
{
	size_t	 max = PROC_QUEUE_MAX;

	TAP_OK(proc_queue_fits(0, 100, 0, max), "an empty queue takes one");
	TAP_OK(proc_queue_fits(max - 100, 100, 0, max),
	    "a queue filled exactly to the bound fits");
	TAP_OK(!proc_queue_fits(max - 99, 100, 0, max),
	    "one byte over the bound does not");
	TAP_OK(!proc_queue_fits(0, max + 1, 0, max),
	    "a message larger than the bound never fits");
	TAP_OK(!proc_queue_fits(SIZE_MAX - 10, 100, 0, max),
	    "no overflow with a huge queue");
	TAP_OK(proc_queue_fits(max + 5000, 100, 6000, max) &&
	    !proc_queue_fits(max + 5000, 100, 5000, max),
	    "bulk the parent sent raises the bound by its size only");
}

static void
test_answer_ping(void)
{
	struct ipc	 a, b;
	struct ipc_msg	 msg;
	uint32_t	 seq = 77, got = 0;

	pair(&a, &b);
	ipc_compose(&a, IMSG_PING, 0, -1, &seq, sizeof(seq));
	TAP_OK(xfer(&a, &b, &msg) == 0 && proc_answer_ping(&b, &msg) == 1,
	    "a child answers a ping");
	TAP_OK(xfer(&b, &a, &msg) == 0 && msg.hdr.type == IMSG_PONG &&
	    ipc_get_fixed(&msg, &got, sizeof(got)) == 0 && got == seq,
	    "with a pong carrying the ping's sequence");
	ipc_compose(&a, IMSG_PING, 0, -1, "x", 1);
	ipc_compose(&a, IMSG_LOG, 0, -1, NULL, 0);
	TAP_OK(xfer(&a, &b, &msg) == 0 && proc_answer_ping(&b, &msg) == -1,
	    "a malformed ping is refused");
	TAP_OK(xfer(&a, &b, &msg) == 0 && proc_answer_ping(&b, &msg) == 0,
	    "other messages are not pings");
	ipc_clear(&a);
	ipc_clear(&b);
}

/* A child that never reads: what we queue for it ends in its death. */
static void
test_kill_on_bound(void)
{
	static const struct proc_hooks	 hooks = { test_dispatch,
					    test_restart };
	struct event_base		*base;
	struct proc_group		 g;
	struct proc			*p;
	struct ipc_wbuf			*wb;
	char				*argv[] = { "sleep", "30", NULL };
	static char			 chunk[64 * 1024];
	size_t				 sent = 0;
	int				 i, status = 0;
	pid_t				 pid;

	if ((base = event_base_new()) == NULL)
		abort();
	proc_group_init(&g, base, "sleeper", 1, &hooks, NULL);
	p = &g.procs[0];
	TAP_OK(proc_spawn(p, "/bin/sleep", argv) == 0 && p->pid > 0 &&
	    proc_alive(p), "a child is spawned with its channel");
	pid = p->pid;
	for (i = 0; i < 1000 && proc_alive(p); i++) {
		if ((wb = ipc_create(IMSG_METRICS_REPLY, 0,
		    sizeof(chunk))) == NULL)
			abort();
		ipc_add(wb, chunk, sizeof(chunk));
		if (proc_send(p, wb, -1) == 0)
			sent += sizeof(chunk);
		proc_flush(p);
	}
	TAP_OK(!proc_alive(p), "the child is killed once its queue passes "
	    "the bound (%zu bytes accepted)", sent);
	TAP_OK(sent >= PROC_QUEUE_MAX && sent < PROC_QUEUE_MAX + 8 *
	    1024 * 1024, "after no more than the bound and a socket buffer");
	TAP_OK(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
	    WTERMSIG(status) == SIGKILL, "with SIGKILL");
	proc_exited(p, status);
	TAP_OK(p->pid == 0 && p->fails == 1,
	    "its death is recorded as a quick one");
	for (i = 0; i < 5 && restarted == 0; i++)
		event_base_loop(base, EVLOOP_ONCE);
	TAP_OK(restarted == 1, "and it is restarted after %d s",
	    proc_backoff(1));
	proc_group_stop(&g);
	event_base_free(base);
}

int
main(void)
{
	log_init(1, 0);
	signal(SIGPIPE, SIG_IGN);
	test_backoff();
	test_queue_fits();
	test_answer_ping();
	test_kill_on_bound();
	return tap_done();
}
