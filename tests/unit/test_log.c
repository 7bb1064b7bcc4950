/* SPDX-License-Identifier: MIT */
/*
 * test_log - undo-log records and the ring (node/cf_log.c) on a region in
 * memory: encode/parse, torn and corrupt records (-EBADMSG, never applied),
 * stale records of an earlier lap, wrap with PAD, log full and the reserve,
 * lazy head advance, in-flight extraction in backout order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"
#include "cf_logrec.h"
#include "cf_session.h"
#include "cf_util.h"


#include "unit_check.h"

#define RING (64u * 1024u)
#define REGION (RING + sizeof(struct cf_log_hdr))

static void test_encode_parse(void)
{
	uint8_t buf[256], img[40];
	struct cf_logrec_hdr h;
	const void *p;
	int n;

	for (unsigned i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 7 + 1);
	n = cf_logrec_encode(buf, sizeof(buf), CF_LR_UPDATE, 5, 77, 3, 4096, img, 37);
	CHECK(n == (int)cf_logrec_size(37));
	CHECK(cf_logrec_parse(buf, sizeof(buf), &h, &p) == n);
	CHECK(h.lsn == 5 && h.txid == 77 && h.file == 3 && h.offset == 4096 && h.length == 37);
	CHECK(!memcmp(p, img, 37));
	/* torn: every shorter prefix is rejected */
	for (int k = 0; k < n; k++)
		CHECK(cf_logrec_parse(buf, (size_t)k, &h, &p) == -EBADMSG);
	/* a torn write that left the old bytes in place: flip every byte in turn */
	for (int k = 0; k < n; k++) {
		uint8_t c[256];
		memcpy(c, buf, sizeof(c));
		c[k] ^= 0x5a;
		CHECK(cf_logrec_parse(c, sizeof(c), &h, &p) == -EBADMSG);
	}
	/* malformed encodes */
	CHECK(cf_logrec_encode(buf, sizeof(buf), CF_LR_UPDATE, 1, 1, 0, 0, NULL, 0) == -EINVAL);
	CHECK(cf_logrec_encode(buf, sizeof(buf), CF_LR_COMMIT, 1, 1, 0, 0, img, 8) == -EINVAL);
	CHECK(cf_logrec_encode(buf, 40, CF_LR_COMMIT, 1, 1, 0, 0, NULL, 0) == -ENOSPC);
	CHECK(cf_logrec_encode_pad(buf, 56, 9) == 56);
	CHECK(cf_logrec_parse(buf, 56, &h, &p) == 56 && h.type == CF_LR_PAD);
}

static uint8_t *fresh_region(void)
{
	uint8_t *r = calloc(1, REGION);
	if (!r)
		abort();
	return r;
}

static void test_append_scan(void)
{
	uint8_t *region = fresh_region(), img[64];
	struct cf_log l;
	struct cf_log_pin p1, p2;
	struct cf_log_scan sc;
	struct cf_log_rec *v;
	size_t n, ntx;

	memset(img, 0xab, sizeof(img));
	CHECK(cf_log_attach_mem(&l, region, REGION) == 0);
	CHECK(l.tail == 0 && l.next_lsn == 0);
	cf_log_pin(&l, &p1);
	CHECK(cf_log_append(&l, CF_LR_BEGIN, 1, 0, 0, NULL, 0, 0, NULL) == 0);
	CHECK(cf_log_append(&l, CF_LR_UPDATE, 1, 0, 64, img, 24, CF_LOG_WAIT, NULL) == 0);
	cf_log_pin(&l, &p2);
	CHECK(cf_log_append(&l, CF_LR_BEGIN, 2, 0, 0, NULL, 0, 0, NULL) == 0);
	CHECK(cf_log_append(&l, CF_LR_UPDATE, 2, 0, 96, img, 24, CF_LOG_WAIT, NULL) == 0);
	CHECK(cf_log_append(&l, CF_LR_UPDATE, 1, 0, 128, img, 24, CF_LOG_WAIT, NULL) == 0);
	CHECK(cf_log_append(&l, CF_LR_COMMIT, 2, 0, 0, NULL, 0, CF_LOG_WAIT | CF_LOG_TERMINAL, NULL) == 0);
	CHECK(cf_log_append(&l, CF_LR_END, 2, 0, 0, NULL, 0, CF_LOG_TERMINAL, NULL) == 0);
	cf_log_unpin(&l, &p2);
	/* an image larger than a record carries is refused, posted or awaited, before any write */
	CHECK(cf_log_append(&l, CF_LR_UPDATE, 1, 0, 0, img, CF_LOGREC_MAX_IMAGE + 8, 0, NULL) == -EINVAL);
	CHECK(cf_log_append(&l, CF_LR_UPDATE, 1, 0, 0, img, CF_LOGREC_MAX_IMAGE + 8, CF_LOG_WAIT, NULL) == -EINVAL);

	CHECK(cf_log_scan(region, REGION, &sc) == 0);
	CHECK(sc.n == 7 && sc.stop == 0 && sc.end == l.tail && sc.next_lsn == 7);
	CHECK(cf_log_scan_txn_open(&sc, 1) && !cf_log_scan_txn_open(&sc, 2));
	{
		uint64_t *t;
		size_t nt;
		CHECK(cf_log_scan_open_txids(&sc, &t, &nt) == 0);
		CHECK(nt == 1 && t[0] == 1); /* txn 2 committed; txn 1 once, not once per record */
		free(t);
	}
	CHECK(cf_log_scan_inflight(&sc, &v, &n, &ntx) == 0);
	CHECK(n == 2 && ntx == 1);
	if (n == 2)
		CHECK(v[0].h.offset == 128 && v[1].h.offset == 64); /* reverse LSN order */
	free(v);
	cf_log_scan_free(&sc);

	/* Tear the last UPDATE of txn 1 (lsn 4): scan stops there, nothing after is returned. */
	{
		uint8_t *rec = region + sizeof(struct cf_log_hdr) + 48 + cf_logrec_size(24) + 48 + cf_logrec_size(24);
		struct cf_logrec_hdr h;
		memcpy(&h, rec, sizeof(h));
		CHECK(h.lsn == 4 && h.type == CF_LR_UPDATE);
		rec[sizeof(h) + 3] ^= 1;
		CHECK(cf_log_scan(region, REGION, &sc) == 0);
		CHECK(sc.n == 4 && sc.stop == -EBADMSG && sc.next_lsn == 4);
		CHECK(cf_log_scan_inflight(&sc, &v, &n, &ntx) == 0);
		CHECK(n == 2 && ntx == 2); /* txn 2's COMMIT is beyond the tear: both look in flight */
		free(v);
		cf_log_scan_free(&sc);
		rec[sizeof(h) + 3] ^= 1;
	}
	/* A writer attaching after the tear continues at the torn record. */
	cf_log_detach(&l);
	free(region);
}

static void test_wrap_full(void)
{
	uint8_t *region = fresh_region(), img[CF_LOGREC_MAX_IMAGE];
	struct cf_log l;
	struct cf_log_pin pin;
	struct cf_log_scan sc;
	uint64_t txid = 100, pads_seen = 0;
	int r;

	memset(img, 0x11, sizeof(img));
	CHECK(cf_log_attach_mem(&l, region, REGION) == 0);
	/* Many short transactions: the ring wraps several times; head advances lazily. */
	for (int i = 0; i < 400; i++, txid++) {
		uint64_t pad;
		cf_log_pin(&l, &pin);
		CHECK(cf_log_append(&l, CF_LR_BEGIN, txid, 0, 0, NULL, 0, 0, NULL) == 0);
		cf_log_need(&l, cf_logrec_size(1000), &pad);
		pads_seen += pad != 0;
		CHECK(cf_log_append(&l, CF_LR_UPDATE, txid, 0, 64, img, 1000, CF_LOG_WAIT, NULL) == 0);
		CHECK(cf_log_append(&l, CF_LR_COMMIT, txid, 0, 0, NULL, 0, CF_LOG_WAIT | CF_LOG_TERMINAL, NULL) == 0);
		CHECK(cf_log_append(&l, CF_LR_END, txid, 0, 0, NULL, 0, CF_LOG_TERMINAL, NULL) == 0);
		cf_log_unpin(&l, &pin);
	}
	CHECK(l.tail > 4 * RING);
	CHECK(pads_seen > 0);
	CHECK(l.head_writes > 0);
	/* The scan from the CF's head finds exactly [head, tail), across the wrap. */
	CHECK(cf_log_scan(region, REGION, &sc) == 0);
	/* (stop may be -EBADMSG: old-lap bytes after the tail do not parse) */
	CHECK(sc.end == l.tail && sc.next_lsn == l.next_lsn);
	cf_log_scan_free(&sc);

	/* Log full: one open transaction fills the ring; -ENOSPC leaves room for ABORT + END. */
	cf_log_pin(&l, &pin);
	CHECK(cf_log_append(&l, CF_LR_BEGIN, txid, 0, 0, NULL, 0, 0, NULL) == 0);
	int k = 0;
	while ((r = cf_log_append(&l, CF_LR_UPDATE, txid, 0, 64, img, 2048, CF_LOG_WAIT, NULL)) == 0)
		k++;
	CHECK(r == -ENOSPC);
	CHECK(k > 20 && k < 40);
	CHECK(l.full == 1);
	uint64_t tail_before = l.tail;
	/* smaller records still fit until the reserve */
	while ((r = cf_log_append(&l, CF_LR_UPDATE, txid, 0, 64, img, 8, CF_LOG_WAIT, NULL)) == 0)
		;
	CHECK(r == -ENOSPC);
	CHECK(l.tail >= tail_before);
	CHECK(cf_log_free(&l) >= CF_LOG_TXN_RESERVE - 0);
	CHECK(cf_log_append(&l, CF_LR_ABORT, txid, 0, 0, NULL, 0, CF_LOG_WAIT | CF_LOG_TERMINAL, NULL) == 0);
	CHECK(cf_log_append(&l, CF_LR_END, txid, 0, 0, NULL, 0, CF_LOG_TERMINAL, NULL) == 0);
	cf_log_unpin(&l, &pin);
	/* The scan sees the whole transaction, aborted: nothing in flight. */
	{
		struct cf_log_rec *v;
		size_t n;
		CHECK(cf_log_scan(region, REGION, &sc) == 0);
		CHECK(sc.end == l.tail);
		CHECK(!cf_log_scan_txn_open(&sc, txid));
		CHECK(cf_log_scan_inflight(&sc, &v, &n, NULL) == 0 && n == 0);
		cf_log_scan_free(&sc);
	}
	/* After unpinning, space comes back (the head moves lazily on the next append). */
	cf_log_pin(&l, &pin);
	CHECK(cf_log_append(&l, CF_LR_BEGIN, txid + 1, 0, 0, NULL, 0, 0, NULL) == 0);
	CHECK(cf_log_append(&l, CF_LR_UPDATE, txid + 1, 0, 64, img, 2048, CF_LOG_WAIT, NULL) == 0);
	cf_log_unpin(&l, &pin);

	/* Reset: empty log, LSNs continue; stale records behind are not returned. */
	uint64_t lsn = l.next_lsn;
	CHECK(cf_log_reset(&l) == 0);
	CHECK(cf_log_scan(region, REGION, &sc) == 0);
	CHECK(sc.n == 0 && sc.next_lsn == lsn && sc.end == l.tail);
	cf_log_scan_free(&sc);
	/* A re-attached writer continues where the scan stopped. */
	cf_log_detach(&l);
	CHECK(cf_log_attach_mem(&l, region, REGION) == 0);
	CHECK(l.next_lsn == lsn && l.tail == l.head);
	cf_log_detach(&l);
	free(region);
}

/* Stale bytes from an earlier lap must not extend the log: LSN continuity. */
static void test_stale_lap(void)
{
	uint8_t *region = fresh_region();
	struct cf_log l;
	struct cf_log_pin pin;
	struct cf_log_scan sc;

	CHECK(cf_log_attach_mem(&l, region, REGION) == 0);
	for (uint64_t t = 1; t <= 2000; t++) {
		cf_log_pin(&l, &pin);
		CHECK(cf_log_append(&l, CF_LR_BEGIN, t, 0, 0, NULL, 0, 0, NULL) == 0);
		CHECK(cf_log_append(&l, CF_LR_COMMIT, t, 0, 0, NULL, 0, CF_LOG_WAIT | CF_LOG_TERMINAL, NULL) == 0);
		cf_log_unpin(&l, &pin);
	}
	CHECK(cf_log_reset(&l) == 0);
	/* The bytes right after the tail are a valid record of an older lap. */
	CHECK(cf_log_scan(region, REGION, &sc) == 0);
	CHECK(sc.n == 0 && sc.stop == 0);
	cf_log_scan_free(&sc);
	/* A corrupted header (head far away) scans nothing valid and never crashes. */
	((struct cf_log_hdr *)(void *)region)->head = 0x123456788ull;
	CHECK(cf_log_scan(region, REGION, &sc) == 0);
	CHECK(sc.n == 0);
	cf_log_scan_free(&sc);
	/* Headers no writer produces are corrupt: misaligned, or about to wrap. */
	((struct cf_log_hdr *)(void *)region)->head = 0x123456789ull;
	CHECK(cf_log_scan(region, REGION, &sc) == -EBADMSG);
	((struct cf_log_hdr *)(void *)region)->head = UINT64_MAX - 7;
	CHECK(cf_log_scan(region, REGION, &sc) == -EBADMSG);
	((struct cf_log_hdr *)(void *)region)->head = 0;
	((struct cf_log_hdr *)(void *)region)->head_lsn = UINT64_MAX - 1;
	CHECK(cf_log_scan(region, REGION, &sc) == -EBADMSG);
	cf_log_detach(&l);
	free(region);
}

int main(void)
{
	test_encode_parse();
	test_append_scan();
	test_wrap_full();
	test_stale_lap();
	if (failures) {
		fprintf(stderr, "test_log: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_log: ok\n");
	return 0;
}
