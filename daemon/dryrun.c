#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "authz.h"
#include "buf.h"
#include "config.h"
#include "dryrun.h"
#include "log.h"
#include "tlshook.h"

/*
 * Like sshd -T -C: verify a client certificate the way a worker would
 * (the configured CA, the CRL, the clientAuth purpose), then say which
 * classes the allow rules give it and by which rule.  Returns 0 when the
 * certificate would be accepted, 1 otherwise.
 */

static int
dryrun_load(const char *path, STACK_OF(X509) **chain, X509_CRL **crl,
    struct buf *pem)
{
	FILE	*fp;
	char	 chunk[4096];
	size_t	 n;
	BIO	*bio;
	X509	*x;

	buf_init(pem, 16 * 1024 * 1024);
	if ((fp = fopen(path, "r")) == NULL) {
		log_warn("%s", path);
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		if (buf_add(pem, chunk, n) == -1) {
			log_warnx("%s: too large", path);
			fclose(fp);
			return -1;
		}
	fclose(fp);
	if ((bio = BIO_new_mem_buf(pem->data, pem->len)) == NULL)
		return -1;
	if (chain != NULL) {
		*chain = sk_X509_new_null();
		while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
			sk_X509_push(*chain, x);
		ERR_clear_error();
		if (sk_X509_num(*chain) == 0) {
			log_warnx("%s: no certificate in PEM file", path);
			BIO_free(bio);
			return -1;
		}
	} else if ((*crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) ==
	    NULL) {
		log_warnx("%s: not a PEM CRL", path);
		BIO_free(bio);
		return -1;
	}
	BIO_free(bio);
	return 0;
}

/* A certificate's name, whoever made it, printed escaped and quoted. */
static void
dryrun_value(const char *fmt, const char *s)
{
	char	 esc[LOG_ESCAPE_SIZE(256)];

	if (s == NULL)
		s = "";
	printf(fmt, log_escape(esc, sizeof(esc), s, strlen(s)));
}

static void
dryrun_identity(const struct authz_identity *id)
{
	char	 ip[64];
	int	 i;

	dryrun_value("subject CN \"%s\"", id->cn);
	for (i = 0; i < id->nou; i++)
		dryrun_value(", OU \"%s\"", id->ou[i]);
	printf("\n");
	for (i = 0; i < id->ndns; i++)
		dryrun_value("SAN DNS \"%s\"\n", id->dns[i]);
	for (i = 0; i < id->nuri; i++)
		dryrun_value("SAN URI \"%s\"\n", id->uri[i]);
	for (i = 0; i < id->nemail; i++)
		dryrun_value("SAN email \"%s\"\n", id->email[i]);
	for (i = 0; i < id->nip; i++)
		if (inet_ntop(id->iplen[i] == 4 ? AF_INET : AF_INET6, id->ip[i], ip,
		    sizeof(ip)) != NULL)
			printf("SAN IP %s\n", ip);
	printf("fingerprint %s\n", id->fingerprint ? id->fingerprint : "");
}

/* Which classes, and from which rules. */
static uint32_t
dryrun_rules(const struct config *conf, const struct authz_identity *id)
{
	struct authz_rules	 one;
	struct authz_rule	*r, copy;
	uint32_t		 got, all = 0;
	char			 line[1024];

	if (TAILQ_EMPTY(&conf->rules)) {
		printf("no allow rules: read and write for every verified "
		    "client, no metrics\n");
		return AUTHZ_READ | AUTHZ_WRITE;
	}
	TAILQ_FOREACH(r, &conf->rules, entry) {
		copy = *r;
		TAILQ_INIT(&one);
		TAILQ_INSERT_TAIL(&one, &copy, entry);
		if ((got = authz_classes(&one, id)) == 0)
			continue;
		all |= got;
		authz_rule_format(r, line, sizeof(line));
		printf("matched %s:%d: %s\n", conf->path, r->lineno, line);
	}
	return all;
}

int
dryrun_check(const struct config *conf, const char *certfile)
{
	STACK_OF(X509)		*chain = NULL, *ca = NULL;
	X509_CRL		*crl = NULL;
	X509_STORE		*store = NULL;
	X509_STORE_CTX		*ctx = NULL;
	struct authz_identity	 id;
	struct buf		 pem, capem, crlpem;
	char			 err[256];
	uint32_t		 classes;
	int			 i, ok = 0, rc = 1;

	memset(&id, 0, sizeof(id));
	buf_init(&capem, 0);
	buf_init(&crlpem, 0);
	if (dryrun_load(certfile, &chain, NULL, &pem) == -1 ||
	    dryrun_load(conf->tls.ca, &ca, NULL, &capem) == -1 ||
	    (conf->tls.crl != NULL &&
	    dryrun_load(conf->tls.crl, NULL, &crl, &crlpem) == -1))
		goto done;
	if ((store = X509_STORE_new()) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL)
		goto done;
	for (i = 0; i < sk_X509_num(ca); i++)
		X509_STORE_add_cert(store, sk_X509_value(ca, i));
	if (crl != NULL) {
		X509_STORE_add_crl(store, crl);
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	/* an out-of-date CRL is enforced as the workers do */
	X509_STORE_set_verify_cb(store, tlshook_verify_each);
	if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0),
	    chain) != 1 || X509_STORE_CTX_set_purpose(ctx,
	    X509_PURPOSE_SSL_CLIENT) != 1)
		goto done;
	ok = X509_verify_cert(ctx) == 1;
	if (!ok)
		printf("certificate %s: REJECTED: %s\n", certfile,
		    X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
	else
		printf("certificate %s: accepted (CA %s%s%s)\n", certfile,
		    conf->tls.ca, crl ? ", CRL " : "", crl ? conf->tls.crl : "");
	if (authz_identity_from_pem(&id, pem.data, pem.len, err,
	    sizeof(err)) == -1) {
		printf("identity: %s\n", err);
		goto done;
	}
	dryrun_identity(&id);
	classes = dryrun_rules(conf, &id);
	printf("classes: read %s, write %s, metrics %s\n",
	    classes & AUTHZ_READ ? "yes" : "no",
	    classes & AUTHZ_WRITE ? "yes" : "no",
	    classes & AUTHZ_METRICS ? "yes" : "no");
	if (ok)
		rc = 0;
 done:
	authz_identity_clear(&id);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_CRL_free(crl);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(ca, X509_free);
	buf_free(&pem);
	buf_free(&capem);
	buf_free(&crlpem);
	return rc;
}
