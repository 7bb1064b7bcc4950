/* SPDX-License-Identifier: MIT */
#include "cf_layout.h"

#include <errno.h>
#include <string.h>

#include "cf_util.h"

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int cf_geometry_check(const struct cf_geometry *g, const char **why)
{
	const char *w = NULL;

	if (g->max_systems < 1 || g->max_systems > CF_MAX_SYSTEMS_LIMIT)
		w = "max-systems must be 1..64";
	else if (g->max_instances < 1 || g->max_instances > CF_MAX_INSTANCES_LIMIT)
		w = "max-instances must be 1..56";
	else if (g->lock_entries < CF_LOCK_ENTRIES_MIN || g->lock_entries > CF_LOCK_ENTRIES_LIMIT ||
		 !is_pow2(g->lock_entries))
		w = "lock-entries must be a power of two in 64..16777216";
	else if (g->record_entries < CF_RECORD_ENTRIES_MIN || g->record_entries > CF_RECORD_ENTRIES_LIMIT)
		w = "record-entries must be 16..65536";
	else if (g->log_size < CF_LOG_SIZE_MIN || g->log_size > CF_LOG_SIZE_LIMIT || g->log_size % CF_PAGE)
		w = "log-size must be a multiple of 4096 in 64 KiB..1 GiB";
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

void cf_image_map(const struct cf_geometry *g, struct cf_image_map *m)
{
	uint64_t o = CF_PAGE; /* header page */

	memset(m, 0, sizeof(*m));
	m->geo = *g;
	m->off_systems = o;
	o = align_up(o + (uint64_t)g->max_systems * sizeof(struct cf_sys_slot), CF_PAGE);
	m->off_heartbeats = o;
	o = align_up(o + (uint64_t)g->max_systems * sizeof(struct cf_hb_slot), CF_PAGE);
	m->off_instances = o;
	o = align_up(o + (uint64_t)g->max_instances * sizeof(struct cf_inst_slot), CF_PAGE);
	m->off_rinfo = o;
	o = align_up(o + (uint64_t)g->max_instances * sizeof(struct cf_rinfo_slot), CF_PAGE);
	m->off_locks = o;
	o = align_up(o + (uint64_t)g->lock_entries * 8u, CF_PAGE);
	m->records_size = align_up((uint64_t)g->record_entries * sizeof(struct cf_rec_entry), CF_PAGE);
	m->off_records = o;
	o += (uint64_t)g->max_instances * m->records_size;
	m->off_logs = o;
	o += (uint64_t)g->max_instances * g->log_size;
	m->image_size = o;
}

uint32_t cf_header_crc(const struct cf_header *h)
{
	return cf_crc32(0, h, offsetof(struct cf_header, crc));
}

void cf_header_init(struct cf_header *h, const struct cf_geometry *g, uint64_t created_ns)
{
	struct cf_image_map m;

	cf_image_map(g, &m);
	memset(h, 0, sizeof(*h));
	h->magic = CF_MAGIC;
	h->layout_version = CF_LAYOUT_VERSION;
	h->header_size = sizeof(*h);
	h->geo = *g;
	h->image_size = m.image_size;
	h->off_systems = m.off_systems;
	h->off_heartbeats = m.off_heartbeats;
	h->off_instances = m.off_instances;
	h->off_rinfo = m.off_rinfo;
	h->off_locks = m.off_locks;
	h->off_records = m.off_records;
	h->off_logs = m.off_logs;
	h->created_ns = created_ns;
	h->crc = cf_header_crc(h);
}

int cf_header_check(const struct cf_header *h, uint64_t avail, const char **why)
{
	struct cf_image_map m;
	const char *w = NULL;

	if (avail < CF_PAGE)
		w = "image smaller than its header page";
	else if (h->magic != CF_MAGIC)
		w = "bad magic (not a cfplex CF image)";
	else if (h->layout_version != CF_LAYOUT_VERSION)
		w = "unsupported layout version";
	else if (h->header_size != sizeof(*h))
		w = "bad header size";
	else if (h->crc != cf_header_crc(h))
		w = "header CRC mismatch";
	else if (cf_geometry_check(&h->geo, &w) < 0)
		; /* w set */
	else {
		cf_image_map(&h->geo, &m);
		if (h->image_size != m.image_size || h->off_systems != m.off_systems ||
		    h->off_heartbeats != m.off_heartbeats || h->off_instances != m.off_instances ||
		    h->off_rinfo != m.off_rinfo || h->off_locks != m.off_locks ||
		    h->off_records != m.off_records || h->off_logs != m.off_logs)
			w = "section offsets do not match the geometry";
		else if (h->image_size > avail)
			w = "image truncated: file smaller than the geometry needs";
	}
	if (why)
		*why = w;
	return w ? CF_CORRUPT() : 0;
}

int cf_name_check(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 1 || n >= CF_NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
		      c == '.' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

void cf_name_put(char dst[CF_NAME_MAX], const char *s)
{
	memset(dst, 0, CF_NAME_MAX);
	strncpy(dst, s, CF_NAME_MAX - 1);
}
