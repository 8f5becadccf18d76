/*
 * Fixes to libretls (Debian's libtls on OpenSSL 3), made by
 * interposing the libssl calls it makes while configuring a server:
 *
 * 1. Its session ticket callback returns 0 after setting up the ticket
 *    keys; OpenSSL 3 reads 0 as "issue no ticket", so
 *    tls_config_add_ticket_key() never gave a resumable session.  The
 *    wrapper maps that 0 to 1 for new tickets, and asks for a new ticket
 *    after each TLS 1.3 resumption (clients use those tickets once).
 * 2. An out-of-date CRL would refuse every client: the verify wrapper
 *    excuses only the CRL's dates (revoked certificates stay refused).
 * 3. It reports why a client certificate failed verification only on the
 *    shared server context, and has no way to set SSL_MODE_RELEASE_BUFFERS.
 *    The verify wrapper records the X.509 error of the failing certificate
 *    in the connection's own SSL (ex_data, freed with it), found again from
 *    the connection's struct tls; the SSL_CTX seen here gets the mode and a
 *    disabled session-id cache (resumption goes through tickets, which
 *    work across workers).
 * 4. It cannot name the client CAs in the CertificateRequest: the SSL_CTX
 *    seen here gets the names tlsconf.c set with tlshook_set_ca_names().
 */
#ifndef TODOD_TLSHOOK_H
#define TODOD_TLSHOOK_H

#include <stddef.h>

/* Why a connection's client certificate failed verification. */
struct tlshook_verify {
	int	 error;		/* X509_V_ERR_* */
	int	 depth;
	char	 subject[256];	/* as presented: escape it before logging */
	size_t	 subjectlen;	/* bytes in subject (it may hold a NUL) */
};

struct tls;
struct x509_store_ctx_st;
struct stack_st_X509_NAME;

int	tlshook_verify_each(int, struct x509_store_ctx_st *);
const struct tlshook_verify *tlshook_verify_get(struct tls *);
int	tlshook_ctx_count(void);
void	tlshook_set_ca_names(struct stack_st_X509_NAME *);

#endif
