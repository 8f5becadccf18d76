/* A growable byte buffer, for building responses and messages. */
#ifndef TODOD_BUF_H
#define TODOD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t		*data;
	size_t		 len;
	size_t		 size;
	size_t		 max;	/* 0: unbounded; otherwise adds past it fail */
};

void	buf_init(struct buf *, size_t);
void	buf_free(struct buf *);
void	buf_reset(struct buf *);
int	buf_reserve(struct buf *, size_t);
int	buf_add(struct buf *, const void *, size_t);
int	buf_add_str(struct buf *, const char *);
int	buf_printf(struct buf *, const char *, ...)
	    __attribute__((__format__(printf, 2, 3)));
void	buf_consume(struct buf *, size_t);

#endif
