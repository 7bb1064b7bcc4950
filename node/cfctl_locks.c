/* SPDX-License-Identifier: MIT */
/*
 * cfctl_locks.c - cfctl locks: every lock word held, its holders and its
 * waiters (see cfctl.h); and the rule telling a held record-list entry from a
 * waiting one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfctl.h"
#include "cf_lock.h"
#include "cf_slog.h"
#include "cf_util.h"
#include "cf_words.h"

/*
 * Held or waiting, the rule locks and status share. A node writes its
 * record-list entry before its lock CAS (so that recovery
 * finds every class it may hold), so an entry alone does not mean held: the
 * instance may be waiting for the class, or between its release CAS and
 * clearing the entry. Held means the class's lock word names the instance in
 * a mode that covers the entry's (X covers S). The list and the words are
 * read one after the other, not atomically: a snapshot of a moving system.
 */
bool cfctl_rec_held(const struct cf_rec_entry *e, uint64_t w, uint32_t inst)
{
	if (!cf_lock_valid(w) || !cf_lock_held_by(w, inst))
		return false;
	return e->used == 1u + CF_LOCK_S || cf_lock_is_x(w);
}

/*
 * "X", "S, 3 holders" (an S word is a bitmap of its holders), or when not
 * held "X, waiting" (live) / "X, not held" (an instance that is not running:
 * an entry a crash left between its release CAS and clearing it).
 */
void cfctl_rec_mode_str(const struct cf_rec_entry *e, uint64_t w, uint32_t inst, bool live, char *out, size_t cap)
{
	const char *mode = e->used == 1u + CF_LOCK_X ? "X" : "S";

	if (!cfctl_rec_held(e, w, inst))
		snprintf(out, cap, "%s, %s", mode, live ? "waiting" : "not held");
	else if (cf_lock_is_s(w))
		snprintf(out, cap, "S, %d holder%s", __builtin_popcountll(cf_lock_s_holders(w)),
			 __builtin_popcountll(cf_lock_s_holders(w)) == 1 ? "" : "s");
	else
		snprintf(out, cap, "%s", mode);
}

/*
 * cfctl locks [RECORD]: every non-zero lock word, its holders (named by the
 * word) and the record-list entries of its class, told apart as held or
 * waiting by cfctl_rec_held() (status's rule: an entry is written before the CAS,
 * so an entry the word does not cover is a waiter, or, for an instance that
 * is not running, a leftover). RECORD (a resource name, f0.r17) shows its
 * class only, and of the entries only those of that name. A snapshot read
 * word by word of a moving system, as status is.
 */
struct lock_view {
	const struct cf_image_map *m;
	const struct cf_sys_slot *sys;
	const struct cf_inst_slot *inst;
	struct cf_rec_entry **recs;   /* [max_instances]: record lists (NULL: instance never opened) */
	const uint64_t *table;        /* the lock table */
};

static void inst_and_owner(const struct lock_view *v, uint32_t i, char in[CF_NAME_MAX], char on[CF_NAME_MAX])
{
	uint64_t w = i < v->m->geo.max_instances ? v->inst[i].reg : 0;

	snprintf(in, CF_NAME_MAX, "inst#%u", i);
	strcpy(on, "-");
	if (i >= v->m->geo.max_instances)
		return;
	if (v->inst[i].name[0])
		cfctl_name_of(v->inst[i].name, in);
	if (cf_reg_state(w) == CF_REG_ACTIVE && cf_reg_owner(w) < v->m->geo.max_systems)
		cfctl_name_of(v->sys[cf_reg_owner(w)].name, on);
}

/* The instances a lock word names as holders, a bit each. */
static uint64_t word_holders(uint64_t w)
{
	if (cf_lock_valid(w) && cf_lock_is_x(w))
		return 1ull << (cf_lock_x_inst(w) & 63);
	if (cf_lock_valid(w) && cf_lock_is_s(w))
		return cf_lock_s_holders(w);
	return 0;
}

/* One lock word: its holders, then the entries of its class that it does not cover. */
static void print_lock(FILE *out, const struct lock_view *v, uint32_t klass, const char *filter, bool json, bool *first)
{
	const struct cf_image_map *m = v->m;
	uint64_t w = v->table[klass], holders;
	char in[CF_NAME_MAX], on[CF_NAME_MAX], md[32], n[CF_RES_NAME_MAX + 1];
	bool f;

	holders = word_holders(w);
	if (json) {
		fprintf(out, "%s{\"class\":%u,\"word\":\"%#" PRIx64 "\",\"mode\":\"%s\",\"queued\":%s,\"holders\":[",
		             *first ? "" : ",", klass, w,
		             !cf_lock_valid(w) ? "malformed" : cf_lock_is_x(w) ? "X" : cf_lock_is_s(w) ? "S" : "free",
		             cf_lock_valid(w) && cf_lock_queued(w) ? "true" : "false");
	} else {
		/* queued: waiters are queued at the CF for it (lock hand-off) */
		fprintf(out, "class %u %s%s %#" PRIx64 "\n", klass,
		             !cf_lock_valid(w) ? "MALFORMED" : cf_lock_is_x(w) ? "X" : cf_lock_is_s(w) ? "S" : "free",
		             cf_lock_valid(w) && cf_lock_queued(w) ? ", queued" : "", w);
	}
	*first = false;
	/* the holders the word names, with the names their record lists give this class */
	f = true;
	for (uint32_t i = 0; i < 64; i++) {
		bool fn = true;
		if (!(holders & (1ull << i)))
			continue;
		inst_and_owner(v, i, in, on);
		if (json) {
			fprintf(out, "%s{\"instance\":", f ? "" : ",");
			cfctl_json_str(out, in);
			fprintf(out, ",\"system\":");
			cfctl_json_str(out, on);
			fprintf(out, ",\"names\":[");
		} else {
			fprintf(out, "  held by %s (%s):", in, on);
		}
		f = false;
		for (uint32_t k = 0; i < m->geo.max_instances && v->recs[i] && k < m->geo.record_entries; k++) {
			const struct cf_rec_entry *e = &v->recs[i][k];
			if (!e->used || e->klass != klass || !cfctl_rec_held(e, w, i))
				continue;
			memcpy(n, e->name, CF_RES_NAME_MAX);
			n[CF_RES_NAME_MAX] = 0;
			if (filter && strcmp(n, filter))
				continue;
			if (json) {
				fprintf(out, "%s", fn ? "" : ",");
				cfctl_json_str(out, n);
			} else {
				cfctl_rec_mode_str(e, w, i, true, md, sizeof(md));
				fprintf(out, " %s(%s)", n, md);
			}
			fn = false;
		}
		if (json)
			fprintf(out, "]}");
		else
			fprintf(out, "%s\n", fn ? " (no record-list entry)" : "");
	}
	/* entries of the class the word does not cover: waiters (or leftovers of an instance not running) */
	if (json)
		fprintf(out, "],\"waiters\":[");
	f = true;
	for (uint32_t i = 0; i < m->geo.max_instances; i++) {
		bool live = cf_reg_state(v->inst[i].reg) == CF_REG_ACTIVE;
		for (uint32_t k = 0; v->recs[i] && k < m->geo.record_entries; k++) {
			const struct cf_rec_entry *e = &v->recs[i][k];
			if (!e->used || e->klass != klass || cfctl_rec_held(e, w, i))
				continue;
			memcpy(n, e->name, CF_RES_NAME_MAX);
			n[CF_RES_NAME_MAX] = 0;
			if (filter && strcmp(n, filter))
				continue;
			inst_and_owner(v, i, in, on);
			cfctl_rec_mode_str(e, w, i, live, md, sizeof(md));
			if (json) {
				fprintf(out, "%s{\"instance\":", f ? "" : ",");
				cfctl_json_str(out, in);
				fprintf(out, ",\"system\":");
				cfctl_json_str(out, on);
				fprintf(out, ",\"name\":");
				cfctl_json_str(out, n);
				fprintf(out, ",\"mode\":\"%s\",\"waiting\":%s}", e->used == 1u + CF_LOCK_X ? "X" : "S",
				             live ? "true" : "false");
			} else {
				fprintf(out, "  %s %s (%s): %s(%s)\n", live ? "waiting" : "not held", in, on, n, md);
			}
			f = false;
		}
	}
	if (json)
		fprintf(out, "]}");
}

static int locks_print(const struct cfctl_opts *o, const char *record, FILE *out)
{
	struct cf_session s;
	const struct cf_image_map *m;
	struct lock_view v = {0};
	struct cf_sys_slot *sys = NULL;
	struct cf_inst_slot *inst = NULL;
	uint64_t *table = NULL;
	uint32_t want = 0, nwords = 0, nwait = 0, held_by[64] = {0};
	bool first = true;
	int rc, r;

	memset(&s, 0, sizeof(s));
	rc = cfctl_open_console(o, &s);
	if (rc)
		return rc;
	m = &s.map;
	rc = EX_FAIL;
	sys = calloc(m->geo.max_systems, sizeof(*sys));
	inst = calloc(m->geo.max_instances, sizeof(*inst));
	table = malloc((size_t)m->geo.lock_entries * 8u);
	v.recs = calloc(m->geo.max_instances, sizeof(*v.recs));
	if (!sys || !inst || !table || !v.recs) {
		cf_slog_err("out of memory");
		goto out;
	}
	v.m = m;
	v.sys = sys;
	v.inst = inst;
	v.table = table;
	/* the entries first, then the words: an entry is written before its CAS, so a hold read is explained */
	r = cfctl_read_range(&s, m->off_systems, sys, m->geo.max_systems * sizeof(*sys));
	if (!r)
		r = cfctl_read_range(&s, m->off_instances, inst, m->geo.max_instances * sizeof(*inst));
	for (uint32_t i = 0; !r && i < m->geo.max_instances; i++) {
		if (!inst[i].name[0] && cf_reg_state(inst[i].reg) == CF_REG_FREE)
			continue;
		v.recs[i] = malloc(m->records_size);
		if (!v.recs[i]) {
			r = -ENOMEM;
			break;
		}
		r = cfctl_read_range(&s, cf_rec_off(m, i), v.recs[i], m->records_size);
	}
	if (!r)
		r = cfctl_read_range(&s, m->off_locks, table, (uint64_t)m->geo.lock_entries * 8u);
	if (r) {
		cf_slog_err("locks: reading the CF image: %s", strerror(-r));
		goto out;
	}
	if (record)
		want = cf_lock_class(record, m->geo.lock_entries);
	if (o->json) {
		fprintf(out, "{\"lock_entries\":%u,", m->geo.lock_entries);
		if (record) {
			fprintf(out, "\"record\":");
			cfctl_json_str(out, record);
			fprintf(out, ",\"record_class\":%u,", want);
		}
		fprintf(out, "\"locks\":[");
	}
	for (uint32_t k = 0; k < m->geo.lock_entries; k++) {
		if (!table[k] || (record && k != want))
			continue;
		print_lock(out, &v, k, record, o->json, &first);
		nwords++;
		for (uint64_t h = word_holders(table[k]); h; h &= h - 1)
			held_by[__builtin_ctzll(h)]++;
	}
	/* waiters on a class whose word is free now (released since, or between two tries) are not shown */
	for (uint32_t i = 0; i < m->geo.max_instances; i++)
		for (uint32_t k = 0; v.recs[i] && k < m->geo.record_entries; k++) {
			const struct cf_rec_entry *e = &v.recs[i][k];
			if (e->used && e->klass < m->geo.lock_entries && table[e->klass] && !cfctl_rec_held(e, table[e->klass], i) &&
			    (!record || e->klass == want) && cf_reg_state(inst[i].reg) == CF_REG_ACTIVE)
				nwait++;
		}
	if (o->json) {
		/* "held_by": the words that name each instance as a holder (either mode) */
		bool f = true;
		fprintf(out, "],\"words\":%u,\"waiting\":%u,\"held_by\":{", nwords, nwait);
		for (uint32_t i = 0; i < 64; i++) {
			char in[CF_NAME_MAX], on[CF_NAME_MAX];
			if (!held_by[i])
				continue;
			inst_and_owner(&v, i, in, on);
			fprintf(out, "%s", f ? "" : ",");
			cfctl_json_str(out, in);
			fprintf(out, ":%u", held_by[i]);
			f = false;
		}
		fprintf(out, "}}\n");
	}
	else if (record && !nwords)
		fprintf(out, "%s (class %u): free\n", record, want);
	else
		fprintf(out, "%u lock word%s held, %u entr%s waiting\n", nwords, nwords == 1 ? "" : "s", nwait,
		             nwait == 1 ? "y" : "ies");
	rc = 0;
out:
	for (uint32_t i = 0; v.recs && i < m->geo.max_instances; i++)
		free(v.recs[i]);
	free(v.recs);
	free(table);
	free(sys);
	free(inst);
	cf_session_close(&s);
	return rc;
}

int cfctl_locks(const struct cfctl_opts *o, const char *record)
{
	if (record && (!record[0] || strlen(record) >= CF_RES_NAME_MAX)) {
		cf_slog_usage("locks: RECORD must be a resource name of 1..%u characters (f0.r17)",
			CF_RES_NAME_MAX - 1);
		return EX_USAGE_;
	}
	return cfctl_with_fields(o, record, locks_print);
}
