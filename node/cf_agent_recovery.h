/* SPDX-License-Identifier: MIT */
/*
 * cf_agent_recovery.h - the agent's side of peer recovery: the detector fed
 * by CF events and polling, the recoveries it starts with the engine of
 * cf_recovery.h, recoveries waiting on their disk fence, self-recovery of the
 * home instance, and the log lines of each.
 *
 * Layering (no circle): cf_agent.c (membership) knows nothing of recovery;
 * this module calls it and the engine; cf_agent_loop.c (the agent loop and
 * the waits of claim and attach) calls this module.
 */
#ifndef CF_AGENT_RECOVERY_H
#define CF_AGENT_RECOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "cf_recovery.h"

struct cf_agent;
struct cf_inst_ctx;

int cf_recovery_init(struct cf_agent *a);
void cf_recovery_fini(struct cf_agent *a);
/* A CF event arrived on the JOIN session. */
void cf_recovery_on_event(struct cf_agent *a, const struct cf_event *ev);
/* Fallback polling of the instance table (every agent tick). */
void cf_recovery_tick(struct cf_agent *a);
/* Home instance found INACTIVE_FAILED at claim: recover it with the peer code. */
int cf_agent_self_recover(struct cf_agent *a, struct cf_inst_ctx *ic, uint64_t reg);
/*
 * The restart rule (docs/design.md §7): may the restarted home recover its own
 * failed instance now? Always under policy auto; under operator only when the
 * CF's restart (or a takeover) failed it, else it waits for `cfctl recover`.
 */
bool cf_agent_self_recovery_allowed(struct cf_agent *a, uint32_t inst, uint64_t reg);
/* A recovery of inst by this system waits on its disk fence (retried by cf_recovery_tick). */
bool cf_recovery_pending(struct cf_agent *a, uint32_t inst);
/* Switch the policy at run time (cfctl policy → CF event). */
void cf_recovery_set_policy(struct cf_agent *a, enum cf_policy p);
/*
 * The CF switched (cf_node_switch.c): the new primary knows only what its
 * copy holds. Fence waits are dropped (their registration CAS was not in the
 * copy, or if it was, the instance is held and recovered again with its
 * fence by cf_agent_recover_held), and every failed instance may be tried
 * once more: a registration won at the old primary may be gone.
 */
void cf_recovery_switched(struct cf_agent *a);
/*
 * Recover instance inst that this incarnation holds at the new primary
 * (reg: ACTIVE, ours); fence: its failed owner first (not for the home).
 * 0, -EINPROGRESS (the fence waits, as for any recovery), or -errno.
 */
int cf_agent_recover_held(struct cf_agent *a, uint32_t inst, uint64_t reg, bool fence);

#endif
