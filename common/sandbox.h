/*
 * Privilege drop and seccomp for todod's children, in the order OpenBSD
 * daemons and OpenSSH use: root-only setup, chroot, chdir("/"), setgroups,
 * setresgid, setresuid, then no_new_privs, rlimits and a kill-by-default
 * seccomp filter.  The allowlists of both roles live side by side in
 * sandbox.c so that a reviewer can compare them.
 */
#ifndef TODOD_SANDBOX_H
#define TODOD_SANDBOX_H

#include <sys/types.h>
#include <sys/stat.h>

enum sandbox_role {
	SANDBOX_WORKER,
	SANDBOX_KEYHOLDER,
	SANDBOX_KEYHOLDER_P11	/* and what a software token needs */
};

/*
 * Resolve user (by name) for a later privdrop; as root a missing user is a
 * fatal error that says how to create it.  Returns 0, or -1 with err set.
 */
int	privdrop_lookup(const char *, uid_t *, gid_t *, char *, size_t);

/*
 * Check the chroot directory and every component of its path, as sshd
 * does: owned by root, not writable by group or others.  A missing chroot
 * is created (root-owned 0755) if create is set; otherwise only the
 * directory it would be created in is checked.  -1 with err set.
 */
int	privdrop_check_chroot(const char *, int, char *, size_t);

/*
 * In a child, as root: chroot to dir, chdir("/"), drop to uid/gid with no
 * supplementary groups.  As a normal user: nothing (logged once).  Then,
 * in both cases: rlimits (no core files, no new processes, a bounded number
 * of descriptors).  Fatal on any failure.
 */
void	privdrop_child(const char *, uid_t, gid_t, int);

/*
 * no_new_privs and the role's seccomp filter (kill by default; arch check
 * first).  Everything the role needs must already be initialised.  The
 * environment variable TODOD_SANDBOX_DISABLE=1 is honoured only in builds
 * made with -DTODOD_SANDBOX_RELAXED (the sanitizer build).
 */
void	sandbox_child(enum sandbox_role);

/*
 * fstat(2) as the filters allow it: the fstat system call itself.  glibc's
 * fstat() is newfstatat(fd, "", st, AT_EMPTY_PATH), and a filter cannot
 * tell that from a lookup of a path, so newfstatat is denied.
 */
int	sandbox_fstat(int, struct stat *);

#endif
