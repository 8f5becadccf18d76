/*
 * sandbox-probe: run one operation inside a role's sandbox and report how
 * it went, for regress/integ/test_sandbox_probe.py.
 *
 *	sandbox-probe [-v] [-u UID:GID -r DIR] ROLE ACTION
 *	sandbox-probe -l
 *
 * ROLE is worker or keyholder.  The probe initialises the libraries as
 * that role's process does, prepares what the action needs (sockets,
 * keys, a peer process), applies privdrop_child() when -u is given and
 * sandbox_child(ROLE), then performs the action.  Exit status: 0 the
 * action succeeded; 3 a forbidden call failed cleanly with an errno
 * (printed as "denied: ENAME"); 1 the action went wrong in another way.
 * A call the filter forbids kills the process with SIGSYS instead.
 * -l lists the actions.
 */
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <tls.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ipc.h"
#include "log.h"
#include "sandbox.h"
#include "shm.h"

#define PROBE_BIG	(64U * 1024 * 1024)
#define PROBE_SHM	4096

struct probe {
	enum sandbox_role	 role;
	int			 fd[4];
	pid_t			 child;
	struct event_base	*base;
	char			*cert, *key;	/* PEM */
	size_t			 certlen, keylen;
	int			 tlsproto;
	int			 rsa;
	void			*map;
	int			 seen;
	pid_t			 ppid;
	struct sockaddr_in	 sin;	/* a listening socket's address */
};

struct probe_action {
	const char	*name;
	void		(*setup)(struct probe *);
	int		(*run)(struct probe *);
};

static void
probe_fail(const char *fmt, ...)
    __attribute__((__format__(printf, 1, 2), __noreturn__));

static void
probe_fail(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	fputs("sandbox-probe: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* The outcome of a call that should not have been allowed. */
static int
probe_forbidden(const char *what, long r)
{
	if (r == -1) {
		printf("denied: %s\n", strerrorname_np(errno));
		fflush(stdout);
		/*
		 * No exit handlers (ASan's among them): only this call is
		 * being tested.
		 */
		syscall(SYS_exit_group, 3);
		_exit(3);
	}
	printf("%s was allowed (returned %ld)\n", what, r);
	return 0;
}

static void
probe_socketpair(struct probe *p, int type)
{
	if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, p->fd) == -1)
		probe_fail("socketpair: %s", strerror(errno));
}

static void
setup_pair(struct probe *p)
{
	probe_socketpair(p, SOCK_STREAM);
}

/* A listening socket and a connected client, as a worker inherits them. */
static void
setup_listen(struct probe *p)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((p->fd[0] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) ==
	    -1 || bind(p->fd[0], (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(p->fd[0], 8) == -1 ||
	    getsockname(p->fd[0], (struct sockaddr *)&sin, &len) == -1)
		probe_fail("listen: %s", strerror(errno));
	p->sin = sin;
	if ((p->fd[1] = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(p->fd[1], (struct sockaddr *)&sin, len) == -1 ||
	    write(p->fd[1], "hi", 2) != 2)
		probe_fail("connect: %s", strerror(errno));
}

/* An unconnected TCP socket, and the port of a listening one. */
static void
setup_socket(struct probe *p)
{
	setup_listen(p);
	if ((p->fd[2] = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		probe_fail("socket: %s", strerror(errno));
}

/* Allowed: read and write on a socketpair. */
static int
run_pair_io(struct probe *p)
{
	char	 buf[8];

	if (write(p->fd[0], "ping", 4) != 4 ||
	    read(p->fd[1], buf, sizeof(buf)) != 4 || memcmp(buf, "ping", 4))
		probe_fail("socketpair i/o: %s", strerror(errno));
	return 0;
}

/* send(2) and recv(2): sendto and recvfrom, which no role needs. */
static int
run_send_recv(struct probe *p)
{
	char	 buf[8];

	if (send(p->fd[1], "pong", 4, 0) != 4 ||
	    recv(p->fd[0], buf, sizeof(buf), 0) != 4 ||
	    memcmp(buf, "pong", 4))
		probe_fail("send/recv: %s", strerror(errno));
	return 0;
}

/* Allowed: the message layer, passing a pipe's read end along. */
static void
setup_fdpass(struct probe *p)
{
	probe_socketpair(p, SOCK_STREAM | SOCK_NONBLOCK);
	if (pipe2(p->fd + 2, O_CLOEXEC) == -1)
		probe_fail("pipe: %s", strerror(errno));
}

static int
run_fdpass(struct probe *p)
{
	struct ipc	 a, b;
	struct ipc_msg	 msg;
	uint32_t	 v;
	char		 buf[8];
	int		 i, r = 0;

	ipc_init(&a, p->fd[0]);
	ipc_init(&b, p->fd[1]);
	if (ipc_compose(&a, 42, 7, p->fd[2], "\x01\x00\x00\x00", 4) == -1 ||
	    ipc_flush_blocking(&a, 1000) == -1)
		probe_fail("ipc send: %s", strerror(errno));
	p->fd[2] = -1;
	for (i = 0; i < 100 && r == 0; i++) {
		if ((r = ipc_get(&b, &msg)) == 0 && ipc_read(&b) <= 0 &&
		    poll(&(struct pollfd){ b.fd, POLLIN, 0 }, 1, 100) == -1)
			probe_fail("poll: %s", strerror(errno));
	}
	if (r != 1 || msg.hdr.type != 42 || msg.fd == -1 ||
	    ipc_get_u32(&msg, &v) == -1 || v != 1 || ipc_get_end(&msg) == -1)
		probe_fail("ipc receive: no message with a descriptor");
	if (write(p->fd[3], "fd", 2) != 2 || read(msg.fd, buf, 2) != 2 ||
	    memcmp(buf, "fd", 2) != 0)
		probe_fail("passed descriptor: %s", strerror(errno));
	ipc_msg_free(&msg);
	ipc_clear(&a);
	ipc_clear(&b);
	return 0;
}

/* Allowed: poll with a timeout, then with data ready. */
static int
run_poll(struct probe *p)
{
	struct pollfd	 pfd = { p->fd[1], POLLIN, 0 };

	if (poll(&pfd, 1, 20) != 0)
		probe_fail("poll on an empty socket: %s", strerror(errno));
	if (write(p->fd[0], "x", 1) != 1 || poll(&pfd, 1, 1000) != 1 ||
	    !(pfd.revents & POLLIN))
		probe_fail("poll with data: %s", strerror(errno));
	return 0;
}

/* Allowed: what malloc and the libraries do with memory. */
static int
run_memory(struct probe *p)
{
	char	*big, *small[256], *m;
	size_t	 i;

	if ((big = malloc(PROBE_BIG)) == NULL)
		probe_fail("malloc: %s", strerror(errno));
	memset(big, 1, PROBE_BIG);
	if ((big = realloc(big, 2 * PROBE_BIG)) == NULL)
		probe_fail("realloc: %s", strerror(errno));
	memset(big + PROBE_BIG, 2, PROBE_BIG);
	free(big);
	for (i = 0; i < 256; i++)
		if ((small[i] = malloc(4000 + i * 512)) == NULL)
			probe_fail("malloc: %s", strerror(errno));
	for (i = 0; i < 256; i++)
		free(small[i]);
	m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || munmap(m, 1 << 20) == -1)
		probe_fail("mmap: %s", strerror(errno));
	return 0;
}

/* Allowed: random bytes, from the kernel and from OpenSSL's DRBGs. */
static int
run_random(struct probe *p)
{
	unsigned char	 buf[4096];
	int		 i;

	if (getrandom(buf, 64, 0) != 64)
		probe_fail("getrandom: %s", strerror(errno));
	for (i = 0; i < 64; i++)
		if (RAND_bytes(buf, sizeof(buf)) != 1 ||
		    RAND_priv_bytes(buf, sizeof(buf)) != 1)
			probe_fail("RAND_bytes failed");
	return 0;
}

/* Allowed: clocks through the vDSO and through the system call itself. */
static int
run_clock(struct probe *p)
{
	struct timespec	 ts;
	struct timeval	 tv;
	struct tm	 tm;
	char		 date[64];
	time_t		 now;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1 ||
	    clock_gettime(CLOCK_REALTIME, &ts) == -1 ||
	    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) == -1 ||
	    gettimeofday(&tv, NULL) == -1)
		probe_fail("clock: %s", strerror(errno));
	now = time(NULL);
	if (gmtime_r(&now, &tm) == NULL || localtime_r(&now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT",
	    &tm) == 0)
		probe_fail("time formatting failed");
	return 0;
}

/* Allowed: log lines to stderr, wherever it points. */
static int
run_log(struct probe *p)
{
	int	 i;

	for (i = 0; i < 3; i++) {
		log_info("probe log line %d", i);
		log_debug("probe debug line %d", i);
		errno = ENOENT;
		log_warn("probe warning %d", i);
	}
	return 0;
}

static void
probe_event(int fd, short ev, void *arg)
{
	struct probe	*p = arg;
	char		 c;

	if (ev & EV_READ) {
		if (read(fd, &c, 1) != 1)
			probe_fail("read event: %s", strerror(errno));
		p->seen |= 1;
	} else if (ev & EV_SIGNAL)
		p->seen |= 2;
	else if (ev & EV_TIMEOUT)
		p->seen |= 4;
	if (p->seen == 7)
		event_base_loopexit(p->base, NULL);
}

static void
probe_event_giveup(int fd, short ev, void *arg)
{
	probe_fail("libevent: saw 0x%x of 0x7 in 5 s", ((struct probe *)
	    arg)->seen);
}

/*
 * libevent as the worker uses it: the base and signal events set up
 * before the filter, a read event, a timer and a signal delivered by a
 * peer process afterwards.
 */
static void
setup_event(struct probe *p)
{
	static struct event	 rd, sig, tm, giveup;
	struct timeval		 tv = { 0, 10000 }, five = { 5, 0 };

	probe_socketpair(p, SOCK_STREAM | SOCK_NONBLOCK);
	if (p->base == NULL && (p->base = event_base_new()) == NULL)
		probe_fail("event_base_new");
	event_assign(&rd, p->base, p->fd[1], EV_READ | EV_PERSIST,
	    probe_event, p);
	evsignal_assign(&sig, p->base, SIGUSR1, probe_event, p);
	evtimer_assign(&tm, p->base, probe_event, p);
	evtimer_assign(&giveup, p->base, probe_event_giveup, p);
	if (event_add(&rd, NULL) == -1 || event_add(&sig, NULL) == -1 ||
	    event_add(&tm, &tv) == -1 || event_add(&giveup, &five) == -1)
		probe_fail("event_add");
	if ((p->child = fork()) == -1)
		probe_fail("fork: %s", strerror(errno));
	if (p->child == 0) {
		usleep(100000);
		kill(getppid(), SIGUSR1);
		if (write(p->fd[0], "e", 1) != 1)
			_exit(1);
		_exit(0);
	}
}

static int
run_event(struct probe *p)
{
	if (event_base_dispatch(p->base) == -1)
		probe_fail("event_base_dispatch failed");
	return p->seen == 7 ? 0 : 1;
}

/* Allowed: epoll directly, on a socket. */
static int
run_epoll(struct probe *p)
{
	struct epoll_event	 ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	if (epoll_ctl(p->fd[2], EPOLL_CTL_ADD, p->fd[1], &ev) == -1 ||
	    write(p->fd[0], "x", 1) != 1 ||
	    epoll_wait(p->fd[2], &ev, 1, 1000) != 1 ||
	    epoll_ctl(p->fd[2], EPOLL_CTL_DEL, p->fd[1], NULL) == -1)
		probe_fail("epoll: %s", strerror(errno));
	return 0;
}

static void
setup_epoll(struct probe *p)
{
	setup_pair(p);
	if ((p->fd[2] = epoll_create1(EPOLL_CLOEXEC)) == -1)
		probe_fail("epoll_create1: %s", strerror(errno));
}

/* Allowed: accept4 and a numeric peer name, as server.c does them. */
static int
run_accept(struct probe *p)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	char			 host[NI_MAXHOST], serv[NI_MAXSERV], buf[4];
	int			 s, i;

	for (i = 0; i < 100; i++) {
		s = accept4(p->fd[0], (struct sockaddr *)&ss, &len,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s != -1 || errno != EAGAIN)
			break;
		poll(&(struct pollfd){ p->fd[0], POLLIN, 0 }, 1, 10);
	}
	if (s == -1)
		probe_fail("accept4: %s", strerror(errno));
	if (getnameinfo((struct sockaddr *)&ss, len, host, sizeof(host),
	    serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) != 0 ||
	    strcmp(host, "127.0.0.1") != 0)
		probe_fail("getnameinfo failed");
	if (read(s, buf, 2) != 2 || write(s, "ok", 2) != 2 ||
	    read(p->fd[1], buf, 2) != 2 || memcmp(buf, "ok", 2) != 0)
		probe_fail("accepted socket i/o: %s", strerror(errno));
	if (accept4(p->fd[0], NULL, NULL, SOCK_NONBLOCK) != -1 ||
	    errno != EAGAIN)
		probe_fail("second accept4: %s", strerror(errno));
	close(s);
	return 0;
}

/*
 * Allowed: the peer name of a link-local IPv6 client, made as the worker
 * makes it (inet_ntop and the numeric scope: glibc's getnameinfo would
 * open a socket to name the interface, and the filter kills socket()).
 */
static int
run_nameinfo_scope(struct probe *p)
{
	struct sockaddr_in6	 sin6;
	char			 host[NI_MAXHOST], serv[NI_MAXSERV];

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(443);
	sin6.sin6_scope_id = 1;
	if (inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr) != 1)
		probe_fail("inet_pton");
	if (inet_ntop(AF_INET6, &sin6.sin6_addr, host, sizeof(host)) == NULL)
		probe_fail("inet_ntop: %s", strerror(errno));
	snprintf(serv, sizeof(serv), "%u", ntohs(sin6.sin6_port));
	printf("[%s%%%u]:%s\n", host, sin6.sin6_scope_id, serv);
	return 0;
}

/* Allowed: mapping a sealed segment from the parent (shm_map). */
static void
setup_shm(struct probe *p)
{
	void	*map;

	if ((p->fd[0] = shm_create("probe", PROBE_SHM, &map)) == -1)
		probe_fail("shm_create: %s", strerror(errno));
	memcpy(map, "state", 6);
	p->map = map;
}

static int
run_shm(struct probe *p)
{
	char	*ro, *rw;

	if ((ro = shm_map(p->fd[0], PROBE_SHM, 0)) == NULL ||
	    (rw = shm_map(p->fd[0], PROBE_SHM, 1)) == NULL)
		probe_fail("shm_map: %s", strerror(errno));
	if (strcmp(ro, "state") != 0)
		probe_fail("shm contents differ");
	rw[0] = 'S';
	if (ro[0] != 'S' || ((char *)p->map)[0] != 'S')
		probe_fail("shared mapping is not shared");
	shm_unmap(ro, PROBE_SHM);
	shm_unmap(rw, PROBE_SHM);
	close(p->fd[0]);
	return 0;
}

/* A self-signed certificate that serves as server, client and CA. */
static void
probe_make_cert(struct probe *p)
{
	EVP_PKEY	*pk;
	X509		*x;
	X509_NAME	*name;
	X509V3_CTX	 ctx;
	X509_EXTENSION	*ext;
	BIO		*bc, *bk;
	char		*d;
	long		 n;

	pk = p->rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
	if (pk == NULL || (x = X509_new()) == NULL)
		probe_fail("key generation failed");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, pk);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
	    "DNS:localhost")) == NULL || !X509_add_ext(x, ext, -1))
		probe_fail("certificate extension failed");
	X509_EXTENSION_free(ext);
	if (!X509_sign(x, pk, EVP_sha256()) ||
	    (bc = BIO_new(BIO_s_mem())) == NULL ||
	    (bk = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_X509(bc, x) ||
	    !PEM_write_bio_PrivateKey(bk, pk, NULL, NULL, 0, NULL, NULL))
		probe_fail("certificate signing failed");
	n = BIO_get_mem_data(bc, &d);
	p->cert = malloc(n);
	memcpy(p->cert, d, n);
	p->certlen = n;
	n = BIO_get_mem_data(bk, &d);
	p->key = malloc(n);
	memcpy(p->key, d, n);
	p->keylen = n;
	BIO_free(bc);
	BIO_free(bk);
	X509_free(x);
	EVP_PKEY_free(pk);
}

static struct tls_config *
probe_tls_config(struct probe *p)
{
	struct tls_config	*cfg;

	if ((cfg = tls_config_new()) == NULL ||
	    tls_config_set_protocols(cfg, p->tlsproto) == -1 ||
	    tls_config_set_keypair_mem(cfg, (uint8_t *)p->cert, p->certlen,
	    (uint8_t *)p->key, p->keylen) == -1 ||
	    tls_config_set_ca_mem(cfg, (uint8_t *)p->cert, p->certlen) == -1)
		probe_fail("tls config: %s", cfg ? tls_config_error(cfg) :
		    "no memory");
	return cfg;
}

/*
 * libtls returns TLS_WANT_POLLIN/OUT when it handled something other than
 * application data (a TLS 1.3 session ticket, say): call again.
 */
static ssize_t
probe_tls_io(struct tls *t, const void *wbuf, void *rbuf, size_t len)
{
	ssize_t	 n = -1;
	int	 i;

	for (i = 0; i < 100; i++) {
		if (wbuf != NULL)
			n = tls_write(t, wbuf, len);
		else if (rbuf != NULL)
			n = tls_read(t, rbuf, len);
		else
			n = tls_handshake(t);
		if (n != TLS_WANT_POLLIN && n != TLS_WANT_POLLOUT)
			break;
	}
	return n;
}

/* The client, in its own unsandboxed process: ping, pong, done. */
static void
probe_tls_client(struct probe *p)
{
	struct tls_config	*cfg = probe_tls_config(p);
	struct tls		*tls;
	char			 buf[8];

	tls_config_insecure_noverifyname(cfg);
	if ((tls = tls_client()) == NULL || tls_configure(tls, cfg) == -1 ||
	    tls_connect_socket(tls, p->fd[1], "localhost") == -1 ||
	    probe_tls_io(tls, NULL, NULL, 0) == -1 ||
	    probe_tls_io(tls, "ping", NULL, 4) != 4 ||
	    probe_tls_io(tls, NULL, buf, 4) != 4 || memcmp(buf, "pong", 4) ||
	    probe_tls_io(tls, "done", NULL, 4) != 4) {
		fprintf(stderr, "tls client: %s\n", tls_error(tls));
		_exit(1);
	}
	tls_close(tls);
	_exit(0);
}

static void
setup_tls(struct probe *p)
{
	probe_make_cert(p);
	probe_socketpair(p, SOCK_STREAM);
	if ((p->child = fork()) == -1)
		probe_fail("fork: %s", strerror(errno));
	if (p->child == 0) {
		close(p->fd[0]);
		probe_tls_client(p);
	}
	close(p->fd[1]);
}

static void
setup_tls13_ec(struct probe *p)
{
	p->tlsproto = TLS_PROTOCOL_TLSv1_3;
	setup_tls(p);
}

static void
setup_tls12_ec(struct probe *p)
{
	p->tlsproto = TLS_PROTOCOL_TLSv1_2;
	setup_tls(p);
}

static void
setup_tls13_rsa(struct probe *p)
{
	p->rsa = 1;
	p->tlsproto = TLS_PROTOCOL_TLSv1_3;
	setup_tls(p);
}

static void
setup_tls12_rsa(struct probe *p)
{
	p->rsa = 1;
	p->tlsproto = TLS_PROTOCOL_TLSv1_2;
	setup_tls(p);
}

/*
 * Allowed: a mutual-TLS server built entirely after the filter, as a
 * worker does on every reload.
 */
static int
run_tls(struct probe *p)
{
	struct tls_config	*cfg = probe_tls_config(p);
	struct tls		*srv, *c;
	const char		*hash;
	char			 buf[8];

	tls_config_verify_client(cfg);
	if ((srv = tls_server()) == NULL || tls_configure(srv, cfg) == -1)
		probe_fail("tls_configure: %s", srv ? tls_error(srv) :
		    "no memory");
	if (tls_accept_socket(srv, &c, p->fd[0]) == -1 ||
	    probe_tls_io(c, NULL, NULL, 0) == -1)
		probe_fail("tls handshake: %s", c ? tls_error(c) :
		    tls_error(srv));
	if ((hash = tls_peer_cert_hash(c)) == NULL ||
	    strncmp(hash, "SHA256:", 7) != 0)
		probe_fail("no peer certificate hash");
	if (probe_tls_io(c, NULL, buf, 4) != 4 || memcmp(buf, "ping", 4) != 0 ||
	    probe_tls_io(c, "pong", NULL, 4) != 4 ||
	    probe_tls_io(c, NULL, buf, 4) != 4 || memcmp(buf, "done", 4) != 0)
		probe_fail("tls i/o: %s", tls_error(c));
	printf("%s %s\n", tls_conn_version(c), tls_conn_cipher(c));
	tls_close(c);
	tls_free(c);
	tls_free(srv);
	tls_config_free(cfg);
	return 0;
}

/* Key files reach the keyholder as descriptors: here, two pipes. */
static void
setup_keys(struct probe *p)
{
	int	 i, pfd[2];

	for (i = 0; i < 2; i++) {
		p->rsa = i;
		probe_make_cert(p);
		if (pipe2(pfd, O_CLOEXEC) == -1 ||
		    write(pfd[1], p->key, p->keylen) != (ssize_t)p->keylen)
			probe_fail("key pipe: %s", strerror(errno));
		close(pfd[1]);
		p->fd[i] = pfd[0];
		free(p->cert);
		free(p->key);
	}
}

static void
probe_sign(EVP_PKEY *pk, const EVP_MD *md, int pad)
{
	unsigned char	 tbs[100], sig[1024];
	size_t		 siglen = sizeof(sig);
	EVP_MD_CTX	*ctx;
	EVP_PKEY_CTX	*pctx;

	memset(tbs, 'x', sizeof(tbs));
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(ctx, &pctx, md, NULL, pk) != 1 ||
	    (pad != 0 && EVP_PKEY_CTX_set_rsa_padding(pctx, pad) != 1) ||
	    EVP_DigestSign(ctx, sig, &siglen, tbs, sizeof(tbs)) != 1)
		probe_fail("signing failed");
	EVP_MD_CTX_free(ctx);
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pk) != 1 ||
	    (pad != 0 && EVP_PKEY_CTX_set_rsa_padding(pctx, pad) != 1) ||
	    EVP_DigestVerify(ctx, sig, siglen, tbs, sizeof(tbs)) != 1)
		probe_fail("signature does not verify");
	EVP_MD_CTX_free(ctx);
}

/* Allowed: read PEM keys from descriptors, sign ECDSA, RSA-PSS, PKCS#1. */
static int
run_keys(struct probe *p)
{
	char		 buf[16384];
	EVP_PKEY	*pk;
	BIO		*bio;
	ssize_t		 n;
	int		 i;

	for (i = 0; i < 2; i++) {
		if ((n = read(p->fd[i], buf, sizeof(buf))) <= 0)
			probe_fail("read key: %s", strerror(errno));
		close(p->fd[i]);
		if ((bio = BIO_new_mem_buf(buf, n)) == NULL ||
		    (pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) ==
		    NULL)
			probe_fail("cannot parse key %d", i);
		BIO_free(bio);
		explicit_bzero(buf, sizeof(buf));
		if (i == 0)
			probe_sign(pk, EVP_sha256(), 0);
		else {
			probe_sign(pk, EVP_sha256(), RSA_PKCS1_PSS_PADDING);
			probe_sign(pk, EVP_sha384(), RSA_PKCS1_PADDING);
		}
		EVP_PKEY_free(pk);
	}
	return 0;
}

/* /proc/self/status, opened before the drop and read inside the sandbox. */
static void
setup_status(struct probe *p)
{
	if ((p->fd[0] = open("/proc/self/status", O_RDONLY | O_CLOEXEC)) ==
	    -1)
		probe_fail("/proc/self/status: %s", strerror(errno));
}

/* Print the status, then wait for EOF on stdin so /proc can be read. */
static int
run_status(struct probe *p)
{
	char	 buf[8192];
	ssize_t	 n;
	size_t	 off = 0;

	while ((n = read(p->fd[0], buf + off, sizeof(buf) - 1 - off)) > 0)
		off += n;
	if (n == -1 || off == 0)
		probe_fail("read status: %s", strerror(errno));
	if (write(STDOUT_FILENO, buf, off) != (ssize_t)off ||
	    write(STDOUT_FILENO, "END\n", 4) != 4)
		probe_fail("write: %s", strerror(errno));
	while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
		;
	return 0;
}

/* Allowed: fstat of a descriptor, as sandbox_fstat() makes it. */
static int
run_fstat(struct probe *p)
{
	struct stat	 st;

	if (sandbox_fstat(p->fd[0], &st) == -1 || !S_ISSOCK(st.st_mode))
		probe_fail("fstat: %s", strerror(errno));
	return 0;
}

/* Forbidden: each of these must kill (or, where listed, fail cleanly). */
static int
run_stat_path(struct probe *p)
{
	struct stat	 st;

	return probe_forbidden("stat", stat("/etc/shadow", &st));
}

/*
 * The call the old rule let through: a path with AT_EMPTY_PATH, which the
 * kernel ignores when the path is not empty.
 */
static int
run_fstatat_path(struct probe *p)
{
	struct stat	 st;

	return probe_forbidden("newfstatat AT_EMPTY_PATH", syscall(
	    SYS_newfstatat, AT_FDCWD, "/etc/shadow", &st, AT_EMPTY_PATH));
}

/* glibc's fstat(): newfstatat(fd, "", st, AT_EMPTY_PATH), denied too. */
static int
run_fstat_libc(struct probe *p)
{
	struct stat	 st;

	return probe_forbidden("fstat()", fstat(p->fd[0], &st));
}

static int
run_open(struct probe *p)
{
	return probe_forbidden("open", open("/etc/passwd", O_RDONLY));
}

static int
run_open_raw(struct probe *p)
{
#ifdef SYS_open
	return probe_forbidden("open(2)", syscall(SYS_open, "/etc/passwd",
	    O_RDONLY));
#else
	return probe_forbidden("openat(2)", syscall(SYS_openat, AT_FDCWD,
	    "/etc/passwd", O_RDONLY));
#endif
}

static int
run_execve(struct probe *p)
{
	char	*argv[] = { "true", NULL }, *envp[] = { NULL };

	return probe_forbidden("execve", execve("/bin/true", argv, envp));
}

static int
run_socket(struct probe *p)
{
	return probe_forbidden("socket", socket(AF_INET, SOCK_STREAM, 0));
}

static int
run_socket_unix(struct probe *p)
{
	return probe_forbidden("socket", socket(AF_UNIX, SOCK_DGRAM, 0));
}

static int
run_socketpair(struct probe *p)
{
	int	 sv[2];

	return probe_forbidden("socketpair", socketpair(AF_UNIX,
	    SOCK_STREAM, 0, sv));
}

static int
run_connect(struct probe *p)
{
	return probe_forbidden("connect", connect(p->fd[2],
	    (struct sockaddr *)&p->sin, sizeof(p->sin)));
}

static int
run_bind(struct probe *p)
{
	struct sockaddr_in	 sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return probe_forbidden("bind", bind(p->fd[2], (struct sockaddr *)&sin,
	    sizeof(sin)));
}

static int
run_listen(struct probe *p)
{
	return probe_forbidden("listen", listen(p->fd[2], 5));
}

static int
run_getsockname(struct probe *p)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	return probe_forbidden("getsockname", getsockname(p->fd[0],
	    (struct sockaddr *)&ss, &len));
}

static int
run_fork(struct probe *p)
{
	pid_t	 pid = fork();

	if (pid == 0)
		_exit(0);
	return probe_forbidden("fork", pid);
}

static void *
probe_thread(void *arg)
{
	return arg;
}

static int
run_thread(struct probe *p)
{
	pthread_t	 t;
	int		 r;

	if ((r = pthread_create(&t, NULL, probe_thread, NULL)) != 0)
		errno = r;
	return probe_forbidden("pthread_create", r == 0 ? 0 : -1);
}

static int
run_ptrace(struct probe *p)
{
	return probe_forbidden("ptrace", ptrace(PTRACE_TRACEME, 0, NULL,
	    NULL));
}

static int
run_kill(struct probe *p)
{
	return probe_forbidden("kill", kill(p->ppid, 0));
}

static int
run_setuid(struct probe *p)
{
	return probe_forbidden("setuid", setuid(0));
}

static int
run_chroot(struct probe *p)
{
	return probe_forbidden("chroot", chroot("/"));
}

static int
run_mount(struct probe *p)
{
	/* Harmless if it ever got through: the target does not exist. */
	return probe_forbidden("mount", mount("none",
	    "/nonexistent/sandbox-probe", "tmpfs", MS_NOSUID, NULL));
}

static int
run_unshare(struct probe *p)
{
	return probe_forbidden("unshare", unshare(CLONE_NEWUSER));
}

static int
run_prctl(struct probe *p)
{
	return probe_forbidden("prctl", prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
}

static int
run_mmap_exec(struct probe *p)
{
	void	*m = mmap(NULL, 4096, PROT_READ | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return probe_forbidden("mmap PROT_EXEC", m == MAP_FAILED ? -1 : 0);
}

static void
setup_map(struct probe *p)
{
	p->map = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->map == MAP_FAILED)
		probe_fail("mmap: %s", strerror(errno));
}

static int
run_mprotect_exec(struct probe *p)
{
	return probe_forbidden("mprotect PROT_EXEC", mprotect(p->map, 4096,
	    PROT_READ | PROT_EXEC));
}

static int
run_fcntl_dupfd(struct probe *p)
{
	return probe_forbidden("fcntl F_DUPFD", fcntl(STDERR_FILENO, F_DUPFD,
	    10));
}

static int
run_dup(struct probe *p)
{
	return probe_forbidden("dup", dup(STDERR_FILENO));
}

/* On a socket, so that it could not push input into a terminal anyway. */
static int
run_ioctl(struct probe *p)
{
	char	 c = 'x';

	return probe_forbidden("ioctl TIOCSTI", ioctl(p->fd[0], TIOCSTI,
	    &c));
}

static int
run_memfd(struct probe *p)
{
	return probe_forbidden("memfd_create", memfd_create("x", 0));
}

static int
run_x32(struct probe *p)
{
#if defined(__x86_64__)
	/* getpid under the x32 ABI: same architecture token, bit 30 set. */
	return probe_forbidden("x32 getpid", syscall(0x40000000 |
	    SYS_getpid));
#else
	printf("not x86_64: nothing to check\n");
	return 0;
#endif
}

static const struct probe_action probe_actions[] = {
	/* needed by the roles */
	{ "pair-io",		setup_pair,	run_pair_io },
	{ "fdpass",		setup_fdpass,	run_fdpass },
	{ "poll",		setup_pair,	run_poll },
	{ "memory",		NULL,		run_memory },
	{ "random",		NULL,		run_random },
	{ "clock",		NULL,		run_clock },
	{ "log",		NULL,		run_log },
	{ "event",		setup_event,	run_event },
	{ "epoll",		setup_epoll,	run_epoll },
	{ "accept",		setup_listen,	run_accept },
	{ "nameinfo-scope",	NULL,		run_nameinfo_scope },
	{ "shm",		setup_shm,	run_shm },
	{ "tls13-ec",		setup_tls13_ec,	run_tls },
	{ "tls12-ec",		setup_tls12_ec,	run_tls },
	{ "tls13-rsa",		setup_tls13_rsa, run_tls },
	{ "tls12-rsa",		setup_tls12_rsa, run_tls },
	{ "keys",		setup_keys,	run_keys },
	{ "status",		setup_status,	run_status },
	{ "fstat",		setup_pair,	run_fstat },
	/* forbidden */
	{ "send-recv",		setup_pair,	run_send_recv },
	{ "stat-path",		NULL,		run_stat_path },
	{ "fstatat-path",	NULL,		run_fstatat_path },
	{ "fstat-libc",		setup_pair,	run_fstat_libc },
	{ "open",		NULL,		run_open },
	{ "open-raw",		NULL,		run_open_raw },
	{ "execve",		NULL,		run_execve },
	{ "socket",		NULL,		run_socket },
	{ "socket-unix",	NULL,		run_socket_unix },
	{ "socketpair",		NULL,		run_socketpair },
	{ "connect",		setup_socket,	run_connect },
	{ "bind",		setup_socket,	run_bind },
	{ "listen",		setup_socket,	run_listen },
	{ "getsockname",	setup_listen,	run_getsockname },
	{ "fork",		NULL,		run_fork },
	{ "thread",		NULL,		run_thread },
	{ "ptrace",		NULL,		run_ptrace },
	{ "kill",		NULL,		run_kill },
	{ "setuid",		NULL,		run_setuid },
	{ "chroot",		NULL,		run_chroot },
	{ "mount",		NULL,		run_mount },
	{ "unshare",		NULL,		run_unshare },
	{ "prctl",		NULL,		run_prctl },
	{ "mmap-exec",		NULL,		run_mmap_exec },
	{ "mprotect-exec",	setup_map,	run_mprotect_exec },
	{ "fcntl-dupfd",	NULL,		run_fcntl_dupfd },
	{ "dup",		NULL,		run_dup },
	{ "ioctl-tiocsti",	setup_pair,	run_ioctl },
	{ "memfd",		NULL,		run_memfd },
	{ "x32",		NULL,		run_x32 },
};

#define NACTIONS	(sizeof(probe_actions) / sizeof(probe_actions[0]))

/* What each role's process has done before its sandbox goes on. */
static void
probe_role_init(struct probe *p)
{
	if (p->role == SANDBOX_WORKER) {
		if (tls_init() == -1)
			probe_fail("tls_init");
		if ((p->base = event_base_new()) == NULL)
			probe_fail("event_base_new");
	} else {
		if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
			probe_fail("OPENSSL_init_crypto");
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
			probe_fail("PR_SET_DUMPABLE: %s", strerror(errno));
		if (CRYPTO_secure_malloc_init(1 << 16, 32) == 0)
			probe_fail("CRYPTO_secure_malloc_init");
	}
}

static void __attribute__((__noreturn__))
usage(void)
{
	fprintf(stderr, "usage: sandbox-probe [-v] [-u uid:gid -r dir] "
	    "worker|keyholder action\n       sandbox-probe -l\n");
	exit(1);
}

static void
probe_ids(const char *s, uid_t *uid, gid_t *gid)
{
	char		 buf[64], *colon;
	const char	*errstr;

	if (strlcpy(buf, s, sizeof(buf)) >= sizeof(buf) ||
	    (colon = strchr(buf, ':')) == NULL)
		usage();
	*colon = '\0';
	*uid = strtonum(buf, 0, UINT_MAX - 1, &errstr);
	if (errstr == NULL)
		*gid = strtonum(colon + 1, 0, UINT_MAX - 1, &errstr);
	if (errstr != NULL)
		probe_fail("-u %s: %s", s, errstr);
}

int
main(int argc, char *argv[])
{
	static struct probe		 p;
	const struct probe_action	*a = NULL;
	const char			*dir = NULL;
	uid_t				 uid = 0;
	gid_t				 gid = 0;
	size_t				 i;
	int				 ch, drop = 0, verbose = 0;

	while ((ch = getopt(argc, argv, "lr:u:v")) != -1) {
		switch (ch) {
		case 'l':
			for (i = 0; i < NACTIONS; i++)
				printf("%s\n", probe_actions[i].name);
			return 0;
		case 'r':
			dir = optarg;
			break;
		case 'u':
			probe_ids(optarg, &uid, &gid);
			drop = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 2)
		usage();
	if (strcmp(argv[0], "worker") == 0)
		p.role = SANDBOX_WORKER;
	else if (strcmp(argv[0], "keyholder") == 0)
		p.role = SANDBOX_KEYHOLDER;
	else
		usage();
	for (i = 0; i < NACTIONS; i++)
		if (strcmp(argv[1], probe_actions[i].name) == 0)
			a = &probe_actions[i];
	if (a == NULL)
		probe_fail("unknown action %s (-l lists them)", argv[1]);
	for (i = 0; i < 4; i++)
		p.fd[i] = -1;
	p.ppid = getppid();

	log_init(1, verbose);
	log_procinit(argv[0]);
	signal(SIGPIPE, SIG_IGN);
	probe_role_init(&p);
	if (a->setup != NULL)
		a->setup(&p);
	if (drop)
		privdrop_child(dir, uid, gid, 64);
	sandbox_child(p.role);
	if (a->run(&p) != 0)
		probe_fail("%s: failed", a->name);
	printf("ok %s\n", a->name);
	fflush(stdout);
	return 0;
}
