#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "authz.h"
#include "cache.h"
#include "http.h"
#include "ipc.h"
#include "json.h"
#include "log.h"
#include "page.h"
#include "peer.h"
#include "storemsg.h"

/*
 * Checks run in the order todod(8) fixes: routing (404, 405),
 * authorization (403), the body (411, 413, 415, 400), the item (404).
 * Reads are answered from the worker's cache once it has caught up with
 * the store; when the cache does not hold every item (`cache size`), a
 * miss is read from the store and the list streamed from it, through the
 * parent.  Writes go to the parent, which answers after the commit.
 * Every function that answers fills in the response once and returns
 * API_RESPOND: there is no other way out with an answer.
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


void
api_resp_init(struct api_resp *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 0);
}

void
api_resp_free(struct api_resp *r)
{
	buf_free(&r->body);
	ipc_wbuf_free(r->store);
	r->store = NULL;
}

/* Status, header lines (or NULL) and the body, which r now holds. */
static enum api_verdict
api_respond(struct api_resp *r, int status, const char *extra)
{
	r->status = status;
	if (extra != NULL)
		strlcpy(r->extra, extra, sizeof(r->extra));
	return API_RESPOND;
}

/* An error's JSON body ({"error":"..."}), the status text when msg is NULL. */
void
api_resp_error(struct api_resp *r, int status, const char *extra,
    const char *msg)
{
	buf_reset(&r->body);
	json_add_error(&r->body, msg ? msg : http_status_text(status));
	api_respond(r, status, extra);
}

static enum api_verdict
api_error(struct api_resp *r, int status, const char *extra,
    const char *msg)
{
	api_resp_error(r, status, extra, msg);
	return API_RESPOND;
}

/*
 * The cache has every acknowledged write once its sequence is current.
 * On a store other nodes write too, the parent first catches up with the
 * database as of the request (API_SYNC), which moves the sequence on.
 */
static int
api_cache_current(const struct api_env *env, const struct api_req *ar,
    struct api_resp *r)
{
	if (env->cache->ready && env->cache->seq >= env->store_seq)
		return 1;
	r->seq = env->store_seq;
	return 0;
}

/* The list: from the cache when it holds every item, else the store's. */
static enum api_verdict
api_get_list(const struct api_env *env, const struct api_req *ar,
    struct api_resp *r)
{
	struct cache		*cache = env->cache;
	struct cache_item	*it;
	struct buf		*b = &r->body;
	size_t			 size;

	size = strlen(ar->peer->cnjson) + strlen(",\"todos\":[]}") +
	    cache_list_size(cache, 0);
	if (size > API_RENDER_MAX || !cache->complete) {
		r->stream = ar->http->version == 11 ? 1 : 2;
		r->from_store = !cache->complete;
		return api_respond(r, 200, NULL);
	}
	if (buf_reserve(b, size) == -1)
		return api_error(r, 500, NULL, "out of memory");
	buf_add_str(b, ar->peer->cnjson);
	buf_add_str(b, ",\"todos\":[");
	for (it = cache_first(cache); it != NULL;
	    it = cache_after(cache, it->id)) {
		if (it != cache_first(cache))
			buf_add(b, ",", 1);
		buf_add(b, it->json, it->len);
	}
	buf_add(b, "]}", 2);
	return api_respond(r, 200, NULL);
}

static enum api_verdict
api_item(const struct api_req *ar, const char *json, size_t len,
    struct api_resp *r)
{
	buf_add_str(&r->body, ar->peer->cnjson);
	buf_add_str(&r->body, ",\"todo\":");
	buf_add(&r->body, json, len);
	buf_add(&r->body, "}", 1);
	return api_respond(r, 200, NULL);
}

/* A miss is a 404 only when the cache holds every item. */
static enum api_verdict
api_get_item(const struct api_env *env, const struct api_req *ar,
    struct api_resp *r)
{
	struct cache_item	*it;

	if ((it = cache_get(env->cache, ar->id)) != NULL) {
		r->cache_hit = 1;
		return api_item(ar, it->json, it->len, r);
	}
	if (!env->cache->complete)
		return API_FETCH;
	return api_error(r, 404, NULL, "no such TODO item");
}

static enum api_verdict
api_get(const struct api_env *env, const struct api_req *ar,
    struct api_resp *r)
{
	if (env->shared && !ar->synced)
		return API_SYNC;
	if (!api_cache_current(env, ar, r))
		return API_WAIT_CACHE;
	if (ar->route == ROUTE_TODOS)
		return api_get_list(env, ar, r);
	return api_get_item(env, ar, r);
}

/* The store request of a write, from its checked JSON body. */
static void
api_write_req(const struct api_req *ar, const struct todo_input *in,
    struct storemsg_req *req)
{
	memset(req, 0, sizeof(*req));
	switch (ar->http->method) {
	case HTTP_M_POST:
		req->type = IMSG_STORE_CREATE;
		break;
	case HTTP_M_PATCH:
		req->type = IMSG_STORE_UPDATE;
		req->mask = (in->has_task ? STORE_SET_TASK : 0) |
		    (in->has_done ? STORE_SET_DONE : 0);
		break;
	default:
		req->type = IMSG_STORE_DELETE;
		break;
	}
	req->cn = ar->peer->id.cn;
	req->id = ar->id;
	req->task = in->task;
	req->tasklen = in->tasklen;
	req->done = in->done ? 1 : 0;
}

/* A write goes to the parent; the answer comes to api_store_reply(). */
static enum api_verdict
api_write(const struct api_req *ar, struct api_resp *r)
{
	struct todo_input	 in;
	struct storemsg_req	 req;
	const char		*err;
	int			 toolong;

	memset(&in, 0, sizeof(in));
	if (ar->http->method != HTTP_M_DELETE &&
	    json_parse_todo(ar->body ? ar->body : "", ar->bodylen,
	    ar->http->method == HTTP_M_POST ? JSON_CREATE : JSON_UPDATE, &in,
	    &err) == -1)
		return api_error(r, 400, NULL, err);
	api_write_req(ar, &in, &req);
	r->store = storemsg_encode_request(ar->reqid, &req);
	toolong = r->store == NULL && errno == EMSGSIZE;
	todo_input_clear(&in);
	if (r->store != NULL)
		return API_STORE;
	/* a name longer than X.509 allows: the parent would refuse it */
	if (toolong)
		return api_error(r, 403, NULL,
		    "client certificate name too long");
	return api_error(r, 500, NULL, "out of memory");
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
static enum api_verdict
api_page(const struct api_req *ar, struct api_resp *r)
{
	const struct page_asset	*a = page_lookup(ar->http->path);

	if (page_headers(a, r->extra, sizeof(r->extra)) == 0) {
		r->extra[0] = '\0';
		return api_error(r, 500, NULL, "page headers too long");
	}
	r->ctype = a->ctype;
	if (a->data == NULL)
		return api_respond(r, 204, NULL);
	if (http_etag_match(ar->http->if_none_match, a->etag))
		return api_respond(r, 304, NULL);
	if (buf_add(&r->body, a->data, *a->len) == -1)
		return api_error(r, 500, NULL, "out of memory");
	return api_respond(r, 200, NULL);
}

/* Routing and authorization: API_ADMIT, or the refusal. */
static enum api_verdict
api_admit_route(const struct api_env *env, struct api_req *ar,
    struct api_resp *r)
{
	const struct http_request	*req = ar->http;
	uint32_t			 class;

	ar->id = 0;
	ar->route = api_route(req->path ? req->path : "", &ar->id);
	if (ar->route == ROUTE_NONE)
		return api_error(r, 404, NULL, "no such path");
	if (!api_method_allowed(ar->route, req->method))
		return api_error(r, 405, api_allow[ar->route],
		    "method not allowed");
	/* the page is for browsers; API clients asking for / get JSON */
	if (ar->route == ROUTE_PAGE && page_lookup(req->path)->html &&
	    !req->accept_html)
		return api_error(r, 404, NULL, "no such path");
	class = ar->route == ROUTE_METRICS ? AUTHZ_METRICS :
	    req->method == HTTP_M_GET ? AUTHZ_READ : AUTHZ_WRITE;
	if (class == AUTHZ_WRITE && api_cross_site(req))
		return api_error(r, 403, NULL, "cross-site write refused");
	/* the rules in force now, also for connections older than them */
	if (!authz_check(env->rules, &ar->peer->id, class,
	    api_authz_method(req->method), req->path, NULL))
		return api_error(r, 403, NULL, "not authorized");
	return API_ADMIT;
}

/*
 * The head of a request: route it, authorize it, check its body's framing,
 * in the order todod(8) fixes.  API_ADMIT: server.c reads the body, if
 * any, then calls api_request once.  API_RESPOND: refused, r says how.
 */
enum api_verdict
api_admit(const struct api_env *env, struct api_req *ar, struct api_resp *r)
{
	const struct http_request	*req = ar->http;
	int				 writes;

	ar->synced = 0;
	if (api_admit_route(env, ar, r) != API_ADMIT)
		return API_RESPOND;
	writes = req->method == HTTP_M_POST || req->method == HTTP_M_PATCH;
	/* Content-Length: 0 is a length: its empty body is a 400 below. */
	if (writes && !req->chunked && req->content_length < 0)
		return api_error(r, 411, NULL, "length required");
	if (req->content_length > HTTP_MAX_BODY)
		return api_error(r, 413, NULL, "request body too large");
	if (writes && http_content_type_ok(req->content_type) == -1)
		return api_error(r, 415, NULL,
		    "content type must be application/json");
	return API_ADMIT;
}

/*
 * The whole request, admitted and with its body.  After API_WAIT_CACHE
 * the caller asks again (route and id are still those of api_admit).
 */
enum api_verdict
api_request(const struct api_env *env, struct api_req *ar,
    struct api_resp *r)
{
	switch (ar->route) {
	case ROUTE_METRICS:
		return API_METRICS;
	case ROUTE_PAGE:
		return api_page(ar, r);
	case ROUTE_TODOS:
	case ROUTE_TODO:
		if (ar->http->method == HTTP_M_GET)
			return api_get(env, ar, r);
		return api_write(ar, r);
	default:
		return api_error(r, 404, NULL, "no such path");
	}
}

/* The parent's answer to a write. */
void
api_store_reply(const struct api_req *ar, struct ipc_msg *msg,
    struct api_resp *r)
{
	struct storemsg_reply	 rep;
	const char		*what;
	char			 loc[64];
	int			 code;

	if (storemsg_decode_reply(msg, &rep) == -1)
		fatalx("%s: malformed store reply", __func__);
	if (rep.status == STORE_NOTFOUND) {
		api_error(r, 404, NULL, "no such TODO item");
		return;
	}
	if (rep.status == STORE_UNAVAILABLE) {
		api_error(r, 503, NULL, "store unavailable");
		return;
	}
	if (rep.status != STORE_OK) {
		api_error(r, 500, NULL, "store failed");
		return;
	}
	switch (ar->http->method) {
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
	buf_add_str(&r->body, ar->peer->cnjson);
	buf_add_str(&r->body, ",\"message\":");
	json_add_string(&r->body, what, strlen(what));
	buf_add_str(&r->body, ",\"todo\":");
	json_add_todo(&r->body, rep.item.id, rep.item.task, rep.item.tasklen,
	    rep.item.done);
	buf_add(&r->body, "}", 1);
	snprintf(loc, sizeof(loc), "Location: /todo/%lld\r\n",
	    (long long)rep.item.id);
	api_respond(r, code, code == 201 ? loc : NULL);
}

/*
 * The parent caught up with the other nodes for this request (1: ask
 * api_request again), or could not: without the database a GET cannot
 * know what other nodes acknowledged, and r is a 503.
 */
int
api_sync_reply(struct api_req *ar, struct ipc_msg *msg, struct api_resp *r)
{
	uint32_t	 status;

	if (storemsg_decode_synced(msg, &status) == -1)
		fatalx("%s: malformed store sync reply", __func__);
	if (status != STORE_OK) {
		api_error(r, 503, NULL, "store unavailable");
		return 0;
	}
	ar->synced = 1;
	return 1;
}

/*
 * The store's answer to an API_FETCH: the item's JSON, NULL when the store
 * has no such item, or failed when the store could not say.
 */
void
api_fetch_reply(const struct api_req *ar, const char *json, size_t len,
    int failed, struct api_resp *r)
{
	if (failed)
		api_error(r, 503, NULL, "store unavailable");
	else if (json == NULL)
		api_error(r, 404, NULL, "no such TODO item");
	else
		api_item(ar, json, len, r);
}

void
api_metrics_reply(struct ipc_msg *msg, struct api_resp *r)
{
	const void	*p;
	size_t		 n;

	if (ipc_get_data(msg, &p, &n) == -1 || ipc_get_end(msg) == -1)
		fatalx("%s: malformed metrics reply", __func__);
	buf_add(&r->body, p, n);
	r->ctype = "text/plain; version=0.0.4; charset=utf-8";
	api_respond(r, 200, NULL);
}
