/*
 * What the keyholder agrees to sign: the exact inputs of a TLS server's
 * handshake signatures, and nothing else.  A compromised worker can then
 * obtain only signatures that a TLS client would accept for a handshake
 * with this server, never one over a certificate, a document or a token.
 */
#ifndef TODOD_KH_TLS_H
#define TODOD_KH_TLS_H

#include <stddef.h>
#include <stdint.h>

/* What kh_tls_check() recognised. */
enum kh_tls_shape {
	KH_TLS_NONE = 0,	/* refused */
	KH_TLS13_CV,		/* TLS 1.3 server CertificateVerify */
	KH_TLS12_ECDHE,		/* TLS 1.2 ServerKeyExchange, ECDHE */
	KH_TLS12_DHE		/* TLS 1.2 ServerKeyExchange, DHE */
};

#define KH_TLS_RANDOMS		64	/* client and server random */
#define KH_TLS13_PREFIX		(64 + 33 + 1)

int			 kh_tls_init(const char *);
enum kh_tls_shape	 kh_tls_check(const uint8_t *, size_t);
const char		*kh_tls_shape_name(enum kh_tls_shape);

#endif
