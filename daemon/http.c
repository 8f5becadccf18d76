/*
 * HTTP/1.x request heads and chunked bodies, parsed strictly (RFC 9110,
 * RFC 9112).  Whatever a lenient parser would guess about is an error here:
 * the worker sits behind nothing, so there is no intermediary whose idea of
 * the message we could disagree with, but a smuggling-shaped request is
 * still never worth serving.
 *
 * http_parse_head() is called again with the whole buffer each time more
 * bytes arrive.  Until the head is complete it only scans the new bytes
 * (parser->scanned) for CRLFCRLF, for bytes that are never valid in a head,
 * and, in a window of about 40 bytes around the 8 KiB mark, for a request
 * line that has grown too long; the complete head is then parsed once.
 * Total work is linear in the size of the head however it is split.
 *
 * The request structure is overwritten, not freed, when a head is parsed:
 * strings from an earlier request must have been released with
 * http_request_clear().  After an error it may hold the method and target
 * (for the log) and must be cleared as well.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define HTTP_METHOD_MAX	(sizeof(((struct http_request *)0)->method_name) - 1)
#define HTTP_VERSION_LEN	8	/* "HTTP/1.1" */

/*
 * Offsets from the start of the request line.  A request line still
 * without its CR at RL_CHECK_FROM may already hold a target over the
 * limit; by RL_CHECK_TO it cannot be a valid line whatever it holds.
 */
#define RL_CHECK_FROM	(HTTP_MAX_TARGET + 1)
#define RL_CHECK_TO	(HTTP_METHOD_MAX + 1 + HTTP_MAX_TARGET + 1 + \
			    HTTP_VERSION_LEN)
#define RL_NONE		SIZE_MAX

#define CHUNK_SIZE_DIGITS	15
#define CHUNK_LINE_MAX		1024
#define CHUNK_TRAILER_MAX	(8 * 1024)

/* The request line while the head is being received. */
struct http_rl {
	int		 active;	/* its CR not seen yet */
	size_t		 sp1;		/* offset of the SP after the method */
	size_t		 sp2;		/* offset of the SP after the target */
};

/* What the field lines said, checked once they are all read. */
struct http_fields {
	int		 nhost;
	int		 ncl;
	int		 nte;
	int		 te_bad;
	int		 conn_close;
	int		 conn_keep;
	int		 expect_bad;
	int		 nct;
};

static const char *const http_method_names[] = {
	[HTTP_M_OTHER] = "OTHER",
	[HTTP_M_GET] = "GET",
	[HTTP_M_HEAD] = "HEAD",
	[HTTP_M_POST] = "POST",
	[HTTP_M_PUT] = "PUT",
	[HTTP_M_PATCH] = "PATCH",
	[HTTP_M_DELETE] = "DELETE",
	[HTTP_M_OPTIONS] = "OPTIONS"
};

static const struct {
	int		 code;
	const char	*text;
} http_statuses[] = {
	{ 100, "Continue" },
	{ 200, "OK" },
	{ 201, "Created" },
	{ 204, "No Content" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 411, "Length Required" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 417, "Expectation Failed" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 503, "Service Unavailable" },
	{ 505, "HTTP Version Not Supported" }
};

/* Character classes, in ASCII whatever the locale. */
static int
http_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
http_is_ws(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* field-vchar, SP and HTAB: what a field value (or trailer) may hold. */
static int
http_is_fieldc(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int
http_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static unsigned char
http_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* Does s[0..n) equal the lower case literal lit, ignoring case? */
static int
http_eq_nocase(const char *s, size_t n, const char *lit)
{
	size_t	 i;

	if (strlen(lit) != n)
		return 0;
	for (i = 0; i < n; i++)
		if (http_lower(s[i]) != (unsigned char)lit[i])
			return 0;
	return 1;
}

static void
http_trim_ows(const char **s, size_t *n)
{
	while (*n > 0 && http_is_ws((*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && http_is_ws((*s)[*n - 1]))
		(*n)--;
}

/*
 * The next element of a delim-separated list in *v (*n bytes), without
 * the whitespace around it: returns 0 when the list is used up.  Elements
 * may be empty.
 */
static int
http_list_next(const char **v, size_t *n, char delim, const char **elem,
    size_t *elen)
{
	const char	*e;

	if (*v == NULL)
		return 0;
	e = memchr(*v, delim, *n);
	*elem = *v;
	*elen = e != NULL ? (size_t)(e - *v) : *n;
	http_trim_ows(elem, elen);
	if (e == NULL)
		*v = NULL;	/* that was the last one */
	else {
		*n -= e + 1 - *v;
		*v = e + 1;
	}
	return 1;
}

void
http_parser_reset(struct http_parser *p)
{
	memset(p, 0, sizeof(*p));
}

void
http_request_clear(struct http_request *req)
{
	free(req->target);
	free(req->path);
	free(req->content_type);
	free(req->host);
	free(req->origin);
	free(req->if_none_match);
	memset(req, 0, sizeof(*req));
}

const char *
http_method_name(enum http_method m)
{
	if ((size_t)m >= sizeof(http_method_names) /
	    sizeof(http_method_names[0]))
		return "OTHER";
	return http_method_names[m];
}

const char *
http_status_text(int code)
{
	size_t	 i;

	for (i = 0; i < sizeof(http_statuses) / sizeof(http_statuses[0]); i++)
		if (http_statuses[i].code == code)
			return http_statuses[i].text;
	return "Unknown";
}

static enum http_method
http_method_lookup(const char *s, size_t n)
{
	size_t	 m;

	/* Method names are case-sensitive: "get" is some other method. */
	for (m = HTTP_M_GET; m < sizeof(http_method_names) /
	    sizeof(http_method_names[0]); m++)
		if (strlen(http_method_names[m]) == n &&
		    memcmp(http_method_names[m], s, n) == 0)
			return (enum http_method)m;
	return HTTP_M_OTHER;
}

/* A method that is a token and short enough: record it. */
static int
http_set_method(struct http_request *req, const char *s, size_t n)
{
	size_t	 i;

	if (n == 0)
		return 400;
	for (i = 0; i < n; i++)
		if (!http_is_tchar(s[i]))
			return 400;
	/* RFC 9112 3.1: a method longer than any we know is a 501. */
	if (n > HTTP_METHOD_MAX)
		return 501;
	memcpy(req->method_name, s, n);
	req->method_name[n] = '\0';
	req->method = http_method_lookup(s, n);
	return 0;
}

/* uri-host [ ":" port ], loosely: the characters a host may be made of. */
static int
http_host_ok(const char *s, size_t n)
{
	size_t		 i;
	unsigned char	 c;

	for (i = 0; i < n; i++) {
		c = s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9'))
			continue;
		if (strchr("-._~!$&'()*+,;=%:[]", c) == NULL || c == '\0')
			return 0;
	}
	return 1;
}

/*
 * The path of a request-target: origin-form as is, absolute-form without
 * scheme and authority, "*" for OPTIONS only.  Returns the offset and
 * length of the path in t, or -1.
 */
static int
http_target_path(enum http_method m, const char *t, size_t n,
    size_t *off, size_t *plen)
{
	size_t	 i, a, q;

	if (n == 1 && t[0] == '*') {
		if (m != HTTP_M_OPTIONS)
			return -1;
		*off = 0;
		*plen = 1;
		return 0;
	}
	if (t[0] == '/') {
		a = 0;
	} else {
		if (n > 7 && http_eq_nocase(t, 7, "http://"))
			a = 7;
		else if (n > 8 && http_eq_nocase(t, 8, "https://"))
			a = 8;
		else
			return -1;
		for (i = a; i < n && t[i] != '/' && t[i] != '?'; i++)
			;
		/* RFC 9110 4.2: no empty host, and userinfo is an error. */
		if (i == a || memchr(t + a, '@', i - a) != NULL ||
		    !http_host_ok(t + a, i - a))
			return -1;
		a = i;
	}
	for (q = a; q < n && t[q] != '?'; q++)
		;
	*off = a;
	*plen = q - a;
	return 0;
}

static char *
http_strndup(const char *s, size_t n)
{
	char	*p;

	if ((p = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static int
http_set_target(struct http_request *req, const char *t, size_t n)
{
	size_t	 off, plen;

	/* Kept even when its form is wrong: printable, and worth a log. */
	if ((req->target = http_strndup(t, n)) == NULL)
		return 500;
	if (http_target_path(req->method, t, n, &off, &plen) == -1)
		return 400;
	if (plen == 0)
		req->path = http_strndup("/", 1);
	else
		req->path = http_strndup(t + off, plen);
	if (req->path == NULL)
		return 500;
	return 0;
}

/* "HTTP/" DIGIT "." DIGIT: 10 or 11, 505 for another version, or 400. */
static int
http_parse_version(const char *s, size_t n, int *version)
{
	if (n != HTTP_VERSION_LEN || memcmp(s, "HTTP/", 5) != 0 ||
	    s[5] < '0' || s[5] > '9' || s[6] != '.' ||
	    s[7] < '0' || s[7] > '9')
		return 400;
	if (s[5] != '1' || (s[7] != '0' && s[7] != '1'))
		return 505;
	*version = s[7] == '1' ? 11 : 10;
	return 0;
}

/*
 * method SP request-target SP HTTP-version, without its CRLF.  Fills req
 * as far as it gets, so that even a refused request can be logged.
 */
static int
http_parse_reqline(struct http_request *req, const char *l, size_t n)
{
	const char	*sp1, *sp2, *t;
	size_t		 tlen, i;
	int		 st;

	if ((sp1 = memchr(l, ' ', n)) == NULL)
		return 400;
	if ((st = http_set_method(req, l, sp1 - l)) != 0)
		return st;
	t = sp1 + 1;
	sp2 = memchr(t, ' ', n - (t - l));
	tlen = (sp2 != NULL ? sp2 : l + n) - t;
	if (tlen > HTTP_MAX_TARGET)
		return 414;
	if (sp2 == NULL || tlen == 0)
		return 400;
	for (i = 0; i < tlen; i++)
		if (t[i] < 0x21 || t[i] > 0x7e || t[i] == '#')
			return 400;
	if ((st = http_parse_version(sp2 + 1, n - (sp2 + 1 - l),
	    &req->version)) != 0)
		return st;
	return http_set_target(req, t, tlen);
}

static int
http_field_content_length(struct http_request *req, struct http_fields *f,
    const char *v, size_t n)
{
	int64_t	 val = 0;
	size_t	 i;
	int	 d;

	if (++f->ncl > 1 || n == 0)
		return 400;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 400;
		d = v[i] - '0';
		/* Too big to serve either way: the router answers 413. */
		if (val > (INT64_MAX - d) / 10)
			val = INT64_MAX;
		else
			val = val * 10 + d;
	}
	req->content_length = val;
	return 0;
}

/* #token, any case; only close and keep-alive mean anything here. */
static int
http_field_connection(struct http_fields *f, const char *v, size_t n)
{
	const char	*c;
	size_t		 len, i;

	while (http_list_next(&v, &n, ',', &c, &len)) {
		for (i = 0; i < len; i++)
			if (!http_is_tchar(c[i]))
				return 400;
		if (http_eq_nocase(c, len, "close"))
			f->conn_close = 1;
		else if (http_eq_nocase(c, len, "keep-alive"))
			f->conn_keep = 1;
	}
	return 0;
}

/* The parameters of a media range: is one of them q=0 (0, 0.0, 0.000)? */
static int
http_q_zero(const char *v, size_t n)
{
	const char	*p;
	size_t		 len, i;

	while (http_list_next(&v, &n, ';', &p, &len)) {
		if (len < 3 || http_lower(p[0]) != 'q' || p[1] != '=' ||
		    p[2] != '0')
			continue;
		for (i = 3; i < len && (p[i] == '0' || p[i] == '.'); i++)
			;
		if (i == len)
			return 1;
	}
	return 0;
}

/*
 * Accept: does a media range name text/html (and not with q=0)?  A
 * wildcard does not count, so that API clients that accept anything keep
 * getting JSON.
 */
static void
http_field_accept(struct http_request *req, const char *v, size_t n)
{
	const char	*c, *semi;
	size_t		 len, tlen;

	while (http_list_next(&v, &n, ',', &c, &len)) {
		semi = memchr(c, ';', len);
		tlen = semi != NULL ? (size_t)(semi - c) : len;
		while (tlen > 0 && http_is_ws(c[tlen - 1]))
			tlen--;
		if (http_eq_nocase(c, tlen, "text/html"))
			req->accept_html = semi == NULL ||
			    !http_q_zero(semi + 1, len - (semi + 1 - c));
	}
}

static enum http_fetch_site
http_fetch_site_value(const char *v, size_t n)
{
	if (http_eq_nocase(v, n, "same-origin"))
		return HTTP_FS_SAME_ORIGIN;
	if (http_eq_nocase(v, n, "same-site"))
		return HTTP_FS_SAME_SITE;
	if (http_eq_nocase(v, n, "cross-site"))
		return HTTP_FS_CROSS_SITE;
	if (http_eq_nocase(v, n, "none"))
		return HTTP_FS_NONE;
	return HTTP_FS_OTHER;
}

/* The fields the built-in page and the cross-site check read. */
static int
http_field_browser(struct http_request *req, const char *name, size_t nlen,
    const char *v, size_t vlen)
{
	if (http_eq_nocase(name, nlen, "accept"))
		http_field_accept(req, v, vlen);
	else if (http_eq_nocase(name, nlen, "sec-fetch-site"))
		/* one value only: a second field line is not trusted */
		req->fetch_site = req->fetch_site == HTTP_FS_ABSENT ?
		    http_fetch_site_value(v, vlen) : HTTP_FS_OTHER;
	else if (http_eq_nocase(name, nlen, "origin")) {
		if (req->norigin++ == 0 &&
		    (req->origin = http_strndup(v, vlen)) == NULL)
			return 500;
	} else if (http_eq_nocase(name, nlen, "if-none-match")) {
		if (req->if_none_match == NULL &&
		    (req->if_none_match = http_strndup(v, vlen)) == NULL)
			return 500;
	}
	return 0;
}

static int
http_field(struct http_request *req, struct http_fields *f,
    const char *name, size_t nlen, const char *v, size_t vlen)
{
	if (http_eq_nocase(name, nlen, "host")) {
		if (++f->nhost > 1 || !http_host_ok(v, vlen))
			return 400;
		req->has_host = 1;
		if ((req->host = http_strndup(v, vlen)) == NULL)
			return 500;
	} else if (http_eq_nocase(name, nlen, "content-length"))
		return http_field_content_length(req, f, v, vlen);
	else if (http_eq_nocase(name, nlen, "transfer-encoding")) {
		/* A second field line makes a list: "chunked, chunked". */
		if (++f->nte > 1 || !http_eq_nocase(v, vlen, "chunked"))
			f->te_bad = 1;
	} else if (http_eq_nocase(name, nlen, "connection"))
		return http_field_connection(f, v, vlen);
	else if (http_eq_nocase(name, nlen, "expect")) {
		if (http_eq_nocase(v, vlen, "100-continue"))
			req->expect_continue = 1;
		else
			f->expect_bad = 1;
	} else if (http_eq_nocase(name, nlen, "content-type")) {
		if (++f->nct > 1)
			return 400;
		if ((req->content_type = http_strndup(v, vlen)) == NULL)
			return 500;
	} else
		return http_field_browser(req, name, nlen, v, vlen);
	return 0;
}

/* field-name ":" OWS field-value OWS, without its CRLF. */
static int
http_parse_field(struct http_request *req, struct http_fields *f,
    const char *l, size_t n)
{
	const char	*v;
	size_t		 i, nlen, vlen;

	/* Covers obs-fold and whitespace before the first field. */
	for (nlen = 0; nlen < n && http_is_tchar(l[nlen]); nlen++)
		;
	if (nlen == 0 || nlen == n || l[nlen] != ':')
		return 400;
	v = l + nlen + 1;
	vlen = n - nlen - 1;
	http_trim_ows(&v, &vlen);
	for (i = 0; i < vlen; i++)
		if (!http_is_fieldc(v[i]))
			return 400;
	if (++req->nheaders > HTTP_MAX_HEADERS)
		return 431;
	return http_field(req, f, l, nlen, v, vlen);
}

/* After the last field: what the fields mean together. */
static int
http_fields_check(struct http_request *req, struct http_fields *f)
{
	if (f->nte > 0) {
		if (req->version == 10 || f->ncl > 0)
			return 400;
		if (f->te_bad)
			return 501;
		req->chunked = 1;
	}
	if (req->version == 11 && f->nhost == 0)
		return 400;
	if (req->version == 11 && f->expect_bad)
		return 417;
	if (req->version == 10)
		req->expect_continue = 0;
	if (req->version == 11)
		req->keep_alive = !f->conn_close;
	else
		req->keep_alive = f->conn_keep && !f->conn_close;
	return 0;
}

/*
 * A complete head, buf[start..end), every CR already known to be followed
 * by LF and the last four bytes CRLFCRLF.
 */
static int
http_parse_complete(struct http_request *req, const char *buf, size_t start,
    size_t end)
{
	struct http_fields	 f;
	const char		*l, *cr;
	int			 st;

	memset(&f, 0, sizeof(f));
	l = buf + start;
	cr = memchr(l, '\r', end - start);
	if ((st = http_parse_reqline(req, l, cr - l)) != 0)
		return st;
	for (;;) {
		l = cr + 2;
		cr = memchr(l, '\r', buf + end - l);
		if (cr == l)
			break;
		if ((st = http_parse_field(req, &f, l, cr - l)) != 0)
			return st;
	}
	return http_fields_check(req, &f);
}

/* What a request refused before its head was complete said, for the log. */
static void
http_fill_partial(struct http_request *req, const char *buf, size_t start,
    size_t end)
{
	const char	*cr, *sp;
	size_t		 n = end - start;

	if ((cr = memchr(buf + start, '\r', n)) != NULL) {
		(void)http_parse_reqline(req, buf + start, cr - (buf + start));
		return;
	}
	if ((sp = memchr(buf + start, ' ', n)) != NULL)
		(void)http_set_method(req, buf + start, sp - (buf + start));
}

/*
 * One byte of a request line not yet ended, at offset k.  Past the 8 KiB
 * mark, decide whether it can still be a valid line.
 */
static int
http_rl_step(struct http_rl *rl, unsigned char c, size_t k)
{
	if (c == ' ') {
		if (rl->sp1 == RL_NONE)
			rl->sp1 = k;
		else if (rl->sp2 == RL_NONE)
			rl->sp2 = k;
	}
	if (k < RL_CHECK_FROM)
		return 0;
	if (rl->sp1 == RL_NONE || rl->sp1 > HTTP_METHOD_MAX)
		return 501;
	if (rl->sp2 == RL_NONE) {
		if (k - rl->sp1 > HTTP_MAX_TARGET)
			return 414;
	} else if (k - rl->sp2 > HTTP_VERSION_LEN)
		return 400;
	return 0;
}

/*
 * Whether the bytes from offset from on still belong to the request line
 * and need http_rl_step().  Only a call that reaches RL_CHECK_FROM while
 * the line may be open pays for looking back, and only ~40 calls can.
 */
static void
http_rl_init(struct http_rl *rl, const char *buf, size_t start, size_t from,
    size_t len)
{
	const char	*l = buf + start, *sp;
	size_t		 n = from - start;

	memset(rl, 0, sizeof(*rl));
	rl->sp1 = rl->sp2 = RL_NONE;
	if (len - start <= RL_CHECK_FROM || n > RL_CHECK_TO ||
	    memchr(l, '\r', n) != NULL)
		return;
	rl->active = 1;
	if ((sp = memchr(l, ' ', n)) == NULL)
		return;
	rl->sp1 = sp - l;
	if ((sp = memchr(sp + 1, ' ', n - rl->sp1 - 1)) != NULL)
		rl->sp2 = sp - l;
}

/*
 * Scan buf[from..lim): returns 1 with *end past the CRLFCRLF, 0 when more
 * is needed, or an error status for a byte that no head may contain.
 */
static int
http_head_scan(const char *buf, size_t start, size_t from, size_t lim,
    struct http_rl *rl, size_t *end)
{
	unsigned char	 c, prev;
	size_t		 i;
	int		 st;

	for (i = from; i < lim; i++) {
		c = buf[i];
		prev = i > 0 ? buf[i - 1] : 0;
		if (prev == '\r' && c != '\n')
			return 400;	/* bare CR */
		if (c == '\n') {
			if (prev != '\r')
				return 400;	/* bare LF */
			if (i >= start + 3 && buf[i - 2] == '\n' &&
			    buf[i - 3] == '\r') {
				*end = i + 1;
				return 1;
			}
			continue;
		}
		if (c == '\r') {
			rl->active = 0;
			continue;
		}
		if (c != '\t' && (c < 0x20 || c == 0x7f))
			return 400;
		if (rl->active && (st = http_rl_step(rl, c, i - start)) != 0)
			return st;
	}
	return 0;
}

/*
 * HTTP_MAX_HEAD bytes and no CRLFCRLF: a 431, unless the request line is
 * what is wrong (a target over the limit, most likely).
 */
static int
http_head_full(struct http_request *req, const char *buf, size_t start,
    size_t lim)
{
	const char	*l = buf + start, *cr;
	int		 st;

	if ((cr = memchr(l, '\r', lim - start)) == NULL)
		return 414;
	st = http_parse_reqline(req, l, cr - l);
	return (st != 0 && st != 500) ? st : 431;
}

static void
http_request_begin(struct http_request *req)
{
	memset(req, 0, sizeof(*req));
	req->content_length = -1;
}

int
http_parse_head(struct http_parser *p, const char *buf, size_t len,
    struct http_request *req, size_t *consumed, int *status)
{
	struct http_rl	 rl;
	size_t		 start = 0, from, lim, end = 0;
	int		 r;

	*consumed = 0;
	*status = 0;
	if (p->scanned > len)
		p->scanned = 0;	/* not the buffer we saw: start over */
	/* RFC 9112 2.2: one empty line before the request line is ignored. */
	if (len >= 1 && buf[0] == '\r') {
		if (len == 1)
			return HTTP_PARSE_MORE;
		if (buf[1] == '\n')
			start = 2;
	}
	from = p->scanned > start ? p->scanned : start;
	lim = len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD;
	if (from >= lim && lim < HTTP_MAX_HEAD)
		return HTTP_PARSE_MORE;
	http_rl_init(&rl, buf, start, from, len);
	r = http_head_scan(buf, start, from, lim, &rl, &end);
	if (r == 0 && lim < HTTP_MAX_HEAD) {
		p->scanned = lim;
		return HTTP_PARSE_MORE;
	}
	http_request_begin(req);
	if (r == 1) {
		p->scanned = end;
		if ((*status = http_parse_complete(req, buf, start, end)) != 0)
			return HTTP_PARSE_ERROR;
		*consumed = end;
		return HTTP_PARSE_DONE;
	}
	p->scanned = lim;
	if (r == 0)
		r = http_head_full(req, buf, start, lim);
	else
		http_fill_partial(req, buf, start, lim);
	*status = r;
	return HTTP_PARSE_ERROR;
}

void
http_chunked_init(struct http_chunked *ch)
{
	memset(ch, 0, sizeof(*ch));
}

enum {
	CH_SIZE = 0,		/* chunk-size digits */
	CH_SIZE_WS,		/* BWS between the size and ';' */
	CH_EXT,			/* chunk extensions, ignored */
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TR_START,		/* a trailer field line or the final CRLF */
	CH_TR_NAME,
	CH_TR_VALUE,
	CH_TR_LF,
	CH_END_LF,
	CH_DONE,
	CH_ERROR
};

/* One byte of a chunk-size line: returns 0 or an error status. */
static int
http_chunk_size_byte(struct http_chunked *ch, unsigned char c, size_t room)
{
	int	 d;

	/* The line's length is counted without its CRLF. */
	if (c != '\r' && ch->state != CH_SIZE_LF &&
	    ++ch->linelen > CHUNK_LINE_MAX)
		return 400;
	switch (ch->state) {
	case CH_SIZE:
		if ((d = http_hexval(c)) != -1) {
			/* linelen counts the digits until the first other. */
			if (ch->linelen > CHUNK_SIZE_DIGITS)
				return 400;
			ch->left = ch->left * 16 + d;
			if (ch->left > room)
				return 413;
			return 0;
		}
		if (ch->linelen == (c == '\r' ? 0 : 1))
			return 400;	/* no digits */
		if (c == ';')
			ch->state = CH_EXT;
		else if (http_is_ws(c))
			ch->state = CH_SIZE_WS;
		else if (c == '\r')
			ch->state = CH_SIZE_LF;
		else
			return 400;
		return 0;
	case CH_SIZE_WS:
		if (c == ';')
			ch->state = CH_EXT;
		else if (!http_is_ws(c))
			return 400;
		return 0;
	case CH_EXT:
		if (c == '\r')
			ch->state = CH_SIZE_LF;
		else if (!http_is_fieldc(c))
			return 400;
		return 0;
	default:		/* CH_SIZE_LF */
		if (c != '\n')
			return 400;
		ch->linelen = 0;
		ch->state = ch->left == 0 ? CH_TR_START : CH_DATA;
		return 0;
	}
}

/* One byte of the trailer section: returns 0, 1 when done, or a status. */
static int
http_chunk_trailer_byte(struct http_chunked *ch, unsigned char c)
{
	if (++ch->linelen > CHUNK_TRAILER_MAX)
		return 400;
	switch (ch->state) {
	case CH_TR_START:
		if (c == '\r')
			ch->state = CH_END_LF;
		else if (http_is_tchar(c))
			ch->state = CH_TR_NAME;
		else
			return 400;
		return 0;
	case CH_TR_NAME:
		if (c == ':')
			ch->state = CH_TR_VALUE;
		else if (!http_is_tchar(c))
			return 400;
		return 0;
	case CH_TR_VALUE:
		if (c == '\r')
			ch->state = CH_TR_LF;
		else if (!http_is_fieldc(c))
			return 400;
		return 0;
	case CH_TR_LF:
		if (c != '\n')
			return 400;
		ch->state = CH_TR_START;
		return 0;
	default:		/* CH_END_LF */
		if (c != '\n')
			return 400;
		ch->state = CH_DONE;
		return 1;
	}
}

int
http_chunked_feed(struct http_chunked *ch, const char *in, size_t len,
    size_t *consumed, char *out, size_t *outlen, size_t max, int *status)
{
	size_t		 i = 0, n;
	int		 r = 0;

	*consumed = 0;
	*status = 0;
	if (ch->state == CH_DONE)
		return HTTP_PARSE_DONE;
	if (ch->state == CH_ERROR) {
		*status = (int)ch->left;
		return HTTP_PARSE_ERROR;
	}
	if (*outlen > max) {
		r = 413;
		goto fail;
	}
	while (i < len) {
		switch (ch->state) {
		case CH_DATA:
			n = len - i;
			if (n > ch->left)
				n = ch->left;
			if (out != NULL)	/* NULL: a body being dropped */
				memcpy(out + *outlen, in + i, n);
			*outlen += n;
			ch->left -= n;
			i += n;
			if (ch->left == 0)
				ch->state = CH_DATA_CR;
			continue;
		case CH_DATA_CR:
			if (in[i] != '\r') {
				r = 400;
				goto fail;
			}
			ch->state = CH_DATA_LF;
			break;
		case CH_DATA_LF:
			if (in[i] != '\n') {
				r = 400;
				goto fail;
			}
			ch->state = CH_SIZE;
			ch->linelen = 0;
			ch->left = 0;
			break;
		case CH_SIZE:
		case CH_SIZE_WS:
		case CH_EXT:
		case CH_SIZE_LF:
			if ((r = http_chunk_size_byte(ch, in[i],
			    max - *outlen)) != 0)
				goto fail;
			break;
		default:
			if ((r = http_chunk_trailer_byte(ch, in[i])) == 1) {
				*consumed = i + 1;
				return HTTP_PARSE_DONE;
			}
			if (r != 0)
				goto fail;
			break;
		}
		i++;
	}
	*consumed = len;
	return HTTP_PARSE_MORE;
 fail:
	*consumed = i;
	*status = r;
	ch->state = CH_ERROR;
	ch->left = r;
	return HTTP_PARSE_ERROR;
}

int
http_origin_is_self(const struct http_request *req)
{
	const char	*o = req->origin;
	size_t		 i, n;

	if (req->norigin == 0)
		return 1;
	if (req->norigin > 1 || req->host == NULL)
		return 0;
	/* RFC 6454: scheme "://" host [":" port], the port only if not 443 */
	n = strlen(o);
	if (n <= 8 || !http_eq_nocase(o, 8, "https://") ||
	    n - 8 != strlen(req->host))
		return 0;
	for (i = 0; i < n - 8; i++)
		if (http_lower(o[8 + i]) != http_lower(req->host[i]))
			return 0;
	return 1;
}

int
http_etag_match(const char *inm, const char *etag)
{
	const char	*p, *e;
	size_t		 n, len = strlen(etag);

	if (inm == NULL)
		return 0;
	/* #entity-tag, weak ones compared weakly (RFC 9110 13.1.2) */
	for (p = inm; *p != '\0'; p = *e ? e + 1 : e) {
		if ((e = strchr(p, ',')) == NULL)
			e = p + strlen(p);
		n = e - p;
		http_trim_ows(&p, &n);
		if (n == 1 && *p == '*')
			return 1;
		if (n > 2 && p[0] == 'W' && p[1] == '/') {
			p += 2;
			n -= 2;
		}
		if (n == len && memcmp(p, etag, len) == 0)
			return 1;
	}
	return 0;
}

/* A parameter value: token or quoted-string; is it "utf-8"? */
static int
http_ct_value(const char **pp, const char *e, int *is_utf8)
{
	const char	*p = *pp;
	const char	*want = "utf-8";
	size_t		 n = 0;
	int		 match = 1;
	unsigned char	 c;

	if (p < e && *p == '"') {
		for (p++; p < e && *p != '"'; p++) {
			c = *p;
			if (c == '\\') {
				if (++p == e)
					return -1;
				c = *p;
			}
			if (!http_is_fieldc(c))
				return -1;
			if (n >= 5 || http_lower(c) != (unsigned char)want[n])
				match = 0;
			n++;
		}
		if (p == e)
			return -1;
		p++;
	} else {
		for (; p < e && http_is_tchar(*p); p++) {
			if (n >= 5 || http_lower(*p) != (unsigned char)want[n])
				match = 0;
			n++;
		}
		if (n == 0)
			return -1;
	}
	*is_utf8 = match && n == 5;
	*pp = p;
	return 0;
}

int
http_content_type_ok(const char *ct)
{
	const char	*p, *e, *name;
	size_t		 n, nlen;
	int		 utf8;

	if (ct == NULL)
		return 0;
	n = strlen(ct);
	p = ct;
	http_trim_ows(&p, &n);
	e = p + n;
	name = p;
	while (p < e && http_is_tchar(*p))
		p++;
	if (!http_eq_nocase(name, p - name, "application") || p == e ||
	    *p++ != '/')
		return -1;
	name = p;
	while (p < e && http_is_tchar(*p))
		p++;
	if (!http_eq_nocase(name, p - name, "json"))
		return -1;
	/* parameters = *( OWS ";" OWS [ parameter ] ) (RFC 9110 5.6.6) */
	for (;;) {
		while (p < e && http_is_ws(*p))
			p++;
		if (p == e)
			return 0;
		if (*p++ != ';')
			return -1;
		while (p < e && http_is_ws(*p))
			p++;
		if (p == e || *p == ';')
			continue;
		name = p;
		while (p < e && http_is_tchar(*p))
			p++;
		nlen = p - name;
		if (nlen == 0 || p == e || *p++ != '=')
			return -1;
		if (http_ct_value(&p, e, &utf8) == -1)
			return -1;
		if (http_eq_nocase(name, nlen, "charset") && !utf8)
			return -1;
	}
}
