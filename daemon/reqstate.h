/*
 * The state of one connection, from accept to close, and the rules that
 * move it.  server.c does the I/O and asks this module what comes next, so
 * the decisions (exactly one response per request, close or keep the
 * connection, read and drop a refused body) have one home and are tested
 * without sockets (regress/unit/test_reqstate.c).
 */
#ifndef TODOD_REQSTATE_H
#define TODOD_REQSTATE_H

#include <stdint.h>

struct http_request;

enum conn_state {
	CONN_HANDSHAKE,	/* TLS handshake (timeout handshake) */
	CONN_OCSP,	/* verified; its OCSP answer awaited (timeout ocsp) */
	CONN_IDLE,	/* between requests (timeout idle) */
	CONN_HEAD,	/* a request has begun (timeout request) */
	CONN_ADMIT,	/* head complete: the API routes and checks it */
	CONN_CONTINUE,	/* writing 100 Continue, then CONN_BODY */
	CONN_BODY,	/* reading the body the API asked for */
	CONN_API,	/* the API has the whole request (store, cache) */
	CONN_WRITE,	/* the one response is going out */
	CONN_DISCARD,	/* answered; reading a refused body to drop it */
	CONN_CLOSE,	/* tls_close in progress */
	CONN_LINGER	/* no more writes; draining input before close */
};

enum req_body {
	REQ_BODY_NONE,
	REQ_BODY_LENGTH,
	REQ_BODY_CHUNKED
};

/* What a timeout means in the current state. */
enum req_timeout {
	REQ_TO_NONE,	/* not the client's fault (the parent is late) */
	REQ_TO_408,	/* a request is incomplete: answer 408, close */
	REQ_TO_CLOSE,	/* close quietly */
	REQ_TO_FREE,	/* drop the connection at once */
	REQ_TO_OCSP	/* no OCSP answer in time: decide without one */
};

struct reqstate {
	enum conn_state	 state;
	enum req_body	 body;
	int64_t		 length;	/* Content-Length, -1 none */
	int		 body_read;	/* consumed, or none was sent */
	int		 keep;		/* the client allows keep-alive */
	int		 expect;	/* Expect: 100-continue (HTTP/1.1) */
	int		 close;		/* close once the response is out */
	int		 clean;		/* closing leaves nothing unread */
	int		 status;	/* of the response; 0 before it */
};

void	reqstate_init(struct reqstate *);
int	reqstate_ocsp_wait(struct reqstate *);
int	reqstate_established(struct reqstate *);
int	reqstate_begin(struct reqstate *);
int	reqstate_head(struct reqstate *, const struct http_request *);
int	reqstate_admit(struct reqstate *, int);
int	reqstate_body_done(struct reqstate *);
int	reqstate_respond(struct reqstate *, int);
int	reqstate_written(struct reqstate *);
int	reqstate_discarded(struct reqstate *);
int	reqstate_discardable(const struct reqstate *);
int	reqstate_close(struct reqstate *);
int	reqstate_linger(struct reqstate *);
enum req_timeout reqstate_timeout(const struct reqstate *);
const char	*reqstate_name(enum conn_state);

#endif
