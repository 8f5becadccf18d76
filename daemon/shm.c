#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "shm.h"

/*
 * A zeroed, sealed segment of size bytes, mapped read-write for the caller.
 * Returns the memfd (to pass on) or -1.
 */
int
shm_create(const char *name, size_t size, void **map)
{
	int	 fd;

	if ((fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)) == -1)
		return -1;
	if (ftruncate(fd, size) == -1 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
	    F_SEAL_SEAL) == -1)
		goto fail;
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map == MAP_FAILED)
		goto fail;
	return fd;
 fail:
	close(fd);
	return -1;
}

/* Map a received segment; writable only if asked. The fd stays open. */
void *
shm_map(int fd, size_t size, int writable)
{
	struct stat	 st;
	void		*p;

	if (sandbox_fstat(fd, &st) == -1 || (size_t)st.st_size != size) {
		errno = EINVAL;
		return NULL;
	}
	if ((fcntl(fd, F_GET_SEALS) & F_SEAL_SHRINK) == 0) {
		errno = EPERM;
		return NULL;
	}
	p = mmap(NULL, size, writable ? PROT_READ | PROT_WRITE : PROT_READ,
	    MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

void
shm_unmap(void *p, size_t size)
{
	if (p != NULL)
		munmap(p, size);
}

int
met_status_index(int status)
{
	static const int	 codes[MET_NSTATUS] = MET_STATUSES;
	int			 i;

	for (i = 0; i < MET_NSTATUS; i++)
		if (codes[i] == status)
			return i;
	return -1;
}
