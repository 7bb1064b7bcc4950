/* SPDX-License-Identifier: MIT */
/*
 * fuzz_image - cfserver's image loader (cfserver/cf_image.c, --nvram PATH) on
 * an arbitrary file.
 *
 * Input: byte 0 = which geometry options the operator "gave" (explicit mask),
 * bytes 1-4 = file size (capped), then the file's first bytes (the rest of
 * the file is zero). The operator's geometry is the smallest legal one.
 * Checked, besides the sanitizers:
 *  - cf_image_open returns 0, -EBADMSG or -EINVAL (with a reason), or
 *    -ENOSPC/-errno from the system;
 *  - an image whose header page is not all zero is never modified, whatever
 *    the outcome ("it never overwrites an image it cannot validate", and an
 *    accepted one is only mapped);
 *  - an all-zero header page is formatted: afterwards the header passes
 *    cf_header_check with the operator's geometry;
 *  - an accepted image's map is its header's geometry and fits the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_image.h"
#include "cf_layout.h"
#include "fuzz.h"

#define MAX_FILE (2u << 20)

static char path[64];
static uint8_t before[MAX_FILE], after[MAX_FILE];

static int write_file(const uint8_t *content, size_t n, uint64_t fsize)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if ((n && write(fd, content, n) != (ssize_t)n) || ftruncate(fd, (off_t)fsize) < 0) {
		close(fd);
		return -EIO;
	}
	close(fd);
	return 0;
}

static ssize_t read_file(uint8_t *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, total = 0;

	if (fd < 0)
		return -errno;
	while ((size_t)total < cap && (n = read(fd, buf + total, cap - (size_t)total)) > 0)
		total += n;
	close(fd);
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct cf_geometry geo = {1, 1, CF_LOCK_ENTRIES_MIN, CF_RECORD_ENTRIES_MIN, CF_LOG_SIZE_MIN};
	struct cf_image im;
	uint32_t fsize32;
	uint64_t fsize;
	size_t n;
	ssize_t nb, na;
	int zero_hdr = 1, r;

	if (size < 5)
		return 0;
	if (!path[0])
		snprintf(path, sizeof(path), "/dev/shm/cfplex-fuzz-image-%d", (int)getpid());
	memcpy(&fsize32, data + 1, 4);
	fsize = fsize32 % (MAX_FILE + 1);
	n = size - 5 < fsize ? size - 5 : (size_t)fsize;
	FUZZ_ASSERT(write_file(data + 5, n, fsize) == 0);
	for (size_t i = 0; i < n && i < CF_PAGE; i++)
		zero_hdr &= data[5 + i] == 0;
	nb = read_file(before, sizeof(before));
	FUZZ_ASSERT(nb == (ssize_t)fsize);

	r = cf_image_open(&im, path, &geo, data[0] & 0x1fu);
	if (r == 0) {
		struct cf_header *h = cf_image_header(&im);
		const char *why = NULL;
		FUZZ_ASSERT(cf_header_check(h, im.size, &why) == 0);
		FUZZ_ASSERT(memcmp(&im.map.geo, &h->geo, sizeof(h->geo)) == 0);
		FUZZ_ASSERT(im.map.image_size <= im.size);
		if (zero_hdr && fsize >= CF_PAGE)
			FUZZ_ASSERT(im.formatted);
	} else {
		FUZZ_ASSERT(r == -EBADMSG || r == -EINVAL || r == -ENOSPC || r == -ENOMEM || r == -EIO);
		FUZZ_ASSERT(im.why[0] != 0);
		FUZZ_ASSERT(!zero_hdr || fsize < CF_PAGE || r != -EBADMSG);
	}
	cf_image_close(&im);
	if (!zero_hdr) {
		/* an existing image is never rewritten (and a refused one not resized) */
		na = read_file(after, sizeof(after));
		FUZZ_ASSERT(na == nb && memcmp(before, after, (size_t)na) == 0);
	}
	unlink(path);
	return 0;
}
