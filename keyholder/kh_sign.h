/*
 * The keyholder's key table and signing core, kept apart from the process
 * and its channels so that unit tests and the fuzzer can drive it directly.
 */
#ifndef TODOD_KH_SIGN_H
#define TODOD_KH_SIGN_H

#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "kh_tls.h"
#include "proto.h"

#define KH_KEYFILE_MAX	(64 * 1024)	/* largest PEM key file accepted */

/* proto_sign_rep.status */
#define KH_STATUS_OK		0
#define KH_STATUS_NOKEY		1	/* key id unknown (dropped, reloaded) */
#define KH_STATUS_FAILED	2	/* the signature itself failed */
#define KH_STATUS_RATE		3	/* over the worker's rate */

/* kh_handle() */
#define KH_REQ_OK		0
#define KH_REQ_MALFORMED	(-1)	/* header, sizes, algorithm, key */
#define KH_REQ_REFUSED		(-2)	/* not a TLS handshake's */

enum kh_keytype {
	KH_KEY_RSA = 1,
	KH_KEY_EC,
	KH_KEY_ED25519
};

struct kh_p11key;

/* Indexes of kh_key.sctx: enum proto_sign_alg, enum proto_sign_md. */
#define KH_SIGN_NALGS	(SIGN_ED25519 + 1)
#define KH_SIGN_NMDS	(SIGN_MD_SHA512 + 1)

struct kh_key {
	TAILQ_ENTRY(kh_key)	 entry;
	uint32_t		 keyid;
	enum kh_keytype		 type;
	EVP_PKEY		*pkey;	/* private; public only for a token key */
	struct kh_p11key	*p11;	/* the key is in a PKCS#11 token */
	/* signing contexts, made on first use: see kh_key_sign_ctx() */
	EVP_PKEY_CTX		*sctx[KH_SIGN_NALGS][KH_SIGN_NMDS];
};
TAILQ_HEAD(kh_keytab, kh_key);

/* The reply as it goes on the wire: header, then siglen bytes. */
struct kh_reply {
	struct proto_sign_rep	 rep;
	uint8_t			 sig[PROTO_SIGN_MAX_SIG];
};

void		 kh_keytab_clear(struct kh_keytab *);
struct kh_key	*kh_key_find(const struct kh_keytab *, uint32_t);
int		 kh_key_read_fd(int, uint8_t *, size_t *);
int		 kh_key_add(struct kh_keytab *, uint32_t, const uint8_t *,
		    size_t, const char *, char *, size_t);
int		 kh_key_add_p11(struct kh_keytab *, uint32_t, const char *,
		    const char *, char *, size_t);
int		 kh_key_spki(EVP_PKEY *, uint8_t **, size_t *);
int		 kh_key_drop(struct kh_keytab *, uint32_t);

int		 kh_handle(const struct kh_keytab *, const void *, size_t,
		    struct kh_reply *, size_t *, enum kh_tls_shape *);
void		 kh_reply_status(const void *, size_t, uint32_t,
		    struct kh_reply *, size_t *);
int		 kh_crypto_warmup(void);

#endif
