/*
 * libFuzzer target for daemon/http.c: the input is a request head (and,
 * when the head says chunked, its body).  The head is parsed whole, split
 * in two at a point taken from the first byte, and fed in steps taken from
 * the second; every way must give the same answer.  Then the body goes to
 * the chunked decoder the same ways.  A broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct head {
	int			 r;
	int			 status;
	size_t			 consumed;
	struct http_request	 req;
};

struct body {
	int			 r;
	int			 status;
	size_t			 consumed;
	size_t			 outlen;
};

static char	 out_a[HTTP_MAX_BODY], out_b[HTTP_MAX_BODY];

static void
check(int cond)
{
	if (!cond)
		abort();
}

static int
str_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static int
req_same(const struct http_request *a, const struct http_request *b)
{
	return a->method == b->method &&
	    strcmp(a->method_name, b->method_name) == 0 &&
	    str_same(a->target, b->target) && str_same(a->path, b->path) &&
	    a->version == b->version && a->has_host == b->has_host &&
	    a->content_length == b->content_length &&
	    a->chunked == b->chunked &&
	    a->expect_continue == b->expect_continue &&
	    a->keep_alive == b->keep_alive &&
	    str_same(a->content_type, b->content_type) &&
	    str_same(a->host, b->host) && str_same(a->origin, b->origin) &&
	    a->norigin == b->norigin &&
	    str_same(a->if_none_match, b->if_none_match) &&
	    a->fetch_site == b->fetch_site &&
	    a->accept_html == b->accept_html &&
	    a->nheaders == b->nheaders;
}

/*
 * Feed a growing buffer as a socket would: first bytes, then step more at
 * each call.
 */
static void
head_feed(const char *buf, size_t len, size_t first, size_t step,
    struct head *h)
{
	struct http_parser	 p;
	size_t			 k, prev = 0;

	memset(h, 0, sizeof(*h));
	http_parser_reset(&p);
	h->r = HTTP_PARSE_MORE;
	for (k = first < len ? first : len; ; k += step) {
		if (k > len)
			k = len;
		h->r = http_parse_head(&p, buf, k, &h->req, &h->consumed,
		    &h->status);
		check(p.scanned <= k && p.scanned >= prev);
		prev = p.scanned;
		if (h->r != HTTP_PARSE_MORE || k == len)
			break;
		check(h->consumed == 0 && h->status == 0);
	}
	check(h->consumed <= len);
}

static void
head_check(const char *buf, const struct head *h)
{
	const struct http_request	*req = &h->req;

	if (h->r == HTTP_PARSE_ERROR) {
		check(h->status >= 400 && h->status <= 505);
		check(strcmp(http_status_text(h->status), "Unknown") != 0);
		return;
	}
	if (h->r != HTTP_PARSE_DONE)
		return;
	check(h->status == 0);
	check(h->consumed >= 4 && h->consumed <= HTTP_MAX_HEAD);
	check(memcmp(buf + h->consumed - 4, "\r\n\r\n", 4) == 0);
	check(req->target != NULL && req->path != NULL);
	check(strlen(req->target) <= HTTP_MAX_TARGET);
	check(req->path[0] == '/' || strcmp(req->path, "*") == 0);
	check(strchr(req->path, '?') == NULL);
	check(req->version == 10 || req->version == 11);
	check(req->version == 10 || req->has_host);
	check(req->nheaders <= HTTP_MAX_HEADERS);
	check(!(req->chunked && req->content_length != -1));
	check(req->content_length >= -1);
	check(!(req->chunked && req->version == 10));
	check(req->method_name[0] != '\0');
	check(req->method == HTTP_M_OTHER || strcmp(req->method_name,
	    http_method_name(req->method)) == 0);
	(void)http_content_type_ok(req->content_type);
	check(req->has_host == (req->host != NULL));
	check((req->norigin > 0) == (req->origin != NULL));
	check(req->norigin == 0 || !http_origin_is_self(req) ||
	    (req->norigin == 1 && strlen(req->origin) > 8));
	if (req->if_none_match != NULL)
		(void)http_etag_match(req->if_none_match, "\"0123\"");
}

static void
body_feed(const char *in, size_t len, size_t step, char *out,
    struct body *b)
{
	struct http_chunked	 ch;
	size_t			 off = 0, n, used;

	memset(b, 0, sizeof(*b));
	http_chunked_init(&ch);
	b->r = HTTP_PARSE_MORE;
	for (;;) {
		n = len - off < step ? len - off : step;
		b->r = http_chunked_feed(&ch, in + off, n, &used, out,
		    &b->outlen, HTTP_MAX_BODY, &b->status);
		check(used <= n && b->outlen <= HTTP_MAX_BODY);
		if (b->r == HTTP_PARSE_MORE)
			check(used == n);
		b->consumed += used;
		off += used;
		if (b->r != HTTP_PARSE_MORE || off == len)
			break;
	}
	check(b->consumed <= len);
	if (b->r == HTTP_PARSE_ERROR)
		check(b->status == 400 || b->status == 413);
}

static void
body_check(const char *in, size_t len, size_t step)
{
	struct body	 a, b;

	body_feed(in, len, len > 0 ? len : 1, out_a, &a);
	body_feed(in, len, step, out_b, &b);
	check(a.r == b.r && a.status == b.status && a.outlen == b.outlen);
	check(memcmp(out_a, out_b, a.outlen) == 0);
	if (a.r == HTTP_PARSE_DONE)
		check(a.consumed == b.consumed);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*buf = (const char *)data;
	struct head	 whole, split, steps;
	size_t		 cut, step;

	if (size == 0)
		return 0;
	cut = size > 1 ? data[0] % size : 0;
	step = size > 1 ? (size_t)(data[1] % 16) + 1 : 1;

	head_feed(buf, size, size, size, &whole);
	head_feed(buf, size, cut, size, &split);
	head_feed(buf, size, step, step, &steps);
	head_check(buf, &whole);
	/* Any split gives the same answer, error statuses included. */
	check(whole.r == split.r && whole.r == steps.r);
	check(whole.status == split.status && whole.status == steps.status);
	if (whole.r == HTTP_PARSE_DONE) {
		check(whole.consumed == split.consumed &&
		    whole.consumed == steps.consumed);
		check(req_same(&whole.req, &split.req) &&
		    req_same(&whole.req, &steps.req));
		if (whole.req.chunked)
			body_check(buf + whole.consumed, size - whole.consumed,
			    step);
	}
	http_request_clear(&whole.req);
	http_request_clear(&split.req);
	http_request_clear(&steps.req);
	return 0;
}
