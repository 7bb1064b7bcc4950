/* SPDX-License-Identifier: MIT */
/*
 * fuzz_replay - a plain main() for a fuzz target, for builds without
 * libFuzzer: feeds every file named on the command line (directories: every
 * regular file in them, in name order, dot-files skipped; a missing path is
 * skipped) through LLVMFuzzerTestOneInput, each in an exact-size buffer.
 * Used by `meson test` to replay the seed corpora and the kept crash inputs
 * (tests/fuzz/regress/<target>/) of every target in every build.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	FILE *f;
	size_t n;

	f = fopen(path, "rb");
	if (!f)
		return -errno;
	if (fstat(fileno(f), &st) < 0 || st.st_size < 0) {
		fclose(f);
		return -EIO;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	if (n != (size_t)st.st_size) {
		free(buf);
		return -EIO;
	}
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	unsigned long files = 0;

	for (int i = 1; i < argc; i++) {
		struct dirent **ents;
		struct stat st;
		char path[4096];
		int n;

		if (stat(argv[i], &st) < 0) {
			printf("skip %s: %s\n", argv[i], strerror(errno));
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (replay_file(argv[i]) < 0) {
				fprintf(stderr, "cannot read %s\n", argv[i]);
				return 1;
			}
			files++;
			continue;
		}
		n = scandir(argv[i], &ents, NULL, by_name);
		if (n < 0) {
			fprintf(stderr, "cannot list %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		for (int j = 0; j < n; j++) {
			if (ents[j]->d_name[0] != '.') {
				snprintf(path, sizeof(path), "%s/%s", argv[i], ents[j]->d_name);
				if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
					printf("replay %s\n", path);
					if (replay_file(path) < 0) {
						fprintf(stderr, "cannot read %s\n", path);
						return 1;
					}
					files++;
				}
			}
			free(ents[j]);
		}
		free(ents);
	}
	printf("replayed %lu inputs\n", files);
	return 0;
}
