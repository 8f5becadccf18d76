/*
 * The configuration once parsed: freeing it, and where each file setting
 * was written, so that every check (daemon/check.c) names the file and
 * line an operator has to change.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

void
config_free(struct config *conf)
{
	struct config_listen	*l;
	int			 i;

	if (conf == NULL)
		return;
	while ((l = TAILQ_FIRST(&conf->listens)) != NULL) {
		TAILQ_REMOVE(&conf->listens, l, entry);
		free(l);
	}
	authz_rules_free(&conf->rules);
	for (i = 0; i < conf->norigins; i++)
		free(conf->origins[i].file);
	free(conf->path);
	free(conf->user);
	free(conf->chroot);
	free(conf->database);
	free(conf->pidfile);
	free(conf->tls.cert);
	free(conf->tls.key);
	free(conf->tls.pin);
	free(conf->tls.p11module);
	free(conf->tls.ca);
	free(conf->tls.crl);
	free(conf->tls.crl_url);
	free(conf->tls.staple);
	free(conf->tls.staple_url);
	free(conf->tls.client_ocsp_url);
	free(conf->tls.protocols);
	free(conf->tls.ciphers);
	free(conf);
}

void
config_origin_add(struct config *conf, const char *setting, const char *file,
    int line)
{
	struct config_origin	*o;
	char			*f;
	int			 i;

	for (i = 0; i < conf->norigins; i++)
		if (strcmp(conf->origins[i].setting, setting) == 0)
			break;
	if (i == CONFIG_MAX_ORIGINS || (f = strdup(file)) == NULL)
		return;		/* messages lose the line, nothing else */
	o = &conf->origins[i];
	if (i == conf->norigins)
		conf->norigins++;
	free(o->file);
	o->setting = setting;
	o->file = f;
	o->line = line;
}

void
config_problem(const struct config *conf, const char *setting,
    const char *path, char *err, size_t errlen, const char *fmt, ...)
{
	const struct config_origin	*o = NULL;
	char				 what[1024];
	va_list				 ap;
	int				 i;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	for (i = 0; i < conf->norigins; i++)
		if (strcmp(conf->origins[i].setting, setting) == 0)
			o = &conf->origins[i];
	if (o != NULL)
		snprintf(err, errlen, "%s:%d: %s %s: %s", o->file, o->line,
		    setting, path, what);
	else
		snprintf(err, errlen, "%s %s (default): %s", setting, path,
		    what);
}
