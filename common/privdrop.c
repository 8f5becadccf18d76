/*
 * Privilege drop for todod's children.  The parent, as root, resolves the
 * user and checks the chroot directory once; every child then calls
 * privdrop_child() after its libraries are initialised and before
 * sandbox_child().  Every step is verified afterwards rather than trusted:
 * a child that is still privileged after this function returns would be a
 * silent failure of the whole design, so any doubt is fatal.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <linux/capability.h>

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define PRIVDROP_SANITIZED	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PRIVDROP_SANITIZED	1
#endif
#endif

#if defined(TODOD_SANDBOX_RELAXED) || defined(PRIVDROP_SANITIZED)
/*
 * Sanitizer builds only: with TODOD_SANDBOX_DISABLE=1 the child stays out
 * of the chroot and may create threads.  ASan and LSan read
 * /proc/self/maps to symbolise a report and to scan for leaks at exit, and
 * LSan stops the world from a cloned tracer task, which RLIMIT_NPROC 0
 * would forbid.  The uid/gid drop still happens.
 */
static int
privdrop_relaxed(void)
{
	const char	*s = getenv("TODOD_SANDBOX_DISABLE");

	return s != NULL && strcmp(s, "1") == 0;
}
#else
static int
privdrop_relaxed(void)
{
	return 0;
}
#endif

int
privdrop_lookup(const char *user, uid_t *uid, gid_t *gid, char *err,
    size_t errlen)
{
	struct passwd	*pw;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		if (errno != 0 && errno != ENOENT && errno != ESRCH) {
			snprintf(err, errlen, "user \"%s\": getpwnam: %s",
			    user, strerror(errno));
			return -1;
		}
		if (geteuid() != 0) {
			/* Not root: nobody to become; the value is unused. */
			*uid = getuid();
			*gid = getgid();
			return 0;
		}
		snprintf(err, errlen, "user \"%s\" does not exist; create it "
		    "with: useradd -r -d /var/empty -s /usr/sbin/nologin %s",
		    user, user);
		return -1;
	}
	/* Group 0 would still open root-group files: refuse it too. */
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errlen, "user \"%s\" has %s 0: the unprivileged "
		    "user must be neither root nor in group root", user,
		    pw->pw_uid == 0 ? "uid" : "gid");
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

/* One path component: a root-owned directory nobody else may write. */
static int
privdrop_check_dir(const char *path, const char *dir, char *err,
    size_t errlen)
{
	struct stat	 st;
	const char	*what = strcmp(path, dir) == 0 ? "chroot directory" :
			    "component of chroot path";

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s %s: %s", what, path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s %s: not a directory", what, path);
		return -1;
	}
	if (st.st_uid != 0) {
		snprintf(err, errlen, "%s %s: owned by uid %u, not root: "
		    "chown root %s", what, path, (unsigned)st.st_uid, path);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen, "%s %s: writable by %s (mode %04o): "
		    "chmod go-w %s", what, path, (st.st_mode & S_IWOTH) ?
		    "others" : "group", (unsigned)(st.st_mode & 07777), path);
		return -1;
	}
	return 0;
}

/* Create dir root-owned 0755, whatever the umask; its parent must exist. */
static int
privdrop_make_dir(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0755) == -1) {
		if (errno == EEXIST)
			return 0;	/* raced with someone: check it */
		snprintf(err, errlen, "chroot directory %s: mkdir: %s%s", dir,
		    strerror(errno), errno == ENOENT ?
		    " (its parent directory must exist)" : "");
		return -1;
	}
	if (chown(dir, 0, 0) == -1 || chmod(dir, 0755) == -1) {
		snprintf(err, errlen, "chroot directory %s: %s", dir,
		    strerror(errno));
		return -1;
	}
	log_info("created chroot directory %s", dir);
	return 0;
}

int
privdrop_check_chroot(const char *dir, int create, char *err, size_t errlen)
{
	struct stat	 st;
	char		 path[PATH_MAX];
	size_t		 len, i;

	if (dir == NULL || dir[0] != '/') {
		snprintf(err, errlen, "chroot directory %s: not an absolute "
		    "path", dir == NULL ? "(none)" : dir);
		return -1;
	}
	if ((len = strlcpy(path, dir, sizeof(path))) >= sizeof(path)) {
		snprintf(err, errlen, "chroot directory %s: path too long",
		    dir);
		return -1;
	}
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	if (stat(path, &st) == -1 && errno == ENOENT) {
		if (create && privdrop_make_dir(path, err, errlen) == -1)
			return -1;
		/* a check only: the directory start-up would create it in */
		if (!create && (len = strrchr(path, '/') - path) == 0)
			return privdrop_check_dir("/", "", err, errlen);
		if (!create)
			path[len] = '\0';
	}

	/*
	 * Like sshd's ChrootDirectory: every component, not just the last,
	 * must be root's, or its owner could swap the directory for a
	 * symlink to one with a setuid binary or a writable /etc.
	 */
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (privdrop_check_dir(path, dir, err, errlen) == -1)
			return -1;
		if (i < len)
			path[i] = '/';
	}
	return privdrop_check_dir("/", "", err, errlen);
}

/* Read this process's capability sets with capget(2). */
static int
privdrop_caps_get(struct __user_cap_data_struct *data)
{
	struct __user_cap_header_struct	 hdr;

	memset(&hdr, 0, sizeof(hdr));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	hdr.pid = 0;
	memset(data, 0, 2 * sizeof(*data));
	return syscall(SYS_capget, &hdr, data);
}

static int
privdrop_caps_empty(const struct __user_cap_data_struct *data)
{
	int	 i;

	for (i = 0; i < 2; i++)
		if (data[i].effective != 0 || data[i].permitted != 0 ||
		    data[i].inheritable != 0)
			return 0;
	return 1;
}

/*
 * Effective, permitted and inheritable sets must all be empty.  After
 * setresuid() away from root the kernel has emptied them; a normal user
 * started with file or ambient capabilities gets them cleared here.
 */
static void
privdrop_caps_clear(void)
{
	struct __user_cap_header_struct	 hdr;
	struct __user_cap_data_struct	 data[2];

	if (privdrop_caps_get(data) == -1)
		fatal("%s: capget", __func__);
	if (privdrop_caps_empty(data))
		return;
	memset(&hdr, 0, sizeof(hdr));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) == -1)
		fatal("%s: capset", __func__);
	if (privdrop_caps_get(data) == -1)
		fatal("%s: capget", __func__);
	if (!privdrop_caps_empty(data))
		fatalx("%s: capabilities still held after capset", __func__);
}

/*
 * Empty the bounding and ambient sets while we still hold CAP_SETPCAP, so
 * that nothing, not even an execve the filter would refuse anyway, can
 * bring a capability back.  The loop ends at the first number this kernel
 * does not know.
 */
static void
privdrop_bounding_clear(void)
{
	int	 cap;

	for (cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL && cap > 0)
			break;
		fatal("%s: PR_CAPBSET_DROP %d", __func__, cap);
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == -1 &&
	    errno != EINVAL)
		fatal("%s: PR_CAP_AMBIENT_CLEAR_ALL", __func__);
	if (prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0) != 0)
		fatalx("%s: CAP_SYS_ADMIN still in the bounding set",
		    __func__);
}

static void
privdrop_verify(uid_t uid, gid_t gid)
{
	uid_t	 ru, eu, su;
	gid_t	 rg, eg, sg, groups[2];
	int	 n;

	if (getresuid(&ru, &eu, &su) == -1 || getresgid(&rg, &eg, &sg) == -1)
		fatal("%s: getresuid", __func__);
	if (ru != uid || eu != uid || su != uid)
		fatalx("%s: uids are %u/%u/%u, not %u", __func__,
		    (unsigned)ru, (unsigned)eu, (unsigned)su, (unsigned)uid);
	if (rg != gid || eg != gid || sg != gid)
		fatalx("%s: gids are %u/%u/%u, not %u", __func__,
		    (unsigned)rg, (unsigned)eg, (unsigned)sg, (unsigned)gid);
	if ((n = getgroups(2, groups)) == -1)
		fatal("%s: getgroups", __func__);
	if (n > 1 || (n == 1 && groups[0] != gid))
		fatalx("%s: supplementary groups remain", __func__);
	/* The real test: the way back must be shut. */
	if (setuid(0) != -1 || seteuid(0) != -1)
		fatalx("%s: could regain uid 0", __func__);
	if (setgid(0) != -1 || setegid(0) != -1)
		fatalx("%s: could regain gid 0", __func__);
}

static void
privdrop_setlimit(int resource, rlim_t value, const char *name)
{
	struct rlimit	 rl;

	rl.rlim_cur = rl.rlim_max = value;
	if (setrlimit(resource, &rl) == -1)
		fatal("%s: setrlimit %s %llu", __func__, name,
		    (unsigned long long)value);
}

/*
 * The descriptor limit, both soft and hard so that it cannot be raised
 * again.  Root (with CAP_SYS_RESOURCE) may go above the inherited hard
 * limit, so as root this runs before the uid drop; otherwise the hard
 * limit is the most we get, and we say so.
 */
static void
privdrop_nofile(int nofile)
{
	struct rlimit	 rl;
	rlim_t		 want = (rlim_t)nofile;

	if (nofile <= 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		fatal("%s: getrlimit", __func__);
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return;
		if (errno != EPERM)
			fatal("%s: setrlimit RLIMIT_NOFILE %d", __func__,
			    nofile);
		if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
			fatal("%s: getrlimit", __func__);
		log_info("descriptor limit %d is above the hard limit %llu; "
		    "using %llu", nofile, (unsigned long long)rl.rlim_max,
		    (unsigned long long)rl.rlim_max);
		want = rl.rlim_max;
	}
	/* valgrind refuses any change of the hard limit: relaxed builds only */
	if (privdrop_relaxed()) {
		rl.rlim_cur = rl.rlim_max = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			log_warn("relaxed: descriptor limit left as it is");
		return;
	}
	privdrop_setlimit(RLIMIT_NOFILE, want, "RLIMIT_NOFILE");
}

/*
 * RLIMIT_FSIZE is left alone: children open no files (the filter forbids
 * it), and the only regular file they may write is a redirected stderr in
 * the foreground, where SIGXFSZ would kill them for logging.
 */
/*
 * The kernel clears the parent-death signal whenever a process changes its
 * credentials, so the one the parent armed before execve is gone after the
 * drop: arm it again.  A parent that died in between would go unnoticed
 * (the signal is only sent on a death after arming), hence the check that
 * the parent is still the one we started with.
 */
static void
privdrop_pdeathsig(pid_t ppid)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) == -1)
		fatal("%s: PR_SET_PDEATHSIG", __func__);
	if (getppid() != ppid)
		fatalx("%s: the parent (pid %ld) has exited", __func__,
		    (long)ppid);
}

void
privdrop_child(const char *dir, uid_t uid, gid_t gid, int nofile)
{
	int	 relaxed = privdrop_relaxed();
	pid_t	 ppid = getppid();

	if (geteuid() == 0) {
		if (uid == 0 || gid == 0)
			fatalx("%s: refusing to run as uid %u gid %u",
			    __func__, (unsigned)uid, (unsigned)gid);
		if (relaxed)
			log_info("TODOD_SANDBOX_DISABLE: no chroot");
		else {
			if (dir == NULL || dir[0] != '/')
				fatalx("%s: no absolute chroot directory",
				    __func__);
			if (chroot(dir) == -1)
				fatal("%s: chroot %s", __func__, dir);
			if (chdir("/") == -1)
				fatal("%s: chdir / in %s", __func__, dir);
		}
		privdrop_nofile(nofile);
		privdrop_bounding_clear();
		if (setgroups(1, &gid) == -1)
			fatal("%s: setgroups %u", __func__, (unsigned)gid);
		if (setresgid(gid, gid, gid) == -1)
			fatal("%s: setresgid %u", __func__, (unsigned)gid);
		if (setresuid(uid, uid, uid) == -1)
			fatal("%s: setresuid %u", __func__, (unsigned)uid);
		privdrop_verify(uid, gid);
	} else {
		log_debug("running as uid %u: no chroot and no privilege drop",
		    (unsigned)geteuid());
		privdrop_nofile(nofile);
	}
	privdrop_caps_clear();
	privdrop_pdeathsig(ppid);

	privdrop_setlimit(RLIMIT_CORE, 0, "RLIMIT_CORE");
	/*
	 * No new processes or threads.  The limit counts every process of
	 * the real uid and is checked by fork and clone, never against the
	 * ones already running, so 0 is right even for a developer whose
	 * shell shares the uid.  It must follow setresuid(), which compares
	 * the new user's process count with this limit.
	 */
	if (!relaxed)
		privdrop_setlimit(RLIMIT_NPROC, 0, "RLIMIT_NPROC");
}
