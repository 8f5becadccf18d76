/*
 * Unit tests for the todod.conf parser (daemon/parse.y) and the file
 * checks of `todod -n` (daemon/config.c).  Configurations and the
 * certificates they name are written into a fresh temporary directory;
 * keys and certificates are generated here with libcrypto.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <tls.h>

#include "buf.h"
#include "check.h"
#include "config.h"
#include "log.h"
#include "tap.h"
#include "tlsmat.h"

static char	 dir[PATH_MAX];		/* realpath of the temp directory */
static char	 logbuf[65536];
static size_t	 loglen;

static void
sink(int pri, const char *line)
{
	size_t	 n = strlen(line);

	(void)pri;
	if (loglen + n + 2 >= sizeof(logbuf))
		return;
	memcpy(logbuf + loglen, line, n);
	loglen += n;
	logbuf[loglen++] = '\n';
	logbuf[loglen] = '\0';
}

static void
log_reset(void)
{
	loglen = 0;
	logbuf[0] = '\0';
}

static int
logged(const char *s)
{
	return strstr(logbuf, s) != NULL;
}

static const char *
tpath(const char *name)
{
	static char	 p[4][PATH_MAX + 256];
	static int	 i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void
write_file(const char *name, const char *text)
{
	FILE	*fp;

	if ((fp = fopen(tpath(name), "w")) == NULL)
		abort();
	fputs(text, fp);
	fclose(fp);
}

static const char *MINIMAL =
    "listen on 127.0.0.1 port 8443\n"
    "tls {\n"
    "\tcertificate \"server.crt\"\n"
    "\tkey \"server.key\"\n"
    "\tclient ca \"ca.crt\"\n"
    "}\n";

/* Parse text as dir/t.conf. */
static struct config *
parse_text(const char *text, char *err, size_t errlen)
{
	write_file("t.conf", text);
	log_reset();
	return config_parse(tpath("t.conf"), err, errlen);
}

/* Parse MINIMAL with extra lines appended; return the first error. */
static const char *
parse_err(const char *extra)
{
	static char	 err[1024];
	struct config	*c;
	char		 text[8192];

	snprintf(text, sizeof(text), "%s%s", MINIMAL, extra);
	err[0] = '\0';
	if ((c = parse_text(text, err, sizeof(err))) != NULL) {
		config_free(c);
		return "(parsed)";
	}
	/* The FILE: prefix is the temp path: drop it for comparisons. */
	if (strncmp(err, tpath("t.conf"), strlen(tpath("t.conf"))) == 0)
		return err + strlen(tpath("t.conf"));
	return err;
}

static void
test_defaults(void)
{
	struct config		*c;
	struct config_listen	*l;
	char			 err[512], want[PATH_MAX + 32];
	long			 ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int			 n;

	c = parse_text(MINIMAL, err, sizeof(err));
	TAP_OK(c != NULL, "minimal configuration parses (%s)", c ? "" : err);
	if (c == NULL)
		return;
	if (ncpu < 1)
		ncpu = 1;
	if (ncpu > CONFIG_MAX_WORKERS)
		ncpu = CONFIG_MAX_WORKERS;
	TAP_OK(c->prefork == ncpu, "prefork defaults to online CPUs (%d)",
	    c->prefork);
	TAP_OK(c->keyholders == c->prefork, "keyholders defaults to prefork");
	TAP_OK(strcmp(c->user, "_todod") == 0, "user default _todod");
	TAP_OK(strcmp(c->chroot, "/var/empty") == 0, "chroot default");
	TAP_OK(strcmp(c->database, "/var/db/todod/todo.db") == 0,
	    "database default");
	TAP_OK(c->pidfile == NULL, "no pidfile by default");
	TAP_OK(c->timeout_request == 10 && c->timeout_idle == 60 &&
	    c->timeout_handshake == 10, "timeout defaults 10/60/10");
	TAP_OK(c->timeout_ocsp == 3 && c->tls.client_ocsp ==
	    CONFIG_OCSP_OFF && c->tls.client_ocsp_url == NULL,
	    "client OCSP off by default, timeout ocsp 3");
	TAP_OK(c->max_connections == 1024, "max connections default 1024");
	TAP_OK(c->max_signatures == 10000, "max signatures default 10000");
	TAP_OK(c->expiry_warn_days == 30, "expiry warning default 30");
	TAP_OK(c->cache_size == 64 << 20, "cache size default 64M");
	TAP_OK(strcmp(c->tls.protocols, "tlsv1.2,tlsv1.3") == 0 &&
	    c->tls.protocols_mask == TLS_PROTOCOLS_DEFAULT,
	    "protocols default tlsv1.2,tlsv1.3");
	TAP_OK(c->tls.ciphers == NULL && c->tls.crl == NULL,
	    "no ciphers, no crl by default");
	TAP_OK(c->tls.ticket_lifetime == 7200, "ticket lifetime default 7200");
	TAP_OK(TAILQ_EMPTY(&c->rules), "no rules");
	snprintf(want, sizeof(want), "%s/t.conf", dir);
	TAP_OK(strcmp(c->path, want) == 0, "path is absolute: %s", c->path);
	snprintf(want, sizeof(want), "%s/server.crt", dir);
	TAP_OK(strcmp(c->tls.cert, want) == 0, "certificate resolved: %s",
	    c->tls.cert);
	snprintf(want, sizeof(want), "%s/server.key", dir);
	TAP_OK(strcmp(c->tls.key, want) == 0, "key resolved");
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	TAP_OK(strcmp(c->tls.ca, want) == 0, "client ca resolved");
	n = 0;
	TAILQ_FOREACH(l, &c->listens, entry)
		n++;
	l = TAILQ_FIRST(&c->listens);
	TAP_OK(n == 1 && strcmp(l->name, "127.0.0.1:8443") == 0 &&
	    l->fds[0] == -1 && l->lineno == 1, "one listener 127.0.0.1:8443");
	config_free(c);
}

static void
test_full(void)
{
	struct config	*c;
	char		 err[512], want[PATH_MAX + 32];

	c = parse_text(
	    "# every setting\n"
	    "listen on 127.0.0.1 port 9443   # trailing comment\n"
	    "prefork 4\n"
	    "keyholders 2\n"
	    "user \"www\"\n"
	    "chroot \"/var/lib/empty\"\n"
	    "database \"data/todo.db\"\n"
	    "pidfile \"/run/todod.pid\"\n"
	    "timeout request 5\n"
	    "timeout idle 120\n"
	    "timeout handshake 7\n"
	    "timeout ocsp 5\n"
	    "max connections 100000\n"
	    "max signatures 250\n"
	    "expiry warning 0\n"
	    "cache size 512K\n"
	    "tls {\n"
	    "\tcertificate \"/etc/todod/server.crt\"\n"
	    "\tkey \"keys/server.key\"\n"
	    "\tclient ca \"../ca.crt\"\n"
	    "\tcrl \"crl.pem\"\n"
	    "\tcrl url \"http://ca.example:8080/ca.crl?x=1\" refresh 600\n"
	    "\tocsp staple auto\n"
	    "\tocsp url \"http://ocsp.example:8889/\"\n"
	    "\tprotocols \"tlsv1.3\"\n"
	    "\tciphers \"secure\"\n"
	    "\tticket lifetime 0\n"
	    "\tclient ocsp prefer\n"
	    "\tclient ocsp url \"http://ocsp.example/\"\n"
	    "}\n", err, sizeof(err));
	TAP_OK(c != NULL, "full configuration parses (%s)", c ? "" : err);
	if (c == NULL)
		return;
	TAP_OK(c->prefork == 4 && c->keyholders == 2, "prefork 4 keyholders 2");
	TAP_OK(strcmp(c->user, "www") == 0, "user");
	TAP_OK(strcmp(c->chroot, "/var/lib/empty") == 0, "chroot");
	snprintf(want, sizeof(want), "%s/data/todo.db", dir);
	TAP_OK(strcmp(c->database, want) == 0, "relative database resolved");
	TAP_OK(strcmp(c->pidfile, "/run/todod.pid") == 0, "pidfile");
	TAP_OK(c->timeout_request == 5 && c->timeout_idle == 120 &&
	    c->timeout_handshake == 7, "timeouts");
	TAP_OK(c->timeout_ocsp == 5, "timeout ocsp");
	TAP_OK(c->tls.client_ocsp == CONFIG_OCSP_PREFER &&
	    c->tls.client_ocsp_url != NULL &&
	    strcmp(c->tls.client_ocsp_url, "http://ocsp.example/") == 0,
	    "client ocsp prefer and url");
	TAP_OK(c->max_connections == 100000, "max connections");
	TAP_OK(c->max_signatures == 250, "max signatures");
	TAP_OK(c->expiry_warn_days == 0, "expiry warning 0");
	TAP_OK(c->cache_size == 512 * 1024, "cache size 512K");
	TAP_OK(strcmp(c->tls.cert, "/etc/todod/server.crt") == 0,
	    "absolute certificate kept");
	snprintf(want, sizeof(want), "%s/keys/server.key", dir);
	TAP_OK(strcmp(c->tls.key, want) == 0, "relative key in subdirectory");
	snprintf(want, sizeof(want), "%s/../ca.crt", dir);
	TAP_OK(strcmp(c->tls.ca, want) == 0, "relative ca with ..");
	snprintf(want, sizeof(want), "%s/crl.pem", dir);
	TAP_OK(strcmp(c->tls.crl, want) == 0, "crl resolved");
	TAP_OK(c->tls.crl_url != NULL && strcmp(c->tls.crl_url,
	    "http://ca.example:8080/ca.crl?x=1") == 0 &&
	    c->tls.crl_refresh == 600, "crl url and refresh");
	TAP_OK(c->tls.staple_auto && c->tls.staple == NULL &&
	    c->tls.staple_url != NULL && strcmp(c->tls.staple_url,
	    "http://ocsp.example:8889/") == 0, "ocsp staple auto, ocsp url");
	TAP_OK(strcmp(c->tls.protocols, "tlsv1.3") == 0 &&
	    c->tls.protocols_mask == TLS_PROTOCOL_TLSv1_3, "protocols mask");
	TAP_OK(strcmp(c->tls.ciphers, "secure") == 0, "ciphers");
	TAP_OK(c->tls.ticket_lifetime == 0, "ticket lifetime 0");
	config_free(c);
}

/* A "pkcs11:" key is kept as written; its PIN file resolves like a path. */
static void
test_pkcs11(void)
{
	struct config	*c;
	char		 err[512], want[PATH_MAX + 16];

	c = parse_text("listen on 127.0.0.1 port 8443\n"
	    "tls {\n"
	    "\tcertificate \"server.crt\"\n"
	    "\tkey \"pkcs11:token=todod;object=server;type=private\"\n"
	    "\tpin \"token.pin\"\n"
	    "\tpkcs11 module \"/usr/lib/softhsm/libsofthsm2.so\"\n"
	    "\tclient ca \"ca.crt\"\n"
	    "}\n", err, sizeof(err));
	TAP_OK(c != NULL, "pkcs11 key, pin and module parse (%s)",
	    c ? "" : err);
	if (c == NULL)
		return;
	TAP_OK(strcmp(c->tls.key,
	    "pkcs11:token=todod;object=server;type=private") == 0,
	    "the URI is kept as written");
	snprintf(want, sizeof(want), "%s/token.pin", dir);
	TAP_OK(c->tls.pin != NULL && strcmp(c->tls.pin, want) == 0,
	    "relative pin file resolved");
	TAP_OK(c->tls.p11module != NULL && strcmp(c->tls.p11module,
	    "/usr/lib/softhsm/libsofthsm2.so") == 0, "pkcs11 module");
	config_free(c);
}

/* A relative -f path still resolves against the file's directory. */
static void
test_relative_path(void)
{
	struct config	*c;
	char		 cwd[PATH_MAX], err[512], want[PATH_MAX + 32];

	write_file("t.conf", MINIMAL);
	if (getcwd(cwd, sizeof(cwd)) == NULL || chdir("/") == -1)
		abort();
	c = config_parse(tpath("t.conf") + 1, err, sizeof(err));
	TAP_OK(c != NULL, "relative configuration path parses");
	if (c != NULL) {
		snprintf(want, sizeof(want), "%s/server.crt", dir);
		TAP_OK(strcmp(c->tls.cert, want) == 0,
		    "paths relative to the file, not the cwd");
		snprintf(want, sizeof(want), "%s/t.conf", dir);
		TAP_OK(strcmp(c->path, want) == 0, "config path made absolute");
	}
	config_free(c);
	if (chdir(cwd) == -1)
		abort();
}

/* ocsp staple FILE: resolved like every path; no fetching. */
static void
test_staple_file(void)
{
	struct config	*c;
	char		 text[1024], err[512], want[PATH_MAX + 32];

	snprintf(text, sizeof(text), "%stls {\n\tocsp staple \"s.der\"\n}\n",
	    MINIMAL);
	c = parse_text(text, err, sizeof(err));
	snprintf(want, sizeof(want), "%s/s.der", dir);
	TAP_OK(c != NULL && c->tls.staple != NULL &&
	    strcmp(c->tls.staple, want) == 0 && !c->tls.staple_auto &&
	    c->tls.staple_url == NULL, "ocsp staple FILE, relative path "
	    "resolved (%s)", c ? "" : err);
	config_free(c);
	c = parse_text(MINIMAL, err, sizeof(err));
	TAP_OK(c != NULL && c->tls.staple == NULL && !c->tls.staple_auto,
	    "no stapling by default");
	config_free(c);
}

static const char *
listen_names(struct config *c)
{
	static char		 buf[1024];
	struct config_listen	*l;

	buf[0] = '\0';
	TAILQ_FOREACH(l, &c->listens, entry) {
		if (buf[0] != '\0')
			strlcat(buf, " ", sizeof(buf));
		strlcat(buf, l->name, sizeof(buf));
	}
	return buf;
}

static void
test_listen(void)
{
	struct config		*c;
	struct config_listen	*l;
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	struct servent		*se;
	char			 err[512], text[4096];
	int			 ok;

	snprintf(text, sizeof(text), "%s"
	    "listen on ::1 port 8443\n"
	    "listen on [::1] port 9000\n"
	    "listen on 127.0.0.2\n", MINIMAL);
	c = parse_text(text, err, sizeof(err));
	TAP_OK(c != NULL, "IPv4 and IPv6 listeners parse (%s)",
	    c ? "" : err);
	if (c == NULL)
		return;
	TAP_OK(strcmp(listen_names(c), "127.0.0.1:8443 [::1]:8443 "
	    "[::1]:9000 127.0.0.2:8443") == 0, "listener names: %s",
	    listen_names(c));
	l = TAILQ_FIRST(&c->listens);
	sin = (struct sockaddr_in *)&l->ss;
	TAP_OK(sin->sin_family == AF_INET && ntohs(sin->sin_port) == 8443 &&
	    sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
	    l->sslen == sizeof(*sin), "IPv4 sockaddr");
	l = TAILQ_NEXT(l, entry);
	sin6 = (struct sockaddr_in6 *)&l->ss;
	TAP_OK(sin6->sin6_family == AF_INET6 &&
	    ntohs(sin6->sin6_port) == 8443 &&
	    IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) &&
	    l->sslen == sizeof(*sin6) && l->lineno == 7 && l->fds[0] == -1,
	    "IPv6 sockaddr, line 7");
	config_free(c);

	c = parse_text("listen on * port 8443\ntls { certificate \"a\"\n"
	    "key \"b\"\nclient ca \"c\" }\n", err, sizeof(err));
	TAP_OK(c != NULL && strcmp(listen_names(c),
	    "0.0.0.0:8443 [::]:8443") == 0, "* is 0.0.0.0 and ::");
	config_free(c);

	c = parse_text("listen on localhost port 8000\ntls {\n"
	    "certificate \"a\"\nkey \"b\"\nclient ca \"c\"\n}\n", err,
	    sizeof(err));
	ok = c != NULL && !TAILQ_EMPTY(&c->listens);
	if (ok) {
		TAILQ_FOREACH(l, &c->listens, entry) {
			sin = (struct sockaddr_in *)&l->ss;
			sin6 = (struct sockaddr_in6 *)&l->ss;
			if (l->ss.ss_family == AF_INET ? (ntohl(
			    sin->sin_addr.s_addr) >> 24) != 127 :
			    !IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
				ok = 0;
		}
	}
	TAP_OK(ok, "localhost resolves to loopback addresses: %s",
	    c ? listen_names(c) : err);
	config_free(c);

	if ((se = getservbyname("https", "tcp")) != NULL) {
		c = parse_text("listen on 127.0.0.1 port https\ntls {\n"
		    "certificate \"a\"\nkey \"b\"\nclient ca \"c\"\n}\n", err,
		    sizeof(err));
		TAP_OK(c != NULL && strcmp(listen_names(c),
		    "127.0.0.1:443") == 0, "service name port");
		config_free(c);
	} else
		TAP_OK(1, "# SKIP no /etc/services entry for https");

	TAP_OK(strcmp(parse_err("listen on 127.0.0.1 port 8443\n"),
	    ":7: listen on 127.0.0.1:8443: duplicate of line 1") == 0,
	    "duplicate listen: %s", parse_err("listen on 127.0.0.1 "
	    "port 8443\n"));
	TAP_OK(strcmp(parse_err("listen on * port 8443\n"),
	    ":7: listen on 0.0.0.0:8443: overlaps 127.0.0.1:8443 on line 1")
	    == 0, "wildcard overlapping a listener");
	TAP_OK(strcmp(parse_err("listen on ::1 port 0\n"),
	    ":7: port 0: out of range (1-65535)") == 0, "port 0");
	TAP_OK(strcmp(parse_err("listen on ::1 port 65536\n"),
	    ":7: port 65536: out of range (1-65535)") == 0, "port 65536");
	TAP_OK(strcmp(parse_err("listen on ::1 port \"nosuchservice\"\n"),
	    ":7: port \"nosuchservice\": unknown service") == 0,
	    "unknown service");
	TAP_OK(strncmp(parse_err("listen on 1.2.3.4.5 port 80\n"),
	    ":7: listen on 1.2.3.4.5: ", 25) == 0,
	    "bad address: %s", parse_err("listen on 1.2.3.4.5 port 80\n"));
	TAP_OK(strcmp(parse_err("listen 127.0.0.1 port 80\n"),
	    ":7: syntax error near \"127.0.0.1\"") == 0,
	    "listen without on: %s", parse_err("listen 127.0.0.1 port 80\n"));
}

static void
test_macros(void)
{
	struct config	*c;
	char		 err[512];

	c = parse_text(
	    "port = 8443\n"
	    "addr=\"127.0.0.1\"\n"
	    "both = \"::1 port 9001\"\n"
	    "who = \"$addr\"\n"
	    "listen on $addr port $port\n"
	    "listen on $both\n"
	    "user $who\n"
	    "tls {\n certificate \"a\"\n key \"b\"\n client ca \"c\"\n}\n",
	    err, sizeof(err));
	TAP_OK(c != NULL, "macros parse (%s)", c ? "" : err);
	if (c != NULL) {
		TAP_OK(strcmp(listen_names(c),
		    "127.0.0.1:8443 [::1]:9001") == 0,
		    "macro values, number macro, several words: %s",
		    listen_names(c));
		TAP_OK(strcmp(c->user, "$addr") == 0,
		    "no expansion inside quotes");
	}
	config_free(c);

	TAP_OK(config_define("tdport=9555") == 0, "-D tdport=9555");
	TAP_OK(config_define("tdaddr=::1") == 0, "-D tdaddr=::1");
	TAP_OK(config_define("bad-name=1") == -1 &&
	    config_define("1abc=1") == -1 && config_define("noequals") == -1,
	    "invalid -D definitions refused");
	c = parse_text("tdport = 1000\nlisten on $tdaddr port $tdport\n"
	    "tls {\n certificate \"a\"\n key \"b\"\n client ca \"c\"\n}\n",
	    err, sizeof(err));
	TAP_OK(c != NULL && strcmp(listen_names(c), "[::1]:9555") == 0,
	    "-D overrides the file's definition");
	config_free(c);
	c = parse_text("listen on 127.0.0.1 port $tdport\n"
	    "tls {\n certificate \"a\"\n key \"b\"\n client ca \"c\"\n}\n",
	    err, sizeof(err));
	TAP_OK(c != NULL && strcmp(listen_names(c), "127.0.0.1:9555") == 0,
	    "-D macros persist across parses");
	config_free(c);
	TAP_OK(config_define("tdport=9556") == 0, "-D redefined");
	c = parse_text("listen on 127.0.0.1 port $tdport\n"
	    "tls {\n certificate \"a\"\n key \"b\"\n client ca \"c\"\n}\n",
	    err, sizeof(err));
	TAP_OK(c != NULL && strcmp(listen_names(c), "127.0.0.1:9556") == 0,
	    "-D redefinition used");
	config_free(c);

	/* File macros do not survive into the next parse. */
	c = parse_text("filemacro = 1\n", err, sizeof(err));
	config_free(c);
	TAP_OK(strcmp(parse_err("prefork $filemacro\n"),
	    ":7: unknown macro $filemacro") == 0,
	    "file macros are forgotten between parses");
	TAP_OK(strcmp(parse_err("\n\nprefork $nosuch\n"),
	    ":9: unknown macro $nosuch") == 0, "unknown macro with line");
	TAP_OK(strcmp(parse_err("prefork $\n"),
	    ":7: '$' without a macro name") == 0, "bare $");
	TAP_OK(strcmp(parse_err("\"bad name\" = 3\n"),
	    ":7: invalid macro name \"bad name\"") == 0, "invalid macro name");
	TAP_OK(strcmp(parse_err("listen = 4\nprefork $listen\n"),
	    "(parsed)") == 0, "macro named like a keyword");
}

struct errcase {
	const char	*extra;
	const char	*want;
};

static void
test_errors(void)
{
	static const struct errcase cases[] = {
		{ "foo 3\n", ":7: unknown keyword \"foo\"" },
		{ "prefork 0\n", ":7: prefork 0: out of range (1-64)" },
		{ "prefork 65\n", ":7: prefork 65: out of range (1-64)" },
		{ "prefork -1\n", ":7: prefork -1: out of range (1-64)" },
		{ "prefork 99999999999999999999\n",
		    ":7: number 99999999999999999999 is too large" },
		{ "prefork two\n", ":7: syntax error near \"two\"" },
		{ "prefork\n", ":7: syntax error at end of line" },
		{ "prefork 2\nkeyholders 3\n",
		    ":8: keyholders 3: more than prefork 2" },
		{ "keyholders 0\n", ":7: keyholders 0: out of range (1-64)" },
		{ "timeout request 0\n",
		    ":7: timeout request 0: out of range (1-3600)" },
		{ "timeout request 3601\n",
		    ":7: timeout request 3601: out of range (1-3600)" },
		{ "timeout idle 86401\n",
		    ":7: timeout idle 86401: out of range (1-86400)" },
		{ "timeout handshake 0\n",
		    ":7: timeout handshake 0: out of range (1-3600)" },
		{ "timeout forever 3\n", ":7: syntax error near \"forever\"" },
		{ "max connections 0\n",
		    ":7: max connections 0: out of range (1-100000)" },
		{ "max connections 100001\n",
		    ":7: max connections 100001: out of range (1-100000)" },
		{ "max signatures 0\n",
		    ":7: max signatures 0: out of range (1-1000000)" },
		{ "expiry warning 3651\n",
		    ":7: expiry warning 3651: out of range (0-3650)" },
		{ "cache size lots\n", ":7: cache size lots: not a size "
		    "(a number of bytes, or with K, M or G)" },
		{ "cache size 2T\n",
		    ":7: cache size 2T: out of range (0-1024G)" },
		{ "cache size 1M\ncache size 2M\n",
		    ":8: cache size already set on line 7" },
		{ "prefork 2\nprefork 3\n",
		    ":8: prefork already set on line 7" },
		{ "user \"\"\n", ":7: user: empty value" },
		{ "chroot \"var/empty\"\n",
		    ":7: chroot \"var/empty\": not an absolute path" },
		{ "database \"\"\n", ":7: database: empty path" },
		{ "user \"a\nb\"\n", ":7: unterminated string" },
		{ "user \"a\x01\"\n", ":7: invalid character 0x01 in string" },
		{ "user \"x\" !\n", ":7: unexpected character '!'" },
		{ "tls {\n certificate \"x\"\n}\n",
		    ":8: certificate already set" },
		{ "tls {\n protocols \"tlsv9\"\n}\n",
		    ":8: protocols \"tlsv9\": invalid" },
		{ "tls {\n ticket lifetime 100\n}\n",
		    ":8: ticket lifetime 100: out of range (0 or 240-86400)" },
		{ "tls {\n ticket lifetime 86401\n}\n",
		    ":8: ticket lifetime 86401: out of range "
		    "(0 or 240-86400)" },
		{ "tls {\n verify off\n}\n", ":8: unknown keyword \"verify\"" },
		{ "tls {\n crl url \"https://ca/x.crl\" refresh 60\n}\n",
		    ":8: crl url https://ca/x.crl: only http:// URLs are "
		    "fetched" },
		{ "tls {\n crl url \"http://ca/x.crl\" refresh 0\n}\n",
		    ":8: crl url refresh 0: out of range (1-604800 seconds)" },
		{ "tls {\n crl url \"http://ca/x\" refresh 60\n"
		    " crl url \"http://ca/y\" refresh 60\n}\n",
		    ":9: crl url already set on line 8" },
		{ "tls {\n ocsp staple auto\n ocsp staple \"s.der\"\n}\n",
		    ":9: ocsp staple already set on line 8" },
		{ "tls {\n ocsp staple \"s.der\"\n ocsp staple auto\n}\n",
		    ":9: ocsp staple already set on line 8" },
		{ "tls {\n ocsp staple \"\"\n}\n",
		    ":8: ocsp staple: empty path" },
		{ "tls {\n ocsp staple auto\n ocsp url \"https://o/\"\n}\n",
		    ":9: ocsp url https://o/: only http:// URLs are fetched" },
		{ "tls {\n ocsp staple auto\n ocsp url \"http://\"\n}\n",
		    ":9: ocsp url http://: no host in the URL" },
		{ "tls {\n ocsp staple auto\n ocsp url \"http://a/\"\n"
		    " ocsp url \"http://b/\"\n}\n",
		    ":10: ocsp url already set on line 9" },
		{ "tls {\n ocsp url \"http://a/\"\n}\n",
		    ":8: ocsp url is where ocsp staple auto fetches from: add "
		    "ocsp staple auto, or remove it" },
		{ "tls {\n ocsp staple\n}\n", ":8: syntax error at end of "
		    "line" },
		{ "timeout ocsp 0\n",
		    ":7: timeout ocsp 0: out of range (1-60)" },
		{ "timeout ocsp 61\n",
		    ":7: timeout ocsp 61: out of range (1-60)" },
		{ "tls {\n client ocsp maybe\n}\n",
		    ":8: syntax error near \"maybe\"" },
		{ "tls {\n client ocsp require\n client ocsp prefer\n}\n",
		    ":9: client ocsp already set on line 8" },
		{ "tls {\n client ocsp url \"http://a/\"\n"
		    " client ocsp url \"http://b/\"\n}\n",
		    ":9: client ocsp url already set on line 8" },
		{ "tls {\n client ocsp url \"\"\n}\n",
		    ":8: client ocsp url: empty value" },
		{ "allow read from fingerprint \"SHA256:ab:cd\"\n",
		    ":7: fingerprint \"SHA256:ab:cd\": write the 64 hex digits "
		    "without colons" },
		{ "allow read from fingerprint \"SHA256:abcd\"\n",
		    ":7: fingerprint \"SHA256:abcd\": expected 64 hex digits" },
		{ "allow read from fingerprint \"MD5:abcd\"\n",
		    ":7: fingerprint \"MD5:abcd\": must start with SHA256:" },
		{ "allow read from fingerprint \"SHA256:"
		    "zz00000000000000000000000000000000000000000000000000000000"
		    "000000\"\n", ":7: fingerprint \"SHA256:zz00000000000000000"
		    "000000000000000000000000000000000000000000000\": expected "
		    "64 hex digits" },
		{ "allow read from san ip \"1.2.3\"\n",
		    ":7: san ip \"1.2.3\": not an IPv4 or IPv6 address" },
		{ "allow read from san uri \"spiffe://*/x\"\n",
		    ":7: san uri \"spiffe://*/x\": '*' is only allowed at the "
		    "end" },
		{ "allow read from cn \"\"\n", ":7: cn: empty value" },
		{ "allow read from any cn \"x\"\n",
		    ":7: \"any\" cannot be combined with other conditions" },
		{ "allow read from cn \"1\" cn \"2\" cn \"3\" cn \"4\" "
		    "cn \"5\" cn \"6\" cn \"7\" cn \"8\" cn \"9\"\n",
		    ":7: too many conditions (at most 8)" },
		{ "allow read from cn \"x\" method get\n",
		    ":7: method \"get\": expected GET, POST, PATCH or DELETE" },
		{ "allow read from cn \"x\" method GET method POST\n",
		    ":7: method given twice" },
		{ "allow read from cn \"x\" path \"todo\"\n",
		    ":7: path \"todo\": must start with '/'" },
		{ "allow read from cn \"x\" path \"/a\" path \"/b\"\n",
		    ":7: path given twice" },
		{ "allow raed from cn \"x\"\n",
		    ":7: syntax error near \"raed\"" },
		{ "allow read from\n", ":7: syntax error at end of line" },
		{ "allow { } from any\n", ":7: syntax error near '}'" },
		{ "allow read cn \"x\"\n", ":7: syntax error near \"cn\"" },
		{ "include \"nonexistent.conf\"\n", NULL },
		{ "tls {\n", ":7: syntax error at end of file" },
	};
	const char	*got;
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		got = parse_err(cases[i].extra);
		if (cases[i].want == NULL)
			TAP_OK(strncmp(got, ":7: include ", 12) == 0 &&
			    strstr(got, "nonexistent.conf: No such file") !=
			    NULL, "missing include: %s", got);
		else
			TAP_OK(strcmp(got, cases[i].want) == 0,
			    "error %s", got);
	}
}

static void
test_missing(void)
{
	struct config	*c;
	char		 err[512], want[PATH_MAX + 64];

	c = parse_text("", err, sizeof(err));
	snprintf(want, sizeof(want), "%s:1: no listen address "
	    "(listen on ADDRESS port PORT)", tpath("t.conf"));
	TAP_OK(c == NULL && strcmp(err, want) == 0, "empty file: %s", err);
	TAP_OK(logged(":1: missing tls block"), "missing tls block logged");

	c = parse_text("listen on ::1 port 1\n\n\n", err, sizeof(err));
	snprintf(want, sizeof(want), "%s:3: missing tls block",
	    tpath("t.conf"));
	TAP_OK(c == NULL && strcmp(err, want) == 0,
	    "missing tls block at the last line: %s", err);

	c = parse_text("listen on ::1 port 1\ntls {\n}\n", err, sizeof(err));
	snprintf(want, sizeof(want), "%s:2: tls block: missing certificate",
	    tpath("t.conf"));
	TAP_OK(c == NULL && strcmp(err, want) == 0, "%s", err);
	TAP_OK(logged(":2: tls block: missing key") &&
	    logged(":2: tls block: missing client ca"),
	    "missing key and client ca logged too");

	c = parse_text("listen on ::1 port 1\ntls { certificate \"a\"\n"
	    "client ca \"c\" }\n", err, sizeof(err));
	snprintf(want, sizeof(want), "%s:2: tls block: missing key",
	    tpath("t.conf"));
	TAP_OK(c == NULL && strcmp(err, want) == 0, "%s", err);

	c = config_parse(tpath("nonexistent.conf"), err, sizeof(err));
	snprintf(want, sizeof(want), "%s: No such file or directory",
	    tpath("nonexistent.conf"));
	TAP_OK(c == NULL && strcmp(err, want) == 0, "no such file: %s", err);

	/* Every error is logged; the buffer keeps the first. */
	c = parse_text("prefork 0\nbogus\nuser \"\"\n", err, sizeof(err));
	snprintf(want, sizeof(want), "%s:1: prefork 0", tpath("t.conf"));
	TAP_OK(c == NULL && strncmp(err, want, strlen(want)) == 0 &&
	    logged(":2: unknown keyword \"bogus\"") &&
	    logged(":3: user: empty value"), "errors after the first logged");

	c = parse_text("prefork 0\n", err, 8);
	TAP_OK(c == NULL && strlen(err) == 7, "small error buffer truncated");
	c = parse_text("prefork 0\n", NULL, 0);
	TAP_OK(c == NULL, "NULL error buffer accepted");
}

static void
test_rules(void)
{
	struct config		*c;
	struct authz_rule	*r;
	char			 err[512], text[4096];
	static const uint8_t	 ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0,
	    0, 0, 0, 0, 0, 0, 0, 0, 1 };

	snprintf(text, sizeof(text), "%s"
	    "allow read from cn \"auditor\"\n"
	    "allow { read, metrics } from cn \"prometheus\"\n"
	    "allow { write read } from ou \"ops\" ou \"dev\"\n"
	    "allow all from fingerprint \"sha256:4F1C00000000000000000000000"
	    "00000000000000000000000000000000000Aa\"\n"
	    "allow write from san uri \"spiffe://example.org/ns/prod/*\" "
	    "method POST path \"/todo\"\n"
	    "allow write from san ip \"2001:DB8::1\" method { PATCH, DELETE }"
	    "\n"
	    "allow read from san dns \"svc.example.org\" san email "
	    "\"a@example.org\" path \"/todo/\" method GET\n"
	    "allow metrics from any\n", MINIMAL);
	c = parse_text(text, err, sizeof(err));
	TAP_OK(c != NULL, "allow rules parse (%s)", c ? "" : err);
	if (c == NULL)
		return;
	r = TAILQ_FIRST(&c->rules);
	TAP_OK(r->classes == AUTHZ_READ && r->nconds == 1 &&
	    r->conds[0].type == MATCH_CN &&
	    strcmp(r->conds[0].value, "auditor") == 0 && r->methods == 0 &&
	    r->path == NULL && r->lineno == 7, "allow read from cn");
	r = TAILQ_NEXT(r, entry);
	TAP_OK(r->classes == (AUTHZ_READ | AUTHZ_METRICS) && r->lineno == 8,
	    "class list with comma");
	r = TAILQ_NEXT(r, entry);
	TAP_OK(r->classes == (AUTHZ_READ | AUTHZ_WRITE) && r->nconds == 2 &&
	    r->conds[1].type == MATCH_OU &&
	    strcmp(r->conds[1].value, "dev") == 0,
	    "class list without comma, two conditions");
	r = TAILQ_NEXT(r, entry);
	TAP_OK(r->classes == AUTHZ_ALL &&
	    r->conds[0].type == MATCH_FINGERPRINT &&
	    strcmp(r->conds[0].value, "SHA256:4f1c0000000000000000000000000"
	    "000000000000000000000000000000000aa") == 0,
	    "fingerprint normalized");
	r = TAILQ_NEXT(r, entry);
	TAP_OK(r->conds[0].type == MATCH_SAN_URI &&
	    r->methods == AUTHZ_M_POST && strcmp(r->path, "/todo") == 0,
	    "san uri with method and path");
	r = TAILQ_NEXT(r, entry);
	TAP_OK(r->conds[0].type == MATCH_SAN_IP && r->conds[0].iplen == 16 &&
	    memcmp(r->conds[0].ip, ip6, 16) == 0 &&
	    strcmp(r->conds[0].value, "2001:db8::1") == 0 &&
	    r->methods == (AUTHZ_M_PATCH | AUTHZ_M_DELETE),
	    "san ip v6 normalized, method list");
	r = TAILQ_NEXT(r, entry);
	TAP_OK(r->nconds == 2 && r->conds[0].type == MATCH_SAN_DNS &&
	    r->conds[1].type == MATCH_SAN_EMAIL &&
	    r->methods == AUTHZ_M_GET && strcmp(r->path, "/todo/") == 0,
	    "dns and email conditions, path before method");
	r = TAILQ_NEXT(r, entry);
	TAP_OK(r->classes == AUTHZ_METRICS && r->nconds == 1 &&
	    r->conds[0].type == MATCH_ANY && TAILQ_NEXT(r, entry) == NULL,
	    "allow metrics from any, last rule");
	config_free(c);
}

static void
test_include(void)
{
	struct config	*c;
	char		 err[1024], text[4096], want[PATH_MAX + 64];

	write_file("rules.conf", "who = \"inc\"\n"
	    "allow read from cn $who\n"
	    "allow write from cn \"w\"");
	snprintf(text, sizeof(text), "%sinclude \"rules.conf\"\n"
	    "allow read from cn $who\n", MINIMAL);
	c = parse_text(text, err, sizeof(err));
	TAP_OK(c != NULL && TAILQ_FIRST(&c->rules) != NULL &&
	    TAILQ_LAST(&c->rules, authz_rules)->lineno == 8 &&
	    TAILQ_FIRST(&c->rules)->lineno == 2,
	    "include; macros defined there are visible after (%s)",
	    c ? "" : err);
	config_free(c);

	write_file("bad.conf", "\nprefork 0\n");
	snprintf(text, sizeof(text), "%sinclude \"bad.conf\"\n", MINIMAL);
	c = parse_text(text, err, sizeof(err));
	snprintf(want, sizeof(want), "%s:2: prefork 0", tpath("bad.conf"));
	TAP_OK(c == NULL && strncmp(err, want, strlen(want)) == 0,
	    "error in an included file names it: %s", err);

	write_file("loop.conf", "include \"loop.conf\"\n");
	snprintf(text, sizeof(text), "%sinclude \"loop.conf\"\n", MINIMAL);
	c = parse_text(text, err, sizeof(err));
	TAP_OK(c == NULL && strstr(err, "includes itself") != NULL,
	    "include loop refused: %s", err);

	snprintf(text, sizeof(text), "%sinclude \"/dev/null\"\n", MINIMAL);
	c = parse_text(text, err, sizeof(err));
	TAP_OK(c == NULL && strstr(err, "not a regular file") != NULL,
	    "include of a device refused");
}

/* Reloads: the same results every time, and nothing left over. */
static void
test_reparse(void)
{
	struct config	*c;
	char		 err[512], text[4096];
	int		 i, good = 0, bad = 0;

	snprintf(text, sizeof(text), "x = 5\n%s"
	    "allow read from cn \"a\" method GET path \"/todo\"\n"
	    "allow write from san ip \"::1\"\n", MINIMAL);
	write_file("good.conf", text);
	write_file("bad.conf", "x = 1\nprefork $x\ntls {\n certificate \"a\"\n"
	    " oops\n}\nallow read from cn \"a\" method {\n");
	for (i = 0; i < 200; i++) {
		c = config_parse(tpath(i % 2 ? "bad.conf" : "good.conf"), err,
		    sizeof(err));
		if (i % 2 == 0 && c != NULL && c->prefork >= 1 &&
		    !TAILQ_EMPTY(&c->rules) &&
		    strcmp(listen_names(c), "127.0.0.1:8443") == 0)
			good++;
		if (i % 2 == 1 && c == NULL && strstr(err,
		    "bad.conf:5: unknown keyword \"oops\"") != NULL)
			bad++;
		config_free(c);
	}
	TAP_OK(good == 100 && bad == 100, "200 alternating parses (%d/%d)",
	    good, bad);
}

/* Certificate material for check_config. */

/* What `todod -n` runs: every problem logged, the key parsed here. */
static int
check_files(const struct config *c)
{
	char	 err[1024];

	return check_config(c, CHECK_ALL | CHECK_KEY, NULL, err, sizeof(err));
}

static EVP_PKEY *
key_ec(void)
{
	return EVP_EC_gen("P-256");
}

static X509 *
make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey,
    long from_days, long to_days, int ca)
{
	X509		*x;
	X509_EXTENSION	*ext;
	X509V3_CTX	 ctx;
	static long	 serial = 1;

	x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
	    MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) :
	    X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (ca) {
		ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage,
		    "critical,keyCertSign,cRLSign");
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, ikey ? ikey : key,
	    EVP_PKEY_get_id(ikey ? ikey : key) == EVP_PKEY_ED25519 ? NULL :
	    EVP_sha256()) == 0)
		abort();
	return x;
}

static X509_CRL *
make_crl(X509 *ca, EVP_PKEY *cakey, long next_days)
{
	X509_CRL	*crl;
	ASN1_TIME	*t;

	crl = X509_CRL_new();
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	t = X509_gmtime_adj(NULL, -86400);
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_free(t);
	t = X509_gmtime_adj(NULL, next_days * 86400);
	X509_CRL_set1_nextUpdate(crl, t);
	ASN1_TIME_free(t);
	if (X509_CRL_sign(crl, cakey, EVP_sha256()) == 0)
		abort();
	return crl;
}

static void
save_cert(const char *name, X509 *x, X509 *x2)
{
	FILE	*fp;

	if ((fp = fopen(tpath(name), "w")) == NULL)
		abort();
	PEM_write_X509(fp, x);
	if (x2 != NULL)
		PEM_write_X509(fp, x2);
	fclose(fp);
}

static void
save_key(const char *name, EVP_PKEY *k, mode_t mode)
{
	FILE	*fp;
	int	 fd;

	unlink(tpath(name));
	if ((fd = open(tpath(name), O_WRONLY | O_CREAT | O_TRUNC, 0600)) ==
	    -1 || (fp = fdopen(fd, "w")) == NULL)
		abort();
	PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	chmod(tpath(name), mode);
}

static void
save_crl(const char *name, X509_CRL *crl)
{
	FILE	*fp;

	if ((fp = fopen(tpath(name), "w")) == NULL)
		abort();
	PEM_write_X509_CRL(fp, crl);
	fclose(fp);
}

static int
is_world_writable(const char *path)
{
	struct stat	 st;

	return stat(path, &st) == 0 && (st.st_mode & S_IWOTH);
}

/* The checks of a configuration whose user is user. */
static int
check_user_named(const char *user)
{
	struct config	*c;
	char		 err[256], cfg[4096];
	int		 n;

	snprintf(cfg, sizeof(cfg), "listen on ::1 port 1\nuser \"%s\"\n"
	    "database \"db/x.db\"\ntls {\n certificate \"server.crt\"\n"
	    " key \"server.key\"\n client ca \"ca.crt\"\n}\n", user);
	c = parse_text(cfg, err, sizeof(err));
	n = c ? check_files(c) : -1;
	config_free(c);
	return n;
}

/* Parse a check configuration and run check_files on it. */
static int	check_with(const char *, const char *, const char *,
		    const char *);

/*
 * As root: every component of the chroot path is checked, as sshd does.
 * The directories are made under a root-owned 0755 one, not in /tmp.
 */
static void
test_check_chroot(void)
{
	char	 safe[] = "/var/lib/todod-unit.XXXXXX", jail[64], text[256];
	int	 n;

	if (mkdtemp(safe) == NULL || chmod(safe, 0755) == -1)
		abort();
	snprintf(jail, sizeof(jail), "%s/jail", safe);
	mkdir(jail, 0775);
	chmod(jail, 0775);
	snprintf(text, sizeof(text), "chroot \"%s\"\n", jail);
	n = check_with("server.key", NULL, "server.crt", text);
	TAP_OK(n == 1 && logged("writable by group (mode 0775): chmod go-w"),
	    "group-writable chroot");
	chmod(jail, 0755);
	chown(jail, 65534, 65534);
	n = check_with("server.key", NULL, "server.crt", text);
	TAP_OK(n == 1 && logged("owned by uid 65534, not root: chown root"),
	    "chroot not owned by root");
	chown(jail, 0, 0);
	n = check_with("server.key", NULL, "server.crt", text);
	TAP_OK(n == 0, "root-owned 0755 chroot on a root-owned path");
	chmod(safe, 0777);
	n = check_with("server.key", NULL, "server.crt", text);
	TAP_OK(n == 1 && logged("component of chroot path") &&
	    logged("writable by others (mode 0777)"),
	    "a parent directory writable by others is refused");
	chmod(safe, 0755);
	snprintf(text, sizeof(text), "chroot \"%s/new\"\n", safe);
	n = check_with("server.key", NULL, "server.crt", text);
	TAP_OK(n == 0, "missing chroot in a good directory: start-up "
	    "creates it");
	snprintf(text, sizeof(text), "chroot \"%s/nodir/jail\"\n", safe);
	n = check_with("server.key", NULL, "server.crt", text);
	TAP_OK(n == 1 && logged("nodir: No such file"),
	    "chroot whose parent is missing");
	snprintf(text, sizeof(text), "chroot \"%s\"\n", tpath("jail"));
	mkdir(tpath("jail"), 0755);
	n = check_with("server.key", NULL, "server.crt", text);
	TAP_OK(n == (is_world_writable("/tmp") ? 1 : 0),
	    "a chroot under /tmp is refused for /tmp");
	rmdir(jail);
	rmdir(safe);
}
static const char	*tls_extra = "";	/* lines in the tls block */

static int
check_with(const char *key, const char *crl, const char *cert,
    const char *extra)
{
	struct config	*c;
	char		 text[4096], err[512];
	int		 n;

	mkdir(tpath("db"), 0755);
	snprintf(text, sizeof(text),
	    "listen on 127.0.0.1 port 8443\n"
	    "user \"nobody\"\n"
	    "database \"db/todo.db\"\n"
	    "%s"
	    "tls {\n certificate \"%s\"\n key \"%s\"\n client ca \"ca.crt\"\n"
	    "%s%s%s%s}\n", extra, cert, key, tls_extra, crl ? " crl \"" : "",
	    crl ? crl : "", crl ? "\"\n" : "");
	c = parse_text(text, err, sizeof(err));
	if (c == NULL) {
		printf("# parse failed: %s\n", err);
		return -1;
	}
	n = check_files(c);
	config_free(c);
	return n;
}

/* client ocsp url: checked like a file setting, by check_config. */
static void
test_check_ocsp(void)
{
	static const struct {
		const char	*tls;
		const char	*want;	/* NULL: no problem */
	} cases[] = {
		{ " client ocsp require\n", NULL },
		{ " client ocsp prefer\n client ocsp url "
		    "\"http://127.0.0.1:8888/ocsp\"\n", NULL },
		{ " client ocsp require\n client ocsp url \"http://\"\n",
		    ":9: client ocsp url \"http://\": not an http:// URL "
		    "with a host" },
		{ " client ocsp require\n client ocsp url "
		    "\"https://ca.example/\"\n",
		    ":9: client ocsp url \"https://ca.example/\": not an "
		    "http:// URL" },
		{ " client ocsp require\n client ocsp url "
		    "\"http://ca.example/a b\"\n", "not an http:// URL" },
		{ " client ocsp url \"http://ca.example/\"\n",
		    ":8: client ocsp url is set but client OCSP is off" },
	};
	size_t	 i;
	int	 n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		log_reset();
		tls_extra = cases[i].tls;
		n = check_with("server.key", NULL, "server.crt", "");
		if (cases[i].want == NULL)
			TAP_OK(n == 0, "client ocsp case %zu: no problem (%d)",
			    i, n);
		else
			TAP_OK(n == 1 && logged(cases[i].want),
			    "client ocsp case %zu: %s", i, cases[i].want);
	}
	tls_extra = "";
}

static void
test_check_files(void)
{
	EVP_PKEY	*cakey, *key, *other, *rsa, *ed, *cakey2;
	X509		*ca, *cert, *ca2, *expired, *soon, *rsacert, *edcert;
	X509		*future, *oldca, *smallcert;
	EVP_PKEY	*small;
	X509_CRL	*crl;
	FILE		*fp;
	char		 want[PATH_MAX * 2 + 64];
	int		 n;

	cakey = key_ec();
	key = key_ec();
	other = key_ec();
	cakey2 = key_ec();
	rsa = EVP_RSA_gen(2048);
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (cakey == NULL || key == NULL || other == NULL || rsa == NULL ||
	    ed == NULL || cakey2 == NULL)
		abort();
	ca = make_cert("Test CA", cakey, NULL, NULL, -1, 3650, 1);
	ca2 = make_cert("Other CA", cakey2, NULL, NULL, -1, 3650, 1);
	cert = make_cert("localhost", key, ca, cakey, -1, 365, 0);
	expired = make_cert("localhost", key, ca, cakey, -10, -1, 0);
	soon = make_cert("localhost", key, ca, cakey, -1, 10, 0);
	rsacert = make_cert("localhost", rsa, ca, cakey, -1, 365, 0);
	edcert = make_cert("localhost", ed, ca, cakey, -1, 365, 0);
	future = make_cert("localhost", key, ca, cakey, 1, 365, 0);
	oldca = make_cert("Test CA", cakey, NULL, NULL, -20, -1, 1);
	small = EVP_RSA_gen(1024);
	smallcert = make_cert("localhost", small, ca, cakey, -1, 365, 0);
	save_cert("future.crt", future, NULL);
	save_cert("leafca.crt", cert, NULL);
	save_cert("oldca.crt", oldca, NULL);
	save_cert("smallrsa.crt", smallcert, NULL);
	save_key("small.key", small, 0600);
	save_cert("ca.crt", ca, NULL);
	save_cert("server.crt", cert, ca);
	save_cert("expired.crt", expired, NULL);
	save_cert("soon.crt", soon, NULL);
	save_cert("rsa.crt", rsacert, NULL);
	save_cert("ed.crt", edcert, NULL);
	save_key("server.key", key, 0600);
	save_key("other.key", other, 0600);
	save_key("open.key", key, 0644);
	save_key("rsa.key", rsa, 0600);
	save_key("ed.key", ed, 0400);
	crl = make_crl(ca, cakey, 30);
	save_crl("crl.pem", crl);
	X509_CRL_free(crl);
	crl = make_crl(ca, cakey, -1);
	save_crl("stale.pem", crl);
	X509_CRL_free(crl);
	crl = make_crl(ca2, cakey2, 30);
	save_crl("foreign.pem", crl);
	X509_CRL_free(crl);
	write_file("garbage.pem", "-----BEGIN X509 CRL-----\nnot base64 at "
	    "all!\n-----END X509 CRL-----\n");
	write_file("badca.crt", "-----BEGIN CERTIFICATE-----\nMIIB%%%%\n"
	    "-----END CERTIFICATE-----\n");
	write_file("empty.crt", "no certificates here\n");

	n = check_with("server.key", "crl.pem", "server.crt", "");
	TAP_OK(n == 0, "matching key, CA and CRL: no problem (%d)", n);
	test_check_ocsp();
	n = check_with("rsa.key", NULL, "rsa.crt", "");
	TAP_OK(n == 0, "RSA key matches (%d)", n);
	n = check_with("ed.key", NULL, "ed.crt", "");
	TAP_OK(n == 0, "Ed25519 key matches, mode 0400 fine (%d)", n);

	n = check_with("other.key", NULL, "server.crt", "");
	snprintf(want, sizeof(want), "%s: key does not match certificate %s",
	    tpath("other.key"), tpath("server.crt"));
	TAP_OK(n == 1 && logged(want), "mismatching key names the key file");

	n = check_with("open.key", NULL, "server.crt", "");
	snprintf(want, sizeof(want), "%s: group or world readable",
	    tpath("open.key"));
	TAP_OK(n == 1 && logged(want), "0644 key is an error");

	n = check_with("missing.key", NULL, "server.crt", "");
	snprintf(want, sizeof(want), "%s: No such file or directory",
	    tpath("missing.key"));
	TAP_OK(n == 1 && logged(want), "missing key file");

	chmod(tpath("server.crt"), 0600);
	n = check_with("server.crt", NULL, "server.crt", "");
	snprintf(want, sizeof(want), "%s: not a private key",
	    tpath("server.crt"));
	TAP_OK(n == 1 && logged(want), "certificate given as key: the "
	    "keyholder's own words");
	n = check_with("server.crt", NULL, "server.key", "");
	snprintf(want, sizeof(want), "certificate %s: holds a private key, "
	    "not a certificate: " TLSMAT_SWAPPED, tpath("server.key"));
	TAP_OK(n == 1 && logged(want) && !logged("DECODER") &&
	    !logged("not a private key"), "swapped files: one line says so");
	chmod(tpath("server.crt"), 0644);

	n = check_with("server.key", NULL, "empty.crt", "");
	snprintf(want, sizeof(want), "%s: no PEM certificate",
	    tpath("empty.crt"));
	TAP_OK(n == 1 && logged(want), "certificate file without certificate");

	rename(tpath("ca.crt"), tpath("good-ca.crt"));
	rename(tpath("badca.crt"), tpath("ca.crt"));
	n = check_with("server.key", "crl.pem", "server.crt", "");
	snprintf(want, sizeof(want), "client ca %s: no PEM certificate",
	    tpath("ca.crt"));
	TAP_OK(n == 1 && logged(want), "corrupt CA file (%d)", n);
	rename(tpath("ca.crt"), tpath("badca.crt"));
	rename(tpath("good-ca.crt"), tpath("ca.crt"));

	n = check_with("server.key", "garbage.pem", "server.crt", "");
	snprintf(want, sizeof(want), "crl %s: no PEM CRL",
	    tpath("garbage.pem"));
	TAP_OK(n == 1 && logged(want), "corrupt CRL");

	n = check_with("server.key", "foreign.pem", "server.crt", "");
	snprintf(want, sizeof(want), "%s: issued by /CN=Other CA, which is "
	    "not a CA of client ca %s", tpath("foreign.pem"), tpath("ca.crt"));
	TAP_OK(n == 1 && logged(want), "CRL from another CA");

	n = check_with("server.key", "stale.pem", "server.crt", "");
	snprintf(want, sizeof(want), "CRL %s is out of date since",
	    tpath("stale.pem"));
	TAP_OK(n == 0 && logged(want), "stale CRL is a warning only");

	n = check_with("server.key", NULL, "expired.crt", "");
	TAP_OK(n == 1 && logged("expired on") && logged("every client would "
	    "refuse it"), "expired certificate is an error");
	n = check_with("server.key", NULL, "future.crt", "");
	TAP_OK(n == 1 && logged("not valid before"),
	    "not yet valid certificate is an error");
	n = check_with("server.key", NULL, "server.crt",
	    "");
	TAP_OK(n == 0, "server.crt still fine");
	rename(tpath("ca.crt"), tpath("good-ca.crt"));
	rename(tpath("leafca.crt"), tpath("ca.crt"));
	n = check_with("server.key", NULL, "server.crt", "");
	TAP_OK(n == 1 && logged("no CA certificate in it"),
	    "client ca holding no CA certificate is an error");
	rename(tpath("ca.crt"), tpath("leafca.crt"));
	rename(tpath("oldca.crt"), tpath("ca.crt"));
	n = check_with("server.key", NULL, "server.crt", "");
	TAP_OK(n == 1 && logged("every CA certificate in it has expired"),
	    "client ca whose CA certificates all expired is an error");
	rename(tpath("ca.crt"), tpath("oldca.crt"));
	rename(tpath("good-ca.crt"), tpath("ca.crt"));
	save_key("big.key", key, 0600);
	if ((fp = fopen(tpath("big.key"), "a")) != NULL) {
		for (n = 0; n < 70000; n++)
			fputc('#', fp);
		fclose(fp);
	}
	n = check_with("big.key", NULL, "server.crt", "");
	TAP_OK(n == 1 && logged("larger than 64 KiB"),
	    "key file over the keyholder's 64 KiB is an error");
	n = check_with("small.key", NULL, "smallrsa.crt", "");
	TAP_OK(n == 1 && logged("RSA key of 1024 bits not supported"),
	    "key the keyholder refuses (RSA 1024) is an error");
	n = check_with("server.key", NULL, "soon.crt", "");
	snprintf(want, sizeof(want), "server certificate %s expires on ",
	    tpath("soon.crt"));
	TAP_OK(n == 0 && logged(want) && (logged("(in 9 days)") ||
	    logged("(in 10 days)")), "expiry warning with the date");
	n = check_with("server.key", NULL, "soon.crt", "expiry warning 5\n");
	TAP_OK(n == 0 && !logged("expires on"), "no warning outside window");

	if (geteuid() == 0) {
		n = check_with("server.key", NULL, "server.crt", "");
		TAP_OK(n == 0, "user nobody exists");
		/* A second user line is refused: use a fresh config. */
		n = check_user_named("nosuchuser_tdd");
		TAP_OK(n == 1 && logged("user \"nosuchuser_tdd\" does "
		    "not exist; create it with: useradd -r -d "
		    "/var/empty -s /usr/sbin/nologin nosuchuser_tdd"),
		    "unknown user as root");
		test_check_chroot();
		n = check_user_named("root");
		TAP_OK(n == 1 && logged("user \"root\" has uid 0"),
		    "user root refused, as start-up refuses it");
	} else {
		TAP_OK(1, "# SKIP user and chroot checks need root");
		TAP_OK(1, "# SKIP");
		TAP_OK(1, "# SKIP");
		TAP_OK(1, "# SKIP");
		TAP_OK(1, "# SKIP");
		TAP_OK(1, "# SKIP");
		TAP_OK(1, "# SKIP");
		TAP_OK(1, "# SKIP");
		TAP_OK(1, "# SKIP");
		TAP_OK(1, "# SKIP");
	}

	if ((fp = fopen(tpath("plainfile"), "w")) != NULL)
		fclose(fp);
	n = check_with("server.key", NULL, "server.crt",
	    "database \"plainfile/sub/todo.db\"\n");
	TAP_OK(n == -1, "database given twice refused by the parser");
	{
		struct config	*c;
		char		 err[256], cfg[4096];

		snprintf(cfg, sizeof(cfg), "listen on ::1 port 1\n"
		    "user \"nobody\"\ndatabase \"plainfile/sub/todo.db\"\n"
		    "tls {\n certificate \"server.crt\"\n"
		    " key \"server.key\"\n client ca \"ca.crt\"\n}\n");
		c = parse_text(cfg, err, sizeof(err));
		n = c ? check_files(c) : -1;
		config_free(c);
		snprintf(want, sizeof(want), "%s is not a directory",
		    tpath("plainfile"));
		TAP_OK(n == 1 && logged(want), "database under a regular file");

		snprintf(cfg, sizeof(cfg), "listen on ::1 port 1\n"
		    "user \"nobody\"\ndatabase \"new/deeper/todo.db\"\n"
		    "pidfile \"nodir/todod.pid\"\n"
		    "tls {\n certificate \"server.crt\"\n"
		    " key \"server.key\"\n client ca \"ca.crt\"\n}\n");
		c = parse_text(cfg, err, sizeof(err));
		n = c ? check_files(c) : -1;
		config_free(c);
		TAP_OK(n == 1 && logged("its directory does not exist") &&
		    !logged("todo.db"), "database directory can be created; "
		    "pidfile directory missing (%d)", n);
	}

	X509_free(ca);
	X509_free(ca2);
	X509_free(cert);
	X509_free(expired);
	X509_free(soon);
	X509_free(rsacert);
	X509_free(edcert);
	X509_free(future);
	X509_free(oldca);
	X509_free(smallcert);
	EVP_PKEY_free(small);
	EVP_PKEY_free(cakey);
	EVP_PKEY_free(cakey2);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}

static void
cleanup(void)
{
	char	 cmd[PATH_MAX + 32];

	if (dir[0] == '/' && strncmp(dir, "/tmp/", 5) == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", dir);
	}
}

/* The PEM, CRL and time helpers every part of todod uses. */
static void
test_tlsmat_helpers(void)
{
	STACK_OF(X509)		*certs;
	STACK_OF(X509_CRL)	*crls = NULL;
	struct config		*c;
	struct buf		 b;
	ASN1_TIME		*t;
	X509			*x;
	char			 s[64], err[512], text[512];
	const char		*two;

	t = ASN1_TIME_set(NULL, 86400 * 365);
	TAP_OK(tlsmat_time(t) == 86400 * 365, "ASN.1 time to time_t");
	ASN1_TIME_free(t);
	TAP_OK(tlsmat_time(NULL) == 0, "no time is 0");
	tlsmat_time_str(0, s, sizeof(s));
	TAP_OK(strcmp(s, "1970-01-01 00:00:00 UTC") == 0, "time string");

	TAP_OK(tlsmat_read_file(tpath("server.crt"), &b, err,
	    sizeof(err)) == 0, "read the certificate file");
	certs = tlsmat_pem_certs(b.data, b.len);
	TAP_OK(certs != NULL && sk_X509_num(certs) == 2,
	    "chain file: leaf and CA, in order");
	sk_X509_pop_free(certs, X509_free);
	x = tlsmat_pem_cert(b.data, b.len);
	TAP_OK(x != NULL, "first certificate only");
	X509_free(x);
	TAP_OK(tlsmat_pem_first(b.data, b.len, s, sizeof(s)) == 0 &&
	    strcmp(s, "CERTIFICATE") == 0, "first PEM block's name");
	buf_free(&b);
	TAP_OK(tlsmat_read_file(tpath("badca.crt"), &b, err,
	    sizeof(err)) == 0 && tlsmat_pem_certs(b.data, b.len) == NULL,
	    "a damaged certificate block is refused");
	buf_free(&b);
	TAP_OK(tlsmat_read_file(tpath("nonexistent"), &b, err,
	    sizeof(err)) == -1 && strcmp(err, "No such file or directory") ==
	    0, "missing file: %s", err);
	buf_free(&b);
	TAP_OK(tlsmat_read_file(dir, &b, err, sizeof(err)) == -1 &&
	    strcmp(err, "not a regular file") == 0, "directory refused");
	buf_free(&b);

	/* two CRLs in one file, as libtls loads them */
	snprintf(text, sizeof(text), "cat %s %s > %s", tpath("crl.pem"),
	    tpath("foreign.pem"), tpath("two.pem"));
	two = tpath("two.pem");
	if (system(text) != 0)
		abort();
	TAP_OK(tlsmat_read_file(two, &b, err, sizeof(err)) == 0 &&
	    (crls = tlsmat_pem_crls(b.data, b.len)) != NULL &&
	    sk_X509_CRL_num(crls) == 2, "every CRL of a file");
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	buf_free(&b);
	TAP_OK(tlsmat_pem_crls("garbage", 7) == NULL, "garbage is no CRL");

	/* messages name the file and line where the setting was made */
	c = parse_text("listen on ::1 port 1\n\ntls {\n certificate "
	    "\"server.crt\"\n key \"server.key\"\n client ca \"ca.crt\"\n}\n",
	    err, sizeof(err));
	config_problem(c, "key", c->tls.key, err, sizeof(err), "why %d", 1);
	snprintf(text, sizeof(text), "%s:5: key %s: why 1", tpath("t.conf"),
	    tpath("server.key"));
	TAP_OK(strcmp(err, text) == 0, "origin: %s", err);
	config_problem(c, "chroot", c->chroot, err, sizeof(err), "x");
	TAP_OK(strcmp(err, "chroot /var/empty (default): x") == 0,
	    "a default has no line: %s", err);
	config_free(c);
}

int
main(void)
{
	char	 tmpl[] = "/tmp/test_config.XXXXXX";

	if (mkdtemp(tmpl) == NULL || realpath(tmpl, dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	log_setsink(sink);
	test_defaults();
	test_full();
	test_pkcs11();
	test_relative_path();
	test_staple_file();
	test_listen();
	test_macros();
	test_errors();
	test_missing();
	test_rules();
	test_include();
	test_reparse();
	test_check_files();
	test_tlsmat_helpers();
	cleanup();
	return tap_done();
}
