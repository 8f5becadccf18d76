#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <event2/dns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/http.h>

#include "fetch.h"
#include "log.h"

/*
 * One exchange: resolve (evdns), connect (non-blocking), then let
 * OSSL_HTTP_REQ_CTX_nbio() write the request and read the answer a step
 * at a time as the socket becomes ready.  A single timer bounds the
 * whole exchange; the answer's size is bounded by OpenSSL as it reads.
 */

struct fetch {
	struct event_base	*base;
	char			*host;
	char			*port;
	char			*path;		/* path and query */
	char			*ctype;		/* POST: content type */
	ASN1_TYPE		*req;		/* POST: the request */
	size_t			 max;
	int			 timeout;
	fetch_done_cb		*cb;
	void			*arg;

	struct evdns_getaddrinfo_request *dnsreq;
	struct evutil_addrinfo	*ai;
	struct evutil_addrinfo	*aicur;
	int			 cancelled;	/* during name resolution */
	int			 fd;
	BIO			*bio;
	OSSL_HTTP_REQ_CTX	*rctx;
	struct event		 ioev;
	struct event		 timer;
	struct event		 kick;
};

static struct evdns_base	*fetch_dns;

static void	fetch_connect(struct fetch *);
static void	fetch_next_addr(struct fetch *, int);

static void
fetch_free(struct fetch *f)
{
	event_del(&f->ioev);
	event_del(&f->timer);
	event_del(&f->kick);
	OSSL_HTTP_REQ_CTX_free(f->rctx);
	BIO_free(f->bio);
	if (f->fd != -1)
		close(f->fd);
	if (f->ai != NULL)
		evutil_freeaddrinfo(f->ai);
	ASN1_TYPE_free(f->req);
	free(f->host);
	free(f->port);
	free(f->path);
	free(f->ctype);
	free(f);
}

/* The one way out: the callback, then the fetch is gone. */
static void
fetch_finish(struct fetch *f, const uint8_t *der, size_t len,
    const char *err)
{
	f->cb(f->arg, der, len, err);
	fetch_free(f);
}

/* The last OpenSSL error, or what, when OpenSSL has none. */
static void
fetch_fail_ssl(struct fetch *f, const char *what)
{
	char		 msg[256], ebuf[200];
	const char	*data = NULL;
	unsigned long	 e;
	int		 flags = 0;

	/* the first error is the cause; its data has the HTTP status */
	if ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
		snprintf(msg, sizeof(msg), "%s: %s%s%s", what, ebuf,
		    (flags & ERR_TXT_STRING) && data ? " " : "",
		    (flags & ERR_TXT_STRING) && data ? data : "");
	} else
		snprintf(msg, sizeof(msg), "%s", what);
	ERR_clear_error();
	fetch_finish(f, NULL, 0, msg);
}

static void
fetch_wait(struct fetch *f, short what, void (*fn)(int, short, void *))
{
	event_del(&f->ioev);
	event_assign(&f->ioev, f->base, f->fd, what, fn, f);
	event_add(&f->ioev, NULL);
}

/* Let OpenSSL write the request and read the answer as far as it can. */
static void
fetch_step(int fd, short ev, void *arg)
{
	struct fetch	*f = arg;
	BIO		*mem;
	char		*data;
	long		 len;
	int		 r;

	ERR_clear_error();
	r = OSSL_HTTP_REQ_CTX_nbio(f->rctx);
	if (r == -1) {
		fetch_wait(f, BIO_should_write(f->bio) ? EV_WRITE : EV_READ,
		    fetch_step);
		return;
	}
	if (r == 0) {
		fetch_fail_ssl(f, "HTTP exchange failed");
		return;
	}
	/* with an ASN.1 answer expected, the memory BIO holds its DER */
	if ((mem = OSSL_HTTP_REQ_CTX_get0_mem_bio(f->rctx)) == NULL ||
	    (len = BIO_get_mem_data(mem, &data)) <= 0) {
		fetch_finish(f, NULL, 0, "empty answer");
		return;
	}
	fetch_finish(f, (uint8_t *)data, len, NULL);
}

static int
fetch_request(struct fetch *f)
{
	char	 host[300];

	if ((f->bio = BIO_new_socket(f->fd, BIO_NOCLOSE)) == NULL ||
	    (f->rctx = OSSL_HTTP_REQ_CTX_new(f->bio, f->bio, 0)) == NULL)
		return -1;
	snprintf(host, sizeof(host), "%s:%s", f->host, f->port);
	if (!OSSL_HTTP_REQ_CTX_set_request_line(f->rctx, f->req != NULL,
	    NULL, NULL, f->path) ||
	    !OSSL_HTTP_REQ_CTX_add1_header(f->rctx, "Host", host) ||
	    !OSSL_HTTP_REQ_CTX_set_expected(f->rctx, NULL, 1, 0, 0))
		return -1;
	OSSL_HTTP_REQ_CTX_set_max_response_length(f->rctx, f->max);
	if (f->req != NULL && !OSSL_HTTP_REQ_CTX_set1_req(f->rctx, f->ctype,
	    ASN1_ITEM_rptr(ASN1_ANY), (const ASN1_VALUE *)f->req))
		return -1;
	return 0;
}

static void
fetch_connected(int fd, short ev, void *arg)
{
	struct fetch	*f = arg;
	socklen_t	 sl = sizeof(int);
	int		 e = 0;

	if (getsockopt(f->fd, SOL_SOCKET, SO_ERROR, &e, &sl) == -1)
		e = errno;
	if (e != 0) {
		fetch_next_addr(f, e);
		return;
	}
	if (fetch_request(f) == -1) {
		fetch_fail_ssl(f, "HTTP request");
		return;
	}
	fetch_step(fd, ev, f);
}

/* Connect to the current address; on failure, on to the next one. */
static void
fetch_connect(struct fetch *f)
{
	struct evutil_addrinfo	*ai = f->aicur;

	f->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, ai->ai_protocol);
	if (f->fd == -1) {
		fetch_next_addr(f, errno);
		return;
	}
	if (connect(f->fd, ai->ai_addr, ai->ai_addrlen) == -1 &&
	    errno != EINPROGRESS) {
		fetch_next_addr(f, errno);
		return;
	}
	fetch_wait(f, EV_WRITE, fetch_connected);
}

/* The address list is finite: each call moves one step along it. */
static void
fetch_next_addr(struct fetch *f, int e)
{
	char	 msg[256];

	if (f->fd != -1)
		close(f->fd);
	f->fd = -1;
	if ((f->aicur = f->aicur->ai_next) == NULL) {
		snprintf(msg, sizeof(msg), "connect to %s port %s: %s",
		    f->host, f->port, strerror(e));
		fetch_finish(f, NULL, 0, msg);
		return;
	}
	fetch_connect(f);
}

static void
fetch_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct fetch	*f = arg;
	char		 msg[256];

	f->dnsreq = NULL;
	if (f->cancelled) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		fetch_free(f);
		return;
	}
	if (result != 0 || res == NULL) {
		snprintf(msg, sizeof(msg), "%s: %s", f->host,
		    evutil_gai_strerror(result));
		fetch_finish(f, NULL, 0, msg);
		return;
	}
	f->ai = f->aicur = res;
	fetch_connect(f);
}

static void
fetch_begin(int fd, short ev, void *arg)
{
	struct fetch		*f = arg;
	struct evutil_addrinfo	 hints;

	if (fetch_dns == NULL &&
	    (fetch_dns = evdns_base_new(f->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL &&
	    (fetch_dns = evdns_base_new(f->base, 0)) == NULL) {
		fetch_finish(f, NULL, 0, "no name resolver");
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	/* the callback may run before this returns (numeric addresses) */
	f->dnsreq = evdns_getaddrinfo(fetch_dns, f->host, f->port, &hints,
	    fetch_resolved, f);
}

static void
fetch_expired(int fd, short ev, void *arg)
{
	struct fetch	*f = arg;
	char		 msg[64];

	snprintf(msg, sizeof(msg), "no answer within %d seconds",
	    f->timeout);
	if (f->dnsreq != NULL) {
		/* the resolver still holds f: it frees it once cancelled */
		f->cb(f->arg, NULL, 0, msg);
		fetch_cancel(f);
		return;
	}
	fetch_finish(f, NULL, 0, msg);
}

/* Split an http:// URL; refuse anything else. */
static int
fetch_parse_url(const char *url, char **host, char **port, char **path,
    char *err, size_t errlen)
{
	char	*user = NULL, *p = NULL, *query = NULL, *frag = NULL;
	int	 ssl = 0, ok = 0;

	*host = *port = *path = NULL;
	if (strncmp(url, "http://", 7) != 0)
		snprintf(err, errlen, "%s: only http:// URLs are fetched", url);
	else if (!OSSL_HTTP_parse_url(url, &ssl, &user, host, port, NULL, &p,
	    &query, &frag))
		snprintf(err, errlen, "%s: not a valid URL", url);
	else if (ssl || (user != NULL && *user != '\0'))
		snprintf(err, errlen, "%s: no https or user in the URL", url);
	else if (*host == NULL || **host == '\0')
		snprintf(err, errlen, "%s: no host in the URL", url);
	else if (asprintf(path, "%s%s%s", p, query && *query ? "?" : "",
	    query ? query : "") == -1) {
		*path = NULL;
		snprintf(err, errlen, "out of memory");
	} else
		ok = 1;
	OPENSSL_free(user);
	OPENSSL_free(p);
	OPENSSL_free(query);
	OPENSSL_free(frag);
	if (!ok) {
		OPENSSL_free(*host);
		OPENSSL_free(*port);
		free(*path);
		*host = *port = *path = NULL;
	}
	return ok ? 0 : -1;
}

int
fetch_url_ok(const char *url, char *err, size_t errlen)
{
	char	*host, *port, *path;

	if (fetch_parse_url(url, &host, &port, &path, err, errlen) == -1)
		return 0;
	OPENSSL_free(host);
	OPENSSL_free(port);
	free(path);
	return 1;
}

static int
fetch_set_req(struct fetch *f, const char *ctype, const uint8_t *req,
    size_t reqlen)
{
	const unsigned char	*p = req;

	if (req == NULL)
		return 0;
	if ((f->ctype = strdup(ctype)) == NULL ||
	    (f->req = d2i_ASN1_TYPE(NULL, &p, reqlen)) == NULL ||
	    p != req + reqlen)
		return -1;
	return 0;
}

struct fetch *
fetch_start(struct event_base *base, const char *url, const char *ctype,
    const uint8_t *req, size_t reqlen, size_t max, int timeout,
    fetch_done_cb *cb, void *arg, char *err, size_t errlen)
{
	struct fetch	*f;
	char		*host, *port, *path;
	struct timeval	 tv = { timeout, 0 }, now = { 0, 0 };

	if (fetch_parse_url(url, &host, &port, &path, err, errlen) == -1)
		return NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		OPENSSL_free(host);
		OPENSSL_free(port);
		free(path);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->base = base;
	f->fd = -1;
	f->host = strdup(host);
	f->port = strdup(port);
	f->path = path;
	OPENSSL_free(host);
	OPENSSL_free(port);
	f->max = max;
	f->timeout = timeout;
	f->cb = cb;
	f->arg = arg;
	evtimer_assign(&f->timer, base, fetch_expired, f);
	evtimer_assign(&f->kick, base, fetch_begin, f);
	event_assign(&f->ioev, base, -1, 0, fetch_step, f);
	if (f->host == NULL || f->port == NULL ||
	    fetch_set_req(f, ctype, req, reqlen) == -1) {
		snprintf(err, errlen, "%s: bad request or out of memory", url);
		fetch_free(f);
		return NULL;
	}
	evtimer_add(&f->timer, &tv);
	/* start from the loop: the callback never runs inside this call */
	evtimer_add(&f->kick, &now);
	return f;
}

void
fetch_cancel(struct fetch *f)
{
	if (f == NULL)
		return;
	if (f->dnsreq != NULL) {
		/* the resolver calls fetch_resolved, which frees f */
		f->cancelled = 1;
		event_del(&f->timer);
		evdns_getaddrinfo_cancel(f->dnsreq);
		return;
	}
	fetch_free(f);
}
