/* Unit tests for the log module (common/log.c). */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "tap.h"

static char	 sunk[8][256];
static int	 sunkpri[8];
static int	 nsunk;

static void
sink(int pri, const char *line)
{
	if (nsunk < 8) {
		sunkpri[nsunk] = pri;
		strlcpy(sunk[nsunk++], line, sizeof(sunk[0]));
	}
}

/* Run fn in a child with stderr on a pipe; return what it wrote. */
static size_t
capture(void (*fn)(void), char *out, size_t len, int *status)
{
	int	 p[2];
	size_t	 n = 0;
	ssize_t	 r;
	pid_t	 pid;

	if (pipe(p) == -1)
		abort();
	if ((pid = fork()) == 0) {
		dup2(p[1], STDERR_FILENO);
		close(p[0]);
		fn();
		_exit(0);
	}
	close(p[1]);
	while (n < len - 1 && (r = read(p[0], out + n, len - 1 - n)) > 0)
		n += r;
	out[n] = '\0';
	close(p[0]);
	waitpid(pid, status, 0);
	return n;
}

static void
emit_levels(void)
{
	log_init(1, 0);
	log_procinit("worker 3");
	log_info("hello %d", 42);
	log_debug("not shown");
	log_setverbose(1);
	log_debug("shown at -v");
	errno = ENOENT;
	log_warn("open %s", "/nonexistent");
	log_warnx("plain");
}

static void
emit_fatal(void)
{
	log_init(1, 0);
	log_procinit("parent");
	errno = EACCES;
	fatal("key %s", "server.key");
}

static void
emit_fatalx(void)
{
	log_init(1, 0);
	fatalx("bad message %u", 7U);
}

static void
emit_long(void)
{
	char	 big[5000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_init(1, 0);
	log_procinit("p");
	log_info("%s", big);
	log_info("after");
}

static void
emit_child_lines(void)
{
	struct log_limit	 ll;
	int			 i, pri;

	memset(&ll, 0, sizeof(ll));
	log_init(1, 0);
	log_procinit("parent");
	pri = log_child_line(&ll, "worker 2", LOG_EMERG,
	    "parent: x\nparent: forged\r\033[2J\a");
	if (pri != LOG_ERR)
		_exit(2);
	if (log_child_line(&ll, "worker 2", LOG_INFO, "a \"q\" \\ b") !=
	    LOG_INFO)
		_exit(3);
	for (i = 0; i < LOG_CHILD_BURST + 100; i++)
		log_child_line(&ll, "worker 2", LOG_INFO, "spam");
	usleep(5000);	/* a few lines' worth of refill */
	log_child_line(&ll, "worker 2", LOG_INFO, "later");
}

/* A child that queues much more than the socket holds, then fatalx. */
static int	 sinkfd = -1;

static void
emit_fatal_channel(void)
{
	struct ipc	 ipc;
	char		 big[1000];
	int		 i;

	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_init(1, 0);
	ipc_init(&ipc, sinkfd);
	log_setchannel(&ipc, NULL, NULL);
	for (i = 0; i < 600; i++)
		log_info("%s", big);
	fatalx("last words");
}

static void
test_escape(void)
{
	char	 d[64], small[8];

	log_escape(d, sizeof(d), "a\nb\r\t\"\\\a\033\177\303\251", 12);
	TAP_OK(strcmp(d, "a\\nb\\r\\t\\\"\\\\\\007\\033\\177\\303\\251")
	    == 0, "log_escape: control, quote, backslash, non-ASCII: %s", d);
	log_escape(d, sizeof(d), "x\0y", 3);
	TAP_OK(strcmp(d, "x\\000y") == 0, "a NUL byte is escaped, not an end");
	log_escape(d, sizeof(d), "mtls-client O'Brien", 19);
	TAP_OK(strcmp(d, "mtls-client O'Brien") == 0, "plain text unchanged");
	log_escape(small, sizeof(small), "abcdefghij", 10);
	TAP_OK(strcmp(small, "abcd...") == 0, "too long: cut with ...: %s",
	    small);
	log_escape(small, sizeof(small), "ab\n\n\n", 5);
	TAP_OK(strcmp(small, "ab\\n...") == 0,
	    "no escape cut in two: %s", small);
	log_escape(small, sizeof(small), "abcdefg", 7);
	TAP_OK(strcmp(small, "abcdefg") == 0, "exact fit is not cut");
}

static void
test_limit(void)
{
	struct log_limit	 ll;
	uint32_t		 sup = 99;
	int			 i, n = 0;

	memset(&ll, 0, sizeof(ll));
	for (i = 0; i < LOG_CHILD_BURST + 50; i++)
		n += log_limit_pass(&ll, 1000, &sup);
	TAP_OK(n == LOG_CHILD_BURST, "a burst passes, then lines are "
	    "refused (%d passed)", n);
	TAP_OK(log_limit_pass(&ll, 1000, &sup) == 0, "still refused at the "
	    "same instant");
	TAP_OK(log_limit_pass(&ll, 1001, &sup) == 1 && sup == 51,
	    "a millisecond later one passes and says 51 were suppressed "
	    "(%u)", sup);
	TAP_OK(log_limit_pass(&ll, 1001, &sup) == 0, "and the next is refused");
	n = 0;
	for (i = 0; i < 3 * LOG_CHILD_RATE; i++)
		n += log_limit_pass(&ll, 2001, &sup);
	TAP_OK(n == LOG_CHILD_RATE, "one second refills %d lines (%d)",
	    LOG_CHILD_RATE, n);
}

/* The foreground stamp, and its absence when stderr is the journal. */
static void
emit_stamped(void)
{
	log_init(1, 0);
	log_info("stamped");
}

static void
emit_journal(void)
{
	struct stat	 st;
	char		 js[64];

	fstat(STDERR_FILENO, &st);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", js, 1);
	log_init(1, 0);
	log_info("journal");
}

static void
emit_other_journal(void)
{
	setenv("JOURNAL_STREAM", "1:2", 1);
	log_init(1, 0);
	log_info("not the journal");
	log_setstamp(0);
	log_info("command output");
}

static void
test_stamps(void)
{
	char	 out[1024];
	int	 status, y, mo, d, h, mi, sec;
	char	 z;

	capture(emit_stamped, out, sizeof(out), &status);
	TAP_OK(sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2d%c ", &y, &mo, &d, &h, &mi,
	    &sec, &z) == 7 && z == 'Z' && y >= 2024 &&
	    strstr(out, "Z todod: stamped\n") != NULL,
	    "foreground lines start with the UTC time: %.40s", out);
	capture(emit_journal, out, sizeof(out), &status);
	TAP_OK(strcmp(out, "todod: journal\n") == 0,
	    "stderr is the journal: no stamp (%s)", out);
	capture(emit_other_journal, out, sizeof(out), &status);
	TAP_OK(strstr(out, "Z todod: not the journal\n") != NULL,
	    "JOURNAL_STREAM of another stream: stamped");
	TAP_OK(strstr(out, "\ntodod: command output\n") != NULL,
	    "log_setstamp(0): no stamp");
}

int
main(void)
{
	char	 out[8192];
	int	 status;

	capture(emit_levels, out, sizeof(out), &status);
	TAP_OK(strstr(out, "worker 3: hello 42\n") != NULL,
	    "lines carry the process name");
	TAP_OK(strstr(out, "not shown") == NULL,
	    "debug is silent without -v");
	TAP_OK(strstr(out, "worker 3: shown at -v\n") != NULL,
	    "debug shows with verbosity");
	TAP_OK(strstr(out, "worker 3: open /nonexistent: No such file or "
	    "directory\n") != NULL, "log_warn appends strerror");
	TAP_OK(strstr(out, "worker 3: plain\n") != NULL,
	    "log_warnx has no strerror");

	capture(emit_fatal, out, sizeof(out), &status);
	TAP_OK(WIFEXITED(status) && WEXITSTATUS(status) == 1,
	    "fatal exits 1");
	TAP_OK(strstr(out, "parent: key server.key: Permission denied\n") !=
	    NULL, "fatal says what, with strerror");
	capture(emit_fatalx, out, sizeof(out), &status);
	TAP_OK(WIFEXITED(status) && WEXITSTATUS(status) == 1 &&
	    strstr(out, "bad message 7\n") != NULL, "fatalx exits 1");

	capture(emit_long, out, sizeof(out), &status);
	TAP_OK(strstr(out, "Z p: after\n") != NULL && strlen(out) < 4500,
	    "an overlong line is cut, and ends with a newline");

	log_init(1, 0);
	log_setsink(sink);
	log_info("to the parent");
	log_warnx("warned");
	log_debug("dropped");
	log_setsink(NULL);
	TAP_OK(nsunk == 2 && strcmp(sunk[0], "to the parent") == 0 &&
	    sunkpri[0] == LOG_INFO && sunkpri[1] == LOG_ERR,
	    "a sink gets the lines and their priorities");
	TAP_OK(log_getverbose() == 0, "verbosity reads back");

	test_escape();
	test_limit();

	{
		static char	 big[1 << 20];
		char		*p;
		int		 n;
		struct timespec	 t0, t1;
		long		 ms;

		/*
		 * The limiter refills 1000 lines a second: how many pass
		 * beyond the burst depends on how long the child took, so
		 * the bound is taken from the time it ran (a loaded machine
		 * running the ASan build takes tens of milliseconds).
		 */
		clock_gettime(CLOCK_MONOTONIC, &t0);
		capture(emit_child_lines, big, sizeof(big), &status);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000;
		TAP_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "LOG_EMERG from a child is written at LOG_ERR");
		TAP_OK(strstr(big, "worker 2: parent: x\\nparent: forged"
		    "\\r\\033[2J\\007\n") != NULL, "the parent names the "
		    "sender and escapes control bytes");
		TAP_OK(strstr(big, "worker 2: a \"q\" \\ b\n") != NULL,
		    "quotes in a child's line stay as sent");
		for (n = 0, p = big; (p = strstr(p, "worker 2: spam\n")) !=
		    NULL; p++)
			n++;
		TAP_OK(n >= LOG_CHILD_BURST - 2 && n < LOG_CHILD_BURST + 5 +
		    ms && n < LOG_CHILD_BURST + 100,
		    "rate limited: %d of %d spam lines written in %ld ms", n,
		    LOG_CHILD_BURST + 100, ms);
		TAP_OK(strstr(big, "worker 2: ") != NULL && strstr(big,
		    " lines suppressed (over 1000 a second)\n") != NULL,
		    "one line says how many were suppressed");
	}

	{
		struct ipc	 ipc;
		struct ipc_msg	 msg;
		const char	*line;
		uint32_t	 pri;
		int		 sv[2], lastcrit = 0, lines = 0, r;
		pid_t		 pid;

		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
			abort();
		sinkfd = sv[1];
		if ((pid = fork()) == 0) {
			close(sv[0]);
			emit_fatal_channel();
			_exit(0);
		}
		close(sv[1]);
		usleep(50000);	/* the child is blocked on a full socket */
		ipc_init(&ipc, sv[0]);
		while (ipc_read(&ipc) > 0)
			while ((r = ipc_get(&ipc, &msg)) == 1) {
				if (msg.hdr.type == IMSG_LOG &&
				    ipc_get_u32(&msg, &pri) == 0 &&
				    ipc_get_str(&msg, &line) == 0) {
					lines++;
					if (strcmp(line, "last words") == 0 &&
					    pri == LOG_CRIT)
						lastcrit = 1;
				}
				ipc_msg_free(&msg);
			}
		ipc_clear(&ipc);
		waitpid(pid, &status, 0);
		TAP_OK(lastcrit && lines == 601, "a child's fatalx line reaches "
		    "the parent behind %d queued lines, unprefixed", lines - 1);
	}
	test_stamps();
	return tap_done();
}
