/* SPDX-License-Identifier: MIT */
/*
 * test_recovery - the recovery engine (node/cf_recovery.c) and its detector,
 * end to end over an in-memory CF image reached through a memory-backed
 * session (session_mem.c), with a real data directory.
 *
 *   detector   policy auto: one RECOVER per incident; operator: one ANNOUNCE
 *              per incident, RECOVER on request; seen keeps the earliest.
 *   recover    system A (sys 0) runs instance 1 with the real cf_txn/cf_log/
 *              cf_lock code: one committed transaction, one in flight (an S
 *              lock shared with a live instance 2, X locks); A dies, the test
 *              plays cfserver (fail_* naming a reaped child, word
 *              INACTIVE_FAILED(1)); B recovers with the local fence. I1, I3, I4.
 *   again      the same incident once more: -ESTALE, nothing written.
 *   lost CAS   the word is ACTIVE(C): -EBUSY, image and data unchanged.
 *   died       B dies at the start of sync (before-images written, no ABORT
 *              yet) or of release (ABORT written, locks held): the locks stay
 *              held (I4); C recovers INACTIVE_FAILED(2) to the same end
 *              state, re-applying the absolute before-images.
 *   killed     (fault-injection builds) B as a process of its own, SIGKILLed
 *              by the fault point rec.after_backout; C finishes the job.
 *
 * The local fence needs pidfd_open; where it does not exist (valgrind) the
 * fence is none, said on stderr, and the fence message is not checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf_data.h"
#include "cf_fence.h"
#include "cf_layout.h"
#include "cf_lock.h"
#include "cf_log.h"
#include "cf_recovery.h"
#include "cf_session.h"
#include "cf_txn.h"
#include "cf_util.h"
#include "cf_words.h"
#include "session_mem.h"

#include "unit_check.h"

/* ---------------- detector ---------------- */

static void test_detector(void)
{
	struct cf_detector d;

	cf_detector_init(&d, CF_POLICY_AUTO);
	CHECK(cf_detector_decide(&d, 3, cf_reg_failed(4), false) == CF_DETECT_RECOVER);
	CHECK(cf_detector_decide(&d, 3, cf_reg_failed(4), false) == CF_DETECT_NOTHING); /* one try per incident */
	CHECK(cf_detector_decide(&d, 3, cf_reg_failed(5), false) == CF_DETECT_RECOVER);
	CHECK(cf_detector_decide(&d, 3, cf_reg_failed(5), false) == CF_DETECT_NOTHING);
	CHECK(cf_detector_decide(&d, 2, cf_reg_failed(4), false) == CF_DETECT_RECOVER); /* per instance */
	CHECK(cf_detector_decide(&d, 1, cf_reg_clean(4), false) == CF_DETECT_NOTHING);
	CHECK(cf_detector_decide(&d, 1, cf_reg_active(0, 1, 4), false) == CF_DETECT_NOTHING);
	CHECK(cf_detector_decide(&d, 1, 0, false) == CF_DETECT_NOTHING);
	CHECK(cf_detector_decide(&d, 1, cf_reg_clean(4), true) == CF_DETECT_NOTHING); /* not FAILED: even on request */
	CHECK(cf_detector_decide(&d, CF_DETECT_MAX, cf_reg_failed(1), false) == CF_DETECT_NOTHING);
	CHECK(cf_detector_decide(&d, 3, cf_reg_failed(5), true) == CF_DETECT_RECOVER); /* the operator may retry */

	cf_detector_init(&d, CF_POLICY_OPERATOR);
	CHECK(cf_detector_decide(&d, 1, cf_reg_failed(7), false) == CF_DETECT_ANNOUNCE);
	CHECK(cf_detector_decide(&d, 1, cf_reg_failed(7), false) == CF_DETECT_NOTHING);
	CHECK(cf_detector_decide(&d, 1, cf_reg_failed(7), true) == CF_DETECT_RECOVER); /* already announced */
	CHECK(cf_detector_decide(&d, 1, cf_reg_failed(7), false) == CF_DETECT_NOTHING);
	CHECK(cf_detector_decide(&d, 1, cf_reg_failed(8), false) == CF_DETECT_ANNOUNCE);
	CHECK(cf_detector_decide(&d, 2, cf_reg_failed(9), true) == CF_DETECT_RECOVER); /* never announced */
	CHECK(cf_detector_decide(&d, 1, cf_reg_clean(8), false) == CF_DETECT_NOTHING);

	cf_detector_seen(&d, 1, 8, 2000, 11);
	/*
	 * A later report of the same incident keeps the first (and the CF's fence
	 * time it carried): every caller passes its current CLOCK_REALTIME, so
	 * the first report is the earliest unless that clock steps back.
	 */
	cf_detector_seen(&d, 1, 8, 1000, 22);
	cf_detector_seen(&d, 1, 8, 3000, 33);
	CHECK(d.seen_incident[1] == 8 && d.seen_ns[1] == 2000 && d.fence_us[1] == 11);
	cf_detector_seen(&d, 1, 9, 5000, 44); /* a new incident starts over */
	CHECK(d.seen_incident[1] == 9 && d.seen_ns[1] == 5000 && d.fence_us[1] == 44);
	cf_detector_seen(&d, CF_DETECT_MAX, 1, 1, 1); /* out of range: ignored */
}

/* ---------------- the recovery scenario ---------------- */

#define INST 1u  /* the failed instance, home of A */
#define OINST 2u /* a live instance of B, sharing an S lock with INST */
#define SYS_A 0u
#define SYS_B 1u
#define SYS_C 2u
#define EP_A 7u
#define EP_B 3u
#define EP_C 4u
#define NREC 16u

struct scen {
	char dir[64];
	struct mem_cf cf;
	struct cf_session sb;  /* B: the counterpart, and home of OINST */
	struct cf_lock_table ob; /* OINST's lock table */
	struct cf_data data;   /* B's handle on the data directory */
	struct cf_fence_cfg fence;
	uint8_t expect[NREC * 16]; /* the committed state: what recovery must leave */
	uint8_t inflight[NREC * 16]; /* the state A left */
};

static void fill(void *arg, uint64_t idx, void *payload)
{
	int64_t v = 100;
	(void)arg;
	(void)idx;
	memcpy(payload, &v, 8);
}

static uint64_t *word_at(struct scen *z, uint64_t off)
{
	return (uint64_t *)(void *)(z->cf.img + off);
}

static uint64_t reg(struct scen *z)
{
	return *word_at(z, cf_inst_off(&z->cf.map, INST));
}

static uint64_t lock_word(struct scen *z, uint64_t rec)
{
	char name[CF_RES_NAME_MAX];

	cf_txn_lock_name(name, sizeof(name), 0, rec);
	return *word_at(z, cf_lock_off(&z->cf.map, cf_lock_class(name, z->cf.map.geo.lock_entries)));
}

static void slots(struct cf_data *d, uint8_t *out)
{
	struct cf_data_file *f;

	CHECK(cf_data_file(d, 0, &f) == 0);
	for (uint64_t i = 0; i < f->rec_count; i++)
		CHECK(cf_data_read_slot(d, f, i, out + i * cf_data_slot_size(f)) == 0);
}

static int64_t bal(struct cf_data *d, uint64_t rec)
{
	struct cf_data_file *f;
	int64_t v = -1;

	CHECK(cf_data_file(d, 0, &f) == 0);
	CHECK(cf_data_read(d, f, rec, &v) == 0);
	return v;
}

/* The whole data file, bytes as on disk. */
static size_t file_bytes(struct scen *z, uint8_t *buf, size_t cap)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/f0.cfd", z->dir);
	fd = open(path, O_RDONLY);
	CHECK(fd >= 0);
	if (fd < 0)
		return 0;
	n = pread(fd, buf, cap, 0);
	close(fd);
	CHECK(n > 0 && (size_t)n < cap);
	return n > 0 ? (size_t)n : 0;
}

/* A process that has been and gone: its pid and start time, as a JOIN recorded them. */
static void dead_process(uint64_t *pid, uint64_t *starttime)
{
	int status;
	pid_t p = fork();

	if (p == 0) {
		pause();
		_exit(0);
	}
	CHECK(p > 0);
	*pid = (uint64_t)p;
	*starttime = cf_proc_starttime(*pid);
	CHECK(*starttime != 0);
	kill(p, SIGKILL);
	CHECK(waitpid(p, &status, 0) == p);
}

static void sys_slot(struct scen *z, uint32_t sys, const char *name, enum cf_sys_state st, uint32_t epoch)
{
	struct cf_sys_slot *ss = (struct cf_sys_slot *)(void *)(z->cf.img + cf_sys_off(&z->cf.map, sys));

	ss->state = cf_sysword(st, epoch);
	cf_name_put(ss->name, name);
	gethostname(ss->host, sizeof(ss->host) - 1);
}

/*
 * cfserver's failure processing of the incarnation (sys, epoch) holding INST
 * at incident k: the failure record, then ACTIVE -> INACTIVE_FAILED(k+1).
 */
static void cf_fail_proc(struct scen *z, uint32_t sys, uint32_t epoch, uint32_t k, uint64_t pid,
			 uint64_t starttime)
{
	struct cf_inst_slot *is = (struct cf_inst_slot *)(void *)(z->cf.img + cf_inst_off(&z->cf.map, INST));
	uint64_t expect = cf_reg_active(sys, epoch, k);

	is->fail_sys = sys;
	is->fail_epoch = epoch;
	is->fail_incident = k + 1;
	is->fail_pid = pid;
	is->fail_starttime = starttime;
	if (!pid)
		dead_process(&is->fail_pid, &is->fail_starttime);
	is->fail_ns = cf_real_ns();
	is->fail_cause = CF_FAIL_CONN_LOST;
	is->fail_open = 1;
	memset(is->fail_host, 0, sizeof(is->fail_host));
	gethostname(is->fail_host, sizeof(is->fail_host) - 1);
	sys_slot(z, sys, sys == SYS_A ? "SYSA" : sys == SYS_B ? "SYSB" : "SYSC", CF_SYS_FAILED, epoch);
	CHECK(__atomic_compare_exchange_n(word_at(z, cf_inst_off(&z->cf.map, INST)), &expect, cf_reg_failed(k + 1),
					  false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
}

static bool local_fence_works(void)
{
	static int known; /* 0 unknown, 1 yes, 2 no */
	int fd;

	if (!known) {
		fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
		known = fd >= 0 ? 1 : 2;
		if (fd >= 0)
			close(fd);
		else
			fprintf(stderr, "test_recovery: pidfd_open: %s: fence none instead of local\n", strerror(errno));
	}
	return known == 1;
}

/* ... naming a process that has been and gone */
static void cf_fail(struct scen *z, uint32_t sys, uint32_t epoch, uint32_t k)
{
	cf_fail_proc(z, sys, epoch, k, 0, 0);
}

/* The image: a shared mapping of a file in the test directory, so that a child process can be the CF's client. */
static uint8_t *image_map(const char *dir, uint64_t size, bool create)
{
	char path[128];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "%s/image", dir);
	fd = open(path, create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR, 0600);
	if (fd < 0 || (create && ftruncate(fd, (off_t)size) < 0))
		abort();
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		abort();
	return p;
}

/*
 * A runs INST: one committed transaction (records 1, 2), then one in flight
 * (reads 9 under S, which OINST holds in S too; updates 5, 6, 5) when it dies.
 */
/* scen_open: names A also holds in S when it dies (beyond its 3 record locks) */
static int scen_extra_names;

static void scen_open(struct scen *z)
{
	struct cf_geometry g = {
		.max_systems = 4, .max_instances = 4, .lock_entries = 1024, .record_entries = 256, .log_size = 65536,
	};
	struct cf_session sa;
	struct cf_data da;
	struct cf_log la;
	struct cf_lock_table ta;
	struct cf_txn_ctx c;
	struct cf_txn t;
	struct cf_inst_slot *is;
	const char *why;
	uint32_t e;
	uint64_t holder;
	int64_t v;
	char name[CF_RES_NAME_MAX];

	memset(z, 0, sizeof(*z));
	strcpy(z->dir, "/tmp/cfplex-test-recovery.XXXXXX");
	if (!mkdtemp(z->dir))
		abort();
	CHECK(cf_data_create(z->dir, 0, 8, NREC, NREC * 100, fill, NULL, true) == 0);
	CHECK(cf_geometry_check(&g, &why) == 0);
	cf_image_map(&g, &z->cf.map);
	z->cf.img = image_map(z->dir, z->cf.map.image_size, true);
	cf_header_init((struct cf_header *)(void *)z->cf.img, &g, cf_real_ns());
	sys_slot(z, SYS_A, "SYSA", CF_SYS_ACTIVE, EP_A);
	sys_slot(z, SYS_B, "SYSB", CF_SYS_ACTIVE, EP_B);
	sys_slot(z, SYS_C, "SYSC", CF_SYS_ACTIVE, EP_C);
	for (uint32_t i = 0; i < g.max_instances; i++) {
		is = (struct cf_inst_slot *)(void *)(z->cf.img + cf_inst_off(&z->cf.map, i));
		is->index = i;
		is->fail_sys = CF_NO_SYS;
		snprintf(name, sizeof(name), "INST%u", i);
		cf_name_put(is->name, name);
	}
	*word_at(z, cf_inst_off(&z->cf.map, INST)) = cf_reg_active(SYS_A, EP_A, 0);
	*word_at(z, cf_inst_off(&z->cf.map, OINST)) = cf_reg_active(SYS_B, EP_B, 0);

	/* B, alive, holds record 9 in S for its own instance */
	mem_session_open(&z->sb, &z->cf, SYS_B, EP_B);
	CHECK(cf_session_inst_attach(&z->sb, OINST) == 0);
	CHECK(cf_lock_table_init(&z->ob, &z->sb, OINST, EP_B) == 0);
	cf_txn_lock_name(name, sizeof(name), 0, 9);
	CHECK(cf_lock_acquire(&z->ob, name, CF_LOCK_S, 1, 0, &e, &holder) == 0);

	/* A, through its own session and the real transaction code */
	mem_session_open(&sa, &z->cf, SYS_A, EP_A);
	CHECK(cf_session_inst_attach(&sa, OINST) == -EACCES); /* not A's */
	CHECK(cf_session_inst_attach(&sa, INST) == 0);
	CHECK(cf_data_open(&da, z->dir) == 0);
	CHECK(cf_log_attach(&la, &sa, INST, NULL) == 0);
	CHECK(cf_lock_table_init(&ta, &sa, INST, EP_A) == 0);
	cf_txn_ctx_init(&c, &da, &la, &ta, EP_A);
	c.lock_timeout_ms = 50;
	CHECK(cf_txn_begin(&c, &t) == 0);
	v = 50;
	CHECK(cf_txn_update(&t, 0, 1, &v) == 0);
	v = 150;
	CHECK(cf_txn_update(&t, 0, 2, &v) == 0);
	CHECK(cf_txn_commit(&t) == 0);
	cf_txn_free(&t);
	slots(&da, z->expect);
	CHECK(cf_txn_begin(&c, &t) == 0);
	CHECK(cf_txn_read(&t, 0, 9, &v) == 0 && v == 100);
	v = 11;
	CHECK(cf_txn_update(&t, 0, 5, &v) == 0);
	v = 12;
	CHECK(cf_txn_update(&t, 0, 6, &v) == 0);
	v = 13;
	CHECK(cf_txn_update(&t, 0, 5, &v) == 0);
	slots(&da, z->inflight);
	CHECK(bal(&da, 5) == 13 && bal(&da, 6) == 12 && bal(&da, 1) == 50);
	CHECK(lock_word(z, 5) == cf_lock_x(INST, EP_A) && lock_word(z, 6) == cf_lock_x(INST, EP_A));
	CHECK(lock_word(z, 9) == (CF_LOCK_SBIT | (1ull << INST) | (1ull << OINST)));
	CHECK(ta.nheld == 3);
	for (int i = 0; i < scen_extra_names; i++) {
		snprintf(name, sizeof(name), "held-%d", i);
		CHECK(cf_lock_acquire(&ta, name, CF_LOCK_S, 2, 0, &e, &holder) == 0);
	}
	/* A dies: no commit, no backout, its holds stay in the CF */
	cf_txn_free(&t);
	cf_lock_table_fini(&ta);
	cf_log_detach(&la);
	cf_data_close(&da);
	mem_session_kill(&sa, -ECONNRESET);
	mem_session_close(&sa);
	cf_fail(z, SYS_A, EP_A, 0);
	CHECK(reg(z) == cf_reg_failed(1));

	CHECK(cf_data_open(&z->data, z->dir) == 0);
	/*
	 * The local fence (pidfd) of the reaped process: "already gone". Where
	 * pidfd_open does not exist (old kernels, valgrind) the local fence can
	 * never confirm and recovery would wait in disk-fence: fence none then,
	 * said once on stderr.
	 */
	CHECK(cf_fence_parse(&z->fence, local_fence_works() ? "local" : "none") == 0);
	z->fence.timeout_ms = 2000;
}

static void scen_close(struct scen *z)
{
	char path[128];

	cf_lock_table_fini(&z->ob);
	cf_data_close(&z->data);
	mem_session_close(&z->sb);
	snprintf(path, sizeof(path), "%s/f0.cfd", z->dir);
	unlink(path);
	munmap(z->cf.img, z->cf.map.image_size);
	snprintf(path, sizeof(path), "%s/image", z->dir);
	unlink(path);
	rmdir(z->dir);
}

static void env_init(struct cf_recovery_env *env, struct scen *z, struct cf_session *s, struct cf_data *d)
{
	memset(env, 0, sizeof(*env));
	env->s = s;
	env->data = d;
	env->fence = &z->fence;
	env->step_attempts = 1;
}

/* The end state every finished recovery of INST must leave, at incident k. */
static void check_recovered(struct scen *z, struct cf_data *d, uint32_t k)
{
	uint8_t now[sizeof(z->expect)];
	const struct cf_image_map *m = &z->cf.map;
	const uint8_t *recs = z->cf.img + cf_rec_off(m, INST);
	bool any_held = false, list_used = false;
	struct cf_log_scan sc;
	struct cf_log_rec *r = NULL;
	size_t n = 99;

	/* I3: exactly the committed state */
	slots(d, now);
	CHECK(!memcmp(now, z->expect, sizeof(now)));
	CHECK(bal(d, 1) == 50 && bal(d, 2) == 150 && bal(d, 5) == 100 && bal(d, 6) == 100);
	/* I4: no lock word names INST, its record list is empty; OINST's hold is kept */
	for (uint32_t i = 0; i < m->geo.lock_entries; i++)
		any_held |= cf_lock_held_by(*word_at(z, cf_lock_off(m, i)), INST);
	CHECK(!any_held);
	for (uint64_t i = 0; i < m->records_size; i++)
		list_used |= recs[i] != 0;
	CHECK(!list_used);
	CHECK(lock_word(z, 9) == (CF_LOCK_SBIT | (1ull << OINST)));
	CHECK(z->ob.nheld == 1);
	/* I1: the instance is free again, at the same incident */
	CHECK(reg(z) == cf_reg_clean(k));
	/* the log holds nothing in flight */
	CHECK(cf_log_scan(z->cf.img + cf_log_off(m, INST), m->geo.log_size, &sc) == 0);
	CHECK(cf_log_scan_inflight(&sc, &r, &n, NULL) == 0 && n == 0);
	free(r);
	cf_log_scan_free(&sc);
}

static size_t inflight_updates(struct scen *z)
{
	struct cf_log_scan sc;
	struct cf_log_rec *r = NULL;
	size_t n = 0;

	CHECK(cf_log_scan(z->cf.img + cf_log_off(&z->cf.map, INST), z->cf.map.geo.log_size, &sc) == 0);
	CHECK(cf_log_scan_inflight(&sc, &r, &n, NULL) == 0);
	free(r);
	cf_log_scan_free(&sc);
	return n;
}

static void test_recover(void)
{
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	static uint8_t img_before[1 << 20];
	static uint8_t fb[2][64 * 1024];
	size_t n0, n1;
	uint8_t buf[64];
	int r;

	scen_open(&z);
	env_init(&env, &z, &z.sb, &z.data);
	CHECK(inflight_updates(&z) == 3);
	/* what is not a failed word of an instance is refused before any I/O */
	if (z.cf.map.image_size > sizeof(img_before))
		abort(); /* the geometry above is small */
	memcpy(img_before, z.cf.img, z.cf.map.image_size);
	CHECK(cf_recover_instance(&env, INST, cf_reg_clean(1), cf_real_ns(), 0, &rep) == -EINVAL);
	CHECK(cf_recover_instance(&env, INST, cf_reg_active(SYS_A, EP_A, 0), cf_real_ns(), 0, &rep) == -EINVAL);
	CHECK(cf_recover_instance(&env, z.cf.map.geo.max_instances, cf_reg_failed(1), cf_real_ns(), 0, &rep) == -EINVAL);
	CHECK(!memcmp(img_before, z.cf.img, z.cf.map.image_size));
	r = cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "recover: %d %s (%s)\n", r, rep.err_msg, rep.fence_msg);
	check_recovered(&z, &z.data, 1);
	/* the report */
	CHECK(rep.result == 0 && rep.reached == CF_PHASE_DONE && rep.inst == INST && rep.incident == 1);
	CHECK(!strcmp(rep.inst_name, "INST1") && !strcmp(rep.failed_name, "SYSA"));
	CHECK(rep.failed_sys == SYS_A && rep.failed_epoch == EP_A);
	if (z.fence.kind == CF_FENCE_LOCAL)
		CHECK(strstr(rep.fence_msg, "already gone") != NULL && !rep.fence_skipped);
	CHECK(rep.records_scanned >= 9); /* BEGIN, 2 UPDATE, COMMIT, END; BEGIN, 3 UPDATE */
	CHECK(rep.updates_applied == 3 && rep.txns_inflight == 1 && rep.locks_released == 3);
	CHECK(rep.log_bytes > 0 && rep.done_real_ns >= rep.fail_real_ns && rep.locks_free_real_ns != 0);
	for (int p = CF_PHASE_REGISTER; p < CF_PHASE_DONE; p++)
		if (p != CF_PHASE_WD_WAIT)
			CHECK(rep.phase_ns[p] > 0);
	CHECK(((struct cf_rinfo_slot *)(void *)(z.cf.img + cf_rinfo_off(&z.cf.map, INST)))->phase == CF_PHASE_DONE);
	/* the grants went with the unregister */
	CHECK(cf_session_read(&z.sb, cf_log_off(&z.cf.map, INST), buf, sizeof(buf)) == -EACCES);

	/* the same incident again, after it finished: rejected, nothing written */
	memcpy(img_before, z.cf.img, z.cf.map.image_size);
	n0 = file_bytes(&z, fb[0], sizeof(fb[0]));
	r = cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep);
	CHECK(r == -ESTALE || r == -EBUSY);
	CHECK(rep.updates_applied == 0 && rep.reached == CF_PHASE_REGISTER);
	n1 = file_bytes(&z, fb[1], sizeof(fb[1]));
	CHECK(n0 == n1 && !memcmp(fb[0], fb[1], n0));
	CHECK(!memcmp(img_before, z.cf.img, z.cf.map.image_size));
	check_recovered(&z, &z.data, 1);
	scen_close(&z);
}

/*
 * The counterpart's log read starts at the head the CF sent with the attach's
 * grants (CF_ATTACH_LOG_HDR): no READ of the header, one round trip less.
 * From a CF older than that flag it READs the header itself; the recovery is
 * the same either way.
 */
static void test_attach_log_hdr(bool cf_sends)
{
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	int r;

	scen_open(&z);
	env_init(&env, &z, &z.sb, &z.data);
	memset(&mem_trace, 0, sizeof(mem_trace));
	mem_attach_sends_hdr = cf_sends;
	r = cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep);
	mem_attach_sends_hdr = true;
	CHECK(r == 0);
	if (mem_trace.log_hdr_reads != (cf_sends ? 0u : 1u))
		fprintf(stderr, "CF sends the header: %d, header READs %u\n", cf_sends, mem_trace.log_hdr_reads);
	CHECK(mem_trace.log_hdr_reads == (cf_sends ? 0u : 1u));
	CHECK(rep.records_scanned >= 9 && rep.updates_applied == 3 && rep.txns_inflight == 1);
	check_recovered(&z, &z.data, 1);
	scen_close(&z);
}

/*
 * Append terminal records of the given types (in order, in the CF's memory
 * only) for the first of A's three in-flight transactions; returns its txid.
 */
static uint64_t end_first_inflight(struct scen *z, const enum cf_logrec_type *types, size_t ntypes)
{
	struct cf_log_scan sc;
	struct cf_log_rec *inflight = NULL;
	struct cf_log l;
	size_t n = 0;
	uint64_t txid;

	CHECK(cf_log_scan(z->cf.img + cf_log_off(&z->cf.map, INST), z->cf.map.geo.log_size, &sc) == 0);
	CHECK(cf_log_scan_inflight(&sc, &inflight, &n, NULL) == 0 && n == 3);
	txid = n ? inflight[0].h.txid : 0;
	free(inflight);
	cf_log_scan_free(&sc);
	CHECK(cf_log_attach_mem(&l, z->cf.img + cf_log_off(&z->cf.map, INST), z->cf.map.geo.log_size) == 0);
	for (size_t i = 0; i < ntypes; i++)
		CHECK(cf_log_append(&l, types[i], txid, 0, 0, NULL, 0, CF_LOG_WAIT | CF_LOG_TERMINAL, NULL) == 0);
	cf_log_detach(&l);
	return txid;
}

/*
 * A transaction with both a COMMIT and an ABORT in the log (its owner backed
 * out what it had sent a COMMIT for) is counted with the log's read, so that
 * the report of the read (on_phase at the backout: cfnode's error line, which
 * the fault suite fails on) has it. It was counted only at the sync, after
 * that report: the line could never appear.
 */
static uint64_t both_at_backout;

static void on_phase_both(void *arg, const struct cf_recovery_report *rep, enum cf_phase p)
{
	(void)arg;
	if (p == CF_PHASE_BACKOUT)
		both_at_backout = rep->log_both + 1;
}

static void test_log_both_reported(void)
{
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	static const enum cf_logrec_type both[] = {CF_LR_COMMIT, CF_LR_ABORT};
	uint64_t txid;

	scen_open(&z);
	txid = end_first_inflight(&z, both, 2);
	env_init(&env, &z, &z.sb, &z.data);
	env.on_phase = on_phase_both;
	both_at_backout = 0;
	CHECK(cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep) == 0);
	CHECK(rep.log_both == 1 && rep.log_both_txid == txid);
	CHECK(both_at_backout == 2); /* seen: log_both 1 when the backout began */
	scen_close(&z);
}

/*
 * The release reads only the record list's span (cf_log_hdr.rec_span), so
 * it must cover every entry A used: here more than one step of it (64).
 * check_recovered finds any lock word still naming INST and any entry left
 * in its list (fails when the owner writes a span short of its entries).
 */
static void test_release_past_span(void)
{
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	const struct cf_log_hdr *h;
	int r;

	scen_extra_names = 150;
	scen_open(&z);
	scen_extra_names = 0;
	h = (const struct cf_log_hdr *)(const void *)(z.cf.img + cf_log_off(&z.cf.map, INST));
	CHECK(cf_log_rec_span(h, z.cf.map.geo.record_entries) >= 153);
	CHECK(cf_log_rec_span(h, z.cf.map.geo.record_entries) < z.cf.map.geo.record_entries);
	env_init(&env, &z, &z.sb, &z.data);
	r = cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "recover: %d %s (%s)\n", r, rep.err_msg, rep.fence_msg);
	CHECK(rep.locks_released >= 3);
	check_recovered(&z, &z.data, 1);
	scen_close(&z);
}

/*
 * What a recovery decides it decides from durable bytes. A's in-flight
 * transaction's COMMIT reached the CF's memory, and A died before its
 * PERSIST was answered: a duplexed primary holds it, the secondary does
 * not. The recovery keeps it committed and releases its locks; had the
 * COMMIT stayed where only this CF has it, a switch of CF before the
 * unregister would give the next recovery a log without it, and that one
 * would write the before-images over whatever committed meanwhile. So at
 * the moment the decision is told, the durable copy must say the same.
 */
struct told {
	struct scen *z;
	unsigned n, committed, not_durable;
};

static void tell_checks_durable(void *arg, uint32_t inst, const char *inst_name, const struct cf_txn_outcome *v,
				size_t n)
{
	struct told *t = arg;
	const struct cf_image_map *m = &t->z->cf.map;
	struct cf_log_scan sc;

	(void)inst_name;
	/*
	 * What a second recovery from the durable copy would decide must be what
	 * was told: the transaction gone from the log (it was emptied) or there
	 * with its COMMIT; an UPDATE there without one would be backed out.
	 */
	CHECK(cf_log_scan(t->z->cf.durable + cf_log_off(m, inst), m->geo.log_size, &sc) == 0);
	for (size_t i = 0; i < n; i++) {
		bool seen = false, durable_commit = false;
		for (size_t j = 0; j < sc.n; j++) {
			seen |= sc.recs[j].h.txid == v[i].txid;
			durable_commit |= sc.recs[j].h.txid == v[i].txid && sc.recs[j].h.type == CF_LR_COMMIT;
		}
		t->n++;
		t->committed += v[i].committed;
		t->not_durable += seen && durable_commit != v[i].committed;
	}
	cf_log_scan_free(&sc);
}

static void test_decides_from_durable(void)
{
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	struct told t = { .z = &z };
	static const enum cf_logrec_type commit[] = {CF_LR_COMMIT};

	scen_open(&z);
	/* so far A's every write was persisted (a DRAM scenario: say so by copying) */
	z.cf.durable = malloc(z.cf.map.image_size);
	if (!z.cf.durable)
		abort();
	memcpy(z.cf.durable, z.cf.img, z.cf.map.image_size);
	mem_session_durable(&z.sb);
	/* A's COMMIT of its in-flight transaction: in the CF's memory only */
	end_first_inflight(&z, commit, 1);

	env_init(&env, &z, &z.sb, &z.data);
	env.decided = tell_checks_durable;
	env.arg = &t;
	CHECK(cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep) == 0);
	CHECK(t.n == 1 && t.committed == 1);
	CHECK(t.not_durable == 0);
	/* kept committed: its after-images stay, and the instance is clean */
	CHECK(bal(&z.data, 5) == 13 && bal(&z.data, 6) == 12);
	CHECK(reg(&z) == cf_reg_clean(1));
	free(z.cf.durable);
	z.cf.durable = NULL;
	scen_close(&z);
}

/* The registration CAS loses: the word is already ACTIVE(C). Nothing is written. */
static void test_lost_cas(void)
{
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	static uint8_t img_before[1 << 20];
	static uint8_t fb[2][64 * 1024];
	size_t n0, n1;
	int r;

	scen_open(&z);
	env_init(&env, &z, &z.sb, &z.data);
	*word_at(&z, cf_inst_off(&z.cf.map, INST)) = cf_reg_active(SYS_C, EP_C, 1);
	memcpy(img_before, z.cf.img, z.cf.map.image_size);
	n0 = file_bytes(&z, fb[0], sizeof(fb[0]));
	r = cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep);
	CHECK(r == -EBUSY && rep.result == -EBUSY);
	CHECK(rep.holder_reg == cf_reg_active(SYS_C, EP_C, 1) && !strcmp(rep.holder_name, "SYSC"));
	CHECK(rep.updates_applied == 0 && rep.locks_released == 0);
	n1 = file_bytes(&z, fb[1], sizeof(fb[1]));
	CHECK(n0 == n1 && !memcmp(fb[0], fb[1], n0));
	CHECK(!memcmp(img_before, z.cf.img, z.cf.map.image_size));
	/* A's holds are untouched: the winner will release them */
	CHECK(lock_word(&z, 5) == cf_lock_x(INST, EP_A) && inflight_updates(&z) == 3);
	scen_close(&z);
}

/* ---- a counterpart that dies at the start of a phase ---- */

struct die_at {
	struct scen *z;
	enum cf_phase phase;
	bool fired;
};

static void die_on_phase(void *arg, const struct cf_recovery_report *rep, enum cf_phase p)
{
	struct die_at *d = arg;

	(void)rep;
	if (p != d->phase || d->fired)
		return;
	d->fired = true;
	/* B's connection breaks; cfserver fences B, then fails INST: FAILED(2) naming B */
	mem_session_kill(&d->z->sb, -ECONNRESET);
	cf_fail(d->z, SYS_B, EP_B, 1);
}

static void test_died(enum cf_phase at)
{
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	struct die_at d;
	struct cf_session sc;
	struct cf_data dc;
	uint8_t now[sizeof(z.expect)];
	int r;

	scen_open(&z);
	env_init(&env, &z, &z.sb, &z.data);
	d = (struct die_at){.z = &z, .phase = at};
	env.on_phase = die_on_phase;
	env.arg = &d;
	r = cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep);
	CHECK(d.fired && r == -ECONNRESET);
	CHECK(reg(&z) == cf_reg_failed(2));
	/* I4: the dead counterpart released nothing */
	CHECK(lock_word(&z, 5) == cf_lock_x(INST, EP_A) && lock_word(&z, 6) == cf_lock_x(INST, EP_A));
	CHECK(lock_word(&z, 9) == (CF_LOCK_SBIT | (1ull << INST) | (1ull << OINST)));
	/* the before-images are back (backout ran), the in-flight mark only once synced */
	slots(&z.data, now);
	CHECK(!memcmp(now, z.expect, sizeof(now)));
	CHECK(inflight_updates(&z) == (at == CF_PHASE_SYNC ? 3u : 0u));
	/* C takes over incident 2 and finishes the job */
	mem_session_open(&sc, &z.cf, SYS_C, EP_C);
	CHECK(cf_data_open(&dc, z.dir) == 0);
	env_init(&env, &z, &sc, &dc);
	r = cf_recover_instance(&env, INST, cf_reg_failed(2), cf_real_ns(), 0, &rep);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "re-run: %d %s (%s)\n", r, rep.err_msg, rep.fence_msg);
	CHECK(rep.failed_sys == SYS_B && rep.failed_epoch == EP_B && !strcmp(rep.failed_name, "SYSB"));
	CHECK(rep.updates_applied == (at == CF_PHASE_SYNC ? 3u : 0u));
	CHECK(rep.txns_inflight == (at == CF_PHASE_SYNC ? 1u : 0u));
	CHECK(rep.locks_released == 3);
	check_recovered(&z, &dc, 2);
	cf_data_close(&dc);
	mem_session_close(&sc);
	scen_close(&z);
}

/*
 * The counterpart as a process of its own, killed by the named fault point
 * rec.after_backout (after the sync and the ABORT records, before the
 * release): a real crash, not a broken connection. The child is this program
 * run again (main: --counterpart DIR) with CF_FAULT in its environment.
 */
static const char *self_exe = "/proc/self/exe"; /* argv[0] when it is a path (valgrind's /proc/self/exe is valgrind) */

static int counterpart_main(const char *dir)
{
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	struct cf_header h;
	uint8_t *img;
	int r;

	memset(&z, 0, sizeof(z));
	snprintf(z.dir, sizeof(z.dir), "%s", dir);
	img = image_map(dir, sizeof(h), false);
	memcpy(&h, img, sizeof(h));
	munmap(img, sizeof(h));
	cf_image_map(&h.geo, &z.cf.map);
	z.cf.img = image_map(dir, z.cf.map.image_size, false);
	mem_session_open(&z.sb, &z.cf, SYS_B, EP_B);
	if (cf_data_open(&z.data, dir) < 0 || cf_fence_parse(&z.fence, local_fence_works() ? "local" : "none") < 0)
		return 2;
	env_init(&env, &z, &z.sb, &z.data);
	r = cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep);
	fprintf(stderr, "counterpart: the fault point did not fire (recover: %d %s)\n", r, rep.err_msg);
	return 3;
}

static void test_killed_at_fault_point(void)
{
#ifdef CF_FAULT_INJECTION
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	struct cf_session sc;
	struct cf_data dc;
	uint8_t now[sizeof(z.expect)];
	uint64_t start;
	int status, r;
	pid_t p;

	scen_open(&z);
	p = fork();
	if (p == 0) {
		setenv("CF_FAULT", "rec.after_backout:kill", 1);
		execl(self_exe, "test_recovery", "--counterpart", z.dir, (char *)NULL);
		_exit(127);
	}
	CHECK(p > 0);
	start = cf_proc_starttime((uint64_t)p); /* readable until reaped */
	CHECK(waitpid(p, &status, 0) == p);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	/* cfserver: B's connection closed; INST fails again, naming B's (reaped) process */
	CHECK(reg(&z) == cf_reg_active(SYS_B, EP_B, 1));
	cf_fail_proc(&z, SYS_B, EP_B, 1, (uint64_t)p, start);
	/* backed out, synced and marked, but every lock still held (I4) */
	CHECK(lock_word(&z, 5) == cf_lock_x(INST, EP_A) && lock_word(&z, 6) == cf_lock_x(INST, EP_A));
	CHECK(lock_word(&z, 9) == (CF_LOCK_SBIT | (1ull << INST) | (1ull << OINST)));
	slots(&z.data, now);
	CHECK(!memcmp(now, z.expect, sizeof(now)));
	CHECK(inflight_updates(&z) == 0);

	mem_session_open(&sc, &z.cf, SYS_C, EP_C);
	CHECK(cf_data_open(&dc, z.dir) == 0);
	env_init(&env, &z, &sc, &dc);
	r = cf_recover_instance(&env, INST, cf_reg_failed(2), cf_real_ns(), 0, &rep);
	CHECK(r == 0);
	if (r)
		fprintf(stderr, "after the fault: %d %s (%s)\n", r, rep.err_msg, rep.fence_msg);
	CHECK(rep.failed_sys == SYS_B && rep.updates_applied == 0 && rep.locks_released == 3);
	if (z.fence.kind == CF_FENCE_LOCAL)
		CHECK(strstr(rep.fence_msg, "already gone") != NULL);
	check_recovered(&z, &dc, 2);
	cf_data_close(&dc);
	mem_session_close(&sc);
	scen_close(&z);
#else
	printf("test_recovery: no fault points in this build (-Dfault-injection=false): rec.after_backout case skipped\n");
#endif
}

/*
 * Lock hand-off, on the counterpart's side: a class of A's that waiters are
 * queued for at the CF carries Q. The release guesses X(A) for every class in
 * one batch; the queued class's guess fails and returns X(A)|Q, and a second
 * batch, of that class alone, frees it. It leaves Q for the CF and tells it
 * (KICK).
 */
static void test_release_queued_class(void)
{
	struct scen z;
	struct cf_recovery_env env;
	struct cf_recovery_report rep;
	char name[CF_RES_NAME_MAX];
	uint32_t k5;
	uint64_t off5, b = 0;
	int r, n5 = 0, kicked = 0;

	scen_open(&z);
	env_init(&env, &z, &z.sb, &z.data);
	cf_txn_lock_name(name, sizeof(name), 0, 5);
	k5 = cf_lock_class(name, z.cf.map.geo.lock_entries);
	off5 = cf_lock_off(&z.cf.map, k5);
	*word_at(&z, off5) |= CF_LOCK_QBIT; /* the CF queued a waiter on A's record 5 */
	memset(&mem_trace, 0, sizeof(mem_trace));
	r = cf_recover_instance(&env, INST, cf_reg_failed(1), cf_real_ns(), 0, &rep);
	CHECK(r == 0 && rep.locks_released == 3);
	CHECK(lock_word(&z, 5) == CF_LOCK_QBIT && lock_word(&z, 6) == 0); /* Q stays for the CF to serve */
	for (uint32_t i = 0; i < mem_trace.ncas; i++) {
		if (mem_trace.cas_off[i] != off5)
			continue;
		CHECK(mem_trace.cas_batch[i] != 0 && mem_trace.cas_batch[i] != b);
		b = mem_trace.cas_batch[i];
		n5++;
	}
	CHECK(n5 == 2); /* the guess, then the word it returned, in the next batch */
	for (uint32_t i = 0; i < mem_trace.nkicks; i++)
		kicked += mem_trace.kick_class[i] == k5;
	CHECK(kicked == 1 && mem_trace.nkicks == 1);
	scen_close(&z);
}

/*
 * A transaction's locks go newest first: the next transaction queues on the
 * first lock it takes (one global order), so that one, released last, hands
 * over a set whose other classes are free already. And they go in one batch
 * (one round trip), each CAS guessing the word our own CAS left: a class a
 * waiter queued on since (Q set) fails its guess, is CASed again alone from
 * the word the CF returned, keeps Q and is KICKed.
 */
static void test_release_newest_first(void)
{
	struct scen z;
	char n1[CF_RES_NAME_MAX], n2[CF_RES_NAME_MAX];
	uint64_t holder = 0, off1, off2;
	uint32_t e, k2, held0, classes0;

	scen_open(&z);
	held0 = z.ob.nheld; /* B's own hold of record 9 */
	classes0 = z.ob.nclasses;
	cf_txn_lock_name(n1, sizeof(n1), 0, 1);
	cf_txn_lock_name(n2, sizeof(n2), 0, 2);
	k2 = cf_lock_class(n2, z.cf.map.geo.lock_entries);
	off1 = cf_lock_off(&z.cf.map, cf_lock_class(n1, z.cf.map.geo.lock_entries));
	off2 = cf_lock_off(&z.cf.map, k2);
	CHECK(off1 != off2);
	for (int queued = 0; queued < 2; queued++) {
		/* n2 first: an index order would differ */
		CHECK(cf_lock_acquire(&z.ob, n2, CF_LOCK_X, 77, 0, &e, &holder) == 0);
		CHECK(cf_lock_acquire(&z.ob, n1, CF_LOCK_X, 77, 0, &e, &holder) == 0);
		if (queued)
			*word_at(&z, off2) |= CF_LOCK_QBIT; /* the CF queued a waiter on the older lock */
		memset(&mem_trace, 0, sizeof(mem_trace));
		CHECK(cf_lock_release_owner(&z.ob, 77) == 0);
		CHECK(mem_trace.ncas == (queued ? 3u : 2u));
		CHECK(mem_trace.cas_off[0] == off1 && mem_trace.cas_off[1] == off2); /* newest first */
		CHECK(mem_trace.cas_batch[0] != 0 && mem_trace.cas_batch[0] == mem_trace.cas_batch[1]); /* one trip */
		CHECK(!queued || (mem_trace.cas_off[2] == off2 && mem_trace.cas_batch[2] != mem_trace.cas_batch[0]));
		CHECK(*word_at(&z, off1) == 0);
		CHECK(*word_at(&z, off2) == (queued ? CF_LOCK_QBIT : 0)); /* Q stays for the CF to serve */
		CHECK(mem_trace.nkicks == (queued ? 1u : 0u) && (!queued || mem_trace.kick_class[0] == k2));
		CHECK(z.ob.nheld == held0 && z.ob.nclasses == classes0);
		*word_at(&z, off2) = 0;
	}
	scen_close(&z);
}

int main(int argc, char **argv)
{
	uint64_t t0 = cf_mono_ns();

	if (argc > 0 && strchr(argv[0], '/'))
		self_exe = argv[0];
	if (argc == 3 && !strcmp(argv[1], "--counterpart"))
		return counterpart_main(argv[2]);

	test_detector();
	test_recover();
	test_attach_log_hdr(true);
	test_attach_log_hdr(false);
	test_lost_cas();
	test_release_past_span();
	test_decides_from_durable();
	test_log_both_reported();
	test_release_queued_class();
	test_release_newest_first();
	test_died(CF_PHASE_SYNC);
	test_died(CF_PHASE_RELEASE);
	test_killed_at_fault_point();
	if (failures) {
		fprintf(stderr, "test_recovery: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_recovery: ok (%.1f ms)\n", (double)(cf_mono_ns() - t0) / 1e6);
	return 0;
}
