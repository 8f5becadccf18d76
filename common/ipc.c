#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"

#define IPC_READ_CHUNK	(64 * 1024)
#define IPC_FDS_PER_READ 16
#define IPC_IOV_MAX	64

void
ipc_init(struct ipc *ipc, int fd)
{
	memset(ipc, 0, sizeof(*ipc));
	ipc->fd = fd;
	ipc->pid = getpid();
	TAILQ_INIT(&ipc->wq);
}

/* Release buffers and unclaimed descriptors; the socket itself is closed. */
void
ipc_clear(struct ipc *ipc)
{
	struct ipc_wbuf	*wb;

	while ((wb = TAILQ_FIRST(&ipc->wq)) != NULL) {
		TAILQ_REMOVE(&ipc->wq, wb, entry);
		ipc_wbuf_free(wb);
	}
	while (ipc->nfdq > 0)
		close(ipc->fdq[--ipc->nfdq]);
	free(ipc->rbuf);
	if (ipc->fd != -1)
		close(ipc->fd);
	ipc_init(ipc, -1);
}

void
ipc_setmax(struct ipc *ipc, size_t max)
{
	ipc->wqmax = max;
}

/* Make room for at least want more bytes after rend. */
static int
ipc_rbuf_reserve(struct ipc *ipc, size_t want)
{
	uint8_t	*p;
	size_t	 used, size;

	if (ipc->rstart > 0) {
		used = ipc->rend - ipc->rstart;
		memmove(ipc->rbuf, ipc->rbuf + ipc->rstart, used);
		ipc->rstart = 0;
		ipc->rend = used;
	}
	if (ipc->rsize - ipc->rend >= want)
		return 0;
	size = ipc->rsize ? ipc->rsize : IPC_READ_CHUNK;
	while (size - ipc->rend < want)
		size *= 2;
	if (size > IPC_HDR_SIZE + IPC_MAX_PAYLOAD + IPC_READ_CHUNK)
		size = IPC_HDR_SIZE + IPC_MAX_PAYLOAD + IPC_READ_CHUNK;
	if (size - ipc->rend < want) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((p = realloc(ipc->rbuf, size)) == NULL)
		return -1;
	ipc->rbuf = p;
	ipc->rsize = size;
	return 0;
}

/* Bytes the message at rstart still needs, or a plain chunk if unknown. */
static size_t
ipc_rbuf_want(const struct ipc *ipc)
{
	struct ipc_hdr	 hdr;
	size_t		 have = ipc->rend - ipc->rstart;

	if (have < IPC_HDR_SIZE)
		return IPC_READ_CHUNK;
	memcpy(&hdr, ipc->rbuf + ipc->rstart, sizeof(hdr));
	if (hdr.len > IPC_MAX_PAYLOAD)
		return IPC_READ_CHUNK;	/* ipc_get reports it */
	if (have >= IPC_HDR_SIZE + hdr.len)
		return IPC_READ_CHUNK;
	return IPC_HDR_SIZE + hdr.len - have;
}

static int
ipc_take_fds(struct ipc *ipc, struct msghdr *mh)
{
	struct cmsghdr	*cm;
	int		*fds, i, n, bad = 0;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS)
			continue;
		fds = (int *)CMSG_DATA(cm);
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			if (ipc->nfdq < IPC_MAX_FDQ)
				ipc->fdq[ipc->nfdq++] = fds[i];
			else {
				close(fds[i]);
				bad = 1;
			}
		}
	}
	if (bad || (mh->msg_flags & MSG_CTRUNC)) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/*
 * Read what the socket has.  Returns bytes read, 0 on end of file, -1 on
 * error (errno; EAGAIN and EINTR are the caller's to retry).
 */
ssize_t
ipc_read(struct ipc *ipc)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) *
				    IPC_FDS_PER_READ)];
	} cmsgbuf;
	struct msghdr	 mh;
	struct iovec	 iov;
	ssize_t		 n;
	size_t		 want;

	want = ipc_rbuf_want(ipc);
	if (ipc_rbuf_reserve(ipc, want) == -1)
		return -1;
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = ipc->rbuf + ipc->rend;
	iov.iov_len = ipc->rsize - ipc->rend;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = &cmsgbuf.buf;
	mh.msg_controllen = sizeof(cmsgbuf.buf);
	n = recvmsg(ipc->fd, &mh, MSG_CMSG_CLOEXEC);
	if (n == -1)
		return -1;
	if (ipc_take_fds(ipc, &mh) == -1)
		return -1;
	ipc->rend += n;
	return n;
}

/*
 * Take the next whole message.  Returns 1 and fills msg, 0 when more bytes
 * are needed, -1 on a protocol error (errno EMSGSIZE or EBADMSG): the
 * channel cannot be trusted any more and should be dropped.
 */
int
ipc_get(struct ipc *ipc, struct ipc_msg *msg)
{
	struct ipc_hdr	 hdr;
	size_t		 have = ipc->rend - ipc->rstart;

	if (have < IPC_HDR_SIZE)
		return 0;
	memcpy(&hdr, ipc->rbuf + ipc->rstart, sizeof(hdr));
	if (hdr.len > IPC_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	if ((hdr.flags & ~IPC_F_MASK) != 0) {
		errno = EBADMSG;
		return -1;
	}
	if (have - IPC_HDR_SIZE < hdr.len)
		return 0;
	memset(msg, 0, sizeof(*msg));
	msg->hdr = hdr;
	msg->fd = -1;
	if (hdr.flags & IPC_F_FD) {
		if (ipc->nfdq == 0) {
			errno = EBADMSG;
			return -1;
		}
		msg->fd = ipc->fdq[0];
		memmove(ipc->fdq, ipc->fdq + 1,
		    --ipc->nfdq * sizeof(ipc->fdq[0]));
	}
	msg->data = ipc->rbuf + ipc->rstart + IPC_HDR_SIZE;
	msg->len = hdr.len;
	ipc->rstart += IPC_HDR_SIZE + hdr.len;
	return 1;
}

/*
 * Read once from the channel and give each whole message to fn, until
 * none is left or the channel is cleared (fn may clear it: a child that
 * broke the rules).  Returns 1 while the channel is open, 0 when the other
 * end closed it or reading failed (errno 0 for the end of file), -1 for a
 * malformed message (errno says how).
 */
int
ipc_read_all(struct ipc *ipc, void (*fn)(void *, struct ipc_msg *),
    void *arg)
{
	struct ipc_msg	 msg;
	ssize_t		 n;
	int		 r = 0;

	if ((n = ipc_read(ipc)) == -1 && (errno == EAGAIN || errno == EINTR))
		return 1;
	if (n <= 0) {
		if (n == 0)
			errno = 0;
		return 0;
	}
	while (ipc->fd != -1 && (r = ipc_get(ipc, &msg)) == 1) {
		fn(arg, &msg);
		ipc_msg_free(&msg);
	}
	return r == -1 ? -1 : 1;
}

void
ipc_msg_free(struct ipc_msg *msg)
{
	if (msg->fd != -1)
		close(msg->fd);
	msg->fd = -1;
}

struct ipc_wbuf *
ipc_create(uint32_t type, uint32_t peerid, size_t hint)
{
	struct ipc_wbuf	*wb;
	struct ipc_hdr	 hdr;

	if (hint > IPC_MAX_PAYLOAD)
		hint = IPC_MAX_PAYLOAD;
	if ((wb = calloc(1, sizeof(*wb))) == NULL)
		return NULL;
	wb->size = IPC_HDR_SIZE + (hint ? hint : 64);
	if ((wb->data = malloc(wb->size)) == NULL) {
		free(wb);
		return NULL;
	}
	memset(&hdr, 0, sizeof(hdr));
	hdr.type = type;
	hdr.peerid = peerid;
	memcpy(wb->data, &hdr, sizeof(hdr));
	wb->len = IPC_HDR_SIZE;
	wb->fd = -1;
	return wb;
}

int
ipc_add(struct ipc_wbuf *wb, const void *p, size_t n)
{
	uint8_t	*np;
	size_t	 size;

	if (wb->error)
		return -1;
	if (n > IPC_MAX_PAYLOAD || wb->len - IPC_HDR_SIZE > IPC_MAX_PAYLOAD - n) {
		wb->error = EMSGSIZE;
		errno = EMSGSIZE;
		return -1;
	}
	if (wb->size - wb->len < n) {
		size = wb->size;
		while (size - wb->len < n)
			size *= 2;
		if ((np = realloc(wb->data, size)) == NULL) {
			wb->error = errno;
			return -1;
		}
		wb->data = np;
		wb->size = size;
	}
	if (n > 0)
		memcpy(wb->data + wb->len, p, n);
	wb->len += n;
	return 0;
}

int
ipc_add_u8(struct ipc_wbuf *wb, uint8_t v)
{
	return ipc_add(wb, &v, sizeof(v));
}

int
ipc_add_u32(struct ipc_wbuf *wb, uint32_t v)
{
	return ipc_add(wb, &v, sizeof(v));
}

int
ipc_add_u64(struct ipc_wbuf *wb, uint64_t v)
{
	return ipc_add(wb, &v, sizeof(v));
}

int
ipc_add_i64(struct ipc_wbuf *wb, int64_t v)
{
	return ipc_add(wb, &v, sizeof(v));
}

/* A string travels as u32 length (terminator included) and its bytes. */
int
ipc_add_str(struct ipc_wbuf *wb, const char *s)
{
	return ipc_add_strn(wb, s, strlen(s));
}

/*
 * The first len bytes of s as a string: for text that is not terminated
 * where it ends (a database column).  It must hold no NUL of its own.
 */
int
ipc_add_strn(struct ipc_wbuf *wb, const char *s, size_t len)
{
	if (len >= UINT32_MAX || (len > 0 && memchr(s, '\0', len) != NULL)) {
		wb->error = len >= UINT32_MAX ? EMSGSIZE : EINVAL;
		errno = wb->error;
		return -1;
	}
	if (ipc_add_u32(wb, (uint32_t)(len + 1)) == -1 ||
	    ipc_add(wb, s, len) == -1)
		return -1;
	return ipc_add(wb, "", 1);
}

int
ipc_add_data(struct ipc_wbuf *wb, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		wb->error = EMSGSIZE;
		return -1;
	}
	if (ipc_add_u32(wb, (uint32_t)n) == -1)
		return -1;
	return ipc_add(wb, p, n);
}

void
ipc_wbuf_free(struct ipc_wbuf *wb)
{
	if (wb == NULL)
		return;
	if (wb->fd != -1)
		close(wb->fd);
	free(wb->data);
	free(wb);
}

/*
 * Queue a composed message.  The channel takes ownership of wb and of fd
 * (closed once sent, or at once on failure).
 */
int
ipc_send(struct ipc *ipc, struct ipc_wbuf *wb, int fd)
{
	struct ipc_hdr	 hdr;
	int		 err;

	if (wb->error || (ipc->wqmax != 0 &&
	    ipc->wqbytes + wb->len > ipc->wqmax) || ipc->fd == -1) {
		err = wb->error ? wb->error :
		    ipc->fd == -1 ? EPIPE : ENOBUFS;
		if (fd != -1)
			close(fd);
		ipc_wbuf_free(wb);
		errno = err;
		return -1;
	}
	memcpy(&hdr, wb->data, sizeof(hdr));
	hdr.len = wb->len - IPC_HDR_SIZE;
	hdr.flags = fd != -1 ? IPC_F_FD : 0;
	hdr.pid = ipc->pid;
	memcpy(wb->data, &hdr, sizeof(hdr));
	wb->fd = fd;
	wb->off = 0;
	TAILQ_INSERT_TAIL(&ipc->wq, wb, entry);
	ipc->wqbytes += wb->len;
	ipc->wqcount++;
	return 0;
}

int
ipc_compose(struct ipc *ipc, uint32_t type, uint32_t peerid, int fd,
    const void *p, size_t n)
{
	struct ipc_wbuf	*wb;

	if ((wb = ipc_create(type, peerid, n)) == NULL) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	if (ipc_add(wb, p, n) == -1) {
		/* ipc_send reports the error and releases both */
	}
	return ipc_send(ipc, wb, fd);
}

size_t
ipc_queued(const struct ipc *ipc)
{
	return ipc->wqbytes;
}

size_t
ipc_queued_msgs(const struct ipc *ipc)
{
	return ipc->wqcount;
}

/* One sendmsg: a message carrying a descriptor goes alone. */
static ssize_t
ipc_write_once(struct ipc *ipc)
{
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cmsgbuf;
	struct iovec	 iov[IPC_IOV_MAX];
	struct msghdr	 mh;
	struct cmsghdr	*cm;
	struct ipc_wbuf	*wb, *first;
	int		 n = 0;

	first = TAILQ_FIRST(&ipc->wq);
	memset(&mh, 0, sizeof(mh));
	for (wb = first; wb != NULL && n < IPC_IOV_MAX;
	    wb = TAILQ_NEXT(wb, entry)) {
		if (wb != first && wb->fd != -1)
			break;
		iov[n].iov_base = wb->data + wb->off;
		iov[n].iov_len = wb->len - wb->off;
		n++;
		if (wb->fd != -1)
			break;
	}
	mh.msg_iov = iov;
	mh.msg_iovlen = n;
	if (first->fd != -1) {
		memset(&cmsgbuf, 0, sizeof(cmsgbuf));
		mh.msg_control = &cmsgbuf.buf;
		mh.msg_controllen = sizeof(cmsgbuf.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(cm), &first->fd, sizeof(int));
	}
	return sendmsg(ipc->fd, &mh, MSG_NOSIGNAL);
}

/*
 * Write as much of the queue as the socket takes.  Returns 1 when the queue
 * is empty, 0 when the socket is full, -1 on error (errno).
 */
int
ipc_flush(struct ipc *ipc)
{
	struct ipc_wbuf	*wb;
	ssize_t		 n;
	size_t		 left;

	while ((wb = TAILQ_FIRST(&ipc->wq)) != NULL) {
		n = ipc_write_once(ipc);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -1;
		}
		/* The descriptor went with the first byte. */
		if (n > 0 && wb->fd != -1) {
			close(wb->fd);
			wb->fd = -1;
		}
		ipc->wqbytes -= n;
		left = n;
		while (left > 0 && (wb = TAILQ_FIRST(&ipc->wq)) != NULL) {
			if (left < wb->len - wb->off) {
				wb->off += left;
				break;
			}
			left -= wb->len - wb->off;
			TAILQ_REMOVE(&ipc->wq, wb, entry);
			ipc->wqcount--;
			ipc_wbuf_free(wb);
		}
	}
	return 1;
}

/* Flush, waiting up to timeout milliseconds (-1: forever) for room. */
int
ipc_flush_blocking(struct ipc *ipc, int timeout)
{
	struct pollfd	 pfd;
	struct timespec	 start, now;
	int		 r, left = timeout;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if ((r = ipc_flush(ipc)) != 0)
			return r;
		pfd.fd = ipc->fd;
		pfd.events = POLLOUT;
		r = poll(&pfd, 1, left);
		if (r == -1 && errno != EINTR)
			return -1;
		if (timeout >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = timeout - ((now.tv_sec - start.tv_sec) * 1000 +
			    (now.tv_nsec - start.tv_nsec) / 1000000);
			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
	}
}

int
ipc_get_raw(struct ipc_msg *msg, void *p, size_t n)
{
	if (msg->len - msg->off < n) {
		errno = EBADMSG;
		return -1;
	}
	memcpy(p, msg->data + msg->off, n);
	msg->off += n;
	return 0;
}

int
ipc_get_u8(struct ipc_msg *msg, uint8_t *v)
{
	return ipc_get_raw(msg, v, sizeof(*v));
}

int
ipc_get_u32(struct ipc_msg *msg, uint32_t *v)
{
	return ipc_get_raw(msg, v, sizeof(*v));
}

int
ipc_get_u64(struct ipc_msg *msg, uint64_t *v)
{
	return ipc_get_raw(msg, v, sizeof(*v));
}

int
ipc_get_i64(struct ipc_msg *msg, int64_t *v)
{
	return ipc_get_raw(msg, v, sizeof(*v));
}

int
ipc_get_data(struct ipc_msg *msg, const void **p, size_t *n)
{
	uint32_t	 len;
	size_t		 save = msg->off;

	if (ipc_get_u32(msg, &len) == -1)
		return -1;
	if (msg->len - msg->off < len) {
		msg->off = save;
		errno = EBADMSG;
		return -1;
	}
	*p = msg->data + msg->off;
	*n = len;
	msg->off += len;
	return 0;
}

/* A string must be terminated exactly at its end and hold no other NUL. */
int
ipc_get_str(struct ipc_msg *msg, const char **s)
{
	const void	*p;
	size_t		 n, save = msg->off;

	if (ipc_get_data(msg, &p, &n) == -1)
		return -1;
	if (n == 0 || ((const char *)p)[n - 1] != '\0' ||
	    memchr(p, '\0', n - 1) != NULL) {
		msg->off = save;
		errno = EBADMSG;
		return -1;
	}
	*s = p;
	return 0;
}

/* Every payload byte must have been consumed. */
int
ipc_get_end(struct ipc_msg *msg)
{
	if (msg->off != msg->len) {
		errno = EBADMSG;
		return -1;
	}
	return 0;
}

/* The whole payload is one fixed-size wire struct. */
int
ipc_get_fixed(struct ipc_msg *msg, void *p, size_t n)
{
	if (msg->len != n || msg->off != 0) {
		errno = EBADMSG;
		return -1;
	}
	memcpy(p, msg->data, n);
	msg->off = n;
	return 0;
}
