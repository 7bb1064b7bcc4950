/* SPDX-License-Identifier: MIT */
/*
 * fuzz_logscan - recovery's own log scanner (node/cf_log.c) on an arbitrary
 * log region, then its writer on top of what the scan left.
 *
 * The input is an instance's log region (struct cf_log_hdr + ring). Checked:
 *  - cf_log_scan returns 0 or -EBADMSG; every record it hands out lies inside
 *    the ring within one lap of head, its image inside the region, LSNs
 *    increase, PADs are left out; the scan ends within one lap.
 *  - cf_log_scan_inflight returns only UPDATEs of open transactions, in
 *    descending LSN order (the backout order).
 *  - cf_log_attach_mem positions the writer where the scan stopped; records
 *    appended there are found again, in order and with their LSNs, by a
 *    fresh scan (the next recovery's view).
 * The session is stubbed: a memory-backed log never calls it.
 */
#include <errno.h>
#include <string.h>

#include "cf_log.h"
#include "cf_session.h"
#include "fuzz.h"

static void check_scan(const uint8_t *region, uint64_t len, const struct cf_log_scan *sc)
{
	const uint64_t R = len - sizeof(struct cf_log_hdr);
	const uint8_t *ring = region + sizeof(struct cf_log_hdr);
	struct cf_log_rec *v = NULL;
	size_t n = 0, ntx = 0;

	FUZZ_ASSERT(sc->end - sc->head <= R);
	FUZZ_ASSERT(sc->next_lsn - sc->head_lsn >= sc->n);
	FUZZ_ASSERT(sc->stop == 0 || sc->stop == -EBADMSG);
	for (size_t i = 0; i < sc->n; i++) {
		const struct cf_log_rec *r = &sc->recs[i];
		FUZZ_ASSERT(r->h.type != CF_LR_PAD && r->h.type >= CF_LR_BEGIN && r->h.type <= CF_LR_END);
		FUZZ_ASSERT(r->pos - sc->head < R && r->pos - sc->head + r->h.total <= R);
		FUZZ_ASSERT(r->pos % R + r->h.total <= R); /* never straddles the ring end */
		FUZZ_ASSERT(r->image == ring + r->pos % R + sizeof(struct cf_logrec_hdr));
		FUZZ_ASSERT(r->image + r->h.length <= region + len);
		FUZZ_ASSERT(r->h.lsn >= sc->head_lsn && r->h.lsn < sc->next_lsn);
		if (i > 0)
			FUZZ_ASSERT(r->h.lsn > sc->recs[i - 1].h.lsn && r->pos > sc->recs[i - 1].pos);
	}
	FUZZ_ASSERT(cf_log_scan_inflight(sc, &v, &n, &ntx) == 0);
	FUZZ_ASSERT(n <= sc->n && ntx <= sc->n);
	for (size_t i = 0; i < n; i++) {
		FUZZ_ASSERT(v[i].h.type == CF_LR_UPDATE);
		FUZZ_ASSERT(cf_log_scan_txn_open(sc, v[i].h.txid));
		if (i > 0)
			FUZZ_ASSERT(v[i].h.lsn < v[i - 1].h.lsn);
	}
	free(v);
	/* the distinct in-flight txids: exactly those cf_log_scan_txn_open says, each once, first-record order */
	uint64_t *t;
	size_t nt, open = 0, at = 0;
	FUZZ_ASSERT(cf_log_scan_open_txids(sc, &t, &nt) == 0);
	FUZZ_ASSERT(nt == ntx);
	for (size_t i = 0; i < sc->n; i++) {
		uint64_t x = sc->recs[i].h.txid;
		bool first = true;
		for (size_t j = 0; j < i; j++)
			first &= sc->recs[j].h.txid != x;
		if (!first || !cf_log_scan_txn_open(sc, x))
			continue;
		open++;
		FUZZ_ASSERT(at < nt && t[at++] == x);
	}
	FUZZ_ASSERT(open == nt);
	free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t image[40] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	struct cf_log_scan sc, sc2;
	struct cf_log l;
	struct cf_log_pin pin;
	uint64_t len, lsns[3], pos0;
	uint8_t *region;
	int r, k = 0;

	if (size < sizeof(struct cf_log_hdr) + 2 * sizeof(struct cf_logrec_hdr))
		return 0;
	/* a real ring is a multiple of 8 bytes (log_size is page aligned) */
	len = sizeof(struct cf_log_hdr) + ((size - sizeof(struct cf_log_hdr)) & ~(uint64_t)7);
	region = malloc(len);
	FUZZ_ASSERT(region != NULL);
	memcpy(region, data, len);

	r = cf_log_scan(region, len, &sc);
	FUZZ_ASSERT(r == 0 || r == -EBADMSG);
	if (r < 0)
		goto out_free;
	/* Headers no writer produces are refused by cf_log_scan itself (they used to
	 * crash the writer: tests/fuzz/known/logscan/ keeps those inputs). */
	check_scan(region, len, &sc);
	cf_log_scan_free(&sc);

	/* the writer continues where the scan stopped */
	r = cf_log_attach_mem(&l, region, len);
	FUZZ_ASSERT(r == 0);
	pos0 = l.tail;
	cf_log_pin(&l, &pin); /* as a transaction does: the head may not pass its BEGIN */
	r = cf_log_append(&l, CF_LR_BEGIN, 0xfeed, 0, 0, NULL, 0, CF_LOG_WAIT, &lsns[k]);
	if (r == 0) {
		k++;
		r = cf_log_append(&l, CF_LR_UPDATE, 0xfeed, 3, 4096, image, sizeof(image), CF_LOG_WAIT, &lsns[k]);
	}
	if (r == 0) {
		k++;
		r = cf_log_append(&l, CF_LR_COMMIT, 0xfeed, 0, 0, NULL, 0, CF_LOG_WAIT | CF_LOG_TERMINAL, &lsns[k]);
	}
	if (r == 0)
		k++;
	FUZZ_ASSERT(r == 0 || r == -ENOSPC || r == -EINVAL);
	FUZZ_ASSERT(l.tail - l.head <= l.ring_size && l.tail >= pos0);
	FUZZ_ASSERT(l.head <= pos0);
	cf_log_unpin(&l, &pin);
	if (k > 0) {
		size_t found = 0;
		FUZZ_ASSERT(cf_log_scan(region, len, &sc2) == 0);
		check_scan(region, len, &sc2);
		/* the appended records are there, in order, after everything older */
		FUZZ_ASSERT(sc2.end - sc2.head >= l.tail - l.head);
		for (size_t i = 0; i < sc2.n; i++)
			if (sc2.recs[i].h.txid == 0xfeed && sc2.recs[i].pos >= pos0 && found < (size_t)k &&
			    sc2.recs[i].h.lsn == lsns[found])
				found++;
		FUZZ_ASSERT(found == (size_t)k);
		cf_log_scan_free(&sc2);
	}
	cf_log_detach(&l);
out_free:
	free(region);
	return 0;
}
