#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "proc.h"
#include "proto.h"

#define PROC_RESTART_RETRY	5	/* seconds, when a restart failed */

extern char	**environ;

static void	proc_io(int, short, void *);
static void	proc_restart(int, short, void *);
static void	proc_watchdog(int, short, void *);
static void	proc_ping(struct proc *, time_t);

/*
 * Environment children may inherit: sanitizer options, the time zone,
 * and SoftHSM's configuration file for a keyholder's PKCS#11 module.
 */
static const char *proc_env_keep[] = {
	"TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
	"TODOD_SANDBOX_DISABLE", "SOFTHSM2_CONF", "JOURNAL_STREAM", NULL
};

static time_t
proc_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static char **
proc_env(void)
{
	static char	*env[8];
	static int	 done;
	char		**e;
	size_t		 len;
	int		 i, n = 0;

	if (done)
		return env;
	for (e = environ; *e != NULL && n < 7; e++)
		for (i = 0; proc_env_keep[i] != NULL; i++) {
			len = strlen(proc_env_keep[i]);
			if (strncmp(*e, proc_env_keep[i], len) == 0 &&
			    (*e)[len] == '=')
				env[n++] = *e;
		}
	env[n] = NULL;
	done = 1;
	return env;
}

void
proc_group_init(struct proc_group *g, struct event_base *base,
    const char *name, int n, const struct proc_hooks *hooks, void *arg)
{
	struct timeval	 tv = { PROC_PING_INTERVAL, 0 };
	struct proc	*p;
	int		 i;

	memset(g, 0, sizeof(*g));
	if (n < 0 || n > PROC_MAX)
		fatalx("%s: %d %ss", __func__, n, name);
	g->base = base;
	g->name = name;
	g->n = n;
	g->hooks = *hooks;
	g->arg = arg;
	for (i = 0; i < n; i++) {
		p = &g->procs[i];
		p->g = g;
		p->id = i + 1;
		ipc_init(&p->ipc, -1);
		evtimer_assign(&p->restart_ev, base, proc_restart, p);
	}
	event_assign(&g->watchdog_ev, base, -1, EV_PERSIST, proc_watchdog, g);
	evtimer_add(&g->watchdog_ev, &tv);
}

/* Shutting down: no restarts, no watchdog; the children end by themselves. */
void
proc_group_stop(struct proc_group *g)
{
	int	 i;

	g->stopping = 1;
	evtimer_del(&g->watchdog_ev);
	for (i = 0; i < g->n; i++)
		evtimer_del(&g->procs[i].restart_ev);
}

int
proc_group_running(const struct proc_group *g)
{
	int	 i, n = 0;

	for (i = 0; i < g->n; i++)
		if (g->procs[i].pid != 0)
			n++;
	return n;
}

struct proc *
proc_group_find(struct proc_group *g, pid_t pid)
{
	int	 i;

	for (i = 0; i < g->n; i++)
		if (g->procs[i].pid == pid && pid != 0)
			return &g->procs[i];
	return NULL;
}

void
proc_group_signal(struct proc_group *g, int sig)
{
	int	 i;

	for (i = 0; i < g->n; i++)
		if (g->procs[i].pid != 0)
			kill(g->procs[i].pid, sig);
}

/* One message to every child whose channel is open. */
void
proc_group_compose(struct proc_group *g, uint32_t type, const void *data,
    size_t len)
{
	struct proc	*p;
	int		 i;

	for (i = 0; i < g->n; i++) {
		p = &g->procs[i];
		if (!proc_alive(p))
			continue;
		if (proc_compose(p, type, 0, -1, data, len) == 0)
			proc_flush(p);
	}
}

const char *
proc_name(const struct proc *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s %d", p->g->name, p->id);
	return buf;
}

/* Running, with a channel we still listen to. */
int
proc_alive(const struct proc *p)
{
	return p->pid != 0 && p->ipc.fd != -1;
}

/* In the child, between fork and exec: the channel on fd 3, nothing else. */
static void
proc_child_setup(struct proc *p, int fd)
{
	sigset_t	 set;
	int		 nfd;

	/* children notice a dead parent even if the channel lingers */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(1);
	if (fd == PROTO_CHANNEL_FD)
		fcntl(fd, F_SETFD, 0);
	else if (dup2(fd, PROTO_CHANNEL_FD) == -1)
		_exit(1);
	close_range(PROTO_CHANNEL_FD + 1, ~0U, 0);
	/* detached: logs go through the channel, not the launcher */
	if (!p->g->keep_stderr &&
	    (nfd = open("/dev/null", O_RDWR)) != -1 && nfd != STDERR_FILENO) {
		dup2(nfd, STDERR_FILENO);
		close(nfd);
	}
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
}

/* fork+exec path with argv, the channel on PROTO_CHANNEL_FD. */
int
proc_spawn(struct proc *p, const char *path, char *const argv[])
{
	int	 sv[2];
	pid_t	 pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		return -1;
	}
	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	case 0:
		proc_child_setup(p, sv[1]);
		execve(path, argv, proc_env());
		dprintf(STDERR_FILENO, "todod: exec %s: %s\n", path,
		    strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	ipc_init(&p->ipc, sv[0]);
	p->pid = pid;
	p->started = proc_now();
	p->bulk = 0;
	p->ping_sent = 0;
	p->answered = 0;
	event_assign(&p->ev, p->g->base, p->ipc.fd, EV_READ | EV_PERSIST,
	    proc_io, p);
	event_add(&p->ev, NULL);
	p->events = EV_READ;
	/*
	 * The first ping goes before anything else: a child that has answered
	 * what follows has answered it, and is past its start-up.
	 */
	proc_ping(p, p->started);
	return 0;
}

/* What a child's queue costs us: its bytes, and each message's overhead. */
size_t
proc_queue_cost(const struct proc *p)
{
	return ipc_queued(&p->ipc) + ipc_queued_msgs(&p->ipc) * PROC_MSG_COST;
}

/*
 * Whether add more may join a queue that costs queued: the bound, plus
 * what the parent itself chose to send in bulk and is not yet written.
 */
int
proc_queue_fits(size_t queued, size_t add, size_t bulk, size_t max)
{
	if (add > max + bulk)
		return 0;
	return queued <= max + bulk - add;
}

/*
 * Queue a message to a child.  Answers to what a child asked for go this
 * way: a child that does not read them is killed when they pass the bound,
 * instead of growing its parent's memory.
 */
int
proc_send(struct proc *p, struct ipc_wbuf *wb, int fd)
{
	if (proc_alive(p) && !proc_queue_fits(proc_queue_cost(p),
	    wb->len + PROC_MSG_COST, p->bulk, PROC_QUEUE_MAX)) {
		ipc_wbuf_free(wb);
		if (fd != -1)
			close(fd);
		proc_kill(p, "does not read its channel (%zu messages, %zu "
		    "bytes queued)", ipc_queued_msgs(&p->ipc),
		    ipc_queued(&p->ipc));
		errno = ENOBUFS;
		return -1;
	}
	return ipc_send(&p->ipc, wb, fd);
}

/*
 * What the parent queued on its own since the queue cost mark (a
 * configuration, a snapshot of the store) may be larger than the bound: it
 * raises the allowance by its cost until written.
 */
void
proc_allow(struct proc *p, size_t mark)
{
	if (proc_queue_cost(p) > mark)
		p->bulk += proc_queue_cost(p) - mark;
}

int
proc_compose(struct proc *p, uint32_t type, uint32_t peerid, int fd,
    const void *data, size_t len)
{
	struct ipc_wbuf	*wb;

	if ((wb = ipc_create(type, peerid, len)) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	ipc_add(wb, data, len);		/* proc_send reports a failure */
	return proc_send(p, wb, fd);
}

void
proc_flush(struct proc *p)
{
	short	 want;

	if (!proc_alive(p))
		return;
	if (ipc_flush(&p->ipc) == -1 && errno != EAGAIN)
		return;		/* the death is handled when SIGCHLD comes */
	if (p->bulk > proc_queue_cost(p))
		p->bulk = proc_queue_cost(p);
	want = EV_READ | (ipc_queued(&p->ipc) > 0 ? EV_WRITE : 0);
	if (want == p->events)
		return;
	event_del(&p->ev);
	event_assign(&p->ev, p->g->base, p->ipc.fd, want | EV_PERSIST,
	    proc_io, p);
	event_add(&p->ev, NULL);
	p->events = want;
}

/* An untrusted child broke the rules: it is stopped, then restarted. */
void
proc_kill(struct proc *p, const char *fmt, ...)
{
	char	 name[32], why[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warnx("%s: %s; killing it", proc_name(p, name, sizeof(name)),
	    why);
	if (p->pid > 0)
		kill(p->pid, SIGKILL);
	if (p->events != 0)
		event_del(&p->ev);
	p->events = 0;
	p->ping_sent = 0;
	p->bulk = 0;
	ipc_clear(&p->ipc);
}

/* Seconds before restarting a child that died after fails quick deaths. */
int
proc_backoff(int fails)
{
	int	 s;

	if (fails <= 0)
		return 0;
	s = 1 << (fails > 7 ? 6 : fails - 1);
	return s > PROC_BACKOFF_MAX ? PROC_BACKOFF_MAX : s;
}

/* The child is gone (waitpid said so): log it and plan its restart. */
void
proc_exited(struct proc *p, int status)
{
	struct timeval	 tv;
	char		 name[32], how[64];
	time_t		 lived = proc_now() - p->started;

	proc_name(p, name, sizeof(name));
	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d",
		    WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(status));
	if (p->events != 0)
		event_del(&p->ev);
	ipc_clear(&p->ipc);
	p->pid = 0;
	p->events = 0;
	p->ping_sent = 0;
	p->bulk = 0;
	if (p->g->stopping) {
		log_debug("%s %s", name, how);
		return;
	}
	p->fails = lived < PROC_QUICK_DEATH ? p->fails + 1 : 0;
	timerclear(&tv);
	tv.tv_sec = proc_backoff(p->fails);
	log_warnx("%s %s after %llds; restarting in %llds%s", name, how,
	    (long long)lived, (long long)tv.tv_sec,
	    p->fails > 2 ? " (failing repeatedly: backing off)" : "");
	evtimer_add(&p->restart_ev, &tv);
}

static void
proc_restart(int fd, short ev, void *arg)
{
	struct proc	*p = arg;
	struct timeval	 tv = { PROC_RESTART_RETRY, 0 };
	char		 name[32];

	if (p->g->stopping || p->pid != 0)
		return;
	log_info("restarting %s", proc_name(p, name, sizeof(name)));
	if (p->g->hooks.restart(p, p->g->arg) == -1)
		evtimer_add(&p->restart_ev, &tv);
}

/*
 * Every child is pinged in turn; one that leaves a ping unanswered too long
 * is stopped or looping, serves nobody, and holds what the parent gave it
 * (its listening sockets, a reload waiting for its answer).  A new child
 * gets longer for its first answer: it is still starting.
 */
static void
proc_ping(struct proc *p, time_t now)
{
	p->ping_seq++;
	p->ping_sent = now;
	if (proc_compose(p, IMSG_PING, 0, -1, &p->ping_seq,
	    sizeof(p->ping_seq)) == 0)
		proc_flush(p);
}

static void
proc_watchdog(int fd, short ev, void *arg)
{
	struct proc_group	*g = arg;
	struct proc		*p;
	time_t			 now = proc_now(), limit;
	int			 i;

	for (i = 0; i < g->n; i++) {
		p = &g->procs[i];
		if (!proc_alive(p))
			continue;
		if (p->ping_sent != 0) {
			limit = p->answered ? PROC_PING_TIMEOUT :
			    PROC_START_GRACE;
			if (now - p->ping_sent >= limit)
				proc_kill(p, "no answer to a ping for %llds",
				    (long long)(now - p->ping_sent));
			continue;
		}
		proc_ping(p, now);
	}
}

static void
proc_pong(struct proc *p, struct ipc_msg *msg)
{
	uint32_t	 seq;

	if (ipc_get_fixed(msg, &seq, sizeof(seq)) == -1) {
		proc_kill(p, "malformed pong");
		return;
	}
	if (p->ping_sent != 0 && seq == p->ping_seq) {
		p->ping_sent = 0;
		p->answered = 1;
	}
}

/* A message from the child; a dispatch that kills it ends the reading. */
static void
proc_dispatch(void *arg, struct ipc_msg *msg)
{
	struct proc	*p = arg;

	if (msg->hdr.type == IMSG_PONG)
		proc_pong(p, msg);
	else
		p->g->hooks.dispatch(p, msg, p->g->arg);
}

static void
proc_io(int fd, short ev, void *arg)
{
	struct proc	*p = arg;
	int		 r;

	if (ev & EV_WRITE)
		proc_flush(p);
	if (!(ev & EV_READ) || !proc_alive(p))
		return;
	if ((r = ipc_read_all(&p->ipc, proc_dispatch, p)) == 0) {
		/* closed: SIGCHLD follows and restarts it */
		event_del(&p->ev);
		p->events = 0;
		return;
	}
	if (r == -1) {
		proc_kill(p, "bad framing on its channel");
		return;
	}
	proc_flush(p);
}

/*
 * In a child: answer the parent's ping (1), or say the message is not one
 * (0), or that it is malformed (-1).  The caller flushes.
 */
int
proc_answer_ping(struct ipc *parent, struct ipc_msg *msg)
{
	uint32_t	 seq;

	if (msg->hdr.type != IMSG_PING)
		return 0;
	if (msg->fd != -1 || ipc_get_fixed(msg, &seq, sizeof(seq)) == -1)
		return -1;
	ipc_compose(parent, IMSG_PONG, 0, -1, &seq, sizeof(seq));
	return 1;
}
