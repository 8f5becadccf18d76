/* Unit tests for the connection state machine (daemon/reqstate.c). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "reqstate.h"
#include "tap.h"

/* A request head as the parser leaves it. */
static struct http_request
head(int version, int keep, int chunked, int64_t length, int expect)
{
	struct http_request	 req;

	memset(&req, 0, sizeof(req));
	req.version = version;
	req.keep_alive = keep;
	req.chunked = chunked;
	req.content_length = length;
	req.expect_continue = expect;
	return req;
}

/* A connection past its handshake with a head parsed. */
static void
at_admit(struct reqstate *rs, const struct http_request *req)
{
	reqstate_init(rs);
	reqstate_established(rs);
	reqstate_begin(rs);
	reqstate_head(rs, req);
}

static void
test_get_keepalive(void)
{
	struct reqstate		 rs;
	struct http_request	 req = head(11, 1, 0, -1, 0);
	int			 i;

	reqstate_init(&rs);
	TAP_OK(rs.state == CONN_HANDSHAKE, "starts in the handshake");
	TAP_OK(reqstate_begin(&rs) == -1 && rs.state == CONN_HANDSHAKE,
	    "no request before the handshake");
	TAP_OK(reqstate_established(&rs) == 0 && rs.state == CONN_IDLE &&
	    rs.clean, "handshake done: idle, nothing unread");
	for (i = 0; i < 3; i++) {
		reqstate_begin(&rs);
		TAP_OK(rs.state == CONN_HEAD && !rs.clean,
		    "request %d: first byte starts the head", i);
		reqstate_head(&rs, &req);
		TAP_OK(rs.state == CONN_ADMIT && rs.body_read,
		    "request %d: a GET has no body to read", i);
		reqstate_admit(&rs, 0);
		TAP_OK(rs.state == CONN_API, "request %d: to the API", i);
		TAP_OK(reqstate_respond(&rs, 200) == 0 &&
		    rs.state == CONN_WRITE && !rs.close,
		    "request %d: one response, keep-alive", i);
		TAP_OK(reqstate_respond(&rs, 200) == -1 &&
		    rs.state == CONN_WRITE, "request %d: a second response is "
		    "refused", i);
		reqstate_written(&rs);
		TAP_OK(rs.state == CONN_IDLE && rs.status == 0,
		    "request %d: back to idle, reset", i);
	}
	TAP_OK(reqstate_timeout(&rs) == REQ_TO_CLOSE,
	    "idle timeout closes quietly");
}

/* The bug of issue 11: after a body error, exactly one answer, close. */
static void
test_body_errors(void)
{
	struct reqstate		 rs;
	struct http_request	 req = head(11, 1, 1, -1, 0);
	int			 st[] = { 400, 413, 408 };
	size_t			 i;

	for (i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		at_admit(&rs, &req);
		reqstate_admit(&rs, 1);
		TAP_OK(rs.state == CONN_BODY, "%d: chunked body read", st[i]);
		if (st[i] == 408)
			TAP_OK(reqstate_timeout(&rs) == REQ_TO_408,
			    "a stalled body times out with 408");
		TAP_OK(reqstate_respond(&rs, st[i]) == 0 && rs.close,
		    "%d while reading a body: answered, close after", st[i]);
		TAP_OK(reqstate_written(&rs) == 0 && rs.state == CONN_CLOSE &&
		    !rs.clean, "%d: written, then close with linger", st[i]);
		TAP_OK(reqstate_respond(&rs, st[i]) == -1 &&
		    reqstate_body_done(&rs) == -1 &&
		    rs.state == CONN_CLOSE, "%d: no second answer, no body",
		    st[i]);
		TAP_OK(reqstate_timeout(&rs) == REQ_TO_FREE,
		    "%d: a close that hangs is dropped", st[i]);
	}
}

static void
test_head_error(void)
{
	struct reqstate	 rs;

	reqstate_init(&rs);
	reqstate_established(&rs);
	reqstate_begin(&rs);
	TAP_OK(reqstate_timeout(&rs) == REQ_TO_408, "a late head is 408");
	TAP_OK(reqstate_respond(&rs, 400) == 0 && rs.close,
	    "a bad head is answered and closes");
	reqstate_written(&rs);
	TAP_OK(rs.state == CONN_CLOSE && !rs.clean,
	    "bad head: lingers for what the client still sends");
}

/* Refused before the body: framed and small is read and dropped. */
static void
test_refused(void)
{
	struct reqstate		 rs;
	struct http_request	 req;

	req = head(11, 1, 0, 12, 0);
	at_admit(&rs, &req);
	TAP_OK(reqstate_discardable(&rs), "Content-Length 12 is droppable");
	reqstate_respond(&rs, 403);
	TAP_OK(!rs.close, "403 with a small body keeps the connection");
	reqstate_written(&rs);
	TAP_OK(rs.state == CONN_DISCARD, "then the body is dropped");
	TAP_OK(reqstate_respond(&rs, 400) == -1, "no answer while dropping");
	TAP_OK(reqstate_timeout(&rs) == REQ_TO_CLOSE,
	    "a dropped body that stalls closes, without a second answer");
	reqstate_discarded(&rs);
	TAP_OK(rs.state == CONN_IDLE, "dropped: ready for the next request");

	req = head(11, 1, 1, -1, 0);
	at_admit(&rs, &req);
	reqstate_respond(&rs, 404);
	reqstate_written(&rs);
	TAP_OK(rs.state == CONN_DISCARD, "a chunked body is dropped too");

	req = head(11, 1, 0, HTTP_MAX_BODY + 1, 0);
	at_admit(&rs, &req);
	reqstate_respond(&rs, 413);
	TAP_OK(rs.close, "a body over 64 KiB is not awaited: close");

	req = head(11, 1, 0, 12, 1);
	at_admit(&rs, &req);
	reqstate_respond(&rs, 415);
	TAP_OK(rs.close, "refused without 100 Continue: the body may never "
	    "come, close");

	req = head(10, 0, 0, 12, 0);
	at_admit(&rs, &req);
	reqstate_respond(&rs, 405);
	TAP_OK(rs.close, "HTTP/1.0 without keep-alive closes");

	/* shutdown while dropping */
	req = head(11, 1, 0, 12, 0);
	at_admit(&rs, &req);
	reqstate_respond(&rs, 403);
	reqstate_written(&rs);
	rs.close = 1;
	reqstate_discarded(&rs);
	TAP_OK(rs.state == CONN_CLOSE && rs.clean,
	    "a shutdown during the drop closes after it");
}

static void
test_bodies(void)
{
	struct reqstate		 rs;
	struct http_request	 req;

	req = head(11, 1, 0, 0, 0);
	at_admit(&rs, &req);
	TAP_OK(rs.body == REQ_BODY_LENGTH && !rs.body_read,
	    "Content-Length: 0 is a length, not a missing one");
	reqstate_admit(&rs, 0);
	TAP_OK(rs.state == CONN_BODY, "an empty body is still read");

	req = head(11, 1, 0, 20, 1);
	at_admit(&rs, &req);
	reqstate_admit(&rs, 0);
	TAP_OK(rs.state == CONN_CONTINUE, "Expect: 100-continue answered");
	TAP_OK(reqstate_respond(&rs, 201) == -1,
	    "no response while 100 Continue goes out");
	reqstate_written(&rs);
	TAP_OK(rs.state == CONN_BODY && !rs.expect, "then the body");
	reqstate_body_done(&rs);
	TAP_OK(rs.state == CONN_API && rs.body_read, "then the API");
	reqstate_respond(&rs, 201);
	reqstate_written(&rs);
	TAP_OK(rs.state == CONN_IDLE, "answered: idle again");

	req = head(11, 1, 0, 20, 1);
	at_admit(&rs, &req);
	reqstate_admit(&rs, 1);
	TAP_OK(rs.state == CONN_BODY, "no 100 Continue once the body began");

	req = head(11, 0, 0, 20, 0);
	at_admit(&rs, &req);
	reqstate_admit(&rs, 1);
	reqstate_body_done(&rs);
	reqstate_respond(&rs, 201);
	reqstate_written(&rs);
	TAP_OK(rs.state == CONN_CLOSE && rs.clean,
	    "Connection: close after a complete request: no linger");
	TAP_OK(reqstate_timeout(&rs) == REQ_TO_FREE, "closing times out");
	reqstate_linger(&rs);
	TAP_OK(reqstate_close(&rs) == -1, "no close after linger");
}

static void
test_waiting(void)
{
	struct reqstate		 rs;
	struct http_request	 req = head(11, 1, 0, -1, 0);

	at_admit(&rs, &req);
	reqstate_admit(&rs, 0);
	TAP_OK(reqstate_timeout(&rs) == REQ_TO_NONE,
	    "waiting for the store is not the client's fault");
	TAP_OK(reqstate_written(&rs) == -1 && reqstate_discarded(&rs) == -1,
	    "nothing written before a response");
	TAP_OK(strcmp(reqstate_name(CONN_DISCARD), "discard") == 0 &&
	    strcmp(reqstate_name(99), "?") == 0, "state names");
}

static void
test_ocsp(void)
{
	struct reqstate	 rs;

	reqstate_init(&rs);
	TAP_OK(reqstate_ocsp_wait(&rs) == 0 && rs.state == CONN_OCSP,
	    "handshake done: wait for the OCSP answer");
	TAP_OK(reqstate_begin(&rs) == -1 && rs.state == CONN_OCSP,
	    "no request is read while it is awaited");
	TAP_OK(reqstate_respond(&rs, 403) == -1,
	    "nor answered: there is none");
	TAP_OK(reqstate_ocsp_wait(&rs) == -1, "one wait only");
	TAP_OK(reqstate_timeout(&rs) == REQ_TO_OCSP,
	    "its timeout decides without an answer");
	TAP_OK(reqstate_established(&rs) == 0 && rs.state == CONN_IDLE &&
	    rs.clean, "answered (or not): idle, nothing unread");
	TAP_OK(reqstate_ocsp_wait(&rs) == -1 && rs.state == CONN_IDLE,
	    "no OCSP wait once established");
	TAP_OK(strcmp(reqstate_name(CONN_OCSP), "ocsp") == 0,
	    "the state's name");
}

int
main(void)
{
	test_get_keepalive();
	test_body_errors();
	test_head_error();
	test_refused();
	test_bodies();
	test_waiting();
	test_ocsp();
	return tap_done();
}
