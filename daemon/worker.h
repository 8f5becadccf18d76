/*
 * The worker role (`todod: worker N`): event-driven TLS termination, HTTP
 * parsing and the TODO API.  It holds no private key (signatures come from
 * the keyholder through khprov) and reaches the store only through the
 * parent.  worker.c: main loop and parent channel; server.c: listeners and
 * connections; api.c: requests; tlsconf.c: TLS generations.
 */
#ifndef TODOD_WORKER_H
#define TODOD_WORKER_H

#include <sys/queue.h>
#include <sys/tree.h>
#include <sys/socket.h>

#include <event.h>
#include <stdint.h>

#include "authz.h"
#include "buf.h"
#include "cache.h"
#include "hslimit.h"
#include "http.h"
#include "ipc.h"
#include "peer.h"
#include "proto.h"
#include "reqstate.h"
#include "shm.h"

struct khprov;
struct tls;
struct tls_config;
struct X509_crl_st;

/* A TLS configuration; connections keep the one they were accepted with. */
struct tlsgen {
	int			 refs;
	uint32_t		 gen;
	struct tls		*server;
	struct tls_config	*config;
	struct X509_crl_st	*crl;		/* for resumed sessions */
};

struct listener {
	TAILQ_ENTRY(listener)	 entry;
	int			 fd;
	char			 name[80];
	struct event		 ev;
	struct worker		*w;
};
TAILQ_HEAD(listeners, listener);

/* A configuration being received, or the one in use. */
struct wconf {
	uint32_t		 gen;
	struct proto_cfg_main	 main;
	char			*ciphers;
	struct buf		 cert, keyref, ca, crl;
	struct authz_rules	 rules;
	struct listeners	 listeners;
	struct proto_ticket_key	 tickets[PROTO_TICKETS_KEPT];
	int			 ntickets;
};

enum conn_wait {
	WAIT_NONE,
	WAIT_STORE,
	WAIT_CACHE,
	WAIT_METRICS
};

struct conn {
	TAILQ_ENTRY(conn)	 entry;
	RB_ENTRY(conn)		 pending;	/* by reqid while WAIT_STORE */
	struct worker		*w;
	int			 fd;
	struct tls		*tls;
	struct tlsgen		*gen;
	struct event		 ev;
	struct reqstate		 rs;		/* the one state machine */
	struct hsentry		 hs;		/* until the handshake is done */
	enum conn_wait		 wait;
	uint32_t		 reqid;
	uint64_t		 waitseq;	/* WAIT_CACHE: store seq needed */
	char			 peer_addr[80];
	struct timeval		 deadline;	/* current timeout, absolute */
	uint8_t			*ra;		/* read ahead of OpenSSL */
	size_t			 raoff;
	size_t			 ralen;

	struct peer		*peer;		/* after the handshake */
	uint32_t		 checked;	/* generation whose CRL it passed */

	/* the request being read or answered */
	struct buf		 in;
	struct http_parser	 hp;
	struct http_request	 req;
	int			 route;		/* api.c: what the path names */
	int64_t			 id;		/* api.c: the ID of /todo/ID */
	struct http_chunked	 chunk;
	char			*body;
	size_t			 bodylen;
	size_t			 bodyneed;	/* Content-Length: still to come */
	int			 requests;	/* answered on this connection */

	/* the response */
	struct buf		 out;
	size_t			 outoff;
	int			 status;
	const char		*ctype;		/* NULL: application/json */
	size_t			 bodysize;	/* for the log */
	int64_t			 cursor;	/* streaming GET /todo: last id */
	int			 streaming;	/* 1: chunked, 2: until close */
};
TAILQ_HEAD(conns, conn);
RB_HEAD(conn_pending, conn);

/* Everything a worker process keeps: no other state is file-static. */
struct worker {
	struct event_base	*base;
	int			 id;
	int			 foreground;
	char			 name[32];	/* "worker N", for the log */
	struct ipc		 parent;
	struct event		 parent_ev;
	short			 parent_events;

	struct wconf		*pending;	/* transaction in progress */
	struct tlsgen		*pending_tls;	/* its TLS, once prepared */
	struct wconf		*conf;		/* in use */
	struct tlsgen		*tls;		/* for new connections */
	struct khprov		*khprov;	/* keyholder signatures */
	struct peer_cache	 peers;		/* parsed client certificates */

	struct conns		 conns;
	int			 nconns;
	struct hslimit		 hs;		/* unfinished handshakes */
	int			 hs_evicted;	/* since the last log line */
	time_t			 hs_logtime;
	struct conn_pending	 waiting;	/* store/metrics requests */
	struct conns		 cachewait;	/* GETs waiting for the cache */
	uint32_t		 nextreq;
	int			 accepting;
	int			 shutdown;
	struct event		 shutdown_ev;

	struct cache		 cache;
	uint64_t		 snapseq;
	struct shm_state	*state;		/* read-only */
	struct shm_state	 state_local;	/* until the parent sends one */
	struct shm_counters	*ctr;		/* ours */
	struct shm_counters	 ctr_local;	/* until the parent sends one */

	uint8_t			*scratch;	/* tls_read buffer */
	size_t			 scratchlen;
	uint8_t			*rabuf;		/* socket read buffer */
	int			 sign_failed;	/* during the current handshake */
	char			 date[40];	/* Date: header, cached */
	time_t			 datetime;
};

/* worker.c */
int	worker_main(int, int, int, const char *, uid_t, gid_t, int);
int	worker_send_store(struct worker *, struct conn *, struct ipc_wbuf *);
int	worker_send_metrics(struct worker *, struct conn *);
void	worker_parent_flush(struct worker *);

/* server.c */
void	server_listeners_apply(struct worker *, struct wconf *);
void	server_accept_pause(struct worker *, int);
void	server_shutdown(struct worker *);
void	server_respond(struct conn *, int, const char *, const struct buf *);
void	server_respond_error(struct conn *, int, const char *, const char *);
void	server_stream_todos(struct conn *);
int	server_peer_check(struct conn *, char *, size_t);
int	server_conn_cmp(struct conn *, struct conn *);
RB_PROTOTYPE(conn_pending, conn, pending, server_conn_cmp);

/* api.c */
int	api_admit(struct conn *);
void	api_request(struct conn *);
void	api_store_reply(struct conn *, struct ipc_msg *);
void	api_cache_ready(struct conn *);
void	api_metrics_reply(struct conn *, struct ipc_msg *);

/* tlsconf.c */
struct tlsgen	*tlsgen_new(struct wconf *, struct khprov *, uint64_t,
		    char *, size_t);
void		 tlsgen_unref(struct tlsgen *);
int		 tlsgen_add_ticket(struct tlsgen *,
		    const struct proto_ticket_key *);


#endif
