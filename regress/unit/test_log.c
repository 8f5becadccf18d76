/* Unit tests for the log module (common/log.c). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"
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
	TAP_OK(strstr(out, "\np: after\n") != NULL && strlen(out) < 4500,
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
	return tap_done();
}
