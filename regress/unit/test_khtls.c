/*
 * TLS through the keyholder: an in-process libtls server whose key is a
 * keyholder reference, signing through daemon/khprov.c and a real
 * todod-keyholder child, against libssl clients in forked children (and
 * openssl s_client).  Covers TLS 1.2 and 1.3 with EC P-256/P-384, RSA
 * 2048/4096 (PSS and PKCS#1) and Ed25519, the loss and replacement of the
 * keyholder, and a scan of this process's memory for the private keys.
 *
 * The keyholder is $TODOD_KEYHOLDER, by default the one built beside this
 * test (build/todod-keyholder, or build/asan/todod-keyholder).  As root it
 * is started as in production: -u 65534:65534 -r <test directory>.
 */
#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <tls.h>

#include "ipc.h"
#include "keyref.h"
#include "khprov.h"
#include "proto.h"
#include "tap.h"

#define WAIT_MS		10000	/* bound on any single wait */
#define NNEEDLES	32
#define NEEDLE_MAX	64

static char	 dir[] = "/tmp/todod-khtls-XXXXXX";
static struct khprov	*kp;

struct testkey {
	const char	*name;
	const char	*gen;		/* openssl genpkey arguments */
	uint32_t	 keyid;
	char		*cert;		/* PEM chain */
	size_t		 certlen;
	char		*keyref;	/* PEM reference */
	size_t		 keyreflen;
	EVP_PKEY	*pub;
};

static struct testkey keys[] = {
	{ .name = "p256", .keyid = 1,
	    .gen = "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" },
	{ .name = "p384", .keyid = 2,
	    .gen = "-algorithm EC -pkeyopt ec_paramgen_curve:P-384" },
	{ .name = "rsa2048", .keyid = 3,
	    .gen = "-algorithm RSA -pkeyopt rsa_keygen_bits:2048" },
	{ .name = "rsa4096", .keyid = 4,
	    .gen = "-algorithm RSA -pkeyopt rsa_keygen_bits:4096" },
	{ .name = "ed25519", .keyid = 5,
	    .gen = "-algorithm ED25519" },
};
#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

struct kh {
	pid_t		 pid;
	struct ipc	 ipc;
};

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

/* What a client child reports through its pipe. */
struct result {
	int	 ok;
	int	 version;
	int	 sigtype;	/* NID of the server's signature type */
	char	 err[200];
};

/* Private key bytes, masked so that this process never holds them. */
struct needle {
	char	 what[48];
	uint8_t	 masked[NEEDLE_MAX];
	size_t	 len;
};
static uint8_t		 mask[NEEDLE_MAX];
static struct needle	 needles[NNEEDLES];
static int		 nneedles;

static uint8_t		*canary;	/* global: its stores must stay */
static uint64_t		 lat[4096];
static size_t		 nlat;
static int		 nfailed_sig;

static const char *
path(const char *fmt, ...)
{
	static char	 buf[4][256];
	static int	 i;
	char		 name[128];
	va_list		 ap;

	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static char *
slurp(const char *file, size_t *len)
{
	FILE	*fp;
	char	*p;
	long	 n;

	if ((fp = fopen(file, "r")) == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == -1 || (n = ftell(fp)) <= 0 ||
	    fseek(fp, 0, SEEK_SET) == -1 || (p = malloc(n + 1)) == NULL) {
		fclose(fp);
		return NULL;
	}
	if (fread(p, 1, n, fp) != (size_t)n) {
		fclose(fp);
		free(p);
		return NULL;
	}
	p[n] = '\0';
	*len = n;
	fclose(fp);
	return p;
}

static void
make_pki(void)
{
	FILE	*fp;
	size_t	 i;
	int	 ok;

	if ((fp = fopen(path("ext.cnf"), "w")) == NULL)
		abort();
	fprintf(fp, "[srv]\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
	    "extendedKeyUsage=serverAuth\n"
	    "[cli]\nextendedKeyUsage=clientAuth\n");
	fclose(fp);
	ok = tap_run("cd %s && openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt "
	    "-subj /CN=khtls-ca -days 2 2>/dev/null && "
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	    "-out client.key 2>/dev/null && openssl req -new -key client.key "
	    "-subj /CN=client -out client.csr && openssl x509 -req -in "
	    "client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
	    "-extfile ext.cnf -extensions cli -out client.crt 2>/dev/null",
	    dir) == 0;
	for (i = 0; i < NKEYS; i++)
		ok &= tap_run("cd %s && openssl genpkey %s -out %s.key "
		    "2>/dev/null && "
		    "openssl req -new -key %s.key -subj /CN=localhost "
		    "-out %s.csr && openssl x509 -req -in %s.csr -CA ca.crt "
		    "-CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf "
		    "-extensions srv -out %s.crt 2>/dev/null", dir,
		    keys[i].gen, keys[i].name, keys[i].name, keys[i].name,
		    keys[i].name, keys[i].name) == 0;
	for (i = 0; i < NKEYS && ok; i++) {
		X509	*x = NULL;
		BIO	*bio = NULL;

		keys[i].cert = slurp(path("%s.crt", keys[i].name),
		    &keys[i].certlen);
		if (keys[i].cert == NULL ||
		    (bio = BIO_new_mem_buf(keys[i].cert,
		    keys[i].certlen)) == NULL ||
		    (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) == NULL)
			ok = 0;
		else
			keys[i].pub = X509_get_pubkey(x);
		X509_free(x);
		BIO_free(bio);
	}
	TAP_OK(ok, "CA, client and %zu server certificates in %s", NKEYS,
	    dir);
}

static void
needle_add(const char *what, const uint8_t *p, size_t len)
{
	struct needle	*nd;
	size_t		 i;

	if (nneedles == NNEEDLES || len == 0)
		return;
	nd = &needles[nneedles++];
	snprintf(nd->what, sizeof(nd->what), "%s", what);
	nd->len = len < NEEDLE_MAX ? len : NEEDLE_MAX;
	for (i = 0; i < nd->len; i++)
		nd->masked[i] = p[i] ^ mask[i];
}

/* In a child: big-endian (as in DER) and limb order (as in a BIGNUM). */
static void
needle_bn(const char *name, EVP_PKEY *pkey, const char *param,
    size_t take)
{
	BIGNUM	*bn = NULL;
	uint8_t	 be[1024], le[1024];
	char	 what[48];
	int	 n, i;

	if (!EVP_PKEY_get_bn_param(pkey, param, &bn))
		return;
	n = BN_num_bytes(bn);
	n = (n + 7) / 8 * 8;
	if (n <= (int)sizeof(be) && BN_bn2binpad(bn, be, n) == n) {
		for (i = 0; i < n; i++)
			le[i] = be[n - 1 - i];
		snprintf(what, sizeof(what), "%s %s (DER order)", name, param);
		needle_add(what, be, take < (size_t)n ? take : (size_t)n);
		snprintf(what, sizeof(what), "%s %s (limb order)", name,
		    param);
		needle_add(what, le, take < (size_t)n ? take : (size_t)n);
	}
	BN_clear_free(bn);
	OPENSSL_cleanse(be, sizeof(be));
	OPENSSL_cleanse(le, sizeof(le));
}

/*
 * Read the server keys in a child process and bring back only masked
 * fragments: the private scalars, primes, seeds and a piece of each PEM.
 */
static void
make_needles(void)
{
	int	 fd[2], status;
	pid_t	 pid;
	size_t	 i, n;

	RAND_bytes(mask, sizeof(mask));
	if (pipe(fd) == -1 || (pid = fork()) == -1)
		abort();
	if (pid == 0) {
		close(fd[0]);
		for (i = 0; i < NKEYS; i++) {
			EVP_PKEY	*pkey;
			FILE		*fp;
			char		 line[128], pem[64][80];
			uint8_t		 raw[64];
			size_t		 rawlen = sizeof(raw);
			int		 nl = 0;

			if ((fp = fopen(path("%s.key", keys[i].name),
			    "r")) == NULL)
				_exit(1);
			while (nl < 64 && fgets(pem[nl], sizeof(pem[nl]),
			    fp) != NULL)
				nl++;
			/* Mid-file base64 of an RSA key is all secret. */
			if (strstr(keys[i].name, "rsa") != NULL && nl > 4) {
				snprintf(line, sizeof(line), "%s PEM text",
				    keys[i].name);
				needle_add(line, (uint8_t *)pem[nl / 2], 48);
			}
			OPENSSL_cleanse(pem, sizeof(pem));
			rewind(fp);
			pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
			fclose(fp);
			if (pkey == NULL)
				_exit(1);
			if (EVP_PKEY_is_a(pkey, "EC"))
				needle_bn(keys[i].name, pkey,
				    OSSL_PKEY_PARAM_PRIV_KEY, 32);
			else if (EVP_PKEY_is_a(pkey, "RSA")) {
				needle_bn(keys[i].name, pkey,
				    OSSL_PKEY_PARAM_RSA_FACTOR1, 32);
				needle_bn(keys[i].name, pkey,
				    OSSL_PKEY_PARAM_RSA_D, 32);
			} else if (EVP_PKEY_get_raw_private_key(pkey, raw,
			    &rawlen) == 1) {
				snprintf(line, sizeof(line), "%s seed",
				    keys[i].name);
				needle_add(line, raw, rawlen);
			}
			EVP_PKEY_free(pkey);
		}
		n = nneedles * sizeof(needles[0]);
		_exit(write(fd[1], needles, n) == (ssize_t)n ? 0 : 1);
	}
	close(fd[1]);
	n = 0;
	while (n < sizeof(needles)) {
		ssize_t	 r = read(fd[0], (char *)needles + n,
		    sizeof(needles) - n);

		if (r <= 0)
			break;
		n += r;
	}
	close(fd[0]);
	nneedles = n / sizeof(needles[0]);
	waitpid(pid, &status, 0);
	TAP_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	    nneedles >= 15, "%d masked private-key fragments "
	    "taken in a child process", nneedles);
}

static int
needle_find(const uint8_t *hay, size_t n, const struct needle *nd)
{
	const uint8_t	*p = hay, *end = hay + n;
	uint8_t		 first = nd->masked[0] ^ mask[0];
	size_t		 j;

	while (p < end && (p = memchr(p, first, end - p)) != NULL) {
		if ((size_t)(end - p) < nd->len)
			break;
		for (j = 1; j < nd->len && p[j] == (nd->masked[j] ^ mask[j]);
		    j++)
			;
		if (j == nd->len)
			return 1;
		p++;
	}
	return 0;
}

/*
 * Look for each needle in every readable private mapping of this
 * process.  Returns the number of needles found; found[] says which.
 */
static int
scan_memory(const struct needle *nd, int n, int *found, size_t *scanned)
{
	const size_t	 chunk = 1 << 20;
	unsigned long	 lo, hi, a;
	char		 line[512], perms[8];
	uint8_t		*buf;
	FILE		*maps;
	ssize_t		 r;
	int		 mem, i, hits = 0;

	*scanned = 0;
	memset(found, 0, n * sizeof(*found));
	buf = mmap(NULL, chunk + NEEDLE_MAX, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED || (maps = fopen("/proc/self/maps",
	    "r")) == NULL || (mem = open("/proc/self/mem", O_RDONLY)) == -1)
		return -1;
	while (fgets(line, sizeof(line), maps) != NULL) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
		    perms[0] != 'r' || strstr(line, "[vvar]") != NULL ||
		    strstr(line, "[vsyscall]") != NULL ||
		    lo == (unsigned long)buf)
			continue;
		/* Sanitizer shadow: reading it would fault in terabytes. */
		if (hi - lo > (1UL << 30))
			continue;
		for (a = lo; a < hi; a += chunk) {
			size_t	 want = hi - a < chunk + NEEDLE_MAX ?
			    hi - a : chunk + NEEDLE_MAX;

			if ((r = pread(mem, buf, want, (off_t)a)) <= 0)
				break;
			*scanned += r;
			for (i = 0; i < n; i++)
				if (!found[i] && needle_find(buf, r, &nd[i]))
					found[i] = 1;
		}
	}
	for (i = 0; i < n; i++)
		hits += found[i];
	fclose(maps);
	close(mem);
	munmap(buf, chunk + NEEDLE_MAX);
	return hits;
}

static void
spawn(struct kh *kh)
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
		if ((fd = open(path("keyholder.log"), O_WRONLY | O_CREAT |
		    O_APPEND, 0600)) != -1)
			dup2(fd, STDERR_FILENO);
		keyholder_exec("-dv");
		_exit(127);
	}
	close(sv[1]);
	ipc_init(&kh->ipc, sv[0]);
}

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
		if ((n = ipc_read(ipc)) == 0)
			return 0;
		if (n == -1 && errno != EAGAIN && errno != EINTR)
			return -1;
	}
	return -1;
}

/* Hand a key file to the keyholder; build the reference from its SPKI. */
static int
load_key(struct kh *kh, struct testkey *k)
{
	struct ipc_wbuf	*wb;
	struct ipc_msg	 m;
	const void	*spki;
	size_t		 n;
	uint32_t	 id;
	int		 fd;

	if ((fd = open(path("%s.key", k->name), O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	wb = ipc_create(IMSG_KH_KEY, 0, 0);
	ipc_add_u32(wb, k->keyid);
	ipc_add_str(wb, path("%s.key", k->name));
	if (ipc_send(&kh->ipc, wb, fd) == -1 ||
	    ipc_flush_blocking(&kh->ipc, WAIT_MS) != 1 ||
	    recv_msg(&kh->ipc, &m) != 1 || m.hdr.type != IMSG_KH_KEY_OK ||
	    ipc_get_u32(&m, &id) == -1 || id != k->keyid ||
	    ipc_get_data(&m, &spki, &n) == -1)
		return -1;
	free(k->keyref);
	return keyref_encode(k->keyid, spki, n, &k->keyref, &k->keyreflen);
}

/* A fresh worker channel to kh, installed in the provider. */
static int
connect_worker(struct kh *kh, uint32_t id)
{
	int	 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, sv) == -1 || ipc_compose(&kh->ipc, IMSG_KH_WORKER, 0, sv[1],
	    &id, sizeof(id)) == -1 || ipc_flush_blocking(&kh->ipc,
	    WAIT_MS) != 1)
		return -1;
	khprov_set_channel(kp, sv[0]);
	return 0;
}

static int
start_keyholder(struct kh *kh, uint32_t wid)
{
	size_t	 i;

	spawn(kh);
	for (i = 0; i < NKEYS; i++)
		if (load_key(kh, &keys[i]) == -1)
			return -1;
	return connect_worker(kh, wid);
}

/* arg is what khprov_set_observer was given: nothing counts otherwise. */
static void
observe(void *arg, uint64_t usec, int ok)
{
	if (arg != &nlat)
		return;
	if (!ok)
		nfailed_sig++;
	else if (nlat < sizeof(lat) / sizeof(lat[0]))
		lat[nlat++] = usec;
}

static EVP_PKEY *
keyref_pkey(const struct testkey *k)
{
	EVP_PKEY	*pkey;
	BIO		*bio;

	if ((bio = BIO_new_mem_buf(k->keyref, k->keyreflen)) == NULL)
		return NULL;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return pkey;
}

/* What a TLS 1.3 server signs: the keyholder signs nothing else. */
static size_t
tls13_cv_input(uint8_t *msg, size_t hashlen)
{
	static const char	 ctx[] = "TLS 1.3, server CertificateVerify";

	memset(msg, 0x20, 64);
	memcpy(msg + 64, ctx, sizeof(ctx));
	RAND_bytes(msg + 64 + sizeof(ctx), hashlen);
	return 64 + sizeof(ctx) + hashlen;
}

/*
 * EVP_DigestSign through the provider over a TLS 1.3 CertificateVerify
 * input (or, with arbitrary set, 300 random bytes); verify with the
 * certificate.
 */
static int
evp_sign_verify(EVP_PKEY *pkey, EVP_PKEY *pub, const char *md, int pad,
    int arbitrary)
{
	EVP_MD_CTX	*s = EVP_MD_CTX_new(), *v = EVP_MD_CTX_new();
	EVP_PKEY_CTX	*sp, *vp;
	uint8_t		 msg[300], sig[1024];
	size_t		 siglen = 0, msglen = sizeof(msg);
	int		 ok;

	if (arbitrary)
		RAND_bytes(msg, sizeof(msg));
	else
		msglen = tls13_cv_input(msg, 48);
	ok = s != NULL && v != NULL &&
	    EVP_DigestSignInit_ex(s, &sp, md, NULL, NULL, pkey, NULL) == 1 &&
	    EVP_DigestVerifyInit_ex(v, &vp, md, NULL, NULL, pub, NULL) == 1;
	if (ok && pad != 0)
		ok = EVP_PKEY_CTX_set_rsa_padding(sp, pad) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(vp, pad) == 1;
	if (ok && pad == RSA_PKCS1_PSS_PADDING)
		ok = EVP_PKEY_CTX_set_rsa_pss_saltlen(sp,
		    RSA_PSS_SALTLEN_DIGEST) == 1 &&
		    EVP_PKEY_CTX_set_rsa_pss_saltlen(vp,
		    RSA_PSS_SALTLEN_DIGEST) == 1;
	ok = ok && EVP_DigestSign(s, NULL, &siglen, msg, msglen) == 1 &&
	    siglen <= sizeof(sig) &&
	    EVP_DigestSign(s, sig, &siglen, msg, msglen) == 1 &&
	    EVP_DigestVerify(v, sig, siglen, msg, msglen) == 1;
	EVP_MD_CTX_free(s);
	EVP_MD_CTX_free(v);
	ERR_clear_error();
	return ok;
}

static void
test_provider(void)
{
	EVP_PKEY	*pkey;
	BIO		*bio;
	X509		*x;
	size_t		 i;
	int		 ok, nopriv;

	for (i = 0; i < NKEYS; i++) {
		pkey = keyref_pkey(&keys[i]);
		bio = BIO_new_mem_buf(keys[i].cert, keys[i].certlen);
		x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
		BIO_free(bio);
		TAP_OK(pkey != NULL && x != NULL &&
		    X509_check_private_key(x, pkey) == 1 &&
		    EVP_PKEY_get_bits(pkey) == EVP_PKEY_get_bits(keys[i].pub),
		    "%s: reference decodes, matches its certificate",
		    keys[i].name);
		if (pkey == NULL) {
			X509_free(x);
			continue;
		}
		if (EVP_PKEY_is_a(pkey, "RSA"))
			ok = evp_sign_verify(pkey, keys[i].pub, "SHA256",
			    RSA_PKCS1_PSS_PADDING, 0) &&
			    evp_sign_verify(pkey, keys[i].pub, "SHA384",
			    RSA_PKCS1_PSS_PADDING, 0) &&
			    evp_sign_verify(pkey, keys[i].pub, "SHA512",
			    RSA_PKCS1_PSS_PADDING, 0);
		else if (EVP_PKEY_is_a(pkey, "EC"))
			ok = evp_sign_verify(pkey, keys[i].pub, "SHA256", 0,
			    0) && evp_sign_verify(pkey, keys[i].pub, "SHA384",
			    0, 0);
		else
			ok = evp_sign_verify(pkey, keys[i].pub, NULL, 0, 0);
		TAP_OK(ok, "%s: EVP_DigestSign of a TLS 1.3 CertificateVerify "
		    "input via the keyholder verifies", keys[i].name);
		bio = BIO_new(BIO_s_mem());
		nopriv = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0,
		    NULL, NULL) != 1 && BIO_ctrl_pending(bio) == 0;
		BIO_free(bio);
		ERR_clear_error();
		TAP_OK(nopriv, "%s: the private key cannot be exported",
		    keys[i].name);
		EVP_PKEY_free(pkey);
		X509_free(x);
	}
}

/*
 * A compromised worker's provider asks for arbitrary content (and, for
 * RSA, a PKCS#1 signature over a CertificateVerify input, which TLS 1.3
 * never makes): refused, and the keyholder drops the channel.
 */
static void
test_provider_refused(struct kh *kh)
{
	EVP_PKEY	*pkey;
	int		 i, ok;

	for (i = 0; i < 2; i++) {
		pkey = keyref_pkey(&keys[i == 0 ? 0 : 2]);
		ok = pkey != NULL && (i == 0 ? !evp_sign_verify(pkey,
		    keys[0].pub, "SHA256", 0, 1) : !evp_sign_verify(pkey,
		    keys[2].pub, "SHA256", RSA_PKCS1_PADDING, 0));
		EVP_PKEY_free(pkey);
		TAP_OK(ok && !khprov_has_channel(kp), "%s: refused, the "
		    "keyholder closes the channel", i == 0 ?
		    "300 random bytes" : "PKCS#1 over a TLS 1.3 input");
		TAP_OK(connect_worker(kh, 10 + i) == 0, "new channel");
	}
}

/* A reference body with one byte changed, as PEM. */
static char *
keyref_mangle(const struct testkey *k, size_t at, uint8_t val, size_t cut)
{
	BIO	*bio;
	BUF_MEM	*mem;
	char	*name = NULL, *hdr = NULL, *out = NULL;
	uint8_t	*data = NULL;
	long	 len = 0;

	if ((bio = BIO_new_mem_buf(k->keyref, k->keyreflen)) == NULL)
		return NULL;
	if (PEM_read_bio(bio, &name, &hdr, &data, &len) == 1 &&
	    (size_t)len > at && (size_t)len > cut) {
		data[at] = val;
		BIO_free(bio);
		if ((bio = BIO_new(BIO_s_mem())) != NULL &&
		    PEM_write_bio(bio, name, "", data, len - cut) > 0 &&
		    BIO_get_mem_ptr(bio, &mem) == 1 &&
		    (out = calloc(1, mem->length + 1)) != NULL)
			memcpy(out, mem->data, mem->length);
	}
	BIO_free(bio);
	OPENSSL_free(name);
	OPENSSL_free(hdr);
	OPENSSL_free(data);
	return out;
}

static int
keyref_loads(const char *pem)
{
	EVP_PKEY	*pkey;
	BIO		*bio;

	if (pem == NULL || (bio = BIO_new_mem_buf(pem, strlen(pem))) == NULL)
		return -1;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	ERR_clear_error();
	return pkey != NULL;
}

static void
test_keyref(void)
{
	const struct testkey	*k = &keys[0];
	uint8_t			*spki = NULL, *der = NULL;
	unsigned char		*p;
	char			*pem, *other;
	size_t			 spkilen;
	uint32_t		 keyid = 0;
	int			 n;

	p = NULL;
	n = i2d_PUBKEY(k->pub, &p);
	der = p;
	TAP_OK(keyref_decode(k->keyref, k->keyreflen, &keyid, &spki,
	    &spkilen) == 0 && keyid == k->keyid && n > 0 &&
	    spkilen == (size_t)n && memcmp(spki, der, n) == 0 &&
	    strncmp(k->keyref, "-----BEGIN " KEYREF_PEM_NAME "-----\n",
	    strlen(KEYREF_PEM_NAME) + 17) == 0,
	    "keyref: decode(encode) gives the key id and the SPKI back");
	free(spki);
	OPENSSL_free(der);
	TAP_OK(keyref_encode(7, (const uint8_t *)"\x30\x03\x01\x02", 4,
	    &pem, &spkilen) == -1, "keyref: an SPKI of bad length refused");
	other = keyref_mangle(k, 0, 2, 0);
	TAP_OK(other != NULL && keyref_decode(other, strlen(other), &keyid,
	    &spki, &spkilen) == -1 && keyref_loads(other) == 0,
	    "keyref: unknown version refused by decoder and provider");
	free(other);
	other = keyref_mangle(k, 0, 1, 1);
	TAP_OK(other != NULL && keyref_decode(other, strlen(other), &keyid,
	    &spki, &spkilen) == -1 && keyref_loads(other) == 0,
	    "keyref: truncated SPKI refused by decoder and provider");
	free(other);
	other = keyref_mangle(k, 5, 0x31, 0);
	TAP_OK(other != NULL && keyref_loads(other) == 0,
	    "keyref: SPKI that is not a SEQUENCE refused by the provider");
	free(other);
	TAP_OK(keyref_loads(k->keyref) == 1 && keyref_decode(keys[0].cert,
	    keys[0].certlen, &keyid, &spki, &spkilen) == -1,
	    "keyref: a certificate is not a reference");
}

static int
listen_local(int *port)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 s, one = 1;

	if ((s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(s, 8) == -1 ||
	    getsockname(s, (struct sockaddr *)&sin, &len) == -1) {
		close(s);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return s;
}

static void
timeouts(int s)
{
	struct timeval	 tv = { WAIT_MS / 1000, 0 };

	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* The client, in a child: libssl with a client certificate. */
static void
client_child(int port, int version, const char *sigalgs, int wfd)
{
	struct sockaddr_in	 sin;
	struct result		 res;
	SSL_CTX			*ctx;
	SSL			*ssl = NULL;
	char			 buf[8], list[128];
	int			 s;

	memset(&res, 0, sizeof(res));
	/* What the server may use, plus what our own P-256 key needs. */
	snprintf(list, sizeof(list), "%s:ECDSA+SHA256", sigalgs ? sigalgs :
	    "");
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, version) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, version) != 1 ||
	    (sigalgs != NULL && SSL_CTX_set1_sigalgs_list(ctx,
	    list) != 1) || SSL_CTX_use_certificate_file(ctx,
	    path("client.crt"), SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, path("client.key"),
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_load_verify_locations(ctx,
	    path("ca.crt"), NULL) != 1)
		goto done;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(s, (struct sockaddr *)&sin, sizeof(sin)) == -1)
		goto done;
	timeouts(s);
	if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, s) != 1 ||
	    SSL_set1_host(ssl, "localhost") != 1 || SSL_connect(ssl) != 1)
		goto done;
	res.version = SSL_version(ssl);
	SSL_get_peer_signature_type_nid(ssl, &res.sigtype);
	if (SSL_write(ssl, "ping", 4) == 4 && SSL_read(ssl, buf, 4) == 4 &&
	    memcmp(buf, "pong", 4) == 0)
		res.ok = 1;
 done:
	if (!res.ok)
		ERR_error_string_n(ERR_get_error(), res.err, sizeof(res.err));
	if (write(wfd, &res, sizeof(res)) != sizeof(res))
		_exit(2);
	_exit(0);
}

struct server {
	struct tls		*tls;
	struct tls_config	*cfg;
	int			 lfd;
	int			 port;
};

static int
server_setup(struct server *srv, const struct testkey *k, uint32_t protos)
{
	memset(srv, 0, sizeof(*srv));
	srv->lfd = -1;
	if ((srv->cfg = tls_config_new()) == NULL ||
	    tls_config_set_protocols(srv->cfg, protos) == -1 ||
	    tls_config_set_dheparams(srv->cfg, "auto") == -1 ||
	    tls_config_set_ecdhecurves(srv->cfg, PROTO_TLS_GROUPS) == -1 ||
	    tls_config_set_keypair_mem(srv->cfg, (uint8_t *)k->cert,
	    k->certlen, (uint8_t *)k->keyref, k->keyreflen) == -1 ||
	    tls_config_set_ca_file(srv->cfg, path("ca.crt")) == -1)
		return -1;
	tls_config_verify_client(srv->cfg);
	if ((srv->tls = tls_server()) == NULL ||
	    tls_configure(srv->tls, srv->cfg) == -1) {
		printf("# tls_configure: %s\n", srv->tls ?
		    tls_error(srv->tls) : "?");
		return -1;
	}
	return (srv->lfd = listen_local(&srv->port)) == -1 ? -1 : 0;
}

static void
server_free(struct server *srv)
{
	tls_free(srv->tls);
	tls_config_free(srv->cfg);
	if (srv->lfd != -1)
		close(srv->lfd);
}

/*
 * Accept one connection and handshake; the client is a forked libssl
 * child (or the command cmd).  Returns 1 if both ends succeeded.
 */
static int
handshake(struct server *srv, int version, const char *sigalgs,
    const char *cmd, struct result *res, char *vers, size_t verslen,
    char *err, size_t errlen)
{
	struct tls	*c = NULL;
	struct pollfd	 pfd;
	char		 buf[8];
	pid_t		 pid;
	int		 fd[2], s = -1, status, ok = 0, i;

	memset(res, 0, sizeof(*res));
	snprintf(vers, verslen, "-");
	snprintf(err, errlen, "-");
	if (pipe(fd) == -1)
		return 0;
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(fd[0]);
		if (cmd != NULL) {
			char	 full[2048];

			snprintf(full, sizeof(full), cmd, srv->port);
			res->ok = system(full) == 0;
			_exit(write(fd[1], res, sizeof(*res)) ==
			    sizeof(*res) ? 0 : 1);
		}
		client_child(srv->port, version, sigalgs, fd[1]);
	}
	close(fd[1]);
	pfd.fd = srv->lfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, WAIT_MS) != 1 ||
	    (s = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC)) == -1)
		goto done;
	timeouts(s);
	if (tls_accept_socket(srv->tls, &c, s) == -1)
		goto done;
	for (i = 0; i < 100; i++)
		if ((ok = tls_handshake(c)) != TLS_WANT_POLLIN &&
		    ok != TLS_WANT_POLLOUT)
			break;
	if (ok != 0) {
		snprintf(err, errlen, "%s", tls_error(c));
		ok = 0;
		goto done;
	}
	snprintf(vers, verslen, "%s", tls_conn_version(c));
	if (cmd == NULL)
		ok = tls_read(c, buf, 4) == 4 && memcmp(buf, "ping", 4) == 0 &&
		    tls_write(c, "pong", 4) == 4;
	else
		ok = 1;
	tls_close(c);
 done:
	tls_free(c);
	if (s != -1)
		close(s);
	if (read(fd[0], res, sizeof(*res)) != sizeof(*res))
		res->ok = 0;
	close(fd[0]);
	waitpid(pid, &status, 0);
	return ok && res->ok;
}

static void
test_handshakes(void)
{
	static const struct {
		int		 key;
		int		 version;
		uint32_t	 protos;
		const char	*sigalgs;
		int		 sigtype;
		const char	*vname;
	} c[] = {
		{ 0, TLS1_3_VERSION, TLS_PROTOCOL_TLSv1_3, NULL,
		    NID_X9_62_id_ecPublicKey, "TLSv1.3" },
		{ 0, TLS1_2_VERSION, TLS_PROTOCOL_TLSv1_2, NULL,
		    NID_X9_62_id_ecPublicKey, "TLSv1.2" },
		{ 1, TLS1_3_VERSION, TLS_PROTOCOL_TLSv1_3, NULL,
		    NID_X9_62_id_ecPublicKey, "TLSv1.3" },
		{ 1, TLS1_2_VERSION, TLS_PROTOCOL_TLSv1_2, "ECDSA+SHA384",
		    NID_X9_62_id_ecPublicKey, "TLSv1.2" },
		{ 2, TLS1_3_VERSION, TLS_PROTOCOL_TLSv1_3, NULL,
		    NID_rsassaPss, "TLSv1.3" },
		{ 2, TLS1_2_VERSION, TLS_PROTOCOL_TLSv1_2, "RSA-PSS+SHA256",
		    NID_rsassaPss, "TLSv1.2" },
		{ 2, TLS1_2_VERSION, TLS_PROTOCOL_TLSv1_2, "RSA+SHA256",
		    NID_rsaEncryption, "TLSv1.2" },
		{ 2, TLS1_2_VERSION, TLS_PROTOCOL_TLSv1_2, "RSA+SHA384",
		    NID_rsaEncryption, "TLSv1.2" },
		{ 3, TLS1_3_VERSION, TLS_PROTOCOL_TLSv1_3, "RSA-PSS+SHA512",
		    NID_rsassaPss, "TLSv1.3" },
		{ 3, TLS1_2_VERSION, TLS_PROTOCOL_TLSv1_2, "RSA+SHA512",
		    NID_rsaEncryption, "TLSv1.2" },
		{ 4, TLS1_3_VERSION, TLS_PROTOCOL_TLSv1_3, NULL,
		    NID_ED25519, "TLSv1.3" },
		{ 4, TLS1_2_VERSION, TLS_PROTOCOL_TLSv1_2, NULL,
		    NID_ED25519, "TLSv1.2" },
	};
	struct server	 srv;
	struct result	 res;
	char		 vers[32], err[256];
	size_t		 i;
	int		 ok;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (server_setup(&srv, &keys[c[i].key], c[i].protos) == -1) {
			TAP_OK(0, "%s %s: server set up", keys[c[i].key].name,
			    c[i].vname);
			server_free(&srv);
			continue;
		}
		ok = handshake(&srv, c[i].version, c[i].sigalgs, NULL, &res,
		    vers, sizeof(vers), err, sizeof(err));
		TAP_OK(ok && strcmp(vers, c[i].vname) == 0 &&
		    res.version == c[i].version &&
		    res.sigtype == c[i].sigtype, "%s %s%s%s: handshake, "
		    "data exchanged, version %s, signature type %s "
		    "(server: %s; client: %s)", keys[c[i].key].name,
		    c[i].vname, c[i].sigalgs ? " " : "",
		    c[i].sigalgs ? c[i].sigalgs : "", vers,
		    OBJ_nid2sn(res.sigtype), err, res.err);
		server_free(&srv);
	}
}

/*
 * openssl s_client, and the signature inputs of the other key exchanges
 * and suites: DHE, each ECDHE group, a SHA-384 transcript signed with
 * SHA-256.
 */
static void
test_s_client(void)
{
	static const struct {
		int		 key;
		const char	*opts;
		const char	*vname;
		const char	*expect;	/* in s_client's output */
	} c[] = {
		{ 0, "-tls1_3", "TLSv1.3", "TLS_AES_" },
		{ 2, "-tls1_2", "TLSv1.2", "ECDHE-RSA" },
		{ 0, "-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384", "TLSv1.3",
		    "TLS_AES_256_GCM_SHA384" },
		{ 2, "-tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256", "TLSv1.2",
		    "Server Temp Key: DH, 2048 bits" },
		{ 3, "-tls1_2 -cipher DHE-RSA-AES256-GCM-SHA384", "TLSv1.2",
		    "Server Temp Key: DH, 4096 bits" },
		/*
		 * The client's own P-256 key needs P-256 among its groups,
		 * which the server prefers to P-384: the P-384 shape is
		 * left to test_keyholder.
		 */
		{ 2, "-tls1_2 -groups X25519:P-256", "TLSv1.2",
		    "Server Temp Key: X25519" },
		{ 0, "-tls1_2 -groups P-256", "TLSv1.2",
		    "Server Temp Key: ECDH, prime256v1" },
		{ 1, "-tls1_2 -groups X25519:P-256:P-384", "TLSv1.2",
		    "Server Temp Key: X25519" },
		{ 4, "-tls1_2 -groups P-256", "TLSv1.2",
		    "Server Temp Key: ECDH, prime256v1" },
	};
	struct server	 srv;
	struct result	 res;
	char		 cmd[1024], vers[32], err[256];
	size_t		 i;
	int		 ok;

	for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		if (server_setup(&srv, &keys[c[i].key],
		    TLS_PROTOCOL_TLSv1_2 | TLS_PROTOCOL_TLSv1_3) == -1) {
			TAP_OK(0, "s_client server set up");
			server_free(&srv);
			continue;
		}
		snprintf(cmd, sizeof(cmd), "openssl s_client -connect "
		    "127.0.0.1:%%d %s -cert %s -key %s -CAfile %s "
		    "-verify_return_error -verify_hostname localhost "
		    "</dev/null >%s 2>&1", c[i].opts,
		    path("client.crt"), path("client.key"), path("ca.crt"),
		    path("s_client.out"));
		ok = handshake(&srv, 0, NULL, cmd, &res, vers, sizeof(vers),
		    err, sizeof(err));
		TAP_OK(ok && strcmp(vers, c[i].vname) == 0 &&
		    tap_file_has(path("s_client.out"), c[i].expect),
		    "openssl s_client %s against %s: %s, \"%s\" (server: %s)",
		    c[i].opts, keys[c[i].key].name, vers, c[i].expect, err);
		server_free(&srv);
	}
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	 x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Signature round trips, for the record: no timing assertion. */
static void
test_latency(void)
{
	const int	 which[] = { 0, 2 };
	const char	*n;
	EVP_PKEY	*pkey;
	EVP_MD_CTX	*mctx;
	EVP_PKEY_CTX	*pctx;
	uint8_t		 sig[1024], msg[200];
	size_t		 msglen;
	size_t		 siglen, i, k, count = 2000, good;

	if ((n = getenv("KHTLS_SIGNATURES")) != NULL)
		count = strtoul(n, NULL, 10);
	if (count > sizeof(lat) / sizeof(lat[0]))
		count = sizeof(lat) / sizeof(lat[0]);
	/*
	 * This counts signatures, it does not time them: a loaded machine
	 * running the ASan build can hold one round trip past the daemon's
	 * 1 s bound, which test_keyholder_loss exercises on its own.
	 */
	khprov_set_timeout(kp, 30000);
	for (k = 0; k < 2; k++) {
		pkey = keyref_pkey(&keys[which[k]]);
		nlat = 0;
		good = 0;
		for (i = 0; i < count && pkey != NULL; i++) {
			if ((mctx = EVP_MD_CTX_new()) == NULL)
				break;
			siglen = sizeof(sig);
			msglen = tls13_cv_input(msg, 32);
			if (EVP_DigestSignInit_ex(mctx, &pctx, "SHA256", NULL,
			    NULL, pkey, NULL) == 1 && (which[k] != 2 ||
			    EVP_PKEY_CTX_set_rsa_padding(pctx,
			    RSA_PKCS1_PSS_PADDING) == 1) &&
			    EVP_DigestSign(mctx, sig, &siglen, msg,
			    msglen) == 1)
				good++;
			EVP_MD_CTX_free(mctx);
		}
		EVP_PKEY_free(pkey);
		TAP_OK(good == count && nlat == count, "%s: %zu signatures "
		    "through the keyholder", keys[which[k]].name, count);
		if (nlat == 0)
			continue;
		qsort(lat, nlat, sizeof(lat[0]), cmp_u64);
		printf("# %s round trip: p50 %llu us, p99 %llu us, "
		    "max %llu us (%zu signatures)\n", keys[which[k]].name,
		    (unsigned long long)lat[nlat / 2],
		    (unsigned long long)lat[nlat * 99 / 100],
		    (unsigned long long)lat[nlat - 1], nlat);
	}
	khprov_set_timeout(kp, 1000);
}

static int
reaped(pid_t pid)
{
	int	 i, status;

	for (i = 0; i < 500; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return 1;
		usleep(10000);
	}
	return 0;
}

static int
one_handshake(int key, struct result *res, char *err, size_t errlen,
    uint64_t *ms)
{
	struct server	 srv;
	struct timespec	 a, b;
	char		 vers[32];
	int		 ok = 0;

	clock_gettime(CLOCK_MONOTONIC, &a);
	if (server_setup(&srv, &keys[key], TLS_PROTOCOL_TLSv1_3) == 0)
		ok = handshake(&srv, TLS1_3_VERSION, NULL, NULL, res, vers,
		    sizeof(vers), err, errlen);
	server_free(&srv);
	clock_gettime(CLOCK_MONOTONIC, &b);
	*ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) /
	    1000000;
	return ok;
}

/* The keyholder stops answering, dies, and is replaced. */
static void
test_keyholder_loss(struct kh *kh)
{
	struct result	 res;
	char		 err[256];
	uint64_t	 ms;
	int		 failed;

	/* Stopped: the signature times out; its late answer is skipped. */
	khprov_set_timeout(kp, 300);
	failed = nfailed_sig;
	kill(kh->pid, SIGSTOP);
	TAP_OK(!one_handshake(0, &res, err, sizeof(err), &ms) &&
	    nfailed_sig > failed, "keyholder stopped: handshake fails "
	    "cleanly (%s)", err);
	printf("# failed handshake took %llu ms with a 300 ms bound\n",
	    (unsigned long long)ms);
	kill(kh->pid, SIGCONT);
	TAP_OK(one_handshake(0, &res, err, sizeof(err), &ms),
	    "keyholder resumed: the stale answer is skipped, handshake "
	    "succeeds (%s)", err);
	khprov_set_timeout(kp, 1000);

	kill(kh->pid, SIGKILL);
	TAP_OK(reaped(kh->pid), "keyholder killed");
	ipc_clear(&kh->ipc);
	failed = nfailed_sig;
	TAP_OK(!one_handshake(2, &res, err, sizeof(err), &ms) &&
	    nfailed_sig > failed, "keyholder gone: handshake fails cleanly "
	    "(%s)", err);
	printf("# failed handshake took %llu ms\n", (unsigned long long)ms);
	TAP_OK(!khprov_has_channel(kp), "the dead channel is closed");
	TAP_OK(!one_handshake(0, &res, err, sizeof(err), &ms),
	    "no channel: handshake fails at once (%llu ms)",
	    (unsigned long long)ms);
	TAP_OK(start_keyholder(kh, 2) == 0 && khprov_has_channel(kp),
	    "new keyholder, same key ids, new channel");
	TAP_OK(one_handshake(2, &res, err, sizeof(err), &ms) &&
	    one_handshake(0, &res, err, sizeof(err), &ms),
	    "handshakes succeed again (%s)", err);
}

static void
test_memory(void)
{
	struct needle	 probe;
	size_t		 scanned;
	EVP_PKEY	*loaded[NKEYS];
	FILE		*fp;
	size_t		 k;
	int		 found[NNEEDLES], i, hits, seen;
	uint8_t		 raw[32];

	/* The scanner must find what is there. */
	canary = malloc(4096);
	RAND_bytes(raw, sizeof(raw));
	memcpy(canary + 1000, raw, sizeof(raw));
	memset(&probe, 0, sizeof(probe));
	probe.len = sizeof(raw);
	for (i = 0; i < (int)sizeof(raw); i++)
		probe.masked[i] = raw[i] ^ mask[i];
	OPENSSL_cleanse(raw, sizeof(raw));
	hits = scan_memory(&probe, 1, found, &scanned);
	TAP_OK(hits == 1, "memory scanner finds a planted canary (%zu MiB "
	    "scanned)", scanned >> 20);
	explicit_bzero(canary, 4096);
	free(canary);
	canary = NULL;

	hits = scan_memory(needles, nneedles, found, &scanned);
	for (i = 0; i < nneedles; i++)
		if (found[i])
			printf("# found in memory: %s\n", needles[i].what);
	memset(loaded, 0, sizeof(loaded));
	TAP_OK(hits == 0 && nneedles > 0, "no private key material in the "
	    "server process (%d fragments, %zu MiB scanned)", nneedles,
	    scanned >> 20);

	/* Control: with the keys really loaded here, the scan sees them. */
	for (k = 0; k < NKEYS; k++) {
		if ((fp = fopen(path("%s.key", keys[k].name), "r")) != NULL) {
			loaded[k] = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
			fclose(fp);
		}
	}
	hits = scan_memory(needles, nneedles, found, &scanned);
	for (k = 0; k < NKEYS; k++) {
		for (i = 0, seen = 0; i < nneedles; i++)
			seen += found[i] && strncmp(needles[i].what,
			    keys[k].name, strlen(keys[k].name)) == 0 &&
			    needles[i].what[strlen(keys[k].name)] == ' ';
		TAP_OK(loaded[k] != NULL && seen > 0, "control: %s loaded "
		    "in this process is found (%d fragments)", keys[k].name,
		    seen);
		EVP_PKEY_free(loaded[k]);
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

	signal(SIGPIPE, SIG_IGN);
	keyholder_path(argc > 0 ? argv[0] : "");
	sanitizer_env();
	if (mkdtemp(dir) == NULL)
		abort();
	make_pki();
	make_needles();
	TAP_OK((kp = khprov_init()) != NULL && tls_init() == 0,
	    "provider and libtls initialised");
	khprov_set_observer(kp, observe, &nlat);
	TAP_OK(start_keyholder(&kh, 1) == 0, "keyholder started, %zu keys "
	    "loaded, worker channel installed", NKEYS);
	test_keyref();
	test_provider();
	test_provider_refused(&kh);
	test_handshakes();
	test_s_client();
	test_latency();
	test_keyholder_loss(&kh);
	test_memory();
	ipc_clear(&kh.ipc);
	TAP_OK(reaped(kh.pid), "keyholder exits with its parent channel");
	if (getenv("TODOD_KEEP") == NULL)
		tap_run("rm -rf %s", dir);
	return tap_done();
}
