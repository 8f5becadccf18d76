/*
 * Starting and reloading a configuration, as one transaction with every
 * keyholder and worker; the configuration in use, its TLS material and
 * session ticket keys.  The children are the process layer's: this module
 * sends to them and is told what they answer, and when they start and die.
 */
#ifndef TODOD_APPLY_H
#define TODOD_APPLY_H

#include <event.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "ipc.h"
#include "proc.h"
#include "proto.h"
#include "tlsmat.h"

struct config;
struct metrics;

enum apply_phase {
	APPLY_IDLE,
	APPLY_KEYS,		/* waiting for the keyholders */
	APPLY_WORKERS		/* waiting for every worker's CFG_DONE */
};

/* The transaction under way. */
struct apply_txn {
	enum apply_phase	 phase;
	int			 startup;
	struct config		*conf;
	struct tlsmat		*mat;
	uint32_t		 gen;
	int			 keys_waiting;
	int			 workers_waiting;
	int			 workers_ok;
	int			 workers_failed;
	char			 why[256];	/* the first worker's refusal */
	uint8_t			 failed[PROC_MAX];	/* by worker id - 1 */
	struct proto_ticket_key	 tickets[PROTO_TICKETS_KEPT];
	int			 ntickets;
	struct event		 timeout_ev;
};

struct apply_hooks {
	/* at startup, once the keys are loaded: start the workers */
	int	(*start_workers)(void *);
	/* the startup's result: NULL, or why it failed (need not return) */
	void	(*started)(void *, const char *);
	/* a checked configuration's material, before it is sent (or NULL) */
	void	(*material)(void *, const struct config *, struct tlsmat *);
};

struct apply {
	struct event_base	*base;
	struct proc_group	*workers;
	struct proc_group	*keyholders;
	struct metrics		*metrics;
	struct apply_hooks	 hooks;
	void			*arg;
	int			 verbose;

	/* in use */
	struct config		*conf;
	struct tlsmat		*mat;
	uint32_t		 gen;		/* last generation made */
	uint32_t		 gen_committed;
	uint32_t		 next_keyid;
	struct proto_ticket_key	 tickets[PROTO_TICKETS_KEPT];
	int			 ntickets;
	uint32_t		 ticket_rev;
	struct event		 ticket_ev;
	/* nodes sharing a store share ticket secrets: keys derive from them */
	int			 shared;
	struct proto_ticket_key	 secrets[PROTO_TICKETS_KEPT];
	int			 nsecrets;
	struct event		 daily_ev;
	uint32_t		 cfg_sent[PROC_MAX];	/* by worker id - 1 */
	uint32_t		 cfg_done[PROC_MAX];

	struct apply_txn	 txn;
};

void	apply_init(struct apply *, struct event_base *, struct config *,
	    struct proc_group *, struct proc_group *, struct metrics *,
	    const struct apply_hooks *, void *);
int	apply_start(struct apply *, struct config *, int, char *, size_t);
int	apply_busy(const struct apply *);
void	apply_key_reply(struct apply *, struct proc *, struct ipc_msg *);
void	apply_worker_reply(struct apply *, struct proc *, struct ipc_msg *);
void	apply_worker_started(struct apply *, struct proc *);
void	apply_keyholder_started(struct apply *, struct proc *);
void	apply_child_gone(struct apply *, struct proc *);
void	apply_shutdown(struct apply *);
void	apply_shared_tickets(struct apply *, const struct proto_ticket_key *,
	    int);

#endif
