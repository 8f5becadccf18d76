/*
 * The one validator.  `todod -n` (with CHECK_ALL | CHECK_KEY), start-up
 * and every SIGHUP reload run check_config() on a freshly parsed
 * configuration, so a mistake is found the same way whichever comes
 * first; it learns from gmid's config_test, which reuses the start-up
 * path.  Only the private key is read elsewhere at start-up: the parent
 * passes the open file to the keyholders, which parse it with the same
 * kh_key_add() that -n calls here.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "storeopen.h"
#include "check.h"
#include "config.h"
#include "kh_sign.h"
#include "khprobe.h"
#include "log.h"
#include "ocspcheck.h"
#include "pgstore.h"
#include "sandbox.h"
#include "staplecheck.h"
#include "tlsmat.h"

/* Prefix err with where the setting was written, if the parser said. */
static void
check_where(const struct config *conf, const char *setting, char *err,
    size_t errlen)
{
	char	 why[1024];
	int	 i;

	for (i = 0; i < conf->norigins; i++)
		if (strcmp(conf->origins[i].setting, setting) == 0) {
			strlcpy(why, err, sizeof(why));
			snprintf(err, errlen, "%s:%d: %s",
			    conf->origins[i].file, conf->origins[i].line, why);
			return;
		}
}

static int
check_user(const struct config *conf, char *err, size_t errlen)
{
	uid_t	 uid;
	gid_t	 gid;

	if (privdrop_lookup(conf->user, &uid, &gid, err, errlen) == 0)
		return 0;
	check_where(conf, "user", err, errlen);
	return -1;
}

/* Children chroot only when todod runs as root: check what start-up does. */
static int
check_chroot(const struct config *conf, char *err, size_t errlen)
{
	if (geteuid() != 0 ||
	    privdrop_check_chroot(conf->chroot, 0, err, errlen) == 0)
		return 0;
	check_where(conf, "chroot", err, errlen);
	return -1;
}

/* The parent of path, in a static buffer. */
static const char *
check_dirname(const char *path)
{
	static char	 dir[PATH_MAX];
	char		*slash;

	if (strlcpy(dir, path, sizeof(dir)) >= sizeof(dir))
		return NULL;
	while ((slash = strrchr(dir, '/')) != NULL && slash[1] == '\0' &&
	    slash != dir)
		*slash = '\0';
	if ((slash = strrchr(dir, '/')) == NULL)
		return ".";
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	return dir;
}

/*
 * The database is a regular file, or its directory exists, or the
 * nearest existing ancestor is a directory it can be created in.
 */
static int
check_database(const struct config *conf, char *err, size_t errlen)
{
	struct stat	 st;
	char		 dir[PATH_MAX];
	const char	*p, *db = conf->database;
	int		 i;

	if (store_backend_is_uri(db)) {
		/* the URI may hold a password: named, not quoted */
		if (pgstore_check_uri(db, dir, sizeof(dir)) == 0)
			return 0;
		config_problem(conf, "database", "URI", err, errlen, "%s",
		    dir);
		return -1;
	}
	if (stat(db, &st) == 0 && !S_ISREG(st.st_mode)) {
		config_problem(conf, "database", db, err, errlen,
		    "not a regular file");
		return -1;
	}
	if ((p = check_dirname(db)) == NULL ||
	    strlcpy(dir, p, sizeof(dir)) >= sizeof(dir)) {
		config_problem(conf, "database", db, err, errlen,
		    "path too long");
		return -1;
	}
	for (i = 0; i < PATH_MAX / 2; i++) {
		if (stat(dir, &st) == 0) {
			if (S_ISDIR(st.st_mode))
				return 0;
			config_problem(conf, "database", db, err, errlen,
			    "%s is not a directory", dir);
			return -1;
		}
		if (errno != ENOENT && errno != ENOTDIR) {
			config_problem(conf, "database", db, err, errlen,
			    "%s: %s", dir, strerror(errno));
			return -1;
		}
		if ((p = check_dirname(dir)) == NULL || strcmp(p, dir) == 0)
			break;
		strlcpy(dir, p, sizeof(dir));
	}
	config_problem(conf, "database", db, err, errlen,
	    "no directory to create it in");
	return -1;
}

static int
check_pidfile(const struct config *conf, char *err, size_t errlen)
{
	struct stat	 st;
	const char	*dir;

	if (conf->pidfile == NULL)
		return 0;
	if ((dir = check_dirname(conf->pidfile)) == NULL ||
	    stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		config_problem(conf, "pidfile", conf->pidfile, err, errlen,
		    "its directory does not exist");
		return -1;
	}
	return 0;
}

/*
 * Open what a keyholder gets for the key: a file key, a regular file of
 * at most the keyholder's limit that only its owner may read; for a token
 * key, its PIN file.  fd, or -1 and err.
 */
int
check_key_open(const struct config *conf, char *err, size_t errlen)
{
	struct stat	 st;
	const char	*path = conf->tls.key;
	char		 pin[PATH_MAX], why[512];
	int		 fd;

	if (khprobe_is_p11(path) ? (khprobe_pin_path(&conf->tls, pin,
	    sizeof(pin), why, sizeof(why)) == -1 || (fd =
	    khprobe_open_secret(pin, why, sizeof(why))) == -1) :
	    (fd = khprobe_open_secret(path, why, sizeof(why))) == -1) {
		/* a file key's message starts with its path: said once */
		config_problem(conf, "key", path, err, errlen, "%s",
		    strncmp(why, path, strlen(path)) == 0 &&
		    strncmp(why + strlen(path), ": ", 2) == 0 ?
		    why + strlen(path) + 2 : why);
		return -1;
	}
	if (khprobe_is_p11(path))
		return fd;
	if (fstat(fd, &st) == -1 || st.st_size == 0 ||
	    st.st_size > KH_KEYFILE_MAX)
		config_problem(conf, "key", path, err, errlen, "%s",
		    st.st_size == 0 ? "empty file" :
		    "larger than 64 KiB: not a PEM private key");
	else
		return fd;
	close(fd);
	return -1;
}

/* The public key's DER matches the certificate's. */
static int
check_key_match(const struct config *conf, EVP_PKEY *pkey,
    const struct tlsmat *m, char *err, size_t errlen)
{
	uint8_t	*spki = NULL;
	size_t	 spkilen = 0;
	int	 r = 0;

	if (m != NULL && (kh_key_spki(pkey, &spki, &spkilen) == -1 ||
	    spkilen != m->spkilen || memcmp(spki, m->spki, spkilen) != 0)) {
		snprintf(err, errlen, "%s: key does not match certificate %s",
		    conf->tls.key, conf->tls.cert);
		r = -1;
	}
	OPENSSL_free(spki);
	return r;
}

/* -n, token key: a one-shot keyholder loads it as a serving one would. */
static int
check_key_probe(const struct config *conf, const struct tlsmat *m,
    char *err, size_t errlen)
{
	EVP_PKEY	*pub;
	int		 r;

	if ((pub = khprobe_key(conf, err, errlen)) == NULL)
		return -1;	/* in the keyholder's words, as at start-up */
	r = check_key_match(conf, pub, m, err, errlen);
	EVP_PKEY_free(pub);
	ERR_clear_error();
	return r;
}

/* -n, file key: parse it as a keyholder does and match the certificate. */
static int
check_key_parse(const struct config *conf, int fd, const struct tlsmat *m,
    char *err, size_t errlen)
{
	struct kh_keytab	 tab = TAILQ_HEAD_INITIALIZER(tab);
	uint8_t			*buf;
	size_t			 len = 0;
	int			 r = -1;

	if ((buf = malloc(KH_KEYFILE_MAX + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (kh_key_read_fd(fd, buf, &len) == -1)
		config_problem(conf, "key", conf->tls.key, err, errlen, "%s",
		    strerror(errno));
	else if (kh_key_add(&tab, 1, buf, len, conf->tls.key, err,
	    errlen) == -1)
		;	/* in the keyholder's words, as at start-up */
	else
		r = check_key_match(conf, TAILQ_FIRST(&tab)->pkey, m, err,
		    errlen);
	kh_keytab_clear(&tab);
	freezero(buf, KH_KEYFILE_MAX + 1);
	ERR_clear_error();
	return r;
}

static int
check_key(const struct config *conf, int flags, const struct tlsmat *m,
    char *err, size_t errlen)
{
	int	 fd, r = 0;

	if (!khprobe_is_p11(conf->tls.key) && (conf->tls.pin != NULL ||
	    conf->tls.p11module != NULL)) {
		config_problem(conf, "key", conf->tls.key, err, errlen,
		    "pin and pkcs11 module are for a \"pkcs11:\" key only");
		return -1;
	}
	if ((fd = check_key_open(conf, err, errlen)) == -1)
		return -1;
	if ((flags & CHECK_KEY) && khprobe_is_p11(conf->tls.key))
		r = check_key_probe(conf, m, err, errlen);
	else if (flags & CHECK_KEY)
		r = check_key_parse(conf, fd, m, err, errlen);
	close(fd);
	return r;
}

/*
 * Client certificate OCSP: a configured responder is one the parent can
 * ask (http:// with a host: the answer is signed, and the parent speaks
 * nothing else), and it is only used when client OCSP is on.
 */
static int
check_ocsp(const struct config *conf, char *err, size_t errlen)
{
	const char	*url = conf->tls.client_ocsp_url;
	char		 esc[LOG_ESCAPE_SIZE(200)];

	if (url == NULL)
		return 0;
	if (!ocspcheck_url_ok(url))
		snprintf(err, errlen, "client ocsp url \"%s\": not an "
		    "http:// URL with a host (at most %d printable "
		    "characters)", log_escape(esc, sizeof(esc), url,
		    strnlen(url, 200)), OCSPCHECK_URL_MAX);
	else if (conf->tls.client_ocsp == CONFIG_OCSP_OFF)
		snprintf(err, errlen, "client ocsp url is set but client "
		    "OCSP is off: add client ocsp require or client ocsp "
		    "prefer to the tls block, or remove the url");
	else
		return 0;
	check_where(conf, "client ocsp url", err, errlen);
	return -1;
}

/* Count a problem; with CHECK_ALL log it, else keep only the first. */
static int
check_report(int flags, int *problems, const char *why, char *err,
    size_t errlen)
{
	if (flags & CHECK_ALL)
		log_warnx("%s", why);
	if ((*problems)++ == 0)
		strlcpy(err, why, errlen);
	return (flags & CHECK_ALL) ? 0 : -1;
}

typedef int (*check_fn)(const struct config *, char *, size_t);

int
check_config(const struct config *conf, int flags, struct tlsmat **matp,
    char *err, size_t errlen)
{
	static const check_fn	 steps[] = {
		check_user, check_chroot, check_database, check_pidfile,
		check_ocsp
	};
	struct tlsmat		*m;
	char			 why[1024];
	size_t			 i;
	int			 problems = 0;

	if (matp != NULL)
		*matp = NULL;
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (steps[i](conf, why, sizeof(why)) == -1 &&
		    check_report(flags, &problems, why, err, errlen) == -1)
			return problems;
	why[0] = '\0';
	if ((m = tlsmat_load(conf, why, sizeof(why))) == NULL &&
	    check_report(flags, &problems, why, err, errlen) == -1)
		return problems;
	/* swapped files: one line says so, the key's problem is the same */
	if (strstr(why, TLSMAT_SWAPPED) == NULL &&
	    check_key(conf, flags, m, why, sizeof(why)) == -1)
		check_report(flags, &problems, why, err, errlen);
	/* the OCSP staple is for the certificate just read */
	if (m != NULL && staple_check(conf, m, why, sizeof(why)) == -1)
		check_report(flags, &problems, why, err, errlen);
	if (m != NULL && !(flags & CHECK_QUIET))
		tlsmat_warn_expiry(conf, m);
	if (matp != NULL && problems == 0)
		*matp = m;
	else
		tlsmat_free(m);
	return problems;
}
