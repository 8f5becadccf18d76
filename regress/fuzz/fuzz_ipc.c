/*
 * libFuzzer target for IPC message decoding in every role:
 *  - the framing layer (common/ipc.c) reading an arbitrary byte stream
 *    from a socket, with the typed accessors run on every message;
 *  - the parent's decoder of a worker's store requests (a worker is not
 *    trusted: anything it sends must be refused cleanly);
 *  - the worker's decoder of allow rules sent in a configuration.
 * The keyholder's sign request decoder has its own target (fuzz_khreq).
 * The first byte picks the decoder.
 */
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authz.h"
#include "ipc.h"
#include "parent.h"
#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Walk a payload with every accessor; none may read out of bounds. */
static void
fuzz_walk(struct ipc_msg *m)
{
	const char	*s;
	const void	*d;
	size_t		 n;
	uint64_t	 u64;
	uint32_t	 u32;
	uint8_t		 u8;
	int		 i;

	for (i = 0; i < 64 && m->off < m->len; i++) {
		switch ((m->data[m->off] + i) % 5) {
		case 0:
			if (ipc_get_str(m, &s) == 0 && strlen(s) >= m->len)
				abort();
			else if (ipc_get_u8(m, &u8) == -1)
				return;
			break;
		case 1:
			if (ipc_get_data(m, &d, &n) == 0 &&
			    ((const uint8_t *)d < m->data ||
			    (const uint8_t *)d + n > m->data + m->len))
				abort();
			else if (ipc_get_u8(m, &u8) == -1)
				return;
			break;
		case 2:
			if (ipc_get_u32(m, &u32) == -1)
				return;
			break;
		case 3:
			if (ipc_get_u64(m, &u64) == -1)
				return;
			break;
		default:
			if (ipc_get_u8(m, &u8) == -1)
				return;
			break;
		}
	}
	(void)ipc_get_end(m);
}

static void
fuzz_framing(const uint8_t *data, size_t size)
{
	struct ipc	 ipc;
	struct ipc_msg	 m;
	int		 sv[2], r, i;

	if (size > 100000)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		abort();
	/* a large send buffer: the whole input fits before we read */
	i = 1 << 20;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &i, sizeof(i));
	if (size > 0 && write(sv[0], data, size) != (ssize_t)size)
		abort();
	close(sv[0]);
	ipc_init(&ipc, sv[1]);
	for (i = 0; i < 10000; i++) {
		while ((r = ipc_get(&ipc, &m)) == 1) {
			if (m.len != m.hdr.len)
				abort();
			fuzz_walk(&m);
			ipc_msg_free(&m);
		}
		if (r == -1 || ipc_read(&ipc) <= 0)
			break;
	}
	ipc_clear(&ipc);
}

static void
fuzz_rule(const uint8_t *data, size_t size)
{
	struct ipc_msg		 m;
	struct authz_rule	*r;
	char			 line[2048];

	memset(&m, 0, sizeof(m));
	m.hdr.type = IMSG_CFG_RULE;
	m.data = data;
	m.len = size;
	m.fd = -1;
	if ((r = authz_rule_recv(&m)) != NULL) {
		if (r->nconds < 0 || r->nconds > AUTHZ_MAX_CONDS)
			abort();
		authz_rule_format(r, line, sizeof(line));
		authz_rule_free(r);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 5) {
	case 0:
	case 1:
		fuzz_framing(data + 1, size - 1);
		break;
	case 2:
		pstore_check_request(IMSG_STORE_CREATE + (data[0] / 5) % 3,
		    data + 1, size - 1);
		break;
	case 3:
		pstore_check_request(IMSG_STORE_UPDATE, data + 1, size - 1);
		break;
	default:
		fuzz_rule(data + 1, size - 1);
		break;
	}
	return 0;
}
