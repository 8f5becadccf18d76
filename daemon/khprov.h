/*
 * khprov: an OpenSSL 3 provider compiled into the worker.  Its decoder
 * turns a key reference (common/keyref.h) into a key whose public half is
 * real and whose signatures are made by todod-keyholder: every signature
 * operation sends {key id, algorithm, digest name, input to be signed}
 * over the keyholder channel and waits, bounded, for the answer.  libtls
 * has no asynchronous signing, so the worker blocks for that round trip.
 *
 * Use: kp = khprov_init() once before tls_init(); hand the reference PEM
 * to tls_config_set_keypair_mem() as the key (with the real
 * certificate), and never call tls_config_skip_private_key_check().
 *
 * Not thread-safe: one channel and one request at a time, as a worker
 * process has.
 */
#ifndef TODOD_KHPROV_H
#define TODOD_KHPROV_H

#include <stdint.h>

#define KHPROV_NAME		"todod-keyholder"
#define KHPROV_TIMEOUT		1000	/* ms, default round-trip bound */

struct khprov;
/* Each signature: its round trip in microseconds, and whether it worked. */
typedef void	(*khprov_observer_fn)(void *, uint64_t, int);

struct khprov	*khprov_init(void);
void		 khprov_set_channel(struct khprov *, int);
void		 khprov_set_timeout(struct khprov *, int);
void		 khprov_set_observer(struct khprov *, khprov_observer_fn,
		    void *);
int		 khprov_has_channel(const struct khprov *);
void		 khprov_decoders(struct khprov *, int);

#endif
