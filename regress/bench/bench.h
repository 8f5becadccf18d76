/*
 * todod-bench: an event-driven mutual-TLS HTTP load generator.  wrk and
 * h2load cannot present a client certificate, so todod's benchmarks (and
 * the nginx and lab-server baselines they are compared with) use this.
 *
 * One thread per -j, each with its own epoll set and a share of the -t
 * connection slots; every slot is a small state machine driving one
 * non-blocking socket and one SSL object.
 */
#ifndef TODOD_BENCH_H
#define TODOD_BENCH_H

#include <sys/types.h>
#include <sys/socket.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define NSEC			1000000000LL
#define BENCH_TIMEOUT		(10 * NSEC)	/* no answer: an error */
#define BENCH_BACKOFF		(10 * 1000000LL) /* after an error */
#define BENCH_IDLE_SETUP	(60 * NSEC)	/* idle: time to connect */
#define BENCH_IDLE_BURST	64	/* idle: handshakes at once/thread */
#define BENCH_HDR_MAX		8192	/* response header block */
#define BENCH_REQ_MAX		1024
#define BENCH_RBUF		(64 * 1024)

enum bench_mode {
	MODE_FULL,
	MODE_RESUME,
	MODE_GET,
	MODE_POST,
	MODE_IDLE,
	MODE_FILL,
	MODE_LAT
};

struct bench_opts {
	const char	*host;
	const char	*port;
	const char	*servername;
	const char	*ca;
	const char	*cert;
	const char	*key;
	const char	*path;
	enum bench_mode	 mode;
	int		 conns;
	int		 threads;
	int		 proto;		/* TLS1_2_VERSION or TLS1_3_VERSION */
	int		 quiet;
	double		 secs;
	double		 warmup;
	long long	 items;		/* fill */
};

/*
 * Latency histogram, microseconds: exact below 256, then 128 buckets per
 * power of two (under 1% error), which merges across threads by addition.
 */
#define HIST_EXACT	256
#define HIST_SUB	128
#define HIST_MAXEXP	40
#define HIST_BUCKETS	(HIST_EXACT + (HIST_MAXEXP - 7) * HIST_SUB)

struct bench_hist {
	uint64_t	 n;
	uint64_t	 count[HIST_BUCKETS];
};

void		 hist_add(struct bench_hist *, uint64_t);
void		 hist_merge(struct bench_hist *, const struct bench_hist *);
uint64_t	 hist_quantile(const struct bench_hist *, double);

enum bench_err {
	ERR_HANDSHAKE,
	ERR_STATUS,
	ERR_IO,
	ERR_TIMEOUT,
	ERR_NKINDS
};

struct bench_stats {
	uint64_t	 req;		/* completed in the measured window */
	uint64_t	 req_total;	/* completed, warm-up included */
	uint64_t	 bytes;		/* response bytes, measured window */
	uint64_t	 err[ERR_NKINDS];	/* whole run */
	uint64_t	 reconnects;	/* server closed a keep-alive conn */
	uint64_t	 handshakes;	/* measured window */
	uint64_t	 resumed;	/* measured window */
	uint64_t	 established;	/* idle: set up */
	uint64_t	 open;		/* idle: still open at the end */
	struct bench_hist lat;
};

/* What every thread reads; the times are written by the main thread. */
struct bench_shared {
	const struct bench_opts	*opts;
	SSL_CTX			*ctx;
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	int			 sni;		/* servername is not an IP */
	int			 resume;	/* offer saved sessions */
	char			 get_req[BENCH_REQ_MAX];
	size_t			 get_len;
	char			 hosthdr[300];
	int			 expect;	/* HTTP status */
	_Atomic int64_t		 t_measure;	/* window start, monotonic */
	_Atomic int64_t		 t_end;
	_Atomic uint64_t	 seq;		/* POST task numbers */
	_Atomic long long	 claimed;	/* fill: items handed out */
	_Atomic int		 settled;	/* idle: slots up or failed */
};

/* The response parser of one slot. */
enum resp_state {
	RESP_HDR,
	RESP_BODY_LEN,
	RESP_BODY_EOF,
	RESP_CHUNK_SIZE,
	RESP_CHUNK_DATA,
	RESP_CHUNK_CRLF,
	RESP_TRAILER,
	RESP_DONE
};

struct bench_resp {
	enum resp_state	 state;
	int		 status;
	int		 close;		/* server will close after it */
	uint64_t	 remain;	/* body or chunk bytes to come */
	uint64_t	 bytes;		/* all bytes of this response */
	size_t		 hlen;
	size_t		 llen;
	char		 line[128];	/* chunk-size or trailer line */
	char		 hdr[BENCH_HDR_MAX];
};

enum slot_state {
	SLOT_PENDING,		/* idle mode: not started yet */
	SLOT_WAIT,		/* backing off, or between phases */
	SLOT_CONNECTING,
	SLOT_HANDSHAKE,
	SLOT_SEND,
	SLOT_RECV,
	SLOT_IDLE,		/* idle mode: established, waiting */
	SLOT_DONE
};

struct bench_thread;

struct bench_slot {
	struct bench_thread	*thr;
	uint32_t		 idx;
	uint32_t		 gen;	/* tags the epoll events of one fd */
	enum slot_state		 state;
	int			 fd;
	SSL			*ssl;
	SSL_SESSION		*session;	/* the server's latest */
	int			 served;	/* responses, this connection */
	int			 got_bytes;	/* of the current response */
	int			 retried;	/* the request was resent */
	int			 reconnect;	/* the server closed: count */
	int64_t			 req_start;
	int64_t			 deadline;
	int64_t			 wake;
	size_t			 req_len;
	size_t			 req_off;
	const char		*req;
	char			 post[BENCH_REQ_MAX];
	struct bench_resp	 resp;
};

struct bench_thread {
	pthread_t		 tid;
	int			 id;
	struct bench_shared	*sh;
	int			 epfd;
	struct bench_slot	*slots;
	int			 nslots;
	int			 ndone;
	int			 nconnecting;
	unsigned char		*rbuf;
	struct bench_stats	 st;
	char			 errmsg[ERR_NKINDS][200];
};

/* bench_conn.c */
SSL_CTX		*conn_ctx_new(const struct bench_opts *, int);
void		*conn_thread_main(void *);
int64_t		 conn_now(void);

/* bench_resp.c */
void		 resp_init(struct bench_resp *);
/* Returns bytes consumed, or -1 with a reason in errbuf. */
ssize_t		 resp_feed(struct bench_resp *, const unsigned char *, size_t,
		    char *, size_t);
int		 resp_eof(struct bench_resp *);

#endif
