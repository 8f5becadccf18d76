/* Unit tests for request validation and response generation (json.c). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "buf.h"
#include "json.h"
#include "tap.h"

#define E_EMPTY		"body is empty"
#define E_SYNTAX	"invalid JSON"
#define E_NOTOBJ	"body must be a JSON object"
#define E_UTF8		"body is not valid UTF-8"
#define E_RAWNUL	"body must not contain NUL bytes"
#define E_ESCAPE	"strings must not contain \\u0000 or lone surrogates"
#define E_UNKNOWN	"unknown member"
#define E_DUP		"duplicate member"
#define E_TASKTYPE	"task must be a non-empty string"
#define E_TASKLONG	"task is too long"
#define E_DONETYPE	"done must be a boolean"
#define E_NOTASK	"task is required"
#define E_NOTHING	"nothing to update"

/*
 * What yajl makes of a rendered todo object or a lone string, collected by
 * callbacks so that strings keep their length (NUL bytes included).
 */
struct parsed {
	int		 depth;
	char		 key[8];
	int		 nid, ntask, ndone, nother;
	long long	 id;
	char		 str[16384];
	size_t		 len;
	int		 done;
};

static int
p_integer(void *arg, long long v)
{
	struct parsed	*p = arg;

	if (strcmp(p->key, "id") != 0)
		return 0;
	p->id = v;
	p->nid++;
	return 1;
}

static int
p_string(void *arg, const unsigned char *s, size_t len)
{
	struct parsed	*p = arg;

	if ((p->depth == 1 && strcmp(p->key, "task") != 0) ||
	    len > sizeof(p->str))
		return 0;
	memcpy(p->str, s, len);
	p->len = len;
	p->ntask++;
	return 1;
}

static int
p_boolean(void *arg, int v)
{
	struct parsed	*p = arg;

	if (strcmp(p->key, "done") != 0)
		return 0;
	p->done = v;
	p->ndone++;
	return 1;
}

static int
p_start_map(void *arg)
{
	struct parsed	*p = arg;

	return ++p->depth == 1;
}

static int
p_map_key(void *arg, const unsigned char *s, size_t len)
{
	struct parsed	*p = arg;

	if (len >= sizeof(p->key))
		return 0;
	memcpy(p->key, s, len);
	p->key[len] = '\0';
	return 1;
}

static int
p_end_map(void *arg)
{
	struct parsed	*p = arg;

	p->depth--;
	return 1;
}

static const yajl_callbacks parsed_cb = {
	.yajl_boolean = p_boolean,
	.yajl_integer = p_integer,
	.yajl_string = p_string,
	.yajl_start_map = p_start_map,
	.yajl_map_key = p_map_key,
	.yajl_end_map = p_end_map
};

static int
reparse(const void *text, size_t len, struct parsed *p)
{
	yajl_handle	 h;
	yajl_status	 st;

	memset(p, 0, sizeof(*p));
	if ((h = yajl_alloc(&parsed_cb, NULL, p)) == NULL)
		abort();
	st = yajl_parse(h, text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	yajl_free(h);
	return st == yajl_status_ok ? 0 : -1;
}

/* Parse a C string body; 0 and the expected task (or NULL), or the error. */
static int
ok_parse(const char *body, enum json_mode mode, const char *task,
    int has_done, int done)
{
	struct todo_input	 in;
	const char		*err = "unset";
	int			 r;

	if (json_parse_todo(body, strlen(body), mode, &in, &err) == -1) {
		printf("# unexpected error: %s\n", err);
		return 0;
	}
	r = err == NULL && in.has_done == has_done && in.done == done;
	if (task == NULL)
		r = r && !in.has_task && in.task == NULL && in.tasklen == 0;
	else
		r = r && in.has_task && in.tasklen == strlen(task) &&
		    strcmp(in.task, task) == 0;
	todo_input_clear(&in);
	return r && in.task == NULL && !in.has_task;
}

static int
bad_parsen(const char *body, size_t len, enum json_mode mode,
    const char *want)
{
	struct todo_input	 in;
	const char		*err = NULL;

	memset(&in, 0xa5, sizeof(in));
	if (json_parse_todo(body, len, mode, &in, &err) == 0) {
		printf("# accepted, task \"%s\"\n", in.task ? in.task : "");
		todo_input_clear(&in);
		return 0;
	}
	if (err == NULL || strcmp(err, want) != 0) {
		printf("# error \"%s\", wanted \"%s\"\n",
		    err ? err : "(null)", want);
		return 0;
	}
	/* Left cleared: nothing to free, nothing stale. */
	return in.task == NULL && !in.has_task && in.tasklen == 0 &&
	    !in.has_done && !in.done && errno == EINVAL;
}

static int
bad_parse(const char *body, enum json_mode mode, const char *want)
{
	return bad_parsen(body, strlen(body), mode, want);
}

/* A body {"task":"<rep x n><tail>"} in buf; returns its length. */
static size_t
make_body(char *buf, size_t size, const char *rep, size_t n, const char *tail)
{
	size_t	 len = 0, rl = strlen(rep), i;

	len += snprintf(buf, size, "{\"task\":\"");
	for (i = 0; i < n && len + rl < size; i++, len += rl)
		memcpy(buf + len, rep, rl);
	len += snprintf(buf + len, size - len, "%s\"}", tail);
	if (len >= size)
		abort();
	return len;
}

static int
task_len(const char *body, size_t len, size_t want, const char *first)
{
	struct todo_input	 in;
	const char		*err;
	int			 r;

	if (json_parse_todo(body, len, JSON_CREATE, &in, &err) == -1) {
		printf("# unexpected error: %s\n", err);
		return 0;
	}
	r = in.tasklen == want && strlen(in.task) == want &&
	    memcmp(in.task, first, strlen(first)) == 0;
	todo_input_clear(&in);
	return r;
}

static void
test_valid(void)
{
	static char	 body[65536];
	size_t		 len;

	TAP_OK(ok_parse("{\"task\":\"buy milk\"}", JSON_CREATE, "buy milk",
	    0, 0), "create: task only, done defaults to false");
	TAP_OK(ok_parse("{\"task\":\"x\",\"done\":true}", JSON_CREATE, "x",
	    1, 1), "create: task and done true");
	TAP_OK(ok_parse("{\"done\":false,\"task\":\"x\"}", JSON_CREATE, "x",
	    1, 0), "create: done before task");
	TAP_OK(ok_parse(" \r\n\t{ \"task\" :\n\"a b\" , \"done\" : true }\n ",
	    JSON_CREATE, "a b", 1, 1), "create: whitespace around tokens");
	TAP_OK(ok_parse("{\"task\":\"h\xc3\xa9llo \xe2\x9c\x93 "
	    "\xf0\x9f\x98\x80\"}", JSON_CREATE,
	    "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", 0, 0),
	    "create: raw 2-, 3- and 4-byte UTF-8");
	TAP_OK(ok_parse("{\"task\":\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\f\"}",
	    JSON_CREATE, "q\"b\\s/n\nt\tr\rb\bf\f", 0, 0),
	    "create: every short escape");
	TAP_OK(ok_parse("{\"task\":\"\\u00e9\\u20AC\\u0041\\u007f\"}",
	    JSON_CREATE, "\xc3\xa9\xe2\x82\xac" "A\x7f", 0, 0),
	    "create: \\u escapes to 1-, 2- and 3-byte UTF-8");
	TAP_OK(ok_parse("{\"task\":\"\\ud83d\\ude00\"}", JSON_CREATE,
	    "\xf0\x9f\x98\x80", 0, 0), "create: surrogate pair decodes to "
	    "4 bytes");
	TAP_OK(ok_parse("{\"task\":\"<\\uDBFF\\uDFFF\\uD800\\uDC00>\"}",
	    JSON_CREATE, "<\xf4\x8f\xbf\xbf\xf0\x90\x80\x80>", 0, 0),
	    "create: highest and lowest pairs, upper-case hex");
	TAP_OK(ok_parse("{\"t\\u0061sk\":\"x\",\"\\u0064one\":true}",
	    JSON_CREATE, "x", 1, 1), "create: escaped member names");
	TAP_OK(ok_parse("{\"task\":\"del \x7f ok\"}", JSON_CREATE,
	    "del \x7f ok", 0, 0), "create: raw DEL is allowed");
	TAP_OK(ok_parse("{\"task\":\" \"}", JSON_CREATE, " ", 0, 0),
	    "create: a single space is a non-empty task");
	TAP_OK(ok_parse("{\"done\":true}", JSON_UPDATE, NULL, 1, 1),
	    "update: done only");
	TAP_OK(ok_parse("{\"done\":false}", JSON_UPDATE, NULL, 1, 0),
	    "update: done false is present, not absent");
	TAP_OK(ok_parse("{\"task\":\"new\"}", JSON_UPDATE, "new", 0, 0),
	    "update: task only");
	TAP_OK(ok_parse("{\"task\":\"new\",\"done\":true}", JSON_UPDATE,
	    "new", 1, 1), "update: task and done");

	len = make_body(body, sizeof(body), "a", TODO_TASK_MAX, "");
	TAP_OK(task_len(body, len, TODO_TASK_MAX, "aaaa"),
	    "4096 ASCII bytes accepted");
	len = make_body(body, sizeof(body), "\xf0\x9f\x98\x80",
	    TODO_TASK_MAX / 4, "");
	TAP_OK(task_len(body, len, TODO_TASK_MAX, "\xf0\x9f\x98\x80"),
	    "1024 raw 4-byte characters (4096 bytes) accepted");
	len = make_body(body, sizeof(body), "\xe2\x82\xac", 1365, "a");
	TAP_OK(task_len(body, len, TODO_TASK_MAX, "\xe2\x82\xac"),
	    "1365 3-byte characters and one ASCII (4096 bytes) accepted");
	len = make_body(body, sizeof(body), "\\u00e9", TODO_TASK_MAX / 2, "");
	TAP_OK(task_len(body, len, TODO_TASK_MAX, "\xc3\xa9"),
	    "2048 escaped 2-byte characters (4096 bytes) accepted");
	len = make_body(body, sizeof(body), "\\ud83d\\ude00",
	    TODO_TASK_MAX / 4, "");
	TAP_OK(task_len(body, len, TODO_TASK_MAX, "\xf0\x9f\x98\x80"),
	    "1024 escaped pairs: 12 KiB of text, 4096 bytes unescaped");

	memcpy(body, "{\"task\":\"a\"}garbage", 19);
	TAP_OK(task_len(body, 12, 1, "a"),
	    "only len bytes are read (no trailing garbage seen)");
}

static void
test_limits(void)
{
	static char	 body[65536];
	size_t		 len;

	len = make_body(body, sizeof(body), "a", TODO_TASK_MAX + 1, "");
	TAP_OK(bad_parsen(body, len, JSON_CREATE, E_TASKLONG),
	    "4097 ASCII bytes: too long");
	len = make_body(body, sizeof(body), "\xf0\x9f\x98\x80",
	    TODO_TASK_MAX / 4, "a");
	TAP_OK(bad_parsen(body, len, JSON_UPDATE, E_TASKLONG),
	    "4096 bytes of 4-byte characters plus one: too long");
	len = make_body(body, sizeof(body), "\\u00e9", TODO_TASK_MAX / 2 + 1,
	    "");
	TAP_OK(bad_parsen(body, len, JSON_CREATE, E_TASKLONG),
	    "2049 escaped 2-byte characters (4098 bytes): too long");
	TAP_OK(bad_parse("{\"task\":\"\"}", JSON_CREATE, E_TASKTYPE),
	    "empty task");
	TAP_OK(bad_parse("{\"task\":\"\",\"done\":true}", JSON_UPDATE,
	    E_TASKTYPE), "empty task in an update");
}

static void
test_escapes(void)
{
	TAP_OK(bad_parse("{\"task\":\"\\u0000\"}", JSON_CREATE, E_ESCAPE),
	    "\\u0000 alone");
	TAP_OK(bad_parse("{\"task\":\"a\\u0000b\"}", JSON_CREATE, E_ESCAPE),
	    "\\u0000 inside a task");
	TAP_OK(bad_parse("{\"task\":\"a\",\"x\\u0000\":1}", JSON_CREATE,
	    E_ESCAPE), "\\u0000 in a member name");
	TAP_OK(bad_parse("{\"task\":\"\\ud800\"}", JSON_CREATE, E_ESCAPE),
	    "lone high surrogate at the end of the string");
	TAP_OK(bad_parse("{\"task\":\"a\\ud83dx\"}", JSON_CREATE, E_ESCAPE),
	    "high surrogate followed by a plain character");
	TAP_OK(bad_parse("{\"task\":\"\\ud800\\u0041\"}", JSON_CREATE,
	    E_ESCAPE), "high surrogate followed by a non-surrogate escape");
	TAP_OK(bad_parse("{\"task\":\"\\ud800\\ud800\"}", JSON_CREATE,
	    E_ESCAPE), "high surrogate followed by a high surrogate");
	TAP_OK(bad_parse("{\"task\":\"\\ud800\\n\"}", JSON_CREATE, E_ESCAPE),
	    "high surrogate followed by a short escape");
	TAP_OK(bad_parse("{\"task\":\"\\udc00\"}", JSON_CREATE, E_ESCAPE),
	    "lone low surrogate");
	TAP_OK(bad_parse("{\"task\":\"\\ude00\\ud83d\"}", JSON_CREATE,
	    E_ESCAPE), "pair in the wrong order");
	TAP_OK(bad_parse("{\"task\":\"\\uDFFF\"}", JSON_UPDATE, E_ESCAPE),
	    "lone low surrogate, upper-case, in an update");
	TAP_OK(bad_parse("{\"task\":\"\\ud800", JSON_CREATE, E_ESCAPE),
	    "high surrogate where the body ends");
	TAP_OK(ok_parse("{\"task\":\"\\\\ud800\"}", JSON_CREATE, "\\ud800",
	    0, 0), "escaped backslash before u is not an escape");
	TAP_OK(bad_parse("{\"task\":\"\\u12\"}", JSON_CREATE, E_SYNTAX),
	    "short \\u escape is a syntax error");
	TAP_OK(bad_parse("{\"task\":\"\\x41\"}", JSON_CREATE, E_SYNTAX),
	    "unknown escape is a syntax error");
}

static void
test_bytes(void)
{
	TAP_OK(bad_parsen("{\"task\":\"a\0b\"}", 14, JSON_CREATE, E_RAWNUL),
	    "raw NUL inside a string");
	TAP_OK(bad_parsen("{\"task\":\"ab\"}\0", 14, JSON_CREATE, E_RAWNUL),
	    "raw NUL after the object");
	TAP_OK(bad_parsen("\0{\"task\":\"ab\"}", 14, JSON_CREATE, E_RAWNUL),
	    "raw NUL before the object");
	TAP_OK(bad_parsen("{\"task\":\"\\\0\"}", 13, JSON_CREATE, E_RAWNUL),
	    "raw NUL after a backslash");
	TAP_OK(bad_parse("{\"task\":\"\xff\"}", JSON_CREATE, E_UTF8),
	    "byte 0xff");
	TAP_OK(bad_parse("{\"task\":\"a\x80z\"}", JSON_CREATE, E_UTF8),
	    "lone continuation byte");
	TAP_OK(bad_parse("{\"task\":\"\xe2\x82\"}", JSON_CREATE, E_UTF8),
	    "truncated 3-byte sequence");
	TAP_OK(bad_parse("{\"task\":\"\xc3\"}", JSON_CREATE, E_UTF8),
	    "lead byte before the closing quote");
	TAP_OK(bad_parse("{\"task\":\"\xc0\xaf\"}", JSON_CREATE, E_UTF8),
	    "overlong 2-byte '/'");
	TAP_OK(bad_parse("{\"task\":\"\xc1\xbf\"}", JSON_CREATE, E_UTF8),
	    "overlong 2-byte U+007F");
	TAP_OK(bad_parse("{\"task\":\"\xe0\x80\xaf\"}", JSON_CREATE, E_UTF8),
	    "overlong 3-byte '/'");
	TAP_OK(bad_parse("{\"task\":\"\xe0\x9f\xbf\"}", JSON_CREATE, E_UTF8),
	    "overlong 3-byte U+07FF");
	TAP_OK(bad_parse("{\"task\":\"\xf0\x80\x80\xaf\"}", JSON_CREATE,
	    E_UTF8), "overlong 4-byte '/'");
	TAP_OK(bad_parse("{\"task\":\"\xf0\x8f\xbf\xbf\"}", JSON_CREATE,
	    E_UTF8), "overlong 4-byte U+FFFF");
	TAP_OK(bad_parse("{\"task\":\"\xed\xa0\x80\"}", JSON_CREATE, E_UTF8),
	    "UTF-8-encoded high surrogate");
	TAP_OK(bad_parse("{\"task\":\"\xed\xbf\xbf\"}", JSON_CREATE, E_UTF8),
	    "UTF-8-encoded low surrogate");
	TAP_OK(bad_parse("{\"task\":\"\xf4\x90\x80\x80\"}", JSON_CREATE,
	    E_UTF8), "U+110000");
	TAP_OK(bad_parse("{\"task\":\"\xf5\x80\x80\x80\"}", JSON_CREATE,
	    E_UTF8), "lead byte 0xf5");
	TAP_OK(bad_parse("{\"x\xff\":1}", JSON_CREATE, E_UTF8),
	    "invalid UTF-8 in a member name");
	TAP_OK(ok_parse("{\"task\":\"\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf"
	    "\"}", JSON_CREATE, "\xed\x9f\xbf\xee\x80\x80\xf4\x8f\xbf\xbf",
	    0, 0), "U+D7FF, U+E000 and U+10FFFF raw are fine");
	TAP_OK(bad_parse("{\"task\":\"a\x01z\"}", JSON_CREATE, E_SYNTAX),
	    "raw control character in a string");
	TAP_OK(bad_parse("\xef\xbb\xbf{\"task\":\"a\"}", JSON_CREATE,
	    E_SYNTAX), "byte order mark");
}

static void
test_structure(void)
{
	TAP_OK(bad_parse("", JSON_CREATE, E_EMPTY), "empty body");
	TAP_OK(bad_parse(" \r\n\t ", JSON_UPDATE, E_EMPTY),
	    "whitespace-only body");
	TAP_OK(bad_parse("{\"task\":\"a\"}x", JSON_CREATE, E_SYNTAX),
	    "trailing garbage");
	TAP_OK(bad_parse("{\"task\":\"a\"},", JSON_CREATE, E_SYNTAX),
	    "trailing comma after the object");
	TAP_OK(bad_parse("{\"task\":\"a\"}{\"task\":\"b\"}", JSON_CREATE,
	    E_SYNTAX), "two objects");
	TAP_OK(bad_parse("{\"task\":\"a\"}\n{\"task\":\"b\"}\n", JSON_CREATE,
	    E_SYNTAX), "two objects on two lines");
	TAP_OK(bad_parse("{\"task\":\"a\"} 1", JSON_CREATE, E_SYNTAX),
	    "object then a number");
	TAP_OK(bad_parse("[]", JSON_CREATE, E_NOTOBJ), "empty array");
	TAP_OK(bad_parse("[{\"task\":\"a\"}]", JSON_CREATE, E_NOTOBJ),
	    "object inside an array");
	TAP_OK(bad_parse("\"task\"", JSON_CREATE, E_NOTOBJ), "bare string");
	TAP_OK(bad_parse("5", JSON_CREATE, E_NOTOBJ), "bare number");
	TAP_OK(bad_parse("true", JSON_UPDATE, E_NOTOBJ), "bare boolean");
	TAP_OK(bad_parse("null", JSON_CREATE, E_NOTOBJ), "bare null");
	TAP_OK(bad_parse("{\"task\":{\"a\":1}}", JSON_CREATE, E_TASKTYPE),
	    "nested object as task");
	TAP_OK(bad_parse("{\"task\":[\"a\"]}", JSON_CREATE, E_TASKTYPE),
	    "array as task");
	TAP_OK(bad_parse("{\"task\":\"a\",\"done\":{}}", JSON_CREATE,
	    E_DONETYPE), "nested object as done");
	TAP_OK(bad_parse("{\"done\":[true]}", JSON_UPDATE, E_DONETYPE),
	    "array as done");
	TAP_OK(bad_parse("{\"task\":\"a\"", JSON_CREATE, E_SYNTAX),
	    "unterminated object");
	TAP_OK(bad_parse("{\"task\":\"a", JSON_CREATE, E_SYNTAX),
	    "unterminated string");
	TAP_OK(bad_parse("{\"task\":\"a\",}", JSON_CREATE, E_SYNTAX),
	    "trailing comma inside the object");
	TAP_OK(bad_parse("{task:\"a\"}", JSON_CREATE, E_SYNTAX),
	    "unquoted member name");
	TAP_OK(bad_parse("{\"task\":'a'}", JSON_CREATE, E_SYNTAX),
	    "single quotes");
	TAP_OK(bad_parse("{\"task\":\"a\"}/* c */", JSON_CREATE, E_SYNTAX),
	    "block comment");
	TAP_OK(bad_parse("// c\n{\"task\":\"a\"}", JSON_CREATE, E_SYNTAX),
	    "line comment");
}

static void
test_members(void)
{
	TAP_OK(bad_parse("{\"task\":\"a\",\"task\":\"b\"}", JSON_CREATE,
	    E_DUP), "duplicate task");
	TAP_OK(bad_parse("{\"task\":\"a\",\"t\\u0061sk\":\"b\"}", JSON_CREATE,
	    E_DUP), "duplicate task through an escaped name");
	TAP_OK(bad_parse("{\"done\":true,\"done\":false}", JSON_UPDATE,
	    E_DUP), "duplicate done");
	TAP_OK(bad_parse("{\"task\":\"a\",\"x\":1}", JSON_CREATE,
	    E_UNKNOWN " \"x\""),
	    "unknown member after a valid task (nothing leaks)");
	TAP_OK(bad_parse("{\"Task\":\"a\"}", JSON_CREATE,
	    E_UNKNOWN " \"Task\""),
	    "member names are case-sensitive");
	TAP_OK(bad_parse("{\"task \":\"a\"}", JSON_CREATE,
	    E_UNKNOWN " \"task \""),
	    "member name with a trailing space");
	TAP_OK(bad_parse("{\"\":1}", JSON_UPDATE, E_UNKNOWN " \"\""),
	    "empty member name");
	TAP_OK(bad_parse("{\"id\":1,\"task\":\"a\"}", JSON_CREATE,
	    E_UNKNOWN " \"id\""),
	    "id is not accepted in a body");
	TAP_OK(bad_parse("{\"a\\\"b\\n\u00e9\":1}", JSON_UPDATE,
	    E_UNKNOWN " \"a?b?\u00e9\""), "quote, control character shown as ?"
	    ", UTF-8 kept");
	TAP_OK(bad_parse("{\"" "0123456789012345678901234567890123456789"
	    "\":1}", JSON_UPDATE, E_UNKNOWN
	    " \"01234567890123456789012345678901...\""),
	    "a long name is cut to 32 bytes");
	TAP_OK(bad_parse("{\"" "0123456789012345678901234567890\u00e9"
	    "\":1}", JSON_UPDATE, E_UNKNOWN
	    " \"0123456789012345678901234567890...\""),
	    "the cut never splits a UTF-8 character");
	TAP_OK(bad_parse("{\"task\":5}", JSON_CREATE, E_TASKTYPE),
	    "task: number");
	TAP_OK(bad_parse("{\"task\":null}", JSON_CREATE, E_TASKTYPE),
	    "task: null");
	TAP_OK(bad_parse("{\"task\":true}", JSON_UPDATE, E_TASKTYPE),
	    "task: boolean");
	TAP_OK(bad_parse("{\"task\":\"a\",\"done\":\"yes\"}", JSON_CREATE,
	    E_DONETYPE), "done: string");
	TAP_OK(bad_parse("{\"done\":1}", JSON_UPDATE, E_DONETYPE),
	    "done: 1");
	TAP_OK(bad_parse("{\"done\":0}", JSON_UPDATE, E_DONETYPE),
	    "done: 0");
	TAP_OK(bad_parse("{\"done\":null}", JSON_UPDATE, E_DONETYPE),
	    "done: null");
	TAP_OK(bad_parse("{\"done\":99999999999999999999999}", JSON_UPDATE,
	    E_DONETYPE), "done: a number too big for an integer");
	TAP_OK(bad_parse("{\"done\":1e999}", JSON_UPDATE, E_DONETYPE),
	    "done: a number too big for a double");
	TAP_OK(bad_parse("{}", JSON_CREATE, E_NOTASK), "create: {}");
	TAP_OK(bad_parse("{\"done\":true}", JSON_CREATE, E_NOTASK),
	    "create: done without task");
	TAP_OK(bad_parse("{}", JSON_UPDATE, E_NOTHING), "update: {}");
	TAP_OK(bad_parse(" { } ", JSON_UPDATE, E_NOTHING),
	    "update: {} with spaces");
}

/* Render s as a JSON string and compare with want (quotes included). */
static int
render_is(const char *s, size_t len, const char *want)
{
	struct buf	 b;
	int		 r;

	buf_init(&b, 0);
	r = json_add_string(&b, s, len) == 0 && b.len == strlen(want) &&
	    memcmp(b.data, want, b.len) == 0 && b.data[b.len] == '\0';
	if (!r)
		printf("# got %.*s, wanted %s\n", (int)b.len,
		    b.data ? (char *)b.data : "", want);
	buf_free(&b);
	return r;
}

/* What a byte of ASCII should become, written out independently. */
static void
expect_ascii(int c, char *out, size_t size)
{
	const char	*shortesc = NULL;

	switch (c) {
	case '"':	shortesc = "\\\""; break;
	case '\\':	shortesc = "\\\\"; break;
	case '\b':	shortesc = "\\b"; break;
	case '\f':	shortesc = "\\f"; break;
	case '\n':	shortesc = "\\n"; break;
	case '\r':	shortesc = "\\r"; break;
	case '\t':	shortesc = "\\t"; break;
	}
	if (shortesc != NULL)
		snprintf(out, size, "\"%s\"", shortesc);
	else if (c < 0x20)
		snprintf(out, size, "\"\\u%04x\"", c);
	else
		snprintf(out, size, "\"%c\"", c);
}

/* Render, re-parse with yajl as a lone string, compare with want. */
static int
roundtrip_is(const char *s, size_t len, const char *want, size_t wantlen)
{
	static struct parsed	 p;
	struct buf		 b;
	int			 r;

	buf_init(&b, 0);
	r = json_add_string(&b, s, len) == 0 &&
	    reparse(b.data, b.len, &p) == 0 && p.ntask == 1 &&
	    p.len == wantlen && memcmp(p.str, want, wantlen) == 0;
	buf_free(&b);
	return r;
}

static void
test_render_string(void)
{
	char	 want[16], c;
	int	 i, all = 1, rt = 1;

	TAP_OK(render_is("", 0, "\"\""), "empty string");
	TAP_OK(render_is("buy milk", 8, "\"buy milk\""), "plain ASCII");
	TAP_OK(render_is("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\""),
	    "quote and backslash escaped, solidus not");
	TAP_OK(render_is("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\""),
	    "short escapes");
	TAP_OK(render_is("\x01\x1f\x0b", 3, "\"\\u0001\\u001f\\u000b\""),
	    "other control characters as \\u00XX");
	TAP_OK(render_is("a\0b", 3, "\"a\\u0000b\""), "NUL byte");
	TAP_OK(render_is("\x7f", 1, "\"\x7f\""), "DEL stays raw");
	for (i = 0; i < 0x80; i++) {
		c = (char)i;
		expect_ascii(i, want, sizeof(want));
		if (!render_is(&c, 1, want))
			all = 0;
		if (!roundtrip_is(&c, 1, &c, 1))
			rt = 0;
	}
	TAP_OK(all, "escaping table for all 128 ASCII bytes");
	TAP_OK(rt, "all 128 ASCII bytes round-trip through yajl");
	TAP_OK(render_is("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 12,
	    "\"h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""),
	    "valid UTF-8 is copied unchanged");
	TAP_OK(render_is("\xff", 1, "\"\xef\xbf\xbd\""), "0xff -> U+FFFD");
	TAP_OK(render_is("a\x80z", 3, "\"a\xef\xbf\xbdz\""),
	    "lone continuation -> U+FFFD");
	TAP_OK(render_is("\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""),
	    "truncated sequence: one U+FFFD per byte");
	TAP_OK(render_is("\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""),
	    "overlong -> U+FFFD per byte");
	TAP_OK(render_is("\xed\xa0\x80", 3,
	    "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""),
	    "encoded surrogate -> U+FFFD per byte");
	TAP_OK(render_is("\xe2\x82\xac\xe2\"", 5,
	    "\"\xe2\x82\xac\xef\xbf\xbd\\\"\""),
	    "valid, truncated, then an escaped quote");
	TAP_OK(render_is("CN=\xe9t\xe9", 6,
	    "\"CN=\xef\xbf\xbdt\xef\xbf\xbd\""),
	    "Latin-1 certificate name becomes valid UTF-8");
	for (i = 0x80; i < 0x100; i++) {
		c = (char)i;
		if (!roundtrip_is(&c, 1, "\xef\xbf\xbd", 3))
			rt = 0;
	}
	TAP_OK(rt, "every byte from 0x80 alone re-parses as U+FFFD");
}

/* parse(render(x)) == x through the request parser itself. */
static int
parse_render(const char *s, size_t len)
{
	struct todo_input	 in;
	struct buf		 b;
	const char		*err;
	int			 r;

	buf_init(&b, 0);
	if (buf_add_str(&b, "{\"task\":") == -1 ||
	    json_add_string(&b, s, len) == -1 || buf_add_str(&b, "}") == -1)
		abort();
	r = json_parse_todo((char *)b.data, b.len, JSON_CREATE, &in, &err);
	if (r == -1)
		printf("# %s: %s\n", b.data, err);
	r = r == 0 && in.tasklen == len && memcmp(in.task, s, len) == 0;
	todo_input_clear(&in);
	buf_free(&b);
	return r;
}

static void
test_render_todo(void)
{
	static struct parsed	 p;
	static char		 big[TODO_TASK_MAX + 1];
	struct buf		 b;
	char			 ctl[32];
	int			 i;

	buf_init(&b, 0);
	TAP_OK(json_add_todo(&b, 1, "buy milk", 8, 0) == 0 &&
	    strcmp((char *)b.data,
	    "{\"id\":1,\"task\":\"buy milk\",\"done\":false}") == 0,
	    "todo object, exact bytes");
	buf_reset(&b);
	TAP_OK(json_add_todo(&b, INT64_MAX, "a\"b", 3, 1) == 0 &&
	    strcmp((char *)b.data, "{\"id\":9223372036854775807,"
	    "\"task\":\"a\\\"b\",\"done\":true}") == 0,
	    "largest id, escaped task, done true");
	buf_reset(&b);
	TAP_OK(json_add_todo(&b, 0, "x", 1, 7) == 0 &&
	    strcmp((char *)b.data, "{\"id\":0,\"task\":\"x\",\"done\":true}")
	    == 0, "id 0, any non-zero done is true");
	buf_reset(&b);
	TAP_OK(json_add_todo(&b, INT64_MIN, "x", 1, 0) == 0 &&
	    strcmp((char *)b.data, "{\"id\":-9223372036854775808,"
	    "\"task\":\"x\",\"done\":false}") == 0,
	    "smallest id does not overflow");
	buf_reset(&b);
	TAP_OK(json_add_todo(&b, 42, "t\xc3\xa9\xff\n", 5, 1) == 0 &&
	    reparse(b.data, b.len, &p) == 0 && p.nid == 1 && p.id == 42 &&
	    p.ntask == 1 && p.len == 7 &&
	    memcmp(p.str, "t\xc3\xa9\xef\xbf\xbd\n", 7) == 0 &&
	    p.ndone == 1 && p.done == 1,
	    "todo object re-parses with yajl to the same fields");

	buf_reset(&b);
	buf_add_str(&b, "[");
	TAP_OK(json_add_todo(&b, 1, "a", 1, 0) == 0 && buf_add_str(&b, ",")
	    == 0 && json_add_todo(&b, 2, "b", 1, 1) == 0 &&
	    strcmp((char *)b.data, "[{\"id\":1,\"task\":\"a\",\"done\":false},"
	    "{\"id\":2,\"task\":\"b\",\"done\":true}") == 0,
	    "appends after what the buffer holds");
	buf_free(&b);

	buf_init(&b, 20);
	buf_add_str(&b, "[");
	TAP_OK(json_add_todo(&b, 1, "a long task", 11, 0) == -1 &&
	    b.len == 1 && strcmp((char *)b.data, "[") == 0,
	    "failure past the buffer's limit leaves it as it was");
	TAP_OK(json_add_string(&b, "0123456789012345678", 19) == -1 &&
	    b.len == 1 && strcmp((char *)b.data, "[") == 0,
	    "json_add_string failure rolls back too");
	buf_free(&b);

	buf_init(&b, 0);
	TAP_OK(json_add_error(&b, "task is too long") == 0 &&
	    strcmp((char *)b.data, "{\"error\":\"task is too long\"}") == 0,
	    "error object, exact bytes");
	buf_reset(&b);
	TAP_OK(json_add_error(&b, E_ESCAPE) == 0 &&
	    strcmp((char *)b.data, "{\"error\":\"strings must not contain "
	    "\\\\u0000 or lone surrogates\"}") == 0,
	    "error message with a backslash is escaped");
	buf_free(&b);

	TAP_OK(parse_render("buy milk", 8), "parse(render(x)) == x: ASCII");
	TAP_OK(parse_render("q\"b\\s/\x7f", 7),
	    "parse(render(x)) == x: quote, backslash, solidus, DEL");
	for (i = 1; i < 32; i++)
		ctl[i - 1] = (char)i;
	TAP_OK(parse_render(ctl, 31),
	    "parse(render(x)) == x: every control character but NUL");
	TAP_OK(parse_render("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
	    "\xf4\x8f\xbf\xbf", 17), "parse(render(x)) == x: UTF-8");
	memset(big, '\n', TODO_TASK_MAX);
	TAP_OK(parse_render(big, TODO_TASK_MAX),
	    "parse(render(x)) == x: 4096 newlines (8 KiB escaped)");
}

int
main(void)
{
	test_valid();
	test_limits();
	test_escapes();
	test_bytes();
	test_structure();
	test_members();
	test_render_string();
	test_render_todo();
	return tap_done();
}
