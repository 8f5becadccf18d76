/*
 * todod-keyholder as a process: keys by descriptor, worker channels,
 * every signature algorithm verified against the certificate's public
 * key, hostile requests, and the lifecycle (parent EOF, shutdown).
 *
 * The keyholder is $TODOD_KEYHOLDER, by default the one built beside this
 * test (build/todod-keyholder, or build/asan/todod-keyholder).  As root it
 * is started as in production: -u 65534:65534 -r <test directory>.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "ipc.h"
#include "proto.h"
#include "tap.h"

#define WAIT_MS		5000	/* bound on any single reply */

static char	 dir[] = "/tmp/todod-khtest-XXXXXX";

struct kh;
static int	 reaped(struct kh *, int *);

/*
 * The keyholder beside this test's build: build/regress/test_x runs
 * build/todod-keyholder, build/asan/regress/test_x the ASan one.
 */
static const char	*khprog = "build/todod-keyholder";

static void
keyholder_path(const char *argv0)
{
	static char	 buf[1024];
	char		*p;
	int		 i;

	if ((khprog = getenv("TODOD_KEYHOLDER")) != NULL)
		return;
	khprog = "build/todod-keyholder";
	snprintf(buf, sizeof(buf), "%s", argv0);
	for (i = 0; i < 2; i++) {
		if ((p = strrchr(buf, '/')) == NULL)
			return;
		*p = '\0';
	}
	if (strlcat(buf, "/todod-keyholder", sizeof(buf)) < sizeof(buf) &&
	    access(buf, X_OK) == 0)
		khprog = buf;
}

/* As root, the keyholder drops to nobody in a chroot, as in production. */
static void
keyholder_exec(const char *flags)
{
	if (geteuid() == 0)
		execl(khprog, "todod-keyholder", flags, "-u", "65534:65534",
		    "-r", dir, (char *)NULL);
	else
		execl(khprog, "todod-keyholder", flags, (char *)NULL);
}

struct kh {
	pid_t		 pid;
	struct ipc	 ipc;
};

struct testkey {
	const char	*name;
	const char	*gen;	/* openssl genpkey arguments */
	uint32_t	 keyid;
	int		 type;	/* 0 RSA, 1 EC, 2 Ed25519 */
	EVP_PKEY	*pub;	/* from the certificate */
};

static struct testkey keys[] = {
	{ .name = "rsa2048", .keyid = 1, .type = 0,
	    .gen = "-algorithm RSA -pkeyopt rsa_keygen_bits:2048" },
	{ .name = "rsa3072", .keyid = 2, .type = 0,
	    .gen = "-algorithm RSA -pkeyopt rsa_keygen_bits:3072" },
	{ .name = "p256", .keyid = 3, .type = 1,
	    .gen = "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" },
	{ .name = "p384", .keyid = 4, .type = 1,
	    .gen = "-algorithm EC -pkeyopt ec_paramgen_curve:P-384" },
	{ .name = "ed25519", .keyid = 5, .type = 2,
	    .gen = "-algorithm ED25519" },
};
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

static const char *
path(const char *name)
{
	static char	 buf[4][256];
	static int	 i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void
make_keys(void)
{
	FILE	*fp;
	X509	*x;
	char	 crt[64];
	size_t	 i;
	int	 ok = 1;

	for (i = 0; i < NKEYS; i++) {
		if (tap_run("cd %s && openssl genpkey %s -out %s.key 2>/dev/null "
		    "&& openssl req -new -x509 -key %s.key -subj /CN=%s "
		    "-days 2 -out %s.crt 2>/dev/null", dir, keys[i].gen,
		    keys[i].name, keys[i].name, keys[i].name,
		    keys[i].name) == -1) {
			ok = 0;
			continue;
		}
		snprintf(crt, sizeof(crt), "%s.crt", keys[i].name);
		if ((fp = fopen(path(crt), "r")) == NULL) {
			ok = 0;
			continue;
		}
		if ((x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
			keys[i].pub = X509_get_pubkey(x);
		ok &= keys[i].pub != NULL;
		X509_free(x);
		fclose(fp);
	}
	/* What must be refused. */
	ok &= tap_run("cd %s && openssl genpkey -algorithm RSA -pkeyopt "
	    "rsa_keygen_bits:1024 -out rsa1024.key 2>/dev/null && "
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 "
	    "-out p521.key 2>/dev/null && "
	    "openssl genpkey -algorithm X25519 -out x25519.key 2>/dev/null && "
	    "openssl genpkey -genparam -algorithm DSA -pkeyopt "
	    "dsa_paramgen_bits:1024 -out dsa.param 2>/dev/null && "
	    "openssl genpkey -paramfile dsa.param -out dsa.key 2>/dev/null && "
	    "openssl genpkey -algorithm ED25519 -aes128 -pass pass:secret "
	    "-out enc.key 2>/dev/null && "
	    "openssl pkey -in p256.key -pubout -out pub.pem 2>/dev/null && "
	    "cp p256.crt notakey.pem && : > empty.key && "
	    "(cat p256.key; head -c 70000 /dev/zero | tr '\\0' '#') "
	    "> big.key", dir) == 0;
	TAP_OK(ok, "test keys and certificates generated in %s", dir);
}

static void
spawn_flags(struct kh *kh, const char *flags, const char *log)
{
	int		 sv[2], fd;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == -1)
		abort();
	fflush(stdout);
	if ((kh->pid = fork()) == -1)
		abort();
	if (kh->pid == 0) {
		if (dup2(sv[1], PROTO_CHANNEL_FD) == -1)
			_exit(127);
		if (log != NULL && (fd = open(log, O_WRONLY | O_CREAT |
		    O_APPEND, 0600)) != -1)
			dup2(fd, STDERR_FILENO);
		keyholder_exec(flags);
		_exit(127);
	}
	close(sv[1]);
	ipc_init(&kh->ipc, sv[0]);
}

static void
spawn(struct kh *kh, int debug, const char *log)
{
	spawn_flags(kh, debug ? "-dv" : "-v", log);
}

/* 1: a message, 0: end of file, -1: error or timeout. */
static int
recv_msg(struct ipc *ipc, struct ipc_msg *msg)
{
	struct pollfd	 pfd;
	ssize_t		 n;
	int		 r, i;

	for (i = 0; i < 1000; i++) {
		if ((r = ipc_get(ipc, msg)) != 0)
			return r;
		pfd.fd = ipc->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, WAIT_MS) <= 0)
			return -1;
		if ((n = ipc_read(ipc)) == 0 ||
		    (n == -1 && errno == ECONNRESET))
			return 0;
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			return -1;
	}
	return -1;
}

/* IMSG_LOG lines (the keyholder without -d) are kept in lastlog. */
static char	 lastlog[1024];
static uint32_t	 lastpri;

static int
recv_reply(struct ipc *ipc, struct ipc_msg *msg)
{
	const char	*s;
	int		 r, i;

	for (i = 0; i < 100; i++) {
		if ((r = recv_msg(ipc, msg)) != 1 || msg->hdr.type != IMSG_LOG)
			return r;
		if (ipc_get_u32(msg, &lastpri) == 0 &&
		    ipc_get_str(msg, &s) == 0)
			snprintf(lastlog, sizeof(lastlog), "%s", s);
	}
	return -1;
}

static int
send_msg(struct ipc *ipc, uint32_t type, int fd, const void *p, size_t n)
{
	if (ipc_compose(ipc, type, 0, fd, p, n) == -1)
		return -1;
	return ipc_flush_blocking(ipc, WAIT_MS) == 1 ? 0 : -1;
}

/* Send a key file; returns the reply type, the SPKI or reason in out. */
static int
load_key(struct kh *kh, uint32_t keyid, const char *file, void *out,
    size_t *outlen)
{
	struct ipc_wbuf	*wb;
	struct ipc_msg	 m;
	const void	*d;
	const char	*s;
	uint32_t	 id;
	size_t		 n;
	int		 fd;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	wb = ipc_create(IMSG_KH_KEY, 0, 0);
	ipc_add_u32(wb, keyid);
	ipc_add_str(wb, file);
	if (ipc_send(&kh->ipc, wb, fd) == -1 ||
	    ipc_flush_blocking(&kh->ipc, WAIT_MS) != 1 ||
	    recv_reply(&kh->ipc, &m) != 1)
		return -1;
	if (ipc_get_u32(&m, &id) == -1 || id != keyid)
		return -1;
	if (m.hdr.type == IMSG_KH_KEY_OK) {
		if (ipc_get_data(&m, &d, &n) == -1 || ipc_get_end(&m) == -1 ||
		    n > *outlen)
			return -1;
		memcpy(out, d, n);
		*outlen = n;
	} else if (m.hdr.type == IMSG_KH_KEY_FAIL) {
		if (ipc_get_str(&m, &s) == -1 || ipc_get_end(&m) == -1)
			return -1;
		snprintf(out, *outlen, "%s", s);
	} else
		return -1;
	return m.hdr.type;
}

static int
add_worker(struct kh *kh, uint32_t id, struct ipc *w)
{
	int	 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == -1)
		return -1;
	ipc_init(w, sv[0]);
	return send_msg(&kh->ipc, IMSG_KH_WORKER, sv[1], &id, sizeof(id));
}

/*
 * One signature round trip.  Returns 1 with status and sig filled, 0 if
 * the keyholder closed the channel, -1 on anything else.
 */
static int
sign(struct ipc *w, uint32_t reqid, uint32_t keyid, uint32_t alg,
    uint32_t md, const void *in, size_t inlen, uint8_t *sig,
    size_t *siglen, uint32_t *status)
{
	struct proto_sign_req	 req;
	struct proto_sign_rep	 rep;
	struct ipc_wbuf		*wb;
	struct ipc_msg		 m;
	int			 r;

	req.reqid = reqid;
	req.keyid = keyid;
	req.alg = alg;
	req.md = md;
	req.inlen = inlen;
	wb = ipc_create(IMSG_KH_SIGN, 0, sizeof(req) + inlen);
	ipc_add(wb, &req, sizeof(req));
	ipc_add(wb, in, inlen);
	if (ipc_send(w, wb, -1) == -1 || ipc_flush_blocking(w, WAIT_MS) != 1)
		return errno == EPIPE || errno == ECONNRESET ? 0 : -1;
	if ((r = recv_msg(w, &m)) != 1)
		return r;
	if (m.hdr.type != IMSG_KH_SIGNATURE ||
	    ipc_get_raw(&m, &rep, sizeof(rep)) == -1 ||
	    rep.reqid != reqid || m.len - m.off != rep.siglen ||
	    rep.siglen > *siglen)
		return -1;
	memcpy(sig, m.data + m.off, rep.siglen);
	*siglen = rep.siglen;
	*status = rep.status;
	return 1;
}

static const EVP_MD *
md_of(uint32_t md)
{
	static const char	*names[] = { NULL, "SHA1", "SHA224", "SHA256",
	    "SHA384", "SHA512" };

	return md < 6 && names[md] ? EVP_get_digestbyname(names[md]) : NULL;
}

/*
 * Verify over the message with libcrypto's own digest-and-verify, so the
 * keyholder's DigestInfo, PSS salt length and MGF1 are checked too.
 */
static int
verify(EVP_PKEY *pub, uint32_t alg, uint32_t md, const uint8_t *msg,
    size_t msglen, const uint8_t *sig, size_t siglen)
{
	EVP_MD_CTX	*mctx;
	EVP_PKEY_CTX	*pctx;
	int		 ok;

	if ((mctx = EVP_MD_CTX_new()) == NULL)
		return 0;
	ok = EVP_DigestVerifyInit(mctx, &pctx, alg == SIGN_ED25519 ? NULL :
	    md_of(md), NULL, pub) == 1;
	if (ok && alg == SIGN_RSA_PSS)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx,
		    RSA_PKCS1_PSS_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx,
		    EVP_MD_get_size(md_of(md))) == 1;
	if (ok && alg == SIGN_RSA_PKCS1)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx,
		    RSA_PKCS1_PADDING) == 1;
	ok = ok && EVP_DigestVerify(mctx, sig, siglen, msg, msglen) == 1;
	EVP_MD_CTX_free(mctx);
	return ok;
}

/* The signature inputs a TLS server makes, built as libssl does. */
static const char	 cv_server[] = "TLS 1.3, server CertificateVerify";

static size_t
in_tls13(uint8_t *p, const char *ctx, size_t hashlen)
{
	memset(p, 0x20, 64);
	memcpy(p + 64, ctx, strlen(ctx) + 1);
	RAND_bytes(p + 65 + strlen(ctx), hashlen);
	return 65 + strlen(ctx) + hashlen;
}

/* Randoms, curve_type, group, point length, point. */
static size_t
in_ecdhe(uint8_t *p, uint8_t type, uint16_t group, const uint8_t *pt,
    size_t ptlen)
{
	RAND_bytes(p, 64);
	p[64] = type;
	p[65] = group >> 8;
	p[66] = group & 0xff;
	p[67] = ptlen;
	memcpy(p + 68, pt, ptlen);
	return 68 + ptlen;
}

/* A real public point of curve ("P-256"), uncompressed. */
static size_t
ec_point(const char *curve, uint8_t *out)
{
	EVP_PKEY	*k;
	unsigned char	*pt = NULL;
	size_t		 n = 0;

	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve)) != NULL &&
	    (n = EVP_PKEY_get1_encoded_public_key(k, &pt)) > 0)
		memcpy(out, pt, n);
	OPENSSL_free(pt);
	EVP_PKEY_free(k);
	return n;
}

/* ServerDHParams with prime p (plen bytes), generator g, Ys. */
static size_t
in_dhe(uint8_t *out, const BIGNUM *p, int g, const BIGNUM *ys)
{
	size_t	 plen = BN_num_bytes(p), n = 64;

	RAND_bytes(out, 64);
	out[n++] = plen >> 8;
	out[n++] = plen & 0xff;
	BN_bn2bin(p, out + n);
	n += plen;
	out[n++] = 0;
	out[n++] = 1;
	out[n++] = g;
	out[n++] = plen >> 8;
	out[n++] = plen & 0xff;
	BN_bn2binpad(ys, out + n, plen);
	return n + plen;
}

/*
 * Sign a TLS input of the kind alg and md can sign through w, and verify
 * it over the message: a TLS 1.3 CertificateVerify input where TLS 1.3
 * allows alg and md, else TLS 1.2 X25519 params.
 */
static int
sign_verify(struct ipc *w, struct testkey *k, uint32_t alg, uint32_t md)
{
	static uint32_t	 reqid = 100;
	uint8_t		 msg[300], sig[PROTO_SIGN_MAX_SIG], pt[32];
	size_t		 siglen = sizeof(sig), n;
	uint32_t	 status;

	RAND_bytes(pt, sizeof(pt));
	if (alg == SIGN_ED25519 || (alg != SIGN_RSA_PKCS1 &&
	    md >= SIGN_MD_SHA256))
		n = in_tls13(msg, cv_server, reqid % 2 ? 32 : 48);
	else
		n = in_ecdhe(msg, 3, 29, pt, sizeof(pt));
	if (sign(w, ++reqid, k->keyid, alg, md, msg, n, sig, &siglen,
	    &status) != 1 || status != 0 || siglen == 0)
		return 0;
	return verify(k->pub, alg, md, msg, n, sig, siglen);
}

static int
spki_matches(struct testkey *k, const uint8_t *spki, size_t len)
{
	unsigned char	*der = NULL;
	int		 n, ok;

	n = i2d_PUBKEY(k->pub, &der);
	ok = n > 0 && (size_t)n == len && memcmp(der, spki, len) == 0;
	OPENSSL_free(der);
	return ok;
}

static void
test_keys(struct kh *kh)
{
	static const struct {
		const char	*file;
		const char	*why;
	} bad[] = {
		{ "rsa1024.key", "RSA key of 1024 bits not supported" },
		{ "p521.key", "EC curve not supported" },
		{ "x25519.key", "unsupported key type" },
		{ "dsa.key", "unsupported key type" },
		{ "enc.key", "not a private key" },
		{ "pub.pem", "not a private key" },
		{ "notakey.pem", "not a private key" },
		{ "empty.key", "not a private key" },
		{ "big.key", "larger than 64 KiB" },
	};
	uint8_t		 buf[4096];
	char		 name[64];
	size_t		 i, n;
	int		 r;

	for (i = 0; i < NKEYS; i++) {
		snprintf(name, sizeof(name), "%s.key", keys[i].name);
		n = sizeof(buf);
		r = load_key(kh, keys[i].keyid, path(name), buf, &n);
		TAP_OK(r == IMSG_KH_KEY_OK && keys[i].pub != NULL &&
		    spki_matches(&keys[i], buf, n),
		    "KH_KEY %s: KEY_OK, SPKI equals the certificate's key",
		    keys[i].name);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = sizeof(buf);
		r = load_key(kh, 50 + i, path(bad[i].file), buf, &n);
		TAP_OK(r == IMSG_KH_KEY_FAIL &&
		    strstr((char *)buf, path(bad[i].file)) != NULL &&
		    strstr((char *)buf, bad[i].why) != NULL,
		    "KH_KEY %s refused: \"%s\"", bad[i].file,
		    r == IMSG_KH_KEY_FAIL ? (char *)buf : "?");
	}
}

static void
test_sign_all(struct ipc *w1, struct ipc *w2)
{
	static const uint32_t	 algs[3][2] = {
		{ SIGN_RSA_PKCS1, SIGN_RSA_PSS }, { SIGN_ECDSA, 0 },
		{ SIGN_ED25519, 0 } };
	uint32_t		 md;
	size_t			 i, a, good, total;

	for (i = 0; i < NKEYS; i++) {
		for (a = 0; a < 2 && algs[keys[i].type][a] != 0; a++) {
			uint32_t alg = algs[keys[i].type][a];

			good = total = 0;
			for (md = SIGN_MD_SHA1; md <= SIGN_MD_SHA512; md++) {
				if (alg == SIGN_ED25519 && md > SIGN_MD_SHA1)
					break;
				total++;
				good += sign_verify(md % 2 ? w1 : w2,
				    &keys[i], alg, alg == SIGN_ED25519 ?
				    SIGN_MD_NONE : md);
			}
			TAP_OK(good == total, "%s alg %u: %zu/%zu signatures "
			    "verify (SHA-1 to SHA-512, both channels)",
			    keys[i].name, alg, good, total);
		}
	}
}

/* A request that is well formed but names no key: status, channel kept. */
static void
test_unknown_key(struct ipc *w)
{
	uint8_t		 in[200], sig[PROTO_SIGN_MAX_SIG];
	size_t		 siglen = sizeof(sig), n;
	uint32_t	 status = 0;

	n = in_tls13(in, cv_server, 32);
	TAP_OK(sign(w, 7, 999, SIGN_ECDSA, SIGN_MD_SHA256, in, n, sig,
	    &siglen, &status) == 1 && status != 0 && siglen == 0,
	    "unknown key id: status %u, no signature", status);
	TAP_OK(sign_verify(w, &keys[2], SIGN_ECDSA, SIGN_MD_SHA256),
	    "channel still serves after an unknown key id");
}

/* Send raw bytes, then see whether the keyholder closes the channel. */
static int
closed_after(struct ipc *w, const void *p, size_t n, int type, int fd)
{
	struct ipc_msg	 m;

	if (type == -1) {
		if (write(w->fd, p, n) != (ssize_t)n)
			return 0;
	} else if (ipc_compose(w, type, 0, fd, p, n) == -1 ||
	    ipc_flush_blocking(w, WAIT_MS) != 1)
		return 0;
	return recv_msg(w, &m) == 0;
}

static void
test_malformed(struct kh *kh, struct ipc *good)
{
	struct {
		const char		*what;
		struct proto_sign_req	 req;
		size_t			 len;	/* payload bytes sent */
		int			 type;
	} c[] = {
		{ "short payload", { 1, 3, SIGN_ECDSA, SIGN_MD_SHA256, 32 },
		    10, IMSG_KH_SIGN },
		{ "missing digest bytes", { 1, 3, SIGN_ECDSA, SIGN_MD_SHA256,
		    32 }, 20 + 31, IMSG_KH_SIGN },
		{ "trailing bytes", { 1, 3, SIGN_ECDSA, SIGN_MD_SHA256, 32 },
		    20 + 33, IMSG_KH_SIGN },
		{ "unknown alg", { 1, 3, 77, SIGN_MD_SHA256, 32 }, 20 + 32,
		    IMSG_KH_SIGN },
		{ "unknown md", { 1, 3, SIGN_ECDSA, 9, 32 }, 20 + 32,
		    IMSG_KH_SIGN },
		{ "alg/key mismatch", { 1, 1, SIGN_ECDSA, SIGN_MD_SHA256, 32 },
		    20 + 32, IMSG_KH_SIGN },
		{ "ECDSA on Ed25519 key", { 1, 5, SIGN_ECDSA, SIGN_MD_SHA256,
		    32 }, 20 + 32, IMSG_KH_SIGN },
		{ "PKCS#1 on EC key", { 1, 3, SIGN_RSA_PKCS1, SIGN_MD_SHA256,
		    32 }, 20 + 32, IMSG_KH_SIGN },
		{ "digest length mismatch", { 1, 1, SIGN_RSA_PSS,
		    SIGN_MD_SHA384, 32 }, 20 + 32, IMSG_KH_SIGN },
		{ "raw RSA (no md)", { 1, 1, SIGN_RSA_PKCS1, SIGN_MD_NONE,
		    32 }, 20 + 32, IMSG_KH_SIGN },
		{ "Ed25519 with a digest md", { 1, 5, SIGN_ED25519,
		    SIGN_MD_SHA256, 32 }, 20 + 32, IMSG_KH_SIGN },
		{ "Ed25519 empty message", { 1, 5, SIGN_ED25519, SIGN_MD_NONE,
		    0 }, 20, IMSG_KH_SIGN },
		{ "input over the limit", { 1, 5, SIGN_ED25519, SIGN_MD_NONE,
		    PROTO_SIGN_MAX_INPUT + 1 }, 20 + PROTO_SIGN_MAX_INPUT + 1,
		    IMSG_KH_SIGN },
		{ "wrong message type", { 1, 3, SIGN_ECDSA, SIGN_MD_SHA256,
		    32 }, 20 + 32, IMSG_KH_KEY },
		{ "signature message from worker", { 1, 3, SIGN_ECDSA,
		    SIGN_MD_SHA256, 32 }, 20 + 32, IMSG_KH_SIGNATURE },
	};
	uint8_t		 buf[20 + PROTO_SIGN_MAX_INPUT + 8];
	struct ipc	 w;
	struct ipc_hdr	 hdr;
	size_t		 i;
	uint32_t	 id = 10;
	int		 devnull;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		memset(buf, 0xa5, sizeof(buf));
		memcpy(buf, &c[i].req, sizeof(c[i].req));
		if (add_worker(kh, ++id, &w) == -1) {
			TAP_OK(0, "worker channel for %s", c[i].what);
			continue;
		}
		TAP_OK(closed_after(&w, buf, c[i].len, c[i].type, -1) &&
		    sign_verify(good, &keys[0], SIGN_RSA_PSS, SIGN_MD_SHA256),
		    "%s: channel closed, other channel still signs",
		    c[i].what);
		ipc_clear(&w);
	}

	/* Framing: unknown header flags, a huge length, a passed fd. */
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = IMSG_KH_SIGN;
	hdr.flags = 0x80;
	add_worker(kh, ++id, &w);
	TAP_OK(closed_after(&w, &hdr, sizeof(hdr), -1, -1) &&
	    sign_verify(good, &keys[2], SIGN_ECDSA, SIGN_MD_SHA256),
	    "garbage header flags: channel closed, other still signs");
	ipc_clear(&w);
	hdr.flags = 0;
	hdr.len = 8 * 1024 * 1024;
	add_worker(kh, ++id, &w);
	TAP_OK(closed_after(&w, &hdr, sizeof(hdr), -1, -1) &&
	    sign_verify(good, &keys[2], SIGN_ECDSA, SIGN_MD_SHA256),
	    "8 MiB announced length: channel closed, other still signs");
	ipc_clear(&w);
	add_worker(kh, ++id, &w);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	memcpy(buf, &c[0].req, sizeof(c[0].req));
	TAP_OK(closed_after(&w, buf, 20 + 32, IMSG_KH_SIGN, devnull),
	    "descriptor passed by a worker: channel closed");
	ipc_clear(&w);
	add_worker(kh, ++id, &w);
	TAP_OK(closed_after(&w, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a"
	    "\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18", 24,
	    -1, -1), "random garbage: channel closed");
	ipc_clear(&w);
}

/*
 * Every shape the keyholder accepts, signed and verified over the input,
 * and every near miss refused, each on a fresh channel that must then be
 * closed: a compromised worker gets nothing and loses its channel.
 */
enum shape {
	S_CV32, S_CV48, S_CV_CLIENT, S_CV_HASH20, S_CV_HASH64, S_CV_SPACE,
	S_X25519, S_P256, S_P384, S_P521, S_X448, S_EXPLICIT, S_COMPRESSED,
	S_OFFCURVE, S_P256_SHORT, S_TRAILING, S_DHE2048, S_DHE_ODDPRIME,
	S_DHE_G5, S_DHE_YS_P, S_DIGEST, S_RANDOM, S_TBSCERT
};

static size_t
make_shape(enum shape sh, uint8_t *in)
{
	static const uint8_t	 tbs[] = { 0x30, 0x82, 0x01, 0x0a, 0xa0,
	    0x03, 0x02, 0x01, 0x02, 0x02, 0x01, 0x01 };
	uint8_t			 pt[160];
	BIGNUM			*p = NULL, *ys = NULL;
	size_t			 n = 0;

	switch (sh) {
	case S_CV32:
	case S_CV48:
		return in_tls13(in, cv_server, sh == S_CV32 ? 32 : 48);
	case S_CV_CLIENT:
		return in_tls13(in, "TLS 1.3, client CertificateVerify", 32);
	case S_CV_HASH20:
	case S_CV_HASH64:
		return in_tls13(in, cv_server, sh == S_CV_HASH20 ? 20 : 64);
	case S_CV_SPACE:
		n = in_tls13(in, cv_server, 32);
		in[10] = 0x21;
		return n;
	case S_X25519:
	case S_X448:
		RAND_bytes(pt, 56);
		return in_ecdhe(in, 3, sh == S_X25519 ? 29 : 30, pt,
		    sh == S_X25519 ? 32 : 56);
	case S_P256:
	case S_EXPLICIT:
	case S_OFFCURVE:
	case S_TRAILING:
		n = ec_point("P-256", pt);
		if (sh == S_OFFCURVE)
			pt[n - 1] ^= 1;
		n = in_ecdhe(in, sh == S_EXPLICIT ? 1 : 3, 23, pt, n);
		if (sh == S_TRAILING)
			in[n++] = 0;
		return n;
	case S_COMPRESSED:
		n = ec_point("P-256", pt);
		pt[0] = 2 + (pt[64] & 1);
		return in_ecdhe(in, 3, 23, pt, 33);
	case S_P256_SHORT:
		n = ec_point("P-256", pt);
		return in_ecdhe(in, 3, 23, pt + 1, 64);
	case S_P384:
		n = ec_point("P-384", pt);
		return in_ecdhe(in, 3, 24, pt, n);
	case S_P521:
		n = ec_point("P-521", pt);
		return in_ecdhe(in, 3, 25, pt, n);
	case S_DHE2048:
	case S_DHE_ODDPRIME:
	case S_DHE_G5:
	case S_DHE_YS_P:
		p = BN_get_rfc3526_prime_2048(NULL);
		ys = BN_new();
		if (sh == S_DHE_ODDPRIME)
			BN_sub_word(p, 2);
		if (sh == S_DHE_YS_P)
			BN_copy(ys, p);
		else
			BN_rand_range(ys, p);
		n = in_dhe(in, p, sh == S_DHE_G5 ? 5 : 2, ys);
		break;
	case S_DIGEST:
		RAND_bytes(in, 32);
		return 32;
	case S_RANDOM:
		RAND_bytes(in, 200);
		return 200;
	case S_TBSCERT:
		memcpy(in, tbs, sizeof(tbs));
		RAND_bytes(in + sizeof(tbs), 266 - sizeof(tbs));
		return 266;
	}
	BN_free(p);
	BN_free(ys);
	return n;
}

static void
test_shapes(struct kh *kh, struct ipc *good)
{
	static const struct {
		enum shape	 sh;
		int		 key;	/* index in keys[] */
		uint32_t	 alg, md;
		int		 ok;
		const char	*what;
	} c[] = {
		{ S_CV32, 2, SIGN_ECDSA, SIGN_MD_SHA256, 1,
		    "TLS 1.3 CertificateVerify, SHA-256 transcript, ECDSA" },
		{ S_CV48, 2, SIGN_ECDSA, SIGN_MD_SHA256, 1,
		    "TLS 1.3 CertificateVerify, SHA-384 transcript, "
		    "ECDSA-SHA256" },
		{ S_CV48, 1, SIGN_RSA_PSS, SIGN_MD_SHA384, 1,
		    "TLS 1.3 CertificateVerify, RSA-PSS" },
		{ S_CV32, 4, SIGN_ED25519, SIGN_MD_NONE, 1,
		    "TLS 1.3 CertificateVerify, Ed25519" },
		{ S_X25519, 0, SIGN_RSA_PKCS1, SIGN_MD_SHA256, 1,
		    "TLS 1.2 ECDHE X25519, RSA PKCS#1" },
		{ S_P256, 3, SIGN_ECDSA, SIGN_MD_SHA384, 1,
		    "TLS 1.2 ECDHE P-256, ECDSA P-384" },
		{ S_P384, 0, SIGN_RSA_PSS, SIGN_MD_SHA256, 1,
		    "TLS 1.2 ECDHE P-384, RSA-PSS" },
		{ S_X25519, 4, SIGN_ED25519, SIGN_MD_NONE, 1,
		    "TLS 1.2 ECDHE X25519, Ed25519" },
		{ S_DHE2048, 0, SIGN_RSA_PKCS1, SIGN_MD_SHA256, 1,
		    "TLS 1.2 DHE, RFC 3526 2048-bit prime, RSA PKCS#1" },
		{ S_DIGEST, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "a bare SHA-256 digest (the old protocol)" },
		{ S_RANDOM, 0, SIGN_RSA_PSS, SIGN_MD_SHA256, 0,
		    "200 arbitrary bytes" },
		{ S_TBSCERT, 0, SIGN_RSA_PKCS1, SIGN_MD_SHA256, 0,
		    "a TBSCertificate" },
		{ S_RANDOM, 4, SIGN_ED25519, SIGN_MD_NONE, 0,
		    "arbitrary bytes for Ed25519" },
		{ S_CV_CLIENT, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.3 client CertificateVerify" },
		{ S_CV_HASH20, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.3 CertificateVerify with a 20-byte hash" },
		{ S_CV_HASH64, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.3 CertificateVerify with a 64-byte hash" },
		{ S_CV_SPACE, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.3 CertificateVerify with a wrong pad byte" },
		{ S_CV32, 0, SIGN_RSA_PKCS1, SIGN_MD_SHA256, 0,
		    "TLS 1.3 CertificateVerify with RSA PKCS#1" },
		{ S_CV32, 2, SIGN_ECDSA, SIGN_MD_SHA1, 0,
		    "TLS 1.3 CertificateVerify with SHA-1" },
		{ S_P521, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.2 ECDHE P-521 (not configured)" },
		{ S_X448, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.2 ECDHE X448 (not configured)" },
		{ S_EXPLICIT, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.2 explicit-curve params" },
		{ S_COMPRESSED, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.2 ECDHE P-256, compressed point" },
		{ S_P256_SHORT, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.2 ECDHE P-256, 64-byte point" },
		{ S_OFFCURVE, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.2 ECDHE P-256, point not on the curve" },
		{ S_TRAILING, 2, SIGN_ECDSA, SIGN_MD_SHA256, 0,
		    "TLS 1.2 ECDHE P-256, a byte after the point" },
		{ S_DHE_ODDPRIME, 0, SIGN_RSA_PKCS1, SIGN_MD_SHA256, 0,
		    "TLS 1.2 DHE, another prime" },
		{ S_DHE_G5, 0, SIGN_RSA_PKCS1, SIGN_MD_SHA256, 0,
		    "TLS 1.2 DHE, generator 5" },
		{ S_DHE_YS_P, 0, SIGN_RSA_PKCS1, SIGN_MD_SHA256, 0,
		    "TLS 1.2 DHE, Ys equal to p" },
	};
	uint8_t		 in[PROTO_SIGN_MAX_INPUT];
	uint8_t		 sig[PROTO_SIGN_MAX_SIG];
	struct ipc	 w;
	size_t		 i, n, siglen;
	uint32_t	 status, id = 200;
	int		 r;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		n = make_shape(c[i].sh, in);
		siglen = sizeof(sig);
		if (c[i].ok) {
			r = sign(good, 300 + i, keys[c[i].key].keyid, c[i].alg,
			    c[i].md, in, n, sig, &siglen, &status);
			TAP_OK(r == 1 && status == 0 &&
			    verify(keys[c[i].key].pub, c[i].alg, c[i].md, in,
			    n, sig, siglen),
			    "accepted: %s (%zu bytes), signature verifies",
			    c[i].what, n);
			continue;
		}
		if (add_worker(kh, ++id, &w) == -1) {
			TAP_OK(0, "worker channel for %s", c[i].what);
			continue;
		}
		r = sign(&w, 300 + i, keys[c[i].key].keyid, c[i].alg, c[i].md,
		    in, n, sig, &siglen, &status);
		TAP_OK(r == 0 && sign_verify(good, &keys[0], SIGN_RSA_PSS,
		    SIGN_MD_SHA256), "refused: %s: no signature, channel "
		    "closed, other channel still signs", c[i].what);
		ipc_clear(&w);
	}
}

/* A keyholder started with -s 5: the sixth signature in a second fails. */
static void
test_rate(void)
{
	struct kh	 kh;
	struct ipc	 w;
	uint8_t		 in[200], sig[PROTO_SIGN_MAX_SIG], buf[4096];
	size_t		 n, siglen, blen = sizeof(buf);
	uint32_t	 status, refused = 0, signed_ = 0;
	int		 i;

	spawn_flags(&kh, "-ds5", path("khrate.log"));
	if (load_key(&kh, 3, path("p256.key"), buf, &blen) !=
	    IMSG_KH_KEY_OK || add_worker(&kh, 1, &w) == -1) {
		TAP_OK(0, "rate-limited keyholder set up");
		return;
	}
	/* At most two seconds' worth can pass in 8 quick requests. */
	for (i = 0; i < 8; i++) {
		n = in_tls13(in, cv_server, 32);
		siglen = sizeof(sig);
		if (sign(&w, i + 1, 3, SIGN_ECDSA, SIGN_MD_SHA256, in, n, sig,
		    &siglen, &status) != 1)
			break;
		if (status == 0)
			signed_++;
		else if (status == 3 && siglen == 0)
			refused++;
	}
	TAP_OK(i == 8 && signed_ >= 5 && signed_ <= 10 && refused > 0 &&
	    signed_ + refused == 8, "max signatures 5: %u signed, %u refused "
	    "with a status, the channel kept", signed_, refused);
	usleep(1100 * 1000);
	TAP_OK(sign_verify(&w, &keys[2], SIGN_ECDSA, SIGN_MD_SHA256),
	    "the next second signs again");
	TAP_OK(tap_file_has(path("khrate.log"), "worker 1: over 5 "
	    "signatures a second"),
	    "the refusal is logged once with the worker id");
	ipc_clear(&w);
	ipc_clear(&kh.ipc);
	reaped(&kh, (int *)&status);
}

static void
test_drop_replace(struct kh *kh, struct ipc *w)
{
	uint8_t		 dgst[200], sig[PROTO_SIGN_MAX_SIG];
	uint8_t		 buf[4096];
	size_t		 siglen = sizeof(sig), n = sizeof(buf), dn;
	uint32_t	 status = 0, keyid = 3;
	struct testkey	 k;

	dn = in_tls13(dgst, cv_server, 32);
	/* A failing KH_KEY is a barrier: the drop before it is done. */
	TAP_OK(send_msg(&kh->ipc, IMSG_KH_KEY_DROP, -1, &keyid,
	    sizeof(keyid)) == 0 && load_key(kh, 99, path("empty.key"), buf,
	    &n) == IMSG_KH_KEY_FAIL && sign(w, 8, 3, SIGN_ECDSA, SIGN_MD_SHA256,
	    dgst, dn, sig, &siglen, &status) == 1 && status != 0,
	    "KH_KEY_DROP: the key no longer signs");
	/* Key id 3 now holds the P-384 key, key id 4 the RSA one. */
	n = sizeof(buf);
	TAP_OK(load_key(kh, 3, path("p384.key"), buf, &n) == IMSG_KH_KEY_OK &&
	    spki_matches(&keys[3], buf, n), "key id reused for another key");
	k = keys[3];
	k.keyid = 3;
	TAP_OK(sign_verify(w, &k, SIGN_ECDSA, SIGN_MD_SHA384),
	    "the reused key id signs with the new key");
	n = sizeof(buf);
	k = keys[0];
	k.keyid = 4;
	TAP_OK(load_key(kh, 4, path("rsa2048.key"), buf, &n) ==
	    IMSG_KH_KEY_OK && spki_matches(&keys[0], buf, n) &&
	    sign_verify(w, &k, SIGN_RSA_PKCS1, SIGN_MD_SHA512),
	    "KH_KEY for a loaded key id replaces it");
}

static int
reaped(struct kh *kh, int *status)
{
	int	 i;

	for (i = 0; i < 500; i++) {
		if (waitpid(kh->pid, status, WNOHANG) == kh->pid)
			return 1;
		usleep(10000);
	}
	kill(kh->pid, SIGKILL);
	waitpid(kh->pid, status, 0);
	return 0;
}

static void
test_lifecycle(void)
{
	struct kh	 kh;
	uint8_t		 buf[512];
	size_t		 n = sizeof(buf);
	uint32_t	 v = 1;
	int		 status, r, sv[2], fd;
	char		 cmd[64], title[64];
	FILE		*fp;

	/* Without -d, log lines come to the parent as IMSG_LOG. */
	spawn(&kh, 0, NULL);
	lastlog[0] = '\0';
	r = load_key(&kh, 1, path("x25519.key"), buf, &n);
	TAP_OK(r == IMSG_KH_KEY_FAIL && lastpri == LOG_ERR &&
	    strstr(lastlog, "x25519.key: unsupported key type") != NULL,
	    "log lines are forwarded to the parent as IMSG_LOG: \"%s\"",
	    lastlog);
	snprintf(cmd, sizeof(cmd), "/proc/%d/cmdline", (int)kh.pid);
	memset(title, 0, sizeof(title));
	if ((fp = fopen(cmd, "r")) != NULL) {
		if (fread(title, 1, sizeof(title) - 1, fp) == 0)
			title[0] = '\0';
		fclose(fp);
	}
	/* libbsd turns the old argv[0] terminator into a space. */
	title[strcspn(title, " ")] = '\0';
	TAP_OK(strcmp(title, "todod-keyholder") == 0,
	    "process title \"%s\"", title);
	TAP_OK(send_msg(&kh.ipc, IMSG_CTL_VERBOSE, -1, &v, sizeof(v)) == 0 &&
	    send_msg(&kh.ipc, IMSG_KH_KEY_DROP, -1, &v, sizeof(v)) == 0,
	    "CTL_VERBOSE and KH_KEY_DROP of an unknown key are accepted");
	TAP_OK(send_msg(&kh.ipc, IMSG_CTL_SHUTDOWN, -1, NULL, 0) == 0 &&
	    reaped(&kh, &status) && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0, "CTL_SHUTDOWN: exit 0");
	ipc_clear(&kh.ipc);

	spawn(&kh, 1, path("kh2.log"));
	n = sizeof(buf);
	load_key(&kh, 1, path("p256.key"), buf, &n);
	ipc_clear(&kh.ipc);
	TAP_OK(reaped(&kh, &status) && WIFEXITED(status),
	    "parent channel EOF: the keyholder exits");

	spawn(&kh, 1, path("kh3.log"));
	TAP_OK(send_msg(&kh.ipc, 4242, -1, "x", 1) == 0 &&
	    reaped(&kh, &status) && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 1, "unknown message from parent: fatal");
	ipc_clear(&kh.ipc);

	spawn(&kh, 1, path("kh4.log"));
	TAP_OK(send_msg(&kh.ipc, IMSG_KH_KEY, -1, "x", 1) == 0 &&
	    reaped(&kh, &status) && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 1, "KH_KEY without descriptor: fatal");
	ipc_clear(&kh.ipc);

	/* fd 3 not a socket: usage, exit 1. */
	if (pipe(sv) == 0) {
		if ((kh.pid = fork()) == 0) {
			dup2(sv[0], PROTO_CHANNEL_FD);
			if ((fd = open("/dev/null", O_WRONLY)) != -1)
				dup2(fd, STDERR_FILENO);
			keyholder_exec("-d");
			_exit(127);
		}
		close(sv[0]);
		close(sv[1]);
		TAP_OK(reaped(&kh, &status) && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 1, "fd 3 not a socket: exit 1");
	}
}

/* ASan's exit-time leak check cannot run under the seccomp filter. */
static void
sanitizer_env(void)
{
#if defined(__SANITIZE_ADDRESS__)
	setenv("TODOD_SANDBOX_DISABLE", "1", 1);
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	setenv("TODOD_SANDBOX_DISABLE", "1", 1);
#endif
#endif
}

int
main(int argc, char *argv[])
{
	struct kh	 kh;
	struct ipc	 w1, w2;
	int		 status;

	signal(SIGPIPE, SIG_IGN);
	keyholder_path(argc > 0 ? argv[0] : "");
	sanitizer_env();
	if (mkdtemp(dir) == NULL)
		abort();
	make_keys();
	spawn(&kh, 1, path("kh.log"));
	test_keys(&kh);
	TAP_OK(add_worker(&kh, 1, &w1) == 0 && add_worker(&kh, 2, &w2) == 0,
	    "two worker channels handed over");
	test_sign_all(&w1, &w2);
	test_unknown_key(&w2);
	test_shapes(&kh, &w1);
	test_malformed(&kh, &w1);
	TAP_OK(tap_file_has(path("kh.log"), "worker 11: channel dropped: "
	    "malformed sign request"), "the drop is logged with the worker id");
	TAP_OK(tap_file_has(path("kh.log"), "worker 24: channel dropped: "
	    "unexpected message"), "a wrong message type is logged");
	test_drop_replace(&kh, &w2);
	ipc_clear(&w1);
	ipc_clear(&w2);
	ipc_clear(&kh.ipc);
	TAP_OK(reaped(&kh, &status), "keyholder exits after the parent");
	test_lifecycle();
	test_rate();
	if (getenv("TODOD_KEEP") == NULL)
		tap_run("rm -rf %s", dir);
	return tap_done();
}
