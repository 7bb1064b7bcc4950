/* SPDX-License-Identifier: MIT */
/*
 * test_txn - transactions (node/cf_txn.c) over a real data directory (a temp
 * dir) and an in-memory CF image (log and lock table memory-backed): commit,
 * voluntary backout restoring exact bytes, lease refusal, two transactions of
 * one instance on one record, and a "crash" recovered from the log alone
 * (cf_txn_backout_scan), idempotently; group commit (defer_writes): no
 * data write before the flush and its lease check, a transaction's own kept
 * write read back, a group committed together, kept writes of a backed-out
 * transaction never written, a committed transaction never backed out;
 * write marks: a recovery writes back (and syncs) only the UPDATEs a mark
 * says may have reached the data, and all of a transaction that promised no
 * marks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_data.h"
#include "cf_layout.h"
#include "cf_lock.h"
#include "cf_log.h"
#include "cf_session.h"
#include "cf_txn.h"

#include "unit_check.h"

static int lease_state;
static int lease_cb(void *arg)
{
	(void)arg;
	return lease_state;
}

static void fill(void *arg, uint64_t idx, void *payload)
{
	int64_t v = 100;
	(void)arg;
	(void)idx;
	memcpy(payload, &v, 8);
}

struct env {
	char dir[64];
	struct cf_image_map map;
	uint8_t *img;
	struct cf_data data;
	struct cf_log log;
	struct cf_lock_table locks;
	struct cf_txn_ctx c;
};

static int64_t bal(struct env *e, uint64_t rec)
{
	struct cf_data_file *f;
	int64_t v = -1;

	CHECK(cf_data_file(&e->data, 0, &f) == 0);
	CHECK(cf_data_read(&e->data, f, rec, &v) == 0);
	return v;
}

static void slots(struct env *e, uint8_t *out)
{
	struct cf_data_file *f;

	CHECK(cf_data_file(&e->data, 0, &f) == 0);
	for (uint64_t i = 0; i < f->rec_count; i++)
		CHECK(cf_data_read_slot(&e->data, f, i, out + i * cf_data_slot_size(f)) == 0);
}

static uint64_t word(struct env *e, uint64_t rec)
{
	char name[CF_RES_NAME_MAX];

	cf_txn_lock_name(name, sizeof(name), 0, rec);
	return *(uint64_t *)(void *)(e->img + cf_lock_off(&e->map, cf_lock_class(name, e->map.geo.lock_entries)));
}

static void env_open(struct env *e)
{
	struct cf_geometry g = {
		.max_systems = 4, .max_instances = 4, .lock_entries = 1024, .record_entries = 64, .log_size = 65536,
	};
	const char *why;

	memset(e, 0, sizeof(*e));
	strcpy(e->dir, "/tmp/cfplex-test-txn.XXXXXX");
	if (!mkdtemp(e->dir))
		abort();
	CHECK(cf_data_create(e->dir, 0, 8, 16, 1600, fill, NULL, true) == 0);
	CHECK(cf_data_open(&e->data, e->dir) == 0);
	CHECK(cf_geometry_check(&g, &why) == 0);
	cf_image_map(&g, &e->map);
	e->img = calloc(1, e->map.image_size);
	if (!e->img)
		abort();
	CHECK(cf_log_attach_mem(&e->log, e->img + cf_log_off(&e->map, 1), g.log_size) == 0);
	CHECK(cf_lock_table_init_mem(&e->locks, e->img, &e->map, 1, 3) == 0);
	cf_txn_ctx_init(&e->c, &e->data, &e->log, &e->locks, 3);
	e->c.lease_check = lease_cb;
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
	free(e->img);
}

static void test_commit_backout(void)
{
	struct env e;
	struct cf_txn t, t2;
	int64_t v;
	uint64_t holder;
	uint8_t before[16 * 16], after[16 * 16];

	env_open(&e);
	/* commit */
	CHECK(cf_txn_begin(&e.c, &t) == 0);
	CHECK(cf_txn_read(&t, 0, 1, &v) == 0 && v == 100);
	v = 50;
	CHECK(cf_txn_update(&t, 0, 1, &v) == 0);
	v = 150;
	CHECK(cf_txn_update(&t, 0, 2, &v) == 0);
	CHECK(word(&e, 1) != 0);
	CHECK(e.c.nopen == 1);
	CHECK(cf_txn_commit(&t) == 0);
	cf_txn_free(&t);
	CHECK(bal(&e, 1) == 50 && bal(&e, 2) == 150);
	CHECK(word(&e, 1) == 0 && word(&e, 2) == 0 && e.locks.nheld == 0);
	CHECK(e.c.commits == 1 && e.c.nopen == 0);

	/* voluntary backout, the same record updated twice: exact bytes come back */
	slots(&e, before);
	CHECK(cf_txn_begin(&e.c, &t) == 0);
	v = 1;
	CHECK(cf_txn_update(&t, 0, 3, &v) == 0);
	v = 2;
	CHECK(cf_txn_update(&t, 0, 3, &v) == 0);
	v = 3;
	CHECK(cf_txn_update(&t, 0, 4, &v) == 0);
	CHECK(bal(&e, 3) == 2);
	/* another transaction of this instance on record 3: -EALREADY naming the holder */
	CHECK(cf_txn_begin(&e.c, &t2) == 0);
	CHECK(cf_txn_lock(&t2, 0, 3, CF_LOCK_X, 0, &holder) == -EALREADY && holder == t.id);
	CHECK(cf_txn_backout(&t2) == 0);
	cf_txn_free(&t2);
	CHECK(cf_txn_backout(&t) == 0);
	cf_txn_free(&t);
	slots(&e, after);
	CHECK(!memcmp(before, after, sizeof(before)));
	CHECK(word(&e, 3) == 0 && e.locks.nheld == 0 && e.c.aborts == 2);

	/* lease lapsed: the update is refused before any data write, backout after it comes back */
	CHECK(cf_txn_begin(&e.c, &t) == 0);
	lease_state = -ENOLINK;
	v = 999;
	CHECK(cf_txn_update(&t, 0, 5, &v) == -ENOLINK);
	CHECK(bal(&e, 5) == 100);
	CHECK(cf_txn_backout(&t) == -ENOLINK || e.locks.nheld == 0);
	CHECK(cf_txn_lease_wait(&e.c, 5) == -ENOLINK);
	lease_state = 0;
	CHECK(cf_txn_lease_wait(&e.c, 5) == 0);
	if (t.state == CF_TXN_OPEN)
		CHECK(cf_txn_backout(&t) == 0);
	cf_txn_free(&t);
	CHECK(e.locks.nheld == 0 && bal(&e, 5) == 100);
	/* the log holds nothing in flight */
	{
		struct cf_log_scan sc;
		struct cf_log_rec *r;
		size_t n;
		CHECK(cf_log_scan(e.img + cf_log_off(&e.map, 1), e.map.geo.log_size, &sc) == 0);
		CHECK(cf_log_scan_inflight(&sc, &r, &n, NULL) == 0 && n == 0);
		cf_log_scan_free(&sc);
	}
	env_close(&e);
}

static void test_crash_recovery(void)
{
	struct env e;
	struct cf_txn t, tc;
	struct cf_log log2;
	struct cf_log_scan sc;
	struct cf_data d2;
	uint8_t before[16 * 16], after[16 * 16];
	uint32_t ntx = 99;
	uint32_t rel = 0;
	int64_t v;

	env_open(&e);
	/* a committed transaction, then one in flight when the "process dies" */
	CHECK(cf_txn_begin(&e.c, &tc) == 0);
	v = 7;
	CHECK(cf_txn_update(&tc, 0, 8, &v) == 0);
	CHECK(cf_txn_commit(&tc) == 0);
	cf_txn_free(&tc);
	slots(&e, before);
	CHECK(cf_txn_begin(&e.c, &t) == 0);
	v = 11;
	CHECK(cf_txn_update(&t, 0, 5, &v) == 0);
	v = 12;
	CHECK(cf_txn_update(&t, 0, 6, &v) == 0);
	v = 13;
	CHECK(cf_txn_update(&t, 0, 5, &v) == 0);
	CHECK(bal(&e, 5) == 13 && bal(&e, 6) == 12);
	cf_txn_free(&t); /* crash: no commit, no backout, locks left in the CF */

	/* Recovery from the CF image alone: scan, back out, release the holds. */
	CHECK(cf_data_open(&d2, e.dir) == 0);
	CHECK(cf_log_scan(e.img + cf_log_off(&e.map, 1), e.map.geo.log_size, &sc) == 0);
	memset(&log2, 0, sizeof(log2));
	CHECK(cf_log_attach_mem(&log2, e.img + cf_log_off(&e.map, 1), e.map.geo.log_size) == 0);
	CHECK(cf_txn_backout_scan(&d2, &log2, &sc, NULL, NULL, &ntx) == 0 && ntx == 1);
	cf_log_scan_free(&sc);
	CHECK(word(&e, 5) != 0);
	CHECK(cf_lock_release_instance_mem(e.img, &e.map, 1, 0, &rel) == 0 && rel == 2);
	CHECK(word(&e, 5) == 0 && word(&e, 6) == 0);
	slots(&e, after);
	CHECK(!memcmp(before, after, sizeof(before))); /* committed 7 kept, in-flight gone */
	CHECK(bal(&e, 8) == 7 && bal(&e, 5) == 100 && bal(&e, 6) == 100);
	/* idempotent: a second recovery finds nothing in flight */
	CHECK(cf_log_scan(e.img + cf_log_off(&e.map, 1), e.map.geo.log_size, &sc) == 0);
	CHECK(cf_txn_backout_scan(&d2, &log2, &sc, NULL, NULL, &ntx) == 0 && ntx == 0);
	cf_log_scan_free(&sc);
	CHECK(cf_log_reset(&log2) == 0);
	cf_log_detach(&log2);
	cf_data_close(&d2);
	env_close(&e);
}

/*
 * Self-backout (a volatile CF is lost): open transactions are backed out from
 * the before-images in memory, with no lease and no CF; one whose COMMIT was
 * acknowledged is never touched; a refusing check writes nothing.
 */
static int refuse_cb(void *arg)
{
	return -ESTALE;
}

static void test_self_backout(void)
{
	struct env e;
	struct cf_txn t1, t2, t3;
	uint8_t before[16 * 16], after[16 * 16];
	int64_t v;

	env_open(&e);
	e.c.self_backout = true;
	slots(&e, before);
	CHECK(cf_txn_begin(&e.c, &t1) == 0);
	v = 1;
	CHECK(cf_txn_update(&t1, 0, 6, &v) == 0);
	v = 2;
	CHECK(cf_txn_update(&t1, 0, 6, &v) == 0); /* the same record twice: reverse order matters */
	v = 3;
	CHECK(cf_txn_update(&t1, 0, 7, &v) == 0);
	CHECK(cf_txn_begin(&e.c, &t2) == 0);
	v = 4;
	CHECK(cf_txn_update(&t2, 0, 8, &v) == 0);
	CHECK(cf_txn_begin(&e.c, &t3) == 0);
	v = 5;
	CHECK(cf_txn_update(&t3, 0, 9, &v) == 0);
	t3.terminal = CF_LR_COMMIT; /* as if its COMMIT completed and the release then failed */
	/* the CF is gone: the lease is too */
	lease_state = -EPIPE;
	CHECK(cf_txn_backout(&t2) == -EPIPE);
	e.c.self_backout_check = refuse_cb; /* a zombie: nothing written */
	CHECK(cf_txn_self_backout(&t2) == -ESTALE && bal(&e, 8) == 4 && t2.state == CF_TXN_OPEN);
	e.c.self_backout_check = NULL;
	CHECK(cf_txn_self_backout(&t2) == 0 && t2.state == CF_TXN_ABORTED);
	CHECK(cf_txn_self_backout(&t2) == 0); /* idempotent */
	CHECK(cf_txn_self_backout(&t1) == 0 && t1.state == CF_TXN_ABORTED);
	CHECK(cf_txn_self_backout(&t3) == 0 && t3.state == CF_TXN_COMMITTED);
	CHECK(bal(&e, 9) == 5); /* committed at the CF: kept */
	CHECK(e.c.nopen == 0 && e.c.self_backouts == 2);
	slots(&e, after);
	/* everything but record 9 is byte for byte as before */
	CHECK(!memcmp(before, after, 9 * 16) && !memcmp(before + 10 * 16, after + 10 * 16, 6 * 16));
	lease_state = 0;
	cf_txn_free(&t1);
	cf_txn_free(&t2);
	cf_txn_free(&t3);
	env_close(&e);
}

static size_t inflight_updates(struct env *e)
{
	struct cf_log_scan sc;
	struct cf_log_rec *r = NULL;
	size_t n = 0;

	CHECK(cf_log_scan(e->img + cf_log_off(&e->map, 1), e->map.geo.log_size, &sc) == 0);
	CHECK(cf_log_scan_inflight(&sc, &r, &n, NULL) == 0);
	free(r);
	cf_log_scan_free(&sc);
	return n;
}

static void test_group_commit(void)
{
	struct env e;
	struct cf_txn t1, t2, t3;
	struct cf_txn *g[3] = { &t1, &t2, &t3 };
	uint8_t before[16 * 16], after[16 * 16];
	int64_t v;

	env_open(&e);
	e.c.defer_writes = true;
	CHECK(cf_txn_begin(&e.c, &t1) == 0);
	v = 10;
	CHECK(cf_txn_update(&t1, 0, 1, &v) == 0);
	/* the before-image is in the log, the data not written yet */
	CHECK(bal(&e, 1) == 100 && t1.nkept == 1 && inflight_updates(&e) == 1);
	/* its own kept write is what t1 reads: the read flushes */
	v = 0;
	CHECK(cf_txn_read(&t1, 0, 1, &v) == 0 && v == 10 && t1.nkept == 0 && e.c.flushes == 1);
	CHECK(bal(&e, 1) == 10);
	CHECK(cf_txn_begin(&e.c, &t2) == 0);
	v = 20;
	CHECK(cf_txn_update(&t2, 0, 2, &v) == 0);
	v = 21;
	CHECK(cf_txn_update(&t2, 0, 2, &v) == 0); /* the same record again: flushed first */
	CHECK(cf_txn_begin(&e.c, &t3) == 0);
	v = 30;
	CHECK(cf_txn_update(&t3, 0, 3, &v) == 0);
	CHECK(bal(&e, 3) == 100);
	/* the lease lapses at the flush: nothing is written, nothing committed */
	lease_state = -ENOLINK;
	CHECK(cf_txn_commit_group(g, 3) == -ENOLINK);
	CHECK(bal(&e, 3) == 100 && t3.nkept == 1);
	CHECK(t1.state == CF_TXN_OPEN && t2.state == CF_TXN_OPEN && t3.state == CF_TXN_OPEN && e.c.commits == 0);
	lease_state = 0;
	CHECK(cf_txn_commit_group(g, 3) == 0);
	CHECK(t1.state == CF_TXN_COMMITTED && t2.state == CF_TXN_COMMITTED && t3.state == CF_TXN_COMMITTED);
	CHECK(bal(&e, 1) == 10 && bal(&e, 2) == 21 && bal(&e, 3) == 30);
	CHECK(e.c.commits == 3 && e.c.nopen == 0 && e.locks.nheld == 0 && inflight_updates(&e) == 0);
	CHECK(cf_txn_commit_group(g, 3) == 0 && e.c.commits == 3); /* a retry commits nothing twice */
	cf_txn_free(&t1);
	cf_txn_free(&t2);
	cf_txn_free(&t3);

	/* a backed-out transaction's kept writes never reach the data, not even by another's flush */
	slots(&e, before);
	CHECK(cf_txn_begin(&e.c, &t1) == 0 && cf_txn_begin(&e.c, &t2) == 0);
	v = 40;
	CHECK(cf_txn_update(&t1, 0, 4, &v) == 0);
	v = 60;
	CHECK(cf_txn_update(&t2, 0, 6, &v) == 0);
	CHECK(cf_txn_backout(&t1) == 0 && t1.nkept == 0);
	CHECK(cf_txn_commit(&t2) == 0);
	CHECK(bal(&e, 4) == 100 && bal(&e, 6) == 60);
	slots(&e, after);
	CHECK(!memcmp(before, after, 6 * 16) && !memcmp(before + 7 * 16, after + 7 * 16, 9 * 16));
	cf_txn_free(&t1);
	cf_txn_free(&t2);

	/* committed, then its release failed: a backout must not undo it */
	CHECK(cf_txn_begin(&e.c, &t1) == 0);
	v = 70;
	CHECK(cf_txn_update(&t1, 0, 7, &v) == 0);
	CHECK(cf_txn_flush(&e.c) == 0 && bal(&e, 7) == 70);
	t1.terminal = CF_LR_COMMIT;
	CHECK(cf_txn_backout(&t1) == -EALREADY && bal(&e, 7) == 70);
	t1.terminal = 0;
	CHECK(cf_txn_commit(&t1) == 0);
	cf_txn_free(&t1);

	/* a crash with kept writes: the log's before-images restore the data, and twice is once */
	slots(&e, before);
	CHECK(cf_txn_begin(&e.c, &t1) == 0);
	v = 80;
	CHECK(cf_txn_update(&t1, 0, 8, &v) == 0);
	v = 90;
	CHECK(cf_txn_update(&t1, 0, 9, &v) == 0);
	CHECK(cf_txn_flush(&e.c) == 0 && bal(&e, 8) == 80);
	v = 11;
	CHECK(cf_txn_update(&t1, 0, 10, &v) == 0); /* kept: never written */
	{
		/* the next incarnation's attach of the log: the crashed one's (t1 pinned in it) is dropped */
		struct cf_log_scan sc;
		struct cf_log l2;
		uint32_t ntx = 0;
		CHECK(cf_log_attach_mem(&l2, e.img + cf_log_off(&e.map, 1), e.map.geo.log_size) == 0);
		for (int pass = 0; pass < 2; pass++) {
			CHECK(cf_log_scan(e.img + cf_log_off(&e.map, 1), e.map.geo.log_size, &sc) == 0);
			CHECK(cf_txn_backout_scan(&e.data, &l2, &sc, NULL, NULL, &ntx) == 0);
			CHECK(ntx == (pass == 0 ? 1u : 0u));
			cf_log_scan_free(&sc);
		}
		cf_log_detach(&l2);
	}
	slots(&e, after);
	CHECK(!memcmp(before, after, sizeof(before)));
	cf_txn_free(&t1); /* the crashed incarnation's memory: its kept write is dropped */
	CHECK(e.c.deferred == NULL);
	env_close(&e);
}

/*
 * Recover the crashed incarnation's log with a data directory of its own (a
 * counterpart's): the before-images it wrote back and those it did not.
 */
static void recover_log(struct env *e, uint64_t *written, uint64_t *unwritten, int *dirty)
{
	struct cf_log_scan sc;
	struct cf_data d2;
	struct cf_log l2;
	uint32_t ntx = 0;

	CHECK(cf_data_open(&d2, e->dir) == 0);
	CHECK(cf_log_scan(e->img + cf_log_off(&e->map, 1), e->map.geo.log_size, &sc) == 0);
	CHECK(cf_txn_backout_apply(&d2, &sc, NULL, NULL, written, unwritten) == 0);
	*dirty = d2.files[0].fd >= 0 && d2.files[0].dirty;
	CHECK(cf_data_sync_all(&d2) == 0);
	CHECK(cf_log_attach_mem(&l2, e->img + cf_log_off(&e->map, 1), e->map.geo.log_size) == 0);
	CHECK(cf_txn_backout_close(&l2, &sc, NULL, NULL, &ntx) == 0 && ntx == 1);
	cf_log_detach(&l2);
	cf_log_scan_free(&sc);
	cf_data_close(&d2);
}

/*
 * Write marks (cf_logrec.h). Under group commit a transaction's BEGIN
 * promises that each of its data writes follows a write mark in the log;
 * a recovery writes back only the UPDATEs with a mark after them, and
 * syncs nothing when there are none. A BEGIN without the promise (an older
 * writer, or no group commit) has every UPDATE written back.
 */
static void test_write_marks(void)
{
	struct env e;
	struct cf_txn t;
	uint64_t written = 99, unwritten = 99;
	int dirty = -1;
	int64_t v;

	/* nothing flushed: nothing written back, no file to sync */
	env_open(&e);
	e.c.defer_writes = true;
	CHECK(cf_txn_begin(&e.c, &t) == 0);
	v = 11;
	CHECK(cf_txn_update(&t, 0, 11, &v) == 0);
	v = 12;
	CHECK(cf_txn_update(&t, 0, 12, &v) == 0);
	CHECK(e.log.marks == 0);
	recover_log(&e, &written, &unwritten, &dirty);
	CHECK(written == 0 && unwritten == 2 && dirty == 0);
	CHECK(bal(&e, 11) == 100 && bal(&e, 12) == 100);
	cf_txn_free(&t); /* the crashed incarnation's memory */
	env_close(&e);

	/* flushed, then one more kept: the flushed one written back and synced, the kept one not */
	env_open(&e);
	e.c.defer_writes = true;
	CHECK(cf_txn_begin(&e.c, &t) == 0);
	v = 13;
	CHECK(cf_txn_update(&t, 0, 13, &v) == 0);
	CHECK(cf_txn_flush(&e.c) == 0 && bal(&e, 13) == 13 && e.log.marks == 1);
	v = 14;
	CHECK(cf_txn_update(&t, 0, 14, &v) == 0);
	recover_log(&e, &written, &unwritten, &dirty);
	CHECK(written == 1 && unwritten == 1 && dirty == 1);
	CHECK(bal(&e, 13) == 100 && bal(&e, 14) == 100);
	cf_txn_free(&t);
	env_close(&e);

	/* no promise in the BEGIN (an older writer's log): written back though no mark follows */
	env_open(&e);
	{
		uint8_t slot[CF_DATA_SLOT_HDR + 64];
		struct cf_log_pin pin;
		struct cf_data_file *f;
		memset(&pin, 0, sizeof(pin));
		CHECK(cf_data_file(&e.data, 0, &f) == 0 && cf_data_slot_size(f) <= sizeof(slot));
		CHECK(cf_data_read_slot(&e.data, f, 15, slot) == 0);
		cf_log_pin(&e.log, &pin); /* as a transaction's first append does */
		CHECK(cf_log_append(&e.log, CF_LR_BEGIN, 77, 0, 0, NULL, 0, 0, NULL) == 0);
		CHECK(cf_log_append(&e.log, CF_LR_UPDATE, 77, 0, cf_data_slot_off(f, 15), slot, cf_data_slot_size(f),
				    CF_LOG_WAIT, NULL) == 0);
		recover_log(&e, &written, &unwritten, &dirty);
		CHECK(written == 1 && unwritten == 0 && dirty == 1);
		cf_log_unpin(&e.log, &pin);
	}
	env_close(&e);
}

/*
 * A COMMIT the CF executed whose answer was lost (the connection died first):
 * the transaction is committed for whoever recovers the log, so this node
 * never writes its before-images - not by a backout, not by a self-backout
 * while the log survives. A lone volatile CF's log dies with it: there the
 * self-backout decides, and aborts it. (The bank backed out its open ring
 * after a failed commit group, before-images over committed transfers: money
 * lost when the exit interrupted it halfway, the soak suite's CF kills.)
 */
static void test_commit_in_doubt(void)
{
	struct env e;
	struct cf_txn t1, t2;
	struct cf_txn *g[2] = { &t1, &t2 };
	int64_t v;

	env_open(&e);
	e.c.defer_writes = true;
	e.c.self_backout = true;
	CHECK(cf_txn_begin(&e.c, &t1) == 0 && cf_txn_begin(&e.c, &t2) == 0);
	v = 50;
	CHECK(cf_txn_update(&t1, 0, 1, &v) == 0);
	v = 150;
	CHECK(cf_txn_update(&t1, 0, 2, &v) == 0);
	v = 70;
	CHECK(cf_txn_update(&t2, 0, 3, &v) == 0);
	/* main() armed txn.commit_unanswered: the COMMITs are in the log, the call fails */
	CHECK(cf_txn_commit_group(g, 2) == -EPIPE);
	CHECK(t1.state == CF_TXN_OPEN && t1.terminal == 0 && t1.posted == CF_LR_COMMIT);
	CHECK(inflight_updates(&e) == 0); /* a recovery of this log keeps both */
	CHECK(bal(&e, 1) == 50 && bal(&e, 2) == 150 && bal(&e, 3) == 70);
	CHECK(cf_txn_backout(&t1) == -EINPROGRESS && cf_txn_backout(&t2) == -EINPROGRESS);
	CHECK(bal(&e, 1) == 50 && bal(&e, 2) == 150 && bal(&e, 3) == 70);
	lease_state = -EPIPE; /* the CF is gone */
	e.c.log_survives = true;
	CHECK(cf_txn_self_backout(&t1) == -EINPROGRESS && t1.state == CF_TXN_OPEN);
	CHECK(bal(&e, 1) == 50 && bal(&e, 2) == 150);
	/* a lone volatile CF: its log is gone, the self-backout is the decision */
	e.c.log_survives = false;
	CHECK(cf_txn_self_backout(&t2) == 0 && t2.state == CF_TXN_ABORTED && bal(&e, 3) == 100);
	lease_state = 0;
	cf_txn_free(&t1);
	cf_txn_free(&t2);
	env_close(&e);
}

/*
 * The incarnation's own connection died while the lease still holds (the
 * heartbeat thread has not noticed): no data write on this node's view - not
 * an update's, not a flush's, not a backout's. The self-backout of a lone
 * volatile CF checks no lease and still writes.
 */
static void test_dead_session(void)
{
	struct env e;
	struct cf_session dead;
	struct cf_txn t1, t2;
	int64_t v;

	env_open(&e);
	memset(&dead, 0, sizeof(dead));
	CHECK(cf_txn_begin(&e.c, &t1) == 0);
	v = 11;
	CHECK(cf_txn_update(&t1, 0, 1, &v) == 0 && bal(&e, 1) == 11);
	e.log.s = &dead; /* the memory log keeps its memory; its session is the incarnation's */
	dead.dead = -ECONNRESET;
	v = 12;
	CHECK(cf_txn_update(&t1, 0, 2, &v) == -ECONNRESET && bal(&e, 2) == 100);
	CHECK(cf_txn_backout(&t1) == -ECONNRESET && bal(&e, 1) == 11); /* left to the log */
	e.c.defer_writes = true;
	dead.dead = 0;
	CHECK(cf_txn_begin(&e.c, &t2) == 0);
	v = 33;
	CHECK(cf_txn_update(&t2, 0, 3, &v) == 0 && t2.nkept == 1);
	dead.dead = -EPIPE;
	CHECK(cf_txn_flush(&e.c) == -EPIPE && bal(&e, 3) == 100); /* the kept write stays kept */
	e.c.self_backout = true;
	CHECK(cf_txn_self_backout(&t1) == 0 && bal(&e, 1) == 100 && t1.state == CF_TXN_ABORTED);
	CHECK(cf_txn_self_backout(&t2) == 0 && bal(&e, 3) == 100);
	e.log.s = NULL;
	cf_txn_free(&t1);
	cf_txn_free(&t2);
	env_close(&e);
}

int main(void)
{
	/* first: the point fires once per process, at the first commit group that reaches it */
	setenv("CF_FAULT", "txn.commit_unanswered:fail", 1);
	test_commit_in_doubt();
	unsetenv("CF_FAULT");
	test_dead_session();
	test_commit_backout();
	test_group_commit();
	test_write_marks();
	test_crash_recovery();
	test_self_backout();
	if (failures) {
		fprintf(stderr, "test_txn: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_txn: ok\n");
	return 0;
}
