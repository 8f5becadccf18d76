/*
 * A libpq connection watched by the parent's event loop: the socket event
 * for what libpq waits for now, the steps of a non-blocking connect, and
 * a deadline.  The PostgreSQL store's connection, its snapshot connection
 * and its read connection (pgstore.c, pgread.c) all go through here, so
 * the way a connection is driven is written once.
 */
#ifndef TODOD_PGWATCH_H
#define TODOD_PGWATCH_H

#include <event.h>
#include <libpq-fe.h>

struct pgwatch {
	struct event_base	*base;
	void			(*io)(int, short, void *);
	void			*arg;
	struct event		 ev;
	int			 fd;	/* -1: not watched */
	short			 what;
};

void	 pgwatch_init(struct pgwatch *, struct event_base *,
	    void (*)(int, short, void *), void *);
/* Watch conn's socket for what (EV_READ, EV_WRITE); 0 stops watching. */
void	 pgwatch_arm(struct pgwatch *, PGconn *, short);
void	 pgwatch_disarm(struct pgwatch *);
/*
 * Start connecting to uri (a libpq URI or conninfo) and watch for the
 * first step; NULL or a CONNECTION_BAD connection (its message says why)
 * when it cannot even start.
 */
PGconn	*pgwatch_connect(struct pgwatch *, const char *);
/* One step of the connect: 1 connected, 0 still going, -1 failed. */
int	 pgwatch_connect_step(struct pgwatch *, PGconn *);
/* (Re)start a timer to fire in seconds; 0 or less only stops it. */
void	 pgwatch_deadline(struct event *, int);

#endif
