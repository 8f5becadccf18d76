/*
 * libFuzzer target for the keyholder's request check and signing
 * (keyholder/kh_sign.c).  Any payload of IMSG_KH_SIGN, against a key table
 * with an RSA key (id 1) and an EC P-256 key (id 2) made at start: the
 * handler must not crash, must accept exactly what a reference predicate
 * (written independently here) calls valid, and its reply must be
 * self-consistent.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "kh_sign.h"
#include "proto.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static struct kh_keytab	 tab;

/* What a valid request is, said once more without kh_sign.c's code. */
static int
ref_valid(const uint8_t *p, size_t len, int *known)
{
	static const size_t	 mdlen[] = { 0, 20, 28, 32, 48, 64 };
	struct proto_sign_req	 r;

	*known = 0;
	if (len < sizeof(r))
		return 0;
	memcpy(&r, p, sizeof(r));
	if (len != sizeof(r) + (size_t)r.inlen ||
	    r.inlen > PROTO_SIGN_MAX_INPUT)
		return 0;
	if (r.alg == SIGN_ED25519)
		return r.md == SIGN_MD_NONE && r.inlen > 0 && r.keyid != 1 &&
		    r.keyid != 2;
	if (r.alg < SIGN_RSA_PKCS1 || r.alg > SIGN_ECDSA ||
	    r.md < SIGN_MD_SHA1 || r.md > SIGN_MD_SHA512 ||
	    r.inlen != mdlen[r.md])
		return 0;
	if (r.keyid == 1) {
		*known = 1;
		return r.alg == SIGN_RSA_PKCS1 || r.alg == SIGN_RSA_PSS;
	}
	if (r.keyid == 2) {
		*known = 1;
		return r.alg == SIGN_ECDSA;
	}
	return 1;
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
	struct kh_reply	 rep;
	size_t		 replen = 0;
	int		 r, valid, known;

	valid = ref_valid(data, size, &known);
	r = kh_handle(&tab, data, size, &rep, &replen);
	if ((r == 0) != valid)
		abort();
	if (r == -1)
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
