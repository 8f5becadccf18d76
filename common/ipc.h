/*
 * Framed messages between todod processes over a UNIX stream socket, in the
 * spirit of OpenBSD's imsg: a fixed header, an optional payload, and an
 * optional descriptor passed with SCM_RIGHTS.  Writes are queued and
 * flushed without blocking; reads fill a buffer from which whole messages
 * are taken.  Payloads are read with typed accessors that fail, rather than
 * guess, when the bytes do not fit.
 *
 * Wire format (host byte order: both ends are on one machine):
 *	uint32 type, uint32 len (payload bytes), uint32 flags,
 *	uint32 peerid, uint32 pid, then len bytes of payload.
 */
#ifndef TODOD_IPC_H
#define TODOD_IPC_H

#include <sys/types.h>
#include <sys/queue.h>

#include <stddef.h>
#include <stdint.h>

#define IPC_HDR_SIZE		20
#define IPC_MAX_PAYLOAD		(16U * 1024 * 1024)
#define IPC_F_FD		0x00000001U	/* a descriptor travels along */
#define IPC_F_MASK		IPC_F_FD
#define IPC_MAX_FDQ		64	/* received but unclaimed descriptors */

struct ipc_hdr {
	uint32_t	type;
	uint32_t	len;
	uint32_t	flags;
	uint32_t	peerid;
	uint32_t	pid;
};

/* A message being composed; also an entry of a channel's write queue. */
struct ipc_wbuf {
	TAILQ_ENTRY(ipc_wbuf)	 entry;
	uint8_t			*data;
	size_t			 len;	/* bytes in data, header included */
	size_t			 size;	/* bytes allocated */
	size_t			 off;	/* bytes already written */
	int			 fd;	/* -1 or the descriptor to pass */
	int			 error;	/* an add failed: refuse to queue */
};

/*
 * A received message.  data points into the channel's read buffer and
 * stays valid until the next ipc_read() on that channel.
 */
struct ipc_msg {
	struct ipc_hdr		 hdr;
	const uint8_t		*data;
	size_t			 len;
	size_t			 off;	/* read position for ipc_get_* */
	int			 fd;	/* -1 or a descriptor now owned by caller */
};

struct ipc {
	int			 fd;
	pid_t			 pid;	/* stamped on outgoing headers */
	uint8_t			*rbuf;
	size_t			 rsize;
	size_t			 rstart;	/* first unparsed byte */
	size_t			 rend;		/* end of data read */
	int			 fdq[IPC_MAX_FDQ];
	int			 nfdq;
	TAILQ_HEAD(, ipc_wbuf)	 wq;
	size_t			 wqbytes;
	size_t			 wqcount;	/* messages queued */
	size_t			 wqmax;	/* 0: unbounded */
};

void		 ipc_init(struct ipc *, int);
void		 ipc_clear(struct ipc *);
void		 ipc_setmax(struct ipc *, size_t);

ssize_t		 ipc_read(struct ipc *);
int		 ipc_get(struct ipc *, struct ipc_msg *);
int		 ipc_read_all(struct ipc *,
		    void (*)(void *, struct ipc_msg *), void *);
void		 ipc_msg_free(struct ipc_msg *);

struct ipc_wbuf	*ipc_create(uint32_t, uint32_t, size_t);
int		 ipc_add(struct ipc_wbuf *, const void *, size_t);
int		 ipc_add_u8(struct ipc_wbuf *, uint8_t);
int		 ipc_add_u32(struct ipc_wbuf *, uint32_t);
int		 ipc_add_u64(struct ipc_wbuf *, uint64_t);
int		 ipc_add_i64(struct ipc_wbuf *, int64_t);
int		 ipc_add_str(struct ipc_wbuf *, const char *);
int		 ipc_add_strn(struct ipc_wbuf *, const char *, size_t);
int		 ipc_add_data(struct ipc_wbuf *, const void *, size_t);
void		 ipc_wbuf_free(struct ipc_wbuf *);
int		 ipc_send(struct ipc *, struct ipc_wbuf *, int);
int		 ipc_compose(struct ipc *, uint32_t, uint32_t, int,
		    const void *, size_t);

int		 ipc_flush(struct ipc *);
int		 ipc_flush_blocking(struct ipc *, int);
size_t		 ipc_queued(const struct ipc *);
size_t		 ipc_queued_msgs(const struct ipc *);

int		 ipc_get_u8(struct ipc_msg *, uint8_t *);
int		 ipc_get_u32(struct ipc_msg *, uint32_t *);
int		 ipc_get_u64(struct ipc_msg *, uint64_t *);
int		 ipc_get_i64(struct ipc_msg *, int64_t *);
int		 ipc_get_str(struct ipc_msg *, const char **);
int		 ipc_get_data(struct ipc_msg *, const void **, size_t *);
int		 ipc_get_raw(struct ipc_msg *, void *, size_t);
int		 ipc_get_end(struct ipc_msg *);
int		 ipc_get_fixed(struct ipc_msg *, void *, size_t);

#endif
