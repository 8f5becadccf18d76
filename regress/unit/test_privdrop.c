/*
 * Unit tests for common/privdrop.c: user lookup, the chroot directory
 * check, and privdrop_child() itself, run in forked children that report
 * what they see afterwards.  The chroot and setuid parts need root; as a
 * normal user the non-root path (rlimits only) is tested instead.
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <linux/capability.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "tap.h"

/* What a child saw after privdrop_child(), sent back over a pipe. */
struct seen {
	uid_t		 ruid, euid, suid;
	gid_t		 rgid, egid, sgid;
	int		 ngroups;
	gid_t		 group0;
	uint32_t	 capeff, capprm, capinh;
	int		 capbnd_net_raw;
	rlim_t		 nofile, nproc, core;
	int		 fork_errno;	/* 0 if fork worked */
	int		 open_errno;	/* opening /etc/passwd */
	int		 setuid_ok;
	char		 cwd[64];
};

static char	 base[PATH_MAX];

static int
contains(const char *s, const char *what)
{
	return strstr(s, what) != NULL;
}

static void
test_lookup(void)
{
	char		 err[256];
	uid_t		 uid = 1;
	gid_t		 gid = 1;
	struct passwd	*pw;
	int		 r;

	err[0] = '\0';
	r = privdrop_lookup("root", &uid, &gid, err, sizeof(err));
	TAP_OK(r == -1 && contains(err, "uid 0"),
	    "lookup: root is refused (%s)", err);

	err[0] = '\0';
	r = privdrop_lookup("todod-no-such-user", &uid, &gid, err,
	    sizeof(err));
	if (geteuid() == 0)
		TAP_OK(r == -1 && contains(err, "does not exist") &&
		    contains(err, "useradd -r -d /var/empty -s "
		    "/usr/sbin/nologin todod-no-such-user"),
		    "lookup: a missing user says how to create it (%s)", err);
	else
		TAP_OK(r == 0 && uid == getuid() && gid == getgid(),
		    "lookup: a missing user is no error when not root");

	if ((pw = getpwnam("nobody")) == NULL) {
		TAP_OK(1, "lookup: no user nobody here # SKIP");
		return;
	}
	r = privdrop_lookup("nobody", &uid, &gid, err, sizeof(err));
	TAP_OK(r == 0 && uid == 65534 && gid == pw->pw_gid,
	    "lookup: nobody is %u:%u", (unsigned)uid, (unsigned)gid);
}

static int
check(const char *dir, int create, char *err, size_t errlen)
{
	err[0] = '\0';
	return privdrop_check_chroot(dir, create, err, errlen);
}

static void
test_chroot_check(void)
{
	char		 err[512], dir[PATH_MAX + 32];
	struct stat	 st;
	mode_t		 um;
	int		 r, fd;

	r = check("var/empty", 1, err, sizeof(err));
	TAP_OK(r == -1 && contains(err, "not an absolute path"),
	    "chroot: a relative path is refused (%s)", err);

	if (geteuid() != 0) {
		r = check("/tmp", 0, err, sizeof(err));
		TAP_OK(r == -1 && contains(err, "/tmp") &&
		    contains(err, "writable by others"),
		    "chroot: /tmp is refused (%s)", err);
		return;
	}

	/* A umask that would make mkdir's mode wrong must not matter. */
	um = umask(027);
	snprintf(dir, sizeof(dir), "%s/empty", base);
	r = check(dir, 1, err, sizeof(err));
	TAP_OK(r == 0 && stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	    (st.st_mode & 07777) == 0755 && st.st_uid == 0,
	    "chroot: a missing directory is created root-owned 0755 (%s)",
	    err);
	umask(um);
	TAP_OK(check(dir, 0, err, sizeof(err)) == 0,
	    "chroot: the created directory passes the check (%s)", err);
	snprintf(dir, sizeof(dir), "%s/empty/", base);
	TAP_OK(check(dir, 0, err, sizeof(err)) == 0,
	    "chroot: a trailing slash is fine (%s)", err);

	/* a check only (todod -n, reload): where start-up would create it */
	snprintf(dir, sizeof(dir), "%s/missing", base);
	r = check(dir, 0, err, sizeof(err));
	TAP_OK(r == 0 && stat(dir, &st) == -1,
	    "chroot: missing, not created, its directory checked (%s)", err);
	snprintf(dir, sizeof(dir), "%s/nodir/missing", base);
	r = check(dir, 0, err, sizeof(err));
	TAP_OK(r == -1 && contains(err, "nodir") &&
	    contains(err, "No such file"),
	    "chroot: missing and nowhere to create it (%s)", err);
	snprintf(dir, sizeof(dir), "%s/a/b", base);
	r = check(dir, 1, err, sizeof(err));
	TAP_OK(r == -1 && contains(err, "parent directory must exist"),
	    "chroot: the parent must exist (%s)", err);

	snprintf(dir, sizeof(dir), "%s/empty", base);
	chmod(dir, 0775);
	r = check(dir, 0, err, sizeof(err));
	TAP_OK(r == -1 && contains(err, dir) &&
	    contains(err, "writable by group"),
	    "chroot: group-writable is refused (%s)", err);
	chmod(dir, 0757);
	r = check(dir, 0, err, sizeof(err));
	TAP_OK(r == -1 && contains(err, "writable by others"),
	    "chroot: world-writable is refused (%s)", err);
	chmod(dir, 0755);
	if (chown(dir, 65534, 0) == -1)
		abort();
	r = check(dir, 0, err, sizeof(err));
	TAP_OK(r == -1 && contains(err, "owned by uid 65534"),
	    "chroot: a directory not owned by root is refused (%s)", err);
	if (chown(dir, 0, 0) == -1)
		abort();

	/* Every component counts, as with sshd's ChrootDirectory. */
	chmod(base, 0777);
	r = check(dir, 0, err, sizeof(err));
	TAP_OK(r == -1 && contains(err, "component") && contains(err, base),
	    "chroot: a writable parent directory is refused (%s)", err);
	chmod(base, 0700);

	snprintf(dir, sizeof(dir), "%s/file", base);
	if ((fd = open(dir, O_CREAT | O_WRONLY, 0644)) == -1)
		abort();
	close(fd);
	r = check(dir, 1, err, sizeof(err));
	TAP_OK(r == -1 && contains(err, "not a directory"),
	    "chroot: a file is refused (%s)", err);
}

static void
seen_collect(struct seen *s)
{
	struct __user_cap_header_struct	 hdr;
	struct __user_cap_data_struct	 data[2];
	struct rlimit			 rl;
	gid_t				 groups[8];
	pid_t				 pid;
	int				 fd;

	memset(s, 0, sizeof(*s));
	getresuid(&s->ruid, &s->euid, &s->suid);
	getresgid(&s->rgid, &s->egid, &s->sgid);
	s->ngroups = getgroups(8, groups);
	s->group0 = s->ngroups > 0 ? groups[0] : (gid_t)-1;
	memset(&hdr, 0, sizeof(hdr));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	memset(data, 0xff, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) == 0) {
		s->capeff = data[0].effective | data[1].effective;
		s->capprm = data[0].permitted | data[1].permitted;
		s->capinh = data[0].inheritable | data[1].inheritable;
	} else
		s->capeff = s->capprm = s->capinh = 0xffffffff;
	s->capbnd_net_raw = prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0);
	getrlimit(RLIMIT_NOFILE, &rl);
	s->nofile = rl.rlim_max == rl.rlim_cur ? rl.rlim_cur : RLIM_INFINITY;
	getrlimit(RLIMIT_NPROC, &rl);
	s->nproc = rl.rlim_max == rl.rlim_cur ? rl.rlim_cur : RLIM_INFINITY;
	getrlimit(RLIMIT_CORE, &rl);
	s->core = rl.rlim_max == rl.rlim_cur ? rl.rlim_cur : RLIM_INFINITY;
	if ((pid = fork()) == 0)
		_exit(0);
	s->fork_errno = pid == -1 ? errno : 0;
	if (pid > 0)
		waitpid(pid, NULL, 0);
	if ((fd = open("/etc/passwd", O_RDONLY)) == -1)
		s->open_errno = errno;
	else
		close(fd);
	s->setuid_ok = setuid(0) == 0;
	if (getcwd(s->cwd, sizeof(s->cwd)) == NULL)
		strlcpy(s->cwd, "?", sizeof(s->cwd));
}

/* Run privdrop_child() in a child; its exit status, and what it saw. */
static int
drop_in_child(const char *dir, uid_t uid, gid_t gid, int nofile,
    struct seen *s)
{
	pid_t	 pid;
	int	 p[2], status;
	ssize_t	 n;

	memset(s, 0, sizeof(*s));
	if (pipe(p) == -1 || (pid = fork()) == -1)
		abort();
	if (pid == 0) {
		close(p[0]);
		privdrop_child(dir, uid, gid, nofile);
		seen_collect(s);
		n = write(p[1], s, sizeof(*s));
		_exit(n == sizeof(*s) ? 0 : 2);
	}
	close(p[1]);
	n = read(p[0], s, sizeof(*s));
	close(p[0]);
	if (waitpid(pid, &status, 0) == -1 || !WIFEXITED(status))
		return -1;
	if (WEXITSTATUS(status) == 0 && n != sizeof(*s))
		return -1;
	return WEXITSTATUS(status);
}

static int
has_cap(int cap)
{
	struct __user_cap_header_struct	 hdr;
	struct __user_cap_data_struct	 data[2];

	memset(&hdr, 0, sizeof(hdr));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, data) == -1)
		return 0;
	return (data[cap / 32].effective & (1U << (cap % 32))) != 0;
}

static void
test_child_root(void)
{
	struct seen	 s;
	struct rlimit	 rl;
	rlim_t		 want;
	char		 dir[PATH_MAX + 32];
	int		 r;

	snprintf(dir, sizeof(dir), "%s/empty", base);
	r = drop_in_child(dir, 65534, 65534, 32, &s);
	TAP_OK(r == 0, "child: privdrop_child as root returns");
	TAP_OK(s.ruid == 65534 && s.euid == 65534 && s.suid == 65534,
	    "child: uids %u/%u/%u", (unsigned)s.ruid, (unsigned)s.euid,
	    (unsigned)s.suid);
	TAP_OK(s.rgid == 65534 && s.egid == 65534 && s.sgid == 65534,
	    "child: gids %u/%u/%u", (unsigned)s.rgid, (unsigned)s.egid,
	    (unsigned)s.sgid);
	TAP_OK(s.ngroups == 1 && s.group0 == 65534,
	    "child: the only group is the user's (%d groups)", s.ngroups);
	TAP_OK(s.capeff == 0 && s.capprm == 0 && s.capinh == 0,
	    "child: no capabilities left (%x %x %x)", s.capeff, s.capprm,
	    s.capinh);
	TAP_OK(s.capbnd_net_raw == 0, "child: the bounding set is empty");
	TAP_OK(s.open_errno == ENOENT && strcmp(s.cwd, "/") == 0,
	    "child: chrooted, /etc/passwd is not there (%s), cwd %s",
	    strerror(s.open_errno), s.cwd);
	TAP_OK(!s.setuid_ok, "child: setuid(0) fails");
	TAP_OK(s.nofile == 32 && s.nproc == 0 && s.core == 0,
	    "child: rlimits nofile %llu nproc %llu core %llu",
	    (unsigned long long)s.nofile, (unsigned long long)s.nproc,
	    (unsigned long long)s.core);
	TAP_OK(s.fork_errno == EAGAIN, "child: fork fails: %s",
	    strerror(s.fork_errno));

	/*
	 * Above the inherited hard limit: root may raise it first, if it
	 * holds CAP_SYS_RESOURCE (containers often take that away).
	 */
	getrlimit(RLIMIT_NOFILE, &rl);
	want = rl.rlim_max == RLIM_INFINITY || has_cap(CAP_SYS_RESOURCE) ?
	    100000 : rl.rlim_max;
	r = drop_in_child(dir, 65534, 65534, 100000, &s);
	TAP_OK(r == 0 && s.nofile == want,
	    "child: descriptor limit %llu for 100000 (expected %llu)",
	    (unsigned long long)s.nofile, (unsigned long long)want);

	r = drop_in_child(dir, 0, 0, 32, &s);
	TAP_OK(r == 1, "child: dropping to uid 0 is fatal");
	snprintf(dir, sizeof(dir), "%s/missing", base);
	r = drop_in_child(dir, 65534, 65534, 32, &s);
	TAP_OK(r == 1, "child: a missing chroot directory is fatal");
	r = drop_in_child("relative", 65534, 65534, 32, &s);
	TAP_OK(r == 1, "child: a relative chroot directory is fatal");
}

static void
test_child_user(void)
{
	struct seen	 s;
	struct rlimit	 rl;
	int		 r;

	r = drop_in_child(NULL, getuid(), getgid(), 32, &s);
	TAP_OK(r == 0, "child: privdrop_child as uid %u returns",
	    (unsigned)getuid());
	TAP_OK(s.ruid == getuid() && s.euid == geteuid(),
	    "child: the uid is unchanged");
	TAP_OK(s.capeff == 0 && s.capprm == 0,
	    "child: no capabilities (%x %x)", s.capeff, s.capprm);
	TAP_OK(s.nofile == 32 && s.nproc == 0 && s.core == 0,
	    "child: rlimits nofile %llu nproc %llu core %llu",
	    (unsigned long long)s.nofile, (unsigned long long)s.nproc,
	    (unsigned long long)s.core);
	TAP_OK(s.fork_errno == EAGAIN, "child: fork fails: %s",
	    strerror(s.fork_errno));
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 100000) {
		r = drop_in_child(NULL, getuid(), getgid(), 100000, &s);
		TAP_OK(r == 0 && s.nofile == rl.rlim_max,
		    "child: descriptor limit capped at the hard limit %llu",
		    (unsigned long long)rl.rlim_max);
	}
}

/* The normal-user path, as nobody: the child's counts come back. */
static void
test_as_nobody(void)
{
	int	 p[2], counts[2] = { 0, 1 };
	pid_t	 pid;

	fflush(stdout);
	if (pipe(p) == -1 || (pid = fork()) == -1)
		abort();
	if (pid == 0) {
		close(p[0]);
		if (setgroups(0, NULL) == -1 ||
		    setresgid(65534, 65534, 65534) == -1 ||
		    setresuid(65534, 65534, 65534) == -1)
			_exit(1);
		test_child_user();
		counts[0] = tap_n;
		counts[1] = tap_failed;
		fflush(stdout);
		_exit(write(p[1], counts, sizeof(counts)) ==
		    sizeof(counts) ? 0 : 1);
	}
	close(p[1]);
	if (read(p[0], counts, sizeof(counts)) != sizeof(counts))
		TAP_OK(0, "the test as nobody reported back");
	else {
		tap_n = counts[0];
		tap_failed = counts[1];
	}
	close(p[0]);
	waitpid(pid, NULL, 0);
}

static void
test_cleanup(void)
{
	char	 path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/empty", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/file", base);
	unlink(path);
	if (rmdir(base) == -1)
		TAP_OK(0, "cleanup of %s: %s", base, strerror(errno));
}

int
main(void)
{
	log_init(1, 0);
	log_procinit("test_privdrop");
	test_lookup();
	if (geteuid() == 0) {
		strlcpy(base, "/run/todod-privdrop-XXXXXX", sizeof(base));
		if (mkdtemp(base) == NULL) {
			strlcpy(base, "/var/lib/todod-privdrop-XXXXXX",
			    sizeof(base));
			if (mkdtemp(base) == NULL)
				abort();
		}
		test_chroot_check();
		test_child_root();
		test_as_nobody();
		test_cleanup();
	} else {
		test_chroot_check();
		test_child_user();
	}
	return tap_done();
}
