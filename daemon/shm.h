/*
 * Shared memory between the parent and its workers, each segment written by
 * exactly one side:
 *  - the state page (parent writes, workers map it read-only): the store's
 *    change sequence, so that a worker can tell whether its TODO cache has
 *    seen every acknowledged write before it answers a GET from the cache;
 *  - a counters segment per worker (the worker writes, the parent maps it
 *    read-only): request, handshake and signature figures for /metrics,
 *    which the parent sums over all workers.
 * Segments are sealed memfds, so neither side can shrink them under the
 * other (a shrunk mapping would SIGBUS the reader).
 */
#ifndef TODOD_SHM_H
#define TODOD_SHM_H

#include <stddef.h>
#include <stdint.h>

struct shm_state {
	uint64_t	store_seq;	/* last change durably committed */
	uint64_t	todo_count;
	uint32_t	shared;		/* other nodes write the store too */
};

/* Metrics a worker keeps. */
enum met_method {
	MET_M_GET, MET_M_POST, MET_M_PATCH, MET_M_DELETE, MET_M_OTHER,
	MET_NMETHODS
};

/* Every status the worker can send, in one table. */
#define MET_STATUSES	{ 100, 200, 201, 204, 304, 400, 403, 404, 405, 408, \
			  411, 413, 414, 415, 417, 431, 500, 501, 503, 505 }
#define MET_NSTATUS	20

enum met_hsfail {
	HSF_NO_CERT, HSF_UNKNOWN_CA, HSF_EXPIRED, HSF_NOT_YET_VALID,
	HSF_REVOKED, HSF_BAD_USAGE, HSF_BAD_CERT, HSF_PROTOCOL, HSF_TIMEOUT,
	HSF_CLOSED, HSF_KEYHOLDER, HSF_OTHER,
	HSF_MAX
};

/* Revocation checks: where the answer came from, and what it said. */
enum met_rev_source { MET_REV_CRL, MET_REV_OCSP, MET_REV_NSOURCE };
enum met_rev_result {
	MET_REV_GOOD, MET_REV_REVOKED, MET_REV_UNKNOWN,
	MET_REV_NOANSWER,	/* OCSP: the responder was down, late, wrong */
	MET_REV_NRESULT
};

/* Signature latency histogram bounds, in microseconds. */
#define MET_SIGN_BOUNDS	{ 25, 50, 100, 250, 500, 1000, 2500, 5000, \
			  10000, 25000, 100000, 1000000 }
#define MET_SIGN_NB	12

struct shm_counters {
	uint64_t	requests[MET_NMETHODS][MET_NSTATUS];
	uint64_t	handshakes;
	uint64_t	resumed;
	uint64_t	hsfail[HSF_MAX];
	uint64_t	conns_open;
	uint64_t	conns_total;
	uint64_t	conns_refused;
	uint64_t	sign_bucket[MET_SIGN_NB + 1];	/* last: +Inf */
	uint64_t	sign_count;
	uint64_t	sign_sum_us;
	uint64_t	sign_failed;
	uint64_t	bytes_out;
	uint64_t	revchecks[MET_REV_NSOURCE][MET_REV_NRESULT];
	uint64_t	conns_cut;	/* revoked while open */
	uint64_t	cache_hits;	/* GET /todo/ID from the cache */
	uint64_t	cache_misses;	/* GET /todo/ID read from the store */
	uint64_t	cache_evicted;	/* items dropped for the budget */
	uint64_t	cache_items;	/* gauge */
	uint64_t	cache_bytes;	/* gauge: the memory they take */
	uint64_t	store_pages;	/* pages of a streamed GET /todo */
};

int	 shm_create(const char *, size_t, void **);
void	*shm_map(int, size_t, int);
void	 shm_unmap(void *, size_t);
int	 met_status_index(int);

#endif
