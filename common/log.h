/*
 * Logging for every todod process: stderr in the foreground, syslog when
 * daemonized, or a sink (children forward their lines to the parent, which
 * owns the syslog connection: a chrooted, seccomp-filtered child cannot
 * reconnect to /dev/log).  Each line starts with the process name.
 */
#ifndef TODOD_LOG_H
#define TODOD_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Children forward lines over their channel to the parent; past this many
 * queued bytes they drop lines (and count them) rather than grow.
 */
#define LOG_CHANNEL_QMAX	(1024 * 1024)
#define LOG_FATAL_FLUSH_MS	200	/* a fatal line waits this long to go */

/*
 * What the parent lets each child write (log_child_line): nothing more
 * severe than LOG_ERR (LOG_CRIT and above stay the parent's: journald
 * broadcasts LOG_EMERG to every terminal), and at most LOG_CHILD_RATE
 * lines a second on average, in bursts of up to LOG_CHILD_BURST.
 */
#define LOG_CHILD_PRIMAX	LOG_ERR
#define LOG_CHILD_RATE		1000
#define LOG_CHILD_BURST		5000

/* Room for n bytes of escaped text: at most 4 per byte, and a NUL. */
#define LOG_ESCAPE_SIZE(n)	((n) * 4 + 1)

struct ipc;
struct ipc_msg;

/* A token bucket, one per child; all zeros is a full bucket. */
struct log_limit {
	uint64_t	 last_ms;	/* tokens counted up to this time */
	uint32_t	 tokens;
	uint32_t	 suppressed;	/* lines refused since the last one */
	int		 started;
};

typedef void	(*log_sink_fn)(int, const char *);

void	log_init(int, int);
void	log_procinit(const char *);
void	log_setstamp(int);
void	log_setverbose(int);
int	log_getverbose(void);
void	log_setsink(log_sink_fn);
void	log_setchannel(struct ipc *, void (*)(void *), void *);
char	*log_escape(char *, size_t, const char *, size_t);
int	log_limit_pass(struct log_limit *, uint64_t, uint32_t *);
int	log_child_line(struct log_limit *, const char *, int, const char *);
int	log_child_msg(struct log_limit *, const char *, struct ipc_msg *);
void	log_emit(int, const char *);
void	log_emit_raw(int, const char *);
const char *log_getprocname(void);
void	log_warn(const char *, ...)
	    __attribute__((__format__(printf, 1, 2)));
void	log_warnx(const char *, ...)
	    __attribute__((__format__(printf, 1, 2)));
void	log_info(const char *, ...)
	    __attribute__((__format__(printf, 1, 2)));
void	log_debug(const char *, ...)
	    __attribute__((__format__(printf, 1, 2)));
void	vlog(int, const char *, va_list)
	    __attribute__((__format__(printf, 2, 0)));
void	fatal(const char *, ...)
	    __attribute__((__format__(printf, 1, 2), __noreturn__));
void	fatalx(const char *, ...)
	    __attribute__((__format__(printf, 1, 2), __noreturn__));

#endif
