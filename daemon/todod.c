/*
 * todod: a privilege-separated, prefork mutual-TLS daemon serving a JSON
 * TODO API.  The same executable is the parent and, started again by the
 * parent with -P worker, each worker; the keyholder is its own program.
 */
#include <sys/types.h>

#include <err.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "dryrun.h"
#include "log.h"
#include "parent.h"
#include "paths.h"
#include "tlsmat.h"
#include "worker.h"

/* -h asked for it: stdout and success; a mistake: stderr and failure. */
static void __attribute__((__noreturn__))
usage(int asked)
{
	fprintf(asked ? stdout : stderr, "usage: todod [-dhnVv] "
	    "[-C certificate] [-D macro=value] [-f file]\n");
	exit(asked ? 0 : 1);
}

/* Hidden options the parent gives a worker: -P worker -I id ... */
static int
todod_worker(const char *id, const char *cred, const char *root,
    const char *maxconn, int foreground, int verbose)
{
	const char	*errstr;
	unsigned int	 uid = 0, gid = 0;
	int		 n, max = 0;

	if (id == NULL)
		usage(0);
	n = strtonum(id, 1, CONFIG_MAX_WORKERS, &errstr);
	if (errstr != NULL)
		errx(1, "worker id %s: %s", id, errstr);
	if (cred != NULL && sscanf(cred, "%u:%u", &uid, &gid) != 2)
		errx(1, "bad credentials %s", cred);
	if (maxconn != NULL) {
		max = strtonum(maxconn, 1, 1000000, &errstr);
		if (errstr != NULL)
			errx(1, "max connections %s: %s", maxconn, errstr);
	}
	return worker_main(n, foreground, verbose, cred ? root : NULL, uid,
	    gid, max);
}

int
main(int argc, char *argv[], char *envp[])
{
	struct config	*conf;
	struct tlsmat	*mat;
	const char	*file = CONFIG_DEFAULT_FILE, *role = NULL, *id = NULL;
	const char	*cred = NULL, *root = NULL, *maxconn = NULL;
	const char	*cert = NULL;
	char		 err[1024];
	int		 ch, debug = 0, noaction = 0, verbose = 0, problems;

	setproctitle_init(argc, argv, envp);
	while ((ch = getopt(argc, argv, "C:dD:f:hI:m:nP:r:u:Vv")) != -1) {
		switch (ch) {
		case 'C':
			cert = optarg;
			break;
		case 'd':
			debug = 1;
			break;
		case 'D':
			if (config_define(optarg) == -1)
				errx(1, "-D %s: not of the form macro=value",
				    optarg);
			break;
		case 'f':
			file = optarg;
			break;
		case 'h':
			usage(1);
		case 'I':
			id = optarg;
			break;
		case 'm':
			maxconn = optarg;
			break;
		case 'n':
			noaction = 1;
			break;
		case 'P':
			role = optarg;
			break;
		case 'r':
			root = optarg;
			break;
		case 'u':
			cred = optarg;
			break;
		case 'V':
			printf("todod %s\n", TODOD_VERSION);
			return 0;
		case 'v':
			verbose++;
			break;
		default:
			usage(0);
		}
	}
	if (optind != argc)
		usage(0);
	if (role != NULL) {
		if (strcmp(role, "worker") != 0)
			errx(1, "unknown role %s", role);
		return todod_worker(id, cred, root, maxconn, debug, verbose);
	}
	if (cert != NULL && !noaction)
		errx(1, "-C is for a policy dry run with -n");

	log_init(1, verbose);
	log_setstamp(debug && !noaction);
	log_procinit("todod");
	if ((conf = config_parse(file, err, sizeof(err))) == NULL)
		exit(1);	/* the parser said what and where */
	if (noaction) {
		problems = check_config(conf, CHECK_ALL | CHECK_KEY, &mat, err,
		    sizeof(err));
		if (problems == 0 && cert != NULL)
			problems = dryrun_check(conf, mat, cert);
		if (problems == 0)
			printf("configuration OK\n");
		tlsmat_free(mat);
		config_free(conf);
		return problems == 0 ? 0 : 1;
	}
	return parent_main(conf, file, debug, verbose);
}
