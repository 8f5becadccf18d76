/*
 * Keys the parent does not read itself: PKCS#11 URIs and their PIN
 * files, where the keyholder executable is, and a one-shot keyholder
 * that proves a token key is there (-n, start-up and reload run it).
 */
#ifndef TODOD_KHPROBE_H
#define TODOD_KHPROBE_H

#include <stddef.h>

#include <openssl/evp.h>

struct config;
struct config_tls;

int		 khprobe_is_p11(const char *);
const char	*khprobe_module(const struct config_tls *);
int		 khprobe_pin_path(const struct config_tls *, char *, size_t,
		    char *, size_t);
int		 khprobe_open_secret(const char *, char *, size_t);
void		 khprobe_exe(char *, size_t);
EVP_PKEY	*khprobe_key(const struct config *, char *, size_t);

#endif
