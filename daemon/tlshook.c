#include <dlfcn.h>
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

/* libretls installs the same two functions on every context it makes. */
static ticket_cb_t		 tlshook_ticket_orig;
static verify_cb_t		 tlshook_verify_orig;
static struct tlshook_verify	 tlshook_last;
static int			 tlshook_nctx;

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

static int
tlshook_ticket(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *ectx, HMAC_CTX *hctx, int enc)
{
	int	 r;

	r = tlshook_ticket_orig(ssl, name, iv, ectx, hctx, enc);
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

static int
tlshook_verify(X509_STORE_CTX *xctx, void *arg)
{
	X509	*cert;
	int	 r;

	r = tlshook_verify_orig(xctx, arg);
	if (r != 1) {
		tlshook_last.error = X509_STORE_CTX_get_error(xctx);
		tlshook_last.depth = X509_STORE_CTX_get_error_depth(xctx);
		tlshook_last.subject[0] = '\0';
		if ((cert = X509_STORE_CTX_get_current_cert(xctx)) != NULL)
			X509_NAME_oneline(X509_get_subject_name(cert),
			    tlshook_last.subject,
			    sizeof(tlshook_last.subject));
	}
	return r;
}

long
SSL_CTX_callback_ctrl(SSL_CTX *ctx, int cmd, void (*fp)(void))
{
	static callback_ctrl_t	 next;

	if (next == NULL)
		next = (callback_ctrl_t)tlshook_next(__func__);
	if (cmd == SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB && fp != NULL) {
		tlshook_ticket_orig = (ticket_cb_t)fp;
		fp = (void (*)(void))tlshook_ticket;
	}
	return next(ctx, cmd, fp);
}

void
SSL_CTX_set_cert_verify_callback(SSL_CTX *ctx, verify_cb_t cb, void *arg)
{
	static set_verify_t	 next;

	if (next == NULL)
		next = (set_verify_t)tlshook_next(__func__);
	if (cb != NULL) {
		tlshook_verify_orig = cb;
		cb = tlshook_verify;
	}
	/* libretls verifies with a context of its own made from the store */
	X509_STORE_set_verify_cb(SSL_CTX_get_cert_store(ctx),
	    tlshook_verify_each);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	/*
	 * One TLS 1.3 ticket per handshake, not OpenSSL's two: each costs a
	 * re-parse of the client certificate, and a resumption brings a new
	 * one anyway.
	 */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	tlshook_nctx++;
	next(ctx, cb, arg);
}

void
tlshook_verify_reset(void)
{
	memset(&tlshook_last, 0, sizeof(tlshook_last));
}

const struct tlshook_verify *
tlshook_verify_last(void)
{
	return &tlshook_last;
}

/* How many contexts were adjusted: the worker checks the hook is live. */
int
tlshook_ctx_count(void)
{
	return tlshook_nctx;
}
