/*
 * The content check of todod-keyholder: a signature input is accepted
 * only if it is, byte for byte, what a TLS server signs in a handshake.
 *
 *  - TLS 1.3 (RFC 8446 4.4.3): 64 spaces, "TLS 1.3, server
 *    CertificateVerify", a zero byte, then the transcript hash.  That
 *    hash is the cipher suite's (SHA-256 or SHA-384), which need not be
 *    the signature's: ecdsa_secp256r1_sha256 under TLS_AES_256_GCM_SHA384
 *    signs a 48-byte transcript hash.  So its length is 32 or 48.
 *  - TLS 1.2 (RFC 5246 7.4.3, RFC 8422 5.4): client random, server
 *    random, then ServerECDHParams: curve_type named_curve (3), a group
 *    the configuration offers, and a public point of that group's exact
 *    length (for the NIST curves, uncompressed and on the curve); or
 *    ServerDHParams whose prime and generator are those libssl's
 *    automatic DH parameters use (RFC 3526, generator 2).
 *
 * The client and server randoms are 64 bytes the worker chooses; that is
 * inherent to TLS 1.2 and gives no signature a verifier of anything but
 * a ServerKeyExchange would accept.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "kh_tls.h"

#define KH_TLS13_CONTEXT	"TLS 1.3, server CertificateVerify"
#define KH_ECDHE_HDR		4	/* type, group, point length */
#define KH_DH_NPRIMES		3

/* The groups libssl may choose for ECDHE, with their point sizes. */
static struct kh_group {
	const char	*name;		/* as libtls names it */
	uint16_t	 id;		/* TLS NamedGroup */
	uint8_t		 pointlen;
	int		 nid;		/* NID_undef: any bytes */
	int		 allowed;
	EC_GROUP	*group;
} kh_groups[] = {
	{ "P-256", 23, 65, NID_X9_62_prime256v1, 0, NULL },
	{ "P-384", 24, 97, NID_secp384r1, 0, NULL },
	{ "P-521", 25, 133, NID_secp521r1, 0, NULL },
	{ "X25519", 29, 32, NID_undef, 0, NULL },
	{ "X448", 30, 56, NID_undef, 0, NULL },
};
#define KH_NGROUPS	(sizeof(kh_groups) / sizeof(kh_groups[0]))

/*
 * The primes of libssl's automatic DH parameters for the keys the
 * keyholder accepts: RSA 2048, 3072 and 4096 have 112, 128 and 152
 * security bits, for which libssl picks these.
 */
static struct kh_prime {
	uint8_t		*p;
	size_t		 len;
} kh_primes[KH_DH_NPRIMES];

static int
kh_tls_allow(const char *name)
{
	size_t	 i;

	for (i = 0; i < KH_NGROUPS; i++)
		if (strcasecmp(kh_groups[i].name, name) == 0) {
			kh_groups[i].allowed = 1;
			return 0;
		}
	return -1;
}

static int
kh_tls_prime(struct kh_prime *kp, BIGNUM *bn)
{
	int	 n;

	if (bn == NULL || (n = BN_num_bytes(bn)) <= 0 ||
	    (kp->p = malloc(n)) == NULL) {
		BN_free(bn);
		return -1;
	}
	kp->len = BN_bn2bin(bn, kp->p);
	BN_free(bn);
	return 0;
}

/*
 * groups is the configured list ("X25519,P-256,P-384"): only those are
 * accepted in a ServerKeyExchange.  Run once, before the sandbox.
 */
int
kh_tls_init(const char *groups)
{
	char	*list, *s, *tok;
	size_t	 i;
	int	 r = 0;

	if ((list = strdup(groups)) == NULL)
		return -1;
	for (s = list; (tok = strsep(&s, ",:")) != NULL;)
		if (*tok != '\0' && kh_tls_allow(tok) == -1)
			r = -1;
	free(list);
	for (i = 0; i < KH_NGROUPS; i++)
		if (kh_groups[i].nid != NID_undef && kh_groups[i].group ==
		    NULL && (kh_groups[i].group =
		    EC_GROUP_new_by_curve_name(kh_groups[i].nid)) == NULL)
			r = -1;
	if (kh_primes[0].p == NULL && (kh_tls_prime(&kh_primes[0],
	    BN_get_rfc3526_prime_2048(NULL)) == -1 ||
	    kh_tls_prime(&kh_primes[1],
	    BN_get_rfc3526_prime_3072(NULL)) == -1 ||
	    kh_tls_prime(&kh_primes[2],
	    BN_get_rfc3526_prime_4096(NULL)) == -1))
		r = -1;
	ERR_clear_error();
	return r;
}

static int
kh_tls13_cv(const uint8_t *in, size_t len)
{
	size_t	 i;

	if (len != KH_TLS13_PREFIX + 32 && len != KH_TLS13_PREFIX + 48)
		return 0;
	for (i = 0; i < 64; i++)
		if (in[i] != 0x20)
			return 0;
	/* The context string and its terminating zero byte. */
	return memcmp(in + 64, KH_TLS13_CONTEXT,
	    sizeof(KH_TLS13_CONTEXT)) == 0;
}

static int
kh_tls_point(const struct kh_group *g, const uint8_t *pt, size_t len)
{
	EC_POINT	*p;
	int		 ok;

	if (g->group == NULL)
		return 1;
	if (pt[0] != POINT_CONVERSION_UNCOMPRESSED ||
	    (p = EC_POINT_new(g->group)) == NULL)
		return 0;
	/* oct2point checks that the point is on the curve. */
	ok = EC_POINT_oct2point(g->group, p, pt, len, NULL) == 1;
	EC_POINT_free(p);
	ERR_clear_error();
	return ok;
}

/* ServerECDHParams after the randoms, exactly filling the input. */
static int
kh_tls12_ecdhe(const uint8_t *p, size_t len)
{
	uint16_t	 id;
	size_t		 i;

	if (len < KH_ECDHE_HDR || p[0] != 3)
		return 0;
	id = (uint16_t)p[1] << 8 | p[2];
	for (i = 0; i < KH_NGROUPS; i++)
		if (kh_groups[i].id == id)
			break;
	if (i == KH_NGROUPS || !kh_groups[i].allowed ||
	    p[3] != kh_groups[i].pointlen ||
	    len != KH_ECDHE_HDR + (size_t)kh_groups[i].pointlen)
		return 0;
	return kh_tls_point(&kh_groups[i], p + KH_ECDHE_HDR, p[3]);
}

/* One opaque<1..2^16-1> field; NULL if it does not fit. */
static const uint8_t *
kh_tls_vec16(const uint8_t **p, size_t *len, size_t *flen)
{
	const uint8_t	*f;

	if (*len < 2)
		return NULL;
	*flen = (size_t)(*p)[0] << 8 | (*p)[1];
	if (*flen == 0 || *len - 2 < *flen)
		return NULL;
	f = *p + 2;
	*p += 2 + *flen;
	*len -= 2 + *flen;
	return f;
}

/* ServerDHParams: a known prime, generator 2, 0 < Ys < p. */
static int
kh_tls12_dhe(const uint8_t *p, size_t len)
{
	const uint8_t	*dp, *dg, *ys;
	size_t		 plen, glen, ylen, i;

	if ((dp = kh_tls_vec16(&p, &len, &plen)) == NULL ||
	    (dg = kh_tls_vec16(&p, &len, &glen)) == NULL ||
	    (ys = kh_tls_vec16(&p, &len, &ylen)) == NULL || len != 0)
		return 0;
	if (glen != 1 || dg[0] != 2 || ylen > plen)
		return 0;
	for (i = 0; i < KH_DH_NPRIMES; i++)
		if (kh_primes[i].p != NULL && kh_primes[i].len == plen &&
		    memcmp(kh_primes[i].p, dp, plen) == 0)
			break;
	if (i == KH_DH_NPRIMES)
		return 0;
	/* libssl sends Ys padded to the prime's length. */
	return ylen == plen && memcmp(ys, dp, plen) < 0;
}

/* Which handshake input in is, or KH_TLS_NONE to refuse it. */
enum kh_tls_shape
kh_tls_check(const uint8_t *in, size_t len)
{
	if (kh_tls13_cv(in, len))
		return KH_TLS13_CV;
	if (len <= KH_TLS_RANDOMS)
		return KH_TLS_NONE;
	if (kh_tls12_ecdhe(in + KH_TLS_RANDOMS, len - KH_TLS_RANDOMS))
		return KH_TLS12_ECDHE;
	if (kh_tls12_dhe(in + KH_TLS_RANDOMS, len - KH_TLS_RANDOMS))
		return KH_TLS12_DHE;
	return KH_TLS_NONE;
}

const char *
kh_tls_shape_name(enum kh_tls_shape s)
{
	switch (s) {
	case KH_TLS13_CV:
		return "TLS 1.3 CertificateVerify";
	case KH_TLS12_ECDHE:
		return "TLS 1.2 ECDHE ServerKeyExchange";
	case KH_TLS12_DHE:
		return "TLS 1.2 DHE ServerKeyExchange";
	default:
		return "not a TLS handshake input";
	}
}
