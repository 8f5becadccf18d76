/* Test helper: an allow rule built in code, as the parser would make it. */
#ifndef TODOD_AUTHZRULE_H
#define TODOD_AUTHZRULE_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"

/* Build a rule: conditions as (type, value) pairs, ended by 0. */
static inline struct authz_rule *
rule(struct authz_rules *rules, uint32_t classes, uint32_t methods,
    const char *path, ...)
{
	struct authz_rule	*r;
	va_list			 ap;
	int			 type;
	const char		*v;
	char			 err[256];

	if ((r = authz_rule_new()) == NULL)
		abort();
	r->classes = classes;
	r->methods = methods;
	r->path = path ? strdup(path) : NULL;
	va_start(ap, path);
	while ((type = va_arg(ap, int)) != 0) {
		v = va_arg(ap, const char *);
		if (authz_cond_set(&r->conds[r->nconds++], type, v, err,
		    sizeof(err)) == -1) {
			printf("# %s\n", err);
			abort();
		}
	}
	va_end(ap);
	if (rules != NULL)
		TAILQ_INSERT_TAIL(rules, r, entry);
	return r;
}

#endif
