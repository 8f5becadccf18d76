/*
 * Client certificate OCSP between a worker and the parent, both ends in
 * one place (the worker sends queries and reads answers, the parent the
 * other way round):
 *
 *	OCSP_QUERY	worker -> parent, peerid: query id;
 *			data: the client's leaf certificate, DER
 *	OCSP_ANSWER	parent -> worker, peerid: query id;
 *			u32 status (enum ocspmsg_status), i64 until (UNIX
 *			time the answer may be relied on until, 0 for
 *			none), str why ("" or why there is no answer)
 *	OCSP_REVOKED	parent -> every worker: the SHA-256 of a client
 *			certificate's DER (32 bytes, nothing else) that a
 *			responder just said is revoked: the workers cut
 *			the connections open for it
 *
 * The worker sends only the certificate, never a URL: the parent derives
 * the responder from the certificate after checking that the configured
 * CA signed it, so a compromised worker cannot make it fetch anything
 * else.  The worker's sender returns 0, or -1 and errno (nothing is
 * queued); the parent's encoder returns a message for proc_send, or NULL
 * and errno.  Getters
 * return 0, or -1 with errno EBADMSG; data and strings point into the
 * message.
 */
#ifndef TODOD_OCSPMSG_H
#define TODOD_OCSPMSG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct ipc;
struct ipc_msg;
struct ipc_wbuf;

#define OCSPMSG_CERT_MAX	16384	/* a leaf certificate, DER bytes */
#define OCSPMSG_WHY_MAX		256	/* OCSP_ANSWER reason, bytes */
#define OCSPMSG_DIGEST_LEN	32	/* OCSP_REVOKED: SHA-256 */
/* "SHA256:" and 64 hex digits, as libtls' tls_peer_cert_hash() */
#define OCSPMSG_HASH_SIZE	(7 + 2 * OCSPMSG_DIGEST_LEN + 1)

enum ocspmsg_status {
	OCSPMSG_GOOD = 0,
	OCSPMSG_REVOKED,
	OCSPMSG_UNKNOWN,	/* the responder does not know the cert */
	OCSPMSG_NOANSWER,	/* no usable answer: down, late, bad */
	OCSPMSG_NSTATUS
};

struct ocspmsg_answer {
	uint32_t	 qid;
	uint32_t	 status;	/* enum ocspmsg_status */
	time_t		 until;
	const char	*why;
};

int	ocspmsg_send_query(struct ipc *, uint32_t, const void *, size_t);
int	ocspmsg_get_query(struct ipc_msg *, uint32_t *, const void **,
	    size_t *);
struct ipc_wbuf *ocspmsg_encode_answer(const struct ocspmsg_answer *);
int	ocspmsg_get_answer(struct ipc_msg *, struct ocspmsg_answer *);
int	ocspmsg_cert_digest(const void *, size_t,
	    uint8_t [OCSPMSG_DIGEST_LEN]);
int	ocspmsg_get_revoked(struct ipc_msg *, char *, size_t);
const char *ocspmsg_status_name(uint32_t);

#endif
