/* SPDX-License-Identifier: MIT */
/*
 * cf_words.h - encodings of the 64-bit words that the protocol CASes.
 * Pure functions, no I/O. Every encoder masks its inputs; decode(encode(x))
 * is the identity on the documented ranges (tested exhaustively in tests/unit).
 *
 * Atomicity: on RDMA devices with IBV_ATOMIC_HCA, atomics are atomic only
 * against other atomics of the same device. So no process ever changes one of
 * these words with a plain store while nodes can reach it: nodes use CAS/FAA,
 * cfserver goes through its transport's local atomic path.
 */
#ifndef CF_WORDS_H
#define CF_WORDS_H

#include <stdbool.h>
#include <stdint.h>

#define CF_EPOCH_BITS 24u
#define CF_EPOCH_MASK ((1u << CF_EPOCH_BITS) - 1u)
#define CF_INCIDENT_MASK ((1u << 24) - 1u)
#define CF_NO_SYS 0xffu

/* ---- system state word: state (bits 0-7) | epoch (bits 32-55) ---- */
enum cf_sys_state { CF_SYS_FREE = 0, CF_SYS_ACTIVE = 1, CF_SYS_FAILED = 2 };
#define CF_SYS_STATE_MAX CF_SYS_FAILED

static inline uint64_t cf_sysword(enum cf_sys_state st, uint32_t epoch)
{
	return (uint64_t)(st & 0xffu) | ((uint64_t)(epoch & CF_EPOCH_MASK) << 32);
}
static inline enum cf_sys_state cf_sysword_state(uint64_t w) { return (enum cf_sys_state)(w & 0xffu); }
static inline uint32_t cf_sysword_epoch(uint64_t w) { return (uint32_t)(w >> 32) & CF_EPOCH_MASK; }
static inline bool cf_sysword_valid(uint64_t w)
{
	return (w & 0xffu) <= CF_SYS_STATE_MAX && (w & ~(0xffull | ((uint64_t)CF_EPOCH_MASK << 32))) == 0;
}
const char *cf_sys_state_str(enum cf_sys_state st);

/*
 * ---- registration word (instance) ----
 *   bits 0-7   state: FREE | INACTIVE_CLEAN | INACTIVE_FAILED | ACTIVE
 *   bits 8-15  owner system index (CF_NO_SYS when not ACTIVE)
 *   bits 16-39 owner's epoch (0 when not ACTIVE)
 *   bits 40-63 incident number: bumped at each failure of the instance
 * ACTIVE(S, e, k) while system S's slot is FAILED or has epoch != e means the
 * owner is stale: every reader treats the instance as failed.
 */
enum cf_reg_state { CF_REG_FREE = 0, CF_REG_CLEAN = 1, CF_REG_FAILED = 2, CF_REG_ACTIVE = 3 };
#define CF_REG_STATE_MAX CF_REG_ACTIVE

static inline uint64_t cf_regword(enum cf_reg_state st, uint32_t owner, uint32_t epoch, uint32_t incident)
{
	return (uint64_t)(st & 0xffu) | ((uint64_t)(owner & 0xffu) << 8) |
	       ((uint64_t)(epoch & CF_EPOCH_MASK) << 16) | ((uint64_t)(incident & CF_INCIDENT_MASK) << 40);
}
static inline enum cf_reg_state cf_reg_state(uint64_t w) { return (enum cf_reg_state)(w & 0xffu); }
static inline uint32_t cf_reg_owner(uint64_t w) { return (uint32_t)(w >> 8) & 0xffu; }
static inline uint32_t cf_reg_epoch(uint64_t w) { return (uint32_t)(w >> 16) & CF_EPOCH_MASK; }
static inline uint32_t cf_reg_incident(uint64_t w) { return (uint32_t)(w >> 40) & CF_INCIDENT_MASK; }
static inline uint64_t cf_reg_clean(uint32_t incident) { return cf_regword(CF_REG_CLEAN, CF_NO_SYS, 0, incident); }
static inline uint64_t cf_reg_failed(uint32_t incident) { return cf_regword(CF_REG_FAILED, CF_NO_SYS, 0, incident); }
static inline uint64_t cf_reg_active(uint32_t owner, uint32_t epoch, uint32_t incident)
{
	return cf_regword(CF_REG_ACTIVE, owner, epoch, incident);
}
/*
 * Structurally valid: state in range, owner CF_NO_SYS and epoch 0 unless
 * ACTIVE (ACTIVE: owner != CF_NO_SYS), incident 0 when FREE. The all-zero
 * word is valid too: it is FREE as a freshly formatted image holds it.
 */
bool cf_reg_valid(uint64_t w);
const char *cf_reg_state_str(enum cf_reg_state st);
/*
 * Is the ACTIVE word w owned by a stale incarnation, given the owner's
 * current system word? (false for non-ACTIVE words)
 */
static inline bool cf_reg_owner_stale(uint64_t w, uint64_t owner_sysword)
{
	return cf_reg_state(w) == CF_REG_ACTIVE &&
	       (cf_sysword_state(owner_sysword) != CF_SYS_ACTIVE ||
		cf_sysword_epoch(owner_sysword) != cf_reg_epoch(w));
}

/*
 * ---- lock word (one hash class) ----
 *   0                        free
 *   bit 63 set (X):  bits 0-7 holder instance (< 56), bits 8-31 holder's epoch tag
 *   bit 62 set (S):  bits 0-55 bitmap of holder instances (max 56 instances)
 *   bit 61 (Q), with either or alone: waiters are queued at the CF for this
 *                    class (docs/design.md, "Lock hand-off"). Only the CF sets
 *                    it, with its own CAS when it queues a waiter; a node never
 *                    takes a Q word it does not already hold (it asks the CF to
 *                    queue it: LOCK_WAIT), and a release keeps Q (X|Q → Q), so
 *                    the CF hands the class to the oldest waiter and clears Q
 *                    with the last one. Q alone: free, waiters to be served.
 * The word names every holder, so a counterpart removes exactly one
 * instance's hold with a CAS; the epoch tag makes a late release CAS of a
 * dead incarnation fail its compare once a new incarnation holds the class.
 */
enum cf_lock_mode { CF_LOCK_S = 1, CF_LOCK_X = 2 };
#define CF_LOCK_XBIT (1ull << 63)
#define CF_LOCK_SBIT (1ull << 62)
#define CF_LOCK_QBIT (1ull << 61)
#define CF_LOCK_SMASK ((1ull << 56) - 1)

static inline uint64_t cf_lock_x(uint32_t inst, uint32_t epoch)
{
	return CF_LOCK_XBIT | (uint64_t)(inst & 0xffu) | ((uint64_t)(epoch & CF_EPOCH_MASK) << 8);
}
static inline bool cf_lock_is_free(uint64_t w) { return w == 0; }
static inline bool cf_lock_is_x(uint64_t w) { return (w & CF_LOCK_XBIT) != 0; }
static inline bool cf_lock_is_s(uint64_t w) { return (w & CF_LOCK_SBIT) != 0; }
static inline bool cf_lock_queued(uint64_t w) { return (w & CF_LOCK_QBIT) != 0; }
/* The holders part: w without its Q bit (0 when nobody holds the class). */
static inline uint64_t cf_lock_holding(uint64_t w) { return w & ~CF_LOCK_QBIT; }
static inline uint32_t cf_lock_x_inst(uint64_t w) { return (uint32_t)(w & 0xffu); }
static inline uint32_t cf_lock_x_epoch(uint64_t w) { return (uint32_t)(w >> 8) & CF_EPOCH_MASK; }
static inline uint64_t cf_lock_s_holders(uint64_t w) { return w & CF_LOCK_SMASK; }
bool cf_lock_valid(uint64_t w);
/* Does w name instance inst as a holder (either mode)? */
bool cf_lock_held_by(uint64_t w, uint32_t inst);
/*
 * Next word when instance inst (epoch) acquires in mode m from current word w:
 * 0 and *next set on success; -EBUSY when incompatible (another holder), or
 * when w is queued (Q) and inst is not already a holder that this covers.
 * An upgrade S→X succeeds only when inst is the sole S holder (Q is kept). A
 * repeat acquire by the holder itself returns *next == w.
 */
int cf_lock_acquire_next(uint64_t w, uint32_t inst, uint32_t epoch, enum cf_lock_mode m, uint64_t *next);
/*
 * Next word when inst releases all its hold on w (Q is kept): -ENOENT if it
 * holds none, -EINVAL for inst >= 56 or a malformed w.
 */
int cf_lock_release_next(uint64_t w, uint32_t inst, uint64_t *next);

/* Hash of a resource name to a lock class (lock_entries is a power of two). */
uint32_t cf_lock_class(const char *name, uint32_t lock_entries);

#endif
