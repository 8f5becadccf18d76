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

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "authz.h"
#include "cfgmsg.h"
#include "config.h"
#include "keyref.h"
#include "khprobe.h"
#include "log.h"
#include "parent.h"
#include "proto.h"

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
#define APPLY_FILE_MAX		(16 * 1024 * 1024)
#define APPLY_KEY_DROP_DELAY	60	/* old keys outlive handshakes in flight */

static void	apply_fail(struct parent *, const char *, ...)
		    __attribute__((__format__(printf, 2, 3)));
static void	apply_commit(struct parent *);

static int
apply_read_file(const char *path, struct buf *b, char *err, size_t errlen)
{
	char	 chunk[8192];
	ssize_t	 n;
	int	 fd;

	buf_init(b, APPLY_FILE_MAX);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_add(b, chunk, n) == -1) {
			snprintf(err, errlen, "%s: too large", path);
			close(fd);
			return -1;
		}
	close(fd);
	if (n == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static time_t
apply_asn1_time(const ASN1_TIME *t)
{
	struct tm	 tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* Parse every certificate of a PEM buffer; returns the count, or -1. */
static int
apply_parse_certs(const struct buf *b, X509 **leaf, time_t *minafter)
{
	BIO	*bio;
	X509	*x;
	time_t	 t;
	int	 n = 0;

	if ((bio = BIO_new_mem_buf(b->data, b->len)) == NULL)
		return -1;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		t = apply_asn1_time(X509_get0_notAfter(x));
		if (minafter != NULL && (*minafter == 0 || t < *minafter))
			*minafter = t;
		if (n++ == 0 && leaf != NULL)
			*leaf = x;
		else
			X509_free(x);
	}
	BIO_free(bio);
	return n;
}

void
tlsmat_free(struct tlsmat *m)
{
	if (m == NULL)
		return;
	buf_free(&m->cert);
	buf_free(&m->ca);
	buf_free(&m->crl);
	buf_free(&m->keyref);
	free(m->spki);
	free(m);
}

/* A hash of what decides who gets in: CA, CRL and the rules. */
static uint64_t
apply_policy_hash(const struct config *conf, const struct tlsmat *m)
{
	const struct authz_rule	*r;
	EVP_MD_CTX		*md;
	unsigned char		 h[EVP_MAX_MD_SIZE];
	unsigned int		 hlen = 0;
	char			 line[2048];
	uint64_t		 v = 0;

	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		fatalx("%s: sha256", __func__);
	EVP_DigestUpdate(md, m->ca.data, m->ca.len);
	EVP_DigestUpdate(md, "\0", 1);
	EVP_DigestUpdate(md, m->crl.data ? (void *)m->crl.data : "", m->crl.len);
	TAILQ_FOREACH(r, &conf->rules, entry) {
		authz_rule_format(r, line, sizeof(line));
		EVP_DigestUpdate(md, line, strlen(line) + 1);
	}
	EVP_DigestFinal_ex(md, h, &hlen);
	EVP_MD_CTX_free(md);
	memcpy(&v, h, sizeof(v));
	return v;
}

/* Read what the workers get; err names the file and problem. */
struct tlsmat *
tlsmat_load(const struct config *conf, char *err, size_t errlen)
{
	struct tlsmat	*m;
	X509		*leaf = NULL;
	X509_CRL	*crl = NULL;
	BIO		*bio;
	unsigned char	*p;
	int		 len;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (apply_read_file(conf->tls.cert, &m->cert, err, errlen) == -1 ||
	    apply_read_file(conf->tls.ca, &m->ca, err, errlen) == -1 ||
	    (conf->tls.crl != NULL &&
	    apply_read_file(conf->tls.crl, &m->crl, err, errlen) == -1))
		goto fail;
	if (apply_parse_certs(&m->cert, &leaf, &m->cert_notafter) < 1) {
		snprintf(err, errlen, "%s: no certificate in PEM file",
		    conf->tls.cert);
		goto fail;
	}
	m->cert_notafter = apply_asn1_time(X509_get0_notAfter(leaf));
	len = i2d_PUBKEY(X509_get0_pubkey(leaf), NULL);
	if (len <= 0 || (m->spki = malloc(len)) == NULL) {
		snprintf(err, errlen, "%s: unusable public key",
		    conf->tls.cert);
		goto fail;
	}
	p = m->spki;
	m->spkilen = i2d_PUBKEY(X509_get0_pubkey(leaf), &p);
	if (apply_parse_certs(&m->ca, NULL, &m->ca_notafter) < 1) {
		snprintf(err, errlen, "%s: no certificate in PEM file",
		    conf->tls.ca);
		goto fail;
	}
	if (m->crl.len > 0) {
		if ((bio = BIO_new_mem_buf(m->crl.data, m->crl.len)) != NULL)
			crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
		BIO_free(bio);
		if (crl == NULL) {
			snprintf(err, errlen, "%s: not a PEM CRL",
			    conf->tls.crl);
			goto fail;
		}
		m->crl_nextupdate = apply_asn1_time(X509_CRL_get0_nextUpdate(
		    crl));
		X509_CRL_free(crl);
	}
	X509_free(leaf);
	m->policy = apply_policy_hash(conf, m);
	return m;
 fail:
	X509_free(leaf);
	tlsmat_free(m);
	return NULL;
}

/* Warn about what expires soon (at start, on reload, once a day). */
void
apply_check_expiry(struct parent *p, const struct tlsmat *m)
{
	time_t		 now = time(NULL), horizon;
	char		 date[64];
	struct tm	 tm;
	struct {
		const char	*what;
		const char	*path;
		time_t		 when;
	} items[] = {
		{ "server certificate", p->conf->tls.cert, m->cert_notafter },
		{ "CA certificate", p->conf->tls.ca, m->ca_notafter },
	};
	size_t		 i;

	horizon = now + (time_t)p->conf->expiry_warn_days * 86400;
	for (i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		gmtime_r(&items[i].when, &tm);
		strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
		if (items[i].when <= now)
			log_warnx("%s %s expired on %s", items[i].what,
			    items[i].path, date);
		else if (items[i].when <= horizon)
			log_warnx("%s %s expires on %s (in %lld days)",
			    items[i].what, items[i].path, date,
			    (long long)(items[i].when - now) / 86400);
	}
	if (m->crl_nextupdate == 0)
		return;
	gmtime_r(&m->crl_nextupdate, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (m->crl_nextupdate <= now)
		log_warnx("CRL %s is out of date since %s; it is still "
		    "enforced (revoked certificates stay refused): publish a "
		    "new CRL and reload", p->conf->tls.crl, date);
	else if (m->crl_nextupdate <= now + 7 * 86400)
		log_warnx("CRL %s must be renewed before %s", p->conf->tls.crl,
		    date);
}

/* For a token key the descriptor is the PIN file's, path the URI. */
static int
apply_key_to(struct parent *p, struct child *kh,
    const struct config_tls *tls, uint32_t keyid, char *err, size_t errlen)
{
	struct ipc_wbuf	*wb;
	const char	*path = tls->key;
	char		 pin[PATH_MAX];
	int		 fd;

	if (kh->pid == 0 || kh->ipc.fd == -1)
		return 0;
	if (khprobe_is_p11(path) ? (khprobe_pin_path(tls, pin, sizeof(pin),
	    err, errlen) == -1 || (fd = khprobe_open_secret(pin, err,
	    errlen)) == -1) : (fd = khprobe_open_secret(path, err,
	    errlen)) == -1)
		return -1;
	if ((wb = ipc_create(IMSG_KH_KEY, 0, 64)) == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ipc_add_u32(wb, keyid);
	ipc_add_str(wb, path);
	if (ipc_send(&kh->ipc, wb, fd) == -1) {
		snprintf(err, errlen, "keyholder %d: %s", kh->id,
		    strerror(errno));
		return -1;
	}
	parent_child_flush(kh);
	return 1;
}

/* A (re)started keyholder gets the keys in use and any being applied. */
void
apply_send_keys(struct parent *p, struct child *kh)
{
	char	 err[512];

	if (p->mat != NULL && apply_key_to(p, kh, &p->conf->tls,
	    p->mat->keyid, err, sizeof(err)) == -1)
		log_warnx("keyholder %d: %s", kh->id, err);
	if (p->apply.phase == APPLY_KEYS && apply_key_to(p, kh,
	    &p->apply.conf->tls, p->apply.mat->keyid, err,
	    sizeof(err)) == 1)
		p->apply.keys_waiting++;
}

static void
apply_key_drop(int fd, short ev, void *arg)
{
	struct {
		struct parent	*p;
		uint32_t	 keyid;
	}		*d = arg;
	struct parent	*p = d->p;
	int		 i;

	for (i = 0; i < p->nkeyholders; i++)
		if (p->keyholders[i].pid != 0) {
			ipc_compose(&p->keyholders[i].ipc, IMSG_KH_KEY_DROP, 0,
			    -1, &d->keyid, sizeof(d->keyid));
			parent_child_flush(&p->keyholders[i]);
		}
	free(d);
}

static void
apply_key_drop_later(struct parent *p, uint32_t keyid, int delay)
{
	struct {
		struct parent	*p;
		uint32_t	 keyid;
	}		*d;
	struct timeval	 tv = { delay, 0 };

	if ((d = malloc(sizeof(*d))) == NULL)
		return;
	d->p = p;
	d->keyid = keyid;
	event_base_once(p->base, -1, EV_TIMEOUT, apply_key_drop, d, &tv);
}

static void
apply_timeout(int fd, short ev, void *arg)
{
	struct parent	*p = arg;

	apply_fail(p, "timed out waiting for the %s",
	    p->apply.phase == APPLY_KEYS ? "keyholders" : "workers");
}

static void
apply_new_ticket(struct proto_ticket_key *k, uint32_t rev)
{
	k->keyrev = rev;
	arc4random_buf(k->key, sizeof(k->key));
}

/* Settings that only a restart changes keep their old values. */
static void
apply_keep_restart_settings(struct parent *p, struct config *nc)
{
	struct config	*oc = p->conf;
	char		*s;

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

static void
apply_close_listeners(struct config *conf)
{
	struct config_listen	*l;
	int			 i;

	TAILQ_FOREACH(l, &conf->listens, entry)
		for (i = 0; i < CONFIG_MAX_WORKERS; i++)
			if (l->fds[i] != -1) {
				close(l->fds[i]);
				l->fds[i] = -1;
			}
}

int
apply_start(struct parent *p, struct config *conf, int startup, char *err,
    size_t errlen)
{
	struct apply	*a = &p->apply;
	struct tlsmat	*m;
	struct timeval	 tv = { APPLY_TIMEOUT, 0 };
	int		 i, r, sent = 0;

	if (a->phase != APPLY_IDLE) {
		snprintf(err, errlen, "a reload is in progress");
		goto fail;
	}
	if ((m = tlsmat_load(conf, err, errlen)) == NULL)
		goto fail;
	if (!startup) {
		apply_keep_restart_settings(p, conf);
		if (parent_bind(p, conf, err, errlen) == -1) {
			tlsmat_free(m);
			apply_close_listeners(conf);
			goto fail;
		}
	}
	m->keyid = ++p->next_keyid;
	memset(a, 0, sizeof(*a));
	a->startup = startup;
	a->conf = conf;
	a->mat = m;
	a->gen = ++p->gen;
	/* a new policy must not be skipped by resuming an old session */
	if (startup || p->mat == NULL || p->mat->policy != m->policy ||
	    conf->tls.ticket_lifetime != p->conf->tls.ticket_lifetime) {
		apply_new_ticket(&a->tickets[0], ++p->ticket_rev);
		a->ntickets = 1;
		a->new_tickets = 1;
	} else {
		memcpy(a->tickets, p->tickets, sizeof(a->tickets));
		a->ntickets = p->ntickets;
	}
	a->phase = APPLY_KEYS;
	for (i = 0; i < p->nkeyholders; i++) {
		r = apply_key_to(p, &p->keyholders[i], &conf->tls,
		    m->keyid, err, errlen);
		if (r == -1) {
			a->phase = APPLY_IDLE;
			if (!startup)
				apply_close_listeners(conf);
			tlsmat_free(m);
			a->mat = NULL;
			goto fail;
		}
		sent += r;
	}
	a->keys_waiting = sent;
	evtimer_assign(&a->timeout_ev, p->base, apply_timeout, p);
	evtimer_add(&a->timeout_ev, &tv);
	if (sent == 0)
		apply_fail(p, "no keyholder is running");
	return 0;
 fail:
	if (!startup)
		config_free(conf);
	return -1;
}

static void
apply_fail(struct parent *p, const char *fmt, ...)
{
	struct apply	*a = &p->apply;
	char		 why[1024];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	evtimer_del(&a->timeout_ev);
	if (a->startup)
		parent_startup_done(p, why);	/* does not return */
	log_warnx("reload failed: %s", why);
	p->reloads_failed++;
	apply_key_drop_later(p, a->mat->keyid, 0);
	apply_close_listeners(a->conf);
	config_free(a->conf);
	tlsmat_free(a->mat);
	explicit_bzero(a->tickets, sizeof(a->tickets));
	memset(a, 0, sizeof(*a));
}

/* One configuration transaction to one worker. */
static void
apply_send_txn(struct parent *p, struct child *w, struct config *conf,
    struct tlsmat *m, uint32_t gen, const struct proto_ticket_key *tickets,
    int ntickets)
{
	struct proto_cfg_main	 main;
	struct config_listen	*l;
	struct authz_rule	*r;
	int			 i, fd, nrules = 0;

	TAILQ_FOREACH(r, &conf->rules, entry)
		nrules++;
	memset(&main, 0, sizeof(main));
	main.worker_id = w->id;
	main.nworkers = p->nworkers;
	main.timeout_request = conf->timeout_request;
	main.timeout_idle = conf->timeout_idle;
	main.timeout_handshake = conf->timeout_handshake;
	main.max_connections = conf->max_connections;
	main.protocols = conf->tls.protocols_mask;
	main.session_lifetime = conf->tls.ticket_lifetime;
	main.verbose = p->verbose;
	main.nrules = nrules;
	main.policy_id = m->policy;

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
	    IMSG_CFG_TLS_CRL, m->crl.data, m->crl.len) == -1))
		log_warn("worker %d: configuration", w->id);
	TAILQ_FOREACH(r, &conf->rules, entry)
		if (cfgmsg_send_rule(&w->ipc, r) == -1)
			fatal("rule to worker %d", w->id);
	for (i = 0; i < ntickets; i++)
		cfgmsg_send_ticket(&w->ipc, &tickets[i]);
	cfgmsg_send_end(&w->ipc);
	w->cfg_sent = gen;
	parent_child_flush(w);
}

/* A (re)started worker gets the configuration in use. */
void
apply_send_config(struct parent *p, struct child *w)
{
	apply_send_txn(p, w, p->conf, p->mat, p->gen_committed, p->tickets,
	    p->ntickets);
}

static void
apply_keys_done(struct parent *p)
{
	struct apply	*a = &p->apply;
	struct child	*w;
	char		*pem;
	size_t		 len;
	int		 i;

	if (keyref_encode(a->mat->keyid, a->mat->spki, a->mat->spkilen, &pem,
	    &len) == -1) {
		apply_fail(p, "cannot encode the key reference");
		return;
	}
	buf_reset(&a->mat->keyref);
	buf_add(&a->mat->keyref, pem, len);
	free(pem);
	a->phase = APPLY_WORKERS;
	a->workers_waiting = 0;
	for (i = 0; i < p->nworkers; i++) {
		w = &p->workers[i];
		if (a->startup && parent_spawn_worker(p, w) == -1) {
			apply_fail(p, "cannot start worker %d", w->id);
			return;
		}
		if (w->pid == 0 || w->ipc.fd == -1)
			continue;
		apply_send_txn(p, w, a->conf, a->mat, a->gen, a->tickets,
		    a->ntickets);
		a->workers_waiting++;
	}
	if (a->workers_waiting == 0)
		apply_commit(p);
}

void
apply_key_reply(struct parent *p, struct child *kh, struct ipc_msg *msg)
{
	struct apply	*a = &p->apply;
	const void	*spki;
	const char	*reason;
	size_t		 len;
	uint32_t	 keyid;
	int		 ours;

	if (ipc_get_u32(msg, &keyid) == -1)
		goto bad;
	ours = a->phase == APPLY_KEYS && a->mat != NULL &&
	    keyid == a->mat->keyid;
	if (msg->hdr.type == IMSG_KH_KEY_FAIL) {
		if (ipc_get_str(msg, &reason) == -1 || ipc_get_end(msg) == -1)
			goto bad;
		if (ours)
			apply_fail(p, "%s", reason);
		else
			log_warnx("keyholder %d: %s", kh->id, reason);
		return;
	}
	if (ipc_get_data(msg, &spki, &len) == -1 || ipc_get_end(msg) == -1)
		goto bad;
	if (ours) {
		if (len != a->mat->spkilen || memcmp(spki, a->mat->spki,
		    len) != 0) {
			apply_fail(p, "%s: key does not match certificate %s",
			    a->conf->tls.key, a->conf->tls.cert);
			return;
		}
		if (--a->keys_waiting == 0)
			apply_keys_done(p);
	} else if (p->mat != NULL && keyid == p->mat->keyid &&
	    (len != p->mat->spkilen || memcmp(spki, p->mat->spki, len) != 0))
		log_warnx("%s no longer matches certificate %s: reload to "
		    "check it", p->conf->tls.key, p->conf->tls.cert);
	return;
 bad:
	log_warnx("keyholder %d: malformed key reply", kh->id);
}

/* Once a day: what expires soon. */
static void
apply_daily(int fd, short ev, void *arg)
{
	struct parent	*p = arg;
	struct timeval	 tv = { 86400, 0 };

	apply_check_expiry(p, p->mat);
	evtimer_add(&p->daily_ev, &tv);
}

static void
apply_ticket_timer(int fd, short ev, void *arg)
{
	apply_rotate_ticket(arg);
}

static void
apply_commit(struct parent *p)
{
	struct apply	*a = &p->apply;
	struct config	*old = p->conf;
	struct tlsmat	*oldm = p->mat;
	struct child	*w;
	struct timeval	 tv;
	int		 i, startup = a->startup;

	evtimer_del(&a->timeout_ev);
	for (i = 0; i < p->nworkers; i++) {
		w = &p->workers[i];
		if (w->pid != 0 && w->cfg_done == a->gen) {
			cfgmsg_send_commit(&w->ipc, a->gen);
			w->ready = 1;
			parent_child_flush(w);
		}
	}
	p->conf = a->conf;
	p->mat = a->mat;
	p->gen_committed = a->gen;
	memcpy(p->tickets, a->tickets, sizeof(p->tickets));
	p->ntickets = a->ntickets;
	if (!startup) {
		apply_close_listeners(old);
		config_free(old);
		if (oldm != NULL)
			apply_key_drop_later(p, oldm->keyid,
			    APPLY_KEY_DROP_DELAY);
		tlsmat_free(oldm);
		p->reloads_ok++;
		log_info("configuration reloaded");
	}
	explicit_bzero(a->tickets, sizeof(a->tickets));
	memset(a, 0, sizeof(*a));
	/* workers started while this was under way get it now */
	for (i = 0; i < p->nworkers; i++) {
		w = &p->workers[i];
		if (w->pid != 0 && w->cfg_sent != p->gen_committed)
			apply_send_config(p, w);
	}
	if (event_initialized(&p->ticket_ev))
		evtimer_del(&p->ticket_ev);
	if (p->conf->tls.ticket_lifetime > 0) {
		timerclear(&tv);
		tv.tv_sec = p->conf->tls.ticket_lifetime / 4;
		evtimer_assign(&p->ticket_ev, p->base, apply_ticket_timer, p);
		evtimer_add(&p->ticket_ev, &tv);
	}
	apply_check_expiry(p, p->mat);
	if (startup) {
		evtimer_assign(&p->daily_ev, p->base, apply_daily, p);
		timerclear(&tv);
		tv.tv_sec = 86400;
		evtimer_add(&p->daily_ev, &tv);
		parent_startup_done(p, NULL);
	}
}

void
apply_worker_reply(struct parent *p, struct child *w, struct ipc_msg *msg)
{
	struct apply	*a = &p->apply;
	const char	*why;
	uint32_t	 gen;

	if (cfgmsg_get_reply(msg, &gen, &why) == -1) {
		log_warnx("worker %d: malformed configuration reply", w->id);
		return;
	}
	if (a->phase == APPLY_WORKERS && gen == a->gen) {
		if (msg->hdr.type == IMSG_CFG_FAILED) {
			apply_fail(p, "worker %d: %s", w->id, why);
			return;
		}
		w->cfg_done = gen;
		if (--a->workers_waiting == 0)
			apply_commit(p);
		return;
	}
	if (gen != p->gen_committed || gen != w->cfg_sent)
		return;		/* an answer to an abandoned transaction */
	if (msg->hdr.type == IMSG_CFG_FAILED) {
		log_warnx("worker %d cannot use the configuration: %s",
		    w->id, why);
		kill(w->pid, SIGTERM);
		return;
	}
	w->cfg_done = gen;
	cfgmsg_send_commit(&w->ipc, gen);
	w->ready = 1;
	parent_child_flush(w);
}

/* A child died: stop waiting for its answer. */
void
apply_child_gone(struct parent *p, struct child *c)
{
	struct apply	*a = &p->apply;

	if (a->startup && a->phase != APPLY_IDLE) {
		apply_fail(p, "%s %d died during startup (see above)",
		    c->role == ROLE_WORKER ? "worker" : "keyholder", c->id);
		return;
	}

	if (c->role == ROLE_KEYHOLDER && a->phase == APPLY_KEYS) {
		/* it gets the key again when it is restarted */
		if (--a->keys_waiting <= 0) {
			a->keys_waiting = 0;
			apply_keys_done(p);
		}
	} else if (c->role == ROLE_WORKER && a->phase == APPLY_WORKERS &&
	    c->cfg_sent == a->gen && c->cfg_done != a->gen) {
		if (--a->workers_waiting == 0)
			apply_commit(p);
	}
}

/* A new session ticket key for every worker; the oldest ones age out. */
void
apply_rotate_ticket(struct parent *p)
{
	struct proto_ticket_key	 k;
	struct timeval		 tv;
	int			 i;

	if (p->conf->tls.ticket_lifetime <= 0)
		return;
	apply_new_ticket(&k, ++p->ticket_rev);
	cfgmsg_ticket_keep(p->tickets, &p->ntickets, &k);
	for (i = 0; i < p->nworkers; i++)
		if (p->workers[i].pid != 0) {
			cfgmsg_send_ticket(&p->workers[i].ipc, &k);
			parent_child_flush(&p->workers[i]);
		}
	explicit_bzero(&k, sizeof(k));
	timerclear(&tv);
	tv.tv_sec = p->conf->tls.ticket_lifetime / 4;
	evtimer_add(&p->ticket_ev, &tv);
}
