/*
 * todod-bench: mutual-TLS HTTP load generator (see bench.h).
 *
 * todod-bench -p port -C ca -c cert -k key [-q] [-H host] [-n servername]
 *     [-m full|resume|get|post|idle|fill|lat] [-t conns] [-d secs]
 *     [-w warmup] [-T 1.2|1.3] [-P path] [-j threads] [-i items]
 *
 * -m get with -i N: each request is GET of the path followed by a random
 * id in 1..N (-P /todo/), the pattern of a cache that does not hold all.
 * Requests completed in the -d window after the -w warm-up are counted
 * (fill and idle have no warm-up); errors are counted over the whole run
 * and the first of each kind goes to stderr.  With -q stdout gets one
 * key=value line for scripts.  The exit status is 0 whenever the run took
 * place, errors or not (the line says how many), 1 on a setup failure
 * (files, address), 2 on a usage error.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netdb.h>

#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "bench.h"

static const char *const mode_names[] = {
	"full", "resume", "get", "post", "idle", "fill", "lat"
};

static const char *const err_names[ERR_NKINDS] = {
	"handshake", "status", "io", "timeout"
};

static void	usage(void) __attribute__((__noreturn__));
static void	opts_parse(struct bench_opts *, int, char **);
static double	opts_seconds(const char *, const char *, double, double);
static void	bench_nofile(int);
static void	bench_resolve(struct bench_shared *, const struct bench_opts *);
static void	bench_requests(struct bench_shared *,
		    const struct bench_opts *);
static struct bench_thread *bench_threads(struct bench_shared *, int, int);
static void	bench_threads_free(struct bench_thread *, int);
static void	bench_sleep_until(int64_t);
static double	bench_cpu(void);
static void	bench_report(const struct bench_opts *, struct bench_thread *,
		    double, double);

static void
usage(void)
{
	fprintf(stderr, "usage: todod-bench -p port -C ca -c cert -k key "
	    "[-q] [-H host] [-n servername]\n"
	    "\t[-m full|resume|get|post|idle|fill|lat] [-t conns] "
	    "[-d secs] [-w warmup]\n"
	    "\t[-T 1.2|1.3] [-P path] [-j threads] [-i items]\n");
	exit(2);
}

static double
opts_seconds(const char *what, const char *s, double min, double max)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min) ||
	    !(v <= max))
		errx(2, "%s %s: want seconds from %g to %g", what, s, min, max);
	return v;
}

static void
opts_parse(struct bench_opts *o, int argc, char **argv)
{
	const char	*errstr;
	size_t		 m;
	int		 ch;

	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->servername = "localhost";
	o->path = "/todo";
	o->mode = MODE_GET;
	o->conns = 16;
	o->threads = 1;
	o->secs = 10;
	o->warmup = 1;
	o->proto = TLS1_3_VERSION;
	o->items = 0;
	while ((ch = getopt(argc, argv, "C:c:d:H:i:j:k:m:n:P:p:qT:t:w:")) !=
	    -1) {
		switch (ch) {
		case 'C':
			o->ca = optarg;
			break;
		case 'c':
			o->cert = optarg;
			break;
		case 'd':
			o->secs = opts_seconds("-d", optarg, 0.1, 86400);
			break;
		case 'H':
			o->host = optarg;
			break;
		case 'i':
			o->items = strtonum(optarg, 1, 100000000, &errstr);
			if (errstr != NULL)
				errx(2, "-i %s: %s", optarg, errstr);
			break;
		case 'j':
			o->threads = strtonum(optarg, 1, 64, &errstr);
			if (errstr != NULL)
				errx(2, "-j %s: %s", optarg, errstr);
			break;
		case 'k':
			o->key = optarg;
			break;
		case 'm':
			for (m = 0; m < sizeof(mode_names) /
			    sizeof(mode_names[0]); m++)
				if (strcmp(optarg, mode_names[m]) == 0)
					break;
			if (m == sizeof(mode_names) / sizeof(mode_names[0]))
				errx(2, "-m %s: unknown mode", optarg);
			o->mode = m;
			break;
		case 'n':
			o->servername = optarg;
			break;
		case 'P':
			o->path = optarg;
			break;
		case 'p':
			o->port = optarg;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'T':
			if (strcmp(optarg, "1.2") == 0)
				o->proto = TLS1_2_VERSION;
			else if (strcmp(optarg, "1.3") == 0)
				o->proto = TLS1_3_VERSION;
			else
				errx(2, "-T %s: want 1.2 or 1.3", optarg);
			break;
		case 't':
			o->conns = strtonum(optarg, 1, 1000000, &errstr);
			if (errstr != NULL)
				errx(2, "-t %s: %s", optarg, errstr);
			break;
		case 'w':
			o->warmup = opts_seconds("-w", optarg, 0, 3600);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o->port == NULL || o->ca == NULL ||
	    o->cert == NULL || o->key == NULL)
		usage();
	if (o->path[0] != '/' || strlen(o->path) > 512 ||
	    strpbrk(o->path, " \r\n") != NULL)
		errx(2, "-P %s: want an absolute path without spaces, "
		    "at most 512 bytes", o->path);
	if (strlen(o->servername) > 253 ||
	    strpbrk(o->servername, " \r\n") != NULL)
		errx(2, "-n %s: bad server name", o->servername);
	if (o->mode == MODE_FILL && o->items == 0)
		errx(2, "-m fill needs -i items");
	if (o->mode == MODE_LAT)
		o->conns = 1;
	if (o->mode == MODE_IDLE || o->mode == MODE_FILL)
		o->warmup = 0;
	if (o->threads > o->conns)
		o->threads = o->conns;
}

/* Every connection is a descriptor: raise the limit (as root, past it). */
static void
bench_nofile(int conns)
{
	struct rlimit	 rl;
	rlim_t		 need = (rlim_t)conns + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "getrlimit");
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need) {
		rl.rlim_max = need;
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			errx(1, "-t %d needs %llu descriptors: %s", conns,
			    (unsigned long long)need, strerror(errno));
		return;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "setrlimit");
}

static void
bench_resolve(struct bench_shared *sh, const struct bench_opts *o)
{
	struct addrinfo	 hints, *res;
	unsigned char	 buf[sizeof(struct in6_addr)];
	int		 e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((e = getaddrinfo(o->host, o->port, &hints, &res)) != 0)
		errx(1, "%s port %s: %s", o->host, o->port, gai_strerror(e));
	memcpy(&sh->addr, res->ai_addr, res->ai_addrlen);
	sh->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	sh->sni = inet_pton(AF_INET, o->servername, buf) != 1 &&
	    inet_pton(AF_INET6, o->servername, buf) != 1;
}

static void
bench_requests(struct bench_shared *sh, const struct bench_opts *o)
{
	int	 close_it, n;

	close_it = o->mode == MODE_FULL || o->mode == MODE_RESUME;
	snprintf(sh->hosthdr, sizeof(sh->hosthdr), "%s:%s", o->servername,
	    o->port);
	n = snprintf(sh->get_req, sizeof(sh->get_req),
	    "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", o->path, sh->hosthdr,
	    close_it ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(sh->get_req))
		errx(1, "request too long");
	sh->get_len = n;
	sh->expect = o->mode == MODE_POST || o->mode == MODE_FILL ? 201 : 200;
	sh->resume = o->mode != MODE_FULL;
}

static struct bench_thread *
bench_threads(struct bench_shared *sh, int nthreads, int conns)
{
	struct bench_thread	*thr, *t;
	int			 i, j, per;

	if ((thr = calloc(nthreads, sizeof(*thr))) == NULL)
		err(1, NULL);
	for (i = 0; i < nthreads; i++) {
		t = &thr[i];
		t->id = i;
		t->sh = sh;
		per = conns / nthreads + (i < conns % nthreads);
		t->nslots = per;
		if ((t->epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
			err(1, "epoll_create1");
		if ((t->rbuf = malloc(BENCH_RBUF)) == NULL ||
		    (t->slots = calloc(per, sizeof(*t->slots))) == NULL)
			err(1, NULL);
		for (j = 0; j < per; j++) {
			t->slots[j].thr = t;
			t->slots[j].idx = j;
			t->slots[j].fd = -1;
			t->slots[j].state = sh->opts->mode == MODE_IDLE ?
			    SLOT_PENDING : SLOT_WAIT;
		}
	}
	return thr;
}

static void
bench_threads_free(struct bench_thread *thr, int nthreads)
{
	int	 i;

	for (i = 0; i < nthreads; i++) {
		close(thr[i].epfd);
		free(thr[i].rbuf);
		free(thr[i].slots);
	}
	free(thr);
}

static void
bench_sleep_until(int64_t t)
{
	struct timespec	 ts;

	ts.tv_sec = t / NSEC;
	ts.tv_nsec = t % NSEC;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	    EINTR)
		;
}

/* This process's CPU seconds, every thread, user and system. */
static double
bench_cpu(void)
{
	struct rusage	 ru;

	if (getrusage(RUSAGE_SELF, &ru) == -1)
		err(1, "getrusage");
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
bench_report(const struct bench_opts *o, struct bench_thread *thr,
    double secs, double cpu)
{
	struct bench_stats	 st;
	uint64_t		 errs = 0, p50, p90, p99;
	double			 rps, resumed;
	int			 i, k;

	memset(&st, 0, sizeof(st));
	for (i = 0; i < o->threads; i++) {
		struct bench_stats *s = &thr[i].st;

		st.req += s->req;
		st.req_total += s->req_total;
		st.bytes += s->bytes;
		st.reconnects += s->reconnects;
		st.handshakes += s->handshakes;
		st.resumed += s->resumed;
		st.established += s->established;
		st.open += s->open;
		for (k = 0; k < ERR_NKINDS; k++)
			st.err[k] += s->err[k];
		hist_merge(&st.lat, &s->lat);
	}
	for (k = 0; k < ERR_NKINDS; k++) {
		errs += st.err[k];
		for (i = 0; i < o->threads; i++) {
			if (thr[i].errmsg[k][0] == '\0')
				continue;
			fprintf(stderr, "todod-bench: %llu %s errors, first: "
			    "%s\n", (unsigned long long)st.err[k],
			    err_names[k], thr[i].errmsg[k]);
			break;
		}
	}
	rps = secs > 0 ? st.req / secs : 0;
	resumed = st.handshakes ? (double)st.resumed / st.handshakes : 0;
	p50 = hist_quantile(&st.lat, 0.50);
	p90 = hist_quantile(&st.lat, 0.90);
	p99 = hist_quantile(&st.lat, 0.99);
	if (!o->quiet) {
		printf("%s, TLS %s, %d connections, %d threads, %.2f s: "
		    "%llu requests, %.1f req/s\n", mode_names[o->mode],
		    o->proto == TLS1_3_VERSION ? "1.3" : "1.2", o->conns,
		    o->threads, secs, (unsigned long long)st.req, rps);
		printf("  latency us: p50 %llu, p90 %llu, p99 %llu; errors %llu"
		    " (handshake %llu, status %llu, io %llu, timeout %llu)\n",
		    (unsigned long long)p50, (unsigned long long)p90,
		    (unsigned long long)p99, (unsigned long long)errs,
		    (unsigned long long)st.err[ERR_HANDSHAKE],
		    (unsigned long long)st.err[ERR_STATUS],
		    (unsigned long long)st.err[ERR_IO],
		    (unsigned long long)st.err[ERR_TIMEOUT]);
		printf("  reconnects %llu; handshakes %llu, resumed %.2f; "
		    "%llu bytes, %llu per response; generator cpu %.2f s\n",
		    (unsigned long long)st.reconnects,
		    (unsigned long long)st.handshakes, resumed,
		    (unsigned long long)st.bytes,
		    (unsigned long long)(st.req ? st.bytes / st.req : 0), cpu);
		if (o->mode == MODE_IDLE)
			printf("  idle: %llu of %d established, %llu still "
			    "open at the end\n",
			    (unsigned long long)st.established, o->conns,
			    (unsigned long long)st.open);
		return;
	}
	printf("mode=%s conns=%d secs=%.2f req=%llu rps=%.1f p50=%llu "
	    "p90=%llu p99=%llu err=%llu reconn=%llu resumed=%.2f cpu=%.2f "
	    "tot=%llu hs=%llu bytes=%llu size=%llu errhs=%llu errst=%llu "
	    "errio=%llu errto=%llu proto=%s threads=%d",
	    mode_names[o->mode], o->conns, secs, (unsigned long long)st.req,
	    rps, (unsigned long long)p50, (unsigned long long)p90,
	    (unsigned long long)p99, (unsigned long long)errs,
	    (unsigned long long)st.reconnects, resumed, cpu,
	    (unsigned long long)st.req_total,
	    (unsigned long long)st.handshakes, (unsigned long long)st.bytes,
	    (unsigned long long)(st.req ? st.bytes / st.req : 0),
	    (unsigned long long)st.err[ERR_HANDSHAKE],
	    (unsigned long long)st.err[ERR_STATUS],
	    (unsigned long long)st.err[ERR_IO],
	    (unsigned long long)st.err[ERR_TIMEOUT],
	    o->proto == TLS1_3_VERSION ? "1.3" : "1.2", o->threads);
	if (o->mode == MODE_IDLE)
		printf(" established=%llu open=%llu",
		    (unsigned long long)st.established,
		    (unsigned long long)st.open);
	printf("\n");
}

/* idle: wait (bounded) until every slot is up or failed, then idle */
static void
bench_idle_setup(struct bench_shared *sh, const struct bench_opts *o)
{
	int64_t	 until = conn_now() + BENCH_IDLE_SETUP;

	while (atomic_load(&sh->settled) < o->conns && conn_now() < until)
		bench_sleep_until(conn_now() + 10 * 1000000LL);
	fprintf(stderr, "todod-bench: idle: %d of %d connections settled, "
	    "idling %.2f s\n", atomic_load(&sh->settled), o->conns, o->secs);
	fflush(stderr);
	atomic_store(&sh->t_end, conn_now() + (int64_t)(o->secs * NSEC));
}

int
main(int argc, char *argv[])
{
	struct bench_opts	 o;
	struct bench_shared	 sh;
	struct bench_thread	*thr;
	int64_t			 t0, tm, te;
	double			 cpu0, cpu1 = 0, secs;
	int			 i;

	opts_parse(&o, argc, argv);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_nofile(o.conns);
	memset(&sh, 0, sizeof(sh));
	sh.opts = &o;
	bench_resolve(&sh, &o);
	bench_requests(&sh, &o);
	if ((sh.ctx = conn_ctx_new(&o, sh.resume)) == NULL)
		exit(1);
	thr = bench_threads(&sh, o.threads, o.conns);

	t0 = conn_now();
	tm = t0 + (int64_t)(o.warmup * NSEC);
	te = tm + (int64_t)(o.secs * NSEC);
	if (o.mode == MODE_IDLE)
		te += BENCH_IDLE_SETUP;
	atomic_store(&sh.t_measure, tm);
	atomic_store(&sh.t_end, te);
	cpu0 = bench_cpu();
	for (i = 0; i < o.threads; i++)
		if ((errno = pthread_create(&thr[i].tid, NULL,
		    conn_thread_main, &thr[i])) != 0)
			err(1, "pthread_create");
	if (o.mode == MODE_IDLE)
		bench_idle_setup(&sh, &o);
	else if (o.mode != MODE_FILL) {
		bench_sleep_until(tm);
		cpu0 = bench_cpu();
		bench_sleep_until(te);
		cpu1 = bench_cpu();
	}
	for (i = 0; i < o.threads; i++)
		pthread_join(thr[i].tid, NULL);
	if (o.mode == MODE_IDLE || o.mode == MODE_FILL)
		cpu1 = bench_cpu();
	secs = o.mode == MODE_FILL ? (conn_now() - t0) / (double)NSEC :
	    o.secs;
	bench_report(&o, thr, secs, cpu1 - cpu0);
	bench_threads_free(thr, o.threads);
	SSL_CTX_free(sh.ctx);
	return 0;
}
