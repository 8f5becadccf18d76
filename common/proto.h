/*
 * Every message type that crosses a todod channel, and the fixed-size wire
 * structs.  Payloads that are not a wire struct are built and read with the
 * typed ipc_add_* / ipc_get_* helpers in the order documented here.
 *
 * Channels:
 *	parent <-> worker	fd 3 in the worker
 *	parent <-> keyholder	fd 3 in the keyholder
 *	worker <-> keyholder	a socketpair the parent hands to both ends
 */
#ifndef TODOD_PROTO_H
#define TODOD_PROTO_H

#include <stdint.h>

#define PROTO_CHANNEL_FD	3	/* a child's channel to its parent */

enum imsg_type {
	IMSG_NONE = 0,

	/* parent -> child, any role */
	IMSG_CTL_VERBOSE,	/* u32 level */
	IMSG_CTL_SHUTDOWN,	/* (empty) graceful stop */

	/* child -> parent */
	IMSG_LOG,		/* u32 priority, str line */

	/*
	 * Configuration transaction, parent -> worker.  CFG_BEGIN resets the
	 * pending configuration; the worker builds it from the messages that
	 * follow and answers CFG_END with CFG_DONE (or CFG_FAILED, str why);
	 * the parent then sends CFG_COMMIT to every worker at once.
	 */
	IMSG_CFG_BEGIN,		/* u32 generation */
	IMSG_CFG_MAIN,		/* struct proto_cfg_main */
	IMSG_CFG_LISTEN,	/* fd: listening socket; str name */
	IMSG_CFG_TLS_CERT,	/* data: certificate chain PEM */
	IMSG_CFG_TLS_KEYREF,	/* data: keyholder key reference PEM */
	IMSG_CFG_TLS_CA,	/* data: client CA PEM */
	IMSG_CFG_TLS_CRL,	/* data: CRL PEM (optional) */
	IMSG_CFG_RULE,		/* see daemon/cfgmsg.h */
	IMSG_CFG_END,		/* (empty) */
	IMSG_CFG_DONE,		/* worker -> parent: u32 generation */
	IMSG_CFG_FAILED,	/* worker -> parent: u32 generation, str */
	IMSG_CFG_COMMIT,	/* u32 generation */

	IMSG_TICKET_KEY,	/* struct proto_ticket_key */
	IMSG_KH_CHANNEL,	/* fd: socket to this worker's keyholder */
	IMSG_SHM,		/* fd: shared state; u32 kind */

	/*
	 * TODO store.  Workers keep a read cache fed by STORE_CHANGE
	 * broadcasts (and a snapshot at start); writes go to the parent,
	 * which answers only after the commit is durable.  peerid carries
	 * the worker's request id.
	 */
	IMSG_STORE_SNAPSHOT,	/* u64 seq, u32 count, count * item */
	IMSG_STORE_SNAPSHOT_END,/* u64 seq, u8 complete */
	IMSG_STORE_CHANGE,	/* u64 seq, u32 op, item */
	IMSG_STORE_CREATE,	/* str cn, str task, u8 done */
	IMSG_STORE_UPDATE,	/* str cn, i64 id, u32 mask, str task, u8 done */
	IMSG_STORE_DELETE,	/* str cn, i64 id */
	IMSG_STORE_REPLY,	/* u32 status, u64 seq, item */
	/* reads past a cache that does not hold every item */
	IMSG_STORE_READ,	/* u32 count, count * i64 id */
	IMSG_STORE_PAGE,	/* i64 after, u32 limit */
	IMSG_STORE_ITEMS,	/* u64 seq, u32 count, items, u8 flags */

	IMSG_METRICS_REQ,	/* (empty) peerid: request id */
	IMSG_METRICS_REPLY,	/* data: Prometheus text */

	/* parent <-> keyholder */
	IMSG_KH_KEY,		/* fd: open key file; u32 keyid; str path */
	IMSG_KH_KEY_OK,		/* u32 keyid; data: SubjectPublicKeyInfo DER */
	IMSG_KH_KEY_FAIL,	/* u32 keyid; str reason */
	IMSG_KH_KEY_DROP,	/* u32 keyid: no longer referenced */
	IMSG_KH_WORKER,		/* fd: channel to a worker; u32 worker id */

	/* worker <-> keyholder */
	IMSG_KH_SIGN,		/* struct proto_sign_req + digest bytes */
	IMSG_KH_SIGNATURE,	/* struct proto_sign_rep + signature bytes */

	/*
	 * Watchdog, parent -> any child and back: a child that leaves a ping
	 * unanswered for a few seconds is killed and restarted.
	 */
	IMSG_PING,		/* u32 sequence */
	IMSG_PONG,		/* u32 the ping's sequence */

	/*
	 * Client certificate OCSP (daemon/ocspmsg.h): a worker asks, the
	 * parent (which alone has the network) answers; peerid carries the
	 * worker's query id.
	 */
	IMSG_OCSP_QUERY,	/* data: client certificate DER */
	IMSG_OCSP_ANSWER,	/* u32 status, i64 until, str why */
	IMSG_OCSP_REVOKED,	/* SHA-256 of a revoked client cert, 32 bytes */

	/*
	 * A GET on a store several nodes share asks the parent first: the
	 * answer comes once the parent has caught up with the database as of
	 * the question (daemon/pstore.c).  peerid carries the request id.
	 */
	IMSG_STORE_SYNC,	/* (empty) */
	IMSG_STORE_SYNCED,	/* u32 status: STORE_OK or STORE_UNAVAILABLE */

	/*
	 * OCSP stapling (daemon/staple.h): the staple as part of a
	 * configuration transaction, and a new one for the configuration in
	 * use, outside any (empty: stop stapling).
	 */
	IMSG_CFG_TLS_STAPLE,	/* data: OCSP response DER (optional) */
	IMSG_STAPLE,		/* data: OCSP response DER, or empty */

	IMSG_MAX
};

/* Store operations in IMSG_STORE_CHANGE. */
enum store_op {
	STORE_OP_CREATE = 1,
	STORE_OP_UPDATE,
	STORE_OP_DELETE
};

/*
 * A task's bytes of UTF-8 after JSON unescaping: the API refuses more,
 * and so does the parent from a worker (common/storemsg.c).
 */
#define TODO_TASK_MAX	4096

/* IMSG_STORE_UPDATE mask bits */
#define STORE_SET_TASK	0x1
#define STORE_SET_DONE	0x2

/* IMSG_STORE_REPLY status */
enum store_status {
	STORE_OK = 0,
	STORE_NOTFOUND,
	STORE_FAILED,
	STORE_UNAVAILABLE	/* the database file is gone: 503 */
};

/* IMSG_SHM kinds */
enum shm_kind {
	SHM_STATE = 1,		/* parent-written, worker reads */
	SHM_COUNTERS		/* worker-written, parent reads */
};

struct proto_cfg_main {
	uint32_t	worker_id;
	uint32_t	nworkers;
	uint32_t	timeout_request;	/* seconds */
	uint32_t	timeout_idle;
	uint32_t	timeout_handshake;
	uint32_t	max_connections;
	uint32_t	protocols;		/* TLS_PROTOCOL_* */
	uint32_t	session_lifetime;	/* seconds; 0: off */
	uint32_t	verbose;
	uint32_t	nrules;
	uint64_t	policy_id;		/* changes with CA/CRL/rules */
	uint64_t	cache_size;		/* the item cache, bytes */
	uint32_t	client_ocsp;		/* enum config_ocsp */
	uint32_t	timeout_ocsp;		/* seconds */
};

#define PROTO_TICKET_KEY_SIZE	48
#define PROTO_TICKETS_KEPT	4	/* keys a worker accepts: newest last */
struct proto_ticket_key {
	uint32_t	keyrev;
	uint8_t		key[PROTO_TICKET_KEY_SIZE];
};

/*
 * Signature requests, worker -> keyholder.  The input is what is to be
 * signed (a TLS 1.3 CertificateVerify input or TLS 1.2 ServerKeyExchange
 * params), never a digest: the keyholder checks it and hashes it.
 */
enum proto_sign_alg {
	SIGN_RSA_PKCS1 = 1,	/* RSASSA-PKCS1-v1_5 over a DigestInfo */
	SIGN_RSA_PSS,		/* saltlen = digest length, MGF1 = digest */
	SIGN_ECDSA,		/* DER-encoded signature */
	SIGN_ED25519		/* message, not digest */
};

enum proto_sign_md {
	SIGN_MD_NONE = 0,	/* Ed25519 */
	SIGN_MD_SHA1,
	SIGN_MD_SHA224,
	SIGN_MD_SHA256,
	SIGN_MD_SHA384,
	SIGN_MD_SHA512
};

#define PROTO_SIGN_MAX_INPUT	1152	/* DHE-4096 params: 1095 */
#define PROTO_SIGN_RATE		10000	/* a worker's per second */

/*
 * The ECDHE groups the workers offer, in libtls' syntax: the keyholder
 * signs a TLS 1.2 ServerKeyExchange only for these.
 */
#define PROTO_TLS_GROUPS	"X25519,P-256,P-384"
#define PROTO_SIGN_MAX_SIG	1024	/* RSA 8192 */

struct proto_sign_req {
	uint32_t	reqid;
	uint32_t	keyid;
	uint32_t	alg;		/* enum proto_sign_alg */
	uint32_t	md;		/* enum proto_sign_md */
	uint32_t	inlen;		/* bytes that follow */
};

struct proto_sign_rep {
	uint32_t	reqid;
	uint32_t	status;		/* 0 ok */
	uint32_t	siglen;		/* bytes that follow */
};

#endif
