/*
 * libFuzzer target for json.c.  Any body: json_parse_todo() in both modes
 * must not crash, and what it accepts must obey the API (valid UTF-8, no
 * NUL, at most TODO_TASK_MAX bytes) and survive render-then-parse
 * unchanged.  Any bytes: json_add_string() must produce one JSON string
 * that yajl reads back as the input with non-UTF-8 bytes as U+FFFD.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "buf.h"
#include "json.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct seen {
	int		 depth, nid, nstr, ndone, nother;
	char		 key[8];
	long long	 id;
	struct buf	 str;
	int		 done;
};

/*
 * Reference decoder, written differently from json.c on purpose: decode
 * the code point, then reject overlong forms, surrogates and > U+10FFFF.
 */
static size_t
ref_utf8_len(const uint8_t *p, size_t left)
{
	static const uint32_t	 min[] = { 0, 0, 0x80, 0x800, 0x10000 };
	uint32_t		 cp;
	size_t			 n, i;

	if (p[0] < 0x80)
		return 1;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static int
ref_valid(const uint8_t *p, size_t len)
{
	size_t	 i, n;

	for (i = 0; i < len; i += n)
		if ((n = ref_utf8_len(p + i, len - i)) == 0)
			return 0;
	return 1;
}

/* The input with every byte that starts no valid sequence as U+FFFD. */
static void
ref_replace(const uint8_t *p, size_t len, struct buf *out)
{
	size_t	 i, n;

	for (i = 0; i < len; i += n) {
		if ((n = ref_utf8_len(p + i, len - i)) != 0) {
			if (buf_add(out, p + i, n) == -1)
				abort();
		} else {
			n = 1;
			if (buf_add(out, "\xef\xbf\xbd", 3) == -1)
				abort();
		}
	}
}

static int
cb_null(void *arg)
{
	((struct seen *)arg)->nother++;
	return 1;
}

static int
cb_boolean(void *arg, int v)
{
	struct seen	*s = arg;

	if (s->depth != 1 || strcmp(s->key, "done") != 0)
		s->nother++;
	s->done = v;
	s->ndone++;
	return 1;
}

static int
cb_integer(void *arg, long long v)
{
	struct seen	*s = arg;

	if (s->depth != 1 || strcmp(s->key, "id") != 0)
		s->nother++;
	s->id = v;
	s->nid++;
	return 1;
}

static int
cb_double(void *arg, double v)
{
	((struct seen *)arg)->nother++;
	return 1;
}

static int
cb_string(void *arg, const unsigned char *p, size_t len)
{
	struct seen	*s = arg;

	if (s->depth == 1 && strcmp(s->key, "task") != 0)
		s->nother++;
	buf_reset(&s->str);
	if (buf_add(&s->str, p, len) == -1)
		abort();
	s->nstr++;
	return 1;
}

static int
cb_start_map(void *arg)
{
	struct seen	*s = arg;

	if (++s->depth != 1)
		s->nother++;
	return 1;
}

static int
cb_map_key(void *arg, const unsigned char *p, size_t len)
{
	struct seen	*s = arg;

	if (len >= sizeof(s->key)) {
		s->nother++;
		len = 0;
	}
	memcpy(s->key, p, len);
	s->key[len] = '\0';
	return 1;
}

static int
cb_end_map(void *arg)
{
	((struct seen *)arg)->depth--;
	return 1;
}

static int
cb_array(void *arg)
{
	((struct seen *)arg)->nother++;
	return 1;
}

static const yajl_callbacks seen_cb = {
	.yajl_null = cb_null,
	.yajl_boolean = cb_boolean,
	.yajl_integer = cb_integer,
	.yajl_double = cb_double,
	.yajl_string = cb_string,
	.yajl_start_map = cb_start_map,
	.yajl_map_key = cb_map_key,
	.yajl_end_map = cb_end_map,
	.yajl_start_array = cb_array,
	.yajl_end_array = cb_array
};

static void
yajl_read(const struct buf *text, struct seen *s)
{
	yajl_handle	 h;
	yajl_status	 st;

	memset(s, 0, offsetof(struct seen, str));
	buf_reset(&s->str);
	if ((h = yajl_alloc(&seen_cb, NULL, s)) == NULL)
		abort();
	st = yajl_parse(h, text->data, text->len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	yajl_free(h);
	if (st != yajl_status_ok || s->nother != 0 || s->depth != 0)
		abort();
}

static void
check_accepted(const struct todo_input *in, enum json_mode mode,
    struct buf *b, struct seen *s)
{
	struct todo_input	 again;
	const char		*err;

	if (in->done != 0 && in->done != 1)
		abort();
	if (!in->has_done && in->done)
		abort();
	if (!in->has_task) {
		if (mode != JSON_UPDATE || !in->has_done || in->task != NULL ||
		    in->tasklen != 0)
			abort();
		return;
	}
	if (in->tasklen == 0 || in->tasklen > TODO_TASK_MAX ||
	    in->task[in->tasklen] != '\0' ||
	    strlen(in->task) != in->tasklen ||
	    !ref_valid((uint8_t *)in->task, in->tasklen))
		abort();

	/* The todo object as the worker sends it. */
	buf_reset(b);
	if (json_add_todo(b, 7, in->task, in->tasklen, in->done) == -1)
		abort();
	yajl_read(b, s);
	if (s->nid != 1 || s->id != 7 || s->nstr != 1 || s->ndone != 1 ||
	    s->done != in->done || s->str.len != in->tasklen ||
	    memcmp(s->str.data, in->task, in->tasklen) != 0)
		abort();

	/* And back through the request parser. */
	buf_reset(b);
	if (buf_add_str(b, "{\"task\":") == -1 ||
	    json_add_string(b, in->task, in->tasklen) == -1 ||
	    buf_add_str(b, "}") == -1)
		abort();
	if (json_parse_todo((char *)b->data, b->len, JSON_CREATE, &again,
	    &err) == -1)
		abort();
	if (again.tasklen != in->tasklen || again.has_done ||
	    memcmp(again.task, in->task, in->tasklen) != 0)
		abort();
	todo_input_clear(&again);
}

static void
check_parse(const uint8_t *data, size_t size, struct buf *b, struct seen *s)
{
	struct todo_input	 c, u;
	const char		*cerr, *uerr;
	int			 rc, ru;

	rc = json_parse_todo((const char *)data, size, JSON_CREATE, &c, &cerr);
	ru = json_parse_todo((const char *)data, size, JSON_UPDATE, &u, &uerr);
	if (rc == -1 && (cerr == NULL || c.task != NULL || c.has_task ||
	    c.has_done))
		abort();
	if (ru == -1 && (uerr == NULL || u.task != NULL || u.has_task ||
	    u.has_done))
		abort();
	/* Anything good for POST is good for PATCH, with the same meaning. */
	if (rc == 0 && (ru != 0 || u.tasklen != c.tasklen ||
	    u.has_done != c.has_done || u.done != c.done ||
	    memcmp(u.task, c.task, c.tasklen) != 0))
		abort();
	if (rc == 0)
		check_accepted(&c, JSON_CREATE, b, s);
	if (ru == 0)
		check_accepted(&u, JSON_UPDATE, b, s);
	todo_input_clear(&c);
	todo_input_clear(&u);
}

static void
check_render(const uint8_t *data, size_t size, struct buf *b, struct seen *s)
{
	struct buf	 want;

	buf_reset(b);
	if (json_add_string(b, (const char *)data, size) == -1)
		abort();
	if (!ref_valid(b->data, b->len) || b->data[b->len] != '\0')
		abort();
	yajl_read(b, s);
	buf_init(&want, 0);
	ref_replace(data, size, &want);
	if (s->nstr != 1 || s->str.len != want.len ||
	    (want.len != 0 && memcmp(s->str.data, want.data, want.len) != 0))
		abort();
	buf_free(&want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct seen	 s;
	struct buf		 b;

	buf_init(&b, 0);
	check_parse(data, size, &b, &s);
	check_render(data, size, &b, &s);
	buf_free(&b);
	return 0;
}
