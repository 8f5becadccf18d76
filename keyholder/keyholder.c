/*
 * todod-keyholder: holds the private keys and signs for the workers.
 *
 * The parent opens the key files and passes their descriptors; workers
 * reach the keyholder over socketpairs the parent hands to both ends.
 * Once keyholder_sandbox() has run, nothing here opens a file, a socket
 * or a process.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ipc.h"
#include "kh_pkcs11.h"
#include "kh_sign.h"
#include "log.h"
#include "proc.h"
#include "proto.h"
#include "sandbox.h"

#define KH_MAX_WORKERS	128
#define KH_WORKER_QMAX	(256 * 1024)	/* unread replies before a drop */
#define KH_SECURE_HEAP	(256 * 1024)	/* some 140 RSA-4096 keys */
#define KH_KEYBUF_SIZE	(KH_KEYFILE_MAX + 1)

struct kh_worker {
	uint32_t		 id;
	struct ipc		 ipc;
	time_t			 rate_sec;	/* the current second */
	uint32_t		 rate_count;	/* signatures in it */
};

struct keyholder {
	struct ipc		 parent;
	struct kh_keytab	 keys;
	uint32_t		 rate;	/* signatures a worker, a second */
	struct kh_worker	*workers[KH_MAX_WORKERS];
	size_t			 nworkers;
};

/* PEM bytes of a key file while it is parsed; wiped after each use. */
static uint8_t		 keybuf[KH_KEYBUF_SIZE] __attribute__((aligned(4096)));
static char		 keyholder_name[32] = "keyholder";

static void
keyholder_usage(void)
{
	fprintf(stderr, "usage: todod-keyholder [-dv] [-I instance] "
	    "[-p pkcs11-module] [-r chroot] [-s rate] [-u uid:gid]\n");
	exit(1);
}

/*
 * The one place for process hardening, called once OpenSSL is fully
 * initialised (nothing may open a file afterwards): the secure heap and
 * the key buffer are locked while still root, then chroot and the drop
 * to uid/gid (as a normal user: limits only), no core dumps, and the
 * keyholder's seccomp filter.
 */
static void
keyholder_sandbox(const char *root, uid_t uid, gid_t gid, int p11)
{
	int	 r;

	r = CRYPTO_secure_malloc_init(KH_SECURE_HEAP, 32);
	if (mlock(keybuf, sizeof(keybuf)) == -1)
		log_debug("%s: mlock: %s", __func__, strerror(errno));
	privdrop_child(root, uid, gid, KH_MAX_WORKERS + 16);
	/* After the uid change, which resets it. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("%s: prctl PR_SET_DUMPABLE", __func__);
	/* Private key numbers then live in a locked, undumped heap. */
	log_debug("secure heap %s", r == 1 ? "active, locked" :
	    r == 2 ? "active, not locked" : "not available");
	sandbox_child(p11 ? SANDBOX_KEYHOLDER_P11 : SANDBOX_KEYHOLDER);
}

static void
keyholder_exit(struct keyholder *kh, int status)
{
	kh_keytab_clear(&kh->keys);
	exit(status);
}

/*
 * A token key: the descriptor is the PIN file (the parent checked its
 * mode), path the URI.  Trailing line ends are not part of the PIN.
 */
static int
keyholder_key_p11(struct keyholder *kh, uint32_t keyid, int fd,
    const char *uri, char *err, size_t errlen)
{
	size_t	 len = 0;
	int	 r;

	if (kh_key_read_fd(fd, keybuf, &len) == -1 || len > KH_P11_PINMAX) {
		snprintf(err, errlen, "%s: PIN file: %s", uri,
		    len > KH_P11_PINMAX ? "too long" : strerror(errno));
		explicit_bzero(keybuf, sizeof(keybuf));
		return -1;
	}
	while (len > 0 && (keybuf[len - 1] == '\n' || keybuf[len - 1] == '\r'))
		len--;
	keybuf[len] = '\0';
	r = kh_key_add_p11(&kh->keys, keyid, uri, (char *)keybuf, err, errlen);
	explicit_bzero(keybuf, sizeof(keybuf));
	return r;
}

static void
keyholder_key_load(struct keyholder *kh, struct ipc_msg *msg)
{
	struct ipc_wbuf	*wb;
	const char	*path;
	char		 err[512];
	uint8_t		*spki = NULL;
	size_t		 len = 0, spkilen = 0;
	uint32_t	 keyid;
	int		 r;

	if (msg->fd == -1 || ipc_get_u32(msg, &keyid) == -1 ||
	    ipc_get_str(msg, &path) == -1 || ipc_get_end(msg) == -1)
		fatalx("%s: malformed KH_KEY from parent", __func__);
	if (strncmp(path, KH_P11_PREFIX, strlen(KH_P11_PREFIX)) == 0)
		r = keyholder_key_p11(kh, keyid, msg->fd, path, err,
		    sizeof(err));
	else if ((r = kh_key_read_fd(msg->fd, keybuf, &len)) == -1)
		snprintf(err, sizeof(err), "%s: %s", path, errno == EFBIG ?
		    "key file larger than 64 KiB" : strerror(errno));
	else
		r = kh_key_add(&kh->keys, keyid, keybuf, len, path, err,
		    sizeof(err));
	explicit_bzero(keybuf, sizeof(keybuf));
	if (r == 0 && kh_key_spki(kh_key_find(&kh->keys, keyid)->pkey,
	    &spki, &spkilen) == -1) {
		kh_key_drop(&kh->keys, keyid);
		snprintf(err, sizeof(err), "%s: cannot encode public key",
		    path);
		r = -1;
	}
	if (r == -1)
		log_warnx("key %u: %s", keyid, err);
	else
		log_debug("key %u: %s loaded", keyid, path);
	wb = ipc_create(r == 0 ? IMSG_KH_KEY_OK : IMSG_KH_KEY_FAIL, 0,
	    spkilen + sizeof(err));
	if (wb == NULL || ipc_add_u32(wb, keyid) == -1 || (r == 0 ?
	    ipc_add_data(wb, spki, spkilen) : ipc_add_str(wb, err)) == -1 ||
	    ipc_send(&kh->parent, wb, -1) == -1)
		fatal("%s: parent channel", __func__);
	OPENSSL_free(spki);
}

static void
keyholder_worker_drop(struct keyholder *kh, size_t i)
{
	ipc_clear(&kh->workers[i]->ipc);
	free(kh->workers[i]);
	kh->workers[i] = kh->workers[--kh->nworkers];
}

static void
keyholder_worker_add(struct keyholder *kh, struct ipc_msg *msg)
{
	struct kh_worker	*w;
	uint32_t		 id;
	size_t			 i;

	if (msg->fd == -1 || ipc_get_u32(msg, &id) == -1 ||
	    ipc_get_end(msg) == -1)
		fatalx("%s: malformed KH_WORKER from parent", __func__);
	/* A restarted worker gets a new channel: the old one is stale. */
	for (i = 0; i < kh->nworkers; i++)
		if (kh->workers[i]->id == id) {
			keyholder_worker_drop(kh, i);
			break;
		}
	if (kh->nworkers == KH_MAX_WORKERS) {
		log_warnx("worker %u: too many worker channels", id);
		return;		/* the caller closes msg->fd */
	}
	if (fcntl(msg->fd, F_SETFL, O_NONBLOCK) == -1) {
		log_warn("worker %u: fcntl", id);
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal("%s", __func__);
	w->id = id;
	ipc_init(&w->ipc, msg->fd);
	ipc_setmax(&w->ipc, KH_WORKER_QMAX);
	msg->fd = -1;
	kh->workers[kh->nworkers++] = w;
	log_debug("worker %u: channel added", id);
}

static void
keyholder_dispatch_parent(void *arg, struct ipc_msg *msg)
{
	struct keyholder	*kh = arg;
	uint32_t		 v;
	int		 type = msg->hdr.type;

	if (type == IMSG_KH_KEY)
		keyholder_key_load(kh, msg);
	else if (type == IMSG_KH_WORKER)
		keyholder_worker_add(kh, msg);
	else if (msg->fd != -1)
		fatalx("%s: descriptor with message %d", __func__, type);
	else if (type == IMSG_PING) {
		if (proc_answer_ping(&kh->parent, msg) == -1)
			fatalx("%s: malformed ping", __func__);
	} else if (type == IMSG_KH_KEY_DROP) {
		if (ipc_get_fixed(msg, &v, sizeof(v)) == -1)
			fatalx("%s: malformed KH_KEY_DROP", __func__);
		if (kh_key_drop(&kh->keys, v) == 0)
			log_debug("key %u: dropped", v);
	} else if (type == IMSG_CTL_VERBOSE) {
		if (ipc_get_fixed(msg, &v, sizeof(v)) == -1)
			fatalx("%s: malformed CTL_VERBOSE", __func__);
		log_setverbose((int)v);
	} else if (type == IMSG_CTL_SHUTDOWN && msg->len == 0) {
		log_debug("shutting down");
		ipc_flush_blocking(&kh->parent, 200);
		keyholder_exit(kh, 0);
	} else
		fatalx("%s: unexpected message %d from parent", __func__,
		    type);
}

static void
keyholder_parent_input(struct keyholder *kh)
{
	int	 r;

	r = ipc_read_all(&kh->parent, keyholder_dispatch_parent, kh);
	if (r == 0 && errno == 0)	/* the parent is gone: so are we */
		keyholder_exit(kh, 0);
	if (r != 1)
		fatal("%s: parent channel", __func__);
}

/* A header announcing more than a request can hold ends the channel. */
static int
keyholder_worker_oversize(const struct ipc *ipc)
{
	struct ipc_hdr	 hdr;

	if (ipc->rend - ipc->rstart < IPC_HDR_SIZE)
		return 0;
	memcpy(&hdr, ipc->rbuf + ipc->rstart, sizeof(hdr));
	return hdr.len > sizeof(struct proto_sign_req) + PROTO_SIGN_MAX_INPUT;
}

/*
 * One more signature for w in this second, or 0 when that would pass
 * the rate: a worker asking for more than handshakes need is refused
 * (its handshakes fail) but kept, as a burst is not proof of compromise.
 */
static int
keyholder_rate_ok(struct keyholder *kh, struct kh_worker *w)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec != w->rate_sec) {
		w->rate_sec = ts.tv_sec;
		w->rate_count = 0;
	}
	if (w->rate_count >= kh->rate) {
		if (w->rate_count++ == kh->rate)
			log_warnx("worker %u: over %u signatures a second, "
			    "refusing the rest of this second", w->id,
			    kh->rate);
		return 0;
	}
	w->rate_count++;
	return 1;
}

/* Answer one sign request; the reason when the channel must go. */
static const char *
keyholder_sign(struct keyholder *kh, struct kh_worker *w,
    struct ipc_msg *msg)
{
	struct kh_reply		 rep;
	enum kh_tls_shape	 shape;
	size_t			 replen;
	int			 r;

	if (!keyholder_rate_ok(kh, w))
		kh_reply_status(msg->data, msg->len, KH_STATUS_RATE, &rep,
		    &replen);
	else if ((r = kh_handle(&kh->keys, msg->data, msg->len, &rep,
	    &replen, &shape)) == KH_REQ_MALFORMED)
		return "malformed sign request";
	else if (r == KH_REQ_REFUSED)
		return "sign request refused: not a TLS handshake input";
	else if (rep.rep.status != KH_STATUS_OK)
		log_warnx("worker %u: request %u: %s", w->id,
		    rep.rep.reqid, rep.rep.status == KH_STATUS_NOKEY ?
		    "unknown key" : "signature failed");
	else
		log_debug("worker %u: request %u: %s signed", w->id,
		    rep.rep.reqid, kh_tls_shape_name(shape));
	if (ipc_compose(&w->ipc, IMSG_KH_SIGNATURE, msg->hdr.peerid, -1,
	    &rep, replen) == -1)
		return "reply queue full";
	return NULL;
}

/* Serve what a worker sent.  Returns the reason when it must go. */
static const char *
keyholder_worker_input(struct keyholder *kh, struct kh_worker *w)
{
	struct ipc_msg	 msg;
	const char	*why;
	ssize_t		 n;
	int		 r;

	if ((n = ipc_read(&w->ipc)) == -1)
		return errno == EAGAIN || errno == EINTR ? NULL : "read error";
	if (n == 0)
		return "closed";
	for (;;) {
		if (keyholder_worker_oversize(&w->ipc))
			return "oversized message";
		if ((r = ipc_get(&w->ipc, &msg)) == 0)
			break;
		if (r == -1)
			return "bad framing";
		if (msg.hdr.type != IMSG_KH_SIGN || msg.fd != -1) {
			ipc_msg_free(&msg);
			return "unexpected message";
		}
		why = keyholder_sign(kh, w, &msg);
		ipc_msg_free(&msg);
		if (why != NULL)
			return why;
	}
	return ipc_flush(&w->ipc) == -1 ? "write error" : NULL;
}

static void
keyholder_loop(struct keyholder *kh)
{
	struct pollfd		 pfd[1 + KH_MAX_WORKERS];
	struct kh_worker	*w;
	const char		*why;
	size_t			 i, nfds;

	for (;;) {
		nfds = kh->nworkers + 1;
		for (i = 0; i < nfds; i++) {
			pfd[i].fd = i == 0 ? kh->parent.fd :
			    kh->workers[i - 1]->ipc.fd;
			pfd[i].events = POLLIN | (ipc_queued(i == 0 ?
			    &kh->parent : &kh->workers[i - 1]->ipc) ?
			    POLLOUT : 0);
		}
		if (poll(pfd, nfds, -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("%s: poll", __func__);
		}
		/* Downwards: a drop moves an entry already served into i. */
		for (i = nfds - 1; i > 0; i--) {
			w = kh->workers[i - 1];
			why = NULL;
			if (pfd[i].revents & ~POLLOUT)
				why = keyholder_worker_input(kh, w);
			else if (pfd[i].revents & POLLOUT &&
			    ipc_flush(&w->ipc) == -1)
				why = "write error";
			if (why == NULL)
				continue;
			if (strcmp(why, "closed") == 0)
				log_debug("worker %u: channel closed", w->id);
			else
				log_warnx("worker %u: channel dropped: %s",
				    w->id, why);
			keyholder_worker_drop(kh, i - 1);
		}
		if (pfd[0].revents & ~POLLOUT)
			keyholder_parent_input(kh);
		if (ipc_queued(&kh->parent) > 0 &&
		    ipc_flush(&kh->parent) == -1)
			keyholder_exit(kh, 0);	/* the parent is gone */
	}
}

int
main(int argc, char *argv[], char *envp[])
{
	static struct keyholder	 kh;
	const char		*errstr, *root = NULL, *module = NULL;
	socklen_t		 len = sizeof(int);
	unsigned int		 uid = 0, gid = 0;
	int			 ch, type, debug = 0, verbose = 0;
	char			 c;

	setproctitle_init(argc, argv, envp);
	kh.rate = PROTO_SIGN_RATE;
	while ((ch = getopt(argc, argv, "dI:p:r:s:u:v")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'I':
			(void)strtonum(optarg, 0, 1000, &errstr);
			if (errstr != NULL)
				keyholder_usage();
			/* Several keyholders: their log lines say which. */
			snprintf(keyholder_name, sizeof(keyholder_name),
			    "keyholder %s", optarg);
			break;
		case 'p':
			module = optarg;
			break;
		case 'r':
			root = optarg;
			break;
		case 's':
			kh.rate = strtonum(optarg, 1, 1000000, &errstr);
			if (errstr != NULL)
				keyholder_usage();
			break;
		case 'u':	/* numeric, as the parent resolved them */
			if (sscanf(optarg, "%u:%u%c", &uid, &gid, &c) != 2)
				keyholder_usage();
			break;
		case 'v':
			verbose++;
			break;
		default:
			keyholder_usage();
		}
	}
	if (argc != optind || getsockopt(PROTO_CHANNEL_FD, SOL_SOCKET,
	    SO_TYPE, &type, &len) == -1 || type != SOCK_STREAM)
		keyholder_usage();
	closefrom(PROTO_CHANNEL_FD + 1);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);	/* the parent decides when we exit */

	/* Never syslog directly: the parent owns that connection. */
	log_init(1, verbose);
	log_procinit(keyholder_name);
	ipc_init(&kh.parent, PROTO_CHANNEL_FD);
	/* Its poll loop waits for POLLOUT while lines stay queued. */
	if (!debug)
		log_setchannel(&kh.parent, NULL, NULL);
	if (fcntl(PROTO_CHANNEL_FD, F_SETFL, O_NONBLOCK) == -1)
		fatal("fcntl");
	setproctitle("-%s", "todod-keyholder");
	TAILQ_INIT(&kh.keys);

	if (kh_crypto_warmup() == -1)
		fatalx("OpenSSL initialisation failed");
	/*
	 * The module reads its configuration now, before seccomp.  A
	 * software token (SoftHSM) also reads and locks its token files at
	 * every operation, wherever they are: with a module there is no
	 * chroot, and the filter allows reading files (see sandbox.c).
	 */
	if (module != NULL) {
		if (kh_p11_init(module) == -1)
			log_warnx("pkcs11 module %s: cannot load or "
			    "initialise it", module);
		root = "/";
	}
	keyholder_sandbox(root, uid, gid, module != NULL);
	log_debug("ready");
	keyholder_loop(&kh);
	return 0;
}
