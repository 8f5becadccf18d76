/*
 * /metrics, answered by the parent for any worker: the counters every
 * worker keeps in its own shared segment (and what dead workers had
 * counted), plus the parent's own, which the other parent modules report
 * here.
 */
#ifndef TODOD_METRICS_H
#define TODOD_METRICS_H

#include <stdint.h>
#include <time.h>

#include "ipc.h"
#include "proc.h"
#include "shm.h"

struct store_backend;

enum metrics_role {
	METRICS_WORKER,
	METRICS_KEYHOLDER
};

struct metrics {
	struct proc_group	*workers;
	const struct shm_state	*state;
	struct shm_counters	*ctr[PROC_MAX];	/* by worker id - 1 */
	struct shm_counters	 retired;	/* of workers that died */
	uint64_t		 restarts[2];	/* by enum metrics_role */
	uint64_t		 reloads_ok, reloads_failed;
	uint64_t		 commit_bucket[MET_SIGN_NB + 1];
	uint64_t		 commit_count, commit_sum_us, store_writes;
	uint64_t		 store_refused;	/* writes not committed */
	const struct store_backend	*store;
	int			 have_expiry;
	time_t			 cert_notafter, ca_notafter, crl_nextupdate;
	uint64_t		 crl_fetches[2];	/* failed, ok */
	time_t			 crl_fetched;	/* last good CRL fetch */
	time_t			 staple_thisupd;	/* 0: no staple */
	time_t			 staple_nextupd;
	uint64_t		 staple_fetches[3];	/* by result */
	uint64_t		 ocsp_fetches[2];	/* failed, ok */
	uint64_t		 ocsp_cache_hits;
};

/* OCSP staple fetches, by result. */
enum metrics_staple_result {
	METRICS_STAPLE_OK,
	METRICS_STAPLE_FAILED,		/* no answer */
	METRICS_STAPLE_INVALID		/* an answer the checks refused */
};

void	metrics_init(struct metrics *, struct proc_group *,
	    const struct shm_state *,
	    const struct store_backend *);
void	metrics_worker_start(struct metrics *, struct proc *);
void	metrics_retire(struct metrics *, struct proc *);
void	metrics_commit(struct metrics *, uint64_t, int);
void	metrics_refused(struct metrics *, int);
void	metrics_restart(struct metrics *, enum metrics_role);
void	metrics_reload(struct metrics *, int);
void	metrics_crl_fetch(struct metrics *, int);
void	metrics_staple(struct metrics *, time_t, time_t);
void	metrics_staple_fetch(struct metrics *, enum metrics_staple_result);
void	metrics_ocsp_fetch(struct metrics *, int);
void	metrics_ocsp_cache_hit(struct metrics *);
void	metrics_expiry(struct metrics *, time_t, time_t, time_t);
void	metrics_request(struct metrics *, struct proc *, struct ipc_msg *);

#endif
