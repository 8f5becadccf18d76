/*
 * PKCS#11 keys for todod-keyholder, through p11-kit: p11-kit loads the
 * module (a path, or the modules p11-kit's configuration lists) and
 * parses the RFC 7512 URI that names the key.  The private key never
 * leaves the token: the keyholder reads only the public half, and signs
 * with C_Sign over a digest it made itself:
 *
 *  - RSA PKCS#1 v1.5: CKM_RSA_PKCS over a DigestInfo built here;
 *  - RSA-PSS: CKM_RSA_PKCS_PSS, MGF1 with the same hash, salt = hash;
 *  - ECDSA: CKM_ECDSA, whose raw r || s is converted to DER.
 *
 * Each key has its own session.  When the token is removed (or its
 * session lost) a signature fails, and the next one opens a session and
 * logs in again with the PIN kept in the secure heap: a token that comes
 * back is used again without a reload.
 */
#include <poll.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/uri.h>

#include "kh_pkcs11.h"
#include "log.h"
#include "proto.h"

#define KH_P11_ATTRMAX	1024	/* attribute bytes (RSA 8192) */

struct kh_p11key {
	P11KitUri		*uri;
	char			*pin;		/* secure heap */
	CK_FUNCTION_LIST	*mod;
	CK_SLOT_ID		 slot;
	CK_SESSION_HANDLE	 session;	/* CK_INVALID_HANDLE: none */
	CK_OBJECT_HANDLE	 obj;
	CK_KEY_TYPE		 type;		/* CKK_RSA or CKK_EC */
	EVP_PKEY		*pub;		/* to know the key again */
	size_t			 ecsize;	/* bytes of r, of s */
	unsigned int		 gen;		/* kh_p11_gen of the session */
};

/* Loaded once, before the sandbox, by kh_p11_init(). */
static CK_FUNCTION_LIST	**kh_p11_mods;
static unsigned int	  kh_p11_gen;	/* C_Initialize calls so far */

/*
 * module is a path, or "p11-kit" for the modules p11-kit's configuration
 * enables.  Loading runs the module's own initialisation, which may open
 * its configuration and token files: it must happen before the sandbox.
 */
int
kh_p11_init(const char *module)
{
	CK_FUNCTION_LIST	*m;
	CK_RV			 rv;

	if (strcmp(module, "p11-kit") == 0) {
		kh_p11_mods = p11_kit_modules_load_and_initialize(0);
		return kh_p11_mods != NULL && kh_p11_mods[0] != NULL ? 0 : -1;
	}
	if ((kh_p11_mods = calloc(2, sizeof(*kh_p11_mods))) == NULL ||
	    (m = p11_kit_module_load(module, P11_KIT_MODULE_CRITICAL)) == NULL)
		return -1;
	if ((rv = p11_kit_module_initialize(m)) != CKR_OK) {
		log_warnx("%s: C_Initialize: 0x%lx", module, (unsigned long)rv);
		p11_kit_module_release(m);
		return -1;
	}
	kh_p11_mods[0] = m;
	return 0;
}

int
kh_p11_ready(void)
{
	return kh_p11_mods != NULL;
}

/* The first slot of a loaded module whose token the URI names. */
static int
kh_p11_find_token(struct kh_p11key *k)
{
	CK_SLOT_ID	 slots[64];
	CK_TOKEN_INFO	 ti;
	CK_INFO		 mi;
	CK_ULONG	 n, i;
	size_t		 m;

	for (m = 0; kh_p11_mods != NULL && kh_p11_mods[m] != NULL; m++) {
		k->mod = kh_p11_mods[m];
		if (k->mod->C_GetInfo(&mi) != CKR_OK ||
		    !p11_kit_uri_match_module_info(k->uri, &mi))
			continue;
		n = sizeof(slots) / sizeof(slots[0]);
		if (k->mod->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
			continue;
		for (i = 0; i < n; i++)
			if (k->mod->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
			    p11_kit_uri_match_token_info(k->uri, &ti)) {
				k->slot = slots[i];
				return 0;
			}
	}
	return -1;
}

/* Exactly one object of class cls matching the URI (and id if given). */
static int
kh_p11_find(struct kh_p11key *k, CK_OBJECT_CLASS cls, CK_ATTRIBUTE *id,
    CK_OBJECT_HANDLE *obj)
{
	CK_ATTRIBUTE	 tmpl[16], *a;
	CK_OBJECT_HANDLE found[2];
	CK_ULONG	 n, na, i, nfound = 0;
	CK_RV		 rv;

	a = p11_kit_uri_get_attributes(k->uri, &na);
	for (i = n = 0; i < na && n < 14; i++)
		if (a[i].type != CKA_CLASS && (id == NULL ||
		    a[i].type != CKA_ID))
			tmpl[n++] = a[i];
	tmpl[n].type = CKA_CLASS;
	tmpl[n].pValue = &cls;
	tmpl[n++].ulValueLen = sizeof(cls);
	if (id != NULL)
		tmpl[n++] = *id;
	if ((rv = k->mod->C_FindObjectsInit(k->session, tmpl, n)) != CKR_OK)
		return -1;
	rv = k->mod->C_FindObjects(k->session, found, 2, &nfound);
	k->mod->C_FindObjectsFinal(k->session);
	if (rv != CKR_OK || nfound != 1)
		return -1;
	*obj = found[0];
	return 0;
}

/* One attribute into buf (KH_P11_ATTRMAX bytes); its length, or -1. */
static long
kh_p11_attr(struct kh_p11key *k, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE t,
    uint8_t *buf)
{
	CK_ATTRIBUTE	 a = { t, buf, KH_P11_ATTRMAX };

	if (k->mod->C_GetAttributeValue(k->session, obj, &a, 1) != CKR_OK ||
	    a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return -1;
	return (long)a.ulValueLen;
}

static EVP_PKEY *
kh_p11_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	EVP_PKEY_CTX	*ctx;
	OSSL_PARAM	*params;
	EVP_PKEY	*pkey = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) != NULL) {
		if (EVP_PKEY_fromdata_init(ctx) != 1 || EVP_PKEY_fromdata(ctx,
		    &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
			pkey = NULL;
		EVP_PKEY_CTX_free(ctx);
	}
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

static EVP_PKEY *
kh_p11_rsa_pub(struct kh_p11key *k)
{
	OSSL_PARAM_BLD	*bld;
	uint8_t		 nb[KH_P11_ATTRMAX], eb[KH_P11_ATTRMAX];
	BIGNUM		*n = NULL, *e = NULL;
	EVP_PKEY	*pkey = NULL;
	long		 nl, el;

	if ((nl = kh_p11_attr(k, k->obj, CKA_MODULUS, nb)) <= 0 ||
	    (el = kh_p11_attr(k, k->obj, CKA_PUBLIC_EXPONENT, eb)) <= 0)
		return NULL;
	n = BN_bin2bn(nb, nl, NULL);
	e = BN_bin2bn(eb, el, NULL);
	if (n != NULL && e != NULL && (bld = OSSL_PARAM_BLD_new()) != NULL) {
		if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
		    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e))
			pkey = kh_p11_fromdata("RSA", bld);
		else
			OSSL_PARAM_BLD_free(bld);
	}
	BN_free(n);
	BN_free(e);
	return pkey;
}

/*
 * An EC private key object carries its curve but not its point: that is
 * on the public key object with the same CKA_ID.
 */
static EVP_PKEY *
kh_p11_ec_pub(struct kh_p11key *k)
{
	OSSL_PARAM_BLD		*bld;
	ASN1_OBJECT		*oid = NULL;
	ASN1_OCTET_STRING	*pt = NULL;
	CK_OBJECT_HANDLE	 pubobj;
	CK_ATTRIBUTE		 id;
	uint8_t			 idb[KH_P11_ATTRMAX], par[KH_P11_ATTRMAX];
	uint8_t			 ptb[KH_P11_ATTRMAX];
	const unsigned char	*p;
	EVP_PKEY		*pkey = NULL;
	long			 idl, parl, ptl;
	int			 nid;

	if ((idl = kh_p11_attr(k, k->obj, CKA_ID, idb)) < 0 ||
	    (parl = kh_p11_attr(k, k->obj, CKA_EC_PARAMS, par)) <= 0)
		return NULL;
	id.type = CKA_ID;
	id.pValue = idb;
	id.ulValueLen = idl;
	if (kh_p11_find(k, CKO_PUBLIC_KEY, &id, &pubobj) == -1 ||
	    (ptl = kh_p11_attr(k, pubobj, CKA_EC_POINT, ptb)) <= 0)
		return NULL;
	p = par;
	if (d2i_ASN1_OBJECT(&oid, &p, parl) == NULL ||
	    (nid = OBJ_obj2nid(oid)) == NID_undef)
		goto done;
	/* CKA_EC_POINT is DER (an OCTET STRING) in every module we know. */
	p = ptb;
	if ((pt = d2i_ASN1_OCTET_STRING(NULL, &p, ptl)) == NULL ||
	    (bld = OSSL_PARAM_BLD_new()) == NULL)
		goto done;
	if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    OBJ_nid2sn(nid), 0) && OSSL_PARAM_BLD_push_octet_string(bld,
	    OSSL_PKEY_PARAM_PUB_KEY, ASN1_STRING_get0_data(pt),
	    ASN1_STRING_length(pt)))
		pkey = kh_p11_fromdata("EC", bld);
	else
		OSSL_PARAM_BLD_free(bld);
	if (pkey != NULL)
		k->ecsize = (EVP_PKEY_get_bits(pkey) + 7) / 8;
 done:
	ASN1_OBJECT_free(oid);
	ASN1_OCTET_STRING_free(pt);
	return pkey;
}

/*
 * A module may learn of a returned token only when initialised again
 * (SoftHSM scans its token directory in C_Initialize): at most once a
 * second, as every handshake would otherwise ask.  Every key's session
 * is lost by it; each reconnects at its next signature.
 */
static void
kh_p11_reinit(int force)
{
	static time_t	 last;
	time_t		 now = time(NULL);
	size_t		 m;

	if ((now == last && !force) || kh_p11_mods == NULL)
		return;
	last = now;
	kh_p11_gen++;
	for (m = 0; kh_p11_mods[m] != NULL; m++) {
		p11_kit_module_finalize(kh_p11_mods[m]);
		if (p11_kit_module_initialize(kh_p11_mods[m]) != CKR_OK)
			log_warnx("PKCS#11 module: C_Initialize failed");
	}
}

static void
kh_p11_close(struct kh_p11key *k)
{
	/* A handle from before a new C_Initialize may name another's. */
	if (k->session != CK_INVALID_HANDLE && k->gen == kh_p11_gen)
		k->mod->C_CloseSession(k->session);
	k->session = CK_INVALID_HANDLE;
}

/*
 * Find the token, open a session, log in and find the key; its public
 * half goes to *pub.  Returns a static reason on failure.
 */
static const char *
kh_p11_connect(struct kh_p11key *k, EVP_PKEY **pub)
{
	CK_ATTRIBUTE	 a;
	CK_RV		 rv;

	kh_p11_close(k);
	if (kh_p11_find_token(k) == -1) {
		kh_p11_reinit(0);
		if (kh_p11_find_token(k) == -1)
			return "no token matches the URI";
	}
	if (k->mod->C_OpenSession(k->slot, CKF_SERIAL_SESSION, NULL, NULL,
	    &k->session) != CKR_OK) {
		k->session = CK_INVALID_HANDLE;
		return "cannot open a session with the token";
	}
	k->gen = kh_p11_gen;
	rv = k->mod->C_Login(k->session, CKU_USER, (CK_UTF8CHAR *)k->pin,
	    strlen(k->pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		return rv == CKR_PIN_INCORRECT ? "wrong PIN" : "login failed";
	if (kh_p11_find(k, CKO_PRIVATE_KEY, NULL, &k->obj) == -1)
		return "the token holds no single private key the URI names";
	a.type = CKA_KEY_TYPE;
	a.pValue = &k->type;
	a.ulValueLen = sizeof(k->type);
	if (k->mod->C_GetAttributeValue(k->session, k->obj, &a, 1) != CKR_OK)
		return "cannot read the key type";
	if (k->type == CKK_RSA)
		*pub = kh_p11_rsa_pub(k);
	else if (k->type == CKK_EC)
		*pub = kh_p11_ec_pub(k);
	else
		return "unsupported key type (RSA or EC)";
	ERR_clear_error();
	return *pub == NULL ? "cannot read the public key" : NULL;
}

/*
 * At load, a token missing may be one that another keyholder is
 * rewriting (SoftHSM updates its token file at login): a few tries,
 * 100 ms apart, each with the module initialised again.
 */
static const char *
kh_p11_connect_retry(struct kh_p11key *k)
{
	const char	*why;
	int		 i;

	for (i = 0; (why = kh_p11_connect(k, &k->pub)) != NULL && i < 5;
	    i++) {
		if (strcmp(why, "no token matches the URI") != 0)
			break;
		poll(NULL, 0, 100);
		kh_p11_reinit(1);
	}
	return why;
}

void
kh_p11_key_free(struct kh_p11key *k)
{
	if (k == NULL)
		return;
	kh_p11_close(k);
	if (k->pin != NULL)
		OPENSSL_secure_clear_free(k->pin, KH_P11_PINMAX + 1);
	p11_kit_uri_free(k->uri);
	EVP_PKEY_free(k->pub);
	free(k);
}

/* The key that uri names, logged in with pin; err says why not. */
struct kh_p11key *
kh_p11_key_open(const char *uristr, const char *pin, EVP_PKEY **pub,
    char *err, size_t errlen)
{
	struct kh_p11key	*k;
	const char		*why = "out of memory";
	int			 r;

	*pub = NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		goto fail;
	k->session = CK_INVALID_HANDLE;
	if ((k->uri = p11_kit_uri_new()) == NULL ||
	    (k->pin = OPENSSL_secure_zalloc(KH_P11_PINMAX + 1)) == NULL)
		goto fail;
	strlcpy(k->pin, pin, KH_P11_PINMAX + 1);
	if ((r = p11_kit_uri_parse(uristr, P11_KIT_URI_FOR_OBJECT_ON_TOKEN_AND_MODULE,
	    k->uri)) != P11_KIT_URI_OK) {
		why = p11_kit_uri_message(r);
		goto fail;
	}
	if (!kh_p11_ready())
		why = "no PKCS#11 module loaded";
	else if ((why = kh_p11_connect_retry(k)) == NULL) {
		*pub = k->pub;
		EVP_PKEY_up_ref(k->pub);
		return k;
	}
 fail:
	snprintf(err, errlen, "%s", why);
	kh_p11_key_free(k);
	return NULL;
}

/* The DigestInfo PKCS#1 v1.5 signs: DER, into out (room for 128). */
static int
kh_p11_digestinfo(uint32_t md, const uint8_t *dgst, size_t dlen,
    uint8_t *out, size_t *outlen)
{
	static const int	 nids[] = { NID_undef, NID_sha1, NID_sha224,
	    NID_sha256, NID_sha384, NID_sha512 };
	X509_SIG		*sig;
	X509_ALGOR		*alg;
	ASN1_OCTET_STRING	*os;
	unsigned char		*p = out;
	int			 n = -1;

	if (md >= sizeof(nids) / sizeof(nids[0]) || md == SIGN_MD_NONE ||
	    (sig = X509_SIG_new()) == NULL)
		return -1;
	X509_SIG_getm(sig, &alg, &os);
	if (X509_ALGOR_set0(alg, OBJ_nid2obj(nids[md]), V_ASN1_NULL,
	    NULL) == 1 && ASN1_OCTET_STRING_set(os, dgst, dlen) == 1 &&
	    i2d_X509_SIG(sig, NULL) <= 128)
		n = i2d_X509_SIG(sig, &p);
	X509_SIG_free(sig);
	if (n <= 0)
		return -1;
	*outlen = n;
	return 0;
}

/* Raw r || s (2 * ecsize bytes) as a DER ECDSA-Sig-Value, in place. */
static int
kh_p11_ecdsa_der(struct kh_p11key *k, uint8_t *sig, size_t *siglen,
    size_t room)
{
	ECDSA_SIG	*es;
	BIGNUM		*r, *s;
	unsigned char	*p = sig;
	int		 n = -1;

	if (*siglen != 2 * k->ecsize || (es = ECDSA_SIG_new()) == NULL)
		return -1;
	r = BN_bin2bn(sig, k->ecsize, NULL);
	s = BN_bin2bn(sig + k->ecsize, k->ecsize, NULL);
	if (r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL;
		if (i2d_ECDSA_SIG(es, NULL) <= (int)room)
			n = i2d_ECDSA_SIG(es, &p);
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	if (n <= 0)
		return -1;
	*siglen = n;
	return 0;
}

static CK_RV
kh_p11_c_sign(struct kh_p11key *k, CK_MECHANISM *mech, const uint8_t *in,
    size_t inlen, uint8_t *sig, size_t *siglen)
{
	CK_ULONG	 n = *siglen;
	CK_RV		 rv;

	if ((rv = k->mod->C_SignInit(k->session, mech, k->obj)) != CKR_OK)
		return rv;
	rv = k->mod->C_Sign(k->session, (CK_BYTE *)in, inlen, sig, &n);
	*siglen = n;
	return rv;
}

/* One signature attempt with the current session. */
static CK_RV
kh_p11_try(struct kh_p11key *k, uint32_t alg, uint32_t md,
    const uint8_t *dgst, size_t dlen, uint8_t *sig, size_t *siglen)
{
	static const CK_MECHANISM_TYPE hashes[] = { 0, CKM_SHA_1, CKM_SHA224,
	    CKM_SHA256, CKM_SHA384, CKM_SHA512 };
	static const CK_RSA_PKCS_MGF_TYPE mgfs[] = { 0, CKG_MGF1_SHA1,
	    CKG_MGF1_SHA224, CKG_MGF1_SHA256, CKG_MGF1_SHA384,
	    CKG_MGF1_SHA512 };
	CK_RSA_PKCS_PSS_PARAMS	 pss;
	CK_MECHANISM		 mech = { CKM_ECDSA, NULL, 0 };
	uint8_t			 di[128];
	size_t			 dilen, room = *siglen;
	CK_RV			 rv;

	if (alg == SIGN_ECDSA) {
		if (k->type != CKK_EC ||
		    (rv = kh_p11_c_sign(k, &mech, dgst, dlen, sig,
		    siglen)) != CKR_OK)
			return k->type != CKK_EC ? CKR_KEY_TYPE_INCONSISTENT : rv;
		return kh_p11_ecdsa_der(k, sig, siglen, room) == 0 ? CKR_OK :
		    CKR_FUNCTION_FAILED;
	}
	if (k->type != CKK_RSA || md == SIGN_MD_NONE || md > SIGN_MD_SHA512)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (alg == SIGN_RSA_PKCS1) {
		if (kh_p11_digestinfo(md, dgst, dlen, di, &dilen) == -1)
			return CKR_FUNCTION_FAILED;
		mech.mechanism = CKM_RSA_PKCS;
		return kh_p11_c_sign(k, &mech, di, dilen, sig, siglen);
	}
	pss.hashAlg = hashes[md];
	pss.mgf = mgfs[md];
	pss.sLen = dlen;
	mech.mechanism = CKM_RSA_PKCS_PSS;
	mech.pParameter = &pss;
	mech.ulParameterLen = sizeof(pss);
	return kh_p11_c_sign(k, &mech, dgst, dlen, sig, siglen);
}

/* Errors after which a new session (and login) may succeed. */
static int
kh_p11_lost(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	    rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT ||
	    rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_OBJECT_HANDLE_INVALID ||
	    rv == CKR_KEY_HANDLE_INVALID || rv == CKR_DEVICE_ERROR ||
	    rv == CKR_TOKEN_NOT_RECOGNIZED || rv == CKR_GENERAL_ERROR;
}

/* Reconnect, and only to the same key: a token swapped under us is not. */
static int
kh_p11_reconnect(struct kh_p11key *k)
{
	EVP_PKEY	*pub = NULL;
	const char	*why;
	int		 same;

	if ((why = kh_p11_connect(k, &pub)) != NULL) {
		log_warnx("PKCS#11 key: %s", why);
		kh_p11_close(k);
		EVP_PKEY_free(pub);
		return -1;
	}
	same = EVP_PKEY_eq(pub, k->pub) == 1;
	EVP_PKEY_free(pub);
	if (!same) {
		log_warnx("PKCS#11 key: the token now holds another key");
		kh_p11_close(k);
		return -1;
	}
	log_info("PKCS#11 key: token session restored");
	return 0;
}

/*
 * Sign the digest dgst (of md) with alg into sig (*siglen: room, then
 * length).  A lost session is reopened once before giving up.
 */
int
kh_p11_sign(struct kh_p11key *k, uint32_t alg, uint32_t md,
    const uint8_t *dgst, size_t dlen, uint8_t *sig, size_t *siglen)
{
	size_t	 room = *siglen;
	CK_RV	 rv = CKR_SESSION_HANDLE_INVALID;

	if (k->session != CK_INVALID_HANDLE)
		rv = kh_p11_try(k, alg, md, dgst, dlen, sig, siglen);
	if (rv != CKR_OK && kh_p11_lost(rv) && kh_p11_reconnect(k) == 0) {
		*siglen = room;
		rv = kh_p11_try(k, alg, md, dgst, dlen, sig, siglen);
	}
	if (rv != CKR_OK)
		log_warnx("PKCS#11 signature: 0x%lx", (unsigned long)rv);
	ERR_clear_error();
	return rv == CKR_OK ? 0 : -1;
}
