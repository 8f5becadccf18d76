#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "page.h"

/* build/gen/pagedata.c, from daemon/page/ */
extern const unsigned char	 page_index_html[], page_todod_js[],
				 page_todod_css[];
extern const size_t		 page_index_html_len, page_todod_js_len,
				 page_todod_css_len;

/*
 * The page loads its script and style from this server and talks only to
 * it; nothing may frame it (clickjacking), and it submits no form itself
 * (its forms are handled by the script).  Every asset gets the policy:
 * the JavaScript and CSS would otherwise be usable from a page that
 * includes them.
 */
#define PAGE_CSP	"Content-Security-Policy: default-src 'none'; " \
			"script-src 'self'; style-src 'self'; " \
			"img-src 'self'; connect-src 'self'; base-uri 'none'; " \
			"form-action 'none'; frame-ancestors 'none'\r\n"

static struct page_asset page_assets[] = {
	{ "/", "text/html; charset=utf-8", page_index_html,
	    &page_index_html_len, 1, "" },
	{ "/todod.js", "text/javascript; charset=utf-8", page_todod_js,
	    &page_todod_js_len, 0, "" },
	{ "/todod.css", "text/css; charset=utf-8", page_todod_css,
	    &page_todod_css_len, 0, "" },
	/* browsers ask for it on their own: no icon, and no 404 in the log */
	{ "/favicon.ico", "image/x-icon", NULL, NULL, 0, "" },
};

/* FNV-1a: the tag only has to change when the content does. */
static void
page_etag(struct page_asset *a)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;
	size_t		 i;

	for (i = 0; a->data != NULL && i < *a->len; i++) {
		h ^= a->data[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(a->etag, sizeof(a->etag), "\"%016llx\"",
	    (unsigned long long)h);
}

struct page_asset *
page_lookup(const char *path)
{
	size_t	 i;

	for (i = 0; i < sizeof(page_assets) / sizeof(page_assets[0]); i++)
		if (strcmp(page_assets[i].path, path) == 0) {
			if (page_assets[i].etag[0] == '\0')
				page_etag(&page_assets[i]);
			return &page_assets[i];
		}
	return NULL;
}

/*
 * no-cache: kept, but checked with If-None-Match on every use, so a new
 * todod's page is seen at once.  The page itself varies with Accept (an
 * API client gets a 404 for /).
 */
size_t
page_headers(const struct page_asset *a, char *out, size_t outlen)
{
	int	 n;

	if (a->data == NULL)
		n = snprintf(out, outlen,
		    "Cache-Control: max-age=86400\r\n"
		    "X-Content-Type-Options: nosniff\r\n");
	else
		n = snprintf(out, outlen, "%s"
		    "X-Content-Type-Options: nosniff\r\n"
		    "X-Frame-Options: DENY\r\n"
		    "Referrer-Policy: no-referrer\r\n"
		    "Cross-Origin-Resource-Policy: same-origin\r\n"
		    "Cache-Control: no-cache\r\n"
		    "ETag: %s\r\n%s", PAGE_CSP, a->etag,
		    a->html ? "Vary: Accept\r\n" : "");
	if (n < 0 || (size_t)n >= outlen)
		return 0;
	return n;
}
