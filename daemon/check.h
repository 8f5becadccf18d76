/*
 * The one validator of a configuration's files: `todod -n`, start-up and
 * SIGHUP all run check_config(), so that whatever one accepts the others
 * accept, with the same message.
 */
#ifndef TODOD_CHECK_H
#define TODOD_CHECK_H

#include <stddef.h>

struct config;
struct tlsmat;

#define CHECK_ALL	0x01	/* log every problem (-n), not only the first */
#define CHECK_KEY	0x02	/* parse the key here, as a keyholder would */
#define CHECK_QUIET	0x04	/* no warnings: the check is run again later */

/*
 * User, chroot (as root), database and pidfile directories, certificate,
 * client CA, CRL and key file.  Returns the number of problems; err holds
 * the first.  With mat, the TLS material read is returned (NULL if it
 * failed).  Warnings (expiry soon, stale CRL) are logged in every mode.
 */
int	check_config(const struct config *, int, struct tlsmat **, char *,
	    size_t);

/*
 * Open the key file for a keyholder: a regular file of at most the
 * keyholder's limit that only its owner may read.  fd, or -1 and err.
 */
int	check_key_open(const struct config *, char *, size_t);

#endif
