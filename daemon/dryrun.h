/* `todod -n -C cert`: what the policy would do with a client certificate. */
#ifndef TODOD_DRYRUN_H
#define TODOD_DRYRUN_H

struct config;

int	dryrun_check(const struct config *, const char *);

#endif
