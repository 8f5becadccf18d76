/*
 * HTTP/1.x request parsing for the worker: strict, incremental, no
 * allocation beyond the request's own strings.  The worker feeds the bytes
 * of one connection; the parser says "more", "done" or "error with this
 * status".  Limits and statuses are those of todod(8), HTTP API.
 */
#ifndef TODOD_HTTP_H
#define TODOD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD		(16 * 1024)	/* request line + headers */
#define HTTP_MAX_TARGET		(8 * 1024)
#define HTTP_MAX_BODY		(64 * 1024)	/* after chunked decoding */
#define HTTP_MAX_HEADERS	100

enum http_method {
	HTTP_M_OTHER = 0,	/* a valid token we do not implement */
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_PUT,
	HTTP_M_PATCH,
	HTTP_M_DELETE,
	HTTP_M_OPTIONS
};

/* Sec-Fetch-Site (Fetch Metadata): who started the request. */
enum http_fetch_site {
	HTTP_FS_ABSENT = 0,	/* not sent: not a browser, or an old one */
	HTTP_FS_SAME_ORIGIN,
	HTTP_FS_SAME_SITE,
	HTTP_FS_CROSS_SITE,
	HTTP_FS_NONE,		/* "none": the user, not a page */
	HTTP_FS_OTHER		/* a value we do not know, or several */
};

#define HTTP_PARSE_MORE		0
#define HTTP_PARSE_DONE		1
#define HTTP_PARSE_ERROR	(-1)

struct http_request {
	enum http_method method;
	char		 method_name[24];	/* as sent, for the log */
	char		*target;	/* request-target as sent (malloc) */
	char		*path;		/* path without query (malloc) */
	int		 version;	/* 10 or 11 */
	int		 has_host;
	int64_t		 content_length;	/* -1: none */
	int		 chunked;	/* Transfer-Encoding: chunked */
	int		 expect_continue;	/* Expect: 100-continue */
	int		 keep_alive;	/* after Connection and version */
	char		*content_type;	/* NULL: absent (malloc) */
	char		*host;		/* NULL: absent (malloc) */
	char		*origin;	/* NULL: absent (malloc) */
	int		 norigin;	/* Origin field lines */
	char		*if_none_match;	/* NULL: absent (malloc) */
	enum http_fetch_site fetch_site;
	int		 accept_html;	/* Accept names text/html */
	int		 nheaders;
};

/* Parser state for one request head; reset between requests. */
struct http_parser {
	size_t		 scanned;	/* bytes already searched for CRLFCRLF */
};

void	http_parser_reset(struct http_parser *);
void	http_request_clear(struct http_request *);

/*
 * Parse the head of a request from buf (the bytes received so far,
 * starting at the request line).  Returns HTTP_PARSE_MORE when more bytes
 * are needed, HTTP_PARSE_DONE with *consumed set to the length of the
 * head (final CRLF included), or HTTP_PARSE_ERROR with *status set:
 *	400 malformed request line or header, bare CR or LF, obs-fold,
 *	    whitespace before a colon, a control byte, duplicate or invalid
 *	    Content-Length, Content-Length together with Transfer-Encoding,
 *	    HTTP/1.1 without Host, more than one Host
 *	414 request-target over HTTP_MAX_TARGET (reported as soon as the
 *	    request line is known to be too long, before the head completes)
 *	431 head over HTTP_MAX_HEAD or more than HTTP_MAX_HEADERS fields
 *	501 a Transfer-Encoding other than "chunked"
 *	505 a version other than HTTP/1.0 or HTTP/1.1
 *	417 an Expect other than 100-continue
 * On error, req holds what was understood (method, target) for the log.
 */
int	http_parse_head(struct http_parser *, const char *, size_t,
	    struct http_request *, size_t *, int *);

/* Chunked request body decoder. */
struct http_chunked {
	int		 state;
	uint64_t	 left;		/* bytes left in the current chunk */
	size_t		 linelen;	/* bytes of the current size/trailer line */
};

void	http_chunked_init(struct http_chunked *);

/*
 * Decode from in, appending data to out (at most max bytes in all, *outlen
 * holds how many are there).  Returns HTTP_PARSE_MORE, HTTP_PARSE_DONE
 * (last chunk and trailers read; *consumed says how much of in belonged to
 * the body) or HTTP_PARSE_ERROR with *status 400 (bad framing) or 413
 * (decoded body over max).  With out NULL the data is only counted: a
 * refused body read to be dropped.
 */
int	http_chunked_feed(struct http_chunked *, const char *, size_t,
	    size_t *, char *, size_t *, size_t, int *);

/*
 * Content-Type of a body: 0 when it is application/json (any case, with
 * parameters; a charset parameter other than utf-8 is refused), -1 (415)
 * otherwise.  NULL (absent) is accepted.
 */
int	http_content_type_ok(const char *);

/*
 * Is the request's Origin, if any, this server's own origin (the scheme
 * https and the Host the request was sent to)?  1 when it is, or when
 * there is no Origin; 0 for another origin, "null", or several.
 */
int	http_origin_is_self(const struct http_request *);

/* Does If-None-Match name the entity tag etag (quoted), or "*"? */
int	http_etag_match(const char *, const char *);

const char	*http_status_text(int);
const char	*http_method_name(enum http_method);

#endif
