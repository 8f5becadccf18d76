/*
 * khprov: the worker's OpenSSL provider for keys held by todod-keyholder.
 *
 * Three pieces, registered under the default provider's own key type
 * names so that libssl treats the keys as ordinary RSA, EC and Ed25519:
 *
 *  - a decoder (input=pem) that reads one PEM block and, if it is a key
 *    reference, emits a reference to a khp_key holding the key id and the
 *    public key (a default-provider EVP_PKEY);
 *  - a key manager that answers parameter queries from that public key
 *    and exports the public half only.  Refusing to export the private
 *    half is what makes EVP fall back from the default provider's
 *    signature code to ours; exporting the public half is what lets
 *    libssl's certificate/key match check succeed;
 *  - a signature implementation with only the one-shot DigestSign, so
 *    that libssl (which signs handshakes with EVP_DigestSign) hands it
 *    the whole input: that input, never a digest, goes to the keyholder,
 *    which checks that it is a TLS handshake's and hashes it itself.
 *    Each request has an id and a bounded wait.
 *
 * All state is in one struct khprov, the provider context; OpenSSL
 * passes it to every callback.  Only the provider's init function and
 * the exit hook, which OpenSSL and atexit() call without an argument,
 * find it through khp_self.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ipc.h"
#include "keyref.h"
#include "khprov.h"
#include "log.h"
#include "proto.h"

enum khp_type { KHP_RSA, KHP_EC, KHP_ED25519 };

struct khp_typeinfo {
	enum khp_type	 type;
	const char	*name;		/* EVP_PKEY_is_a() and data type */
};

static const struct khp_typeinfo khp_types[] = {
	{ KHP_RSA, "RSA" }, { KHP_EC, "EC" }, { KHP_ED25519, "ED25519" }
};

struct khprov;

/* A decoder's context: the provider and the key type it produces. */
struct khp_decctx {
	struct khprov			*kp;
	const struct khp_typeinfo	*ti;
};

struct khp_key {
	int		 refs;
	enum khp_type	 type;
	uint32_t	 keyid;
	EVP_PKEY	*pub;		/* a default-provider public key */
};

struct khp_sigctx {
	struct khprov	*kp;
	struct khp_key	*key;
	uint32_t	 md;		/* enum proto_sign_md */
	uint32_t	 mgf1;		/* SIGN_MD_NONE: same as md */
	int		 pad;		/* RSA_PKCS1_PADDING or _PSS_ */
	int		 saltlen;	/* RSA_PSS_SALTLEN_DIGEST or bytes */
};

/* Indexed by enum proto_sign_md. */
static const char *khp_mdnames[] = {
	NULL, "SHA1", "SHA2-224", "SHA2-256", "SHA2-384", "SHA2-512"
};
#define KHP_NMDS	(sizeof(khp_mdnames) / sizeof(khp_mdnames[0]))

struct khprov {
	struct ipc		 ipc;		/* fd -1: no keyholder */
	uint32_t		 reqid;
	int			 timeout;	/* ms */
	int			 decoding;	/* offer the decoders */
	khprov_observer_fn	 observer;
	void			*observer_arg;
	OSSL_LIB_CTX		*corectx;	/* reads the core's BIOs */
	OSSL_PROVIDER		*prov[2];	/* default, ours */
	EVP_MD			*md[KHP_NMDS];
	struct khp_decctx	 dec[3];	/* by enum khp_type */
};

/* For the two callers that take no argument: see above. */
static struct khprov	*khp_self;

/* Errors go to the OpenSSL queue (libssl fails the handshake) and log. */
static void
khp_error(const char *fmt, ...)
{
	char	 msg[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ERR_raise_data(ERR_LIB_USER, 1, "keyholder: %s", msg);
	log_warnx("keyholder signature: %s", msg);
}

static uint64_t
khp_now_usec(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
khp_channel_close(struct khprov *kp, const char *why)
{
	if (kp->ipc.fd == -1)
		return;
	log_warnx("keyholder channel closed: %s", why);
	ipc_clear(&kp->ipc);
}

/*
 * Wait for the reply to reqid until the deadline.  A reply to another
 * request is a late answer to one that timed out: it is skipped.
 */
static int
khp_wait_reply(struct khprov *kp, uint32_t reqid, uint64_t deadline,
    uint8_t *sig, size_t sigsize, size_t *siglen)
{
	struct proto_sign_rep	 rep;
	struct ipc_msg		 msg;
	struct pollfd		 pfd;
	uint64_t		 now;
	ssize_t			 n;
	int			 r, i;

	for (i = 0; i < 10000; i++) {
		while ((r = ipc_get(&kp->ipc, &msg)) == 1) {
			if (msg.hdr.type != IMSG_KH_SIGNATURE ||
			    msg.fd != -1 || ipc_get_raw(&msg, &rep,
			    sizeof(rep)) == -1 || rep.siglen !=
			    msg.len - msg.off) {
				ipc_msg_free(&msg);
				khp_channel_close(kp, "unexpected message");
				return -1;
			}
			if (rep.reqid != reqid)
				continue;
			if (rep.status != 0 || rep.siglen == 0 ||
			    rep.siglen > sigsize) {
				khp_error("request %u refused (status %u)",
				    reqid, rep.status);
				return -1;
			}
			memcpy(sig, msg.data + msg.off, rep.siglen);
			*siglen = rep.siglen;
			return 0;
		}
		if (r == -1) {
			khp_channel_close(kp, "bad framing");
			return -1;
		}
		if ((now = khp_now_usec()) >= deadline)
			break;
		pfd.fd = kp->ipc.fd;
		pfd.events = POLLIN;
		if ((r = poll(&pfd, 1, (deadline - now + 999) / 1000)) == -1 &&
		    errno != EINTR) {
			khp_channel_close(kp, "poll failed");
			return -1;
		}
		if (r <= 0)
			continue;
		if ((n = ipc_read(&kp->ipc)) == 0 || (n == -1 &&
		    errno != EAGAIN && errno != EINTR)) {
			khp_channel_close(kp, n == 0 ? "end of file" :
			    strerror(errno));
			return -1;
		}
	}
	khp_error("no answer to request %u within %d ms", reqid, kp->timeout);
	return -1;
}

/* One signature by the keyholder: send, then wait, bounded. */
static int
khp_roundtrip(struct khprov *kp, uint32_t keyid, uint32_t alg, uint32_t md,
    const uint8_t *in, size_t inlen, uint8_t *sig, size_t sigsize,
    size_t *siglen)
{
	struct proto_sign_req	 req;
	struct ipc_wbuf		*wb;
	uint64_t		 start, deadline;
	int			 r = -1;

	start = khp_now_usec();
	deadline = start + (uint64_t)kp->timeout * 1000;
	if (kp->ipc.fd == -1) {
		khp_error("no keyholder channel");
		goto done;
	}
	if (++kp->reqid == 0)
		kp->reqid = 1;
	memset(&req, 0, sizeof(req));
	req.reqid = kp->reqid;
	req.keyid = keyid;
	req.alg = alg;
	req.md = md;
	req.inlen = inlen;
	if ((wb = ipc_create(IMSG_KH_SIGN, 0, sizeof(req) + inlen)) == NULL) {
		khp_error("out of memory");
		goto done;
	}
	/* ipc_send() refuses (and frees) a buffer whose adds failed. */
	ipc_add(wb, &req, sizeof(req));
	ipc_add(wb, in, inlen);
	if (ipc_send(&kp->ipc, wb, -1) == -1) {
		khp_error("cannot queue request: %s", strerror(errno));
		goto done;
	}
	if (ipc_flush_blocking(&kp->ipc, kp->timeout) != 1) {
		if (errno == ETIMEDOUT)
			khp_error("request %u not sent within %d ms",
			    req.reqid, kp->timeout);
		else
			khp_channel_close(kp, strerror(errno));
		goto done;
	}
	r = khp_wait_reply(kp, req.reqid, deadline, sig, sigsize, siglen);
 done:
	if (kp->observer != NULL)
		kp->observer(kp->observer_arg, khp_now_usec() - start,
		    r == 0);
	return r;
}

static uint32_t
khp_md_lookup(const struct khprov *kp, const char *name)
{
	uint32_t	 i;

	for (i = SIGN_MD_SHA1; i < KHP_NMDS; i++)
		if (EVP_MD_is_a(kp->md[i], name))
			return i;
	return SIGN_MD_NONE;
}

static void
khp_key_unref(struct khp_key *key)
{
	if (key == NULL || --key->refs > 0)
		return;
	EVP_PKEY_free(key->pub);
	free(key);
}

/* Decoder: its context is the provider's, for the key type it makes. */
static void *
khp_dec_newctx_rsa(void *provctx)
{
	return &((struct khprov *)provctx)->dec[KHP_RSA];
}

static void *
khp_dec_newctx_ec(void *provctx)
{
	return &((struct khprov *)provctx)->dec[KHP_EC];
}

static void *
khp_dec_newctx_ed25519(void *provctx)
{
	return &((struct khprov *)provctx)->dec[KHP_ED25519];
}

static void
khp_dec_freectx(void *vctx)
{
}

static int
khp_dec_does_selection(void *provctx, int selection)
{
	return (selection & OSSL_KEYMGMT_SELECT_KEYPAIR) != 0;
}

/* A khp_key from a reference body, if it holds a key of type ti. */
static struct khp_key *
khp_key_from_ref(const struct khp_typeinfo *ti, const uint8_t *body,
    size_t len)
{
	struct khp_key	*key;
	const uint8_t	*spki;
	size_t		 spkilen;
	uint32_t	 keyid;
	EVP_PKEY	*pub;

	if (keyref_parse(body, len, &keyid, &spki, &spkilen) == -1 ||
	    (pub = d2i_PUBKEY_ex(NULL, &spki, spkilen, NULL,
	    "provider=default")) == NULL)
		return NULL;
	if (!EVP_PKEY_is_a(pub, ti->name) ||
	    (key = calloc(1, sizeof(*key))) == NULL) {
		EVP_PKEY_free(pub);
		return NULL;
	}
	key->refs = 1;
	key->type = ti->type;
	key->keyid = keyid;
	key->pub = pub;
	return key;
}

/*
 * Read exactly one PEM block.  Another label is not an error: returning
 * 1 without an object lets the other decoders try the same input.
 */
static int
khp_dec_decode(void *vctx, OSSL_CORE_BIO *cin, int selection,
    OSSL_CALLBACK *cb, void *cbarg, OSSL_PASSPHRASE_CALLBACK *pwcb,
    void *pwcbarg)
{
	const struct khp_decctx	*dc = vctx;
	const struct khp_typeinfo *ti = dc->ti;
	struct khp_key		*key = NULL;
	OSSL_PARAM		 params[4];
	BIO			*bio;
	char			*name = NULL, *header = NULL;
	unsigned char		*data = NULL;
	long			 len = 0;
	int			 objtype = OSSL_OBJECT_PKEY, ok = 1;

	if ((bio = BIO_new_from_core_bio(dc->kp->corectx, cin)) == NULL)
		return 0;
	ERR_set_mark();
	if (PEM_read_bio(bio, &name, &header, &data, &len) == 1 &&
	    strcmp(name, KEYREF_PEM_NAME) == 0)
		key = khp_key_from_ref(ti, data, len);
	ERR_pop_to_mark();
	if (key != NULL) {
		params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE,
		    &objtype);
		params[1] = OSSL_PARAM_construct_utf8_string(
		    OSSL_OBJECT_PARAM_DATA_TYPE, (char *)ti->name, 0);
		/* khp_km_load() takes the key and clears the reference. */
		params[2] = OSSL_PARAM_construct_octet_string(
		    OSSL_OBJECT_PARAM_REFERENCE, &key, sizeof(key));
		params[3] = OSSL_PARAM_construct_end();
		ok = cb(params, cbarg);
		khp_key_unref(key);
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	return ok;
}

/* Key manager. */
static void *
khp_km_load(const void *ref, size_t size)
{
	struct khp_key	*key;

	if (size != sizeof(key))
		return NULL;
	memcpy(&key, ref, sizeof(key));
	memset((void *)ref, 0, sizeof(key));
	return key;
}

static void
khp_km_free(void *kd)
{
	khp_key_unref(kd);
}

/* The private half exists, in the keyholder. */
static int
khp_km_has(const void *kd, int selection)
{
	return kd != NULL;
}

static int
khp_km_get_params(void *kd, OSSL_PARAM params[])
{
	struct khp_key	*key = kd;

	return EVP_PKEY_get_params(key->pub, params);
}

static const OSSL_PARAM *
khp_km_gettable_params(void *provctx)
{
	static const OSSL_PARAM	 gettable[] = {
		OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, NULL),
		OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, NULL),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_MANDATORY_DIGEST, NULL,
		    0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_utf8_string(
		    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
		    NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_END
	};

	return gettable;
}

static int
khp_km_export(void *kd, int selection, OSSL_CALLBACK *cb, void *cbarg)
{
	struct khp_key	*key = kd;

	if (selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY)
		return 0;
	return EVP_PKEY_export(key->pub, selection, cb, cbarg);
}

static const OSSL_PARAM *
khp_km_export_types_rsa(int selection)
{
	static const OSSL_PARAM	 types[] = {
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, NULL, 0),
		OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, NULL, 0),
		OSSL_PARAM_END
	};

	return selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY ? NULL : types;
}

static const OSSL_PARAM *
khp_km_export_types_ec(int selection)
{
	static const OSSL_PARAM	 types[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, NULL, 0),
		OSSL_PARAM_utf8_string(
		    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, NULL, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_END
	};

	return selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY ? NULL : types;
}

static const OSSL_PARAM *
khp_km_export_types_ed25519(int selection)
{
	static const OSSL_PARAM	 types[] = {
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, NULL, 0),
		OSSL_PARAM_END
	};

	return selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY ? NULL : types;
}

/* EC keys sign with ECDSA; never ECDH: the keyholder only signs. */
static const char *
khp_km_opname_ec(int op)
{
	return op == OSSL_OP_SIGNATURE ? "ECDSA" : NULL;
}

/* Signature. */
static void *
khp_sig_newctx(void *provctx, const char *propq)
{
	struct khp_sigctx	*ctx;

	if ((ctx = calloc(1, sizeof(*ctx))) != NULL)
		ctx->kp = provctx;
	return ctx;
}

static void
khp_sig_freectx(void *vctx)
{
	struct khp_sigctx	*ctx = vctx;

	if (ctx != NULL)
		khp_key_unref(ctx->key);
	free(ctx);
}

static void *
khp_sig_dupctx(void *vctx)
{
	struct khp_sigctx	*ctx = vctx, *dup;

	if ((dup = malloc(sizeof(*dup))) == NULL)
		return NULL;
	*dup = *ctx;
	if (dup->key != NULL)
		dup->key->refs++;
	return dup;
}

static int
khp_param_md(const struct khprov *kp, const OSSL_PARAM *p, uint32_t *md)
{
	const char	*s;

	if (!OSSL_PARAM_get_utf8_string_ptr(p, &s) ||
	    (*md = khp_md_lookup(kp, s)) == SIGN_MD_NONE)
		return 0;
	return 1;
}

/* pad-mode and saltlen come as integers or, from EVP's ctrls, as text. */
static int
khp_param_int(const OSSL_PARAM *p, int *v)
{
	const char	*s, *errstr;

	if (p->data_type != OSSL_PARAM_UTF8_STRING)
		return OSSL_PARAM_get_int(p, v);
	if (!OSSL_PARAM_get_utf8_string_ptr(p, &s))
		return 0;
	if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0)
		*v = RSA_PKCS1_PADDING;
	else if (strcmp(s, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0)
		*v = RSA_PKCS1_PSS_PADDING;
	else if (strcmp(s, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0)
		*v = RSA_PSS_SALTLEN_DIGEST;
	else {
		*v = strtonum(s, 0, PROTO_SIGN_MAX_SIG, &errstr);
		return errstr == NULL;
	}
	return 1;
}

static int
khp_sig_set_ctx_params(void *vctx, const OSSL_PARAM params[])
{
	struct khp_sigctx	*ctx = vctx;
	const OSSL_PARAM	*p;
	int			 rsa;

	if (params == NULL)
		return 1;
	rsa = ctx->key != NULL && ctx->key->type == KHP_RSA;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_DIGEST)) != NULL && (ctx->key == NULL ||
	    ctx->key->type == KHP_ED25519 ||
	    !khp_param_md(ctx->kp, p, &ctx->md)))
		return 0;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_PAD_MODE)) != NULL && (!rsa ||
	    !khp_param_int(p, &ctx->pad) || (ctx->pad != RSA_PKCS1_PADDING &&
	    ctx->pad != RSA_PKCS1_PSS_PADDING)))
		return 0;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_PSS_SALTLEN)) != NULL && (!rsa ||
	    !khp_param_int(p, &ctx->saltlen)))
		return 0;
	if ((p = OSSL_PARAM_locate_const(params,
	    OSSL_SIGNATURE_PARAM_MGF1_DIGEST)) != NULL && (!rsa ||
	    !khp_param_md(ctx->kp, p, &ctx->mgf1)))
		return 0;
	return 1;
}

static const OSSL_PARAM *
khp_sig_settable_ctx_params(void *vctx, void *provctx)
{
	static const OSSL_PARAM	 settable[] = {
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PROPERTIES, NULL,
		    0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, NULL, 0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, NULL,
		    0),
		OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, NULL,
		    0),
		OSSL_PARAM_END
	};

	return settable;
}

/* Cheap: libssl calls it for candidate algorithms.  No round trip. */
static int
khp_sig_digest_sign_init(void *vctx, const char *mdname, void *kd,
    const OSSL_PARAM params[])
{
	struct khp_sigctx	*ctx = vctx;
	struct khp_key		*key = kd;

	if (key == NULL)
		return 0;
	key->refs++;
	khp_key_unref(ctx->key);
	memset(&ctx->key, 0, sizeof(*ctx) - offsetof(struct khp_sigctx, key));
	ctx->key = key;
	ctx->pad = RSA_PKCS1_PADDING;
	ctx->saltlen = RSA_PSS_SALTLEN_DIGEST;
	if (key->type == KHP_ED25519) {
		if (mdname != NULL && *mdname != '\0')
			return 0;
	} else if (mdname == NULL || *mdname == '\0')
		ctx->md = SIGN_MD_SHA256;	/* the keys' default digest */
	else if ((ctx->md = khp_md_lookup(ctx->kp, mdname)) == SIGN_MD_NONE)
		return 0;
	return khp_sig_set_ctx_params(ctx, params);
}

/* Map the context to a keyholder algorithm, or refuse. */
static int
khp_sig_alg(const struct khp_sigctx *ctx, uint32_t *alg)
{
	int	 mdlen;

	switch (ctx->key->type) {
	case KHP_EC:
		*alg = SIGN_ECDSA;
		return 0;
	case KHP_ED25519:
		*alg = SIGN_ED25519;
		return 0;
	case KHP_RSA:
		break;
	}
	if (ctx->pad == RSA_PKCS1_PADDING) {
		*alg = SIGN_RSA_PKCS1;
		return 0;
	}
	/* The keyholder signs PSS with salt = digest length, MGF1 = md. */
	mdlen = EVP_MD_get_size(ctx->kp->md[ctx->md]);
	if ((ctx->saltlen != RSA_PSS_SALTLEN_DIGEST &&
	    ctx->saltlen != mdlen) ||
	    (ctx->mgf1 != SIGN_MD_NONE && ctx->mgf1 != ctx->md))
		return -1;
	*alg = SIGN_RSA_PSS;
	return 0;
}

/*
 * The whole input goes to the keyholder, which refuses anything but a
 * TLS handshake's signature input: hashing here would let whoever
 * controls this process have any digest signed.
 */
static int
khp_sig_digest_sign(void *vctx, unsigned char *sig, size_t *siglen,
    size_t sigsize, const unsigned char *tbs, size_t tbslen)
{
	struct khp_sigctx	*ctx = vctx;
	uint32_t		 alg;

	if (ctx->key == NULL)
		return 0;
	if (sig == NULL) {
		*siglen = EVP_PKEY_get_size(ctx->key->pub);
		return 1;
	}
	if (khp_sig_alg(ctx, &alg) == -1) {
		khp_error("unsupported PSS parameters");
		return 0;
	}
	if (tbslen == 0 || tbslen > PROTO_SIGN_MAX_INPUT) {
		khp_error("signature input of %zu bytes", tbslen);
		return 0;
	}
	return khp_roundtrip(ctx->kp, ctx->key->keyid, alg, alg ==
	    SIGN_ED25519 ? SIGN_MD_NONE : ctx->md, tbs, tbslen, sig, sigsize,
	    siglen) == 0;
}

#define KHP_DECODER(suffix)						\
static const OSSL_DISPATCH khp_dec_##suffix[] = {			\
	{ OSSL_FUNC_DECODER_NEWCTX, (void (*)(void))khp_dec_newctx_##suffix }, \
	{ OSSL_FUNC_DECODER_FREECTX, (void (*)(void))khp_dec_freectx },	\
	{ OSSL_FUNC_DECODER_DOES_SELECTION,				\
	    (void (*)(void))khp_dec_does_selection },			\
	{ OSSL_FUNC_DECODER_DECODE, (void (*)(void))khp_dec_decode },	\
	{ 0, NULL }							\
}
KHP_DECODER(rsa);
KHP_DECODER(ec);
KHP_DECODER(ed25519);

#define KHP_KEYMGMT_COMMON						\
	{ OSSL_FUNC_KEYMGMT_LOAD, (void (*)(void))khp_km_load },	\
	{ OSSL_FUNC_KEYMGMT_FREE, (void (*)(void))khp_km_free },	\
	{ OSSL_FUNC_KEYMGMT_HAS, (void (*)(void))khp_km_has },		\
	{ OSSL_FUNC_KEYMGMT_GET_PARAMS, (void (*)(void))khp_km_get_params }, \
	{ OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS,				\
	    (void (*)(void))khp_km_gettable_params },			\
	{ OSSL_FUNC_KEYMGMT_EXPORT, (void (*)(void))khp_km_export }

static const OSSL_DISPATCH khp_km_rsa[] = {
	KHP_KEYMGMT_COMMON,
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES,
	    (void (*)(void))khp_km_export_types_rsa },
	{ 0, NULL }
};

static const OSSL_DISPATCH khp_km_ec[] = {
	KHP_KEYMGMT_COMMON,
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES,
	    (void (*)(void))khp_km_export_types_ec },
	{ OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME,
	    (void (*)(void))khp_km_opname_ec },
	{ 0, NULL }
};

static const OSSL_DISPATCH khp_km_ed25519[] = {
	KHP_KEYMGMT_COMMON,
	{ OSSL_FUNC_KEYMGMT_EXPORT_TYPES,
	    (void (*)(void))khp_km_export_types_ed25519 },
	{ 0, NULL }
};

static const OSSL_DISPATCH khp_sig[] = {
	{ OSSL_FUNC_SIGNATURE_NEWCTX, (void (*)(void))khp_sig_newctx },
	{ OSSL_FUNC_SIGNATURE_FREECTX, (void (*)(void))khp_sig_freectx },
	{ OSSL_FUNC_SIGNATURE_DUPCTX, (void (*)(void))khp_sig_dupctx },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT,
	    (void (*)(void))khp_sig_digest_sign_init },
	{ OSSL_FUNC_SIGNATURE_DIGEST_SIGN,
	    (void (*)(void))khp_sig_digest_sign },
	{ OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS,
	    (void (*)(void))khp_sig_set_ctx_params },
	{ OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS,
	    (void (*)(void))khp_sig_settable_ctx_params },
	{ 0, NULL }
};

/* The default provider's names: libssl must see ordinary key types. */
#define KHP_NAMES_RSA		"RSA:rsaEncryption:1.2.840.113549.1.1.1"
#define KHP_NAMES_EC		"EC:id-ecPublicKey:1.2.840.10045.2.1"
#define KHP_NAMES_ED25519	"ED25519:1.3.101.112"
#define KHP_PROPS		"provider=" KHPROV_NAME

static const OSSL_ALGORITHM khp_decoders[] = {
	{ KHP_NAMES_RSA, KHP_PROPS ",input=pem", khp_dec_rsa, NULL },
	{ KHP_NAMES_EC, KHP_PROPS ",input=pem", khp_dec_ec, NULL },
	{ KHP_NAMES_ED25519, KHP_PROPS ",input=pem", khp_dec_ed25519, NULL },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM khp_keymgmts[] = {
	{ KHP_NAMES_RSA, KHP_PROPS, khp_km_rsa, NULL },
	{ KHP_NAMES_EC, KHP_PROPS, khp_km_ec, NULL },
	{ KHP_NAMES_ED25519, KHP_PROPS, khp_km_ed25519, NULL },
	{ NULL, NULL, NULL, NULL }
};

static const OSSL_ALGORITHM khp_signatures[] = {
	{ KHP_NAMES_RSA, KHP_PROPS, khp_sig, NULL },
	{ "ECDSA", KHP_PROPS, khp_sig, NULL },
	{ KHP_NAMES_ED25519, KHP_PROPS, khp_sig, NULL },
	{ NULL, NULL, NULL, NULL }
};

/*
 * The decoders can be withdrawn when no key reference is being loaded
 * (khprov_decoders(kp, 0); the worker does so around tls_configure()):
 * OpenSSL 3.0 consults every decoder on offer each time it decodes a
 * public key, which it does for every certificate it parses, and a
 * handshake parses several.  Not cached, so that turning them off takes
 * effect.
 */
void
khprov_decoders(struct khprov *kp, int on)
{
	kp->decoding = on;
}

static const OSSL_ALGORITHM *
khp_query(void *provctx, int op, int *no_cache)
{
	struct khprov	*kp = provctx;

	*no_cache = 0;
	switch (op) {
	case OSSL_OP_DECODER:
		*no_cache = 1;
		return kp->decoding ? khp_decoders : NULL;
	case OSSL_OP_KEYMGMT:
		return khp_keymgmts;
	case OSSL_OP_SIGNATURE:
		return khp_signatures;
	}
	return NULL;
}

static void
khp_teardown(void *provctx)
{
	struct khprov	*kp = provctx;

	/* The last use of the context: OpenSSL may tear down after exit. */
	OSSL_LIB_CTX_free(kp->corectx);
	free(kp);
}

static const OSSL_DISPATCH khp_provider[] = {
	{ OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))khp_query },
	{ OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))khp_teardown },
	{ 0, NULL }
};

static int
khp_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
    const OSSL_DISPATCH **out, void **provctx)
{
	struct khprov	*kp = khp_self;

	/* A library context made from the core's table can wrap its BIOs. */
	if (kp == NULL || (kp->corectx = OSSL_LIB_CTX_new_from_dispatch(handle,
	    in)) == NULL)
		return 0;
	*out = khp_provider;
	*provctx = kp;
	return 1;
}

/* At exit, before OpenSSL's own cleanup: leak checkers stay quiet. */
static void
khp_unload(void)
{
	struct khprov	*kp = khp_self;
	OSSL_PROVIDER	*prov[2];
	size_t		 i;

	if (kp == NULL)
		return;
	for (i = 0; i < KHP_NMDS; i++)
		EVP_MD_free(kp->md[i]);
	ipc_clear(&kp->ipc);
	khp_self = NULL;
	/* khp_teardown() frees kp, now or when the last key is gone. */
	memcpy(prov, kp->prov, sizeof(prov));
	for (i = 2; i-- > 0;)
		OSSL_PROVIDER_unload(prov[i]);
}

/*
 * Register and load the provider and, explicitly, the default one
 * (loading any provider turns off the implicit default), preferring the
 * default for everything the keyholder does not do.  One per process:
 * OpenSSL knows the provider by name.
 */
struct khprov *
khprov_init(void)
{
	struct khprov	*kp;
	size_t		 i;

	if (khp_self != NULL)
		return khp_self;
	if ((kp = calloc(1, sizeof(*kp))) == NULL)
		return NULL;
	ipc_init(&kp->ipc, -1);
	kp->timeout = KHPROV_TIMEOUT;
	kp->decoding = 1;
	for (i = 0; i < 3; i++) {
		kp->dec[i].kp = kp;
		kp->dec[i].ti = &khp_types[i];
	}
	khp_self = kp;
	if (OSSL_PROVIDER_add_builtin(NULL, KHPROV_NAME,
	    khp_provider_init) != 1 ||
	    (kp->prov[0] = OSSL_PROVIDER_load(NULL, "default")) == NULL ||
	    (kp->prov[1] = OSSL_PROVIDER_load(NULL, KHPROV_NAME)) == NULL ||
	    EVP_set_default_properties(NULL, "?provider=default") != 1) {
		log_warnx("%s: cannot load the OpenSSL providers", __func__);
		return NULL;
	}
	for (i = SIGN_MD_SHA1; i < KHP_NMDS; i++)
		if ((kp->md[i] = EVP_MD_fetch(NULL, khp_mdnames[i],
		    "provider=default")) == NULL) {
			log_warnx("%s: no %s digest", __func__,
			    khp_mdnames[i]);
			return NULL;
		}
	/* After OpenSSL's own exit handler, so that it runs before it. */
	atexit(khp_unload);
	return kp;
}

/* Use fd (or nothing, with -1) from now on; the old channel is closed. */
void
khprov_set_channel(struct khprov *kp, int fd)
{
	int	 fl;

	ipc_clear(&kp->ipc);
	if (fd == -1)
		return;
	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1))
		log_warn("%s: fcntl", __func__);
	ipc_init(&kp->ipc, fd);
}

int
khprov_has_channel(const struct khprov *kp)
{
	return kp->ipc.fd != -1;
}

void
khprov_set_timeout(struct khprov *kp, int ms)
{
	kp->timeout = ms > 0 ? ms : KHPROV_TIMEOUT;
}

void
khprov_set_observer(struct khprov *kp, khprov_observer_fn fn, void *arg)
{
	kp->observer = fn;
	kp->observer_arg = arg;
}
