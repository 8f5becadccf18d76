/*
 * A key reference: what a worker is given instead of a private key.  It
 * is a PEM block with a private label whose body is
 *
 *	u8 version (1), u32 key id (big endian), SubjectPublicKeyInfo DER
 *
 * The parent builds it from the keyholder's IMSG_KH_KEY_OK answer; the
 * worker passes it to libtls as the key, where khprov's decoder reads it.
 */
#ifndef TODOD_KEYREF_H
#define TODOD_KEYREF_H

#include <stddef.h>
#include <stdint.h>

#define KEYREF_PEM_NAME		"TODOD KEYHOLDER KEY"
#define KEYREF_VERSION		1
#define KEYREF_MAX_SPKI		4096	/* RSA 8192 is about 1 KiB */

int	keyref_encode(uint32_t, const uint8_t *, size_t, char **, size_t *);
int	keyref_decode(const char *, size_t, uint32_t *, uint8_t **,
	    size_t *);
int	keyref_parse(const uint8_t *, size_t, uint32_t *, const uint8_t **,
	    size_t *);

#endif
