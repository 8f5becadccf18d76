/*
 * The worker role (`todod: worker N`): event-driven TLS termination, HTTP
 * parsing and the TODO API.  It holds no private key (signatures come from
 * the keyholder through khprov) and reaches the store only through the
 * parent.  worker.c: main loop, parent channel and configuration
 * transactions; server.c: listeners and connections; api.c: requests;
 * tlsconf.c: TLS generations; wconf.c: a configuration received.
 */
#ifndef TODOD_WORKER_H
#define TODOD_WORKER_H

#include <sys/types.h>

int	worker_main(int, int, int, const char *, uid_t, gid_t, int);

#endif
