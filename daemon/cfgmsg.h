/*
 * The configuration transaction between the parent and a worker, both
 * ends in one place (the parent sends with cfgmsg_send_*, the worker
 * reads with cfgmsg_get_*, and the replies go the other way):
 *
 *	CFG_BEGIN	u32 generation
 *	CFG_MAIN	struct proto_cfg_main, str ciphers ("" for default)
 *	CFG_LISTEN	fd: listening socket; str name
 *	CFG_TLS_*	data: certificate chain, key reference, CA, CRL (PEM),
 *			OCSP staple (DER, at most CFGMSG_STAPLE_MAX)
 *	CFG_RULE	u32 lineno, u32 classes, u32 methods, str path ("" for
 *			none), u32 nconds, then per condition u32 type,
 *			str value ("" for any), data ip (0, 4 or 16 bytes)
 *	TICKET_KEY	struct proto_ticket_key (also outside a transaction)
 *	CFG_END		(empty)
 *	CFG_DONE	worker -> parent: u32 generation
 *	CFG_FAILED	worker -> parent: u32 generation, str reason
 *	CFG_COMMIT	u32 generation
 *	STAPLE		data: OCSP staple DER, or empty (outside a transaction)
 *
 * Senders return 0, or -1 and errno (the message is not queued).  Getters
 * return 0, or -1 with errno EBADMSG; strings and data point into the
 * message.  What a worker sends the parent is bounded here: a worker may
 * be compromised.
 */
#ifndef TODOD_CFGMSG_H
#define TODOD_CFGMSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct authz_rule;
struct ipc;
struct ipc_msg;

#define CFGMSG_WHY_MAX		1024	/* CFG_FAILED reason, bytes */
#define CFGMSG_CIPHERS_MAX	4096
#define CFGMSG_NAME_MAX		79	/* a listener's name */
#define CFGMSG_STAPLE_MAX	(64 * 1024)	/* an OCSP staple, bytes */

int	cfgmsg_send_begin(struct ipc *, uint32_t);
int	cfgmsg_send_main(struct ipc *, const struct proto_cfg_main *,
	    const char *);
int	cfgmsg_send_listen(struct ipc *, const char *, int);
int	cfgmsg_send_tls(struct ipc *, uint32_t, const void *, size_t);
int	cfgmsg_send_rule(struct ipc *, const struct authz_rule *);
int	cfgmsg_send_ticket(struct ipc *, const struct proto_ticket_key *);
int	cfgmsg_send_end(struct ipc *);
int	cfgmsg_send_done(struct ipc *, uint32_t);
int	cfgmsg_send_failed(struct ipc *, uint32_t, const char *);
int	cfgmsg_send_commit(struct ipc *, uint32_t);
int	cfgmsg_send_staple(struct ipc *, const void *, size_t);
int	cfgmsg_get_staple(struct ipc_msg *, const void **, size_t *);

int	cfgmsg_get_gen(struct ipc_msg *, uint32_t *);
int	cfgmsg_get_main(struct ipc_msg *, struct proto_cfg_main *,
	    const char **);
int	cfgmsg_get_listen(struct ipc_msg *, const char **);
int	cfgmsg_get_tls(struct ipc_msg *, const void **, size_t *);
struct authz_rule *cfgmsg_get_rule(struct ipc_msg *);
int	cfgmsg_get_ticket(struct ipc_msg *, struct proto_ticket_key *);
int	cfgmsg_get_end(struct ipc_msg *);
int	cfgmsg_get_reply(struct ipc_msg *, uint32_t *, const char **);

void	cfgmsg_ticket_keep(struct proto_ticket_key *, int *,
	    const struct proto_ticket_key *);

#endif
