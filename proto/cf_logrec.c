/* SPDX-License-Identifier: MIT */
#include "cf_logrec.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cf_util.h"

static uint32_t rec_crc(const struct cf_logrec_hdr *h, const void *image, uint32_t len)
{
	struct cf_logrec_hdr t = *h;
	uint32_t c;

	t.crc = 0;
	c = cf_crc32(0, &t, sizeof(t));
	if (len)
		c = cf_crc32(c, image, len);
	return c;
}

int cf_logrec_encode(void *buf, size_t cap, enum cf_logrec_type type, uint64_t lsn, uint64_t txid,
		     uint32_t file, uint64_t offset, const void *image, uint32_t len)
{
	struct cf_logrec_hdr h;
	uint32_t total;

	if (type < CF_LR_BEGIN || type > CF_LR_END || len > CF_LOGREC_MAX_IMAGE)
		return -EINVAL;
	if ((type == CF_LR_UPDATE) != (len > 0) || (len && !image))
		return -EINVAL;
	total = cf_logrec_size(len);
	if (cap < total)
		return -ENOSPC;
	memset(&h, 0, sizeof(h));
	h.magic = CF_LOGREC_MAGIC;
	h.type = (uint16_t)type;
	h.total = total;
	h.lsn = lsn;
	h.txid = txid;
	h.offset = offset;
	h.file = file;
	h.length = len;
	h.crc = rec_crc(&h, image, len);
	memcpy(buf, &h, sizeof(h));
	if (len)
		memcpy((char *)buf + sizeof(h), image, len);
	memset((char *)buf + sizeof(h) + len, 0, total - sizeof(h) - len);
	return (int)total;
}

int cf_logrec_encode_pad(void *buf, size_t total, uint64_t lsn)
{
	struct cf_logrec_hdr h;

	if (total < sizeof(h) || total % 8 || total > INT32_MAX) /* the size is returned as an int */
		return -EINVAL;
	memset(&h, 0, sizeof(h));
	h.magic = CF_LOGREC_MAGIC;
	h.type = CF_LR_PAD;
	h.total = (uint32_t)total;
	h.lsn = lsn;
	h.crc = rec_crc(&h, NULL, 0);
	memcpy(buf, &h, sizeof(h));
	return (int)total;
}

int cf_logrec_parse(const void *buf, size_t avail, struct cf_logrec_hdr *out, const void **image)
{
	struct cf_logrec_hdr h;
	const void *img;

	if (avail < sizeof(h))
		return CF_CORRUPT();
	memcpy(&h, buf, sizeof(h));
	if (h.magic != CF_LOGREC_MAGIC || h.type < CF_LR_PAD || h.type > CF_LR_END)
		return CF_CORRUPT();
	if (h.total < sizeof(h) || h.total % 8 || h.total > avail || h.total > INT32_MAX)
		return CF_CORRUPT();
	if (h.pad)
		return CF_CORRUPT();
	img = (const char *)buf + sizeof(h);
	if (h.type == CF_LR_PAD) {
		if (h.length || h.txid || h.offset || h.file)
			return CF_CORRUPT();
	} else {
		if (h.length > CF_LOGREC_MAX_IMAGE || h.total != cf_logrec_size(h.length))
			return CF_CORRUPT();
		if ((h.type == CF_LR_UPDATE) != (h.length > 0))
			return CF_CORRUPT();
		/* The encoder zeroes the padding after the image; the crc does not cover it. */
		for (uint32_t i = sizeof(h) + h.length; i < h.total; i++)
			if (((const unsigned char *)buf)[i])
				return CF_CORRUPT();
	}
	if (h.crc != rec_crc(&h, h.type == CF_LR_PAD ? NULL : img, h.type == CF_LR_PAD ? 0 : h.length))
		return CF_CORRUPT();
	*out = h;
	if (image)
		*image = img;
	return (int)h.total;
}

const char *cf_logrec_type_str(enum cf_logrec_type t)
{
	switch (t) {
	case CF_LR_PAD: return "PAD";
	case CF_LR_BEGIN: return "BEGIN";
	case CF_LR_UPDATE: return "UPDATE";
	case CF_LR_COMMIT: return "COMMIT";
	case CF_LR_ABORT: return "ABORT";
	case CF_LR_END: return "END";
	}
	return "?";
}
