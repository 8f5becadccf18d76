/*
 * Unit tests for daemon/ocspmsg.c: the OCSP query a worker sends and the
 * answer the parent returns, each encoded by one end and decoded by the
 * other across a real channel; then malformed messages, which the
 * decoders must refuse (the parent's decoder reads a possibly
 * compromised worker).
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "ipcpair.h"
#include "ocspmsg.h"
#include "proto.h"
#include "tap.h"

static struct ipc	 pa, wk;	/* the parent's end, the worker's end */

static void
test_query(void)
{
	static uint8_t	 der[OCSPMSG_CERT_MAX];
	struct ipc_msg	 msg;
	const void	*p;
	size_t		 n;
	uint32_t	 qid;

	memset(der, 0x30, sizeof(der));
	TAP_OK(ocspmsg_send_query(&wk, 42, der, 700) == 0 &&
	    xfer(&wk, &pa, &msg) == 0 &&
	    ocspmsg_get_query(&msg, &qid, &p, &n) == 0 && qid == 42 &&
	    n == 700 && memcmp(p, der, n) == 0, "OCSP_QUERY round trip");
	TAP_OK(ocspmsg_send_query(&wk, 7, der, sizeof(der)) == 0 &&
	    xfer(&wk, &pa, &msg) == 0 &&
	    ocspmsg_get_query(&msg, &qid, &p, &n) == 0 &&
	    n == OCSPMSG_CERT_MAX, "OCSP_QUERY at the size bound");
	errno = 0;
	TAP_OK(ocspmsg_send_query(&wk, 1, der, 0) == -1 && errno == EMSGSIZE,
	    "an empty certificate is not sent");
	TAP_OK(ocspmsg_send_query(&wk, 1, der, OCSPMSG_CERT_MAX + 1) == -1 &&
	    errno == EMSGSIZE, "an oversized certificate is not sent");
}

static void
test_answer(void)
{
	struct ocspmsg_answer	 a, got;
	struct ipc_msg		 msg;
	char			 why[OCSPMSG_WHY_MAX + 100];
	uint32_t		 st;
	int			 ok = 1;

	for (st = 0; st < OCSPMSG_NSTATUS; st++) {
		a.qid = 100 + st;
		a.status = st;
		a.until = 1800000000 + st;
		a.why = st == OCSPMSG_NOANSWER ? "responder down" : NULL;
		if (ipc_send(&pa, ocspmsg_encode_answer(&a), -1) != 0 ||
		    xfer(&pa, &wk, &msg) != 0 ||
		    ocspmsg_get_answer(&msg, &got) != 0 ||
		    got.qid != a.qid || got.status != st ||
		    got.until != a.until ||
		    strcmp(got.why, a.why != NULL ? a.why : "") != 0)
			ok = 0;
	}
	TAP_OK(ok, "OCSP_ANSWER round trip, every status");
	memset(why, 'x', sizeof(why) - 1);
	why[sizeof(why) - 1] = '\0';
	a.status = OCSPMSG_NOANSWER;
	a.why = why;
	TAP_OK(ipc_send(&pa, ocspmsg_encode_answer(&a), -1) == 0 &&
	    xfer(&pa, &wk, &msg) == 0 && ocspmsg_get_answer(&msg, &got) == 0 &&
	    strlen(got.why) == OCSPMSG_WHY_MAX, "a long reason is cut");
	a.status = OCSPMSG_NSTATUS;
	errno = 0;
	TAP_OK(ocspmsg_encode_answer(&a) == NULL && errno == EINVAL,
	    "an invalid status is not sent");
	TAP_OK(strcmp(ocspmsg_status_name(OCSPMSG_REVOKED), "revoked") == 0 &&
	    strcmp(ocspmsg_status_name(99), "invalid") == 0, "status names");
}

/* Compose raw bytes of type with peerid, deliver, decode as a query. */
static int
bad_query(uint32_t type, const void *p, size_t n)
{
	struct ipc_msg	 msg;
	const void	*der;
	size_t		 len;
	uint32_t	 qid;

	if (ipc_compose(&wk, type, 1, -1, p, n) != 0 ||
	    xfer(&wk, &pa, &msg) != 0)
		return 0;
	errno = 0;
	return ocspmsg_get_query(&msg, &qid, &der, &len) == -1 &&
	    errno == EBADMSG;
}

static void
test_bad_query(void)
{
	static uint8_t	 big[OCSPMSG_CERT_MAX + 16];
	uint8_t		 b[16];
	uint32_t	 len;

	len = 4;
	memcpy(b, &len, 4);
	memset(b + 4, 0x30, 12);
	TAP_OK(bad_query(IMSG_OCSP_ANSWER, b, 8), "query: wrong type");
	TAP_OK(bad_query(IMSG_OCSP_QUERY, b, 6), "query: truncated data");
	TAP_OK(bad_query(IMSG_OCSP_QUERY, b, 12), "query: trailing bytes");
	len = 0;
	memcpy(b, &len, 4);
	TAP_OK(bad_query(IMSG_OCSP_QUERY, b, 4), "query: empty certificate");
	TAP_OK(bad_query(IMSG_OCSP_QUERY, NULL, 0), "query: no payload");
	len = OCSPMSG_CERT_MAX + 1;
	memcpy(big, &len, 4);
	TAP_OK(bad_query(IMSG_OCSP_QUERY, big, 4 + len),
	    "query: certificate over the bound");
}

/* u32 status, i64 until, then a string of n bytes as given. */
static int
bad_answer(uint32_t type, uint32_t status, int64_t until, const char *s,
    size_t slen, size_t cut)
{
	struct ipc_msg		 msg;
	struct ocspmsg_answer	 a;
	uint8_t			 b[1024];
	uint32_t		 l = (uint32_t)slen;
	size_t			 n = 0;

	memcpy(b + n, &status, 4), n += 4;
	memcpy(b + n, &until, 8), n += 8;
	memcpy(b + n, &l, 4), n += 4;
	memcpy(b + n, s, slen), n += slen;
	if (cut > n || ipc_compose(&pa, type, 1, -1, b, n - cut) != 0 ||
	    xfer(&pa, &wk, &msg) != 0)
		return 0;
	errno = 0;
	return ocspmsg_get_answer(&msg, &a) == -1 && errno == EBADMSG;
}

static void
test_bad_answer(void)
{
	char	 longwhy[OCSPMSG_WHY_MAX + 2];

	memset(longwhy, 'y', sizeof(longwhy) - 1);
	longwhy[sizeof(longwhy) - 1] = '\0';
	TAP_OK(bad_answer(IMSG_OCSP_QUERY, 0, 1, "", 1, 0),
	    "answer: wrong type");
	TAP_OK(bad_answer(IMSG_OCSP_ANSWER, OCSPMSG_NSTATUS, 1, "", 1, 0),
	    "answer: status out of range");
	TAP_OK(bad_answer(IMSG_OCSP_ANSWER, 0, -1, "", 1, 0),
	    "answer: negative time");
	TAP_OK(bad_answer(IMSG_OCSP_ANSWER, 0, 1, "ab", 2, 0),
	    "answer: unterminated reason");
	TAP_OK(bad_answer(IMSG_OCSP_ANSWER, 0, 1, "a\0b", 4, 0),
	    "answer: NUL inside the reason");
	TAP_OK(bad_answer(IMSG_OCSP_ANSWER, 0, 1, longwhy, sizeof(longwhy),
	    0), "answer: reason over the bound");
	TAP_OK(bad_answer(IMSG_OCSP_ANSWER, 0, 1, "ok", 3, 2),
	    "answer: truncated");
}

static int
revoked(uint32_t type, const void *p, size_t n, char *hash, size_t hashlen)
{
	struct ipc_msg	 msg;
	struct ipc_wbuf	*wb;
	int		 r;

	if ((wb = ipc_create(type, 0, n)) == NULL)
		return -2;
	ipc_add(wb, p, n);
	if (ipc_send(&pa, wb, -1) == -1 || xfer(&pa, &wk, &msg) == -1)
		return -2;
	r = ocspmsg_get_revoked(&msg, hash, hashlen);
	ipc_msg_free(&msg);
	return r;
}

/* The parent's digest reaches the worker as libtls writes a peer's. */
static void
test_revoked(void)
{
	uint8_t	 d[OCSPMSG_DIGEST_LEN + 1];
	char	 hash[OCSPMSG_HASH_SIZE];

	TAP_OK(ocspmsg_cert_digest("abc", 3, d) == 0 &&
	    revoked(IMSG_OCSP_REVOKED, d, OCSPMSG_DIGEST_LEN, hash,
	    sizeof(hash)) == 0 && strcmp(hash, "SHA256:ba7816bf8f01cfea4141"
	    "40de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
	    "OCSP_REVOKED round trip: SHA256: and 64 lower-case digits");
	TAP_OK(revoked(IMSG_OCSP_REVOKED, d, OCSPMSG_DIGEST_LEN - 1, hash,
	    sizeof(hash)) == -1 && errno == EBADMSG, "revoked: short digest");
	TAP_OK(revoked(IMSG_OCSP_REVOKED, d, OCSPMSG_DIGEST_LEN + 1, hash,
	    sizeof(hash)) == -1 && errno == EBADMSG, "revoked: trailing byte");
	TAP_OK(revoked(IMSG_OCSP_ANSWER, d, OCSPMSG_DIGEST_LEN, hash,
	    sizeof(hash)) == -1, "revoked: wrong type");
	TAP_OK(revoked(IMSG_OCSP_REVOKED, d, OCSPMSG_DIGEST_LEN, hash,
	    sizeof(hash) - 1) == -1, "revoked: no room for the hash");
}

int
main(void)
{
	pair(&pa, &wk);
	test_query();
	test_answer();
	test_bad_query();
	test_bad_answer();
	test_revoked();
	ipc_clear(&pa);
	ipc_clear(&wk);
	return tap_done();
}
