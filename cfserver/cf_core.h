/* SPDX-License-Identifier: MIT */
/*
 * cf_core.h - cfserver's control plane, written once for both transports: it
 * calls only struct cf_server_ops. Handshake and authentication, membership
 * (JOIN, CONN_ATTACH, GOODBYE), instances (OPEN, authorised ATTACH, UNREG),
 * the console (POLICY_SET, RECOVER), failure processing (fence, mark, CAS the
 * instance words, events), the heartbeat sweep and the orphan scan. Written
 * as cf_core.c and one module per room beside it (cf_core_int.h; the map is
 * in cf_core.c's opening comment).
 */
#ifndef CF_CORE_H
#define CF_CORE_H

#include <stdint.h>

#include "cf_image.h"
#include "cf_transport.h"
#include "cf_wire.h"

struct ev_loop;
struct cf_core;

struct cf_core_cfg {
	uint8_t key[CF_KEY_LEN];
	uint8_t monitor_key[CF_KEY_LEN]; /* the MONITOR role's key (metrics only), if has_monitor_key */
	int has_monitor_key;
	uint64_t hb_interval_ns; /* h: how often nodes beat (the sweep runs every h/2) */
	uint64_t hb_timeout_ns;  /* T: silence that makes a system FAILED */
	uint64_t sweep_ns;       /* how often the sweep runs; 0: h/2 (at least 0.5 ms) */
	unsigned max_conns;
	/*
	 * The image is a duplexed secondary's copy taken over from its primary:
	 * keep every ACTIVE incarnation ACTIVE and give it resume_ns to come back
	 * (CONN_ATTACH with its token) instead of failing it (docs/design.md,
	 * "Incarnations kept across a switch"). 0: a restart fails them all.
	 */
	int keep_systems;
	uint64_t resume_ns;
};

/*
 * Take over an opened image: bump the generation, and run failure processing
 * for every system a previous server run left ACTIVE (their connections died
 * with that server), or keep them (cfg->keep_systems). Nothing can reach the
 * image yet.
 */
int cf_core_new(struct ev_loop *loop, const struct cf_server_ops *ops, struct cf_image *im,
		const struct cf_core_cfg *cfg, struct cf_core **out);
/*
 * Before cf_core_listen: this CF is a duplexed primary (cf_duplex.h): its
 * group commit ships every batch to dx's secondary, a DRAM image included.
 */
struct cf_duplex;
void cf_core_set_duplex(struct cf_core *core, struct cf_duplex *dx);
/* Listen (transport ops) and start the sweep; 0 or -errno. */
int cf_core_listen(struct cf_core *core, const char *addr);
int cf_core_port(struct cf_core *core);
/* Close every connection (no failure processing: a restart does it), stop timers, free. */
void cf_core_free(struct cf_core *core);

#endif
