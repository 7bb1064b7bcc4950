/* SPDX-License-Identifier: MIT */
/*
 * cf_image.h - the CF image in memory: anonymous DRAM (lost with the process,
 * like a volatile CF) or --nvram PATH, one of three kinds:
 *   file    a regular file on any filesystem, mapped with libpmem2: CPU cache
 *           flushes on an fs-dax mount, msync elsewhere (libpmem2 decides);
 *   block   a block device (/dev/pmem0 of an fsdax or raw namespace, a loop
 *           device, a disk): opened O_EXCL (refused while mounted or held),
 *           sized with BLKGETSIZE64, mapped MAP_SHARED, persisted with msync of
 *           the page range (libpmem2 does not map block devices);
 *   devdax  a device-DAX character device /dev/daxX.Y, mapped with libpmem2
 *           at the device's alignment, persisted with CPU cache flushes.
 * Anything else (FIFO, socket, directory, other character device) and a
 * symbolic link as the last path component are refused. A device is never
 * created, truncated or resized. Opening formats a new image (all-zero
 * header page) or validates an existing one; it never overwrites an image it
 * cannot validate.
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

enum cf_image_kind {
	CF_IMAGE_DRAM = 0,
	CF_IMAGE_FILE,
	CF_IMAGE_BLOCK,
	CF_IMAGE_DEVDAX,
};

struct cf_image {
	enum cf_image_kind kind;
	void *base;
	uint64_t size;   /* mapped bytes (>= map.image_size) */
	struct cf_image_map map;
	int fd;          /* -1 for DRAM */
	int formatted;   /* 1 when this open created a fresh image */
	int took_over;   /* a duplexed secondary's copy it took over with (cf_duplex_follow.c): systems are kept */
	struct pmem2_map *pmap; /* file, devdax */
	/* non-NULL when the image persists; call cf_image_persist(), not this */
	void (*persist_fn)(const void *ptr, size_t size);
	int cpu_flush;   /* 1: persistence by CPU cache flushes (real pmem), 0: msync */
	int emulated;    /* power-loss emulation (fault-injection builds, cf_image.c) */
	uint64_t persist_errors; /* failed msyncs (block) or writes (emulation): the range may not be durable */
	uint64_t resident_ns; /* how long making the image resident took (cf_image_open) */
	char why[256];   /* reason of the last failure, for the log */
	struct cf_body_report body; /* a loaded image: node-writable words that decode to nothing */
};

static inline struct cf_header *cf_image_header(struct cf_image *im)
{
	return (struct cf_header *)im->base;
}

/*
 * Open the image. path NULL: DRAM, formatted with geo. Else map path (kinds
 * above; a missing path is created as a regular file): an empty file (or
 * all-zero header page) is sized and formatted;
 * an existing image is validated (cf_header_check) and its geometry must
 * equal geo in every field named by `explicit_mask`. Errors: -EBADMSG
 * (invalid image, im->why names the problem), -EINVAL (geometry mismatch or
 * bad geometry, im->why says which), -ENOSPC (no room: a device smaller
 * than the geometry), -ENODEV (a kind of path that cannot hold an image),
 * -ELOOP (a symbolic link), -EBUSY (a block device mounted or open
 * exclusively elsewhere), -errno from the system.
 */
int cf_image_open(struct cf_image *im, const char *path, const struct cf_geometry *geo, unsigned explicit_mask);
/*
 * Classify what --nvram names from its lstat() mode; is_devdax says whether a
 * character device is a device-DAX one. Returns the kind or -ENODEV / -ELOOP,
 * with *what naming the refused kind for the error message.
 */
int cf_image_classify(unsigned mode, int is_devdax, const char **what);
const char *cf_image_kind_str(enum cf_image_kind k);
/* How the open image persists, for the start-up log line. */
const char *cf_image_persist_str(const struct cf_image *im);
/* Persist bytes [off, off+len) (no-op on DRAM): the one persist entry point, every kind. */
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
