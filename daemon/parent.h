/*
 * The parent (`todod: parent`): configuration, listening sockets, key
 * files, the TODO store, and supervision of the workers and keyholders.
 * parent.c: main loop, signals, children; apply.c: starting and reloading
 * a configuration (keys to the keyholders, then a transaction with every
 * worker); pstore.c: the workers' store requests and group commit;
 * metrics.c: /metrics.
 */
#ifndef TODOD_PARENT_H
#define TODOD_PARENT_H

#include <sys/queue.h>
#include <sys/types.h>

#include <event.h>
#include <limits.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "ipc.h"
#include "lockfile.h"
#include "log.h"
#include "proto.h"
#include "shm.h"

struct parent;
struct store;

enum child_role {
	ROLE_WORKER,
	ROLE_KEYHOLDER
};

struct child {
	struct parent		*p;
	enum child_role		 role;
	int			 id;
	pid_t			 pid;		/* 0: not running */
	struct ipc		 ipc;
	struct event		 ev;
	short			 events;
	struct event		 restart_ev;
	time_t			 started;
	int			 fails;		/* quick deaths in a row */
	uint32_t		 cfg_done;	/* generation acknowledged */
	uint32_t		 cfg_sent;	/* generation sent */
	int			 ready;		/* running a committed config */
	struct log_limit	 loglimit;	/* on the lines it sends */
	/* workers: their counters segment */
	struct shm_counters	*ctr;
	int			 ctr_fd;
};

/* What the workers get for TLS, read from the files by the parent. */
struct tlsmat {
	struct buf	 cert;		/* PEM chain */
	struct buf	 ca;
	struct buf	 crl;		/* empty: none */
	struct buf	 keyref;	/* after the keyholders answer */
	uint8_t		*spki;		/* the certificate's public key, DER */
	size_t		 spkilen;
	uint32_t	 keyid;
	uint64_t	 policy;	/* hash of CA, CRL and rules */
	time_t		 cert_notafter;
	time_t		 ca_notafter;
	time_t		 crl_nextupdate;	/* 0: no CRL */
};

enum apply_phase {
	APPLY_IDLE,
	APPLY_KEYS,		/* waiting for the keyholders */
	APPLY_WORKERS		/* waiting for every worker's CFG_DONE */
};

struct apply {
	enum apply_phase	 phase;
	int			 startup;
	struct config		*conf;
	struct tlsmat		*mat;
	uint32_t		 gen;
	int			 keys_waiting;
	int			 workers_waiting;
	int			 new_tickets;	/* policy changed */
	struct proto_ticket_key	 tickets[PROTO_TICKETS_KEPT];
	int			 ntickets;
	struct event		 timeout_ev;
};

struct pstore_op;
TAILQ_HEAD(pstore_ops, pstore_op);

struct parent {
	struct event_base	*base;
	char			*conffile;
	int			 foreground;
	int			 verbose;
	int			 ready_fd;	/* startup result to the launcher */
	char			 self_exe[PATH_MAX];
	char			 kh_exe[PATH_MAX];
	uid_t			 uid;		/* for the children; as root */
	gid_t			 gid;
	int			 root;

	struct config		*conf;
	struct tlsmat		*mat;
	uint32_t		 gen;		/* last generation made */
	uint32_t		 gen_committed;	/* generation in use */
	struct apply		 apply;
	uint32_t		 next_keyid;

	struct child		 workers[CONFIG_MAX_WORKERS];
	int			 nworkers;
	struct child		 keyholders[CONFIG_MAX_WORKERS];
	int			 nkeyholders;

	struct proto_ticket_key	 tickets[PROTO_TICKETS_KEPT];
	int			 ntickets;
	uint32_t		 ticket_rev;
	struct event		 ticket_ev;
	struct event		 daily_ev;

	struct store		*store;
	struct lockfile		 pidfile;
	struct pstore_ops	 ops;
	int			 nops;
	struct event		 commit_ev;
	uint64_t		 seq;
	struct shm_state	*state;
	int			 state_fd;

	/* metrics the parent keeps itself */
	struct shm_counters	 retired;	/* of workers that died */
	uint64_t		 restarts[2];	/* by role */
	uint64_t		 reloads_ok, reloads_failed;
	uint64_t		 commit_bucket[MET_SIGN_NB + 1];
	uint64_t		 commit_count, commit_sum_us, store_writes;
	uint64_t		 store_refused;	/* writes not committed */

	int			 shutdown;
	struct event		 sig_hup, sig_term, sig_int, sig_chld;
	struct event		 shutdown_ev;
};

/* parent.c */
int	parent_main(struct config *, const char *, int, int);
void	parent_child_flush(struct child *);
void	parent_startup_done(struct parent *, const char *);
int	parent_spawn_worker(struct parent *, struct child *);
int	parent_bind(struct parent *, struct config *, char *, size_t);
void	parent_listeners_worker(struct parent *, struct config *, int, int);
void	parent_child_kill(struct child *, const char *);

/* apply.c */
int	apply_start(struct parent *, struct config *, int, char *, size_t);
void	apply_key_reply(struct parent *, struct child *, struct ipc_msg *);
void	apply_worker_reply(struct parent *, struct child *,
	    struct ipc_msg *);
void	apply_child_gone(struct parent *, struct child *);
void	apply_send_config(struct parent *, struct child *);
void	apply_send_keys(struct parent *, struct child *);
void	apply_rotate_ticket(struct parent *);
void	apply_check_expiry(struct parent *, const struct tlsmat *);
struct tlsmat *tlsmat_load(const struct config *, char *, size_t);
void	tlsmat_free(struct tlsmat *);

/* pstore.c */
void	pstore_init(struct parent *);
void	pstore_request(struct parent *, struct child *, struct ipc_msg *);
void	pstore_snapshot(struct parent *, struct child *);
void	pstore_child_gone(struct parent *, struct child *);

/* metrics.c */
void	metrics_request(struct parent *, struct child *, struct ipc_msg *);
void	metrics_retire(struct parent *, struct child *);
void	metrics_commit(struct parent *, uint64_t);

#endif
