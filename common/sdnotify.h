/*
 * The systemd notification protocol (sd_notify(3)), spoken directly: one
 * datagram of NAME=value lines to the unix socket named by $NOTIFY_SOCKET
 * (a path, or an abstract name written with a leading '@').  Without
 * $NOTIFY_SOCKET every call does nothing, so the daemon calls them
 * unconditionally.
 */
#ifndef TODOD_SDNOTIFY_H
#define TODOD_SDNOTIFY_H

#define SDNOTIFY_MAX	256	/* longest message todod sends */

int	sdnotify_send(const char *);
int	sdnotify_ready(void);
int	sdnotify_reloading(void);
int	sdnotify_stopping(void);

#endif
