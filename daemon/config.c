/*
 * The configuration once parsed: freeing it, and `todod -n`'s checks of
 * the files it names.  The checks load every certificate, key, CA and CRL
 * with libcrypto in this process, so that a mistake is reported with the
 * file's name before any child is started.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "config.h"
#include "khprobe.h"
#include "log.h"

#define CONFIG_MAX_KEYFILE	(1024 * 1024)

void
config_free(struct config *conf)
{
	struct config_listen	*l;

	if (conf == NULL)
		return;
	while ((l = TAILQ_FIRST(&conf->listens)) != NULL) {
		TAILQ_REMOVE(&conf->listens, l, entry);
		free(l);
	}
	authz_rules_free(&conf->rules);
	free(conf->path);
	free(conf->user);
	free(conf->chroot);
	free(conf->database);
	free(conf->pidfile);
	free(conf->tls.cert);
	free(conf->tls.key);
	free(conf->tls.pin);
	free(conf->tls.p11module);
	free(conf->tls.ca);
	free(conf->tls.crl);
	free(conf->tls.protocols);
	free(conf->tls.ciphers);
	free(conf);
}

/* The reason libcrypto gave last, for messages. */
static const char *
config_ssl_error(void)
{
	static char	 buf[256];
	unsigned long	 e;

	if ((e = ERR_peek_last_error()) == 0)
		return "unknown error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

static void
config_time_str(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm	 tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(t, &tm) != 1 ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		strlcpy(buf, "an invalid date", len);
}

/* Open a file that must be a regular file; log and return NULL if not. */
static BIO *
config_open_bio(const char *path)
{
	struct stat	 st;
	FILE		*fp;
	BIO		*bio;

	if ((fp = fopen(path, "r")) == NULL) {
		log_warnx("%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(fp), &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("%s: not a regular file", path);
		fclose(fp);
		return NULL;
	}
	if ((bio = BIO_new_fp(fp, BIO_CLOSE)) == NULL) {
		log_warnx("%s: %s", path, config_ssl_error());
		fclose(fp);
	}
	return bio;
}

/*
 * Every certificate of a PEM file, in order.  Text around the PEM blocks
 * is allowed (as libtls allows it); a damaged block is not.
 */
static STACK_OF(X509) *
config_load_certs(const char *path)
{
	STACK_OF(X509)	*certs;
	BIO		*bio;
	X509		*x;
	unsigned long	 e;

	if ((bio = config_open_bio(path)) == NULL)
		return NULL;
	if ((certs = sk_X509_new_null()) == NULL) {
		BIO_free(bio);
		log_warnx("%s: out of memory", path);
		return NULL;
	}
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (sk_X509_push(certs, x) == 0) {
			X509_free(x);
			break;
		}
	}
	e = ERR_peek_last_error();
	BIO_free(bio);
	if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
		log_warnx("%s: does not parse as PEM certificates: %s", path,
		    config_ssl_error());
		sk_X509_pop_free(certs, X509_free);
		return NULL;
	}
	ERR_clear_error();
	if (sk_X509_num(certs) == 0) {
		log_warnx("%s: no certificate found", path);
		sk_X509_free(certs);
		return NULL;
	}
	return certs;
}

/*
 * 1 when the certificate has expired (an error for the caller to count or
 * not); warns when it expires within the configured number of days or is
 * not valid yet.
 */
static int
config_check_expiry(const struct config *conf, const char *path, X509 *x)
{
	const ASN1_TIME	*t;
	char		 when[64];
	int		 day, sec;

	t = X509_get0_notBefore(x);
	if (t != NULL && X509_cmp_current_time(t) > 0) {
		config_time_str(t, when, sizeof(when));
		log_warnx("%s: certificate not valid before %s", path, when);
	}
	if ((t = X509_get0_notAfter(x)) == NULL ||
	    ASN1_TIME_diff(&day, &sec, NULL, t) != 1)
		return 0;
	config_time_str(t, when, sizeof(when));
	if (day < 0 || sec < 0 || (day == 0 && sec == 0))
		return 1;
	if (day < conf->expiry_warn_days)
		log_warnx("%s: certificate expires on %s (in %d day%s)", path,
		    when, day, day == 1 ? "" : "s");
	return 0;
}

static int
config_passphrase_refused(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

/*
 * Read the key file into memory that is wiped afterwards: the parent
 * holds private keys only as long as it must.
 */
static EVP_PKEY *
config_load_key(const char *path, int *problems)
{
	struct stat	 st;
	EVP_PKEY	*pkey = NULL;
	BIO		*bio;
	uint8_t		*buf = NULL;
	size_t		 size = 0, off = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		log_warnx("%s: %s", path, strerror(errno));
		(*problems)++;
		return NULL;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		log_warnx("%s: not a regular file", path);
		(*problems)++;
		goto done;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		log_warnx("%s: group or world readable", path);
		(*problems)++;
	}
	if (st.st_size <= 0 || st.st_size > CONFIG_MAX_KEYFILE) {
		log_warnx("%s: %s", path, st.st_size <= 0 ? "empty file" :
		    "too large for a key");
		(*problems)++;
		goto done;
	}
	size = (size_t)st.st_size;
	if ((buf = malloc(size)) == NULL) {
		log_warnx("%s: out of memory", path);
		(*problems)++;
		goto done;
	}
	while (off < size && (n = read(fd, buf + off, size - off)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			log_warnx("%s: %s", path, strerror(errno));
			(*problems)++;
			goto done;
		}
		off += n;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)off)) == NULL) {
		log_warnx("%s: out of memory", path);
		(*problems)++;
		goto done;
	}
	ERR_clear_error();
	pkey = PEM_read_bio_PrivateKey(bio, NULL, config_passphrase_refused,
	    NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		log_warnx("%s: does not parse as a PEM private key "
		    "(encrypted keys are not supported): %s", path,
		    config_ssl_error());
		(*problems)++;
	}
 done:
	freezero(buf, size);
	close(fd);
	return pkey;
}

/*
 * The key's public half to compare with the certificate: from the key
 * file, or, for a key in a PKCS#11 token, from a keyholder that found it
 * there and signed with it.
 */
static EVP_PKEY *
config_load_tlskey(const struct config *conf, int *problems)
{
	const struct config_tls	*tls = &conf->tls;
	EVP_PKEY		*pub;
	char		 err[512];

	if (!khprobe_is_p11(tls->key)) {
		if (tls->pin != NULL || tls->p11module != NULL) {
			log_warnx("pin and pkcs11 module are for a \"pkcs11:\" "
			    "key only");
			(*problems)++;
		}
		return config_load_key(tls->key, problems);
	}
	if ((pub = khprobe_key(conf, err, sizeof(err))) == NULL) {
		log_warnx("%s", err);
		(*problems)++;
	}
	return pub;
}

static int
config_check_tls(const struct config *conf, STACK_OF(X509) **cas)
{
	STACK_OF(X509)	*chain = NULL;
	EVP_PKEY	*pkey = NULL;
	X509		*leaf = NULL;
	int		 problems = 0, i, valid = 0;

	*cas = NULL;
	if (conf->tls.cert == NULL || (chain =
	    config_load_certs(conf->tls.cert)) == NULL)
		problems++;
	else {
		leaf = sk_X509_value(chain, 0);
		if (config_check_expiry(conf, conf->tls.cert, leaf)) {
			log_warnx("%s: certificate has expired",
			    conf->tls.cert);
			problems++;
		}
	}
	if (conf->tls.key == NULL)
		problems++;
	else if ((pkey = config_load_tlskey(conf, &problems)) != NULL &&
	    leaf != NULL && EVP_PKEY_eq(X509_get0_pubkey(leaf), pkey) != 1) {
		log_warnx("%s: key does not match certificate %s",
		    conf->tls.key, conf->tls.cert);
		problems++;
	}
	EVP_PKEY_free(pkey);
	sk_X509_pop_free(chain, X509_free);

	if (conf->tls.ca == NULL || (*cas =
	    config_load_certs(conf->tls.ca)) == NULL)
		return problems + 1;
	for (i = 0; i < sk_X509_num(*cas); i++) {
		if (config_check_expiry(conf, conf->tls.ca,
		    sk_X509_value(*cas, i)))
			log_warnx("%s: CA certificate %d has expired",
			    conf->tls.ca, i + 1);
		else
			valid++;
	}
	if (valid == 0) {
		log_warnx("%s: every CA certificate has expired", conf->tls.ca);
		problems++;
	}
	return problems;
}

/* The CRL parses and was signed by one of the CA certificates. */
static int
config_check_crl(const struct config *conf, STACK_OF(X509) *cas)
{
	X509_CRL	*crl;
	X509		*ca;
	BIO		*bio;
	const ASN1_TIME	*next;
	char		 when[64];
	int		 i, named = 0, signed_by = 0;

	if (conf->tls.crl == NULL)
		return 0;
	if ((bio = config_open_bio(conf->tls.crl)) == NULL)
		return 1;
	ERR_clear_error();
	crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (crl == NULL) {
		log_warnx("%s: does not parse as a PEM CRL: %s", conf->tls.crl,
		    config_ssl_error());
		return 1;
	}
	for (i = 0; cas != NULL && i < sk_X509_num(cas); i++) {
		ca = sk_X509_value(cas, i);
		if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
		    X509_get_subject_name(ca)) != 0)
			continue;
		named++;
		if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1) {
			signed_by++;
			break;
		}
	}
	ERR_clear_error();
	if (cas != NULL && named == 0)
		log_warnx("%s: issuer does not match any certificate in %s",
		    conf->tls.crl, conf->tls.ca);
	else if (cas != NULL && signed_by == 0)
		log_warnx("%s: signature does not verify with the CA in %s",
		    conf->tls.crl, conf->tls.ca);
	if ((next = X509_CRL_get0_nextUpdate(crl)) != NULL &&
	    X509_cmp_current_time(next) < 0) {
		config_time_str(next, when, sizeof(when));
		log_warnx("%s: next update was due %s; clients may be "
		    "rejected until a new CRL is installed", conf->tls.crl,
		    when);
	}
	X509_CRL_free(crl);
	return cas != NULL && signed_by == 0 ? 1 : 0;
}

static int
config_check_user(const struct config *conf)
{
	if (geteuid() != 0 || getpwnam(conf->user) != NULL)
		return 0;
	log_warnx("user \"%s\" does not exist; create it with: useradd -r "
	    "-d %s -s /usr/sbin/nologin %s", conf->user, conf->chroot,
	    conf->user);
	return 1;
}

/* The parent of path, in a static buffer. */
static const char *
config_dirname(const char *path)
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

/* The chroot, if it exists, is a root-owned directory nobody else writes. */
static int
config_check_chroot(const struct config *conf)
{
	struct stat	 st;
	const char	*parent;

	if (stat(conf->chroot, &st) == -1) {
		if (errno != ENOENT) {
			log_warnx("%s: %s", conf->chroot, strerror(errno));
			return 1;
		}
		parent = config_dirname(conf->chroot);
		if (parent == NULL || stat(parent, &st) == -1 ||
		    !S_ISDIR(st.st_mode)) {
			log_warnx("%s: chroot directory does not exist and "
			    "cannot be created (no directory %s)",
			    conf->chroot, parent != NULL ? parent : "");
			return 1;
		}
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_warnx("%s: chroot is not a directory", conf->chroot);
		return 1;
	}
	if (st.st_uid != 0) {
		log_warnx("%s: chroot directory not owned by root",
		    conf->chroot);
		return 1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		log_warnx("%s: chroot directory writable by group or others",
		    conf->chroot);
		return 1;
	}
	return 0;
}

/*
 * The database's directory exists, or the nearest existing ancestor is
 * a directory it can be created in.
 */
static int
config_check_database(const struct config *conf)
{
	struct stat	 st;
	char		 dir[PATH_MAX];
	const char	*p;
	int		 i;

	if (stat(conf->database, &st) == 0 && !S_ISREG(st.st_mode)) {
		log_warnx("%s: database is not a regular file",
		    conf->database);
		return 1;
	}
	if ((p = config_dirname(conf->database)) == NULL ||
	    strlcpy(dir, p, sizeof(dir)) >= sizeof(dir)) {
		log_warnx("%s: path too long", conf->database);
		return 1;
	}
	for (i = 0; i < PATH_MAX / 2; i++) {
		if (stat(dir, &st) == 0) {
			if (S_ISDIR(st.st_mode))
				return 0;
			log_warnx("%s: %s is not a directory", conf->database,
			    dir);
			return 1;
		}
		if (errno != ENOENT && errno != ENOTDIR) {
			log_warnx("%s: %s: %s", conf->database, dir,
			    strerror(errno));
			return 1;
		}
		if ((p = config_dirname(dir)) == NULL || strcmp(p, dir) == 0)
			break;
		strlcpy(dir, p, sizeof(dir));
	}
	log_warnx("%s: no directory to create the database in",
	    conf->database);
	return 1;
}

static int
config_check_pidfile(const struct config *conf)
{
	struct stat	 st;
	const char	*dir;

	if (conf->pidfile == NULL)
		return 0;
	if ((dir = config_dirname(conf->pidfile)) == NULL ||
	    stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		log_warnx("%s: pidfile directory does not exist",
		    conf->pidfile);
		return 1;
	}
	return 0;
}

int
config_check_files(const struct config *conf)
{
	STACK_OF(X509)	*cas = NULL;
	int		 problems;

	problems = config_check_tls(conf, &cas);
	problems += config_check_crl(conf, cas);
	sk_X509_pop_free(cas, X509_free);
	problems += config_check_user(conf);
	problems += config_check_chroot(conf);
	problems += config_check_database(conf);
	problems += config_check_pidfile(conf);
	ERR_clear_error();
	return problems;
}
