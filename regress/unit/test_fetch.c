/*
 * daemon/fetch.c against a real HTTP server on loopback (a forked child
 * answering each connection as the test case says): a DER answer, a POST
 * whose body reaches the server, a 404, an answer over the size bound, a
 * server that never answers, a refused connection, URLs that are refused.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fetch.h"
#include "tap.h"

/* A DER SEQUENCE { INTEGER 5 } and a larger one. */
static const uint8_t	 small[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };

struct result {
	int	 done;
	uint8_t	 der[8192];
	size_t	 len;
	char	 err[256];
};

/* The server side: one answer per connection, chosen by the path. */
static void
serve_one(int s)
{
	char		 req[4096], hdr[256], big[4096];
	ssize_t		 n, got = 0;

	while (got < (ssize_t)sizeof(req) - 1 &&
	    (n = read(s, req + got, sizeof(req) - 1 - got)) > 0) {
		got += n;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL &&
		    (strncmp(req, "POST", 4) != 0 ||
		    got >= (ssize_t)(strstr(req, "\r\n\r\n") - req + 4 + 5)))
			break;
	}
	req[got > 0 ? got : 0] = '\0';
	if (strncmp(req, "GET /ok", 7) == 0 ||
	    (strncmp(req, "POST /echo ", 11) == 0 &&
	    memcmp(strstr(req, "\r\n\r\n") + 4, small, sizeof(small)) == 0)) {
		snprintf(hdr, sizeof(hdr), "HTTP/1.0 200 OK\r\nContent-Type: "
		    "application/pkix-crl\r\nContent-Length: %zu\r\n\r\n",
		    sizeof(small));
		write(s, hdr, strlen(hdr));
		write(s, small, sizeof(small));
	} else if (strncmp(req, "GET /big ", 9) == 0) {
		memset(big, 0, sizeof(big));
		big[0] = 0x30;
		big[1] = 0x82;
		big[2] = 0x0f;
		big[3] = 0xfc;
		snprintf(hdr, sizeof(hdr), "HTTP/1.0 200 OK\r\n"
		    "Content-Length: 4096\r\n\r\n");
		write(s, hdr, strlen(hdr));
		write(s, big, sizeof(big));
	} else if (strncmp(req, "GET /silent ", 12) == 0) {
		sleep(4);
	} else {
		snprintf(hdr, sizeof(hdr), "HTTP/1.0 404 Not Found\r\n"
		    "Content-Length: 0\r\n\r\n");
		write(s, hdr, strlen(hdr));
	}
	close(s);
}

static pid_t
server_start(int *port)
{
	struct sockaddr_in	 sin;
	socklen_t		 sl = sizeof(sin);
	pid_t			 pid;
	int			 l, s, i;

	l = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(l, 16) == -1 ||
	    getsockname(l, (struct sockaddr *)&sin, &sl) == -1)
		exit(1);
	*port = ntohs(sin.sin_port);
	if ((pid = fork()) == 0) {
		alarm(30);
		for (i = 0; i < 20; i++) {
			if ((s = accept(l, NULL, NULL)) == -1)
				_exit(1);
			if (fork() == 0) {
				serve_one(s);
				_exit(0);
			}
			close(s);
		}
		_exit(0);
	}
	close(l);
	return pid;
}

static void
done_cb(void *arg, const uint8_t *der, size_t len, const char *err)
{
	struct result	*r = arg;

	r->done++;
	if (der != NULL && len <= sizeof(r->der)) {
		memcpy(r->der, der, len);
		r->len = len;
	}
	snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
}

/* Run one fetch to its end (bounded: the fetch's timeout plus a margin). */
static int
run(struct event_base *base, const char *url, const uint8_t *req,
    size_t reqlen, size_t max, int timeout, struct result *r, time_t *took)
{
	struct fetch	*f;
	char		 err[256];
	time_t		 t0 = time(NULL);
	int		 i;

	memset(r, 0, sizeof(*r));
	f = fetch_start(base, url, "application/ocsp-request", req, reqlen,
	    max, timeout, done_cb, r, err, sizeof(err));
	if (f == NULL) {
		snprintf(r->err, sizeof(r->err), "%s", err);
		return -1;
	}
	if (r->done)
		return -2;	/* called from inside fetch_start */
	for (i = 0; i < 1000 && !r->done && time(NULL) - t0 < timeout + 5;
	    i++)
		event_base_loop(base, EVLOOP_ONCE);
	if (took != NULL)
		*took = time(NULL) - t0;
	return r->done == 1 ? 0 : -3;
}

int
main(void)
{
	struct event_base	*base;
	struct result		 r;
	struct fetch		*f;
	char			 url[128], err[256];
	time_t			 took;
	pid_t			 srv;
	int			 port, dead;

	signal(SIGPIPE, SIG_IGN);
	srv = server_start(&port);
	base = event_base_new();

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", port);
	TAP_OK(run(base, url, NULL, 0, 1024, 5, &r, NULL) == 0 &&
	    r.err[0] == '\0' && r.len == sizeof(small) &&
	    memcmp(r.der, small, sizeof(small)) == 0,
	    "GET: the DER answer, whole (%s)", r.err);
	snprintf(url, sizeof(url), "http://localhost:%d/ok?x=1", port);
	TAP_OK(run(base, url, NULL, 0, 1024, 5, &r, NULL) == 0 &&
	    r.len == sizeof(small), "GET by name, with a query (%s)", r.err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", port);
	TAP_OK(run(base, url, small, sizeof(small), 1024, 5, &r, NULL) == 0 &&
	    r.len == sizeof(small), "POST: the body reached the server (%s)",
	    r.err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/nothing", port);
	TAP_OK(run(base, url, NULL, 0, 1024, 5, &r, NULL) == 0 &&
	    r.len == 0 && strstr(r.err, "404") != NULL,
	    "a 404 is an error that names it (%s)", r.err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", port);
	TAP_OK(run(base, url, NULL, 0, 1024, 5, &r, NULL) == 0 &&
	    r.len == 0 && r.err[0] != '\0',
	    "an answer over the size bound is an error (%s)", r.err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/silent", port);
	TAP_OK(run(base, url, NULL, 0, 1024, 1, &r, &took) == 0 &&
	    r.len == 0 && strstr(r.err, "within 1 seconds") != NULL &&
	    took <= 3, "a server that does not answer: the time bound (%s, "
	    "%llds)", r.err, (long long)took);

	/* a port nobody listens on */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", 1);
	TAP_OK(run(base, url, NULL, 0, 1024, 5, &r, NULL) == 0 &&
	    strstr(r.err, "refused") != NULL, "connection refused (%s)",
	    r.err);

	TAP_OK(fetch_start(base, "https://127.0.0.1/ok", NULL, NULL, 0, 1024,
	    5, done_cb, &r, err, sizeof(err)) == NULL &&
	    strstr(err, "http://") != NULL, "https:// is refused (%s)", err);
	TAP_OK(!fetch_url_ok("http://user@127.0.0.1/x", err, sizeof(err)),
	    "a user in the URL is refused (%s)", err);
	TAP_OK(fetch_url_ok("http://ca.example/crl.der", err, sizeof(err)),
	    "a plain http:// URL is accepted");
	TAP_OK(!fetch_url_ok("http://", err, sizeof(err)) &&
	    strstr(err, "no host") != NULL, "a URL without a host is refused "
	    "(%s)", err);
	TAP_OK(!fetch_url_ok("http:///crl.der", err, sizeof(err)) &&
	    !fetch_url_ok("http://:8080/crl.der", err, sizeof(err)),
	    "an empty host is refused, with a path or a port (%s)", err);

	/* cancelled at once: the callback never runs, nothing leaks */
	memset(&r, 0, sizeof(r));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", port);
	f = fetch_start(base, url, NULL, NULL, 0, 1024, 5, done_cb, &r, err,
	    sizeof(err));
	fetch_cancel(f);
	event_base_loop(base, EVLOOP_NONBLOCK);
	TAP_OK(f != NULL && r.done == 0, "a cancelled fetch does not call "
	    "back");

	kill(srv, SIGTERM);
	dead = waitpid(srv, NULL, 0) == srv;
	TAP_OK(dead, "the test server is gone");
	event_base_free(base);
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}
