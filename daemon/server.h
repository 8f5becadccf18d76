/*
 * The worker's connections: listeners, TLS handshakes, and the one state
 * machine per connection (reqstate.c decides, server.c does the I/O).  It
 * hands each request to the API (api.c) and sends what the API answers.
 * Work for the parent goes out through the port worker.c gives it, and
 * worker.c hands the parent's replies back (server_reply), which resumes
 * the connection that waits for them.
 */
#ifndef TODOD_SERVER_H
#define TODOD_SERVER_H

#include <sys/queue.h>
#include <sys/tree.h>

#include <event.h>
#include <stdint.h>
#include <time.h>

#include "hslimit.h"
#include "ocspask.h"
#include "peer.h"
#include "shm.h"

struct cache;
struct conn;
struct server_read;
struct ipc_msg;
struct ipc_wbuf;
struct tlsgen;
struct wconf;

/* How the server reaches the parent: worker.c owns the channel. */
struct server_port {
	/* a store request or read (reqid in it); the port owns wb, even
	   on -1 */
	int	(*store)(void *, struct ipc_wbuf *);
	/* a metrics request for reqid */
	int	(*metrics)(void *, uint32_t);
	/* a catch-up with the other nodes for reqid (API_SYNC) */
	int	(*sync)(void *, uint32_t);
	/* an OCSP query qid about a client certificate (DER) */
	int	(*ocsp)(void *, uint32_t, const void *, size_t);
	void	*arg;
};

TAILQ_HEAD(conns, conn);
RB_HEAD(conn_pending, conn);

struct server {
	struct event_base	*base;
	struct server_port	 port;
	struct wconf		*conf;		/* in use */
	struct tlsgen		*tls;		/* for new connections */
	struct cache		*cache;		/* worker.c feeds it */
	struct peer_cache	 peers;		/* parsed client certificates */
	struct ocspask		 ocsp;		/* client OCSP queries */
	struct shm_state	*state;		/* read-only */
	struct shm_state	 state_local;	/* until the parent sends one */
	struct shm_counters	*ctr;		/* ours */
	struct shm_counters	 ctr_local;	/* until the parent sends one */

	struct conns		 conns;
	int			 nconns;
	struct hslimit		 hs;		/* unfinished handshakes */
	int			 hs_evicted;	/* since the last log line */
	time_t			 hs_logtime;
	struct conn_pending	 waiting;	/* store/metrics requests */
	struct conns		 cachewait;	/* GETs waiting for the cache */
	/* reads past a cache that does not hold every item */
	struct conns		 readq;		/* misses and pages to ask */
	struct server_read	*reads;		/* asked: STOREMSG_READS_MAX */
	struct event		 read_ev;	/* asks them, once a turn */
	uint32_t		 nextreq;
	int			 accepting;
	int			 shutdown;

	uint8_t			*scratch;	/* tls_read buffer */
	size_t			 scratchlen;
	uint8_t			*rabuf;		/* socket read buffer */
	int			 sign_failed;	/* during the current handshake */
	char			 date[40];	/* Date: header, cached */
	time_t			 datetime;
};

void	server_init(struct server *, struct event_base *, struct cache *,
	    const struct server_port *);
void	server_conf_apply(struct server *, struct wconf *, struct tlsgen *);
void	server_reply(struct server *, struct ipc_msg *);
void	server_cache_wake(struct server *);
void	server_ocsp(struct server *, struct ipc_msg *);
void	server_sign_observer(void *, uint64_t, int);
void	server_shutdown(struct server *);

#endif
