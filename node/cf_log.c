/* SPDX-License-Identifier: MIT */
/*
 * cf_log.c - private undo log (design and invariants in cf_log.h).
 *
 * The writer keeps head/head_lsn as the CF holds them and tail/next_lsn in
 * memory. Free space is ring_size - (tail - head): space behind the CF's head
 * is the only space ever reused. When an append does not fit, the head is
 * moved to the oldest pinned transaction (one header WRITE, awaited) and the
 * fit is tried again; only then is it -ENOSPC.
 */
#include "cf_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cf_session.h"
#include "cf_util.h"

#define HDR ((uint32_t)sizeof(struct cf_logrec_hdr))
#define READ_CHUNK 32768u

static void assert_state(const struct cf_log *l)
{
	(void)l;
#ifndef NDEBUG
	if (l->tail < l->head || l->tail - l->head > l->ring_size || l->next_lsn < l->head_lsn)
		abort();
	if (l->pins_first && l->pins_first->pos < l->head)
		abort();
#endif
}

/* ---------------- scan ---------------- */

static int scan_push(struct cf_log_scan *sc, const struct cf_logrec_hdr *h, uint64_t pos, const uint8_t *img)
{
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 256;
		struct cf_log_rec *r = realloc(sc->recs, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		sc->recs = r;
		sc->cap = cap;
	}
	sc->recs[sc->n].h = *h;
	sc->recs[sc->n].pos = pos;
	sc->recs[sc->n].image = img;
	sc->n++;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int cf_log_scan(const void *region, uint64_t region_len, struct cf_log_scan *sc)
{
	const uint8_t *ring = (const uint8_t *)region + sizeof(struct cf_log_hdr);
	struct cf_log_hdr lh;
	uint64_t R, pos, lsn;

	memset(sc, 0, sizeof(*sc));
	if (region_len < sizeof(lh) + 2 * HDR)
		return CF_CORRUPT();
	memcpy(&lh, region, sizeof(lh));
	R = region_len - sizeof(lh);
	/*
	 * A header no writer produces is corrupt, not a place to start: records
	 * are 8-aligned, and positions/LSNs never come within a lap of wrapping
	 * (found by fuzz_logscan: the writer would assert or write a bad PAD).
	 */
	if (lh.head % 8 || lh.head > UINT64_MAX - 2 * R || lh.head_lsn > UINT64_MAX - R)
		return CF_CORRUPT();
	sc->head = pos = lh.head;
	sc->head_lsn = lsn = lh.head_lsn;
	for (;;) {
		uint64_t off = pos % R, rem = R - off;
		struct cf_logrec_hdr h;
		const void *img;
		int r;

		if (rem < HDR) { /* reader wraps by itself */
			if (pos + rem - lh.head > R)
				break;
			pos += rem;
			continue;
		}
		r = cf_logrec_parse(ring + off, rem, &h, &img);
		if (r < 0) {
			/* zero bytes: never written on this lap; else torn or corrupt */
			if (all_zero(ring + off, HDR)) {
				sc->stop = 0;
			} else {
				sc->stop = -EBADMSG;
				sc->stop_where = cf_corrupt_where();
			}
			break;
		}
		if (h.lsn != lsn || pos + h.total - lh.head > R) {
			sc->stop = 0; /* stale record of an earlier lap */
			sc->stop_lsn = h.lsn;
			break;
		}
		if (h.type == CF_LR_PAD) {
			/* a write mark, or the ring's end: either way, later than every UPDATE before it */
			sc->mark_end = h.lsn + 1;
		} else {
			r = scan_push(sc, &h, pos, (const uint8_t *)img);
			if (r) {
				cf_log_scan_free(sc);
				return r;
			}
		}
		pos += h.total;
		lsn++;
	}
	sc->end = pos;
	sc->next_lsn = lsn;
	return 0;
}

void cf_log_scan_free(struct cf_log_scan *sc)
{
	if (!sc)
		return;
	free(sc->recs);
	sc->recs = NULL;
	sc->n = sc->cap = 0;
	cf_log_copy_put(sc->copy, sc->copy_len, sc->copy_from, sc->copy_n);
	sc->copy = NULL;
	sc->copy_len = sc->copy_from = sc->copy_n = 0;
}

bool cf_log_scan_txn_open(const struct cf_log_scan *sc, uint64_t txid)
{
	bool seen = false;

	for (size_t i = 0; i < sc->n; i++) {
		if (sc->recs[i].h.txid != txid)
			continue;
		if (sc->recs[i].h.type == CF_LR_COMMIT || sc->recs[i].h.type == CF_LR_ABORT)
			return false;
		seen = true;
	}
	return seen;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The txids with a COMMIT or an ABORT in the scan, sorted (bsearch with cmp_u64); NULL: no memory. */
static uint64_t *decided_txids(const struct cf_log_scan *sc, size_t *n)
{
	uint64_t *done = malloc((sc->n + 1) * sizeof(*done));

	*n = 0;
	if (!done)
		return NULL;
	for (size_t i = 0; i < sc->n; i++)
		if (sc->recs[i].h.type == CF_LR_COMMIT || sc->recs[i].h.type == CF_LR_ABORT)
			done[(*n)++] = sc->recs[i].h.txid;
	qsort(done, *n, sizeof(*done), cmp_u64);
	return done;
}

/* The txids whose BEGIN promised write marks (cf_logrec.h), sorted as decided_txids; NULL: no memory. */
static uint64_t *marked_txids(const struct cf_log_scan *sc, size_t *n)
{
	uint64_t *t = malloc((sc->n + 1) * sizeof(*t));

	*n = 0;
	if (!t)
		return NULL;
	for (size_t i = 0; i < sc->n; i++)
		if (sc->recs[i].h.type == CF_LR_BEGIN && (sc->recs[i].h.file & CF_LR_BEGIN_MARKED))
			t[(*n)++] = sc->recs[i].h.txid;
	qsort(t, *n, sizeof(*t), cmp_u64);
	return t;
}

int cf_log_scan_written(const struct cf_log_scan *sc, struct cf_log_rec **out, size_t *n, size_t *nunwritten)
{
	struct cf_log_rec *v = NULL;
	uint64_t *marked;
	size_t k = 0, nmarked = 0;
	int r;

	*nunwritten = 0;
	r = cf_log_scan_inflight(sc, &v, n, NULL);
	if (r || !*n) {
		*out = v;
		return r;
	}
	marked = marked_txids(sc, &nmarked);
	if (!marked) {
		free(v);
		*out = NULL;
		*n = 0;
		return -ENOMEM;
	}
	for (size_t i = 0; i < *n; i++) {
		/*
		 * No write mark after it, in a transaction that promised one before
		 * each data write: never written, the data holds its before-image
		 * (durably: it was committed, or restored and synced, before this
		 * transaction could lock it).
		 */
		if (v[i].h.lsn >= sc->mark_end && bsearch(&v[i].h.txid, marked, nmarked, sizeof(*marked), cmp_u64))
			continue;
		v[k++] = v[i];
	}
	free(marked);
	*nunwritten = *n - k;
	*n = k;
	*out = v;
	return 0;
}

struct txid_at {
	uint64_t txid;
	size_t at; /* index of its first record in the scan */
};

static int cmp_txid_at(const void *a, const void *b)
{
	const struct txid_at *x = a, *y = b;

	if (x->txid != y->txid)
		return x->txid < y->txid ? -1 : 1;
	return x->at < y->at ? -1 : x->at > y->at;
}

static int cmp_at(const void *a, const void *b)
{
	const struct txid_at *x = a, *y = b;

	return x->at < y->at ? -1 : x->at > y->at;
}

/*
 * Sorting, not a txid-by-txid walk of the scan: on the failover path the log
 * holds a thousand records and hundreds of transactions, and the quadratic
 * walk took up to 1.5 ms of the sync phase.
 */
int cf_log_scan_open_txids(const struct cf_log_scan *sc, uint64_t **out, size_t *n)
{
	size_t ndone, k = 0, d = 0;
	uint64_t *done = decided_txids(sc, &ndone);
	struct txid_at *v = malloc((sc->n + 1) * sizeof(*v));

	*out = NULL;
	*n = 0;
	if (!done || !v) {
		free(done);
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < sc->n; i++)
		if (!bsearch(&sc->recs[i].h.txid, done, ndone, sizeof(*done), cmp_u64))
			v[k++] = (struct txid_at){ .txid = sc->recs[i].h.txid, .at = i };
	free(done);
	qsort(v, k, sizeof(*v), cmp_txid_at);
	for (size_t i = 0; i < k; i++) /* the first record of each txid */
		if (i == 0 || v[i].txid != v[d - 1].txid)
			v[d++] = v[i];
	qsort(v, d, sizeof(*v), cmp_at);
	uint64_t *t = malloc((d + 1) * sizeof(*t));
	if (!t) {
		free(v);
		return -ENOMEM;
	}
	for (size_t i = 0; i < d; i++)
		t[i] = v[i].txid;
	free(v);
	*out = t;
	*n = d;
	return 0;
}

int cf_log_scan_inflight(const struct cf_log_scan *sc, struct cf_log_rec **out, size_t *n, size_t *ntx)
{
	uint64_t *done = NULL, *open = NULL;
	size_t ndone = 0, nopen = 0, k = 0;
	struct cf_log_rec *v = NULL;

	*out = NULL;
	*n = 0;
	if (ntx)
		*ntx = 0;
	if (!sc->n)
		return 0;
	done = decided_txids(sc, &ndone);
	open = malloc(sc->n * sizeof(*open));
	v = malloc(sc->n * sizeof(*v));
	if (!done || !open || !v) {
		free(done);
		free(open);
		free(v);
		return -ENOMEM;
	}
	for (size_t i = sc->n; i-- > 0;) {
		const struct cf_log_rec *r = &sc->recs[i];
		if (bsearch(&r->h.txid, done, ndone, sizeof(*done), cmp_u64))
			continue;
		if (r->h.type == CF_LR_UPDATE)
			v[k++] = *r;
		open[nopen++] = r->h.txid;
	}
	if (ntx) {
		size_t d = 0;
		qsort(open, nopen, sizeof(*open), cmp_u64);
		for (size_t i = 0; i < nopen; i++)
			if (i == 0 || open[i] != open[i - 1])
				d++;
		*ntx = d;
	}
	free(done);
	free(open);
	if (!k) {
		free(v);
		return 0;
	}
	*out = v;
	*n = k;
	return 0;
}

/* ---------------- ring arithmetic ---------------- */

uint64_t cf_log_need(const struct cf_log *l, uint32_t size, uint64_t *pad)
{
	uint64_t off = l->tail % l->ring_size, rem = l->ring_size - off;

	*pad = rem < size ? rem : 0;
	return *pad + size;
}

/* ---------------- I/O ---------------- */

static int log_write(struct cf_log *l, uint64_t region_pos, const void *buf, uint32_t len, bool wait)
{
	if (l->mem) {
		memcpy(l->mem + region_pos, buf, len);
		return 0;
	}
	if (wait)
		return cf_session_write(l->s, l->region_off + region_pos, buf, len);
	return cf_session_post_write(l->s, l->region_off + region_pos, buf, len, CF_POST_UNSIGNALED);
}

/*
 * Persist region bytes [a, b) and [c, d) (region offsets, a <= b, c <= d,
 * either may be empty): one request when they are close, else two.
 */
#define PERSIST_MERGE_GAP 4096u

static int persist_region(struct cf_log *l, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	int r;

	if (a == b) {
		a = c;
		b = d;
		c = d = 0;
	}
	if (c != d && c >= b && c - b <= PERSIST_MERGE_GAP) {
		b = d;
		c = d = 0;
	}
	if (a != b) {
		r = cf_session_persist(l->s, l->region_off + a, b - a);
		if (r)
			return r;
		l->persists++;
	}
	if (c != d) {
		r = cf_session_persist(l->s, l->region_off + c, d - c);
		if (r)
			return r;
		l->persists++;
	}
	return 0;
}

int cf_log_persist(struct cf_log *l)
{
	const uint64_t H = sizeof(struct cf_log_hdr);
	uint64_t n, a, hb = 0;
	int r;

	if (l->mem || !l->persist)
		return 0;
	n = l->tail - l->durable_tail; /* <= ring_size: never ahead of a durable head by more */
	if (l->head != l->durable_head || l->head_unpersisted)
		hb = H; /* the header is region bytes [0, H) */
	if (!n && !hb)
		return 0;
	a = l->durable_tail % l->ring_size;
	if (!n) {
		r = persist_region(l, 0, hb, 0, 0);
	} else if (a + n <= l->ring_size) {
		r = persist_region(l, 0, hb, H + a, H + a + n);
	} else {
		/* wraps: the ring's start follows the header */
		r = persist_region(l, 0, H + (a + n - l->ring_size), H + a, H + l->ring_size);
	}
	if (r)
		return r;
	l->durable_tail = l->tail;
	l->durable_head = l->head;
	l->head_unpersisted = false;
	return 0;
}

int cf_log_flush(struct cf_log *l)
{
	int r;

	if (l->mem)
		return 0;
	r = cf_session_drain(l->s);
	return r ? r : cf_log_persist(l);
}

/* Room for a posted record of size bytes; the arena is reused only after a drain. */
static int post_alloc(struct cf_log *l, uint32_t size, uint8_t **out)
{
	if (size > CF_LOG_POST_ARENA)
		return -EMSGSIZE; /* cannot happen: records are at most ring_size / 4 and CF_LOGREC_MAX_IMAGE */
	if (l->post_used + size > CF_LOG_POST_ARENA) {
		if (!l->mem) {
			int r = cf_session_drain(l->s);
			if (r)
				return r;
		}
		l->post_used = 0;
	}
	*out = l->post_arena + l->post_used;
	l->post_used += size;
	return 0;
}

static int write_head(struct cf_log *l, uint64_t head, uint64_t head_lsn)
{
	struct cf_log_hdr h;
	int r;

	memset(&h, 0, sizeof(h));
	h.head = head;
	h.head_lsn = head_lsn;
	r = log_write(l, 0, &h, sizeof(h), true);
	if (r)
		return r;
	l->head = head;
	l->head_lsn = head_lsn;
	l->head_writes++;
	return 0;
}

/*
 * Keep the live log short, so that a recovery reads little: once the bytes
 * between the CF's head and the oldest pin (or the tail) pass
 * EAGER_HEAD_BYTES, move the head with a POSTED 16-byte WRITE. That costs no
 * round trip and is safe: requests of one connection execute in order (RC),
 * so the head lands before any record written into the space it frees, and a
 * crash in between leaves a head that is merely conservative.
 */
#define EAGER_HEAD_BYTES (16u * 1024u)

/*
 * Write head and head_lsn (16 bytes; rec_span and the rest of the header
 * stay), awaited or posted from the arena, and take them as the log's.
 */
static int put_head(struct cf_log *l, uint64_t head, uint64_t lsn, bool wait)
{
	uint64_t w[2] = {head, lsn};
	uint8_t *p = (uint8_t *)w;
	int r = 0;

	if (!wait && (r = post_alloc(l, sizeof(w), &p)) == 0)
		memcpy(p, w, sizeof(w));
	if (r == 0)
		r = log_write(l, offsetof(struct cf_log_hdr, head), p, sizeof(w), wait);
	if (r)
		return r;
	l->head = head;
	l->head_lsn = lsn;
	l->head_writes++;
	return 0;
}

static int advance_head_posted(struct cf_log *l)
{
	uint64_t head = l->pins_first ? l->pins_first->pos : l->tail;
	uint64_t lsn = l->pins_first ? l->pins_first->lsn : l->next_lsn;

	if (head - l->head < EAGER_HEAD_BYTES)
		return 0;
	return put_head(l, head, lsn, false);
}

int cf_log_advance_head(struct cf_log *l)
{
	uint64_t head = l->pins_first ? l->pins_first->pos : l->tail;
	uint64_t lsn = l->pins_first ? l->pins_first->lsn : l->next_lsn;

	if (head == l->head)
		return 0;
	return write_head(l, head, lsn);
}

int cf_log_reset(struct cf_log *l)
{
	int r = write_head(l, l->tail, l->next_lsn);
	assert_state(l);
	return r;
}

int cf_log_close_durable(struct cf_log *l)
{
	bool persist = l->persist && !l->mem;
	/*
	 * Only head and head_lsn: rec_span stays, so a recovery that follows
	 * ours before the record list is cleared still reads just its span.
	 * Posted when a persist follows: the PERSIST request behind it on the
	 * same connection covers it.
	 */
	int r = put_head(l, l->tail, l->next_lsn, !persist);

	if (r)
		return r;
	if (persist) {
		/* the bytes before the tail are out of the log: only the header need reach the medium */
		l->durable_tail = l->tail;
		l->head_unpersisted = true;
		r = cf_log_persist(l);
	}
	assert_state(l);
	return r;
}

void cf_log_pin(struct cf_log *l, struct cf_log_pin *p)
{
	p->pos = l->tail;
	p->lsn = l->next_lsn;
	p->next = NULL;
	p->prev = l->pins_last;
	if (l->pins_last)
		l->pins_last->next = p;
	else
		l->pins_first = p;
	l->pins_last = p;
	p->pinned = true;
	l->npinned++;
}

void cf_log_unpin(struct cf_log *l, struct cf_log_pin *p)
{
	if (!p->pinned)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		l->pins_first = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		l->pins_last = p->prev;
	p->pinned = false;
	p->prev = p->next = NULL;
	l->npinned--;
}

static bool fits(const struct cf_log *l, uint64_t need, unsigned flags)
{
	uint64_t reserve = (flags & CF_LOG_TERMINAL) ? 0 : l->npinned * CF_LOG_TXN_RESERVE;
	return need + reserve <= cf_log_free(l);
}

/* A record (a header-only PAD: a write mark, cf_logrec.h) at the tail. */
static int append(struct cf_log *l, enum cf_logrec_type type, uint64_t txid, uint32_t file, uint64_t offset,
		  const void *image, uint32_t len, unsigned flags, uint64_t *lsn)
{
	uint32_t size = cf_logrec_size(len);
	uint64_t pad, need;
	uint8_t *rec;
	bool wait = flags & CF_LOG_WAIT;
	int r;

	if (len > CF_LOGREC_MAX_IMAGE)
		return -EINVAL;
	if (size > l->ring_size / 4)
		return -EINVAL;
	r = advance_head_posted(l);
	if (r)
		return r;
	need = cf_log_need(l, size, &pad);
	if (!fits(l, need, flags)) {
		r = cf_log_advance_head(l);
		if (r)
			return r;
		if (!fits(l, need, flags)) {
			l->full++;
			return -ENOSPC;
		}
	}
	if (pad >= HDR) {
		uint8_t *p;
		r = post_alloc(l, HDR, &p);
		if (r)
			return r;
		r = cf_logrec_encode_pad(p, pad, l->next_lsn);
		if (r < 0)
			return r; /* cannot happen on a well-formed log: pad is 8-aligned */
		r = log_write(l, sizeof(struct cf_log_hdr) + l->tail % l->ring_size, p, HDR, false);
		if (r)
			return r;
		l->next_lsn++;
	}
	/*
	 * Ring space the CF's head freed is reused only once that head is
	 * durable too: [tail, tail + need) must lie below durable_head + R.
	 */
	if (l->persist && l->tail + need > l->durable_head + l->ring_size) {
		r = cf_log_persist(l);
		if (r)
			return r;
	}
	l->tail += pad;
	if (wait) {
		rec = l->buf;
	} else {
		r = post_alloc(l, size, &rec);
		if (r)
			return r;
	}
	if (type == CF_LR_PAD)
		r = cf_logrec_encode_pad(rec, size, l->next_lsn);
	else
		r = cf_logrec_encode(rec, size, type, l->next_lsn, txid, file, offset, image, len);
	if (r < 0)
		return r;
	r = log_write(l, sizeof(struct cf_log_hdr) + l->tail % l->ring_size, rec, size, wait);
	if (r)
		return r;
	if (lsn)
		*lsn = l->next_lsn;
	l->tail += size;
	l->next_lsn++;
	l->appends++;
	assert_state(l);
	/* write-ahead and commit point: durable, not only visible (cf_log.h) */
	if (wait && l->persist) {
		r = cf_log_persist(l);
		if (r)
			return r;
	}
	return 0;
}

int cf_log_append(struct cf_log *l, enum cf_logrec_type type, uint64_t txid, uint32_t file, uint64_t offset,
		  const void *image, uint32_t len, unsigned flags, uint64_t *lsn)
{
	if (type == CF_LR_PAD)
		return -EINVAL;
	return append(l, type, txid, file, offset, image, len, flags, lsn);
}

int cf_log_mark(struct cf_log *l)
{
	int r = append(l, CF_LR_PAD, 0, 0, 0, NULL, 0, CF_LOG_TERMINAL, NULL);

	if (!r)
		l->marks++;
	return r;
}

/* ---------------- attach ---------------- */

/*
 * Read ring bytes [from, from + n) (ring offsets, wrapping) into the region
 * copy, as one batch of chunk READs (pipelined: about one round trip).
 */
static int read_ring(struct cf_session *s, uint64_t off, uint8_t *buf, uint64_t ring, uint64_t from, uint64_t n)
{
	struct cf_batch_op ops[CF_BATCH_DEPTH];
	size_t k = 0;
	int r;

	while (n > 0 || k > 0) {
		if (n > 0 && k < CF_BATCH_DEPTH) {
			uint64_t pos = from % ring;
			uint64_t len = ring - pos < n ? ring - pos : n;
			if (len > READ_CHUNK)
				len = READ_CHUNK;
			ops[k++] = (struct cf_batch_op){.op = CF_OP_READ, .len = (uint32_t)len,
							.off = off + sizeof(struct cf_log_hdr) + pos,
							.buf = buf + sizeof(struct cf_log_hdr) + pos};
			from += len;
			n -= len;
			continue;
		}
		r = cf_session_batch(s, ops, k);
		for (size_t i = 0; !r && i < k; i++)
			r = ops[i].status;
		if (r)
			return r;
		k = 0;
	}
	return 0;
}

/*
 * Recovery reads what it needs, not the whole region: the header (unless the
 * CF sent it with the attach's grants), then the ring from the head in
 * windows of 32 KiB that grow 4x, until a scan stops well inside what was
 * read (bytes never read stay zero, which no record parses as). The
 * failover time then grows with the live log, not with --log-size.
 *
 * The copy is zero wherever it was not read, never calloc'd on the way: the
 * process's resident copy (cf_log_copy.c), zeroed behind its last reader, or
 * else an anonymous mapping, zero until touched. (A calloc of 4 MiB came from
 * the heap once glibc's mmap threshold had grown past it, and zeroing it took
 * 3 ms on the failover path; the mapping's page faults then took 0.2 ms per
 * 64 KiB window on this VM.) The last window's scan is the caller's: nothing
 * is scanned twice.
 */
static int read_live(struct cf_session *s, uint32_t inst, const struct cf_log_hdr *known, struct cf_log_scan *sc)
{
	uint64_t size = s->map.geo.log_size, off = cf_log_off(&s->map, inst);
	uint64_t ring = size - sizeof(struct cf_log_hdr), done = 0, want = 32u * 1024u, written = 0;
	struct cf_log_hdr h = {0};
	uint8_t *buf;
	int r;

	memset(sc, 0, sizeof(*sc));
	if (inst >= s->map.geo.max_instances)
		return -EINVAL;
	buf = cf_log_copy_get(size);
	if (!buf)
		return -ENOMEM;
	if (known) {
		/* the CF sent it with the grants (INST_ATTACH): no READ of its own */
		memcpy(buf, known, sizeof(h));
	} else {
		r = cf_session_read(s, off, buf, sizeof(h));
		if (r)
			goto err;
	}
	memcpy(&h, buf, sizeof(h));
	for (;;) {
		if (want > ring)
			want = ring;
		written = want; /* what the READs may have written, even if one fails */
		r = read_ring(s, off, buf, ring, h.head + done, want - done);
		if (r)
			goto err;
		done = want;
		r = cf_log_scan(buf, size, sc);
		if (r)
			goto err; /* an impossible header, or no memory */
		sc->rec_span = cf_log_rec_span(&h, s->map.geo.record_entries);
		if (done == ring ||
		    sc->end - sc->head + cf_logrec_size(CF_LOGREC_MAX_IMAGE) + sizeof(struct cf_logrec_hdr) <= done)
			break; /* the whole ring, or stopped inside the window: the rest is not the live log */
		cf_log_scan_free(sc);
		want *= 4;
	}
	sc->copy = buf;
	sc->copy_len = size;
	sc->copy_from = h.head;
	sc->copy_n = written;
	return 0;
err:
	cf_log_scan_free(sc);
	cf_log_copy_put(buf, size, h.head, written);
	return r;
}

/* Position l after a scan of its region (ring_size = region_len - header). */
static int attach_scanned(struct cf_log *l, uint64_t region_len, const struct cf_log_scan *sc)
{
	l->ring_size = region_len - sizeof(struct cf_log_hdr);
	l->buf = malloc(cf_logrec_size(CF_LOGREC_MAX_IMAGE));
	l->post_arena = malloc(CF_LOG_POST_ARENA);
	if (!l->buf || !l->post_arena) {
		cf_log_detach(l);
		return -ENOMEM;
	}
	l->head = sc->head;
	l->head_lsn = sc->head_lsn;
	l->tail = sc->end;
	l->next_lsn = sc->next_lsn;
	l->durable_tail = l->tail; /* cf_log_attach says otherwise on a durable CF */
	l->durable_head = l->head;
	return 0;
}

int cf_log_attach_mem(struct cf_log *l, void *region, uint64_t region_len)
{
	struct cf_log_scan sc;
	int r;

	memset(l, 0, sizeof(*l));
	l->mem = region;
	r = cf_log_scan(region, region_len, &sc);
	if (r == 0)
		r = attach_scanned(l, region_len, &sc);
	cf_log_scan_free(&sc);
	return r;
}

int cf_log_attach(struct cf_log *l, struct cf_session *s, uint32_t inst, struct cf_log_scan *sc)
{
	return cf_log_attach_hdr(l, s, inst, NULL, sc);
}

int cf_log_attach_hdr(struct cf_log *l, struct cf_session *s, uint32_t inst, const struct cf_log_hdr *known,
		      struct cf_log_scan *sc)
{
	struct cf_log_scan local;
	struct cf_log_scan *use = sc ? sc : &local;
	int r;

	memset(l, 0, sizeof(*l));
	l->s = s;
	l->inst = inst;
	l->region_off = cf_log_off(&s->map, inst);
	l->persist = cf_session_persist_needed(s);
	r = read_live(s, inst, known, use);
	if (r == 0)
		r = attach_scanned(l, use->copy_len, use);
	/*
	 * What the last writer left (a failed owner's records, a previous
	 * incarnation's) must be durable before anyone acts on it. The CF answers
	 * a READ with bytes the owner WROTE but never got its PERSIST answer for:
	 * a COMMIT that only the primary of a duplexed pair holds, or only the
	 * page cache of an --nvram CF. A recovery that read it would keep the
	 * transaction committed and release its locks; after a switch of CF (or
	 * a power loss) a second recovery of the same log, from the copy, would
	 * find no COMMIT and write the before-images over whatever committed
	 * since. So the next persist covers the live records. A recovery's is
	 * the persist of the emptied log (cf_txn_backout_close, before any lock
	 * is released): the header alone, head = tail, after which no scan of
	 * the copy finds a transaction to back out, and nothing read here needs
	 * to be in the copy. (A separate persist here cost the read-log phase
	 * 1.1 ms at p50 on a durable CF, bench/RESULTS.md.)
	 *
	 * That persist covers the header too. The durable copy's head may be
	 * older than the one read here, and the bytes between them are not all
	 * in the copy: the last writer's final records (an END, a BEGIN never
	 * followed) were posted, never persisted, and then its head moved past
	 * them. A scan of the copy from its old head stops at that hole, and
	 * every record written from here on, persisted or not, lies beyond it:
	 * a switch of a duplexed CF lost a whole incarnation's log that way (the
	 * in-flight updates it had written to the data were never backed out,
	 * tests/fault/duplex.sh seed 229573493). With the header persisted
	 * first, the copy's scan starts where this one did.
	 */
	if (r == 0 && l->persist) {
		l->durable_tail = l->head;
		l->head_unpersisted = true;
	}
	if (r || !sc)
		cf_log_scan_free(use);
	return r;
}

void cf_log_detach(struct cf_log *l)
{
	if (!l)
		return;
	free(l->buf);
	free(l->post_arena);
	l->buf = l->post_arena = NULL;
	l->pins_first = l->pins_last = NULL;
	l->npinned = 0;
}
