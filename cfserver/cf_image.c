/* SPDX-License-Identifier: MIT */
#include "cf_image.h"

#include <errno.h>
#include <fcntl.h>
#include <libpmem2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_util.h"

/* known_zero: the memory is fresh zero pages (anonymous map, new sparse file). */
static void format(struct cf_image *im, const struct cf_geometry *geo, int known_zero)
{
	struct cf_header *h = cf_image_header(im);

	/*
	 * Plain stores: nobody can reach the image yet. Every word the protocol
	 * CASes starts at 0, which is FREE for system and instance words and
	 * free for lock words. Fresh pages are zero already: touching them all
	 * would only commit memory.
	 */
	if (!known_zero)
		memset(im->base, 0, im->map.image_size);
	cf_header_init(h, geo, cf_real_ns());
	im->formatted = 1;
}

static int page_is_zero(const void *p)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < CF_PAGE / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

static int geo_compare(struct cf_image *im, const struct cf_geometry *have, const struct cf_geometry *want,
		       unsigned mask)
{
	const char *field = NULL;
	unsigned long long a = 0, b = 0;

	if ((mask & CF_GEO_SYSTEMS) && have->max_systems != want->max_systems)
		field = "max-systems", a = have->max_systems, b = want->max_systems;
	else if ((mask & CF_GEO_INSTANCES) && have->max_instances != want->max_instances)
		field = "max-instances", a = have->max_instances, b = want->max_instances;
	else if ((mask & CF_GEO_LOCKS) && have->lock_entries != want->lock_entries)
		field = "lock-entries", a = have->lock_entries, b = want->lock_entries;
	else if ((mask & CF_GEO_RECORDS) && have->record_entries != want->record_entries)
		field = "record-entries", a = have->record_entries, b = want->record_entries;
	else if ((mask & CF_GEO_LOGSIZE) && have->log_size != want->log_size)
		field = "log-size", a = have->log_size, b = want->log_size;
	if (!field)
		return 0;
	snprintf(im->why, sizeof(im->why), "geometry mismatch: image has %s %llu, option says %llu", field, a, b);
	return -EINVAL;
}

static int open_dram(struct cf_image *im, const struct cf_geometry *geo)
{
	void *p = mmap(NULL, im->map.image_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		snprintf(im->why, sizeof(im->why), "mmap %llu bytes: %s",
			 (unsigned long long)im->map.image_size, strerror(errno));
		return -errno;
	}
	im->base = p;
	im->size = im->map.image_size;
	format(im, geo, 1);
	return 0;
}

static int map_pmem(struct cf_image *im)
{
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;
	int r;

	r = pmem2_config_new(&cfg);
	if (r)
		goto err;
	r = pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	if (r)
		goto err_cfg;
	r = pmem2_source_from_fd(&src, im->fd);
	if (r)
		goto err_cfg;
	r = pmem2_map_new(&im->pmap, cfg, src);
	if (r)
		goto err_src;
	im->base = pmem2_map_get_address(im->pmap);
	im->size = pmem2_map_get_size(im->pmap);
	im->persist_fn = pmem2_get_persist_fn(im->pmap);
err_src:
	pmem2_source_delete(&src);
err_cfg:
	pmem2_config_delete(&cfg);
err:
	if (r) {
		snprintf(im->why, sizeof(im->why), "libpmem2: %s", pmem2_errormsg());
		return r < 0 && r > -4096 ? r : -EIO;
	}
	return 0;
}

static int open_nvram(struct cf_image *im, const char *path, const struct cf_geometry *geo, unsigned mask)
{
	struct cf_header *h;
	const char *why = NULL;
	struct stat st;
	int r, regular, fresh = 0;

	im->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (im->fd < 0) {
		r = -errno;
		snprintf(im->why, sizeof(im->why), "open %s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(im->fd, &st) < 0)
		goto err_errno;
	regular = S_ISREG(st.st_mode);
	if (regular && st.st_size == 0) {
		/*
		 * Allocate every block now: a sparse file on a full filesystem
		 * would map fine and then kill the server with SIGBUS at the
		 * first store to an unbacked page.
		 */
		r = posix_fallocate(im->fd, 0, (off_t)im->map.image_size);
		if (r) {
			snprintf(im->why, sizeof(im->why), "%s: cannot allocate %llu bytes for the image: %s", path,
				 (unsigned long long)im->map.image_size, strerror(r));
			if (ftruncate(im->fd, 0) < 0) /* leave an empty file, as found */
				r = errno;
			return -r;
		}
		fresh = 1; /* fresh blocks read as zeros */
	} else if (regular && st.st_size < (off_t)CF_PAGE) {
		snprintf(im->why, sizeof(im->why), "%s: %lld bytes, smaller than a CF image header page", path,
			 (long long)st.st_size);
		return CF_CORRUPT();
	}
	r = map_pmem(im);
	if (r < 0)
		return r;
	h = cf_image_header(im);
	if (page_is_zero(h)) {
		/* new or never formatted: size it for the geometry, format, persist */
		if (im->size < im->map.image_size) {
			if (!regular) {
				snprintf(im->why, sizeof(im->why), "%s: device has %llu bytes, geometry needs %llu",
					 path, (unsigned long long)im->size,
					 (unsigned long long)im->map.image_size);
				return -ENOSPC;
			}
			pmem2_map_delete(&im->pmap);
			r = posix_fallocate(im->fd, 0, (off_t)im->map.image_size);
			if (r) {
				snprintf(im->why, sizeof(im->why), "%s: cannot allocate %llu bytes for the image: %s",
					 path, (unsigned long long)im->map.image_size, strerror(r));
				return -r;
			}
			r = map_pmem(im);
			if (r < 0)
				return r;
			h = cf_image_header(im);
		}
		format(im, geo, fresh);
		cf_image_persist(im, 0, im->map.image_size);
		return 0;
	}
	if (cf_header_check(h, im->size, &why) < 0) {
		snprintf(im->why, sizeof(im->why), "%s: %s", path, why ? why : "invalid header");
		return -EBADMSG;
	}
	r = geo_compare(im, &h->geo, geo, mask);
	if (r < 0)
		return r;
	cf_image_map(&h->geo, &im->map);
	/* a header that checks out says nothing about the words behind it */
	if (cf_image_body_check(im->base, &im->map, &im->body) < 0) {
		snprintf(im->why, sizeof(im->why), "%s: %s", path, im->body.first_server);
		return -EBADMSG;
	}
	return 0;
err_errno:
	r = -errno;
	snprintf(im->why, sizeof(im->why), "%s: %s", path, strerror(errno));
	return r;
}

int cf_image_open(struct cf_image *im, const char *path, const struct cf_geometry *geo, unsigned explicit_mask)
{
	const char *why = NULL;

	memset(im, 0, sizeof(*im));
	im->fd = -1;
	if (cf_geometry_check(geo, &why) < 0) {
		snprintf(im->why, sizeof(im->why), "%s", why);
		return -EINVAL;
	}
	cf_image_map(geo, &im->map);
	return path ? open_nvram(im, path, geo, explicit_mask) : open_dram(im, geo);
}

void cf_image_persist(struct cf_image *im, uint64_t off, uint64_t len)
{
	if (!im->persist_fn || off >= im->size)
		return;
	if (len > im->size - off)
		len = im->size - off;
	im->persist_fn((char *)im->base + off, len);
}

uint64_t cf_image_persist_gran(const struct cf_image *im)
{
	if (!im->pmap || !im->persist_fn)
		return 0;
	return pmem2_map_get_store_granularity(im->pmap) == PMEM2_GRANULARITY_PAGE ? CF_PAGE : 64u;
}

void cf_image_close(struct cf_image *im)
{
	if (!im)
		return;
	if (im->pmap) {
		cf_image_persist(im, 0, im->map.image_size);
		pmem2_map_delete(&im->pmap);
	} else if (im->base) {
		munmap(im->base, im->size);
	}
	im->base = NULL;
	if (im->fd >= 0)
		close(im->fd);
	im->fd = -1;
}
