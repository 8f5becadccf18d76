/*
 * Run a libFuzzer target over the files of its corpus without libFuzzer:
 * `make check` replays every seed and every input that once crashed, under
 * the sanitizer build.  Prints one TAP line per corpus directory.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***) __attribute__((__weak__));

static int
replay_file(const char *path)
{
	FILE	*fp;
	uint8_t	*buf;
	long	 len;

	if ((fp = fopen(path, "rb")) == NULL)
		return -1;
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	if (len < 0 || (buf = malloc(len ? len : 1)) == NULL ||
	    fread(buf, 1, len, fp) != (size_t)len) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int
main(int argc, char *argv[])
{
	struct dirent	*de;
	DIR		*d;
	char		 path[4096];
	int		 i, n, bad, failed = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++) {
		n = bad = 0;
		if ((d = opendir(argv[i])) == NULL) {
			printf("not ok %d - %s: cannot open\n", i, argv[i]);
			failed++;
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i],
			    de->d_name);
			if (replay_file(path) == -1)
				bad++;
			n++;
		}
		closedir(d);
		printf("%sok %d - %s: %d inputs replayed\n",
		    bad || n == 0 ? "not " : "", i, argv[i], n);
		failed += bad || n == 0;
	}
	printf("1..%d\n", argc - 1);
	return failed ? 1 : 0;
}
