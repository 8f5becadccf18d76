/* Unit tests for the unfinished-handshake budget (daemon/hslimit.c). */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

#include "hslimit.h"
#include "tap.h"

static struct sockaddr_storage
addr(const char *s, int port)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':') != NULL) {
		sin6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, s, &sin6->sin6_addr);
		sin6->sin6_port = htons(port);
	} else {
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, s, &sin->sin_addr);
		sin->sin_port = htons(port);
	}
	return ss;
}

/* Add one from s the way the worker does: evict first if needed. */
static struct hsentry *
admit(struct hslimit *hl, struct hsentry *e, const char *s, int budget,
    int persource)
{
	struct sockaddr_storage	 ss = addr(s, 40000);
	struct hsentry		*v;

	if ((v = hslimit_victim(hl, &ss, budget, persource)) != NULL)
		hslimit_remove(hl, v);
	hslimit_add(hl, e, &ss, e);
	return v;
}

int
main(void)
{
	struct hslimit		 hl;
	struct hsentry		 e[64];
	struct sockaddr_storage	 ss;
	char			 a[32];
	int			 i, ok;

	memset(e, 0, sizeof(e));
	hslimit_init(&hl);
	TAP_OK(HSLIMIT_BUDGET(1024) == 512 && HSLIMIT_PERSOURCE(1024) == 128,
	    "1024 connections: 512 unfinished, 128 from one source");
	TAP_OK(HSLIMIT_BUDGET(1) == 1 && HSLIMIT_PERSOURCE(1) == 1,
	    "never a budget of 0");

	/* budget 8, 3 per source */
	ok = 1;
	for (i = 0; i < 3; i++)
		ok &= admit(&hl, &e[i], "127.0.0.2", 8, 3) == NULL;
	TAP_OK(ok && hl.n == 3, "three from one source fit");
	TAP_OK(admit(&hl, &e[3], "127.0.0.2", 8, 3) == &e[0] && hl.n == 3,
	    "a fourth from it evicts its oldest");
	TAP_OK(admit(&hl, &e[4], "127.0.0.2", 8, 3) == &e[1],
	    "and the next its next oldest");
	ss = addr("127.0.0.2", 1);
	TAP_OK(hslimit_source_count(&hl, &ss) == 3,
	    "the port does not matter: one source");
	ok = 1;
	for (i = 5; i < 10; i++) {
		snprintf(a, sizeof(a), "127.0.0.%d", i);
		ok &= admit(&hl, &e[i], a, 8, 3) == NULL;
	}
	TAP_OK(ok && hl.n == 8, "others use the rest of the budget");
	TAP_OK(admit(&hl, &e[10], "127.0.0.1", 8, 3) == &e[2] && hl.n == 8,
	    "budget full: the oldest of the source with most makes room");
	hslimit_touch(&hl, &e[3]);
	TAP_OK(hslimit_oldest(&hl) == &e[4] && TAILQ_LAST(&hl.all,
	    hsentries) == &e[3], "progress sends a handshake to the back");
	ss = addr("127.0.0.2", 1);
	TAP_OK(hslimit_victim(&hl, &ss, 8, 2) == &e[4],
	    "and to the back of its source's queue");
	hslimit_touch(&hl, &e[3]);
	hslimit_remove(&hl, &e[5]);
	TAP_OK(hl.n == 7 && e[5].src == NULL, "a finished handshake leaves");
	hslimit_remove(&hl, &e[5]);
	TAP_OK(hl.n == 7, "removing twice is harmless");
	ss = addr("127.0.0.5", 1);
	TAP_OK(hslimit_source_count(&hl, &ss) == 0,
	    "a source with none left is forgotten");
	TAP_OK(hslimit_oldest(&hl) == &e[4],
	    "the source with most gives its oldest");
	hslimit_remove(&hl, &e[3]);
	hslimit_remove(&hl, &e[4]);
	TAP_OK(hslimit_oldest(&hl) == &e[6],
	    "one each: the oldest of all (%d)", (int)(hslimit_oldest(&hl) -
	    e));

	for (i = 0; i < 20; i++)
		hslimit_remove(&hl, &e[i]);
	TAP_OK(hl.n == 0 && RB_EMPTY(&hl.sources), "emptied");

	/* IPv6: one /64 is one source; v4-mapped is the IPv4 address */
	admit(&hl, &e[20], "2001:db8::1", 8, 2);
	admit(&hl, &e[21], "2001:db8::2:3", 8, 2);
	TAP_OK(admit(&hl, &e[22], "2001:db8::ffff:1", 8, 2) == &e[20],
	    "addresses of one IPv6 /64 share a cap");
	TAP_OK(admit(&hl, &e[23], "2001:db8:0:1::1", 8, 2) == NULL,
	    "another /64 is another source");
	admit(&hl, &e[24], "::ffff:10.0.0.1", 8, 2);
	admit(&hl, &e[25], "10.0.0.1", 8, 2);
	TAP_OK(admit(&hl, &e[26], "10.0.0.1", 8, 2) == &e[24],
	    "an IPv4-mapped address counts as its IPv4 address");
	for (i = 0; i < 64; i++)
		hslimit_remove(&hl, &e[i]);
	TAP_OK(hl.n == 0 && RB_EMPTY(&hl.sources) &&
	    TAILQ_EMPTY(&hl.all), "all gone, nothing left behind");
	return tap_done();
}
