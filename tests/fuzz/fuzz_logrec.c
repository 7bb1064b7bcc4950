/* SPDX-License-Identifier: MIT */
/*
 * fuzz_logrec - the undo-log record parser, alone and as recovery uses it.
 *
 * 1. cf_logrec_parse on the whole input: -EBADMSG, or a record that lies
 *    inside the input and re-encodes to exactly the same bytes (so nothing
 *    that the encoder did not write is ever accepted).
 * 2. The input as an instance's log region: struct cf_log_hdr then the ring.
 *    Scan from head the way recovery does (cf_log.h invariants): wrap when
 *    less than a header remains before the ring end, stop at the first record
 *    that fails cf_logrec_parse, breaks LSN continuity, or would take the scan
 *    past one lap. Every accepted record must lie inside the ring, carry the
 *    expected LSN, and re-encode to identical bytes.
 */
#include <errno.h>
#include <string.h>

#include "cf_layout.h"
#include "cf_logrec.h"
#include "cf_util.h"
#include "fuzz.h"

static uint8_t enc[CF_LOGREC_MAX_IMAGE + 64];

/* rec (avail bytes) was accepted as h with total r: check it is canonical. */
static void check_accepted(const uint8_t *rec, size_t avail, int r, const struct cf_logrec_hdr *h, const void *image)
{
	int e;

	FUZZ_ASSERT(r > 0 && (size_t)r <= avail && (uint32_t)r == h->total);
	FUZZ_ASSERT(h->total % 8 == 0 && h->total >= sizeof(*h));
	FUZZ_ASSERT(h->magic == CF_LOGREC_MAGIC && h->type >= CF_LR_PAD && h->type <= CF_LR_END);
	FUZZ_ASSERT(strcmp(cf_logrec_type_str((enum cf_logrec_type)h->type), "?") != 0);
	FUZZ_ASSERT(image == rec + sizeof(*h));
	if (h->type == CF_LR_PAD) {
		/* a PAD is a header; its body is filler the writer never wrote */
		FUZZ_ASSERT(h->length == 0 && h->txid == 0 && h->offset == 0 && h->file == 0);
		/* encode_pad writes only the header, whatever the total */
		FUZZ_ASSERT(cf_logrec_encode_pad(enc, h->total, h->lsn) == (int)h->total);
		FUZZ_ASSERT(memcmp(enc, rec, sizeof(*h)) == 0);
		return;
	}
	FUZZ_ASSERT(h->length <= CF_LOGREC_MAX_IMAGE && h->total == cf_logrec_size(h->length));
	FUZZ_ASSERT((h->type == CF_LR_UPDATE) == (h->length > 0));
	e = cf_logrec_encode(enc, sizeof(enc), (enum cf_logrec_type)h->type, h->lsn, h->txid, h->file, h->offset,
			     h->length ? image : NULL, h->length);
	FUZZ_ASSERT(e == r);
	FUZZ_ASSERT(memcmp(enc, rec, (size_t)r) == 0);
}

static void scan_region(const uint8_t *region, size_t len)
{
	const size_t HDR = sizeof(struct cf_logrec_hdr);
	struct cf_log_hdr lh;
	const uint8_t *ring = region + sizeof(lh);
	uint64_t R, pos, lsn, nrec = 0;

	if (len < sizeof(lh) + 2 * HDR)
		return;
	memcpy(&lh, region, sizeof(lh));
	R = len - sizeof(lh);
	pos = lh.head;
	lsn = lh.head_lsn;
	for (;;) {
		uint64_t off = pos % R, rem = R - off;
		struct cf_logrec_hdr h;
		const void *image = NULL;
		int r;

		FUZZ_ASSERT(pos - lh.head <= R); /* never more than one lap */
		if (rem < HDR) {
			if (pos + rem - lh.head > R)
				break;
			pos += rem;
			continue;
		}
		r = cf_logrec_parse(ring + off, rem, &h, &image);
		if (r < 0) {
			FUZZ_ASSERT(r == -EBADMSG && cf_corrupt_where() != NULL);
			break;
		}
		check_accepted(ring + off, rem, r, &h, image);
		FUZZ_ASSERT(off + (uint64_t)r <= R); /* never straddles the ring end */
		if (h.lsn != lsn || pos + h.total - lh.head > R)
			break; /* stale record of an earlier lap, or past one lap */
		pos += h.total;
		lsn++;
		nrec++;
		FUZZ_ASSERT(nrec <= R / HDR);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cf_logrec_hdr h;
	const void *image = NULL;
	int r;

	r = cf_logrec_parse(data, size, &h, &image);
	if (r < 0)
		FUZZ_ASSERT(r == -EBADMSG);
	else
		check_accepted(data, size, r, &h, image);
	scan_region(data, size);
	return 0;
}
