/* SPDX-License-Identifier: MIT */
/*
 * cf_metrics.h - cfserver's metrics in the OpenMetrics text format, served in
 * chunks by CF_CTRL_METRICS (cf_wire.h) to a console or a monitor.
 *
 * The control plane (cf_core.c and its modules) owns the state and bumps
 * the counters kept here (joins, failures by cause, fences) at its decision
 * points; when a client asks for a new snapshot it fills a struct
 * cf_metrics_view (plain numbers plus the image) and this module renders the
 * text from it. Nothing here changes the CF.
 *
 * Snapshots: a scrape takes several requests (a control message is at most
 * CF_CTRL_MAX bytes), so the text is rendered once and kept, under an id, for
 * the rest of its chunks. At most CF_METRICS_SNAPSHOTS are kept (the oldest is
 * replaced): the memory is bounded whatever the number of connections, and a
 * client whose snapshot was replaced gets -ESTALE and starts again. A new
 * snapshot asked for within CF_METRICS_MIN_AGE_NS of the last one (or 20
 * times the last rendering's duration, if longer) is that one: rendering
 * scans the lock table in the loop thread, so scrapers cannot make the loop
 * spend more than ~5 % of its time on it, nor render more than 20 a second.
 *
 * Called from the loop thread only, except cf_metrics_persist_time(), which
 * the persister thread calls too (relaxed atomics).
 */
#ifndef CF_METRICS_H
#define CF_METRICS_H

#include <stdint.h>

#include "cf_layout.h"
#include "cf_persist.h"
#include "cf_wire.h"

#define CF_METRICS_SNAPSHOTS 4u
#define CF_METRICS_TEXT_MAX (1024u * 1024u)
#define CF_METRICS_MIN_AGE_NS 50000000ull
#define CF_METRICS_CAUSES 8u     /* enum cf_fail_cause, CF_FAIL_NONE..CF_FAIL_EXITING */
#define CF_METRICS_LAT_BUCKETS 16u

/* Connection roles as counted: by the connection's state in the control plane (cf_core_int.h). */
enum cf_metrics_conn {
	CF_MC_HANDSHAKE = 0, /* not authenticated yet, or authenticated and not joined */
	CF_MC_SYSTEM,
	CF_MC_CONSOLE,
	CF_MC_MONITOR,
	CF_MC_CLOSING,
	CF_MC_COUNT,
};

/* What the control plane knows, handed to the renderer for one snapshot. */
struct cf_metrics_view {
	const struct cf_image_map *map;
	const uint8_t *base; /* the image (systems, heartbeats, instances, lock table are read) */
	uint64_t hb_interval_ns, hb_timeout_ns;
	int durable;         /* --nvram */
	uint32_t conns[CF_MC_COUNT];
	uint64_t takeovers, restored, suspects, suspects_declared, resumes;
	uint64_t persist_requests, persist_refused, persist_groups, persist_max_group;
	int have_gc;
	struct cf_persist_stats gc;
	uint32_t restart_state, restart_left;
	int duplexed;         /* this CF is a duplexed primary (cfserver --duplex-listen) */
	uint32_t duplex_link; /* enum cf_duplex_link */
	uint64_t duplex_synced, image_bytes;
	/* lock hand-off (cf_lockq.c) */
	uint64_t lock_waits, lock_granted_now, lock_granted_later, lock_cancels, lock_dropped, lock_kicks;
	uint64_t lock_wait_ns_sum;
	uint32_t lock_waiting;
};

struct cf_metrics_snap {
	uint64_t id;
	uint64_t taken_ns; /* monotonic */
	char *text;
	uint32_t len;
};

struct cf_metrics {
	/* bumped by the control plane */
	uint64_t joins;
	uint64_t failures[CF_METRICS_CAUSES]; /* systems failed, by cause */
	uint64_t fences;                      /* connections fenced by failure processing */
	uint64_t monitor_refused;             /* requests a monitor may not send */
	/* persist latency: cumulative buckets are made at rendering */
	uint64_t lat_count, lat_sum_ns, lat_b[CF_METRICS_LAT_BUCKETS + 1];
	/* scrapes */
	uint64_t snapshots, next_id;
	uint64_t render_ns; /* how long the last rendering took */
	struct cf_metrics_snap snap[CF_METRICS_SNAPSHOTS];
};

void cf_metrics_init(struct cf_metrics *m);
void cf_metrics_fini(struct cf_metrics *m); /* frees the snapshots; accepts a zeroed struct */
/* One persist of the image took ns (any thread). */
void cf_metrics_persist_time(struct cf_metrics *m, uint64_t ns);

/* Fill v for a new snapshot: the control plane's side (cf_console.c). */
typedef void cf_metrics_fill_fn(void *arg, struct cf_metrics_view *v);
/*
 * Answer one METRICS request into *r (status 0, -ESTALE, -EINVAL, -ENOMEM,
 * -E2BIG): a new snapshot (q->snapshot == 0, rendered from fill's view unless
 * the last one is younger than CF_METRICS_MIN_AGE_NS), or the chunk at
 * q->offset of snapshot q->snapshot.
 */
void cf_metrics_answer(struct cf_metrics *m, const struct cf_metrics_req *q, cf_metrics_fill_fn *fill, void *arg,
		       struct cf_metrics_r *r);
/*
 * Render the text for v into a malloc'd buffer (*out, *len), "# EOF\n" last.
 * 0, -ENOMEM, or -E2BIG (over CF_METRICS_TEXT_MAX).
 */
int cf_metrics_render(const struct cf_metrics *m, const struct cf_metrics_view *v, char **out, uint32_t *len);

#endif
