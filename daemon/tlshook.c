#include <sys/queue.h>

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "tlshook.h"

/* Hidden by OPENSSL_NO_DEPRECATED; the value is part of the 3.x ABI. */
#ifndef SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB
#define SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB	72
#endif

typedef int (*ticket_cb_t)(SSL *, unsigned char *, unsigned char *,
    EVP_CIPHER_CTX *, HMAC_CTX *, int);
typedef int (*verify_cb_t)(X509_STORE_CTX *, void *);
typedef long (*callback_ctrl_t)(SSL_CTX *, int, void (*)(void));
typedef void (*set_verify_t)(SSL_CTX *, verify_cb_t, void *);

/*
 * A failed verification, kept in the connection's SSL (ex_data) and freed
 * with it.  libtls gives no way from a connection's struct tls to its SSL,
 * only the other way (libretls makes the struct tls the SSL's app data):
 * so the records that exist are also listed, to be found by that owner.
 */
struct tlshook_rec {
	LIST_ENTRY(tlshook_rec)	 entry;
	const void		*owner;		/* the connection's struct tls */
	struct tlshook_verify	 v;
};
LIST_HEAD(tlshook_recs, tlshook_rec);

/*
 * The callbacks libretls installed on one context, kept in that context
 * (SSL_CTX ex_data) and freed with it: the wrappers find them from the
 * SSL they are called for.
 */
struct tlshook_ctx {
	ticket_cb_t		 ticket;
	verify_cb_t		 verify;
};

/*
 * What stays file-static, and why it has to.  An interposed libssl
 * function has the signature libssl gives it, so nothing of ours reaches
 * it but through OpenSSL objects: the ex_data indexes are process-wide in
 * OpenSSL itself, and so are the libssl functions the wrappers call on
 * (their `next'); the live records are found from a struct tls, which
 * libtls never lets us map to its SSL; the CA names and the count cross
 * from tlsconf.c to the contexts libtls makes inside tls_configure(),
 * which takes no argument of ours.
 */
static int			 tlshook_ctx_idx = -1;
static int			 tlshook_idx = -1;
static struct tlshook_recs	 tlshook_live = LIST_HEAD_INITIALIZER(tlshook_live);
static int			 tlshook_nctx;
static STACK_OF(X509_NAME)	*tlshook_ca_names;	/* not ours */

long	SSL_CTX_callback_ctrl(SSL_CTX *, int, void (*)(void));
void	SSL_CTX_set_cert_verify_callback(SSL_CTX *, verify_cb_t, void *);

static void *
tlshook_next(const char *name)
{
	void	*fn;

	if ((fn = dlvsym(RTLD_NEXT, name, "OPENSSL_3.0.0")) == NULL &&
	    (fn = dlsym(RTLD_NEXT, name)) == NULL)
		fatalx("%s: cannot find libssl's %s", __func__, name);
	return fn;
}

/* OpenSSL frees a context's record with the context. */
static void
tlshook_ctx_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	free(ptr);
}

/* The record of ctx; made when create is set and there is none. */
static struct tlshook_ctx *
tlshook_ctx_of(SSL_CTX *ctx, int create)
{
	struct tlshook_ctx	*hc;

	if (ctx == NULL)
		return NULL;
	if (tlshook_ctx_idx == -1 && (tlshook_ctx_idx =
	    SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
	    tlshook_ctx_free)) == -1)
		return NULL;
	if ((hc = SSL_CTX_get_ex_data(ctx, tlshook_ctx_idx)) != NULL ||
	    !create)
		return hc;
	if ((hc = calloc(1, sizeof(*hc))) == NULL)
		return NULL;
	if (SSL_CTX_set_ex_data(ctx, tlshook_ctx_idx, hc) != 1) {
		free(hc);
		return NULL;
	}
	return hc;
}

/*
 * The context an SSL uses now: after a switch for SNI it is another of
 * libretls' contexts, which libretls configures with the same callbacks.
 */
static struct tlshook_ctx *
tlshook_ctx_of_ssl(SSL *ssl)
{
	return ssl != NULL ? tlshook_ctx_of(SSL_get_SSL_CTX(ssl), 0) : NULL;
}

static int
tlshook_ticket(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, HMAC_CTX *hctx, int enc)
{
	struct tlshook_ctx	*hc = tlshook_ctx_of_ssl(ssl);
	int			 r;

	if (hc == NULL || hc->ticket == NULL)
		return 0;	/* no ticket: a full handshake, not a failure */
	r = hc->ticket(ssl, name, iv, ectx, hctx, enc);
	if (enc == 1 && r == 0)
		return 1;
	/*
	 * TLS 1.3 clients use a ticket once (RFC 8446, appendix C.4): ask
	 * for a fresh one on every resumption, or every other reconnect
	 * would be a full handshake.
	 */
	if (enc == 0 && r == 1 && SSL_version(ssl) == TLS1_3_VERSION)
		return 2;
	return r;
}

/*
 * An out-of-date CRL is still enforced: the certificates it lists stay
 * refused (X509_V_ERR_CERT_REVOKED is not excused here), the others are
 * accepted.  Refusing every client because a CRL is late would be an
 * outage; the parent warns about it instead.
 */
int
tlshook_verify_each(int ok, X509_STORE_CTX *xctx)
{
	int	 e = X509_STORE_CTX_get_error(xctx);

	if (!ok && (e == X509_V_ERR_CRL_HAS_EXPIRED ||
	    e == X509_V_ERR_CRL_NOT_YET_VALID)) {
		/* libretls fails on any error left in the context */
		X509_STORE_CTX_set_error(xctx, X509_V_OK);
		return 1;
	}
	return ok;
}

/* OpenSSL frees a connection's record with its SSL. */
static void
tlshook_rec_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
    long argl, void *argp)
{
	struct tlshook_rec	*rec = ptr;

	if (rec == NULL)
		return;
	LIST_REMOVE(rec, entry);
	free(rec);
}

static void
tlshook_add(struct tlshook_verify *v, const char *s, size_t n)
{
	size_t	 room = sizeof(v->subject) - 1 - v->subjectlen;

	if (n > room)
		n = room;
	memcpy(v->subject + v->subjectlen, s, n);
	v->subjectlen += n;
	v->subject[v->subjectlen] = '\0';
}

/*
 * The subject as /SN=value/..., values as the certificate holds them (in
 * UTF-8), unescaped: the log line escapes it once.  X509_NAME_oneline
 * would escape some bytes already (and leave quotes alone).
 */
static void
tlshook_subject(struct tlshook_verify *v, X509 *cert)
{
	const X509_NAME		*name = X509_get_subject_name(cert);
	const X509_NAME_ENTRY	*e;
	const char		*sn;
	unsigned char		*val;
	int			 i, n;

	v->subjectlen = 0;
	v->subject[0] = '\0';
	for (i = 0; i < X509_NAME_entry_count(name); i++) {
		e = X509_NAME_get_entry(name, i);
		sn = OBJ_nid2sn(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)));
		tlshook_add(v, "/", 1);
		tlshook_add(v, sn, strlen(sn));
		tlshook_add(v, "=", 1);
		if ((n = ASN1_STRING_to_UTF8(&val,
		    X509_NAME_ENTRY_get_data(e))) < 0)
			continue;
		tlshook_add(v, (const char *)val, n);
		OPENSSL_free(val);
	}
}

/* The SSL whose peer xctx verifies. */
static SSL *
tlshook_ssl_of(X509_STORE_CTX *xctx)
{
	return X509_STORE_CTX_get_ex_data(xctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
}

/* The record of the connection being verified, made on first use. */
static struct tlshook_rec *
tlshook_rec_of(X509_STORE_CTX *xctx)
{
	struct tlshook_rec	*rec;
	SSL			*ssl;

	ssl = tlshook_ssl_of(xctx);
	if (ssl == NULL || tlshook_idx == -1)
		return NULL;
	if ((rec = SSL_get_ex_data(ssl, tlshook_idx)) != NULL)
		return rec;
	if ((rec = calloc(1, sizeof(*rec))) == NULL)
		return NULL;
	if (SSL_set_ex_data(ssl, tlshook_idx, rec) != 1) {
		free(rec);
		return NULL;
	}
	rec->owner = SSL_get_app_data(ssl);
	LIST_INSERT_HEAD(&tlshook_live, rec, entry);
	return rec;
}

static int
tlshook_verify(X509_STORE_CTX *xctx, void *arg)
{
	struct tlshook_ctx	*hc = tlshook_ctx_of_ssl(tlshook_ssl_of(xctx));
	struct tlshook_rec	*rec;
	X509			*cert;
	int			 r;

	if (hc == NULL || hc->verify == NULL) {
		/* not ours to judge: fail closed */
		X509_STORE_CTX_set_error(xctx,
		    X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	r = hc->verify(xctx, arg);
	if (r != 1 && (rec = tlshook_rec_of(xctx)) != NULL) {
		rec->v.error = X509_STORE_CTX_get_error(xctx);
		rec->v.depth = X509_STORE_CTX_get_error_depth(xctx);
		rec->v.subjectlen = 0;
		rec->v.subject[0] = '\0';
		if ((cert = X509_STORE_CTX_get_current_cert(xctx)) != NULL)
			tlshook_subject(&rec->v, cert);
	}
	return r;
}

/*
 * The CertificateRequest names the client CAs (TLS 1.2 certificate_
 * authorities list, TLS 1.3 extension), so that a browser or a client
 * holding several certificates offers the right one.  libtls has no
 * setting for it and hides its SSL_CTX; this hook is where libtls hands
 * us every context it configures, and the list does not depend on what
 * libtls has loaded into the context by then.  The context owns a copy.
 */
static void
tlshook_ctx_ca_names(SSL_CTX *ctx)
{
	STACK_OF(X509_NAME)	*copy;

	if (tlshook_ca_names == NULL)
		return;
	if ((copy = SSL_dup_CA_list(tlshook_ca_names)) == NULL) {
		log_warnx("%s: out of memory: no client CA names sent",
		    __func__);
		return;
	}
	SSL_CTX_set_client_CA_list(ctx, copy);
}

/* The names the contexts configured from now on send (NULL: none). */
void
tlshook_set_ca_names(STACK_OF(X509_NAME) *names)
{
	tlshook_ca_names = names;
}

long
SSL_CTX_callback_ctrl(SSL_CTX *ctx, int cmd, void (*fp)(void))
{
	static callback_ctrl_t	 next;
	struct tlshook_ctx	*hc;

	if (next == NULL)
		next = (callback_ctrl_t)tlshook_next(__func__);
	if (cmd == SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB && fp != NULL) {
		/* without a record libretls' own callback stays in place */
		if ((hc = tlshook_ctx_of(ctx, 1)) == NULL)
			log_warnx("%s: out of memory: session tickets may "
			    "not resume", __func__);
		else {
			hc->ticket = (ticket_cb_t)fp;
			fp = (void (*)(void))tlshook_ticket;
		}
	}
	return next(ctx, cmd, fp);
}

void
SSL_CTX_set_cert_verify_callback(SSL_CTX *ctx, verify_cb_t cb, void *arg)
{
	static set_verify_t	 next;
	struct tlshook_ctx	*hc;

	if (next == NULL)
		next = (set_verify_t)tlshook_next(__func__);
	if (cb != NULL) {
		/* without a record, no reason is logged: verification stays */
		if ((hc = tlshook_ctx_of(ctx, 1)) == NULL)
			log_warnx("%s: out of memory: verification failures "
			    "will not say why", __func__);
		else {
			hc->verify = cb;
			cb = tlshook_verify;
		}
	}
	if (tlshook_idx == -1)
		tlshook_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL,
		    tlshook_rec_free);
	/* libretls verifies with a context of its own made from the store */
	X509_STORE_set_verify_cb(SSL_CTX_get_cert_store(ctx),
	    tlshook_verify_each);
	/*
	 * The chain sent is the certificate file's, leaf and intermediates
	 * as todod.conf(5) asks.  Otherwise OpenSSL builds one from the
	 * client CA store at every handshake: a whole chain verification
	 * (signature included) of our own certificate each time, and the
	 * root it adds costs every client a certificate parse for nothing.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_NO_AUTO_CHAIN);
	/*
	 * One TLS 1.3 ticket per handshake, not OpenSSL's two: each costs a
	 * re-parse of the client certificate, and a resumption brings a new
	 * one anyway.
	 */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	tlshook_ctx_ca_names(ctx);
	tlshook_nctx++;
	next(ctx, cb, arg);
}

/*
 * Why the client certificate of the connection tls failed verification;
 * NULL when it did not (or was not verified).  Only connections whose
 * verification failed have a record, and only until they are freed, so
 * the list is short.
 */
const struct tlshook_verify *
tlshook_verify_get(struct tls *tls)
{
	struct tlshook_rec	*rec;

	LIST_FOREACH(rec, &tlshook_live, entry)
		if (rec->owner == tls)
			return &rec->v;
	return NULL;
}

/* How many contexts were adjusted: the worker checks the hook is live. */
int
tlshook_ctx_count(void)
{
	return tlshook_nctx;
}
