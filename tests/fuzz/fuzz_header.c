/* SPDX-License-Identifier: MIT */
/*
 * fuzz_header - the CF image loader's header check (cfserver --nvram).
 *
 * Input: 8 bytes of avail (the size of the file or device holding the image),
 * then the header page. cf_header_check must refuse with -EBADMSG and a
 * reason, or accept a header whose geometry passes the limits, whose sections
 * cf_image_map lays out page aligned, in order, without overlap, inside
 * image_size <= avail, and whose crc-covered part is exactly what
 * cf_header_init writes for that geometry (nothing else is ever accepted).
 */
#include <errno.h>
#include <string.h>

#include "cf_layout.h"
#include "fuzz.h"

static union {
	struct cf_header h;
	uint8_t b[CF_PAGE];
} page;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cf_header ref;
	struct cf_image_map m;
	const char *why = "unset";
	uint64_t avail = 0, offs[8], ends[8];
	int r;

	if (size < sizeof(avail))
		return 0;
	memcpy(&avail, data, sizeof(avail));
	memset(&page, 0, sizeof(page));
	memcpy(page.b, data + sizeof(avail), size - sizeof(avail) < CF_PAGE ? size - sizeof(avail) : CF_PAGE);

	r = cf_header_check(&page.h, avail, &why);
	if (r < 0) {
		FUZZ_ASSERT(r == -EBADMSG && why != NULL && why[0] != 0);
		return 0;
	}
	FUZZ_ASSERT(r == 0 && why == NULL);
	FUZZ_ASSERT(cf_geometry_check(&page.h.geo, NULL) == 0);
	cf_image_map(&page.h.geo, &m);
	FUZZ_ASSERT(m.image_size == page.h.image_size && m.image_size <= avail && avail >= CF_PAGE);
	offs[0] = 0;
	ends[0] = sizeof(struct cf_header);
	offs[1] = m.off_systems;
	ends[1] = offs[1] + (uint64_t)m.geo.max_systems * sizeof(struct cf_sys_slot);
	offs[2] = m.off_heartbeats;
	ends[2] = offs[2] + (uint64_t)m.geo.max_systems * sizeof(struct cf_hb_slot);
	offs[3] = m.off_instances;
	ends[3] = offs[3] + (uint64_t)m.geo.max_instances * sizeof(struct cf_inst_slot);
	offs[4] = m.off_rinfo;
	ends[4] = offs[4] + (uint64_t)m.geo.max_instances * sizeof(struct cf_rinfo_slot);
	offs[5] = m.off_locks;
	ends[5] = offs[5] + (uint64_t)m.geo.lock_entries * 8u;
	offs[6] = m.off_records;
	ends[6] = offs[6] + (uint64_t)m.geo.max_instances * m.records_size;
	offs[7] = m.off_logs;
	ends[7] = offs[7] + (uint64_t)m.geo.max_instances * m.geo.log_size;
	FUZZ_ASSERT(m.records_size >= (uint64_t)m.geo.record_entries * sizeof(struct cf_rec_entry));
	for (int i = 0; i < 8; i++) {
		FUZZ_ASSERT(offs[i] % CF_PAGE == 0 && ends[i] >= offs[i] && ends[i] <= m.image_size);
		if (i > 0)
			FUZZ_ASSERT(offs[i] >= ends[i - 1]);
	}
	FUZZ_ASSERT(ends[7] == m.image_size);
	FUZZ_ASSERT(cf_log_off(&m, m.geo.max_instances - 1) + m.geo.log_size == m.image_size);
	/* canonical: the static part is what the formatter writes */
	cf_header_init(&ref, &page.h.geo, page.h.created_ns);
	FUZZ_ASSERT(memcmp(&ref, &page.h, offsetof(struct cf_header, crc) + sizeof(ref.crc)) == 0);
	return 0;
}
