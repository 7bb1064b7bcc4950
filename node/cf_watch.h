/* SPDX-License-Identifier: MIT */
/*
 * cf_watch.h - node-side detection: the agent reads the system table and the
 * heartbeat slots one-sided and reports a peer whose heartbeat stands still
 * for T to the CF (CF_CTRL_SUSPECT), which decides by its own clock
 * (docs/design.md, "Who detects").
 *
 * Conservative by construction: silence is measured from the moment this
 * node SAW the counter move, so it is never longer than the peer's real
 * silence; and a node whose own polls stall sees the counter moved when it
 * looks again. The CF is still the only one that declares: a node's wrong
 * view (its path to the CF slow, the CF's loop stalled) costs a sweep, never
 * a healthy peer.
 *
 * cf_watch_observe is the pure part (a snapshot in, suspects out); the agent
 * does the reads and the reports.
 */
#ifndef CF_WATCH_H
#define CF_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "cf_layout.h"
#include "cf_wire.h"

struct cf_watch_peer {
	uint64_t epoch;     /* the ACTIVE incarnation watched (0: none) */
	uint64_t hb;        /* its counter when last seen to move */
	uint64_t seen_ns;   /* monotonic: when this node saw it move (or first saw it) */
	uint64_t report_ns; /* when it was last reported (0: not since it moved) */
};

struct cf_watch {
	uint32_t self, nsys;
	uint64_t timeout_ns; /* the CF's T: the CF decides with it */
	struct cf_watch_peer peer[CF_MAX_SYSTEMS_LIMIT];
	uint64_t polls, reports;
};

void cf_watch_init(struct cf_watch *w, uint32_t self, uint32_t nsys, uint64_t timeout_ns);
/*
 * One snapshot of the system table and the heartbeat slots (nsys of each),
 * read at now_ns. Fills out[0..return) with the peers to report: ACTIVE,
 * their counter unmoved for more than timeout_ns by this node's clock, not
 * reported within the last timeout_ns. An incarnation's first sight starts
 * its clock; one that has not beaten yet (counter 0) gets 2 x timeout_ns (the
 * CF grants a joining system T before its first beat, and this node may see
 * it late).
 */
uint32_t cf_watch_observe(struct cf_watch *w, const struct cf_sys_slot *sys, const struct cf_hb_slot *hb,
			  uint64_t now_ns, struct cf_suspect *out, uint32_t cap);

#endif
