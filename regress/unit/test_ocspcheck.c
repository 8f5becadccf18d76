/*
 * Unit tests for daemon/ocspcheck.c against real OCSP responses: a CA,
 * client certificates and a responder database made with the openssl
 * command, answers made by `openssl ocsp' from the requests this module
 * builds.  Good, revoked and unknown answers; and every reason to refuse
 * one: wrong signer, undelegated signer, other certificate, wrong nonce,
 * expired, from the future, malformed; and the responder URL taken only
 * from the configuration or from a certificate the CA signed.
 */
#include <sys/types.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ocspcheck.h"
#include "ocspmsg.h"
#include "tap.h"

static char	 dir[] = "/tmp/test_ocspcheck.XXXXXX";
static X509_STORE *ca;

static uint8_t *
slurp(const char *name, size_t *len)
{
	char	 file[256];
	FILE	*fp;
	uint8_t	*p = NULL;
	long	 n;

	snprintf(file, sizeof(file), "%s", name);
	if ((fp = fopen(file, "r")) == NULL)
		return NULL;
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) > 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 && (p = malloc(n)) != NULL &&
	    fread(p, 1, n, fp) != (size_t)n) {
		free(p);
		p = NULL;
	} else if (p != NULL)
		*len = n;
	fclose(fp);
	return p;
}

static int
spit(const char *name, const void *p, size_t len)
{
	char	 file[256];
	FILE	*fp;
	int	 ok;

	snprintf(file, sizeof(file), "%s", name);
	if ((fp = fopen(file, "w")) == NULL)
		return -1;
	ok = fwrite(p, 1, len, fp) == len;
	return fclose(fp) == 0 && ok ? 0 : -1;
}

#define SUB(name, ca, serial, ext) \
	"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 " \
	"-nodes -keyout " name ".key -subj /CN=" name " -out " name ".csr " \
	"2>/dev/null && openssl x509 -req -in " name ".csr -CA " ca ".crt " \
	"-CAkey " ca ".key -set_serial " serial " -days 2 -extfile ext.cnf " \
	"-extensions " ext " -out " name ".crt 2>/dev/null && "

static void
make_pki(void)
{
	int	 ok;

	if (mkdtemp(dir) == NULL || chdir(dir) == -1)
		abort();
	ok = tap_run("printf '%%s\\n' '[cli]' "
	    "'extendedKeyUsage=clientAuth' "
	    "'authorityInfoAccess=OCSP;URI:http://127.0.0.1:9/ocsp' "
	    "'[nourl]' 'extendedKeyUsage=clientAuth' "
	    "'[rsp]' 'extendedKeyUsage=OCSPSigning' "
	    "'[plain]' 'extendedKeyUsage=clientAuth' > ext.cnf && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -keyout ca.key -out ca.crt -subj /CN=ocsp-ca -days 2 "
	    "2>/dev/null && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -keyout other.key -out other.crt -subj /CN=other-ca "
	    "-days 2 2>/dev/null && "
	    SUB("good", "ca", "0x1001", "cli")
	    SUB("rev", "ca", "0x1002", "cli")
	    SUB("unk", "ca", "0x1003", "cli")
	    SUB("stranger", "other", "0x1004", "cli")
	    SUB("nourl", "ca", "0x1005", "nourl")
	    SUB("rsp", "ca", "0x1006", "rsp")
	    SUB("plain", "ca", "0x1007", "plain")
	    "printf 'V\\t301231235959Z\\t\\t1001\\tunknown\\t/CN=good\\n"
	    "R\\t301231235959Z\\t240101000000Z\\t1002\\tunknown\\t/CN=rev\\n"
	    "V\\t301231235959Z\\t\\t1005\\tunknown\\t/CN=nourl\\n' > index.txt") == 0;
	if (!ok || (ca = X509_STORE_new()) == NULL ||
	    !X509_STORE_load_file(ca, "ca.crt")) {
		printf("Bail out! cannot make the test PKI in %s\n", dir);
		exit(1);
	}
}

/* A query for name.crt (DER), with url configured or NULL. */
static int
query(struct ocspcheck_query *q, const char *name, const char *url,
    char *err, size_t errlen)
{
	char	 f[64];
	uint8_t	*der;
	size_t	 len;
	int	 rv;

	snprintf(f, sizeof(f), "%s.der", name);
	if (tap_run("openssl x509 -in %s.crt -outform DER -out %s", name, f) ==
	    -1 || (der = slurp(f, &len)) == NULL) {
		memset(q, 0, sizeof(*q));
		snprintf(err, errlen, "test setup failed");
		return -2;
	}
	rv = ocspcheck_query_new(q, der, len, ca, url, err, errlen);
	free(der);
	return rv;
}

/*
 * Have `openssl ocsp' answer req.der (signer and extra arguments as
 * given), then verify the answer for q at now + offset.
 */
static int
answer(struct ocspcheck_query *q, const char *signer, const char *extra,
    time_t offset, uint32_t *st, time_t *until, char *err, size_t errlen)
{
	uint8_t	*resp;
	size_t	 len;
	int	 rv;

	unlink("resp.der");
	if (spit("req.der", q->der, q->derlen) == -1 ||
	    tap_run("openssl ocsp -index index.txt "
	    "-CA ca.crt -rsigner %s.crt -rkey %s.key -reqin req.der "
	    "-respout resp.der %s >/dev/null 2>&1", signer, signer, extra) == -1 || (resp = slurp("resp.der", &len)) == NULL)
		return -2;
	rv = ocspcheck_verify(q, resp, len, ca, time(NULL) + offset, st,
	    until, err, errlen);
	free(resp);
	return rv;
}

static void
test_query(void)
{
	struct ocspcheck_query	 q;
	char			 err[256];

	TAP_OK(query(&q, "good", NULL, err, sizeof(err)) == 0 &&
	    strcmp(q.url, "http://127.0.0.1:9/ocsp") == 0 && q.derlen > 0,
	    "the AIA URL of a certificate the CA signed");
	ocspcheck_query_free(&q);
	TAP_OK(query(&q, "good", "http://127.0.0.1:8/x", err, sizeof(err)) ==
	    0 && strcmp(q.url, "http://127.0.0.1:8/x") == 0,
	    "the configured URL over the AIA");
	ocspcheck_query_free(&q);
	TAP_OK(query(&q, "stranger", NULL, err, sizeof(err)) == -1 &&
	    strstr(err, "not signed by the client CA") != NULL,
	    "another CA's certificate: no query (%s)", err);
	ocspcheck_query_free(&q);
	TAP_OK(query(&q, "stranger", "http://127.0.0.1:8/", err,
	    sizeof(err)) == -1, "not even to the configured responder");
	ocspcheck_query_free(&q);
	TAP_OK(query(&q, "nourl", NULL, err, sizeof(err)) == -1 &&
	    strstr(err, "no usable OCSP URL") != NULL,
	    "no AIA and none configured (%s)", err);
	ocspcheck_query_free(&q);
	TAP_OK(query(&q, "nourl", "http://127.0.0.1:8/", err, sizeof(err)) ==
	    0, "no AIA, a configured URL");
	ocspcheck_query_free(&q);
	TAP_OK(ocspcheck_url_ok("http://ocsp.example/"), "an http URL");
	TAP_OK(!ocspcheck_url_ok("https://ocsp.example/"), "not https");
	TAP_OK(!ocspcheck_url_ok("http://"), "not without a host");
	TAP_OK(!ocspcheck_url_ok("ftp://x/"), "not ftp");
	TAP_OK(!ocspcheck_url_ok("http://a b/") &&
	    !ocspcheck_url_ok("http://a\n/"), "no spaces or controls");
	TAP_OK(ocspcheck_query_new(&q, "\x30\x00", 2, ca, NULL, err,
	    sizeof(err)) == -1, "not a certificate");
	ocspcheck_query_free(&q);
}

static void
test_answers(void)
{
	struct ocspcheck_query	 q, q2;
	char			 err[256] = "";
	uint32_t		 st = 99;
	time_t			 until = 0, now = time(NULL);

	query(&q, "good", NULL, err, sizeof(err));
	TAP_OK(answer(&q, "ca", "-nmin 60", 0, &st, &until, err,
	    sizeof(err)) == 0 && st == OCSPMSG_GOOD &&
	    until >= now + 3500 && until <= now + 3700,
	    "good, kept until nextUpdate (%s)", err);
	TAP_OK(answer(&q, "rsp", "-nmin 60", 0, &st, &until, err,
	    sizeof(err)) == 0 && st == OCSPMSG_GOOD,
	    "good from a delegated responder (%s)", err);
	TAP_OK(answer(&q, "plain", "-nmin 60", 0, &st, &until, err,
	    sizeof(err)) == -1 && strstr(err, "not signed") != NULL,
	    "a CA-signed certificate without OCSPSigning may not answer");
	TAP_OK(answer(&q, "other", "-nmin 60", 0, &st, &until, err,
	    sizeof(err)) == -1 && strstr(err, "not signed") != NULL,
	    "another CA may not answer");
	TAP_OK(answer(&q, "ca", "-nmin 60", 7200, &st, &until, err,
	    sizeof(err)) == -1 && strstr(err, "expired") != NULL,
	    "past its nextUpdate: refused (%s)", err);
	TAP_OK(answer(&q, "ca", "-nmin 60", -3600, &st, &until, err,
	    sizeof(err)) == -1 && strstr(err, "future") != NULL,
	    "thisUpdate in the future: refused (%s)", err);
	err[0] = '\0';
	TAP_OK(answer(&q, "ca", "", 0, &st, &until, err, sizeof(err)) == 0 &&
	    st == OCSPMSG_GOOD && until <= time(NULL),
	    "no nextUpdate: used once, not kept (%s)", err);
	TAP_OK(answer(&q, "ca", "", 900, &st, &until, err, sizeof(err)) ==
	    -1 && strstr(err, "stale") != NULL,
	    "no nextUpdate and old: refused (%s)", err);

	/* openssl's own request for the same certificate: another nonce */
	tap_run("openssl ocsp -issuer ca.crt -cert good.crt -reqout req2.der");
	query(&q2, "good", NULL, err, sizeof(err));
	OPENSSL_free(q2.der);
	q2.der = slurp("req2.der", &q2.derlen);
	TAP_OK(answer(&q2, "ca", "-nmin 60", 0, &st, &until, err,
	    sizeof(err)) == -1 && strstr(err, "nonce") != NULL,
	    "an answer to another request (nonce): refused (%s)", err);
	{
		uint8_t	*resp;
		size_t	 len;

		resp = slurp("resp.der", &len);
		TAP_OK(resp != NULL && ocspcheck_verify(&q, resp, len - 1, ca,
		    time(NULL), &st, &until, err, sizeof(err)) == -1 &&
		    strstr(err, "malformed") != NULL, "truncated: refused");
		TAP_OK(ocspcheck_verify(&q, "\x30\x03\x0a\x01\x06", 5, ca,
		    time(NULL), &st, &until, err, sizeof(err)) == -1 &&
		    strstr(err, "responder says") != NULL,
		    "an error status: refused (%s)", err);
		TAP_OK(ocspcheck_verify(&q, resp, OCSPCHECK_RESP_MAX + 1, ca,
		    time(NULL), &st, &until, err, sizeof(err)) == -1,
		    "oversized: refused unread");
		free(resp);
	}
	OPENSSL_free(q2.der);
	q2.der = NULL;
	ocspcheck_query_free(&q2);
	ocspcheck_query_free(&q);

	query(&q, "rev", NULL, err, sizeof(err));
	TAP_OK(answer(&q, "ca", "-nmin 60", 0, &st, &until, err,
	    sizeof(err)) == 0 && st == OCSPMSG_REVOKED,
	    "revoked (%s)", err);
	/* the answer for rev, checked against a query for good */
	query(&q2, "good", NULL, err, sizeof(err));
	OPENSSL_free(q2.der);
	q2.der = NULL;
	{
		uint8_t	*resp;
		size_t	 len;

		resp = slurp("resp.der", &len);
		TAP_OK(resp != NULL && ocspcheck_verify(&q2, resp, len, ca,
		    time(NULL), &st, &until, err, sizeof(err)) == -1 &&
		    strstr(err, "no status for this certificate") != NULL,
		    "an answer about another certificate: refused (%s)", err);
		free(resp);
	}
	ocspcheck_query_free(&q2);
	ocspcheck_query_free(&q);

	query(&q, "unk", NULL, err, sizeof(err));
	TAP_OK(answer(&q, "ca", "-nmin 60", 0, &st, &until, err,
	    sizeof(err)) == 0 && st == OCSPMSG_UNKNOWN, "unknown (%s)", err);
	ocspcheck_query_free(&q);
}

int
main(void)
{
	make_pki();
	test_query();
	test_answers();
	X509_STORE_free(ca);
	tap_run("rm -rf %s", dir);
	return tap_done();
}
