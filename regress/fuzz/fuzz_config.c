/*
 * libFuzzer target for the todod.conf parser: the input is written to a
 * file in a private temporary directory and handed to config_parse().
 * What parses must obey the ranges the man page promises, and every rule
 * must format into a line.  Each input is parsed twice, as a reload would,
 * to catch state left behind by the first parse.
 *
 * Host names in `listen on` go through getaddrinfo(): the harness moves
 * itself into an empty network namespace first (when it may), so that no
 * fuzzed name ever leaves the machine as a DNS query.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	 path[PATH_MAX];

static void
quiet(int pri, const char *line)
{
	(void)pri;
	(void)line;
}

static void
cleanup(void)
{
	char	*slash;

	unlink(path);
	if ((slash = strrchr(path, '/')) != NULL) {
		*slash = '\0';
		rmdir(path);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	 tmpl[] = "/tmp/fuzz_config.XXXXXX";

	(void)argc;
	(void)argv;
	if (unshare(CLONE_NEWNET) == -1)
		fprintf(stderr, "fuzz_config: unshare(CLONE_NEWNET): %s; "
		    "host names may be looked up\n", strerror(errno));
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/todod.conf", tmpl);
	atexit(cleanup);
	log_setsink(quiet);
	/* A -D macro, so that the override path is exercised too. */
	config_define("fuzzport=8443");
	return 0;
}

static void
check(const struct config *c)
{
	const struct config_listen	*l;
	const struct authz_rule		*r;
	static char			 line[65536];

	if (c->prefork < 1 || c->prefork > CONFIG_MAX_WORKERS ||
	    c->keyholders < 1 || c->keyholders > c->prefork ||
	    c->timeout_request < 1 || c->timeout_request > 3600 ||
	    c->timeout_idle < 1 || c->timeout_idle > 86400 ||
	    c->timeout_handshake < 1 || c->timeout_handshake > 3600 ||
	    c->timeout_ocsp < 1 || c->timeout_ocsp > 60 ||
	    c->tls.client_ocsp < CONFIG_OCSP_OFF ||
	    c->tls.client_ocsp > CONFIG_OCSP_REQUIRE ||
	    c->max_connections < 1 || c->max_connections > 100000 ||
	    c->expiry_warn_days < 0 || c->expiry_warn_days > 3650)
		abort();
	if (c->tls.cert == NULL || c->tls.cert[0] != '/' ||
	    c->tls.key == NULL || c->tls.key[0] != '/' ||
	    c->tls.ca == NULL || c->tls.ca[0] != '/' ||
	    (c->tls.crl != NULL && c->tls.crl[0] != '/') ||
	    c->database[0] != '/' || c->chroot[0] != '/' ||
	    (c->pidfile != NULL && c->pidfile[0] != '/'))
		abort();
	if (c->tls.ticket_lifetime != 0 && (c->tls.ticket_lifetime < 240 ||
	    c->tls.ticket_lifetime > 86400))
		abort();
	if (TAILQ_EMPTY(&c->listens))
		abort();
	TAILQ_FOREACH(l, &c->listens, entry)
		if (l->name[0] == '\0' || l->fds[0] != -1 || l->sslen == 0)
			abort();
	TAILQ_FOREACH(r, &c->rules, entry) {
		if (r->nconds < 1 || r->nconds > AUTHZ_MAX_CONDS ||
		    r->classes == 0 || (r->classes & ~AUTHZ_ALL) != 0 ||
		    (r->path != NULL && r->path[0] != '/'))
			abort();
		if (authz_rule_format(r, line, sizeof(line)) < 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*c;
	char		 err[1024], err2[1024];
	int		 fd, i, ok[2];

	if (size > 65536)
		return 0;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	for (i = 0; i < 2; i++) {
		c = config_parse(path, i ? err2 : err, sizeof(err));
		ok[i] = c != NULL;
		if (c != NULL)
			check(c);
		config_free(c);
	}
	/* Same input, same verdict, same first error. */
	if (ok[0] != ok[1] || (!ok[0] && strcmp(err, err2) != 0))
		abort();
	return 0;
}
