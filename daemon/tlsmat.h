/*
 * TLS material: the certificate chain, CA and CRL files the parent reads
 * for the workers, and the one set of helpers that reads PEM, CRLs and
 * ASN.1 times for every part of todod (validator, dry run, workers).
 */
#ifndef TODOD_TLSMAT_H
#define TODOD_TLSMAT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "buf.h"

struct config;

#define TLSMAT_FILE_MAX	(16 * 1024 * 1024)	/* certificate, CA, CRL */
/* The end of the message for a certificate file that holds a key. */
#define TLSMAT_SWAPPED	"are the certificate and key files swapped?"

/* What the workers get for TLS, read from the files by the parent. */
struct tlsmat {
	struct buf	 cert;		/* PEM chain */
	struct buf	 ca;
	struct buf	 crl;		/* empty: none */
	struct buf	 keyref;	/* after the keyholders answer */
	struct buf	 staple;	/* OCSP response DER; empty: none */
	uint8_t		*spki;		/* the certificate's public key, DER */
	size_t		 spkilen;
	uint32_t	 keyid;
	uint64_t	 policy;	/* hash of CA, CRL and rules */
	time_t		 cert_notafter;
	time_t		 ca_notafter;	/* the first CA certificate to expire */
	time_t		 crl_nextupdate;	/* 0: no CRL */
};

/* ASN.1 time to time_t (0 if it does not convert). */
time_t		 tlsmat_time(const ASN1_TIME *);
/* "2026-12-03 10:31:08 UTC" */
void		 tlsmat_time_str(time_t, char *, size_t);

/* A whole regular file into b (at most TLSMAT_FILE_MAX); err says why. */
int		 tlsmat_read_file(const char *, struct buf *, char *, size_t);
/* Every certificate of a PEM buffer, in order; NULL if none parses. */
STACK_OF(X509)	*tlsmat_pem_certs(const void *, size_t);
/* The first certificate only (a peer chain's leaf). */
X509		*tlsmat_pem_cert(const void *, size_t);
/* Every CRL of a PEM buffer; NULL if none parses. */
STACK_OF(X509_CRL) *tlsmat_pem_crls(const void *, size_t);
/* The name of the first PEM block ("CERTIFICATE", ...) or NULL. */
int		 tlsmat_pem_first(const void *, size_t, char *, size_t);

/*
 * Read and check the certificate, CA and CRL files of conf; err names
 * the setting, the file and what to do.  See todod.conf(5), FILES CHECKED.
 */
struct tlsmat	*tlsmat_load(const struct config *, char *, size_t);
void		 tlsmat_free(struct tlsmat *);
/* A store that verifies clients as the workers' libtls does. */
X509_STORE	*tlsmat_store(const struct tlsmat *);
/* Warn about what expires soon (start, reload, -n, once a day). */
void		 tlsmat_warn_expiry(const struct config *,
		    const struct tlsmat *);

#endif
