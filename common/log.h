/*
 * Logging for every todod process: stderr in the foreground, syslog when
 * daemonized, or a sink (children forward their lines to the parent, which
 * owns the syslog connection: a chrooted, seccomp-filtered child cannot
 * reconnect to /dev/log).  Each line starts with the process name.
 */
#ifndef TODOD_LOG_H
#define TODOD_LOG_H

#include <stdarg.h>

typedef void	(*log_sink_fn)(int, const char *);

void	log_init(int, int);
void	log_procinit(const char *);
void	log_setverbose(int);
int	log_getverbose(void);
void	log_setsink(log_sink_fn);
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
