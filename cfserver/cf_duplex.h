/* SPDX-License-Identifier: MIT */
/*
 * cf_duplex.h - a duplexed CF: a secondary cfserver holds a synchronous copy
 * of everything a restart needs, and takes over when the primary dies.
 *
 * Who writes the copy: the primary. Everything a CF restart reads as truth
 * (docs/design.md, "Durability") already passes through the primary's group
 * commit (cf_persist): the tcp backend's durable client writes, the verbs
 * nodes' PERSIST requests, cfserver's own control-path writes. A duplexed
 * primary ships every batch to the secondary over one tcp link and makes it
 * "durable" only when the secondary acknowledged it (cf_persist replica), so
 * an acknowledged UPDATE or COMMIT is in two memories before the node goes
 * on. Lock words, record lists and heartbeats are not shipped: a takeover
 * reads them no more than a restart does (the restart barrier).
 *
 * Link (tcp, authenticated with the cluster key, domain-separated from the
 * node handshake): the secondary connects to the primary's --duplex-listen
 * address; the primary sends its header (the geometry) and its identity
 * (host, pid, start time); then the whole image in chunks through the same
 * batch stream (so a chunk and a later write of the same bytes arrive in
 * order), then SYNCED. Both ends send a PING every h; silence for the link
 * timeout, an EOF or an error is a lost link.
 *
 * Who may grant: only one CF, guaranteed by fencing, as for systems.
 *   - the primary, on losing the link, fences the secondary at once (the
 *     --cf-fence agent: SIGKILL through a pidfd on the same host, an external
 *     fence agent for another host) and holds every durable acknowledgement
 *     until the fence is confirmed; then it runs alone and says so;
 *   - the secondary, on losing the link, takes over only once the primary is
 *     fenced: at once if the primary is known dead (same host, process gone),
 *     else after --duplex-fence-delay (the primary fences first), by its own
 *     fence agent. A secondary that was not yet in sync never takes over.
 * So the primary never acknowledges a write the secondary lacks while the
 * secondary can still take over, and the secondary never takes over while
 * the primary can still acknowledge.
 *
 * Who serves after a restart: the image header says whether a secondary was
 * in sync (it may have taken over: a lone restart on such an --nvram image is
 * refused without --duplex-alone) and how many takeovers lie behind the image
 * (its term). Two CFs started alike as a pair (--duplex-pair) decide at start
 * (cf_duplex_pair.c): a serving partner is followed, the newer image serves,
 * and at most one serves.
 *
 * Files: cf_duplex.c the primary, cf_duplex_follow.c the secondary,
 * cf_duplex_pair.c a pair member's role at start, cf_duplex_link.c the link's
 * frames, key proof, dialling and fencing (cf_duplex_int.h).
 */
#ifndef CF_DUPLEX_H
#define CF_DUPLEX_H

#include <stdatomic.h>
#include <stdint.h>

#include "cf_image.h"
#include "cf_wire.h"

struct ev_loop;
struct cf_persist;
struct cf_duplex;

struct cf_duplex_cfg {
	uint8_t key[CF_KEY_LEN];
	const char *fence;        /* --cf-fence: auto (default), local, none, or an agent's path */
	uint64_t hb_interval_ns;  /* PING period */
	uint64_t link_timeout_ns; /* silence that loses the link */
	uint64_t fence_delay_ns;  /* secondary: wait before fencing a primary that may be alive */
	const char *name;         /* this CF, for logs and fence agents (plug=) */
};

/* ---- primary ---- */

/*
 * What the primary knows of its systems, for the tie-breaker of a lost link
 * (cf_duplex.c wait_for_cluster), written by the loop thread (the sweep) and
 * read by the link thread: monotonic ns of the last sweep (swept), of the
 * last heartbeat of a live system it saw move (heard) and of the last system
 * it failed for silence (silenced), 0: never; how many systems were live or
 * kept at the last sweep. A loop blocked on a durable write that waits for the
 * lost secondary sweeps no more: its last sweep's view is what counts.
 */
struct cf_duplex_cluster {
	_Atomic uint64_t swept_ns, heard_ns, silenced_ns;
	_Atomic uint32_t members;
	uint64_t hb_timeout_ns; /* T */
};

/* Before the first secondary attaches: where the core keeps what the tie-breaker reads. */
struct cf_duplex;
void cf_duplex_set_cluster(struct cf_duplex *d, const struct cf_duplex_cluster *cl);
int cf_duplex_listen(struct ev_loop *loop, struct cf_image *im, const char *addr, int lfd,
		     const struct cf_duplex_cfg *cfg, struct cf_duplex **out, char *why, size_t whylen);
/* Ship every batch of p to the secondary from now on; start a sync whenever one attaches. */
void cf_duplex_attach_persist(struct cf_duplex *d, struct cf_persist *p);
/*
 * Before p is freed (cf_core_free): stop copying the image through it. Its
 * batches still go to the secondary until cf_duplex_free; NULL is a no-op.
 */
void cf_duplex_detach_persist(struct cf_duplex *d);
/* The bound port (tests use port 0). */
int cf_duplex_port(const struct cf_duplex *d);
/* Status for cfctl: 0 none, 1 syncing, 2 in sync, 3 fencing a lost secondary. */
int cf_duplex_state(const struct cf_duplex *d, char *peer, size_t peercap, uint64_t *synced_bytes);
void cf_duplex_free(struct cf_duplex *d);

/* ---- secondary ---- */

/*
 * Follow the primary whose link listener is primary_addr: open im (DRAM, or
 * nvram if non-NULL) with the primary's geometry, keep it equal to the
 * primary's durable state, and return 0 once the primary is lost AND fenced
 * and the copy was complete: the caller then starts a CF on im (the restart
 * path). Returns -errno (why says it) when it cannot follow or must not take
 * over; -EINTR when stopped by SIGTERM/SIGINT before taking over.
 */
int cf_duplex_follow(const char *primary_addr, const char *nvram, const struct cf_duplex_cfg *cfg,
		     struct cf_image *im, char *why, size_t whylen);

/* ---- a pair member (--duplex-pair): the role decided at start, cf_duplex_pair.c ---- */

struct cf_duplex_pair;
/* Listen on this CF's link address at once, answering probes with its state; 0 or -errno with why. */
int cf_duplex_pair_open(const char *listen_addr, const struct cf_duplex_cfg *cfg, struct cf_duplex_pair **out,
			char *why, size_t whylen);
int cf_duplex_pair_port(const struct cf_duplex_pair *p);
/*
 * Decide against the partner whose link is partner_addr, im being this CF's
 * own image as just opened: 0 when this CF must serve im (its own image as
 * the primary, or, after following the partner that served, the copy it took
 * over); -EINTR when stopped by a signal; -errno with why when it must not
 * serve. Blocks while the partner follows, starts, or cannot be reached.
 */
int cf_duplex_pair_start(struct cf_duplex_pair *p, const char *partner_addr, const char *nvram, struct cf_image *im,
			 char *why, size_t whylen);
/* Stop answering probes; the listening socket, for cf_duplex_listen. */
int cf_duplex_pair_take_fd(struct cf_duplex_pair *p);
void cf_duplex_pair_free(struct cf_duplex_pair *p);

#endif
