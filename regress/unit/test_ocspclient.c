/*
 * Unit tests for daemon/ocspclient.c, the parent's client OCSP service,
 * in a real event loop with two stand-in workers on real channels and the
 * real `openssl ocsp' answering on loopback (regress/tools/ocspresp.py):
 * good, revoked (and the notice to every worker) and unknown answers;
 * a certificate the CA did not sign; one responder request for
 * certificates asked about at once; the cache until nextUpdate; the rate
 * bound; a configuration change with queries in flight; OCSP turned off;
 * a worker that goes away while it waits; a malformed query.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>

#include <errno.h>
#include <event.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "config.h"
#include "ipc.h"
#include "ipcpair.h"
#include "log.h"
#include "metrics.h"
#include "ocspclient.h"
#include "ocspmsg.h"
#include "proc.h"
#include "proto.h"
#include "tap.h"
#include "tlsmat.h"

#define NW	2

static char			 dir[] = "/tmp/test_ocspclient.XXXXXX";
static char			 top[PATH_MAX];
static char			 url[128];	/* the responder */
static char			 deaf[128];	/* accepts, never answers */
static pid_t			 resp_pid = -1, dummy_pid = -1;
static int			 resp_fd = -1;
static struct event_base	*base;
static struct proc_group	 workers;
static struct ipc		 wk[NW];	/* the workers' ends */
static struct ocspclient	 oc;
static struct apply		 ap;
static struct config		 conf;
static struct tlsmat		 mat;
static struct metrics		 met;
static int			 revoked_seen[NW];
static char			 revoked_hash[NW][OCSPMSG_HASH_SIZE];

static void
dispatch(struct proc *p, struct ipc_msg *msg, void *arg)
{
	ocspclient_query(&oc, p, msg);
}

static int
restart(struct proc *p, void *arg)
{
	return -1;
}

static void
nothing(int fd, short ev, void *arg)
{
}

static uint8_t *
slurp(const char *name, size_t *len)
{
	FILE	*fp;
	uint8_t	*p = NULL;
	long	 n;

	if ((fp = fopen(name, "r")) == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) > 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 && (p = malloc(n)) != NULL &&
	    fread(p, 1, n, fp) != (size_t)n) {
		free(p);
		p = NULL;
	} else if (p != NULL)
		*len = n;
	fclose(fp);
	return p;
}

/*
 * ocspresp.py on a free loopback port; its URL is its first line.  The
 * pipe stays open while it runs: it may write the line in pieces.
 */
static int
responder_start(void)
{
	char		 script[PATH_MAX + 64];
	int		 fd[2], i;
	size_t		 len = 0;
	ssize_t		 n;
	struct pollfd	 pfd;

	snprintf(script, sizeof(script), "%s/regress/tools/ocspresp.py", top);
	if (pipe(fd) == -1 || (resp_pid = fork()) == -1)
		return -1;
	if (resp_pid == 0) {
		dup2(fd[1], STDOUT_FILENO);
		close(fd[0]);
		close(fd[1]);
		execlp("python3", "python3", script, "--index", "index.txt",
		    "--ca", "ca.crt", "--rsigner", "ca.crt", "--rkey", "ca.key",
		    "--nmin", "10", (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	resp_fd = pfd.fd = fd[0];
	pfd.events = POLLIN;
	for (i = 0; i < 100 && memchr(url, '\n', len) == NULL &&
	    len < sizeof(url) - 1; i++) {
		if (poll(&pfd, 1, 15000) != 1 ||
		    (n = read(fd[0], url + len, sizeof(url) - 1 - len)) <= 0)
			return -1;
		len += n;
	}
	url[len] = '\0';
	url[strcspn(url, "\r\n")] = '\0';
	return strncmp(url, "http://127.0.0.1:", 17) == 0 ? 0 : -1;
}

/* A listener that never accepts: connections succeed, answers never come. */
static int
deaf_start(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 sl = sizeof(sin);
	int			 s;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(s, 16) == -1 ||
	    getsockname(s, (struct sockaddr *)&sin, &sl) == -1)
		return -1;
	snprintf(deaf, sizeof(deaf), "http://127.0.0.1:%d/ocsp",
	    ntohs(sin.sin_port));
	return 0;
}

#define SUB(name, ca, serial, ext) \
	"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 " \
	"-nodes -keyout " name ".key -subj /CN=" name " -out " name ".csr " \
	"2>/dev/null && openssl x509 -req -in " name ".csr -CA " ca ".crt " \
	"-CAkey " ca ".key -set_serial " serial " -days 2 -extfile ext.cnf " \
	"-extensions " ext " -out " name ".crt 2>/dev/null && " \
	"openssl x509 -in " name ".crt -outform DER -out " name ".der && "

/* A CA, clients whose AIA names the responder, the CA's database. */
static int
make_pki(void)
{
	if (getcwd(top, sizeof(top)) == NULL || mkdtemp(dir) == NULL ||
	    chdir(dir) == -1)
		return -1;
	if (tap_run("openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt "
	    "-subj /CN=ocsp-ca -days 2 2>/dev/null && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -keyout other.key -out other.crt -subj /CN=other-ca "
	    "-days 2 2>/dev/null && "
	    "printf 'V\\t301231235959Z\\t\\t1001\\tunknown\\t/CN=good\\n"
	    "R\\t301231235959Z\\t240101000000Z\\t1002\\tunknown\\t/CN=rev\\n"
	    "V\\t301231235959Z\\t\\t1004\\tunknown\\t/CN=plain\\n'"
	    " > index.txt") == -1 || responder_start() == -1 ||
	    deaf_start() == -1)
		return -1;
	return tap_run("printf '%%s\\n' '[cli]' "
	    "'extendedKeyUsage=clientAuth' "
	    "'authorityInfoAccess=OCSP;URI:%s' > ext.cnf && "
	    SUB("good", "ca", "0x1001", "cli")
	    SUB("rev", "ca", "0x1002", "cli")
	    SUB("unk", "ca", "0x1003", "cli")
	    SUB("plain", "ca", "0x1004", "cli")
	    SUB("stranger", "other", "0x1005", "cli")
	    "true", url);
}

/* Two workers on channels of ours; a harmless process stands for them. */
static void
workers_start(void)
{
	static const struct proc_hooks	 hooks = { dispatch, restart };
	struct proc			*p;
	int				 i, sv[2];

	if ((dummy_pid = fork()) == 0) {
		pause();
		_exit(0);
	}
	proc_group_init(&workers, base, "worker", NW, &hooks, NULL);
	for (i = 0; i < NW; i++) {
		p = &workers.procs[i];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) ==
		    -1)
			abort();
		ipc_init(&p->ipc, sv[0]);
		ipc_init(&wk[i], sv[1]);
		p->pid = dummy_pid;
		/* as proc_spawn leaves it: proc_flush replaces the event */
		event_assign(&p->ev, base, -1, 0, nothing, NULL);
		proc_flush(p);
	}
}

/* What apply.c would have committed: generation gen. */
static void
commit(uint32_t gen, int mode, const char *u)
{
	free(conf.tls.client_ocsp_url);
	conf.tls.client_ocsp_url = u ? strdup(u) : NULL;
	conf.tls.client_ocsp = mode;
	conf.timeout_ocsp = 2;
	ap.gen_committed = gen;
}

static void
loop_for(int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

static void
ask(int w, uint32_t qid, const char *name)
{
	char	 f[64];
	uint8_t	*der;
	size_t	 len;

	snprintf(f, sizeof(f), "%s.der", name);
	if ((der = slurp(f, &len)) == NULL ||
	    ocspmsg_send_query(&wk[w], qid, der, len) == -1 ||
	    ipc_flush(&wk[w]) != 1)
		abort();
	free(der);
}

/*
 * The next OCSP answer worker w gets, within ms (notices of revocation
 * noted): 0 and *a, or -1.  why is copied: it points into
 * the message.
 */
static int
answer(int w, struct ocspmsg_answer *a, char *why, size_t whylen, int ms)
{
	struct ipc_msg	 msg;
	int		 i, r, got = -1;

	for (i = 0; i < ms / 20 && got == -1; i++) {
		loop_for(20);
		if (ipc_read(&wk[w]) == 0)
			return -1;
		while (got == -1 && (r = ipc_get(&wk[w], &msg)) == 1) {
			/* pings unanswered: 30 s of grace, more than we need */
			if (msg.hdr.type == IMSG_PING)
				;
			else if (msg.hdr.type == IMSG_OCSP_REVOKED) {
				revoked_seen[w]++;
				ocspmsg_get_revoked(&msg, revoked_hash[w],
				    sizeof(revoked_hash[w]));
			} else if (ocspmsg_get_answer(&msg, a) == 0) {
				snprintf(why, whylen, "%s", a->why);
				a->why = why;
				got = 0;
			}
			ipc_msg_free(&msg);
		}
		ipc_flush(&wk[w]);
	}
	return got;
}

static void
test_answers(void)
{
	struct ocspmsg_answer	 a;
	char			 why[OCSPMSG_WHY_MAX + 1];
	char			 want[OCSPMSG_HASH_SIZE];
	uint8_t			 d[OCSPMSG_DIGEST_LEN], *der;
	size_t			 len, i;
	time_t			 now = time(NULL);

	commit(1, CONFIG_OCSP_REQUIRE, NULL);
	ask(0, 11, "good");
	TAP_OK(answer(0, &a, why, sizeof(why), 5000) == 0 && a.qid == 11 &&
	    a.status == OCSPMSG_GOOD && a.until > now + 500 &&
	    a.until <= now + 601 + 5, "good, from the responder the "
	    "certificate names, kept until its nextUpdate (%s)",
	    ocspmsg_status_name(a.status));
	TAP_OK(met.ocsp_fetches[1] == 1 && met.ocsp_fetches[0] == 0,
	    "one responder request");
	ask(1, 12, "good");
	TAP_OK(answer(1, &a, why, sizeof(why), 5000) == 0 && a.qid == 12 &&
	    a.status == OCSPMSG_GOOD && met.ocsp_fetches[1] == 1 &&
	    met.ocsp_cache_hits == 1, "another worker's query: from the "
	    "cache");
	ask(0, 13, "rev");
	TAP_OK(answer(0, &a, why, sizeof(why), 5000) == 0 && a.qid == 13 &&
	    a.status == OCSPMSG_REVOKED, "revoked");
	if ((der = slurp("rev.der", &len)) == NULL ||
	    ocspmsg_cert_digest(der, len, d) == -1)
		abort();
	free(der);
	snprintf(want, sizeof(want), "SHA256:");
	for (i = 0; i < sizeof(d); i++)
		snprintf(want + 7 + 2 * i, 3, "%02x", d[i]);
	(void)answer(1, &a, why, sizeof(why), 200);
	TAP_OK(revoked_seen[0] == 1 && revoked_seen[1] == 1 &&
	    strcmp(revoked_hash[0], want) == 0 &&
	    strcmp(revoked_hash[1], want) == 0, "every worker is told which "
	    "certificate is revoked, by its hash");
	ask(0, 14, "stranger");
	TAP_OK(answer(0, &a, why, sizeof(why), 5000) == 0 && a.qid == 14 &&
	    a.status == OCSPMSG_NOANSWER && strstr(why, "not signed by the "
	    "client CA") != NULL && met.ocsp_fetches[0] +
	    met.ocsp_fetches[1] == 2, "a certificate the CA did not sign: "
	    "no answer, no request (%s)", why);
}

static void
test_coalesce(void)
{
	struct ocspmsg_answer	 a, b;
	char			 why[OCSPMSG_WHY_MAX + 1];
	uint64_t		 n = met.ocsp_fetches[1];

	ask(0, 21, "unk");
	ask(1, 22, "unk");
	TAP_OK(answer(0, &a, why, sizeof(why), 5000) == 0 &&
	    answer(1, &b, why, sizeof(why), 5000) == 0 && a.qid == 21 &&
	    b.qid == 22 && a.status == OCSPMSG_UNKNOWN &&
	    b.status == OCSPMSG_UNKNOWN, "unknown, to both workers asking");
	TAP_OK(met.ocsp_fetches[1] == n + 1, "one responder request for "
	    "both (%llu)", (unsigned long long)(met.ocsp_fetches[1] - n));
}

/*
 * The bucket refills by the second, so what may pass depends on how many
 * second boundaries the burst straddles: the bound says so, and the
 * queries are cheap ones (not certificates) to keep the burst short.
 */
static void
test_rate(void)
{
	struct ocspmsg_answer	 a;
	struct timespec		 t0, t1;
	char			 why[OCSPMSG_WHY_MAX + 1];
	uint8_t			 junk[100];
	int			 i, n = 2 * OCSPWAIT_BURST, refused = 0;
	int			 answered = 0, pass;

	memset(junk, 0x30, sizeof(junk));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < n; i++)
		if (ocspmsg_send_query(&wk[1], 100 + i, junk,
		    sizeof(junk)) == -1 || ipc_flush(&wk[1]) != 1)
			abort();
	for (i = 0; i < n; i++) {
		if (answer(1, &a, why, sizeof(why), 3000) == -1)
			break;
		answered++;
		if (strcmp(why, "too many ocsp queries") == 0)
			refused++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	pass = OCSPWAIT_BURST + OCSPWAIT_RATE * (int)(t1.tv_sec - t0.tv_sec +
	    1);
	TAP_OK(answered == n && refused >= n - pass &&
	    refused <= n - OCSPWAIT_BURST + 2, "%d queries at once: every one "
	    "answered, %d refused as too many (at least %d)", answered,
	    refused, n - pass);
	loop_for(2100);		/* the bucket refills */
}

static void
test_reconfigure(void)
{
	struct ocspmsg_answer	 a;
	char			 why[OCSPMSG_WHY_MAX + 1];
	uint64_t		 n = met.ocsp_fetches[1];

	commit(2, CONFIG_OCSP_PREFER, NULL);
	ask(0, 31, "good");
	TAP_OK(answer(0, &a, why, sizeof(why), 5000) == 0 &&
	    a.status == OCSPMSG_GOOD && met.ocsp_fetches[1] == n,
	    "the same CA and responder: the cache is kept");
	commit(3, CONFIG_OCSP_REQUIRE, deaf);
	ask(0, 32, "good");
	loop_for(300);
	TAP_OK(oc.wait.n == 1, "another responder: the cache is dropped, "
	    "the query waits for it");
	commit(4, CONFIG_OCSP_REQUIRE, url);
	ask(1, 33, "plain");
	TAP_OK(answer(0, &a, why, sizeof(why), 1000) == 0 && a.qid == 32 &&
	    a.status == OCSPMSG_NOANSWER && strcmp(why, "the configuration "
	    "changed") == 0, "a configuration change answers what waited "
	    "(%s)", why);
	TAP_OK(answer(1, &a, why, sizeof(why), 5000) == 0 && a.qid == 33 &&
	    a.status == OCSPMSG_GOOD, "the configured responder answers for "
	    "any certificate");
	commit(5, CONFIG_OCSP_OFF, NULL);
	ask(1, 34, "good");
	TAP_OK(answer(1, &a, why, sizeof(why), 1000) == 0 &&
	    a.status == OCSPMSG_NOANSWER && strcmp(why, "client ocsp is off") ==
	    0 && oc.ca == NULL && oc.cache.n == 0, "OCSP turned off: no "
	    "answer, nothing kept");
}

static void
test_late(void)
{
	struct ocspmsg_answer	 a;
	char			 why[OCSPMSG_WHY_MAX + 1];
	time_t			 t0 = time(NULL);

	commit(6, CONFIG_OCSP_REQUIRE, deaf);
	ask(0, 41, "good");
	TAP_OK(answer(0, &a, why, sizeof(why), 5000) == 0 &&
	    a.status == OCSPMSG_NOANSWER && strstr(why, "no answer within 2 "
	    "seconds") != NULL && time(NULL) - t0 <= 4,
	    "a responder that never answers: no answer after the timeout "
	    "(%s)", why);
	TAP_OK(met.ocsp_fetches[0] == 1, "a failed responder request");
	ask(1, 42, "plain");
	loop_for(300);
	ocspclient_worker_gone(&oc, &workers.procs[1]);
	TAP_OK(answer(1, &a, why, sizeof(why), 3000) == -1 &&
	    oc.wait.n == 0, "a worker gone while it waited gets nothing; "
	    "the request still ends");
}

static void
test_malformed(void)
{
	struct ipc_msg	 msg;
	int		 status;

	if (ipc_compose(&wk[0], IMSG_OCSP_QUERY, 51, -1, NULL, 0) == -1 ||
	    ipc_flush(&wk[0]) != 1)
		abort();
	loop_for(300);
	TAP_OK(!proc_alive(&workers.procs[0]) && waitpid(dummy_pid, &status,
	    0) == dummy_pid && WIFSIGNALED(status) &&
	    WTERMSIG(status) == SIGKILL, "a malformed query: the worker is "
	    "killed");
	dummy_pid = -1;
	TAP_OK(ipc_read(&wk[0]) == 0 || recv1(&wk[0], &msg) <= 0,
	    "and gets no answer");
}

int
main(void)
{
	log_init(1, 0);
	if (make_pki() == -1) {
		printf("Bail out! cannot make the PKI or start the responder "
		    "in %s\n", dir);
		if (resp_pid > 0)
			kill(resp_pid, SIGTERM);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		abort();
	workers_start();
	if (tlsmat_read_file("ca.crt", &mat.ca, NULL, 0) == -1)
		abort();
	ap.conf = &conf;
	ap.mat = &mat;
	ocspclient_init(&oc, base, &workers, &ap, &met);
	test_answers();
	test_coalesce();
	test_rate();
	test_reconfigure();
	test_late();
	test_malformed();
	ocspclient_clear(&oc);
	kill(resp_pid, SIGTERM);
	waitpid(resp_pid, NULL, 0);
	close(resp_fd);
	if (dummy_pid > 0) {
		kill(dummy_pid, SIGKILL);
		waitpid(dummy_pid, NULL, 0);
	}
	free(conf.tls.client_ocsp_url);
	buf_free(&mat.ca);
	tap_run("rm -rf %s", dir);
	return tap_done();
}
