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
#include "tlsmat.h"

/*
 * Like sshd -T -C: verify a client certificate the way a worker would
 * (the configured CA, the CRL, the clientAuth purpose), then say which
 * classes the allow rules give it and by which rule.  Returns 0 when the
 * certificate would be accepted, 1 otherwise.
 */

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

/* Verify the chain as a worker would; prints the verdict. */
static int
dryrun_verify(const struct config *conf, const struct tlsmat *m,
    const char *certfile, STACK_OF(X509) *chain)
{
	X509_STORE	*store;
	X509_STORE_CTX	*ctx = NULL;
	int		 ok = 0;

	if ((store = tlsmat_store(m)) == NULL ||
	    (ctx = X509_STORE_CTX_new()) == NULL)
		goto done;
	/* an out-of-date CRL is enforced as the workers do */
	X509_STORE_set_verify_cb(store, tlshook_verify_each);
	if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0),
	    chain) != 1 || X509_STORE_CTX_set_purpose(ctx,
	    X509_PURPOSE_SSL_CLIENT) != 1)
		goto done;
	if ((ok = X509_verify_cert(ctx) == 1))
		printf("certificate %s: accepted (CA %s%s%s)\n", certfile,
		    conf->tls.ca, conf->tls.crl ? ", CRL " : "",
		    conf->tls.crl ? conf->tls.crl : "");
	else
		printf("certificate %s: REJECTED: %s\n", certfile,
		    X509_verify_cert_error_string(
		    X509_STORE_CTX_get_error(ctx)));
 done:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

int
dryrun_check(const struct config *conf, const struct tlsmat *m,
    const char *certfile)
{
	STACK_OF(X509)		*chain = NULL;
	struct authz_identity	 id;
	struct buf		 pem;
	char			 err[256];
	uint32_t		 classes = 0;
	int			 ok;

	memset(&id, 0, sizeof(id));
	if (tlsmat_read_file(certfile, &pem, err, sizeof(err)) == -1) {
		printf("certificate %s: %s\n", certfile, err);
		buf_free(&pem);
		return 1;
	}
	chain = tlsmat_pem_certs(pem.data, pem.len);
	buf_free(&pem);
	if (chain == NULL) {
		printf("certificate %s: no PEM certificate\n", certfile);
		return 1;
	}
	ok = dryrun_verify(conf, m, certfile, chain);
	if (authz_identity_from_x509(&id, sk_X509_value(chain, 0), err,
	    sizeof(err)) == -1)
		printf("identity: %s\n", err);
	else {
		dryrun_identity(&id);
		/* a refused certificate never reaches the rules */
		if (ok)
			classes = dryrun_rules(conf, &id);
		else
			printf("no rule applies: the handshake refuses the "
			    "certificate\n");
	}
	printf("classes: read %s, write %s, metrics %s\n",
	    classes & AUTHZ_READ ? "yes" : "no",
	    classes & AUTHZ_WRITE ? "yes" : "no",
	    classes & AUTHZ_METRICS ? "yes" : "no");
	authz_identity_clear(&id);
	sk_X509_pop_free(chain, X509_free);
	return ok ? 0 : 1;
}
