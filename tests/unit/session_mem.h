/* SPDX-License-Identifier: MIT */
/*
 * session_mem.h - a memory-backed session for unit tests of node/ code that
 * talks to the CF through cf_session_* (the recovery engine): one-sided ops
 * act on a malloc'd image laid out by proto/cf_layout, and the two control
 * requests recovery needs behave as cfserver's do (INST_ATTACH grants only to
 * ACTIVE(this sys, epoch); INST_UNREG CASes ACTIVE(me) -> INACTIVE_CLEAN(k)).
 */
#ifndef SESSION_MEM_H
#define SESSION_MEM_H

#include <stdbool.h>
#include <stdint.h>

#include "cf_session.h"

/* The CF: one image, shared by every session opened on it. */
struct mem_cf {
	uint8_t *img;
	struct cf_image_map map;
	/*
	 * NULL: a DRAM CF, nothing to persist. Else what a switch of CF or a
	 * power loss would leave (the secondary's copy): a PERSIST copies its
	 * range from img, nothing else reaches it.
	 */
	uint8_t *durable;
};

/*
 * Open session s of system sys, epoch on cf. Grants: the whole image except
 * every instance's log and record list, which need cf_session_inst_attach.
 */
void mem_session_open(struct cf_session *s, struct mem_cf *cf, uint32_t sys, uint32_t epoch);
/* The CF says it is durable (CF_JOINED_DURABLE): the log code sends PERSIST. cf->durable must be set. */
void mem_session_durable(struct cf_session *s);
/* The connection dies (err < 0): every later call returns err, grants are gone. */
void mem_session_kill(struct cf_session *s, int err);
void mem_session_close(struct cf_session *s);

/*
 * What the tests look at of the traffic, over every session: the batches run
 * (round trips), the first MEM_TRACE_MAX CASes in order with the batch each
 * ran in (0: a lone CAS), and the lock classes a KICK named. Reset it with
 * memset.
 */
#define MEM_TRACE_MAX 256u
struct mem_trace {
	uint64_t batches;
	uint32_t ncas, nkicks;
	uint64_t cas_off[MEM_TRACE_MAX], cas_batch[MEM_TRACE_MAX];
	uint32_t kick_class[MEM_TRACE_MAX];
	uint32_t log_hdr_reads; /* awaited READs that began at an instance's log header */
};
extern struct mem_trace mem_trace;

/*
 * INST_ATTACH with CF_ATTACH_LOG_HDR: true (the default) answers with the log
 * header as a current CF does; false answers as a CF older than the flag.
 */
extern bool mem_attach_sends_hdr;

#endif
