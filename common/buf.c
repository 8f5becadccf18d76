#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->size = 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
}

/* Room for n more bytes (plus a NUL the caller may write). */
int
buf_reserve(struct buf *b, size_t n)
{
	uint8_t	*p;
	size_t	 size;

	if (b->max != 0 && (n > b->max || b->len > b->max - n)) {
		errno = EMSGSIZE;
		return -1;
	}
	if (b->size - b->len > n)
		return 0;
	size = b->size ? b->size : 256;
	while (size - b->len <= n) {
		if (size > SIZE_MAX / 2) {
			errno = ENOMEM;
			return -1;
		}
		size *= 2;
	}
	if ((p = realloc(b->data, size)) == NULL)
		return -1;
	b->data = p;
	b->size = size;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_reserve(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int
buf_add_str(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n + 1) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, b->size - b->len, fmt, ap);
	va_end(ap);
	b->len += n;
	return 0;
}

/* Drop the first n bytes. */
void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}
