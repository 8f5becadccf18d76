/*
 * The latency histogram of todod-bench: apart from the driver so that
 * the connection threads (bench_conn.c) and the report (todod-bench.c)
 * both use it without depending on each other.
 */
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

void
hist_add(struct bench_hist *h, uint64_t v)
{
	int	 e;

	h->n++;
	if (v < HIST_EXACT) {
		h->count[v]++;
		return;
	}
	e = 63 - __builtin_clzll(v);
	if (e > HIST_MAXEXP) {
		h->count[HIST_BUCKETS - 1]++;
		return;
	}
	h->count[HIST_EXACT + (e - 8) * HIST_SUB +
	    ((v >> (e - 7)) & (HIST_SUB - 1))]++;
}

void
hist_merge(struct bench_hist *to, const struct bench_hist *from)
{
	size_t	 i;

	to->n += from->n;
	for (i = 0; i < HIST_BUCKETS; i++)
		to->count[i] += from->count[i];
}

/* The middle of the bucket holding the q-quantile. */
uint64_t
hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t	 want, sum = 0;
	size_t		 i, e, sub;

	if (h->n == 0)
		return 0;
	want = (uint64_t)(q * (double)h->n);
	if (want < 1)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		sum += h->count[i];
		if (sum >= want)
			break;
	}
	if (i < HIST_EXACT)
		return i;
	if (i == HIST_BUCKETS)
		i--;
	e = (i - HIST_EXACT) / HIST_SUB + 8;
	sub = (i - HIST_EXACT) % HIST_SUB;
	return ((HIST_SUB + sub) << (e - 7)) + ((1ULL << (e - 7)) >> 1);
}
