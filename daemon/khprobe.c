/*
 * Keys the parent does not read itself.  A "pkcs11:" key (RFC 7512) is
 * parsed here only to find its PIN file; the keyholder alone loads the
 * PKCS#11 module.  To check such a key (todod -n, start-up, reload) the
 * parent starts a keyholder of its own for a moment, hands it the URI
 * and the PIN file as it would to a serving one, and takes back the
 * public key, which config.c compares with the certificate: the same
 * code that will sign proves the token holds the key.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include <p11-kit/uri.h>

#include "config.h"
#include "ipc.h"
#include "khprobe.h"
#include "paths.h"
#include "proto.h"

#define KHPROBE_WAIT_MS		10000	/* load, login, self-test */
#define KHPROBE_KEYID		1

int
khprobe_is_p11(const char *key)
{
	return key != NULL && strncmp(key, "pkcs11:", 7) == 0;
}

/* The module the keyholder loads: the setting, or p11-kit's modules. */
const char *
khprobe_module(const struct config_tls *tls)
{
	return tls->p11module != NULL ? tls->p11module : "p11-kit";
}

/*
 * The PIN file: the pin setting, else the URI's pin-source.  A PIN in
 * the URI itself (pin-value) would end up in logs and ps: refused.
 */
int
khprobe_pin_path(const struct config_tls *tls, char *buf, size_t len,
    char *err, size_t errlen)
{
	P11KitUri	*uri;
	const char	*src = NULL;
	int		 r;

	if ((uri = p11_kit_uri_new()) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = p11_kit_uri_parse(tls->key,
	    P11_KIT_URI_FOR_OBJECT_ON_TOKEN_AND_MODULE, uri);
	if (r != P11_KIT_URI_OK)
		snprintf(err, errlen, "key \"%s\": %s", tls->key,
		    p11_kit_uri_message(r));
	else if (p11_kit_uri_get_pin_value(uri) != NULL)
		snprintf(err, errlen, "key \"%s\": pin-value is not allowed: "
		    "put the PIN in a file (pin \"FILE\" or pin-source)",
		    tls->key);
	else if ((src = tls->pin) == NULL &&
	    (src = p11_kit_uri_get_pin_source(uri)) == NULL)
		snprintf(err, errlen, "key \"%s\": no PIN: set pin \"FILE\" "
		    "in the tls block or pin-source in the URI", tls->key);
	if (src != NULL && strncmp(src, "file:", 5) == 0)
		src += 5;
	if (src != NULL && *src != '/') {
		snprintf(err, errlen, "key \"%s\": pin-source \"%s\": not an "
		    "absolute path", tls->key, src);
		src = NULL;
	}
	r = src != NULL && strlcpy(buf, src, len) < len ? 0 : -1;
	p11_kit_uri_free(uri);
	return r;
}

/* Open a key or PIN file for a keyholder: a regular file only root reads. */
int
khprobe_open_secret(const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "%s: group or world readable (mode "
		    "%04o): chmod 600 %s", path,
		    (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	return fd;
}

/* The keyholder beside this executable (a build tree), else installed. */
void
khprobe_exe(char *buf, size_t len)
{
	char	 self[PATH_MAX];
	ssize_t	 n;

	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) != -1) {
		self[n] = '\0';
		snprintf(buf, len, "%s/todod-keyholder", dirname(self));
		if (access(buf, X_OK) == 0)
			return;
	}
	snprintf(buf, len, "%s/todod-keyholder", TODOD_LIBEXECDIR);
}

/* As root, it drops to the configured user as a serving one does. */
static pid_t
khprobe_spawn(const struct config *conf, int *fd)
{
	struct passwd	*pw;
	char		 exe[PATH_MAX], cred[32] = "";
	pid_t		 pid;
	int		 sv[2];

	khprobe_exe(exe, sizeof(exe));
	if (geteuid() == 0 && (pw = getpwnam(conf->user)) != NULL)
		snprintf(cred, sizeof(cred), "%u:%u", (unsigned)pw->pw_uid,
		    (unsigned)pw->pw_gid);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1)
		return -1;
	if ((pid = fork()) == 0) {
		if (dup2(sv[1], PROTO_CHANNEL_FD) == -1)
			_exit(127);
		/* -d: its log lines go to our stderr, as -n's do. */
		if (cred[0] != '\0')
			execl(exe, "todod-keyholder", "-d", "-p",
			    khprobe_module(&conf->tls), "-u", cred,
			    (char *)NULL);
		else
			execl(exe, "todod-keyholder", "-d", "-p",
			    khprobe_module(&conf->tls), (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	if (pid == -1) {
		close(sv[0]);
		return -1;
	}
	*fd = sv[0];
	return pid;
}

/* The keyholder's answer to the key: its public half, or why not. */
static EVP_PKEY *
khprobe_answer(struct ipc *ipc, char *err, size_t errlen)
{
	struct ipc_msg		 m;
	struct pollfd		 pfd = { ipc->fd, POLLIN, 0 };
	const unsigned char	*der;
	const char		*s;
	const void		*d;
	uint32_t		 id;
	size_t			 n;
	int			 i, r = 0;

	for (i = 0; i < 100 && (r = ipc_get(ipc, &m)) == 0; i++)
		if (poll(&pfd, 1, KHPROBE_WAIT_MS) != 1 || ipc_read(ipc) <= 0)
			break;
	if (r != 1 || ipc_get_u32(&m, &id) == -1) {
		snprintf(err, errlen, "the keyholder did not answer");
		return NULL;
	}
	if (m.hdr.type == IMSG_KH_KEY_FAIL && ipc_get_str(&m, &s) == 0) {
		snprintf(err, errlen, "%s", s);
		return NULL;
	}
	if (m.hdr.type != IMSG_KH_KEY_OK || ipc_get_data(&m, &d, &n) == -1) {
		snprintf(err, errlen, "malformed answer from the keyholder");
		return NULL;
	}
	der = d;
	return d2i_PUBKEY(NULL, &der, (long)n);
}

/*
 * Have a keyholder load the token key of tls, as a serving one would;
 * its public key, or NULL with err saying why.
 */
EVP_PKEY *
khprobe_key(const struct config *conf, char *err, size_t errlen)
{
	const struct config_tls	*tls = &conf->tls;
	struct ipc_wbuf	*wb;
	struct ipc	 ipc;
	EVP_PKEY	*pub = NULL;
	char		 pin[PATH_MAX];
	uint32_t	 keyid = KHPROBE_KEYID;
	pid_t		 pid;
	int		 fd, chan, status;

	if (khprobe_pin_path(tls, pin, sizeof(pin), err, errlen) == -1 ||
	    (fd = khprobe_open_secret(pin, err, errlen)) == -1)
		return NULL;
	if ((pid = khprobe_spawn(conf, &chan)) == -1) {
		snprintf(err, errlen, "cannot start the keyholder: %s",
		    strerror(errno));
		close(fd);
		return NULL;
	}
	ipc_init(&ipc, chan);
	/* ipc_send() owns fd, sent or not. */
	if ((wb = ipc_create(IMSG_KH_KEY, 0, 64)) == NULL) {
		close(fd);
		snprintf(err, errlen, "out of memory");
	} else if (ipc_add_u32(wb, keyid) == -1 ||
	    ipc_add_str(wb, tls->key) == -1 || ipc_send(&ipc, wb, fd) == -1 ||
	    ipc_flush_blocking(&ipc, KHPROBE_WAIT_MS) != 1)
		snprintf(err, errlen, "cannot reach the keyholder");
	else
		pub = khprobe_answer(&ipc, err, errlen);
	ipc_clear(&ipc);	/* the keyholder exits when its parent goes */
	if (waitpid(pid, &status, 0) == -1)
		kill(pid, SIGKILL);
	return pub;
}
