/* SPDX-License-Identifier: MIT */
/*
 * cf_image.h - the CF image in memory: anonymous DRAM (lost with the process,
 * like a volatile CF) or a file / DAX device / pmem device mapped with
 * libpmem2 (--nvram). Opening formats a new image or validates an existing
 * one; it never overwrites an image it cannot validate.
 */
#ifndef CF_IMAGE_H
#define CF_IMAGE_H

#include <stdint.h>

#include "cf_layout.h"

struct pmem2_map;

/* Which geometry fields the operator gave explicitly (must match a loaded image). */
#define CF_GEO_SYSTEMS 0x1u
#define CF_GEO_INSTANCES 0x2u
#define CF_GEO_LOCKS 0x4u
#define CF_GEO_RECORDS 0x8u
#define CF_GEO_LOGSIZE 0x10u

struct cf_image {
	void *base;
	uint64_t size;   /* mapped bytes (>= map.image_size) */
	struct cf_image_map map;
	int fd;          /* -1 for DRAM */
	int formatted;   /* 1 when this open created a fresh image */
	struct pmem2_map *pmap;
	void (*persist_fn)(const void *ptr, size_t size);
	char why[256];   /* reason of the last failure, for the log */
	struct cf_body_report body; /* a loaded image: node-writable words that decode to nothing */
};

static inline struct cf_header *cf_image_header(struct cf_image *im)
{
	return (struct cf_header *)im->base;
}

/*
 * Open the image. path NULL: DRAM, formatted with geo. Else map path with
 * libpmem2: an empty file (or all-zero header page) is sized and formatted;
 * an existing image is validated (cf_header_check) and its geometry must
 * equal geo in every field named by `explicit_mask`. Errors: -EBADMSG
 * (invalid image, im->why names the problem), -EINVAL (geometry mismatch or
 * bad geometry, im->why says which), -errno from the system.
 */
int cf_image_open(struct cf_image *im, const char *path, const struct cf_geometry *geo, unsigned explicit_mask);
/* Persist bytes [off, off+len) (no-op on DRAM). */
void cf_image_persist(struct cf_image *im, uint64_t off, uint64_t len);
/*
 * The store granularity of the mapping in bytes: 64 where persist is CPU
 * cache flushes (DAX, real persistent memory), 4096 where it is msync (a file
 * in the page cache). 0 on DRAM.
 */
uint64_t cf_image_persist_gran(const struct cf_image *im);
/* Persist everything and unmap. Accepts a half-open image. */
void cf_image_close(struct cf_image *im);

#endif
