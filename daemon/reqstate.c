#include <sys/types.h>

#include <string.h>

#include "http.h"
#include "reqstate.h"

/*
 * Every function moves the connection from one state to the next and
 * returns 0, or returns -1 and changes nothing when the event is not
 * legal in the current state: a second response to one request is such an
 * event, and server.c drops it instead of sending it.
 */

static const char *reqstate_names[] = {
	[CONN_HANDSHAKE] = "handshake",
	[CONN_OCSP] = "ocsp",
	[CONN_IDLE] = "idle",
	[CONN_HEAD] = "head",
	[CONN_ADMIT] = "admit",
	[CONN_CONTINUE] = "continue",
	[CONN_BODY] = "body",
	[CONN_API] = "api",
	[CONN_WRITE] = "write",
	[CONN_DISCARD] = "discard",
	[CONN_CLOSE] = "close",
	[CONN_LINGER] = "linger",
};

const char *
reqstate_name(enum conn_state s)
{
	if ((size_t)s >= sizeof(reqstate_names) / sizeof(reqstate_names[0]))
		return "?";
	return reqstate_names[s];
}

/* Forget the request just answered; the connection waits for the next. */
static void
reqstate_idle(struct reqstate *rs)
{
	rs->state = CONN_IDLE;
	rs->body = REQ_BODY_NONE;
	rs->length = -1;
	rs->body_read = 0;
	rs->keep = 0;
	rs->expect = 0;
	rs->close = 0;
	rs->clean = 1;		/* nothing of a request is unread */
	rs->status = 0;
}

void
reqstate_init(struct reqstate *rs)
{
	memset(rs, 0, sizeof(*rs));
	reqstate_idle(rs);
	rs->state = CONN_HANDSHAKE;
}

/*
 * The handshake verified a certificate whose OCSP answer the worker does
 * not hold: nothing is read until it comes, or its time is up.
 */
int
reqstate_ocsp_wait(struct reqstate *rs)
{
	if (rs->state != CONN_HANDSHAKE)
		return -1;
	rs->state = CONN_OCSP;
	return 0;
}

int
reqstate_established(struct reqstate *rs)
{
	if (rs->state != CONN_HANDSHAKE && rs->state != CONN_OCSP)
		return -1;
	reqstate_idle(rs);
	return 0;
}

/* The first byte of a request: from now on it has to arrive in time. */
int
reqstate_begin(struct reqstate *rs)
{
	if (rs->state != CONN_IDLE)
		return -1;
	rs->state = CONN_HEAD;
	rs->clean = 0;
	return 0;
}

/* The head parsed: note how its body (if any) is framed. */
int
reqstate_head(struct reqstate *rs, const struct http_request *req)
{
	if (rs->state != CONN_HEAD)
		return -1;
	if (req->chunked)
		rs->body = REQ_BODY_CHUNKED;
	else if (req->content_length >= 0)
		rs->body = REQ_BODY_LENGTH;
	else
		rs->body = REQ_BODY_NONE;
	rs->length = req->content_length;
	rs->body_read = rs->body == REQ_BODY_NONE;
	rs->keep = req->keep_alive && req->version != 0;
	rs->expect = req->expect_continue && req->version == 11;
	rs->state = CONN_ADMIT;
	return 0;
}

/*
 * The API accepted the head.  buffered: some of the body has arrived
 * already, so 100 Continue would be pointless (and would come after it).
 */
int
reqstate_admit(struct reqstate *rs, int buffered)
{
	if (rs->state != CONN_ADMIT)
		return -1;
	if (rs->body_read)
		rs->state = CONN_API;
	else if (rs->expect && !buffered && rs->length != 0)
		rs->state = CONN_CONTINUE;
	else
		rs->state = CONN_BODY;
	return 0;
}

int
reqstate_body_done(struct reqstate *rs)
{
	if (rs->state != CONN_BODY)
		return -1;
	rs->body_read = 1;
	rs->state = CONN_API;
	return 0;
}

/*
 * A refused body may be read and dropped, keeping the connection, when it
 * is framed, small, and surely coming: a client that asked for 100
 * Continue and did not get it may never send its body.
 */
int
reqstate_discardable(const struct reqstate *rs)
{
	if (rs->body_read || rs->expect)
		return 0;
	if (rs->body == REQ_BODY_CHUNKED)
		return 1;
	return rs->body == REQ_BODY_LENGTH && rs->length <= HTTP_MAX_BODY;
}

/* The one response to the request; close decides what follows it. */
int
reqstate_respond(struct reqstate *rs, int status)
{
	switch (rs->state) {
	case CONN_HEAD:		/* bad or late head: where is the next one? */
	case CONN_BODY:		/* bad or late body: the same */
		rs->close = 1;
		break;
	case CONN_ADMIT:	/* refused before its body was read */
		if (!reqstate_discardable(rs) && !rs->body_read)
			rs->close = 1;
		break;
	case CONN_API:
		break;
	default:
		return -1;
	}
	if (!rs->keep)
		rs->close = 1;
	rs->status = status;
	rs->state = CONN_WRITE;
	return 0;
}

/* Everything queued is out: 100 Continue, or the response. */
int
reqstate_written(struct reqstate *rs)
{
	switch (rs->state) {
	case CONN_CONTINUE:
		rs->expect = 0;		/* answered */
		rs->state = CONN_BODY;
		return 0;
	case CONN_WRITE:
		break;
	default:
		return -1;
	}
	if (rs->close) {
		/* read to its end and answered: no need to linger */
		rs->clean = rs->body_read && rs->status < 400;
		rs->state = CONN_CLOSE;
	} else if (!rs->body_read)
		rs->state = CONN_DISCARD;
	else
		reqstate_idle(rs);
	return 0;
}

/* The refused body has been read and dropped. */
int
reqstate_discarded(struct reqstate *rs)
{
	if (rs->state != CONN_DISCARD)
		return -1;
	rs->body_read = 1;
	if (rs->close) {	/* a shutdown began meanwhile */
		rs->clean = 1;
		rs->state = CONN_CLOSE;
	} else
		reqstate_idle(rs);
	return 0;
}

int
reqstate_close(struct reqstate *rs)
{
	if (rs->state == CONN_LINGER)
		return -1;
	rs->state = CONN_CLOSE;
	return 0;
}

int
reqstate_linger(struct reqstate *rs)
{
	rs->state = CONN_LINGER;
	return 0;
}

enum req_timeout
reqstate_timeout(const struct reqstate *rs)
{
	switch (rs->state) {
	case CONN_IDLE:
	case CONN_DISCARD:
		return REQ_TO_CLOSE;
	case CONN_HEAD:
	case CONN_ADMIT:
	case CONN_BODY:
		return REQ_TO_408;
	case CONN_API:
		return REQ_TO_NONE;
	case CONN_OCSP:
		return REQ_TO_OCSP;
	default:
		return REQ_TO_FREE;
	}
}
