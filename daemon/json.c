/*
 * JSON for the TODO API.
 *
 * Parsing: yajl checks the grammar (one value, no comments, no trailing
 * garbage) and unescapes strings; a pre-scan of the raw text first rejects
 * what yajl would quietly accept or mangle: raw NUL bytes, UTF-8 that is
 * not strictly well-formed (yajl lets overlong forms, encoded surrogates
 * and code points past U+10FFFF through), "\u0000" (yajl turns it into a
 * NUL byte) and lone surrogates (yajl turns them into '?' or CESU-8, and
 * pairs a high surrogate with any following "\uXXXX").
 *
 * The reasons json_parse_todo() gives, all static, for {"error": ...}:
 *	"body is empty"			empty or only whitespace
 *	"invalid JSON"			yajl rejected the grammar
 *	"body must be a JSON object"	top-level array or scalar
 *	"body is not valid UTF-8"	malformed, overlong, surrogate,
 *					or past U+10FFFF
 *	"body must not contain NUL bytes"
 *	"strings must not contain \u0000 or lone surrogates"
 *	"unknown member \"NAME\""	a name other than "task" and "done";
 *					NAME cut to 32 bytes, quotes, backslashes
 *					and control characters shown as '?' 
 *	"duplicate member"		a name seen twice (compared unescaped)
 *	"task must be a non-empty string"  wrong type, or ""
 *	"task is too long"		over TODO_TASK_MAX bytes unescaped
 *	"task must be valid UTF-8"	unescaped task fails the UTF-8 check
 *	"done must be a boolean"
 *	"task is required"		POST without task
 *	"nothing to update"		PATCH with neither task nor done
 *	"out of memory"			errno is ENOMEM: a 500, not a 400
 *
 * Generation is hand-written rather than yajl_gen: it must escape control
 * characters, replace bytes that are not UTF-8, leave '/' alone and append
 * straight into a struct buf without a generator handle per response.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "buf.h"
#include "json.h"

#define JSON_ERR_EMPTY		"body is empty"
#define JSON_ERR_SYNTAX		"invalid JSON"
#define JSON_ERR_NOTOBJ		"body must be a JSON object"
#define JSON_ERR_UTF8		"body is not valid UTF-8"
#define JSON_ERR_RAWNUL		"body must not contain NUL bytes"
#define JSON_ERR_ESCAPE		\
	"strings must not contain \\u0000 or lone surrogates"
#define JSON_ERR_DUP		"duplicate member"
#define JSON_ERR_TASKTYPE	"task must be a non-empty string"
#define JSON_ERR_TASKLONG	"task is too long"
#define JSON_ERR_TASKUTF8	"task must be valid UTF-8"
#define JSON_ERR_DONETYPE	"done must be a boolean"
#define JSON_ERR_NOTASK		"task is required"
#define JSON_ERR_NOTHING	"nothing to update"

/* Arrays, not literals: json_parse_todo() compares the pointers. */
static const char json_err_nomem[] = "out of memory";
#define JSON_ERR_NOMEM		json_err_nomem
static const char json_err_unknown[] = "unknown member";
#define JSON_ERR_UNKNOWN	json_err_unknown

enum json_key {
	KEY_NONE,
	KEY_TASK,
	KEY_DONE
};

struct json_ctx {
	struct todo_input	*out;
	const char		*err;
	int			 depth;		/* 1 inside the object */
	int			 complete;	/* the object has ended */
	enum json_key		 key;		/* member whose value is next */
	char			 name[JSON_NAME_SHOWN + 4];	/* unknown */
};

static size_t	json_utf8_len(const uint8_t *, size_t);
static int	json_hex4(const uint8_t *, size_t, unsigned int *);
static const char *json_scan_raw(const uint8_t *, size_t);
static int	json_fail(struct json_ctx *, const char *);
static int	json_bad_value(struct json_ctx *);
static int	json_on_null(void *);
static int	json_on_boolean(void *, int);
static int	json_on_number(void *, const char *, size_t);
static int	json_on_string(void *, const unsigned char *, size_t);
static int	json_on_start_map(void *);
static int	json_on_map_key(void *, const unsigned char *, size_t);
static void	json_name_shown(char *, size_t, const unsigned char *, size_t);
static int	json_on_end_map(void *);
static int	json_on_start_array(void *);
static int	json_on_end_array(void *);
static int	json_run_yajl(struct json_ctx *, const char *, size_t);
static int	json_add_escape(struct buf *, uint8_t);

static const yajl_callbacks json_callbacks = {
	.yajl_null = json_on_null,
	.yajl_boolean = json_on_boolean,
	/* Raw numbers: an integer callback makes big ones a syntax error. */
	.yajl_number = json_on_number,
	.yajl_string = json_on_string,
	.yajl_start_map = json_on_start_map,
	.yajl_map_key = json_on_map_key,
	.yajl_end_map = json_on_end_map,
	.yajl_start_array = json_on_start_array,
	.yajl_end_array = json_on_end_array
};

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0 if there is none.
 */
static size_t
json_utf8_len(const uint8_t *p, size_t left)
{
	uint8_t	 lo = 0x80, hi = 0xbf;
	size_t	 n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* overlong below U+0800 */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* U+D800-U+DFFF */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;	/* overlong below U+10000 */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* past U+10FFFF */
	} else
		return 0;
	if (left < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* The four hex digits at p, if there are four. */
static int
json_hex4(const uint8_t *p, size_t left, unsigned int *cp)
{
	unsigned int	 v = 0;
	size_t		 i;
	uint8_t		 c;

	if (left < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		c = p[i];
		if (c >= '0' && c <= '9')
			v = v << 4 | (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v << 4 | (c - 'A' + 10);
		else
			return -1;
	}
	*cp = v;
	return 0;
}

/*
 * Check the raw text for what yajl accepts but todod(8) forbids.  String
 * literals are tracked only to find their escapes; anything malformed
 * (a bad escape, an unterminated string) is left for yajl to reject, so
 * for valid JSON this scan sees exactly the strings yajl sees.
 */
static const char *
json_scan_raw(const uint8_t *p, size_t len)
{
	unsigned int	 cp, lo;
	size_t		 i = 0, n;
	int		 instr = 0;

	while (i < len) {
		if (p[i] == '\0')
			return JSON_ERR_RAWNUL;
		if (p[i] >= 0x80) {
			if ((n = json_utf8_len(p + i, len - i)) == 0)
				return JSON_ERR_UTF8;
			i += n;
			continue;
		}
		if (p[i] == '"') {
			instr = !instr;
			i++;
			continue;
		}
		if (!instr || p[i] != '\\' || i + 1 >= len) {
			i++;
			continue;
		}
		if (p[i + 1] != 'u' ||
		    json_hex4(p + i + 2, len - i - 2, &cp) == -1) {
			/*
			 * A short escape, or a bad one for yajl to report;
			 * a NUL or non-ASCII byte after it is still checked.
			 */
			i += p[i + 1] == '\0' || p[i + 1] >= 0x80 ? 1 : 2;
			continue;
		}
		i += 6;
		if (cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff))
			return JSON_ERR_ESCAPE;
		if (cp < 0xd800 || cp > 0xdbff)
			continue;
		if (len - i < 2 || p[i] != '\\' || p[i + 1] != 'u' ||
		    json_hex4(p + i + 2, len - i - 2, &lo) == -1 ||
		    lo < 0xdc00 || lo > 0xdfff)
			return JSON_ERR_ESCAPE;
		i += 6;
	}
	return NULL;
}

static int
json_fail(struct json_ctx *ctx, const char *err)
{
	if (ctx->err == NULL)
		ctx->err = err;
	return 0;	/* cancels the parse */
}

/* A value of the wrong type: the message names the member it belongs to. */
static int
json_bad_value(struct json_ctx *ctx)
{
	if (ctx->depth == 0)
		return json_fail(ctx, JSON_ERR_NOTOBJ);
	if (ctx->key == KEY_TASK)
		return json_fail(ctx, JSON_ERR_TASKTYPE);
	return json_fail(ctx, JSON_ERR_DONETYPE);
}

static int
json_on_null(void *arg)
{
	return json_bad_value(arg);
}

static int
json_on_number(void *arg, const char *s, size_t len)
{
	return json_bad_value(arg);
}

static int
json_on_boolean(void *arg, int val)
{
	struct json_ctx	*ctx = arg;

	if (ctx->depth == 0 || ctx->key != KEY_DONE)
		return json_bad_value(ctx);
	ctx->out->has_done = 1;
	ctx->out->done = val ? 1 : 0;
	ctx->key = KEY_NONE;
	return 1;
}

static int
json_on_string(void *arg, const unsigned char *s, size_t len)
{
	struct json_ctx		*ctx = arg;
	struct todo_input	*out = ctx->out;
	size_t			 i, n;

	if (ctx->depth == 0 || ctx->key != KEY_TASK)
		return json_bad_value(ctx);
	if (len == 0)
		return json_fail(ctx, JSON_ERR_TASKTYPE);
	if (len > TODO_TASK_MAX)
		return json_fail(ctx, JSON_ERR_TASKLONG);
	/* The scan should have caught these; yajl's decoder is lenient. */
	if (memchr(s, '\0', len) != NULL)
		return json_fail(ctx, JSON_ERR_ESCAPE);
	for (i = 0; i < len; i += n)
		if ((n = json_utf8_len(s + i, len - i)) == 0)
			return json_fail(ctx, JSON_ERR_TASKUTF8);
	if ((out->task = malloc(len + 1)) == NULL)
		return json_fail(ctx, JSON_ERR_NOMEM);
	memcpy(out->task, s, len);
	out->task[len] = '\0';
	out->tasklen = len;
	out->has_task = 1;
	ctx->key = KEY_NONE;
	return 1;
}

static int
json_on_start_map(void *arg)
{
	struct json_ctx	*ctx = arg;

	if (ctx->depth != 0 || ctx->complete)
		return json_bad_value(ctx);
	ctx->depth = 1;
	return 1;
}

/*
 * An unknown member's name for the error: whole UTF-8 characters up to
 * JSON_NAME_SHOWN bytes, "..." if cut, and '?' for what would need an
 * escape in a message or a log line.
 */
static void
json_name_shown(char *dst, size_t size, const unsigned char *s, size_t len)
{
	size_t	 i = 0, o = 0, n;

	while (i < len && o + 4 < size) {
		if ((n = json_utf8_len(s + i, len - i)) == 0)
			break;
		if (n > JSON_NAME_SHOWN - o)
			break;
		if (n == 1 && (s[i] < 0x20 || s[i] == 0x7f || s[i] == '"' ||
		    s[i] == '\\'))
			dst[o++] = '?';
		else {
			memcpy(dst + o, s + i, n);
			o += n;
		}
		i += n;
	}
	if (i < len)
		o += strlcpy(dst + o, "...", size - o);
	dst[o] = '\0';
}

static int
json_on_map_key(void *arg, const unsigned char *s, size_t len)
{
	struct json_ctx	*ctx = arg;
	int		 seen;

	if (len == 4 && memcmp(s, "task", 4) == 0) {
		ctx->key = KEY_TASK;
		seen = ctx->out->has_task;
	} else if (len == 4 && memcmp(s, "done", 4) == 0) {
		ctx->key = KEY_DONE;
		seen = ctx->out->has_done;
	} else {
		json_name_shown(ctx->name, sizeof(ctx->name), s, len);
		return json_fail(ctx, JSON_ERR_UNKNOWN);
	}
	if (seen)
		return json_fail(ctx, JSON_ERR_DUP);
	return 1;
}

static int
json_on_end_map(void *arg)
{
	struct json_ctx	*ctx = arg;

	ctx->depth = 0;
	ctx->complete = 1;
	return 1;
}

static int
json_on_start_array(void *arg)
{
	return json_bad_value(arg);
}

/* Never reached: every array is refused where it starts. */
static int
json_on_end_array(void *arg)
{
	return json_fail(arg, JSON_ERR_SYNTAX);
}

static int
json_run_yajl(struct json_ctx *ctx, const char *body, size_t len)
{
	yajl_handle	 h;
	yajl_status	 st;

	if ((h = yajl_alloc(&json_callbacks, NULL, ctx)) == NULL) {
		ctx->err = JSON_ERR_NOMEM;
		return -1;
	}
	/* The defaults, spelled out because the API depends on them. */
	yajl_config(h, yajl_allow_comments, 0);
	yajl_config(h, yajl_dont_validate_strings, 0);
	yajl_config(h, yajl_allow_trailing_garbage, 0);
	yajl_config(h, yajl_allow_multiple_values, 0);
	yajl_config(h, yajl_allow_partial_values, 0);

	st = yajl_parse(h, (const unsigned char *)body, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	yajl_free(h);
	if (st == yajl_status_ok && ctx->err == NULL && ctx->complete)
		return 0;
	if (ctx->err == NULL)
		ctx->err = st == yajl_status_ok ? JSON_ERR_NOTOBJ :
		    JSON_ERR_SYNTAX;
	return -1;
}

int
json_parse_todo(const char *body, size_t len, enum json_mode mode,
    struct todo_input *out, const char **err)
{
	struct json_ctx	 ctx;
	size_t		 i;

	memset(out, 0, sizeof(*out));
	memset(&ctx, 0, sizeof(ctx));
	ctx.out = out;

	for (i = 0; i < len; i++)
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\n' &&
		    body[i] != '\r')
			break;
	if (i == len) {
		ctx.err = JSON_ERR_EMPTY;
		goto fail;
	}
	if ((ctx.err = json_scan_raw((const uint8_t *)body, len)) != NULL)
		goto fail;
	if (json_run_yajl(&ctx, body, len) == -1)
		goto fail;
	if (mode == JSON_CREATE && !out->has_task) {
		ctx.err = JSON_ERR_NOTASK;
		goto fail;
	}
	if (mode == JSON_UPDATE && !out->has_task && !out->has_done) {
		ctx.err = JSON_ERR_NOTHING;
		goto fail;
	}
	*err = NULL;
	return 0;

 fail:
	todo_input_clear(out);
	*err = ctx.err;
	if (ctx.err == JSON_ERR_UNKNOWN) {
		snprintf(out->errbuf, sizeof(out->errbuf), "%s \"%s\"",
		    JSON_ERR_UNKNOWN, ctx.name);
		*err = out->errbuf;
	}
	errno = ctx.err == JSON_ERR_NOMEM ? ENOMEM : EINVAL;
	return -1;
}

void
todo_input_clear(struct todo_input *in)
{
	free(in->task);
	memset(in, 0, sizeof(*in));
}

static int
json_add_escape(struct buf *b, uint8_t c)
{
	static const char	 hex[] = "0123456789abcdef";
	char			 e[6] = { '\\', 'u', '0', '0' };

	switch (c) {
	case '"':
	case '\\':
		e[1] = c;
		return buf_add(b, e, 2);
	case '\b':
		return buf_add(b, "\\b", 2);
	case '\f':
		return buf_add(b, "\\f", 2);
	case '\n':
		return buf_add(b, "\\n", 2);
	case '\r':
		return buf_add(b, "\\r", 2);
	case '\t':
		return buf_add(b, "\\t", 2);
	}
	e[4] = hex[c >> 4];
	e[5] = hex[c & 0xf];
	return buf_add(b, e, 6);
}

/* A failed add leaves the buffer as it was: no half-written value. */
static int
json_rollback(struct buf *b, size_t start)
{
	b->len = start;
	if (b->data != NULL)
		b->data[b->len] = '\0';
	return -1;
}

/*
 * Runs of bytes that go out unchanged are appended in one piece, so a
 * typical task costs three buf_add calls.  On failure the buffer is put
 * back as it was, so a caller never sends half a string.
 */
int
json_add_string(struct buf *b, const char *str, size_t len)
{
	const uint8_t	*s = (const uint8_t *)str;
	size_t		 start = b->len, run = 0, i = 0, n;

	if (buf_add(b, "\"", 1) == -1)
		return -1;
	while (i < len) {
		/* RFC 8259 lets 0x7f go raw; bytes from 0x80 must be UTF-8. */
		if (s[i] >= 0x20 && s[i] < 0x80 && s[i] != '"' &&
		    s[i] != '\\') {
			i++;
			continue;
		}
		if (s[i] >= 0x80 && (n = json_utf8_len(s + i, len - i)) != 0) {
			i += n;
			continue;
		}
		if (buf_add(b, s + run, i - run) == -1)
			goto fail;
		if (s[i] < 0x80) {
			if (json_add_escape(b, s[i]) == -1)
				goto fail;
		} else if (buf_add(b, "\xef\xbf\xbd", 3) == -1)
			goto fail;	/* U+FFFD for a non-UTF-8 byte */
		run = ++i;
	}
	if (buf_add(b, s + run, i - run) == -1 || buf_add(b, "\"", 1) == -1)
		goto fail;
	return 0;

 fail:
	return json_rollback(b, start);
}

int
json_add_todo(struct buf *b, int64_t id, const char *task, size_t tasklen,
    int done)
{
	static const char	 head[] = "{\"id\":";
	char			 num[32], *p = num + sizeof(num);
	uint64_t		 v;
	size_t			 start = b->len;

	/* By hand: snprintf would be the costliest step for a short task. */
	v = id < 0 ? -(uint64_t)id : (uint64_t)id;
	do {
		*--p = '0' + v % 10;
		v /= 10;
	} while (v != 0);
	if (id < 0)
		*--p = '-';
	if (buf_add(b, head, sizeof(head) - 1) == -1 ||
	    buf_add(b, p, num + sizeof(num) - p) == -1 ||
	    buf_add(b, ",\"task\":", 8) == -1 ||
	    json_add_string(b, task, tasklen) == -1 ||
	    buf_add_str(b, done ? ",\"done\":true}" : ",\"done\":false}") == -1)
		goto fail;
	return 0;

 fail:
	return json_rollback(b, start);
}

int
json_add_error(struct buf *b, const char *msg)
{
	size_t	 start = b->len;

	if (msg == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (buf_add(b, "{\"error\":", 9) == -1 ||
	    json_add_string(b, msg, strlen(msg)) == -1 ||
	    buf_add(b, "}", 1) == -1)
		goto fail;
	return 0;

 fail:
	return json_rollback(b, start);
}
