#define LIBBSD_OPENBSD_VIS
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <vis.h>

#include <openssl/x509_vfy.h>
#include <tls.h>

#include "api.h"
#include "cache.h"
#include "config.h"
#include "hslimit.h"
#include "http.h"
#include "ipc.h"
#include "json.h"
#include "log.h"
#include "ocspask.h"
#include "ocspmsg.h"
#include "peer.h"
#include "proto.h"
#include "reqstate.h"
#include "server.h"
#include "storemsg.h"
#include "tlsconf.h"
#include "tlshook.h"
#include "wconf.h"

#define SERVER_ACCEPT_BATCH	1	/* calm: one per wakeup */
#define SERVER_ACCEPT_BURST	256	/* under pressure: drain the queue */
#define SERVER_HS_CALM		16	/* unfinished handshakes that are calm */
#define SERVER_READ_MAX		(HTTP_MAX_HEAD + HTTP_MAX_BODY + 16384)
#define SERVER_CLOSE_TIMEOUT	2	/* seconds for a close_notify */
#define SERVER_STREAM_CHUNK	(64 * 1024)
#define SERVER_OUT_KEEP		4096	/* keep smaller buffers when idle */
#define SERVER_SCRATCH		(64 * 1024)

enum conn_wait {
	WAIT_NONE,
	WAIT_STORE,
	WAIT_CACHE,
	WAIT_METRICS,
	WAIT_FETCH,		/* a miss, read from the store */
	WAIT_PAGE		/* a streamed list, its next page */
};

struct conn {
	TAILQ_ENTRY(conn)	 entry;
	RB_ENTRY(conn)		 pending;	/* by reqid while WAIT_STORE */
	TAILQ_ENTRY(conn)	 rentry;	/* WAIT_FETCH, WAIT_PAGE */
	struct conns		*readq;		/* the list rentry is on */
	struct server		*srv;
	int			 fd;
	struct tls		*tls;
	struct tlsgen		*gen;
	struct event		 ev;
	struct reqstate		 rs;		/* the one state machine */
	struct hsentry		 hs;		/* until the handshake is done */
	enum conn_wait		 wait;
	uint64_t		 waitseq;	/* WAIT_CACHE: store seq needed */
	char			 peer_addr[80];
	struct timeval		 deadline;	/* current timeout, absolute */
	uint8_t			*ra;		/* read ahead of OpenSSL */
	size_t			 raoff;
	size_t			 ralen;

	struct peer		*peer;		/* after the handshake */
	uint32_t		 checked;	/* generation whose CRL it passed */
	struct ocspask_waiter	 ow;		/* for its OCSP answer */
	char			 refused[OCSPMSG_WHY_MAX + 64];	/* by OCSP */

	/* the request being read or answered */
	struct buf		 in;
	struct http_parser	 hp;
	struct http_request	 req;
	struct api_req		 ar;		/* what the API sees of it */
	struct http_chunked	 chunk;
	char			*body;
	size_t			 bodylen;
	size_t			 bodyneed;	/* Content-Length: still to come */
	int			 requests;	/* answered on this connection */

	/* the response */
	struct buf		 out;
	size_t			 outoff;
	int			 status;
	const char		*ctype;		/* NULL: application/json */
	size_t			 bodysize;	/* for the log */
	int64_t			 cursor;	/* streaming GET /todo: last id */
	int			 streaming;	/* 1: chunked, 2: until close */
	int			 fromstore;	/* streaming from store pages */
	int			 pagelast;	/* the last page is in */
	struct buf		 page;		/* its items, rendered */
};

/*
 * A read asked of the parent: a batch of misses (every connection waiting
 * for one of its ids) or a page of one streamed list.  At most
 * STOREMSG_READS_MAX are unanswered, the parent's bound; the rest wait on
 * readq and go as answers come back.
 */
struct server_read {
	uint32_t		 reqid;		/* 0: free */
	int			 page;
	struct conns		 conns;
};

static void	conn_io(int, short, void *);
static void	conn_handshake(struct conn *);
static void	conn_read(struct conn *);
static void	conn_write(struct conn *);
static void	conn_close(struct conn *);
static void	conn_tls_close(struct conn *);
static void	conn_free(struct conn *);
static void	conn_idle(struct conn *);
static void	conn_fail(struct conn *, int, const char *);
static int	conn_process(struct conn *);
static int	conn_head(struct conn *);
static int	conn_admit(struct conn *);
static int	conn_body_start(struct conn *);
static int	conn_body(struct conn *);
static int	conn_discard(struct conn *);
static void	conn_written(struct conn *);
static void	conn_kick(struct conn *);
static void	conn_linger(struct conn *);
static void	conn_api(struct conn *);
static void	conn_established(struct conn *);
static void	server_log(struct conn *);
static void	server_accept_pause(struct server *, int);
static void	server_respond(struct conn *, const struct api_resp *);
static void	server_respond_error(struct conn *, int, const char *,
		    const char *);
static void	server_stream_todos(struct conn *);
static void	server_read_ask(int, short, void *);
static void	server_cache_stats(struct server *);

static int
server_conn_cmp(struct conn *a, struct conn *b)
{
	return a->ar.reqid < b->ar.reqid ? -1 : a->ar.reqid > b->ar.reqid;
}

RB_PROTOTYPE(conn_pending, conn, pending, server_conn_cmp);
RB_GENERATE(conn_pending, conn, pending, server_conn_cmp);

void
server_init(struct server *srv, struct event_base *base, struct cache *cache,
    const struct server_port *port)
{
	int	 i;

	memset(srv, 0, sizeof(*srv));
	srv->base = base;
	srv->cache = cache;
	srv->port = *port;
	TAILQ_INIT(&srv->conns);
	TAILQ_INIT(&srv->cachewait);
	TAILQ_INIT(&srv->readq);
	if ((srv->reads = calloc(STOREMSG_READS_MAX,
	    sizeof(*srv->reads))) == NULL)
		fatal("%s", __func__);
	for (i = 0; i < STOREMSG_READS_MAX; i++)
		TAILQ_INIT(&srv->reads[i].conns);
	event_assign(&srv->read_ev, base, -1, 0, server_read_ask, srv);
	hslimit_init(&srv->hs);
	RB_INIT(&srv->waiting);
	srv->ctr = &srv->ctr_local;
	srv->state = &srv->state_local;
	ocspask_init(&srv->ocsp, port->ocsp, port->arg);
	if ((srv->scratch = malloc(SERVER_SCRATCH)) == NULL ||
	    (srv->rabuf = malloc(SERVER_SCRATCH)) == NULL)
		fatal("%s", __func__);
	srv->scratchlen = SERVER_SCRATCH;
}

/* The keyholder's signatures: timed, and a failure marks the handshake. */
void
server_sign_observer(void *arg, uint64_t usec, int ok)
{
	static const uint64_t	 bounds[MET_SIGN_NB] = MET_SIGN_BOUNDS;
	struct server		*srv = arg;
	struct shm_counters	*ctr = srv->ctr;
	int			 i;

	if (!ok) {
		ctr->sign_failed++;
		srv->sign_failed = 1;
		return;
	}
	for (i = 0; i < MET_SIGN_NB && usec > bounds[i]; i++)
		;
	ctr->sign_bucket[i]++;
	ctr->sign_count++;
	ctr->sign_sum_us += usec;
}

static time_t
server_now(struct server *srv)
{
	struct timeval	 tv;

	event_base_gettimeofday_cached(srv->base, &tv);
	return tv.tv_sec;
}

/* (Re)arm the connection's event for what, expiring at its deadline. */
static void
conn_want(struct conn *c, short what)
{
	struct timeval	 now, tv;

	event_base_gettimeofday_cached(c->srv->base, &now);
	timersub(&c->deadline, &now, &tv);
	if (tv.tv_sec < 0 || (tv.tv_sec == 0 && tv.tv_usec <= 0)) {
		tv.tv_sec = 0;
		tv.tv_usec = 1;
	}
	if (event_initialized(&c->ev) && event_get_events(&c->ev) !=
	    (what | EV_PERSIST)) {
		event_del(&c->ev);
		event_assign(&c->ev, c->srv->base, c->fd, what | EV_PERSIST,
		    conn_io, c);
	} else if (!event_initialized(&c->ev))
		event_assign(&c->ev, c->srv->base, c->fd, what | EV_PERSIST,
		    conn_io, c);
	event_add(&c->ev, &tv);
}

static void
conn_set_deadline(struct conn *c, int seconds)
{
	struct timeval	 now;

	event_base_gettimeofday_cached(c->srv->base, &now);
	c->deadline = now;
	c->deadline.tv_sec += seconds;
}

static void
conn_unwant(struct conn *c)
{
	if (event_initialized(&c->ev))
		event_del(&c->ev);
}

/*
 * "127.0.0.1:53012" or "[fe80::1%2]:53012".  Not getnameinfo(): for a
 * link-local peer glibc's opens a socket to name the interface, which the
 * worker's seccomp filter does not allow.
 */
static void
server_peer_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const struct sockaddr_in	*sin = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6	*sin6 = (const struct sockaddr_in6 *)ss;
	char				 host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET && inet_ntop(AF_INET, &sin->sin_addr,
	    host, sizeof(host)) != NULL)
		snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
	else if (ss->ss_family == AF_INET6 && inet_ntop(AF_INET6,
	    &sin6->sin6_addr, host, sizeof(host)) != NULL) {
		if (sin6->sin6_scope_id != 0)
			snprintf(buf, len, "[%s%%%u]:%u", host,
			    sin6->sin6_scope_id, ntohs(sin6->sin6_port));
		else
			snprintf(buf, len, "[%s]:%u", host,
			    ntohs(sin6->sin6_port));
	} else
		strlcpy(buf, "unknown", len);
}

/*
 * libtls reads through these: OpenSSL asks for a record header and then
 * its body, two system calls per request on a socket.  One read(2) fills
 * a shared buffer instead and what OpenSSL did not take waits in the
 * connection (it is usually the rest of the record, a few dozen bytes).
 * While anything waits there, epoll cannot tell: see conn_request_done().
 */
static ssize_t
conn_tls_read(struct tls *tls, void *buf, size_t len, void *arg)
{
	struct conn	*c = arg;
	uint8_t		*rabuf = c->srv->rabuf;
	ssize_t		 n;
	size_t		 take;

	if (c->ralen > 0) {
		take = len < c->ralen ? len : c->ralen;
		memcpy(buf, c->ra + c->raoff, take);
		c->raoff += take;
		if ((c->ralen -= take) == 0) {
			free(c->ra);
			c->ra = NULL;
			c->raoff = 0;
		}
		return take;
	}
	n = read(c->fd, rabuf, c->srv->scratchlen);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? TLS_WANT_POLLIN : -1;
	take = len < (size_t)n ? len : (size_t)n;
	memcpy(buf, rabuf, take);
	if ((size_t)n > take) {
		if ((c->ra = malloc(n - take)) == NULL)
			return -1;
		memcpy(c->ra, rabuf + take, n - take);
		c->ralen = n - take;
		c->raoff = 0;
	}
	return take;
}

static ssize_t
conn_tls_write(struct tls *tls, const void *buf, size_t len, void *arg)
{
	struct conn	*c = arg;
	ssize_t		 n;

	n = write(c->fd, buf, len);
	if (n == -1)
		return errno == EAGAIN || errno == EINTR ? TLS_WANT_POLLOUT :
		    -1;
	/* We answered its hello: a live handshake, not a stalled one. */
	if (n > 0 && c->rs.state == CONN_HANDSHAKE)
		hslimit_touch(&c->srv->hs, &c->hs);
	return n;
}

/*
 * A connection without a finished handshake has to go: the budget for
 * them, its source's share or the descriptor table is full.  Returns 1
 * when one was evicted, 0 when there was none.  One log line a second at
 * most: a flood must not become a flood of log lines.
 */
static int
server_evict(struct server *srv, struct hsentry *e, const char *why)
{
	struct conn	*c;
	time_t		 now = server_now(srv);

	if (e == NULL)
		return 0;
	c = e->owner;
	srv->ctr->hsfail[HSF_TIMEOUT]++;
	srv->hs_evicted++;
	if (now != srv->hs_logtime) {
		log_info("peer=%s tls handshake failed: evicted (%s; %d "
		    "unfinished, %d evicted since the last report)",
		    c->peer_addr, why, srv->hs.n, srv->hs_evicted);
		srv->hs_logtime = now;
		srv->hs_evicted = 0;
	}
	conn_free(c);
	return 1;
}

static void
server_conn_new(struct server *srv, int s, const struct sockaddr_storage *ss)
{
	struct conn	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(s);
		return;
	}
	c->srv = srv;
	c->fd = s;
	server_peer_name(ss, c->peer_addr, sizeof(c->peer_addr));
	if (tls_accept_cbs(srv->tls->server, &c->tls, conn_tls_read,
	    conn_tls_write, c) == -1) {
		log_warnx("peer=%s tls accept: %s", c->peer_addr,
		    tls_error(srv->tls->server));
		close(s);
		free(c);
		return;
	}
	c->gen = srv->tls;
	c->gen->refs++;
	reqstate_init(&c->rs);
	buf_init(&c->in, SERVER_READ_MAX);
	buf_init(&c->out, 0);
	TAILQ_INSERT_TAIL(&srv->conns, c, entry);
	srv->nconns++;
	srv->ctr->conns_open++;
	srv->ctr->conns_total++;
	if (hslimit_add(&srv->hs, &c->hs, ss, c) == -1) {
		conn_free(c);
		return;
	}
	conn_set_deadline(c, srv->conf->main.timeout_handshake);
	conn_want(c, EV_READ);
}

/*
 * Take one connection from the listen queue.  Room is made by evicting
 * the oldest unfinished handshake (never a client that has shown its
 * certificate); only when none is left is the new one refused.  Returns
 * -1 when the queue is empty (or accepting has to pause).
 */
static int
server_accept_one(struct server *srv, struct listener *l)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	int			 s, max = (int)srv->conf->main.max_connections;

	s = accept4(l->fd, (struct sockaddr *)&ss, &len,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (s == -1 && (errno == EMFILE || errno == ENFILE) &&
	    server_evict(srv, hslimit_oldest(&srv->hs), "out of descriptors")) {
		len = sizeof(ss);
		s = accept4(l->fd, (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
	}
	if (s == -1) {
		if (errno == ECONNABORTED || errno == EINTR)
			return 0;	/* the next one may be there */
		if (errno == EMFILE || errno == ENFILE) {
			log_warn("accept on %s", l->name);
			server_accept_pause(srv, 1);
		} else if (errno != EAGAIN)
			log_warn("accept on %s", l->name);
		return -1;
	}
	if (srv->nconns >= max &&
	    !server_evict(srv, hslimit_oldest(&srv->hs), "connection limit")) {
		/* A clean refusal: the client sees a close at once. */
		srv->ctr->conns_refused++;
		close(s);
		return 0;
	}
	server_evict(srv, hslimit_victim(&srv->hs, &ss, HSLIMIT_BUDGET(max),
	    HSLIMIT_PERSOURCE(max)), "handshake budget");
	server_conn_new(srv, s, &ss);
	return 0;
}

/*
 * Calm: one connection per wakeup, so that idle workers win the race for
 * the next.  Many unfinished handshakes (a flood, perhaps): drain the
 * queue, or it fills and good clients' SYNs are dropped (a second's delay
 * each).
 */
static void
server_accept(int fd, short ev, void *arg)
{
	struct listener	*l = arg;
	struct server	*srv = l->owner;
	int		 i, batch;

	batch = srv->hs.n > SERVER_HS_CALM ? SERVER_ACCEPT_BURST :
	    SERVER_ACCEPT_BATCH;
	for (i = 0; i < batch && srv->accepting; i++)
		if (server_accept_one(srv, l) == -1)
			break;
}

static void
server_accept_resume(int fd, short ev, void *arg)
{
	struct server	*srv = arg;

	server_accept_pause(srv, 0);
}

/* Stop (pause=1, for a second) or restart accepting on every listener. */
static void
server_accept_pause(struct server *srv, int pause)
{
	struct listener	*l;
	struct timeval	 tv = { 1, 0 };

	if (srv->conf == NULL)
		return;
	TAILQ_FOREACH(l, &srv->conf->listeners, entry) {
		if (pause)
			event_del(&l->ev);
		else if (!srv->shutdown)
			event_add(&l->ev, NULL);
	}
	if (pause && !srv->shutdown)
		event_base_once(srv->base, -1, EV_TIMEOUT, server_accept_resume,
		    srv, &tv);
}

/*
 * Put wc and its TLS in use: new connections are accepted on its
 * listeners with tls.  The old configuration closes its own descriptors
 * when freed; connections keep the TLS they were accepted with.
 */
void
server_conf_apply(struct server *srv, struct wconf *wc, struct tlsgen *tls)
{
	struct listener	*l;

	if (srv->conf != NULL)
		TAILQ_FOREACH(l, &srv->conf->listeners, entry)
			event_del(&l->ev);
	TAILQ_FOREACH(l, &wc->listeners, entry) {
		l->owner = srv;
		event_assign(&l->ev, srv->base, l->fd, EV_READ | EV_PERSIST,
		    server_accept, l);
		if (!srv->shutdown)
			event_add(&l->ev, NULL);
	}
	srv->accepting = !srv->shutdown;
	wconf_free(srv->conf);
	srv->conf = wc;
	tlsgen_unref(srv->tls);
	srv->tls = tls;
}

static enum met_hsfail
server_hsfail_reason(struct conn *c, const char *err, char *why,
    size_t whylen)
{
	const struct tlshook_verify	*v = tlshook_verify_get(c->tls);
	enum met_hsfail			 r;
	char				 subj[LOG_ESCAPE_SIZE(64)];

	if (c->srv->sign_failed) {
		snprintf(why, whylen, "keyholder signature failed");
		return HSF_KEYHOLDER;
	}
	if (v != NULL) {
		switch (v->error) {
		case X509_V_ERR_CERT_HAS_EXPIRED:
			r = HSF_EXPIRED;
			break;
		case X509_V_ERR_CERT_NOT_YET_VALID:
			r = HSF_NOT_YET_VALID;
			break;
		case X509_V_ERR_CERT_REVOKED:
			r = HSF_REVOKED;
			break;
		case X509_V_ERR_INVALID_PURPOSE:
			r = HSF_BAD_USAGE;
			break;
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
		case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
			r = HSF_UNKNOWN_CA;
			break;
		default:
			r = HSF_BAD_CERT;
			break;
		}
		/* anyone can present any subject: escaped */
		snprintf(why, whylen, "%s (certificate \"%s\")",
		    X509_verify_cert_error_string(v->error), log_escape(subj,
		    sizeof(subj), v->subject, v->subjectlen));
		return r;
	}
	if (err == NULL)
		err = "unknown error";
	if (strstr(err, "peer did not return a certificate") != NULL) {
		snprintf(why, whylen, "no client certificate");
		return HSF_NO_CERT;
	}
	snprintf(why, whylen, "%s", err);
	if (strstr(err, "EOF") != NULL || strstr(err, "eof") != NULL ||
	    strstr(err, "reset") != NULL || strstr(err, "Broken pipe"))
		return HSF_CLOSED;
	if (strstr(err, "alert") != NULL)
		return HSF_OTHER;
	return HSF_PROTOCOL;
}

/*
 * Check the peer of c against the CRL of the generation in use now, once
 * per generation: a reload that revokes the certificate reaches the
 * connections already open for it at their next request.  So does an
 * OCSP answer that says it is revoked, whenever it comes.  Returns 1 when
 * the certificate is still good.
 */
static int
conn_peer_check(struct conn *c, char *why, size_t whylen)
{
	struct tlsgen	*g = c->srv->tls;
	int		 ok;

	if (c->refused[0] != '\0') {
		strlcpy(why, c->refused, whylen);
		return 0;
	}
	if (c->peer->revoked &&
	    c->srv->conf->main.client_ocsp != CONFIG_OCSP_OFF) {
		snprintf(why, whylen, "certificate revoked (OCSP)");
		return 0;
	}
	if (c->checked == g->gen)
		return 1;
	ok = peer_check(c->peer, g->crl, why, whylen);
	if (g->crl != NULL)
		c->srv->ctr->revchecks[MET_REV_CRL][ok ? MET_REV_GOOD :
		    MET_REV_REVOKED]++;
	if (ok)
		c->checked = g->gen;
	return ok;
}

/*
 * What client OCSP makes of c: `require' refuses all but a good answer,
 * `prefer' only a revoked one.  A refused connection is answered 403 at
 * its first request (conn_peer_current), like one cut; then it closes.
 */
static void
conn_ocsp_verdict(struct conn *c, uint32_t status, const char *why)
{
	struct server	*srv = c->srv;
	char		 reason[OCSPMSG_WHY_MAX + 32];

	if (status < MET_REV_NRESULT)
		srv->ctr->revchecks[MET_REV_OCSP][status]++;
	if (status == OCSPMSG_UNKNOWN)
		why = "the responder does not know the certificate";
	snprintf(reason, sizeof(reason), "no good OCSP answer: %s", why);
	switch (ocspask_verdict(srv->conf->main.client_ocsp, status)) {
	case OCSPASK_REFUSE:
		if (status == OCSPMSG_REVOKED)
			snprintf(c->refused, sizeof(c->refused),
			    "certificate revoked (OCSP)");
		else
			strlcpy(c->refused, reason, sizeof(c->refused));
		break;
	case OCSPASK_WARN:
		log_warnx("peer=%s cn=\"%s\" client ocsp: %s: accepted, "
		    "prefer", c->peer_addr, c->peer->cnlog, reason);
		break;
	case OCSPASK_ACCEPT:
		break;
	}
}

/*
 * After the handshake: with client OCSP, the answer the worker holds for
 * the certificate decides, or the connection waits for the parent's (at
 * most `timeout ocsp' seconds, reading nothing meanwhile).
 */
static void
conn_ocsp_start(struct conn *c)
{
	struct server	*srv = c->srv;
	int		 mode = srv->conf->main.client_ocsp;
	char		 why[128];

	if (mode == CONFIG_OCSP_OFF) {
		conn_established(c);
		return;
	}
	if (!ocspask_needed(mode, c->peer, server_now(srv))) {
		conn_ocsp_verdict(c, c->peer->revoked ? OCSPMSG_REVOKED :
		    c->peer->ocsp_status, "");
		conn_established(c);
		return;
	}
	reqstate_ocsp_wait(&c->rs);
	if (ocspask_ask(&srv->ocsp, c->peer, &c->ow, c) == -1) {
		snprintf(why, sizeof(why), "cannot ask the parent: %s",
		    errno == EAGAIN ? "too many queries in flight" :
		    strerror(errno));
		conn_ocsp_verdict(c, OCSPMSG_NOANSWER, why);
		conn_established(c);
		return;
	}
	conn_set_deadline(c, srv->conf->main.timeout_ocsp);
	conn_want(c, 0);	/* the timeout only */
}

/* The parent answered about a certificate connections wait for. */
static void
server_ocsp_answered(void *arg, void *conn, const struct ocspmsg_answer *a)
{
	struct conn	*c = conn;

	conn_ocsp_verdict(c, a->status, a->why);
	reqstate_established(&c->rs);
	conn_set_deadline(c, c->srv->conf->main.timeout_idle);
	conn_kick(c);		/* from the loop: the answer may wake many */
}

/*
 * A responder said a certificate is revoked: every connection open for
 * it here is cut at its next request, and a resumed session of it is
 * refused.
 */
static void
server_ocsp_revoked(struct server *srv, struct ipc_msg *msg)
{
	struct conns	*lists[] = { &srv->conns, &srv->cachewait };
	struct conn	*c;
	struct peer	*p;
	char		 hash[OCSPMSG_HASH_SIZE];
	size_t		 i;

	if (ocspmsg_get_revoked(msg, hash, sizeof(hash)) == -1)
		fatalx("malformed ocsp revocation from parent");
	if ((p = peer_find(&srv->peers, hash)) != NULL)
		p->revoked = 1;
	/* a peer pushed out of the cache may still have connections */
	for (i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		TAILQ_FOREACH(c, lists[i], entry)
			if (c->peer != NULL && strcmp(c->peer->hash, hash) == 0)
				c->peer->revoked = 1;
}

/* The parent's client OCSP messages. */
void
server_ocsp(struct server *srv, struct ipc_msg *msg)
{
	if (msg->hdr.type == IMSG_OCSP_REVOKED)
		server_ocsp_revoked(srv, msg);
	else if (ocspask_answer(&srv->ocsp, msg, server_now(srv),
	    server_ocsp_answered, srv) == -1)
		fatalx("malformed ocsp answer from parent");
}

static void
conn_handshake(struct conn *c)
{
	struct server	*srv = c->srv;
	char		 why[512];
	int		 r, hsf;

	srv->sign_failed = 0;
	r = tls_handshake(c->tls);
	if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT) {
		conn_want(c, r == TLS_WANT_POLLIN ? EV_READ : EV_WRITE);
		return;
	}
	if (r == -1) {
		hsf = server_hsfail_reason(c, tls_error(c->tls), why,
		    sizeof(why));
		srv->ctr->hsfail[hsf]++;
		if (hsf == HSF_REVOKED)
			srv->ctr->revchecks[MET_REV_CRL][MET_REV_REVOKED]++;
		log_info("peer=%s tls handshake failed: %s", c->peer_addr, why);
		conn_linger(c);
		return;
	}
	srv->ctr->handshakes++;
	if ((c->peer = peer_get(&srv->peers, c->tls, why, sizeof(why))) ==
	    NULL) {
		log_warnx("peer=%s client certificate: %s", c->peer_addr, why);
		srv->ctr->hsfail[HSF_BAD_CERT]++;
		conn_close(c);
		return;
	}
	if (tls_conn_session_resumed(c->tls)) {
		srv->ctr->resumed++;
		if (!conn_peer_check(c, why, sizeof(why))) {
			srv->ctr->hsfail[HSF_REVOKED]++;
			log_info("peer=%s resumed session refused: %s",
			    c->peer_addr, why);
			conn_close(c);
			return;
		}
	} else {
		/* libtls verified the chain against this generation's CRL */
		c->checked = c->gen->gen;
		if (c->gen->crl != NULL)
			srv->ctr->revchecks[MET_REV_CRL][MET_REV_GOOD]++;
	}
	log_debug("peer=%s cn=\"%s\" %s %s%s", c->peer_addr, c->peer->cnlog,
	    tls_conn_version(c->tls), tls_conn_cipher(c->tls),
	    tls_conn_session_resumed(c->tls) ? " resumed" : "");
	hslimit_remove(&srv->hs, &c->hs);		/* it has a certificate */
	conn_ocsp_start(c);
}

/* Verified, and its OCSP answer (if any is needed) in: requests come. */
static void
conn_established(struct conn *c)
{
	reqstate_established(&c->rs);
	conn_set_deadline(c, c->srv->conf->main.timeout_idle);
	conn_read(c);
}

/* Back to waiting for a request, with the idle timeout. */
static void
conn_idle(struct conn *c)
{
	http_request_clear(&c->req);
	http_parser_reset(&c->hp);
	free(c->body);
	c->body = NULL;
	c->bodylen = c->bodyneed = 0;
	c->status = 0;
	c->bodysize = 0;
	c->ctype = NULL;
	c->streaming = 0;
	c->fromstore = 0;
	c->wait = WAIT_NONE;
	buf_free(&c->page);
	if (c->in.len == 0 && c->in.size > SERVER_OUT_KEEP)
		buf_free(&c->in);
	conn_set_deadline(c, c->srv->conf->main.timeout_idle);
	if (c->in.len > 0 || c->ralen > 0)
		conn_kick(c);		/* a pipelined request */
	else
		conn_want(c, EV_READ);
}

/*
 * The client broke the request (or was too slow): answer once and close.
 * While a refused body is being dropped the answer is already out, so the
 * connection just closes.
 */
static void
conn_fail(struct conn *c, int status, const char *msg)
{
	if (c->rs.state == CONN_DISCARD) {
		c->rs.clean = 0;
		conn_close(c);
		return;
	}
	c->rs.close = 1;
	server_respond_error(c, status, NULL, msg);
}

/*
 * Read what TLS has for us and act on it.  Every path that may free the
 * connection (a response, an error) is a tail call: nothing here touches c
 * after handing it on.
 */
static void
conn_read(struct conn *c)
{
	struct server	*srv = c->srv;
	ssize_t		 n;
	size_t		 room;
	int		 i;

	for (i = 0; i < 64; i++) {
		if (conn_process(c))
			return;
		room = SERVER_READ_MAX - c->in.len;
		if (room > srv->scratchlen)
			room = srv->scratchlen;
		if (room == 0) {
			conn_fail(c, 413, "request too large");
			return;
		}
		n = tls_read(c->tls, srv->scratch, room);
		if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
			conn_want(c, n == TLS_WANT_POLLIN ? EV_READ : EV_WRITE);
			return;
		}
		if (n == -1) {
			log_debug("peer=%s read: %s", c->peer_addr,
			    tls_error(c->tls));
			conn_free(c);
			return;
		}
		if (n == 0) {
			c->rs.clean = 1;	/* the client has stopped */
			conn_close(c);
			return;
		}
		if (buf_add(&c->in, srv->scratch, n) == -1) {
			conn_fail(c, 413, "request too large");
			return;
		}
	}
	/* a fast client: let the others have a turn */
	conn_kick(c);
}

/*
 * Make progress on what c->in holds, in the reading states.  Returns 1
 * when the connection was handed on (to the API, or to a response): the
 * caller must not touch it again.  Returns 0 when more bytes are needed.
 */
static int
conn_process(struct conn *c)
{
	switch (c->rs.state) {
	case CONN_IDLE:
		if (c->in.len == 0)
			return 0;
		reqstate_begin(&c->rs);
		conn_set_deadline(c, c->srv->conf->main.timeout_request);
		conn_want(c, EV_READ);
		return conn_head(c);
	case CONN_HEAD:
		return conn_head(c);
	case CONN_BODY:
		return conn_body(c);
	case CONN_DISCARD:
		return conn_discard(c);
	default:
		return 1;	/* not reading */
	}
}

static int
conn_head(struct conn *c)
{
	size_t	 consumed;
	int	 r, status;

	if (c->in.len == 0)
		return 0;
	r = http_parse_head(&c->hp, (char *)c->in.data, c->in.len,
	    &c->req, &consumed, &status);
	if (r == HTTP_PARSE_MORE)
		return 0;
	if (r == HTTP_PARSE_ERROR) {
		conn_fail(c, status, NULL);
		return 1;
	}
	buf_consume(&c->in, consumed);
	reqstate_head(&c->rs, &c->req);
	return conn_admit(c);
}

/*
 * A certificate revoked since the connection was verified gets no more
 * requests: this one is refused and the connection closes after the
 * answer (its tickets no longer resume: the policy named in them changed).
 */
static int
conn_peer_current(struct conn *c)
{
	char	 why[sizeof(c->refused)];

	if (conn_peer_check(c, why, sizeof(why)))
		return 1;
	if (c->refused[0] != '\0')
		log_info("peer=%s cn=\"%s\" connection refused: %s",
		    c->peer_addr, c->peer->cnlog, why);
	else {
		c->srv->ctr->conns_cut++;
		log_info("peer=%s cn=\"%s\" connection cut: %s", c->peer_addr,
		    c->peer->cnlog, why);
	}
	c->rs.close = 1;
	server_respond_error(c, 403, NULL, why);
	return 0;
}

/* What the API reads of the worker, as it is now. */
static void
server_api_env(struct server *srv, struct api_env *env)
{
	env->cache = srv->cache;
	env->store_seq = __atomic_load_n(&srv->state->store_seq,
	    __ATOMIC_ACQUIRE);
	env->rules = &srv->conf->rules;
	env->shared = srv->state->shared;
}

/*
 * The API sees the head once: it refuses the request (and it is answered
 * here), or admits it, and then gets the complete request once its body
 * is in.
 */
static int
conn_admit(struct conn *c)
{
	struct api_env	 env;
	struct api_resp	 r;

	if (!conn_peer_current(c))
		return 1;
	c->ar.http = &c->req;
	c->ar.peer = c->peer;
	c->ar.body = NULL;
	c->ar.bodylen = 0;
	server_api_env(c->srv, &env);
	api_resp_init(&r);
	if (api_admit(&env, &c->ar, &r) != API_ADMIT) {
		server_respond(c, &r);
		api_resp_free(&r);
		return 1;
	}
	api_resp_free(&r);
	reqstate_admit(&c->rs, c->in.len > 0);
	if (c->rs.state == CONN_API) {
		conn_api(c);
		return 1;
	}
	if (conn_body_start(c) == -1)
		return 1;
	if (c->rs.state == CONN_CONTINUE) {
		buf_add_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
		conn_write(c);
		return 1;
	}
	return conn_body(c);
}

/* Set up reading a body: to keep (BODY), or to drop (DISCARD). */
static int
conn_body_start(struct conn *c)
{
	c->bodylen = 0;
	c->bodyneed = c->rs.length > 0 ? (size_t)c->rs.length : 0;
	if (c->rs.body != REQ_BODY_CHUNKED)
		return 0;
	http_chunked_init(&c->chunk);
	if (c->rs.state == CONN_DISCARD)
		return 0;
	if ((c->body = malloc(HTTP_MAX_BODY)) == NULL) {
		conn_fail(c, 500, "out of memory");
		return -1;
	}
	return 0;
}

/* Returns 1 when the connection was handed on, 0 when more is needed. */
static int
conn_body(struct conn *c)
{
	size_t	 consumed;
	int	 r, status;

	if (c->rs.body == REQ_BODY_CHUNKED) {
		r = http_chunked_feed(&c->chunk, (char *)c->in.data,
		    c->in.len, &consumed, c->body, &c->bodylen,
		    HTTP_MAX_BODY, &status);
		if (r == HTTP_PARSE_ERROR) {
			conn_fail(c, status, status == 413 ?
			    "request body too large" : "bad chunked encoding");
			return 1;
		}
		buf_consume(&c->in, consumed);
		if (r == HTTP_PARSE_MORE)
			return 0;
	} else {
		if (c->in.len < c->bodyneed)
			return 0;
		if ((c->body = malloc(c->bodyneed + 1)) == NULL) {
			conn_fail(c, 500, "out of memory");
			return 1;
		}
		memcpy(c->body, c->in.data, c->bodyneed);
		c->body[c->bodyneed] = '\0';
		c->bodylen = c->bodyneed;
		buf_consume(&c->in, c->bodyneed);
	}
	reqstate_body_done(&c->rs);
	conn_api(c);
	return 1;
}

/* A GET waits until the worker's cache has every acknowledged write. */
static void
conn_wait_cache(struct conn *c, uint64_t seq)
{
	struct server	*srv = c->srv;

	c->waitseq = seq;
	c->wait = WAIT_CACHE;
	conn_unwant(c);
	TAILQ_REMOVE(&srv->conns, c, entry);
	TAILQ_INSERT_TAIL(&srv->cachewait, c, entry);
}

/* Work for the parent: the connection waits for server_reply(). */
static void
conn_wait_parent(struct conn *c, struct api_resp *r, enum api_verdict v)
{
	struct server	*srv = c->srv;
	int		 rv;

	if (v == API_STORE) {
		rv = srv->port.store(srv->port.arg, r->store);
		r->store = NULL;	/* the port has it */
	} else if (v == API_SYNC)
		rv = srv->port.sync(srv->port.arg, c->ar.reqid);
	else
		rv = srv->port.metrics(srv->port.arg, c->ar.reqid);
	if (rv == -1) {
		server_respond_error(c, 503, NULL, v != API_METRICS ?
		    "store unavailable" : "metrics unavailable");
		return;
	}
	c->wait = v != API_METRICS ? WAIT_STORE : WAIT_METRICS;
	RB_INSERT(conn_pending, &srv->waiting, c);
}

/* A miss or a page: asked of the parent with others, this turn. */
static void
conn_wait_read(struct conn *c, enum conn_wait why)
{
	struct server	*srv = c->srv;

	c->wait = why;
	c->readq = &srv->readq;
	TAILQ_INSERT_TAIL(&srv->readq, c, rentry);
	event_active(&srv->read_ev, EV_TIMEOUT, 1);
}

static struct server_read *
server_read_free(struct server *srv)
{
	int	 i;

	for (i = 0; i < STOREMSG_READS_MAX; i++)
		if (srv->reads[i].reqid == 0)
			return &srv->reads[i];
	return NULL;
}

static void
server_read_move(struct conn *c, struct server_read *rd)
{
	TAILQ_REMOVE(c->readq, c, rentry);
	c->readq = &rd->conns;
	TAILQ_INSERT_TAIL(&rd->conns, c, rentry);
}

/* The misses waiting now, up to a batch, one id once. */
static void
server_read_batch(struct server *srv, struct server_read *rd,
    struct storemsg_read *q)
{
	struct conn	*c, *next;
	uint32_t	 i;

	q->type = IMSG_STORE_READ;
	TAILQ_FOREACH_SAFE(c, &srv->readq, rentry, next) {
		if (c->wait != WAIT_FETCH)
			continue;
		for (i = 0; i < q->nids && q->ids[i] != c->ar.id; i++)
			;
		if (i == q->nids) {
			if (q->nids == STOREMSG_READ_IDS)
				continue;
			q->ids[q->nids++] = c->ar.id;
		}
		server_read_move(c, rd);
	}
}

/* The answer will not come: each waiting connection hears so. */
static void
server_read_fail(struct server_read *rd)
{
	struct conn	*c;
	struct api_resp	 r;

	rd->reqid = 0;
	while ((c = TAILQ_FIRST(&rd->conns)) != NULL) {
		TAILQ_REMOVE(&rd->conns, c, rentry);
		c->readq = NULL;
		if (c->wait == WAIT_PAGE) {
			log_warnx("peer=%s GET /todo cut short: the store "
			    "did not answer", c->peer_addr);
			conn_free(c);
			continue;
		}
		c->wait = WAIT_NONE;
		api_resp_init(&r);
		api_fetch_reply(&c->ar, NULL, 0, 1, &r);
		server_respond(c, &r);
		api_resp_free(&r);
	}
}

/*
 * Ask the parent for what waits on readq, a page of a list (one
 * connection) or a batch of misses (many) at a time, while fewer than
 * STOREMSG_READS_MAX are unanswered.
 */
static void
server_read_ask(int fd, short ev, void *arg)
{
	struct server		*srv = arg;
	struct server_read	*rd;
	struct storemsg_read	 q;
	struct ipc_wbuf		*wb;
	struct conn		*c;

	while ((c = TAILQ_FIRST(&srv->readq)) != NULL &&
	    (rd = server_read_free(srv)) != NULL) {
		memset(&q, 0, sizeof(q));
		if ((rd->page = c->wait == WAIT_PAGE)) {
			q.type = IMSG_STORE_PAGE;
			q.after = c->cursor > 0 ? c->cursor : 0;
			q.limit = STOREMSG_PAGE_MAX;
			server_read_move(c, rd);
			srv->ctr->store_pages++;
		} else
			server_read_batch(srv, rd, &q);
		if ((rd->reqid = ++srv->nextreq) == 0)
			rd->reqid = ++srv->nextreq;
		if ((wb = storemsg_encode_read(rd->reqid, &q)) == NULL ||
		    srv->port.store(srv->port.arg, wb) == -1)
			server_read_fail(rd);
	}
}

/* The whole request is in: what the API says, done once. */
static void
conn_api(struct conn *c)
{
	struct server	*srv = c->srv;
	struct api_env	 env;
	struct api_resp	 r;
	enum api_verdict v;

	c->ar.body = c->body;
	c->ar.bodylen = c->bodylen;
	if ((c->ar.reqid = ++srv->nextreq) == 0)
		c->ar.reqid = ++srv->nextreq;
	server_api_env(srv, &env);
	api_resp_init(&r);
	switch ((v = api_request(&env, &c->ar, &r))) {
	case API_WAIT_CACHE:
		conn_wait_cache(c, r.seq);
		break;
	case API_STORE:
	case API_METRICS:
	case API_SYNC:
		conn_wait_parent(c, &r, v);
		break;
	case API_FETCH:
		srv->ctr->cache_misses++;
		conn_wait_read(c, WAIT_FETCH);
		break;
	default:
		if (r.cache_hit)
			srv->ctr->cache_hits++;
		server_respond(c, &r);
		break;
	}
	api_resp_free(&r);
}

/* The items of a batch of misses, rendered once for every waiting GET. */
struct server_found {
	struct server	*srv;
	const uint64_t	*seq;		/* the store's when it was read */
	int		 n;
	int64_t		 id[STOREMSG_READ_IDS];
	struct buf	 json[STOREMSG_READ_IDS];
};

static int
server_found_item(void *arg, const struct storemsg_item *it)
{
	struct server_found	*f = arg;

	if (f->n == STOREMSG_READ_IDS)
		return 0;	/* not asked: the parent keeps to the batch */
	buf_init(&f->json[f->n], 0);
	if (json_add_todo(&f->json[f->n], it->id, it->task, it->tasklen,
	    it->done) == -1)
		fatal("%s", __func__);
	f->id[f->n++] = it->id;
	if (f->srv->cache->ready && *f->seq == f->srv->cache->seq &&
	    cache_put(f->srv->cache, it->id, it->task,
	    it->tasklen, it->done) == -1)
		fatal("cache");
	return 0;
}

/*
 * The answer to a batch of misses.  The items go into the cache too when
 * no change came since the parent read them (its sequence then is ours):
 * otherwise a change may be newer than what was read.
 */
static void
server_read_found(struct server *srv, struct server_read *rd,
    struct ipc_msg *msg)
{
	struct server_found	 f;
	struct conn		*c;
	struct api_resp		 r;
	uint64_t		 seq;
	uint8_t			 flags;
	int			 i;

	memset(&f, 0, sizeof(f));
	f.srv = srv;
	f.seq = &seq;
	if (storemsg_decode_items(msg, &seq, &flags, server_found_item,
	    &f) == -1)
		fatalx("malformed store items from parent");
	rd->reqid = 0;
	while ((c = TAILQ_FIRST(&rd->conns)) != NULL) {
		TAILQ_REMOVE(&rd->conns, c, rentry);
		c->readq = NULL;
		c->wait = WAIT_NONE;
		for (i = 0; i < f.n && f.id[i] != c->ar.id; i++)
			;
		api_resp_init(&r);
		api_fetch_reply(&c->ar, i < f.n ? (char *)f.json[i].data :
		    NULL, i < f.n ? f.json[i].len : 0,
		    (flags & STOREMSG_ITEMS_FAILED) != 0, &r);
		server_respond(c, &r);
		api_resp_free(&r);
	}
	for (i = 0; i < f.n; i++)
		buf_free(&f.json[i]);
}

static int
server_page_item(void *arg, const struct storemsg_item *it)
{
	struct conn	*c = arg;

	if (c->cursor > 0)
		buf_add(&c->page, ",", 1);
	if (json_add_todo(&c->page, it->id, it->task, it->tasklen,
	    it->done) == -1)
		fatal("%s", __func__);
	c->cursor = it->id;
	return 0;
}

/*
 * A page of a streamed list: its items are rendered, and the stream goes
 * on.  An empty page that is not the last is taken as the last (every row
 * of it unusable): the cursor could not move on.
 */
static void
server_read_page(struct server *srv, struct server_read *rd,
    struct ipc_msg *msg)
{
	struct conn	*c = TAILQ_FIRST(&rd->conns);
	uint64_t	 seq;
	uint8_t		 flags;
	int64_t		 before;

	rd->reqid = 0;
	if (c == NULL)
		return;		/* the connection is gone */
	TAILQ_REMOVE(&rd->conns, c, rentry);
	c->readq = NULL;
	c->wait = WAIT_NONE;
	before = c->cursor;
	if (storemsg_decode_items(msg, &seq, &flags, server_page_item,
	    c) == -1)
		fatalx("malformed store page from parent");
	if (flags & STOREMSG_ITEMS_FAILED) {
		TAILQ_INSERT_TAIL(&rd->conns, c, rentry);
		c->wait = WAIT_PAGE;
		server_read_fail(rd);
		return;
	}
	if ((flags & STOREMSG_ITEMS_LAST) || c->cursor == before)
		c->pagelast = 1;
	conn_write(c);
}

static void
server_read_reply(struct server *srv, struct ipc_msg *msg)
{
	struct server_read	*rd = NULL;
	int			 i;

	for (i = 0; i < STOREMSG_READS_MAX; i++)
		if (srv->reads[i].reqid == msg->hdr.peerid &&
		    msg->hdr.peerid != 0)
			rd = &srv->reads[i];
	if (rd == NULL)
		fatalx("store items for read %u, not asked",
		    msg->hdr.peerid);
	if (rd->page)
		server_read_page(srv, rd, msg);
	else
		server_read_found(srv, rd, msg);
	server_cache_stats(srv);
	if (!TAILQ_EMPTY(&srv->readq))
		event_active(&srv->read_ev, EV_TIMEOUT, 1);
}

/* The parent's answer to a store or metrics request resumes its GET. */
void
server_reply(struct server *srv, struct ipc_msg *msg)
{
	struct conn	 key, *c;
	struct api_resp	 r;

	if (msg->hdr.type == IMSG_STORE_ITEMS) {
		server_read_reply(srv, msg);
		return;
	}
	key.ar.reqid = msg->hdr.peerid;
	if ((c = RB_FIND(conn_pending, &srv->waiting, &key)) == NULL)
		return;		/* the connection is gone */
	RB_REMOVE(conn_pending, &srv->waiting, c);
	c->wait = WAIT_NONE;
	api_resp_init(&r);
	if (msg->hdr.type == IMSG_STORE_SYNCED) {
		/* caught up: the GET again; or r is its 503 */
		if (api_sync_reply(&c->ar, msg, &r)) {
			api_resp_free(&r);
			conn_api(c);
			return;
		}
	} else if (msg->hdr.type == IMSG_STORE_REPLY)
		api_store_reply(&c->ar, msg, &r);
	else
		api_metrics_reply(msg, &r);
	server_respond(c, &r);
	api_resp_free(&r);
}

/* The cache's figures, for the metrics. */
static void
server_cache_stats(struct server *srv)
{
	srv->ctr->cache_items = srv->cache->count;
	srv->ctr->cache_bytes = srv->cache->cost;
	srv->ctr->cache_evicted = srv->cache->evicted;
}

/* Resume the GETs that waited for the cache to catch up with the store. */
void
server_cache_wake(struct server *srv)
{
	struct conn	*c, *next;

	server_cache_stats(srv);
	if (!srv->cache->ready)
		return;
	TAILQ_FOREACH_SAFE(c, &srv->cachewait, entry, next) {
		if (c->waitseq > srv->cache->seq)
			continue;
		TAILQ_REMOVE(&srv->cachewait, c, entry);
		TAILQ_INSERT_TAIL(&srv->conns, c, entry);
		c->wait = WAIT_NONE;
		conn_api(c);
	}
}

/*
 * Read and drop the body of a refused request, so that the connection
 * can carry the next one (nginx does the same).  Bad framing closes it:
 * the answer is already out.
 */
static int
conn_discard(struct conn *c)
{
	size_t	 consumed, n;
	int	 r, status;

	if (c->rs.body == REQ_BODY_CHUNKED) {
		r = http_chunked_feed(&c->chunk, (char *)c->in.data,
		    c->in.len, &consumed, NULL, &c->bodylen, HTTP_MAX_BODY,
		    &status);
		if (r == HTTP_PARSE_ERROR) {
			conn_fail(c, status, NULL);
			return 1;
		}
		buf_consume(&c->in, consumed);
		if (r == HTTP_PARSE_MORE)
			return 0;
	} else {
		n = c->in.len < c->bodyneed ? c->in.len : c->bodyneed;
		buf_consume(&c->in, n);
		if ((c->bodyneed -= n) > 0)
			return 0;
	}
	reqstate_discarded(&c->rs);
	if (c->rs.state == CONN_CLOSE) {
		conn_close(c);
		return 1;
	}
	conn_idle(c);
	return 0;
}

static const char *
server_date(struct server *srv)
{
	time_t		 now = server_now(srv);
	struct tm	 tm;

	if (now != srv->datetime) {
		srv->datetime = now;
		gmtime_r(&now, &tm);
		strftime(srv->date, sizeof(srv->date),
		    "%a, %d %b %Y %H:%M:%S GMT", &tm);
	}
	return srv->date;
}

static void
server_count(struct conn *c)
{
	int	 m, s;

	switch (c->req.method) {
	case HTTP_M_GET:
		m = MET_M_GET;
		break;
	case HTTP_M_POST:
		m = MET_M_POST;
		break;
	case HTTP_M_PATCH:
		m = MET_M_PATCH;
		break;
	case HTTP_M_DELETE:
		m = MET_M_DELETE;
		break;
	default:
		m = MET_M_OTHER;
		break;
	}
	if ((s = met_status_index(c->status)) >= 0)
		c->srv->ctr->requests[m][s]++;
}

static void
server_log(struct conn *c)
{
	const char	*target = c->req.target ? c->req.target : "-";
	const char	*method = c->req.method_name[0] ? c->req.method_name :
			    "-";
	char		 t[204], m[LOG_ESCAPE_SIZE(24)];

	/*
	 * What the client sent is escaped, whatever the parser allowed; the
	 * target is cut at 200 characters, "..." saying so.
	 */
	log_info("peer=%s cn=\"%s\" \"%s %s HTTP/1.%d\" %d %zu", c->peer_addr,
	    c->peer ? c->peer->cnlog : "", log_escape(m, sizeof(m), method,
	    strlen(method)), log_escape(t, sizeof(t), target, strlen(target)),
	    c->req.version == 10 ? 0 : 1, c->status, c->bodysize);
}

/* Status line and headers; body_len < 0: chunked or until close. */
static void
server_head(struct conn *c, int status, const char *extra, ssize_t bodylen)
{
	struct server	*srv = c->srv;

	c->status = status;
	buf_printf(&c->out, "HTTP/1.1 %d %s\r\nDate: %s\r\n"
	    "Content-Type: %s\r\n", status, http_status_text(status),
	    server_date(srv), c->ctype ? c->ctype : "application/json");
	/* RFC 9110 8.6: none in a 204; a 304's would be the 200's length */
	if (bodylen >= 0 && status != 204 && status != 304)
		buf_printf(&c->out, "Content-Length: %zd\r\n", bodylen);
	else if (c->streaming == 1)
		buf_add_str(&c->out, "Transfer-Encoding: chunked\r\n");
	if (extra != NULL)
		buf_add_str(&c->out, extra);
	if (c->rs.close)
		buf_add_str(&c->out, "Connection: close\r\n");
	else if (c->req.version == 10)
		buf_add_str(&c->out, "Connection: keep-alive\r\n");
	buf_add(&c->out, "\r\n", 2);
}

/*
 * Queue the response to the current request, as the API (or the server,
 * for its own errors) made it.  reqstate decides whether the connection
 * stays open after it, and refuses a second response to one request.
 */
static void
server_respond(struct conn *c, const struct api_resp *r)
{
	size_t	 len = r->body.len;

	if (c->srv->shutdown || r->stream == 2)
		c->rs.close = 1;	/* HTTP/1.0 stream: the close ends it */
	if (reqstate_respond(&c->rs, r->status) == -1) {
		log_warnx("peer=%s response %d in state %s not sent: the "
		    "request has its answer", c->peer_addr, r->status,
		    reqstate_name(c->rs.state));
		return;
	}
	c->ctype = r->ctype;
	c->streaming = r->stream;
	c->fromstore = r->from_store;
	c->pagelast = 0;
	c->cursor = -1;
	c->bodysize = 0;
	server_head(c, r->status, r->extra[0] ? r->extra : NULL,
	    c->streaming ? -1 : (ssize_t)len);
	if (c->streaming)
		server_stream_todos(c);
	else if (len > 0) {
		buf_add(&c->out, r->body.data, len);
		c->bodysize = len;
	}
	server_count(c);
	conn_write(c);
}

/* An error from the server itself, in the API's form ({"error":...}). */
static void
server_respond_error(struct conn *c, int status, const char *extra,
    const char *msg)
{
	struct api_resp	 r;

	api_resp_init(&r);
	api_resp_error(&r, status, extra, msg);
	server_respond(c, &r);
	api_resp_free(&r);
}

/* A chunk begins (chunked): its size is patched in by server_chunk_end. */
static size_t
server_chunk_begin(struct conn *c)
{
	size_t	 hdr = c->out.len;

	/* leading zeros are fine in a chunk size */
	if (c->streaming == 1)
		buf_add(&c->out, "00000000\r\n", 10);
	return hdr;
}

/* The chunk from hdr is done; an empty one is taken back (it would end
 * the body), unless it is the last. */
static void
server_chunk_end(struct conn *c, size_t hdr, int last)
{
	size_t	 len = c->out.len - hdr - (c->streaming == 1 ? 10 : 0);
	char	 hex[24];

	c->bodysize += len;
	if (c->streaming == 1 && len == 0)
		c->out.len = hdr;
	else if (c->streaming == 1) {
		snprintf(hex, sizeof(hex), "%08zx", len);
		memcpy(c->out.data + hdr, hex, 8);
		buf_add(&c->out, "\r\n", 2);
	}
	if (!last)
		return;
	if (c->streaming == 1)
		buf_add(&c->out, "0\r\n\r\n", 5);
	c->streaming = 0;
}

/*
 * The list from the store, page by page (the cache does not hold every
 * item): what the last page brought goes out, and the next page is asked
 * for at once, so that it comes while this one is written.  Every page is
 * read after the request came: every write acknowledged before it is in.
 */
static void
server_stream_store(struct conn *c, size_t hdr)
{
	int	 last = c->pagelast;

	if (c->page.len > 0) {
		buf_add(&c->out, c->page.data, c->page.len);
		c->page.len = 0;
	}
	if (last)
		buf_add(&c->out, "]}", 2);
	server_chunk_end(c, hdr, last);
	if (last)
		buf_free(&c->page);
	else if (c->wait != WAIT_PAGE)
		conn_wait_read(c, WAIT_PAGE);
}

/*
 * GET /todo for a list too long to render at once: the body goes out in
 * chunks taken from the cache with a cursor (the id last sent), so memory
 * stays bounded and no item is copied twice.  An item changed while the
 * response streams shows its state at the time its chunk is made.  When
 * the cache stops holding every item (it had to drop some), the rest of
 * the list comes from the store, after the same cursor.
 * streaming: 1 chunked (HTTP/1.1), 2 delimited by the close (HTTP/1.0).
 */
static void
server_stream_todos(struct conn *c)
{
	struct cache		*cache = c->srv->cache;
	struct cache_item	*it = NULL;
	size_t			 hdr, before;

	if (c->streaming == 0)
		return;
	hdr = server_chunk_begin(c);
	if (c->cursor < 0) {
		buf_add_str(&c->out, c->peer->cnjson);
		buf_add_str(&c->out, ",\"todos\":[");
		c->cursor = 0;
		if (!c->fromstore)
			it = cache_first(cache);
	} else if (!c->fromstore)
		it = cache_after(cache, c->cursor);
	if (!c->fromstore && !cache->complete)
		c->fromstore = 1;
	if (c->fromstore) {
		server_stream_store(c, hdr);
		return;
	}
	before = c->out.len;
	for (; it != NULL && c->out.len - before < SERVER_STREAM_CHUNK;
	    it = cache_after(cache, it->id)) {
		if (c->cursor > 0)
			buf_add(&c->out, ",", 1);
		buf_add(&c->out, it->json, it->len);
		c->cursor = it->id;
	}
	if (it == NULL)
		buf_add(&c->out, "]}", 2);
	server_chunk_end(c, hdr, it == NULL);
}

static void
conn_write(struct conn *c)
{
	ssize_t	 n;

	for (;;) {
		while (c->outoff < c->out.len) {
			n = tls_write(c->tls, c->out.data + c->outoff,
			    c->out.len - c->outoff);
			if (n == TLS_WANT_POLLIN || n == TLS_WANT_POLLOUT) {
				/* a slow reader gets the idle timeout */
				conn_set_deadline(c,
				    c->srv->conf->main.timeout_idle);
				conn_want(c, n == TLS_WANT_POLLIN ?
				    EV_READ : EV_WRITE);
				return;
			}
			if (n == -1) {
				log_debug("peer=%s write: %s", c->peer_addr,
				    tls_error(c->tls));
				conn_free(c);
				return;
			}
			c->outoff += n;
			c->srv->ctr->bytes_out += n;
		}
		c->outoff = 0;
		c->out.len = 0;
		if (c->streaming == 0)
			break;
		server_stream_todos(c);
		if (c->out.len == 0) {
			/* a page of the store's list to wait for */
			conn_unwant(c);
			return;
		}
	}
	if (c->out.size > SERVER_OUT_KEEP)
		buf_free(&c->out);
	if (c->rs.state == CONN_WRITE) {
		server_log(c);
		c->requests++;
	}
	conn_written(c);
}

/* Everything queued is out: what reqstate says comes next. */
static void
conn_written(struct conn *c)
{
	reqstate_written(&c->rs);
	switch (c->rs.state) {
	case CONN_BODY:		/* that was 100 Continue */
		conn_kick(c);
		break;
	case CONN_DISCARD:
		conn_body_start(c);
		conn_set_deadline(c, c->srv->conf->main.timeout_request);
		conn_kick(c);
		break;
	case CONN_CLOSE:
		conn_close(c);
		break;
	default:
		conn_idle(c);
		break;
	}
}

/* Continue reading from the event loop rather than recursing. */
static void
conn_kick(struct conn *c)
{
	conn_want(c, EV_READ);
	event_active(&c->ev, EV_READ, 1);
}

/* Begin the close_notify, with its own short deadline. */
static void
conn_close(struct conn *c)
{
	reqstate_close(&c->rs);
	conn_set_deadline(c, SERVER_CLOSE_TIMEOUT);
	conn_tls_close(c);
}

/* Go on with the close_notify; then free, or linger. */
static void
conn_tls_close(struct conn *c)
{
	int	 r;

	r = tls_close(c->tls);
	if (r == TLS_WANT_POLLIN || r == TLS_WANT_POLLOUT) {
		conn_want(c, r == TLS_WANT_POLLIN ? EV_READ : EV_WRITE);
		return;
	}
	/*
	 * After an error the client may still be sending what we did not
	 * read; it must see our answer, not a reset.
	 */
	if (c->rs.clean && c->in.len == 0 && c->ralen == 0)
		conn_free(c);
	else
		conn_linger(c);
}

/*
 * The last bytes (an alert after a failed handshake, or a response and
 * close_notify) are on their way; closing a socket with unread input would
 * reset the connection and the client could lose them (a TLS 1.3 client
 * sends its request at once; a client may still be sending a body we
 * refused).  So: no more writes, discard what comes in, close on end of
 * file or after a second.
 */
static void
conn_linger(struct conn *c)
{
	ssize_t	 n;
	int	 i;

	if (c->rs.state != CONN_LINGER) {
		reqstate_linger(&c->rs);
		shutdown(c->fd, SHUT_WR);
		conn_set_deadline(c, 1);
	}
	for (i = 0; i < 16; i++) {
		n = read(c->fd, c->srv->scratch, c->srv->scratchlen);
		if (n > 0)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			break;
		conn_free(c);
		return;
	}
	conn_want(c, EV_READ);
}

static void
conn_free(struct conn *c)
{
	struct server	*srv = c->srv;

	conn_unwant(c);
	hslimit_remove(&srv->hs, &c->hs);
	if (c->status != 0 && c->rs.state == CONN_WRITE)
		server_log(c);		/* the response did not get out */
	ocspask_leave(&c->ow);
	if (c->wait == WAIT_STORE || c->wait == WAIT_METRICS)
		RB_REMOVE(conn_pending, &srv->waiting, c);
	if (c->readq != NULL)
		TAILQ_REMOVE(c->readq, c, rentry);
	if (c->wait == WAIT_CACHE)
		TAILQ_REMOVE(&srv->cachewait, c, entry);
	else
		TAILQ_REMOVE(&srv->conns, c, entry);
	tls_free(c->tls);
	close(c->fd);
	tlsgen_unref(c->gen);
	http_request_clear(&c->req);
	peer_unref(c->peer);
	free(c->body);
	free(c->ra);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->page);
	free(c);
	srv->nconns--;
	srv->ctr->conns_open--;
	if (srv->shutdown && srv->nconns == 0)
		event_base_loopexit(srv->base, NULL);
}

static void
conn_timeout(struct conn *c)
{
	struct server	*srv = c->srv;
	char		 why[64];

	switch (reqstate_timeout(&c->rs)) {
	case REQ_TO_408:
		conn_fail(c, 408, "request not received in time");
		break;
	case REQ_TO_CLOSE:
		conn_close(c);
		break;
	case REQ_TO_NONE:
		conn_unwant(c);		/* the parent, not the client, is late */
		break;
	case REQ_TO_OCSP:
		ocspask_leave(&c->ow);
		snprintf(why, sizeof(why), "no answer within %d seconds",
		    srv->conf->main.timeout_ocsp);
		conn_ocsp_verdict(c, OCSPMSG_NOANSWER, why);
		conn_established(c);
		break;
	case REQ_TO_FREE:
		if (c->rs.state == CONN_HANDSHAKE) {
			srv->ctr->hsfail[HSF_TIMEOUT]++;
			log_info("peer=%s tls handshake failed: timeout",
			    c->peer_addr);
		}
		conn_free(c);
		break;
	}
}

static void
conn_io(int fd, short ev, void *arg)
{
	struct conn	*c = arg;

	if (ev & EV_TIMEOUT) {
		conn_timeout(c);
		return;
	}
	switch (c->rs.state) {
	case CONN_HANDSHAKE:
		conn_handshake(c);
		break;
	case CONN_IDLE:
	case CONN_HEAD:
	case CONN_BODY:
	case CONN_DISCARD:
		conn_read(c);
		break;
	case CONN_CONTINUE:
	case CONN_WRITE:
		conn_write(c);
		break;
	case CONN_CLOSE:
		conn_tls_close(c);
		break;
	case CONN_LINGER:
		conn_linger(c);
		break;
	case CONN_OCSP:		/* only its timeout is armed */
		break;
	case CONN_ADMIT:
	case CONN_API:
		conn_unwant(c);
		break;
	}
}

/*
 * Graceful stop: no new connections; idle ones close now; the others close
 * after their current response.  The worker exits when none are left.
 */
void
server_shutdown(struct server *srv)
{
	struct conn	*c, *next;
	struct listener	*l;

	srv->shutdown = 1;
	srv->accepting = 0;
	if (srv->conf != NULL)
		TAILQ_FOREACH(l, &srv->conf->listeners, entry)
			event_del(&l->ev);
	TAILQ_FOREACH_SAFE(c, &srv->conns, entry, next) {
		if (c->rs.state == CONN_IDLE ||
		    c->rs.state == CONN_HANDSHAKE ||
		    c->rs.state == CONN_OCSP)	/* nothing read from it yet */
			conn_free(c);
		else
			c->rs.close = 1;
	}
	TAILQ_FOREACH(c, &srv->cachewait, entry)
		c->rs.close = 1;
	if (srv->nconns == 0)
		event_base_loopexit(srv->base, NULL);
}
