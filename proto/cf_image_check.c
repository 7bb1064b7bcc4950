/* SPDX-License-Identifier: MIT */
/* cf_image_check.c - structural check of a CF image's body (see cf_layout.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cf_layout.h"
#include "cf_words.h"

/* Note a problem: the first of each class is described, all are counted. */
static void note(struct cf_body_report *rep, bool server, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void note(struct cf_body_report *rep, bool server, const char *fmt, ...)
{
	uint64_t *n = server ? &rep->bad_server : &rep->bad_node;
	char *why = server ? rep->first_server : rep->first_node;
	va_list ap;

	if ((*n)++ == 0) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(rep->first_server), fmt, ap);
		va_end(ap);
	}
}

/* A NUL-padded name field holding a well-formed name. */
static bool name_ok(const char f[CF_NAME_MAX])
{
	char n[CF_NAME_MAX + 1];

	memcpy(n, f, CF_NAME_MAX);
	n[CF_NAME_MAX] = 0;
	if (n[CF_NAME_MAX - 1] != 0)
		return false;
	return cf_name_check(n) == 0;
}

static uint64_t word_at(const uint8_t *base, uint64_t off)
{
	uint64_t w;

	memcpy(&w, base + off, sizeof(w));
	return w;
}

int cf_image_body_check(const void *image, const struct cf_image_map *m, struct cf_body_report *rep)
{
	const uint8_t *base = image;
	const struct cf_geometry *g = &m->geo;
	const struct cf_header *h = image;
	uint64_t smask = g->max_instances >= 64 ? ~0ull : (1ull << g->max_instances) - 1;

	memset(rep, 0, sizeof(*rep));
	/* ---- cfserver's own words: nodes can only READ them ---- */
	if (h->policy > CF_POLICY_OPERATOR)
		note(rep, true, "header: recovery policy %llu is neither auto nor operator",
		     (unsigned long long)h->policy);
	for (uint32_t s = 0; s < g->max_systems; s++) {
		struct cf_sys_slot ss;
		memcpy(&ss, base + cf_sys_off(m, s), sizeof(ss));
		if (!cf_sysword_valid(ss.state))
			note(rep, true, "system slot %u: state word %#llx is not a system word", s,
			     (unsigned long long)ss.state);
		else if ((cf_sysword_state(ss.state) != CF_SYS_FREE || ss.name[0]) && !name_ok(ss.name))
			note(rep, true, "system slot %u: its name is not 1..15 chars of [A-Za-z0-9_.-]", s);
	}
	/*
	 * ---- words nodes may CAS or WRITE (their grants are by region) ----
	 * cfserver and nodes already treat any value there defensively, as a
	 * buggy node could have written it while running: reported, not fatal.
	 */
	for (uint32_t i = 0; i < g->max_instances; i++) {
		struct cf_inst_slot is;
		memcpy(&is, base + cf_inst_off(m, i), sizeof(is));
		if (!cf_reg_valid(is.reg)) {
			note(rep, false, "instance slot %u: registration word %#llx is not a registration word", i,
			     (unsigned long long)is.reg);
			continue;
		}
		if (is.reg == 0)
			continue; /* FREE: the rest of the slot is never read */
		if (!name_ok(is.name))
			note(rep, false, "instance slot %u: its name is not 1..15 chars of [A-Za-z0-9_.-]", i);
		else if (is.index != i)
			note(rep, false, "instance slot %u: it says it is slot %u", i, is.index);
		else if (is.home_sys >= g->max_systems)
			note(rep, false, "instance slot %u: home system %u outside max-systems %u", i, is.home_sys,
			     g->max_systems);
		else if (cf_reg_state(is.reg) == CF_REG_ACTIVE && cf_reg_owner(is.reg) >= g->max_systems)
			note(rep, false, "instance slot %u: ACTIVE owner %u outside max-systems %u", i,
			     cf_reg_owner(is.reg), g->max_systems);
	}
	for (uint32_t k = 0; k < g->lock_entries; k++) {
		uint64_t w = word_at(base, cf_lock_off(m, k));
		if (!cf_lock_valid(w))
			note(rep, false, "lock class %u: word %#llx is not a lock word", k, (unsigned long long)w);
		else if ((cf_lock_is_x(w) && cf_lock_x_inst(w) >= g->max_instances) ||
			 (cf_lock_is_s(w) && (cf_lock_s_holders(w) & ~smask)))
			note(rep, false, "lock class %u: word %#llx names an instance outside max-instances %u", k,
			     (unsigned long long)w, g->max_instances);
	}
	for (uint32_t i = 0; i < g->max_instances; i++) {
		for (uint32_t e = 0; e < g->record_entries; e++) {
			struct cf_rec_entry re;
			memcpy(&re, base + cf_rec_off(m, i) + (uint64_t)e * sizeof(re), sizeof(re));
			if (!re.used)
				continue;
			if (re.used != 1u + CF_LOCK_S && re.used != 1u + CF_LOCK_X)
				note(rep, false, "record list of instance %u, entry %u: mode %llu is neither S nor X", i, e,
				     (unsigned long long)(re.used - 1));
			else if (re.klass >= g->lock_entries)
				note(rep, false, "record list of instance %u, entry %u: lock class %llu outside %u", i, e,
				     (unsigned long long)re.klass, g->lock_entries);
			else if (!memchr(re.name, 0, sizeof(re.name)))
				note(rep, false, "record list of instance %u, entry %u: name not terminated", i, e);
		}
	}
	return rep->bad_server ? -EBADMSG : 0;
}
