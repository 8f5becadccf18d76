/*
 * The page for people in browsers: HTML, CSS and JavaScript compiled into
 * todod (daemon/page/, embedded at build time by daemon/page/embed.sh) and
 * served from memory by the workers.  The page does everything through
 * the JSON API; nothing on it comes from the request.
 */
#ifndef TODOD_PAGE_H
#define TODOD_PAGE_H

#include <stddef.h>

struct page_asset {
	const char		*path;		/* "/", "/todod.js", ... */
	const char		*ctype;
	const unsigned char	*data;		/* NULL: 204, no body */
	const size_t		*len;
	int			 html;		/* only for Accept: text/html */
	char			 etag[24];	/* quoted; made on first use */
};

/* The asset at path, or NULL. */
struct page_asset	*page_lookup(const char *);

/* Response header lines for an asset (CSP, caching, nosniff...). */
size_t	 page_headers(const struct page_asset *, char *, size_t);

#endif
