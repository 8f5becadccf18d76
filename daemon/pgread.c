#include <sys/types.h>

#include <event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "backend.h"
#include "log.h"
#include "pgread.h"
#include "pgwatch.h"

/*
 * A read that fails (the connection breaks, or the query takes longer than
 * PGREAD_SECONDS) answers -1 and the worker answers 503; the next read
 * connects again, not sooner than PGREAD_RETRY_MS after the failure, so
 * that a database that is down costs one connection attempt a while.
 * Results are bounded by the query (STORE_READ_IDS_MAX ids, a page of at
 * most STOREMSG_PAGE_MAX rows): a result is read whole.
 */
#define PGREAD_SECONDS		5
#define PGREAD_CONNECT_SECONDS	10
#define PGREAD_RETRY_MS		500

enum pgread_state {
	PGR_DOWN,
	PGR_CONNECTING,
	PGR_IDLE,
	PGR_BUSY
};

struct pgread {
	char			*uri;
	struct event_base	*base;
	PGconn			*conn;
	enum pgread_state	 state;
	struct pgwatch		 w;
	struct event		 timer;
	struct timespec		 retry;		/* no connection before */
	/* the read in flight, or waiting for the connection */
	struct store_read	 q;
	int64_t			 ids[STORE_READ_IDS_MAX];
	store_iter_fn		 fn;
	store_read_fn		 done;
	void			*arg;
	int			 stopped;	/* fn said enough */
	int			 failed;
};

static const char *pgread_sql_ids =
	"SELECT id, task, done FROM todo WHERE id = ANY($1::bigint[])"
	" ORDER BY id";
static const char *pgread_sql_page =
	"SELECT id, task, done FROM todo WHERE id > $1 ORDER BY id LIMIT $2";

static void	pgread_io(int, short, void *);

/* The read in flight is over: its caller hears how. */
static void
pgread_end(struct pgread *rd, int r)
{
	store_read_fn	 done = rd->done;

	rd->done = NULL;
	pgwatch_deadline(&rd->timer, 0);
	if (done != NULL)
		done(rd->arg, r);
}

/*
 * The connection is gone.  An idle one closed by the server is made again
 * at the next read; one that failed a read or a connection waits a while.
 */
static void
pgread_lost(struct pgread *rd, const char *why)
{
	int	 idle = rd->state == PGR_IDLE;

	if (rd->state != PGR_DOWN)
		log_warnx("database: PostgreSQL read connection: %.*s",
		    (int)strcspn(why, "\n"), why);
	pgwatch_disarm(&rd->w);
	PQfinish(rd->conn);
	rd->conn = NULL;
	rd->state = PGR_DOWN;
	if (idle)
		return;
	clock_gettime(CLOCK_MONOTONIC, &rd->retry);
	rd->retry.tv_nsec += PGREAD_RETRY_MS * 1000000L;
	rd->retry.tv_sec += rd->retry.tv_nsec / 1000000000L;
	rd->retry.tv_nsec %= 1000000000L;
	pgread_end(rd, -1);
}

static void
pgread_send(struct pgread *rd)
{
	char		 limit[16], after[24], *list = NULL;
	const char	*p[2];
	size_t		 len = 0, size = 2 + 24 * (size_t)rd->q.nids;
	int		 i, ok, r;

	if (rd->q.nids > 0) {
		if ((list = malloc(size)) == NULL)
			fatal("%s", __func__);
		for (i = 0; i < rd->q.nids; i++)
			len += snprintf(list + len, size - len, "%c%lld",
			    i == 0 ? '{' : ',', (long long)rd->q.ids[i]);
		strlcat(list, "}", size);
		p[0] = list;
		ok = PQsendQueryParams(rd->conn, pgread_sql_ids, 1, NULL, p,
		    NULL, NULL, 0);
	} else {
		snprintf(after, sizeof(after), "%lld", (long long)rd->q.after);
		snprintf(limit, sizeof(limit), "%d", rd->q.limit);
		p[0] = after;
		p[1] = limit;
		ok = PQsendQueryParams(rd->conn, pgread_sql_page, 2, NULL, p,
		    NULL, NULL, 0);
	}
	free(list);
	if (!ok || (r = PQflush(rd->conn)) == -1) {
		pgread_lost(rd, PQerrorMessage(rd->conn));
		return;
	}
	rd->state = PGR_BUSY;
	rd->stopped = rd->failed = 0;
	pgwatch_deadline(&rd->timer, PGREAD_SECONDS);
	pgwatch_arm(&rd->w, rd->conn, r == 1 ? EV_READ | EV_WRITE :
	    EV_READ);
}

static void
pgread_rows(struct pgread *rd, PGresult *res)
{
	struct store_item	 it;
	const char		*e;
	int			 i, n = PQntuples(res);

	for (i = 0; i < n && !rd->stopped; i++) {
		it.id = strtonum(PQgetvalue(res, i, 0), 1, INT64_MAX, &e);
		it.task = PQgetvalue(res, i, 1);
		it.tasklen = PQgetlength(res, i, 1);
		it.done = strcmp(PQgetvalue(res, i, 2), "t") == 0;
		if (e != NULL) {
			rd->failed = 1;
			return;
		}
		if (rd->fn(rd->arg, &it) != 0)
			rd->stopped = 1;
	}
}

static void
pgread_result(struct pgread *rd)
{
	PGresult	*res;

	if (!PQconsumeInput(rd->conn)) {
		pgread_lost(rd, PQerrorMessage(rd->conn));
		return;
	}
	while (rd->state == PGR_BUSY && !PQisBusy(rd->conn)) {
		if ((res = PQgetResult(rd->conn)) == NULL) {
			rd->state = PGR_IDLE;
			pgwatch_arm(&rd->w, rd->conn, EV_READ);
			pgread_end(rd, rd->failed ? -1 : 0);
			return;
		}
		if (PQresultStatus(res) == PGRES_TUPLES_OK && !rd->failed)
			pgread_rows(rd, res);
		else if (!rd->failed) {
			log_warnx("database: PostgreSQL read: %.*s",
			    (int)strcspn(PQresultErrorMessage(res), "\n"),
			    PQresultErrorMessage(res));
			rd->failed = 1;
		}
		PQclear(res);
	}
}

static void
pgread_connect_step(struct pgread *rd)
{
	switch (pgwatch_connect_step(&rd->w, rd->conn)) {
	case 0:
		break;
	case 1:
		if (PQsetnonblocking(rd->conn, 1) == -1) {
			pgread_lost(rd, PQerrorMessage(rd->conn));
			break;
		}
		rd->state = PGR_IDLE;
		if (rd->done != NULL)
			pgread_send(rd);
		else
			pgwatch_arm(&rd->w, rd->conn, EV_READ);
		break;
	default:
		pgread_lost(rd, PQerrorMessage(rd->conn));
		break;
	}
}

static void
pgread_io(int fd, short ev, void *arg)
{
	struct pgread	*rd = arg;
	int		 r;

	switch (rd->state) {
	case PGR_CONNECTING:
		pgread_connect_step(rd);
		return;
	case PGR_IDLE:
		/* readable when idle: the server closed it */
		if (!PQconsumeInput(rd->conn) ||
		    PQstatus(rd->conn) == CONNECTION_BAD)
			pgread_lost(rd, "closed by the server");
		return;
	case PGR_BUSY:
		if (ev & EV_READ)
			pgread_result(rd);
		if (rd->state != PGR_BUSY)
			return;
		if ((r = PQflush(rd->conn)) == -1)
			pgread_lost(rd, PQerrorMessage(rd->conn));
		else
			pgwatch_arm(&rd->w, rd->conn, r == 1 ? EV_READ | EV_WRITE :
	    EV_READ);
		return;
	default:
		return;
	}
}

static void
pgread_timer(int fd, short ev, void *arg)
{
	struct pgread	*rd = arg;

	if (rd->state == PGR_CONNECTING)
		pgread_lost(rd, "connecting timed out");
	else if (rd->state == PGR_BUSY)
		pgread_lost(rd, "a read took too long");
}

static int
pgread_may_retry(const struct pgread *rd)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > rd->retry.tv_sec || (now.tv_sec ==
	    rd->retry.tv_sec && now.tv_nsec >= rd->retry.tv_nsec);
}

static void
pgread_connect(struct pgread *rd)
{
	rd->conn = pgwatch_connect(&rd->w, rd->uri);
	if (rd->conn == NULL || PQstatus(rd->conn) == CONNECTION_BAD) {
		pgread_lost(rd, rd->conn ? PQerrorMessage(rd->conn) :
		    "out of memory");
		return;
	}
	rd->state = PGR_CONNECTING;
	pgwatch_deadline(&rd->timer, PGREAD_CONNECT_SECONDS);
}

void
pgread_read(struct pgread *rd, const struct store_read *q, store_iter_fn fn,
    store_read_fn done, void *arg)
{
	if (rd->done != NULL || q->nids > STORE_READ_IDS_MAX ||
	    (rd->state == PGR_DOWN && !pgread_may_retry(rd))) {
		done(arg, -1);
		return;
	}
	rd->q = *q;
	if (q->nids > 0)
		memcpy(rd->ids, q->ids, q->nids * sizeof(*q->ids));
	rd->q.ids = rd->ids;
	rd->fn = fn;
	rd->done = done;
	rd->arg = arg;
	if (rd->state == PGR_DOWN)
		pgread_connect(rd);
	else if (rd->state == PGR_IDLE)
		pgread_send(rd);
}

struct pgread *
pgread_open(const char *uri, struct event_base *base)
{
	struct pgread	*rd;

	if ((rd = calloc(1, sizeof(*rd))) == NULL ||
	    (rd->uri = strdup(uri)) == NULL)
		fatal("%s", __func__);
	rd->base = base;
	pgwatch_init(&rd->w, base, pgread_io, rd);
	rd->state = PGR_DOWN;
	evtimer_assign(&rd->timer, base, pgread_timer, rd);
	return rd;
}

void
pgread_close(struct pgread *rd)
{
	if (rd == NULL)
		return;
	pgwatch_disarm(&rd->w);
	evtimer_del(&rd->timer);
	PQfinish(rd->conn);
	free(rd->uri);
	free(rd);
}
