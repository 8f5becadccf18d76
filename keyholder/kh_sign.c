/*
 * Key table, request validation and signing for todod-keyholder.
 *
 * Every request from a worker is hostile input: its size, algorithm,
 * key and content are checked before any key is touched.  The worker
 * sends what is to be signed, never a digest: the keyholder checks that
 * it is a TLS handshake's signature input (kh_tls.c), hashes it itself
 * and signs.  It never decrypts and never applies raw RSA without
 * padding.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "kh_pkcs11.h"
#include "kh_sign.h"
#include "kh_tls.h"

/* Indexed by enum proto_sign_md. */
static const struct kh_md {
	const char	*name;
	size_t		 len;
} kh_mds[] = {
	{ NULL, 0 }, { "SHA1", 20 }, { "SHA2-224", 28 }, { "SHA2-256", 32 },
	{ "SHA2-384", 48 }, { "SHA2-512", 64 }
};
#define KH_NMDS		(sizeof(kh_mds) / sizeof(kh_mds[0]))

/* Which enum proto_sign_alg bits each enum kh_keytype may use. */
static const unsigned int kh_algs[] = {
	[KH_KEY_RSA] = 1 << SIGN_RSA_PKCS1 | 1 << SIGN_RSA_PSS,
	[KH_KEY_EC] = 1 << SIGN_ECDSA,
	[KH_KEY_ED25519] = 1 << SIGN_ED25519
};
#define KH_ALG_FITS(type, alg)	((alg) < 32 && kh_algs[type] & 1U << (alg))

/* Fetched once, before the sandbox: later fetches must not need files. */
static EVP_MD	*kh_md_cache[KH_NMDS];

static int	 kh_pkey_op(EVP_PKEY *, uint32_t, uint32_t, const uint8_t *,
		    size_t, uint8_t *, size_t *, int);

static EVP_MD *
kh_md_get(uint32_t md)
{
	if (md == SIGN_MD_NONE || md >= KH_NMDS)
		return NULL;
	if (kh_md_cache[md] == NULL)
		kh_md_cache[md] = EVP_MD_fetch(NULL, kh_mds[md].name, NULL);
	return kh_md_cache[md];
}

struct kh_key *
kh_key_find(const struct kh_keytab *tab, uint32_t keyid)
{
	struct kh_key	*key;

	TAILQ_FOREACH(key, tab, entry)
		if (key->keyid == keyid)
			return key;
	return NULL;
}

/* The contexts hold references to the key: freed before it is. */
static void
kh_key_sign_ctx_clear(struct kh_key *key)
{
	size_t	 a, m;

	for (a = 0; a < KH_SIGN_NALGS; a++)
		for (m = 0; m < KH_SIGN_NMDS; m++) {
			EVP_PKEY_CTX_free(key->sctx[a][m]);
			key->sctx[a][m] = NULL;
		}
}

int
kh_key_drop(struct kh_keytab *tab, uint32_t keyid)
{
	struct kh_key	*key;

	if ((key = kh_key_find(tab, keyid)) == NULL)
		return -1;
	TAILQ_REMOVE(tab, key, entry);
	kh_key_sign_ctx_clear(key);
	EVP_PKEY_free(key->pkey);	/* clears the private numbers */
	kh_p11_key_free(key->p11);
	freezero(key, sizeof(*key));
	return 0;
}

void
kh_keytab_clear(struct kh_keytab *tab)
{
	while (!TAILQ_EMPTY(tab))
		kh_key_drop(tab, TAILQ_FIRST(tab)->keyid);
}

/*
 * Read a whole key file into buf (KH_KEYFILE_MAX + 1 bytes, so that a
 * file over the limit is seen rather than cut).  *len is what was read.
 */
int
kh_key_read_fd(int fd, uint8_t *buf, size_t *len)
{
	ssize_t	 n;

	for (*len = 0; *len <= KH_KEYFILE_MAX; *len += n) {
		if ((n = read(fd, buf + *len, KH_KEYFILE_MAX + 1 -
		    *len)) == -1 && errno == EINTR)
			n = 0;
		else if (n == -1)
			return -1;
		else if (n == 0)
			return 0;
	}
	errno = EFBIG;
	return -1;
}

/* An encrypted key cannot be unlocked here: there is nobody to ask. */
static int
kh_nopass(char *buf, int size, int rwflag, void *u)
{
	return 0;
}

/* Parse a PEM private key in place; the caller wipes pem afterwards. */
static EVP_PKEY *
kh_key_parse(const uint8_t *pem, size_t len)
{
	BIO		*bio;
	EVP_PKEY	*pkey = NULL;

	if (len > 0 && len <= KH_KEYFILE_MAX &&
	    (bio = BIO_new_mem_buf(pem, (int)len)) != NULL) {
		pkey = PEM_read_bio_PrivateKey(bio, NULL, kh_nopass, NULL);
		BIO_free(bio);
	}
	ERR_clear_error();
	return pkey;
}

/* When a parse fails: was it for want of secure memory? */
static int
kh_heap_full(void)
{
	void	*p;

	if (!CRYPTO_secure_malloc_initialized())
		return 0;
	if ((p = OPENSSL_secure_malloc(4096)) == NULL) {
		ERR_clear_error();
		return 1;
	}
	OPENSSL_secure_free(p);
	return 0;
}

/* The key types we sign with, and their policy. */
static int
kh_key_type(EVP_PKEY *pkey, const char *path, char *err, size_t errlen)
{
	char	 group[64];
	size_t	 glen;
	int	 bits;

	if (EVP_PKEY_is_a(pkey, "ED25519"))
		return KH_KEY_ED25519;
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		if ((bits = EVP_PKEY_get_bits(pkey)) >= 2048 && bits <= 4096)
			return KH_KEY_RSA;
		snprintf(err, errlen, "%s: RSA key of %d bits not supported "
		    "(2048 to 4096)", path, bits);
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		if (EVP_PKEY_get_group_name(pkey, group, sizeof(group),
		    &glen) && (strcmp(group, "prime256v1") == 0 ||
		    strcmp(group, "secp384r1") == 0))
			return KH_KEY_EC;
		snprintf(err, errlen, "%s: EC curve not supported "
		    "(P-256 or P-384)", path);
	} else
		snprintf(err, errlen, "%s: unsupported key type", path);
	return -1;
}

/*
 * Sign and verify once: proves the private half is present and matches
 * the public half.  A key with damaged CRT numbers would otherwise leak
 * its factors through the first faulty signature.
 */
static int
kh_key_selftest(EVP_PKEY *pkey, enum kh_keytype type)
{
	uint8_t		 in[32], sig[PROTO_SIGN_MAX_SIG];
	size_t		 siglen = sizeof(sig);
	uint32_t	 alg, md = SIGN_MD_SHA256;

	memset(in, 0x5a, sizeof(in));
	alg = type == KH_KEY_RSA ? SIGN_RSA_PSS : type == KH_KEY_EC ?
	    SIGN_ECDSA : SIGN_ED25519;
	if (alg == SIGN_ED25519)
		md = SIGN_MD_NONE;
	if (kh_pkey_op(pkey, alg, md, in, sizeof(in), sig, &siglen, 0) == -1)
		return -1;
	return kh_pkey_op(pkey, alg, md, in, sizeof(in), sig, &siglen, 1);
}

/* Put a checked key k in the table, replacing the one of its id. */
static int
kh_key_insert(struct kh_keytab *tab, const struct kh_key *k,
    const char *name, char *err, size_t errlen)
{
	struct kh_key	*key;

	if ((key = calloc(1, sizeof(*key))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	*key = *k;
	kh_key_drop(tab, key->keyid);
	TAILQ_INSERT_TAIL(tab, key, entry);
	return 0;
}

/* Add (or replace) key keyid from PEM; else err names path and why. */
int
kh_key_add(struct kh_keytab *tab, uint32_t keyid, const uint8_t *pem,
    size_t len, const char *path, char *err, size_t errlen)
{
	struct kh_key	 key;
	EVP_PKEY	*pkey;
	int		 type;

	if ((pkey = kh_key_parse(pem, len)) == NULL) {
		snprintf(err, errlen, "%s: %s", path, kh_heap_full() ?
		    "no room left in the secure heap" : "not a private key");
		return -1;
	}
	if ((type = kh_key_type(pkey, path, err, errlen)) == -1)
		goto fail;
	if (kh_key_selftest(pkey, type) == -1) {
		snprintf(err, errlen, "%s: key fails its signature self-test",
		    path);
		goto fail;
	}
	memset(&key, 0, sizeof(key));
	key.keyid = keyid;
	key.type = type;
	key.pkey = pkey;
	if (kh_key_insert(tab, &key, path, err, errlen) == 0)
		return 0;
 fail:
	EVP_PKEY_free(pkey);
	return -1;
}

/* Sign dgst (of md) with a token key, or verify the signature made. */
static int
kh_p11_op(const struct kh_key *key, uint32_t alg, uint32_t md,
    const uint8_t *dgst, size_t dlen, uint8_t *sig, size_t *siglen,
    int verify)
{
	if (verify)
		return kh_pkey_op(key->pkey, alg, md, dgst, dlen, sig, siglen,
		    1);
	return kh_p11_sign(key->p11, alg, md, dgst, dlen, sig, siglen);
}

/*
 * Add (or replace) key keyid, held in the PKCS#11 token that uri names
 * and unlocked with pin.  The self-test signs through the token and
 * verifies with the public half it reported.
 */
int
kh_key_add_p11(struct kh_keytab *tab, uint32_t keyid, const char *uri,
    const char *pin, char *err, size_t errlen)
{
	struct kh_key	 tmp;
	uint8_t		 in[32], sig[PROTO_SIGN_MAX_SIG];
	size_t		 siglen = sizeof(sig);
	char		 why[256];
	int		 type;

	memset(&tmp, 0, sizeof(tmp));
	if ((tmp.p11 = kh_p11_key_open(uri, pin, &tmp.pkey, why,
	    sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s: %s", uri, why);
		return -1;
	}
	if ((type = kh_key_type(tmp.pkey, uri, err, errlen)) == -1)
		goto fail;
	tmp.type = type;
	memset(in, 0x5a, sizeof(in));
	if (kh_p11_op(&tmp, type == KH_KEY_RSA ? SIGN_RSA_PSS : SIGN_ECDSA,
	    SIGN_MD_SHA256, in, sizeof(in), sig, &siglen, 0) == -1 ||
	    kh_p11_op(&tmp, type == KH_KEY_RSA ? SIGN_RSA_PSS : SIGN_ECDSA,
	    SIGN_MD_SHA256, in, sizeof(in), sig, &siglen, 1) == -1) {
		snprintf(err, errlen, "%s: key fails its signature self-test",
		    uri);
		goto fail;
	}
	tmp.keyid = keyid;
	if (kh_key_insert(tab, &tmp, uri, err, errlen) == 0)
		return 0;
 fail:
	EVP_PKEY_free(tmp.pkey);
	kh_p11_key_free(tmp.p11);
	return -1;
}

/* The public half as SubjectPublicKeyInfo DER (OPENSSL_free it). */
int
kh_key_spki(EVP_PKEY *pkey, uint8_t **der, size_t *len)
{
	unsigned char	*p = NULL;
	int		 n;

	if ((n = i2d_PUBKEY(pkey, &p)) <= 0)
		return -1;
	*der = p;
	*len = n;
	return 0;
}

/* A context to sign (or verify) a digest with alg and md. */
static EVP_PKEY_CTX *
kh_digest_ctx(EVP_PKEY *pkey, uint32_t alg, uint32_t md, int verify)
{
	EVP_PKEY_CTX	*ctx;
	EVP_MD		*evpmd;
	int		 pad;

	pad = alg == SIGN_RSA_PSS ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING;
	if ((evpmd = kh_md_get(md)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL)
		return NULL;
	/* With the md set, PKCS#1 builds the DigestInfo, PSS uses MGF1. */
	if ((verify ? EVP_PKEY_verify_init(ctx) : EVP_PKEY_sign_init(ctx)) !=
	    1 || (alg != SIGN_ECDSA &&
	    EVP_PKEY_CTX_set_rsa_padding(ctx, pad) != 1) ||
	    EVP_PKEY_CTX_set_signature_md(ctx, evpmd) != 1 ||
	    (alg == SIGN_RSA_PSS && (EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx,
	    RSA_PSS_SALTLEN_DIGEST) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, evpmd) != 1))) {
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * Sign in into sig (*siglen: room on entry, length after), or verify sig.
 * Ed25519 takes the message itself, the others a digest of md.
 */
static int
kh_pkey_op(EVP_PKEY *pkey, uint32_t alg, uint32_t md, const uint8_t *in,
    size_t inlen, uint8_t *sig, size_t *siglen, int verify)
{
	EVP_PKEY_CTX	*ctx;
	EVP_MD_CTX	*mctx;
	int		 ok = 0;

	if (alg == SIGN_ED25519 && (mctx = EVP_MD_CTX_new()) != NULL) {
		if (verify)
			ok = EVP_DigestVerifyInit_ex(mctx, NULL, NULL, NULL,
			    NULL, pkey, NULL) == 1 && EVP_DigestVerify(mctx,
			    sig, *siglen, in, inlen) == 1;
		else
			ok = EVP_DigestSignInit_ex(mctx, NULL, NULL, NULL,
			    NULL, pkey, NULL) == 1 && EVP_DigestSign(mctx,
			    sig, siglen, in, inlen) == 1;
		EVP_MD_CTX_free(mctx);
	} else if (alg != SIGN_ED25519 &&
	    (ctx = kh_digest_ctx(pkey, alg, md, verify)) != NULL) {
		if (verify)
			ok = EVP_PKEY_verify(ctx, sig, *siglen, in,
			    inlen) == 1;
		else
			ok = EVP_PKEY_sign(ctx, sig, siglen, in, inlen) == 1;
		EVP_PKEY_CTX_free(ctx);
	}
	ERR_clear_error();
	return ok ? 0 : -1;
}

/* The header of a request, checked against the sizes and names we know. */
static int
kh_req_valid(const struct proto_sign_req *h, size_t len)
{
	if (h->inlen > PROTO_SIGN_MAX_INPUT || len - sizeof(*h) != h->inlen)
		return 0;
	if (h->alg == SIGN_ED25519)
		return h->md == SIGN_MD_NONE;
	return h->alg >= SIGN_RSA_PKCS1 && h->alg <= SIGN_ECDSA &&
	    kh_md_get(h->md) != NULL;
}

/*
 * TLS 1.3 signs with PSS, ECDSA or EdDSA, and a SHA-2 of 256 bits or
 * more (RFC 8446 4.2.3): a PKCS#1 or SHA-1 request over its input is
 * not something libssl would make.
 */
static int
kh_shape_fits(enum kh_tls_shape shape, const struct proto_sign_req *h)
{
	if (shape == KH_TLS_NONE)
		return 0;
	if (shape != KH_TLS13_CV || h->alg == SIGN_ED25519)
		return 1;
	return h->alg != SIGN_RSA_PKCS1 && h->md >= SIGN_MD_SHA256;
}

/*
 * The context that signs digests of md with alg and key, kept with the
 * key: making one costs OpenSSL 3.0 a walk over its whole table of
 * algorithm names (EVP_PKEY_CTX_new_from_pkey), a tenth of an ECDSA
 * signature.  One signs any number of digests: the padding and the
 * digest are fixed, a PSS salt or an ECDSA nonce is drawn for each.
 */
static EVP_PKEY_CTX *
kh_key_sign_ctx(struct kh_key *key, uint32_t alg, uint32_t md)
{
	EVP_PKEY_CTX	**ctx;

	if (alg >= KH_SIGN_NALGS || md >= KH_SIGN_NMDS)
		return NULL;
	ctx = &key->sctx[alg][md];
	if (*ctx == NULL)
		*ctx = kh_digest_ctx(key->pkey, alg, md, 0);
	return *ctx;
}

/* Sign a digest with a file key's cached context; a failure drops it. */
static int
kh_key_sign_digest(struct kh_key *key, uint32_t alg, uint32_t md,
    const uint8_t *dgst, size_t dlen, uint8_t *sig, size_t *siglen)
{
	EVP_PKEY_CTX	*ctx;

	if ((ctx = kh_key_sign_ctx(key, alg, md)) == NULL) {
		ERR_clear_error();
		return -1;
	}
	if (EVP_PKEY_sign(ctx, sig, siglen, dgst, dlen) == 1)
		return 0;
	ERR_clear_error();
	EVP_PKEY_CTX_free(ctx);
	key->sctx[alg][md] = NULL;
	return -1;
}

/* Hash the input here (never trust a digest) and sign with key. */
static int
kh_sign_input(struct kh_key *key, const struct proto_sign_req *h,
    const uint8_t *in, uint8_t *sig, size_t *siglen)
{
	uint8_t		 dgst[EVP_MAX_MD_SIZE];
	unsigned int	 dlen;
	int		 r;

	if (h->alg == SIGN_ED25519)
		return kh_pkey_op(key->pkey, h->alg, h->md, in, h->inlen, sig,
		    siglen, 0);
	if (EVP_Digest(in, h->inlen, dgst, &dlen, kh_md_get(h->md),
	    NULL) != 1) {
		ERR_clear_error();
		return -1;
	}
	if (key->p11 != NULL)
		r = kh_p11_op(key, h->alg, h->md, dgst, dlen, sig, siglen, 0);
	else
		r = kh_key_sign_digest(key, h->alg, h->md, dgst, dlen, sig,
		    siglen);
	explicit_bzero(dgst, sizeof(dgst));
	return r;
}

/*
 * Handle one IMSG_KH_SIGN payload: the header and the whole input to be
 * signed.  KH_REQ_MALFORMED and KH_REQ_REFUSED: the caller drops the
 * channel.  Otherwise rep is filled and *replen is the size to send; an
 * unknown key id (not the worker's fault after a reload) or a failed
 * signature is a status, not a drop.  *shape says what the input was.
 */
int
kh_handle(const struct kh_keytab *tab, const void *data, size_t len,
    struct kh_reply *rep, size_t *replen, enum kh_tls_shape *shape)
{
	struct proto_sign_req	 h;
	struct kh_key		*key;
	const uint8_t		*in = (const uint8_t *)data + sizeof(h);
	size_t			 siglen = sizeof(rep->sig);

	*shape = KH_TLS_NONE;
	if (len < sizeof(h))
		return KH_REQ_MALFORMED;
	memcpy(&h, data, sizeof(h));
	if (!kh_req_valid(&h, len))
		return KH_REQ_MALFORMED;
	if ((key = kh_key_find(tab, h.keyid)) != NULL &&
	    !KH_ALG_FITS(key->type, h.alg))
		return KH_REQ_MALFORMED;
	*shape = kh_tls_check(in, h.inlen);
	if (!kh_shape_fits(*shape, &h))
		return KH_REQ_REFUSED;
	memset(&rep->rep, 0, sizeof(rep->rep));
	rep->rep.reqid = h.reqid;
	if (key == NULL)
		rep->rep.status = KH_STATUS_NOKEY;
	else if (kh_sign_input(key, &h, in, rep->sig, &siglen) == -1)
		rep->rep.status = KH_STATUS_FAILED;
	else
		rep->rep.siglen = siglen;
	*replen = sizeof(rep->rep) + rep->rep.siglen;
	return KH_REQ_OK;
}

/* A reply that carries only a status (no key, over the rate). */
void
kh_reply_status(const void *data, size_t len, uint32_t status,
    struct kh_reply *rep, size_t *replen)
{
	struct proto_sign_req	 h;

	memset(&h, 0, sizeof(h));
	memcpy(&h, data, len < sizeof(h) ? len : sizeof(h));
	memset(&rep->rep, 0, sizeof(rep->rep));
	rep->rep.reqid = h.reqid;
	rep->rep.status = status;
	*replen = sizeof(rep->rep);
}

/* Run a throw-away key through the paths a real one takes. */
static int
kh_warmup_key(EVP_PKEY *gen, enum kh_keytype type)
{
	EVP_PKEY	*pkey = NULL;
	BIO		*bio;
	BUF_MEM		*mem;
	uint8_t		 in[64], sig[PROTO_SIGN_MAX_SIG], *spki;
	size_t		 siglen, spkilen;
	uint32_t	 alg, md;
	int		 ok = 0;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return -1;
	if (PEM_write_bio_PrivateKey(bio, gen, NULL, NULL, 0, NULL,
	    NULL) != 1 || BIO_get_mem_ptr(bio, &mem) != 1 ||
	    (pkey = kh_key_parse((uint8_t *)mem->data, mem->length)) == NULL ||
	    kh_key_selftest(pkey, type) == -1 ||
	    kh_key_spki(pkey, &spki, &spkilen) == -1)
		goto fail;
	OPENSSL_free(spki);
	memset(in, 0x42, sizeof(in));
	for (alg = SIGN_RSA_PKCS1; alg <= SIGN_ED25519; alg++)
		for (md = SIGN_MD_SHA1; md < KH_NMDS &&
		    KH_ALG_FITS(type, alg); md++) {
			/* PSS with SHA-512 needs more than 1024 bits. */
			if (alg == SIGN_RSA_PSS && md == SIGN_MD_SHA512)
				continue;
			siglen = sizeof(sig);
			if (kh_pkey_op(pkey, alg, alg == SIGN_ED25519 ?
			    SIGN_MD_NONE : md, in, alg == SIGN_ED25519 ?
			    sizeof(in) : kh_mds[md].len, sig, &siglen, 0) == -1)
				goto fail;
		}
	ok = 1;
 fail:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return ok ? 0 : -1;
}

/*
 * Initialise OpenSSL's default provider, its DRBG, the decoders, the
 * digests and every signature algorithm, so that nothing is loaded
 * lazily once the sandbox forbids opening files.  The RSA key is small
 * only to start fast: the code paths do not depend on its size.
 */
int
kh_crypto_warmup(void)
{
	EVP_PKEY	*pkey[4];
	int		 i, r = 0;

	for (i = SIGN_MD_SHA1; i < (int)KH_NMDS; i++)
		if (kh_md_get(i) == NULL)
			return -1;
	if (kh_tls_init(PROTO_TLS_GROUPS) == -1)
		return -1;
	pkey[0] = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	pkey[1] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	pkey[2] = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	pkey[3] = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	for (i = 0; i < 4; i++) {
		if (pkey[i] == NULL || kh_warmup_key(pkey[i], i == 0 ?
		    KH_KEY_RSA : i < 3 ? KH_KEY_EC : KH_KEY_ED25519) == -1)
			r = -1;
		EVP_PKEY_free(pkey[i]);
	}
	ERR_clear_error();
	return r;
}
