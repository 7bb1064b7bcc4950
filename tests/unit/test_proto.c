/* SPDX-License-Identifier: MIT */
/*
 * test_proto.c - exhaustive unit tests of proto/: word encodings (cf_words),
 * image layout and header (cf_layout), undo-log records (cf_logrec), frames
 * and control messages (cf_wire).
 *
 * A tiny framework: CHECK() counts passes and failures, prints the first
 * failures with their line, and main() ends with "N passed, M failed" and
 * exit status 1 on any failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_layout.h"
#include "cf_logrec.h"
#include "cf_util.h"
#include "cf_wire.h"
#include "cf_words.h"

static unsigned long n_pass, n_fail;

#define CHECK(cond) CHECKF(cond, "%s", "")
#define CHECKF(cond, fmt, ...)                                                                    \
	do {                                                                                      \
		if (cond) {                                                                       \
			n_pass++;                                                                 \
		} else {                                                                          \
			if (n_fail++ < 40)                                                        \
				fprintf(stderr, "%s:%d: FAIL %s " fmt "\n", __FILE__, __LINE__, #cond, \
					__VA_ARGS__);                                             \
		}                                                                                 \
	} while (0)

/* Deterministic PRNG (xorshift64*), so that failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

/* Sampled 24-bit values: the boundaries 0, 1, mask and a few in between. */
static const uint32_t samples24[] = {0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x5a5a5a, 0x7fffff, 0x800000,
				     CF_EPOCH_MASK - 1, CF_EPOCH_MASK};

/* ======================= cf_words: system word ======================= */

static void test_sysword(void)
{
	for (uint32_t st = 0; st <= CF_SYS_STATE_MAX; st++) {
		for (size_t i = 0; i < CF_ARRAY_SIZE(samples24); i++) {
			uint32_t e = samples24[i];
			uint64_t w = cf_sysword((enum cf_sys_state)st, e);
			CHECKF(cf_sysword_state(w) == st, "st=%u e=%u", st, e);
			CHECKF(cf_sysword_epoch(w) == e, "st=%u e=%u", st, e);
			CHECKF(cf_sysword_valid(w), "st=%u e=%u", st, e);
			/* stray bits anywhere outside the two fields make it invalid */
			for (int b = 8; b < 64; b++) {
				if (b >= 32 && b < 56)
					continue;
				CHECKF(!cf_sysword_valid(w | (1ull << b)), "st=%u bit=%d", st, b);
			}
		}
		CHECK(strcmp(cf_sys_state_str((enum cf_sys_state)st), "?") != 0);
	}
	/* encoder masks: epochs wider than 24 bits wrap */
	CHECK(cf_sysword_epoch(cf_sysword(CF_SYS_ACTIVE, CF_EPOCH_MASK + 1)) == 0);
	CHECK(cf_sysword_epoch(cf_sysword(CF_SYS_ACTIVE, 0xffffffffu)) == CF_EPOCH_MASK);
	for (uint32_t st = CF_SYS_STATE_MAX + 1; st < 256; st++)
		CHECKF(!cf_sysword_valid((uint64_t)st | (5ull << 32)), "st=%u", st);
	CHECK(strcmp(cf_sys_state_str((enum cf_sys_state)7), "?") == 0);
}

/* ======================= cf_words: registration word ======================= */

static void test_regword(void)
{
	/* every state x every owner 0..254 x sampled epochs x sampled incidents */
	for (uint32_t st = 0; st <= CF_REG_STATE_MAX; st++) {
		for (uint32_t owner = 0; owner < 255; owner++) {
			for (size_t i = 0; i < CF_ARRAY_SIZE(samples24); i++) {
				for (size_t j = 0; j < CF_ARRAY_SIZE(samples24); j++) {
					uint32_t e = samples24[i], k = samples24[j];
					uint64_t w = cf_regword((enum cf_reg_state)st, owner, e, k);
					bool ok;

					CHECKF(cf_reg_state(w) == st, "st=%u o=%u e=%u k=%u", st, owner, e, k);
					CHECKF(cf_reg_owner(w) == owner, "st=%u o=%u e=%u k=%u", st, owner, e, k);
					CHECKF(cf_reg_epoch(w) == e, "st=%u o=%u e=%u k=%u", st, owner, e, k);
					CHECKF(cf_reg_incident(w) == k, "st=%u o=%u e=%u k=%u", st, owner, e, k);
					/*
					 * only ACTIVE names an owner; FREE has no incident
					 * either; the all-zero word is FREE as formatted
					 */
					ok = st == CF_REG_ACTIVE || w == 0;
					CHECKF(cf_reg_valid(w) == ok, "st=%u o=%u e=%u k=%u", st, owner, e, k);
				}
			}
		}
		/* the well-formed non-ACTIVE words */
		for (size_t j = 0; j < CF_ARRAY_SIZE(samples24); j++) {
			uint32_t k = samples24[j];
			uint64_t w = cf_regword((enum cf_reg_state)st, CF_NO_SYS, 0, k);
			bool ok = st == CF_REG_CLEAN || st == CF_REG_FAILED || (st == CF_REG_FREE && k == 0);
			CHECKF(cf_reg_valid(w) == ok, "st=%u k=%u", st, k);
			CHECKF(cf_reg_owner(w) == CF_NO_SYS && cf_reg_incident(w) == k, "st=%u k=%u", st, k);
			if (st != CF_REG_ACTIVE) {
				/* a nonzero epoch while not ACTIVE is malformed */
				for (size_t i = 1; i < CF_ARRAY_SIZE(samples24); i++)
					CHECKF(!cf_reg_valid(cf_regword((enum cf_reg_state)st, CF_NO_SYS,
									 samples24[i], k)),
					       "st=%u e=%u", st, samples24[i]);
			}
		}
		/* ACTIVE with owner CF_NO_SYS is malformed */
		CHECK(!cf_reg_valid(cf_regword((enum cf_reg_state)st, CF_NO_SYS, 7, 9)) || st != CF_REG_ACTIVE);
		CHECK(strcmp(cf_reg_state_str((enum cf_reg_state)st), "?") != 0);
	}
	/* constructors */
	for (size_t j = 0; j < CF_ARRAY_SIZE(samples24); j++) {
		uint32_t k = samples24[j];
		uint64_t c = cf_reg_clean(k), f = cf_reg_failed(k);
		CHECK(cf_reg_state(c) == CF_REG_CLEAN && cf_reg_incident(c) == k && cf_reg_valid(c));
		CHECK(cf_reg_state(f) == CF_REG_FAILED && cf_reg_incident(f) == k && cf_reg_valid(f));
		CHECK(cf_reg_owner(c) == CF_NO_SYS && cf_reg_epoch(c) == 0);
		for (uint32_t o = 0; o < 255; o += 17) {
			uint64_t a = cf_reg_active(o, samples24[(j + 3) % CF_ARRAY_SIZE(samples24)], k);
			CHECK(cf_reg_state(a) == CF_REG_ACTIVE && cf_reg_owner(a) == o && cf_reg_incident(a) == k);
			CHECK(cf_reg_valid(a));
			CHECK(a != c && a != f && c != f);
		}
	}
	/* a zeroed slot is FREE (cfserver formats with zero pages) */
	CHECK(cf_reg_valid(0) && cf_reg_state(0) == CF_REG_FREE);
	CHECK(!cf_reg_valid(cf_regword(CF_REG_FREE, 0, 0, 1)) && !cf_reg_valid(cf_regword(CF_REG_FREE, 1, 0, 0)));
	/* invalid state bytes, whatever the rest */
	for (uint32_t st = CF_REG_STATE_MAX + 1; st < 256; st++) {
		CHECKF(!cf_reg_valid(cf_regword((enum cf_reg_state)st, CF_NO_SYS, 0, 0)), "st=%u", st);
		CHECKF(!cf_reg_valid(cf_regword((enum cf_reg_state)st, 3, 4, 5)), "st=%u", st);
	}
	CHECK(strcmp(cf_reg_state_str((enum cf_reg_state)9), "?") == 0);
	/* the encoder masks out-of-range inputs instead of bleeding into other fields */
	{
		uint64_t w = cf_regword(CF_REG_ACTIVE, 0x1ff, CF_EPOCH_MASK + 2, CF_INCIDENT_MASK + 3);
		CHECK(cf_reg_state(w) == CF_REG_ACTIVE && cf_reg_owner(w) == 0xff && cf_reg_epoch(w) == 1 &&
		      cf_reg_incident(w) == 2);
	}
	/* random words: decode/encode is the identity on all 64 bits */
	for (int n = 0; n < 200000; n++) {
		uint64_t w = rnd();
		uint64_t r = cf_regword(cf_reg_state(w), cf_reg_owner(w), cf_reg_epoch(w), cf_reg_incident(w));
		CHECKF(r == w, "w=%#" PRIx64, w);
	}
}

static void test_reg_owner_stale(void)
{
	static const uint32_t ep[] = {0, 1, 2, 0x123456, CF_EPOCH_MASK - 1, CF_EPOCH_MASK};

	for (uint32_t rst = 0; rst <= CF_REG_STATE_MAX; rst++) {
		for (size_t i = 0; i < CF_ARRAY_SIZE(ep); i++) {
			uint32_t owner = rst == CF_REG_ACTIVE ? 5 : CF_NO_SYS;
			uint32_t re = rst == CF_REG_ACTIVE ? ep[i] : 0;
			uint64_t w = cf_regword((enum cf_reg_state)rst, owner, re, 42);

			for (uint32_t sst = 0; sst <= CF_SYS_STATE_MAX; sst++) {
				for (size_t j = 0; j < CF_ARRAY_SIZE(ep); j++) {
					uint64_t sw = cf_sysword((enum cf_sys_state)sst, ep[j]);
					bool want = rst == CF_REG_ACTIVE && (sst != CF_SYS_ACTIVE || ep[j] != re);
					CHECKF(cf_reg_owner_stale(w, sw) == want, "reg st=%u e=%u sys st=%u e=%u", rst,
					       re, sst, ep[j]);
				}
			}
		}
	}
}

/* ======================= cf_words: lock word ======================= */

/* Reference model of a lock word: who holds it, in which mode. */
struct lmodel {
	int mode; /* 0 free, CF_LOCK_S, CF_LOCK_X */
	uint64_t holders;
	uint32_t xepoch;
};

static uint64_t lmodel_word(const struct lmodel *m)
{
	if (m->mode == 0)
		return 0;
	if (m->mode == CF_LOCK_X) {
		int inst = __builtin_ctzll(m->holders);
		return cf_lock_x((uint32_t)inst, m->xepoch);
	}
	return CF_LOCK_SBIT | m->holders;
}

static void test_lock_cases(void)
{
	uint64_t next, w;
	const uint32_t me = 7, other = 30, third = 55;

	/* free */
	CHECK(cf_lock_acquire_next(0, me, 9, CF_LOCK_S, &next) == 0 && next == (CF_LOCK_SBIT | 1ull << me));
	CHECK(cf_lock_acquire_next(0, me, 9, CF_LOCK_X, &next) == 0 && next == cf_lock_x(me, 9));
	CHECK(cf_lock_x_inst(next) == me && cf_lock_x_epoch(next) == 9 && cf_lock_is_x(next));
	CHECK(cf_lock_release_next(0, me, &next) == -ENOENT);

	/* S held by self */
	w = CF_LOCK_SBIT | 1ull << me;
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_S, &next) == 0 && next == w);
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_X, &next) == 0 && next == cf_lock_x(me, 9)); /* upgrade */
	CHECK(cf_lock_release_next(w, me, &next) == 0 && next == 0);
	CHECK(cf_lock_release_next(w, other, &next) == -ENOENT);
	CHECK(cf_lock_acquire_next(w, other, 1, CF_LOCK_S, &next) == 0 &&
	      next == (CF_LOCK_SBIT | 1ull << me | 1ull << other));
	CHECK(cf_lock_acquire_next(w, other, 1, CF_LOCK_X, &next) == -EBUSY);

	/* S held by others */
	w = CF_LOCK_SBIT | 1ull << other | 1ull << third;
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_S, &next) == 0 && next == (w | 1ull << me));
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_X, &next) == -EBUSY);
	CHECK(cf_lock_release_next(w, me, &next) == -ENOENT);
	CHECK(cf_lock_release_next(w, other, &next) == 0 && next == (CF_LOCK_SBIT | 1ull << third));

	/* S held by self and others: no upgrade */
	w = CF_LOCK_SBIT | 1ull << me | 1ull << other;
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_S, &next) == 0 && next == w);
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_X, &next) == -EBUSY);
	CHECK(cf_lock_release_next(w, me, &next) == 0 && next == (CF_LOCK_SBIT | 1ull << other));

	/* X held by self: repeat acquire in either mode is a no-op */
	w = cf_lock_x(me, 9);
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_S, &next) == 0 && next == w);
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_X, &next) == 0 && next == w);
	CHECK(cf_lock_release_next(w, me, &next) == 0 && next == 0);

	/* X held by another */
	w = cf_lock_x(other, 3);
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_S, &next) == -EBUSY);
	CHECK(cf_lock_acquire_next(w, me, 9, CF_LOCK_X, &next) == -EBUSY);
	CHECK(cf_lock_release_next(w, me, &next) == -ENOENT);

	/* bad arguments */
	for (uint32_t inst = 56; inst < 300; inst++) {
		CHECKF(cf_lock_acquire_next(0, inst, 1, CF_LOCK_S, &next) == -EINVAL, "inst=%u", inst);
		CHECKF(cf_lock_acquire_next(0, inst, 1, CF_LOCK_X, &next) == -EINVAL, "inst=%u", inst);
		CHECKF(cf_lock_release_next(CF_LOCK_SBIT | 1, inst, &next) == -EINVAL, "inst=%u", inst);
		CHECKF(cf_lock_release_next(cf_lock_x(inst & 0x3f, 1), inst, &next) == -EINVAL, "inst=%u", inst);
		CHECKF(!cf_lock_held_by(CF_LOCK_SBIT | CF_LOCK_SMASK, inst), "inst=%u", inst);
	}
	CHECK(cf_lock_acquire_next(0, me, 1, (enum cf_lock_mode)0, &next) == -EINVAL);
	CHECK(cf_lock_acquire_next(0, me, 1, (enum cf_lock_mode)3, &next) == -EINVAL);
	/* malformed current word */
	CHECK(cf_lock_acquire_next(CF_LOCK_SBIT, me, 1, CF_LOCK_S, &next) == -EINVAL);
	CHECK(cf_lock_acquire_next(CF_LOCK_XBIT | CF_LOCK_SBIT | 1, me, 1, CF_LOCK_S, &next) == -EINVAL);
	CHECK(cf_lock_release_next(CF_LOCK_XBIT | CF_LOCK_SBIT | me, me, &next) == -EINVAL);
	CHECK(cf_lock_release_next(CF_LOCK_XBIT | 1ull << 40 | me, me, &next) == -EINVAL);
}

/* Every pair of instances, every mode: compare with the reference model. */
static void test_lock_pairs(void)
{
	for (uint32_t a = 0; a < 56; a++) {
		for (uint32_t b = 0; b < 56; b++) {
			for (int ma = CF_LOCK_S; ma <= CF_LOCK_X; ma++) {
				for (int mb = CF_LOCK_S; mb <= CF_LOCK_X; mb++) {
					uint64_t w1, w2, w3;
					int r;

					CHECK(cf_lock_acquire_next(0, a, a + 100, (enum cf_lock_mode)ma, &w1) == 0);
					CHECK(cf_lock_valid(w1) && cf_lock_held_by(w1, a));
					r = cf_lock_acquire_next(w1, b, b + 200, (enum cf_lock_mode)mb, &w2);
					if (a == b) {
						/* repeat by the holder: S→S same, S→X upgrade, X→any same */
						uint64_t want = (ma == CF_LOCK_S && mb == CF_LOCK_X) ? cf_lock_x(b, b + 200) : w1;
						CHECKF(r == 0 && w2 == want, "a=%u ma=%d mb=%d", a, ma, mb);
					} else if (ma == CF_LOCK_S && mb == CF_LOCK_S) {
						CHECKF(r == 0 && w2 == (w1 | 1ull << b), "a=%u b=%u", a, b);
						CHECK(cf_lock_held_by(w2, a) && cf_lock_held_by(w2, b));
						/* release in both orders ends free, via the other holder alone */
						CHECK(cf_lock_release_next(w2, a, &w3) == 0 && w3 == (CF_LOCK_SBIT | 1ull << b));
						CHECK(cf_lock_release_next(w2, b, &w3) == 0 && w3 == w1);
					} else {
						CHECKF(r == -EBUSY, "a=%u b=%u ma=%d mb=%d r=%d", a, b, ma, mb, r);
					}
					/* third parties never hold it */
					for (uint32_t c = 0; c < 56; c++)
						if (c != a)
							CHECK(!cf_lock_held_by(w1, c));
				}
			}
		}
	}
}

/* Random walks of up to 56 instances checked against the model. */
static void test_lock_random(void)
{
	for (int walk = 0; walk < 2000; walk++) {
		struct lmodel m = {0, 0, 0};
		uint32_t ninst = (uint32_t)(rnd() % 56) + 1;

		for (int step = 0; step < 200; step++) {
			uint64_t w = lmodel_word(&m), next = 0xdeadull;
			uint32_t inst = (uint32_t)(rnd() % ninst);
			uint32_t ep = (uint32_t)rnd() & CF_EPOCH_MASK;
			int r;

			CHECK(cf_lock_valid(w));
			if (rnd() % 3 == 0) {
				r = cf_lock_release_next(w, inst, &next);
				if (!(m.holders >> inst & 1)) {
					CHECKF(r == -ENOENT, "r=%d", r);
					continue;
				}
				CHECK(r == 0);
				m.holders &= ~(1ull << inst);
				if (!m.holders)
					m.mode = 0;
			} else {
				int mode = rnd() & 1 ? CF_LOCK_X : CF_LOCK_S;
				bool grant;
				r = cf_lock_acquire_next(w, inst, ep, (enum cf_lock_mode)mode, &next);
				if (m.mode == 0)
					grant = true;
				else if (m.mode == CF_LOCK_X)
					grant = m.holders == 1ull << inst;
				else
					grant = mode == CF_LOCK_S || m.holders == 1ull << inst;
				CHECKF(grant ? r == 0 : r == -EBUSY, "r=%d", r);
				if (!grant)
					continue;
				if (m.mode == CF_LOCK_X) {
					CHECK(next == w);
				} else if (mode == CF_LOCK_X) {
					m.mode = CF_LOCK_X;
					m.holders = 1ull << inst;
					m.xepoch = ep;
				} else {
					m.mode = CF_LOCK_S;
					m.holders |= 1ull << inst;
				}
			}
			CHECKF(next == lmodel_word(&m), "next=%#" PRIx64 " model=%#" PRIx64, next, lmodel_word(&m));
			for (uint32_t c = 0; c < 56; c++)
				if (cf_lock_held_by(next, c) != ((m.holders >> c) & 1))
					CHECKF(0, "held_by c=%u", c);
		}
	}
}

static void test_lock_valid(void)
{
	CHECK(cf_lock_valid(0));
	CHECK(cf_lock_is_free(0) && !cf_lock_is_x(0) && !cf_lock_is_s(0));
	for (uint32_t i = 0; i < 56; i++) {
		CHECK(cf_lock_valid(cf_lock_x(i, 0)) && cf_lock_valid(cf_lock_x(i, CF_EPOCH_MASK)));
		CHECK(cf_lock_valid(CF_LOCK_SBIT | 1ull << i));
		CHECK(cf_lock_valid(CF_LOCK_SBIT | (CF_LOCK_SMASK >> i)));
	}
	CHECK(cf_lock_valid(CF_LOCK_SBIT | CF_LOCK_SMASK));
	/* malformed */
	CHECK(!cf_lock_valid(CF_LOCK_SBIT));                        /* S with no holder */
	CHECK(!cf_lock_valid(CF_LOCK_XBIT | CF_LOCK_SBIT));         /* both modes */
	CHECK(!cf_lock_valid(CF_LOCK_XBIT | CF_LOCK_SBIT | 1));
	for (int b = 0; b < 61; b++)                                 /* no mode bit, something set */
		CHECKF(!cf_lock_valid(1ull << b) && !cf_lock_valid(1ull << b | CF_LOCK_QBIT), "b=%d", b);
	for (int b = 32; b < 61; b++)                                /* X with stray high bits */
		CHECKF(!cf_lock_valid(cf_lock_x(1, 1) | 1ull << b), "b=%d", b);
	for (int b = 56; b < 61; b++)                                /* S with bits past the bitmap */
		CHECKF(!cf_lock_valid(CF_LOCK_SBIT | 1 | 1ull << b), "b=%d", b);
	/* Q (bit 61, lock hand-off): alone, or with any valid shape */
	CHECK(cf_lock_valid(CF_LOCK_QBIT) && cf_lock_valid(cf_lock_x(1, 1) | CF_LOCK_QBIT));
	CHECK(cf_lock_valid(CF_LOCK_SBIT | 1 | CF_LOCK_QBIT) && !cf_lock_valid(CF_LOCK_SBIT | CF_LOCK_QBIT));
	for (uint32_t i = 56; i < 256; i++)                          /* X naming no instance */
		CHECKF(!cf_lock_valid(CF_LOCK_XBIT | i), "i=%u", i);
	/* random words: valid iff one of the three shapes */
	for (int n = 0; n < 200000; n++) {
		uint64_t w = rnd(), h;
		bool shape;
		switch (n % 3) {
		case 0: w &= CF_LOCK_XBIT | 0xffffffffull; break;
		case 1: w = (w & (CF_LOCK_SMASK | 1ull << 60)) | CF_LOCK_SBIT; break;
		default: break;
		}
		h = w & ~CF_LOCK_QBIT; /* Q goes with every shape */
		if (h == 0)
			shape = true;
		else if ((h >> 62) == 2)
			shape = (h & ~(CF_LOCK_XBIT | 0xffffffffull)) == 0 && (h & 0xff) < 56;
		else if ((h >> 62) == 1)
			shape = (h & ~(CF_LOCK_SBIT | CF_LOCK_SMASK)) == 0 && (h & CF_LOCK_SMASK) != 0;
		else
			shape = false;
		CHECKF(cf_lock_valid(w) == shape, "w=%#" PRIx64, w);
	}
}

static void test_lock_class(void)
{
	char name[CF_RES_NAME_MAX];

	for (uint32_t n = CF_LOCK_ENTRIES_MIN; n <= CF_LOCK_ENTRIES_LIMIT; n <<= 1) {
		bool all_in_range = true;
		for (int i = 0; i < 2000; i++) {
			snprintf(name, sizeof(name), "acct.%d", i);
			uint32_t k = cf_lock_class(name, n);
			all_in_range &= k < n;
			/* masking: the class in a smaller table is the low bits of the class in a larger */
			if (n > CF_LOCK_ENTRIES_MIN && (cf_lock_class(name, n / 2) != (k & (n / 2 - 1))))
				all_in_range = false;
		}
		CHECKF(all_in_range, "n=%u", n);
	}
	/* stable: same name, same class */
	CHECK(cf_lock_class("record-1", 65536) == cf_lock_class("record-1", 65536));
	CHECK(cf_lock_class("", 64) < 64);
	/* spread: 64 classes, 64 000 names; every class within 25% of the mean */
	{
		enum { K = 64, N = 64000 };
		uint32_t hist[K] = {0}, lo = UINT32_MAX, hi = 0;
		for (int i = 0; i < N; i++) {
			snprintf(name, sizeof(name), "file%d:%d", i % 17, i);
			hist[cf_lock_class(name, K)]++;
		}
		for (int i = 0; i < K; i++) {
			lo = hist[i] < lo ? hist[i] : lo;
			hi = hist[i] > hi ? hist[i] : hi;
		}
		CHECKF(lo > N / K * 3 / 4 && hi < N / K * 5 / 4, "lo=%u hi=%u", lo, hi);
	}
	/* sequential names spread over a large table too: few collisions */
	{
		enum { K = 65536, N = 4096 };
		static uint8_t seen[K];
		int coll = 0;
		for (int i = 0; i < N; i++) {
			snprintf(name, sizeof(name), "acct.%06d", i);
			uint32_t k = cf_lock_class(name, K);
			coll += seen[k];
			seen[k] = 1;
		}
		/* expected ~ N^2 / 2K = 128 */
		CHECKF(coll < 256, "collisions=%d", coll);
	}
}

/* ======================= cf_layout ======================= */

static struct cf_geometry geo_default(void)
{
	struct cf_geometry g = {CF_DEFAULT_MAX_SYSTEMS, CF_DEFAULT_MAX_INSTANCES, CF_DEFAULT_LOCK_ENTRIES,
				CF_DEFAULT_RECORD_ENTRIES, CF_DEFAULT_LOG_SIZE};
	return g;
}

static int geo_try(struct cf_geometry g)
{
	const char *why = "unset";
	int r = cf_geometry_check(&g, &why);
	CHECKF(r == 0 ? why == NULL : (r == -EINVAL && why != NULL && *why), "r=%d", r);
	CHECK(cf_geometry_check(&g, NULL) == r);
	return r;
}

static void test_geometry(void)
{
	struct cf_geometry g;

	CHECK(geo_try(geo_default()) == 0);
#define GEO(field, val) (g = geo_default(), g.field = (val), geo_try(g))
	CHECK(GEO(max_systems, 0) == -EINVAL);
	CHECK(GEO(max_systems, 1) == 0);
	CHECK(GEO(max_systems, CF_MAX_SYSTEMS_LIMIT) == 0);
	CHECK(GEO(max_systems, CF_MAX_SYSTEMS_LIMIT + 1) == -EINVAL);
	CHECK(GEO(max_systems, UINT32_MAX) == -EINVAL);
	CHECK(GEO(max_instances, 0) == -EINVAL);
	CHECK(GEO(max_instances, 1) == 0);
	CHECK(GEO(max_instances, CF_MAX_INSTANCES_LIMIT) == 0);
	CHECK(GEO(max_instances, CF_MAX_INSTANCES_LIMIT + 1) == -EINVAL);
	CHECK(GEO(lock_entries, 0) == -EINVAL);
	CHECK(GEO(lock_entries, CF_LOCK_ENTRIES_MIN / 2) == -EINVAL);
	CHECK(GEO(lock_entries, CF_LOCK_ENTRIES_MIN - 1) == -EINVAL);
	CHECK(GEO(lock_entries, CF_LOCK_ENTRIES_MIN) == 0);
	CHECK(GEO(lock_entries, CF_LOCK_ENTRIES_MIN + 1) == -EINVAL); /* not a power of two */
	CHECK(GEO(lock_entries, 96) == -EINVAL);
	CHECK(GEO(lock_entries, CF_LOCK_ENTRIES_LIMIT) == 0);
	CHECK(GEO(lock_entries, CF_LOCK_ENTRIES_LIMIT - 1) == -EINVAL);
	CHECK(GEO(lock_entries, CF_LOCK_ENTRIES_LIMIT * 2) == -EINVAL);
	for (uint32_t n = CF_LOCK_ENTRIES_MIN; n <= CF_LOCK_ENTRIES_LIMIT; n <<= 1)
		CHECKF(GEO(lock_entries, n) == 0, "n=%u", n);
	CHECK(GEO(record_entries, 0) == -EINVAL);
	CHECK(GEO(record_entries, CF_RECORD_ENTRIES_MIN - 1) == -EINVAL);
	CHECK(GEO(record_entries, CF_RECORD_ENTRIES_MIN) == 0);
	CHECK(GEO(record_entries, CF_RECORD_ENTRIES_MIN + 1) == 0);
	CHECK(GEO(record_entries, CF_RECORD_ENTRIES_LIMIT) == 0);
	CHECK(GEO(record_entries, CF_RECORD_ENTRIES_LIMIT + 1) == -EINVAL);
	CHECK(GEO(log_size, 0) == -EINVAL);
	CHECK(GEO(log_size, CF_LOG_SIZE_MIN - CF_PAGE) == -EINVAL);
	CHECK(GEO(log_size, CF_LOG_SIZE_MIN - 1) == -EINVAL);
	CHECK(GEO(log_size, CF_LOG_SIZE_MIN) == 0);
	CHECK(GEO(log_size, CF_LOG_SIZE_MIN + 1) == -EINVAL); /* not a page multiple */
	CHECK(GEO(log_size, CF_LOG_SIZE_MIN + 8) == -EINVAL);
	CHECK(GEO(log_size, CF_LOG_SIZE_MIN + CF_PAGE) == 0);
	CHECK(GEO(log_size, CF_LOG_SIZE_LIMIT) == 0);
	CHECK(GEO(log_size, CF_LOG_SIZE_LIMIT - 1) == -EINVAL);
	CHECK(GEO(log_size, CF_LOG_SIZE_LIMIT + CF_PAGE) == -EINVAL);
	CHECK(GEO(log_size, UINT64_MAX - 4095) == -EINVAL);
#undef GEO
}

static struct cf_geometry geo_random(void)
{
	struct cf_geometry g;
	g.max_systems = (uint32_t)(rnd() % CF_MAX_SYSTEMS_LIMIT) + 1;
	g.max_instances = (uint32_t)(rnd() % CF_MAX_INSTANCES_LIMIT) + 1;
	g.lock_entries = CF_LOCK_ENTRIES_MIN << (rnd() % 19);
	g.record_entries = CF_RECORD_ENTRIES_MIN + (uint32_t)(rnd() % (CF_RECORD_ENTRIES_LIMIT - CF_RECORD_ENTRIES_MIN + 1));
	g.log_size = CF_LOG_SIZE_MIN + (rnd() % ((CF_LOG_SIZE_LIMIT - CF_LOG_SIZE_MIN) / CF_PAGE + 1)) * CF_PAGE;
	return g;
}

static void check_map(const struct cf_geometry *g)
{
	struct cf_image_map m;
	uint64_t offs[8], sizes[8];

	cf_image_map(g, &m);
	CHECK(memcmp(&m.geo, g, sizeof(*g)) == 0);
	offs[0] = 0;
	sizes[0] = sizeof(struct cf_header);
	offs[1] = m.off_systems;
	sizes[1] = (uint64_t)g->max_systems * sizeof(struct cf_sys_slot);
	offs[2] = m.off_heartbeats;
	sizes[2] = (uint64_t)g->max_systems * sizeof(struct cf_hb_slot);
	offs[3] = m.off_instances;
	sizes[3] = (uint64_t)g->max_instances * sizeof(struct cf_inst_slot);
	offs[4] = m.off_rinfo;
	sizes[4] = (uint64_t)g->max_instances * sizeof(struct cf_rinfo_slot);
	offs[5] = m.off_locks;
	sizes[5] = (uint64_t)g->lock_entries * 8u;
	offs[6] = m.off_records;
	sizes[6] = (uint64_t)g->max_instances * m.records_size;
	offs[7] = m.off_logs;
	sizes[7] = (uint64_t)g->max_instances * g->log_size;
	CHECK(m.records_size >= (uint64_t)g->record_entries * sizeof(struct cf_rec_entry));
	CHECK(m.records_size % CF_PAGE == 0 && m.records_size - (uint64_t)g->record_entries * 64 < CF_PAGE);
	for (int i = 0; i < 8; i++) {
		CHECKF(offs[i] % CF_PAGE == 0, "section %d off %" PRIu64, i, offs[i]);
		CHECKF(offs[i] + sizes[i] <= m.image_size, "section %d", i);
		if (i > 0) /* in order, not overlapping, no more than a page of slack */
			CHECKF(offs[i] >= offs[i - 1] + sizes[i - 1] && offs[i] - (offs[i - 1] + sizes[i - 1]) < CF_PAGE,
			       "section %d", i);
	}
	CHECK(offs[1] == CF_PAGE); /* header has its own page */
	CHECK(m.image_size == offs[7] + sizes[7]);
	CHECK(m.image_size % CF_PAGE == 0);
	/* per-element helpers: last element ends inside its section, each log is page aligned */
	CHECK(cf_sys_off(&m, g->max_systems - 1) + sizeof(struct cf_sys_slot) <= offs[1] + sizes[1]);
	CHECK(cf_hb_off(&m, g->max_systems - 1) + sizeof(struct cf_hb_slot) <= offs[2] + sizes[2]);
	CHECK(cf_inst_off(&m, g->max_instances - 1) + sizeof(struct cf_inst_slot) <= offs[3] + sizes[3]);
	CHECK(cf_rinfo_off(&m, g->max_instances - 1) + sizeof(struct cf_rinfo_slot) <= offs[4] + sizes[4]);
	CHECK(cf_lock_off(&m, g->lock_entries - 1) + 8 <= offs[5] + sizes[5]);
	CHECK(cf_rec_off(&m, g->max_instances - 1) + m.records_size == offs[6] + sizes[6]);
	CHECK(cf_log_off(&m, g->max_instances - 1) + g->log_size == m.image_size);
	for (uint32_t i = 0; i < g->max_instances; i++) {
		CHECK(cf_log_off(&m, i) % CF_PAGE == 0 && cf_rec_off(&m, i) % CF_PAGE == 0);
		CHECK(cf_inst_off(&m, i) % 8 == 0); /* the registration word is CASed */
	}
	for (uint32_t s2 = 0; s2 < g->max_systems; s2++)
		CHECK(cf_sys_off(&m, s2) % 8 == 0 && cf_hb_off(&m, s2) % 8 == 0);
	CHECK(cf_log_ring_size(g) == g->log_size - sizeof(struct cf_log_hdr) && cf_log_ring_size(g) % 8 == 0);
}

static void test_image_map(void)
{
	struct cf_geometry lo = {1, 1, CF_LOCK_ENTRIES_MIN, CF_RECORD_ENTRIES_MIN, CF_LOG_SIZE_MIN};
	struct cf_geometry hi = {CF_MAX_SYSTEMS_LIMIT, CF_MAX_INSTANCES_LIMIT, CF_LOCK_ENTRIES_LIMIT,
				 CF_RECORD_ENTRIES_LIMIT, CF_LOG_SIZE_LIMIT};
	struct cf_geometry d = geo_default();

	check_map(&lo);
	check_map(&hi);
	check_map(&d);
	for (int i = 0; i < 3000; i++) {
		struct cf_geometry g = geo_random();
		CHECK(cf_geometry_check(&g, NULL) == 0);
		check_map(&g);
	}
}

/*
 * cf_image_body_check: a live-looking image passes; each kind of bad word is
 * named, fatal in cfserver's own words, counted in the words nodes write.
 */
static void body_check(const uint8_t *img, const struct cf_image_map *m, bool server, const char *want)
{
	struct cf_body_report rep;
	int r = cf_image_body_check(img, m, &rep);

	if (!want)
		CHECKF(r == 0 && rep.bad_server == 0 && rep.bad_node == 0, "good image: r=%d \"%s\" \"%s\"", r,
		       rep.first_server, rep.first_node);
	else if (server)
		CHECKF(r == -EBADMSG && rep.bad_server == 1 && strstr(rep.first_server, want), "want \"%s\", got r=%d \"%s\"",
		       want, r, rep.first_server);
	else
		CHECKF(r == 0 && rep.bad_server == 0 && rep.bad_node == 1 && strstr(rep.first_node, want),
		       "want \"%s\", got r=%d %llu \"%s\"", want, r, (unsigned long long)rep.bad_node, rep.first_node);
}

static void test_body_check(void)
{
	struct cf_geometry g = {4, 3, CF_LOCK_ENTRIES_MIN, CF_RECORD_ENTRIES_MIN, CF_LOG_SIZE_MIN};
	struct cf_body_report rep;
	struct cf_image_map m;
	struct cf_sys_slot ss;
	struct cf_inst_slot is;
	struct cf_rec_entry re;
	uint8_t *img, *good;
	uint64_t w;

	cf_image_map(&g, &m);
	img = calloc(1, m.image_size);
	good = calloc(1, m.image_size);
	CHECK(img && good);
	if (!img || !good)
		goto out;
	cf_header_init((struct cf_header *)(void *)img, &g, 1);
	body_check(img, &m, false, NULL); /* freshly formatted */
	/* a system, an instance it owns, a held X and S lock, a record-list entry */
	memset(&ss, 0, sizeof(ss));
	ss.state = cf_sysword(CF_SYS_ACTIVE, 3);
	cf_name_put(ss.name, "SYS2");
	memcpy(img + cf_sys_off(&m, 1), &ss, sizeof(ss));
	memset(&is, 0, sizeof(is));
	is.reg = cf_reg_active(1, 3, 2);
	is.home_sys = 1;
	is.index = 2;
	cf_name_put(is.name, "NTS002");
	memcpy(img + cf_inst_off(&m, 2), &is, sizeof(is));
	w = cf_lock_x(2, 3);
	memcpy(img + cf_lock_off(&m, 7), &w, 8);
	w = CF_LOCK_SBIT | (1ull << 2) | 1ull;
	memcpy(img + cf_lock_off(&m, 9), &w, 8);
	memset(&re, 0, sizeof(re));
	re.used = 1u + CF_LOCK_X;
	re.klass = 7;
	strcpy(re.name, "f0:17");
	memcpy(img + cf_rec_off(&m, 2) + 5 * sizeof(re), &re, sizeof(re));
	body_check(img, &m, false, NULL);
	memcpy(good, img, m.image_size);

#define MUTATE(what, server, want)                   \
	do {                                         \
		memcpy(img, good, m.image_size);     \
		what;                                \
		body_check(img, &m, server, want);   \
	} while (0)
	/* cfserver's own words: fatal */
	MUTATE(((struct cf_header *)(void *)img)->policy = 2, true, "recovery policy 2");
	MUTATE((w = 7, memcpy(img + cf_sys_off(&m, 0), &w, 8)), true, "system slot 0: state word");
	MUTATE((w = cf_sysword(CF_SYS_ACTIVE, 1) | (1ull << 60), memcpy(img + cf_sys_off(&m, 3), &w, 8)), true,
	       "system slot 3: state word");
	MUTATE(memcpy(img + cf_sys_off(&m, 1) + offsetof(struct cf_sys_slot, name), "SY S", 4), true,
	       "system slot 1: its name");
	/* words nodes write: counted */
	MUTATE((w = cf_reg_active(4, 1, 1), memcpy(img + cf_inst_off(&m, 2), &w, 8)), false, "ACTIVE owner 4");
	MUTATE((w = 0x0400000000000001ull, memcpy(img + cf_inst_off(&m, 0), &w, 8)), false,
	       "instance slot 0: registration word");
	MUTATE((w = 9, memcpy(img + cf_inst_off(&m, 1), &w, 8)), false, "instance slot 1: registration word");
	MUTATE(img[cf_inst_off(&m, 2) + offsetof(struct cf_inst_slot, index)] = 1, false, "it says it is slot 1");
	MUTATE(img[cf_inst_off(&m, 2) + offsetof(struct cf_inst_slot, home_sys)] = 4, false, "home system 4");
	MUTATE(memset(img + cf_inst_off(&m, 2) + offsetof(struct cf_inst_slot, name), 'x', CF_NAME_MAX), false,
	       "instance slot 2: its name");
	MUTATE((w = CF_LOCK_XBIT | CF_LOCK_SBIT, memcpy(img + cf_lock_off(&m, 3), &w, 8)), false, "lock class 3");
	MUTATE((w = cf_lock_x(3, 1), memcpy(img + cf_lock_off(&m, 4), &w, 8)), false, "outside max-instances 3");
	MUTATE((w = CF_LOCK_SBIT | (1ull << 40), memcpy(img + cf_lock_off(&m, 4), &w, 8)), false,
	       "outside max-instances 3");
	MUTATE((w = 4, memcpy(img + cf_rec_off(&m, 2) + 5 * sizeof(re), &w, 8)), false, "entry 5: mode 3");
	MUTATE((w = CF_LOCK_ENTRIES_MIN, memcpy(img + cf_rec_off(&m, 2) + 5 * sizeof(re) + 8, &w, 8)), false,
	       "lock class 64 outside 64");
	MUTATE(memset(img + cf_rec_off(&m, 0) + 8 * sizeof(re) + 16, 'n', CF_RES_NAME_MAX), false,
	       NULL); /* a free entry's bytes are never read */
	MUTATE(memset(img + cf_rec_off(&m, 2) + 5 * sizeof(re) + 16, 'n', CF_RES_NAME_MAX), false,
	       "name not terminated");
#undef MUTATE
	/* every bad word is counted, the first described */
	memcpy(img, good, m.image_size);
	for (uint32_t k = 10; k < 20; k++) {
		w = CF_LOCK_XBIT | CF_LOCK_SBIT | k;
		memcpy(img + cf_lock_off(&m, k), &w, 8);
	}
	img[cf_sys_off(&m, 2)] = 9;
	CHECK(cf_image_body_check(img, &m, &rep) == -EBADMSG && rep.bad_server == 1 && rep.bad_node == 10);
	CHECK(strstr(rep.first_node, "lock class 10:") && strstr(rep.first_server, "system slot 2"));
out:
	free(img);
	free(good);
}

#define HDR_FIELD(f) {#f, offsetof(struct cf_header, f), sizeof(((struct cf_header *)0)->f)}
static const struct {
	const char *name;
	size_t off, size;
} hdr_fields[] = {
	HDR_FIELD(magic), HDR_FIELD(layout_version), HDR_FIELD(header_size),
	HDR_FIELD(geo.max_systems), HDR_FIELD(geo.max_instances), HDR_FIELD(geo.lock_entries),
	HDR_FIELD(geo.record_entries), HDR_FIELD(geo.log_size), HDR_FIELD(image_size),
	HDR_FIELD(off_systems), HDR_FIELD(off_heartbeats), HDR_FIELD(off_instances), HDR_FIELD(off_rinfo),
	HDR_FIELD(off_locks), HDR_FIELD(off_records), HDR_FIELD(off_logs), HDR_FIELD(crc),
};

static void field_add(struct cf_header *h, size_t off, size_t size, uint64_t delta)
{
	uint64_t v = 0;
	memcpy(&v, (char *)h + off, size);
	v += delta;
	memcpy((char *)h + off, &v, size);
}

static int hdr_check(const struct cf_header *h, uint64_t avail)
{
	const char *why = "unset";
	int r = cf_header_check(h, avail, &why);
	CHECKF(r == 0 ? why == NULL : (r == -EBADMSG && why != NULL && *why), "r=%d", r);
	return r;
}

static void test_header_geo(const struct cf_geometry *g)
{
	struct cf_header h0, h;
	struct cf_image_map m;

	cf_image_map(g, &m);
	cf_header_init(&h0, g, 0x1122334455667788ull);
	CHECK(hdr_check(&h0, m.image_size) == 0);
	CHECK(hdr_check(&h0, m.image_size + 12345) == 0);
	CHECK(cf_header_check(&h0, m.image_size, NULL) == 0);
	CHECK(h0.crc == cf_header_crc(&h0));
	CHECK(h0.magic == CF_MAGIC && h0.layout_version == CF_LAYOUT_VERSION && h0.header_size == sizeof(h0));
	CHECK(h0.image_size == m.image_size && h0.off_logs == m.off_logs && h0.generation == 0);
	/* truncated images */
	CHECK(hdr_check(&h0, m.image_size - 1) == -EBADMSG);
	CHECK(hdr_check(&h0, m.image_size - CF_PAGE) == -EBADMSG);
	CHECK(hdr_check(&h0, CF_PAGE) == -EBADMSG);
	CHECK(hdr_check(&h0, CF_PAGE - 1) == -EBADMSG);
	CHECK(hdr_check(&h0, sizeof(h0)) == -EBADMSG);
	CHECK(hdr_check(&h0, 0) == -EBADMSG);

	for (size_t f = 0; f < CF_ARRAY_SIZE(hdr_fields); f++) {
		static const uint64_t deltas[] = {1, (uint64_t)-1, 4096, 1ull << 31};
		for (size_t d = 0; d < CF_ARRAY_SIZE(deltas); d++) {
			/* corrupt the field alone */
			h = h0;
			field_add(&h, hdr_fields[f].off, hdr_fields[f].size, deltas[d]);
			CHECKF(hdr_check(&h, m.image_size) == -EBADMSG, "field %s", hdr_fields[f].name);
			/* and with a matching crc, so the semantic checks must catch it */
			if (strcmp(hdr_fields[f].name, "crc") != 0) {
				struct cf_image_map m2;
				bool same = false;

				h.crc = cf_header_crc(&h);
				/*
				 * A geometry change that still passes the limits and maps
				 * to the very same sections and size (e.g. one more system
				 * slot in a page with room) is a consistent header for that
				 * geometry, not a corruption: only that case may pass.
				 */
				if (strncmp(hdr_fields[f].name, "geo.", 4) == 0 && cf_geometry_check(&h.geo, NULL) == 0) {
					cf_image_map(&h.geo, &m2);
					same = m2.image_size == h.image_size && m2.off_systems == h.off_systems &&
					       m2.off_heartbeats == h.off_heartbeats && m2.off_instances == h.off_instances &&
					       m2.off_rinfo == h.off_rinfo && m2.off_locks == h.off_locks &&
					       m2.off_records == h.off_records && m2.off_logs == h.off_logs &&
					       h.image_size <= m.image_size;
				}
				CHECKF(hdr_check(&h, m.image_size) == (same ? 0 : -EBADMSG), "field %s +crc",
				       hdr_fields[f].name);
			}
		}
	}
	/* every bit of the crc-covered part */
	for (size_t bit = 0; bit < (offsetof(struct cf_header, crc) + 4) * 8; bit++) {
		h = h0;
		((unsigned char *)&h)[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		CHECKF(hdr_check(&h, m.image_size) == -EBADMSG, "bit %zu", bit);
	}
	/* created_ns is covered by the crc but free-form */
	h = h0;
	h.created_ns = 1;
	CHECK(hdr_check(&h, m.image_size) == -EBADMSG);
	h.crc = cf_header_crc(&h);
	CHECK(hdr_check(&h, m.image_size) == 0);
	/* mutable part: generation, policy, reserved, pad change without breaking the crc */
	h = h0;
	h.generation = 77;
	h.policy = CF_POLICY_OPERATOR;
	h.pad0 = 5;
	for (int i = 0; i < 7; i++)
		h.reserved[i] = rnd();
	CHECK(hdr_check(&h, m.image_size) == 0 && cf_header_crc(&h) == h0.crc);
	h.generation = UINT64_MAX;
	CHECK(hdr_check(&h, m.image_size) == 0);
	/* a header of another geometry is not accepted at a wrong size but is valid in itself */
	CHECK(cf_header_crc(&h0) == h0.crc);
}

static void test_header(void)
{
	struct cf_geometry lo = {1, 1, CF_LOCK_ENTRIES_MIN, CF_RECORD_ENTRIES_MIN, CF_LOG_SIZE_MIN};
	struct cf_geometry hi = {CF_MAX_SYSTEMS_LIMIT, CF_MAX_INSTANCES_LIMIT, CF_LOCK_ENTRIES_LIMIT,
				 CF_RECORD_ENTRIES_LIMIT, CF_LOG_SIZE_LIMIT};
	struct cf_geometry d = geo_default();
	struct cf_header h;

	test_header_geo(&lo);
	test_header_geo(&hi);
	test_header_geo(&d);
	for (int i = 0; i < 20; i++) {
		struct cf_geometry g = geo_random();
		test_header_geo(&g);
	}
	/* a bad geometry with a correct crc is refused with the geometry's reason */
	cf_header_init(&h, &d, 0);
	h.geo.max_instances = CF_MAX_INSTANCES_LIMIT + 1;
	h.crc = cf_header_crc(&h);
	{
		const char *why = NULL;
		CHECK(cf_header_check(&h, UINT64_MAX, &why) == -EBADMSG && why && strstr(why, "max-instances"));
	}
	/* all zero (a fresh file) and all ones */
	memset(&h, 0, sizeof(h));
	CHECK(hdr_check(&h, UINT64_MAX) == -EBADMSG);
	memset(&h, 0xff, sizeof(h));
	CHECK(hdr_check(&h, UINT64_MAX) == -EBADMSG);
	/* the reason names the problem */
	cf_header_init(&h, &d, 0);
	{
		const char *why = NULL;
		h.magic ^= 1;
		CHECK(cf_header_check(&h, UINT64_MAX, &why) == -EBADMSG && why && strstr(why, "magic"));
		h.magic ^= 1;
		h.layout_version = 2;
		CHECK(cf_header_check(&h, UINT64_MAX, &why) == -EBADMSG && why && strstr(why, "version"));
		h.layout_version = CF_LAYOUT_VERSION;
		h.crc ^= 1;
		CHECK(cf_header_check(&h, UINT64_MAX, &why) == -EBADMSG && why && strstr(why, "CRC"));
		h.crc ^= 1;
		CHECK(cf_header_check(&h, CF_PAGE * 2, &why) == -EBADMSG && why && strstr(why, "truncated"));
	}
}

static void test_names(void)
{
	static const char *good[] = {"A", "z", "0", "SYS1", "NTS001", "a.b-c_d", "123456789012345", "---", "..."};
	static const char *bad[] = {"", "1234567890123456", "with space", "tab\t", "slash/", "colon:", "é",
				    "nl\n", "SYS1!", "a*b", "\x7f"};
	char field[CF_NAME_MAX];

	for (size_t i = 0; i < CF_ARRAY_SIZE(good); i++)
		CHECKF(cf_name_check(good[i]) == 0, "'%s'", good[i]);
	for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++)
		CHECKF(cf_name_check(bad[i]) == -EINVAL, "'%s'", bad[i]);
	CHECK(cf_name_check(NULL) == -EINVAL);
	/* every byte value as a one-char name */
	for (int c = 1; c < 256; c++) {
		char s[2] = {(char)c, 0};
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
			  c == '.' || c == '-';
		CHECKF((cf_name_check(s) == 0) == ok, "c=%d", c);
	}
	memset(field, 'x', sizeof(field));
	cf_name_put(field, "SYS1");
	CHECK(memcmp(field, "SYS1\0\0\0\0\0\0\0\0\0\0\0\0", CF_NAME_MAX) == 0);
	cf_name_put(field, "123456789012345");
	CHECK(memcmp(field, "123456789012345", CF_NAME_MAX) == 0 && field[CF_NAME_MAX - 1] == 0);
}

/* ======================= cf_logrec ======================= */

static uint8_t lrbuf[CF_LOGREC_MAX_IMAGE + 256], lrimg[CF_LOGREC_MAX_IMAGE + 8];

/* Recompute a crafted record's crc (the documented format: header with crc 0, then the image). */
static void lr_fix_crc(void *rec, uint32_t image_len)
{
	struct cf_logrec_hdr h;
	uint32_t c;
	memcpy(&h, rec, sizeof(h));
	h.crc = 0;
	c = cf_crc32(0, &h, sizeof(h));
	if (image_len)
		c = cf_crc32(c, (char *)rec + sizeof(h), image_len);
	h.crc = c;
	memcpy(rec, &h, sizeof(h));
}

static int lr_parse(const void *buf, size_t avail, struct cf_logrec_hdr *h, const void **img)
{
	int r = cf_logrec_parse(buf, avail, h, img);
	if (r < 0)
		CHECKF(r == -EBADMSG, "r=%d", r);
	return r;
}

static void lr_roundtrip(enum cf_logrec_type t, uint32_t len, bool flips)
{
	struct cf_logrec_hdr h;
	const void *img = NULL;
	uint64_t lsn = rnd(), txid = rnd(), off = rnd();
	uint32_t file = (uint32_t)rnd();
	int total, r;

	for (uint32_t i = 0; i < len; i++)
		lrimg[i] = (uint8_t)rnd();
	memset(lrbuf, 0xa5, sizeof(lrbuf));
	total = cf_logrec_encode(lrbuf, sizeof(lrbuf), t, lsn, txid, file, off, len ? lrimg : NULL, len);
	CHECKF(total == (int)cf_logrec_size(len), "t=%d len=%u total=%d", t, len, total);
	if (total < 0)
		return;
	CHECK(total % 8 == 0 && total >= (int)sizeof(struct cf_logrec_hdr));
	CHECK(lrbuf[total] == 0xa5); /* wrote nothing past the record */
	r = lr_parse(lrbuf, (size_t)total, &h, &img);
	CHECKF(r == total, "t=%d len=%u r=%d", t, len, r);
	CHECK(h.magic == CF_LOGREC_MAGIC && h.type == t && h.total == (uint32_t)total && h.lsn == lsn &&
	      h.txid == txid && h.offset == off && h.file == file && h.length == len);
	CHECK(img == lrbuf + sizeof(h) && memcmp(img, lrimg, len) == 0);
	/* more bytes after the record do not change anything */
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == total);
	/* image may be omitted */
	CHECK(cf_logrec_parse(lrbuf, (size_t)total, &h, NULL) == total);
	/* exact cap works, one less is -ENOSPC */
	CHECK(cf_logrec_encode(lrbuf, (size_t)total - 1, t, lsn, txid, file, off, lrimg, len) == -ENOSPC);
	CHECK(cf_logrec_encode(lrbuf, (size_t)total, t, lsn, txid, file, off, lrimg, len) == total);
	/* every truncation is refused */
	for (int n = 0; n < total; n++)
		CHECKF(lr_parse(lrbuf, (size_t)n, &h, &img) == -EBADMSG, "t=%d len=%u n=%d", t, len, n);
	if (!flips)
		return;
	/* every single-bit flip anywhere in the record is refused */
	for (int bit = 0; bit < total * 8; bit++) {
		lrbuf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		r = lr_parse(lrbuf, sizeof(lrbuf), &h, &img);
		CHECKF(r == -EBADMSG, "t=%d len=%u bit=%d r=%d", t, len, bit, r);
		lrbuf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK(lr_parse(lrbuf, (size_t)total, &h, &img) == total);
}

static void test_logrec(void)
{
	struct cf_logrec_hdr h;
	const void *img;
	int total;

	for (int t = CF_LR_BEGIN; t <= CF_LR_END; t++) {
		if (t == CF_LR_UPDATE)
			continue;
		lr_roundtrip((enum cf_logrec_type)t, 0, true);
		CHECK(strcmp(cf_logrec_type_str((enum cf_logrec_type)t), "?") != 0);
	}
	for (uint32_t len = 1; len <= 72; len++)
		lr_roundtrip(CF_LR_UPDATE, len, true);
	for (uint32_t len = 73; len <= CF_LOGREC_MAX_IMAGE; len += 1 + (uint32_t)(rnd() % 97))
		lr_roundtrip(CF_LR_UPDATE, len, len < 600);
	lr_roundtrip(CF_LR_UPDATE, CF_LOGREC_MAX_IMAGE - 1, true);
	lr_roundtrip(CF_LR_UPDATE, CF_LOGREC_MAX_IMAGE, true);
	CHECK(strcmp(cf_logrec_type_str(CF_LR_PAD), "PAD") == 0);
	CHECK(strcmp(cf_logrec_type_str((enum cf_logrec_type)0), "?") == 0);

	/* encoder refusals */
	CHECK(cf_logrec_encode(lrbuf, sizeof(lrbuf), CF_LR_UPDATE, 1, 1, 1, 0, lrimg, 0) == -EINVAL);
	CHECK(cf_logrec_encode(lrbuf, sizeof(lrbuf), CF_LR_UPDATE, 1, 1, 1, 0, NULL, 8) == -EINVAL);
	CHECK(cf_logrec_encode(lrbuf, sizeof(lrbuf), CF_LR_BEGIN, 1, 1, 1, 0, lrimg, 8) == -EINVAL);
	CHECK(cf_logrec_encode(lrbuf, sizeof(lrbuf), CF_LR_UPDATE, 1, 1, 1, 0, lrimg, CF_LOGREC_MAX_IMAGE + 1) ==
	      -EINVAL);
	CHECK(cf_logrec_encode(lrbuf, sizeof(lrbuf), CF_LR_PAD, 1, 1, 1, 0, NULL, 0) == -EINVAL);
	CHECK(cf_logrec_encode(lrbuf, sizeof(lrbuf), (enum cf_logrec_type)0, 1, 1, 1, 0, NULL, 0) == -EINVAL);
	CHECK(cf_logrec_encode(lrbuf, sizeof(lrbuf), (enum cf_logrec_type)7, 1, 1, 1, 0, NULL, 0) == -EINVAL);
	CHECK(cf_logrec_encode(lrbuf, 0, CF_LR_COMMIT, 1, 1, 0, 0, NULL, 0) == -ENOSPC);

	/* PAD records: any total >= header, multiple of 8; the body is filler */
	for (size_t tot = 0; tot <= 512; tot++) {
		int r = cf_logrec_encode_pad(lrbuf, tot, 99 + tot);
		bool ok = tot >= sizeof(h) && tot % 8 == 0;
		CHECKF(ok ? r == (int)tot : r == -EINVAL, "tot=%zu r=%d", tot, r);
		if (!ok)
			continue;
		CHECKF(lr_parse(lrbuf, tot, &h, &img) == (int)tot, "tot=%zu", tot);
		CHECK(h.type == CF_LR_PAD && h.lsn == 99 + tot && h.total == tot && h.length == 0);
		CHECK(lr_parse(lrbuf, tot - 1, &h, &img) == -EBADMSG);
		if (tot == 48 || tot == 200) {
			for (size_t bit = 0; bit < sizeof(h) * 8; bit++) {
				lrbuf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
				CHECKF(lr_parse(lrbuf, tot, &h, &img) == -EBADMSG, "pad bit=%zu", bit);
				lrbuf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			}
		}
	}
	CHECK(cf_logrec_encode_pad(lrbuf, (size_t)UINT32_MAX + 1, 1) == -EINVAL);
	CHECK(cf_logrec_encode_pad(lrbuf, (size_t)INT32_MAX + 1, 1) == -EINVAL); /* returned as an int */
	/* a PAD claiming more than an int can return is refused even when avail allows it */
	cf_logrec_encode_pad(lrbuf, 48, 1);
	memcpy(&h, lrbuf, sizeof(h));
	h.total = (uint32_t)INT32_MAX + 1;
	memcpy(lrbuf, &h, sizeof(h));
	lr_fix_crc(lrbuf, 0);
	CHECK(cf_logrec_parse(lrbuf, SIZE_MAX, &h, &img) == -EBADMSG); /* only the header is read */

	/* crafted records with a correct crc: every structural rule is enforced on its own */
#define CRAFT(stmt, imglen)                                                                        \
	do {                                                                                       \
		struct cf_logrec_hdr c_;                                                           \
		total = cf_logrec_encode(lrbuf, sizeof(lrbuf), CF_LR_UPDATE, 5, 6, 7, 8, lrimg, 16); \
		memcpy(&c_, lrbuf, sizeof(c_));                                                    \
		stmt;                                                                              \
		memcpy(lrbuf, &c_, sizeof(c_));                                                    \
		lr_fix_crc(lrbuf, imglen);                                                         \
	} while (0)
	CRAFT((void)0, 16);
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == total); /* the crafting itself is sound */
	CRAFT(c_.magic ^= 1, 16);
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.type = 0, 16);
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.type = CF_LR_END + 1, 16);
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.type = 0xffff, 16);
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.type = CF_LR_BEGIN, 16); /* BEGIN with an image */
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT((c_.length = 0, c_.total = sizeof(c_)), 0); /* UPDATE without an image */
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.total += 4, 16); /* total not a multiple of 8 */
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.total += 8, 16); /* total does not match the length */
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.total = 40, 16); /* total below the header */
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.total = 0, 16);
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.length = 17, 17); /* image longer than total allows */
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.pad = 1, 16); /* reserved field */
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT((c_.length = CF_LOGREC_MAX_IMAGE + 8, c_.total = cf_logrec_size(CF_LOGREC_MAX_IMAGE + 8)),
	      CF_LOGREC_MAX_IMAGE + 8); /* oversized image */
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT((c_.length = UINT32_MAX, c_.total = 56), 0);
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	CRAFT(c_.total = UINT32_MAX - 7, 16);
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	/* nonzero padding after the image (not covered by the crc) */
	total = cf_logrec_encode(lrbuf, sizeof(lrbuf), CF_LR_UPDATE, 5, 6, 7, 8, lrimg, 13);
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == total);
	lrbuf[sizeof(h) + 13] = 1;
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	lrbuf[sizeof(h) + 13] = 0;
	lrbuf[total - 1] = 0x80;
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	/* PAD with a payload field set, crc correct */
	cf_logrec_encode_pad(lrbuf, 64, 3);
	memcpy(&h, lrbuf, sizeof(h));
	h.txid = 1;
	memcpy(lrbuf, &h, sizeof(h));
	lr_fix_crc(lrbuf, 0);
	CHECK(lr_parse(lrbuf, 64, &h, &img) == -EBADMSG);
	/* zeroes and ones */
	memset(lrbuf, 0, sizeof(lrbuf));
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	memset(lrbuf, 0xff, sizeof(lrbuf));
	CHECK(lr_parse(lrbuf, sizeof(lrbuf), &h, &img) == -EBADMSG);
	/* the corruption site is recorded */
	cf_corrupt_site = NULL;
	CHECK(lr_parse(lrbuf, 3, &h, &img) == -EBADMSG && strstr(cf_corrupt_where(), "cf_logrec.c"));
}

/* ======================= cf_wire ======================= */

static bool frame_ok_ref(uint32_t len, uint16_t op, uint16_t flags)
{
	const uint32_t H = sizeof(struct cf_frame_hdr);
	if (len < H || len > CF_FRAME_MAX || (flags & ~(CF_FF_NO_RESP | CF_FF_MAC)))
		return false;
	if (flags & CF_FF_MAC) { /* the per-op rules are about the frame without its tag */
		if (len < H + CF_FRAME_TAG_LEN)
			return false;
		len -= CF_FRAME_TAG_LEN;
	}
	switch (op) {
	case CF_OP_READ: return len == H + sizeof(struct cf_req_rw);
	case CF_OP_WRITE: return len >= H + sizeof(struct cf_req_rw);
	case CF_OP_CAS:
	case CF_OP_FAA: return len == H + sizeof(struct cf_req_atomic);
	case CF_OP_CTRL: return len >= H + sizeof(struct cf_ctrl_hdr) && len <= H + CF_CTRL_MAX;
	case CF_OP_RESP: return len >= H + sizeof(struct cf_resp);
	}
	return false;
}

static int frame(uint32_t len, uint16_t op, uint16_t flags)
{
	struct cf_frame_hdr h = {.len = len, .op = op, .flags = flags, .id = rnd()};
	int r = cf_frame_check(&h);
	if (r)
		CHECKF(r == -EBADMSG, "r=%d", r);
	return r;
}

static void test_frames(void)
{
	const uint32_t H = sizeof(struct cf_frame_hdr);
	static const uint16_t flagset[] = {0, CF_FF_NO_RESP, 2, 3, 0x100, 0x8000, 0xffff};
	unsigned long mism = 0;

	/* each op's exact sizes */
	CHECK(frame(H + 16, CF_OP_READ, 0) == 0);
	CHECK(frame(H + 15, CF_OP_READ, 0) == -EBADMSG);
	CHECK(frame(H + 17, CF_OP_READ, 0) == -EBADMSG);
	CHECK(frame(H + 16, CF_OP_WRITE, 0) == 0); /* zero-byte write */
	CHECK(frame(H + 16, CF_OP_WRITE, CF_FF_NO_RESP) == 0);
	CHECK(frame(H + 15, CF_OP_WRITE, 0) == -EBADMSG);
	CHECK(frame(H + 16 + CF_FRAME_MAX_PAYLOAD, CF_OP_WRITE, 0) == 0);
	CHECK(frame(CF_FRAME_MAX, CF_OP_WRITE, 0) == 0);
	CHECK(frame(CF_FRAME_MAX + 1, CF_OP_WRITE, 0) == -EBADMSG); /* oversized */
	CHECK(frame(UINT32_MAX, CF_OP_WRITE, 0) == -EBADMSG);
	CHECK(frame(H + 32, CF_OP_CAS, 0) == 0);
	CHECK(frame(H + 31, CF_OP_CAS, 0) == -EBADMSG);
	CHECK(frame(H + 33, CF_OP_CAS, 0) == -EBADMSG);
	CHECK(frame(H + 32, CF_OP_FAA, 0) == 0);
	CHECK(frame(H + 40, CF_OP_FAA, 0) == -EBADMSG);
	CHECK(frame(H + 8, CF_OP_CTRL, 0) == 0);
	CHECK(frame(H + 7, CF_OP_CTRL, 0) == -EBADMSG);
	CHECK(frame(H + CF_CTRL_MAX, CF_OP_CTRL, 0) == 0);
	CHECK(frame(H + CF_CTRL_MAX + 1, CF_OP_CTRL, 0) == -EBADMSG);
	CHECK(frame(H + 16, CF_OP_RESP, 0) == 0);
	CHECK(frame(H + 15, CF_OP_RESP, 0) == -EBADMSG);
	CHECK(frame(H + 16 + CF_FRAME_MAX_PAYLOAD, CF_OP_RESP, 0) == 0);
	/* with a MAC (CF_FF_MAC): the same rules for the frame without its tag */
	CHECK(frame(H + 16 + CF_FRAME_TAG_LEN, CF_OP_READ, CF_FF_MAC) == 0);
	CHECK(frame(H + 16, CF_OP_READ, CF_FF_MAC) == -EBADMSG);
	CHECK(frame(H + 32 + CF_FRAME_TAG_LEN, CF_OP_CAS, CF_FF_MAC) == 0);
	CHECK(frame(H + 32, CF_OP_CAS, CF_FF_MAC) == -EBADMSG);
	CHECK(frame(H + CF_FRAME_TAG_LEN - 1, CF_OP_CTRL, CF_FF_MAC) == -EBADMSG);
	CHECK(frame(H + 16 + CF_FRAME_TAG_LEN, CF_OP_WRITE, CF_FF_MAC | CF_FF_NO_RESP) == 0);
	CHECK(frame(H + 16 + CF_FRAME_MAX_PAYLOAD + CF_FRAME_TAG_LEN, CF_OP_WRITE, CF_FF_MAC) == 0);
	CHECK(frame(H + 16 + CF_FRAME_MAX_PAYLOAD + CF_FRAME_TAG_LEN, CF_OP_RESP, CF_FF_MAC) == 0);
	/* truncated headers' lengths */
	for (uint32_t len = 0; len < H; len++)
		for (uint16_t op = 0; op < 8; op++)
			CHECK(frame(len, op, 0) == -EBADMSG);
	/* unknown ops */
	for (uint32_t op = 0; op < 65536; op++)
		if (op < CF_OP_READ || op > CF_OP_RESP)
			if (frame(H + 16, (uint16_t)op, 0) != -EBADMSG || frame(H + 32, (uint16_t)op, 0) != -EBADMSG)
				CHECKF(0, "op=%u", op);
	/* bad flags, every value */
	for (uint32_t fl = 0; fl < 65536; fl++)
		if ((frame(H + 16, CF_OP_READ, (uint16_t)fl) == 0) != (fl <= CF_FF_NO_RESP) ||
		    (frame(H + 16 + CF_FRAME_TAG_LEN, CF_OP_READ, (uint16_t)fl) == 0) !=
			    ((fl & ~(unsigned)CF_FF_NO_RESP) == CF_FF_MAC))
			CHECKF(0, "flags=%#x", fl);
	/* the whole (len, op, flags) space around the limits against the reference */
	for (uint16_t op = 0; op <= 8; op++)
		for (uint32_t len = 0; len <= CF_FRAME_MAX + 256; len++)
			for (size_t f = 0; f < CF_ARRAY_SIZE(flagset); f++) {
				struct cf_frame_hdr h = {.len = len, .op = op, .flags = flagset[f], .id = len};
				if ((cf_frame_check(&h) == 0) != frame_ok_ref(len, op, flagset[f]))
					mism++;
			}
	CHECKF(mism == 0, "mismatches=%lu", mism);
}

static const uint16_t ctrl_types[] = {
	CF_CTRL_HELLO, CF_CTRL_CHALLENGE, CF_CTRL_AUTH, CF_CTRL_WELCOME, CF_CTRL_JOIN, CF_CTRL_JOINED,
	CF_CTRL_CONN_ATTACH, CF_CTRL_GOODBYE, CF_CTRL_PERSIST, CF_CTRL_INST_OPEN, CF_CTRL_INST_ATTACH, CF_CTRL_INST_UNREG,
	CF_CTRL_POLICY_SET, CF_CTRL_RECOVER, CF_CTRL_STATUS, CF_CTRL_GRANTS, CF_CTRL_INST_INFO,
	CF_CTRL_RECOVER_R, CF_CTRL_EVENT, CF_CTRL_ERROR, CF_CTRL_FENCE_CONFIRM, CF_CTRL_RECOVER_RETRY,
	CF_CTRL_WATCHDOG, CF_CTRL_RESTART_INFO, CF_CTRL_RESTART_INFO_R, CF_CTRL_SUSPECT,
	CF_CTRL_METRICS, CF_CTRL_METRICS_R, CF_CTRL_DUPLEX_INFO, CF_CTRL_DUPLEX_INFO_R,
	CF_CTRL_LOCK_WAIT, CF_CTRL_LOCK_CANCEL, CF_CTRL_LOCK_KICK, CF_CTRL_LOCK_WAIT_R,
	CF_CTRL_SENTINEL, CF_CTRL_DIED, CF_CTRL_INST_GRANTS,
};

static void test_ctrl(void)
{
	static uint8_t msg[CF_CTRL_MAX + 64], body[CF_CTRL_MAX];
	const size_t H = sizeof(struct cf_ctrl_hdr);
	unsigned known = 0;

	/* body sizes are what the structs say */
	CHECK(cf_ctrl_body_size(CF_CTRL_HELLO) == sizeof(struct cf_hello));
	CHECK(cf_ctrl_body_size(CF_CTRL_JOINED) == sizeof(struct cf_joined));
	CHECK(cf_ctrl_body_size(CF_CTRL_PERSIST) == sizeof(struct cf_persist_msg));
	CHECK(sizeof(struct cf_joined) == 512); /* flags took the pad word: same size, same version */
	CHECK(cf_ctrl_body_size(CF_CTRL_ERROR) == sizeof(struct cf_status));
	CHECK(cf_ctrl_body_size(CF_CTRL_EVENT) == sizeof(struct cf_event));
	CHECK(cf_ctrl_body_size(CF_CTRL_GRANTS) == sizeof(struct cf_grants));
	CHECK(cf_ctrl_body_size(CF_CTRL_INST_GRANTS) == sizeof(struct cf_inst_grants));

	for (size_t i = 0; i < CF_ARRAY_SIZE(ctrl_types); i++) {
		uint16_t t = ctrl_types[i];
		size_t b = cf_ctrl_body_size(t), n;
		struct cf_ctrl_hdr h;

		CHECKF(b > 0 && H + b <= CF_CTRL_MAX && b <= CF_CTRL_BODY_MAX, "type %u", t);
		CHECK(strcmp(cf_ctrl_type_str(t), "?") != 0);
		for (size_t j = 0; j < b; j++)
			body[j] = (uint8_t)rnd();
		/* build round trip */
		memset(msg, 0xcc, sizeof(msg));
		n = cf_ctrl_build(msg, t, body, b);
		CHECK(n == H + b && msg[n] == 0xcc);
		memcpy(&h, msg, H);
		CHECK(h.type == t && h.pad == 0 && h.len == n && memcmp(msg + H, body, b) == 0);
		CHECKF(cf_ctrl_check(msg, n) == 0, "type %u", t);
		/* every other length is refused, whether the header agrees or not */
		for (size_t len = 0; len <= H + b + 16; len++) {
			if (len == n)
				continue;
			CHECKF(cf_ctrl_check(msg, len) == -EBADMSG, "type %u len %zu", t, len);
			h.len = (uint32_t)len;
			memcpy(msg, &h, H);
			CHECKF(cf_ctrl_check(msg, len) == -EBADMSG, "type %u len %zu (hdr agrees)", t, len);
			h.len = (uint32_t)n;
			memcpy(msg, &h, H);
		}
		/* header length disagreeing with the received length */
		h.len = (uint32_t)n + 8;
		memcpy(msg, &h, H);
		CHECK(cf_ctrl_check(msg, n) == -EBADMSG);
		h.len = 0;
		memcpy(msg, &h, H);
		CHECK(cf_ctrl_check(msg, n) == -EBADMSG);
		h.len = (uint32_t)n;
		/* pad must be zero */
		h.pad = 1;
		memcpy(msg, &h, H);
		CHECK(cf_ctrl_check(msg, n) == -EBADMSG);
		h.pad = 0;
		memcpy(msg, &h, H);
		CHECK(cf_ctrl_check(msg, n) == 0);
	}
	/* unknown types: every 16-bit value not in the table */
	for (uint32_t t = 0; t < 65536; t++) {
		bool is_known = false;
		for (size_t i = 0; i < CF_ARRAY_SIZE(ctrl_types); i++)
			is_known |= ctrl_types[i] == t;
		known += is_known;
		if (is_known)
			continue;
		if (cf_ctrl_body_size((uint16_t)t) != 0 || strcmp(cf_ctrl_type_str((uint16_t)t), "?") != 0)
			CHECKF(0, "type %u", t);
		for (size_t b = 0; b <= 64; b += 8) {
			size_t n = cf_ctrl_build(msg, (uint16_t)t, body, b);
			if (cf_ctrl_check(msg, n) != -EBADMSG)
				CHECKF(0, "type %u body %zu", t, b);
		}
	}
	CHECK(known == CF_ARRAY_SIZE(ctrl_types));
	/* oversized */
	{
		struct cf_ctrl_hdr h = {.type = CF_CTRL_STATUS, .pad = 0, .len = CF_CTRL_MAX + 8};
		memcpy(msg, &h, H);
		CHECK(cf_ctrl_check(msg, CF_CTRL_MAX + 8) == -EBADMSG);
		CHECK(cf_ctrl_check(msg, SIZE_MAX) == -EBADMSG);
	}
	CHECK(cf_ctrl_check(msg, 0) == -EBADMSG);
	/* a zero-length body builds a bare header */
	CHECK(cf_ctrl_build(msg, CF_CTRL_GOODBYE, NULL, 0) == H);
	/* event names */
	for (uint32_t e = CF_EV_SYS_FAILED; e <= CF_EV_FENCE_RETRY; e++)
		CHECK(strcmp(cf_event_type_str(e), "?") != 0);
	CHECK(strcmp(cf_event_type_str(CF_EV_RESTART_DONE), "RESTART_DONE") == 0);
	CHECK(strcmp(cf_event_type_str(0), "?") == 0 && strcmp(cf_event_type_str(99), "?") == 0);
	/* restart barrier: its states, its reply, its refusal status */
	CHECK(cf_ctrl_body_size(CF_CTRL_RESTART_INFO) == sizeof(struct cf_empty));
	CHECK(cf_ctrl_body_size(CF_CTRL_RESTART_INFO_R) == sizeof(struct cf_restart_info));
	CHECK(cf_ctrl_body_size(CF_CTRL_METRICS) == sizeof(struct cf_metrics_req));
	CHECK(cf_ctrl_body_size(CF_CTRL_METRICS_R) == sizeof(struct cf_metrics_r));
	CHECK(strcmp(cf_restart_state_str(CF_RESTART_OPEN), "open") == 0);
	CHECK(strcmp(cf_restart_state_str(CF_RESTART_RECOVERY), "restart recovery") == 0);
	CHECK(strcmp(cf_restart_state_str(7), "?") == 0);
	CHECK(CF_STATUS_RESTART_RECOVERY == -EAGAIN);
}

int main(void)
{
	test_sysword();
	test_regword();
	test_reg_owner_stale();
	test_lock_cases();
	test_lock_pairs();
	test_lock_random();
	test_lock_valid();
	test_lock_class();
	test_geometry();
	test_image_map();
	test_body_check();
	test_header();
	test_names();
	test_logrec();
	test_frames();
	test_ctrl();
	printf("%lu passed, %lu failed\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}
