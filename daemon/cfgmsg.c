#include <sys/types.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tls.h>

#include "authz.h"
#include "cfgmsg.h"
#include "config.h"
#include "ipc.h"

static int
cfgmsg_bad(void)
{
	errno = EBADMSG;
	return -1;
}

/* Queue a composed message; ipc_send reports a failed add. */
static int
cfgmsg_queue(struct ipc *ipc, struct ipc_wbuf *wb, int fd)
{
	if (wb == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	return ipc_send(ipc, wb, fd);
}

static int
cfgmsg_send_u32(struct ipc *ipc, uint32_t type, uint32_t v)
{
	return ipc_compose(ipc, type, 0, -1, &v, sizeof(v));
}

int
cfgmsg_send_begin(struct ipc *ipc, uint32_t gen)
{
	return cfgmsg_send_u32(ipc, IMSG_CFG_BEGIN, gen);
}

int
cfgmsg_send_main(struct ipc *ipc, const struct proto_cfg_main *m,
    const char *ciphers)
{
	struct ipc_wbuf	*wb;

	if (ciphers == NULL)
		ciphers = "";
	if ((wb = ipc_create(IMSG_CFG_MAIN, 0, sizeof(*m) + 64)) != NULL) {
		ipc_add(wb, m, sizeof(*m));
		ipc_add_str(wb, ciphers);
	}
	return cfgmsg_queue(ipc, wb, -1);
}

/* The channel takes fd, whatever happens. */
int
cfgmsg_send_listen(struct ipc *ipc, const char *name, int fd)
{
	struct ipc_wbuf	*wb;

	if ((wb = ipc_create(IMSG_CFG_LISTEN, 0, 64)) != NULL)
		ipc_add_str(wb, name);
	return cfgmsg_queue(ipc, wb, fd);
}

static int
cfgmsg_tls_type(uint32_t type)
{
	return type == IMSG_CFG_TLS_CERT || type == IMSG_CFG_TLS_KEYREF ||
	    type == IMSG_CFG_TLS_CA || type == IMSG_CFG_TLS_CRL ||
	    type == IMSG_CFG_TLS_STAPLE;
}

int
cfgmsg_send_tls(struct ipc *ipc, uint32_t type, const void *p, size_t n)
{
	struct ipc_wbuf	*wb;

	if (!cfgmsg_tls_type(type)) {
		errno = EINVAL;
		return -1;
	}
	if (type == IMSG_CFG_TLS_STAPLE && n > CFGMSG_STAPLE_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((wb = ipc_create(type, 0, n + 8)) != NULL)
		ipc_add_data(wb, p, n);
	return cfgmsg_queue(ipc, wb, -1);
}

int
cfgmsg_send_rule(struct ipc *ipc, const struct authz_rule *r)
{
	struct ipc_wbuf	*wb;
	int		 i;

	if (r->nconds < 1 || r->nconds > AUTHZ_MAX_CONDS) {
		errno = EINVAL;
		return -1;
	}
	if ((wb = ipc_create(IMSG_CFG_RULE, 0, 256)) == NULL)
		return -1;
	ipc_add_u32(wb, r->lineno < 0 ? 0 : (uint32_t)r->lineno);
	ipc_add_u32(wb, r->classes);
	ipc_add_u32(wb, r->methods);
	ipc_add_str(wb, r->path != NULL ? r->path : "");
	ipc_add_u32(wb, (uint32_t)r->nconds);
	for (i = 0; i < r->nconds; i++) {
		ipc_add_u32(wb, (uint32_t)r->conds[i].type);
		ipc_add_str(wb, r->conds[i].value != NULL ?
		    r->conds[i].value : "");
		ipc_add_data(wb, r->conds[i].ip,
		    r->conds[i].type == MATCH_SAN_IP ? r->conds[i].iplen : 0);
	}
	return ipc_send(ipc, wb, -1);
}

int
cfgmsg_send_ticket(struct ipc *ipc, const struct proto_ticket_key *k)
{
	return ipc_compose(ipc, IMSG_TICKET_KEY, 0, -1, k, sizeof(*k));
}

int
cfgmsg_send_end(struct ipc *ipc)
{
	return ipc_compose(ipc, IMSG_CFG_END, 0, -1, NULL, 0);
}

int
cfgmsg_send_done(struct ipc *ipc, uint32_t gen)
{
	return cfgmsg_send_u32(ipc, IMSG_CFG_DONE, gen);
}

/* A reason too long for the parent to accept is cut, not lost. */
int
cfgmsg_send_failed(struct ipc *ipc, uint32_t gen, const char *why)
{
	struct ipc_wbuf	*wb;

	if ((wb = ipc_create(IMSG_CFG_FAILED, 0, 64)) != NULL) {
		ipc_add_u32(wb, gen);
		ipc_add_strn(wb, why, strnlen(why, CFGMSG_WHY_MAX));
	}
	return cfgmsg_queue(ipc, wb, -1);
}

int
cfgmsg_send_commit(struct ipc *ipc, uint32_t gen)
{
	return cfgmsg_send_u32(ipc, IMSG_CFG_COMMIT, gen);
}

/* BEGIN, COMMIT and DONE: the generation and nothing else. */
int
cfgmsg_get_gen(struct ipc_msg *msg, uint32_t *gen)
{
	uint32_t	 t = msg->hdr.type;

	if ((t != IMSG_CFG_BEGIN && t != IMSG_CFG_COMMIT &&
	    t != IMSG_CFG_DONE) || msg->fd != -1 ||
	    ipc_get_fixed(msg, gen, sizeof(*gen)) == -1)
		return cfgmsg_bad();
	return 0;
}

/* A string of at most max bytes (terminator excluded). */
static int
cfgmsg_get_str(struct ipc_msg *msg, const char **s, size_t max)
{
	if (ipc_get_str(msg, s) == -1 || strlen(*s) > max)
		return cfgmsg_bad();
	return 0;
}

static int
cfgmsg_main_ok(const struct proto_cfg_main *m)
{
	return m->nworkers >= 1 && m->nworkers <= CONFIG_MAX_WORKERS &&
	    m->worker_id >= 1 && m->worker_id <= m->nworkers &&
	    m->timeout_request > 0 && m->timeout_idle > 0 &&
	    m->timeout_handshake > 0 && m->max_connections > 0 &&
	    m->protocols != 0 && (m->protocols & ~TLS_PROTOCOLS_ALL) == 0 &&
	    m->client_ocsp <= CONFIG_OCSP_REQUIRE && m->timeout_ocsp > 0;
}

int
cfgmsg_get_main(struct ipc_msg *msg, struct proto_cfg_main *m,
    const char **ciphers)
{
	if (msg->hdr.type != IMSG_CFG_MAIN || msg->fd != -1 ||
	    ipc_get_raw(msg, m, sizeof(*m)) == -1 ||
	    cfgmsg_get_str(msg, ciphers, CFGMSG_CIPHERS_MAX) == -1 ||
	    ipc_get_end(msg) == -1 || !cfgmsg_main_ok(m))
		return cfgmsg_bad();
	return 0;
}

/* The socket is msg->fd, for the caller to take. */
int
cfgmsg_get_listen(struct ipc_msg *msg, const char **name)
{
	if (msg->hdr.type != IMSG_CFG_LISTEN || msg->fd == -1 ||
	    cfgmsg_get_str(msg, name, CFGMSG_NAME_MAX) == -1 ||
	    ipc_get_end(msg) == -1)
		return cfgmsg_bad();
	return 0;
}

int
cfgmsg_get_tls(struct ipc_msg *msg, const void **p, size_t *n)
{
	if (!cfgmsg_tls_type(msg->hdr.type) || msg->fd != -1 ||
	    ipc_get_data(msg, p, n) == -1 || ipc_get_end(msg) == -1 ||
	    (msg->hdr.type == IMSG_CFG_TLS_STAPLE && *n > CFGMSG_STAPLE_MAX))
		return cfgmsg_bad();
	return 0;
}

/* A new staple for the configuration in use; empty: none. */
int
cfgmsg_send_staple(struct ipc *ipc, const void *p, size_t n)
{
	struct ipc_wbuf	*wb;

	if (n > CFGMSG_STAPLE_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((wb = ipc_create(IMSG_STAPLE, 0, n + 8)) != NULL)
		ipc_add_data(wb, p, n);
	return cfgmsg_queue(ipc, wb, -1);
}

int
cfgmsg_get_staple(struct ipc_msg *msg, const void **p, size_t *n)
{
	if (msg->hdr.type != IMSG_STAPLE || msg->fd != -1 ||
	    ipc_get_data(msg, p, n) == -1 || ipc_get_end(msg) == -1 ||
	    *n > CFGMSG_STAPLE_MAX)
		return cfgmsg_bad();
	return 0;
}

static int
cfgmsg_get_cond(struct ipc_msg *msg, struct authz_cond *c)
{
	const char	*value;
	const void	*ip;
	size_t		 iplen;
	uint32_t	 type;
	char		 err[256];

	if (ipc_get_u32(msg, &type) == -1 || ipc_get_str(msg, &value) == -1 ||
	    ipc_get_data(msg, &ip, &iplen) == -1)
		return -1;
	if (type < MATCH_ANY || type > MATCH_SAN_EMAIL)
		return -1;
	if (type == MATCH_ANY) {
		if (*value != '\0' || iplen != 0)
			return -1;
	} else if (type != MATCH_SAN_IP && iplen != 0)
		return -1;
	if (authz_cond_set(c, (enum authz_match)type, value, err,
	    sizeof(err)) == -1)
		return -1;
	/* Only what the sender's own parse would have produced. */
	if (type != MATCH_ANY && strcmp(c->value, value) != 0)
		return -1;
	if (type == MATCH_SAN_IP &&
	    (iplen != c->iplen || memcmp(ip, c->ip, iplen) != 0))
		return -1;
	return 0;
}

static int
cfgmsg_rule_ok(const struct authz_rule *r, uint32_t lineno, uint32_t nconds)
{
	return lineno <= INT_MAX && r->classes != 0 &&
	    (r->classes & ~AUTHZ_ALL) == 0 &&
	    (r->methods & ~(AUTHZ_M_GET | AUTHZ_M_POST | AUTHZ_M_PATCH |
	    AUTHZ_M_DELETE)) == 0 &&
	    nconds >= 1 && nconds <= AUTHZ_MAX_CONDS;
}

/* A rule as the parent's parser made it; NULL (EBADMSG) otherwise. */
struct authz_rule *
cfgmsg_get_rule(struct ipc_msg *msg)
{
	struct authz_rule	*r;
	const char		*path;
	uint32_t		 lineno, nconds, i;

	if (msg->hdr.type != IMSG_CFG_RULE || msg->fd != -1 ||
	    (r = authz_rule_new()) == NULL)
		goto bad;
	if (ipc_get_u32(msg, &lineno) == -1 ||
	    ipc_get_u32(msg, &r->classes) == -1 ||
	    ipc_get_u32(msg, &r->methods) == -1 ||
	    ipc_get_str(msg, &path) == -1 ||
	    ipc_get_u32(msg, &nconds) == -1 ||
	    !cfgmsg_rule_ok(r, lineno, nconds))
		goto fail;
	r->lineno = (int)lineno;
	if (*path != '\0' && (*path != '/' || (r->path = strdup(path)) ==
	    NULL))
		goto fail;
	for (i = 0; i < nconds; i++) {
		if (cfgmsg_get_cond(msg, &r->conds[i]) == -1)
			goto fail;
		r->nconds++;
		if (r->conds[i].type == MATCH_ANY && nconds != 1)
			goto fail;
	}
	if (ipc_get_end(msg) == -1)
		goto fail;
	return r;
 fail:
	authz_rule_free(r);
 bad:
	errno = EBADMSG;
	return NULL;
}

int
cfgmsg_get_ticket(struct ipc_msg *msg, struct proto_ticket_key *k)
{
	if (msg->hdr.type != IMSG_TICKET_KEY || msg->fd != -1 ||
	    ipc_get_fixed(msg, k, sizeof(*k)) == -1)
		return cfgmsg_bad();
	return 0;
}

int
cfgmsg_get_end(struct ipc_msg *msg)
{
	if (msg->hdr.type != IMSG_CFG_END || msg->fd != -1 ||
	    ipc_get_end(msg) == -1)
		return cfgmsg_bad();
	return 0;
}

/*
 * A worker's answer, DONE or FAILED; *why is "" for DONE.  The parent
 * logs the reason, so it is bounded.
 */
int
cfgmsg_get_reply(struct ipc_msg *msg, uint32_t *gen, const char **why)
{
	*why = "";
	if ((msg->hdr.type != IMSG_CFG_DONE &&
	    msg->hdr.type != IMSG_CFG_FAILED) || msg->fd != -1 ||
	    ipc_get_u32(msg, gen) == -1)
		return cfgmsg_bad();
	if (msg->hdr.type == IMSG_CFG_FAILED &&
	    cfgmsg_get_str(msg, why, CFGMSG_WHY_MAX) == -1)
		return -1;
	return ipc_get_end(msg);
}

/* Add a ticket key to a list of at most PROTO_TICKETS_KEPT; the oldest go. */
void
cfgmsg_ticket_keep(struct proto_ticket_key *keys, int *n,
    const struct proto_ticket_key *k)
{
	if (*n >= PROTO_TICKETS_KEPT) {
		memmove(keys, keys + 1,
		    (PROTO_TICKETS_KEPT - 1) * sizeof(keys[0]));
		*n = PROTO_TICKETS_KEPT - 1;
	}
	keys[(*n)++] = *k;
	explicit_bzero(keys + *n, (PROTO_TICKETS_KEPT - *n) * sizeof(keys[0]));
}
