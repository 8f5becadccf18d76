/*
 * A configuration as a worker receives it from the parent (cfgmsg.c
 * decodes the messages), while it is being received and once in use:
 * worker.c builds it, tlsconf.c makes its TLS, server.c accepts on its
 * listeners.
 */
#ifndef TODOD_WCONF_H
#define TODOD_WCONF_H

#include <sys/queue.h>

#include <event.h>
#include <stdint.h>

#include "authz.h"
#include "buf.h"
#include "proto.h"

struct listener {
	TAILQ_ENTRY(listener)	 entry;
	int			 fd;
	char			 name[80];
	struct event		 ev;
	void			*owner;		/* who accepts on it */
};
TAILQ_HEAD(listeners, listener);

struct wconf {
	uint32_t		 gen;
	struct proto_cfg_main	 main;
	char			*ciphers;
	struct buf		 cert, keyref, ca, crl;
	struct buf		 staple;	/* OCSP response DER; empty: none */
	struct authz_rules	 rules;
	struct listeners	 listeners;
	struct proto_ticket_key	 tickets[PROTO_TICKETS_KEPT];
	int			 ntickets;
};

struct wconf	*wconf_new(uint32_t);
void		 wconf_free(struct wconf *);

#endif
