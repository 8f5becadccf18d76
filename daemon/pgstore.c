#include <sys/types.h>

#include <errno.h>
#include <event.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "backend.h"
#include "log.h"
#include "pgstore.h"
#include "proto.h"

/*
 * The parent never waits for PostgreSQL once it serves: the connection is
 * non-blocking, its socket is in the event loop, and a group of writes goes
 * out as one pipeline (BEGIN, SET LOCAL synchronous_commit, the writes,
 * COMMIT, Sync) whose results come back as the socket becomes readable.
 * The answers go out only after COMMIT returned, and synchronous_commit is
 * on for that transaction whatever the server's default: an acknowledged
 * write is on the server's disk.  When the connection breaks or a group
 * takes longer than PGSTORE_GROUP_SECONDS, the group is answered 503 and
 * the connection is made again with back-off; a write answered 503 may or
 * may not have been committed, but none answered 201/200 is lost.
 *
 * Only start-up and the snapshot a new worker reads block: start-up must
 * know the database before serving, and a snapshot is read on a
 * connection of its own so that it never mixes with a group in flight.
 */

#define PGSTORE_SCHEMA_VERSION	1
#define PGSTORE_GROUP_SECONDS	5	/* under the default request timeout */
#define PGSTORE_CONNECT_SECONDS	10
#define PGSTORE_BACKOFF_MIN_MS	100
#define PGSTORE_BACKOFF_MAX_MS	5000
#define PGSTORE_LOCK_KEY	"7401020304"	/* advisory lock: schema */
#define PGSTORE_MIN_VERSION	130000

enum pgstore_state {
	PG_DOWN,		/* waiting for the back-off to end */
	PG_CONNECTING,
	PG_IDLE,
	PG_BUSY			/* a group in flight */
};

struct pgstore {
	char			*uri;
	struct event_base	*base;
	PGconn			*conn;
	enum pgstore_state	 state;
	struct event		 ev;		/* the socket */
	short			 evflags;
	int			 evfd;
	struct event		 timer;		/* back-off, deadlines */
	int			 backoff;	/* ms */
	int64_t			 count;		/* items at start-up */
	/* the group in flight */
	struct store_write	**wv;
	int			 n;
	int			 q;		/* statement being answered */
	int			 failed;
	store_done_fn		 done;
	void			*arg;
	char			 err[256];
};

/* BEGIN, SET LOCAL, n writes, COMMIT */
#define PGSTORE_FIRST_WRITE	2

static const char *pgstore_schema[] = {
	"BEGIN",
	"SELECT pg_advisory_xact_lock(" PGSTORE_LOCK_KEY ")",
	"CREATE TABLE IF NOT EXISTS todod_schema (version integer NOT NULL)",
	/*
	 * An identity column's sequence never hands out a value twice, not
	 * even after a rollback: ids are never reused.
	 */
	("CREATE TABLE IF NOT EXISTS todo ("
	" id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" task text NOT NULL,"
	" done boolean NOT NULL,"
	" created_by text NOT NULL,"
	" created_at timestamptz NOT NULL DEFAULT now(),"
	" updated_by text NOT NULL,"
	" updated_at timestamptz NOT NULL DEFAULT now())"),
	("INSERT INTO todod_schema (version) SELECT 1"
	" WHERE NOT EXISTS (SELECT 1 FROM todod_schema)"),
	"COMMIT"
};

static const char *pgstore_sql_create =
	"INSERT INTO todo (task, done, created_by, updated_by)"
	" VALUES ($1::text, $2::boolean, $3::text, $3::text)"
	" RETURNING id, task, done";
static const char *pgstore_sql_update =
	"UPDATE todo SET"
	" task = CASE WHEN $2::boolean THEN $3::text ELSE task END,"
	" done = CASE WHEN $4::boolean THEN $5::boolean ELSE done END,"
	" updated_by = $6::text, updated_at = now()"
	" WHERE id = $1::bigint RETURNING id, task, done";
static const char *pgstore_sql_delete =
	"DELETE FROM todo WHERE id = $1::bigint RETURNING id, task, done";

static void	pgstore_connect(struct pgstore *);
static void	pgstore_io(int, short, void *);

/* libpq's messages end in a newline; ours do not. */
static void
pgstore_seterr(struct pgstore *pg, const char *msg)
{
	size_t	 len;

	strlcpy(pg->err, msg, sizeof(pg->err));
	len = strlen(pg->err);
	while (len > 0 && (pg->err[len - 1] == '\n' || pg->err[len - 1] == ' '))
		pg->err[--len] = '\0';
}

static void
pgstore_notice(void *arg, const char *msg)
{
	log_debug("postgresql: %s", msg);
}

int
pgstore_check_uri(const char *uri, char *err, size_t errlen)
{
	PQconninfoOption	*opts;
	char			*msg = NULL;

	if ((opts = PQconninfoParse(uri, &msg)) == NULL) {
		snprintf(err, errlen, "not a PostgreSQL connection URI: %s",
		    msg != NULL ? msg : "out of memory");
		err[strcspn(err, "\n")] = '\0';
		PQfreemem(msg);
		return -1;
	}
	PQconninfoFree(opts);
	return 0;
}

/* A blocking connection, bounded by connect_timeout unless the URI says. */
static PGconn *
pgstore_connect_blocking(const char *uri)
{
	static const char	*keys[] = { "connect_timeout", "dbname", NULL };
	const char		*vals[] = { "10", uri, NULL };
	PGconn			*conn;

	conn = PQconnectdbParams(keys, vals, 1);
	if (conn != NULL)
		PQsetNoticeProcessor(conn, pgstore_notice, NULL);
	return conn;
}

/* One statement, blocking; the first value of its first row, if asked. */
static int
pgstore_exec(struct pgstore *pg, const char *sql, char *val, size_t vallen)
{
	PGresult	*res;
	int		 st, r = 0;

	res = PQexec(pg->conn, sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pgstore_seterr(pg, PQresultErrorMessage(res));
		r = -1;
	} else if (val != NULL) {
		if (PQntuples(res) < 1 || PQgetisnull(res, 0, 0))
			val[0] = '\0';
		else
			strlcpy(val, PQgetvalue(res, 0, 0), vallen);
	}
	PQclear(res);
	return r;
}

static int
pgstore_schema_create(struct pgstore *pg)
{
	size_t	 i;

	for (i = 0; i < sizeof(pgstore_schema) / sizeof(*pgstore_schema); i++)
		if (pgstore_exec(pg, pgstore_schema[i], NULL, 0) == -1) {
			pgstore_exec(pg, "ROLLBACK", NULL, 0);
			return -1;
		}
	return 0;
}

/* Created if missing (by one node at a time), then checked. */
static int
pgstore_schema_check(struct pgstore *pg, char *err, size_t errlen)
{
	char		 v[64];
	const char	*e;

	if (pgstore_exec(pg, "SELECT to_regclass('todod_schema') IS NOT NULL",
	    v, sizeof(v)) == -1 || (strcmp(v, "t") != 0 &&
	    pgstore_schema_create(pg) == -1)) {
		snprintf(err, errlen, "database: PostgreSQL: creating the schema: %s", pg->err);
		return -1;
	}
	if (pgstore_exec(pg, "SELECT max(version) FROM todod_schema", v,
	    sizeof(v)) == -1) {
		snprintf(err, errlen, "database: PostgreSQL: reading the schema version: %s",
		    pg->err);
		return -1;
	}
	if (strtonum(v, 1, INT_MAX, &e) != PGSTORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "database: PostgreSQL: schema version \"%s\" in table "
		    "todod_schema; this todod knows version %d only", v,
		    PGSTORE_SCHEMA_VERSION);
		return -1;
	}
	if (pgstore_exec(pg, "SELECT has_table_privilege('todo', "
	    "'SELECT, INSERT, UPDATE, DELETE')", v, sizeof(v)) == -1 ||
	    strcmp(v, "t") != 0) {
		snprintf(err, errlen, "database: PostgreSQL: the user needs SELECT, INSERT, "
		    "UPDATE and DELETE on table todo%s%s", pg->err[0] ? ": " :
		    "", pg->err);
		return -1;
	}
	return 0;
}

static int
pgstore_start(struct pgstore *pg, char *err, size_t errlen)
{
	char		 v[64];
	const char	*e;

	if ((pg->conn = pgstore_connect_blocking(pg->uri)) == NULL ||
	    PQstatus(pg->conn) != CONNECTION_OK) {
		pgstore_seterr(pg, pg->conn ? PQerrorMessage(pg->conn) :
		    "out of memory");
		snprintf(err, errlen, "database: PostgreSQL unreachable: %s",
		    pg->err);
		return -1;
	}
	if (PQserverVersion(pg->conn) < PGSTORE_MIN_VERSION) {
		snprintf(err, errlen, "database: PostgreSQL %d is too old: "
		    "todod needs 13 or later", PQserverVersion(pg->conn));
		return -1;
	}
	if (pgstore_schema_check(pg, err, errlen) == -1)
		return -1;
	if (pgstore_exec(pg, "SELECT count(*) FROM todo", v, sizeof(v)) == -1) {
		snprintf(err, errlen, "database: PostgreSQL: %s", pg->err);
		return -1;
	}
	pg->count = strtonum(v, 0, INT64_MAX, &e);
	return 0;
}

/* The socket event, for what libpq waits for now. */
static void
pgstore_arm(struct pgstore *pg, short what)
{
	int	 fd = PQsocket(pg->conn);

	if (pg->evfd == fd && pg->evflags == what)
		return;
	if (pg->evfd != -1)
		event_del(&pg->ev);
	pg->evfd = -1;
	if (fd == -1)
		return;
	event_assign(&pg->ev, pg->base, fd, what | EV_PERSIST, pgstore_io, pg);
	event_add(&pg->ev, NULL);
	pg->evfd = fd;
	pg->evflags = what;
}

static void
pgstore_disarm(struct pgstore *pg)
{
	if (pg->evfd != -1)
		event_del(&pg->ev);
	pg->evfd = -1;
	pg->evflags = 0;
}

static void
pgstore_deadline(struct pgstore *pg, int seconds)
{
	struct timeval	 tv = { seconds, 0 };

	evtimer_del(&pg->timer);
	if (seconds > 0)
		evtimer_add(&pg->timer, &tv);
}

/* The group is over: its writes are answered through the callback. */
static void
pgstore_group_end(struct pgstore *pg, enum store_group g)
{
	store_done_fn	 done = pg->done;

	free(pg->wv);
	pg->wv = NULL;
	pg->n = 0;
	pg->done = NULL;
	if (done != NULL)
		done(pg->arg, g);
}

/* The connection is gone: whatever was in flight gets 503. */
static void
pgstore_lost(struct pgstore *pg, const char *why)
{
	struct timeval	 tv;

	if (pg->state == PG_IDLE || pg->state == PG_BUSY)
		log_warnx("database: PostgreSQL connection lost: %s; "
		    "writes get 503 until it is back", why);
	pgstore_seterr(pg, why);
	pgstore_disarm(pg);
	PQfinish(pg->conn);
	pg->conn = NULL;
	pg->state = PG_DOWN;
	pg->backoff = pg->backoff == 0 ? PGSTORE_BACKOFF_MIN_MS :
	    pg->backoff * 2;
	if (pg->backoff > PGSTORE_BACKOFF_MAX_MS)
		pg->backoff = PGSTORE_BACKOFF_MAX_MS;
	tv.tv_sec = pg->backoff / 1000;
	tv.tv_usec = (pg->backoff % 1000) * 1000;
	evtimer_del(&pg->timer);
	evtimer_add(&pg->timer, &tv);
	pgstore_group_end(pg, STORE_GROUP_UNAVAILABLE);
}

static void
pgstore_ready(struct pgstore *pg)
{
	if (PQsetnonblocking(pg->conn, 1) == -1 ||
	    PQenterPipelineMode(pg->conn) == 0) {
		pgstore_lost(pg, PQerrorMessage(pg->conn));
		return;
	}
	PQsetNoticeProcessor(pg->conn, pgstore_notice, NULL);
	if (pg->backoff != 0)
		log_info("database: PostgreSQL connection back");
	pg->backoff = 0;
	pg->state = PG_IDLE;
	pgstore_deadline(pg, 0);
	/* readable when idle: the server closed it, see it at once */
	pgstore_arm(pg, EV_READ);
}

static void
pgstore_connect_step(struct pgstore *pg)
{
	switch (PQconnectPoll(pg->conn)) {
	case PGRES_POLLING_READING:
		pgstore_arm(pg, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		pgstore_arm(pg, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		pgstore_ready(pg);
		break;
	default:
		pgstore_lost(pg, PQerrorMessage(pg->conn));
		break;
	}
}

static void
pgstore_connect(struct pgstore *pg)
{
	pg->conn = PQconnectStart(pg->uri);
	if (pg->conn == NULL || PQstatus(pg->conn) == CONNECTION_BAD) {
		pgstore_lost(pg, pg->conn ? PQerrorMessage(pg->conn) :
		    "out of memory");
		return;
	}
	pg->state = PG_CONNECTING;
	pgstore_deadline(pg, PGSTORE_CONNECT_SECONDS);
	pgstore_arm(pg, EV_WRITE);	/* as libpq asks of a new one */
}

static void
pgstore_timer(int fd, short ev, void *arg)
{
	struct pgstore	*pg = arg;

	switch (pg->state) {
	case PG_DOWN:
		pgstore_connect(pg);
		break;
	case PG_CONNECTING:
		pgstore_lost(pg, "connecting timed out");
		break;
	case PG_BUSY:
		pgstore_lost(pg, "a commit took too long");
		break;
	default:
		break;
	}
}

static int
pgstore_row(struct store_write *w, PGresult *res)
{
	struct store_item	 it;
	const char		*e;

	if (PQntuples(res) == 0)
		return store_write_result(w, 1, NULL);
	it.id = strtonum(PQgetvalue(res, 0, 0), 1, INT64_MAX, &e);
	it.task = PQgetvalue(res, 0, 1);
	it.tasklen = PQgetlength(res, 0, 1);
	it.done = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
	if (e != NULL)
		return -1;
	return store_write_result(w, 0, &it);
}

/* One result of the pipeline; 1 when the group's Sync came back. */
static int
pgstore_result(struct pgstore *pg, PGresult *res)
{
	int	 st = PQresultStatus(res), i = pg->q - PGSTORE_FIRST_WRITE;

	if (st == PGRES_PIPELINE_SYNC)
		return 1;
	/* one result a statement, then a NULL that is skipped */
	if (pg->q++ > pg->n + PGSTORE_FIRST_WRITE) {
		pgstore_seterr(pg, "results out of step");
		pg->failed = 1;
		return 0;
	}
	switch (st) {
	case PGRES_TUPLES_OK:
		if (i >= 0 && i < pg->n && pgstore_row(pg->wv[i], res) == -1) {
			pgstore_seterr(pg, "an id out of range");
			pg->failed = 1;
		}
		break;
	case PGRES_COMMAND_OK:
		break;
	case PGRES_PIPELINE_ABORTED:
		pg->failed = 1;
		break;
	default:
		if (!pg->failed)
			pgstore_seterr(pg, PQresultErrorMessage(res));
		pg->failed = 1;
		break;
	}
	return 0;
}

/*
 * A failed group leaves its transaction aborted; a new connection is the
 * simplest clean state, and failures are rare (the bounds are checked
 * before a write is sent).
 */
static void
pgstore_group_done(struct pgstore *pg)
{
	pgstore_deadline(pg, 0);
	if (pg->failed) {
		log_warnx("database: PostgreSQL: %s", pg->err);
		pgstore_disarm(pg);
		PQfinish(pg->conn);
		pg->conn = NULL;
		pg->state = PG_DOWN;
		evtimer_del(&pg->timer);
		pgstore_connect(pg);
		pgstore_group_end(pg, STORE_GROUP_FAILED);
		return;
	}
	pg->state = PG_IDLE;
	pgstore_arm(pg, EV_READ);
	pgstore_group_end(pg, STORE_GROUP_OK);
}

static void
pgstore_read(struct pgstore *pg)
{
	PGresult	*res;
	int		 sync, nulls = 0;

	if (!PQconsumeInput(pg->conn)) {
		pgstore_lost(pg, PQerrorMessage(pg->conn));
		return;
	}
	while (pg->state == PG_BUSY && !PQisBusy(pg->conn)) {
		/* a NULL ends one statement's results; two: nothing more */
		if ((res = PQgetResult(pg->conn)) == NULL) {
			if (++nulls > 1)
				break;
			continue;
		}
		nulls = 0;
		sync = pgstore_result(pg, res);
		PQclear(res);
		if (sync)
			pgstore_group_done(pg);
	}
	if (pg->state != PG_IDLE)
		return;
	/* idle: only an error (the server shutting down) comes */
	if (!PQisBusy(pg->conn) && (res = PQgetResult(pg->conn)) != NULL) {
		pgstore_seterr(pg, PQresultErrorMessage(res));
		PQclear(res);
		pgstore_lost(pg, pg->err[0] ? pg->err : "unexpected result");
	} else if (PQstatus(pg->conn) == CONNECTION_BAD)
		pgstore_lost(pg, "closed by the server");
}

static void
pgstore_io(int fd, short ev, void *arg)
{
	struct pgstore	*pg = arg;
	int		 r;

	if (pg->state == PG_CONNECTING) {
		pgstore_connect_step(pg);
		return;
	}
	if (ev & EV_READ)
		pgstore_read(pg);
	if (pg->state != PG_BUSY)
		return;
	if ((r = PQflush(pg->conn)) == -1)
		pgstore_lost(pg, PQerrorMessage(pg->conn));
	else
		pgstore_arm(pg, r == 1 ? EV_READ | EV_WRITE : EV_READ);
}

static int
pgstore_send_write(struct pgstore *pg, const struct store_write *w)
{
	char		 id[32];
	const char	*p[6];

	snprintf(id, sizeof(id), "%lld", (long long)w->id);
	switch (w->type) {
	case IMSG_STORE_CREATE:
		p[0] = w->task;
		p[1] = w->done ? "t" : "f";
		p[2] = w->cn;
		return PQsendQueryParams(pg->conn, pgstore_sql_create, 3, NULL,
		    p, NULL, NULL, 0);
	case IMSG_STORE_UPDATE:
		p[0] = id;
		p[1] = (w->mask & STORE_SET_TASK) ? "t" : "f";
		p[2] = (w->mask & STORE_SET_TASK) ? w->task : NULL;
		p[3] = (w->mask & STORE_SET_DONE) ? "t" : "f";
		p[4] = w->done ? "t" : "f";
		p[5] = w->cn;
		return PQsendQueryParams(pg->conn, pgstore_sql_update, 6, NULL,
		    p, NULL, NULL, 0);
	default:
		p[0] = id;
		return PQsendQueryParams(pg->conn, pgstore_sql_delete, 1, NULL,
		    p, NULL, NULL, 0);
	}
}

static int
pgstore_send(struct pgstore *pg, const char *sql)
{
	return PQsendQueryParams(pg->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
}

static void
pgstore_submit(void *be, struct store_write **wv, int n, store_done_fn done,
    void *arg)
{
	struct pgstore	*pg = be;
	int		 i, ok;

	if (pg->state != PG_IDLE) {
		done(arg, STORE_GROUP_UNAVAILABLE);
		return;
	}
	if ((pg->wv = reallocarray(NULL, n, sizeof(*wv))) == NULL)
		fatal("%s", __func__);
	memcpy(pg->wv, wv, n * sizeof(*wv));
	pg->n = n;
	pg->done = done;
	pg->arg = arg;
	pg->q = 0;
	pg->failed = 0;
	pg->state = PG_BUSY;
	ok = pgstore_send(pg, "BEGIN") &&
	    pgstore_send(pg, "SET LOCAL synchronous_commit TO on");
	for (i = 0; ok && i < n; i++)
		ok = pgstore_send_write(pg, wv[i]);
	if (!ok || !pgstore_send(pg, "COMMIT") || !PQpipelineSync(pg->conn)) {
		pgstore_lost(pg, PQerrorMessage(pg->conn));
		return;
	}
	pgstore_deadline(pg, PGSTORE_GROUP_SECONDS);
	pgstore_io(-1, 0, pg);		/* flush, and wait for the answer */
}

/*
 * Every item for a new worker's cache, on a connection of its own, row by
 * row so that a large table is never in memory at once.
 */
static int
pgstore_foreach(void *be, store_iter_fn fn, void *arg)
{
	struct pgstore		*pg = be;
	struct store_item	 it;
	PGconn			*conn;
	PGresult		*res;
	const char		*e;
	int			 r = 0, st;

	conn = pgstore_connect_blocking(pg->uri);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK ||
	    !PQsendQuery(conn, "SELECT id, task, done FROM todo ORDER BY id") ||
	    !PQsetSingleRowMode(conn)) {
		log_warnx("database: PostgreSQL snapshot: %s",
		    conn ? PQerrorMessage(conn) : "out of memory");
		PQfinish(conn);
		return -1;
	}
	while ((res = PQgetResult(conn)) != NULL) {
		st = PQresultStatus(res);
		if (st == PGRES_SINGLE_TUPLE && r == 0) {
			it.id = strtonum(PQgetvalue(res, 0, 0), 1, INT64_MAX,
			    &e);
			it.task = PQgetvalue(res, 0, 1);
			it.tasklen = PQgetlength(res, 0, 1);
			it.done = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
			if (e == NULL)
				r = fn(arg, &it);
		} else if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE) {
			log_warnx("database: PostgreSQL snapshot: %s",
			    PQresultErrorMessage(res));
			r = -1;
		}
		PQclear(res);
	}
	PQfinish(conn);
	return r;
}

static int64_t
pgstore_count(void *be)
{
	return ((struct pgstore *)be)->count;
}

static int
pgstore_unavailable(void *be)
{
	struct pgstore	*pg = be;

	return pg->state != PG_IDLE && pg->state != PG_BUSY;
}

static const char *
pgstore_error(void *be)
{
	return ((struct pgstore *)be)->err;
}

static void
pgstore_close(void *be)
{
	struct pgstore	*pg = be;

	pgstore_disarm(pg);
	evtimer_del(&pg->timer);
	PQfinish(pg->conn);
	free(pg->wv);
	free(pg->uri);
	free(pg);
}

struct pgstore *
pgstore_open(const char *uri, struct event_base *base, char *err,
    size_t errlen)
{
	struct pgstore	*pg;

	if (pgstore_check_uri(uri, err, errlen) == -1)
		return NULL;
	if ((pg = calloc(1, sizeof(*pg))) == NULL ||
	    (pg->uri = strdup(uri)) == NULL)
		fatal("%s", __func__);
	pg->base = base;
	pg->evfd = -1;
	evtimer_assign(&pg->timer, base, pgstore_timer, pg);
	if (pgstore_start(pg, err, errlen) == -1) {
		pgstore_close(pg);
		return NULL;
	}
	pgstore_ready(pg);
	return pg;
}

const struct store_backend_ops store_pg_ops = {
	pgstore_submit, pgstore_foreach, pgstore_count,
	pgstore_unavailable, pgstore_error, pgstore_close
};
