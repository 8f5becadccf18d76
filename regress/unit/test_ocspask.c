/*
 * Unit tests for daemon/ocspask.c, the worker's side of client OCSP,
 * across a real channel to a stand-in parent: one query per certificate
 * however many connections wait, answers to every waiter and onto the
 * certificate's peer, a connection that stops waiting, answers nobody
 * asked for, the bound on queries in flight, and the verdicts of
 * `require' and `prefer'.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ipc.h"
#include "ipcpair.h"
#include "ocspask.h"
#include "ocspmsg.h"
#include "peer.h"
#include "proto.h"
#include "tap.h"

#define NOW	1800000000

static struct ipc	 pa, wk;	/* the parent's end, the worker's end */
static int		 sends, fail_send;

/* What worker.c does: the query on its channel to the parent. */
static int
send_query(void *arg, uint32_t qid, const void *der, size_t len)
{
	sends++;
	if (fail_send) {
		errno = EPIPE;
		return -1;
	}
	return ocspmsg_send_query(arg, qid, der, len);
}

struct told {
	int		 n;
	void		*conn[8];
	uint32_t	 status[8];
	char		 why[8][64];
};

static void
tell(void *arg, void *conn, const struct ocspmsg_answer *a)
{
	struct told	*t = arg;

	if (t->n < 8) {
		t->conn[t->n] = conn;
		t->status[t->n] = a->status;
		snprintf(t->why[t->n], sizeof(t->why[0]), "%s", a->why);
	}
	t->n++;
}

static struct peer *
peer_new(uint8_t fill)
{
	struct peer	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->der = malloc(300)) == NULL)
		abort();
	memset(p->der, fill, 300);
	p->derlen = 300;
	p->refs = 1;
	return p;
}

/* The stand-in parent reads a query: its id, or 0. */
static uint32_t
parent_reads(const struct peer *p)
{
	struct ipc_msg	 msg;
	const void	*der;
	size_t		 len;
	uint32_t	 qid = 0;

	if (xfer(&wk, &pa, &msg) != 0)
		return 0;
	if (ocspmsg_get_query(&msg, &qid, &der, &len) == -1 ||
	    len != p->derlen || memcmp(der, p->der, len) != 0)
		qid = 0;
	ipc_msg_free(&msg);
	return qid;
}

/* The stand-in parent answers; the worker dispatches it. */
static int
parent_answers(struct ocspask *oa, uint32_t qid, uint32_t status,
    time_t until, const char *why, struct told *t)
{
	struct ocspmsg_answer	 a = { qid, status, until, why };
	struct ipc_msg		 msg;
	int			 r;

	if (ipc_send(&pa, ocspmsg_encode_answer(&a), -1) == -1 ||
	    xfer(&pa, &wk, &msg) != 0)
		return -2;
	r = ocspask_answer(oa, &msg, NOW, tell, t);
	ipc_msg_free(&msg);
	return r;
}

static void
test_coalesce(void)
{
	struct ocspask		 oa;
	struct ocspask_waiter	 w[3];
	struct peer		*p = peer_new(1);
	struct told		 t;
	struct ipc_msg		 msg;
	uint32_t		 qid;
	int			 c1, c2, c3;

	memset(&t, 0, sizeof(t));
	memset(w, 0, sizeof(w));
	ocspask_init(&oa, send_query, &wk);
	TAP_OK(ocspask_needed(CONFIG_OCSP_REQUIRE, p, NOW) &&
	    !ocspask_needed(CONFIG_OCSP_OFF, p, NOW),
	    "a fresh certificate needs an answer, unless OCSP is off");
	TAP_OK(ocspask_ask(&oa, p, &w[0], &c1) == 0 &&
	    ocspask_ask(&oa, p, &w[1], &c2) == 0 &&
	    ocspask_ask(&oa, p, &w[2], &c3) == 0 && oa.n == 1 &&
	    p->refs == 2 && sends == 1,
	    "three connections, one query, a peer reference");
	qid = parent_reads(p);
	TAP_OK(qid != 0, "the parent gets the certificate's DER");
	TAP_OK(ipc_flush(&wk) == 1 && recv1(&pa, &msg) == 0,
	    "and only one query");
	ocspask_leave(&w[1]);
	TAP_OK(w[1].q == NULL, "a connection that times out stops waiting");
	TAP_OK(parent_answers(&oa, qid, OCSPMSG_GOOD, NOW + 600, "", &t) ==
	    0 && t.n == 2 && t.conn[0] == &c1 && t.conn[1] == &c3 &&
	    t.status[0] == OCSPMSG_GOOD, "the answer reaches the two still "
	    "waiting, in order");
	TAP_OK(oa.n == 0 && p->refs == 1 && w[0].q == NULL,
	    "the query is done and its reference dropped");
	TAP_OK(p->ocsp_status == OCSPMSG_GOOD && p->ocsp_until == NOW + 600 &&
	    !ocspask_needed(CONFIG_OCSP_REQUIRE, p, NOW) &&
	    ocspask_needed(CONFIG_OCSP_REQUIRE, p, NOW + 600),
	    "the answer is kept on the peer until it expires");
	t.n = 0;
	TAP_OK(parent_answers(&oa, qid, OCSPMSG_REVOKED, NOW + 1, "", &t) ==
	    0 && t.n == 0 && !p->revoked, "a second answer to the same id is "
	    "ignored");
	peer_unref(p);
}

static void
test_answers(void)
{
	struct ocspask		 oa;
	struct ocspask_waiter	 w;
	struct peer		*p = peer_new(2), *q = peer_new(3);
	struct told		 t;
	uint32_t		 qid;
	int			 c;

	memset(&t, 0, sizeof(t));
	memset(&w, 0, sizeof(w));
	ocspask_init(&oa, send_query, &wk);
	TAP_OK(ocspask_ask(&oa, p, &w, &c) == 0 &&
	    (qid = parent_reads(p)) != 0 &&
	    parent_answers(&oa, qid, OCSPMSG_NOANSWER, 0, "responder down",
	    &t) == 0 && t.n == 1 && t.status[0] == OCSPMSG_NOANSWER &&
	    strcmp(t.why[0], "responder down") == 0,
	    "no answer: the waiter hears why");
	TAP_OK(p->ocsp_until == 0 && ocspask_needed(CONFIG_OCSP_PREFER, p,
	    NOW), "and nothing is kept: the next connection asks again");
	t.n = 0;
	TAP_OK(ocspask_ask(&oa, p, &w, &c) == 0 &&
	    (qid = parent_reads(p)) != 0 &&
	    parent_answers(&oa, qid, OCSPMSG_REVOKED, NOW, "", &t) == 0 &&
	    t.n == 1 && p->revoked && !ocspask_needed(CONFIG_OCSP_PREFER, p,
	    NOW), "revoked, even for no time at all, is for good");
	t.n = 0;
	TAP_OK(ocspask_ask(&oa, q, &w, &c) == 0 &&
	    (qid = parent_reads(q)) != 0 &&
	    parent_answers(&oa, qid, OCSPMSG_GOOD, NOW, "", &t) == 0 &&
	    t.n == 1 && q->ocsp_until == 0, "a good answer without "
	    "nextUpdate serves this connection only");
	peer_unref(p);
	peer_unref(q);
}

static void
test_bounds(void)
{
	struct ocspask		 oa;
	struct ocspask_waiter	 w[OCSPASK_MAX + 1];
	struct peer		*p[OCSPASK_MAX + 1], *big = peer_new(9);
	struct ipc_msg		 msg;
	int			 i, ok = 1, c;

	memset(w, 0, sizeof(w));
	ocspask_init(&oa, send_query, &wk);
	for (i = 0; i <= OCSPASK_MAX; i++)
		p[i] = peer_new((uint8_t)i);
	for (i = 0; i < OCSPASK_MAX; i++)
		ok &= ocspask_ask(&oa, p[i], &w[i], &c) == 0;
	TAP_OK(ok && oa.n == OCSPASK_MAX, "%d certificates in flight",
	    OCSPASK_MAX);
	errno = 0;
	TAP_OK(ocspask_ask(&oa, p[OCSPASK_MAX], &w[OCSPASK_MAX], &c) ==
	    -1 && errno == EAGAIN && w[OCSPASK_MAX].q == NULL,
	    "one more is refused: EAGAIN, nothing waits");
	for (i = 0; i < OCSPASK_MAX; i++)
		ok &= parent_reads(p[i]) != 0;
	TAP_OK(ok, "every query reached the parent");
	ocspask_clear(&oa);
	ok = oa.n == 0;
	for (i = 0; i < OCSPASK_MAX; i++)
		ok &= p[i]->refs == 1 && w[i].q == NULL;
	TAP_OK(ok, "clear drops every query and reference");
	for (i = 0; i <= OCSPASK_MAX; i++)
		peer_unref(p[i]);
	big->derlen = OCSPMSG_CERT_MAX + 1;
	big->der = realloc(big->der, big->derlen);
	errno = 0;
	TAP_OK(big->der != NULL && ocspask_ask(&oa, big, &w[0], &c) ==
	    -1 && errno == EMSGSIZE && oa.n == 0 && big->refs == 1,
	    "a certificate too big to ask about is not asked about");
	peer_unref(big);
	fail_send = 1;
	errno = 0;
	big = peer_new(10);
	TAP_OK(ocspask_ask(&oa, big, &w[0], &c) == -1 && errno == EPIPE &&
	    oa.n == 0 && big->refs == 1 && w[0].q == NULL,
	    "a query the channel does not take: nothing waits");
	fail_send = 0;
	peer_unref(big);
	TAP_OK(ipc_flush(&wk) == 1 && recv1(&pa, &msg) == 0,
	    "nothing more was sent");
	memset(&msg, 0, sizeof(msg));
	msg.hdr.type = IMSG_OCSP_ANSWER;
	msg.fd = -1;
	TAP_OK(ocspask_answer(&oa, &msg, NOW, tell, NULL) == -1,
	    "a malformed answer is refused");
}

static void
test_verdicts(void)
{
	static const struct {
		int		 mode;
		uint32_t	 status;
		int		 want;
	} v[] = {
		{ CONFIG_OCSP_REQUIRE, OCSPMSG_GOOD, OCSPASK_ACCEPT },
		{ CONFIG_OCSP_REQUIRE, OCSPMSG_REVOKED, OCSPASK_REFUSE },
		{ CONFIG_OCSP_REQUIRE, OCSPMSG_UNKNOWN, OCSPASK_REFUSE },
		{ CONFIG_OCSP_REQUIRE, OCSPMSG_NOANSWER, OCSPASK_REFUSE },
		{ CONFIG_OCSP_PREFER, OCSPMSG_GOOD, OCSPASK_ACCEPT },
		{ CONFIG_OCSP_PREFER, OCSPMSG_REVOKED, OCSPASK_REFUSE },
		{ CONFIG_OCSP_PREFER, OCSPMSG_UNKNOWN, OCSPASK_WARN },
		{ CONFIG_OCSP_PREFER, OCSPMSG_NOANSWER, OCSPASK_WARN },
		{ CONFIG_OCSP_OFF, OCSPMSG_NOANSWER, OCSPASK_ACCEPT },
	};
	size_t	 i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		TAP_OK((int)ocspask_verdict(v[i].mode, v[i].status) ==
		    v[i].want, "mode %d, %s: verdict %d", v[i].mode,
		    ocspmsg_status_name(v[i].status), v[i].want);
}

int
main(void)
{
	pair(&pa, &wk);
	test_coalesce();
	test_answers();
	test_bounds();
	test_verdicts();
	ipc_clear(&pa);
	ipc_clear(&wk);
	return tap_done();
}
