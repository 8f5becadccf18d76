/*
 * Test helpers for message codecs: a connected pair of channels, and
 * the sending of a composed message from one end to the other, so that
 * every codec test crosses a real socket and the framing layer.
 */
#ifndef TODOD_IPCPAIR_H
#define TODOD_IPCPAIR_H

#include <sys/socket.h>

#include <stdlib.h>

#include "ipc.h"

static inline void
pair(struct ipc *a, struct ipc *b)
{
	int	 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1)
		abort();
	ipc_init(a, sv[0]);
	ipc_init(b, sv[1]);
}

/* Read until a message is available or the socket is empty. */
static inline int
recv1(struct ipc *ipc, struct ipc_msg *msg)
{
	int	 r, i;

	for (i = 0; i < 10000; i++) {
		if ((r = ipc_get(ipc, msg)) != 0)
			return r;
		if (ipc_read(ipc) <= 0)
			return ipc_get(ipc, msg);
	}
	return 0;
}

/*
 * The next message on b, flushing what a has queued as b reads: a large
 * message does not fit in the socket's buffer at once.
 */
static inline int
xfer(struct ipc *a, struct ipc *b, struct ipc_msg *msg)
{
	int	 i, r;

	for (i = 0; i < 100000; i++) {
		if (ipc_flush(a) == -1)
			return -1;
		if ((r = ipc_get(b, msg)) != 0)
			return r == 1 ? 0 : -1;
		if (ipc_read(b) == 0)
			return -1;
	}
	return -1;
}

#endif
