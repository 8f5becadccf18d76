#include <sys/types.h>

#include <event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "wconf.h"

struct wconf *
wconf_new(uint32_t gen)
{
	struct wconf	*wc;

	if ((wc = calloc(1, sizeof(*wc))) == NULL)
		fatal("%s", __func__);
	wc->gen = gen;
	TAILQ_INIT(&wc->listeners);
	TAILQ_INIT(&wc->rules);
	return wc;
}

/* A configuration closes its own listeners: the next one has its own. */
void
wconf_free(struct wconf *wc)
{
	struct listener	*l;

	if (wc == NULL)
		return;
	while ((l = TAILQ_FIRST(&wc->listeners)) != NULL) {
		TAILQ_REMOVE(&wc->listeners, l, entry);
		if (event_initialized(&l->ev))
			event_del(&l->ev);
		close(l->fd);
		free(l);
	}
	authz_rules_free(&wc->rules);
	buf_free(&wc->cert);
	buf_free(&wc->keyref);
	buf_free(&wc->ca);
	buf_free(&wc->crl);
	buf_free(&wc->staple);
	free(wc->ciphers);
	explicit_bzero(wc->tickets, sizeof(wc->tickets));
	free(wc);
}
