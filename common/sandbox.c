/*
 * seccomp filters for todod's children, built with libseccomp.
 *
 * Each role has one allowlist below, one system call per line, the two
 * lists next to each other so that a reviewer can compare them.  Anything
 * not listed kills the whole process (SCMP_ACT_KILL_PROCESS): a
 * compromised worker that tries to open a file, start a program or make a
 * socket dies on the spot, and the parent restarts it.  Arguments are
 * checked where that is cheap and means something: fcntl and futex only
 * with the commands used, mmap never with PROT_EXEC, shutdown only
 * SHUT_WR.  fstat is the fstat system call alone (sandbox_fstat()):
 * newfstatat, which glibc's fstat() and stat() both use, is denied with
 * EACCES, because a filter sees only its flags, not its path, and the
 * kernel ignores AT_EMPTY_PATH when a path is given.  EACCES rather than a
 * kill: stdio probes a stream with fstat() before its first buffered write
 * and copes with a failure.  (The worker names its peers with
 * NI_NUMERICSCOPE: without it glibc's getnameinfo() opens a socket to
 * name a link-local peer's interface.)
 *
 * libseccomp checks the architecture first: only the native one is
 * accepted, and on x86_64 that check also rejects x32 system call numbers
 * (bit 30 set), so neither can reach calls under other numbers.  Both
 * always kill, in the debug build too.
 *
 * Everything a role needs from the file system or the network is set up
 * before the filter goes on: libraries initialised, listening sockets and
 * channels inherited or received as descriptors.  abort() needs
 * rt_sigprocmask and tgkill, which are not allowed: a child that aborts
 * dies of SIGSYS rather than SIGABRT.
 *
 * Build variants:
 *  -DTODOD_SANDBOX_DEBUG	the default action traps instead of killing;
 *				a SIGSYS handler writes the offending call's
 *				name and number to stderr, then the process
 *				dies of SIGSYS as it would have anyway.
 *  -DTODOD_SANDBOX_RELAXED	(and any ASan build) honour
 *				TODOD_SANDBOX_DISABLE=1: no filter, no chroot,
 *				no RLIMIT_NPROC (see privdrop.c), because the
 *				sanitizer runtimes need /proc/self/maps and
 *				their own threads and system calls.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/futex.h>

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZED	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZED	1
#endif
#endif

#ifdef TODOD_SANDBOX_DEBUG
#define SANDBOX_DEFAULT		SCMP_ACT_TRAP
#else
#define SANDBOX_DEFAULT		SCMP_ACT_KILL_PROCESS
#endif

struct sandbox_rule {
	int			 nr;	/* SCMP_SYS(name) */
	const char		*name;
	uint32_t		 action;
	int			 arg;	/* -1: any arguments */
	enum scmp_compare	 op;
	uint64_t		 a, b;	/* operands for op */
};

#define ALLOW(s)							\
	{ SCMP_SYS(s), #s, SCMP_ACT_ALLOW, -1, 0, 0, 0 }
/* Allowed when argument n equals v. */
#define ALLOW_ARG(s, n, v)						\
	{ SCMP_SYS(s), #s, SCMP_ACT_ALLOW, n, SCMP_CMP_EQ, v, 0 }
/* Allowed when argument n has none of the bits m. */
#define ALLOW_NOBITS(s, n, m)						\
	{ SCMP_SYS(s), #s, SCMP_ACT_ALLOW, n, SCMP_CMP_MASKED_EQ, m, 0 }
/* Fails with errno e instead of killing. */
#define DENY(s, e)							\
	{ SCMP_SYS(s), #s, SCMP_ACT_ERRNO(e), -1, 0, 0, 0 }

/*
 * The worker: TLS and HTTP on accepted sockets, its channels to the parent
 * and the keyholder, libevent's epoll loop, shared segments received from
 * the parent.
 */
static const struct sandbox_rule sandbox_worker[] = {
	ALLOW(accept4),
	ALLOW(brk),
	ALLOW(clock_gettime),		/* vDSO fallback */
	ALLOW(close),
	ALLOW(epoll_ctl),
	ALLOW(epoll_pwait),		/* epoll_wait on arm64 */
	ALLOW(epoll_wait),
	ALLOW(exit_group),
	ALLOW_ARG(fcntl, 1, F_GETFL),
	ALLOW_ARG(fcntl, 1, F_GET_SEALS),	/* shm_map() */
	ALLOW_ARG(fcntl, 1, F_SETFL),
	ALLOW_ARG(futex, 1, FUTEX_WAKE_PRIVATE),	/* pthread_once() */
	ALLOW(getpid),			/* OpenSSL's DRBG fork check */
	ALLOW(getrandom),		/* OpenSSL's DRBG reseeds */
	ALLOW(gettimeofday),		/* vDSO fallback */
	ALLOW(lseek),			/* dprintf() to stderr probes it */
	ALLOW_NOBITS(mmap, 2, PROT_EXEC),	/* also shm_map() */
	ALLOW(mremap),
	ALLOW(munmap),
	ALLOW(fstat),			/* shm_map(), sandbox_fstat() */
	DENY(newfstatat, EACCES),	/* stat(), glibc's fstat() */
	ALLOW(poll),			/* keyholder replies, with a timeout */
	ALLOW(ppoll),			/* poll on arm64 */
	ALLOW(read),
	ALLOW(recvmsg),
	ALLOW(restart_syscall),		/* poll resumed after SIGSTOP */
	ALLOW(rt_sigreturn),		/* libevent's signal handler */
	ALLOW(sendmsg),
	ALLOW_ARG(shutdown, 1, SHUT_WR),	/* lingering close */
	ALLOW(time),			/* vDSO fallback */
	ALLOW(write),
};

/*
 * The keyholder: reads key files passed as descriptors, answers signing
 * requests on its channels with poll(2), and nothing else.
 */
static const struct sandbox_rule sandbox_keyholder[] = {
	ALLOW(brk),
	ALLOW(clock_gettime),		/* vDSO fallback */
	ALLOW(close),
	ALLOW(exit_group),
	ALLOW_ARG(fcntl, 1, F_SETFL),	/* worker channels non-blocking */
	ALLOW_ARG(futex, 1, FUTEX_WAKE_PRIVATE),	/* pthread_once() */
	ALLOW(getpid),			/* OpenSSL's DRBG fork check */
	ALLOW(getrandom),		/* signing nonces, blinding */
	ALLOW(lseek),			/* dprintf() to stderr probes it */
	ALLOW_NOBITS(mmap, 2, PROT_EXEC),
	ALLOW(mremap),
	ALLOW(munmap),
	ALLOW(fstat),			/* sandbox_fstat() */
	DENY(newfstatat, EACCES),	/* stat(), glibc's fstat() */
	ALLOW(poll),
	ALLOW(ppoll),			/* poll on arm64 */
	ALLOW(read),
	ALLOW(recvmsg),
	ALLOW(restart_syscall),		/* poll resumed after SIGSTOP */
	ALLOW(sendmsg),
	ALLOW(write),
};

/*
 * Added to the keyholder's list when it signs with a PKCS#11 module.
 * SoftHSM, after C_Initialize, opens, reads, locks (fcntl record
 * locks) and at login rewrites its token files for every operation;
 * the C_Initialize that finds a returned token scans its directory.
 * A hardware token's module would need its device or daemon socket
 * instead; this list is what SoftHSM 2.6 was seen to use.  It logs
 * a wrong PIN with syslog(3), which must fail, not kill.
 */
static const struct sandbox_rule sandbox_keyholder_p11[] = {
	ALLOW(openat),
	ALLOW_ARG(fcntl, 1, F_GETFL),
	ALLOW_ARG(fcntl, 1, F_GETLK),
	ALLOW_ARG(fcntl, 1, F_SETLK),
	ALLOW_ARG(fcntl, 1, F_SETLKW),
	ALLOW(ftruncate),
	ALLOW(fsync),
	ALLOW(fdatasync),
	ALLOW(getdents64),
	ALLOW(newfstatat),		/* its fstat(), lstat() of entries */
	DENY(socket, EACCES),		/* SoftHSM's syslog(3): no log */
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#if defined(TODOD_SANDBOX_RELAXED) || defined(SANDBOX_SANITIZED)
static int
sandbox_disabled(void)
{
	const char	*s = getenv("TODOD_SANDBOX_DISABLE");

	return s != NULL && strcmp(s, "1") == 0;
}
#else
static int
sandbox_disabled(void)
{
	if (getenv("TODOD_SANDBOX_DISABLE") != NULL)
		log_warnx("TODOD_SANDBOX_DISABLE ignored: only sanitizer "
		    "builds honour it");
	return 0;
}
#endif

#ifdef TODOD_SANDBOX_DEBUG
#define SANDBOX_MAXNR	1024
static const char	*sandbox_names[SANDBOX_MAXNR];

static void
sandbox_put(const char *s)
{
	(void)!write(STDERR_FILENO, s, strlen(s));
}

static void
sandbox_put_num(unsigned long v, int base)
{
	char	 buf[32], *p = buf + sizeof(buf) - 1;

	*p = '\0';
	do {
		*--p = "0123456789abcdef"[v % base];
		v /= base;
	} while (v != 0 && p > buf);
	sandbox_put(p);
}

/*
 * Async-signal-safe: only write(2) and the name table filled before the
 * filter went on.  SA_RESETHAND has restored the default action and
 * SIGSYS stays blocked until we return, so raise() leaves it pending (or,
 * if raise's own calls are not allowed, traps and kills at once); either
 * way the process dies of SIGSYS, as a kill-by-default filter would do.
 */
static void
sandbox_sigsys(int sig, siginfo_t *si, void *uc)
{
	int	 nr = si->si_syscall;

	sandbox_put("sandbox: forbidden system call ");
	if (nr >= 0 && nr < SANDBOX_MAXNR && sandbox_names[nr] != NULL)
		sandbox_put(sandbox_names[nr]);
	else
		sandbox_put("?");
	sandbox_put(" (");
	sandbox_put_num((unsigned)nr, 10);
	sandbox_put(", arch 0x");
	sandbox_put_num(si->si_arch, 16);
	sandbox_put(") at 0x");
	sandbox_put_num((unsigned long)si->si_call_addr, 16);
	sandbox_put(" in pid ");
	sandbox_put_num((unsigned long)getpid(), 10);
	sandbox_put("\n");
	raise(SIGSYS);
}

static void
sandbox_debug_init(void)
{
	struct sigaction	 sa;
	int			 i;

	for (i = 0; i < SANDBOX_MAXNR; i++)
		sandbox_names[i] = seccomp_syscall_resolve_num_arch(
		    SCMP_ARCH_NATIVE, i);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_sigaction = sandbox_sigsys;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	if (sigaction(SIGSYS, &sa, NULL) == -1)
		fatal("%s: sigaction SIGSYS", __func__);
}
#endif

/*
 * Add one rule.  A call that does not exist on this architecture (poll
 * on arm64, say) has a negative pseudo number and is skipped.  Returns the
 * number of rules added (0 or 1), or -1.
 */
static int
sandbox_rule_add(scmp_filter_ctx ctx, const struct sandbox_rule *r)
{
	struct scmp_arg_cmp	 cmp;
	int			 rc;

	if (r->arg == -1)
		rc = seccomp_rule_add(ctx, r->action, r->nr, 0);
	else {
		memset(&cmp, 0, sizeof(cmp));
		cmp.arg = r->arg;
		cmp.op = r->op;
		cmp.datum_a = r->a;
		cmp.datum_b = r->b;
		rc = seccomp_rule_add_array(ctx, r->action, r->nr, 1, &cmp);
	}
	if (rc == 0)
		return 1;
	if (r->nr < 0)
		return 0;
	errno = -rc;
	log_warn("%s: seccomp_rule_add %s", __func__, r->name);
	return -1;
}

static scmp_filter_ctx
sandbox_build(const struct sandbox_rule *rules, size_t n, int *count)
{
	scmp_filter_ctx	 ctx;
	size_t		 i;
	int		 r;

	*count = 0;
	if ((ctx = seccomp_init(SANDBOX_DEFAULT)) == NULL) {
		log_warnx("%s: seccomp_init failed", __func__);
		return NULL;
	}
	/*
	 * A foreign architecture kills the process too (libseccomp's default
	 * kills only the thread).  no_new_privs is set and checked by us;
	 * TSYNC puts any thread a library might have started under the same
	 * filter, or fails the load.
	 */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL_PROCESS) != 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) != 0 ||
	    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1) != 0) {
		log_warnx("%s: seccomp_attr_set failed", __func__);
		goto fail;
	}
	for (i = 0; i < n; i++) {
		if ((r = sandbox_rule_add(ctx, &rules[i])) == -1)
			goto fail;
		*count += r;
	}
	return ctx;
 fail:
	seccomp_release(ctx);
	return NULL;
}

/*
 * a, then b.  A rule of b overrides a's rules for the same call with
 * another action: the token's list allows what the keyholder's denies.
 */
static struct sandbox_rule *
sandbox_join(const struct sandbox_rule *a, size_t na,
    const struct sandbox_rule *b, size_t nb, size_t *n)
{
	struct sandbox_rule	*r;
	size_t			 i, j;

	if ((r = reallocarray(NULL, na + nb, sizeof(*r))) == NULL)
		fatal("%s", __func__);
	for (i = *n = 0; i < na; i++) {
		for (j = 0; j < nb; j++)
			if (b[j].nr == a[i].nr && b[j].action != a[i].action)
				break;
		if (j == nb)
			r[(*n)++] = a[i];
	}
	memcpy(r + *n, b, nb * sizeof(*r));
	*n += nb;
	return r;
}

void
sandbox_child(enum sandbox_role role)
{
	const struct sandbox_rule	*rules;
	struct sandbox_rule		*both = NULL;
	const char			*name;
	scmp_filter_ctx			 ctx;
	size_t				 n;
	int				 count, rc;

	switch (role) {
	case SANDBOX_WORKER:
		rules = sandbox_worker;
		n = NELEM(sandbox_worker);
		name = "worker";
		break;
	case SANDBOX_KEYHOLDER:
		rules = sandbox_keyholder;
		n = NELEM(sandbox_keyholder);
		name = "keyholder";
		break;
	case SANDBOX_KEYHOLDER_P11:
		rules = both = sandbox_join(sandbox_keyholder,
		    NELEM(sandbox_keyholder), sandbox_keyholder_p11,
		    NELEM(sandbox_keyholder_p11), &n);
		name = "keyholder (PKCS#11)";
		break;
	default:
		fatalx("%s: unknown role %d", __func__, (int)role);
	}

	/* Without it, an execve of a setuid binary could undo the drop. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("%s: prctl PR_SET_NO_NEW_PRIVS", __func__);
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		fatalx("%s: no_new_privs did not stick", __func__);

	if (sandbox_disabled()) {
		log_info("TODOD_SANDBOX_DISABLE=1: no seccomp filter for the "
		    "%s (sanitizer build)", name);
		free(both);
		return;
	}
	ctx = sandbox_build(rules, n, &count);
	free(both);
	if (ctx == NULL)
		fatalx("%s: cannot build the %s filter", __func__, name);
#ifdef TODOD_SANDBOX_DEBUG
	sandbox_debug_init();
#endif
	if ((rc = seccomp_load(ctx)) != 0) {
		errno = -rc;
		fatal("%s: seccomp_load (%s)", __func__, name);
	}
	seccomp_release(ctx);
	log_debug("sandbox: %s filter installed, %d rules, %s by default",
	    name, count, SANDBOX_DEFAULT == SCMP_ACT_TRAP ? "trap" : "kill");
}

int
sandbox_fstat(int fd, struct stat *st)
{
	return syscall(SYS_fstat, fd, st);
}
