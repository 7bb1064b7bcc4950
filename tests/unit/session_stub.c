/* SPDX-License-Identifier: MIT */
/*
 * session_stub.c - the session calls of node/ code under test over in-memory
 * images. A memory-backed log or lock table never reaches a session; these
 * only satisfy the linker, and fail loudly if one ever does.
 */
#include <errno.h>

#include "cf_session.h"

int cf_session_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len) { return -ENOTCONN; }
int cf_session_post_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len, unsigned flags)
{
	return -ENOTCONN;
}
int cf_session_post_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len) { return -ENOTCONN; }
int cf_session_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len) { return -ENOTCONN; }
int cf_session_batch(struct cf_session *s, struct cf_batch_op *ops, size_t n) { return -ENOTCONN; }
int cf_session_drain(struct cf_session *s) { return -ENOTCONN; }
int cf_session_cas(struct cf_session *s, uint64_t off, uint64_t c, uint64_t w, uint64_t *old) { return -ENOTCONN; }
int cf_session_write_then_cas(struct cf_session *s, uint64_t woff, const void *wbuf, uint32_t wlen, uint64_t coff,
			      uint64_t compare, uint64_t swap, uint64_t *old)
{
	return -ENOTCONN;
}
int cf_session_persist(struct cf_session *s, uint64_t off, uint64_t len) { return -ENOTCONN; }
int cf_session_lock_wait(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word) { return -ENOTCONN; }
int cf_session_lock_granted(struct cf_session *s, int timeout_ms, uint64_t *word) { return -ENOTCONN; }
int cf_session_lock_cancel(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word) { return -ENOTCONN; }
int cf_session_lock_kick(struct cf_session *s, uint32_t klass) { return -ENOTCONN; }
