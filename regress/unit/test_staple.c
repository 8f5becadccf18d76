/*
 * Unit tests for staple_verify (daemon/staple.c), the one check of an OCSP
 * staple, against real responses made by `openssl ocsp': a root, an
 * intermediate that issues the server certificate, a responder it
 * delegated to and one it did not.  A staple is taken when it is about
 * the server certificate, signed by its issuer (found in the chain file or
 * among the client CAs) or a delegated responder, good, and within its
 * dates; every other case is refused with its reason.
 */
#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "ocspcheck.h"
#include "ocspmsg.h"
#include "staplecheck.h"
#include "tap.h"
#include "tlsmat.h"

static char	 dir[] = "/tmp/test_staple.XXXXXX";

#define LEAF(name, ca, serial, ext) \
	"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 " \
	"-nodes -keyout " name ".key -subj /CN=" name " -out " name ".csr " \
	"2>/dev/null && openssl x509 -req -in " name ".csr -CA " ca ".crt " \
	"-CAkey " ca ".key -set_serial " serial " -days 2 -extfile ext.cnf " \
	"-extensions " ext " -out " name ".crt 2>/dev/null && "

static void
make_pki(void)
{
	if (mkdtemp(dir) == NULL || chdir(dir) == -1)
		abort();
	if (tap_run("printf '%%s\\n' '[ca]' 'basicConstraints=critical,CA:true' "
	    "'keyUsage=critical,keyCertSign,cRLSign,digitalSignature' "
	    "'[srv]' 'extendedKeyUsage=serverAuth' "
	    "'[rsp]' 'extendedKeyUsage=OCSPSigning' "
	    "'[plain]' 'extendedKeyUsage=clientAuth' > ext.cnf && "
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -keyout root.key -out root.crt -subj /CN=root -days 2 "
	    "2>/dev/null && "
	    LEAF("int", "root", "0x2000", "ca")
	    LEAF("srv", "int", "0x2001", "srv")
	    LEAF("rev", "int", "0x2002", "srv")
	    LEAF("unk", "int", "0x2003", "srv")
	    LEAF("other", "int", "0x2004", "srv")
	    LEAF("rsp", "int", "0x2005", "rsp")
	    LEAF("plain", "int", "0x2006", "plain")
	    "cat srv.crt int.crt > chain.pem && "
	    "cat rev.crt int.crt > rev-chain.pem && "
	    "cat unk.crt int.crt > unk-chain.pem && "
	    "cat int.crt root.crt > cas.pem && "
	    "printf 'V\\t301231235959Z\\t\\t2001\\tunknown\\t/CN=srv\\n"
	    "R\\t301231235959Z\\t240101000000Z\\t2002\\tunknown\\t/CN=rev\\n"
	    "V\\t301231235959Z\\t\\t2004\\tunknown\\t/CN=other\\n' "
	    "> index.txt") != 0) {
		printf("Bail out! cannot make the test PKI in %s\n", dir);
		exit(1);
	}
}

static int
load(struct buf *b, const char *path)
{
	char	 err[256];

	buf_free(b);	/* tlsmat_read_file starts the buffer afresh */
	return tlsmat_read_file(path, b, err, sizeof(err));
}

/* The material: a certificate file and a client ca file. */
static void
mat(struct tlsmat *m, const char *cert, const char *ca)
{
	if (load(&m->cert, cert) == -1 || load(&m->ca, ca) == -1)
		abort();
}

/*
 * openssl ocsp answers a request about cert (to its issuer int), signed
 * by signer with the extra arguments; the answer is checked for m at now
 * + offset.  -2: the test setup failed.
 */
static int
check(const struct tlsmat *m, const char *cert, const char *signer,
    const char *extra, time_t offset, struct ocspcheck_answer *a, char *err,
    size_t errlen)
{
	struct buf	 resp;
	int		 rv = -2;

	buf_init(&resp, 0);
	unlink("resp.der");
	if (tap_run("openssl ocsp -issuer int.crt -cert %s.crt -no_nonce "
	    "-reqout req.der >/dev/null 2>&1 && openssl ocsp -index index.txt "
	    "-CA int.crt -rsigner %s.crt -rkey %s.key -reqin req.der "
	    "-respout resp.der %s >/dev/null 2>&1", cert, signer, signer,
	    extra) == 0 && load(&resp, "resp.der") == 0)
		rv = staple_verify(m, resp.data, resp.len, time(NULL) + offset,
		    a, err, errlen);
	buf_free(&resp);
	return rv;
}

static void
test_good(void)
{
	struct tlsmat		 m;
	struct ocspcheck_answer	 a;
	char			 err[512] = "";
	time_t			 now = time(NULL);

	memset(&m, 0, sizeof(m));
	mat(&m, "chain.pem", "root.crt");
	TAP_OK(check(&m, "srv", "int", "-nmin 10", 0, &a, err,
	    sizeof(err)) == 0 && a.status == OCSPMSG_GOOD,
	    "signed by the issuer, which is in the chain file (%s)", err);
	TAP_OK(a.thisupd >= now - 5 && a.thisupd <= now + 5 &&
	    a.nextupd >= now + 595 && a.nextupd <= now + 605,
	    "thisUpdate now, nextUpdate in 10 minutes");
	TAP_OK(check(&m, "srv", "rsp", "-nmin 10", 0, &a, err,
	    sizeof(err)) == 0, "signed by a delegated responder (%s)", err);
	TAP_OK(check(&m, "srv", "int", "-nmin 10 -resp_no_certs", 0, &a, err,
	    sizeof(err)) == 0, "an answer without the signer's certificate "
	    "(%s)", err);
	buf_free(&m.cert);
	buf_free(&m.ca);
	memset(&m, 0, sizeof(m));
	mat(&m, "srv.crt", "cas.pem");
	TAP_OK(check(&m, "srv", "int", "-nmin 10", 0, &a, err,
	    sizeof(err)) == 0, "the issuer found among the client CAs (%s)",
	    err);
	buf_free(&m.cert);
	buf_free(&m.ca);
}

static void
test_refused(void)
{
	static const struct {
		const char	*chain, *cert, *signer, *extra;
		time_t		 offset;
		const char	*why;
	} cases[] = {
		{ "rev-chain.pem", "rev", "int", "-nmin 10", 0, "REVOKED" },
		{ "unk-chain.pem", "unk", "int", "-nmin 10", 0,
		    "status unknown" },
		{ "chain.pem", "other", "int", "-nmin 10", 0,
		    "no status for this" },
		{ "chain.pem", "srv", "plain", "-nmin 10", 0, "not signed by" },
		{ "chain.pem", "srv", "root", "-nmin 10", 0, "not signed by" },
		{ "chain.pem", "srv", "int", "", 0, "no nextUpdate" },
		{ "chain.pem", "srv", "int", "-nmin 10", 601, "expired" },
		{ "chain.pem", "srv", "int", "-nmin 10", -OCSPCHECK_SKEW - 60,
		    "thisUpdate in the future" },
	};
	struct tlsmat		 m;
	struct ocspcheck_answer	 a;
	char			 err[512];
	size_t			 i;

	memset(&m, 0, sizeof(m));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		mat(&m, cases[i].chain, "root.crt");
		TAP_OK(check(&m, cases[i].cert, cases[i].signer,
		    cases[i].extra, cases[i].offset, &a, err, sizeof(err)) ==
		    -1 && strstr(err, cases[i].why) != NULL,
		    "answer about %s signed by %s %s, at now%+lld: refused (%s)",
		    cases[i].cert, cases[i].signer, cases[i].extra,
		    (long long)cases[i].offset, err);
	}
	TAP_OK(staple_verify(&m, "\x30\x03\x0a\x01\x00", 5, time(NULL), &a,
	    err, sizeof(err)) == -1 && strstr(err, "issuer") == NULL,
	    "garbage: refused (%s)", err);
	buf_free(&m.cert);
	buf_free(&m.ca);

	memset(&m, 0, sizeof(m));
	mat(&m, "srv.crt", "root.crt");
	err[0] = '\0';
	TAP_OK(check(&m, "srv", "int", "-nmin 10", 0, &a, err,
	    sizeof(err)) == -1 && strstr(err, "issuer of the server "
	    "certificate is in neither") != NULL,
	    "no issuer in the chain file nor the client CAs (%s)", err);
	buf_free(&m.cert);
	buf_free(&m.ca);
}

int
main(void)
{
	make_pki();
	test_good();
	test_refused();
	tap_run("rm -rf %s", dir);
	return tap_done();
}
