/*
 * Authorization: the `allow` rules of todod.conf, the identity a verified
 * client certificate proves, and the decision for one request.
 *
 * The identity is extracted once per connection from the peer chain PEM
 * that libtls hands out; the rules are matched on every request, so a
 * reload applies to connections that were open before it.
 */
#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "authz.h"

#define AUTHZ_FP_PREFIX		"SHA256:"
#define AUTHZ_FP_HEXLEN		64
#define AUTHZ_MAX_VALUE		4096	/* one condition's text */

struct authz_rule *
authz_rule_new(void)
{
	return calloc(1, sizeof(struct authz_rule));
}

void
authz_rule_free(struct authz_rule *rule)
{
	int	 i;

	if (rule == NULL)
		return;
	for (i = 0; i < AUTHZ_MAX_CONDS; i++)
		free(rule->conds[i].value);
	free(rule->path);
	free(rule);
}

void
authz_rules_free(struct authz_rules *rules)
{
	struct authz_rule	*rule;

	if (rules == NULL)
		return;
	while ((rule = TAILQ_FIRST(rules)) != NULL) {
		TAILQ_REMOVE(rules, rule, entry);
		authz_rule_free(rule);
	}
}

/* "SHA256:" (any case) and 64 hex digits, to "SHA256:" + lower case. */
static char *
authz_fp_normalize(const char *s, char *err, size_t errlen)
{
	size_t	 plen = sizeof(AUTHZ_FP_PREFIX) - 1, i;
	char	*fp;

	if (strncasecmp(s, AUTHZ_FP_PREFIX, plen) != 0) {
		snprintf(err, errlen, "fingerprint \"%s\": must start with "
		    "SHA256:", s);
		return NULL;
	}
	s += plen;
	if (strchr(s, ':') != NULL) {
		snprintf(err, errlen, "fingerprint \"SHA256:%s\": write the "
		    "64 hex digits without colons", s);
		return NULL;
	}
	if (strlen(s) != AUTHZ_FP_HEXLEN ||
	    strspn(s, "0123456789abcdefABCDEF") != AUTHZ_FP_HEXLEN) {
		snprintf(err, errlen, "fingerprint \"SHA256:%s\": expected "
		    "64 hex digits", s);
		return NULL;
	}
	if ((fp = malloc(plen + AUTHZ_FP_HEXLEN + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(fp, AUTHZ_FP_PREFIX, plen);
	for (i = 0; i <= AUTHZ_FP_HEXLEN; i++)
		fp[plen + i] = tolower((unsigned char)s[i]);
	return fp;
}

static char *
authz_ip_parse(struct authz_cond *cond, const char *s, char *err,
    size_t errlen)
{
	char	 text[INET6_ADDRSTRLEN], *v;
	uint8_t	 ip[16];
	size_t	 iplen;
	int	 af;

	if (inet_pton(AF_INET, s, ip) == 1) {
		af = AF_INET;
		iplen = 4;
	} else if (inet_pton(AF_INET6, s, ip) == 1) {
		af = AF_INET6;
		iplen = 16;
	} else {
		snprintf(err, errlen, "san ip \"%s\": not an IPv4 or IPv6 "
		    "address", s);
		return NULL;
	}
	if (inet_ntop(af, ip, text, sizeof(text)) == NULL ||
	    (v = strdup(text)) == NULL) {
		snprintf(err, errlen, "san ip \"%s\": %s", s, strerror(errno));
		return NULL;
	}
	memset(cond->ip, 0, sizeof(cond->ip));
	memcpy(cond->ip, ip, iplen);
	cond->iplen = iplen;
	return v;
}

static const char *
authz_match_name(enum authz_match type)
{
	switch (type) {
	case MATCH_ANY:
		return "any";
	case MATCH_CN:
		return "cn";
	case MATCH_OU:
		return "ou";
	case MATCH_FINGERPRINT:
		return "fingerprint";
	case MATCH_SAN_DNS:
		return "san dns";
	case MATCH_SAN_URI:
		return "san uri";
	case MATCH_SAN_IP:
		return "san ip";
	case MATCH_SAN_EMAIL:
		return "san email";
	}
	return NULL;
}

/*
 * Check and store one condition.  cond must be zeroed or hold an earlier
 * condition, whose value is replaced.  On error err says why.
 */
int
authz_cond_set(struct authz_cond *cond, enum authz_match type,
    const char *value, char *err, size_t errlen)
{
	const char	*name, *star;
	char		*v = NULL;

	if ((name = authz_match_name(type)) == NULL) {
		snprintf(err, errlen, "unknown condition type %d", (int)type);
		return -1;
	}
	if (type == MATCH_ANY) {
		free(cond->value);
		memset(cond, 0, sizeof(*cond));
		cond->type = MATCH_ANY;
		return 0;
	}
	if (value == NULL || *value == '\0') {
		snprintf(err, errlen, "%s: empty value", name);
		return -1;
	}
	if (strlen(value) > AUTHZ_MAX_VALUE) {
		snprintf(err, errlen, "%s: value too long", name);
		return -1;
	}
	switch (type) {
	case MATCH_FINGERPRINT:
		v = authz_fp_normalize(value, err, errlen);
		break;
	case MATCH_SAN_IP:
		v = authz_ip_parse(cond, value, err, errlen);
		break;
	case MATCH_SAN_URI:
		star = strchr(value, '*');
		if (star != NULL && star[1] != '\0') {
			snprintf(err, errlen, "san uri \"%s\": '*' is only "
			    "allowed at the end", value);
			return -1;
		}
		/* FALLTHROUGH */
	default:
		if ((v = strdup(value)) == NULL)
			snprintf(err, errlen, "out of memory");
		break;
	}
	if (v == NULL)
		return -1;
	if (type != MATCH_SAN_IP) {
		memset(cond->ip, 0, sizeof(cond->ip));
		cond->iplen = 0;
	}
	free(cond->value);
	cond->value = v;
	cond->type = type;
	return 0;
}

/*
 * An X.509 string as a C string, or NULL when it cannot be one (embedded
 * NUL: such a name must never match a rule).
 */
static char *
authz_asn1_str(const unsigned char *data, int len)
{
	char	*s;

	if (data == NULL || len < 0 || memchr(data, '\0', len) != NULL)
		return NULL;
	if ((s = malloc((size_t)len + 1)) == NULL)
		return NULL;
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

static char *
authz_name_entry(X509_NAME *name, int idx)
{
	X509_NAME_ENTRY	*e;
	unsigned char	*utf8 = NULL;
	char		*s;
	int		 len;

	if ((e = X509_NAME_get_entry(name, idx)) == NULL)
		return NULL;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
	if (len < 0)
		return NULL;
	s = authz_asn1_str(utf8, len);
	OPENSSL_free(utf8);
	return s;
}

static void
authz_id_subject(struct authz_identity *id, X509 *leaf)
{
	X509_NAME	*name;
	char		*s;
	int		 idx, last = -1;

	if ((name = X509_get_subject_name(leaf)) == NULL)
		return;
	idx = -1;
	while ((idx = X509_NAME_get_index_by_NID(name, NID_commonName,
	    idx)) >= 0)
		last = idx;
	if (last >= 0)
		id->cn = authz_name_entry(name, last);
	idx = -1;
	while ((idx = X509_NAME_get_index_by_NID(name,
	    NID_organizationalUnitName, idx)) >= 0) {
		if (id->nou >= AUTHZ_MAX_NAMES)
			break;
		if ((s = authz_name_entry(name, idx)) != NULL)
			id->ou[id->nou++] = s;
	}
}

static void
authz_id_add(char **list, int *n, const ASN1_STRING *as)
{
	char	*s;

	if (*n >= AUTHZ_MAX_NAMES)
		return;
	s = authz_asn1_str(ASN1_STRING_get0_data(as), ASN1_STRING_length(as));
	if (s != NULL)
		list[(*n)++] = s;
}

static void
authz_id_san(struct authz_identity *id, X509 *leaf)
{
	GENERAL_NAMES		*names;
	const GENERAL_NAME	*gn;
	const ASN1_OCTET_STRING	*ip;
	int			 i, n, len;

	names = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	if (names == NULL)
		return;
	n = sk_GENERAL_NAME_num(names);
	for (i = 0; i < n; i++) {
		gn = sk_GENERAL_NAME_value(names, i);
		switch (gn->type) {
		case GEN_DNS:
			authz_id_add(id->dns, &id->ndns, gn->d.dNSName);
			break;
		case GEN_URI:
			authz_id_add(id->uri, &id->nuri,
			    gn->d.uniformResourceIdentifier);
			break;
		case GEN_EMAIL:
			authz_id_add(id->email, &id->nemail, gn->d.rfc822Name);
			break;
		case GEN_IPADD:
			ip = gn->d.iPAddress;
			len = ASN1_STRING_length(ip);
			if ((len != 4 && len != 16) ||
			    id->nip >= AUTHZ_MAX_NAMES)
				break;
			memcpy(id->ip[id->nip], ASN1_STRING_get0_data(ip),
			    len);
			id->iplen[id->nip++] = len;
			break;
		default:
			break;
		}
	}
	GENERAL_NAMES_free(names);
}

static char *
authz_fingerprint(X509 *leaf)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 md[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int		 mdlen = 0, i;
	char			*fp, *p;
	int			 len;

	if ((len = i2d_X509(leaf, &der)) <= 0)
		return NULL;
	if (EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32) {
		OPENSSL_free(der);
		return NULL;
	}
	OPENSSL_free(der);
	if ((fp = malloc(sizeof(AUTHZ_FP_PREFIX) + 2 * mdlen)) == NULL)
		return NULL;
	p = fp + strlcpy(fp, AUTHZ_FP_PREFIX, sizeof(AUTHZ_FP_PREFIX));
	for (i = 0; i < mdlen; i++) {
		*p++ = hex[md[i] >> 4];
		*p++ = hex[md[i] & 0xf];
	}
	*p = '\0';
	return fp;
}

/* Fill id from a client's leaf certificate. */
int
authz_identity_from_x509(struct authz_identity *id, X509 *leaf, char *err,
    size_t errlen)
{
	memset(id, 0, sizeof(*id));
	authz_id_subject(id, leaf);
	authz_id_san(id, leaf);
	id->fingerprint = authz_fingerprint(leaf);
	if (id->fingerprint == NULL) {
		authz_identity_clear(id);
		snprintf(err, errlen, "cannot compute certificate fingerprint");
		return -1;
	}
	return 0;
}

void
authz_identity_clear(struct authz_identity *id)
{
	int	 i;

	if (id == NULL)
		return;
	free(id->cn);
	free(id->fingerprint);
	for (i = 0; i < id->nou && i < AUTHZ_MAX_NAMES; i++)
		free(id->ou[i]);
	for (i = 0; i < id->ndns && i < AUTHZ_MAX_NAMES; i++)
		free(id->dns[i]);
	for (i = 0; i < id->nuri && i < AUTHZ_MAX_NAMES; i++)
		free(id->uri[i]);
	for (i = 0; i < id->nemail && i < AUTHZ_MAX_NAMES; i++)
		free(id->email[i]);
	memset(id, 0, sizeof(*id));
}

static int
authz_any_equal(char *const *list, int n, const char *v, int icase)
{
	int	 i;

	for (i = 0; i < n && i < AUTHZ_MAX_NAMES; i++) {
		if (list[i] == NULL)
			continue;
		if (icase ? strcasecmp(list[i], v) == 0 :
		    strcmp(list[i], v) == 0)
			return 1;
	}
	return 0;
}

static int
authz_uri_match(const struct authz_identity *id, const char *pattern)
{
	size_t	 len = strlen(pattern);
	int	 i;

	if (len == 0 || pattern[len - 1] != '*')
		return authz_any_equal(id->uri, id->nuri, pattern, 0);
	for (i = 0; i < id->nuri && i < AUTHZ_MAX_NAMES; i++)
		if (id->uri[i] != NULL &&
		    strncmp(id->uri[i], pattern, len - 1) == 0)
			return 1;
	return 0;
}

static int
authz_cond_match(const struct authz_cond *c, const struct authz_identity *id)
{
	int	 i;

	if (c->type == MATCH_ANY)
		return 1;
	if (c->value == NULL)
		return 0;
	switch (c->type) {
	case MATCH_CN:
		return id->cn != NULL && strcmp(id->cn, c->value) == 0;
	case MATCH_OU:
		return authz_any_equal(id->ou, id->nou, c->value, 0);
	case MATCH_FINGERPRINT:
		return id->fingerprint != NULL &&
		    strcmp(id->fingerprint, c->value) == 0;
	case MATCH_SAN_DNS:
		return authz_any_equal(id->dns, id->ndns, c->value, 1);
	case MATCH_SAN_EMAIL:
		return authz_any_equal(id->email, id->nemail, c->value, 1);
	case MATCH_SAN_URI:
		return authz_uri_match(id, c->value);
	case MATCH_SAN_IP:
		for (i = 0; i < id->nip && i < AUTHZ_MAX_NAMES; i++)
			if (id->iplen[i] == c->iplen &&
			    memcmp(id->ip[i], c->ip, c->iplen) == 0)
				return 1;
		return 0;
	default:
		return 0;
	}
}

/* Every condition of the rule holds for the identity. */
static int
authz_rule_match(const struct authz_rule *r, const struct authz_identity *id)
{
	int	 i;

	if (r->nconds < 1 || r->nconds > AUTHZ_MAX_CONDS)
		return 0;
	for (i = 0; i < r->nconds; i++)
		if (!authz_cond_match(&r->conds[i], id))
			return 0;
	return 1;
}

int
authz_check(const struct authz_rules *rules, const struct authz_identity *id,
    uint32_t class, uint32_t method, const char *path,
    const struct authz_rule **granted)
{
	const struct authz_rule	*r;

	if (granted != NULL)
		*granted = NULL;
	if (class == 0 || (class & ~AUTHZ_ALL) != 0)
		return 0;
	if (rules == NULL || TAILQ_EMPTY(rules))
		return (class & ~(AUTHZ_READ | AUTHZ_WRITE)) == 0;
	if (id == NULL)
		return 0;
	TAILQ_FOREACH(r, rules, entry) {
		if ((r->classes & class) != class)
			continue;
		if (r->methods != 0 && (r->methods & method) == 0)
			continue;
		if (r->path != NULL && (path == NULL ||
		    strncmp(path, r->path, strlen(r->path)) != 0))
			continue;
		if (!authz_rule_match(r, id))
			continue;
		if (granted != NULL)
			*granted = r;
		return 1;
	}
	return 0;
}

uint32_t
authz_classes(const struct authz_rules *rules,
    const struct authz_identity *id)
{
	const struct authz_rule	*r;
	uint32_t		 classes = 0;

	if (rules == NULL || TAILQ_EMPTY(rules))
		return AUTHZ_READ | AUTHZ_WRITE;
	if (id == NULL)
		return 0;
	TAILQ_FOREACH(r, rules, entry)
		if (authz_rule_match(r, id))
			classes |= r->classes;
	return classes & AUTHZ_ALL;
}

/* Append to a bounded buffer; remembers overflow in *off > size. */
static void
authz_fmt(char *buf, size_t size, size_t *off, const char *s)
{
	size_t	 n = strlen(s);

	if (*off < size)
		strlcpy(buf + *off, s, size - *off);
	*off += n;
}

/* A double-quoted string the parser reads back; control bytes as '?'. */
static void
authz_fmt_quoted(char *buf, size_t size, size_t *off, const char *s)
{
	char	 c[3];

	authz_fmt(buf, size, off, "\"");
	for (; *s != '\0'; s++) {
		c[0] = c[1] = c[2] = '\0';
		if (*s == '"' || *s == '\\') {
			c[0] = '\\';
			c[1] = *s;
		} else if ((unsigned char)*s < 0x20 || *s == 0x7f)
			c[0] = '?';
		else
			c[0] = *s;
		authz_fmt(buf, size, off, c);
	}
	authz_fmt(buf, size, off, "\"");
}

static void
authz_fmt_set(char *buf, size_t size, size_t *off, uint32_t set,
    const char *const *names, int nnames)
{
	int	 i, n = 0;

	for (i = 0; i < nnames; i++)
		if (set & (1U << i))
			n++;
	if (n > 1)
		authz_fmt(buf, size, off, "{ ");
	for (i = 0; i < nnames; i++) {
		if ((set & (1U << i)) == 0)
			continue;
		authz_fmt(buf, size, off, names[i]);
		authz_fmt(buf, size, off, " ");
	}
	if (n > 1)
		authz_fmt(buf, size, off, "} ");
}

/*
 * The rule as a todod.conf line, for logs and `todod -n -C`.  Returns the
 * length, or -1 when it did not fit (buf then holds a truncated line).
 */
int
authz_rule_format(const struct authz_rule *r, char *buf, size_t size)
{
	static const char *const classes[] = { "read", "write", "metrics" };
	static const char *const methods[] = { "GET", "POST", "PATCH",
	    "DELETE" };
	size_t	 off = 0;
	int	 i;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	authz_fmt(buf, size, &off, "allow ");
	if ((r->classes & AUTHZ_ALL) == AUTHZ_ALL)
		authz_fmt(buf, size, &off, "all ");
	else
		authz_fmt_set(buf, size, &off, r->classes, classes, 3);
	authz_fmt(buf, size, &off, "from");
	for (i = 0; i < r->nconds && i < AUTHZ_MAX_CONDS; i++) {
		authz_fmt(buf, size, &off, " ");
		authz_fmt(buf, size, &off,
		    authz_match_name(r->conds[i].type) != NULL ?
		    authz_match_name(r->conds[i].type) : "?");
		if (r->conds[i].type == MATCH_ANY)
			continue;
		authz_fmt(buf, size, &off, " ");
		authz_fmt_quoted(buf, size, &off, r->conds[i].value != NULL ?
		    r->conds[i].value : "");
	}
	if (r->methods != 0) {
		authz_fmt(buf, size, &off, " method ");
		authz_fmt_set(buf, size, &off, r->methods, methods, 4);
		off--;		/* the set's trailing space */
		if (off < size)
			buf[off] = '\0';
	}
	if (r->path != NULL) {
		authz_fmt(buf, size, &off, " path ");
		authz_fmt_quoted(buf, size, &off, r->path);
	}
	if (off >= size || off > INT_MAX)
		return -1;
	return (int)off;
}
