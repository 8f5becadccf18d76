/*
 * The keyholder's PKCS#11 back end: private keys that stay in a token.
 * The module is loaded before the sandbox (kh_p11_init); a key is found
 * by its RFC 7512 URI and the token's PIN, and signs digests with C_Sign.
 * A token that goes away fails signatures; the next one logs in again.
 */
#ifndef TODOD_KH_PKCS11_H
#define TODOD_KH_PKCS11_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define KH_P11_PREFIX	"pkcs11:"
#define KH_P11_PINMAX	256

struct kh_p11key;

int			 kh_p11_init(const char *);
int			 kh_p11_ready(void);
struct kh_p11key	*kh_p11_key_open(const char *, const char *,
			    EVP_PKEY **, char *, size_t);
int			 kh_p11_sign(struct kh_p11key *, uint32_t, uint32_t,
			    const uint8_t *, size_t, uint8_t *, size_t *);
void			 kh_p11_key_free(struct kh_p11key *);

#endif
