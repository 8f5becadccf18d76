#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "parent.h"
#include "paths.h"
#include "khprobe.h"
#include "proto.h"
#include "sandbox.h"
#include "shm.h"
#include "store.h"

#define PARENT_BACKOFF_MAX	60	/* seconds between restarts, at most */
#define PARENT_QUICK_DEATH	10	/* a child that dies sooner is failing */
#define PARENT_SHUTDOWN_EXTRA	3	/* seconds beyond the request timeout */
#define PARENT_LISTEN_BACKLOG	1024

extern char	**environ;

static void	parent_child_io(int, short, void *);
static void	parent_child_died(struct parent *, struct child *, int);
static int	parent_spawn(struct parent *, struct child *);

/*
 * Environment children may inherit: sanitizer options, the time zone,
 * and SoftHSM's configuration file for a keyholder's PKCS#11 module.
 */
static const char *parent_env_keep[] = {
	"TZ", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
	"TODOD_SANDBOX_DISABLE", "SOFTHSM2_CONF", NULL
};

static char **
parent_child_env(void)
{
	static char	*env[8];
	char		**e;
	int		 i, n = 0;
	size_t		 len;

	if (env[0] != NULL || n > 0)
		return env;
	for (e = environ; *e != NULL && n < 7; e++) {
		for (i = 0; parent_env_keep[i] != NULL; i++) {
			len = strlen(parent_env_keep[i]);
			if (strncmp(*e, parent_env_keep[i], len) == 0 &&
			    (*e)[len] == '=')
				env[n++] = *e;
		}
	}
	env[n] = NULL;
	return env;
}

void
parent_child_flush(struct child *c)
{
	short	 want;

	if (c->pid == 0 || c->ipc.fd == -1)
		return;
	if (ipc_flush(&c->ipc) == -1 && errno != EAGAIN) {
		/* the death is handled when SIGCHLD comes */
		return;
	}
	want = EV_READ | (ipc_queued(&c->ipc) > 0 ? EV_WRITE : 0);
	if (want == c->events)
		return;
	event_del(&c->ev);
	event_assign(&c->ev, c->p->base, c->ipc.fd, want | EV_PERSIST,
	    parent_child_io, c);
	event_add(&c->ev, NULL);
	c->events = want;
}

static const char *
parent_child_name(struct child *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s %d", c->role == ROLE_WORKER ? "worker" :
	    "keyholder", c->id);
	return buf;
}

/* An untrusted child broke the protocol: it is stopped, then restarted. */
void
parent_child_kill(struct child *c, const char *why)
{
	char	 name[32];

	log_warnx("%s: %s; killing it", parent_child_name(c, name,
	    sizeof(name)), why);
	if (c->pid > 0)
		kill(c->pid, SIGKILL);
	event_del(&c->ev);
	ipc_clear(&c->ipc);
}

static void
parent_dispatch(struct child *c, struct ipc_msg *msg)
{
	struct parent	*p = c->p;
	char		 name[32];

	switch (msg->hdr.type) {
	case IMSG_LOG:
		if (log_child_msg(&c->loglimit, parent_child_name(c, name,
		    sizeof(name)), msg) == -1)
			parent_child_kill(c, "malformed log message");
		return;
	default:
		break;
	}
	if (c->role == ROLE_WORKER) {
		switch (msg->hdr.type) {
		case IMSG_STORE_CREATE:
		case IMSG_STORE_UPDATE:
		case IMSG_STORE_DELETE:
			pstore_request(p, c, msg);
			return;
		case IMSG_METRICS_REQ:
			metrics_request(p, c, msg);
			return;
		case IMSG_CFG_DONE:
		case IMSG_CFG_FAILED:
			apply_worker_reply(p, c, msg);
			return;
		}
	} else {
		switch (msg->hdr.type) {
		case IMSG_KH_KEY_OK:
		case IMSG_KH_KEY_FAIL:
			apply_key_reply(p, c, msg);
			return;
		}
	}
	parent_child_kill(c, "unexpected message");
}

static void
parent_child_io(int fd, short ev, void *arg)
{
	struct child	*c = arg;
	struct ipc_msg	 msg;
	ssize_t		 n;
	int		 r;

	if (ev & EV_WRITE)
		parent_child_flush(c);
	if (!(ev & EV_READ))
		return;
	n = ipc_read(&c->ipc);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* closed: SIGCHLD follows and restarts it */
		event_del(&c->ev);
		c->events = 0;
		return;
	}
	while (c->ipc.fd != -1 && (r = ipc_get(&c->ipc, &msg)) != 0) {
		if (r == -1) {
			parent_child_kill(c, "bad framing on its channel");
			return;
		}
		parent_dispatch(c, &msg);
		ipc_msg_free(&msg);
	}
	parent_child_flush(c);
}

/* fork+exec a child with its channel on PROTO_CHANNEL_FD. */
static int
parent_spawn(struct parent *p, struct child *c)
{
	char	*argv[20], id[16], cred[32], verbose[8], maxconn[16];
	int	 sv[2], argc = 0, i;
	pid_t	 pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair");
		return -1;
	}
	snprintf(id, sizeof(id), "%d", c->id);
	snprintf(cred, sizeof(cred), "%u:%u", (unsigned)p->uid,
	    (unsigned)p->gid);
	if (c->role == ROLE_WORKER) {
		argv[argc++] = "todod";
		argv[argc++] = "-P";
		argv[argc++] = "worker";
	} else
		argv[argc++] = "todod-keyholder";
	argv[argc++] = "-I";
	argv[argc++] = id;
	if (p->foreground)
		argv[argc++] = "-d";
	if (p->verbose > 0) {
		verbose[0] = '-';
		for (i = 0; i < p->verbose && i < 5; i++)
			verbose[i + 1] = 'v';
		verbose[i + 1] = '\0';
		argv[argc++] = verbose;
	}
	if (c->role == ROLE_WORKER) {
		snprintf(maxconn, sizeof(maxconn), "%d",
		    p->conf->max_connections);
		argv[argc++] = "-m";
		argv[argc++] = maxconn;
	} else {
		snprintf(maxconn, sizeof(maxconn), "%d",
		    p->conf->max_signatures);
		argv[argc++] = "-s";
		argv[argc++] = maxconn;
		if (khprobe_is_p11(p->conf->tls.key)) {
			argv[argc++] = "-p";
			argv[argc++] = (char *)khprobe_module(&p->conf->tls);
		}
	}
	if (p->root) {
		argv[argc++] = "-u";
		argv[argc++] = cred;
		argv[argc++] = "-r";
		argv[argc++] = p->conf->chroot;
	}
	argv[argc] = NULL;

	switch (pid = fork()) {
	case -1:
		log_warn("fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	case 0:
		/* children notice a dead parent even if the channel lingers */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		if (sv[1] == PROTO_CHANNEL_FD)
			fcntl(sv[1], F_SETFD, 0);
		else if (dup2(sv[1], PROTO_CHANNEL_FD) == -1)
			_exit(1);
		close_range(PROTO_CHANNEL_FD + 1, ~0U, 0);
		/* detached: logs go through the channel, not the launcher */
		if (!p->foreground) {
			int	 nfd = open("/dev/null", O_RDWR);

			if (nfd != -1 && nfd != STDERR_FILENO) {
				dup2(nfd, STDERR_FILENO);
				close(nfd);
			}
		}
		{
			sigset_t	 set;

			sigemptyset(&set);
			sigprocmask(SIG_SETMASK, &set, NULL);
		}
		execve(c->role == ROLE_WORKER ? p->self_exe : p->kh_exe,
		    argv, parent_child_env());
		dprintf(STDERR_FILENO, "todod: exec %s: %s\n",
		    c->role == ROLE_WORKER ? p->self_exe : p->kh_exe,
		    strerror(errno));
		_exit(127);
	}
	close(sv[1]);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	ipc_init(&c->ipc, sv[0]);
	c->pid = pid;
	c->started = time(NULL);
	c->cfg_done = c->cfg_sent = 0;
	c->ready = 0;
	event_assign(&c->ev, p->base, c->ipc.fd, EV_READ | EV_PERSIST,
	    parent_child_io, c);
	event_add(&c->ev, NULL);
	c->events = EV_READ;
	return 0;
}

/* The keyholder serving worker w. */
static struct child *
parent_keyholder_of(struct parent *p, struct child *w)
{
	return &p->keyholders[w->id % p->nkeyholders];
}

/* A fresh channel between a worker and its keyholder, both running. */
static void
parent_link_keyholder(struct parent *p, struct child *w)
{
	struct child	*kh = parent_keyholder_of(p, w);
	struct ipc_wbuf	*wb;
	int		 sv[2];

	if (w->pid == 0 || kh->pid == 0 || kh->ipc.fd == -1)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair for keyholder %d", kh->id);
		return;
	}
	if ((wb = ipc_create(IMSG_KH_WORKER, 0, 4)) == NULL) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	ipc_add_u32(wb, w->id);
	ipc_send(&kh->ipc, wb, sv[0]);
	ipc_compose(&w->ipc, IMSG_KH_CHANNEL, 0, sv[1], NULL, 0);
	parent_child_flush(kh);
	parent_child_flush(w);
}

int
parent_spawn_worker(struct parent *p, struct child *w)
{
	struct ipc_wbuf	*wb;
	uint32_t	 kind;
	void		*map;
	int		 fd;

	if (parent_spawn(p, w) == -1)
		return -1;
	parent_listeners_worker(p, p->conf, w->id - 1, 1);
	if (p->apply.phase != APPLY_IDLE && p->apply.conf != p->conf)
		parent_listeners_worker(p, p->apply.conf, w->id - 1, 1);
	/* the state page, read-only for the worker */
	if ((fd = fcntl(p->state_fd, F_DUPFD_CLOEXEC, 0)) == -1)
		fatal("dup state segment");
	kind = SHM_STATE;
	ipc_compose(&w->ipc, IMSG_SHM, 0, fd, &kind, sizeof(kind));
	/* its counters, read-only for us */
	if ((fd = shm_create("todod-counters", sizeof(struct shm_counters),
	    &map)) == -1)
		fatal("counters segment");
	shm_unmap(map, sizeof(struct shm_counters));
	if ((w->ctr = shm_map(fd, sizeof(struct shm_counters), 0)) == NULL)
		fatal("map counters");
	kind = SHM_COUNTERS;
	if ((wb = ipc_create(IMSG_SHM, 0, sizeof(kind))) == NULL)
		fatal("%s", __func__);
	ipc_add_u32(wb, kind);
	ipc_send(&w->ipc, wb, fd);
	parent_link_keyholder(p, w);
	if (p->mat != NULL && p->mat->keyref.len > 0)
		apply_send_config(p, w);
	pstore_snapshot(p, w);
	parent_child_flush(w);
	return 0;
}

static int
parent_spawn_keyholder(struct parent *p, struct child *kh)
{
	int	 i;

	if (parent_spawn(p, kh) == -1)
		return -1;
	if (p->mat != NULL)
		apply_send_keys(p, kh);
	for (i = 0; i < p->nworkers; i++)
		if (parent_keyholder_of(p, &p->workers[i]) == kh)
			parent_link_keyholder(p, &p->workers[i]);
	parent_child_flush(kh);
	return 0;
}

static void
parent_restart(int fd, short ev, void *arg)
{
	struct child	*c = arg;
	struct parent	*p = c->p;
	char		 name[32];

	if (p->shutdown || c->pid != 0)
		return;
	log_info("restarting %s", parent_child_name(c, name, sizeof(name)));
	p->restarts[c->role]++;
	if ((c->role == ROLE_WORKER ? parent_spawn_worker(p, c) :
	    parent_spawn_keyholder(p, c)) == -1) {
		struct timeval	 tv = { 5, 0 };

		evtimer_add(&c->restart_ev, &tv);
	}
}

static void
parent_child_died(struct parent *p, struct child *c, int status)
{
	struct timeval	 tv;
	char		 name[32], how[64];
	time_t		 lived = time(NULL) - c->started;

	parent_child_name(c, name, sizeof(name));
	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d",
		    WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d",
		    WEXITSTATUS(status));
	if (c->ipc.fd != -1 && event_initialized(&c->ev))
		event_del(&c->ev);
	ipc_clear(&c->ipc);
	c->pid = 0;
	c->events = 0;
	c->ready = 0;
	if (c->role == ROLE_WORKER) {
		metrics_retire(p, c);
		pstore_child_gone(p, c);
		/* its share of new connections goes to the others meanwhile */
		parent_listeners_worker(p, p->conf, c->id - 1, 0);
		if (p->apply.phase != APPLY_IDLE)
			parent_listeners_worker(p, p->apply.conf, c->id - 1, 0);
	}
	apply_child_gone(p, c);
	if (p->shutdown) {
		log_debug("%s %s", name, how);
		return;
	}
	if (lived < PARENT_QUICK_DEATH)
		c->fails++;
	else
		c->fails = 0;
	timerclear(&tv);
	if (c->fails > 0) {
		tv.tv_sec = 1 << (c->fails > 6 ? 6 : c->fails - 1);
		if (tv.tv_sec > PARENT_BACKOFF_MAX)
			tv.tv_sec = PARENT_BACKOFF_MAX;
	}
	log_warnx("%s %s after %llds; restarting in %llds%s", name, how,
	    (long long)lived, (long long)tv.tv_sec,
	    c->fails > 2 ? " (failing repeatedly: backing off)" : "");
	evtimer_assign(&c->restart_ev, p->base, parent_restart, c);
	evtimer_add(&c->restart_ev, &tv);
}

static struct child *
parent_find(struct parent *p, pid_t pid)
{
	int	 i;

	for (i = 0; i < p->nworkers; i++)
		if (p->workers[i].pid == pid)
			return &p->workers[i];
	for (i = 0; i < p->nkeyholders; i++)
		if (p->keyholders[i].pid == pid)
			return &p->keyholders[i];
	return NULL;
}

static int
parent_nrunning(struct parent *p, enum child_role role)
{
	struct child	*set = role == ROLE_WORKER ? p->workers :
			    p->keyholders;
	int		 i, n = 0, max = role == ROLE_WORKER ? p->nworkers :
			    p->nkeyholders;

	for (i = 0; i < max; i++)
		if (set[i].pid != 0)
			n++;
	return n;
}

static void
parent_exit(struct parent *p)
{
	store_close(p->store);
	p->store = NULL;
	lockfile_release(&p->pidfile, 1);
	log_info("exiting");
	exit(0);
}

static void
parent_shutdown_step(struct parent *p)
{
	int	 i;

	if (parent_nrunning(p, ROLE_WORKER) > 0)
		return;
	/* the workers are gone: every write they sent is committed */
	for (i = 0; i < p->nkeyholders; i++)
		if (p->keyholders[i].pid != 0) {
			ipc_compose(&p->keyholders[i].ipc, IMSG_CTL_SHUTDOWN,
			    0, -1, NULL, 0);
			parent_child_flush(&p->keyholders[i]);
		}
	if (parent_nrunning(p, ROLE_KEYHOLDER) == 0)
		parent_exit(p);
}

static void
parent_sigchld(int sig, short ev, void *arg)
{
	struct parent	*p = arg;
	struct child	*c;
	pid_t		 pid;
	int		 status, i;

	for (i = 0; i < 1024; i++) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		if ((c = parent_find(p, pid)) != NULL)
			parent_child_died(p, c, status);
	}
	if (p->shutdown)
		parent_shutdown_step(p);
}

static void
parent_shutdown_force(int fd, short ev, void *arg)
{
	struct parent	*p = arg;
	int		 i;

	log_warnx("children still running after the grace period; "
	    "killing them");
	for (i = 0; i < p->nworkers; i++)
		if (p->workers[i].pid != 0)
			kill(p->workers[i].pid, SIGKILL);
	for (i = 0; i < p->nkeyholders; i++)
		if (p->keyholders[i].pid != 0)
			kill(p->keyholders[i].pid, SIGKILL);
}

static void
parent_shutdown(struct parent *p)
{
	struct timeval		 tv;
	int			 i;

	if (p->shutdown)
		return;
	p->shutdown = 1;
	log_info("shutting down");
	for (i = 0; i < p->nworkers; i++)
		parent_listeners_worker(p, p->conf, i, 0);
	for (i = 0; i < p->nworkers; i++) {
		if (event_initialized(&p->workers[i].restart_ev))
			evtimer_del(&p->workers[i].restart_ev);
		if (p->workers[i].pid != 0) {
			ipc_compose(&p->workers[i].ipc, IMSG_CTL_SHUTDOWN, 0,
			    -1, NULL, 0);
			parent_child_flush(&p->workers[i]);
		}
	}
	for (i = 0; i < p->nkeyholders; i++)
		if (event_initialized(&p->keyholders[i].restart_ev))
			evtimer_del(&p->keyholders[i].restart_ev);
	timerclear(&tv);
	tv.tv_sec = p->conf->timeout_request + PARENT_SHUTDOWN_EXTRA;
	evtimer_assign(&p->shutdown_ev, p->base, parent_shutdown_force, p);
	evtimer_add(&p->shutdown_ev, &tv);
	parent_shutdown_step(p);
}

static void
parent_signal(int sig, short ev, void *arg)
{
	struct parent	*p = arg;
	struct config	*conf;
	char		 err[1024];

	switch (sig) {
	case SIGHUP:
		if (p->shutdown)
			return;
		if (p->apply.phase != APPLY_IDLE) {
			log_warnx("reload failed: a reload is in progress");
			p->reloads_failed++;
			return;
		}
		log_info("reloading %s", p->conffile);
		if ((conf = config_parse(p->conffile, err, sizeof(err))) ==
		    NULL) {
			log_warnx("reload failed: %s", err);
			p->reloads_failed++;
			return;
		}
		if (apply_start(p, conf, 0, err, sizeof(err)) == -1) {
			log_warnx("reload failed: %s", err);
			p->reloads_failed++;
		}
		break;
	case SIGTERM:
	case SIGINT:
		parent_shutdown(p);
		break;
	}
}

/*
 * Report the startup's result to the process that launched us (it waits to
 * exit with our status), then carry on as a daemon.
 */
void
parent_startup_done(struct parent *p, const char *err)
{
	int	 i, fd;

	if (err != NULL) {
		log_warnx("%s", err);
		if (p->ready_fd != -1)
			dprintf(p->ready_fd, "%s\n", err);
		for (i = 0; i < p->nworkers; i++)
			if (p->workers[i].pid != 0)
				kill(p->workers[i].pid, SIGKILL);
		for (i = 0; i < p->nkeyholders; i++)
			if (p->keyholders[i].pid != 0)
				kill(p->keyholders[i].pid, SIGKILL);
		lockfile_release(&p->pidfile, 1);
		exit(1);
	}
	if (p->pidfile.fd != -1 && lockfile_write_pid(&p->pidfile) == -1)
		log_warn("pidfile %s", p->pidfile.path);
	log_info("started, %d workers, %d keyholders", p->nworkers,
	    p->nkeyholders);
	if (p->ready_fd != -1) {
		write(p->ready_fd, "", 0);
		close(p->ready_fd);
		p->ready_fd = -1;
		/* the launcher has exited: stderr goes nowhere now */
		if ((fd = open("/dev/null", O_RDWR)) != -1) {
			dup2(fd, STDERR_FILENO);
			if (fd > STDERR_FILENO)
				close(fd);
		}
	}
}

/*
 * Fork: the launching process waits for the daemon to report its startup
 * and exits 0, or prints the error and exits 1.
 */
static int
parent_daemonize(void)
{
	char	 buf[1024];
	ssize_t	 n;
	size_t	 len = 0;
	int	 pfd[2], fd;
	pid_t	 pid;

	if (pipe2(pfd, O_CLOEXEC) == -1)
		fatal("pipe");
	switch (pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		break;
	default:
		close(pfd[1]);
		while (len < sizeof(buf) - 1 &&
		    (n = read(pfd[0], buf + len, sizeof(buf) - 1 - len)) != 0) {
			if (n == -1) {
				if (errno == EINTR)
					continue;
				break;
			}
			len += n;
		}
		if (len == 0) {
			/* EOF without a message: ready, or died silently */
			if (waitpid(pid, NULL, WNOHANG) == pid)
				_exit(1);
			_exit(0);
		}
		buf[len] = '\0';
		dprintf(STDERR_FILENO, "todod: %s", buf);
		_exit(1);
	}
	close(pfd[0]);
	if (setsid() == -1)
		fatal("setsid");
	if (chdir("/") == -1)
		fatal("chdir /");
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	return pfd[1];
}

/*
 * Each worker has its own listening socket per address, all bound with
 * SO_REUSEPORT: the kernel spreads new connections over them instead of
 * letting whichever worker wakes first take a burst.  A dead worker's
 * sockets are closed, so its share goes to the others until it is back.
 */
static int
parent_listen(struct parent *p, struct config_listen *l, int idx, char *err,
    size_t errlen)
{
	int	 fd, one = 1;

	if ((fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	/*
	 * Accepted sockets inherit it.  Responses are written whole; Nagle
	 * would only hold back the tail of a multi-record one until the
	 * client's delayed ACK (40 ms).
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (l->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&l->ss, l->sslen) == -1 ||
	    listen(fd, PARENT_LISTEN_BACKLOG) == -1)
		goto fail;
	l->fds[idx] = fd;
	return 0;
 fail:
	snprintf(err, errlen, "listen on %s (%s:%d): %s", l->name,
	    p->conffile, l->lineno, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/*
 * Bind the listeners of conf, sharing the sockets of the configuration in
 * use where the address is the same (a reload keeps them open: connections
 * waiting in the backlog are not lost).
 */
/*
 * SO_REUSEPORT would let a second todod (same user) bind the same address
 * and quietly share its connections.  So an address not already ours is
 * first bound plainly: if anything holds it, that fails as it should.
 */
static int
parent_listen_probe(struct parent *p, struct config_listen *l, char *err,
    size_t errlen)
{
	int	 fd, one = 1, r;

	if ((fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
	    -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	r = bind(fd, (struct sockaddr *)&l->ss, l->sslen);
	close(fd);
	if (r == 0)
		return 0;
 fail:
	snprintf(err, errlen, "listen on %s (%s:%d): %s", l->name,
	    p->conffile, l->lineno, strerror(errno));
	return -1;
}

int
parent_bind(struct parent *p, struct config *conf, char *err, size_t errlen)
{
	struct config_listen	*l, *o;
	int			 i, ours;

	TAILQ_FOREACH(l, &conf->listens, entry) {
		ours = 0;
		if (p->conf != NULL && p->conf != conf)
			TAILQ_FOREACH(o, &p->conf->listens, entry)
				if (o->sslen == l->sslen &&
				    memcmp(&o->ss, &l->ss, l->sslen) == 0)
					ours = 1;
		if (!ours && parent_listen_probe(p, l, err, errlen) == -1)
			return -1;
		for (i = 0; i < p->nworkers; i++) {
			if (l->fds[i] != -1)
				continue;
			if (p->conf != NULL && p->conf != conf)
				TAILQ_FOREACH(o, &p->conf->listens, entry)
					if (o->fds[i] != -1 &&
					    o->sslen == l->sslen && memcmp(&o->ss,
					    &l->ss, l->sslen) == 0) {
						l->fds[i] = fcntl(o->fds[i],
						    F_DUPFD_CLOEXEC, 0);
						break;
					}
			if (l->fds[i] == -1 &&
			    parent_listen(p, l, i, err, errlen) == -1)
				return -1;
		}
	}
	return 0;
}

/* Close (or open again) worker idx's sockets in a configuration. */
void
parent_listeners_worker(struct parent *p, struct config *conf, int idx,
    int open)
{
	struct config_listen	*l;
	char			 err[512];

	if (conf == NULL)
		return;
	TAILQ_FOREACH(l, &conf->listens, entry) {
		if (!open && l->fds[idx] != -1) {
			close(l->fds[idx]);
			l->fds[idx] = -1;
		} else if (open && l->fds[idx] == -1 &&
		    parent_listen(p, l, idx, err, sizeof(err)) == -1)
			log_warnx("worker %d: %s", idx + 1, err);
	}
}

static void
parent_find_executables(struct parent *p)
{
	ssize_t	 n;

	if ((n = readlink("/proc/self/exe", p->self_exe,
	    sizeof(p->self_exe) - 1)) == -1)
		fatal("readlink /proc/self/exe");
	p->self_exe[n] = '\0';
	khprobe_exe(p->kh_exe, sizeof(p->kh_exe));
}

static int
parent_open_store(struct parent *p, char *err, size_t errlen)
{
	char	 dir[PATH_MAX];
	void	*map;

	strlcpy(dir, p->conf->database, sizeof(dir));
	if (mkdir(dirname(dir), 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "database directory %.512s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if ((p->store = store_open(p->conf->database, err, errlen)) == NULL)
		return -1;
	/* taken now, written once started: a second todod stops here */
	if (p->conf->pidfile != NULL && lockfile_take(&p->pidfile,
	    p->conf->pidfile, "pidfile", p->conf->pidfile, err, errlen) == -1)
		return -1;
	if ((p->state_fd = shm_create("todod-state", sizeof(struct shm_state),
	    &map)) == -1) {
		snprintf(err, errlen, "shared state: %s", strerror(errno));
		return -1;
	}
	p->state = map;
	p->state->todo_count = store_count(p->store);
	return 0;
}

int
parent_main(struct config *conf, const char *conffile, int foreground,
    int verbose)
{
	struct parent	 pp, *p = &pp;
	char		 err[1024];
	int		 i;

	memset(p, 0, sizeof(*p));
	p->conf = conf;
	p->foreground = foreground;
	p->verbose = verbose;
	p->ready_fd = -1;
	p->state_fd = -1;
	p->pidfile.fd = -1;
	TAILQ_INIT(&p->ops);
	if ((p->conffile = realpath(conffile, NULL)) == NULL)
		fatal("%s", conffile);
	parent_find_executables(p);

	p->root = geteuid() == 0;
	if (p->root) {
		if (privdrop_lookup(conf->user, &p->uid, &p->gid, err,
		    sizeof(err)) == -1 ||
		    privdrop_check_chroot(conf->chroot, 1, err,
		    sizeof(err)) == -1) {
			fprintf(stderr, "todod: %s\n", err);
			exit(1);
		}
	}
	if (!foreground)
		p->ready_fd = parent_daemonize();
	log_init(foreground, verbose);
	log_procinit("parent");
	setproctitle("parent");
	if (!p->root)
		log_info("running as uid %u: children are sandboxed but not "
		    "chrooted and keep this uid", (unsigned)getuid());
	signal(SIGPIPE, SIG_IGN);
	umask(077);

	p->nworkers = conf->prefork;
	if (parent_open_store(p, err, sizeof(err)) == -1 ||
	    parent_bind(p, conf, err, sizeof(err)) == -1)
		parent_startup_done(p, err);

	if ((p->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	pstore_init(p);
	evsignal_assign(&p->sig_hup, p->base, SIGHUP, parent_signal, p);
	evsignal_assign(&p->sig_term, p->base, SIGTERM, parent_signal, p);
	evsignal_assign(&p->sig_int, p->base, SIGINT, parent_signal, p);
	evsignal_assign(&p->sig_chld, p->base, SIGCHLD, parent_sigchld, p);
	evsignal_add(&p->sig_hup, NULL);
	evsignal_add(&p->sig_term, NULL);
	evsignal_add(&p->sig_int, NULL);
	evsignal_add(&p->sig_chld, NULL);

	p->nworkers = conf->prefork;
	p->nkeyholders = conf->keyholders;
	for (i = 0; i < p->nworkers; i++) {
		p->workers[i].p = p;
		p->workers[i].role = ROLE_WORKER;
		p->workers[i].id = i + 1;
		p->workers[i].ipc.fd = -1;
	}
	for (i = 0; i < p->nkeyholders; i++) {
		p->keyholders[i].p = p;
		p->keyholders[i].role = ROLE_KEYHOLDER;
		p->keyholders[i].id = i + 1;
		p->keyholders[i].ipc.fd = -1;
		if (parent_spawn_keyholder(p, &p->keyholders[i]) == -1)
			parent_startup_done(p, "cannot start the keyholder");
	}
	/* keys first; the workers start once every keyholder has them */
	if (apply_start(p, conf, 1, err, sizeof(err)) == -1)
		parent_startup_done(p, err);

	event_base_dispatch(p->base);
	parent_exit(p);
	return 0;
}
