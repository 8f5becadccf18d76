/*
 * Unit tests for the TODO API (daemon/api.c) without sockets: request
 * heads parsed by the real HTTP parser, a real cache and rules, and what
 * the API answers: a response (status, headers, body) or a verdict
 * (admit, wait for the cache, a store request, a metrics request, a read
 * past a cache that does not hold every item).  The
 * store request is decoded by the parent's decoder, the parent's reply
 * encoded by the parent's encoder, across a real channel.
 */
#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "authz.h"
#include "authzrule.h"
#include "cache.h"
#include "http.h"
#include "ipc.h"
#include "ipcpair.h"
#include "peer.h"
#include "proto.h"
#include "storemsg.h"
#include "tap.h"

static struct ipc		 wk, pa;	/* worker's end, parent's end */
static struct cache		 cache;
static struct authz_rules	 rules_all, rules_none;
static struct peer		 alice;

/* One request: its parsed head, what the API sees, and its answer. */
struct t {
	struct http_request	 http;
	struct api_req		 ar;
	struct api_resp		 r;
	struct api_env		 env;
};

static void
t_init(struct t *t, const char *head, const char *body)
{
	struct http_parser	 hp;
	size_t			 consumed;
	int			 status;

	memset(t, 0, sizeof(*t));
	http_parser_reset(&hp);
	if (http_parse_head(&hp, head, strlen(head), &t->http, &consumed,
	    &status) != HTTP_PARSE_DONE)
		abort();
	t->ar.http = &t->http;
	t->ar.peer = &alice;
	t->ar.body = body;
	t->ar.bodylen = body ? strlen(body) : 0;
	t->ar.reqid = 42;
	t->env.cache = &cache;
	t->env.store_seq = cache.seq;
	t->env.rules = &rules_all;
	api_resp_init(&t->r);
}

static void
t_free(struct t *t)
{
	api_resp_free(&t->r);
	http_request_clear(&t->http);
}

static int
body_is(const struct api_resp *r, const char *want)
{
	return r->body.len == strlen(want) &&
	    memcmp(r->body.data, want, r->body.len) == 0;
}

static int
body_has(const struct api_resp *r, const char *want)
{
	return memmem(r->body.data, r->body.len, want, strlen(want)) != NULL;
}

/* Admit a head; the refusal's status, or 0 when it was admitted. */
static int
admit(const char *head, const struct authz_rules *rules)
{
	struct t	 t;
	int		 v, status;

	t_init(&t, head, NULL);
	t.env.rules = rules;
	v = api_admit(&t.env, &t.ar, &t.r);
	status = v == API_ADMIT ? 0 : t.r.status;
	if (v != API_ADMIT && v != API_RESPOND)
		status = -1;
	if (v == API_RESPOND && !body_has(&t.r, "{\"error\":"))
		status = -2;	/* a refusal without its JSON error */
	t_free(&t);
	return status;
}

static void
test_admit(void)
{
	struct t	 t;

	TAP_OK(admit("GET /todo HTTP/1.1\r\nHost: a\r\n\r\n", &rules_all) ==
	    0, "GET /todo admitted");
	TAP_OK(admit("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", &rules_all) ==
	    404, "unknown path: 404");
	TAP_OK(admit("GET /todo/012 HTTP/1.1\r\nHost: a\r\n\r\n",
	    &rules_all) == 404, "an ID with a leading zero: 404");
	TAP_OK(admit("GET /todo/99999999999999999999 HTTP/1.1\r\nHost: a\r\n"
	    "\r\n", &rules_all) == 404, "an ID over 63 bits: 404");
	TAP_OK(admit("PUT /todo HTTP/1.1\r\nHost: a\r\n\r\n", &rules_all) ==
	    405, "PUT /todo: 405");
	t_init(&t, "DELETE /todo HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	TAP_OK(api_admit(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.status == 405 && strcmp(t.r.extra, "Allow: GET, POST\r\n") ==
	    0, "405 names what is allowed");
	t_free(&t);
	TAP_OK(admit("GET / HTTP/1.1\r\nHost: a\r\nAccept: application/json"
	    "\r\n\r\n", &rules_all) == 404, "the page, not asked for: 404");
	TAP_OK(admit("GET /todo HTTP/1.1\r\nHost: a\r\n\r\n", &rules_none) ==
	    403, "no rule allows it: 403");
	TAP_OK(admit("POST /todo HTTP/1.1\r\nHost: a\r\nContent-Type: "
	    "application/json\r\nContent-Length: 2\r\nSec-Fetch-Site: "
	    "cross-site\r\n\r\n", &rules_all) == 403,
	    "a cross-site write: 403");
	TAP_OK(admit("POST /todo HTTP/1.1\r\nHost: a\r\nContent-Type: "
	    "application/json\r\n\r\n", &rules_all) == 411,
	    "POST without a length: 411");
	TAP_OK(admit("POST /todo HTTP/1.1\r\nHost: a\r\nContent-Type: "
	    "application/json\r\nContent-Length: 0\r\n\r\n", &rules_all) == 0,
	    "Content-Length: 0 is a length: admitted (its body is a 400)");
	TAP_OK(admit("POST /todo HTTP/1.1\r\nHost: a\r\nContent-Type: "
	    "application/json\r\nContent-Length: 99999999\r\n\r\n",
	    &rules_all) == 413, "a body over the limit: 413");
	TAP_OK(admit("POST /todo HTTP/1.1\r\nHost: a\r\nContent-Type: "
	    "text/plain\r\nContent-Length: 2\r\n\r\n", &rules_all) == 415,
	    "not JSON: 415");
	TAP_OK(admit("PUT /nope HTTP/1.1\r\nHost: a\r\n\r\n", &rules_none) ==
	    404, "routing before authorization: 404, not 403");
}

static void
test_get(void)
{
	struct t	 t;
	char		 big[200];
	int		 i;

	/* a cache that has not caught up: the GET waits */
	cache_clear(&cache);
	cache.ready = 0;
	t_init(&t, "GET /todo/1 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	t.env.store_seq = 5;
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_WAIT_CACHE &&
	    t.r.seq == 5 && t.r.status == 0, "no snapshot yet: wait");
	cache.ready = 1;
	cache.seq = 4;
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_WAIT_CACHE,
	    "behind an acknowledged write: wait");
	cache_put(&cache, 1, "one", 3, 0);
	cache.seq = 5;
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.status == 200 && body_is(&t.r, "{\"client\":\"alice\","
	    "\"todo\":{\"id\":1,\"task\":\"one\",\"done\":false}}"),
	    "caught up: the item, asked again with the same route and id");
	t_free(&t);

	t_init(&t, "GET /todo/2 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.status == 404 && body_has(&t.r, "no such TODO item"),
	    "no such item: 404");
	t_free(&t);

	t_init(&t, "GET /todo HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.status == 200 && !t.r.stream && body_is(&t.r,
	    "{\"client\":\"alice\",\"todos\":[{\"id\":1,\"task\":\"one\","
	    "\"done\":false}]}"), "a short list: rendered at once");
	t_free(&t);

	memset(big, 'x', sizeof(big));
	for (i = 2; i < 2000; i++)
		cache_put(&cache, i, big, sizeof(big), 1);
	t_init(&t, "GET /todo HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.status == 200 && t.r.stream == 1 && t.r.body.len == 0,
	    "a long list over HTTP/1.1: streamed in chunks");
	t_free(&t);
	t_init(&t, "GET /todo HTTP/1.0\r\n\r\n", NULL);
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.stream == 2, "over HTTP/1.0: streamed until the close");
	t_free(&t);
}

/* A cache that does not hold every item: misses and the list go on. */
static void
test_partial(void)
{
	struct t	 t;

	cache_clear(&cache);
	cache.ready = 1;
	cache.seq = 7;
	cache_put(&cache, 1, "one", 3, 0);
	cache.complete = 0;
	t_init(&t, "GET /todo/1 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.status == 200 && t.r.cache_hit,
	    "partial cache, a hit: 200 from the cache");
	t_free(&t);
	t_init(&t, "GET /todo/2 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_FETCH &&
	    t.r.status == 0 && t.ar.id == 2,
	    "partial cache, a miss: read from the store, not a 404");
	api_fetch_reply(&t.ar, "{\"id\":2}", 8, 0, &t.r);
	TAP_OK(t.r.status == 200 && body_is(&t.r, "{\"client\":\"alice\","
	    "\"todo\":{\"id\":2}}"), "the store's item: 200");
	t_free(&t);
	t_init(&t, "GET /todo/3 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	api_fetch_reply(&t.ar, NULL, 0, 0, &t.r);
	TAP_OK(t.r.status == 404 && body_has(&t.r, "no such TODO item"),
	    "not in the store either: 404");
	t_free(&t);
	t_init(&t, "GET /todo/3 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	api_fetch_reply(&t.ar, NULL, 0, 1, &t.r);
	TAP_OK(t.r.status == 503 && body_has(&t.r, "store unavailable"),
	    "the store could not answer: 503");
	t_free(&t);
	t_init(&t, "GET /todo HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.status == 200 && t.r.stream == 1 && t.r.from_store &&
	    t.r.body.len == 0, "partial cache, the list, even a short one: "
	    "streamed from the store");
	t_free(&t);
	cache.seq = 6;
	t_init(&t, "GET /todo/2 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	t.env.store_seq = 7;
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_WAIT_CACHE,
	    "partial cache behind a write: waits first, like a full one");
	t_free(&t);
	cache_clear(&cache);
}

static void
test_write(void)
{
	struct storemsg_req	 got;
	struct ipc_msg		 msg;
	struct t		 t;

	t_init(&t, "POST /todo HTTP/1.1\r\nHost: a\r\nContent-Type: "
	    "application/json\r\nContent-Length: 9\r\n\r\n", "{\"task\":1");
	TAP_OK(api_admit(&t.env, &t.ar, &t.r) == API_ADMIT, "POST admitted");
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.status == 400 && t.r.store == NULL, "bad JSON: 400");
	t_free(&t);

	t_init(&t, "POST /todo HTTP/1.1\r\nHost: a\r\nContent-Type: "
	    "application/json\r\nContent-Length: 15\r\n\r\n",
	    "{\"task\":\"milk\"}");
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_STORE &&
	    t.r.store != NULL && t.r.status == 0, "POST: a store request");
	TAP_OK(ipc_send(&wk, t.r.store, -1) == 0 &&
	    xfer(&wk, &pa, &msg) == 0 && storemsg_decode_request(&msg,
	    &got) == 0 && msg.hdr.peerid == 42 &&
	    got.type == IMSG_STORE_CREATE && strcmp(got.cn, "alice") == 0 &&
	    got.tasklen == 4 && memcmp(got.task, "milk", 4) == 0,
	    "the parent decodes it: create \"milk\" for alice, reqid 42");
	t.r.store = NULL;	/* sent */
	ipc_msg_free(&msg);
	t_free(&t);

	t_init(&t, "PATCH /todo/7 HTTP/1.1\r\nHost: a\r\nContent-Type: "
	    "application/json\r\nContent-Length: 13\r\n\r\n",
	    "{\"done\":true}");
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_STORE &&
	    ipc_send(&wk, t.r.store, -1) == 0 && xfer(&wk, &pa, &msg) == 0 &&
	    storemsg_decode_request(&msg, &got) == 0 &&
	    got.type == IMSG_STORE_UPDATE && got.id == 7 &&
	    got.mask == STORE_SET_DONE && got.done == 1,
	    "PATCH /todo/7: an update of done only");
	t.r.store = NULL;
	ipc_msg_free(&msg);
	t_free(&t);
}

/* The parent's reply to a write, as the API turns it into a response. */
static int
reply(const char *head, uint32_t status, struct t *t)
{
	struct storemsg_reply	 rep;
	struct ipc_msg		 msg;

	memset(&rep, 0, sizeof(rep));
	rep.status = status;
	rep.item.id = 12;
	rep.item.task = "tea";
	rep.item.tasklen = 3;
	t_init(t, head, NULL);
	if (ipc_send(&pa, storemsg_encode_reply(42, &rep), -1) == -1 ||
	    xfer(&pa, &wk, &msg) == -1)
		return -1;
	api_store_reply(&t->ar, &msg, &t->r);
	ipc_msg_free(&msg);
	return t->r.status;
}

static void
test_replies(void)
{
	struct ipc_wbuf	*wb;
	struct ipc_msg	 msg;
	struct t	 t;

	TAP_OK(reply("POST /todo HTTP/1.1\r\nHost: a\r\n\r\n", STORE_OK,
	    &t) == 201 && strcmp(t.r.extra, "Location: /todo/12\r\n") == 0 &&
	    body_is(&t.r, "{\"client\":\"alice\",\"message\":\"TODO item "
	    "created\",\"todo\":{\"id\":12,\"task\":\"tea\",\"done\":false}}"),
	    "created: 201, its Location and the item");
	t_free(&t);
	TAP_OK(reply("DELETE /todo/12 HTTP/1.1\r\nHost: a\r\n\r\n", STORE_OK,
	    &t) == 200 && t.r.extra[0] == '\0' && body_has(&t.r,
	    "TODO item deleted"), "deleted: 200");
	t_free(&t);
	TAP_OK(reply("PATCH /todo/12 HTTP/1.1\r\nHost: a\r\n\r\n",
	    STORE_NOTFOUND, &t) == 404, "no such item: 404");
	t_free(&t);
	TAP_OK(reply("PATCH /todo/12 HTTP/1.1\r\nHost: a\r\n\r\n",
	    STORE_UNAVAILABLE, &t) == 503 && body_has(&t.r,
	    "store unavailable"), "store unavailable: 503");
	t_free(&t);

	t_init(&t, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	TAP_OK(api_admit(&t.env, &t.ar, &t.r) == API_ADMIT &&
	    api_request(&t.env, &t.ar, &t.r) == API_METRICS,
	    "GET /metrics: asked of the parent");
	/* as metrics.c sends it */
	if ((wb = ipc_create(IMSG_METRICS_REPLY, 42, 64)) == NULL)
		abort();
	ipc_add_data(wb, "m 1\n", 4);
	if (ipc_send(&pa, wb, -1) == 0 && xfer(&pa, &wk, &msg) == 0) {
		api_metrics_reply(&msg, &t.r);
		ipc_msg_free(&msg);
	}
	TAP_OK(t.r.status == 200 && body_is(&t.r, "m 1\n") && t.r.ctype &&
	    strncmp(t.r.ctype, "text/plain", 10) == 0,
	    "the metrics as text");
	t_free(&t);
}

/* A GET on a store other nodes write: the parent catches up first. */
static void
test_sync(void)
{
	struct ipc_msg	 msg;
	struct t	 t;
	int		 again = -1;

	cache_clear(&cache);
	cache.ready = 1;
	cache_put(&cache, 1, "one", 3, 0);
	cache.seq = 5;
	t_init(&t, "GET /todo/1 HTTP/1.1\r\nHost: a\r\n\r\n", NULL);
	t.env.store_seq = 5;
	t.env.shared = 1;
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_SYNC &&
	    t.r.status == 0, "shared store: a GET asks the parent first, "
	    "even with a current cache");
	if (ipc_send(&pa, storemsg_encode_synced(42, STORE_OK), -1) == 0 &&
	    xfer(&pa, &wk, &msg) == 0) {
		again = api_sync_reply(&t.ar, &msg, &t.r);
		ipc_msg_free(&msg);
	}
	t.env.store_seq = 6;
	TAP_OK(again == 1 && api_request(&t.env, &t.ar, &t.r) ==
	    API_WAIT_CACHE && t.r.seq == 6, "caught up: then it waits for "
	    "the cache to reach the sequence the parent published");
	cache.seq = 6;
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_RESPOND &&
	    t.r.status == 200, "and is answered from the cache");
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_SYNC,
	    "the next request on the connection asks again");
	again = -1;
	if (ipc_send(&pa, storemsg_encode_synced(42, STORE_UNAVAILABLE),
	    -1) == 0 && xfer(&pa, &wk, &msg) == 0) {
		again = api_sync_reply(&t.ar, &msg, &t.r);
		ipc_msg_free(&msg);
	}
	TAP_OK(again == 0 && t.r.status == 503 && body_has(&t.r,
	    "store unavailable"), "the database unreachable: 503");
	t_free(&t);
	t_init(&t, "POST /todo HTTP/1.1\r\nHost: a\r\nContent-Type: "
	    "application/json\r\nContent-Length: 14\r\n\r\n",
	    "{\"task\":\"tea\"}");
	t.env.shared = 1;
	api_admit(&t.env, &t.ar, &t.r);
	TAP_OK(api_request(&t.env, &t.ar, &t.r) == API_STORE,
	    "a write on a shared store goes to the parent as before");
	t_free(&t);
}

int
main(void)
{
	pair(&wk, &pa);
	cache_init(&cache);
	TAILQ_INIT(&rules_all);
	TAILQ_INIT(&rules_none);
	rule(&rules_all, AUTHZ_ALL, 0, NULL, MATCH_CN, "alice", 0);
	rule(&rules_none, AUTHZ_ALL, 0, NULL, MATCH_CN, "bob", 0);
	alice.cnjson = "{\"client\":\"alice\"";
	alice.cnlog = "alice";
	alice.id.cn = "alice";
	test_admit();
	test_get();
	test_partial();
	test_write();
	test_replies();
	test_sync();
	cache_clear(&cache);
	authz_rules_free(&rules_all);
	authz_rules_free(&rules_none);
	ipc_clear(&wk);
	ipc_clear(&pa);
	return tap_done();
}
