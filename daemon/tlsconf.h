/*
 * The worker's TLS generations: one libtls server per configuration, kept
 * by the connections accepted with it until the last one closes.
 */
#ifndef TODOD_TLSCONF_H
#define TODOD_TLSCONF_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct khprov;
struct tls;
struct tls_config;
struct wconf;
struct X509_crl_st;

struct tlsgen {
	int			 refs;
	uint32_t		 gen;
	struct tls		*server;
	struct tls_config	*config;
	struct X509_crl_st	*crl;		/* for resumed sessions */
};

struct tlsgen	*tlsgen_new(struct wconf *, struct khprov *, uint64_t,
		    char *, size_t);
void		 tlsgen_unref(struct tlsgen *);
int		 tlsgen_set_staple(struct tlsgen *, const void *, size_t);
int		 tlsgen_add_ticket(struct tlsgen *,
		    const struct proto_ticket_key *);

#endif
