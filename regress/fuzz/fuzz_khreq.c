/*
 * libFuzzer target for the keyholder's request check and signing
 * (keyholder/kh_sign.c).  Any payload of IMSG_KH_SIGN, against a key table
 * with an RSA key (id 1) and an EC P-256 key (id 2) made at start: the
 * handler must not crash, must accept exactly what a reference predicate
 * (written independently here: the header, and the TLS 1.3
 * CertificateVerify and TLS 1.2 ServerKeyExchange shapes) calls valid,
 * and its reply must be self-consistent.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include "kh_sign.h"
#include "proto.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct kh_keytab	 tab;

static const char	 cv_ctx[] = "TLS 1.3, server CertificateVerify";

static int
ref_tls13(const uint8_t *in, size_t n)
{
	size_t	 i;

	if (n != 98 + 32 && n != 98 + 48)
		return 0;
	for (i = 0; i < 64; i++)
		if (in[i] != ' ')
			return 0;
	return memcmp(in + 64, cv_ctx, 34) == 0;
}

/* A NIST point, checked through EVP rather than EC_POINT. */
static int
ref_point(const char *group, const uint8_t *pt, size_t n)
{
	OSSL_PARAM	 params[3];
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*pkey = NULL;
	int		 ok = 0;

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    (void *)pt, n);
	params[2] = OSSL_PARAM_construct_end();
	if (pt[0] != 4 || (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC",
	    NULL)) == NULL)
		return 0;
	if (EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, &pkey,
	    EVP_PKEY_PUBLIC_KEY, params) == 1) {
		EVP_PKEY_CTX_free(ctx);
		ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
	}
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return ok;
}

static int
ref_ecdhe(const uint8_t *p, size_t n)
{
	if (n < 4 || p[0] != 3 || p[1] != 0)
		return 0;
	if (p[2] == 29)
		return p[3] == 32 && n == 36;
	if (p[2] == 23)
		return p[3] == 65 && n == 69 && ref_point("P-256", p + 4, 65);
	if (p[2] == 24)
		return p[3] == 97 && n == 101 && ref_point("P-384", p + 4, 97);
	return 0;
}

static int
ref_dhe(const uint8_t *p, size_t n)
{
	BIGNUM	*prime = NULL, *ys = NULL;
	size_t	 plen;
	int	 ok = 0;

	if (n < 2)
		return 0;
	plen = (size_t)p[0] << 8 | p[1];
	if ((plen != 256 && plen != 384 && plen != 512) ||
	    n != 2 + plen + 3 + 2 + plen || p[2 + plen] != 0 ||
	    p[3 + plen] != 1 || p[4 + plen] != 2 ||
	    ((size_t)p[5 + plen] << 8 | p[6 + plen]) != plen)
		return 0;
	prime = plen == 256 ? BN_get_rfc3526_prime_2048(NULL) : plen == 384 ?
	    BN_get_rfc3526_prime_3072(NULL) : BN_get_rfc3526_prime_4096(NULL);
	ys = BN_bin2bn(p + 7 + plen, plen, NULL);
	ok = prime != NULL && ys != NULL && BN_cmp(ys, prime) < 0 &&
	    BN_bin2bn(p + 2, plen, ys) != NULL && BN_cmp(ys, prime) == 0;
	BN_free(prime);
	BN_free(ys);
	return ok;
}

/* What a valid request is, said once more without kh_sign.c's code. */
static int
ref_valid(const uint8_t *p, size_t len, int *known)
{
	struct proto_sign_req	 r;
	const uint8_t		*in = p + sizeof(r);
	int			 tls13;

	*known = 0;
	if (len < sizeof(r))
		return 0;
	memcpy(&r, p, sizeof(r));
	if (len != sizeof(r) + (size_t)r.inlen ||
	    r.inlen > PROTO_SIGN_MAX_INPUT)
		return 0;
	if (r.alg == SIGN_ED25519) {
		if (r.md != SIGN_MD_NONE || r.keyid == 1 || r.keyid == 2)
			return 0;
	} else if (r.alg < SIGN_RSA_PKCS1 || r.alg > SIGN_ECDSA ||
	    r.md < SIGN_MD_SHA1 || r.md > SIGN_MD_SHA512)
		return 0;
	if ((r.keyid == 1 && r.alg == SIGN_ECDSA) ||
	    (r.keyid == 2 && r.alg != SIGN_ECDSA))
		return 0;
	*known = r.keyid == 1 || r.keyid == 2;
	tls13 = ref_tls13(in, r.inlen);
	if (tls13)
		return r.alg == SIGN_ED25519 || (r.alg != SIGN_RSA_PKCS1 &&
		    r.md >= SIGN_MD_SHA256);
	return r.inlen > 64 && (ref_ecdhe(in + 64, r.inlen - 64) ||
	    ref_dhe(in + 64, r.inlen - 64));
}

static int
add_key(uint32_t keyid, EVP_PKEY *pkey)
{
	BIO	*bio;
	BUF_MEM	*mem;
	char	 err[256];
	int	 r = -1;

	if (pkey == NULL || (bio = BIO_new(BIO_s_mem())) == NULL)
		return -1;
	if (PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
	    NULL) == 1 && BIO_get_mem_ptr(bio, &mem) == 1)
		r = kh_key_add(&tab, keyid, (uint8_t *)mem->data, mem->length,
		    "fuzz", err, sizeof(err));
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return r;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	TAILQ_INIT(&tab);
	if (kh_crypto_warmup() == -1 ||
	    add_key(1, EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
	    (size_t)2048)) == -1 ||
	    add_key(2, EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == -1)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kh_reply		 rep;
	enum kh_tls_shape	 shape;
	size_t			 replen = 0;
	int			 r, valid, known;

	valid = ref_valid(data, size, &known);
	r = kh_handle(&tab, data, size, &rep, &replen, &shape);
	if ((r == KH_REQ_OK) != valid ||
	    (r == KH_REQ_OK && shape == KH_TLS_NONE))
		abort();
	if (r != KH_REQ_OK)
		return 0;
	if (replen != sizeof(rep.rep) + rep.rep.siglen ||
	    rep.rep.siglen > sizeof(rep.sig) ||
	    memcmp(&rep.rep.reqid, data, sizeof(rep.rep.reqid)) != 0)
		abort();
	/* A known key signs; an unknown one answers with a status. */
	if (known != (rep.rep.status == KH_STATUS_OK) ||
	    (rep.rep.status == KH_STATUS_OK) != (rep.rep.siglen > 0))
		abort();
	return 0;
}
