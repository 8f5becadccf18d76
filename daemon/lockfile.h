/*
 * Exclusive locks that make one todod the only user of its files: the
 * database (through DATABASE.lock beside it) and the pidfile.  POSIX record
 * locks (fcntl F_SETLK) on a file of their own: the kernel releases them
 * when the holding process exits or crashes, fork does not pass them to
 * children, and F_GETLK names the holder.  SQLite takes locks of the same
 * kind on the database, its -wal and -shm; a separate file keeps ours out
 * of its way (closing any descriptor of a file drops every such lock the
 * process holds on it).
 */
#ifndef TODOD_LOCKFILE_H
#define TODOD_LOCKFILE_H

#include <stddef.h>

struct lockfile {
	int	 fd;		/* -1: not held */
	char	*path;
};

/*
 * Create or open path and lock it.  On failure err gets "WHAT NAME in use
 * by pid N" (another process holds it) or the file's error; -1.
 */
int	lockfile_take(struct lockfile *, const char *, const char *,
	    const char *, char *, size_t);
/* Replace the content with our pid and a newline (a pidfile). */
int	lockfile_write_pid(struct lockfile *);
/* Unlock; with remove, unlink the file first (we still hold it). */
void	lockfile_release(struct lockfile *, int);

#endif
