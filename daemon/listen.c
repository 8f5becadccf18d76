#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listen.h"
#include "log.h"

#define LISTEN_BACKLOG	1024

/*
 * Each worker has its own listening socket per address, all bound with
 * SO_REUSEPORT: the kernel spreads new connections over them instead of
 * letting whichever worker wakes first take a burst.  A dead worker's
 * sockets are closed, so its share goes to the others until it is back.
 */
static int
listen_open(const struct config *conf, struct config_listen *l, int idx,
    char *err, size_t errlen)
{
	int	 fd, one = 1;

	if ((fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1)
		goto fail;
	/*
	 * Accepted sockets inherit it.  Responses are written whole; Nagle
	 * would only hold back the tail of a multi-record one until the
	 * client's delayed ACK (40 ms).
	 */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (l->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&l->ss, l->sslen) == -1 ||
	    listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	l->fds[idx] = fd;
	return 0;
 fail:
	snprintf(err, errlen, "listen on %s (%s:%d): %s", l->name,
	    conf->path, l->lineno, strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

/*
 * SO_REUSEPORT would let a second todod (same user) bind the same address
 * and quietly share its connections.  So an address not already ours is
 * first bound plainly: if anything holds it, that fails as it should.
 */
static int
listen_probe(const struct config *conf, struct config_listen *l, char *err,
    size_t errlen)
{
	int	 fd, one = 1, r;

	if ((fd = socket(l->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) ==
	    -1)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	r = bind(fd, (struct sockaddr *)&l->ss, l->sslen);
	close(fd);
	if (r == 0)
		return 0;
 fail:
	snprintf(err, errlen, "listen on %s (%s:%d): %s", l->name,
	    conf->path, l->lineno, strerror(errno));
	return -1;
}

/* The same address in the configuration in use, or NULL. */
static struct config_listen *
listen_find(const struct config *cur, const struct config_listen *l)
{
	struct config_listen	*o;

	if (cur == NULL)
		return NULL;
	TAILQ_FOREACH(o, &cur->listens, entry)
		if (o->sslen == l->sslen && memcmp(&o->ss, &l->ss,
		    l->sslen) == 0)
			return o;
	return NULL;
}

/*
 * Bind the listeners of conf for nworkers, sharing the sockets of cur (the
 * configuration in use) where the address is the same: a reload keeps them
 * open, and connections waiting in the backlog are not lost.
 */
int
listen_bind(const struct config *cur, struct config *conf, int nworkers,
    char *err, size_t errlen)
{
	struct config_listen	*l, *o;
	int			 i;

	if (cur == conf)
		cur = NULL;
	TAILQ_FOREACH(l, &conf->listens, entry) {
		o = listen_find(cur, l);
		if (o == NULL && listen_probe(conf, l, err, errlen) == -1)
			return -1;
		for (i = 0; i < nworkers; i++) {
			if (l->fds[i] != -1)
				continue;
			if (o != NULL && o->fds[i] != -1)
				l->fds[i] = fcntl(o->fds[i], F_DUPFD_CLOEXEC,
				    0);
			if (l->fds[i] == -1 &&
			    listen_open(conf, l, i, err, errlen) == -1)
				return -1;
		}
	}
	return 0;
}

/* Close (or open again) worker idx's sockets in a configuration. */
void
listen_worker(struct config *conf, int idx, int open)
{
	struct config_listen	*l;
	char			 err[512];

	if (conf == NULL)
		return;
	TAILQ_FOREACH(l, &conf->listens, entry) {
		if (!open && l->fds[idx] != -1) {
			close(l->fds[idx]);
			l->fds[idx] = -1;
		} else if (open && l->fds[idx] == -1 &&
		    listen_open(conf, l, idx, err, sizeof(err)) == -1)
			log_warnx("worker %d: %s", idx + 1, err);
	}
}

void
listen_close(struct config *conf)
{
	struct config_listen	*l;
	int			 i;

	TAILQ_FOREACH(l, &conf->listens, entry)
		for (i = 0; i < CONFIG_MAX_WORKERS; i++)
			if (l->fds[i] != -1) {
				close(l->fds[i]);
				l->fds[i] = -1;
			}
}
