/*
 * libFuzzer target for the client OCSP messages (daemon/ocspmsg.c): the
 * parent's decoder of a worker's query (the worker may be hostile: what
 * is accepted must lie within the message and within the size bound) and
 * the worker's decoders of the parent's answer and revocation notice.
 * The first byte picks the decoder; the rest is the payload.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"
#include "ocspmsg.h"
#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_query(struct ipc_msg *m)
{
	const void	*der;
	size_t		 len;
	uint32_t	 qid;

	if (ocspmsg_get_query(m, &qid, &der, &len) == 0 &&
	    (len == 0 || len > OCSPMSG_CERT_MAX ||
	    (const uint8_t *)der < m->data ||
	    (const uint8_t *)der + len > m->data + m->len || qid != 9))
		abort();
}

static void
fuzz_answer(struct ipc_msg *m)
{
	struct ocspmsg_answer	 a;

	if (ocspmsg_get_answer(m, &a) == 0 &&
	    (a.status >= OCSPMSG_NSTATUS || a.until < 0 ||
	    strlen(a.why) > OCSPMSG_WHY_MAX || a.qid != 9 ||
	    strcmp(ocspmsg_status_name(a.status), "invalid") == 0))
		abort();
}

static void
fuzz_revoked(struct ipc_msg *m)
{
	char	 hash[OCSPMSG_HASH_SIZE];

	if (ocspmsg_get_revoked(m, hash, sizeof(hash)) == 0 &&
	    (m->len != OCSPMSG_DIGEST_LEN ||
	    strlen(hash) != OCSPMSG_HASH_SIZE - 1 ||
	    strncmp(hash, "SHA256:", 7) != 0 ||
	    strspn(hash + 7, "0123456789abcdef") != 2 * OCSPMSG_DIGEST_LEN))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipc_msg	 m;

	if (size < 1)
		return 0;
	memset(&m, 0, sizeof(m));
	m.hdr.type = data[0] % 3 == 2 ? IMSG_OCSP_REVOKED :
	    data[0] & 1 ? IMSG_OCSP_ANSWER : IMSG_OCSP_QUERY;
	m.hdr.peerid = 9;
	m.hdr.len = size - 1;
	m.data = data + 1;
	m.len = size - 1;
	m.fd = -1;
	if (data[0] % 3 == 2)
		fuzz_revoked(&m);
	else if (data[0] & 1)
		fuzz_answer(&m);
	else
		fuzz_query(&m);
	return 0;
}
