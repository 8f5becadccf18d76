/*
 * Listening sockets: each worker has its own socket per address, all bound
 * with SO_REUSEPORT, kept in the configuration that names the address.
 */
#ifndef TODOD_LISTEN_H
#define TODOD_LISTEN_H

#include <stddef.h>

struct config;

int	listen_bind(const struct config *, struct config *, int, char *,
	    size_t);
void	listen_worker(struct config *, int, int);
void	listen_close(struct config *);

#endif
