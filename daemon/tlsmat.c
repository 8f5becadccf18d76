/*
 * TLS material.  The parent reads the certificate, CA and CRL files once
 * per start or reload and checks them here, so that `todod -n`, start-up
 * and SIGHUP refuse the same files with the same words: a configuration
 * that would make every client fail the handshake (or every client refuse
 * the server) is an error, one that is only going stale is a warning.
 * The PEM, CRL and ASN.1 time helpers are the only ones in todod.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
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
#include <openssl/x509v3.h>

#include "authz.h"
#include "config.h"
#include "log.h"
#include "tlsmat.h"

#define TLSMAT_CRL_RENEW_DAYS	7	/* warn this long before nextUpdate */

time_t
tlsmat_time(const ASN1_TIME *t)
{
	struct tm	 tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

void
tlsmat_time_str(time_t t, char *buf, size_t len)
{
	struct tm	 tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		strlcpy(buf, "an invalid date", len);
}

int
tlsmat_read_file(const char *path, struct buf *b, char *err, size_t errlen)
{
	struct stat	 st;
	char		 chunk[8192];
	ssize_t		 n = 0;
	int		 fd;

	buf_init(b, TLSMAT_FILE_MAX);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "not a regular file");
		close(fd);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_add(b, chunk, n) == -1) {
			snprintf(err, errlen, "larger than %d MiB",
			    TLSMAT_FILE_MAX / (1024 * 1024));
			close(fd);
			return -1;
		}
	if (n == -1)
		snprintf(err, errlen, "%s", strerror(errno));
	close(fd);
	return n == -1 ? -1 : 0;
}

static BIO *
tlsmat_bio(const void *data, size_t len)
{
	if (data == NULL || len == 0 || len > TLSMAT_FILE_MAX)
		return NULL;
	return BIO_new_mem_buf(data, (int)len);
}

/*
 * Text around the PEM blocks is allowed (libtls allows it); a damaged
 * block is not: the stack is NULL unless every block parsed.
 */
STACK_OF(X509) *
tlsmat_pem_certs(const void *data, size_t len)
{
	STACK_OF(X509)	*certs;
	BIO		*bio;
	X509		*x;
	unsigned long	 e;

	if ((bio = tlsmat_bio(data, len)) == NULL)
		return NULL;
	if ((certs = sk_X509_new_null()) == NULL) {
		BIO_free(bio);
		return NULL;
	}
	ERR_clear_error();
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (sk_X509_push(certs, x) == 0) {
			X509_free(x);
			break;
		}
	e = ERR_peek_last_error();
	ERR_clear_error();
	BIO_free(bio);
	if (sk_X509_num(certs) == 0 || (e != 0 &&
	    !(ERR_GET_LIB(e) == ERR_LIB_PEM &&
	    ERR_GET_REASON(e) == PEM_R_NO_START_LINE))) {
		sk_X509_pop_free(certs, X509_free);
		return NULL;
	}
	return certs;
}

X509 *
tlsmat_pem_cert(const void *data, size_t len)
{
	BIO	*bio;
	X509	*x;

	if ((bio = tlsmat_bio(data, len)) == NULL)
		return NULL;
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	return x;
}

STACK_OF(X509_CRL) *
tlsmat_pem_crls(const void *data, size_t len)
{
	STACK_OF(X509_CRL)	*crls;
	BIO			*bio;
	X509_CRL		*crl;

	if ((bio = tlsmat_bio(data, len)) == NULL)
		return NULL;
	if ((crls = sk_X509_CRL_new_null()) == NULL) {
		BIO_free(bio);
		return NULL;
	}
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL)
		if (sk_X509_CRL_push(crls, crl) == 0) {
			X509_CRL_free(crl);
			break;
		}
	ERR_clear_error();
	BIO_free(bio);
	if (sk_X509_CRL_num(crls) == 0) {
		sk_X509_CRL_free(crls);
		return NULL;
	}
	return crls;
}

int
tlsmat_pem_first(const void *data, size_t len, char *name, size_t namelen)
{
	BIO		*bio;
	char		*n = NULL, *h = NULL;
	unsigned char	*d = NULL;
	long		 dlen;
	int		 r = -1;

	if ((bio = tlsmat_bio(data, len)) == NULL)
		return -1;
	if (PEM_read_bio(bio, &n, &h, &d, &dlen) == 1) {
		strlcpy(name, n, namelen);
		r = 0;
	}
	OPENSSL_free(n);
	OPENSSL_free(h);
	OPENSSL_clear_free(d, dlen > 0 ? (size_t)dlen : 0);
	BIO_free(bio);
	ERR_clear_error();
	return r;
}

void
tlsmat_free(struct tlsmat *m)
{
	if (m == NULL)
		return;
	buf_free(&m->cert);
	buf_free(&m->ca);
	buf_free(&m->crl);
	buf_free(&m->keyref);
	buf_free(&m->staple);
	free(m->spki);
	free(m);
}

/* A hash of what decides who gets in: CA, CRL and the rules. */
static uint64_t
tlsmat_policy_hash(const struct config *conf, const struct tlsmat *m)
{
	const struct authz_rule	*r;
	EVP_MD_CTX		*md;
	unsigned char		 h[EVP_MAX_MD_SIZE];
	unsigned int		 hlen = 0;
	char			 line[2048];
	uint64_t		 v = 0;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		fatalx("%s: sha256", __func__);
	EVP_DigestUpdate(md, m->ca.data, m->ca.len);
	EVP_DigestUpdate(md, "\0", 1);
	EVP_DigestUpdate(md, m->crl.data ? (void *)m->crl.data : "", m->crl.len);
	TAILQ_FOREACH(r, &conf->rules, entry) {
		authz_rule_format(r, line, sizeof(line));
		EVP_DigestUpdate(md, line, strlen(line) + 1);
	}
	EVP_DigestFinal_ex(md, h, &hlen);
	EVP_MD_CTX_free(md);
	memcpy(&v, h, sizeof(v));
	return v;
}

/* A file that held no certificate: say what it holds instead. */
static void
tlsmat_no_cert(const struct config *conf, const char *setting,
    const char *path, const struct buf *b, char *err, size_t errlen)
{
	char	 name[64];

	if (tlsmat_pem_first(b->data, b->len, name, sizeof(name)) == 0 &&
	    strstr(name, "PRIVATE KEY") != NULL)
		config_problem(conf, setting, path, err, errlen, "holds a "
		    "private key, not a certificate: %s", TLSMAT_SWAPPED);
	else if (strcmp(setting, "client ca") == 0 && tlsmat_pem_first(
	    b->data, b->len, name, sizeof(name)) == 0 &&
	    strcmp(name, "X509 CRL") == 0)
		config_problem(conf, setting, path, err, errlen, "holds a "
		    "CRL, not a CA certificate: give it to `crl`");
	else
		config_problem(conf, setting, path, err, errlen, "no PEM "
		    "certificate, or a damaged one");
}

/* The server certificate: its validity dates and public key. */
static int
tlsmat_load_cert(const struct config *conf, struct tlsmat *m, char *err,
    size_t errlen)
{
	STACK_OF(X509)	*chain;
	X509		*leaf;
	time_t		 from, now = time(NULL);
	char		 when[64];
	unsigned char	*p;
	int		 len, r = -1;

	if ((chain = tlsmat_pem_certs(m->cert.data, m->cert.len)) == NULL) {
		tlsmat_no_cert(conf, "certificate", conf->tls.cert, &m->cert,
		    err, errlen);
		return -1;
	}
	leaf = sk_X509_value(chain, 0);
	from = tlsmat_time(X509_get0_notBefore(leaf));
	m->cert_notafter = tlsmat_time(X509_get0_notAfter(leaf));
	if (m->cert_notafter <= now) {
		tlsmat_time_str(m->cert_notafter, when, sizeof(when));
		config_problem(conf, "certificate", conf->tls.cert, err,
		    errlen, "expired on %s: every client would refuse it; "
		    "install a renewed certificate", when);
	} else if (from > now) {
		tlsmat_time_str(from, when, sizeof(when));
		config_problem(conf, "certificate", conf->tls.cert, err,
		    errlen, "not valid before %s: every client would refuse "
		    "it; check the clock", when);
	} else if ((len = i2d_PUBKEY(X509_get0_pubkey(leaf), NULL)) <= 0 ||
	    (m->spki = malloc(len)) == NULL)
		config_problem(conf, "certificate", conf->tls.cert, err,
		    errlen, "unusable public key");
	else {
		p = m->spki;
		m->spkilen = i2d_PUBKEY(X509_get0_pubkey(leaf), &p);
		r = 0;
	}
	sk_X509_pop_free(chain, X509_free);
	return r;
}

/*
 * The client CA file holds at least one CA certificate that has not
 * expired: without one no client certificate can verify.
 */
static int
tlsmat_load_ca(const struct config *conf, struct tlsmat *m,
    STACK_OF(X509) **cas, char *err, size_t errlen)
{
	X509	*x;
	time_t	 t, now = time(NULL);
	int	 i, ca = 0, valid = 0;

	if ((*cas = tlsmat_pem_certs(m->ca.data, m->ca.len)) == NULL) {
		tlsmat_no_cert(conf, "client ca", conf->tls.ca, &m->ca, err,
		    errlen);
		return -1;
	}
	for (i = 0; i < sk_X509_num(*cas); i++) {
		x = sk_X509_value(*cas, i);
		if (X509_check_ca(x) == 0)
			continue;
		ca++;
		t = tlsmat_time(X509_get0_notAfter(x));
		if (m->ca_notafter == 0 || t < m->ca_notafter)
			m->ca_notafter = t;
		valid += t > now;
	}
	if (ca == 0)
		config_problem(conf, "client ca", conf->tls.ca, err, errlen,
		    "no CA certificate in it (a server or client certificate?"
		    "): every client would be refused");
	else if (valid == 0)
		config_problem(conf, "client ca", conf->tls.ca, err, errlen,
		    "every CA certificate in it has expired: every client "
		    "would be refused");
	return ca > 0 && valid > 0 ? 0 : -1;
}

/* The configured CA whose key signed crl, or NULL. */
static X509 *
tlsmat_crl_issuer(X509_CRL *crl, STACK_OF(X509) *cas)
{
	X509	*ca;
	int	 i;

	for (i = 0; i < sk_X509_num(cas); i++) {
		ca = sk_X509_value(cas, i);
		if (X509_NAME_cmp(X509_CRL_get_issuer(crl),
		    X509_get_subject_name(ca)) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
			return ca;
	}
	ERR_clear_error();
	return NULL;
}

/*
 * Every CRL was issued by a configured client CA.  libtls checks every
 * certificate of a client's chain against the CRLs, so a CRL from another
 * CA leaves the real one without a CRL and every client is refused.
 */
static int
tlsmat_load_crl(const struct config *conf, struct tlsmat *m,
    STACK_OF(X509) *cas, char *err, size_t errlen)
{
	STACK_OF(X509_CRL)	*crls;
	X509_CRL		*crl;
	char			 issuer[256];
	time_t			 t;
	int			 i, r = 0;

	if ((crls = tlsmat_pem_crls(m->crl.data, m->crl.len)) == NULL) {
		config_problem(conf, "crl", conf->tls.crl, err, errlen,
		    "no PEM CRL (X509 CRL block), or a damaged one");
		return -1;
	}
	for (i = 0; i < sk_X509_CRL_num(crls) && r == 0; i++) {
		crl = sk_X509_CRL_value(crls, i);
		if (tlsmat_crl_issuer(crl, cas) == NULL) {
			X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer,
			    sizeof(issuer));
			config_problem(conf, "crl", conf->tls.crl, err, errlen,
			    "issued by %s, which is not a CA of client ca %s "
			    "(or the signature does not verify): every client "
			    "would be refused", issuer, conf->tls.ca);
			r = -1;
		}
		t = tlsmat_time(X509_CRL_get0_nextUpdate(crl));
		if (m->crl_nextupdate == 0 || (t != 0 &&
		    t < m->crl_nextupdate))
			m->crl_nextupdate = t;
	}
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return r;
}

static int
tlsmat_read(const struct config *conf, const char *setting, const char *path,
    struct buf *b, char *err, size_t errlen)
{
	char	 why[256];

	if (tlsmat_read_file(path, b, why, sizeof(why)) == 0)
		return 0;
	config_problem(conf, setting, path, err, errlen, "%s", why);
	return -1;
}

struct tlsmat *
tlsmat_load(const struct config *conf, char *err, size_t errlen)
{
	STACK_OF(X509)	*cas = NULL;
	struct tlsmat	*m;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (tlsmat_read(conf, "certificate", conf->tls.cert, &m->cert, err,
	    errlen) == -1 || tlsmat_load_cert(conf, m, err, errlen) == -1 ||
	    tlsmat_read(conf, "client ca", conf->tls.ca, &m->ca, err,
	    errlen) == -1 || tlsmat_load_ca(conf, m, &cas, err, errlen) == -1)
		goto fail;
	if (conf->tls.crl != NULL && (tlsmat_read(conf, "crl", conf->tls.crl,
	    &m->crl, err, errlen) == -1 || tlsmat_load_crl(conf, m, cas, err,
	    errlen) == -1))
		goto fail;
	sk_X509_pop_free(cas, X509_free);
	m->policy = tlsmat_policy_hash(conf, m);
	return m;
 fail:
	sk_X509_pop_free(cas, X509_free);
	tlsmat_free(m);
	return NULL;
}

/*
 * The same trust store and flags as libtls gives the workers: every
 * certificate of the chain checked against the CRLs.
 */
X509_STORE *
tlsmat_store(const struct tlsmat *m)
{
	STACK_OF(X509)		*cas;
	STACK_OF(X509_CRL)	*crls = NULL;
	X509_STORE		*store;
	int			 i;

	if ((store = X509_STORE_new()) == NULL)
		return NULL;
	if ((cas = tlsmat_pem_certs(m->ca.data, m->ca.len)) != NULL)
		for (i = 0; i < sk_X509_num(cas); i++)
			X509_STORE_add_cert(store, sk_X509_value(cas, i));
	if (m->crl.len > 0 &&
	    (crls = tlsmat_pem_crls(m->crl.data, m->crl.len)) != NULL) {
		for (i = 0; i < sk_X509_CRL_num(crls); i++)
			X509_STORE_add_crl(store, sk_X509_CRL_value(crls, i));
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK |
		    X509_V_FLAG_CRL_CHECK_ALL);
	}
	sk_X509_pop_free(cas, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return store;
}

void
tlsmat_warn_expiry(const struct config *conf, const struct tlsmat *m)
{
	time_t		 now = time(NULL), horizon;
	char		 date[64];
	size_t		 i;
	struct {
		const char	*what;
		const char	*path;
		time_t		 when;
	} items[] = {
		{ "server certificate", conf->tls.cert, m->cert_notafter },
		{ "CA certificate", conf->tls.ca, m->ca_notafter },
	};

	horizon = now + (time_t)conf->expiry_warn_days * 86400;
	for (i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		tlsmat_time_str(items[i].when, date, sizeof(date));
		if (items[i].when <= now)
			log_warnx("%s %s expired on %s", items[i].what,
			    items[i].path, date);
		else if (items[i].when <= horizon)
			log_warnx("%s %s expires on %s (in %lld days)",
			    items[i].what, items[i].path, date,
			    (long long)(items[i].when - now) / 86400);
	}
	if (m->crl_nextupdate == 0)
		return;
	tlsmat_time_str(m->crl_nextupdate, date, sizeof(date));
	if (m->crl_nextupdate <= now)
		log_warnx("CRL %s is out of date since %s; it is still "
		    "enforced (revoked certificates stay refused): publish a "
		    "new CRL and reload", conf->tls.crl, date);
	else if (m->crl_nextupdate <= now + TLSMAT_CRL_RENEW_DAYS * 86400)
		log_warnx("CRL %s must be renewed before %s", conf->tls.crl,
		    date);
}
