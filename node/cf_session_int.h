/* SPDX-License-Identifier: MIT */
/*
 * cf_session_int.h - what cf_session.c (handshake, control requests, events)
 * and cf_session_ops.c (the one-sided operations) share: how a session dies,
 * and the slices every wait is cut into so that cf_session_abort and the
 * stall hook are looked at. Not installed.
 */
#ifndef CF_SESSION_INT_H
#define CF_SESSION_INT_H

#include <errno.h>
#include <stdatomic.h>

#include "cf_session.h"

static inline int kill_session(struct cf_session *s, int err)
{
	if (!s->dead)
		s->dead = err ? err : -ECONNRESET;
	return s->dead;
}

/*
 * A post the transport did not take: arguments refused (-EINVAL, -EMSGSIZE),
 * completions to reap first (-ENOBUFS) or no memory leave the connection as
 * it was; anything else is the connection's death, and so the session's.
 */
static inline int post_failed(struct cf_session *s, int r)
{
	if (r == -EINVAL || r == -EMSGSIZE || r == -ENOBUFS || r == -ENOMEM)
		return r;
	return kill_session(s, r);
}

#define ABORT_SLICE_MS 20

/* A wait of left ms (-1: no bound), cut to a slice after which the abort is looked at. */
static inline int slice_ms(int left)
{
	return left < 0 || left > ABORT_SLICE_MS ? ABORT_SLICE_MS : left;
}

/* Why the session should end now: another thread asked (cf_session_abort), or its stall hook says so; 0: not. */
static inline int stop_reason(struct cf_session *s)
{
	int e = atomic_load(&s->abort_err);

	if (!e && s->stall_fn)
		e = s->stall_fn(s->stall_arg);
	return e;
}

/* Between slices: the session ends if it should (stop_reason). */
static inline int aborted(struct cf_session *s)
{
	int e = stop_reason(s);

	return e ? kill_session(s, e) : 0;
}

#endif
