/* SPDX-License-Identifier: MIT */
/* cf_watch.c - node-side detection (see cf_watch.h). */
#include "cf_watch.h"

#include <string.h>

#include "cf_words.h"

void cf_watch_init(struct cf_watch *w, uint32_t self, uint32_t nsys, uint64_t timeout_ns)
{
	memset(w, 0, sizeof(*w));
	w->self = self;
	w->nsys = nsys < CF_MAX_SYSTEMS_LIMIT ? nsys : CF_MAX_SYSTEMS_LIMIT;
	w->timeout_ns = timeout_ns;
}

uint32_t cf_watch_observe(struct cf_watch *w, const struct cf_sys_slot *sys, const struct cf_hb_slot *hb,
			  uint64_t now_ns, struct cf_suspect *out, uint32_t cap)
{
	uint32_t n = 0;

	w->polls++;
	for (uint32_t k = 0; k < w->nsys; k++) {
		struct cf_watch_peer *p = &w->peer[k];
		uint64_t sw = sys[k].state, e = cf_sysword_epoch(sw);

		if (k == w->self || !cf_sysword_valid(sw) || cf_sysword_state(sw) != CF_SYS_ACTIVE) {
			memset(p, 0, sizeof(*p));
			continue;
		}
		if (p->epoch != e || hb[k].hb != p->hb) {
			/* a new incarnation, or its counter moved: its clock starts now */
			p->epoch = e;
			p->hb = hb[k].hb;
			p->seen_ns = now_ns;
			p->report_ns = 0;
			continue;
		}
		/*
		 * A system that has not beaten yet (counter 0) is starting: the CF
		 * gives it T from its JOIN; this node may have seen it late, so 2T.
		 */
		if (now_ns - p->seen_ns <= (p->hb ? w->timeout_ns : 2 * w->timeout_ns))
			continue;
		if (p->report_ns && now_ns - p->report_ns <= w->timeout_ns)
			continue;
		p->report_ns = now_ns;
		if (n < cap) {
			out[n] = (struct cf_suspect){.sys = k, .epoch = (uint32_t)e, .hb = p->hb,
						     .silent_ms = (now_ns - p->seen_ns) / 1000000u};
			n++;
		}
		w->reports++;
	}
	return n;
}
