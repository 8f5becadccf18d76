/*
 * todod-bench: an incremental HTTP/1.x response parser.  It keeps only the
 * header block; body bytes are counted, never stored, so a 5 MB GET /todo
 * costs no memory.  Bodies are delimited by Content-Length, chunked coding
 * or the end of the connection.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "bench.h"

static int	resp_parse_head(struct bench_resp *, char *, size_t);
static int	resp_parse_field(const char *, size_t, int64_t *, int *,
		    int *, char *, size_t);
static void	resp_parse_connection(const char *, const char *, int *);
static int	resp_read_line(struct bench_resp *, const unsigned char *,
		    size_t, size_t *);
static int	resp_parse_chunk_size(struct bench_resp *);

void
resp_init(struct bench_resp *r)
{
	r->state = RESP_HDR;
	r->status = 0;
	r->close = 0;
	r->remain = 0;
	r->bytes = 0;
	r->hlen = 0;
	r->llen = 0;
}

/* The header block, until the blank line; returns the bytes taken. */
static ssize_t
resp_feed_head(struct bench_resp *r, const unsigned char *buf, size_t len,
    char *err, size_t errlen)
{
	size_t	 old = r->hlen, n, from, i;

	n = sizeof(r->hdr) - 1 - r->hlen;
	if (n > len)
		n = len;
	memcpy(r->hdr + r->hlen, buf, n);
	from = old > 3 ? old - 3 : 0;
	for (i = from; i + 4 <= old + n; i++) {
		if (memcmp(r->hdr + i, "\r\n\r\n", 4) == 0)
			break;
	}
	if (i + 4 > old + n) {
		r->hlen = old + n;
		if (r->hlen == sizeof(r->hdr) - 1) {
			snprintf(err, errlen, "response header over %zu bytes",
			    sizeof(r->hdr) - 1);
			return -1;
		}
		return n;
	}
	r->hlen = i + 4;
	r->hdr[r->hlen] = '\0';
	if (resp_parse_head(r, err, errlen) == -1)
		return -1;
	return r->hlen - old;
}

/*
 * Status line and the fields that frame the body.  An interim 1xx
 * response is skipped: the real one follows on the same connection.
 */
static int
resp_parse_head(struct bench_resp *r, char *err, size_t errlen)
{
	const char	*p = r->hdr, *end = r->hdr + r->hlen, *nl;
	int64_t		 clen = -1;
	int		 chunked = 0, conn = 0, http10;

	if (r->hlen < 13 || strncmp(p, "HTTP/1.", 7) != 0 ||
	    (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
	    p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9' || (p[12] != ' ' && p[12] != '\r')) {
		snprintf(err, errlen, "bad status line");
		return -1;
	}
	http10 = p[7] == '0';
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	nl = memchr(p, '\n', end - p);
	for (p = nl + 1; p < end; p = nl + 1) {
		nl = memchr(p, '\n', end - p);
		if (nl == NULL || nl == p || (nl == p + 1 && *p == '\r'))
			break;
		if (resp_parse_field(p, nl - p, &clen, &chunked, &conn, err,
		    errlen) == -1)
			return -1;
	}
	if (r->status < 200) {
		r->hlen = 0;
		return 0;
	}
	if (http10)
		r->close = conn != 2;
	else
		r->close = conn == 1;
	if (r->status == 204 || r->status == 304)
		r->state = RESP_DONE;
	else if (chunked)
		r->state = RESP_CHUNK_SIZE;
	else if (clen >= 0) {
		r->remain = clen;
		r->state = clen == 0 ? RESP_DONE : RESP_BODY_LEN;
	} else {
		r->state = RESP_BODY_EOF;
		r->close = 1;
	}
	return 0;
}

/* Connection tokens: *conn 1 for "close", 2 for "keep-alive". */
static void
resp_parse_connection(const char *v, const char *e, int *conn)
{
	const char	*t, *te;

	while (v < e) {
		for (t = v; t < e && (*t == ' ' || *t == '\t' || *t == ',');
		    t++)
			;
		for (te = t; te < e && *te != ',' && *te != ' ' &&
		    *te != '\t'; te++)
			;
		if (te - t == 5 && strncasecmp(t, "close", 5) == 0)
			*conn = 1;
		else if (te - t == 10 && *conn != 1 &&
		    strncasecmp(t, "keep-alive", 10) == 0)
			*conn = 2;
		v = te;
	}
}

static int
resp_parse_field(const char *p, size_t len, int64_t *clen, int *chunked,
    int *conn, char *err, size_t errlen)
{
	const char	*colon, *v, *e = p + len;
	int64_t		 n = 0;

	if (len > 0 && e[-1] == '\r')
		e--;
	if ((colon = memchr(p, ':', e - p)) == NULL) {
		snprintf(err, errlen, "header line without colon");
		return -1;
	}
	for (v = colon + 1; v < e && (*v == ' ' || *v == '\t'); v++)
		;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	if (colon - p == 14 && strncasecmp(p, "content-length", 14) == 0) {
		if (v == e || e - v > 15)
			goto bad_length;
		for (; v < e; v++) {
			if (*v < '0' || *v > '9')
				goto bad_length;
			n = n * 10 + (*v - '0');
		}
		if (*clen != -1 && *clen != n)
			goto bad_length;
		*clen = n;
	} else if (colon - p == 17 &&
	    strncasecmp(p, "transfer-encoding", 17) == 0) {
		if (e - v < 7 || strncasecmp(e - 7, "chunked", 7) != 0) {
			snprintf(err, errlen, "unsupported transfer coding");
			return -1;
		}
		*chunked = 1;
	} else if (colon - p == 10 && strncasecmp(p, "connection", 10) == 0) {
		resp_parse_connection(v, e, conn);
	}
	return 0;
 bad_length:
	snprintf(err, errlen, "bad Content-Length");
	return -1;
}

/* Collects one CRLF- or LF-terminated line; 1 when it is complete. */
static int
resp_read_line(struct bench_resp *r, const unsigned char *buf, size_t len,
    size_t *off)
{
	while (*off < len) {
		unsigned char	 c = buf[(*off)++];

		if (c == '\n') {
			if (r->llen > 0 && r->line[r->llen - 1] == '\r')
				r->llen--;
			r->line[r->llen] = '\0';
			r->llen = 0;
			return 1;
		}
		if (r->llen == sizeof(r->line) - 1)
			return -1;
		r->line[r->llen++] = c;
	}
	return 0;
}

static int
resp_parse_chunk_size(struct bench_resp *r)
{
	const char	*p;
	uint64_t	 n = 0;
	int		 digits = 0, d;

	for (p = r->line; *p != '\0' && *p != ';' && *p != ' ' &&
	    *p != '\t'; p++) {
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return -1;
		if (++digits > 15)
			return -1;
		n = n * 16 + d;
	}
	if (digits == 0)
		return -1;
	r->remain = n;
	r->state = n == 0 ? RESP_TRAILER : RESP_CHUNK_DATA;
	return 0;
}

ssize_t
resp_feed(struct bench_resp *r, const unsigned char *buf, size_t len,
    char *err, size_t errlen)
{
	size_t	 off = 0, n;
	ssize_t	 got;
	int	 l;

	while (off < len && r->state != RESP_DONE) {
		switch (r->state) {
		case RESP_HDR:
			if ((got = resp_feed_head(r, buf + off, len - off,
			    err, errlen)) == -1)
				return -1;
			off += got;
			break;
		case RESP_BODY_LEN:
		case RESP_CHUNK_DATA:
			n = len - off;
			if (n > r->remain)
				n = r->remain;
			off += n;
			r->remain -= n;
			if (r->remain == 0)
				r->state = r->state == RESP_BODY_LEN ?
				    RESP_DONE : RESP_CHUNK_CRLF;
			break;
		case RESP_BODY_EOF:
			off = len;
			break;
		case RESP_CHUNK_SIZE:
		case RESP_CHUNK_CRLF:
		case RESP_TRAILER:
			if ((l = resp_read_line(r, buf, len, &off)) == -1)
				goto bad_chunk;
			if (l == 0)
				break;
			if (r->state == RESP_CHUNK_SIZE) {
				if (resp_parse_chunk_size(r) == -1)
					goto bad_chunk;
			} else if (r->state == RESP_CHUNK_CRLF) {
				if (r->line[0] != '\0')
					goto bad_chunk;
				r->state = RESP_CHUNK_SIZE;
			} else if (r->line[0] == '\0')
				r->state = RESP_DONE;
			break;
		case RESP_DONE:
			break;
		}
	}
	r->bytes += off;
	return off;
 bad_chunk:
	snprintf(err, errlen, "bad chunked encoding");
	return -1;
}

/* The connection ended: complete only if the body runs to the end. */
int
resp_eof(struct bench_resp *r)
{
	if (r->state == RESP_BODY_EOF) {
		r->state = RESP_DONE;
		return 1;
	}
	return r->state == RESP_DONE;
}
