/* Unit tests for the HTTP/1.x request parser (daemon/http.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "tap.h"

#define H11	"Host: example.com\r\n"

struct result {
	int		 r;
	int		 status;
	size_t		 consumed;
	struct http_request req;
};

static void
result_clear(struct result *res)
{
	http_request_clear(&res->req);
}

/* The whole buffer in one call, with a fresh parser. */
static int
parse_n(const char *s, size_t n, struct result *res)
{
	struct http_parser	 p;

	http_parser_reset(&p);
	memset(res, 0, sizeof(*res));
	res->r = http_parse_head(&p, s, n, &res->req, &res->consumed,
	    &res->status);
	return res->r;
}

static int
parse(const char *s, struct result *res)
{
	return parse_n(s, strlen(s), res);
}

/* Expect an error with this status, and nothing leaked either way. */
static void
check_status(const char *s, int status, const char *what)
{
	struct result	 res;

	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == status,
	    "%s -> %d (got r=%d status=%d)", what, status, res.r, res.status);
	result_clear(&res);
}

static void
check_done(const char *s, const char *what)
{
	struct result	 res;

	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.consumed == strlen(s),
	    "%s -> done (got r=%d status=%d)", what, res.r, res.status);
	result_clear(&res);
}

static int
str_eq(const char *a, const char *b)
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
	    str_eq(a->target, b->target) && str_eq(a->path, b->path) &&
	    a->version == b->version && a->has_host == b->has_host &&
	    a->content_length == b->content_length &&
	    a->chunked == b->chunked &&
	    a->expect_continue == b->expect_continue &&
	    a->keep_alive == b->keep_alive &&
	    str_eq(a->content_type, b->content_type) &&
	    str_eq(a->host, b->host) && str_eq(a->origin, b->origin) &&
	    a->norigin == b->norigin &&
	    str_eq(a->if_none_match, b->if_none_match) &&
	    a->fetch_site == b->fetch_site &&
	    a->accept_html == b->accept_html &&
	    a->nheaders == b->nheaders;
}

static void
test_good(void)
{
	struct result	 res;
	const char	*s;

	s = "GET /todo HTTP/1.1\r\n" H11 "\r\n";
	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.consumed == strlen(s),
	    "simple GET 1.1 done");
	TAP_OK(res.req.method == HTTP_M_GET &&
	    strcmp(res.req.method_name, "GET") == 0, "method GET");
	TAP_OK(str_eq(res.req.target, "/todo") && str_eq(res.req.path, "/todo"),
	    "target and path");
	TAP_OK(res.req.version == 11 && res.req.has_host == 1 &&
	    res.req.keep_alive == 1 && res.req.content_length == -1 &&
	    res.req.chunked == 0 && res.req.content_type == NULL &&
	    res.req.nheaders == 1, "1.1 defaults: keep-alive, no body");
	result_clear(&res);

	parse("GET /todo/7?x=1&y=%20 HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE &&
	    str_eq(res.req.target, "/todo/7?x=1&y=%20") &&
	    str_eq(res.req.path, "/todo/7"), "query string cut from path");
	result_clear(&res);

	parse("GET /? HTTP/1.0\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && str_eq(res.req.path, "/") &&
	    res.req.version == 10 && res.req.keep_alive == 0 &&
	    res.req.has_host == 0, "1.0 without Host, not keep-alive");
	result_clear(&res);

	parse("POST /todo HTTP/1.1\r\nHOST: h\r\nContent-Length: 12\r\n"
	    "content-type:  application/json; charset=utf-8 \t\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.method == HTTP_M_POST &&
	    res.req.content_length == 12 &&
	    str_eq(res.req.content_type, "application/json; charset=utf-8"),
	    "POST with length and trimmed content type");
	result_clear(&res);

	parse("PATCH /todo/1 HTTP/1.1\r\n" H11 "Transfer-Encoding: Chunked\r\n"
	    "Expect: 100-Continue\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.method == HTTP_M_PATCH &&
	    res.req.chunked == 1 && res.req.expect_continue == 1 &&
	    res.req.content_length == -1, "chunked PATCH with Expect");
	result_clear(&res);

	parse("DELETE /todo/1 HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.req.method == HTTP_M_DELETE, "DELETE");
	result_clear(&res);
	parse("PUT /x HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.req.method == HTTP_M_PUT, "PUT");
	result_clear(&res);
	parse("HEAD /x HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.req.method == HTTP_M_HEAD, "HEAD");
	result_clear(&res);

	parse("get / HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.method == HTTP_M_OTHER &&
	    strcmp(res.req.method_name, "get") == 0,
	    "lower case get is another method");
	result_clear(&res);
	parse("BREW /pot HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.method == HTTP_M_OTHER &&
	    strcmp(res.req.method_name, "BREW") == 0, "unknown token method");
	result_clear(&res);

	parse("OPTIONS * HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.method == HTTP_M_OPTIONS &&
	    str_eq(res.req.path, "*"), "OPTIONS *");
	result_clear(&res);

	parse("GET http://example.com:8443/todo/3?a=b HTTP/1.1\r\n" H11 "\r\n",
	    &res);
	TAP_OK(res.r == HTTP_PARSE_DONE &&
	    str_eq(res.req.target, "http://example.com:8443/todo/3?a=b") &&
	    str_eq(res.req.path, "/todo/3"), "absolute-form path");
	result_clear(&res);
	parse("GET HTTPS://example.com HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && str_eq(res.req.path, "/"),
	    "absolute-form without path -> /");
	result_clear(&res);
	parse("GET https://[::1]:8443?q HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && str_eq(res.req.path, "/"),
	    "absolute-form, IPv6 host, query only -> /");
	result_clear(&res);

	parse("\r\nGET / HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE &&
	    res.consumed == strlen("\r\nGET / HTTP/1.1\r\n" H11 "\r\n") &&
	    str_eq(res.req.path, "/"), "leading CRLF ignored, counted");
	result_clear(&res);

	parse("GET / HTTP/1.1\r\nX: caf\xc3\xa9 \x80\xff\r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.nheaders == 2,
	    "obs-text in a field value is allowed");
	result_clear(&res);

	parse("GET / HTTP/1.1\r\nX-Empty:\r\nY:\t \r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.nheaders == 3,
	    "empty field values");
	result_clear(&res);

	check_done("GET /todo HTTP/1.1\r\nHost: 127.0.0.1:8443\r\n"
	    "User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n", "curl's GET");
	check_done("GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
	    "IPv6 literal Host");

	parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.has_host == 1,
	    "empty Host is a Host");
	result_clear(&res);
}

static void
test_keepalive(void)
{
	static const struct {
		const char	*head;
		int		 keep;
	} t[] = {
		{ "GET / HTTP/1.1\r\n" H11 "\r\n", 1 },
		{ "GET / HTTP/1.1\r\n" H11 "Connection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.1\r\n" H11 "Connection: Keep-Alive, CLOSE\r\n"
		    "\r\n", 0 },
		{ "GET / HTTP/1.1\r\n" H11 "Connection: keep-alive\r\n\r\n",
		    1 },
		{ "GET / HTTP/1.1\r\n" H11 "Connection: upgrade,,te\r\n\r\n",
		    1 },
		{ "GET / HTTP/1.0\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1 },
		{ "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n"
		    "Connection: close\r\n\r\n", 0 },
		{ "GET / HTTP/1.0\r\nconnection: foo , keep-alive \r\n\r\n",
		    1 },
	};
	struct result	 res;
	size_t		 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		parse(t[i].head, &res);
		TAP_OK(res.r == HTTP_PARSE_DONE && res.req.keep_alive ==
		    t[i].keep, "keep-alive rule %zu -> %d", i, t[i].keep);
		result_clear(&res);
	}
	check_status("GET / HTTP/1.1\r\n" H11 "Connection: a b\r\n\r\n", 400,
	    "Connection with a non-token");
}

static void
test_errors(void)
{
	struct result	 res;

	check_status("GET / HTTP/1.1\r\n\r\n", 400, "1.1 without Host");
	check_status("GET / HTTP/1.1\r\n" H11 H11 "\r\n", 400, "two Host");
	check_status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400,
	    "Host with a space");
	check_status("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400,
	    "Host with a slash");
	check_status("G(T / HTTP/1.1\r\n" H11 "\r\n", 400, "non-token method");
	check_status(" GET / HTTP/1.1\r\n" H11 "\r\n", 400, "empty method");
	check_status("ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n" H11 "\r\n",
	    501, "method longer than any known");
	check_status("GET  / HTTP/1.1\r\n" H11 "\r\n", 400, "two SP");
	check_status("GET / HTTP/1.1 \r\n" H11 "\r\n", 400, "trailing SP");
	check_status("GET /\tx HTTP/1.1\r\n" H11 "\r\n", 400, "HTAB in target");
	check_status("GET /a b HTTP/1.1\r\n" H11 "\r\n", 400, "SP in target");
	check_status("GET /a#f HTTP/1.1\r\n" H11 "\r\n", 400, "fragment");
	check_status("GET /\xe9 HTTP/1.1\r\n" H11 "\r\n", 400,
	    "non-ASCII target");
	check_status("GET todo HTTP/1.1\r\n" H11 "\r\n", 400,
	    "relative target");
	check_status("GET * HTTP/1.1\r\n" H11 "\r\n", 400, "* without OPTIONS");
	check_status("CONNECT h:443 HTTP/1.1\r\n" H11 "\r\n", 400,
	    "authority-form");
	check_status("GET ftp://h/x HTTP/1.1\r\n" H11 "\r\n", 400,
	    "other scheme");
	check_status("GET http:///x HTTP/1.1\r\n" H11 "\r\n", 400,
	    "empty authority");
	check_status("GET http://u:p@h/x HTTP/1.1\r\n" H11 "\r\n", 400,
	    "userinfo");
	check_status("GET / HTTP/2.0\r\n" H11 "\r\n", 505, "HTTP/2.0");
	check_status("GET / HTTP/1.2\r\n" H11 "\r\n", 505, "HTTP/1.2");
	check_status("GET / HTTP/0.9\r\n\r\n", 505, "HTTP/0.9");
	check_status("GET / HTTP/1\r\n" H11 "\r\n", 400, "HTTP/1");
	check_status("GET / http/1.1\r\n" H11 "\r\n", 400, "http/1.1");
	check_status("GET / HTTP/1.10\r\n" H11 "\r\n", 400, "HTTP/1.10");
	check_status("GET /\r\n" H11 "\r\n", 400, "no version");
	check_status("\r\n\r\nGET / HTTP/1.1\r\n" H11 "\r\n", 400,
	    "two leading empty lines");
	check_status("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400,
	    "space before colon");
	check_status("GET / HTTP/1.1\r\n" H11 "X: a\r\n b\r\n\r\n", 400,
	    "obs-fold");
	check_status("GET / HTTP/1.1\r\n " H11 "\r\n", 400,
	    "whitespace before the first field");
	check_status("GET / HTTP/1.1\r\n" H11 ": x\r\n\r\n", 400, "empty name");
	check_status("GET / HTTP/1.1\r\n" H11 "NoColon\r\n\r\n", 400,
	    "field without colon");
	check_status("GET / HTTP/1.1\r\n" H11 "X: a\x7f\r\n\r\n", 400,
	    "DEL in value");
	check_status("GET / HTTP/1.1\r\n" H11 "X: a\x01\r\n\r\n", 400,
	    "control byte in value");
	check_status("GET / HTTP/1.1\r\n" H11 "Content-Length: 5\r\n"
	    "Content-Length: 5\r\n\r\n", 400, "two Content-Length");
	check_status("GET / HTTP/1.1\r\n" H11 "Content-Length: 5, 5\r\n\r\n",
	    400, "Content-Length list");
	check_status("GET / HTTP/1.1\r\n" H11 "Content-Length: +5\r\n\r\n",
	    400, "Content-Length with sign");
	check_status("GET / HTTP/1.1\r\n" H11 "Content-Length: -1\r\n\r\n",
	    400, "negative Content-Length");
	check_status("GET / HTTP/1.1\r\n" H11 "Content-Length: 1 2\r\n\r\n",
	    400, "space inside Content-Length");
	check_status("GET / HTTP/1.1\r\n" H11 "Content-Length:\r\n\r\n",
	    400, "empty Content-Length");
	check_status("GET / HTTP/1.1\r\n" H11 "Content-Length: 0x10\r\n\r\n",
	    400, "hex Content-Length");
	check_status("POST / HTTP/1.1\r\n" H11 "Content-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 400,
	    "Content-Length and Transfer-Encoding");
	check_status("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
	    "Content-Length: 3\r\n\r\n", 400,
	    "Transfer-Encoding then Content-Length");
	check_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	    400, "Transfer-Encoding in 1.0");
	check_status("POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: gzip\r\n\r\n", 501, "gzip");
	check_status("POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: gzip, chunked\r\n\r\n", 501, "gzip, chunked");
	check_status("POST / HTTP/1.1\r\n" H11
	    "Transfer-Encoding: identity\r\n\r\n", 501, "identity");
	check_status("POST / HTTP/1.1\r\n" H11 "Transfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", 501, "two chunked lines");
	check_status("POST / HTTP/1.1\r\n" H11 "Expect: 200-ok\r\n\r\n", 417,
	    "unknown expectation");
	check_status("POST / HTTP/1.1\r\n" H11 "Content-Type: a/b\r\n"
	    "Content-Type: a/b\r\n\r\n", 400, "two Content-Type");

	parse("POST / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.expect_continue == 0,
	    "Expect ignored in 1.0");
	result_clear(&res);
	parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.expect_continue == 0,
	    "100-continue ignored in 1.0");
	result_clear(&res);

	/* What the worker logs about a refused request. */
	parse("DELETE /todo/1 HTTP/1.1\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 400 &&
	    res.req.method == HTTP_M_DELETE &&
	    str_eq(res.req.target, "/todo/1"), "error keeps method and target");
	result_clear(&res);
	parse("GET ftp://x/ HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.status == 400 && str_eq(res.req.target, "ftp://x/") &&
	    res.req.path == NULL, "bad target form still logged");
	result_clear(&res);
	parse("PATCH / HTTP/3.0\r\n" H11 "\r\n", &res);
	TAP_OK(res.status == 505 && strcmp(res.req.method_name, "PATCH") == 0,
	    "505 keeps the method");
	result_clear(&res);
}

static void
test_content_length(void)
{
	struct result	 res;

	parse("POST / HTTP/1.1\r\n" H11
	    "Content-Length: 99999999999999999999999999\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.content_length == INT64_MAX,
	    "huge Content-Length -> INT64_MAX");
	result_clear(&res);
	parse("POST / HTTP/1.1\r\n" H11
	    "Content-Length: 9223372036854775807\r\n\r\n", &res);
	TAP_OK(res.req.content_length == INT64_MAX, "INT64_MAX exactly");
	result_clear(&res);
	parse("POST / HTTP/1.1\r\n" H11
	    "Content-Length: 9223372036854775806\r\n\r\n", &res);
	TAP_OK(res.req.content_length == INT64_MAX - 1, "INT64_MAX - 1");
	result_clear(&res);
	parse("POST / HTTP/1.1\r\n" H11 "Content-Length:  007 \r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.content_length == 7,
	    "leading zeros and OWS");
	result_clear(&res);
	parse("POST / HTTP/1.1\r\n" H11 "Content-Length: 0\r\n\r\n", &res);
	TAP_OK(res.req.content_length == 0, "zero length");
	result_clear(&res);
}

/* Bare CR and LF, NUL: refused as soon as they arrive. */
static void
test_injection(void)
{
	struct http_parser	 p;
	struct http_request	 req;
	size_t			 consumed;
	int			 status, r;
	static const char	 nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n" H11
	    "\r\n";

	check_status("GET / HTTP/1.1\r\nX: a\rInjected: 1\r\n" H11 "\r\n", 400,
	    "bare CR in a value");
	check_status("GET / HTTP/1.1\r\nX: a\nInjected: 1\r\n" H11 "\r\n", 400,
	    "bare LF in a value");
	check_status("GET / HTTP/1.1\n" H11 "\n", 400, "LF line ends");
	check_status("GET / HTTP/1.1\r\n" H11 "\n\r\n", 400, "LF CRLF");
	check_status("GET / HTTP/1.1\r\n" H11 "\r\r\n", 400, "CR CR LF");
	check_status("\nGET / HTTP/1.1\r\n" H11 "\r\n", 400, "leading bare LF");
	check_status("GET /\r HTTP/1.1\r\n" H11 "\r\n", 400, "CR in target");

	http_parser_reset(&p);
	memset(&req, 0, sizeof(req));
	r = http_parse_head(&p, nul, sizeof(nul) - 1, &req, &consumed,
	    &status);
	TAP_OK(r == HTTP_PARSE_ERROR && status == 400, "NUL in a field value");
	http_request_clear(&req);

	/* Not complete yet, but already wrong: no need to wait. */
	http_parser_reset(&p);
	r = http_parse_head(&p, "GET / HTTP/1.1\r\nX: \0", 20, &req,
	    &consumed, &status);
	TAP_OK(r == HTTP_PARSE_ERROR && status == 400,
	    "NUL refused before the head is complete");
	http_request_clear(&req);
	http_parser_reset(&p);
	r = http_parse_head(&p, "GET / HTTP/1.1\nHost", 19, &req, &consumed,
	    &status);
	TAP_OK(r == HTTP_PARSE_ERROR && status == 400 &&
	    req.method == HTTP_M_GET, "bare LF refused at once, method kept");
	http_request_clear(&req);
	http_parser_reset(&p);
	r = http_parse_head(&p, "GET / HTTP/1.1\r", 15, &req, &consumed,
	    &status);
	TAP_OK(r == HTTP_PARSE_MORE, "CR at the end: wait for the LF");
	r = http_parse_head(&p, "GET / HTTP/1.1\rX", 16, &req, &consumed,
	    &status);
	TAP_OK(r == HTTP_PARSE_ERROR && status == 400,
	    "then a byte other than LF: 400");
	http_request_clear(&req);
}

/* Growing prefixes: MORE until the last byte, then the same as whole. */
static int
check_prefixes(const char *s, size_t n)
{
	struct http_parser	 p;
	struct result		 whole, part;
	size_t			 k;
	int			 ok = 1;

	if (parse_n(s, n, &whole) != HTTP_PARSE_DONE)
		ok = 0;
	http_parser_reset(&p);
	for (k = 0; k <= n && ok; k++) {
		memset(&part, 0, sizeof(part));
		part.r = http_parse_head(&p, s, k, &part.req, &part.consumed,
		    &part.status);
		if (k < n && part.r != HTTP_PARSE_MORE)
			ok = 0;
		if (k == n && (part.r != HTTP_PARSE_DONE ||
		    part.consumed != whole.consumed ||
		    !req_same(&part.req, &whole.req)))
			ok = 0;
		result_clear(&part);
	}
	result_clear(&whole);
	return ok;
}

/* Split in two at every point: the same result. */
static int
check_splits(const char *s, size_t n)
{
	struct http_parser	 p;
	struct result		 whole, part;
	size_t			 k;
	int			 ok = 1;

	parse_n(s, n, &whole);
	for (k = 0; k < n && ok; k++) {
		http_parser_reset(&p);
		memset(&part, 0, sizeof(part));
		part.r = http_parse_head(&p, s, k, &part.req, &part.consumed,
		    &part.status);
		if (part.r == HTTP_PARSE_MORE)
			part.r = http_parse_head(&p, s, n, &part.req,
			    &part.consumed, &part.status);
		if (part.r != whole.r || part.status != whole.status ||
		    part.consumed != whole.consumed ||
		    (part.r == HTTP_PARSE_DONE &&
		    !req_same(&part.req, &whole.req)))
			ok = 0;
		result_clear(&part);
	}
	result_clear(&whole);
	return ok;
}

static void
test_incremental(void)
{
	const char	*s = "\r\nPOST http://h/todo?x HTTP/1.1\r\n"
	    "Host: example.com:8443\r\nContent-Type: application/json\r\n"
	    "Connection: keep-alive\r\nExpect: 100-continue\r\n"
	    "Content-Length: 27\r\n\r\n";
	const char	*s2 = "GET / HTTP/1.0\r\n\r\n";
	const char	*bad = "GET / HTTP/1.1\r\nX: y\r\nHost: a\r\nZ\r\n\r\n";

	TAP_OK(check_prefixes(s, strlen(s)),
	    "every prefix of a POST head: MORE, then DONE alike");
	TAP_OK(check_prefixes(s2, strlen(s2)), "every prefix of a 1.0 head");
	TAP_OK(check_splits(s, strlen(s)), "every split of a POST head");
	TAP_OK(check_splits(bad, strlen(bad)),
	    "every split of a bad head gives the same error");
}

static void
test_pipelined(void)
{
	struct http_parser	 p;
	struct result		 a, b;
	const char		*s = "GET /one HTTP/1.1\r\n" H11 "\r\n"
	    "DELETE /todo/2 HTTP/1.1\r\n" H11 "Connection: close\r\n\r\n";
	size_t			 n = strlen(s);

	http_parser_reset(&p);
	memset(&a, 0, sizeof(a));
	a.r = http_parse_head(&p, s, n, &a.req, &a.consumed, &a.status);
	TAP_OK(a.r == HTTP_PARSE_DONE &&
	    a.consumed == strlen("GET /one HTTP/1.1\r\n" H11 "\r\n") &&
	    str_eq(a.req.path, "/one"), "first pipelined request");
	http_parser_reset(&p);
	memset(&b, 0, sizeof(b));
	b.r = http_parse_head(&p, s + a.consumed, n - a.consumed, &b.req,
	    &b.consumed, &b.status);
	TAP_OK(b.r == HTTP_PARSE_DONE && b.consumed == n - a.consumed &&
	    b.req.method == HTTP_M_DELETE && b.req.keep_alive == 0,
	    "second pipelined request after consumed");
	result_clear(&a);
	result_clear(&b);
}

/* A head of exactly n bytes: request line, Host, one padding field. */
static char *
make_head(size_t n)
{
	const char	*pre = "GET /big HTTP/1.1\r\nHost: h\r\nX-Pad: ";
	char		*s;
	size_t		 plen = strlen(pre);

	if ((s = malloc(n + 1)) == NULL)
		abort();
	memcpy(s, pre, plen);
	memset(s + plen, 'a', n - plen - 4);
	memcpy(s + n - 4, "\r\n\r\n", 5);
	return s;
}

static void
test_limits(void)
{
	struct http_parser	 p;
	struct result		 res;
	char			*s, *line;
	size_t			 k, total, prev, n, i;
	int			 ok, r;

	s = make_head(HTTP_MAX_HEAD);
	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.consumed == HTTP_MAX_HEAD,
	    "head of exactly 16 KiB accepted");
	result_clear(&res);

	/* Byte at a time: each byte is searched once, whatever the split. */
	http_parser_reset(&p);
	ok = 1;
	total = 0;
	r = HTTP_PARSE_MORE;
	for (k = 1; k <= HTTP_MAX_HEAD && r == HTTP_PARSE_MORE; k++) {
		prev = p.scanned;
		memset(&res, 0, sizeof(res));
		r = http_parse_head(&p, s, k, &res.req, &res.consumed,
		    &res.status);
		if (p.scanned < prev)
			ok = 0;
		total += p.scanned - prev;
		if (r == HTTP_PARSE_MORE && p.scanned != k)
			ok = 0;
		if (r == HTTP_PARSE_DONE && k != HTTP_MAX_HEAD)
			ok = 0;
		result_clear(&res);
	}
	TAP_OK(ok && r == HTTP_PARSE_DONE, "byte at a time: DONE at the end");
	TAP_OK(total == HTTP_MAX_HEAD, "byte at a time: %zu bytes scanned for "
	    "a %d byte head (linear)", total, HTTP_MAX_HEAD);
	free(s);

	s = make_head(HTTP_MAX_HEAD + 1);
	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 431,
	    "16 KiB + 1 -> 431");
	result_clear(&res);
	/* Without CRLFCRLF the 431 comes once 16 KiB have arrived. */
	parse_n(s, HTTP_MAX_HEAD - 1, &res);
	TAP_OK(res.r == HTTP_PARSE_MORE, "16 KiB - 1 incomplete: MORE");
	parse_n(s, HTTP_MAX_HEAD, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 431,
	    "16 KiB incomplete: 431");
	result_clear(&res);
	free(s);

	/* 100 fields are fine, 101 are not. */
	n = 10000 * 8 + 64;
	if ((s = malloc(n)) == NULL)
		abort();
	strcpy(s, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 1; i < 100; i++)
		strcat(s, "X: y\r\n");
	strcat(s, "\r\n");
	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.nheaders == 100,
	    "100 fields accepted");
	result_clear(&res);
	s[strlen(s) - 2] = '\0';
	strcat(s, "X: y\r\n\r\n");
	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 431,
	    "101 fields -> 431");
	result_clear(&res);
	strcpy(s, "GET / HTTP/1.1\r\nHost: h\r\n");
	k = strlen(s);
	for (i = 0; i < 10000; i++) {
		memcpy(s + k, "a:b\r\n", 5);
		k += 5;
	}
	memcpy(s + k, "\r\n", 3);
	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 431,
	    "10,000 fields -> 431");
	result_clear(&res);
	free(s);

	/* Target: 8 KiB is fine, one byte more is a 414. */
	n = HTTP_MAX_TARGET + 128;
	if ((line = malloc(n)) == NULL || (s = malloc(n + 64)) == NULL)
		abort();
	line[0] = '/';
	memset(line + 1, 'a', HTTP_MAX_TARGET - 1);
	line[HTTP_MAX_TARGET] = '\0';
	snprintf(s, n + 64, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", line);
	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_DONE &&
	    strlen(res.req.target) == HTTP_MAX_TARGET, "8 KiB target accepted");
	result_clear(&res);
	memcpy(line + HTTP_MAX_TARGET, "a", 2);
	snprintf(s, n + 64, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", line);
	parse(s, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 414 &&
	    res.req.method == HTTP_M_GET, "8 KiB + 1 target -> 414");
	result_clear(&res);

	/* No line end yet: 414 as soon as the target is known too long. */
	parse_n(s, 4 + HTTP_MAX_TARGET, &res);
	TAP_OK(res.r == HTTP_PARSE_MORE, "8 KiB target so far: MORE");
	parse_n(s, 4 + HTTP_MAX_TARGET + 1, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 414,
	    "8 KiB + 1 target so far, no line end: 414 at once");
	result_clear(&res);
	http_parser_reset(&p);
	r = HTTP_PARSE_MORE;
	for (k = 1; k <= strlen(s) && r == HTTP_PARSE_MORE; k++) {
		memset(&res, 0, sizeof(res));
		r = http_parse_head(&p, s, k, &res.req, &res.consumed,
		    &res.status);
		if (r != HTTP_PARSE_MORE)
			break;
	}
	TAP_OK(r == HTTP_PARSE_ERROR && res.status == 414 &&
	    k == 4 + HTTP_MAX_TARGET + 1, "byte at a time: 414 at byte %zu",
	    k);
	result_clear(&res);

	/* Complete line, long target, head never ends: 414, not 431. */
	k = strlen(s);
	s = realloc(s, HTTP_MAX_HEAD + 1);
	if (s == NULL)
		abort();
	memset(s + k - 2, 'b', HTTP_MAX_HEAD + 1 - (k - 2));
	parse_n(s, HTTP_MAX_HEAD, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 414,
	    "long target and no end of head: 414");
	result_clear(&res);

	/* Garbage after a short target and no line end: 400, not a wait. */
	memcpy(s, "GET / HTTP/1.1", 14);
	memset(s + 14, 'x', HTTP_MAX_HEAD - 14);
	parse_n(s, HTTP_MAX_HEAD, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 400,
	    "request line garbage without end: 400");
	result_clear(&res);
	memset(s, 'G', HTTP_MAX_HEAD);
	parse_n(s, HTTP_MAX_HEAD, &res);
	TAP_OK(res.r == HTTP_PARSE_ERROR && res.status == 501,
	    "endless method: 501");
	result_clear(&res);
	free(line);
	free(s);
}

struct chunk_result {
	int		 r;
	int		 status;
	size_t		 consumed;
	size_t		 outlen;
	char		 out[256];
};

/* Feed in[] split at the given points (ascending, ends with n). */
static void
chunk_feed(const char *in, size_t n, const size_t *cuts, size_t ncuts,
    size_t max, struct chunk_result *cr)
{
	struct http_chunked	 ch;
	size_t			 off = 0, c, used, i;

	memset(cr, 0, sizeof(*cr));
	http_chunked_init(&ch);
	cr->r = HTTP_PARSE_MORE;
	for (i = 0; i <= ncuts && cr->r == HTTP_PARSE_MORE; i++) {
		c = i < ncuts ? cuts[i] : n;
		cr->r = http_chunked_feed(&ch, in + off, c - off, &used,
		    cr->out, &cr->outlen, max, &cr->status);
		cr->consumed += used;
		off = c;
	}
}

static int
chunk_is(const char *in, size_t max, int r, int status, const char *out)
{
	struct chunk_result	 cr;

	chunk_feed(in, strlen(in), NULL, 0, max, &cr);
	if (cr.r != r || cr.status != status)
		return 0;
	if (r == HTTP_PARSE_DONE && (cr.outlen != strlen(out) ||
	    memcmp(cr.out, out, cr.outlen) != 0))
		return 0;
	return 1;
}

/* Every split in two, and byte at a time, match the whole feed. */
static int
chunk_splits_same(const char *in, size_t max)
{
	struct chunk_result	 whole, part;
	size_t			 n = strlen(in), k, cuts[256];

	chunk_feed(in, n, NULL, 0, max, &whole);
	for (k = 0; k <= n; k++) {
		chunk_feed(in, n, &k, 1, max, &part);
		if (part.r != whole.r || part.status != whole.status ||
		    part.outlen != whole.outlen ||
		    memcmp(part.out, whole.out, whole.outlen) != 0 ||
		    (whole.r == HTTP_PARSE_DONE &&
		    part.consumed != whole.consumed))
			return 0;
	}
	if (n > sizeof(cuts) / sizeof(cuts[0]))
		return 0;
	for (k = 0; k < n; k++)
		cuts[k] = k + 1;
	chunk_feed(in, n, cuts, n, max, &part);
	return part.r == whole.r && part.status == whole.status &&
	    part.outlen == whole.outlen &&
	    memcmp(part.out, whole.out, whole.outlen) == 0;
}

static void
test_chunked(void)
{
	struct chunk_result	 cr;
	struct http_chunked	 ch;
	const char		*body = "5\r\nhello\r\n7;a=b;c=\"x;y\"\r\n"
	    ", world\r\nA \t;ext\r\n0123456789\r\n0\r\nX-Trailer: v\r\n"
	    "Y:\r\n\r\n";
	const char		*pipe = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1";
	char			*big;
	size_t			 used, outlen, i;
	int			 r, status;

	TAP_OK(chunk_is("5\r\nhello\r\n0\r\n\r\n", 64, HTTP_PARSE_DONE, 0,
	    "hello"), "one chunk");
	TAP_OK(chunk_is("0\r\n\r\n", 64, HTTP_PARSE_DONE, 0, ""), "empty body");
	TAP_OK(chunk_is(body, 64, HTTP_PARSE_DONE, 0,
	    "hello, world0123456789"), "extensions and trailers");
	TAP_OK(chunk_splits_same(body, 64), "every split point of a body");
	TAP_OK(chunk_splits_same("5\r\nhel\nlo\r\n0\r\n\r\n", 64),
	    "every split point of a body with LF in data");
	TAP_OK(chunk_splits_same("5\r\nhello\r\n6\r\n", 10),
	    "every split point of a 413");
	TAP_OK(chunk_splits_same("5\r\nhelloX\r\n", 10),
	    "every split point of a 400");

	chunk_feed(pipe, strlen(pipe), NULL, 0, 64, &cr);
	TAP_OK(cr.r == HTTP_PARSE_DONE && cr.consumed == 13 &&
	    cr.outlen == 3, "bytes after the body are left for what follows");

	TAP_OK(chunk_is("5\r\nhello\r\n0\r\n\r\n", 5, HTTP_PARSE_DONE, 0,
	    "hello"), "body exactly max");
	TAP_OK(chunk_is("5\r\nhello\r\n1\r\n", 5, HTTP_PARSE_ERROR, 413, NULL),
	    "one byte over max -> 413");
	TAP_OK(chunk_is("10000\r\n", 64, HTTP_PARSE_ERROR, 413, NULL),
	    "413 from the size line, before any data");
	TAP_OK(chunk_is("fffffffffffffff\r\n", HTTP_MAX_BODY, HTTP_PARSE_ERROR,
	    413, NULL), "15 hex digits, too big -> 413");
	TAP_OK(chunk_is("0000000000000001\r\n", 64, HTTP_PARSE_ERROR, 400,
	    NULL), "16 hex digits -> 400");
	TAP_OK(chunk_is("000000000000005\r\nhello\r\n0\r\n\r\n", 64,
	    HTTP_PARSE_DONE, 0, "hello"), "15 hex digits with leading zeros");
	TAP_OK(chunk_is("g\r\n", 64, HTTP_PARSE_ERROR, 400, NULL), "bad hex");
	TAP_OK(chunk_is("\r\n", 64, HTTP_PARSE_ERROR, 400, NULL),
	    "empty size");
	TAP_OK(chunk_is(";x\r\n", 64, HTTP_PARSE_ERROR, 400, NULL),
	    "extension without size");
	TAP_OK(chunk_is("-5\r\n", 64, HTTP_PARSE_ERROR, 400, NULL),
	    "negative size");
	TAP_OK(chunk_is("5 \r\nhello\r\n", 64, HTTP_PARSE_ERROR, 400, NULL),
	    "whitespace after size without extension");
	TAP_OK(chunk_is("5\r\nhelloX\r\n", 64, HTTP_PARSE_ERROR, 400, NULL),
	    "missing CRLF after data");
	TAP_OK(chunk_is("5\r\nhello\n0\r\n\r\n", 64, HTTP_PARSE_ERROR, 400,
	    NULL), "bare LF after data");
	TAP_OK(chunk_is("5\nhello\r\n", 64, HTTP_PARSE_ERROR, 400, NULL),
	    "bare LF after size");
	TAP_OK(chunk_is("0\r\n\n", 64, HTTP_PARSE_ERROR, 400, NULL),
	    "bare LF at the end");
	TAP_OK(chunk_is("0\r\nX: y\n\r\n", 64, HTTP_PARSE_ERROR, 400, NULL),
	    "bare LF in a trailer");
	TAP_OK(chunk_is("0\r\nno colon\r\n\r\n", 64, HTTP_PARSE_ERROR, 400,
	    NULL), "trailer without colon");
	TAP_OK(chunk_is("0\r\nX: y\r\n z\r\n\r\n", 64, HTTP_PARSE_ERROR, 400,
	    NULL), "obs-fold in trailers");
	TAP_OK(chunk_is("0\r\nX: \001\r\n\r\n", 64, HTTP_PARSE_ERROR, 400,
	    NULL), "control byte in a trailer");
	TAP_OK(chunk_is("5;a\001\r\nhello\r\n", 64, HTTP_PARSE_ERROR, 400,
	    NULL), "control byte in an extension");

	if ((big = malloc(10000)) == NULL)
		abort();
	memcpy(big, "5;", 2);
	memset(big + 2, 'e', 1022);
	memcpy(big + 1024, "\r\nhello\r\n0\r\n\r\n", 15);
	TAP_OK(chunk_is(big, 64, HTTP_PARSE_DONE, 0, "hello"),
	    "size line of 1 KiB accepted");
	memcpy(big, "5;", 2);
	memset(big + 2, 'e', 1023);
	memcpy(big + 1025, "\r\nhello\r\n0\r\n\r\n", 15);
	TAP_OK(chunk_is(big, 64, HTTP_PARSE_ERROR, 400, NULL),
	    "size line over 1 KiB -> 400");
	memcpy(big, "0\r\n", 3);
	for (i = 3; i + 10 < 9000; i += 10)
		memcpy(big + i, "X: 45678\r\n", 10);
	memcpy(big + i, "\r\n", 3);
	TAP_OK(chunk_is(big, 64, HTTP_PARSE_ERROR, 400, NULL),
	    "trailers over 8 KiB -> 400");
	free(big);

	/* After DONE or an error the decoder stays where it is. */
	http_chunked_init(&ch);
	outlen = 0;
	r = http_chunked_feed(&ch, "0\r\n\r\n", 5, &used, cr.out, &outlen,
	    64, &status);
	r = http_chunked_feed(&ch, "1\r\n", 3, &used, cr.out, &outlen, 64,
	    &status);
	TAP_OK(r == HTTP_PARSE_DONE && used == 0, "DONE again, nothing used");
	http_chunked_init(&ch);
	r = http_chunked_feed(&ch, "x", 1, &used, cr.out, &outlen, 64,
	    &status);
	r = http_chunked_feed(&ch, "0\r\n\r\n", 5, &used, cr.out, &outlen,
	    64, &status);
	TAP_OK(r == HTTP_PARSE_ERROR && status == 400, "error again");
}

static void
test_content_type(void)
{
	static const struct {
		const char	*ct;
		int		 ok;
	} t[] = {
		{ "application/json", 0 },
		{ "Application/JSON", 0 },
		{ " application/json \t", 0 },
		{ "application/json;charset=utf-8", 0 },
		{ "application/json; charset=UTF-8", 0 },
		{ "application/json ; charset=\"utf-8\"", 0 },
		{ "application/json; CHARSET=\"Utf-8\"; q=1", 0 },
		{ "application/json; foo=bar", 0 },
		{ "application/json; foo=\"a;b \\\" c\"", 0 },
		{ "application/json;", 0 },
		{ "application/json; charset=latin1", -1 },
		{ "application/json; charset=\"utf-16\"", -1 },
		{ "application/json; charset=utf-8; charset=ascii", -1 },
		{ "application/json; charset=utf-88", -1 },
		{ "application/json; charset=utf", -1 },
		{ "text/plain", -1 },
		{ "application/jsonx", -1 },
		{ "application/json-patch+json", -1 },
		{ "application/", -1 },
		{ "application", -1 },
		{ "", -1 },
		{ "application/json; foo", -1 },
		{ "application/json; foo=", -1 },
		{ "application/json; =bar", -1 },
		{ "application/json; foo=\"unterminated", -1 },
		{ "application/json; foo = bar", -1 },
		{ "application/json x", -1 },
		{ "application /json", -1 },
	};
	size_t	 i;

	TAP_OK(http_content_type_ok(NULL) == 0, "absent content type is fine");
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		TAP_OK(http_content_type_ok(t[i].ct) == t[i].ok,
		    "content type \"%s\" -> %d", t[i].ct, t[i].ok);
}

/* Accept for the page: text/html named, not with q=0, not by a wildcard. */
static void
test_accept(void)
{
	static const struct {
		const char	*accept;
		int		 html;
	} t[] = {
		{ "text/html", 1 },
		{ "TEXT/HTML", 1 },
		{ "text/html,application/xhtml+xml,application/xml;q=0.9,"
		    "image/avif,*/*;q=0.8", 1 },
		{ "application/json, text/html;q=0.5", 1 },
		{ "text/html ; level=1", 1 },
		{ "text/html;q=0.01", 1 },
		{ "text/html;q=0", 0 },
		{ "text/html; q=0.000", 0 },
		{ "*/*", 0 },
		{ "text/*", 0 },
		{ "application/json", 0 },
		{ "text/htmlx", 0 },
		{ "", 0 },
	};
	char		 buf[512];
	struct result	 res;
	size_t		 i;

	parse("GET / HTTP/1.1\r\n" H11 "\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.accept_html == 0,
	    "no Accept: not a page request");
	result_clear(&res);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n" H11
		    "Accept: %s\r\n\r\n", t[i].accept);
		parse(buf, &res);
		TAP_OK(res.r == HTTP_PARSE_DONE &&
		    res.req.accept_html == t[i].html,
		    "Accept \"%s\" -> html %d", t[i].accept, t[i].html);
		result_clear(&res);
	}
}

static int
origin_self(const char *host, const char *origins)
{
	char		 buf[512];
	struct result	 res;
	int		 r;

	snprintf(buf, sizeof(buf), "POST /todo HTTP/1.1\r\nHost: %s\r\n"
	    "%sContent-Length: 0\r\n\r\n", host, origins);
	parse(buf, &res);
	r = res.r == HTTP_PARSE_DONE ? http_origin_is_self(&res.req) : -1;
	result_clear(&res);
	return r;
}

static void
test_origin(void)
{
	struct result	 res;

	TAP_OK(origin_self("127.0.0.1:8443", "") == 1, "no Origin: allowed");
	TAP_OK(origin_self("127.0.0.1:8443",
	    "Origin: https://127.0.0.1:8443\r\n") == 1, "own origin");
	TAP_OK(origin_self("Localhost:8443",
	    "Origin: https://localhost:8443\r\n") == 1,
	    "own origin, host in another case");
	TAP_OK(origin_self("todo.example", "Origin: https://todo.example\r\n")
	    == 1, "own origin, default port");
	TAP_OK(origin_self("127.0.0.1:8443",
	    "Origin: http://127.0.0.1:8443\r\n") == 0,
	    "http is another origin");
	TAP_OK(origin_self("127.0.0.1:8443",
	    "Origin: https://127.0.0.1:8444\r\n") == 0, "another port");
	TAP_OK(origin_self("127.0.0.1:8443",
	    "Origin: https://127.0.0.1:84430\r\n") == 0, "a longer port");
	TAP_OK(origin_self("127.0.0.1:8443", "Origin: null\r\n") == 0,
	    "opaque origin");
	TAP_OK(origin_self("127.0.0.1:8443",
	    "Origin: https://127.0.0.1:8443\r\n"
	    "Origin: https://127.0.0.1:8443\r\n") == 0, "two Origin lines");
	TAP_OK(origin_self("127.0.0.1:8443", "Origin: https://\r\n") == 0,
	    "empty host");

	parse("POST /todo HTTP/1.1\r\n" H11 "Sec-Fetch-Site: cross-site\r\n"
	    "If-None-Match: W/\"a\", \"b\"\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE &&
	    res.req.fetch_site == HTTP_FS_CROSS_SITE &&
	    str_eq(res.req.host, "example.com"), "Sec-Fetch-Site cross-site");
	TAP_OK(http_etag_match(res.req.if_none_match, "\"a\"") &&
	    http_etag_match(res.req.if_none_match, "\"b\"") &&
	    !http_etag_match(res.req.if_none_match, "\"c\"") &&
	    !http_etag_match(NULL, "\"a\"") &&
	    http_etag_match("*", "\"c\""), "If-None-Match");
	result_clear(&res);
	parse("POST /todo HTTP/1.1\r\n" H11 "Sec-Fetch-Site: same-origin\r\n"
	    "Sec-Fetch-Site: same-origin\r\n\r\n", &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.fetch_site == HTTP_FS_OTHER,
	    "two Sec-Fetch-Site lines are not trusted");
	result_clear(&res);
	parse("POST /todo HTTP/1.1\r\n" H11 "Sec-Fetch-Site: None\r\n\r\n",
	    &res);
	TAP_OK(res.r == HTTP_PARSE_DONE && res.req.fetch_site == HTTP_FS_NONE,
	    "Sec-Fetch-Site none");
	result_clear(&res);
}

static void
test_names(void)
{
	static const int	 codes[] = { 100, 200, 201, 204, 304, 400, 403,
	    404, 405, 408, 411, 413, 414, 415, 417, 431, 500, 501, 503, 505 };
	size_t			 i;
	int			 ok = 1;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(http_status_text(codes[i]), "Unknown") == 0)
			ok = 0;
	TAP_OK(ok, "every status the daemon sends has a reason phrase");
	TAP_OK(strcmp(http_status_text(404), "Not Found") == 0 &&
	    strcmp(http_status_text(431),
	    "Request Header Fields Too Large") == 0, "reason phrases");
	TAP_OK(strcmp(http_status_text(299), "Unknown") == 0, "unknown status");
	TAP_OK(strcmp(http_method_name(HTTP_M_GET), "GET") == 0 &&
	    strcmp(http_method_name(HTTP_M_PATCH), "PATCH") == 0 &&
	    strcmp(http_method_name(HTTP_M_OPTIONS), "OPTIONS") == 0 &&
	    strcmp(http_method_name(HTTP_M_DELETE), "DELETE") == 0,
	    "method names");
}

int
main(void)
{
	test_good();
	test_keepalive();
	test_errors();
	test_content_length();
	test_injection();
	test_incremental();
	test_pipelined();
	test_limits();
	test_chunked();
	test_content_type();
	test_accept();
	test_origin();
	test_names();
	return tap_done();
}
