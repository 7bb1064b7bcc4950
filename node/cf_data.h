/* SPDX-License-Identifier: MIT */
/*
 * cf_data.h - record files of the shared data directory.
 *
 * File format (all integers little-endian), one file per id, named
 * "f<ID>.cfd" in the data directory:
 *
 *   offset 0   struct cf_data_fhdr (64 bytes)
 *                magic "CFPXDATA", version 1, rec_size (payload bytes),
 *                rec_count, file id, initial_total (the bank's invariant:
 *                sum of all int64 balances at creation, 0 when unused),
 *                created (CLOCK_REALTIME ns), crc = crc32 over bytes
 *                [0, offsetof(crc)).
 *   offset 64  rec_count slots of (8 + rec_size) bytes each:
 *                u32 crc   crc32 of the 8-byte little-endian record index
 *                          followed by the payload
 *                u32 flags CF_DATA_SLOT_VALID once written
 *                payload   rec_size bytes
 *
 * A slot is the unit of the undo log: an UPDATE record's before-image is a
 * whole slot (crc, flags and payload), its offset the slot's byte offset in
 * the file, so writing the before-image back restores the exact bytes.
 *
 * I/O is pread/pwrite on the file; cf_data_sync() is fdatasync. The files
 * are opened buffered (page cache) or, for a data directory shared by several
 * hosts over NFS, with O_DIRECT: each host's page cache is not coherent with
 * the others' writes (docs/design.md, "Storage across hosts"). Corrupt
 * headers or slots return -EBADMSG (CF_CORRUPT) and cf_data_corrupt_msg()
 * names the file and the record.
 */
#ifndef CF_DATA_H
#define CF_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_DATA_MAGIC "CFPXDATA"
#define CF_DATA_VERSION 1u
#define CF_DATA_MAX_FILES 64u
#define CF_DATA_MAX_REC_SIZE 4000u /* slot must fit an undo record's image */
#define CF_DATA_MAX_RECORDS (1ull << 32)
#define CF_DATA_SLOT_VALID 0x1u
#define CF_DATA_SLOT_HDR 8u

struct cf_data_fhdr {
	char magic[8];
	uint32_t version;
	uint32_t rec_size;
	uint64_t rec_count;
	uint32_t file_id;
	uint32_t flags;
	int64_t initial_total;
	uint64_t created;
	uint64_t reserved[1];
	uint32_t pad;
	uint32_t crc;
};
_Static_assert(sizeof(struct cf_data_fhdr) == 64, "data file header");

struct cf_data_file {
	int fd; /* -1 when not open */
	uint32_t id;
	uint32_t rec_size;
	uint64_t rec_count;
	int64_t initial_total;
	int dirty; /* written since the last sync */
};

/* How record files are opened (cf_data_set_io, cfnode --data-io). */
enum cf_data_io {
	CF_DATA_IO_BUFFERED, /* page cache: one host, or a cluster filesystem */
	CF_DATA_IO_DIRECT,   /* O_DIRECT at slot granularity: NFS across hosts */
};

struct cf_data {
	int dirfd;
	enum cf_data_io io; /* from cf_data_set_io() at cf_data_open() */
	char dir[256];
	struct cf_data_file files[CF_DATA_MAX_FILES];
	char corrupt_msg[160];
};

/* Open a data directory (files are opened lazily). 0 or -errno. */
/*
 * The I/O mode of every cf_data_open() that follows, process-wide: set once
 * at start, before any thread opens a data directory (cfnode --data-io).
 */
void cf_data_set_io(enum cf_data_io io);
enum cf_data_io cf_data_get_io(void);
const char *cf_data_io_str(enum cf_data_io io);
int cf_data_open(struct cf_data *d, const char *dir);
void cf_data_close(struct cf_data *d); /* accepts a half-open one */

/*
 * Create file id in dir with count records of rec_size bytes, each payload
 * from fill (or zero). An existing file is -EEXIST, untouched, unless replace:
 * then it is truncated and rewritten (its data is lost).
 */
int cf_data_create(const char *dir, uint32_t id, uint32_t rec_size, uint64_t count, int64_t initial_total,
		   void (*fill)(void *arg, uint64_t idx, void *payload), void *arg, bool replace);

/* The file (opened and header-checked on first use): 0, -ENOENT, -EBADMSG. */
int cf_data_file(struct cf_data *d, uint32_t id, struct cf_data_file **out);

static inline uint32_t cf_data_slot_size(const struct cf_data_file *f) { return CF_DATA_SLOT_HDR + f->rec_size; }
static inline uint64_t cf_data_slot_off(const struct cf_data_file *f, uint64_t idx)
{
	return sizeof(struct cf_data_fhdr) + idx * cf_data_slot_size(f);
}

/* Raw slot bytes (no check). buf holds cf_data_slot_size bytes. */
int cf_data_read_slot(struct cf_data *d, struct cf_data_file *f, uint64_t idx, void *buf);
/* Checked payload read: -EBADMSG when the slot's crc is wrong or it was never written. */
int cf_data_read(struct cf_data *d, struct cf_data_file *f, uint64_t idx, void *payload);
/* Build a valid slot for payload into slot (cf_data_slot_size bytes). */
void cf_data_make_slot(const struct cf_data_file *f, uint64_t idx, const void *payload, void *slot);
/* Check a raw slot: 0 or -EBADMSG. */
int cf_data_check_slot(const struct cf_data_file *f, uint64_t idx, const void *slot);

/*
 * Write bytes at a file offset: must cover whole slots of the file (used for
 * new images and for before-images from the log). -EINVAL when the range is
 * not slot-aligned or outside the file.
 */
int cf_data_pwrite(struct cf_data *d, uint32_t file, uint64_t off, const void *buf, uint32_t len);
/* fdatasync one file if dirty / every dirty file. */
int cf_data_sync(struct cf_data *d, struct cf_data_file *f);
int cf_data_sync_all(struct cf_data *d);

/* Last corruption found, "file f0.cfd record 12: bad crc". */
const char *cf_data_corrupt_msg(const struct cf_data *d);

#endif
