/*
 * Minimal TAP output for the C unit tests: each check prints "ok N - what"
 * or "not ok N - what"; regress/run counts those lines.
 */
#ifndef TODOD_TAP_H
#define TODOD_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	tap_n, tap_failed;

#define TAP_OK(cond, ...) do {						\
	int _c = (cond) ? 1 : 0;					\
	tap_n++;							\
	if (!_c)							\
		tap_failed++;						\
	printf("%sok %d - ", _c ? "" : "not ", tap_n);			\
	printf(__VA_ARGS__);						\
	if (!_c)							\
		printf(" (%s:%d: %s)", __FILE__, __LINE__, #cond);	\
	printf("\n");							\
	fflush(stdout);							\
} while (0)

/* Whether a line of file (a log, a client's output) contains needle. */
static inline int
tap_file_has(const char *file, const char *needle)
{
	char	 line[1024];
	FILE	*fp;
	int	 found = 0;

	if ((fp = fopen(file, "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL)
		found = strstr(line, needle) != NULL;
	fclose(fp);
	return found;
}

/*
 * Run a shell command (the tests make their PKI with the openssl command);
 * 0 if it exits 0, -1 otherwise or if the command does not fit.
 */
static inline int
tap_run(const char *fmt, ...)
{
	char	 cmd[4096];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
