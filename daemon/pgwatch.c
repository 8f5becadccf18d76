/*
 * A libpq connection in the parent's event loop (see pgwatch.h).
 */
#include <sys/types.h>
#include <sys/time.h>

#include <event.h>
#include <libpq-fe.h>
#include <string.h>

#include "pgwatch.h"

void
pgwatch_init(struct pgwatch *w, struct event_base *base,
    void (*io)(int, short, void *), void *arg)
{
	memset(w, 0, sizeof(*w));
	w->base = base;
	w->io = io;
	w->arg = arg;
	w->fd = -1;
}

/* The socket can change across a connect's steps: compare, re-assign. */
void
pgwatch_arm(struct pgwatch *w, PGconn *conn, short what)
{
	int	 fd = conn != NULL ? PQsocket(conn) : -1;

	if (w->fd == fd && w->what == what)
		return;
	pgwatch_disarm(w);
	if (fd == -1 || what == 0)
		return;
	event_assign(&w->ev, w->base, fd, what | EV_PERSIST, w->io, w->arg);
	event_add(&w->ev, NULL);
	w->fd = fd;
	w->what = what;
}

void
pgwatch_disarm(struct pgwatch *w)
{
	if (w->fd != -1)
		event_del(&w->ev);
	w->fd = -1;
	w->what = 0;
}

PGconn *
pgwatch_connect(struct pgwatch *w, const char *uri)
{
	PGconn	*conn;

	conn = PQconnectStart(uri);
	if (conn != NULL && PQstatus(conn) != CONNECTION_BAD)
		pgwatch_arm(w, conn, EV_WRITE);	/* as libpq asks of a new one */
	return conn;
}

int
pgwatch_connect_step(struct pgwatch *w, PGconn *conn)
{
	switch (PQconnectPoll(conn)) {
	case PGRES_POLLING_READING:
		pgwatch_arm(w, conn, EV_READ);
		return 0;
	case PGRES_POLLING_WRITING:
		pgwatch_arm(w, conn, EV_WRITE);
		return 0;
	case PGRES_POLLING_OK:
		return 1;
	default:
		return -1;
	}
}

void
pgwatch_deadline(struct event *timer, int seconds)
{
	struct timeval	 tv = { seconds, 0 };

	evtimer_del(timer);
	if (seconds > 0)
		evtimer_add(timer, &tv);
}
