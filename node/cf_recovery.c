/* SPDX-License-Identifier: MIT */
/*
 * cf_recovery.c - default hooks (no detector, no self-recovery). The peer
 * recovery module replaces this file; the interface is cf_recovery.h.
 */
#include "cf_recovery.h"

#include <errno.h>

#include "cf_agent.h"

int cf_recovery_init(struct cf_agent *a)
{
	(void)a;
	return 0;
}

void cf_recovery_fini(struct cf_agent *a)
{
	(void)a;
}

void cf_recovery_on_event(struct cf_agent *a, const struct cf_event *ev)
{
	cf_agent_log(a, CF_AGENT_INFO, "event %s: sys %u epoch %u inst %u", cf_event_type_str(ev->type), ev->sys,
		     ev->epoch, ev->inst);
}

void cf_recovery_tick(struct cf_agent *a)
{
	(void)a;
}

int cf_agent_self_recover(struct cf_agent *a, struct cf_inst_ctx *ic, uint64_t reg)
{
	(void)ic;
	(void)reg;
	cf_agent_log(a, CF_AGENT_WARN, "self-recovery not yet available");
	return -ENOSYS;
}
