/* SPDX-License-Identifier: MIT */
/*
 * test_lock - lock words (every transition and compatibility case of
 * cf_lock_acquire_next / cf_lock_release_next) and the lock table
 * (node/cf_lock.c) over an image in memory: record list written before the
 * CAS, class sharing with oneself, contention, try, timeout, release of
 * another instance's holds (recovery), histogram.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_layout.h"
#include "cf_lock.h"
#include "cf_session.h"
#include "cf_words.h"

#include "unit_check.h"

static void test_words(void)
{
	uint64_t n, w;
	const uint32_t A = 3, B = 7, E = 0x123456;

	/* free → S, free → X */
	CHECK(cf_lock_acquire_next(0, A, E, CF_LOCK_S, &n) == 0 && n == (CF_LOCK_SBIT | (1ull << A)));
	CHECK(cf_lock_acquire_next(0, A, E, CF_LOCK_X, &n) == 0 && n == cf_lock_x(A, E));
	CHECK(cf_lock_x_inst(n) == A && cf_lock_x_epoch(n) == E && cf_lock_valid(n));
	/* S + S (another instance) = both; S + S (same) = same */
	w = CF_LOCK_SBIT | (1ull << A);
	CHECK(cf_lock_acquire_next(w, B, E, CF_LOCK_S, &n) == 0 && n == (w | (1ull << B)));
	CHECK(cf_lock_acquire_next(w, A, E, CF_LOCK_S, &n) == 0 && n == w);
	/* S(A) + X(B): busy; S(A) + X(A) sole holder: upgrade; S(A,B) + X(A): busy */
	CHECK(cf_lock_acquire_next(w, B, E, CF_LOCK_X, &n) == -EBUSY);
	CHECK(cf_lock_acquire_next(w, A, E, CF_LOCK_X, &n) == 0 && n == cf_lock_x(A, E));
	CHECK(cf_lock_acquire_next(w | (1ull << B), A, E, CF_LOCK_X, &n) == -EBUSY);
	/* X(A) + anything of B: busy; X(A) + S or X of A: unchanged */
	w = cf_lock_x(A, E);
	CHECK(cf_lock_acquire_next(w, B, E, CF_LOCK_S, &n) == -EBUSY);
	CHECK(cf_lock_acquire_next(w, B, E, CF_LOCK_X, &n) == -EBUSY);
	CHECK(cf_lock_acquire_next(w, A, E, CF_LOCK_S, &n) == 0 && n == w);
	CHECK(cf_lock_acquire_next(w, A, E, CF_LOCK_X, &n) == 0 && n == w);
	/* release: X → free, S(A,B) - A → S(B), S(B) - B → free, not held → -ENOENT */
	CHECK(cf_lock_release_next(w, A, &n) == 0 && n == 0);
	CHECK(cf_lock_release_next(w, B, &n) == -ENOENT);
	w = CF_LOCK_SBIT | (1ull << A) | (1ull << B);
	CHECK(cf_lock_release_next(w, A, &n) == 0 && n == (CF_LOCK_SBIT | (1ull << B)));
	CHECK(cf_lock_release_next(CF_LOCK_SBIT | (1ull << B), B, &n) == 0 && n == 0);
	CHECK(cf_lock_release_next(0, A, &n) == -ENOENT);
	/* held_by */
	CHECK(cf_lock_held_by(w, A) && cf_lock_held_by(w, B) && !cf_lock_held_by(w, 0));
	CHECK(cf_lock_held_by(cf_lock_x(A, E), A) && !cf_lock_held_by(cf_lock_x(A, E), B));
	/* malformed words and arguments */
	CHECK(!cf_lock_valid(CF_LOCK_XBIT | CF_LOCK_SBIT));
	CHECK(!cf_lock_valid(CF_LOCK_SBIT)); /* S with no holder */
	CHECK(!cf_lock_valid(1));            /* no mode bit */
	CHECK(cf_lock_acquire_next(1, A, E, CF_LOCK_X, &n) == -EINVAL);
	CHECK(cf_lock_acquire_next(0, 56, E, CF_LOCK_X, &n) == -EINVAL);
	CHECK(cf_lock_acquire_next(0, A, E, (enum cf_lock_mode)3, &n) == -EINVAL);
	/* every instance, both modes: acquire then release returns to free */
	for (uint32_t i = 0; i < 56; i++) {
		for (int m = CF_LOCK_S; m <= CF_LOCK_X; m++) {
			CHECK(cf_lock_acquire_next(0, i, E, (enum cf_lock_mode)m, &n) == 0);
			CHECK(cf_lock_held_by(n, i));
			CHECK(cf_lock_release_next(n, i, &w) == 0 && w == 0);
		}
	}
	/* epoch tag: a late release CAS of an old incarnation fails its compare */
	CHECK(cf_lock_x(A, 1) != cf_lock_x(A, 2));
	/* class hash is stable and in range */
	CHECK(cf_lock_class("f0.r1", 1024) < 1024);
	CHECK(cf_lock_class("f0.r1", 1024) == cf_lock_class("f0.r1", 1024));
}

struct img {
	struct cf_image_map map;
	uint8_t *mem;
};

static void img_new(struct img *im)
{
	struct cf_geometry g = {
		.max_systems = 4, .max_instances = 8, .lock_entries = 64, .record_entries = 16, .log_size = 65536,
	};
	const char *why;

	CHECK(cf_geometry_check(&g, &why) == 0);
	cf_image_map(&g, &im->map);
	im->mem = calloc(1, im->map.image_size);
	if (!im->mem)
		abort();
}

static uint64_t word_of(struct img *im, const char *name)
{
	return *(uint64_t *)(void *)(im->mem + cf_lock_off(&im->map, cf_lock_class(name, im->map.geo.lock_entries)));
}

static const struct cf_rec_entry *rec_of(struct img *im, uint32_t inst, uint32_t e)
{
	return (const struct cf_rec_entry *)(void *)(im->mem + cf_rec_off(&im->map, inst)) + e;
}

/* Two names of one class. */
static void same_class(struct img *im, char *a, char *b)
{
	uint32_t want;
	int i;

	strcpy(a, "r0");
	want = cf_lock_class(a, im->map.geo.lock_entries);
	for (i = 1;; i++) {
		sprintf(b, "r%d", i);
		if (cf_lock_class(b, im->map.geo.lock_entries) == want)
			break;
	}
}

static void test_table(void)
{
	struct img im;
	struct cf_lock_table t1, t2;
	uint32_t e1, e2, e3, rel;
	uint64_t holder;
	char a[16], b[16];

	img_new(&im);
	CHECK(cf_lock_table_init_mem(&t1, im.mem, &im.map, 1, 5) == 0);
	CHECK(cf_lock_table_init_mem(&t2, im.mem, &im.map, 2, 9) == 0);
	same_class(&im, a, b);

	/* uncontended X: entry written, word names instance 1 with its epoch */
	CHECK(cf_lock_acquire(&t1, a, CF_LOCK_X, 100, 1000, &e1, NULL) == 0);
	CHECK(word_of(&im, a) == cf_lock_x(1, 5));
	CHECK(rec_of(&im, 1, e1)->used == 1u + CF_LOCK_X && !strcmp(rec_of(&im, 1, e1)->name, a));
	CHECK(t1.st.cas_acquires == 1 && t1.st.lat.n == 1);
	/* same name, another transaction of this instance: -EALREADY with the holder */
	CHECK(cf_lock_acquire(&t1, a, CF_LOCK_X, 200, 1000, &e2, &holder) == -EALREADY && holder == 100);
	/* another name of the same class, another transaction: rides on the class hold, no CAS */
	CHECK(cf_lock_acquire(&t1, b, CF_LOCK_X, 200, 1000, &e2, NULL) == 0);
	CHECK(t1.st.shared_self == 1 && t1.st.cas_acquires == 1);
	CHECK(rec_of(&im, 1, e2)->used == 1u + CF_LOCK_X);
	/* instance 2: the class is busy (false contention for name b is the same) */
	CHECK(cf_lock_acquire(&t2, b, CF_LOCK_S, 1, 0, &e3, NULL) == -EBUSY);
	CHECK(t2.st.contended == 1);
	CHECK(rec_of(&im, 2, 0)->used == 0); /* its tentative entry was cleared */
	CHECK(cf_lock_acquire(&t2, a, CF_LOCK_X, 1, 30, &e3, NULL) == -ETIMEDOUT);
	CHECK(t2.st.timeouts == 1 && t2.nheld == 0);
	/* releasing one name keeps the class; the last one frees it */
	CHECK(cf_lock_release(&t1, e1) == 0);
	CHECK(word_of(&im, a) == cf_lock_x(1, 5));
	CHECK(rec_of(&im, 1, e1)->used == 0);
	CHECK(cf_lock_release_owner(&t1, 200) == 0);
	CHECK(word_of(&im, a) == 0 && t1.nheld == 0 && t1.nclasses == 0);
	/* shared by two instances, upgrade refused while shared, allowed when sole */
	CHECK(cf_lock_acquire(&t1, a, CF_LOCK_S, 1, 1000, &e1, NULL) == 0);
	CHECK(cf_lock_acquire(&t2, a, CF_LOCK_S, 1, 1000, &e3, NULL) == 0);
	CHECK(word_of(&im, a) == (CF_LOCK_SBIT | (1ull << 1) | (1ull << 2)));
	CHECK(cf_lock_acquire(&t1, b, CF_LOCK_X, 2, 20, &e2, NULL) == -ETIMEDOUT);
	CHECK(cf_lock_release(&t2, e3) == 0);
	CHECK(word_of(&im, a) == (CF_LOCK_SBIT | (1ull << 1)));
	CHECK(cf_lock_acquire(&t1, b, CF_LOCK_X, 2, 1000, &e2, NULL) == 0);
	CHECK(word_of(&im, a) == cf_lock_x(1, 5));
	/* instance 1 "fails": recovery releases every hold its record list names and clears it */
	CHECK(cf_lock_acquire(&t2, "other", CF_LOCK_X, 1, 1000, &e3, NULL) == 0);
	CHECK(cf_lock_release_instance_mem(im.mem, &im.map, 1, 5, &rel) == 0);
	CHECK(rel == 1);
	CHECK(word_of(&im, a) == 0);
	CHECK(word_of(&im, "other") == cf_lock_x(2, 9)); /* others untouched */
	for (uint32_t i = 0; i < im.map.geo.record_entries; i++)
		CHECK(rec_of(&im, 1, i)->used == 0);
	/* idempotent: a second recovery finds nothing */
	CHECK(cf_lock_release_instance_mem(im.mem, &im.map, 1, 5, &rel) == 0 && rel == 0);
	/* a new incarnation (epoch 6); a wrong epoch hint (the first CAS misses) and a shared hold */
	{
		const char *c = "shared-c";
		uint32_t ec;
		CHECK(cf_lock_class(c, im.map.geo.lock_entries) != cf_lock_class(a, im.map.geo.lock_entries));
		CHECK(cf_lock_class(c, im.map.geo.lock_entries) != cf_lock_class("other", im.map.geo.lock_entries));
		cf_lock_table_fini(&t1);
		CHECK(cf_lock_table_init_mem(&t1, im.mem, &im.map, 1, 6) == 0);
		CHECK(cf_lock_acquire(&t1, a, CF_LOCK_X, 1, 1000, &e1, NULL) == 0);
		CHECK(cf_lock_acquire(&t1, c, CF_LOCK_S, 1, 1000, &e2, NULL) == 0);
		CHECK(cf_lock_acquire(&t2, c, CF_LOCK_S, 1, 1000, &ec, NULL) == 0);
		CHECK(word_of(&im, a) == cf_lock_x(1, 6));
		CHECK(cf_lock_release_instance_mem(im.mem, &im.map, 1, 5, &rel) == 0);
		CHECK(rel == 2 && word_of(&im, a) == 0);
		CHECK(word_of(&im, c) == (CF_LOCK_SBIT | (1ull << 2)));
		for (uint32_t i = 0; i < im.map.geo.record_entries; i++)
			CHECK(rec_of(&im, 1, i)->used == 0);
		CHECK(cf_lock_release(&t2, ec) == 0 && word_of(&im, c) == 0);
		cf_lock_table_fini(&t1);
		CHECK(cf_lock_table_init_mem(&t1, im.mem, &im.map, 1, 7) == 0);
	}
	/* an entry whose CAS never landed (crash between WRITE and CAS) is skipped */
	{
		struct cf_rec_entry *re = (struct cf_rec_entry *)(void *)(im.mem + cf_rec_off(&im.map, 3));
		re->used = 1u + CF_LOCK_X;
		re->klass = cf_lock_class("other", im.map.geo.lock_entries);
		strcpy(re->name, "other");
		CHECK(cf_lock_release_instance_mem(im.mem, &im.map, 3, 0, &rel) == 0 && rel == 0);
		CHECK(word_of(&im, "other") == cf_lock_x(2, 9));
		CHECK(re->used == 0);
	}
	/* record list full: -ENOSPC, nothing taken */
	{
		uint32_t e;
		char n[16];
		int i, r = 0;
		for (i = 0; i < 100 && r == 0; i++) {
			sprintf(n, "n%d", i);
			r = cf_lock_acquire(&t2, n, CF_LOCK_S, 7, 1000, &e, NULL);
		}
		CHECK(r == -ENOSPC && t2.nheld == im.map.geo.record_entries);
		CHECK(cf_lock_release_owner(&t2, 7) == 0);
	}
	/* bad names */
	CHECK(cf_lock_acquire(&t2, "", CF_LOCK_S, 1, 0, &e3, NULL) == -EINVAL);
	CHECK(cf_lock_acquire(&t2, "0123456789012345678901234567890123456789012345678", CF_LOCK_S, 1, 0, &e3, NULL) ==
	      -EINVAL);
	cf_lock_table_fini(&t1);
	cf_lock_table_fini(&t2);
	free(im.mem);
}

static void test_hist(void)
{
	struct cf_lock_hist h;

	memset(&h, 0, sizeof(h));
	for (uint64_t i = 1; i <= 1000; i++)
		cf_lock_hist_add(&h, i * 1000);
	CHECK(h.n == 1000 && h.max == 1000000 && h.min == 1000);
	uint64_t p50 = cf_lock_hist_pct(&h, 50), p99 = cf_lock_hist_pct(&h, 99);
	CHECK(p50 >= 500000 && p50 <= 500000 * 107 / 100);
	CHECK(p99 >= 990000 && p99 <= 1000000);
	CHECK(cf_lock_hist_pct(&h, 100) == 1000000);
}

/* The Q bit (lock hand-off): only the CF sets it; nodes queue behind it, releases keep it. */
static void test_queued(void)
{
	uint64_t n, w;
	const uint64_t Q = CF_LOCK_QBIT;
	const uint32_t A = 3, B = 7, E = 0x123456;

	CHECK(cf_lock_valid(Q) && cf_lock_valid(cf_lock_x(A, E) | Q) && cf_lock_valid(CF_LOCK_SBIT | (1ull << A) | Q));
	CHECK(!cf_lock_valid(CF_LOCK_SBIT | Q)); /* S with no holder, queued or not */
	CHECK(!cf_lock_held_by(Q, A) && cf_lock_holding(Q) == 0);
	/* free but queued: a newcomer queues (-EBUSY), in either mode */
	CHECK(cf_lock_acquire_next(Q, A, E, CF_LOCK_X, &n) == -EBUSY);
	CHECK(cf_lock_acquire_next(Q, A, E, CF_LOCK_S, &n) == -EBUSY);
	/* S held, X queued: an S newcomer does not barge past the X waiter */
	w = CF_LOCK_SBIT | (1ull << A) | Q;
	CHECK(cf_lock_acquire_next(w, B, E, CF_LOCK_S, &n) == -EBUSY);
	/* ... but a holder's repeat is its own, and the sole holder's upgrade keeps Q */
	CHECK(cf_lock_acquire_next(w, A, E, CF_LOCK_S, &n) == 0 && n == w);
	CHECK(cf_lock_acquire_next(w, A, E, CF_LOCK_X, &n) == 0 && n == (cf_lock_x(A, E) | Q));
	CHECK(cf_lock_acquire_next(cf_lock_x(A, E) | Q, A, E, CF_LOCK_X, &n) == 0 && n == (cf_lock_x(A, E) | Q));
	CHECK(cf_lock_acquire_next(cf_lock_x(A, E) | Q, B, E, CF_LOCK_X, &n) == -EBUSY);
	/* a release keeps Q: X|Q → Q, S{A,B}|Q - A → S{B}|Q, S{B}|Q - B → Q */
	CHECK(cf_lock_release_next(cf_lock_x(A, E) | Q, A, &n) == 0 && n == Q);
	CHECK(cf_lock_release_next(CF_LOCK_SBIT | (1ull << A) | (1ull << B) | Q, A, &n) == 0 &&
	      n == (CF_LOCK_SBIT | (1ull << B) | Q));
	CHECK(cf_lock_release_next(CF_LOCK_SBIT | (1ull << B) | Q, B, &n) == 0 && n == Q);
	CHECK(cf_lock_release_next(Q, A, &n) == -ENOENT);
	/* the CF grants on the holders part: Q alone → the head's word */
	CHECK(cf_lock_acquire_next(cf_lock_holding(Q), B, E, CF_LOCK_X, &n) == 0 && n == cf_lock_x(B, E));
}

/*
 * The record list's span (cf_log_hdr.rec_span): every entry in use lies
 * below it, after any sequence of acquires and releases; it grows in steps,
 * not to the whole list; a new incarnation starts it again; a word without
 * the tag (zero: a header no owner of this version wrote; or garbage) means
 * "read the whole list".
 */
static void test_span(void)
{
	struct cf_geometry g = {
		.max_systems = 4, .max_instances = 8, .lock_entries = 4096, .record_entries = 512, .log_size = 65536,
	};
	struct img im;
	struct cf_lock_table t;
	struct cf_log_hdr *h;
	uint32_t ent[300], nh = 0, e, most = 0, span;
	uint64_t rng = 12345;
	const char *why;
	char n[24];
	int bad = 0;

	CHECK(cf_geometry_check(&g, &why) == 0);
	cf_image_map(&g, &im.map);
	im.mem = calloc(1, im.map.image_size);
	if (!im.mem)
		abort();
	h = (struct cf_log_hdr *)(void *)(im.mem + cf_log_off(&im.map, 1));
	CHECK(cf_log_rec_span(h, 512) == 512); /* never written: unknown */
	CHECK(cf_lock_table_init_mem(&t, im.mem, &im.map, 1, 5) == 0);
	for (int step = 0; step < 20000; step++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		if (nh < 300 && (nh == 0 || (rng >> 33) % 100 < (step < 10000 ? 55 : 45))) {
			snprintf(n, sizeof(n), "r%d", step);
			CHECK(cf_lock_acquire(&t, n, (rng >> 20) & 1 ? CF_LOCK_X : CF_LOCK_S, (uint64_t)step, 0, &e, NULL) ==
			      0);
			ent[nh++] = e;
		} else {
			uint32_t k = (uint32_t)((rng >> 40) % nh);
			CHECK(cf_lock_release(&t, ent[k]) == 0);
			ent[k] = ent[--nh];
		}
		most = nh > most ? nh : most;
		span = cf_log_rec_span(h, 512);
		for (uint32_t i = span; i < 512; i++)
			bad += rec_of(&im, 1, i)->used != 0;
	}
	CHECK(bad == 0);
	span = cf_log_rec_span(h, 512);
	CHECK(h->rec_span >> 32 == CF_REC_SPAN_TAG);
	CHECK(span >= most && span < most + 64 && span < 512); /* the most held at once, rounded up to a step */
	/* the recovery's release from that prefix frees everything */
	CHECK(cf_lock_release_instance_mem(im.mem, &im.map, 1, 5, &e) == 0);
	for (uint32_t i = 0; i < 512; i++)
		bad += rec_of(&im, 1, i)->used != 0;
	CHECK(bad == 0);
	/* a new incarnation's first entry writes a span of its own */
	cf_lock_table_fini(&t);
	CHECK(cf_lock_table_init_mem(&t, im.mem, &im.map, 1, 6) == 0);
	CHECK(cf_lock_acquire(&t, "again", CF_LOCK_X, 1, 0, &e, NULL) == 0 && e == 0);
	CHECK(cf_log_rec_span(h, 512) == 64);
	/* untagged or out of range: the whole list */
	h->rec_span = 12;
	CHECK(cf_log_rec_span(h, 512) == 512);
	h->rec_span = cf_log_rec_span_word(513);
	CHECK(cf_log_rec_span(h, 512) == 512);
	h->rec_span = cf_log_rec_span_word(0);
	CHECK(cf_log_rec_span(h, 512) == 0);
	cf_lock_table_fini(&t);
	free(im.mem);
}

int main(void)
{
	test_words();
	test_queued();
	test_table();
	test_hist();
	test_span();
	if (failures) {
		fprintf(stderr, "test_lock: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_lock: ok\n");
	return 0;
}
