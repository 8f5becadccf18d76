#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "cache.h"
#include "json.h"
#include "log.h"
#include "page.h"
#include "storemsg.h"
#include "worker.h"

/*
 * The TODO API.  server.c owns the connection; it hands the API a request
 * head once (api_admit) and the complete request once (api_request), and
 * the API answers with exactly one server_respond().  Checks run in the
 * order todod(8) fixes: routing (404, 405), authorization (403), the body
 * (411, 413, 415, 400), the item (404).
 * Reads are answered from the worker's cache once it has caught up with
 * the store; writes go to the parent, which answers after the commit.
 */

/* A list rendered at once up to this size; longer ones are streamed. */
#define API_RENDER_MAX	(256 * 1024)

enum api_route {
	ROUTE_NONE,
	ROUTE_TODOS,		/* /todo */
	ROUTE_TODO,		/* /todo/ID */
	ROUTE_METRICS,		/* /metrics */
	ROUTE_PAGE		/* /, its script and style, the favicon */
};

static const char *api_allow[] = {
	[ROUTE_NONE] = NULL,
	[ROUTE_TODOS] = "Allow: GET, POST\r\n",
	[ROUTE_TODO] = "Allow: GET, PATCH, DELETE\r\n",
	[ROUTE_METRICS] = "Allow: GET\r\n",
	[ROUTE_PAGE] = "Allow: GET\r\n",
};

/* /todo/ID: ID is a positive decimal without leading zeros. */
static enum api_route
api_route(const char *path, int64_t *id)
{
	const char	*p;
	int64_t		 v = 0;

	if (strcmp(path, "/todo") == 0)
		return ROUTE_TODOS;
	if (strcmp(path, "/metrics") == 0)
		return ROUTE_METRICS;
	if (page_lookup(path) != NULL)
		return ROUTE_PAGE;
	if (strncmp(path, "/todo/", 6) != 0)
		return ROUTE_NONE;
	p = path + 6;
	if (*p < '1' || *p > '9')
		return ROUTE_NONE;
	for (; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
			return ROUTE_NONE;
		v = v * 10 + (*p - '0');
	}
	*id = v;
	return ROUTE_TODO;
}

static int
api_method_allowed(enum api_route r, enum http_method m)
{
	switch (r) {
	case ROUTE_TODOS:
		return m == HTTP_M_GET || m == HTTP_M_POST;
	case ROUTE_TODO:
		return m == HTTP_M_GET || m == HTTP_M_PATCH ||
		    m == HTTP_M_DELETE;
	case ROUTE_METRICS:
	case ROUTE_PAGE:
		return m == HTTP_M_GET;
	default:
		return 0;
	}
}

static uint32_t
api_authz_method(enum http_method m)
{
	switch (m) {
	case HTTP_M_GET:
		return AUTHZ_M_GET;
	case HTTP_M_POST:
		return AUTHZ_M_POST;
	case HTTP_M_PATCH:
		return AUTHZ_M_PATCH;
	case HTTP_M_DELETE:
		return AUTHZ_M_DELETE;
	default:
		return 0;
	}
}

/* The cache has every acknowledged write once its sequence is current. */
static int
api_cache_current(struct conn *c)
{
	struct worker	*w = c->w;
	uint64_t	 seq;

	seq = __atomic_load_n(&w->state->store_seq, __ATOMIC_ACQUIRE);
	if (w->cache.ready && w->cache.seq >= seq)
		return 1;
	c->waitseq = seq;
	c->wait = WAIT_CACHE;
	if (event_initialized(&c->ev))
		event_del(&c->ev);
	TAILQ_REMOVE(&w->conns, c, entry);
	TAILQ_INSERT_TAIL(&w->cachewait, c, entry);
	return 0;
}

static void
api_get_list(struct conn *c)
{
	struct cache		*cache = &c->w->cache;
	struct cache_item	*it;
	struct buf		 b;
	size_t			 size;

	size = strlen(c->peer->cnjson) + strlen(",\"todos\":[]}") +
	    cache_list_size(cache, 0);
	if (size > API_RENDER_MAX) {
		c->streaming = c->req.version == 11 ? 1 : 2;
		c->cursor = -1;
		server_respond(c, 200, NULL, NULL);
		return;
	}
	buf_init(&b, 0);
	if (buf_reserve(&b, size) == -1) {
		server_respond_error(c, 500, NULL, "out of memory");
		return;
	}
	buf_add_str(&b, c->peer->cnjson);
	buf_add_str(&b, ",\"todos\":[");
	for (it = cache_first(cache); it != NULL;
	    it = cache_after(cache, it->id)) {
		if (it != cache_first(cache))
			buf_add(&b, ",", 1);
		buf_add(&b, it->json, it->len);
	}
	buf_add(&b, "]}", 2);
	server_respond(c, 200, NULL, &b);
	buf_free(&b);
}

static void
api_get_item(struct conn *c, int64_t id)
{
	struct cache_item	*it;
	struct buf		 b;

	if ((it = cache_get(&c->w->cache, id)) == NULL) {
		server_respond_error(c, 404, NULL, "no such TODO item");
		return;
	}
	buf_init(&b, 0);
	buf_add_str(&b, c->peer->cnjson);
	buf_add_str(&b, ",\"todo\":");
	buf_add(&b, it->json, it->len);
	buf_add(&b, "}", 1);
	server_respond(c, 200, NULL, &b);
	buf_free(&b);
}

static void
api_get(struct conn *c)
{
	if (!api_cache_current(c))
		return;		/* api_cache_ready() carries on */
	if (c->route == ROUTE_TODOS)
		api_get_list(c);
	else
		api_get_item(c, c->id);
}

/* Send a write to the parent; the answer comes to api_store_reply(). */
static void
api_write(struct conn *c)
{
	struct todo_input	 in;
	struct storemsg_req	 req;
	struct ipc_wbuf		*wb;
	const char		*err;
	int			 toolong;

	memset(&in, 0, sizeof(in));
	if (c->req.method != HTTP_M_DELETE &&
	    json_parse_todo(c->body ? c->body : "", c->bodylen,
	    c->req.method == HTTP_M_POST ? JSON_CREATE : JSON_UPDATE, &in,
	    &err) == -1) {
		server_respond_error(c, 400, NULL, err);
		return;
	}
	memset(&req, 0, sizeof(req));
	switch (c->req.method) {
	case HTTP_M_POST:
		req.type = IMSG_STORE_CREATE;
		break;
	case HTTP_M_PATCH:
		req.type = IMSG_STORE_UPDATE;
		req.mask = (in.has_task ? STORE_SET_TASK : 0) |
		    (in.has_done ? STORE_SET_DONE : 0);
		break;
	default:
		req.type = IMSG_STORE_DELETE;
		break;
	}
	req.cn = c->peer->id.cn;
	req.id = c->id;
	req.task = in.task;
	req.tasklen = in.tasklen;
	req.done = in.done ? 1 : 0;
	c->reqid = ++c->w->nextreq;
	if (c->reqid == 0)
		c->reqid = ++c->w->nextreq;
	if ((wb = storemsg_encode_request(c->reqid, &req)) == NULL)
		goto fail;
	todo_input_clear(&in);
	c->wait = WAIT_STORE;
	if (worker_send_store(c->w, c, wb) == -1) {
		c->wait = WAIT_NONE;
		server_respond_error(c, 503, NULL, "store unavailable");
	}
	return;
 fail:
	toolong = errno == EMSGSIZE;
	todo_input_clear(&in);
	/* a name longer than X.509 allows: the parent would refuse it */
	if (toolong)
		server_respond_error(c, 403, NULL,
		    "client certificate name too long");
	else
		server_respond_error(c, 500, NULL, "out of memory");
}

/*
 * A browser sends its client certificate with any request any web site
 * makes it send, so a write must come from this server's own page.  Fetch
 * metadata says who started the request (same-site is refused too: another
 * port or name of this host is another service); browsers without it still
 * send Origin on every cross-origin POST, PATCH and DELETE.  Clients that
 * are not browsers send neither and are not affected.
 */
static int
api_cross_site(const struct http_request *req)
{
	switch (req->fetch_site) {
	case HTTP_FS_ABSENT:
	case HTTP_FS_SAME_ORIGIN:
	case HTTP_FS_NONE:
		break;
	default:
		return 1;
	}
	return !http_origin_is_self(req);
}

/* GET of the page, its script, style or icon (api_admit routed it). */
static void
api_page(struct conn *c)
{
	const struct page_asset	*a = page_lookup(c->req.path);
	struct buf		 b;
	char			 hdr[1024];

	if (page_headers(a, hdr, sizeof(hdr)) == 0) {
		server_respond_error(c, 500, NULL, "page headers too long");
		return;
	}
	c->ctype = a->ctype;
	if (a->data == NULL) {
		server_respond(c, 204, hdr, NULL);
		return;
	}
	if (http_etag_match(c->req.if_none_match, a->etag)) {
		server_respond(c, 304, hdr, NULL);
		return;
	}
	buf_init(&b, 0);
	if (buf_add(&b, a->data, *a->len) == -1) {
		buf_free(&b);
		server_respond_error(c, 500, NULL, "out of memory");
		return;
	}
	server_respond(c, 200, hdr, &b);
	buf_free(&b);
}

/*
 * The head of a request: route it, authorize it, check its body's framing,
 * in the order todod(8) fixes.  Returns 1 when the request is admitted
 * (server.c reads its body, if any, then calls api_request once), 0 when
 * it was refused: the response is queued and c may be gone.
 */
/*
 * A certificate revoked since the connection was verified gets no more
 * requests: this one is refused and the connection closes after the
 * answer (its tickets no longer resume: the policy named in them changed).
 */
static int
api_peer_current(struct conn *c)
{
	char	 why[128];

	if (server_peer_check(c, why, sizeof(why)))
		return 1;
	c->w->ctr->conns_cut++;
	log_info("peer=%s cn=\"%s\" connection cut: %s", c->peer_addr,
	    c->peer->cnlog, why);
	c->rs.close = 1;
	server_respond_error(c, 403, NULL, why);
	return 0;
}

int
api_admit(struct conn *c)
{
	struct http_request	*req = &c->req;
	int			 writes;
	uint32_t		 class;

	if (!api_peer_current(c))
		return 0;
	c->id = 0;
	c->route = api_route(req->path ? req->path : "", &c->id);
	if (c->route == ROUTE_NONE) {
		server_respond_error(c, 404, NULL, "no such path");
		return 0;
	}
	if (!api_method_allowed(c->route, req->method)) {
		server_respond_error(c, 405, api_allow[c->route],
		    "method not allowed");
		return 0;
	}
	/* the page is for browsers; API clients asking for / get JSON */
	if (c->route == ROUTE_PAGE && page_lookup(req->path)->html &&
	    !req->accept_html) {
		server_respond_error(c, 404, NULL, "no such path");
		return 0;
	}
	writes = req->method == HTTP_M_POST || req->method == HTTP_M_PATCH;
	class = c->route == ROUTE_METRICS ? AUTHZ_METRICS :
	    req->method == HTTP_M_GET ? AUTHZ_READ : AUTHZ_WRITE;
	if (class == AUTHZ_WRITE && api_cross_site(req)) {
		server_respond_error(c, 403, NULL,
		    "cross-site write refused");
		return 0;
	}
	/* the rules in force now, also for connections older than them */
	if (!authz_check(&c->w->conf->rules, &c->peer->id, class,
	    api_authz_method(req->method), req->path, NULL)) {
		server_respond_error(c, 403, NULL, "not authorized");
		return 0;
	}
	/* Content-Length: 0 is a length: its empty body is a 400 below. */
	if (writes && !req->chunked && req->content_length < 0) {
		server_respond_error(c, 411, NULL, "length required");
		return 0;
	}
	if (req->content_length > HTTP_MAX_BODY) {
		server_respond_error(c, 413, NULL, "request body too large");
		return 0;
	}
	if (writes && http_content_type_ok(req->content_type) == -1) {
		server_respond_error(c, 415, NULL,
		    "content type must be application/json");
		return 0;
	}
	return 1;
}

/* The whole request, admitted and with its body: answer it, once. */
void
api_request(struct conn *c)
{
	switch (c->route) {
	case ROUTE_METRICS:
		c->wait = WAIT_METRICS;
		c->reqid = ++c->w->nextreq;
		if (worker_send_metrics(c->w, c) == -1) {
			c->wait = WAIT_NONE;
			server_respond_error(c, 503, NULL,
			    "metrics unavailable");
		}
		break;
	case ROUTE_PAGE:
		api_page(c);
		break;
	case ROUTE_TODOS:
	case ROUTE_TODO:
		if (c->req.method == HTTP_M_GET)
			api_get(c);
		else
			api_write(c);
		break;
	default:
		server_respond_error(c, 404, NULL, "no such path");
		break;
	}
}

/* A GET that waited for the cache: route and id are those of api_admit. */
void
api_cache_ready(struct conn *c)
{
	api_get(c);
}

/* The parent's answer to a write. */
void
api_store_reply(struct conn *c, struct ipc_msg *msg)
{
	struct storemsg_reply	 rep;
	const char		*what;
	struct buf		 b;
	char			 loc[64];
	int			 code;

	if (storemsg_decode_reply(msg, &rep) == -1)
		fatalx("%s: malformed store reply", __func__);
	if (rep.status == STORE_NOTFOUND) {
		server_respond_error(c, 404, NULL, "no such TODO item");
		return;
	}
	if (rep.status == STORE_UNAVAILABLE) {
		server_respond_error(c, 503, NULL, "store unavailable");
		return;
	}
	if (rep.status != STORE_OK) {
		server_respond_error(c, 500, NULL, "store failed");
		return;
	}
	switch (c->req.method) {
	case HTTP_M_POST:
		what = "TODO item created";
		code = 201;
		break;
	case HTTP_M_PATCH:
		what = "TODO item updated";
		code = 200;
		break;
	default:
		what = "TODO item deleted";
		code = 200;
		break;
	}
	buf_init(&b, 0);
	buf_add_str(&b, c->peer->cnjson);
	buf_add_str(&b, ",\"message\":");
	json_add_string(&b, what, strlen(what));
	buf_add_str(&b, ",\"todo\":");
	json_add_todo(&b, rep.item.id, rep.item.task, rep.item.tasklen,
	    rep.item.done);
	buf_add(&b, "}", 1);
	snprintf(loc, sizeof(loc), "Location: /todo/%lld\r\n",
	    (long long)rep.item.id);
	server_respond(c, code, code == 201 ? loc : NULL, &b);
	buf_free(&b);
}

void
api_metrics_reply(struct conn *c, struct ipc_msg *msg)
{
	const void	*p;
	size_t		 n;
	struct buf	 b;

	if (ipc_get_data(msg, &p, &n) == -1 || ipc_get_end(msg) == -1)
		fatalx("%s: malformed metrics reply", __func__);
	buf_init(&b, 0);
	buf_add(&b, p, n);
	c->ctype = "text/plain; version=0.0.4; charset=utf-8";
	server_respond(c, 200, NULL, &b);
	buf_free(&b);
}
