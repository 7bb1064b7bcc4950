/* SPDX-License-Identifier: MIT */
/*
 * test_persist - the undo log makes its write-ahead and commit records
 * durable (node/cf_log.c, cf_txn.c) through the session's persist op, and only
 * where that is needed.
 *
 * The log runs over a session stub whose one-sided ops act on an in-memory
 * image ("the CF's memory") and whose cf_session_persist copies the range into
 * a second image ("the medium"). A power failure keeps only the medium. So:
 *   - durable CF (over either transport: a completion is never durability,
 *     cf_transport.h): after cf_txn_update returns, the
 *     medium's log holds that UPDATE (recovery would back it out); after
 *     cf_txn_commit returns, the medium's log says COMMIT (recovery keeps
 *     it); after a backout, ABORT. Over several laps of a small ring, so a
 *     head that was not durable before its space was reused would show too;
 *   - one PERSIST per durable point at most (batched: BEGIN+UPDATE, END+COMMIT);
 *   - volatile CF (no JOINED flag): not one persist call.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cf_data.h"
#include "cf_layout.h"
#include "cf_lock.h"
#include "cf_log.h"
#include "cf_session.h"
#include "cf_proc.h"
#include "cf_util.h"
#include "cf_txn.h"

#include "unit_check.h"
#include "unit_mincore.h"

/* ---------------- the session stub: memory, and a medium ---------------- */

static uint8_t *mem, *medium;
static uint64_t img_size, persist_calls, persist_bytes;

static int in_image(uint64_t off, uint64_t len)
{
	return off <= img_size && len <= img_size - off;
}

int cf_session_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len)
{
	if (!in_image(off, len))
		return -EACCES;
	memcpy(buf, mem + off, len);
	return 0;
}
int cf_session_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len)
{
	if (!in_image(off, len))
		return -EACCES;
	memcpy(mem + off, buf, len);
	return 0;
}
int cf_session_post_write(struct cf_session *s, uint64_t off, const void *buf, uint32_t len, unsigned flags)
{
	return cf_session_write(s, off, buf, len);
}
int cf_session_post_read(struct cf_session *s, uint64_t off, void *buf, uint32_t len)
{
	return cf_session_read(s, off, buf, len);
}
int cf_session_drain(struct cf_session *s) { return 0; }
int cf_session_batch(struct cf_session *s, struct cf_batch_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ops[i].op == CF_OP_READ)
			ops[i].status = cf_session_read(s, ops[i].off, ops[i].buf, ops[i].len);
		else if (ops[i].op == CF_OP_WRITE)
			ops[i].status = cf_session_write(s, ops[i].off, ops[i].buf, ops[i].len);
		else
			ops[i].status = -EINVAL;
	}
	return 0;
}
int cf_session_persist(struct cf_session *s, uint64_t off, uint64_t len)
{
	persist_calls++;
	if (!in_image(off, len) || !len)
		return -EINVAL;
	memcpy(medium + off, mem + off, len);
	persist_bytes += len;
	return 0;
}
/* the lock table is memory-backed: these are never reached */
int cf_session_cas(struct cf_session *s, uint64_t off, uint64_t c, uint64_t w, uint64_t *old) { return -ENOTCONN; }
int cf_session_write_then_cas(struct cf_session *s, uint64_t woff, const void *wbuf, uint32_t wlen, uint64_t coff,
			      uint64_t compare, uint64_t swap, uint64_t *old)
{
	return -ENOTCONN;
}
int cf_session_lock_wait(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word) { return -ENOTCONN; }
int cf_session_lock_granted(struct cf_session *s, int timeout_ms, uint64_t *word) { return -ENOTCONN; }
int cf_session_lock_cancel(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word) { return -ENOTCONN; }
int cf_session_lock_kick(struct cf_session *s, uint32_t klass) { return -ENOTCONN; }

static const struct cf_client_ops stub_ops = {.name = "stub"};

/* ---------------- environment ---------------- */

#define INST 1u
#define N_TXN 1500

struct env {
	char dir[64];
	struct cf_session s;
	struct cf_data data;
	struct cf_log log;
	struct cf_lock_table locks;
	struct cf_txn_ctx c;
};

static void fill(void *arg, uint64_t idx, void *payload)
{
	int64_t v = 100;
	(void)arg;
	(void)idx;
	memcpy(payload, &v, 8);
}

static uint64_t env_log_size = 65536;

static void env_open(struct env *e, const struct cf_client_ops *ops, uint32_t cf_flags)
{
	struct cf_geometry g = {
		.max_systems = 4, .max_instances = 4, .lock_entries = 1024, .record_entries = 64, .log_size = env_log_size,
	};
	const char *why;

	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/cfplex-test-persist.XXXXXX");
	if (!mkdtemp(e->dir))
		abort();
	CHECK(cf_data_create(e->dir, 0, 8, 16, 1600, fill, NULL, true) == 0);
	CHECK(cf_data_open(&e->data, e->dir) == 0);
	CHECK(cf_geometry_check(&g, &why) == 0);
	cf_image_map(&g, &e->s.map);
	e->s.welcome.geo = g;
	e->s.ops = ops;
	e->s.cf_flags = cf_flags;
	img_size = e->s.map.image_size;
	mem = calloc(1, img_size);
	medium = calloc(1, img_size);
	if (!mem || !medium)
		abort();
	persist_calls = persist_bytes = 0;
	CHECK(cf_log_attach(&e->log, &e->s, INST, NULL) == 0);
	CHECK(cf_lock_table_init_mem(&e->locks, mem, &e->s.map, 1, 3) == 0);
	cf_txn_ctx_init(&e->c, &e->data, &e->log, &e->locks, 3);
	e->c.lock_timeout_ms = 50;
}

static void env_close(struct env *e)
{
	char path[128];

	cf_lock_table_fini(&e->locks);
	cf_log_detach(&e->log);
	cf_data_close(&e->data);
	snprintf(path, sizeof(path), "%s/f0.cfd", e->dir);
	unlink(path);
	rmdir(e->dir);
	free(mem);
	free(medium);
	mem = medium = NULL;
}

/* What a recovery after a power failure would find for txid: -1 absent, 0 open with n UPDATEs, 1 finished. */
static int on_medium(struct env *e, uint64_t txid, size_t *nupd)
{
	struct cf_log_scan sc;
	int seen = 0, done = 0;

	*nupd = 0;
	if (cf_log_scan(medium + cf_log_off(&e->s.map, INST), e->s.map.geo.log_size, &sc) < 0)
		return -2;
	for (size_t i = 0; i < sc.n; i++) {
		if (sc.recs[i].h.txid != txid)
			continue;
		seen = 1;
		if (sc.recs[i].h.type == CF_LR_UPDATE)
			(*nupd)++;
		if (sc.recs[i].h.type == CF_LR_COMMIT || sc.recs[i].h.type == CF_LR_ABORT)
			done = 1;
	}
	cf_log_scan_free(&sc);
	return seen ? done : -1;
}

/* ---------------- tests ---------------- */

static void test_durable(void)
{
	struct env e;
	struct cf_txn t;
	size_t nupd;
	uint64_t calls;
	int64_t v;
	int laps_rounds = 0;

	env_open(&e, &stub_ops, CF_JOINED_DURABLE);
	CHECK(e.log.persist);
	/*
	 * 64 KiB log, 16-byte records (+ header, ~100 bytes per record): 1500
	 * transactions of 2 updates go round the ring several times.
	 */
	for (int i = 0; i < N_TXN; i++) {
		CHECK(cf_txn_begin(&e.c, &t) == 0);
		calls = persist_calls;
		v = i;
		CHECK(cf_txn_update(&t, 0, (uint64_t)(i % 16), &v) == 0);
		/* write-ahead: the UPDATE is on the medium before the data write happened */
		CHECK(on_medium(&e, t.id, &nupd) == 0 && nupd == 1);
		CHECK(persist_calls - calls >= 1 && persist_calls - calls <= 2); /* BEGIN+UPDATE batched (+head) */
		CHECK(cf_txn_update(&t, 0, (uint64_t)((i + 5) % 16), &v) == 0);
		CHECK(on_medium(&e, t.id, &nupd) == 0 && nupd == 2);
		calls = persist_calls;
		if (i % 7 == 3) {
			CHECK(cf_txn_backout(&t) == 0);
		} else {
			CHECK(cf_txn_commit(&t) == 0);
		}
		/* commit point (or the backout's ABORT): on the medium when the call returns */
		CHECK(on_medium(&e, t.id, &nupd) == 1);
		CHECK(persist_calls - calls >= 1 && persist_calls - calls <= 2);
		cf_txn_free(&t);
		if (e.log.tail / e.log.ring_size > (uint64_t)laps_rounds)
			laps_rounds = (int)(e.log.tail / e.log.ring_size);
	}
	CHECK(laps_rounds >= 3);
	/* a memory CF and the medium hold the same log once everything is persisted */
	CHECK(cf_log_flush(&e.log) == 0);
	printf("durable: %llu persist calls (%llu bytes) for %d transactions, %d laps of the ring\n",
	       (unsigned long long)persist_calls, (unsigned long long)persist_bytes, N_TXN, laps_rounds);
	CHECK(persist_calls <= N_TXN * 4 + N_TXN / 10);
	env_close(&e);
}

/*
 * Peer backout (cf_recovery.c): a counterpart attaches the failed instance's
 * log, backs out, syncs, then cf_txn_backout_close empties the log; the locks
 * go after it returns. So the empty log must be on the medium by then, with
 * one persist, or a power failure would make the next recovery back out
 * again over data other transactions have since committed.
 */
static void test_peer_backout_close(void)
{
	struct env e;
	struct cf_txn t1, t2;
	struct cf_log rlog;
	struct cf_log_scan sc, msc;
	uint32_t ntx = 0;
	uint64_t calls;
	size_t nupd;
	int64_t v = 1;

	env_open(&e, &stub_ops, CF_JOINED_DURABLE);
	CHECK(cf_txn_begin(&e.c, &t1) == 0);
	CHECK(cf_txn_update(&t1, 0, 3, &v) == 0);
	CHECK(cf_txn_begin(&e.c, &t2) == 0);
	CHECK(cf_txn_update(&t2, 0, 4, &v) == 0);
	/* the owner "dies" here: both in flight, their UPDATEs on the medium */
	CHECK(on_medium(&e, t1.id, &nupd) == 0 && on_medium(&e, t2.id, &nupd) == 0);
	CHECK(cf_log_attach(&rlog, &e.s, INST, &sc) == 0);
	calls = persist_calls;
	CHECK(cf_txn_backout_close(&rlog, &sc, NULL, NULL, &ntx) == 0 && ntx == 2);
	CHECK(persist_calls - calls == 1);
	/* the medium's log is empty: a second recovery from it finds nothing in flight */
	CHECK(on_medium(&e, t1.id, &nupd) == -1 && on_medium(&e, t2.id, &nupd) == -1);
	CHECK(cf_log_scan(medium + cf_log_off(&e.s.map, INST), e.s.map.geo.log_size, &msc) == 0);
	CHECK(msc.n == 0 && msc.head == rlog.tail);
	cf_log_scan_free(&msc);
	cf_log_scan_free(&sc);
	cf_log_detach(&rlog);
	cf_txn_free(&t1);
	cf_txn_free(&t2);
	env_close(&e);
}

static void test_not_needed(const struct cf_client_ops *ops, uint32_t flags, const char *what)
{
	struct env e;
	struct cf_txn t;
	int64_t v = 7;

	env_open(&e, ops, flags);
	CHECK(!e.log.persist);
	for (int i = 0; i < 50; i++) {
		CHECK(cf_txn_begin(&e.c, &t) == 0);
		CHECK(cf_txn_update(&t, 0, (uint64_t)(i % 16), &v) == 0);
		if (i % 2)
			CHECK(cf_txn_commit(&t) == 0);
		else
			CHECK(cf_txn_backout(&t) == 0);
		cf_txn_free(&t);
	}
	CHECK(cf_log_flush(&e.log) == 0);
	if (persist_calls)
		fprintf(stderr, "%s: %llu persist calls\n", what, (unsigned long long)persist_calls);
	CHECK(persist_calls == 0);
	env_close(&e);
}

/*
 * The resident log copy (node/cf_log_copy.c) is lent to one reader at a time
 * (a second one maps its own) and comes back all zero, as a fresh mapping
 * is. A shorter log read into it after a longer one finds exactly its own
 * records, though the longer one's, written the same way, sat at the same
 * places with the LSNs that follow.
 */
static void commit_n(struct env *e, int n)
{
	struct cf_txn t;
	int64_t v = 5;

	for (int i = 0; i < n; i++) {
		CHECK(cf_txn_begin(&e->c, &t) == 0);
		CHECK(cf_txn_update(&t, 0, (uint64_t)(i % 16), &v) == 0);
		CHECK(cf_txn_commit(&t) == 0);
		cf_txn_free(&t);
	}
}

static void test_resident_copy(void)
{
	struct env e;
	struct cf_log l2, l3;
	struct cf_log_scan sc, sc3, ref;
	struct cf_txn t0;
	int64_t v = 6;
	uint64_t size, off;
	size_t long_n;
	uint8_t *b, nz = 0;
	void *resident;

	env_log_size = 1u << 20; /* larger than the first window: a read leaves most of the copy as it was */
	env_open(&e, &stub_ops, 0);
	env_log_size = 65536;
	size = e.s.map.geo.log_size;
	off = cf_log_off(&e.s.map, INST);
	CHECK(cf_log_copy_warm(size) == 0);
	/* one transaction left open keeps the head where it is */
	CHECK(cf_txn_begin(&e.c, &t0) == 0);
	CHECK(cf_txn_update(&t0, 0, 15, &v) == 0);
	for (int i = 0; i < 10000 && e.log.tail - e.log.head < 200u * 1024u; i++) /* read as 64 KiB, then 256 */
		commit_n(&e, 10);
	CHECK(cf_log_attach(&l2, &e.s, INST, &sc) == 0);
	long_n = sc.n;
	CHECK(sc.end - sc.head >= 200u * 1024u);
	/* lent: a second reader gets a copy of its own, and reads the same */
	CHECK(cf_log_attach(&l3, &e.s, INST, &sc3) == 0);
	CHECK(sc3.copy != sc.copy && sc3.n == long_n);
	cf_log_scan_free(&sc3);
	cf_log_detach(&l3);
	resident = sc.copy;
	cf_log_scan_free(&sc);
	cf_log_detach(&l2);
	CHECK(cf_txn_commit(&t0) == 0);
	cf_txn_free(&t0);
	/* given back all zero, and lent again */
	b = cf_log_copy_get(size);
	CHECK(b == resident);
	for (uint64_t i = 0; b && i < size; i++)
		nz |= b[i];
	CHECK(nz == 0);
	cf_log_copy_put(b, size, 0, 0);
	/* the same instance again from an empty region: three transactions */
	cf_log_detach(&e.log);
	memset(mem + off, 0, size);
	CHECK(cf_log_attach(&e.log, &e.s, INST, NULL) == 0);
	commit_n(&e, 3);
	CHECK(cf_log_scan(mem + off, size, &ref) == 0);
	CHECK(cf_log_attach(&l2, &e.s, INST, &sc) == 0);
	CHECK(sc.copy == resident);
	CHECK(sc.n == ref.n && ref.n < long_n && sc.end == ref.end);
	cf_log_scan_free(&ref);
	cf_log_scan_free(&sc);
	cf_log_detach(&l2);
	env_close(&e);
}

/*
 * The next writer of a log (an incarnation after a clean leave, a
 * counterpart, an owner restarted after a switch of CF) persists from the
 * head it read, and the header with it. The last writer's final record was
 * posted and never persisted, and its head then moved past it: the medium
 * has a hole there under its older head. Had the header stayed behind, a
 * scan of the medium would stop at the hole and never see what the next
 * writer persisted (tests/fault/duplex.sh lost a whole incarnation's log at
 * a switch of CF that way: its in-flight data writes were never backed out).
 */
static void test_next_writer_head(void)
{
	struct env e;
	struct cf_txn t;
	size_t nupd;
	int64_t v = 9;

	env_open(&e, &stub_ops, CF_JOINED_DURABLE);
	commit_n(&e, 5);
	CHECK(cf_log_flush(&e.log) == 0);
	/* the first incarnation's last record, posted, then its head past it: neither persisted */
	CHECK(cf_log_append(&e.log, CF_LR_BEGIN, 999, 0, 0, NULL, 0, 0, NULL) == 0);
	CHECK(cf_log_advance_head(&e.log) == 0 && e.log.head == e.log.tail);
	cf_log_detach(&e.log);
	/* the next incarnation: its first transaction's UPDATE is on the medium before the data write */
	CHECK(cf_log_attach(&e.log, &e.s, INST, NULL) == 0);
	CHECK(cf_log_reset(&e.log) == 0);
	CHECK(cf_txn_begin(&e.c, &t) == 0);
	CHECK(cf_txn_update(&t, 0, 2, &v) == 0);
	CHECK(on_medium(&e, t.id, &nupd) == 0 && nupd == 1);
	CHECK(cf_txn_commit(&t) == 0);
	CHECK(on_medium(&e, t.id, &nupd) == 1);
	cf_txn_free(&t);
	env_close(&e);
}

/*
 * cf_malloc_keep's warm (cfnode: 8 MiB of the agent thread's heap): the next
 * allocations of that size are resident before anything touches them, as a
 * recovery's scan and release need them. Run first: nothing of this size was
 * allocated before.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HEAP_IS_GLIBCS 0 /* a sanitizer's allocator: no mallopt, a quarantine, its own mappings */
#else
#define HEAP_IS_GLIBCS 1
#endif
static void test_heap_warm(void)
{
	void *p;

	if (!HEAP_IS_GLIBCS)
		return;
	cf_malloc_keep(4u << 20);
	p = malloc(3u << 20);
	CHECK(p != NULL && absent_pages(p, 3u << 20) == 0);
	free(p);
}

int main(void)
{
	test_heap_warm();
	test_resident_copy();
	test_durable();
	test_peer_backout_close();
	test_next_writer_head();
	test_not_needed(&stub_ops, 0, "volatile CF");
	if (failures) {
		fprintf(stderr, "test_persist: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_persist: ok\n");
	return 0;
}
