/*
 * Unit tests for daemon/authz.c: identities from certificates generated
 * here with libcrypto, the decision tables of authz_check, the one-line
 * rule format.  The rule's IPC round trip is in test_cfgmsg.c.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authz.h"
#include "authzrule.h"
#include "tap.h"
#include "tlsmat.h"

static EVP_PKEY	*cakey, *leafkey;
static X509	*cacert;

/* A certificate signed by the test CA, with the given extra names. */
static X509 *
make_leaf(const char *const *cns, const char *const *ous, const char *san)
{
	X509		*x;
	X509_NAME	*name;
	X509_EXTENSION	*ext;
	X509V3_CTX	 ctx;
	static long	 serial = 100;

	x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
	    (const unsigned char *)"todod tests", -1, -1, 0);
	for (; ous != NULL && *ous != NULL; ous++)
		X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
		    (const unsigned char *)*ous, -1, -1, 0);
	for (; cns != NULL && *cns != NULL; cns++)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
		    (const unsigned char *)*cns, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(cacert));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, leafkey);
	if (san != NULL) {
		X509V3_set_ctx(&ctx, cacert, x, NULL, NULL, 0);
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name,
		    san);
		if (ext == NULL)
			abort();
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	return x;
}

static void
sign_leaf(X509 *x)
{
	if (X509_sign(x, cakey, EVP_sha256()) == 0)
		abort();
}

/* The chain as tls_peer_cert_chain_pem() gives it: leaf, then CA. */
static char *
chain_pem(X509 *leaf, size_t *len)
{
	BIO	*bio;
	char	*p, *s;
	long	 n;

	bio = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(bio, leaf);
	PEM_write_bio_X509(bio, cacert);
	n = BIO_get_mem_data(bio, &p);
	if ((s = malloc(n)) == NULL)
		abort();
	memcpy(s, p, n);
	*len = n;
	BIO_free(bio);
	return s;
}

static int
ident(struct authz_identity *id, X509 *leaf)
{
	char	 err[256], *pem;
	size_t	 len;
	X509	*x;
	int	 rv;

	/* through PEM, as a worker gets the peer chain from libtls */
	pem = chain_pem(leaf, &len);
	if ((x = tlsmat_pem_cert(pem, len)) == NULL)
		rv = -1;
	else
		rv = authz_identity_from_x509(id, x, err, sizeof(err));
	if (rv == -1)
		printf("# identity: %s\n", x ? err : "PEM does not parse");
	X509_free(x);
	free(pem);
	return rv;
}

/* The fingerprint as openssl(1) prints it, in the rule format. */
static int
openssl_fingerprint(X509 *x, char *out, size_t outlen)
{
	char	 tmpl[] = "/tmp/test_authz.XXXXXX", cmd[128], line[512];
	char	*p;
	FILE	*fp;
	size_t	 n = 0;
	int	 fd;

	if ((fd = mkstemp(tmpl)) == -1 || (fp = fdopen(fd, "w")) == NULL)
		return -1;
	PEM_write_X509(fp, x);
	fclose(fp);
	snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint "
	    "-sha256 -in %s 2>/dev/null", tmpl);
	fp = popen(cmd, "r");
	line[0] = '\0';
	if (fp == NULL || fgets(line, sizeof(line), fp) == NULL) {
		if (fp != NULL)
			pclose(fp);
		unlink(tmpl);
		return -1;
	}
	pclose(fp);
	unlink(tmpl);
	if ((p = strchr(line, '=')) == NULL)
		return -1;
	n = strlcpy(out, "SHA256:", outlen);
	for (p++; *p != '\0' && *p != '\n' && n + 1 < outlen; p++)
		if (*p != ':')
			out[n++] = tolower((unsigned char)*p);
	out[n] = '\0';
	return 0;
}

static void
test_identity(void)
{
	static const char *const cns[] = { "first", "mtls-client", NULL };
	static const char *const ous[] = { "ops", "dev", "Ops Team", NULL };
	static const uint8_t	 v4[4] = { 127, 0, 0, 2 };
	static const uint8_t	 v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 0x42 };
	struct authz_identity	 id;
	X509			*x;
	char			 fp[128];

	x = make_leaf(cns, ous, "DNS:svc.example.org,DNS:Other.Example.org,"
	    "URI:spiffe://example.org/ns/prod/sa/api,IP:127.0.0.2,"
	    "IP:2001:db8::42,email:A@Example.org");
	sign_leaf(x);
	TAP_OK(ident(&id, x) == 0, "identity from a PEM chain");
	TAP_OK(id.cn != NULL && strcmp(id.cn, "mtls-client") == 0,
	    "the last CN of several");
	TAP_OK(id.nou == 3 && strcmp(id.ou[0], "ops") == 0 &&
	    strcmp(id.ou[1], "dev") == 0 && strcmp(id.ou[2], "Ops Team") == 0,
	    "every OU in order");
	TAP_OK(id.ndns == 2 && strcmp(id.dns[0], "svc.example.org") == 0 &&
	    strcmp(id.dns[1], "Other.Example.org") == 0, "SAN dNSNames");
	TAP_OK(id.nuri == 1 &&
	    strcmp(id.uri[0], "spiffe://example.org/ns/prod/sa/api") == 0,
	    "SAN URI");
	TAP_OK(id.nip == 2 && id.iplen[0] == 4 &&
	    memcmp(id.ip[0], v4, 4) == 0 && id.iplen[1] == 16 &&
	    memcmp(id.ip[1], v6, 16) == 0, "SAN IPv4 and IPv6 bytes");
	TAP_OK(id.nemail == 1 && strcmp(id.email[0], "A@Example.org") == 0,
	    "SAN email");
	TAP_OK(id.fingerprint != NULL && strncmp(id.fingerprint, "SHA256:",
	    7) == 0 && strlen(id.fingerprint) == 71 &&
	    strspn(id.fingerprint + 7, "0123456789abcdef") == 64,
	    "fingerprint format");
	if (openssl_fingerprint(x, fp, sizeof(fp)) == 0)
		TAP_OK(id.fingerprint != NULL &&
		    strcmp(id.fingerprint, fp) == 0,
		    "fingerprint equals openssl x509 -fingerprint -sha256 (%s)",
		    fp);
	else
		TAP_OK(1, "# SKIP openssl(1) not available");
	authz_identity_clear(&id);
	TAP_OK(id.cn == NULL && id.fingerprint == NULL && id.nou == 0 &&
	    id.ndns == 0 && id.nip == 0, "identity cleared");
	X509_free(x);

	/* Not the PEM of a certificate. */
	TAP_OK(tlsmat_pem_cert("garbage", 7) == NULL, "garbage refused");
	TAP_OK(tlsmat_pem_cert(NULL, 0) == NULL, "empty chain refused");

	/* No SAN, no CN. */
	x = make_leaf(NULL, NULL, NULL);
	sign_leaf(x);
	TAP_OK(ident(&id, x) == 0 && id.cn == NULL && id.nou == 0 &&
	    id.ndns == 0 && id.fingerprint != NULL,
	    "certificate without CN or SAN");
	authz_identity_clear(&id);
	X509_free(x);
}

static void
test_identity_odd(void)
{
	static const char *const utf8cn[] = { "J\xc3\xbcrgen", NULL };
	struct authz_identity	 id;
	GENERAL_NAMES		*names;
	GENERAL_NAME		*gn;
	X509_NAME_ENTRY		*e;
	X509			*x;
	char			 san[2048], *p;
	int			 i;

	/* A CN with an embedded NUL never becomes a name. */
	x = make_leaf(NULL, NULL, NULL);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    V_ASN1_UTF8STRING, (const unsigned char *)"admin\0.evil", 11, -1,
	    0);
	names = GENERAL_NAMES_new();
	gn = GENERAL_NAME_new();
	gn->type = GEN_DNS;
	gn->d.dNSName = ASN1_IA5STRING_new();
	ASN1_STRING_set(gn->d.dNSName, "good.example\0.evil", 18);
	sk_GENERAL_NAME_push(names, gn);
	gn = GENERAL_NAME_new();
	gn->type = GEN_DNS;
	gn->d.dNSName = ASN1_IA5STRING_new();
	ASN1_STRING_set(gn->d.dNSName, "fine.example", 12);
	sk_GENERAL_NAME_push(names, gn);
	X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0,
	    X509V3_ADD_DEFAULT);
	GENERAL_NAMES_free(names);
	sign_leaf(x);
	TAP_OK(ident(&id, x) == 0 && id.cn == NULL,
	    "CN with embedded NUL skipped");
	TAP_OK(id.ndns == 1 && strcmp(id.dns[0], "fine.example") == 0,
	    "SAN name with embedded NUL skipped, others kept");
	authz_identity_clear(&id);
	X509_free(x);

	/* UTF-8 and BMPString CNs come out as UTF-8. */
	x = make_leaf(utf8cn, NULL, NULL);
	sign_leaf(x);
	TAP_OK(ident(&id, x) == 0 && id.cn != NULL &&
	    strcmp(id.cn, "J\xc3\xbcrgen") == 0, "UTF-8 CN");
	authz_identity_clear(&id);
	X509_free(x);
	x = make_leaf(NULL, NULL, NULL);
	e = X509_NAME_ENTRY_create_by_NID(NULL, NID_commonName,
	    V_ASN1_BMPSTRING, (const unsigned char *)"\0J\0\xfc", 4);
	X509_NAME_add_entry(X509_get_subject_name(x), e, -1, 0);
	X509_NAME_ENTRY_free(e);
	sign_leaf(x);
	TAP_OK(ident(&id, x) == 0 && id.cn != NULL &&
	    strcmp(id.cn, "J\xc3\xbc") == 0, "BMPString CN converted to UTF-8");
	authz_identity_clear(&id);
	X509_free(x);

	/* More names than AUTHZ_MAX_NAMES: the extras are ignored. */
	p = san;
	for (i = 0; i < 40; i++)
		p += snprintf(p, san + sizeof(san) - p, "%sDNS:h%d.example",
		    i ? "," : "", i);
	x = make_leaf(NULL, NULL, san);
	sign_leaf(x);
	TAP_OK(ident(&id, x) == 0 && id.ndns == AUTHZ_MAX_NAMES &&
	    strcmp(id.dns[31], "h31.example") == 0, "names bounded at %d",
	    AUTHZ_MAX_NAMES);
	authz_identity_clear(&id);
	X509_free(x);
}

static void
id_set(struct authz_identity *id, const char *cn, const char *ou,
    const char *dns, const char *uri, const char *email, const char *ip)
{
	memset(id, 0, sizeof(*id));
	id->cn = cn ? strdup(cn) : NULL;
	if (ou != NULL)
		id->ou[id->nou++] = strdup(ou);
	if (dns != NULL)
		id->dns[id->ndns++] = strdup(dns);
	if (uri != NULL)
		id->uri[id->nuri++] = strdup(uri);
	if (email != NULL)
		id->email[id->nemail++] = strdup(email);
	if (ip != NULL) {
		if (inet_pton(AF_INET, ip, id->ip[0]) == 1)
			id->iplen[0] = 4;
		else if (inet_pton(AF_INET6, ip, id->ip[0]) == 1)
			id->iplen[0] = 16;
		else
			abort();
		id->nip = 1;
	}
	id->fingerprint = strdup("SHA256:00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeeff");
}

static int
can(const struct authz_rules *rules, const struct authz_identity *id,
    uint32_t class, uint32_t method, const char *path)
{
	return authz_check(rules, id, class, method, path, NULL);
}

static void
test_no_rules(void)
{
	struct authz_rules	 rules = TAILQ_HEAD_INITIALIZER(rules);
	struct authz_identity	 id;
	const struct authz_rule	*g = (void *)1;

	id_set(&id, "anyone", NULL, NULL, NULL, NULL, NULL);
	TAP_OK(authz_check(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo",
	    &g) == 1 && g == NULL, "no rules: read allowed, no rule");
	TAP_OK(can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "no rules: write allowed");
	TAP_OK(!can(&rules, &id, AUTHZ_METRICS, AUTHZ_M_GET, "/metrics"),
	    "no rules: metrics denied");
	TAP_OK(!can(&rules, &id, 0, AUTHZ_M_GET, "/todo"),
	    "no rules: class 0 denied");
	TAP_OK(authz_classes(&rules, &id) == (AUTHZ_READ | AUTHZ_WRITE),
	    "no rules: classes read|write");
	TAP_OK(can(NULL, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "NULL rules behave as none");
	authz_identity_clear(&id);
}

static void
test_conditions(void)
{
	struct authz_rules	 rules = TAILQ_HEAD_INITIALIZER(rules);
	struct authz_identity	 id;

	rule(&rules, AUTHZ_READ, 0, NULL, MATCH_CN, "auditor", 0);
	id_set(&id, "auditor", NULL, NULL, NULL, NULL, NULL);
	TAP_OK(can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "cn match grants read");
	TAP_OK(!can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "read rule does not grant write");
	TAP_OK(!can(&rules, &id, AUTHZ_METRICS, AUTHZ_M_GET, "/metrics"),
	    "read rule does not grant metrics");
	authz_identity_clear(&id);
	id_set(&id, "Auditor", NULL, NULL, NULL, NULL, NULL);
	TAP_OK(!can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "cn is case-sensitive");
	authz_identity_clear(&id);
	id_set(&id, "auditor2", NULL, NULL, NULL, NULL, NULL);
	TAP_OK(!can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "cn is exact, not a prefix");
	authz_identity_clear(&id);
	id_set(&id, NULL, NULL, NULL, NULL, NULL, NULL);
	TAP_OK(!can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "identity without cn never matches");
	TAP_OK(authz_classes(&rules, &id) == 0, "no classes for a stranger");
	authz_identity_clear(&id);
	authz_rules_free(&rules);

	rule(&rules, AUTHZ_WRITE, 0, NULL, MATCH_OU, "ops", 0);
	id_set(&id, "x", "dev", NULL, NULL, NULL, NULL);
	id.ou[id.nou++] = strdup("ops");
	TAP_OK(can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_DELETE, "/todo/1"),
	    "ou: any of several OUs");
	authz_identity_clear(&id);
	id_set(&id, "x", "OPS", NULL, NULL, NULL, NULL);
	TAP_OK(!can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_DELETE, "/todo/1"),
	    "ou is case-sensitive");
	authz_identity_clear(&id);
	authz_rules_free(&rules);

	rule(&rules, AUTHZ_ALL, 0, NULL, MATCH_FINGERPRINT,
	    "SHA256:00112233445566778899AABBCCDDEEFF"
	    "00112233445566778899AABBCCDDEEFF", 0);
	id_set(&id, "x", NULL, NULL, NULL, NULL, NULL);
	TAP_OK(can(&rules, &id, AUTHZ_METRICS, AUTHZ_M_GET, "/metrics") &&
	    authz_classes(&rules, &id) == AUTHZ_ALL,
	    "fingerprint (upper case in the rule) grants all");
	free(id.fingerprint);
	id.fingerprint = strdup("SHA256:00112233445566778899aabbccddeeff"
	    "00112233445566778899aabbccddeef0");
	TAP_OK(!can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "other fingerprint denied");
	authz_identity_clear(&id);
	authz_rules_free(&rules);

	rule(&rules, AUTHZ_READ, 0, NULL, MATCH_SAN_DNS, "svc.example.org", 0);
	rule(&rules, AUTHZ_WRITE, 0, NULL, MATCH_SAN_EMAIL, "a@example.org",
	    0);
	id_set(&id, NULL, NULL, "SVC.Example.ORG", NULL, "A@EXAMPLE.org",
	    NULL);
	TAP_OK(can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "san dns is case-insensitive");
	TAP_OK(can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "san email is case-insensitive");
	authz_identity_clear(&id);
	id_set(&id, NULL, NULL, "svc.example.org.evil", NULL, "b@example.org",
	    NULL);
	TAP_OK(!can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo") &&
	    !can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "san dns and email are exact");
	authz_identity_clear(&id);
	authz_rules_free(&rules);

	rule(&rules, AUTHZ_READ, 0, NULL, MATCH_SAN_URI, "spiffe://x/a", 0);
	rule(&rules, AUTHZ_WRITE, 0, NULL, MATCH_SAN_URI, "spiffe://x/ns/*",
	    0);
	id_set(&id, NULL, NULL, NULL, "spiffe://x/a", NULL, NULL);
	TAP_OK(can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo") &&
	    !can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "san uri exact");
	authz_identity_clear(&id);
	id_set(&id, NULL, NULL, NULL, "spiffe://x/ab", NULL, NULL);
	TAP_OK(!can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "san uri without '*' is not a prefix");
	authz_identity_clear(&id);
	id_set(&id, NULL, NULL, NULL, "spiffe://x/ns/prod/sa", NULL, NULL);
	TAP_OK(can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "san uri prefix with '*'");
	authz_identity_clear(&id);
	id_set(&id, NULL, NULL, NULL, "spiffe://x/n", NULL, NULL);
	TAP_OK(!can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "san uri shorter than the prefix");
	authz_identity_clear(&id);
	id_set(&id, NULL, NULL, NULL, "SPIFFE://x/ns/prod", NULL, NULL);
	TAP_OK(!can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "san uri is case-sensitive");
	authz_identity_clear(&id);
	authz_rules_free(&rules);

	rule(&rules, AUTHZ_READ, 0, NULL, MATCH_SAN_IP, "127.0.0.2", 0);
	rule(&rules, AUTHZ_WRITE, 0, NULL, MATCH_SAN_IP, "2001:db8::1", 0);
	id_set(&id, NULL, NULL, NULL, NULL, NULL, "127.0.0.2");
	TAP_OK(can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo") &&
	    !can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "san ip v4");
	authz_identity_clear(&id);
	id_set(&id, NULL, NULL, NULL, NULL, NULL, "2001:0db8:0::0001");
	TAP_OK(can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo") &&
	    !can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "san ip v6 compared as bytes");
	authz_identity_clear(&id);
	id_set(&id, NULL, NULL, NULL, NULL, NULL, "::ffff:127.0.0.2");
	TAP_OK(!can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "v4-mapped v6 is not the v4 address");
	authz_identity_clear(&id);
	authz_rules_free(&rules);
}

static void
test_combined(void)
{
	struct authz_rules	 rules = TAILQ_HEAD_INITIALIZER(rules);
	struct authz_identity	 id;
	const struct authz_rule	*g, *r2, *r3;

	rule(&rules, AUTHZ_READ, 0, NULL, MATCH_SAN_DNS, "svc.example.org",
	    MATCH_OU, "ops", 0);
	id_set(&id, NULL, "ops", "svc.example.org", NULL, NULL, NULL);
	TAP_OK(can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "all conditions match");
	authz_identity_clear(&id);
	id_set(&id, NULL, "dev", "svc.example.org", NULL, NULL, NULL);
	TAP_OK(!can(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo"),
	    "one condition failing denies");
	authz_identity_clear(&id);
	authz_rules_free(&rules);

	rule(&rules, AUTHZ_WRITE, AUTHZ_M_POST, "/todo", MATCH_CN, "w", 0);
	r2 = rule(&rules, AUTHZ_WRITE, AUTHZ_M_PATCH | AUTHZ_M_DELETE,
	    "/todo/", MATCH_CN, "w", 0);
	r3 = rule(&rules, AUTHZ_READ | AUTHZ_METRICS, 0, NULL, MATCH_ANY,
	    NULL, 0);
	id_set(&id, "w", NULL, NULL, NULL, NULL, NULL);
	TAP_OK(can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, "/todo"),
	    "method and path limit: POST /todo");
	TAP_OK(authz_check(&rules, &id, AUTHZ_WRITE, AUTHZ_M_PATCH, "/todo/3",
	    &g) == 1 && g == r2, "PATCH /todo/3 granted by the second rule");
	TAP_OK(can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_DELETE, "/todo/3"),
	    "DELETE in a method list");
	TAP_OK(!can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_PATCH, "/todo"),
	    "PATCH /todo: path /todo/ is not a prefix of /todo");
	TAP_OK(!can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_DELETE, "/other"),
	    "path outside every prefix");
	TAP_OK(!can(&rules, &id, AUTHZ_WRITE, AUTHZ_M_POST, NULL),
	    "no path never matches a path limit");
	TAP_OK(authz_check(&rules, &id, AUTHZ_READ, AUTHZ_M_GET, "/todo",
	    &g) == 1 && g == r3, "any grants read");
	TAP_OK(authz_check(&rules, &id, AUTHZ_WRITE, AUTHZ_M_GET, "/x",
	    &g) == 0 && g == NULL, "denied: granting rule reset to NULL");
	TAP_OK(authz_classes(&rules, &id) == AUTHZ_ALL,
	    "classes ignore method and path limits");
	authz_identity_clear(&id);
	id_set(&id, "other", NULL, NULL, NULL, NULL, NULL);
	TAP_OK(authz_classes(&rules, &id) == (AUTHZ_READ | AUTHZ_METRICS),
	    "classes for another client: only what any grants");
	TAP_OK(!can(&rules, &id, AUTHZ_READ | AUTHZ_WRITE, AUTHZ_M_GET,
	    "/todo"), "a combined class needs one rule with both");
	authz_identity_clear(&id);
	authz_rules_free(&rules);
	TAP_OK(TAILQ_EMPTY(&rules), "rules freed and list empty");
}

static void
test_cond_set(void)
{
	struct authz_cond	 c;
	char			 err[256];

	memset(&c, 0, sizeof(c));
	TAP_OK(authz_cond_set(&c, MATCH_FINGERPRINT, "Sha256:"
	    "ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789",
	    err, sizeof(err)) == 0 && strcmp(c.value, "SHA256:abcdef0123456789"
	    "abcdef0123456789abcdef0123456789abcdef0123456789") == 0,
	    "fingerprint prefix any case, normalized");
	TAP_OK(authz_cond_set(&c, MATCH_FINGERPRINT, "SHA256:AB:CD", err,
	    sizeof(err)) == -1 && strstr(err, "colons") != NULL &&
	    c.type == MATCH_FINGERPRINT, "colons refused, old value kept");
	TAP_OK(authz_cond_set(&c, MATCH_FINGERPRINT, "SHA256:"
	    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef012345678",
	    err, sizeof(err)) == -1, "63 digits refused");
	TAP_OK(authz_cond_set(&c, MATCH_FINGERPRINT, "SHA256:"
	    "abcdef0123456789abcdef0123456789abcdef0123456789abcdef01234567890",
	    err, sizeof(err)) == -1, "65 digits refused");
	TAP_OK(authz_cond_set(&c, MATCH_SAN_IP, "::FFFF:10.0.0.1", err,
	    sizeof(err)) == 0 && c.iplen == 16 &&
	    strcmp(c.value, "::ffff:10.0.0.1") == 0, "san ip normalized");
	TAP_OK(authz_cond_set(&c, MATCH_SAN_IP, "10.0.0.256", err,
	    sizeof(err)) == -1, "bad IPv4 refused");
	TAP_OK(authz_cond_set(&c, MATCH_SAN_IP, "fe80::1%eth0", err,
	    sizeof(err)) == -1, "scoped IPv6 refused");
	TAP_OK(authz_cond_set(&c, MATCH_SAN_URI, "*", err, sizeof(err)) == 0,
	    "lone '*' uri accepted (any URI)");
	TAP_OK(authz_cond_set(&c, MATCH_SAN_URI, "a*b", err,
	    sizeof(err)) == -1, "'*' in the middle refused");
	TAP_OK(authz_cond_set(&c, MATCH_CN, "", err, sizeof(err)) == -1,
	    "empty cn refused");
	TAP_OK(authz_cond_set(&c, 99, "x", err, sizeof(err)) == -1,
	    "unknown type refused");
	TAP_OK(authz_cond_set(&c, MATCH_ANY, NULL, err, sizeof(err)) == 0 &&
	    c.type == MATCH_ANY && c.value == NULL, "any takes no value");
	free(c.value);
}

static void
test_format(void)
{
	struct authz_rule	*r;
	char			 buf[512];
	int			 n;

	r = rule(NULL, AUTHZ_READ | AUTHZ_WRITE, AUTHZ_M_POST, "/todo",
	    MATCH_CN, "x", MATCH_OU, "y", 0);
	n = authz_rule_format(r, buf, sizeof(buf));
	TAP_OK(strcmp(buf, "allow { read write } from cn \"x\" ou \"y\" "
	    "method POST path \"/todo\"") == 0 && n == (int)strlen(buf),
	    "format: %s", buf);
	TAP_OK(authz_rule_format(r, buf, 20) == -1 && strlen(buf) == 19,
	    "format into a short buffer truncates and fails");
	authz_rule_free(r);

	r = rule(NULL, AUTHZ_ALL, AUTHZ_M_PATCH | AUTHZ_M_DELETE, NULL,
	    MATCH_SAN_URI, "spiffe://a/\"q\"\\*", MATCH_SAN_IP, "::1",
	    MATCH_SAN_DNS, "d", MATCH_SAN_EMAIL, "e@x", MATCH_FINGERPRINT,
	    "SHA256:0000000000000000000000000000000000000000000000000000000000"
	    "00000A", 0);
	authz_rule_format(r, buf, sizeof(buf));
	TAP_OK(strcmp(buf, "allow all from san uri "
	    "\"spiffe://a/\\\"q\\\"\\\\*\" san ip \"::1\" san dns \"d\" "
	    "san email \"e@x\" fingerprint "
	    "\"SHA256:000000000000000000000000000000000000000000000000000000"
	    "000000000a\" method { PATCH DELETE }") == 0, "format: %s", buf);
	authz_rule_free(r);

	r = rule(NULL, AUTHZ_METRICS, AUTHZ_M_GET, NULL, MATCH_ANY, NULL, 0);
	authz_rule_format(r, buf, sizeof(buf));
	TAP_OK(strcmp(buf, "allow metrics from any method GET") == 0,
	    "format: %s", buf);
	authz_rule_free(r);
}

static void
setup_ca(void)
{
	X509_EXTENSION	*ext;
	X509V3_CTX	 ctx;

	cakey = EVP_EC_gen("P-256");
	leafkey = EVP_EC_gen("P-256");
	if (cakey == NULL || leafkey == NULL)
		abort();
	cacert = X509_new();
	X509_set_version(cacert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(cacert), 1);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(cacert), "CN",
	    MBSTRING_ASC, (const unsigned char *)"authz test CA", -1, -1, 0);
	X509_set_issuer_name(cacert, X509_get_subject_name(cacert));
	X509_gmtime_adj(X509_getm_notBefore(cacert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(cacert), 86400);
	X509_set_pubkey(cacert, cakey);
	X509V3_set_ctx(&ctx, cacert, cacert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	    "critical,CA:TRUE");
	X509_add_ext(cacert, ext, -1);
	X509_EXTENSION_free(ext);
	if (X509_sign(cacert, cakey, EVP_sha256()) == 0)
		abort();
}

int
main(void)
{
	setup_ca();
	test_identity();
	test_identity_odd();
	test_no_rules();
	test_conditions();
	test_combined();
	test_cond_set();
	test_format();
	X509_free(cacert);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(leafkey);
	return tap_done();
}
