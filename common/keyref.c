#include <sys/types.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "keyref.h"

/* The SPKI must be one DER SEQUENCE filling the rest of the body. */
static int
keyref_check_der(const uint8_t *p, size_t len)
{
	size_t	 n, hdr, i, nlen;

	if (len < 2 || p[0] != 0x30)
		return -1;
	if (p[1] < 0x80) {
		n = p[1];
		hdr = 2;
	} else {
		nlen = p[1] & 0x7f;
		if (nlen == 0 || nlen > 2 || len < 2 + nlen)
			return -1;
		for (n = 0, i = 0; i < nlen; i++)
			n = n << 8 | p[2 + i];
		hdr = 2 + nlen;
	}
	return n == len - hdr ? 0 : -1;
}

/*
 * Check a reference body.  On success *spki points into body; the SPKI
 * is checked for framing only: callers parse it with d2i_PUBKEY.
 */
int
keyref_parse(const uint8_t *body, size_t len, uint32_t *keyid,
    const uint8_t **spki, size_t *spkilen)
{
	if (len < 5 || body[0] != KEYREF_VERSION ||
	    len - 5 > KEYREF_MAX_SPKI || keyref_check_der(body + 5,
	    len - 5) == -1)
		return -1;
	*keyid = (uint32_t)body[1] << 24 | (uint32_t)body[2] << 16 |
	    (uint32_t)body[3] << 8 | body[4];
	*spki = body + 5;
	*spkilen = len - 5;
	return 0;
}

/* Build the PEM reference; *pem is NUL-terminated, free() it. */
int
keyref_encode(uint32_t keyid, const uint8_t *spki, size_t spkilen,
    char **pem, size_t *pemlen)
{
	BIO		*bio = NULL;
	BUF_MEM		*mem;
	uint8_t		*body;
	int		 ok = 0;

	if (spkilen > KEYREF_MAX_SPKI || keyref_check_der(spki,
	    spkilen) == -1 || (body = malloc(spkilen + 5)) == NULL)
		return -1;
	body[0] = KEYREF_VERSION;
	body[1] = keyid >> 24;
	body[2] = keyid >> 16;
	body[3] = keyid >> 8;
	body[4] = keyid;
	memcpy(body + 5, spki, spkilen);
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    PEM_write_bio(bio, KEYREF_PEM_NAME, "", body,
	    (long)spkilen + 5) <= 0 || BIO_get_mem_ptr(bio, &mem) != 1 ||
	    (*pem = malloc(mem->length + 1)) == NULL)
		goto fail;
	memcpy(*pem, mem->data, mem->length);
	(*pem)[mem->length] = '\0';
	*pemlen = mem->length;
	ok = 1;
 fail:
	BIO_free(bio);
	free(body);
	return ok ? 0 : -1;
}

/*
 * Read the first PEM block of pem, which must be a reference.  *spki is
 * allocated (free() it).
 */
int
keyref_decode(const char *pem, size_t pemlen, uint32_t *keyid,
    uint8_t **spki, size_t *spkilen)
{
	BIO		*bio;
	char		*name = NULL, *header = NULL;
	unsigned char	*data = NULL;
	const uint8_t	*p;
	long		 len = 0;
	int		 ok = 0;

	if (pemlen > 64 * 1024 || (bio = BIO_new_mem_buf(pem,
	    (int)pemlen)) == NULL)
		return -1;
	if (PEM_read_bio(bio, &name, &header, &data, &len) != 1 ||
	    strcmp(name, KEYREF_PEM_NAME) != 0 || header[0] != '\0' ||
	    keyref_parse(data, len, keyid, &p, spkilen) == -1 ||
	    (*spki = malloc(*spkilen)) == NULL)
		goto fail;
	memcpy(*spki, p, *spkilen);
	ok = 1;
 fail:
	ERR_clear_error();
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	return ok ? 0 : -1;
}
