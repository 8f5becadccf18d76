/*
 * The notification datagrams, received on real unix sockets: a path and
 * an abstract name; no $NOTIFY_SOCKET; malformed ones.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdnotify.h"
#include "tap.h"

static int
listen_on(const char *name, int abstract)
{
	struct sockaddr_un	 sun;
	socklen_t		 len;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strlcpy(sun.sun_path + abstract, name, sizeof(sun.sun_path) - 1);
	len = offsetof(struct sockaddr_un, sun_path) + abstract + strlen(name) +
	    !abstract;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, len) == -1)
		return -1;
	return fd;
}

/* One datagram, or "" after a second. */
static const char *
receive(int fd)
{
	static char	 buf[512];
	struct timeval	 tv = { 1, 0 };
	ssize_t		 n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if ((n = recv(fd, buf, sizeof(buf) - 1, 0)) < 0)
		n = 0;
	buf[n] = '\0';
	return buf;
}

static void
test_path(void)
{
	char		 dir[] = "/tmp/sdnotify.XXXXXX", path[128];
	const char	*got;
	int		 fd;

	if (mkdtemp(dir) == NULL)
		return;
	snprintf(path, sizeof(path), "%s/notify", dir);
	fd = listen_on(path, 0);
	TAP_OK(fd != -1, "listening on %s", path);
	setenv("NOTIFY_SOCKET", path, 1);
	TAP_OK(sdnotify_ready() == 1, "ready sent");
	TAP_OK(strncmp(receive(fd), "READY=1\n", 8) == 0, "READY=1 received");
	TAP_OK(sdnotify_reloading() == 1, "reloading sent");
	got = receive(fd);
	TAP_OK(strncmp(got, "RELOADING=1\n", 12) == 0, "RELOADING=1 received");
	TAP_OK(strstr(got, "\nMONOTONIC_USEC=") != NULL,
	    "RELOADING=1 carries MONOTONIC_USEC");
	TAP_OK(sdnotify_stopping() == 1, "stopping sent");
	TAP_OK(strncmp(receive(fd), "STOPPING=1\n", 11) == 0,
	    "STOPPING=1 received");
	close(fd);
	unlink(path);
	rmdir(dir);
}

static void
test_abstract(void)
{
	char	 name[64], env[66];
	int	 fd;

	snprintf(name, sizeof(name), "todod-sdnotify-%ld", (long)getpid());
	fd = listen_on(name, 1);
	TAP_OK(fd != -1, "listening on @%s", name);
	snprintf(env, sizeof(env), "@%s", name);
	setenv("NOTIFY_SOCKET", env, 1);
	TAP_OK(sdnotify_send("STATUS=test") == 1 &&
	    strcmp(receive(fd), "STATUS=test") == 0,
	    "an abstract name: the datagram arrives");
	close(fd);
}

static void
test_bad(void)
{
	char	 longname[200];

	unsetenv("NOTIFY_SOCKET");
	TAP_OK(sdnotify_ready() == 0, "no NOTIFY_SOCKET: nothing to do");
	setenv("NOTIFY_SOCKET", "", 1);
	TAP_OK(sdnotify_ready() == 0, "empty NOTIFY_SOCKET: nothing to do");
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	TAP_OK(sdnotify_ready() == -1, "a relative path is refused");
	setenv("NOTIFY_SOCKET", "@", 1);
	TAP_OK(sdnotify_ready() == -1, "an empty abstract name is refused");
	memset(longname, 'x', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	TAP_OK(sdnotify_ready() == -1, "a name too long is refused");
	setenv("NOTIFY_SOCKET", "/nonexistent/notify", 1);
	TAP_OK(sdnotify_ready() == -1, "nobody listening: -1");
}

int
main(void)
{
	test_path();
	test_abstract();
	test_bad();
	return tap_done();
}
