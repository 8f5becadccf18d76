/*
 * Who is at the other end of a connection: the identity a client
 * certificate proves, parsed once per certificate and shared by every
 * connection that presents it.
 */
#ifndef TODOD_PEER_H
#define TODOD_PEER_H

#include <stdint.h>
#include <time.h>

#include "authz.h"

struct tls;
struct X509_crl_st;
struct asn1_string_st;
struct X509_name_st;

struct peer {
	int			 refs;
	char			 hash[80];	/* tls_peer_cert_hash() */
	struct authz_identity	 id;
	char			*cnjson;	/* {"client":"CN" */
	char			*cnlog;		/* the CN, safe for the log */
	time_t			 notbefore;
	time_t			 notafter;
	struct asn1_string_st	*serial;
	struct X509_name_st	*issuer;
	uint64_t		 used;
	uint8_t			*der;		/* the leaf: OCSP queries */
	size_t			 derlen;
	/* client OCSP: what the parent last said, while it holds */
	int			 revoked;	/* for good: a responder said */
	uint32_t		 ocsp_status;	/* enum ocspmsg_status */
	time_t			 ocsp_until;	/* 0: nothing to rely on */
};

/*
 * A worker's parsed client certificates, by hash, least recently used
 * out first (the worker keeps one in struct worker).
 */
#define PEER_CACHE	64
struct peer_cache {
	struct peer	*slot[PEER_CACHE];
	uint64_t	 tick;		/* the clock of `used' */
};

struct peer	*peer_get(struct peer_cache *, struct tls *, char *, size_t);
void		 peer_unref(struct peer *);
int		 peer_check(const struct peer *, struct X509_crl_st *, char *,
		    size_t);
struct peer	*peer_find(struct peer_cache *, const char *);

#endif
