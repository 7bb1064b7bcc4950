/* SPDX-License-Identifier: MIT */
#include "cf_words.h"

#include <errno.h>

const char *cf_sys_state_str(enum cf_sys_state st)
{
	switch (st) {
	case CF_SYS_FREE: return "FREE";
	case CF_SYS_ACTIVE: return "ACTIVE";
	case CF_SYS_FAILED: return "FAILED";
	}
	return "?";
}

const char *cf_reg_state_str(enum cf_reg_state st)
{
	switch (st) {
	case CF_REG_FREE: return "FREE";
	case CF_REG_CLEAN: return "INACTIVE_CLEAN";
	case CF_REG_FAILED: return "INACTIVE_FAILED";
	case CF_REG_ACTIVE: return "ACTIVE";
	}
	return "?";
}

bool cf_reg_valid(uint64_t w)
{
	enum cf_reg_state st = cf_reg_state(w);

	if (w == 0)
		return true; /* FREE as formatted: a zeroed slot (cfserver never writes unused slots) */
	if ((w & 0xffu) > CF_REG_STATE_MAX)
		return false;
	if (st == CF_REG_ACTIVE)
		return cf_reg_owner(w) != CF_NO_SYS;
	return cf_reg_owner(w) == CF_NO_SYS && cf_reg_epoch(w) == 0 && (st != CF_REG_FREE || cf_reg_incident(w) == 0);
}

bool cf_lock_valid(uint64_t w)
{
	w = cf_lock_holding(w); /* Q goes with any word, and alone */
	if (w == 0)
		return true;
	if (cf_lock_is_x(w))
		return !cf_lock_is_s(w) && (w & ~(CF_LOCK_XBIT | 0xffffffffull)) == 0 && cf_lock_x_inst(w) < 56;
	if (cf_lock_is_s(w))
		return (w & ~(CF_LOCK_SBIT | CF_LOCK_SMASK)) == 0 && cf_lock_s_holders(w) != 0;
	return false;
}

bool cf_lock_held_by(uint64_t w, uint32_t inst)
{
	if (cf_lock_is_x(w))
		return cf_lock_x_inst(w) == inst;
	if (cf_lock_is_s(w))
		return inst < 56 && (cf_lock_s_holders(w) >> inst) & 1u;
	return false;
}

int cf_lock_acquire_next(uint64_t w, uint32_t inst, uint32_t epoch, enum cf_lock_mode m, uint64_t *next)
{
	uint64_t q = w & CF_LOCK_QBIT, h = cf_lock_holding(w);

	if (inst >= 56 || !cf_lock_valid(w) || (m != CF_LOCK_S && m != CF_LOCK_X))
		return -EINVAL;
	if (h == 0) {
		if (q)
			return -EBUSY; /* free, but others queued first: the CF serves them in order */
		*next = m == CF_LOCK_X ? cf_lock_x(inst, epoch) : (CF_LOCK_SBIT | (1ull << inst));
		return 0;
	}
	if (cf_lock_is_x(h)) {
		if (cf_lock_x_inst(h) != inst)
			return -EBUSY;
		*next = w; /* X covers S and X for the same holder */
		return 0;
	}
	/* shared */
	if (m == CF_LOCK_S) {
		if (q && !cf_lock_held_by(h, inst))
			return -EBUSY; /* a newcomer joins the queue behind a waiting X */
		*next = w | (1ull << inst);
		return 0;
	}
	if (cf_lock_s_holders(h) == (1ull << inst)) {
		*next = cf_lock_x(inst, epoch) | q; /* upgrade: sole holder */
		return 0;
	}
	return -EBUSY;
}

int cf_lock_release_next(uint64_t w, uint32_t inst, uint64_t *next)
{
	uint64_t q = w & CF_LOCK_QBIT, h;

	if (inst >= 56 || !cf_lock_valid(w))
		return -EINVAL;
	if (!cf_lock_held_by(w, inst))
		return -ENOENT;
	if (cf_lock_is_x(w)) {
		*next = q;
		return 0;
	}
	h = cf_lock_s_holders(w) & ~(1ull << inst);
	*next = (h ? (CF_LOCK_SBIT | h) : 0) | q;
	return 0;
}

uint32_t cf_lock_class(const char *name, uint32_t lock_entries)
{
	/* FNV-1a 64, folded: cheap and stable across builds (part of the layout). */
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ull;
	}
	h ^= h >> 32;
	return (uint32_t)h & (lock_entries - 1u);
}
