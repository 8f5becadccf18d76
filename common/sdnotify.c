#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sdnotify.h"

/*
 * The address $NOTIFY_SOCKET names.  An abstract name ('@' first) has a
 * NUL first byte and no terminating NUL: its length is part of the name.
 */
static int
sdnotify_addr(struct sockaddr_un *sun, socklen_t *len)
{
	const char	*path;
	size_t		 n;

	if ((path = getenv("NOTIFY_SOCKET")) == NULL || *path == '\0')
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n < 2 ||
	    n >= sizeof(sun->sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@') {
		sun->sun_path[0] = '\0';
		*len = offsetof(struct sockaddr_un, sun_path) + n;
	} else
		*len = offsetof(struct sockaddr_un, sun_path) + n + 1;
	return 1;
}

/*
 * 1: sent, 0: no $NOTIFY_SOCKET, -1: failed (logged: under systemd a lost
 * READY=1 ends in a start-up timeout, and the log should say why).
 */
int
sdnotify_send(const char *msg)
{
	struct sockaddr_un	 sun;
	socklen_t		 len;
	ssize_t			 n = -1;
	int			 fd, rv;

	if ((rv = sdnotify_addr(&sun, &len)) == 0)
		return 0;
	if (rv == 1 &&
	    (fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) != -1) {
		do {
			n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL,
			    (struct sockaddr *)&sun, len);
		} while (n == -1 && errno == EINTR);
		if (n == -1)
			log_warn("NOTIFY_SOCKET %s", getenv("NOTIFY_SOCKET"));
		close(fd);
	} else
		log_warn("NOTIFY_SOCKET %s", getenv("NOTIFY_SOCKET"));
	return n == -1 ? -1 : 1;
}

int
sdnotify_ready(void)
{
	return sdnotify_send("READY=1\nSTATUS=serving");
}

/*
 * systemd 253 and later want the CLOCK_MONOTONIC time of the reload with
 * RELOADING=1, to tell this reload from an earlier one; older ones ignore
 * the field.
 */
int
sdnotify_reloading(void)
{
	struct timespec	 ts;
	char		 msg[SDNOTIFY_MAX];

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return -1;
	snprintf(msg, sizeof(msg), "RELOADING=1\nSTATUS=reloading\n"
	    "MONOTONIC_USEC=%llu", (unsigned long long)ts.tv_sec * 1000000 +
	    (unsigned long long)ts.tv_nsec / 1000);
	return sdnotify_send(msg);
}

int
sdnotify_stopping(void)
{
	return sdnotify_send("STOPPING=1\nSTATUS=stopping");
}
