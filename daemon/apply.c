#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "apply.h"
#include "authz.h"
#include "cfgmsg.h"
#include "check.h"
#include "config.h"
#include "keyref.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "proc.h"
#include "proto.h"
#include "sdnotify.h"
#include "tlsmat.h"

/*
 * Starting and reloading a configuration is one transaction:
 *  1. read the certificate, CA and CRL files (the parent never reads the
 *     private key: it passes the open key file to each keyholder, which
 *     answers with the public key),
 *  2. check every keyholder's public key against the certificate,
 *  3. send the configuration to every worker (CFG_BEGIN ... CFG_END) and
 *     wait for each CFG_DONE,
 *  4. CFG_COMMIT to all at once.
 * A failure at any step changes nothing: the running configuration stays.
 */

#define APPLY_TIMEOUT		10	/* seconds for keyholders and workers */
#define APPLY_START_TIMEOUT	30	/* at start-up the workers start too */
#define APPLY_KEY_DROP_DELAY	60	/* old keys outlive handshakes in flight */

static void	apply_fail(struct apply *, const char *, ...)
		    __attribute__((__format__(printf, 2, 3)));
static void	apply_commit(struct apply *);

/* For a token key the descriptor is the PIN file's (check_key_open). */
static int
apply_key_to(struct proc *kh, const struct config *conf, uint32_t keyid,
    char *err, size_t errlen)
{
	struct ipc_wbuf	*wb;
	int		 fd;

	if (!proc_alive(kh))
		return 0;
	if ((fd = check_key_open(conf, err, errlen)) == -1)
		return -1;
	if ((wb = ipc_create(IMSG_KH_KEY, 0, 64)) == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ipc_add_u32(wb, keyid);
	ipc_add_str(wb, conf->tls.key);
	if (proc_send(kh, wb, fd) == -1) {
		snprintf(err, errlen, "keyholder %d: %s", kh->id,
		    strerror(errno));
		return -1;
	}
	proc_flush(kh);
	return 1;
}

/* A (re)started keyholder gets the keys in use and any being applied. */
void
apply_keyholder_started(struct apply *a, struct proc *kh)
{
	struct apply_txn	*t = &a->txn;
	char			 err[512];

	if (a->mat != NULL && apply_key_to(kh, a->conf,
	    a->mat->keyid, err, sizeof(err)) == -1)
		log_warnx("keyholder %d: %s", kh->id, err);
	if (t->phase == APPLY_KEYS && apply_key_to(kh, t->conf,
	    t->mat->keyid, err, sizeof(err)) == 1)
		t->keys_waiting++;
}

struct apply_drop {
	struct apply	*a;
	uint32_t	 keyid;
};

static void
apply_key_drop(int fd, short ev, void *arg)
{
	struct apply_drop	*d = arg;

	proc_group_compose(d->a->keyholders, IMSG_KH_KEY_DROP, &d->keyid,
	    sizeof(d->keyid));
	free(d);
}

static void
apply_key_drop_later(struct apply *a, uint32_t keyid, int delay)
{
	struct apply_drop	*d;
	struct timeval		 tv = { delay, 0 };

	if ((d = malloc(sizeof(*d))) == NULL)
		return;
	d->a = a;
	d->keyid = keyid;
	event_base_once(a->base, -1, EV_TIMEOUT, apply_key_drop, d, &tv);
}

/*
 * Every worker asked has answered, died, or run out of time.  The workers
 * all get the same configuration, checked by the parent first: if none
 * could use it, it is refused; if some could, the others are broken (or
 * hostile), and are replaced.  The new configuration is committed on the
 * healthy ones and reaches the replacements when they start: a new CA, CRL
 * or rule set never waits for one worker.
 */
static void
apply_settle(struct apply *a)
{
	struct apply_txn	*t = &a->txn;
	struct proc		*w;
	int			 i;

	if (t->workers_failed > 0 && (t->workers_ok == 0 || t->startup)) {
		apply_fail(a, "%s", t->why);
		return;
	}
	for (i = 0; i < a->workers->n; i++) {
		w = &a->workers->procs[i];
		if (proc_alive(w) && a->cfg_sent[i] == t->gen &&
		    a->cfg_done[i] != t->gen)
			proc_kill(w, "did not take the configuration");
	}
	apply_commit(a);
}

/* A worker that does not answer is stuck; keyholders must all answer. */
static void
apply_timeout(int fd, short ev, void *arg)
{
	struct apply		*a = arg;
	struct apply_txn	*t = &a->txn;

	if (t->phase == APPLY_KEYS || t->startup) {
		apply_fail(a, "timed out waiting for the %s",
		    t->phase == APPLY_KEYS ? "keyholders" : "workers");
		return;
	}
	apply_settle(a);
}

static void
apply_new_ticket(struct proto_ticket_key *k, uint32_t rev)
{
	k->keyrev = rev;
	arc4random_buf(k->key, sizeof(k->key));
}

/*
 * A ticket key of a shared secret, for one policy: nodes with the same CA,
 * CRL and rules make the same key and read each other's tickets; a policy
 * change makes other keys, so that its tickets do not resume.  Shared
 * keys are numbered apart from the node's own (the high bit).
 */
#define APPLY_SHARED_REV	0x80000000U

static void
apply_derive_ticket(const struct proto_ticket_key *secret, uint64_t policy,
    struct proto_ticket_key *k)
{
	uint8_t		 in[16 + sizeof(policy)];
	unsigned int	 len = sizeof(k->key);

	memcpy(in, "todod ticket key", 16);
	memcpy(in + 16, &policy, sizeof(policy));
	k->keyrev = secret->keyrev | APPLY_SHARED_REV;
	if (HMAC(EVP_sha384(), secret->key, sizeof(secret->key), in,
	    sizeof(in), k->key, &len) == NULL || len != sizeof(k->key))
		fatalx("%s: HMAC", __func__);
}

/* Every shared key for this policy, oldest first; 0 if none yet. */
static int
apply_shared_keys(const struct apply *a, uint64_t policy,
    struct proto_ticket_key *keys)
{
	int	 i;

	for (i = 0; i < a->nsecrets; i++)
		apply_derive_ticket(&a->secrets[i], policy, &keys[i]);
	return a->nsecrets;
}

/* Settings that only a restart changes keep their old values. */
static void
apply_keep_restart_settings(struct config *oc, struct config *nc)
{
	char	*s;

	if (nc->prefork != oc->prefork || nc->keyholders != oc->keyholders ||
	    nc->max_signatures != oc->max_signatures)
		log_warnx("prefork/keyholders/max signatures changed: "
		    "restart todod to apply");
	nc->prefork = oc->prefork;
	nc->keyholders = oc->keyholders;
	nc->max_signatures = oc->max_signatures;
#define KEEP(f) do {							\
	if (strcmp(nc->f, oc->f) != 0) {				\
		log_warnx(#f " changed: restart todod to apply");	\
		if ((s = strdup(oc->f)) == NULL)			\
			fatal("%s", __func__);				\
		free(nc->f);						\
		nc->f = s;						\
	}								\
} while (0)
	KEEP(user);
	KEEP(chroot);
	KEEP(database);
#undef KEEP
}

void
apply_init(struct apply *a, struct event_base *base, struct config *conf,
    struct proc_group *workers, struct proc_group *keyholders,
    struct metrics *metrics, const struct apply_hooks *hooks, void *arg)
{
	memset(a, 0, sizeof(*a));
	a->base = base;
	a->conf = conf;
	a->workers = workers;
	a->keyholders = keyholders;
	a->metrics = metrics;
	a->hooks = *hooks;
	a->arg = arg;
	evtimer_assign(&a->txn.timeout_ev, base, apply_timeout, a);
}

int
apply_busy(const struct apply *a)
{
	return a->txn.phase != APPLY_IDLE;
}

/* The tickets of a new transaction: a new policy gets new ones. */
static void
apply_txn_tickets(struct apply *a, const struct config *conf,
    const struct tlsmat *m)
{
	struct apply_txn	*t = &a->txn;

	/* a new policy must not be skipped by resuming an old session */
	if (t->startup || a->mat == NULL || a->mat->policy != m->policy ||
	    conf->tls.ticket_lifetime != a->conf->tls.ticket_lifetime) {
		if ((t->ntickets = apply_shared_keys(a, m->policy,
		    t->tickets)) > 0)
			return;
		apply_new_ticket(&t->tickets[0], ++a->ticket_rev);
		t->ntickets = 1;
	} else {
		memcpy(t->tickets, a->tickets, sizeof(t->tickets));
		t->ntickets = a->ntickets;
	}
}

/* Begin: the key to every keyholder; the rest follows their answers. */
static int
apply_send_keys(struct apply *a, char *err, size_t errlen)
{
	struct apply_txn	*t = &a->txn;
	int			 i, r, sent = 0;

	for (i = 0; i < a->keyholders->n; i++) {
		r = apply_key_to(&a->keyholders->procs[i], t->conf,
		    t->mat->keyid, err, errlen);
		if (r == -1)
			return -1;
		sent += r;
	}
	return sent;
}

int
apply_start(struct apply *a, struct config *conf, int startup, char *err,
    size_t errlen)
{
	struct apply_txn	*t = &a->txn;
	struct tlsmat		*m;
	struct timeval		 tv = { APPLY_TIMEOUT, 0 };
	int			 sent;

	if (t->phase != APPLY_IDLE) {
		snprintf(err, errlen, "a reload is in progress");
		goto fail;
	}
	/* the same checks as todod -n: what one accepts, the other does */
	if (check_config(conf, 0, &m, err, errlen) != 0)
		goto fail;
	if (a->hooks.material != NULL)
		a->hooks.material(a->arg, conf, m);
	if (!startup) {
		apply_keep_restart_settings(a->conf, conf);
		if (listen_bind(a->conf, conf, a->workers->n, err,
		    errlen) == -1) {
			tlsmat_free(m);
			listen_close(conf);
			goto fail;
		}
	}
	m->keyid = ++a->next_keyid;
	t->startup = startup;
	t->conf = conf;
	t->mat = m;
	t->gen = ++a->gen;
	apply_txn_tickets(a, conf, m);
	t->phase = APPLY_KEYS;
	if ((sent = apply_send_keys(a, err, errlen)) == -1) {
		t->phase = APPLY_IDLE;
		if (!startup)
			listen_close(conf);
		tlsmat_free(m);
		t->mat = NULL;
		goto fail;
	}
	t->keys_waiting = sent;
	if (startup)
		tv.tv_sec = APPLY_START_TIMEOUT;
	evtimer_add(&t->timeout_ev, &tv);
	if (sent == 0)
		apply_fail(a, "no keyholder is running");
	return 0;
 fail:
	if (!startup)
		config_free(conf);
	return -1;
}

static void
apply_txn_clear(struct apply_txn *t)
{
	evtimer_del(&t->timeout_ev);
	explicit_bzero(t->tickets, sizeof(t->tickets));
	t->ntickets = 0;
	t->phase = APPLY_IDLE;
	t->startup = 0;
	t->conf = NULL;
	t->mat = NULL;
	t->keys_waiting = t->workers_waiting = 0;
	t->workers_ok = t->workers_failed = 0;
	t->why[0] = '\0';
	memset(t->failed, 0, sizeof(t->failed));
}

static void
apply_fail(struct apply *a, const char *fmt, ...)
{
	struct apply_txn	*t = &a->txn;
	char			 why[1024];
	va_list			 ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	evtimer_del(&t->timeout_ev);
	if (t->startup)
		a->hooks.started(a->arg, why);	/* does not return */
	log_warnx("reload failed: %s", why);
	metrics_reload(a->metrics, 0);
	sdnotify_ready();
	apply_key_drop_later(a, t->mat->keyid, 0);
	listen_close(t->conf);
	config_free(t->conf);
	tlsmat_free(t->mat);
	apply_txn_clear(t);
}

/* One configuration transaction to one worker. */
static void
apply_send_txn(struct apply *a, struct proc *w, struct config *conf,
    struct tlsmat *m, uint32_t gen, const struct proto_ticket_key *tickets,
    int ntickets)
{
	struct proto_cfg_main	 main;
	struct config_listen	*l;
	struct authz_rule	*r;
	size_t			 mark = proc_queue_cost(w);
	int			 i, fd, nrules = 0;

	TAILQ_FOREACH(r, &conf->rules, entry)
		nrules++;
	memset(&main, 0, sizeof(main));
	main.worker_id = w->id;
	main.nworkers = a->workers->n;
	main.timeout_request = conf->timeout_request;
	main.timeout_idle = conf->timeout_idle;
	main.timeout_handshake = conf->timeout_handshake;
	main.max_connections = conf->max_connections;
	main.protocols = conf->tls.protocols_mask;
	main.session_lifetime = conf->tls.ticket_lifetime;
	main.verbose = log_getverbose();
	main.nrules = nrules;
	main.policy_id = m->policy;
	main.cache_size = conf->cache_size;
	main.client_ocsp = conf->tls.client_ocsp;
	main.timeout_ocsp = conf->timeout_ocsp;

	cfgmsg_send_begin(&w->ipc, gen);
	if (cfgmsg_send_main(&w->ipc, &main, conf->tls.ciphers) == -1)
		fatal("%s", __func__);
	TAILQ_FOREACH(l, &conf->listens, entry) {
		if (l->fds[w->id - 1] == -1)
			continue;	/* could not be opened again: logged */
		if ((fd = fcntl(l->fds[w->id - 1], F_DUPFD_CLOEXEC, 0)) == -1)
			fatal("dup listener");
		if (cfgmsg_send_listen(&w->ipc, l->name, fd) == -1)
			fatal("%s", __func__);
	}
	if (cfgmsg_send_tls(&w->ipc, IMSG_CFG_TLS_CERT, m->cert.data,
	    m->cert.len) == -1 || cfgmsg_send_tls(&w->ipc,
	    IMSG_CFG_TLS_KEYREF, m->keyref.data, m->keyref.len) == -1 ||
	    cfgmsg_send_tls(&w->ipc, IMSG_CFG_TLS_CA, m->ca.data,
	    m->ca.len) == -1 || (m->crl.len > 0 && cfgmsg_send_tls(&w->ipc,
	    IMSG_CFG_TLS_CRL, m->crl.data, m->crl.len) == -1) ||
	    (m->staple.len > 0 && cfgmsg_send_tls(&w->ipc,
	    IMSG_CFG_TLS_STAPLE, m->staple.data, m->staple.len) == -1))
		log_warn("worker %d: configuration", w->id);
	TAILQ_FOREACH(r, &conf->rules, entry)
		if (cfgmsg_send_rule(&w->ipc, r) == -1)
			fatal("rule to worker %d", w->id);
	for (i = 0; i < ntickets; i++)
		cfgmsg_send_ticket(&w->ipc, &tickets[i]);
	cfgmsg_send_end(&w->ipc);
	/* ours to send, whatever its size: not held against its bound */
	proc_allow(w, mark);
	a->cfg_sent[w->id - 1] = gen;
	proc_flush(w);
}

/* The transaction under way, to one more worker. */
static void
apply_send_pending(struct apply *a, struct proc *w)
{
	struct apply_txn	*t = &a->txn;

	apply_send_txn(a, w, t->conf, t->mat, t->gen, t->tickets,
	    t->ntickets);
	t->workers_waiting++;
}

/*
 * A (re)started worker: its listening sockets, and the configuration.  One
 * that starts while workers are being asked to take a new one is asked
 * too: it never serves with what is being replaced.
 */
void
apply_worker_started(struct apply *a, struct proc *w)
{
	struct apply_txn	*t = &a->txn;

	a->cfg_sent[w->id - 1] = a->cfg_done[w->id - 1] = 0;
	listen_worker(a->conf, w->id - 1, 1);
	if (t->phase != APPLY_IDLE && t->conf != a->conf)
		listen_worker(t->conf, w->id - 1, 1);
	if (t->phase == APPLY_WORKERS)
		apply_send_pending(a, w);
	else if (a->mat != NULL && a->mat->keyref.len > 0)
		apply_send_txn(a, w, a->conf, a->mat, a->gen_committed,
		    a->tickets, a->ntickets);
}

static void
apply_keys_done(struct apply *a)
{
	struct apply_txn	*t = &a->txn;
	struct proc		*w;
	char			*pem;
	size_t			 len;
	int			 i;

	if (keyref_encode(t->mat->keyid, t->mat->spki, t->mat->spkilen, &pem,
	    &len) == -1) {
		apply_fail(a, "cannot encode the key reference");
		return;
	}
	buf_reset(&t->mat->keyref);
	buf_add(&t->mat->keyref, pem, len);
	free(pem);
	t->phase = APPLY_WORKERS;
	t->workers_waiting = 0;
	if (t->startup && a->hooks.start_workers(a->arg) == -1) {
		apply_fail(a, "cannot start the workers");
		return;
	}
	for (i = 0; i < a->workers->n; i++) {
		w = &a->workers->procs[i];
		if (proc_alive(w) && a->cfg_sent[i] != t->gen)
			apply_send_pending(a, w);
	}
	if (t->workers_waiting == 0)
		apply_settle(a);
}

void
apply_key_reply(struct apply *a, struct proc *kh, struct ipc_msg *msg)
{
	struct apply_txn	*t = &a->txn;
	const void		*spki;
	const char		*reason;
	size_t			 len;
	uint32_t		 keyid;
	int			 ours;

	if (ipc_get_u32(msg, &keyid) == -1)
		goto bad;
	ours = t->phase == APPLY_KEYS && t->mat != NULL &&
	    keyid == t->mat->keyid;
	if (msg->hdr.type == IMSG_KH_KEY_FAIL) {
		if (ipc_get_str(msg, &reason) == -1 || ipc_get_end(msg) == -1)
			goto bad;
		if (ours)
			apply_fail(a, "%s", reason);
		else
			log_warnx("keyholder %d: %s", kh->id, reason);
		return;
	}
	if (ipc_get_data(msg, &spki, &len) == -1 || ipc_get_end(msg) == -1)
		goto bad;
	if (ours) {
		if (len != t->mat->spkilen || memcmp(spki, t->mat->spki,
		    len) != 0) {
			apply_fail(a, "%s: key does not match certificate %s",
			    t->conf->tls.key, t->conf->tls.cert);
			return;
		}
		if (--t->keys_waiting == 0)
			apply_keys_done(a);
	} else if (a->mat != NULL && keyid == a->mat->keyid &&
	    (len != a->mat->spkilen || memcmp(spki, a->mat->spki, len) != 0))
		log_warnx("%s no longer matches certificate %s: reload to "
		    "check it", a->conf->tls.key, a->conf->tls.cert);
	return;
 bad:
	log_warnx("keyholder %d: malformed key reply", kh->id);
}

/* Once a day: what expires soon. */
static void
apply_daily(int fd, short ev, void *arg)
{
	struct apply	*a = arg;
	struct timeval	 tv = { 86400, 0 };

	tlsmat_warn_expiry(a->conf, a->mat);
	evtimer_add(&a->daily_ev, &tv);
}

/* A new session ticket key for every worker; the oldest ones age out. */
static void
apply_rotate_ticket(int fd, short ev, void *arg)
{
	struct apply		*a = arg;
	struct proto_ticket_key	 k;
	struct proc		*w;
	struct timeval		 tv;
	int			 i;

	/* shared: the store rotates the secrets, apply_shared_tickets */
	if (a->conf->tls.ticket_lifetime <= 0 || a->shared)
		return;
	apply_new_ticket(&k, ++a->ticket_rev);
	cfgmsg_ticket_keep(a->tickets, &a->ntickets, &k);
	for (i = 0; i < a->workers->n; i++) {
		w = &a->workers->procs[i];
		if (proc_alive(w) && cfgmsg_send_ticket(&w->ipc, &k) == 0)
			proc_flush(w);
	}
	explicit_bzero(&k, sizeof(k));
	timerclear(&tv);
	tv.tv_sec = a->conf->tls.ticket_lifetime / 4;
	evtimer_add(&a->ticket_ev, &tv);
}

/* The shared keys the workers do not have yet go to them, oldest first. */
static void
apply_shared_push(struct apply *a)
{
	struct proto_ticket_key	 keys[PROTO_TICKETS_KEPT];
	struct proc		*w;
	int			 i, j, n, have;

	if (a->mat == NULL || a->txn.phase != APPLY_IDLE ||
	    a->conf->tls.ticket_lifetime <= 0)
		return;
	n = apply_shared_keys(a, a->mat->policy, keys);
	for (i = 0; i < n; i++) {
		for (have = 0, j = 0; j < a->ntickets; j++)
			if (a->tickets[j].keyrev == keys[i].keyrev)
				have = 1;
		if (have)
			continue;
		cfgmsg_ticket_keep(a->tickets, &a->ntickets, &keys[i]);
		for (j = 0; j < a->workers->n; j++) {
			w = &a->workers->procs[j];
			if (proc_alive(w) && a->cfg_sent[j] ==
			    a->gen_committed &&
			    cfgmsg_send_ticket(&w->ipc, &keys[i]) == 0)
				proc_flush(w);
		}
	}
	explicit_bzero(keys, sizeof(keys));
}

/*
 * The store's secrets changed (another node rotated them, or this one):
 * the newest PROTO_TICKETS_KEPT are kept, their keys go to the workers.
 * During a reload, the commit pushes them.
 */
void
apply_shared_tickets(struct apply *a, const struct proto_ticket_key *sec,
    int n)
{
	if (n > PROTO_TICKETS_KEPT) {
		sec += n - PROTO_TICKETS_KEPT;
		n = PROTO_TICKETS_KEPT;
	}
	explicit_bzero(a->secrets, sizeof(a->secrets));
	memcpy(a->secrets, sec, n * sizeof(*sec));
	a->nsecrets = n;
	apply_shared_push(a);
}

/* Timers that follow the configuration in use. */
static void
apply_timers(struct apply *a, int startup)
{
	struct timeval	 tv;

	if (event_initialized(&a->ticket_ev))
		evtimer_del(&a->ticket_ev);
	if (a->conf->tls.ticket_lifetime > 0) {
		timerclear(&tv);
		tv.tv_sec = a->conf->tls.ticket_lifetime / 4;
		evtimer_assign(&a->ticket_ev, a->base, apply_rotate_ticket, a);
		evtimer_add(&a->ticket_ev, &tv);
	}
	if (startup) {
		evtimer_assign(&a->daily_ev, a->base, apply_daily, a);
		timerclear(&tv);
		tv.tv_sec = 86400;
		evtimer_add(&a->daily_ev, &tv);
	}
}

/* Every worker that took the new configuration starts using it. */
static void
apply_commit_workers(struct apply *a)
{
	struct apply_txn	*t = &a->txn;
	struct proc		*w;
	int			 i;

	for (i = 0; i < a->workers->n; i++) {
		w = &a->workers->procs[i];
		if (proc_alive(w) && a->cfg_done[i] == t->gen) {
			cfgmsg_send_commit(&w->ipc, t->gen);
			proc_flush(w);
		}
	}
}

static void	apply_shared_push(struct apply *);

static void
apply_commit(struct apply *a)
{
	struct apply_txn	*t = &a->txn;
	struct config		*old = a->conf;
	struct tlsmat		*oldm = a->mat;
	struct proc		*w;
	int			 i, startup = t->startup;

	evtimer_del(&t->timeout_ev);
	apply_commit_workers(a);
	a->conf = t->conf;
	a->mat = t->mat;
	a->gen_committed = t->gen;
	memcpy(a->tickets, t->tickets, sizeof(a->tickets));
	a->ntickets = t->ntickets;
	if (!startup) {
		listen_close(old);
		config_free(old);
		if (oldm != NULL)
			apply_key_drop_later(a, oldm->keyid,
			    APPLY_KEY_DROP_DELAY);
		tlsmat_free(oldm);
		metrics_reload(a->metrics, 1);
		log_info("configuration reloaded");
		sdnotify_ready();
	}
	apply_txn_clear(t);
	apply_shared_push(a);
	/* workers that did not answer in time get it when they are back */
	for (i = 0; i < a->workers->n; i++) {
		w = &a->workers->procs[i];
		if (proc_alive(w) && a->cfg_sent[i] != a->gen_committed)
			apply_send_txn(a, w, a->conf, a->mat,
			    a->gen_committed, a->tickets, a->ntickets);
	}
	apply_timers(a, startup);
	metrics_expiry(a->metrics, a->mat->cert_notafter,
	    a->mat->ca_notafter, a->mat->crl_nextupdate);
	tlsmat_warn_expiry(a->conf, a->mat);
	if (startup)
		a->hooks.started(a->arg, NULL);
}

void
apply_worker_reply(struct apply *a, struct proc *w, struct ipc_msg *msg)
{
	struct apply_txn	*t = &a->txn;
	const char		*why;
	uint32_t		 gen;

	if (cfgmsg_get_reply(msg, &gen, &why) == -1) {
		proc_kill(w, "malformed configuration reply");
		return;
	}
	if (t->phase == APPLY_WORKERS && gen == t->gen &&
	    a->cfg_sent[w->id - 1] == gen && a->cfg_done[w->id - 1] != gen &&
	    !t->failed[w->id - 1]) {
		if (msg->hdr.type == IMSG_CFG_FAILED) {
			if (t->workers_failed++ == 0)
				snprintf(t->why, sizeof(t->why), "worker %d: %s",
				    w->id, why);
			t->failed[w->id - 1] = 1;
		} else {
			a->cfg_done[w->id - 1] = gen;
			t->workers_ok++;
		}
		if (--t->workers_waiting == 0)
			apply_settle(a);
		return;
	}
	if (gen != a->gen_committed || gen != a->cfg_sent[w->id - 1])
		return;		/* an answer to an abandoned transaction */
	if (msg->hdr.type == IMSG_CFG_FAILED) {
		log_warnx("worker %d cannot use the configuration: %s",
		    w->id, why);
		kill(w->pid, SIGTERM);
		return;
	}
	a->cfg_done[w->id - 1] = gen;
	cfgmsg_send_commit(&w->ipc, gen);
	proc_flush(w);
}

/* A child died: stop waiting for its answer; a worker's sockets close. */
void
apply_child_gone(struct apply *a, struct proc *c)
{
	struct apply_txn	*t = &a->txn;
	int			 worker = c->g == a->workers, i = c->id - 1;

	if (worker) {
		/* its share of new connections goes to the others meanwhile */
		listen_worker(a->conf, i, 0);
		if (t->phase != APPLY_IDLE)
			listen_worker(t->conf, i, 0);
	}
	if (t->startup && t->phase != APPLY_IDLE) {
		apply_fail(a, "%s %d died during startup (see above)",
		    c->g->name, c->id);
		return;
	}
	if (!worker && t->phase == APPLY_KEYS) {
		/* it gets the key again when it is restarted */
		if (--t->keys_waiting <= 0) {
			t->keys_waiting = 0;
			apply_keys_done(a);
		}
	} else if (worker && t->phase == APPLY_WORKERS &&
	    a->cfg_sent[i] == t->gen && a->cfg_done[i] != t->gen &&
	    !t->failed[i]) {
		a->cfg_sent[i] = 0;
		if (--t->workers_waiting == 0)
			apply_settle(a);
	}
}

/* Stopping: no worker gets new connections. */
void
apply_shutdown(struct apply *a)
{
	int	 i;

	for (i = 0; i < a->workers->n; i++)
		listen_worker(a->conf, i, 0);
}
