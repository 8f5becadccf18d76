#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int		 log_foreground = 1;
static int		 log_verbose;
static const char	*log_procname = "todod";
static log_sink_fn	 log_sink;

/*
 * foreground: log to stderr; otherwise syslog (LOG_DAEMON).
 * verbose: 0 info and up, 1 and more also debug.
 */
void
log_init(int foreground, int verbose)
{
	log_foreground = foreground;
	log_verbose = verbose;
	if (!foreground)
		openlog("todod", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
}

void
log_procinit(const char *name)
{
	if (name != NULL)
		log_procname = name;
}

void
log_setverbose(int v)
{
	log_verbose = v;
}

int
log_getverbose(void)
{
	return log_verbose;
}

void
log_setsink(log_sink_fn fn)
{
	log_sink = fn;
}

/*
 * One write(2) per line: dprintf() would also fstat and lseek the
 * descriptor every time, which costs on a line per request.
 */
static void
log_write_line(const char *prefix, const char *msg)
{
	char	 line[2200];
	int	 n;

	if (prefix != NULL)
		n = snprintf(line, sizeof(line), "%s: %s\n", prefix, msg);
	else
		n = snprintf(line, sizeof(line), "%s\n", msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)write(STDERR_FILENO, line, n);
}

/* Write one finished line, without the process prefix, to its target. */
void
log_emit(int pri, const char *msg)
{
	int	 saved = errno;

	if (log_sink != NULL)
		log_sink(pri, msg);
	else if (log_foreground)
		log_write_line(log_procname, msg);
	else
		syslog(pri, "%s: %s", log_procname, msg);
	errno = saved;
}

/*
 * A line another process made, prefix included (the parent writes what
 * its children forward).
 */
void
log_emit_raw(int pri, const char *line)
{
	int	 saved = errno;

	if (log_foreground)
		log_write_line(NULL, line);
	else
		syslog(pri, "%s", line);
	errno = saved;
}

const char *
log_getprocname(void)
{
	return log_procname;
}

void
vlog(int pri, const char *fmt, va_list ap)
{
	char	 line[2048];

	if (pri == LOG_DEBUG && log_verbose < 1)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	log_emit(pri, line);
}

static void
vlog_errno(int pri, int err, const char *fmt, va_list ap)
{
	char	 line[2048];
	int	 n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - n, ": %s", strerror(err));
	log_emit(pri, line);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	vlog_errno(LOG_ERR, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	vlog_errno(LOG_CRIT, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}
