/*
 * Unit tests for daemon/ocspwait.c: queries about one certificate share
 * one exchange, every waiter hears the answer exactly once, and a worker
 * cannot exceed its rate, its queries waiting, or the table's size.
 */
#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocspwait.h"
#include "ocspkey.h"
#include "tap.h"

static uint32_t	 heard[OCSPWAIT_WORKERS][8];
static int	 nheard;

static void
hear(void *arg, uint32_t worker, uint32_t qid)
{
	(void)arg;
	if (worker < OCSPWAIT_WORKERS && qid < 8)
		heard[worker][qid]++;
	nheard++;
}

static void
test_dedupe(void)
{
	struct ocspwait		 ow;
	struct ocspwait_entry	*e1, *e2, *e3, *e4;

	ocspwait_init(&ow);
	TAP_OK(ocspwait_add(&ow, key(1), 1, 1, &e1) == 1 && ow.n == 1,
	    "a first query starts an exchange");
	TAP_OK(ocspwait_add(&ow, key(1), 2, 1, &e2) == 0 && e2 == e1 &&
	    ocspwait_add(&ow, key(1), 1, 2, &e3) == 0 && e3 == e1 &&
	    ow.n == 1, "the same certificate joins it, from any worker");
	TAP_OK(ocspwait_add(&ow, key(2), 2, 3, &e4) == 1 && e4 != e1 &&
	    ow.n == 2 && ocspwait_find(&ow, key(2)) == e4,
	    "another certificate starts its own");
	memset(heard, 0, sizeof(heard));
	nheard = 0;
	ocspwait_done(&ow, e1, hear, NULL);
	TAP_OK(nheard == 3 && heard[1][1] == 1 && heard[2][1] == 1 &&
	    heard[1][2] == 1 && ow.n == 1 && ocspwait_find(&ow, key(1)) ==
	    NULL && ow.w[1].waiting == 0 && ow.w[2].waiting == 1,
	    "the answer reaches each waiter once");
	ocspwait_drop_worker(&ow, 2);
	nheard = 0;
	ocspwait_done(&ow, e4, hear, NULL);
	TAP_OK(nheard == 0 && ow.w[2].waiting == 0 && ow.n == 0,
	    "a departed worker's queries are not answered");
	ocspwait_add(&ow, key(3), 3, 1, &e1);
	ocspwait_add(&ow, key(4), 3, 2, &e2);
	ocspwait_clear(&ow, NULL);
	TAP_OK(ow.n == 0 && ow.w[3].waiting == 0, "clear empties the table");
}

static void
count_cancel(void *arg)
{
	(*(int *)arg)++;
}

static void
test_clear_cancels(void)
{
	struct ocspwait		 ow;
	struct ocspwait_entry	*e;
	int			 cancelled = 0, i;

	ocspwait_init(&ow);
	for (i = 0; i < 5; i++) {
		ocspwait_add(&ow, key(i), 1, i, &e);
		e->arg = i % 2 ? &cancelled : NULL;
	}
	ocspwait_clear(&ow, count_cancel);
	TAP_OK(cancelled == 2 && ow.n == 0,
	    "clear cancels each exchange that has one");
}

static void
test_bounds(void)
{
	struct ocspwait		 ow;
	struct ocspwait_entry	*e;
	int			 i, ok = 1;

	ocspwait_init(&ow);
	errno = 0;
	TAP_OK(ocspwait_add(&ow, key(1), 0, 1, &e) == -1 && errno == EINVAL &&
	    ocspwait_add(&ow, key(1), OCSPWAIT_WORKERS, 1, &e) == -1 &&
	    !ocspwait_allow(&ow, 0, NOW) &&
	    !ocspwait_allow(&ow, OCSPWAIT_WORKERS, NOW),
	    "worker ids out of range refused");
	for (i = 0; i < OCSPWAIT_PER_WORKER; i++)
		ok &= ocspwait_add(&ow, key(1), 5, i, &e) >= 0;
	errno = 0;
	TAP_OK(ok && ocspwait_add(&ow, key(1), 5, 99, &e) == -1 &&
	    errno == EAGAIN && ocspwait_add(&ow, key(1), 6, 1, &e) == 0,
	    "a worker's waiting queries bounded, others unaffected");
	ocspwait_clear(&ow, NULL);
	ok = 1;
	for (i = 0; i < OCSPWAIT_MAX; i++)
		ok &= ocspwait_add(&ow, key(i), 1 + i % 60, 1, &e) == 1;
	errno = 0;
	TAP_OK(ok && ocspwait_add(&ow, key(9999), 61, 1, &e) == -1 &&
	    errno == ENOSPC && ocspwait_add(&ow, key(7), 61, 1, &e) == 0,
	    "certificates in flight bounded; joining still works");
	ocspwait_clear(&ow, NULL);
}

static void
test_rate(void)
{
	struct ocspwait	 ow;
	int		 i, n = 0;

	ocspwait_init(&ow);
	for (i = 0; i < 1000; i++)
		n += ocspwait_allow(&ow, 3, NOW);
	TAP_OK(n == OCSPWAIT_BURST, "a burst of %d allowed at once", n);
	TAP_OK(ocspwait_allow(&ow, 4, NOW), "another worker has its own");
	for (n = 0, i = 0; i < 1000; i++)
		n += ocspwait_allow(&ow, 3, NOW + 1);
	TAP_OK(n == OCSPWAIT_RATE, "%d more a second later", n);
	for (n = 0, i = 0; i < 1000; i++)
		n += ocspwait_allow(&ow, 3, NOW + 100);
	TAP_OK(n == OCSPWAIT_BURST, "never more than a burst after a rest");
	for (n = 0, i = 0; i < 1000; i++)
		n += ocspwait_allow(&ow, 3, NOW - 50);
	TAP_OK(n == 0, "a clock stepped back gives nothing");
}

int
main(void)
{
	test_dedupe();
	test_clear_cancels();
	test_bounds();
	test_rate();
	return tap_done();
}
