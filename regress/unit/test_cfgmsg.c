/*
 * Unit tests for daemon/cfgmsg.c: every message of the configuration
 * transaction sent by the parent's encoder and read by the worker's
 * decoder (and the replies the other way) across a real channel, then
 * malformed messages of each kind, which the decoders must refuse.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tls.h>

#include "authz.h"
#include "authzrule.h"
#include "cfgmsg.h"
#include "config.h"
#include "ipc.h"
#include "ipcpair.h"
#include "proto.h"
#include "tap.h"

static struct ipc	 pa, wk;	/* the parent's end, the worker's end */

static void
main_good(struct proto_cfg_main *m)
{
	memset(m, 0, sizeof(*m));
	m->worker_id = 2;
	m->nworkers = 3;
	m->timeout_request = 10;
	m->timeout_idle = 60;
	m->timeout_handshake = 10;
	m->max_connections = 1000;
	m->protocols = TLS_PROTOCOL_TLSv1_2 | TLS_PROTOCOL_TLSv1_3;
	m->session_lifetime = 7200;
	m->verbose = 1;
	m->nrules = 1;
	m->policy_id = 0x0123456789abcdefULL;
	m->client_ocsp = CONFIG_OCSP_REQUIRE;
	m->timeout_ocsp = 3;
}

/* Both inodes the same: the descriptor that arrived is the one sent. */
static int
same_file(int a, int b)
{
	struct stat	 sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 &&
	    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void
test_txn_parent_to_worker(void)
{
	static const char	*tls[4] = { "CERT PEM", "KEYREF PEM", "CA PEM",
				    "CRL PEM" };
	static const uint32_t	 tlstype[4] = { IMSG_CFG_TLS_CERT,
				    IMSG_CFG_TLS_KEYREF, IMSG_CFG_TLS_CA,
				    IMSG_CFG_TLS_CRL };
	struct proto_cfg_main	 m, got;
	struct ipc_msg		 msg;
	const char		*s;
	const void		*p;
	size_t			 n;
	uint32_t		 gen;
	int			 fd, i, ok;

	TAP_OK(cfgmsg_send_begin(&pa, 7) == 0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_gen(&msg, &gen) == 0 && gen == 7, "CFG_BEGIN");
	main_good(&m);
	TAP_OK(cfgmsg_send_main(&pa, &m, "HIGH:!aNULL") == 0 &&
	    xfer(&pa, &wk, &msg) == 0 && cfgmsg_get_main(&msg, &got, &s) ==
	    0 && memcmp(&m, &got, sizeof(m)) == 0 &&
	    strcmp(s, "HIGH:!aNULL") == 0, "CFG_MAIN with ciphers");
	TAP_OK(cfgmsg_send_main(&pa, &m, NULL) == 0 &&
	    xfer(&pa, &wk, &msg) == 0 && cfgmsg_get_main(&msg, &got, &s) ==
	    0 && *s == '\0', "CFG_MAIN without ciphers");

	if ((fd = open("/dev/null", O_RDONLY)) == -1)
		abort();
	ok = cfgmsg_send_listen(&pa, "[::1]:8443", dup(fd)) == 0 &&
	    xfer(&pa, &wk, &msg) == 0 && cfgmsg_get_listen(&msg, &s) == 0 &&
	    strcmp(s, "[::1]:8443") == 0 && msg.fd != -1 &&
	    same_file(fd, msg.fd);
	TAP_OK(ok, "CFG_LISTEN with its socket");
	ipc_msg_free(&msg);
	close(fd);

	for (i = 0; i < 4; i++)
		TAP_OK(cfgmsg_send_tls(&pa, tlstype[i], tls[i],
		    strlen(tls[i])) == 0 && xfer(&pa, &wk, &msg) == 0 &&
		    msg.hdr.type == tlstype[i] &&
		    cfgmsg_get_tls(&msg, &p, &n) == 0 &&
		    n == strlen(tls[i]) && memcmp(p, tls[i], n) == 0,
		    "CFG_TLS %s", tls[i]);
	TAP_OK(cfgmsg_send_tls(&pa, IMSG_CFG_MAIN, "x", 1) == -1,
	    "TLS data under another type is not sent");
	TAP_OK(cfgmsg_send_end(&pa) == 0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_end(&msg) == 0, "CFG_END");
	TAP_OK(cfgmsg_send_commit(&pa, 7) == 0 && xfer(&pa, &wk, &msg) == 0 &&
	    msg.hdr.type == IMSG_CFG_COMMIT && cfgmsg_get_gen(&msg, &gen) ==
	    0 && gen == 7, "CFG_COMMIT");
}

static void
test_ticket(void)
{
	struct proto_ticket_key	 k, got;
	struct ipc_msg		 msg;

	k.keyrev = 9;
	memset(k.key, 0xa5, sizeof(k.key));
	TAP_OK(cfgmsg_send_ticket(&pa, &k) == 0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_ticket(&msg, &got) == 0 &&
	    memcmp(&k, &got, sizeof(k)) == 0, "TICKET_KEY");
}

static void
test_replies(void)
{
	struct ipc_msg	 msg;
	const char	*why;
	char		 big[CFGMSG_WHY_MAX * 3];
	uint32_t	 gen;

	TAP_OK(cfgmsg_send_done(&wk, 8) == 0 && xfer(&wk, &pa, &msg) == 0 &&
	    cfgmsg_get_reply(&msg, &gen, &why) == 0 && gen == 8 &&
	    *why == '\0', "CFG_DONE");
	TAP_OK(cfgmsg_send_failed(&wk, 8, "server.pem: no certificate") ==
	    0 && xfer(&wk, &pa, &msg) == 0 &&
	    cfgmsg_get_reply(&msg, &gen, &why) == 0 && gen == 8 &&
	    strcmp(why, "server.pem: no certificate") == 0,
	    "CFG_FAILED with its reason");
	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	TAP_OK(cfgmsg_send_failed(&wk, 8, big) == 0 &&
	    xfer(&wk, &pa, &msg) == 0 &&
	    cfgmsg_get_reply(&msg, &gen, &why) == 0 &&
	    strlen(why) == CFGMSG_WHY_MAX,
	    "a long reason is cut to what the parent accepts");
}

static void
test_ticket_keep(void)
{
	struct proto_ticket_key	 keys[PROTO_TICKETS_KEPT], k;
	int			 n = 0, i, ok = 1;

	memset(keys, 0xff, sizeof(keys));
	memset(&k, 0, sizeof(k));
	k.keyrev = 1;
	cfgmsg_ticket_keep(keys, &n, &k);
	for (i = 1; i < PROTO_TICKETS_KEPT; i++)
		ok &= keys[i].keyrev == 0;
	TAP_OK(n == 1 && keys[0].keyrev == 1 && ok,
	    "ticket list: first key, unused slots wiped");
	for (k.keyrev = 2; k.keyrev <= 6; k.keyrev++)
		cfgmsg_ticket_keep(keys, &n, &k);
	ok = n == PROTO_TICKETS_KEPT;
	for (i = 0; i < n; i++)
		ok &= keys[i].keyrev == (uint32_t)(3 + i);
	TAP_OK(ok, "ticket list keeps the newest %d, oldest first",
	    PROTO_TICKETS_KEPT);
}

/* A message of any type and payload, crafted by hand, sent wk -> pa. */
static int
raw(struct ipc *from, struct ipc *to, uint32_t type, const void *p,
    size_t n, int withfd, struct ipc_msg *msg)
{
	int	 fd = -1;

	if (withfd && (fd = open("/dev/null", O_RDONLY)) == -1)
		abort();
	if (ipc_compose(from, type, 0, fd, p, n) == -1)
		return -1;
	return xfer(from, to, msg);
}

static struct ipc_wbuf *
craft_main(int v)
{
	struct proto_cfg_main	 m;
	struct ipc_wbuf		*wb;
	static char		 ciphers[CFGMSG_CIPHERS_MAX + 2];

	main_good(&m);
	switch (v) {
	case 1: m.worker_id = 0; break;
	case 2: m.worker_id = 4; break;
	case 3: m.nworkers = 65; m.worker_id = 65; break;
	case 4: m.timeout_request = 0; break;
	case 5: m.timeout_idle = 0; break;
	case 6: m.timeout_handshake = 0; break;
	case 7: m.max_connections = 0; break;
	case 8: m.protocols = 0; break;
	case 9: m.protocols |= 1U << 12; break;
	case 17: m.client_ocsp = CONFIG_OCSP_REQUIRE + 1; break;
	case 18: m.timeout_ocsp = 0; break;
	}
	wb = ipc_create(v == 15 ? IMSG_CFG_BEGIN : IMSG_CFG_MAIN, 0, 0);
	ipc_add(wb, &m, v == 10 ? sizeof(m) - 1 : sizeof(m));
	if (v == 11)
		ipc_add_data(wb, "HIGH", 4);		/* no terminator */
	else if (v == 12) {
		memset(ciphers, 'A', CFGMSG_CIPHERS_MAX + 1);
		ipc_add_str(wb, ciphers);
	} else if (v != 13)
		ipc_add_str(wb, "HIGH");
	if (v == 14)
		ipc_add_u8(wb, 0);
	return wb;
}

static void
test_main_malformed(void)
{
	static const char *const what[] = {
		"well-formed control", "worker id 0",
		"worker id above the count", "more workers than allowed",
		"no request timeout", "no idle timeout",
		"no handshake timeout", "no connection limit", "no protocol",
		"unknown protocol bit", "truncated struct",
		"ciphers without terminator", "ciphers too long",
		"ciphers missing", "trailing byte", "another type",
		"descriptor attached", "unknown client ocsp mode",
		"no ocsp timeout"
	};
	struct proto_cfg_main	 m;
	struct ipc_msg		 msg;
	const char		*s;
	int			 v, fd, r;

	for (v = 0; v < (int)(sizeof(what) / sizeof(what[0])); v++) {
		fd = v == 16 ? open("/dev/null", O_RDONLY) : -1;
		if (ipc_send(&pa, craft_main(v), fd) == -1 ||
		    xfer(&pa, &wk, &msg) == -1) {
			TAP_OK(0, "send crafted main %d", v);
			continue;
		}
		r = cfgmsg_get_main(&msg, &m, &s);
		ipc_msg_free(&msg);
		if (v == 0)
			TAP_OK(r == 0, "CFG_MAIN: %s accepted", what[v]);
		else
			TAP_OK(r == -1 && errno == EBADMSG,
			    "CFG_MAIN: %s refused", what[v]);
	}
}

static void
test_small_malformed(void)
{
	struct proto_ticket_key	 k;
	struct ipc_msg		 msg;
	struct ipc_wbuf		*wb;
	const char		*s;
	const void		*p;
	char			 name[CFGMSG_NAME_MAX + 2];
	char			 why[CFGMSG_WHY_MAX + 2];
	uint8_t			 b[64];
	uint32_t		 gen;
	size_t			 n;

	memset(b, 0, sizeof(b));
	TAP_OK(raw(&pa, &wk, IMSG_CFG_BEGIN, b, 3, 0, &msg) == 0 &&
	    cfgmsg_get_gen(&msg, &gen) == -1, "CFG_BEGIN truncated refused");
	TAP_OK(raw(&pa, &wk, IMSG_CFG_COMMIT, b, 5, 0, &msg) == 0 &&
	    cfgmsg_get_gen(&msg, &gen) == -1, "CFG_COMMIT extra byte refused");
	TAP_OK(raw(&pa, &wk, IMSG_TICKET_KEY, b, 4, 0, &msg) == 0 &&
	    cfgmsg_get_gen(&msg, &gen) == -1,
	    "a generation read from another type refused");
	TAP_OK(raw(&pa, &wk, IMSG_CFG_BEGIN, b, 4, 1, &msg) == 0 &&
	    cfgmsg_get_gen(&msg, &gen) == -1,
	    "CFG_BEGIN with a descriptor refused");
	ipc_msg_free(&msg);

	wb = ipc_create(IMSG_CFG_LISTEN, 0, 0);
	ipc_add_str(wb, "127.0.0.1:8443");
	TAP_OK(ipc_send(&pa, wb, -1) == 0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_listen(&msg, &s) == -1,
	    "CFG_LISTEN without its socket refused");
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	TAP_OK(cfgmsg_send_listen(&pa, name, open("/dev/null", O_RDONLY)) ==
	    0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_listen(&msg, &s) == -1,
	    "CFG_LISTEN name too long refused");
	ipc_msg_free(&msg);

	TAP_OK(raw(&pa, &wk, IMSG_CFG_TLS_CA, b, 4 + 2, 0, &msg) == 0 &&
	    cfgmsg_get_tls(&msg, &p, &n) == -1,
	    "CFG_TLS length past the end refused");
	wb = ipc_create(IMSG_CFG_TLS_CRL, 0, 0);
	ipc_add_data(wb, "PEM", 3);
	ipc_add_u8(wb, 0);
	TAP_OK(ipc_send(&pa, wb, -1) == 0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_tls(&msg, &p, &n) == -1,
	    "CFG_TLS trailing byte refused");
	TAP_OK(raw(&pa, &wk, IMSG_CFG_END, b, 0, 0, &msg) == 0 &&
	    cfgmsg_get_tls(&msg, &p, &n) == -1,
	    "TLS data read from another type refused");

	TAP_OK(raw(&pa, &wk, IMSG_TICKET_KEY, b, sizeof(k) - 1, 0, &msg) ==
	    0 && cfgmsg_get_ticket(&msg, &k) == -1,
	    "TICKET_KEY truncated refused");
	TAP_OK(raw(&pa, &wk, IMSG_TICKET_KEY, b, sizeof(k) + 1, 0, &msg) ==
	    0 && cfgmsg_get_ticket(&msg, &k) == -1,
	    "TICKET_KEY extra byte refused");
	TAP_OK(raw(&pa, &wk, IMSG_CFG_END, b, 1, 0, &msg) == 0 &&
	    cfgmsg_get_end(&msg) == -1, "CFG_END with a byte refused");

	/* the worker's replies: the parent must not trust them */
	TAP_OK(raw(&wk, &pa, IMSG_CFG_DONE, b, 5, 0, &msg) == 0 &&
	    cfgmsg_get_reply(&msg, &gen, &s) == -1,
	    "CFG_DONE extra byte refused");
	TAP_OK(raw(&wk, &pa, IMSG_CFG_FAILED, b, 4, 0, &msg) == 0 &&
	    cfgmsg_get_reply(&msg, &gen, &s) == -1,
	    "CFG_FAILED without reason refused");
	wb = ipc_create(IMSG_CFG_FAILED, 0, 0);
	ipc_add_u32(wb, 1);
	ipc_add_data(wb, "why", 3);
	TAP_OK(ipc_send(&wk, wb, -1) == 0 && xfer(&wk, &pa, &msg) == 0 &&
	    cfgmsg_get_reply(&msg, &gen, &s) == -1,
	    "CFG_FAILED reason without terminator refused");
	memset(why, 'w', sizeof(why) - 1);
	why[sizeof(why) - 1] = '\0';
	wb = ipc_create(IMSG_CFG_FAILED, 0, 0);
	ipc_add_u32(wb, 1);
	ipc_add_str(wb, why);
	TAP_OK(ipc_send(&wk, wb, -1) == 0 && xfer(&wk, &pa, &msg) == 0 &&
	    cfgmsg_get_reply(&msg, &gen, &s) == -1,
	    "CFG_FAILED reason over %d bytes refused", CFGMSG_WHY_MAX);
	TAP_OK(raw(&wk, &pa, IMSG_CFG_COMMIT, b, 4, 0, &msg) == 0 &&
	    cfgmsg_get_reply(&msg, &gen, &s) == -1,
	    "a reply of another type refused");
	TAP_OK(raw(&wk, &pa, IMSG_CFG_DONE, b, 4, 1, &msg) == 0 &&
	    cfgmsg_get_reply(&msg, &gen, &s) == -1,
	    "CFG_DONE with a descriptor refused");
	ipc_msg_free(&msg);
}

static int
rules_equal(const struct authz_rule *a, const struct authz_rule *b)
{
	int	 i;

	if (a->classes != b->classes || a->methods != b->methods ||
	    a->nconds != b->nconds || a->lineno != b->lineno ||
	    (a->path == NULL) != (b->path == NULL) ||
	    (a->path != NULL && strcmp(a->path, b->path) != 0))
		return 0;
	for (i = 0; i < a->nconds; i++) {
		if (a->conds[i].type != b->conds[i].type ||
		    (a->conds[i].value == NULL) !=
		    (b->conds[i].value == NULL) ||
		    (a->conds[i].value != NULL &&
		    strcmp(a->conds[i].value, b->conds[i].value) != 0) ||
		    a->conds[i].iplen != b->conds[i].iplen ||
		    memcmp(a->conds[i].ip, b->conds[i].ip, 16) != 0)
			return 0;
	}
	return 1;
}

static struct authz_rule *
roundtrip(struct ipc *a, struct ipc *b, const struct authz_rule *r)
{
	struct ipc_msg		 m;
	struct authz_rule	*got;

	if (cfgmsg_send_rule(a, r) == -1 || xfer(a, b, &m) == -1 ||
	    m.hdr.type != IMSG_CFG_RULE)
		return NULL;
	got = cfgmsg_get_rule(&m);
	ipc_msg_free(&m);
	return got;
}

static void
test_rule(void)
{
	struct ipc		 a, b;
	struct authz_rule	*r, *got;
	int			 ok;

	pair(&a, &b);
	r = rule(NULL, AUTHZ_WRITE, AUTHZ_M_POST, "/todo", MATCH_CN, "x",
	    MATCH_OU, "y", MATCH_FINGERPRINT, "SHA256:00112233445566778899"
	    "aabbccddeeff00112233445566778899aabbccddeeff", MATCH_SAN_DNS,
	    "d.example", MATCH_SAN_URI, "spiffe://a/*", MATCH_SAN_IP,
	    "127.0.0.2", MATCH_SAN_EMAIL, "e@x", MATCH_SAN_IP, "::1", 0);
	r->lineno = 42;
	got = roundtrip(&a, &b, r);
	TAP_OK(got != NULL && rules_equal(r, got),
	    "rule with every condition type round-trips");
	authz_rule_free(got);
	authz_rule_free(r);

	r = rule(NULL, AUTHZ_ALL, 0, NULL, MATCH_ANY, NULL, 0);
	got = roundtrip(&a, &b, r);
	TAP_OK(got != NULL && rules_equal(r, got) && got->path == NULL,
	    "allow all from any round-trips");
	authz_rule_free(got);
	authz_rule_free(r);

	r = authz_rule_new();
	r->classes = AUTHZ_READ;
	TAP_OK(cfgmsg_send_rule(&a, r) == -1, "a rule without condition "
	    "is not sent");
	authz_rule_free(r);

	ok = 1;
	r = rule(NULL, AUTHZ_READ | AUTHZ_METRICS, AUTHZ_M_GET, "/metrics",
	    MATCH_SAN_URI, "urn:x", 0);
	got = roundtrip(&a, &b, r);
	ok = got != NULL && rules_equal(r, got);
	authz_rule_free(got);
	authz_rule_free(r);
	TAP_OK(ok, "read+metrics with method and path round-trips");
	ipc_clear(&a);
	ipc_clear(&b);
}

/* One condition on the wire: type, value, and that many bytes of ip. */
struct wcond {
	uint32_t	 type;
	const char	*value;
	size_t		 iplen;
};

/* The conditions of the variants below that break one (index: v). */
static const struct wcond bad_conds[][2] = {
	[10] = { { 99, "x", 0 } },
	[11] = { { MATCH_FINGERPRINT, "SHA256:12", 0 } },
	[12] = { { MATCH_SAN_IP, "127.0.0.2", 3 } },
	[13] = { { MATCH_SAN_IP, "127.0.0.3", 4 } },
	[14] = { { MATCH_ANY, "x", 0 } },
	[15] = { { MATCH_FINGERPRINT, "SHA256:00112233445566778899AABBCCDDEEFF"
	    "00112233445566778899aabbccddeeff", 0 } },
	[16] = { { MATCH_CN, "x", 4 } },
	[17] = { { MATCH_ANY, "", 0 }, { MATCH_CN, "x", 0 } },
	[19] = { { MATCH_CN, "", 0 } },
};

/*
 * Malformed rules: each variant breaks one thing in an otherwise good
 * rule (20: a good rule that comes with a descriptor).
 */
static struct ipc_wbuf *
craft(int v)
{
	static const struct wcond	 good = { MATCH_SAN_IP, "127.0.0.2",
					    4 };
	static const uint8_t		 ip4[4] = { 127, 0, 0, 2 };
	const struct wcond		*c;
	struct ipc_wbuf			*wb;
	int				 i, n;

	wb = ipc_create(IMSG_CFG_RULE, 0, 0);
	ipc_add_u32(wb, v == 1 ? 0x80000000U : 3);	/* lineno */
	ipc_add_u32(wb, v == 2 ? 0 : v == 3 ? 0x8 : AUTHZ_READ);
	ipc_add_u32(wb, v == 4 ? 0x10 : 0);
	if (v == 5)
		ipc_add_data(wb, "/todo", 5);		/* no NUL */
	else
		ipc_add_str(wb, v == 6 ? "todo" : "");
	if (v == 7) {					/* truncated */
		ipc_add_u32(wb, 1);
		return wb;
	}
	n = v == 17 ? 2 : 1;
	ipc_add_u32(wb, v == 8 ? 0 : v == 9 ? AUTHZ_MAX_CONDS + 1 : n);
	for (i = 0; i < n; i++) {
		c = v < (int)(sizeof(bad_conds) / sizeof(bad_conds[0])) &&
		    bad_conds[v][i].value != NULL ? &bad_conds[v][i] : &good;
		ipc_add_u32(wb, c->type);
		ipc_add_str(wb, c->value);
		ipc_add_data(wb, ip4, c->iplen);
	}
	if (v == 18)
		ipc_add_u8(wb, 0);			/* trailing byte */
	return wb;
}

static void
test_rule_malformed(void)
{
	static const char *const what[] = {
		"well-formed control", "line number too large", "no class",
		"unknown class bit", "unknown method bit",
		"path without terminator", "path not starting with /",
		"truncated", "no condition", "too many conditions",
		"unknown condition type", "bad fingerprint",
		"ip of 3 bytes", "ip bytes not the text",
		"any with a value", "fingerprint not normalized",
		"ip bytes on a cn", "any combined", "trailing byte",
		"empty cn", "descriptor attached"
	};
	struct ipc		 a, b;
	struct ipc_msg		 m;
	struct authz_rule	*got;
	int			 v;

	pair(&a, &b);
	for (v = 0; v < (int)(sizeof(what) / sizeof(what[0])); v++) {
		if (ipc_send(&a, craft(v), v == 20 ?
		    open("/dev/null", O_RDONLY) : -1) == -1 ||
		    xfer(&a, &b, &m) == -1) {
			TAP_OK(0, "send crafted message %d", v);
			continue;
		}
		got = cfgmsg_get_rule(&m);
		ipc_msg_free(&m);
		if (v == 0)
			TAP_OK(got != NULL && got->nconds == 1 &&
			    got->conds[0].iplen == 4 && got->lineno == 3,
			    "crafted: %s accepted", what[v]);
		else
			TAP_OK(got == NULL, "crafted: %s refused", what[v]);
		authz_rule_free(got);
	}
	ipc_clear(&a);
	ipc_clear(&b);
}

/* The OCSP staple: in a transaction, and alone; bounded both ways. */
static void
test_staple(void)
{
	static uint8_t		 big[CFGMSG_STAPLE_MAX + 1];
	static const uint8_t	 der[] = { 0x30, 0x03, 0x0a, 0x01, 0x00 };
	struct ipc_wbuf		*wb;
	struct ipc_msg		 msg;
	const void		*p;
	size_t			 n;

	TAP_OK(cfgmsg_send_tls(&pa, IMSG_CFG_TLS_STAPLE, der, sizeof(der)) ==
	    0 && xfer(&pa, &wk, &msg) == 0 &&
	    msg.hdr.type == IMSG_CFG_TLS_STAPLE &&
	    cfgmsg_get_tls(&msg, &p, &n) == 0 && n == sizeof(der) &&
	    memcmp(p, der, n) == 0, "CFG_TLS_STAPLE (DER, with a zero byte)");
	TAP_OK(cfgmsg_send_staple(&pa, der, sizeof(der)) == 0 &&
	    xfer(&pa, &wk, &msg) == 0 && cfgmsg_get_staple(&msg, &p, &n) ==
	    0 && n == sizeof(der) && memcmp(p, der, n) == 0,
	    "STAPLE outside a transaction");
	TAP_OK(cfgmsg_send_staple(&pa, NULL, 0) == 0 &&
	    xfer(&pa, &wk, &msg) == 0 && cfgmsg_get_staple(&msg, &p, &n) ==
	    0 && n == 0, "an empty STAPLE: stop stapling");
	TAP_OK(cfgmsg_send_staple(&pa, big, sizeof(big)) == -1 &&
	    errno == EMSGSIZE && cfgmsg_send_tls(&pa, IMSG_CFG_TLS_STAPLE,
	    big, sizeof(big)) == -1 && errno == EMSGSIZE,
	    "a staple over %d bytes is not sent", CFGMSG_STAPLE_MAX);
	TAP_OK(cfgmsg_send_staple(&pa, big, sizeof(big) - 1) == 0 &&
	    xfer(&pa, &wk, &msg) == 0 && cfgmsg_get_staple(&msg, &p, &n) ==
	    0 && n == CFGMSG_STAPLE_MAX, "a staple of exactly the bound");

	/* crafted by a sender that ignores the bound: the reader refuses */
	wb = ipc_create(IMSG_STAPLE, 0, 0);
	ipc_add_data(wb, big, sizeof(big));
	TAP_OK(ipc_send(&pa, wb, -1) == 0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_staple(&msg, &p, &n) == -1 && errno == EBADMSG,
	    "STAPLE over the bound refused on decode");
	wb = ipc_create(IMSG_CFG_TLS_STAPLE, 0, 0);
	ipc_add_data(wb, big, sizeof(big));
	TAP_OK(ipc_send(&pa, wb, -1) == 0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_tls(&msg, &p, &n) == -1,
	    "CFG_TLS_STAPLE over the bound refused on decode");
	wb = ipc_create(IMSG_STAPLE, 0, 0);
	ipc_add_data(wb, der, sizeof(der));
	ipc_add_u8(wb, 0);
	TAP_OK(ipc_send(&pa, wb, -1) == 0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_staple(&msg, &p, &n) == -1,
	    "STAPLE with a trailing byte refused");
	TAP_OK(raw(&pa, &wk, IMSG_STAPLE, der, 3, 0, &msg) == 0 &&
	    cfgmsg_get_staple(&msg, &p, &n) == -1,
	    "STAPLE length past the end refused");
	TAP_OK(cfgmsg_send_tls(&pa, IMSG_CFG_TLS_CRL, der, sizeof(der)) ==
	    0 && xfer(&pa, &wk, &msg) == 0 &&
	    cfgmsg_get_staple(&msg, &p, &n) == -1,
	    "a staple read from another type refused");
	TAP_OK(raw(&pa, &wk, IMSG_STAPLE, der, 0, 1, &msg) == 0 &&
	    cfgmsg_get_staple(&msg, &p, &n) == -1,
	    "STAPLE with a descriptor refused");
	ipc_msg_free(&msg);
}

int
main(void)
{
	pair(&pa, &wk);
	test_txn_parent_to_worker();
	test_ticket();
	test_replies();
	test_ticket_keep();
	test_main_malformed();
	test_small_malformed();
	test_staple();
	ipc_clear(&pa);
	ipc_clear(&wk);
	test_rule();
	test_rule_malformed();
	return tap_done();
}
