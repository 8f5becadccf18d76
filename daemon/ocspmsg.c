#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "ipc.h"
#include "ocspmsg.h"
#include "proto.h"

static int
ocspmsg_bad(void)
{
	errno = EBADMSG;
	return -1;
}

/*
 * The worker checks its own bound too: a certificate the parent would
 * refuse is not worth a round trip, and the refusal is clearer here.
 */
int
ocspmsg_send_query(struct ipc *ipc, uint32_t qid, const void *der,
    size_t len)
{
	struct ipc_wbuf	*wb;

	if (len == 0 || len > OCSPMSG_CERT_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((wb = ipc_create(IMSG_OCSP_QUERY, qid, len + 8)) == NULL)
		return -1;
	ipc_add_data(wb, der, len);
	return ipc_send(ipc, wb, -1);
}

/* What a worker sends is bounded here: the worker may be compromised. */
int
ocspmsg_get_query(struct ipc_msg *msg, uint32_t *qid, const void **der,
    size_t *len)
{
	if (msg->hdr.type != IMSG_OCSP_QUERY || msg->fd != -1 ||
	    ipc_get_data(msg, der, len) == -1 || ipc_get_end(msg) == -1 ||
	    *len == 0 || *len > OCSPMSG_CERT_MAX)
		return ocspmsg_bad();
	*qid = msg->hdr.peerid;
	return 0;
}

/*
 * A composed answer for the parent to queue with proc_send (a worker's
 * queue is bounded there), or NULL and errno.  A reason too long is cut,
 * not lost.
 */
struct ipc_wbuf *
ocspmsg_encode_answer(const struct ocspmsg_answer *a)
{
	struct ipc_wbuf	*wb;
	const char	*why = a->why != NULL ? a->why : "";

	if (a->status >= OCSPMSG_NSTATUS || a->until < 0) {
		errno = EINVAL;
		return NULL;
	}
	if ((wb = ipc_create(IMSG_OCSP_ANSWER, a->qid, 64)) == NULL)
		return NULL;
	ipc_add_u32(wb, a->status);
	ipc_add_i64(wb, (int64_t)a->until);
	ipc_add_strn(wb, why, strnlen(why, OCSPMSG_WHY_MAX));
	if (wb->error) {
		errno = wb->error;
		ipc_wbuf_free(wb);
		return NULL;
	}
	return wb;
}

int
ocspmsg_get_answer(struct ipc_msg *msg, struct ocspmsg_answer *a)
{
	int64_t		 until;

	if (msg->hdr.type != IMSG_OCSP_ANSWER || msg->fd != -1 ||
	    ipc_get_u32(msg, &a->status) == -1 ||
	    ipc_get_i64(msg, &until) == -1 ||
	    ipc_get_str(msg, &a->why) == -1 || ipc_get_end(msg) == -1 ||
	    a->status >= OCSPMSG_NSTATUS || until < 0 ||
	    strlen(a->why) > OCSPMSG_WHY_MAX)
		return ocspmsg_bad();
	a->until = (time_t)until;
	a->qid = msg->hdr.peerid;
	return 0;
}

/*
 * The parent names a revoked certificate by the digest libtls names a
 * peer by (tls_peer_cert_hash: SHA-256 of the leaf's DER), so a worker
 * finds its connections without parsing anything.  0, or -1.
 */
int
ocspmsg_cert_digest(const void *der, size_t len,
    uint8_t digest[OCSPMSG_DIGEST_LEN])
{
	unsigned int	 n = 0;

	if (!EVP_Digest(der, len, digest, &n, EVP_sha256(), NULL) ||
	    n != OCSPMSG_DIGEST_LEN)
		return -1;
	return 0;
}

/* The digest of OCSP_REVOKED, as tls_peer_cert_hash() writes it. */
int
ocspmsg_get_revoked(struct ipc_msg *msg, char *hash, size_t hashlen)
{
	uint8_t	 d[OCSPMSG_DIGEST_LEN];
	size_t	 i;

	if (msg->hdr.type != IMSG_OCSP_REVOKED || msg->fd != -1 ||
	    hashlen < OCSPMSG_HASH_SIZE || ipc_get_raw(msg, d, sizeof(d)) ==
	    -1 || ipc_get_end(msg) == -1)
		return ocspmsg_bad();
	memcpy(hash, "SHA256:", 7);
	for (i = 0; i < sizeof(d); i++)
		snprintf(hash + 7 + 2 * i, 3, "%02x", d[i]);
	return 0;
}

/* For logs and metrics labels. */
const char *
ocspmsg_status_name(uint32_t status)
{
	static const char	*names[OCSPMSG_NSTATUS] = {
		"good", "revoked", "unknown", "noanswer"
	};

	return status < OCSPMSG_NSTATUS ? names[status] : "invalid";
}
