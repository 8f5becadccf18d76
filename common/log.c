#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "proto.h"

/* The channel a child forwards its lines on (log_setchannel). */
struct log_channel {
	struct ipc	*ipc;
	void		(*kick)(void *);	/* bytes stayed queued */
	void		*arg;
	uint64_t	 dropped;		/* lines the queue had no room for */
};

static int		 log_foreground = 1;
static int		 log_verbose;
static int		 log_stamp;	/* UTC time before each stderr line */
static const char	*log_procname = "todod";
static log_sink_fn	 log_sink;
static struct log_channel log_chan;

/*
 * Is stderr the journal?  systemd sets JOURNAL_STREAM to the device and
 * inode of the stream it connected; a descriptor redirected since (or an
 * inherited variable) does not match.
 */
static int
log_stderr_is_journal(void)
{
	struct stat		 st;
	unsigned long long	 dev, ino;
	const char		*js;

	if ((js = getenv("JOURNAL_STREAM")) == NULL ||
	    sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/*
 * foreground: log to stderr, each line after its UTC time unless stderr
 * is the journal (which stamps lines itself); otherwise syslog
 * (LOG_DAEMON).  verbose: 0 info and up, 1 and more also debug.
 */
void
log_init(int foreground, int verbose)
{
	log_foreground = foreground;
	log_verbose = verbose;
	log_stamp = foreground && !log_stderr_is_journal();
	if (!foreground)
		openlog("todod", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	tzset();
}

/* Command output (todod -n) is not a log: no time stamps. */
void
log_setstamp(int on)
{
	log_stamp = on && log_foreground && !log_stderr_is_journal();
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
 * Queue one line for the parent.  The line goes without the process name:
 * the parent names the sender itself, from the channel it came on.
 */
static int
log_channel_queue(struct log_channel *lc, int pri, const char *line)
{
	struct ipc_wbuf	*wb;

	if ((wb = ipc_create(IMSG_LOG, 0, strlen(line) + 8)) == NULL)
		return -1;
	ipc_add_u32(wb, (uint32_t)pri);
	ipc_add_str(wb, line);
	return ipc_send(lc->ipc, wb, -1);
}

/*
 * The sink of every child (worker, keyholder).  The queue is capped so a
 * parent that does not read cannot make us grow; what is dropped is
 * counted and said once there is room again.  A line at LOG_CRIT or above
 * precedes exit (fatal): wait, bounded, until it is written.
 */
static void
log_channel_sink(int pri, const char *line)
{
	struct log_channel	*lc = &log_chan;
	char			 note[96];

	if (lc->ipc == NULL || lc->ipc->fd == -1)
		return;
	if (ipc_queued(lc->ipc) > LOG_CHANNEL_QMAX) {
		lc->dropped++;
		return;
	}
	if (lc->dropped > 0) {
		snprintf(note, sizeof(note), "%llu log lines dropped: the "
		    "channel to the parent was full",
		    (unsigned long long)lc->dropped);
		if (log_channel_queue(lc, LOG_WARNING, note) == 0)
			lc->dropped = 0;
	}
	if (log_channel_queue(lc, pri, line) == -1) {
		lc->dropped++;
		return;
	}
	if (pri <= LOG_CRIT)
		ipc_flush_blocking(lc->ipc, LOG_FATAL_FLUSH_MS);
	else
		ipc_flush(lc->ipc);
	if (ipc_queued(lc->ipc) > 0 && lc->kick != NULL)
		lc->kick(lc->arg);
}

/*
 * Forward every line over ipc (a child's channel to the parent).  kick,
 * if set, is called when bytes stay queued, so that the caller's event
 * loop waits for the channel to drain.  NULL stops forwarding.
 */
void
log_setchannel(struct ipc *ipc, void (*kick)(void *), void *arg)
{
	log_chan.ipc = ipc;
	log_chan.kick = kick;
	log_chan.arg = arg;
	log_chan.dropped = 0;
	log_sink = ipc != NULL ? log_channel_sink : NULL;
}

/* One byte as it appears in a log line; returns the bytes written. */
static size_t
log_escape_byte(char out[5], unsigned char ch, int quoted)
{
	if (ch >= 0x20 && ch < 0x7f && (!quoted || (ch != '"' &&
	    ch != '\\'))) {
		out[0] = ch;
		return 1;
	}
	out[0] = '\\';
	switch (ch) {
	case '\n':
		out[1] = 'n';
		return 2;
	case '\r':
		out[1] = 'r';
		return 2;
	case '\t':
		out[1] = 't';
		return 2;
	case '"':
	case '\\':
		out[1] = ch;
		return 2;
	}
	snprintf(out, 5, "\\%03o", ch);
	return 4;
}

/*
 * Escape len bytes of src into dst (dstlen bytes, at least 4).  Never an
 * escape cut in two: when src does not fit, dst ends with "...".
 * quoted: src is a value between double quotes, so " and \ are escaped
 * too; otherwise (a whole line) only control and non-ASCII bytes.
 */
/* Do the len bytes of src fit in room once escaped? */
static int
log_escape_fits(const char *src, size_t len, size_t room, int quoted)
{
	char	 seq[5];
	size_t	 i, n;

	for (i = 0; i < len; i++) {
		if ((n = log_escape_byte(seq, src[i], quoted)) > room)
			return 0;
		room -= n;
	}
	return 1;
}

static char *
log_escape_mode(char *dst, size_t dstlen, const char *src, size_t len,
    int quoted)
{
	char	 seq[5];
	size_t	 i, n, off = 0, room;

	for (i = 0; i < len && dstlen >= 4; i++) {
		n = log_escape_byte(seq, src[i], quoted);
		room = dstlen - 1 - off;
		if (n + 3 > room && !log_escape_fits(src + i, len - i, room,
		    quoted)) {
			memcpy(dst + off, "...", 3);
			off += 3;
			break;
		}
		memcpy(dst + off, seq, n);
		off += n;
	}
	if (dstlen > 0)
		dst[dstlen >= 4 ? off : 0] = '\0';
	return dst;
}

/*
 * An attacker's string (certificate name, request target, method) made
 * safe for a log line, between double quotes: no control byte, no
 * unescaped quote or backslash, nothing outside printable ASCII; \n, \r,
 * \t, \" and \\ or \ooo (octal) in their place, as vis(3) writes them.
 * Not vis(3) itself: with its usual flags it lets \n and \t through (and
 * \r, \b and BEL with VIS_SAFE), and what it does when dst is short
 * differs between implementations.  Returns dst.
 */
char *
log_escape(char *dst, size_t dstlen, const char *src, size_t len)
{
	return log_escape_mode(dst, dstlen, src, len, 1);
}

static uint64_t
log_now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * May a line from this child pass at time now (ms)?  1: yes, and
 * *suppressed is how many were refused before it (to be said once);
 * 0: no, counted.
 */
int
log_limit_pass(struct log_limit *ll, uint64_t now, uint32_t *suppressed)
{
	uint64_t	 add;

	if (!ll->started || now < ll->last_ms) {
		ll->started = 1;
		ll->tokens = LOG_CHILD_BURST;
		ll->last_ms = now;
	}
	add = (now - ll->last_ms) * LOG_CHILD_RATE / 1000;
	if (add > 0) {
		/* advance by what was credited: no fraction is lost */
		ll->last_ms += add * 1000 / LOG_CHILD_RATE;
		ll->tokens = add >= LOG_CHILD_BURST - ll->tokens ?
		    LOG_CHILD_BURST : ll->tokens + add;
	}
	if (ll->tokens == 0) {
		if (ll->suppressed < UINT32_MAX)
			ll->suppressed++;
		return 0;
	}
	ll->tokens--;
	*suppressed = ll->suppressed;
	ll->suppressed = 0;
	return 1;
}

/*
 * A line a child sent (IMSG_LOG), written by the parent.  The child is
 * not trusted with any of it: the sender's name is the parent's (from
 * the channel, never from the line), control bytes are escaped (no line
 * break, no terminal sequence), the priority is capped at
 * LOG_CHILD_PRIMAX, and each child has its own rate limit, with one line
 * saying how many were suppressed.  Returns the priority written at, or
 * -1 when the line was suppressed.
 */
int
log_child_line(struct log_limit *ll, const char *name, int pri,
    const char *line)
{
	char		 esc[2048], full[2200];
	uint32_t	 skipped;

	if (!log_limit_pass(ll, log_now_ms(), &skipped))
		return -1;
	if (skipped > 0) {
		snprintf(full, sizeof(full), "%s: %u lines suppressed "
		    "(over %d a second)", name, skipped, LOG_CHILD_RATE);
		log_emit_raw(LOG_WARNING, full);
	}
	pri &= LOG_PRIMASK;
	if (pri < LOG_CHILD_PRIMAX)
		pri = LOG_CHILD_PRIMAX;
	log_escape_mode(esc, sizeof(esc), line, strlen(line), 0);
	snprintf(full, sizeof(full), "%s: %s", name, esc);
	log_emit_raw(pri, full);
	return pri;
}

/*
 * IMSG_LOG from the child name, decoded here as log_channel_queue() wrote
 * it.  -1: malformed (the caller ends that child).
 */
int
log_child_msg(struct log_limit *ll, const char *name, struct ipc_msg *msg)
{
	uint32_t	 pri;
	const char	*line;

	if (ipc_get_u32(msg, &pri) == -1 || ipc_get_str(msg, &line) == -1 ||
	    ipc_get_end(msg) == -1)
		return -1;
	log_child_line(ll, name, (int)(pri & LOG_PRIMASK), line);
	return 0;
}

/*
 * One write(2) per line: dprintf() would also fstat and lseek the
 * descriptor every time, which costs on a line per request.
 */
static void
log_write_line(const char *prefix, const char *msg)
{
	char		 line[2200], stamp[32] = "";
	struct tm	 tm;
	time_t		 now;
	int		 n;

	/* gmtime_r needs no zone file: it works in the chroot too */
	if (log_stamp && (now = time(NULL)) != (time_t)-1 &&
	    gmtime_r(&now, &tm) != NULL)
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ ", &tm);
	if (prefix != NULL)
		n = snprintf(line, sizeof(line), "%s%s: %s\n", stamp, prefix,
		    msg);
	else
		n = snprintf(line, sizeof(line), "%s%s\n", stamp, msg);
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
