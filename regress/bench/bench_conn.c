/*
 * todod-bench: the connection slots.  Each slot drives one non-blocking
 * socket through connect, TLS handshake, request and response; sockets
 * are registered edge-triggered once, so every step runs until OpenSSL
 * reports WANT_READ or WANT_WRITE (the socket said EAGAIN) and the next
 * edge wakes it again.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bench.h"

enum step {
	STEP_BLOCK,		/* wait for the next epoll event */
	STEP_AGAIN		/* the state changed: run it */
};

static int	conn_new_session(SSL *, SSL_SESSION *);
static void	slot_next(struct bench_slot *);
static void	slot_connect(struct bench_slot *);
static void	slot_close(struct bench_slot *);
static void	slot_fail(struct bench_slot *, enum bench_err, const char *,
		    ...) __attribute__((__format__(printf, 3, 4)));
static void	slot_finish(struct bench_slot *);
static void	slot_drive(struct bench_slot *, uint32_t);
static enum step slot_step_connecting(struct bench_slot *, uint32_t);
static enum step slot_step_handshake(struct bench_slot *);
static enum step slot_step_send(struct bench_slot *);
static enum step slot_step_recv(struct bench_slot *);
static enum step slot_step_idle(struct bench_slot *);
static void	slot_complete(struct bench_slot *);
static void	slot_ssl_reason(struct bench_slot *, int, char *, size_t);
static void	thread_scan(struct bench_thread *, int64_t);
static void	thread_finish(struct bench_thread *);

int64_t
conn_now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NSEC + ts.tv_nsec;
}

/*
 * One context for every thread (SSL_CTX is safe to share once set up).
 * Sessions are kept per slot by the new-session callback, never by
 * OpenSSL's internal client cache, so "full" really is full.
 */
SSL_CTX *
conn_ctx_new(const struct bench_opts *o, int resume)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		goto fail;
	if (!SSL_CTX_set_min_proto_version(ctx, o->proto) ||
	    !SSL_CTX_set_max_proto_version(ctx, o->proto))
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (!SSL_CTX_load_verify_file(ctx, o->ca)) {
		fprintf(stderr, "todod-bench: %s: cannot load CA\n", o->ca);
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (!SSL_CTX_use_certificate_chain_file(ctx, o->cert)) {
		fprintf(stderr, "todod-bench: %s: cannot load certificate\n",
		    o->cert);
		goto fail;
	}
	if (!SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) ||
	    !SSL_CTX_check_private_key(ctx)) {
		fprintf(stderr, "todod-bench: %s: cannot load key, or it does "
		    "not match %s\n", o->key, o->cert);
		goto fail;
	}
	if (resume) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT |
		    SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ctx, conn_new_session);
	} else
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
 fail:
	ERR_print_errors_fp(stderr);
	SSL_CTX_free(ctx);
	return NULL;
}

/* Keeps the newest session (ticket) the server gave this slot. */
static int
conn_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct bench_slot	*s = SSL_get_app_data(ssl);

	if (s == NULL)
		return 0;
	SSL_SESSION_free(s->session);
	s->session = sess;
	return 1;
}

static void
slot_set_request(struct bench_slot *s)
{
	struct bench_shared	*sh = s->thr->sh;
	const struct bench_opts	*o = sh->opts;
	char			 body[128];
	int			 blen, n;

	if (o->mode == MODE_GET && o->items > 0) {
		/* GET PATH<random id in 1..items>: the cache's misses */
		n = snprintf(s->post, sizeof(s->post), "GET %s%llu HTTP/1.1\r\n"
		    "Host: %s\r\n\r\n", o->path, (unsigned long long)
		    (random() % o->items) + 1, sh->hosthdr);
		s->req = s->post;
		s->req_len = n < 0 || (size_t)n >= sizeof(s->post) ? 0 : n;
		return;
	}
	if (o->mode != MODE_POST && o->mode != MODE_FILL) {
		s->req = sh->get_req;
		s->req_len = sh->get_len;
		return;
	}
	blen = snprintf(body, sizeof(body),
	    "{\"task\":\"bench %llu\",\"done\":false}",
	    (unsigned long long)atomic_fetch_add(&sh->seq, 1) + 1);
	n = snprintf(s->post, sizeof(s->post), "POST %s HTTP/1.1\r\n"
	    "Host: %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %d\r\n\r\n%s", o->path, sh->hosthdr, blen, body);
	if (n < 0 || (size_t)n >= sizeof(s->post))
		n = 0;		/* opts_check keeps the path short enough */
	s->req = s->post;
	s->req_len = n;
}

/* Starts the slot's next request, or retires the slot. */
static void
slot_next(struct bench_slot *s)
{
	struct bench_thread	*t = s->thr;
	struct bench_shared	*sh = t->sh;
	const struct bench_opts	*o = sh->opts;
	int64_t			 now = conn_now();

	if (now >= atomic_load(&sh->t_end)) {
		slot_finish(s);
		return;
	}
	if (o->mode == MODE_FILL && !s->retried) {
		if (atomic_fetch_add(&sh->claimed, 1) >= o->items) {
			slot_finish(s);
			return;
		}
	}
	s->retried = 0;
	s->req_start = now;
	s->deadline = now + BENCH_TIMEOUT;
	s->req_off = 0;
	slot_set_request(s);
	if (s->fd != -1) {
		s->state = SLOT_SEND;
		return;
	}
	if (s->reconnect) {
		t->st.reconnects++;
		s->reconnect = 0;
	}
	slot_connect(s);
}

static void
slot_connect(struct bench_slot *s)
{
	struct bench_thread	*t = s->thr;
	struct bench_shared	*sh = t->sh;
	const struct bench_opts	*o = sh->opts;
	struct epoll_event	 ev;
	int			 one = 1;

	s->fd = socket(sh->addr.ss_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd == -1) {
		slot_fail(s, ERR_IO, "socket: %s", strerror(errno));
		return;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->gen++;
	s->served = 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.u64 = (uint64_t)s->gen << 32 | s->idx;
	if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, s->fd, &ev) == -1) {
		slot_fail(s, ERR_IO, "epoll_ctl: %s", strerror(errno));
		return;
	}
	if ((s->ssl = SSL_new(sh->ctx)) == NULL ||
	    !SSL_set_fd(s->ssl, s->fd)) {
		slot_fail(s, ERR_IO, "SSL_new failed");
		return;
	}
	SSL_set_app_data(s->ssl, s);
	if (sh->sni) {
		SSL_set_tlsext_host_name(s->ssl, o->servername);
		SSL_set1_host(s->ssl, o->servername);
	} else
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl),
		    o->servername);
	if (sh->resume && s->session != NULL)
		SSL_set_session(s->ssl, s->session);
	SSL_set_connect_state(s->ssl);
	if (connect(s->fd, (struct sockaddr *)&sh->addr, sh->addrlen) == 0)
		s->state = SLOT_HANDSHAKE;
	else if (errno == EINPROGRESS)
		s->state = SLOT_CONNECTING;
	else
		slot_fail(s, ERR_IO, "connect: %s", strerror(errno));
}

static void
slot_close(struct bench_slot *s)
{
	if (s->ssl != NULL) {
		/* close_notify keeps the session resumable */
		if (SSL_is_init_finished(s->ssl))
			SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
		ERR_clear_error();
	}
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
	}
}

static void
slot_fail(struct bench_slot *s, enum bench_err kind, const char *fmt, ...)
{
	struct bench_thread	*t = s->thr;
	va_list			 ap;

	t->st.err[kind]++;
	if (t->errmsg[kind][0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(t->errmsg[kind], sizeof(t->errmsg[kind]), fmt, ap);
		va_end(ap);
	}
	slot_close(s);
	s->reconnect = 0;
	if (t->sh->opts->mode == MODE_IDLE) {
		t->nconnecting--;
		atomic_fetch_add(&t->sh->settled, 1);
		slot_finish(s);
		return;
	}
	/* the request that failed is tried again (fill keeps its item) */
	s->retried = 1;
	s->state = SLOT_WAIT;
	s->wake = conn_now() + BENCH_BACKOFF;
}

static void
slot_finish(struct bench_slot *s)
{
	if (s->state == SLOT_DONE)
		return;
	slot_close(s);
	s->state = SLOT_DONE;
	s->thr->ndone++;
}

static void
slot_drive(struct bench_slot *s, uint32_t events)
{
	enum step	 st = STEP_AGAIN;

	while (st == STEP_AGAIN) {
		switch (s->state) {
		case SLOT_CONNECTING:
			st = slot_step_connecting(s, events);
			break;
		case SLOT_HANDSHAKE:
			st = slot_step_handshake(s);
			break;
		case SLOT_SEND:
			st = slot_step_send(s);
			break;
		case SLOT_RECV:
			st = slot_step_recv(s);
			break;
		case SLOT_IDLE:
			st = slot_step_idle(s);
			break;
		default:
			st = STEP_BLOCK;
			break;
		}
		events = 0;
	}
}

/* Only an epoll event for this very socket can end a connect. */
static enum step
slot_step_connecting(struct bench_slot *s, uint32_t events)
{
	socklen_t	 len = sizeof(int);
	int		 e = 0;

	if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
		return STEP_BLOCK;
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) == -1)
		e = errno;
	if (e != 0) {
		slot_fail(s, ERR_IO, "connect: %s", strerror(e));
		return STEP_AGAIN;
	}
	s->state = SLOT_HANDSHAKE;
	return STEP_AGAIN;
}

static void
slot_ssl_reason(struct bench_slot *s, int r, char *buf, size_t len)
{
	long		 v;
	unsigned long	 e;
	int		 se = SSL_get_error(s->ssl, r);

	if ((v = SSL_get_verify_result(s->ssl)) != X509_V_OK)
		snprintf(buf, len, "server certificate: %s",
		    X509_verify_cert_error_string(v));
	else if ((e = ERR_peek_error()) != 0)
		ERR_error_string_n(e, buf, len);
	else if (se == SSL_ERROR_SYSCALL && errno != 0)
		snprintf(buf, len, "%s", strerror(errno));
	else if (se == SSL_ERROR_ZERO_RETURN || se == SSL_ERROR_SYSCALL)
		snprintf(buf, len, "connection closed by the server");
	else
		snprintf(buf, len, "SSL error %d", se);
}

static enum step
slot_step_handshake(struct bench_slot *s)
{
	struct bench_thread	*t = s->thr;
	char			 why[160];
	int			 r, e;

	ERR_clear_error();
	errno = 0;
	if ((r = SSL_connect(s->ssl)) == 1) {
		if (conn_now() >= atomic_load(&t->sh->t_measure)) {
			t->st.handshakes++;
			if (SSL_session_reused(s->ssl))
				t->st.resumed++;
		}
		s->state = SLOT_SEND;
		return STEP_AGAIN;
	}
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return STEP_BLOCK;
	slot_ssl_reason(s, r, why, sizeof(why));
	slot_fail(s, ERR_HANDSHAKE, "handshake: %s", why);
	return STEP_AGAIN;
}

static enum step
slot_step_send(struct bench_slot *s)
{
	char	 why[160];
	int	 r, e;

	ERR_clear_error();
	errno = 0;
	r = SSL_write(s->ssl, s->req + s->req_off, s->req_len - s->req_off);
	if (r > 0) {
		s->req_off += r;
		if (s->req_off < s->req_len)
			return STEP_AGAIN;
		resp_init(&s->resp);
		s->got_bytes = 0;
		s->state = SLOT_RECV;
		/*
		 * The answer cannot be there yet, and its arrival is a new
		 * edge: save the read that would only say EAGAIN.
		 */
		return STEP_BLOCK;
	}
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return STEP_BLOCK;
	slot_ssl_reason(s, r, why, sizeof(why));
	slot_fail(s, s->served == 0 ? ERR_HANDSHAKE : ERR_IO, "write: %s",
	    why);
	return STEP_AGAIN;
}

/*
 * The connection ended before the response did.  A keep-alive connection
 * the server closed before it saw our request is not an error: like a
 * browser, reconnect and send it again (once).
 */
static void
slot_recv_eof(struct bench_slot *s, int r)
{
	char	 why[160];

	if (resp_eof(&s->resp)) {
		slot_complete(s);
		return;
	}
	if (!s->got_bytes && s->served > 0 && !s->retried) {
		slot_close(s);
		s->thr->st.reconnects++;
		s->retried = 1;
		s->req_off = 0;
		slot_connect(s);
		return;
	}
	slot_ssl_reason(s, r, why, sizeof(why));
	/* TLS 1.3: a rejected client certificate shows up at the first read */
	slot_fail(s, s->served == 0 && !s->got_bytes ? ERR_HANDSHAKE : ERR_IO,
	    "read: %s", why);
}

static enum step
slot_step_recv(struct bench_slot *s)
{
	struct bench_thread	*t = s->thr;
	char			 why[160];
	ssize_t			 n;
	int			 r, e;

	ERR_clear_error();
	errno = 0;
	r = SSL_read(s->ssl, t->rbuf, BENCH_RBUF);
	if (r > 0) {
		s->got_bytes = 1;
		n = resp_feed(&s->resp, t->rbuf, r, why, sizeof(why));
		if (n == -1) {
			slot_fail(s, ERR_IO, "response: %s", why);
			return STEP_AGAIN;
		}
		if (s->resp.state == RESP_DONE) {
			if (n < r) {
				slot_fail(s, ERR_IO, "response: %zd bytes "
				    "after its end", r - n);
				return STEP_AGAIN;
			}
			slot_complete(s);
		}
		return STEP_AGAIN;
	}
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return STEP_BLOCK;
	slot_recv_eof(s, r);
	return STEP_AGAIN;
}

/* idle mode: notice when the server drops an established connection */
static enum step
slot_step_idle(struct bench_slot *s)
{
	int	 r, e;

	ERR_clear_error();
	r = SSL_read(s->ssl, s->thr->rbuf, BENCH_RBUF);
	if (r > 0)
		return STEP_AGAIN;
	e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return STEP_BLOCK;
	slot_finish(s);
	return STEP_BLOCK;
}

static void
slot_complete(struct bench_slot *s)
{
	struct bench_thread	*t = s->thr;
	struct bench_shared	*sh = t->sh;
	enum bench_mode		 mode = sh->opts->mode;
	int64_t			 now = conn_now();

	t->st.req_total++;
	s->served++;
	s->retried = 0;
	if (s->resp.status != sh->expect) {
		t->st.err[ERR_STATUS]++;
		if (t->errmsg[ERR_STATUS][0] == '\0')
			snprintf(t->errmsg[ERR_STATUS],
			    sizeof(t->errmsg[ERR_STATUS]),
			    "status %d, expected %d", s->resp.status,
			    sh->expect);
	} else if (now >= atomic_load(&sh->t_measure) &&
	    now < atomic_load(&sh->t_end)) {
		t->st.req++;
		t->st.bytes += s->resp.bytes;
		hist_add(&t->st.lat, (now - s->req_start) / 1000);
	}
	if (mode == MODE_FULL || mode == MODE_RESUME)
		slot_close(s);
	else if (s->resp.close) {
		slot_close(s);
		s->reconnect = 1;
	}
	if (mode == MODE_IDLE) {
		t->nconnecting--;
		atomic_fetch_add(&sh->settled, 1);
		if (s->fd == -1) {
			slot_finish(s);
			return;
		}
		t->st.established++;
		s->state = SLOT_IDLE;
		return;
	}
	slot_next(s);
}

static void
thread_scan(struct bench_thread *t, int64_t now)
{
	struct bench_slot	*s;
	int			 i;

	for (i = 0; i < t->nslots; i++) {
		s = &t->slots[i];
		switch (s->state) {
		case SLOT_PENDING:
			if (t->nconnecting >= BENCH_IDLE_BURST)
				break;
			t->nconnecting++;
			slot_next(s);
			slot_drive(s, 0);
			break;
		case SLOT_WAIT:
			if (now < s->wake)
				break;
			slot_next(s);
			slot_drive(s, 0);
			break;
		case SLOT_CONNECTING:
		case SLOT_HANDSHAKE:
		case SLOT_SEND:
		case SLOT_RECV:
			if (now < s->deadline)
				break;
			slot_fail(s, ERR_TIMEOUT, "no answer in %lld s",
			    BENCH_TIMEOUT / NSEC);
			break;
		default:
			break;
		}
	}
}

/*
 * Idle mode counts what is still open; a request that waited through the
 * whole measured window (a run shorter than the 10 s timeout) is counted
 * as a timeout, so a server that stops answering never reports 0 errors.
 * Then everything is closed.
 */
static void
thread_finish(struct bench_thread *t)
{
	struct bench_shared	*sh = t->sh;
	struct bench_slot	*s;
	int64_t			 now = conn_now(), stall;
	int			 i;

	stall = atomic_load(&sh->t_end) - atomic_load(&sh->t_measure);
	if (stall > BENCH_TIMEOUT)
		stall = BENCH_TIMEOUT;
	for (i = 0; i < t->nslots; i++) {
		s = &t->slots[i];
		if (s->state >= SLOT_CONNECTING && s->state <= SLOT_RECV &&
		    now - s->req_start >= stall) {
			t->st.err[ERR_TIMEOUT]++;
			if (t->errmsg[ERR_TIMEOUT][0] == '\0')
				snprintf(t->errmsg[ERR_TIMEOUT],
				    sizeof(t->errmsg[ERR_TIMEOUT]),
				    "no answer for the whole run (%.1f s)",
				    (now - s->req_start) / (double)NSEC);
		}
		if (s->state == SLOT_IDLE) {
			slot_drive(s, 0);
			if (s->state == SLOT_IDLE)
				t->st.open++;
		}
		slot_close(s);
		SSL_SESSION_free(s->session);
		s->session = NULL;
	}
}

void *
conn_thread_main(void *arg)
{
	struct bench_thread	*t = arg;
	struct bench_shared	*sh = t->sh;
	struct epoll_event	 evs[256];
	struct bench_slot	*s;
	int64_t			 now, end, last = 0, left;
	uint32_t		 idx, gen;
	int			 i, n, ms;

	for (i = 0; i < t->nslots; i++) {
		s = &t->slots[i];
		if (s->state == SLOT_PENDING)
			continue;
		slot_next(s);
		slot_drive(s, 0);
	}
	for (;;) {
		now = conn_now();
		end = atomic_load(&sh->t_end);
		if (now >= end || t->ndone == t->nslots)
			break;
		if (now - last >= 10 * 1000000LL) {
			thread_scan(t, now);
			last = now;
		}
		left = (end - now + 999999) / 1000000;
		ms = left < 10 ? (int)left : 10;
		if ((n = epoll_wait(t->epfd, evs, 256, ms)) == -1) {
			if (errno == EINTR)
				continue;
			snprintf(t->errmsg[ERR_IO], sizeof(t->errmsg[ERR_IO]),
			    "epoll_wait: %s", strerror(errno));
			t->st.err[ERR_IO]++;
			break;
		}
		for (i = 0; i < n; i++) {
			idx = evs[i].data.u64 & 0xffffffff;
			gen = evs[i].data.u64 >> 32;
			if (idx >= (uint32_t)t->nslots)
				continue;
			s = &t->slots[idx];
			/* an event for a socket this slot already closed */
			if (s->gen != gen || s->fd == -1)
				continue;
			slot_drive(s, evs[i].events);
		}
	}
	thread_finish(t);
	return NULL;
}
