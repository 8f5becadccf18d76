/*
 * The parent's HTTP client for revocation data (CRLs, OCSP responses):
 * one asynchronous exchange driven by the parent's libevent loop, which it
 * never blocks (names resolve through evdns, the socket is non-blocking,
 * OpenSSL's OSSL_HTTP_REQ_CTX does the HTTP).  http:// only: CRL and OCSP
 * distribution is plain HTTP by design, the data is signed.  The answer
 * must be DER (RFC 5280 CRLs, RFC 6960 responses), at most max bytes,
 * within timeout seconds; anything else is an error.  Workers have no
 * network: only the parent calls this.
 */
#ifndef TODOD_FETCH_H
#define TODOD_FETCH_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct fetch;

/*
 * Called exactly once per fetch_start() that returned non-NULL (never from
 * inside fetch_start, never after fetch_cancel): der/len is the response
 * body on success and err NULL; on failure der is NULL and err says what
 * went wrong (for the log; it may quote the server).  Both are valid only
 * during the call; the fetch is freed when the callback returns.
 */
typedef void	fetch_done_cb(void *, const uint8_t *, size_t, const char *);

/*
 * GET url (req NULL), or POST req/reqlen (DER, sent with Content-Type
 * ctype, e.g. "application/ocsp-request").  Returns NULL with err set
 * when the URL is not a usable http:// URL or memory runs out.
 */
struct fetch	*fetch_start(struct event_base *, const char *, const char *,
		    const uint8_t *, size_t, size_t, int, fetch_done_cb *,
		    void *, char *, size_t);
/* Stop a fetch in flight; its callback is not called. */
void		 fetch_cancel(struct fetch *);
/* 1 if url is an http:// URL fetch_start accepts, else 0 and err. */
int		 fetch_url_ok(const char *, char *, size_t);

#endif
