/* Unit tests for the message layer (common/ipc.c). */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "ipc.h"
#include "ipcpair.h"
#include "tap.h"

static void
test_roundtrip(void)
{
	struct ipc	 a, b;
	struct ipc_wbuf	*wb;
	struct ipc_msg	 m;
	uint32_t	 u32;
	uint64_t	 u64;
	int64_t		 i64;
	uint8_t		 u8;
	const char	*s;
	const void	*d;
	size_t		 n;

	pair(&a, &b);
	wb = ipc_create(7, 42, 0);
	ipc_add_u32(wb, 0xdeadbeef);
	ipc_add_u64(wb, 1ULL << 40);
	ipc_add_i64(wb, -5);
	ipc_add_u8(wb, 1);
	ipc_add_str(wb, "hello");
	ipc_add_data(wb, "\0\1\2", 3);
	TAP_OK(ipc_send(&a, wb, -1) == 0, "send typed message");
	TAP_OK(ipc_flush(&a) == 1, "flush completes");
	TAP_OK(recv1(&b, &m) == 1, "message received");
	TAP_OK(m.hdr.type == 7 && m.hdr.peerid == 42 &&
	    m.hdr.pid == (uint32_t)getpid(), "header type, peerid, pid");
	TAP_OK(ipc_get_u32(&m, &u32) == 0 && u32 == 0xdeadbeef, "u32");
	TAP_OK(ipc_get_u64(&m, &u64) == 0 && u64 == 1ULL << 40, "u64");
	TAP_OK(ipc_get_i64(&m, &i64) == 0 && i64 == -5, "i64");
	TAP_OK(ipc_get_u8(&m, &u8) == 0 && u8 == 1, "u8");
	TAP_OK(ipc_get_str(&m, &s) == 0 && strcmp(s, "hello") == 0, "str");
	TAP_OK(ipc_get_data(&m, &d, &n) == 0 && n == 3 &&
	    memcmp(d, "\0\1\2", 3) == 0, "data with NUL bytes");
	TAP_OK(ipc_get_end(&m) == 0, "all bytes consumed");
	TAP_OK(ipc_get_u8(&m, &u8) == -1, "read past end fails");
	TAP_OK(ipc_get(&b, &m) == 0, "no further message");
	ipc_clear(&a);
	ipc_clear(&b);
}

static void
test_accessor_errors(void)
{
	struct ipc	 a, b;
	struct ipc_wbuf	*wb;
	struct ipc_msg	 m;
	const char	*s;
	uint32_t	 u32;
	char		 fixed[8];

	pair(&a, &b);
	/* a string whose length says 6 but lacks its terminator */
	wb = ipc_create(1, 0, 0);
	ipc_add_u32(wb, 6);
	ipc_add(wb, "abcdef", 6);
	ipc_send(&a, wb, -1);
	/* a string with an embedded NUL */
	wb = ipc_create(2, 0, 0);
	ipc_add_u32(wb, 4);
	ipc_add(wb, "a\0b", 4);
	ipc_send(&a, wb, -1);
	/* a length longer than the payload */
	wb = ipc_create(3, 0, 0);
	ipc_add_u32(wb, 100);
	ipc_add(wb, "xy", 2);
	ipc_send(&a, wb, -1);
	/* trailing bytes */
	wb = ipc_create(4, 0, 0);
	ipc_add_u32(wb, 1);
	ipc_add_u8(wb, 9);
	ipc_send(&a, wb, -1);
	/* wrong size for a fixed struct */
	ipc_compose(&a, 5, 0, -1, "1234567", 7);
	ipc_flush(&a);

	TAP_OK(recv1(&b, &m) == 1 && ipc_get_str(&m, &s) == -1 &&
	    m.off == 0, "unterminated string rejected, offset kept");
	TAP_OK(recv1(&b, &m) == 1 && ipc_get_str(&m, &s) == -1,
	    "embedded NUL rejected");
	TAP_OK(recv1(&b, &m) == 1 && ipc_get_str(&m, &s) == -1,
	    "string length beyond payload rejected");
	TAP_OK(recv1(&b, &m) == 1 && ipc_get_u32(&m, &u32) == 0 &&
	    ipc_get_end(&m) == -1, "trailing bytes detected");
	TAP_OK(recv1(&b, &m) == 1 && ipc_get_fixed(&m, fixed, 8) == -1,
	    "fixed struct of wrong size rejected");
	ipc_clear(&a);
	ipc_clear(&b);
}

static void
test_fd_passing(void)
{
	struct ipc	 a, b;
	struct ipc_msg	 m;
	struct stat	 st1, st2;
	int		 fd, fd2, i, got = 0;
	char		 path[] = "/tmp/todod-ipc-XXXXXX";

	pair(&a, &b);
	fd = mkstemp(path);
	unlink(path);
	fstat(fd, &st1);
	TAP_OK(ipc_compose(&a, 9, 1, dup(fd), "x", 1) == 0,
	    "compose with descriptor");
	for (i = 0; i < 5; i++)
		ipc_compose(&a, 10, i, -1, NULL, 0);
	ipc_compose(&a, 11, 2, dup(fd), NULL, 0);
	TAP_OK(ipc_flush(&a) == 1, "flush with descriptors");
	TAP_OK(recv1(&b, &m) == 1 && m.fd != -1, "descriptor arrives");
	fstat(m.fd, &st2);
	TAP_OK(st1.st_ino == st2.st_ino && st1.st_dev == st2.st_dev,
	    "same open file");
	fd2 = m.fd;
	m.fd = -1;
	close(fd2);
	for (i = 0; i < 5; i++)
		if (recv1(&b, &m) == 1 && m.fd == -1 && m.hdr.type == 10)
			got++;
	TAP_OK(got == 5, "messages without descriptors in between");
	TAP_OK(recv1(&b, &m) == 1 && m.hdr.type == 11 && m.fd != -1,
	    "second descriptor matched to its message");
	ipc_msg_free(&m);
	TAP_OK(m.fd == -1, "ipc_msg_free closes an unclaimed descriptor");
	close(fd);
	ipc_clear(&a);
	ipc_clear(&b);
}

/* A message header claiming a descriptor that never came. */
static void
test_missing_fd(void)
{
	struct ipc	 a, b;
	struct ipc_msg	 m;
	struct ipc_hdr	 h;

	pair(&a, &b);
	memset(&h, 0, sizeof(h));
	h.type = 1;
	h.flags = IPC_F_FD;
	write(a.fd, &h, sizeof(h));
	TAP_OK(recv1(&b, &m) == -1 && errno == EBADMSG,
	    "header with fd flag but no descriptor is an error");
	ipc_clear(&a);
	ipc_clear(&b);
}

static void
test_malformed(void)
{
	struct ipc	 a, b;
	struct ipc_msg	 m;
	struct ipc_hdr	 h;

	pair(&a, &b);
	memset(&h, 0, sizeof(h));
	h.len = IPC_MAX_PAYLOAD + 1;
	write(a.fd, &h, sizeof(h));
	TAP_OK(recv1(&b, &m) == -1 && errno == EMSGSIZE,
	    "oversize length in header reported as EMSGSIZE");
	ipc_clear(&a);
	ipc_clear(&b);

	pair(&a, &b);
	memset(&h, 0, sizeof(h));
	h.flags = 0x80;
	write(a.fd, &h, sizeof(h));
	TAP_OK(recv1(&b, &m) == -1 && errno == EBADMSG,
	    "unknown header flag rejected");
	ipc_clear(&a);
	ipc_clear(&b);

	/* truncated: header says 100 bytes, peer sends 10 and closes */
	pair(&a, &b);
	memset(&h, 0, sizeof(h));
	h.len = 100;
	write(a.fd, &h, sizeof(h));
	write(a.fd, "0123456789", 10);
	close(a.fd);
	a.fd = -1;
	TAP_OK(recv1(&b, &m) == 0, "truncated message never delivered");
	TAP_OK(ipc_read(&b) == 0, "then end of file");
	ipc_clear(&a);
	ipc_clear(&b);

	/* half a header */
	pair(&a, &b);
	write(a.fd, "abc", 3);
	TAP_OK(recv1(&b, &m) == 0, "partial header waits");
	ipc_clear(&a);
	ipc_clear(&b);
}

static void
test_oversize_send(void)
{
	struct ipc	 a, b;
	struct ipc_wbuf	*wb;
	char		*big;

	pair(&a, &b);
	big = calloc(1, IPC_MAX_PAYLOAD + 1);
	wb = ipc_create(1, 0, 0);
	TAP_OK(ipc_add(wb, big, IPC_MAX_PAYLOAD + 1) == -1 &&
	    errno == EMSGSIZE, "adding beyond the maximum fails");
	TAP_OK(ipc_send(&a, wb, -1) == -1 && errno == EMSGSIZE,
	    "a failed message is refused by send");
	TAP_OK(ipc_queued(&a) == 0, "nothing queued");
	free(big);
	ipc_clear(&a);
	ipc_clear(&b);
}

/*
 * A payload of several MiB goes through a small socket buffer: the writer
 * sees partial writes, the reader partial reads, and the bytes survive.
 */
static void
test_large_partial(void)
{
	struct ipc	 a, b;
	struct ipc_msg	 m;
	uint8_t		*big;
	const void	*d;
	size_t		 n, i, len = 6 * 1024 * 1024;
	int		 sz = 4096, r, partial = 0, rounds = 0, got = 0;

	pair(&a, &b);
	setsockopt(a.fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(b.fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	big = malloc(len);
	for (i = 0; i < len; i++)
		big[i] = (uint8_t)(i * 7 + (i >> 13));
	TAP_OK(ipc_compose(&a, 3, 0, -1, big, len) == 0, "compose 6 MiB");
	ipc_compose(&a, 4, 0, -1, "tail", 4);
	while (rounds++ < 1000000 && got < 2) {
		r = ipc_flush(&a);
		if (r == 0)
			partial++;
		if (r == -1)
			break;
		if (ipc_read(&b) == -1 && errno != EAGAIN)
			break;
		while (got < 2 && ipc_get(&b, &m) == 1) {
			if (got == 0)
				TAP_OK(m.hdr.type == 3 && m.len == len &&
				    memcmp(m.data, big, len) == 0,
				    "6 MiB payload intact");
			else
				TAP_OK(m.hdr.type == 4 &&
				    ipc_get_raw(&m, (void *)&d, 0) == 0,
				    "following message intact");
			got++;
		}
	}
	TAP_OK(got == 2, "both messages delivered");
	TAP_OK(partial > 0, "writer saw partial writes (%d)", partial);
	(void)n;
	free(big);
	ipc_clear(&a);
	ipc_clear(&b);
}

static void
test_queue_limit(void)
{
	struct ipc	 a, b;
	char		 buf[1000];

	pair(&a, &b);
	memset(buf, 'x', sizeof(buf));
	ipc_setmax(&a, 2500);
	TAP_OK(ipc_compose(&a, 1, 0, -1, buf, sizeof(buf)) == 0 &&
	    ipc_compose(&a, 1, 0, -1, buf, sizeof(buf)) == 0,
	    "queue under its limit");
	TAP_OK(ipc_compose(&a, 1, 0, -1, buf, sizeof(buf)) == -1 &&
	    errno == ENOBUFS, "queue over its limit refused with ENOBUFS");
	ipc_clear(&a);
	ipc_clear(&b);
}

/* Byte-at-a-time delivery: every partial header and payload is waited for. */
static void
test_byte_by_byte(void)
{
	struct ipc	 a, b, c, d;
	struct ipc_wbuf	*wb;
	struct ipc_msg	 m;
	const char	*s;
	uint8_t		 wire[1024];
	size_t		 wlen = 0, i;
	ssize_t		 n;
	int		 got = 0, early = 0;

	pair(&a, &b);
	for (i = 0; i < 3; i++) {
		wb = ipc_create(20 + i, i, 0);
		ipc_add_str(wb, "piece");
		ipc_send(&a, wb, -1);
	}
	ipc_flush(&a);
	while ((n = read(b.fd, wire + wlen, sizeof(wire) - wlen)) > 0)
		wlen += n;
	pair(&c, &d);
	for (i = 0; i < wlen; i++) {
		write(c.fd, wire + i, 1);
		if (ipc_read(&d) != 1)
			break;
		while (ipc_get(&d, &m) == 1) {
			if (i + 1 != wlen && got == 2)
				early++;
			if (m.hdr.type == (uint32_t)(20 + got) &&
			    ipc_get_str(&m, &s) == 0 &&
			    strcmp(s, "piece") == 0 && ipc_get_end(&m) == 0)
				got++;
		}
	}
	TAP_OK(got == 3 && early == 0,
	    "three messages reassembled from %zu single bytes", wlen);
	ipc_clear(&a);
	ipc_clear(&b);
	ipc_clear(&c);
	ipc_clear(&d);
}

int
main(void)
{
	test_roundtrip();
	test_accessor_errors();
	test_fd_passing();
	test_missing_fd();
	test_malformed();
	test_oversize_send();
	test_large_partial();
	test_queue_limit();
	test_byte_by_byte();
	return tap_done();
}
