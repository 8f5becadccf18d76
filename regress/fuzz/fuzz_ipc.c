/*
 * libFuzzer target for IPC message decoding in every role:
 *  - the framing layer (common/ipc.c) reading an arbitrary byte stream
 *    from a socket, with the typed accessors run on every message;
 *  - the parent's decoders of what a worker sends, store requests and
 *    configuration replies (a worker is not trusted: anything it sends
 *    must be refused cleanly, and what is accepted is within bounds);
 *  - the worker's decoders of the store messages (common/storemsg.c) and
 *    of the configuration transaction, allow rules included
 *    (daemon/cfgmsg.c).
 * The keyholder's sign request decoder has its own target (fuzz_khreq).
 */
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authz.h"
#include "cfgmsg.h"
#include "ipc.h"
#include "proto.h"
#include "storemsg.h"

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

/* A payload as the channel would deliver it. */
static void
fuzz_msg(struct ipc_msg *m, uint32_t type, const uint8_t *data, size_t size)
{
	memset(m, 0, sizeof(*m));
	m->hdr.type = type;
	m->hdr.len = size;
	m->data = data;
	m->len = size;
	m->fd = -1;
}

/* The parent's decoders of what a worker sends: it may be hostile. */
static void
fuzz_parent(uint32_t type, const uint8_t *data, size_t size)
{
	struct storemsg_req	 req;
	struct storemsg_read	 rd;
	struct ipc_msg		 m;
	const char		*why;
	uint32_t		 gen, i;

	fuzz_msg(&m, type, data, size);
	if (type == IMSG_STORE_SYNC) {
		if (storemsg_decode_sync(&m) == 0 && size != 0)
			abort();
		return;
	}
	if (type == IMSG_STORE_READ || type == IMSG_STORE_PAGE) {
		if (storemsg_decode_read(&m, &rd) == -1)
			return;
		if (rd.nids > STOREMSG_READ_IDS || rd.after < 0 ||
		    rd.limit > STOREMSG_PAGE_MAX)
			abort();
		for (i = 0; i < rd.nids; i++)
			if (rd.ids[i] <= 0)
				abort();
		return;
	}
	if (type == IMSG_CFG_DONE || type == IMSG_CFG_FAILED) {
		if (cfgmsg_get_reply(&m, &gen, &why) == 0 &&
		    strlen(why) > CFGMSG_WHY_MAX)
			abort();
		return;
	}
	if (storemsg_decode_request(&m, &req) == 0 &&
	    (strlen(req.cn) > STOREMSG_CN_MAX ||
	    req.tasklen > TODO_TASK_MAX || m.off != m.len))
		abort();
}

static int
fuzz_item(void *arg, const struct storemsg_item *it)
{
	if (it->id <= 0 || it->tasklen > TODO_TASK_MAX ||
	    strlen(it->task) != it->tasklen)
		abort();
	return 0;
}

/* The worker's decoders of the store messages. */
static void
fuzz_store(uint32_t type, const uint8_t *data, size_t size)
{
	struct storemsg_reply	 rep;
	struct storemsg_change	 chg;
	struct ipc_msg		 m;
	uint64_t		 seq;
	uint32_t		 st;
	uint8_t			 flags;
	int			 complete;

	fuzz_msg(&m, type, data, size);
	switch (type) {
	case IMSG_STORE_SYNCED:
		if (storemsg_decode_synced(&m, &st) == 0 && st != STORE_OK &&
		    st != STORE_UNAVAILABLE)
			abort();
		break;
	case IMSG_STORE_REPLY:
		if (storemsg_decode_reply(&m, &rep) == 0 &&
		    rep.status == STORE_OK)
			fuzz_item(NULL, &rep.item);
		break;
	case IMSG_STORE_CHANGE:
		if (storemsg_decode_change(&m, &chg) == 0 &&
		    chg.op != STORE_OP_DELETE)
			fuzz_item(NULL, &chg.item);
		break;
	case IMSG_STORE_SNAPSHOT:
		storemsg_decode_snapshot(&m, &seq, fuzz_item, NULL);
		break;
	case IMSG_STORE_ITEMS:
		storemsg_decode_items(&m, &seq, &flags, fuzz_item, NULL);
		break;
	default:
		storemsg_decode_snapshot_end(&m, &seq, &complete);
		break;
	}
}

/* The worker's decoders of the configuration transaction. */
static void
fuzz_cfg(uint32_t type, const uint8_t *data, size_t size)
{
	struct proto_cfg_main	 cm;
	struct proto_ticket_key	 k;
	struct authz_rule	*r;
	struct ipc_msg		 m;
	const char		*s;
	const void		*p;
	char			 line[2048];
	size_t			 n;
	uint32_t		 gen;

	fuzz_msg(&m, type, data, size);
	switch (type) {
	case IMSG_CFG_RULE:
		if ((r = cfgmsg_get_rule(&m)) == NULL)
			break;
		if (r->nconds < 1 || r->nconds > AUTHZ_MAX_CONDS)
			abort();
		authz_rule_format(r, line, sizeof(line));
		authz_rule_free(r);
		break;
	case IMSG_CFG_MAIN:
		if (cfgmsg_get_main(&m, &cm, &s) == 0 &&
		    (cm.worker_id == 0 || strlen(s) > CFGMSG_CIPHERS_MAX))
			abort();
		break;
	case IMSG_CFG_LISTEN:
		m.fd = 0;	/* stands for a socket; never closed here */
		if (cfgmsg_get_listen(&m, &s) == 0 &&
		    strlen(s) > CFGMSG_NAME_MAX)
			abort();
		break;
	case IMSG_CFG_TLS_CA:
	case IMSG_CFG_TLS_STAPLE:
		if (cfgmsg_get_tls(&m, &p, &n) == 0 &&
		    type == IMSG_CFG_TLS_STAPLE && n > CFGMSG_STAPLE_MAX)
			abort();
		break;
	case IMSG_STAPLE:
		if (cfgmsg_get_staple(&m, &p, &n) == 0 &&
		    n > CFGMSG_STAPLE_MAX)
			abort();
		break;
	case IMSG_TICKET_KEY:
		cfgmsg_get_ticket(&m, &k);
		break;
	case IMSG_CFG_END:
		cfgmsg_get_end(&m);
		break;
	default:
		cfgmsg_get_gen(&m, &gen);
		break;
	}
}

/*
 * The first byte picks the decoder (low 3 bits) and the message type
 * (the rest).
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t	 req[] = { IMSG_STORE_CREATE,
				    IMSG_STORE_UPDATE, IMSG_STORE_DELETE,
				    IMSG_CFG_DONE, IMSG_CFG_FAILED,
				    IMSG_STORE_SYNC, IMSG_STORE_READ,
				    IMSG_STORE_PAGE };
	static const uint32_t	 store[] = { IMSG_STORE_REPLY,
				    IMSG_STORE_CHANGE, IMSG_STORE_SNAPSHOT,
				    IMSG_STORE_SNAPSHOT_END, IMSG_STORE_SYNCED,
				    IMSG_STORE_ITEMS };
	static const uint32_t	 cfg[] = { IMSG_CFG_RULE, IMSG_CFG_MAIN,
				    IMSG_CFG_LISTEN, IMSG_CFG_TLS_CA,
				    IMSG_TICKET_KEY, IMSG_CFG_END,
				    IMSG_CFG_BEGIN, IMSG_CFG_TLS_STAPLE,
				    IMSG_STAPLE };
	unsigned int		 sel;

	if (size < 1)
		return 0;
	sel = data[0] >> 3;
	switch (data[0] & 7) {
	case 0:
	case 1:
		fuzz_framing(data + 1, size - 1);
		break;
	case 2:
		fuzz_parent(req[sel % 8], data + 1, size - 1);
		break;
	case 3:
		fuzz_parent(IMSG_STORE_UPDATE, data + 1, size - 1);
		break;
	case 4:
	case 5:
		fuzz_store(store[sel % 6], data + 1, size - 1);
		break;
	default:
		fuzz_cfg(cfg[sel % 9], data + 1, size - 1);
		break;
	}
	return 0;
}
