/* SPDX-License-Identifier: MIT */
/*
 * cf_logrec.h - private undo-log records.
 *
 * A record never straddles the end of the ring. When the remaining bytes at
 * the end are fewer than the next record needs, the writer puts a PAD record
 * there (when at least a header fits) and continues at ring offset 0; a
 * reader that finds fewer than a header's bytes before the end also wraps.
 *
 * Record: struct cf_logrec_hdr, then `length` bytes of before-image (UPDATE
 * only), padded to 8 with zero bytes. crc covers the header (crc field zero)
 * and the image; the parser refuses a nonzero hdr.pad or nonzero padding, so
 * every accepted record is exactly what the encoder writes.
 * LSNs are consecutive; a reader scanning from the log head stops at the first
 * record that fails magic, length, crc or LSN continuity (torn tail, or stale
 * bytes from an earlier lap of the ring).
 *
 * Write marks. A PAD may also stand anywhere in the ring (a header-only PAD,
 * total 48): a reader skips it as any PAD. A writer whose BEGIN says
 * CF_LR_BEGIN_MARKED in its `file` field promises that no data write for an
 * UPDATE of that transaction starts before a PAD with a higher LSN is in the
 * log (durable there when the CF is). So such an UPDATE with no PAD after it
 * was never written to the data: its before-image is what the data holds,
 * and a backout need not write it back, nor sync for it. A writer that does
 * not promise it (an older one, or no group commit) leaves `file` 0, which
 * every reader takes as "may have been written"; a reader older than the
 * marks ignores BEGIN's `file` and skips the PADs, and writes back every
 * UPDATE, as before.
 */
#ifndef CF_LOGREC_H
#define CF_LOGREC_H

#include <stddef.h>
#include <stdint.h>

#define CF_LOGREC_MAGIC 0x4c52u /* "RL" */
#define CF_LOGREC_MAX_IMAGE 4096u

enum cf_logrec_type {
	CF_LR_PAD = 1,
	CF_LR_BEGIN = 2,
	CF_LR_UPDATE = 3,  /* before-image of file/offset/length */
	CF_LR_COMMIT = 4,  /* commit point: data is synced */
	CF_LR_ABORT = 5,   /* before-images applied and synced */
	CF_LR_END = 6,     /* locks released; nothing left to do */
};

/* BEGIN's `file` field: this transaction's data writes each follow a write mark (above). */
#define CF_LR_BEGIN_MARKED 1u

struct cf_logrec_hdr {
	uint16_t magic;
	uint16_t type;
	uint32_t total; /* bytes of this record incl. header and padding; multiple of 8 */
	uint64_t lsn;
	uint64_t txid;
	uint64_t offset; /* byte offset in the data file (UPDATE) */
	uint32_t file;   /* data file id (UPDATE) */
	uint32_t length; /* before-image bytes (UPDATE) */
	uint32_t crc;
	uint32_t pad;
};
_Static_assert(sizeof(struct cf_logrec_hdr) == 48, "cf_logrec_hdr size");

static inline uint32_t cf_logrec_size(uint32_t image_len)
{
	return (uint32_t)sizeof(struct cf_logrec_hdr) + ((image_len + 7u) & ~7u);
}

/*
 * Encode a record into buf (cap bytes); returns its total size or -EINVAL /
 * -ENOSPC. image may be NULL when len is 0.
 */
int cf_logrec_encode(void *buf, size_t cap, enum cf_logrec_type type, uint64_t lsn, uint64_t txid,
		     uint32_t file, uint64_t offset, const void *image, uint32_t len);
/* Encode a PAD record filling exactly `total` bytes (>= header, multiple of 8). */
int cf_logrec_encode_pad(void *buf, size_t total, uint64_t lsn);

/*
 * Parse one record at buf (avail bytes). On success returns its total size and
 * fills *h; *image points into buf. Returns -EBADMSG for anything torn,
 * corrupt or malformed (never applied), recording where in cf_corrupt_where.
 */
int cf_logrec_parse(const void *buf, size_t avail, struct cf_logrec_hdr *h, const void **image);

const char *cf_logrec_type_str(enum cf_logrec_type t);

#endif
