/*
 * Authorization: `allow` rules from todod.conf and the identity a client
 * certificate proves.  Used by the worker on every request (rules are
 * re-evaluated against the current configuration, also on resumed
 * sessions) and by the parent for `todod -n -C cert` (policy dry-run).
 */
#ifndef TODOD_AUTHZ_H
#define TODOD_AUTHZ_H

#include <sys/queue.h>

#include <stdint.h>
#include <stddef.h>

struct x509_st;

/* Request classes a rule grants. */
#define AUTHZ_READ	0x1	/* GET */
#define AUTHZ_WRITE	0x2	/* POST, PATCH, DELETE */
#define AUTHZ_METRICS	0x4	/* GET /metrics */
#define AUTHZ_ALL	(AUTHZ_READ | AUTHZ_WRITE | AUTHZ_METRICS)

/* Methods a rule may be limited to. */
#define AUTHZ_M_GET	0x1
#define AUTHZ_M_POST	0x2
#define AUTHZ_M_PATCH	0x4
#define AUTHZ_M_DELETE	0x8

enum authz_match {
	MATCH_ANY = 1,		/* every verified client */
	MATCH_CN,		/* subject commonName, exact */
	MATCH_OU,		/* any subject organizationalUnitName, exact */
	MATCH_FINGERPRINT,	/* "SHA256:" + 64 lower-case hex digits */
	MATCH_SAN_DNS,		/* exact, case-insensitive */
	MATCH_SAN_URI,		/* exact; a trailing '*' matches a prefix */
	MATCH_SAN_IP,		/* address, compared as bytes */
	MATCH_SAN_EMAIL		/* exact, case-insensitive */
};

#define AUTHZ_MAX_CONDS	8

struct authz_cond {
	enum authz_match	 type;
	char			*value;		/* as written (normalized) */
	uint8_t			 ip[16];	/* MATCH_SAN_IP */
	size_t			 iplen;		/* 4 or 16 */
};

struct authz_rule {
	TAILQ_ENTRY(authz_rule)	 entry;
	uint32_t		 classes;	/* AUTHZ_READ ... */
	uint32_t		 methods;	/* AUTHZ_M_*; 0: any */
	char			*path;		/* prefix; NULL: any */
	int			 nconds;
	struct authz_cond	 conds[AUTHZ_MAX_CONDS];
	int			 lineno;
};
TAILQ_HEAD(authz_rules, authz_rule);

/* What a verified client certificate says about its holder. */
#define AUTHZ_MAX_NAMES	32
struct authz_identity {
	char		*cn;
	char		*fingerprint;	/* "SHA256:..." lower case */
	int		 nou;
	char		*ou[AUTHZ_MAX_NAMES];
	int		 ndns;
	char		*dns[AUTHZ_MAX_NAMES];
	int		 nuri;
	char		*uri[AUTHZ_MAX_NAMES];
	int		 nemail;
	char		*email[AUTHZ_MAX_NAMES];
	int		 nip;
	uint8_t		 ip[AUTHZ_MAX_NAMES][16];
	size_t		 iplen[AUTHZ_MAX_NAMES];
};

struct authz_rule	*authz_rule_new(void);
void			 authz_rule_free(struct authz_rule *);
void			 authz_rules_free(struct authz_rules *);
int			 authz_cond_set(struct authz_cond *, enum authz_match,
			    const char *, char *, size_t);

int			 authz_identity_from_x509(struct authz_identity *,
			    struct x509_st *, char *, size_t);
void			 authz_identity_clear(struct authz_identity *);

/*
 * Decide one request.  Returns 1 when allowed, 0 when not; *rule (may be
 * NULL) is set to the granting rule.  With no rules at all, read and write
 * are allowed to every verified client and metrics is not.
 */
int			 authz_check(const struct authz_rules *,
			    const struct authz_identity *, uint32_t class,
			    uint32_t method, const char *path,
			    const struct authz_rule **);
uint32_t		 authz_classes(const struct authz_rules *,
			    const struct authz_identity *);
int			 authz_rule_format(const struct authz_rule *, char *,
			    size_t);

#endif
