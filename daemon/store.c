#include <sys/types.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <sqlite3.h>

#include "lockfile.h"
#include "log.h"
#include "proto.h"
#include "store.h"

#define STORE_SCHEMA_VERSION	1
/*
 * PRAGMA quick_check reads every page once: at 1M items (a 105 MB file)
 * 0.35 s from the page cache, 3.5 s from disk on the development machine;
 * past this it stops, so that a huge database cannot hold the start-up
 * forever, and the start goes on with a warning.
 */
#define STORE_CHECK_SECONDS	60
#define STORE_CHECK_STEPS	100000	/* VM steps between clock reads */

/*
 * created_by/updated_by keep the client CN of who made and last changed an
 * item, with times, for the log and later use; the API's todo object stays
 * {id, task, done}.  AUTOINCREMENT: ids are never reused, even after the
 * highest item is deleted.
 */
static const char *store_schema =
	"CREATE TABLE IF NOT EXISTS todo ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" task TEXT NOT NULL,"
	" done INTEGER NOT NULL CHECK (done IN (0, 1)),"
	" created_by TEXT NOT NULL,"
	" created_at INTEGER NOT NULL,"
	" updated_by TEXT NOT NULL,"
	" updated_at INTEGER NOT NULL);";

enum {
	ST_INSERT, ST_UPDATE, ST_DELETE, ST_ALL, ST_COUNT, ST_BYIDS, ST_PAGE,
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_MAX
};

static const char *store_sql[ST_MAX] = {
	/*
	 * No RETURNING: the row is what was bound and the id is the rowid,
	 * and RETURNING costs SQLite an ephemeral table per statement, a
	 * quarter of the parent's time per write outside the fsync.
	 */
	[ST_INSERT] = "INSERT INTO todo (task, done, created_by, created_at,"
	    " updated_by, updated_at) VALUES (?1, ?2, ?3, ?4, ?3, ?4)",
	[ST_UPDATE] = "UPDATE todo SET"
	    " task = CASE WHEN ?2 THEN ?3 ELSE task END,"
	    " done = CASE WHEN ?4 THEN ?5 ELSE done END,"
	    " updated_by = ?6, updated_at = ?7"
	    " WHERE id = ?1 RETURNING id, task, done",
	[ST_DELETE] = "DELETE FROM todo WHERE id = ?1 RETURNING id, task, done",
	[ST_ALL] = "SELECT id, task, done FROM todo ORDER BY id",
	[ST_COUNT] = "SELECT count(*) FROM todo",
	/* ?1 a JSON array of ids: a batch of misses is one query */
	[ST_BYIDS] = "SELECT id, task, done FROM todo"
	    " WHERE id IN (SELECT value FROM json_each(?1)) ORDER BY id",
	[ST_PAGE] = "SELECT id, task, done FROM todo WHERE id > ?1"
	    " ORDER BY id LIMIT ?2",
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
};

/* The file a path named when it was opened. */
struct store_file {
	char		*path;
	int		 known;
	dev_t		 dev;
	ino_t		 ino;
};

struct store {
	sqlite3			*db;
	sqlite3_stmt		*st[ST_MAX];
	char			*path;
	struct lockfile		 lock;
	struct store_file	 file, wal;
	int			 gone;	/* the file at path is not ours */
	struct timespec		 check_end;
};

static int
store_exec(struct store *s, const char *sql)
{
	char	*msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_warnx("%s: %s", s->path, msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int
store_migrate(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	int		 version = -1;

	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st,
	    NULL) != SQLITE_OK)
		goto sqlfail;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %d is newer than "
		    "this todod (%d)", s->path, version,
		    STORE_SCHEMA_VERSION);
		return -1;
	}
	if (version == STORE_SCHEMA_VERSION)
		return 0;
	if (store_exec(s, "BEGIN") == -1 ||
	    store_exec(s, store_schema) == -1 ||
	    store_exec(s, "PRAGMA user_version = 1") == -1 ||
	    store_exec(s, "COMMIT") == -1)
		goto sqlfail;
	return 0;
 sqlfail:
	snprintf(err, errlen, "%s: %s", s->path, sqlite3_errmsg(s->db));
	return -1;
}

/*
 * Advice for the errors that mean the file itself is bad: neither retrying
 * nor a restart will help, the operator has to act.
 */
static void
store_damaged(struct store *s, const char *what, char *err, size_t errlen)
{
	char	 one[256];
	size_t	 i;

	/* quick_check's report spans lines: the error is one line */
	strlcpy(one, what, sizeof(one));
	for (i = 0; one[i] != '\0'; i++)
		if (one[i] == '\n' || one[i] == '\r')
			one[i] = ' ';
	snprintf(err, errlen, "database %s is damaged (%s): todod will not "
	    "use it; restore it from a backup, or move it aside (with its "
	    "-wal and -shm files) to start with an empty one (\"sqlite3 %s "
	    ".recover\" may salvage items)", s->path, one, s->path);
}

static void
store_fail(struct store *s, const char *what, char *err, size_t errlen)
{
	int	 code = sqlite3_errcode(s->db) & 0xff;

	if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
		store_damaged(s, what, err, errlen);
	else
		snprintf(err, errlen, "%s: %s", s->path, what);
}

static int
store_check_progress(void *arg)
{
	struct store	*s = arg;
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > s->check_end.tv_sec ||
	    (now.tv_sec == s->check_end.tv_sec &&
	    now.tv_nsec >= s->check_end.tv_nsec);
}

static double
store_elapsed(const struct timespec *t0)
{
	struct timespec	 t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * A damaged page must stop the start: SQLite would otherwise report it only
 * when a query reaches the page, and the workers' caches, filled from a
 * scan that failed half-way, would serve a list with items missing while
 * writes went on.  quick_check reads every page once (integrity_check
 * would also cross-check the indexes, several times slower), and stops at
 * STORE_CHECK_SECONDS.
 */
static int
store_check(struct store *s, char *err, size_t errlen)
{
	sqlite3_stmt	*st;
	struct timespec	 t0;
	const char	*res;
	int		 rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	s->check_end = t0;
	s->check_end.tv_sec += STORE_CHECK_SECONDS;
	if (sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st,
	    NULL) != SQLITE_OK) {
		store_fail(s, sqlite3_errmsg(s->db), err, errlen);
		return -1;
	}
	sqlite3_progress_handler(s->db, STORE_CHECK_STEPS,
	    store_check_progress, s);
	rc = sqlite3_step(st);
	sqlite3_progress_handler(s->db, 0, NULL, NULL);
	res = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) :
	    NULL;
	if (rc == SQLITE_INTERRUPT)
		log_warnx("database %s: integrity check stopped after %d s, "
		    "not finished: starting anyway", s->path,
		    STORE_CHECK_SECONDS);
	else if (rc == SQLITE_ROW && res != NULL && strcmp(res, "ok") != 0) {
		store_damaged(s, res, err, errlen);
		sqlite3_finalize(st);
		return -1;
	} else if (rc != SQLITE_ROW || res == NULL) {
		store_fail(s, sqlite3_errmsg(s->db), err, errlen);
		sqlite3_finalize(st);
		return -1;
	} else
		log_info("database %s: integrity checked in %.3f s", s->path,
		    store_elapsed(&t0));
	sqlite3_finalize(st);
	return 0;
}

/*
 * The device and inode at path.  statx() asked for the inode alone, not
 * stat(): asking for the times makes the kernel give the next write a
 * fine-grained modification time (multigrain timestamps), and on ext4
 * every fdatasync of the -wal then writes its inode too, one more disk
 * write per commit.  The device comes with every statx() answer.
 */
static int
store_file_id(const char *path, dev_t *dev, ino_t *ino)
{
	struct statx	 stx;
	struct stat	 st;

	if (statx(AT_FDCWD, path, 0, STATX_INO, &stx) == -1)
		return -1;
	if (stx.stx_mask & STATX_INO) {
		*dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
		*ino = stx.stx_ino;
		return 0;
	}
	/* a file system that does not say: the slower way */
	if (stat(path, &st) == -1)
		return -1;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static int
store_file_init(struct store_file *f, const char *path, const char *suffix)
{
	if (asprintf(&f->path, "%s%s", path, suffix) == -1) {
		f->path = NULL;
		return -1;
	}
	if (store_file_id(f->path, &f->dev, &f->ino) == 0)
		f->known = 1;
	return 0;
}

/*
 * While SQLite keeps the file open its inode cannot be reused, so the same
 * device and inode at the path means the same file.
 */
static const char *
store_file_changed(const struct store_file *f)
{
	dev_t		 dev;
	ino_t		 ino;

	if (!f->known)
		return NULL;
	if (store_file_id(f->path, &dev, &ino) == -1)
		return errno == ENOENT ? "was removed" : strerror(errno);
	if (dev != f->dev || ino != f->ino)
		return "was replaced by another file";
	return NULL;
}

/*
 * Is the file at the path still the one we write?  A removed or replaced
 * database (or -wal) takes every later commit with it at the next start,
 * so from then on writes are refused, and said so loudly, once.
 */
static int
store_present(struct store *s)
{
	const char	*why, *which = s->file.path;
	char		 line[1024];

	if (s->gone)
		return 0;
	if ((why = store_file_changed(&s->file)) == NULL) {
		which = s->wal.path;
		if ((why = store_file_changed(&s->wal)) == NULL)
			return 1;
	}
	s->gone = 1;
	snprintf(line, sizeof(line), "database %s %s while in use: every "
	    "write is refused from now on (503); the items are still served, "
	    "save them (GET /todo) and restore the file before restarting "
	    "todod", which, why);
	log_emit(LOG_CRIT, line);
	return 0;
}

static int
store_lock(struct store *s, char *err, size_t errlen)
{
	char	 lock[PATH_MAX];

	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", s->path) >=
	    sizeof(lock)) {
		snprintf(err, errlen, "%s: path too long", s->path);
		return -1;
	}
	if (lockfile_take(&s->lock, lock, "database", s->path, err,
	    errlen) == -1)
		return -1;
	if (lockfile_write_pid(&s->lock) == -1)
		log_warn("%s", lock);
	return 0;
}

static int
store_prepare(struct store *s, char *err, size_t errlen)
{
	int	 i;

	for (i = 0; i < ST_MAX; i++) {
		if (sqlite3_prepare_v3(s->db, store_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", s->path,
			    sqlite3_errmsg(s->db));
			return -1;
		}
	}
	return 0;
}

/*
 * Open or create the database, ours alone (DATABASE.lock) and checked for
 * damage; err gets "PATH: what" on failure.
 */
struct store *
store_open(const char *path, char *err, size_t errlen)
{
	struct store	*s;
	int		 rc;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		free(s);
		return NULL;
	}
	s->lock.fd = -1;
	if (store_lock(s, err, errlen) == -1)
		goto fail;
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, s->db ?
		    sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(s->db, 1);
	/*
	 * WAL with synchronous=FULL syncs the log at every commit: an
	 * acknowledged write survives a crash of the process or the machine.
	 */
	if (store_exec(s, "PRAGMA journal_mode=WAL") == -1 ||
	    store_exec(s, "PRAGMA synchronous=FULL") == -1 ||
	    store_exec(s, "PRAGMA foreign_keys=ON") == -1) {
		store_fail(s, sqlite3_errmsg(s->db), err, errlen);
		goto fail;
	}
	if (store_check(s, err, errlen) == -1 ||
	    store_migrate(s, err, errlen) == -1 ||
	    store_prepare(s, err, errlen) == -1)
		goto fail;
	/* the -wal exists from the first read on, until the last close */
	if (store_file_init(&s->file, path, "") == -1 ||
	    store_file_init(&s->wal, path, "-wal") == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	return s;
 fail:
	store_close(s);
	return NULL;
}

void
store_close(struct store *s)
{
	int	 i;

	if (s == NULL)
		return;
	for (i = 0; i < ST_MAX; i++)
		sqlite3_finalize(s->st[i]);
	if (s->db != NULL)
		sqlite3_close(s->db);
	/* after SQLite's own descriptors: the lock file is not theirs */
	lockfile_release(&s->lock, 0);
	free(s->file.path);
	free(s->wal.path);
	free(s->path);
	free(s);
}

/* The database file was removed or replaced: writes are refused. */
int
store_unavailable(struct store *s)
{
	return s->gone;
}

const char *
store_error(struct store *s)
{
	return sqlite3_errmsg(s->db);
}

static int
store_step_done(struct store *s, int which)
{
	sqlite3_stmt	*st = s->st[which];
	int		 rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		log_warnx("%s: %s", s->path, sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

/*
 * The item in *out stays valid until the next call on this store: the
 * RETURNING row is finished (and the statement reset) on the next call.
 */
static void
store_finish(struct store *s)
{
	sqlite3_reset(s->st[ST_INSERT]);
	sqlite3_reset(s->st[ST_UPDATE]);
	sqlite3_reset(s->st[ST_DELETE]);
}

int
store_begin(struct store *s)
{
	if (!store_present(s))
		return -1;
	return store_step_done(s, ST_BEGIN);
}

/*
 * The file is checked again after the commit: a write that went into a
 * file removed meanwhile is lost at the next start, so it must not be
 * acknowledged either.
 */
int
store_commit(struct store *s)
{
	store_finish(s);
	if (store_step_done(s, ST_COMMIT) == -1) {
		store_rollback(s);
		return -1;
	}
	return store_present(s) ? 0 : -1;
}

void
store_rollback(struct store *s)
{
	store_finish(s);
	if (sqlite3_get_autocommit(s->db))
		return;
	store_step_done(s, ST_ROLLBACK);
}

/*
 * Step a statement with RETURNING id, task, done.  Returns 0 with *out
 * filled (the statement is left on its row for the caller to read out and
 * then reset), 1 when no row matched, -1 on error.
 */
static int
store_step_item(struct store *s, sqlite3_stmt *st, struct store_item *out)
{
	int	 rc;

	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 1;
	}
	if (rc != SQLITE_ROW) {
		log_warnx("%s: %s", s->path, sqlite3_errmsg(s->db));
		sqlite3_reset(st);
		return -1;
	}
	out->id = sqlite3_column_int64(st, 0);
	out->task = (const char *)sqlite3_column_text(st, 1);
	out->tasklen = sqlite3_column_bytes(st, 1);
	out->done = sqlite3_column_int(st, 2);
	if (out->task == NULL)
		out->task = "";
	return 0;
}

int
store_create(struct store *s, const char *cn, const char *task,
    size_t tasklen, int done, struct store_item *out)
{
	sqlite3_stmt	*st = s->st[ST_INSERT];
	int		 r;

	store_finish(s);
	sqlite3_bind_text(st, 1, task, tasklen, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, done ? 1 : 0);
	sqlite3_bind_text(st, 3, cn, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, time(NULL));
	r = store_step_done(s, ST_INSERT);
	sqlite3_clear_bindings(st);
	if (r == -1)
		return -1;
	out->id = sqlite3_last_insert_rowid(s->db);
	out->task = task;
	out->tasklen = tasklen;
	out->done = done ? 1 : 0;
	return 0;
}

int
store_update(struct store *s, int64_t id, const char *cn, uint32_t mask,
    const char *task, size_t tasklen, int done, struct store_item *out)
{
	sqlite3_stmt	*st = s->st[ST_UPDATE];
	int		 r;

	store_finish(s);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int(st, 2, (mask & STORE_SET_TASK) != 0);
	if (mask & STORE_SET_TASK)
		sqlite3_bind_text(st, 3, task, tasklen, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int(st, 4, (mask & STORE_SET_DONE) != 0);
	sqlite3_bind_int(st, 5, done ? 1 : 0);
	sqlite3_bind_text(st, 6, cn, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, time(NULL));
	r = store_step_item(s, st, out);
	sqlite3_clear_bindings(st);
	return r;
}

int
store_delete(struct store *s, int64_t id, const char *cn,
    struct store_item *out)
{
	sqlite3_stmt	*st = s->st[ST_DELETE];
	int		 r;

	store_finish(s);
	sqlite3_bind_int64(st, 1, id);
	r = store_step_item(s, st, out);
	if (r == 0)
		log_debug("todo %lld deleted by \"%s\"", (long long)id, cn);
	return r;
}

/* The rows of a SELECT id, task, done; stops when fn returns non-zero. */
static int
store_rows(struct store *s, sqlite3_stmt *st, store_iter_fn fn, void *arg)
{
	struct store_item	 item;
	int			 rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		item.id = sqlite3_column_int64(st, 0);
		item.task = (const char *)sqlite3_column_text(st, 1);
		item.tasklen = sqlite3_column_bytes(st, 1);
		item.done = sqlite3_column_int(st, 2);
		if (item.task == NULL)
			item.task = "";
		if ((r = fn(arg, &item)) != 0)
			break;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_warnx("%s: %s", s->path, sqlite3_errmsg(s->db));
		return -1;
	}
	return r;
}

/* Every item in id order; stops when fn returns non-zero. */
int
store_foreach(struct store *s, store_iter_fn fn, void *arg)
{
	store_finish(s);
	return store_rows(s, s->st[ST_ALL], fn, arg);
}

/* The items among ids, in id order (those that do not exist are absent). */
int
store_read_ids(struct store *s, const int64_t *ids, int n, store_iter_fn fn,
    void *arg)
{
	sqlite3_stmt	*st = s->st[ST_BYIDS];
	char		 list[STORE_READ_IDS_MAX * 24 + 2];
	size_t		 len = 0;
	int		 i;

	if (n < 1 || n > STORE_READ_IDS_MAX)
		return -1;
	for (i = 0; i < n; i++)
		len += snprintf(list + len, sizeof(list) - len, "%c%lld",
		    i == 0 ? '[' : ',', (long long)ids[i]);
	strlcat(list, "]", sizeof(list));
	store_finish(s);
	sqlite3_bind_text(st, 1, list, -1, SQLITE_STATIC);
	return store_rows(s, st, fn, arg);
}

/* At most limit items whose id is greater than after, in id order. */
int
store_read_page(struct store *s, int64_t after, int limit, store_iter_fn fn,
    void *arg)
{
	sqlite3_stmt	*st = s->st[ST_PAGE];

	store_finish(s);
	sqlite3_bind_int64(st, 1, after);
	sqlite3_bind_int(st, 2, limit);
	return store_rows(s, st, fn, arg);
}

int64_t
store_count(struct store *s)
{
	sqlite3_stmt	*st = s->st[ST_COUNT];
	int64_t		 n = -1;

	store_finish(s);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return n;
}
