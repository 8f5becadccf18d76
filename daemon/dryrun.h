/* `todod -n -C cert`: what the policy would do with a client certificate. */
#ifndef TODOD_DRYRUN_H
#define TODOD_DRYRUN_H

struct config;
struct tlsmat;

/* The material is what check_config() read for this configuration. */
int	dryrun_check(const struct config *, const struct tlsmat *,
	    const char *);

#endif
