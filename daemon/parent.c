#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

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

#include "apply.h"
#include "check.h"
#include "config.h"
#include "cfgmsg.h"
#include "crlfetch.h"
#include "staple.h"
#include "khprobe.h"
#include "listen.h"
#include "lockfile.h"
#include "log.h"
#include "metrics.h"
#include "ocspclient.h"
#include "parent.h"
#include "paths.h"
#include "proc.h"
#include "proto.h"
#include "pstore.h"
#include "storeopen.h"
#include "sandbox.h"
#include "sdnotify.h"
#include "shm.h"
#include "store.h"

/*
 * The parent at the top: the main loop, signals, starting, restarting and
 * stopping the children.  Below it, and never calling back up: apply.c
 * (the configuration in use and its reload), pstore.c (store requests),
 * metrics.c, listen.c (binding), and common/proc.c (the children's
 * processes and channels).
 */

#define PARENT_SHUTDOWN_EXTRA	3	/* seconds beyond the request timeout */

struct parent {
	struct event_base	*base;
	char			*conffile;
	int			 foreground;
	int			 verbose;
	int			 ready_fd;	/* startup result to the launcher */
	char			 self_exe[PATH_MAX];
	char			 kh_exe[PATH_MAX];
	uid_t			 uid;		/* for the children; as root */
	gid_t			 gid;
	int			 root;

	struct proc_group	 workers;
	struct proc_group	 keyholders;
	struct apply		 apply;
	struct crlfetch		 crlfetch;
	struct staple		 staple;
	struct ocspclient	 ocsp;
	struct pstore		 ps;
	struct metrics		 metrics;
	struct lockfile		 pidfile;
	struct log_limit	 wlog[PROC_MAX];	/* on what children log */
	struct log_limit	 khlog[PROC_MAX];

	int			 shutdown;
	struct event		 sig_hup, sig_term, sig_int, sig_chld;
	struct event		 shutdown_ev;
};

static void	parent_startup_done(struct parent *, const char *);

/* A child's log line, written by us: we own the syslog connection. */
static void
parent_child_log(struct parent *p, struct proc *c, struct ipc_msg *msg)
{
	struct log_limit	*lim = c->g == &p->workers ? p->wlog : p->khlog;
	char			 name[32];

	if (log_child_msg(&lim[c->id - 1], proc_name(c, name, sizeof(name)),
	    msg) == -1)
		proc_kill(c, "malformed log message");
}

static void
parent_dispatch_worker(struct proc *c, struct ipc_msg *msg, void *arg)
{
	struct parent	*p = arg;

	switch (msg->hdr.type) {
	case IMSG_LOG:
		parent_child_log(p, c, msg);
		return;
	case IMSG_STORE_CREATE:
	case IMSG_STORE_UPDATE:
	case IMSG_STORE_DELETE:
		pstore_request(&p->ps, c, msg);
		return;
	case IMSG_STORE_SYNC:
		pstore_sync_request(&p->ps, c, msg);
		return;
	case IMSG_STORE_READ:
	case IMSG_STORE_PAGE:
		pstore_read_request(&p->ps, c, msg);
		return;
	case IMSG_METRICS_REQ:
		metrics_request(&p->metrics, c, msg);
		return;
	case IMSG_OCSP_QUERY:
		ocspclient_query(&p->ocsp, c, msg);
		return;
	case IMSG_CFG_DONE:
	case IMSG_CFG_FAILED:
		apply_worker_reply(&p->apply, c, msg);
		return;
	}
	proc_kill(c, "unexpected message %u", msg->hdr.type);
}

static void
parent_dispatch_keyholder(struct proc *c, struct ipc_msg *msg, void *arg)
{
	struct parent	*p = arg;

	switch (msg->hdr.type) {
	case IMSG_LOG:
		parent_child_log(p, c, msg);
		return;
	case IMSG_KH_KEY_OK:
	case IMSG_KH_KEY_FAIL:
		apply_key_reply(&p->apply, c, msg);
		return;
	}
	proc_kill(c, "unexpected message %u", msg->hdr.type);
}

/* A child's command line: its role, id, and what the parent was given. */
static void
parent_child_argv(struct parent *p, struct proc *c, char **argv,
    char *buf, size_t len)
{
	const struct config	*conf = p->apply.conf;
	char			*id = buf, *cred = buf + 16, *verbose = buf + 48;
	char			*maxconn = buf + 56;
	int			 argc = 0, i, worker = c->g == &p->workers;

	if (len < 80)
		fatalx("%s", __func__);
	snprintf(id, 16, "%d", c->id);
	snprintf(cred, 32, "%u:%u", (unsigned)p->uid, (unsigned)p->gid);
	if (worker) {
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
	if (worker) {
		snprintf(maxconn, 16, "%d", conf->max_connections);
		argv[argc++] = "-m";
		argv[argc++] = maxconn;
	} else {
		snprintf(maxconn, 16, "%d", conf->max_signatures);
		argv[argc++] = "-s";
		argv[argc++] = maxconn;
		if (khprobe_is_p11(conf->tls.key)) {
			argv[argc++] = "-p";
			argv[argc++] = (char *)khprobe_module(&conf->tls);
		}
	}
	if (p->root) {
		argv[argc++] = "-u";
		argv[argc++] = cred;
		argv[argc++] = "-r";
		argv[argc++] = conf->chroot;
	}
	argv[argc] = NULL;
}

/* The keyholder serving worker w. */
static struct proc *
parent_keyholder_of(struct parent *p, struct proc *w)
{
	return &p->keyholders.procs[w->id % p->keyholders.n];
}

/* A fresh channel between a worker and its keyholder, both running. */
static void
parent_link_keyholder(struct parent *p, struct proc *w)
{
	struct proc	*kh = parent_keyholder_of(p, w);
	struct ipc_wbuf	*wb;
	int		 sv[2];

	if (!proc_alive(w) || !proc_alive(kh))
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
	proc_send(kh, wb, sv[0]);
	proc_compose(w, IMSG_KH_CHANNEL, 0, sv[1], NULL, 0);
	proc_flush(kh);
	proc_flush(w);
}

static int
parent_spawn_worker(struct parent *p, struct proc *w)
{
	char	*argv[20], buf[128];

	parent_child_argv(p, w, argv, buf, sizeof(buf));
	if (proc_spawn(w, p->self_exe, argv) == -1)
		return -1;
	metrics_worker_start(&p->metrics, w);
	p->ps.cache_size = p->apply.conf->cache_size;
	pstore_worker_start(&p->ps, w);
	parent_link_keyholder(p, w);
	apply_worker_started(&p->apply, w);
	proc_flush(w);
	return 0;
}

static int
parent_spawn_keyholder(struct parent *p, struct proc *kh)
{
	char	*argv[20], buf[128];
	int	 i;

	parent_child_argv(p, kh, argv, buf, sizeof(buf));
	if (proc_spawn(kh, p->kh_exe, argv) == -1)
		return -1;
	apply_keyholder_started(&p->apply, kh);
	for (i = 0; i < p->workers.n; i++)
		if (parent_keyholder_of(p, &p->workers.procs[i]) == kh)
			parent_link_keyholder(p, &p->workers.procs[i]);
	proc_flush(kh);
	return 0;
}

static int
parent_restart_worker(struct proc *w, void *arg)
{
	struct parent	*p = arg;

	metrics_restart(&p->metrics, METRICS_WORKER);
	return parent_spawn_worker(p, w);
}

static int
parent_restart_keyholder(struct proc *kh, void *arg)
{
	struct parent	*p = arg;

	metrics_restart(&p->metrics, METRICS_KEYHOLDER);
	return parent_spawn_keyholder(p, kh);
}

/* At startup, once every keyholder has the key. */
static int
parent_start_workers(void *arg)
{
	struct parent	*p = arg;
	int		 i;

	for (i = 0; i < p->workers.n; i++)
		if (parent_spawn_worker(p, &p->workers.procs[i]) == -1)
			return -1;
	return 0;
}

static void
parent_started(void *arg, const char *err)
{
	parent_startup_done(arg, err);
}

static void
parent_child_died(struct parent *p, struct proc *c, int status)
{
	proc_exited(c, status);
	if (c->g == &p->workers) {
		metrics_retire(&p->metrics, c);
		pstore_child_gone(&p->ps, c);
		ocspclient_worker_gone(&p->ocsp, c);
	}
	apply_child_gone(&p->apply, c);
}

static void
parent_exit(struct parent *p)
{
	if (p->ps.be.be != NULL)
		p->ps.be.ops->close(p->ps.be.be);
	p->ps.be.be = NULL;
	lockfile_release(&p->pidfile, 1);
	log_info("exiting");
	exit(0);
}

static void
parent_shutdown_step(struct parent *p)
{
	if (proc_group_running(&p->workers) > 0)
		return;
	/* the workers are gone: every write they sent is committed */
	proc_group_compose(&p->keyholders, IMSG_CTL_SHUTDOWN, NULL, 0);
	if (proc_group_running(&p->keyholders) == 0)
		parent_exit(p);
}

static void
parent_sigchld(int sig, short ev, void *arg)
{
	struct parent	*p = arg;
	struct proc	*c;
	pid_t		 pid;
	int		 status, i;

	for (i = 0; i < 1024; i++) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			break;
		if ((c = proc_group_find(&p->workers, pid)) != NULL ||
		    (c = proc_group_find(&p->keyholders, pid)) != NULL)
			parent_child_died(p, c, status);
	}
	if (p->shutdown)
		parent_shutdown_step(p);
}

static void
parent_shutdown_force(int fd, short ev, void *arg)
{
	struct parent	*p = arg;

	log_warnx("children still running after the grace period; "
	    "killing them");
	proc_group_signal(&p->workers, SIGKILL);
	proc_group_signal(&p->keyholders, SIGKILL);
}

static void
parent_shutdown(struct parent *p)
{
	struct timeval		 tv;

	if (p->shutdown)
		return;
	p->shutdown = 1;
	log_info("shutting down");
	sdnotify_stopping();
	proc_group_stop(&p->workers);
	proc_group_stop(&p->keyholders);
	apply_shutdown(&p->apply);
	crlfetch_stop(&p->crlfetch);
	staple_stop(&p->staple);
	ocspclient_clear(&p->ocsp);
	proc_group_compose(&p->workers, IMSG_CTL_SHUTDOWN, NULL, 0);
	timerclear(&tv);
	tv.tv_sec = p->apply.conf->timeout_request + PARENT_SHUTDOWN_EXTRA;
	evtimer_assign(&p->shutdown_ev, p->base, parent_shutdown_force, p);
	evtimer_add(&p->shutdown_ev, &tv);
	parent_shutdown_step(p);
}

static void
parent_reload(struct parent *p)
{
	struct config	*conf;
	char		 err[1024];

	if (apply_busy(&p->apply)) {
		log_warnx("reload failed: a reload is in progress");
		metrics_reload(&p->metrics, 0);
		return;
	}
	log_info("reloading %s", p->conffile);
	sdnotify_reloading();
	if ((conf = config_parse(p->conffile, err, sizeof(err))) == NULL ||
	    apply_start(&p->apply, conf, 0, err, sizeof(err)) == -1) {
		log_warnx("reload failed: %s", err);
		metrics_reload(&p->metrics, 0);
		sdnotify_ready();
	}
}

/* A new OCSP staple for the configuration in use: to every worker. */
static void
parent_staple_push(void *arg, const uint8_t *der, size_t len)
{
	struct parent	*p = arg;
	struct proc	*w;
	size_t		 mark;
	int		 i;

	for (i = 0; i < p->workers.n; i++) {
		w = &p->workers.procs[i];
		if (!proc_alive(w))
			continue;
		mark = proc_queue_cost(w);
		if (cfgmsg_send_staple(&w->ipc, der, len) == -1)
			log_warn("worker %d: OCSP staple", w->id);
		/* ours to send: not held against the worker's bound */
		proc_allow(w, mark);
		proc_flush(w);
	}
}

/* A reload keeps the staple in use while it is good for the new one. */
static void
parent_staple_carry(void *arg, const struct config *conf, struct tlsmat *m)
{
	struct parent	*p = arg;

	staple_carry(&p->staple, conf, m);
}

/* A CRL refresh installed a new CRL file: apply it as SIGHUP would. */
static void
parent_crl_reload(void *arg)
{
	struct parent	*p = arg;

	if (!p->shutdown)
		parent_reload(p);
}

static void
parent_signal(int sig, short ev, void *arg)
{
	struct parent	*p = arg;

	switch (sig) {
	case SIGHUP:
		if (!p->shutdown)
			parent_reload(p);
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
static void
parent_startup_done(struct parent *p, const char *err)
{
	int		 fd;

	if (err != NULL) {
		log_warnx("%s", err);
		if (p->ready_fd != -1)
			dprintf(p->ready_fd, "%s\n", err);
		proc_group_signal(&p->workers, SIGKILL);
		proc_group_signal(&p->keyholders, SIGKILL);
		lockfile_release(&p->pidfile, 1);
		exit(1);
	}
	if (p->pidfile.fd != -1 && lockfile_write_pid(&p->pidfile) == -1)
		log_warn("pidfile %s", p->pidfile.path);
	log_info("started, version %s, %d workers, %d keyholders",
	    TODOD_VERSION, p->workers.n, p->keyholders.n);
	sdnotify_ready();
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
	struct config	*conf = p->apply.conf;
	char		 dir[PATH_MAX];
	void		*map;

	strlcpy(dir, conf->database, sizeof(dir));
	if (!store_backend_is_uri(conf->database) &&
	    mkdir(dirname(dir), 0700) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "database directory %.512s: %s", dir,
		    strerror(errno));
		return -1;
	}
	if (store_backend_open(&p->ps.be, conf->database, p->base, err,
	    errlen) == -1)
		return -1;
	/* taken now, written once started: a second todod stops here */
	if (conf->pidfile != NULL && lockfile_take(&p->pidfile,
	    conf->pidfile, "pidfile", conf->pidfile, err, errlen) == -1)
		return -1;
	if ((p->ps.state_fd = shm_create("todod-state",
	    sizeof(struct shm_state), &map)) == -1) {
		snprintf(err, errlen, "shared state: %s", strerror(errno));
		return -1;
	}
	p->ps.state = map;
	p->ps.state->todo_count = p->ps.be.ops->count(p->ps.be.be);
	return 0;
}

/* The modules below the parent, tied to the children's groups. */
static void
parent_modules_init(struct parent *p, struct config *conf)
{
	static const struct proc_hooks	 wh = {
		parent_dispatch_worker, parent_restart_worker
	}, kh = {
		parent_dispatch_keyholder, parent_restart_keyholder
	};

	proc_group_init(&p->workers, p->base, "worker", conf->prefork, &wh,
	    p);
	proc_group_init(&p->keyholders, p->base, "keyholder",
	    conf->keyholders, &kh, p);
	p->workers.keep_stderr = p->keyholders.keep_stderr = p->foreground;
	metrics_init(&p->metrics, &p->workers, p->ps.state, &p->ps.be);
	pstore_init(&p->ps, p->base, &p->workers, &p->metrics);
	ocspclient_init(&p->ocsp, p->base, &p->workers, &p->apply,
	    &p->metrics);
}

static void
parent_signals(struct parent *p)
{
	evsignal_assign(&p->sig_hup, p->base, SIGHUP, parent_signal, p);
	evsignal_assign(&p->sig_term, p->base, SIGTERM, parent_signal, p);
	evsignal_assign(&p->sig_int, p->base, SIGINT, parent_signal, p);
	evsignal_assign(&p->sig_chld, p->base, SIGCHLD, parent_sigchld, p);
	evsignal_add(&p->sig_hup, NULL);
	evsignal_add(&p->sig_term, NULL);
	evsignal_add(&p->sig_int, NULL);
	evsignal_add(&p->sig_chld, NULL);
}

/* A store other nodes share: their changes, its ticket secrets. */
static void
parent_store_change(void *arg, const struct store_item *it, int gone)
{
	struct parent	*p = arg;

	pstore_remote_change(&p->ps, it, gone);
}

static void
parent_store_changed(void *arg, int64_t count)
{
	struct parent	*p = arg;

	pstore_remote_changed(&p->ps, count);
}

static void
parent_store_tickets(void *arg, const struct proto_ticket_key *sec, int n)
{
	struct parent	*p = arg;

	apply_shared_tickets(&p->apply, sec, n);
}

static void
parent_share_store(struct parent *p, struct config *conf)
{
	static const struct store_shared_hooks	 sh = {
		parent_store_change, parent_store_changed,
		parent_store_tickets
	};

	if (p->ps.be.ops->share == NULL)
		return;
	p->ps.state->shared = 1;
	p->apply.shared = 1;
	p->ps.be.ops->share(p->ps.be.be, &sh, p, conf->tls.ticket_lifetime);
}

int
parent_main(struct config *conf, const char *conffile, int foreground,
    int verbose)
{
	static const struct apply_hooks	 ah = {
		parent_start_workers, parent_started, parent_staple_carry
	};
	struct parent	 pp, *p = &pp;
	char		 err[1024];
	int		 i;

	memset(p, 0, sizeof(*p));
	p->foreground = foreground;
	p->verbose = verbose;
	p->ready_fd = -1;
	p->ps.state_fd = -1;
	p->pidfile.fd = -1;
	if ((p->conffile = realpath(conffile, NULL)) == NULL)
		fatal("%s", conffile);
	parent_find_executables(p);

	/* what todod -n refuses, before anything is opened or started */
	if (check_config(conf, CHECK_QUIET, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "todod: %s\n", err);
		exit(1);
	}
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

	if ((p->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	/* the workers and keyholders exist before the configuration is in */
	apply_init(&p->apply, p->base, conf, &p->workers, &p->keyholders,
	    &p->metrics, &ah, p);
	if (parent_open_store(p, err, sizeof(err)) == -1 ||
	    listen_bind(NULL, conf, conf->prefork, err, sizeof(err)) == -1)
		parent_startup_done(p, err);
	parent_modules_init(p, conf);
	parent_share_store(p, conf);
	parent_signals(p);

	for (i = 0; i < p->keyholders.n; i++)
		if (parent_spawn_keyholder(p, &p->keyholders.procs[i]) == -1)
			parent_startup_done(p, "cannot start the keyholder");
	/* keys first; the workers start once every keyholder has them */
	if (apply_start(&p->apply, conf, 1, err, sizeof(err)) == -1)
		parent_startup_done(p, err);
	crlfetch_init(&p->crlfetch, p->base, &p->apply, parent_crl_reload, p);
	staple_init(&p->staple, p->base, &p->apply, parent_staple_push, p);

	event_base_dispatch(p->base);
	parent_exit(p);
	return 0;
}
