/*
 * Test helper for the OCSP cache and in-flight table: a distinct cache
 * key for each small integer (a stand-in for the digest of a cert id).
 */
#ifndef TODOD_OCSPKEY_H
#define TODOD_OCSPKEY_H

#include <stdint.h>
#include <string.h>

#include "ocspcache.h"

#define NOW	1800000000

static inline uint8_t *
key(int i)
{
	static uint8_t	 k[OCSPCACHE_KEYLEN];

	memset(k, 0xa5, sizeof(k));
	k[0] = (uint8_t)(i >> 8);
	k[1] = (uint8_t)i;
	return k;
}

#endif
