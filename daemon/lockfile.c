#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lockfile.h"

#define LOCKFILE_TRIES	5

static void
lockfile_wrlock(struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = F_WRLCK;
	fl->l_whence = SEEK_SET;	/* start 0, length 0: the whole file */
}

/*
 * The pid of the process holding fd's file, 0 if it let go meanwhile, -1
 * when the kernel cannot say (a holder in another pid namespace).
 */
static long
lockfile_holder(int fd)
{
	struct flock	 fl;

	lockfile_wrlock(&fl);
	if (fcntl(fd, F_GETLK, &fl) == -1)
		return -1;
	if (fl.l_type == F_UNLCK)
		return 0;
	return fl.l_pid > 0 ? (long)fl.l_pid : -1;
}

/*
 * Is the locked descriptor still the file at path?  An owner that exits
 * unlinks its pidfile while holding the lock: a lock won on the unlinked
 * file after that would guard nothing.
 */
static int
lockfile_same(int fd, const char *path)
{
	struct stat	 a, b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* One attempt: 0 locked, 1 try again, -1 failed with err set. */
static int
lockfile_try(struct lockfile *lf, const char *path, const char *what,
    const char *name, char *err, size_t errlen)
{
	struct flock	 fl;
	long		 pid;

	if ((lf->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0644)) == -1) {
		snprintf(err, errlen, "%s %s: lock file %s: %s", what, name,
		    path, strerror(errno));
		return -1;
	}
	lockfile_wrlock(&fl);
	if (fcntl(lf->fd, F_SETLK, &fl) == 0) {
		if (lockfile_same(lf->fd, path))
			return 0;
	} else if (errno != EACCES && errno != EAGAIN) {
		snprintf(err, errlen, "%s %s: lock file %s: %s", what, name,
		    path, strerror(errno));
		goto fail;
	} else if ((pid = lockfile_holder(lf->fd)) != 0) {
		if (pid > 0)
			snprintf(err, errlen, "%s %s in use by pid %ld (lock "
			    "file %s): stop that todod first, or give this "
			    "one another %s", what, name, pid, path, what);
		else
			snprintf(err, errlen, "%s %s in use by another process "
			    "(lock file %s)", what, name, path);
		goto fail;
	}
	close(lf->fd);
	lf->fd = -1;
	return 1;
 fail:
	close(lf->fd);
	lf->fd = -1;
	return -1;
}

int
lockfile_take(struct lockfile *lf, const char *path, const char *what,
    const char *name, char *err, size_t errlen)
{
	int	 i, r = 1;

	lf->fd = -1;
	lf->path = NULL;
	for (i = 0; i < LOCKFILE_TRIES && r == 1; i++)
		r = lockfile_try(lf, path, what, name, err, errlen);
	if (r == 1)
		snprintf(err, errlen, "%s %s: lock file %s keeps changing",
		    what, name, path);
	if (r != 0)
		return -1;
	if ((lf->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		lockfile_release(lf, 0);
		return -1;
	}
	return 0;
}

int
lockfile_write_pid(struct lockfile *lf)
{
	char	 buf[32];
	int	 n;

	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (ftruncate(lf->fd, 0) == -1 ||
	    pwrite(lf->fd, buf, n, 0) != n)
		return -1;
	return 0;
}

void
lockfile_release(struct lockfile *lf, int remove)
{
	if (lf->fd == -1)
		return;
	if (remove && lf->path != NULL)
		unlink(lf->path);
	close(lf->fd);
	lf->fd = -1;
	free(lf->path);
	lf->path = NULL;
}
