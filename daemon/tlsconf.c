#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <tls.h>

#include "khprov.h"
#include "log.h"
#include "proto.h"
#include "tlsconf.h"
#include "tlshook.h"
#include "tlsmat.h"
#include "wconf.h"

/*
 * The subject names of the CA bundle, for the CertificateRequest (see
 * tlshook_set_ca_names).  NULL when the bundle holds no certificate.
 */
static STACK_OF(X509_NAME) *
tlsgen_ca_names(const struct buf *ca)
{
	STACK_OF(X509_NAME)	*names;
	STACK_OF(X509)		*certs;
	X509_NAME		*n;
	int			 i;

	if ((certs = tlsmat_pem_certs(ca->data, ca->len)) == NULL)
		return NULL;
	if ((names = sk_X509_NAME_new_null()) == NULL)
		goto done;
	for (i = 0; i < sk_X509_num(certs); i++) {
		n = X509_NAME_dup(X509_get_subject_name(sk_X509_value(certs,
		    i)));
		if (n == NULL || sk_X509_NAME_push(names, n) == 0) {
			X509_NAME_free(n);
			break;
		}
	}
	if (sk_X509_NAME_num(names) == 0) {
		sk_X509_NAME_free(names);
		names = NULL;
	}
 done:
	sk_X509_pop_free(certs, X509_free);
	return names;
}

/*
 * Build the libtls server for one configuration generation.  The key given
 * to libtls is the keyholder reference (a public key and a key id): the
 * khprov provider forwards every signature to the keyholder.
 */
struct tlsgen *
tlsgen_new(struct wconf *wc, struct khprov *kp, uint64_t policy, char *err,
    size_t errlen)
{
	struct tlsgen		*g;
	struct tls_config	*cfg;
	STACK_OF(X509_NAME)	*canames;
	STACK_OF(X509_CRL)	*crls;
	uint8_t			 sid[16];
	int			 i, r, hooks = tlshook_ctx_count();

	if ((g = calloc(1, sizeof(*g))) == NULL ||
	    (cfg = tls_config_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(g);
		return NULL;
	}
	g->refs = 1;
	g->gen = wc->gen;
	g->config = cfg;
	if (tls_config_set_protocols(cfg, wc->main.protocols) == -1 ||
	    (wc->ciphers != NULL &&
	    tls_config_set_ciphers(cfg, wc->ciphers) == -1) ||
	    tls_config_set_dheparams(cfg, "auto") == -1 ||
	    /* The keyholder signs ECDHE params for these groups only. */
	    tls_config_set_ecdhecurves(cfg, PROTO_TLS_GROUPS) == -1 ||
	    tls_config_set_keypair_mem(cfg, wc->cert.data, wc->cert.len,
	    wc->keyref.data, wc->keyref.len) == -1 ||
	    tls_config_set_ca_mem(cfg, wc->ca.data, wc->ca.len) == -1 ||
	    (wc->crl.len > 0 &&
	    tls_config_set_crl_mem(cfg, wc->crl.data, wc->crl.len) == -1) ||
	    (wc->staple.len > 0 && tls_config_set_ocsp_staple_mem(cfg,
	    wc->staple.data, wc->staple.len) == -1)) {
		snprintf(err, errlen, "tls configuration: %s",
		    tls_config_error(cfg));
		goto fail;
	}
	tls_config_verify_client(cfg);
	if (wc->main.session_lifetime > 0) {
		/*
		 * The session id context names the policy: a ticket made
		 * under another CA, CRL or rule set does not resume.
		 */
		memset(sid, 0, sizeof(sid));
		memcpy(sid, "todod", 5);
		memcpy(sid + 8, &policy, sizeof(policy));
		if (tls_config_set_session_lifetime(cfg,
		    wc->main.session_lifetime) == -1 ||
		    tls_config_set_session_id(cfg, sid, sizeof(sid)) == -1) {
			snprintf(err, errlen, "tls sessions: %s",
			    tls_config_error(cfg));
			goto fail;
		}
		for (i = 0; i < wc->ntickets; i++)
			if (tlsgen_add_ticket(g, &wc->tickets[i]) == -1) {
				snprintf(err, errlen, "ticket key: %s",
				    tls_config_error(cfg));
				goto fail;
			}
	}
	/* the hook gives the names to the SSL_CTX tls_configure makes */
	canames = tlsgen_ca_names(&wc->ca);
	tlshook_set_ca_names(canames);
	/* libtls decodes the key reference here, and only here */
	khprov_decoders(kp, 1);
	r = (g->server = tls_server()) == NULL ||
	    tls_configure(g->server, cfg) == -1;
	khprov_decoders(kp, 0);
	tlshook_set_ca_names(NULL);
	sk_X509_NAME_pop_free(canames, X509_NAME_free);
	if (r) {
		snprintf(err, errlen, "tls_configure: %s", g->server ?
		    tls_error(g->server) : "out of memory");
		goto fail;
	}
	if (tlshook_ctx_count() == hooks)
		log_warnx("libssl hooks not active: no session resumption, "
		    "no certificate failure reasons, no client CA names");
	if (wc->crl.len > 0) {
		if ((crls = tlsmat_pem_crls(wc->crl.data, wc->crl.len)) != NULL)
			g->crl = sk_X509_CRL_shift(crls);
		sk_X509_CRL_pop_free(crls, X509_CRL_free);
		if (g->crl == NULL) {
			snprintf(err, errlen, "CRL does not parse");
			goto fail;
		}
	}
	return g;
 fail:
	tlsgen_unref(g);
	return NULL;
}

void
tlsgen_unref(struct tlsgen *g)
{
	if (g == NULL || --g->refs > 0)
		return;
	tls_free(g->server);
	tls_config_free(g->config);
	X509_CRL_free(g->crl);
	free(g);
}

/*
 * Replace the OCSP staple (len 0: staple nothing).  libtls reads it from
 * the configuration at each handshake, so the generation in use takes it
 * at once.
 */
int
tlsgen_set_staple(struct tlsgen *g, const void *der, size_t len)
{
	/* libtls takes a non-const pointer; it copies the bytes */
	return tls_config_set_ocsp_staple_mem(g->config,
	    len > 0 ? (uint8_t *)(uintptr_t)der : NULL, len);
}

int
tlsgen_add_ticket(struct tlsgen *g, const struct proto_ticket_key *k)
{
	uint8_t	 key[PROTO_TICKET_KEY_SIZE];
	int	 r;

	/* libtls takes a non-const key. */
	memcpy(key, k->key, sizeof(key));
	r = tls_config_add_ticket_key(g->config, k->keyrev, key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	return r;
}
