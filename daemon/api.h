/*
 * The TODO API: a request in, a response (or a verdict) out.  It knows no
 * connection, socket or channel: server.c owns those, hands the API a
 * request head once (api_admit) and the whole request once (api_request),
 * and does what the verdict says.  So each request gets exactly one
 * answer, and the API is tested without sockets (regress/unit/test_api.c).
 */
#ifndef TODOD_API_H
#define TODOD_API_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct authz_rules;
struct cache;
struct http_request;
struct ipc_msg;
struct ipc_wbuf;
struct peer;

/* What the API reads of the worker: given at each call. */
struct api_env {
	struct cache			*cache;
	uint64_t			 store_seq;	/* last acknowledged */
	const struct authz_rules	*rules;		/* in force now */
	int				 shared;	/* other nodes write */
};

/* A request as the API sees it; server.c fills it in and keeps it. */
struct api_req {
	const struct http_request	*http;
	const struct peer		*peer;
	const char			*body;		/* NUL-terminated */
	size_t				 bodylen;
	uint32_t			 reqid;		/* for a store request */
	int				 route;		/* set by api_admit */
	int64_t				 id;		/* of /todo/ID */
	int				 synced;	/* see API_SYNC */
};

enum api_verdict {
	API_RESPOND,	/* the response is ready: send it */
	API_ADMIT,	/* api_admit: read the body, then api_request */
	API_WAIT_CACHE,	/* call api_request again once the cache has seq */
	API_STORE,	/* send store to the parent; api_store_reply answers */
	API_METRICS,	/* ask the parent for metrics; api_metrics_reply */
	API_SYNC,	/* ask the parent to catch up with the other nodes;
			   api_sync_reply, then api_request again */
	API_FETCH	/* read item id from the store (the cache does not
			   hold every item); api_fetch_reply answers */
};

struct api_resp {
	int		 status;
	const char	*ctype;		/* NULL: application/json */
	char		 extra[1024];	/* further header lines, or "" */
	struct buf	 body;
	int		 stream;	/* the list, streamed: 1 chunked,
					   2 until the close (HTTP/1.0) */
	int		 from_store;	/* stream: page by page from the store,
					   the cache does not hold every item */
	int		 cache_hit;	/* GET /todo/ID from the cache */
	uint64_t	 seq;		/* API_WAIT_CACHE: the sequence */
	struct ipc_wbuf	*store;		/* API_STORE: the message to send */
};

void	api_resp_init(struct api_resp *);
void	api_resp_free(struct api_resp *);
void	api_resp_error(struct api_resp *, int, const char *, const char *);

enum api_verdict api_admit(const struct api_env *, struct api_req *,
	    struct api_resp *);
enum api_verdict api_request(const struct api_env *, struct api_req *,
	    struct api_resp *);
void	api_store_reply(const struct api_req *, struct ipc_msg *,
	    struct api_resp *);
void	api_metrics_reply(struct ipc_msg *, struct api_resp *);
int	api_sync_reply(struct api_req *, struct ipc_msg *, struct api_resp *);
void	api_fetch_reply(const struct api_req *, const char *, size_t, int,
	    struct api_resp *);

#endif
