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
#include "pgread.h"
#include "pgstore.h"
#include "pgwatch.h"
#include "proto.h"

/*
 * The parent never waits for PostgreSQL once it serves: the connection is
 * non-blocking, its socket is in the event loop, and a group of writes goes
 * out as one pipeline (BEGIN, SET LOCAL synchronous_commit, the writes,
 * COMMIT, Sync) whose results come back as the socket becomes readable.
 * The answers go out only after COMMIT returned, and synchronous_commit is
 * on for that transaction whatever the server's default: an acknowledged
 * write is on the server's disk.  When the connection breaks or a group
 * takes longer than PGSTORE_GROUP_SECONDS, the connection is made again
 * with back-off, and the group is in doubt: it wrote a token row, so once
 * the old session is surely gone (terminated, and waited for) the token
 * says whether it committed.  Not committed: 503, and nothing of it
 * exists.  Committed: its creations are answered 201 with the ids the
 * token row kept; its changes and deletions, which a client may repeat
 * safely, get 503 (applied or not).  Not known within
 * PGSTORE_DOUBT_SECONDS: 503.  None answered 201/200 is lost.
 *
 * Several nodes share the database.  Every group takes the next value of
 * one counter row (todod_seq) first, so groups commit in the order of
 * their numbers and a reader that sees number S sees every group up to S;
 * each row changed carries its group's number (todo.chg, and todo_gone for
 * deletions), and COMMIT notifies the listening nodes.  A node catches up
 * with one statement set: the counter, then every row changed since the
 * number it applied last.  It does so when notified, after a reconnection,
 * and for the GETs waiting to know that they see every write acknowledged
 * anywhere before them: one catch-up that starts after they asked serves
 * all of them (pgstore_sync).  One job is in flight on the connection at a
 * time: a group, a catch-up, LISTEN, or the ticket secrets' rotation.
 *
 * Only start-up blocks: it must know the database before serving.  The
 * snapshot new workers start from is read on a connection of its own, in
 * the event loop too, row by row, so that it never mixes with a job in
 * flight nor holds a large table in memory; the catch-up that follows it
 * brings every cache to what changed since.
 */

#define PGSTORE_SCHEMA_VERSION	3
#define PGSTORE_GROUP_SECONDS	5	/* under the default request timeout */
#define PGSTORE_CONNECT_SECONDS	10
#define PGSTORE_SNAP_STALL	30	/* s without a row: give up */
#define PGSTORE_DOUBT_SECONDS	3	/* to learn a lost group's fate */
#define PGSTORE_BACKOFF_MIN_MS	100
#define PGSTORE_BACKOFF_MAX_MS	5000
#define PGSTORE_LOCK_KEY	"7401020304"	/* advisory lock: schema */
#define PGSTORE_TICKET_KEY	"7401020305"	/* advisory lock: tickets */
#define PGSTORE_TICKET_POLL	10	/* s between looks at the secrets */
#define PGSTORE_TICKETS_KEPT	(PROTO_TICKETS_KEPT + 1)
#define PGSTORE_GONE_DAYS	"7"	/* deletions remembered */
#define PGSTORE_MIN_VERSION	130000

enum pgstore_state {
	PG_DOWN,		/* waiting for the back-off to end */
	PG_CONNECTING,
	PG_IDLE,
	PG_BUSY			/* a job in flight */
};

enum pgstore_job {
	JOB_NONE,
	JOB_LISTEN,
	JOB_GROUP,
	JOB_CATCHUP,
	JOB_TICKETS,
	JOB_RESOLVE
};

struct pgstore {
	char			*uri;
	struct event_base	*base;
	PGconn			*conn;
	enum pgstore_state	 state;
	struct pgwatch		 w;		/* the socket */
	struct event		 timer;		/* back-off, deadlines */
	int			 backoff;	/* ms */
	int64_t			 count;		/* items at start-up */
	enum pgstore_job	 job;		/* in flight */
	struct pgread		*rd;		/* reads past the caches */
	int			 q;		/* statement being answered */
	int			 failed;
	int64_t			 jobseq;	/* the counter the job read */
	/* the group waiting for the connection, or in flight */
	struct store_write	**wv;
	int			 n;
	store_done_fn		 done;
	void			*arg;
	uint64_t		 token;		/* the group's */
	int			 doubt;		/* lost after it was sent */
	int			 doubt_pid;	/* its server process */
	struct event		 doubt_timer;
	int			 backend_pid;	/* of the connection */
	int			 resolved;	/* 1: committed, 0: not, -1 */
	int64_t			*ids;		/* created, if committed */
	int			 nids;
	/* the other nodes */
	int			 listening;
	int64_t			 applied;	/* counter caught up with */
	int64_t			 refetch;	/* -1, or fetch again from */
	int64_t			 job_refetch;	/* the catch-up's, until done */
	int			 catchup;	/* wanted */
	store_synced_fn		 synced;
	void			*synced_arg;
	int			 sync_asked;	/* not yet covered by a job */
	int			 sync_covered;	/* by the catch-up in flight */
	const struct store_shared_hooks	*hooks;
	void			*hooks_arg;
	/* ticket secrets */
	int			 lifetime;	/* 0: no tickets */
	int			 tickets_due;
	struct event		 tick;
	uint32_t		 revs[PGSTORE_TICKETS_KEPT];
	int			 nrevs;
	struct proto_ticket_key	 secrets[PGSTORE_TICKETS_KEPT];
	int			 nsecrets;
	int			 tickets_wait;	/* ms until one is usable */
	/* the snapshot being read, on a connection of its own */
	PGconn			*snap;
	int			 snap_reading;
	int			 snap_failed;
	int64_t			 snap_seq;
	struct pgwatch		 snap_w;
	struct event		 snap_timer;
	store_iter_fn		 snap_fn;
	store_snapped_fn	 snap_done;
	void			*snap_arg;
	char			 err[256];
};

/* BEGIN, SET LOCAL, the counter, the token, n writes, COMMIT */
#define PGSTORE_COUNTER		2
#define PGSTORE_FIRST_WRITE	4

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
	/* versions 2 and 3: the change counter, for several nodes */
	"ALTER TABLE todo ADD COLUMN IF NOT EXISTS chg bigint NOT NULL DEFAULT 0",
	"CREATE INDEX IF NOT EXISTS todo_chg ON todo (chg)",
	/*
	 * A todod of version 1 still running would write rows no other node
	 * hears of: its items (chg left at 0) are refused instead.
	 */
	("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE"
	" conname = 'todo_chg_set') THEN ALTER TABLE todo ADD CONSTRAINT"
	" todo_chg_set CHECK (chg > 0) NOT VALID; END IF; END $$"),
	("CREATE TABLE IF NOT EXISTS todo_gone ("
	" id bigint PRIMARY KEY, chg bigint NOT NULL,"
	" at timestamptz NOT NULL DEFAULT now())"),
	"CREATE INDEX IF NOT EXISTS todo_gone_chg ON todo_gone (chg)",
	("CREATE TABLE IF NOT EXISTS todod_seq ("
	" seq bigint NOT NULL, n bigint NOT NULL, pruned bigint NOT NULL)"),
	("INSERT INTO todod_seq SELECT 0, (SELECT count(*) FROM todo), 0"
	" WHERE NOT EXISTS (SELECT 1 FROM todod_seq)"),
	("CREATE TABLE IF NOT EXISTS todod_ticket ("
	" rev integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
	" secret bytea NOT NULL,"
	" created timestamptz NOT NULL DEFAULT now(),"
	" not_before timestamptz NOT NULL)"),
	/* a group's token: whether it committed, and what it created */
	("CREATE TABLE IF NOT EXISTS todod_commit ("
	" token bigint PRIMARY KEY, seq bigint NOT NULL,"
	" ids bigint[] NOT NULL DEFAULT '{}',"
	" at timestamptz NOT NULL DEFAULT now())"),
	("INSERT INTO todod_schema (version) SELECT 3"
	" WHERE NOT EXISTS (SELECT 1 FROM todod_schema)"),
	"UPDATE todod_schema SET version = 3 WHERE version < 3",
	"COMMIT"
};

/*
 * The counter row is locked from the group's first statement to its
 * COMMIT: groups of all nodes take their numbers in commit order.
 */
static const char *pgstore_sql_counter =
	"UPDATE todod_seq SET seq = seq + 1"
	" RETURNING seq, pg_notify('todod', seq::text)";
static const char *pgstore_sql_token =
	"INSERT INTO todod_commit (token, seq) SELECT $1::bigint, seq"
	" FROM todod_seq";
static const char *pgstore_sql_create =
	"WITH s AS (UPDATE todod_seq SET n = n + 1 RETURNING seq),"
	" r AS (INSERT INTO todo (task, done, created_by, updated_by, chg)"
	" SELECT $1::text, $2::boolean, $3::text, $3::text, s.seq FROM s"
	" RETURNING id, task, done),"
	" k AS (UPDATE todod_commit SET ids = ids || ARRAY(SELECT id FROM r)"
	" WHERE token = $4::bigint)"
	" SELECT id, task, done FROM r";
/*
 * A lost group's fate: its session ended (terminated, waited for up to
 * 2 s), then its token.
 */
static const char *pgstore_sql_resolve[] = {
	("SELECT pg_terminate_backend(pid, 2000) FROM pg_stat_activity"
	" WHERE pid = $1::int"),
	/* pg_stat_activity is read once a transaction, unless cleared */
	("SELECT pg_stat_clear_snapshot(), NOT EXISTS (SELECT 1 FROM"
	" pg_stat_activity WHERE pid = $1::int)"),
	"SELECT array_to_string(ids, ' ') FROM todod_commit WHERE token = $1::bigint"
};
static const char *pgstore_sql_update =
	"UPDATE todo SET"
	" task = CASE WHEN $2::boolean THEN $3::text ELSE task END,"
	" done = CASE WHEN $4::boolean THEN $5::boolean ELSE done END,"
	" updated_by = $6::text, updated_at = now(),"
	" chg = (SELECT seq FROM todod_seq)"
	" WHERE id = $1::bigint RETURNING id, task, done";
static const char *pgstore_sql_delete =
	"WITH d AS (DELETE FROM todo WHERE id = $1::bigint"
	" RETURNING id, task, done),"
	" g AS (INSERT INTO todo_gone (id, chg)"
	" SELECT id, (SELECT seq FROM todod_seq) FROM d),"
	" c AS (UPDATE todod_seq SET n = n - 1"
	" WHERE EXISTS (SELECT 1 FROM d))"
	" SELECT id, task, done FROM d";

/* A catch-up: the counter first, then what changed since $1. */
static const char *pgstore_sql_catchup[] = {
	"SELECT seq, n, pruned FROM todod_seq",
	"SELECT id, task, done FROM todo WHERE chg > $1::bigint ORDER BY id",
	"SELECT id FROM todo_gone WHERE chg > $1::bigint"
};

/*
 * The ticket secrets: one node at a time adds one when the newest is a
 * quarter of the ticket lifetime old; a new secret is usable only after
 * every node has had time to see it (two polls), so that no node makes a
 * ticket another one cannot read yet.  Deletions older than a week are
 * forgotten here too.
 */
static const char *pgstore_sql_tickets[] = {
	"BEGIN",
	"SELECT pg_advisory_xact_lock(" PGSTORE_TICKET_KEY ")",
	("INSERT INTO todod_ticket (secret, not_before)"
	" SELECT decode($1::text, 'hex'), CASE WHEN EXISTS"
	" (SELECT 1 FROM todod_ticket) THEN now() + $3::int *"
	" interval '1 second' ELSE now() END WHERE NOT EXISTS"
	" (SELECT 1 FROM todod_ticket WHERE created >"
	" now() - $2::int * interval '1 second')"),
	("DELETE FROM todod_ticket WHERE rev NOT IN (SELECT rev FROM"
	" todod_ticket ORDER BY rev DESC LIMIT $1::int)"),
	"DELETE FROM todod_commit WHERE at < now() - interval '1 hour'",
	("WITH p AS (DELETE FROM todo_gone WHERE at < now() - interval '"
	PGSTORE_GONE_DAYS " days' RETURNING chg)"
	" UPDATE todod_seq SET pruned = greatest(pruned,"
	" (SELECT max(chg) FROM p)) WHERE EXISTS (SELECT 1 FROM p)"),
	("SELECT rev, encode(secret, 'hex'), ceil(extract(epoch FROM"
	" greatest(not_before - now(), interval '0')) * 1000)::bigint"
	" FROM todod_ticket ORDER BY rev"),
	"COMMIT"
};
#define PGSTORE_TICKETS_ROWS	6	/* the SELECT above */

static void	pgstore_connect(struct pgstore *);
static void	pgstore_io(int, short, void *);

/* libpq's messages end in a newline (some hold more); ours are one line. */
static void
pgstore_seterr(struct pgstore *pg, const char *msg)
{
	size_t	 len, i;

	strlcpy(pg->err, msg, sizeof(pg->err));
	for (i = 0; pg->err[i] != '\0'; i++)
		if (pg->err[i] == '\n' || pg->err[i] == '\t')
			pg->err[i] = ' ';
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

/* The schema version, or 0 when there is none yet. */
static int
pgstore_schema_version(struct pgstore *pg, char *v, size_t vlen)
{
	const char	*e;
	int		 ver;

	if (pgstore_exec(pg, "SELECT to_regclass('todod_schema') IS NOT NULL",
	    v, vlen) == -1)
		return -1;
	if (strcmp(v, "t") != 0)
		return 0;
	if (pgstore_exec(pg, "SELECT max(version) FROM todod_schema", v,
	    vlen) == -1)
		return -1;
	ver = strtonum(v, 1, INT_MAX, &e);
	return e != NULL ? INT_MAX : ver;
}

/*
 * Created if missing, brought to this version if older (by one node at a
 * time), then checked.
 */
static int
pgstore_schema_check(struct pgstore *pg, char *err, size_t errlen)
{
	char	 v[64];
	int	 ver;

	if ((ver = pgstore_schema_version(pg, v, sizeof(v))) == -1 ||
	    (ver < PGSTORE_SCHEMA_VERSION && (pgstore_schema_create(pg) == -1 ||
	    (ver = pgstore_schema_version(pg, v, sizeof(v))) == -1))) {
		snprintf(err, errlen, "database: PostgreSQL: creating the "
		    "schema: %s", pg->err);
		return -1;
	}
	if (ver != PGSTORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "database: PostgreSQL: schema version "
		    "\"%s\" in table todod_schema; this todod knows version %d "
		    "only", v, PGSTORE_SCHEMA_VERSION);
		return -1;
	}
	if (pgstore_exec(pg, "SELECT has_table_privilege('todo', "
	    "'SELECT, INSERT, UPDATE, DELETE') AND has_table_privilege("
	    "'todod_seq', 'SELECT, UPDATE') AND has_table_privilege("
	    "'todo_gone', 'SELECT, INSERT, DELETE') AND has_table_privilege("
	    "'todod_ticket', 'SELECT, INSERT, DELETE') AND has_table_privilege("
	    "'todod_commit', 'SELECT, INSERT, UPDATE, DELETE')", v,
	    sizeof(v)) == -1 ||
	    strcmp(v, "t") != 0) {
		snprintf(err, errlen, "database: PostgreSQL: the user needs "
		    "SELECT, INSERT, UPDATE and DELETE on tables todo, "
		    "todo_gone, todod_seq, todod_ticket and todod_commit%s%s",
		    pg->err[0] ? ": " : "", pg->err);
		return -1;
	}
	return 0;
}

static int
pgstore_start(struct pgstore *pg, char *err, size_t errlen)
{
	PGresult	*res;
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
	res = PQexec(pg->conn, "SELECT seq, n FROM todod_seq");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		snprintf(err, errlen, "database: PostgreSQL: table todod_seq "
		    "must hold one row: %s", PQresultErrorMessage(res));
		err[strcspn(err, "\n")] = '\0';
		PQclear(res);
		return -1;
	}
	pg->applied = strtonum(PQgetvalue(res, 0, 0), 0, INT64_MAX, &e);
	pg->count = strtonum(PQgetvalue(res, 0, 1), 0, INT64_MAX, &e);
	PQclear(res);
	return 0;
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

/* The GETs waiting for a catch-up learn its outcome. */
static void
pgstore_sync_end(struct pgstore *pg, int ok)
{
	store_synced_fn	 fn = pg->synced;

	if (fn == NULL || (ok && !pg->sync_covered))
		return;
	pg->synced = NULL;
	pg->sync_asked = pg->sync_covered = 0;
	fn(pg->synced_arg, ok);
}

/*
 * A snapshot reflects the counter it read; the caches that took it need
 * what changed since, even what this node applied already.  Kept until a
 * catch-up that fetched it went through.
 */
static void
pgstore_refetch(struct pgstore *pg, int64_t from)
{
	if (from >= 0 && (pg->refetch == -1 || from < pg->refetch))
		pg->refetch = from;
}

/*
 * The group in flight when the connection went may have committed: it
 * waits, answered neither way, until its token tells (JOB_RESOLVE) or
 * PGSTORE_DOUBT_SECONDS pass.
 */
static void
pgstore_doubt(struct pgstore *pg)
{
	struct timeval	 tv = { PGSTORE_DOUBT_SECONDS, 0 };

	pg->doubt = 1;
	pg->doubt_pid = pg->backend_pid;
	evtimer_add(&pg->doubt_timer, &tv);
}

/*
 * What a group in doubt left.  Committed: its creations are answered with
 * the ids its token row kept, in order; the rest get 503.  Otherwise, or
 * when the ids do not add up, all of it gets 503.
 */
static void
pgstore_doubt_end(struct pgstore *pg, int committed)
{
	struct store_item	 it;
	int			 i, k = 0, creates = 0;

	evtimer_del(&pg->doubt_timer);
	pg->doubt = 0;
	for (i = 0; i < pg->n; i++)
		creates += pg->wv[i]->type == IMSG_STORE_CREATE;
	if (committed == -1)
		log_warnx("database: PostgreSQL: whether a group lost after "
		    "it went committed is not known: its %d writes get 503 "
		    "and may have been applied", pg->n);
	if (committed != 1 || creates != pg->nids) {
		if (committed == 1)
			log_warnx("database: PostgreSQL: a group lost after "
			    "its COMMIT did commit, but its ids do not add "
			    "up: its writes get 503");
		pgstore_group_end(pg, STORE_GROUP_UNAVAILABLE);
		return;
	}
	for (i = 0; i < pg->n; i++) {
		if (pg->wv[i]->type != IMSG_STORE_CREATE) {
			pg->wv[i]->status = STORE_UNAVAILABLE;
			continue;
		}
		it.id = pg->ids[k++];
		it.task = pg->wv[i]->task;
		it.tasklen = strlen(pg->wv[i]->task);
		it.done = pg->wv[i]->done;
		store_write_result(pg->wv[i], 0, &it);
	}
	log_info("database: PostgreSQL: a group lost after its COMMIT did "
	    "commit: %d creations answered", creates);
	pgstore_group_end(pg, STORE_GROUP_OK);
}

static void
pgstore_doubt_timeout(int fd, short ev, void *arg)
{
	struct pgstore	*pg = arg;

	/* too late for the request timeout: answered, whatever comes */
	if (pg->doubt)
		pgstore_doubt_end(pg, -1);
}

/* The connection is gone: whatever was in flight or waiting gets 503. */
static void
pgstore_lost(struct pgstore *pg, const char *why)
{
	struct timeval	 tv;

	if (pg->state == PG_IDLE || pg->state == PG_BUSY)
		log_warnx("database: PostgreSQL connection lost: %s; "
		    "writes and reads get 503 until it is back", why);
	pgstore_seterr(pg, why);
	pgwatch_disarm(&pg->w);
	PQfinish(pg->conn);
	pg->conn = NULL;
	pg->state = PG_DOWN;
	if (pg->job == JOB_TICKETS)
		pg->tickets_due = 1;	/* again once back */
	if (pg->job == JOB_CATCHUP)
		pgstore_refetch(pg, pg->job_refetch);
	if (pg->job == JOB_GROUP && pg->backend_pid > 0)
		pgstore_doubt(pg);
	pg->job = JOB_NONE;
	pg->listening = 0;
	pg->backoff = pg->backoff == 0 ? PGSTORE_BACKOFF_MIN_MS :
	    pg->backoff * 2;
	if (pg->backoff > PGSTORE_BACKOFF_MAX_MS)
		pg->backoff = PGSTORE_BACKOFF_MAX_MS;
	tv.tv_sec = pg->backoff / 1000;
	tv.tv_usec = (pg->backoff % 1000) * 1000;
	evtimer_del(&pg->timer);
	evtimer_add(&pg->timer, &tv);
	if (!pg->doubt)
		pgstore_group_end(pg, STORE_GROUP_UNAVAILABLE);
	pgstore_sync_end(pg, 0);
}

static void	pgstore_next(struct pgstore *);

static void
pgstore_ready(struct pgstore *pg)
{
	if (PQsetnonblocking(pg->conn, 1) == -1 ||
	    PQenterPipelineMode(pg->conn) == 0) {
		pgstore_lost(pg, PQerrorMessage(pg->conn));
		return;
	}
	PQsetNoticeProcessor(pg->conn, pgstore_notice, NULL);
	pg->backend_pid = PQbackendPID(pg->conn);
	if (pg->backoff != 0)
		log_info("database: PostgreSQL connection back");
	pg->backoff = 0;
	pg->state = PG_IDLE;
	/* what the other nodes did meanwhile, notifications missed */
	pg->catchup = 1;
	pgwatch_deadline(&pg->timer, 0);
	/* readable when idle: the server closed it, see it at once */
	pgwatch_arm(&pg->w, pg->conn, EV_READ);
	pgstore_next(pg);
}

static void
pgstore_connect_step(struct pgstore *pg)
{
	switch (pgwatch_connect_step(&pg->w, pg->conn)) {
	case 1:
		pgstore_ready(pg);
		break;
	case -1:
		pgstore_lost(pg, PQerrorMessage(pg->conn));
		break;
	}
}

static void
pgstore_connect(struct pgstore *pg)
{
	pg->conn = pgwatch_connect(&pg->w, pg->uri);
	if (pg->conn == NULL || PQstatus(pg->conn) == CONNECTION_BAD) {
		pgstore_lost(pg, pg->conn ? PQerrorMessage(pg->conn) :
		    "out of memory");
		return;
	}
	pg->state = PG_CONNECTING;
	pgwatch_deadline(&pg->timer, PGSTORE_CONNECT_SECONDS);
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
		pgstore_lost(pg, pg->job == JOB_GROUP ?
		    "a commit took too long" : "a query took too long");
		break;
	default:
		break;
	}
}

static int
pgstore_row_item(PGresult *res, int row, struct store_item *it)
{
	const char	*e;

	it->id = strtonum(PQgetvalue(res, row, 0), 1, INT64_MAX, &e);
	if (e != NULL)
		return -1;
	it->task = PQnfields(res) > 1 ? PQgetvalue(res, row, 1) : "";
	it->tasklen = PQnfields(res) > 1 ? PQgetlength(res, row, 1) : 0;
	it->done = PQnfields(res) > 2 &&
	    strcmp(PQgetvalue(res, row, 2), "t") == 0;
	return 0;
}

static int
pgstore_row(struct store_write *w, PGresult *res)
{
	struct store_item	 it;

	if (PQntuples(res) == 0)
		return store_write_result(w, 1, NULL);
	if (pgstore_row_item(res, 0, &it) == -1)
		return -1;
	return store_write_result(w, 0, &it);
}

static int
pgstore_int64(PGresult *res, int row, int col, int64_t *v)
{
	const char	*e;

	*v = strtonum(PQgetvalue(res, row, col), 0, INT64_MAX, &e);
	return e == NULL ? 0 : -1;
}

/* The other nodes' changes, each passed on as the item is now. */
static int
pgstore_catchup_rows(struct pgstore *pg, PGresult *res, int q)
{
	struct store_item	 it;
	int64_t			 pruned;
	int			 i;

	if (q == 0) {
		if (PQntuples(res) != 1 || pgstore_int64(res, 0, 0,
		    &pg->jobseq) == -1 || pgstore_int64(res, 0, 1,
		    &pg->count) == -1 || pgstore_int64(res, 0, 2,
		    &pruned) == -1)
			return -1;
		if (pruned > pg->applied)
			log_warnx("database: PostgreSQL: this node was out of "
			    "touch longer than deletions are remembered (%s "
			    "days): restart it", PGSTORE_GONE_DAYS);
		return 0;
	}
	for (i = 0; i < PQntuples(res); i++) {
		if (pgstore_row_item(res, i, &it) == -1)
			return -1;
		if (pg->hooks != NULL)
			pg->hooks->change(pg->hooks_arg, &it, q == 2);
	}
	return 0;
}

static int
pgstore_hex(const char *hex, uint8_t *out, size_t len)
{
	unsigned int	 v;
	size_t		 i;

	if (strlen(hex) != len * 2)
		return -1;
	for (i = 0; i < len; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = v;
	}
	return 0;
}

/* The secrets usable now, and how long until the next one is. */
static int
pgstore_ticket_rows(struct pgstore *pg, PGresult *res)
{
	struct proto_ticket_key	*sec;
	int64_t			 rev, wait;
	int			 i;

	pg->nsecrets = 0;
	pg->tickets_wait = PGSTORE_TICKET_POLL * 1000;
	for (i = 0; i < PQntuples(res); i++) {
		if (pgstore_int64(res, i, 0, &rev) == -1 || rev > 0x7fffffff ||
		    pgstore_int64(res, i, 2, &wait) == -1)
			return -1;
		if (wait > 0) {
			if (wait < pg->tickets_wait)
				pg->tickets_wait = wait;
			continue;
		}
		if (pg->nsecrets == PGSTORE_TICKETS_KEPT)
			continue;
		sec = &pg->secrets[pg->nsecrets];
		sec->keyrev = rev;
		if (pgstore_hex(PQgetvalue(res, i, 1), sec->key,
		    sizeof(sec->key)) == -1)
			return -1;
		pg->nsecrets++;
	}
	return 0;
}

/* The ids a committed group created, in order. */
static int
pgstore_resolve_ids(struct pgstore *pg, const char *s)
{
	char		*copy, *p, *w;
	const char	*e;
	int64_t		*v;

	if ((copy = strdup(s)) == NULL)
		fatal("%s", __func__);
	pg->nids = 0;
	for (p = copy; (w = strsep(&p, " ")) != NULL;) {
		if (*w == '\0')
			continue;
		if ((v = reallocarray(pg->ids, pg->nids + 1,
		    sizeof(*v))) == NULL)
			fatal("%s", __func__);
		pg->ids = v;
		pg->ids[pg->nids++] = strtonum(w, 1, INT64_MAX, &e);
		if (e != NULL) {
			free(copy);
			return -1;
		}
	}
	free(copy);
	return 0;
}

/* The old session gone (q 1), then the token row if it committed. */
static int
pgstore_resolve_rows(struct pgstore *pg, PGresult *res, int q)
{
	if (q == 1 && PQntuples(res) == 1)
		pg->resolved = strcmp(PQgetvalue(res, 0, 1), "t") == 0 ?
		    0 : -1;
	else if (q == 2 && PQntuples(res) == 1) {
		pg->resolved = 1;
		return pgstore_resolve_ids(pg, PQgetvalue(res, 0, 0));
	}
	return 0;
}

/* The rows a statement returned, by job and statement. */
static int
pgstore_tuples(struct pgstore *pg, PGresult *res, int q)
{
	int	 i = q - PGSTORE_FIRST_WRITE;

	switch (pg->job) {
	case JOB_GROUP:
		if (q == PGSTORE_COUNTER)
			return PQntuples(res) == 1 ? pgstore_int64(res, 0, 0,
			    &pg->jobseq) : -1;
		if (i >= 0 && i < pg->n)
			return pgstore_row(pg->wv[i], res);
		return 0;
	case JOB_CATCHUP:
		return pgstore_catchup_rows(pg, res, q);
	case JOB_TICKETS:
		return q == PGSTORE_TICKETS_ROWS ? pgstore_ticket_rows(pg,
		    res) : 0;
	case JOB_RESOLVE:
		return pgstore_resolve_rows(pg, res, q);
	default:
		return 0;
	}
}

/* The statements a job sends before its Sync. */
static int
pgstore_job_statements(const struct pgstore *pg)
{
	switch (pg->job) {
	case JOB_GROUP:
		return pg->n + PGSTORE_FIRST_WRITE + 1;
	case JOB_CATCHUP:
		return 3;
	case JOB_TICKETS:
		return sizeof(pgstore_sql_tickets) /
		    sizeof(*pgstore_sql_tickets);
	case JOB_RESOLVE:
		return 3;
	default:
		return 1;
	}
}

/* One result of the pipeline; 1 when the job's Sync came back. */
static int
pgstore_result(struct pgstore *pg, PGresult *res)
{
	int	 st = PQresultStatus(res), q = pg->q;

	if (st == PGRES_PIPELINE_SYNC)
		return 1;
	/* one result a statement, then a NULL that is skipped */
	if (pg->q++ >= pgstore_job_statements(pg)) {
		pgstore_seterr(pg, "results out of step");
		pg->failed = 1;
		return 0;
	}
	switch (st) {
	case PGRES_TUPLES_OK:
		if (!pg->failed && pgstore_tuples(pg, res, q) == -1) {
			pgstore_seterr(pg, "a value out of range");
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

static void
pgstore_tickets_end(struct pgstore *pg)
{
	struct timeval	 tv;
	uint32_t	 revs[PGSTORE_TICKETS_KEPT];
	int		 i;

	for (i = 0; i < pg->nsecrets; i++)
		revs[i] = pg->secrets[i].keyrev;
	if ((pg->nsecrets != pg->nrevs || memcmp(revs, pg->revs,
	    pg->nsecrets * sizeof(revs[0])) != 0) && pg->hooks != NULL) {
		memcpy(pg->revs, revs, sizeof(revs));
		pg->nrevs = pg->nsecrets;
		pg->hooks->tickets(pg->hooks_arg, pg->secrets, pg->nsecrets);
	}
	explicit_bzero(pg->secrets, sizeof(pg->secrets));
	tv.tv_sec = pg->tickets_wait / 1000;
	tv.tv_usec = (pg->tickets_wait % 1000) * 1000 + 1000;
	evtimer_del(&pg->tick);
	evtimer_add(&pg->tick, &tv);
}

/* The job went through: each kind has its ending. */
static void
pgstore_job_ok(struct pgstore *pg, enum pgstore_job job)
{
	switch (job) {
	case JOB_LISTEN:
		pg->listening = 1;
		break;
	case JOB_GROUP:
		/* with no other node's group between, nothing to fetch */
		if (pg->jobseq == pg->applied + 1)
			pg->applied = pg->jobseq;
		pgstore_group_end(pg, STORE_GROUP_OK);
		break;
	case JOB_CATCHUP:
		if (pg->jobseq > pg->applied)
			pg->applied = pg->jobseq;
		if (pg->hooks != NULL)
			pg->hooks->changed(pg->hooks_arg, pg->count);
		pgstore_sync_end(pg, 1);
		break;
	case JOB_TICKETS:
		pgstore_tickets_end(pg);
		break;
	case JOB_RESOLVE:
		if (pg->doubt)
			pgstore_doubt_end(pg, pg->resolved);
		break;
	default:
		break;
	}
}

/*
 * A failed job leaves its transaction aborted; a new connection is the
 * simplest clean state, and failures are rare (the bounds are checked
 * before a write is sent).
 */
static void
pgstore_job_done(struct pgstore *pg)
{
	enum pgstore_job	 job = pg->job;

	pgwatch_deadline(&pg->timer, 0);
	pg->job = JOB_NONE;
	if (pg->failed) {
		log_warnx("database: PostgreSQL: %s", pg->err);
		pgwatch_disarm(&pg->w);
		PQfinish(pg->conn);
		pg->conn = NULL;
		pg->state = PG_DOWN;
		pg->listening = 0;
		evtimer_del(&pg->timer);
		pgstore_connect(pg);
		if (job == JOB_TICKETS)
			pg->tickets_due = 1;	/* again once back */
		if (job == JOB_CATCHUP)
			pgstore_refetch(pg, pg->job_refetch);
		if (pg->doubt)
			pgstore_doubt_end(pg, -1);
		else
			pgstore_group_end(pg, job == JOB_GROUP ?
			    STORE_GROUP_FAILED : STORE_GROUP_UNAVAILABLE);
		pgstore_sync_end(pg, 0);
		return;
	}
	pg->state = PG_IDLE;
	pgwatch_arm(&pg->w, pg->conn, EV_READ);
	pgstore_job_ok(pg, job);
	pgstore_next(pg);
}

/* Another node committed: catch up unless this number is applied. */
static void
pgstore_notifies(struct pgstore *pg)
{
	PGnotify	*n;
	const char	*e;
	int64_t		 seq;

	while ((n = PQnotifies(pg->conn)) != NULL) {
		seq = strtonum(n->extra, 0, INT64_MAX, &e);
		if (e != NULL || seq > pg->applied)
			pg->catchup = 1;
		PQfreemem(n);
	}
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
			pgstore_job_done(pg);
	}
	if (pg->conn == NULL)
		return;
	/* after the results: a group's own notification is applied */
	pgstore_notifies(pg);
	if (pg->state != PG_IDLE)
		return;
	/* idle: only an error (the server shutting down) comes */
	if (!PQisBusy(pg->conn) && (res = PQgetResult(pg->conn)) != NULL) {
		pgstore_seterr(pg, PQresultErrorMessage(res));
		PQclear(res);
		pgstore_lost(pg, pg->err[0] ? pg->err : "unexpected result");
	} else if (PQstatus(pg->conn) == CONNECTION_BAD)
		pgstore_lost(pg, "closed by the server");
	else
		pgstore_next(pg);
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
		pgwatch_arm(&pg->w, pg->conn, r == 1 ? EV_READ | EV_WRITE :
		    EV_READ);
}

static int
pgstore_send_write(struct pgstore *pg, const struct store_write *w,
    const char *tok)
{
	char		 id[32];
	const char	*p[6];

	snprintf(id, sizeof(id), "%lld", (long long)w->id);
	switch (w->type) {
	case IMSG_STORE_CREATE:
		p[0] = w->task;
		p[1] = w->done ? "t" : "f";
		p[2] = w->cn;
		p[3] = tok;
		return PQsendQueryParams(pg->conn, pgstore_sql_create, 4, NULL,
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

static int
pgstore_send1(struct pgstore *pg, const char *sql, const char *p1)
{
	return PQsendQueryParams(pg->conn, sql, 1, NULL, &p1, NULL, NULL, 0);
}

static int
pgstore_send_group(struct pgstore *pg)
{
	char	 tok[32];
	int	 i, ok;

	/* positive, so that it reads the same as a bigint */
	pg->token = arc4random() & 0x7fffffff;
	pg->token = (pg->token << 32) | arc4random();
	snprintf(tok, sizeof(tok), "%llu", (unsigned long long)pg->token);
	ok = pgstore_send(pg, "BEGIN") &&
	    pgstore_send(pg, "SET LOCAL synchronous_commit TO on") &&
	    pgstore_send(pg, pgstore_sql_counter) &&
	    pgstore_send1(pg, pgstore_sql_token, tok);
	for (i = 0; ok && i < pg->n; i++)
		ok = pgstore_send_write(pg, pg->wv[i], tok);
	return ok && pgstore_send(pg, "COMMIT");
}

static int
pgstore_send_resolve(struct pgstore *pg)
{
	char	 pid[16], tok[32];

	pg->resolved = -1;
	pg->nids = 0;
	snprintf(pid, sizeof(pid), "%d", pg->doubt_pid);
	snprintf(tok, sizeof(tok), "%llu", (unsigned long long)pg->token);
	return pgstore_send1(pg, pgstore_sql_resolve[0], pid) &&
	    pgstore_send1(pg, pgstore_sql_resolve[1], pid) &&
	    pgstore_send1(pg, pgstore_sql_resolve[2], tok);
}

static int
pgstore_send_catchup(struct pgstore *pg)
{
	char	 since[32];
	int64_t	 from = pg->applied;

	pg->job_refetch = pg->refetch;
	pg->refetch = -1;
	if (pg->job_refetch != -1 && pg->job_refetch < from)
		from = pg->job_refetch;
	snprintf(since, sizeof(since), "%lld", (long long)from);
	return pgstore_send(pg, pgstore_sql_catchup[0]) &&
	    pgstore_send1(pg, pgstore_sql_catchup[1], since) &&
	    pgstore_send1(pg, pgstore_sql_catchup[2], since);
}

static int
pgstore_send_tickets(struct pgstore *pg)
{
	uint8_t		 secret[PROTO_TICKET_KEY_SIZE];
	char		 hex[2 * sizeof(secret) + 1], every[16], delay[16];
	char		 kept[16];
	const char	*p[3] = { hex, every, delay };
	size_t		 i;
	int		 ok;

	arc4random_buf(secret, sizeof(secret));
	for (i = 0; i < sizeof(secret); i++)
		snprintf(hex + 2 * i, 3, "%02x", secret[i]);
	snprintf(every, sizeof(every), "%d", pg->lifetime / 4 > 0 ?
	    pg->lifetime / 4 : 1);
	snprintf(delay, sizeof(delay), "%d", 2 * PGSTORE_TICKET_POLL);
	snprintf(kept, sizeof(kept), "%d", PGSTORE_TICKETS_KEPT);
	ok = pgstore_send(pg, pgstore_sql_tickets[0]) &&
	    pgstore_send(pg, pgstore_sql_tickets[1]) &&
	    PQsendQueryParams(pg->conn, pgstore_sql_tickets[2], 3, NULL, p,
	    NULL, NULL, 0) &&
	    pgstore_send1(pg, pgstore_sql_tickets[3], kept) &&
	    pgstore_send(pg, pgstore_sql_tickets[4]) &&
	    pgstore_send(pg, pgstore_sql_tickets[5]) &&
	    pgstore_send(pg, pgstore_sql_tickets[6]) &&
	    pgstore_send(pg, pgstore_sql_tickets[7]);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(hex, sizeof(hex));
	return ok;
}

/* What goes next on an idle connection, if anything. */
static enum pgstore_job
pgstore_pick(struct pgstore *pg)
{
	if (pg->doubt)
		return JOB_RESOLVE;
	if (pg->wv != NULL && (pg->listening || pg->hooks == NULL))
		return JOB_GROUP;
	/* nothing of the other nodes before someone takes it */
	if (pg->hooks == NULL)
		return JOB_NONE;
	if (!pg->listening)
		return JOB_LISTEN;
	if (pg->catchup || pg->sync_asked)
		return JOB_CATCHUP;
	if (pg->tickets_due && pg->lifetime > 0)
		return JOB_TICKETS;
	return JOB_NONE;
}

static void
pgstore_next(struct pgstore *pg)
{
	int	 ok;

	if (pg->state != PG_IDLE || (pg->job = pgstore_pick(pg)) == JOB_NONE)
		return;
	pg->q = 0;
	pg->failed = 0;
	pg->jobseq = 0;
	pg->state = PG_BUSY;
	switch (pg->job) {
	case JOB_LISTEN:
		ok = pgstore_send(pg, "LISTEN todod");
		break;
	case JOB_GROUP:
		ok = pgstore_send_group(pg);
		break;
	case JOB_RESOLVE:
		ok = pgstore_send_resolve(pg);
		break;
	case JOB_CATCHUP:
		/* the GETs that asked before this point are served by it */
		pg->catchup = 0;
		pg->sync_covered = pg->sync_asked;
		pg->sync_asked = 0;
		ok = pgstore_send_catchup(pg);
		break;
	default:
		pg->tickets_due = 0;
		ok = pgstore_send_tickets(pg);
		break;
	}
	if (!ok || !PQpipelineSync(pg->conn)) {
		pgstore_lost(pg, PQerrorMessage(pg->conn));
		return;
	}
	pgwatch_deadline(&pg->timer, PGSTORE_GROUP_SECONDS);
	pgstore_io(-1, 0, pg);		/* flush, and wait for the answer */
}

static void
pgstore_submit(void *be, struct store_write **wv, int n, store_done_fn done,
    void *arg)
{
	struct pgstore	*pg = be;

	if (pg->state != PG_IDLE && pg->state != PG_BUSY) {
		done(arg, STORE_GROUP_UNAVAILABLE);
		return;
	}
	if (pg->wv != NULL)
		fatalx("%s: a second group", __func__);
	if ((pg->wv = reallocarray(NULL, n, sizeof(*wv))) == NULL)
		fatal("%s", __func__);
	memcpy(pg->wv, wv, n * sizeof(*wv));
	pg->n = n;
	pg->done = done;
	pg->arg = arg;
	pgstore_next(pg);
}

/*
 * A GET must see every write acknowledged anywhere before it came: the
 * next catch-up that starts from now on answers, for all who asked.
 */
static void
pgstore_sync(void *be, store_synced_fn fn, void *arg)
{
	struct pgstore	*pg = be;

	if (pg->state != PG_IDLE && pg->state != PG_BUSY) {
		fn(arg, 0);
		return;
	}
	if (pg->synced != NULL)
		fatalx("%s: a second caller", __func__);
	pg->synced = fn;
	pg->synced_arg = arg;
	pg->sync_asked = 1;
	pgstore_next(pg);
}

static void
pgstore_tick(int fd, short ev, void *arg)
{
	struct pgstore	*pg = arg;
	struct timeval	 tv = { PGSTORE_TICKET_POLL, 0 };

	pg->tickets_due = 1;
	if (pg->state == PG_IDLE)
		pgstore_next(pg);
	else if (pg->state != PG_BUSY)
		evtimer_add(&pg->tick, &tv);	/* again when it is back */
}

static void
pgstore_share(void *be, const struct store_shared_hooks *hooks, void *arg,
    int lifetime)
{
	struct pgstore	*pg = be;

	pg->hooks = hooks;
	pg->hooks_arg = arg;
	pg->lifetime = lifetime > 0 ? lifetime : 0;
	pg->tickets_due = pg->lifetime > 0;
	pgstore_next(pg);
}

/*
 * The snapshot: one statement, so one view of the database, with the
 * counter as of that view in every row (and a row of NULLs when there are
 * no items).
 */
static const char *pgstore_sql_snapshot =
	"SELECT s.seq, t.id, t.task, t.done FROM todod_seq s"
	" LEFT JOIN todo t ON true ORDER BY t.id";

static void	pgstore_snap_io(int, short, void *);

/*
 * The snapshot is over.  Complete: what changed since its counter comes
 * with the next catch-up, to every cache (those that had it already take
 * it again, harmlessly).
 */
static void
pgstore_snap_end(struct pgstore *pg, const char *why)
{
	store_snapped_fn	 done = pg->snap_done;

	/* why may be the connection's own message: said before it goes */
	if (why != NULL)
		log_warnx("database: PostgreSQL snapshot: %.*s",
		    (int)strcspn(why, "\n"), why);
	pgwatch_disarm(&pg->snap_w);
	evtimer_del(&pg->snap_timer);
	PQfinish(pg->snap);
	pg->snap = NULL;
	pg->snap_reading = 0;
	pg->snap_done = NULL;
	if (why == NULL) {
		pgstore_refetch(pg, pg->snap_seq);
		pg->catchup = 1;
	}
	if (done != NULL)
		done(pg->snap_arg, why == NULL);
	pgstore_next(pg);
}

static int
pgstore_snap_row(struct pgstore *pg, PGresult *res)
{
	struct store_item	 it;
	const char		*e;

	pg->snap_seq = strtonum(PQgetvalue(res, 0, 0), 0, INT64_MAX, &e);
	if (e != NULL)
		return -1;
	if (PQgetisnull(res, 0, 1))
		return 0;
	it.id = strtonum(PQgetvalue(res, 0, 1), 1, INT64_MAX, &e);
	if (e != NULL)
		return -1;
	it.task = PQgetvalue(res, 0, 2);
	it.tasklen = PQgetlength(res, 0, 2);
	it.done = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
	return pg->snap_fn(pg->snap_arg, &it);
}

static void
pgstore_snap_read(struct pgstore *pg)
{
	PGresult	*res;
	int		 st, r;

	if (!PQconsumeInput(pg->snap)) {
		pgstore_snap_end(pg, PQerrorMessage(pg->snap));
		return;
	}
	pgwatch_deadline(&pg->snap_timer, PGSTORE_SNAP_STALL);
	while (!PQisBusy(pg->snap)) {
		if ((res = PQgetResult(pg->snap)) == NULL) {
			pgstore_snap_end(pg, pg->snap_failed ? pg->err : NULL);
			return;
		}
		st = PQresultStatus(res);
		if (st == PGRES_SINGLE_TUPLE && !pg->snap_failed) {
			if ((r = pgstore_snap_row(pg, res)) == -1) {
				pgstore_seterr(pg, "a value out of range");
				pg->snap_failed = 1;
			} else if (r == 1) {
				/*
				 * Every receiving cache is full: the rest
				 * stays in the store, read on a miss.  Reading
				 * it anyway would stream the whole table past
				 * caches that drop it (ending the connection
				 * ends the query).
				 */
				PQclear(res);
				pgstore_snap_end(pg, NULL);
				return;
			}
		} else if (st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE) {
			pgstore_seterr(pg, PQresultErrorMessage(res));
			pg->snap_failed = 1;
		}
		PQclear(res);
	}
}

static void
pgstore_snap_send(struct pgstore *pg)
{
	if (PQsetnonblocking(pg->snap, 1) == -1 ||
	    !PQsendQueryParams(pg->snap, pgstore_sql_snapshot, 0, NULL, NULL,
	    NULL, NULL, 0) || !PQsetSingleRowMode(pg->snap)) {
		pgstore_snap_end(pg, PQerrorMessage(pg->snap));
		return;
	}
	pg->snap_reading = 1;
	pgwatch_deadline(&pg->snap_timer, PGSTORE_SNAP_STALL);
	pgwatch_arm(&pg->snap_w, pg->snap, PQflush(pg->snap) == 1 ?
	    EV_READ | EV_WRITE : EV_READ);
}

static void
pgstore_snap_io(int fd, short ev, void *arg)
{
	struct pgstore	*pg = arg;

	if (pg->snap_reading) {
		if (ev & EV_READ)
			pgstore_snap_read(pg);
		if (pg->snap != NULL && (ev & EV_WRITE))
			pgwatch_arm(&pg->snap_w, pg->snap,
			    PQflush(pg->snap) == 1 ? EV_READ | EV_WRITE :
			    EV_READ);
		return;
	}
	switch (pgwatch_connect_step(&pg->snap_w, pg->snap)) {
	case 1:
		pgstore_snap_send(pg);
		break;
	case -1:
		pgstore_snap_end(pg, PQerrorMessage(pg->snap));
		break;
	}
}

static void
pgstore_snap_timer(int fd, short ev, void *arg)
{
	struct pgstore	*pg = arg;

	pgstore_snap_end(pg, pg->snap_reading ? "no row for 30 seconds" :
	    "connecting timed out");
}

/*
 * Every item for new workers' caches, from the event loop; done() says
 * whether all came.  One snapshot at a time.
 */
static void
pgstore_snapshot(void *be, store_iter_fn fn, store_snapped_fn done,
    void *arg)
{
	struct pgstore	*pg = be;

	if (pg->snap_done != NULL)
		fatalx("%s: a second snapshot", __func__);
	pg->snap_fn = fn;
	pg->snap_done = done;
	pg->snap_arg = arg;
	pg->snap_failed = 0;
	pg->snap_seq = 0;
	pg->snap = pgwatch_connect(&pg->snap_w, pg->uri);
	if (pg->snap == NULL || PQstatus(pg->snap) == CONNECTION_BAD) {
		pgstore_snap_end(pg, pg->snap ? PQerrorMessage(pg->snap) :
		    "out of memory");
		return;
	}
	PQsetNoticeProcessor(pg->snap, pgstore_notice, NULL);
	pgwatch_deadline(&pg->snap_timer, PGSTORE_CONNECT_SECONDS);
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
		if (r != 0)
			break;	/* enough (the worker's cache is full) */
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

	pgwatch_disarm(&pg->w);
	evtimer_del(&pg->timer);
	evtimer_del(&pg->tick);
	evtimer_del(&pg->snap_timer);
	evtimer_del(&pg->doubt_timer);
	free(pg->ids);
	pgwatch_disarm(&pg->snap_w);
	PQfinish(pg->snap);
	PQfinish(pg->conn);
	pgread_close(pg->rd);
	free(pg->wv);
	free(pg->uri);
	free(pg);
}

static void
pgstore_read_items(void *be, const struct store_read *q, store_iter_fn fn,
    store_read_fn done, void *arg)
{
	pgread_read(((struct pgstore *)be)->rd, q, fn, done, arg);
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
	pgwatch_init(&pg->w, base, pgstore_io, pg);
	pgwatch_init(&pg->snap_w, base, pgstore_snap_io, pg);
	pg->refetch = pg->job_refetch = -1;
	evtimer_assign(&pg->timer, base, pgstore_timer, pg);
	evtimer_assign(&pg->tick, base, pgstore_tick, pg);
	evtimer_assign(&pg->snap_timer, base, pgstore_snap_timer, pg);
	evtimer_assign(&pg->doubt_timer, base, pgstore_doubt_timeout, pg);
	if (pgstore_start(pg, err, errlen) == -1) {
		pgstore_close(pg);
		return NULL;
	}
	pgstore_ready(pg);
	pg->rd = pgread_open(uri, base);
	return pg;
}

const struct store_backend_ops store_pg_ops = {
	pgstore_submit, pgstore_foreach, pgstore_count,
	pgstore_unavailable, pgstore_error, pgstore_close,
	pgstore_share, pgstore_sync, pgstore_snapshot,
	pgstore_read_items
};
