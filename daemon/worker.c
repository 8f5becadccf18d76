#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <tls.h>

#include "authz.h"
#include "cache.h"
#include "cfgmsg.h"
#include "ipc.h"
#include "khprov.h"
#include "log.h"
#include "ocspmsg.h"
#include "proc.h"
#include "proto.h"
#include "sandbox.h"
#include "server.h"
#include "shm.h"
#include "storemsg.h"
#include "tlsconf.h"
#include "wconf.h"
#include "worker.h"

/* Everything a worker process keeps: no other state is file-static. */
struct worker {
	struct event_base	*base;
	int			 id;
	int			 foreground;
	char			 name[32];	/* "worker N", for the log */
	struct ipc		 parent;
	struct event		 parent_ev;
	short			 parent_events;
	struct event		 shutdown_ev;

	struct wconf		*pending;	/* transaction in progress */
	struct tlsgen		*pending_tls;	/* its TLS, once prepared */
	struct khprov		*khprov;	/* keyholder signatures */
	struct cache		 cache;
	struct server		 srv;		/* connections; conf in use */
};

static void	worker_parent_io(int, short, void *);
static void	worker_parent_flush(struct worker *);
static void	worker_dispatch_parent(void *, struct ipc_msg *);

/* The log sink left bytes queued: wait until the channel drains. */
static void
worker_log_kick(void *arg)
{
	worker_parent_flush(arg);
}

static void
worker_parent_flush(struct worker *w)
{
	short	 want;

	if (ipc_flush(&w->parent) == -1 && errno != EAGAIN)
		return;		/* the read side sees the end */
	want = EV_READ | (ipc_queued(&w->parent) > 0 ? EV_WRITE : 0);
	if (want == w->parent_events)
		return;
	event_del(&w->parent_ev);
	event_assign(&w->parent_ev, w->base, w->parent.fd, want | EV_PERSIST,
	    worker_parent_io, w);
	event_add(&w->parent_ev, NULL);
	w->parent_events = want;
}

/* The server's port to the parent: a store request, its reqid inside. */
static int
worker_send_store(void *arg, struct ipc_wbuf *wb)
{
	struct worker	*w = arg;

	if (ipc_send(&w->parent, wb, -1) == -1)
		return -1;
	worker_parent_flush(w);
	return 0;
}

static int
worker_send_sync(void *arg, uint32_t reqid)
{
	struct worker	*w = arg;
	struct ipc_wbuf	*wb;

	if ((wb = storemsg_encode_sync(reqid)) == NULL ||
	    ipc_send(&w->parent, wb, -1) == -1)
		return -1;
	worker_parent_flush(w);
	return 0;
}

static int
worker_send_metrics(void *arg, uint32_t reqid)
{
	struct worker	*w = arg;

	if (ipc_compose(&w->parent, IMSG_METRICS_REQ, reqid, -1, NULL,
	    0) == -1)
		return -1;
	worker_parent_flush(w);
	return 0;
}

static int
worker_send_ocsp(void *arg, uint32_t qid, const void *der, size_t len)
{
	struct worker	*w = arg;

	if (ocspmsg_send_query(&w->parent, qid, der, len) == -1)
		return -1;
	worker_parent_flush(w);
	return 0;
}

static int
worker_cache_item(void *arg, const struct storemsg_item *it)
{
	struct worker	*w = arg;

	if (cache_put(&w->cache, it->id, it->task, it->tasklen, it->done) ==
	    -1)
		fatal("cache");
	return 0;
}

static void
worker_cache_change(struct worker *w, struct ipc_msg *msg)
{
	struct storemsg_change	 chg;

	if (storemsg_decode_change(msg, &chg) == -1)
		fatalx("malformed store change from parent");
	if (chg.seq <= w->cache.seq)
		return;		/* in the snapshot already */
	if (chg.op == STORE_OP_DELETE)
		cache_del(&w->cache, chg.item.id);
	else
		worker_cache_item(w, &chg.item);
	w->cache.seq = chg.seq;
}

static void
worker_store_msg(struct worker *w, struct ipc_msg *msg)
{
	uint64_t	 seq;
	int		 complete;

	switch (msg->hdr.type) {
	case IMSG_STORE_SNAPSHOT:
		if (w->cache.ready)
			cache_clear(&w->cache);
		if (storemsg_decode_snapshot(msg, &seq, worker_cache_item,
		    w) == -1)
			fatalx("malformed snapshot from parent");
		break;
	case IMSG_STORE_SNAPSHOT_END:
		if (storemsg_decode_snapshot_end(msg, &seq, &complete) == -1)
			fatalx("malformed snapshot end from parent");
		w->cache.complete &= complete;
		w->cache.seq = seq;
		w->cache.ready = 1;
		break;
	default:
		worker_cache_change(w, msg);
		break;
	}
	server_cache_wake(&w->srv);
}

static void
worker_cfg_main(struct worker *w, struct ipc_msg *msg)
{
	struct wconf	*wc = w->pending;
	const char	*ciphers;

	if (wc == NULL || cfgmsg_get_main(msg, &wc->main, &ciphers) == -1)
		fatalx("malformed configuration from parent");
	free(wc->ciphers);
	wc->ciphers = NULL;
	if (*ciphers != '\0' && (wc->ciphers = strdup(ciphers)) == NULL)
		fatal("%s", __func__);
	log_setverbose(wc->main.verbose);
	khprov_set_timeout(w->khprov, 1000);
}

static void
worker_cfg_data(struct worker *w, struct ipc_msg *msg)
{
	struct wconf	*wc = w->pending;
	struct buf	*b;
	const void	*p;
	size_t		 n;

	if (wc == NULL)
		fatalx("configuration data outside a transaction");
	switch (msg->hdr.type) {
	case IMSG_CFG_TLS_CERT:
		b = &wc->cert;
		break;
	case IMSG_CFG_TLS_KEYREF:
		b = &wc->keyref;
		break;
	case IMSG_CFG_TLS_CA:
		b = &wc->ca;
		break;
	case IMSG_CFG_TLS_STAPLE:
		b = &wc->staple;
		break;
	default:
		b = &wc->crl;
		break;
	}
	if (cfgmsg_get_tls(msg, &p, &n) == -1)
		fatalx("malformed configuration from parent");
	buf_reset(b);
	if (buf_add(b, p, n) == -1)
		fatal("%s", __func__);
}

static void
worker_cfg_listen(struct worker *w, struct ipc_msg *msg)
{
	struct listener	*l;
	const char	*name;

	if (w->pending == NULL || cfgmsg_get_listen(msg, &name) == -1)
		fatalx("malformed listener from parent");
	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatal("%s", __func__);
	l->fd = msg->fd;
	msg->fd = -1;
	fcntl(l->fd, F_SETFL, O_NONBLOCK);
	strlcpy(l->name, name, sizeof(l->name));
	TAILQ_INSERT_TAIL(&w->pending->listeners, l, entry);
}

static void
worker_ticket(struct worker *w, struct ipc_msg *msg)
{
	struct proto_ticket_key	 k;
	struct wconf		*wc;

	if (cfgmsg_get_ticket(msg, &k) == -1)
		fatalx("malformed ticket key from parent");
	/* inside a transaction it belongs to the new configuration */
	wc = w->pending != NULL ? w->pending : w->srv.conf;
	if (wc != NULL)
		cfgmsg_ticket_keep(wc->tickets, &wc->ntickets, &k);
	if (w->pending == NULL && w->srv.tls != NULL &&
	    tlsgen_add_ticket(w->srv.tls, &k) == -1)
		log_warnx("ticket key %u refused", k.keyrev);
	explicit_bzero(&k, sizeof(k));
}

static void
worker_cfg_end(struct worker *w, struct ipc_msg *msg)
{
	char		 err[512];
	uint32_t	 gen;

	if (w->pending == NULL || cfgmsg_get_end(msg) == -1)
		fatalx("configuration end outside a transaction");
	gen = w->pending->gen;
	tlsgen_unref(w->pending_tls);
	w->pending_tls = tlsgen_new(w->pending, w->khprov,
	    w->pending->main.policy_id, err, sizeof(err));
	if (w->pending_tls == NULL) {
		log_warnx("configuration %u: %s", gen, err);
		if (cfgmsg_send_failed(&w->parent, gen, err) == -1)
			fatal("%s", __func__);
		return;
	}
	if (cfgmsg_send_done(&w->parent, gen) == -1)
		fatal("%s", __func__);
}

/*
 * A new OCSP staple from the parent, outside a transaction: for the
 * configuration in use (libtls copies it into each handshake) and for one
 * being prepared, which may have been sent the one it replaces.
 */
static void
worker_staple(struct worker *w, struct ipc_msg *msg)
{
	struct wconf	*wcs[2] = { w->srv.conf, w->pending };
	struct tlsgen	*gens[2] = { w->srv.tls, w->pending_tls };
	const void	*p;
	size_t		 n;
	int		 i;

	if (cfgmsg_get_staple(msg, &p, &n) == -1)
		fatalx("malformed OCSP staple from parent");
	for (i = 0; i < 2; i++) {
		if (wcs[i] != NULL) {
			buf_reset(&wcs[i]->staple);
			if (buf_add(&wcs[i]->staple, p, n) == -1)
				fatal("%s", __func__);
		}
		if (gens[i] != NULL && tlsgen_set_staple(gens[i], p, n) == -1)
			log_warnx("OCSP staple: %s",
			    tls_config_error(gens[i]->config));
	}
}

static void
worker_cfg_commit(struct worker *w, struct ipc_msg *msg)
{
	uint32_t	 gen;

	if (cfgmsg_get_gen(msg, &gen) == -1 || w->pending == NULL ||
	    w->pending_tls == NULL || w->pending->gen != gen)
		fatalx("commit of configuration %u that was not prepared",
		    gen);
	server_conf_apply(&w->srv, w->pending, w->pending_tls);
	cache_set_limit(&w->cache, w->srv.conf->main.cache_size);
	server_cache_wake(&w->srv);	/* its figures, for the metrics */
	w->pending = NULL;
	w->pending_tls = NULL;
	log_debug("configuration %u in use", gen);
}

static void
worker_shm(struct worker *w, struct ipc_msg *msg)
{
	uint32_t	 kind;
	void		*p;

	if (msg->fd == -1 || ipc_get_u32(msg, &kind) == -1 ||
	    ipc_get_end(msg) == -1)
		fatalx("malformed shared memory message");
	if (kind == SHM_STATE) {
		if ((p = shm_map(msg->fd, sizeof(struct shm_state), 0)) ==
		    NULL)
			fatal("map shared state");
		w->srv.state = p;
	} else if (kind == SHM_COUNTERS) {
		if ((p = shm_map(msg->fd, sizeof(struct shm_counters), 1)) ==
		    NULL)
			fatal("map counters");
		/* carry over what was counted before the segment came */
		memcpy(p, &w->srv.ctr_local, sizeof(w->srv.ctr_local));
		w->srv.ctr = p;
	} else
		fatalx("unknown shared memory kind %u", kind);
}

static void
worker_shutdown_force(int fd, short ev, void *arg)
{
	struct worker	*w = arg;

	log_info("grace period over, %d connections cut", w->srv.nconns);
	event_base_loopbreak(w->base);
}

static void
worker_dispatch_parent(void *arg, struct ipc_msg *msg)
{
	struct worker	*w = arg;
	struct timeval	 tv;
	struct authz_rule *rule;
	uint32_t	 gen, v;

	switch (msg->hdr.type) {
	case IMSG_STORE_REPLY:
	case IMSG_STORE_SYNCED:
	case IMSG_STORE_ITEMS:
	case IMSG_METRICS_REPLY:
		server_reply(&w->srv, msg);
		break;
	case IMSG_OCSP_ANSWER:
	case IMSG_OCSP_REVOKED:
		server_ocsp(&w->srv, msg);
		break;
	case IMSG_STORE_SNAPSHOT:
	case IMSG_STORE_SNAPSHOT_END:
	case IMSG_STORE_CHANGE:
		worker_store_msg(w, msg);
		break;
	case IMSG_CFG_BEGIN:
		if (cfgmsg_get_gen(msg, &gen) == -1)
			fatalx("malformed configuration begin");
		wconf_free(w->pending);
		w->pending = wconf_new(gen);
		break;
	case IMSG_CFG_MAIN:
		worker_cfg_main(w, msg);
		break;
	case IMSG_CFG_LISTEN:
		worker_cfg_listen(w, msg);
		break;
	case IMSG_CFG_TLS_CERT:
	case IMSG_CFG_TLS_KEYREF:
	case IMSG_CFG_TLS_CA:
	case IMSG_CFG_TLS_CRL:
	case IMSG_CFG_TLS_STAPLE:
		worker_cfg_data(w, msg);
		break;
	case IMSG_STAPLE:
		worker_staple(w, msg);
		break;
	case IMSG_CFG_RULE:
		if (w->pending == NULL || (rule = cfgmsg_get_rule(msg)) ==
		    NULL)
			fatalx("malformed rule from parent");
		TAILQ_INSERT_TAIL(&w->pending->rules, rule, entry);
		break;
	case IMSG_CFG_END:
		worker_cfg_end(w, msg);
		break;
	case IMSG_CFG_COMMIT:
		worker_cfg_commit(w, msg);
		break;
	case IMSG_TICKET_KEY:
		worker_ticket(w, msg);
		break;
	case IMSG_KH_CHANNEL:
		if (msg->fd == -1)
			fatalx("keyholder channel without descriptor");
		khprov_set_channel(w->khprov, msg->fd);
		msg->fd = -1;
		break;
	case IMSG_SHM:
		worker_shm(w, msg);
		break;
	case IMSG_PING:
		if (proc_answer_ping(&w->parent, msg) == -1)
			fatalx("malformed ping");
		break;
	case IMSG_CTL_VERBOSE:
		if (ipc_get_fixed(msg, &v, sizeof(v)) == -1)
			fatalx("malformed verbose message");
		log_setverbose(v);
		break;
	case IMSG_CTL_SHUTDOWN:
		if (w->srv.shutdown)
			break;
		log_debug("shutting down, %d connections", w->srv.nconns);
		server_shutdown(&w->srv);
		timerclear(&tv);
		tv.tv_sec = (w->srv.conf ? w->srv.conf->main.timeout_request :
		    10) + 1;
		evtimer_assign(&w->shutdown_ev, w->base, worker_shutdown_force,
		    w);
		evtimer_add(&w->shutdown_ev, &tv);
		break;
	default:
		fatalx("unexpected message %u from parent", msg->hdr.type);
	}
}

static void
worker_parent_io(int fd, short ev, void *arg)
{
	struct worker	*w = arg;
	int		 r;

	if (ev & EV_WRITE)
		worker_parent_flush(w);
	if (!(ev & EV_READ))
		return;
	if ((r = ipc_read_all(&w->parent, worker_dispatch_parent, w)) == 0) {
		/* the parent is gone: nobody to answer, nothing to store */
		log_setchannel(NULL, NULL, NULL);
		log_debug("parent channel closed, exiting");
		exit(0);
	}
	if (r == -1)
		fatal("parent channel");
	worker_parent_flush(w);
}

static void
worker_signal(int sig, short ev, void *arg)
{
	struct worker	*w = arg;

	/* The parent asks for shutdown over the channel; a signal is final. */
	log_debug("signal %d, exiting", sig);
	event_base_loopbreak(w->base);
}

int
worker_main(int id, int foreground, int verbose, const char *root, uid_t uid,
    gid_t gid, int maxconn)
{
	struct worker		 wk, *w = &wk;
	struct server_port	 port;
	struct event		 evterm, evint;

	memset(w, 0, sizeof(*w));
	w->id = id;
	w->foreground = foreground;
	log_init(foreground, verbose);
	snprintf(w->name, sizeof(w->name), "worker %d", id);
	log_procinit(w->name);
	setproctitle("%s", w->name);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	cache_init(&w->cache);

	/* libraries first: the sandbox allows only what they do afterwards */
	if ((w->khprov = khprov_init()) == NULL)
		fatalx("cannot install the keyholder provider");
	if (tls_init() == -1)
		fatalx("tls_init");
	if ((w->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	port.store = worker_send_store;
	port.metrics = worker_send_metrics;
	port.sync = worker_send_sync;
	port.ocsp = worker_send_ocsp;
	port.arg = w;
	server_init(&w->srv, w->base, &w->cache, &port);
	khprov_set_observer(w->khprov, server_sign_observer, &w->srv);

	ipc_init(&w->parent, PROTO_CHANNEL_FD);
	if (fcntl(PROTO_CHANNEL_FD, F_SETFL, O_NONBLOCK) == -1)
		fatal("channel to parent");
	if (!foreground)
		log_setchannel(&w->parent, worker_log_kick, w);
	event_assign(&w->parent_ev, w->base, w->parent.fd,
	    EV_READ | EV_PERSIST, worker_parent_io, w);
	event_add(&w->parent_ev, NULL);
	w->parent_events = EV_READ;
	signal_set(&evterm, SIGTERM, worker_signal, w);
	signal_set(&evint, SIGINT, worker_signal, w);
	event_base_set(w->base, &evterm);
	event_base_set(w->base, &evint);
	signal_add(&evterm, NULL);
	signal_add(&evint, NULL);

	/* descriptors: the connections, listeners, channels, a margin */
	privdrop_child(root, uid, gid, maxconn > 0 ? maxconn + 64 : 0);
	sandbox_child(SANDBOX_WORKER);

	event_base_dispatch(w->base);
	log_setchannel(NULL, NULL, NULL);
	log_debug("exiting");
	exit(0);
}
