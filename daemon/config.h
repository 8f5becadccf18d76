/*
 * The whole of todod.conf in one struct.  parse.y fills it; config.c frees
 * it and checks the files it names (`todod -n`).  Paths are absolute: the
 * parser resolves relative ones against the configuration file's directory.
 */
#ifndef TODOD_CONFIG_H
#define TODOD_CONFIG_H

#include <sys/queue.h>
#include <sys/socket.h>

#include <stdint.h>

#include "authz.h"
#include "paths.h"

#define CONFIG_DEFAULT_FILE	TODOD_SYSCONFDIR "/todod.conf"
#define CONFIG_DEFAULT_USER	"_todod"
#define CONFIG_DEFAULT_CHROOT	"/var/empty"
#define CONFIG_DEFAULT_DB	"/var/db/todod/todo.db"
#define CONFIG_DEFAULT_PROTOCOLS "tlsv1.2,tlsv1.3"

#define CONFIG_MAX_WORKERS	64
/* a worker's item cache, bytes: about 600,000 items of short tasks */
#define CONFIG_DEFAULT_CACHE	(64ULL << 20)
#define CONFIG_MAX_CACHE	(1ULL << 40)
#define CONFIG_MAX_ORIGINS	16

struct config_listen {
	TAILQ_ENTRY(config_listen) entry;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 name[80];	/* "127.0.0.1:8443", "[::1]:8443" */
	/* parent: one SO_REUSEPORT socket per worker, or -1 */
	int			 fds[CONFIG_MAX_WORKERS];
	int			 lineno;
};
TAILQ_HEAD(config_listens, config_listen);

/* `client ocsp': what a client certificate without a good answer gets. */
enum config_ocsp {
	CONFIG_OCSP_OFF = 0,
	CONFIG_OCSP_PREFER,	/* accepted, with a warning */
	CONFIG_OCSP_REQUIRE	/* refused */
};

struct config_tls {
	char		*cert;		/* PEM chain, leaf first */
	char		*key;		/* PEM key file or "pkcs11:" URI */
	char		*pin;		/* PIN file for a token key */
	char		*p11module;	/* NULL: p11-kit's modules */
	char		*ca;		/* CA clients must chain to */
	char		*crl;		/* optional */
	char		*crl_url;	/* refreshed from here */
	int		 crl_refresh;	/* seconds */
	char		*protocols;	/* as written, "tlsv1.2,tlsv1.3" */
	uint32_t	 protocols_mask;	/* TLS_PROTOCOL_* */
	char		*ciphers;	/* optional libtls cipher string */
	int		 ticket_lifetime;	/* seconds; 0: no resumption */
	char		*staple;	/* ocsp staple FILE (DER) */
	int		 staple_auto;	/* ocsp staple auto */
	char		*staple_url;	/* ocsp url; NULL: the AIA's */
	int		 client_ocsp;	/* enum config_ocsp */
	char		*client_ocsp_url;	/* NULL: the AIA's */
};

/* Where a file setting was written, for messages. */
struct config_origin {
	const char	*setting;	/* "certificate", "chroot", ... */
	char		*file;
	int		 line;
};

struct config {
	char			*path;		/* the configuration file */
	struct config_origin	 origins[CONFIG_MAX_ORIGINS];
	int			 norigins;
	struct config_listens	 listens;
	int			 prefork;	/* workers; default: CPUs */
	int			 keyholders;	/* default: as many as workers */
	char			*user;
	char			*chroot;
	char			*database;
	char			*pidfile;	/* NULL: none */
	int			 timeout_request;	/* default 10 */
	int			 timeout_idle;		/* default 60 */
	int			 timeout_handshake;	/* default 10 */
	int			 timeout_ocsp;		/* default 3 */
	int			 max_connections;	/* per worker, 1024 */
	int			 max_signatures;	/* a second */
	int			 expiry_warn_days;	/* default 30 */
	uint64_t		 cache_size;	/* per worker, bytes */
	struct config_tls	 tls;
	struct authz_rules	 rules;
};

/*
 * Parse a file.  On failure returns NULL, logs every error as
 * "FILE:LINE: what" and copies the first one to err.
 */
struct config	*config_parse(const char *, char *, size_t);
/* -D macro=value: kept for every later parse (reloads too). */
int		 config_define(const char *);
void		 config_free(struct config *);

/* The parser records where each file setting was made. */
void		 config_origin_add(struct config *, const char *,
		    const char *, int);
/*
 * A problem with the file a setting names, as "FILE:LINE: setting PATH:
 * what" ("setting PATH: what" for a default), into err.
 */
void		 config_problem(const struct config *, const char *,
		    const char *, char *, size_t, const char *, ...)
		    __attribute__((__format__(printf, 6, 7)));

#endif
