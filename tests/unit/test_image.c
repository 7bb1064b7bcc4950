/* SPDX-License-Identifier: MIT */
/*
 * test_image - what cfserver --nvram accepts (cf_image.c): the dispatch from
 * the file type to a kind (devdax included: no device-DAX device exists on a
 * host without an NVDIMM, so its branch is checked here, not on a device),
 * and cf_image_open on paths it must refuse without changing them: a FIFO, a
 * directory, a symbolic link, a character device that is not devdax. The
 * block-device path runs on a loop device in tests/fault/nvram_dev.sh.
 * A DRAM image is resident when open returns, every page of it (cfnode's
 * warmed heap is test_persist's test_heap_warm).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_image.h"
#include "unit_mincore.h"

static int n_pass, n_fail;
#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (cond) {                                                                 \
			n_pass++;                                                           \
		} else {                                                                    \
			n_fail++;                                                           \
			fprintf(stderr, "%s:%d: FAIL %s\n", __FILE__, __LINE__, #cond);     \
		}                                                                           \
	} while (0)

static void test_classify(void)
{
	const char *what;

	CHECK(cf_image_classify(S_IFREG | 0600, 0, NULL) == CF_IMAGE_FILE);
	CHECK(cf_image_classify(S_IFBLK | 0660, 0, NULL) == CF_IMAGE_BLOCK);
	/* is_devdax only matters for a character device */
	CHECK(cf_image_classify(S_IFBLK | 0660, 1, NULL) == CF_IMAGE_BLOCK);
	CHECK(cf_image_classify(S_IFREG | 0600, 1, NULL) == CF_IMAGE_FILE);
	CHECK(cf_image_classify(S_IFCHR | 0600, 1, NULL) == CF_IMAGE_DEVDAX);
	what = NULL;
	CHECK(cf_image_classify(S_IFCHR | 0666, 0, &what) == -ENODEV && what && strstr(what, "character"));
	what = NULL;
	CHECK(cf_image_classify(S_IFIFO | 0600, 0, &what) == -ENODEV && what && strstr(what, "FIFO"));
	what = NULL;
	CHECK(cf_image_classify(S_IFSOCK | 0600, 0, &what) == -ENODEV && what && strstr(what, "socket"));
	what = NULL;
	CHECK(cf_image_classify(S_IFDIR | 0700, 1, &what) == -ENODEV && what && strstr(what, "directory"));
	what = NULL;
	CHECK(cf_image_classify(S_IFLNK | 0777, 1, &what) == -ELOOP && what && strstr(what, "symbolic link"));
	CHECK(cf_image_classify(0, 0, NULL) == -ENODEV);
	CHECK(!strcmp(cf_image_kind_str(CF_IMAGE_DEVDAX), "device-DAX"));
	CHECK(!strcmp(cf_image_kind_str(CF_IMAGE_BLOCK), "block device"));
}

/* cf_image_open(path) fails with want, says why, and leaves path as it was. */
static void refused(const char *path, int want, unsigned mode_before)
{
	struct cf_geometry g = {4, 4, 64, 64, 64 * 1024};
	struct cf_image im;
	struct stat st;
	int r = cf_image_open(&im, path, &g, 0);

	if (r != want)
		fprintf(stderr, "%s: got %d (%s), want %d\n", path, r, im.why, want);
	CHECK(r == want);
	CHECK(im.why[0] != '\0' && strstr(im.why, path));
	cf_image_close(&im);
	CHECK(lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == mode_before);
}

static void test_refused(void)
{
	char dir[] = "/tmp/cf-test-image.XXXXXX", p[256];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		n_fail++;
		return;
	}
	snprintf(p, sizeof(p), "%s/fifo", dir);
	CHECK(mkfifo(p, 0600) == 0);
	refused(p, -ENODEV, S_IFIFO);
	snprintf(p, sizeof(p), "%s/dir", dir);
	CHECK(mkdir(p, 0700) == 0);
	refused(p, -ENODEV, S_IFDIR);
	/* a symlink to a file that does not exist: the file must not be created through it */
	snprintf(p, sizeof(p), "%s/link", dir);
	CHECK(symlink("target", p) == 0);
	refused(p, -ELOOP, S_IFLNK);
	{
		char t[256];
		snprintf(t, sizeof(t), "%s/target", dir);
		CHECK(access(t, F_OK) < 0 && errno == ENOENT);
		unlink(t);
	}
	if (access("/dev/null", F_OK) == 0)
		refused("/dev/null", -ENODEV, S_IFCHR);
	/* a new regular file is created, formatted, and loads again */
	{
		struct cf_geometry g = {4, 4, 64, 64, 64 * 1024};
		struct cf_image im;
		snprintf(p, sizeof(p), "%s/img", dir);
		CHECK(cf_image_open(&im, p, &g, 0) == 0 && im.kind == CF_IMAGE_FILE && im.formatted);
		CHECK(im.persist_fn != NULL);
		cf_image_close(&im);
		CHECK(cf_image_open(&im, p, &g, 0) == 0 && im.kind == CF_IMAGE_FILE && !im.formatted);
		cf_image_close(&im);
		CHECK(cf_image_open(&im, NULL, &g, 0) == 0 && im.kind == CF_IMAGE_DRAM && !im.persist_fn);
		cf_image_close(&im);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/fifo", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/dir", dir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/link", dir);
	unlink(p);
	rmdir(dir);
}

static void test_resident(void)
{
	struct cf_geometry g = {4, 8, 64, 64, 1024 * 1024}; /* 8 logs of 1 MiB: most of the image never written */
	struct cf_image im;

	CHECK(cf_image_open(&im, NULL, &g, 0) == 0 && im.kind == CF_IMAGE_DRAM);
	CHECK(im.map.image_size > 8u << 20);
	CHECK(absent_pages(im.base, im.map.image_size) == 0);
	cf_image_close(&im);
}

int main(void)
{
	test_classify();
	test_refused();
	test_resident();
	printf("test_image: %d passed, %d failed\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}
