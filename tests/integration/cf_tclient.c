/* SPDX-License-Identifier: MIT */
/*
 * cf_tclient - test client for the integration tests of the transport and
 * cfserver. Environment: CF_ADDR (host:port), CF_KEYFILE, CF_TRANSPORT.
 * Each subcommand asserts its outcome and exits 0 (pass) or 1 (fail).
 */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cf_auth.h"
#include "cf_key.h"
#include "cf_lock.h"
#include "cf_session.h"
#include "cf_util.h"
#include "cf_words.h"

static const char *addr, *transport;
static uint8_t key[CF_KEY_LEN];

#define FAIL(...)                                                   \
	do {                                                        \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__);                       \
		fprintf(stderr, "\n");                              \
		exit(1);                                            \
	} while (0)
#define CHECK(cond, ...)                  \
	do {                              \
		if (!(cond))              \
			FAIL(__VA_ARGS__); \
	} while (0)

/*
 * The connect-and-handshake bound: 5 s, or CF_CONNECT_TIMEOUT_MS where that is
 * longer (the rig sets 30 s: rdma_cm set-up under CPU emulation, with other
 * tests sharing the emulated CPUs, can take more than 5 s).
 */
static int connect_ms(void)
{
	int ms = cf_session_connect_timeout(0);

	return ms > 5000 ? ms : 5000;
}

static void open_sys(struct cf_session *s, const char *name)
{
	int r = cf_session_open(s, transport, addr, key, CF_ROLE_SYSTEM, connect_ms());

	CHECK(r == 0, "open: %s", strerror(-r));
	r = cf_session_join(s, name, "localhost", (uint64_t)getpid(), 0);
	CHECK(r == 0, "join %s: %s", name, strerror(-r));
}

static void open_console(struct cf_session *s)
{
	int r = cf_session_open(s, transport, addr, key, CF_ROLE_CONSOLE, connect_ms());

	CHECK(r == 0, "console open: %s", strerror(-r));
}

static uint64_t lock_off(struct cf_session *s, uint32_t k)
{
	return cf_lock_off(&s->map, k);
}

/* Register instance `name` to this system: open, CAS CLEAN(k)|FAILED(k) -> ACTIVE(me, k). */
static uint32_t take_inst(struct cf_session *s, const char *name, int attach)
{
	struct cf_inst_info info;
	uint64_t old, w;
	int r;

	r = cf_session_inst_open(s, name, &info);
	CHECK(r == 0, "inst open %s: %s", name, strerror(-r));
	r = cf_session_read(s, cf_inst_off(&s->map, info.index), &w, 8);
	CHECK(r == 0, "read reg: %s", strerror(-r));
	CHECK(cf_reg_state(w) == CF_REG_CLEAN || cf_reg_state(w) == CF_REG_FAILED, "%s not inactive: %#" PRIx64,
	      name, w);
	r = cf_session_cas(s, cf_inst_off(&s->map, info.index), w,
			   cf_reg_active(s->sys, s->epoch, cf_reg_incident(w)), &old);
	CHECK(r == 0 && old == w, "register %s: r=%d old=%#" PRIx64, name, r, old);
	if (attach) {
		r = cf_session_inst_attach(s, info.index);
		CHECK(r == 0, "attach %s: %s", name, strerror(-r));
	}
	return info.index;
}

/* ---------------- roundtrip ---------------- */

static int cmd_roundtrip(int argc, char **argv)
{
	struct cf_session s;
	uint8_t buf[4096], back[4096];
	static uint8_t big[CF_FRAME_MAX_PAYLOAD], bigback[CF_FRAME_MAX_PAYLOAD];
	uint64_t old, v, off;
	uint32_t inst;
	char msg[128];
	int r;

	open_sys(&s, argc > 0 ? argv[0] : "RT1");
	/* WRITE then READ (recovery-info region, rw) */
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	off = s.map.off_rinfo;
	r = cf_session_write(&s, off, buf, 128);
	CHECK(r == 0, "write: %s", strerror(-r));
	r = cf_session_read(&s, off, back, 128);
	CHECK(r == 0 && !memcmp(buf, back, 128), "read back: %d", r);
	/* CAS: success, failure (returns the current value), FAA */
	off = lock_off(&s, 5);
	r = cf_session_cas(&s, off, 0, 0x1111, &old);
	CHECK(r == 0 && old == 0, "cas 0->1111: r=%d old=%#" PRIx64, r, old);
	r = cf_session_cas(&s, off, 0, 0x2222, &old);
	CHECK(r == 0 && old == 0x1111, "failing cas: r=%d old=%#" PRIx64, r, old);
	r = cf_session_faa(&s, off, 5, &old);
	CHECK(r == 0 && old == 0x1111, "faa: r=%d old=%#" PRIx64, r, old);
	r = cf_session_read(&s, off, &v, 8);
	CHECK(r == 0 && v == 0x1116, "read after faa: %#" PRIx64, v);
	r = cf_session_cas(&s, off, 0x1116, 0, &old);
	CHECK(r == 0 && old == 0x1116, "cas back to 0");
	/* unsignaled WRITEs retire behind a drain */
	for (int i = 0; i < 1000; i++) {
		v = (uint64_t)i;
		r = cf_session_post_write(&s, s.map.off_rinfo + 8, &v, 8, CF_POST_UNSIGNALED);
		CHECK(r == 0, "post_write %d: %s", i, strerror(-r));
		if (i % 100 == 99)
			CHECK(cf_session_drain(&s) == 0, "drain");
	}
	r = cf_session_drain(&s);
	CHECK(r == 0, "drain: %s", strerror(-r));
	r = cf_session_read(&s, s.map.off_rinfo + 8, &v, 8);
	CHECK(r == 0 && v == 999, "last unsignaled write visible: %" PRIu64, v);
	/* far more unsignaled WRITEs than the send queue holds, never drained: they retire by themselves */
	for (int i = 0; i < 20000; i++) {
		v = (uint64_t)i;
		r = cf_session_post_write(&s, s.map.off_rinfo + 16, &v, 8, CF_POST_UNSIGNALED);
		CHECK(r == 0, "post_write %d without drain: %s", i, strerror(-r));
	}
	r = cf_session_read(&s, s.map.off_rinfo + 16, &v, 8);
	CHECK(r == 0 && v == 19999, "RC order: a READ after 20000 WRITEs sees the last: %" PRIu64, v);
	/* an instance: register, attach, 64 KiB WRITE/READ in its log, write_then_cas, unregister */
	inst = take_inst(&s, "RTINST", 1);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i ^ (i >> 8));
	off = cf_log_off(&s.map, inst);
	r = cf_session_write(&s, off, big, sizeof(big));
	CHECK(r == 0, "64K write: %s", strerror(-r));
	r = cf_session_read(&s, off, bigback, sizeof(bigback));
	CHECK(r == 0 && !memcmp(big, bigback, sizeof(big)), "64K read back");
	r = cf_session_write_then_cas(&s, cf_rec_off(&s.map, inst), buf, 64, lock_off(&s, 6), 0, 77, &old);
	CHECK(r == 0 && old == 0, "write_then_cas");
	r = cf_session_read(&s, cf_rec_off(&s.map, inst), back, 64);
	CHECK(r == 0 && !memcmp(back, buf, 64), "record write landed");
	r = cf_session_cas(&s, lock_off(&s, 6), 77, 0, &old);
	CHECK(r == 0 && old == 77, "cas lock back");
	r = cf_session_inst_unreg(&s, inst, msg, sizeof(msg));
	CHECK(r == 0, "unreg: %s (%s)", strerror(-r), msg);
	r = cf_session_read(&s, cf_log_off(&s.map, inst), back, 8);
	CHECK(r == -EACCES, "log still readable after unregister: %d", r);
	r = cf_session_goodbye(&s);
	CHECK(r == 0, "goodbye: %s", strerror(-r));
	cf_session_close(&s);
	printf("OK roundtrip\n");
	return 0;
}

/* ---------------- faa / cas race ---------------- */

static int cmd_faa(int argc, char **argv)
{
	struct cf_session s;
	long n = argc > 1 ? atol(argv[1]) : 100000;
	uint32_t k = argc > 2 ? (uint32_t)atoi(argv[2]) : 1;
	uint64_t old = 0;
	int r;

	CHECK(argc >= 1, "usage: faa NAME N [CLASS]");
	open_sys(&s, argv[0]);
	for (long i = 0; i < n; i++) {
		r = cf_session_faa(&s, lock_off(&s, k), 1, &old);
		CHECK(r == 0, "faa %ld: %s", i, strerror(-r));
	}
	r = cf_session_goodbye(&s);
	CHECK(r == 0, "goodbye");
	cf_session_close(&s);
	printf("last %" PRIu64 "\n", old);
	return 0;
}

/*
 * persist-loop NAME INST N: take instance INST and N times WRITE a word of
 * its log and make it durable with the node's own entry point
 * (cf_session_persist: one PERSIST on a durable CF, over either transport).
 * Prints "OK persist-loop K" with K the PERSIST requests sent.
 */
static int cmd_persist_loop(int argc, char **argv)
{
	struct cf_session s;
	uint64_t lo, v;
	uint32_t inst;
	long n;
	char msg[128];
	int r;

	CHECK(argc >= 3, "usage: persist-loop NAME INST N");
	n = atol(argv[2]);
	open_sys(&s, argv[0]);
	inst = take_inst(&s, argv[1], 1);
	lo = cf_log_off(&s.map, inst);
	for (long i = 0; i < n; i++) {
		uint64_t off = lo + (uint64_t)(i % 512) * 8;
		v = (uint64_t)i + 1;
		r = cf_session_write(&s, off, &v, sizeof(v));
		CHECK(r == 0, "write %ld: %s", i, strerror(-r));
		r = cf_session_persist(&s, off, sizeof(v));
		CHECK(r == 0, "persist %ld: %s", i, strerror(-r));
	}
	r = cf_session_inst_unreg(&s, inst, msg, sizeof(msg));
	CHECK(r == 0, "unreg: %s (%s)", strerror(-r), msg);
	r = cf_session_goodbye(&s);
	CHECK(r == 0, "goodbye");
	printf("OK persist-loop %llu\n", (unsigned long long)s.persist_reqs);
	cf_session_close(&s);
	return 0;
}

/* cas-race NAME ID NCLIENTS ROUNDS: class 0 is the barrier, classes 1..ROUNDS the contested words */
static int cmd_cas_race(int argc, char **argv)
{
	struct cf_session s;
	uint64_t id, nclients, rounds, old, b, wins = 0, t0;
	int r;

	CHECK(argc >= 4, "usage: cas-race NAME ID NCLIENTS ROUNDS");
	id = strtoull(argv[1], NULL, 0);
	nclients = strtoull(argv[2], NULL, 0);
	rounds = strtoull(argv[3], NULL, 0);
	open_sys(&s, argv[0]);
	CHECK(rounds + 1 <= s.map.geo.lock_entries, "too many rounds for the lock table");
	for (uint64_t k = 0; k < rounds; k++) {
		r = cf_session_cas(&s, lock_off(&s, (uint32_t)(k + 1)), 0, id, &old);
		CHECK(r == 0, "cas round %" PRIu64 ": %s", k, strerror(-r));
		if (old == 0)
			wins++;
		else
			CHECK(old >= 1 && old <= nclients && old != id, "round %" PRIu64 ": word %" PRIu64, k, old);
		/* barrier: everyone finishes round k before anyone starts k+1 */
		r = cf_session_faa(&s, lock_off(&s, 0), 1, &old);
		CHECK(r == 0, "barrier faa");
		t0 = cf_mono_ns();
		for (;;) {
			r = cf_session_read(&s, lock_off(&s, 0), &b, 8);
			CHECK(r == 0, "barrier read");
			if (b >= nclients * (k + 1))
				break;
			CHECK(cf_mono_ns() - t0 < 20000000000ull, "barrier round %" PRIu64 " stuck at %" PRIu64, k, b);
		}
	}
	r = cf_session_goodbye(&s);
	CHECK(r == 0, "goodbye");
	cf_session_close(&s);
	printf("wins %" PRIu64 "\n", wins);
	return 0;
}

/* verify-race NCLIENTS ROUNDS: every contested word holds exactly one winner id */
static int cmd_verify_race(int argc, char **argv)
{
	struct cf_session s;
	uint64_t nclients, rounds, v;
	int r;

	CHECK(argc >= 2, "usage: verify-race NCLIENTS ROUNDS");
	nclients = strtoull(argv[0], NULL, 0);
	rounds = strtoull(argv[1], NULL, 0);
	open_console(&s);
	for (uint64_t k = 0; k < rounds; k++) {
		r = cf_session_read(&s, lock_off(&s, (uint32_t)(k + 1)), &v, 8);
		CHECK(r == 0, "read: %s", strerror(-r));
		CHECK(v >= 1 && v <= nclients, "round %" PRIu64 ": word %" PRIu64, k, v);
	}
	cf_session_close(&s);
	printf("OK %" PRIu64 " rounds\n", rounds);
	return 0;
}

/* read-word CLASS: console read of a lock word */
static int cmd_read_word(int argc, char **argv)
{
	struct cf_session s;
	uint64_t v;
	int r;

	CHECK(argc >= 1, "usage: read-word CLASS");
	open_console(&s);
	r = cf_session_read(&s, lock_off(&s, (uint32_t)atoi(argv[0])), &v, 8);
	CHECK(r == 0, "read: %s", strerror(-r));
	printf("%" PRIu64 "\n", v);
	cf_session_close(&s);
	return 0;
}

/*
 * claim NAME INST INCIDENT: join as system NAME and try the registration CAS
 * INACTIVE_FAILED(INCIDENT) -> ACTIVE(NAME, INCIDENT), as a counterpart that
 * learned of that incident would. Prints "WON" or "REJECTED <word>".
 */
static int cmd_claim(int argc, char **argv)
{
	struct cf_session s;
	struct cf_inst_info info;
	uint64_t want, old = 0;
	char desc[32];
	int r;

	CHECK(argc >= 3, "usage: claim NAME INST INCIDENT");
	open_sys(&s, argv[0]);
	r = cf_session_inst_open(&s, argv[1], &info);
	CHECK(r == 0, "inst open %s: %s", argv[1], strerror(-r));
	want = cf_reg_failed((uint32_t)strtoul(argv[2], NULL, 10));
	r = cf_session_cas(&s, cf_inst_off(&s.map, info.index), want,
			   cf_reg_active(s.sys, s.epoch, cf_reg_incident(want)), &old);
	CHECK(r == 0, "cas: %s", strerror(-r));
	snprintf(desc, sizeof(desc), "%s", cf_reg_state_str(cf_reg_state(old)));
	if (old == want)
		printf("WON\n");
	else
		printf("REJECTED %s %u %u\n", desc, cf_reg_state(old) == CF_REG_ACTIVE ? cf_reg_owner(old) : 255u,
		       cf_reg_incident(old));
	CHECK(cf_session_goodbye(&s) == 0 || old == want, "goodbye");
	cf_session_close(&s);
	return 0;
}

/* ---------------- grants ---------------- */

static const struct cf_grant *grant_of(struct cf_session *s, uint32_t region)
{
	for (uint32_t i = 0; i < s->ngrants; i++)
		if (s->grants[i].region == region)
			return &s->grants[i];
	FAIL("no grant for region %u", region);
}

static int raw_op(struct cf_session *s, int op, uint64_t raddr, uint32_t rkey, uint32_t len, uint64_t *val)
{
	static uint8_t buf[CF_FRAME_MAX_PAYLOAD + 16];
	struct cf_wc wc;
	uint64_t id = 0xabc0 + (uint64_t)op;
	int r = 0, n;

	switch (op) {
	case CF_OP_READ: r = s->ops->post_read(s->conn, buf, len, raddr, rkey, id, 0); break;
	case CF_OP_WRITE: r = s->ops->post_write(s->conn, buf, len, raddr, rkey, id, 0); break;
	case CF_OP_CAS: r = s->ops->post_cas(s->conn, raddr, rkey, 0, 1, id, 0); break;
	case CF_OP_FAA: r = s->ops->post_faa(s->conn, raddr, rkey, 1, id, 0); break;
	}
	if (r < 0)
		return r;
	n = s->ops->poll(s->conn, &wc, 1, 5000);
	CHECK(n == 1, "no completion (%d)", n);
	CHECK(wc.wr_id == id, "wrong wr_id");
	if (val)
		*val = wc.value;
	return wc.status;
}

static int cmd_grants(int argc, char **argv)
{
	struct cf_session s, other;
	const struct cf_grant *hg, *ig, *lg;
	struct cf_inst_info info;
	uint64_t old;
	int r, tcp = !strcmp(transport, "tcp");

	open_sys(&s, argc > 0 ? argv[0] : "GR1");
	open_sys(&other, "GR2");
	/*
	 * tcp answers a refused request with the documented errno and the
	 * connection lives on; on verbs a remote access error kills the queue
	 * pair (as on any RDMA device): then only "refused" is checked and the
	 * session is reopened.
	 */
#define REFUSED(want, expr)                                                                      \
	do {                                                                                     \
		hg = grant_of(&s, CF_RGN_HEADER);                                                \
		ig = grant_of(&s, CF_RGN_INSTANCES);                                             \
		lg = grant_of(&s, CF_RGN_LOCKS);                                                 \
		r = (expr);                                                                      \
		if (tcp) {                                                                       \
			CHECK(r == (want), "%s: got %d, want %d", #expr, r, (want));             \
		} else {                                                                         \
			CHECK(r < 0, "%s: not refused", #expr);                                  \
			cf_session_close(&s);                                                    \
			open_sys(&s, argc > 0 ? argv[0] : "GR1");                                \
		}                                                                                \
	} while (0)
	REFUSED(-EACCES, raw_op(&s, CF_OP_READ, 0, 0xdead, 8, NULL));
	REFUSED(-ERANGE, raw_op(&s, CF_OP_READ, hg->addr + hg->len - 4, hg->rkey, 8, NULL));
	r = raw_op(&s, CF_OP_READ, lg->addr, lg->rkey, 64, NULL);
	CHECK(r == 0, "read in grant: %d", r);
	REFUSED(-ERANGE, raw_op(&s, CF_OP_READ, lg->addr + (s.map.off_logs - lg->image_off), lg->rkey, 8, NULL));
	REFUSED(-EACCES, raw_op(&s, CF_OP_WRITE, ig->addr, ig->rkey, 8, NULL));
	REFUSED(-EACCES, raw_op(&s, CF_OP_CAS, hg->addr, hg->rkey, 8, NULL));
	REFUSED(-EINVAL, raw_op(&s, CF_OP_FAA, lg->addr + 4, lg->rkey, 8, NULL));
	if (tcp)
		REFUSED(-EINVAL, raw_op(&s, CF_OP_READ, lg->addr, lg->rkey, 0, NULL));
	r = cf_session_read(&s, s.map.off_logs, &old, 8);
	CHECK(r == -EACCES, "session read of an unattached log: %d", r);
	/* the connection still works, and so does another system's */
	r = cf_session_faa(&s, lock_off(&s, 9), 1, &old);
	CHECK(r == 0, "faa after refusals: %s", strerror(-r));
	r = cf_session_faa(&other, lock_off(&other, 9), 1, &old);
	CHECK(r == 0 && old == 1, "other client: r=%d old=%" PRIu64, r, old);
	/* authorised attach: GR2 owns GRINST; GR1 is refused */
	take_inst(&other, "GRINST", 1);
	r = cf_session_inst_open(&s, "GRINST", &info);
	CHECK(r == 0, "inst open");
	r = cf_session_inst_attach(&s, info.index);
	CHECK(r == -EACCES, "attach of an instance owned by another system: %d", r);
	r = cf_session_read(&other, cf_log_off(&other.map, info.index), &old, 8);
	CHECK(r == 0, "owner reads its log: %d", r);
	r = cf_session_inst_unreg(&s, info.index, NULL, 0);
	CHECK(r == -EACCES, "unregister by a non-owner: %d", r);
	CHECK(cf_session_inst_unreg(&other, info.index, NULL, 0) == 0, "unreg by owner");
	CHECK(cf_session_goodbye(&s) == 0 && cf_session_goodbye(&other) == 0, "goodbye");
	cf_session_close(&s);
	cf_session_close(&other);
	/*
	 * Above the transport the two agree: an op of a session that the CF
	 * refuses ends the session on tcp as on verbs (where it ends the queue
	 * pair), and every later op says so. The refusal is provoked with a
	 * grant whose rkey is changed here, so only the CF can refuse it.
	 */
	{
		struct cf_session z;
		struct cf_grant *zg;
		open_sys(&z, "GR3");
		zg = (struct cf_grant *)grant_of(&z, CF_RGN_HEADER);
		zg->rkey ^= 0x5a5a5a5au;
		r = cf_session_read(&z, zg->image_off, &old, 8);
		CHECK(tcp ? r == -EACCES : r < 0, "session read with a wrong rkey: %d", r);
		CHECK(z.dead == r, "the refusal did not end the session: dead %d, read %d", z.dead, r);
		r = cf_session_faa(&z, lock_off(&z, 9), 1, &old);
		CHECK(r == z.dead, "an op after the refusal: %d, not the session's error %d", r, z.dead);
		cf_session_close(&z);
	}
	printf("OK grants\n");
	return 0;
}

/* ---------------- authentication ---------------- */

static int raw_connect(void)
{
	struct cf_conn *c;
	/* borrow the tcp client's connect; we only need a socket fd */
	int r = cf_tcp_client.connect(addr, 5000, &c), fd;

	CHECK(r == 0, "raw connect: %s", strerror(-r));
	fd = dup(cf_tcp_client.ctrl_fd(c));
	cf_tcp_client.close(c);
	CHECK(fd >= 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0, "blocking fd");
	return fd;
}

static void raw_send(int fd, uint16_t op, uint64_t id, const void *body, size_t len, uint32_t lenfield)
{
	struct cf_frame_hdr h = {.len = lenfield ? lenfield : (uint32_t)(sizeof(h) + len), .op = op, .id = id};
	uint8_t buf[8192];

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	CHECK(send(fd, buf, sizeof(h) + len, MSG_NOSIGNAL) == (ssize_t)(sizeof(h) + len), "raw send");
}

/* Read frames until EOF (within timeout); returns the number of bytes and the last frame's ctrl type. */
static ssize_t raw_read_to_eof(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	size_t got = 0;
	ssize_t n;

	for (;;) {
		if (poll(&p, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		n = recv(fd, buf + got, cap - got, 0);
		if (n == 0)
			return (ssize_t)got;
		if (n < 0)
			return errno == ECONNRESET ? (ssize_t)got : -errno;
		got += (size_t)n;
		if (got == cap)
			return (ssize_t)got;
	}
}

/*
 * A raw tcp session: the handshake and frames spoken by hand, with the frame
 * MACs (cf_auth.h, "Frame integrity") under the test's control, so a test can
 * send what no honest client sends: a bad tag, a replayed, reordered or
 * reflected frame.
 */
struct raw_sess {
	int fd;
	uint64_t id;
	struct cf_frame_mac tx, rx;
};

/* Build one frame into out (sealed when keyed); returns its length. */
static size_t rs_frame(struct raw_sess *r, uint8_t *out, uint16_t op, const void *body, size_t len, int keyed)
{
	struct cf_frame_hdr h = {.len = (uint32_t)(sizeof(h) + len), .op = op, .id = ++r->id};

	if (keyed) {
		h.len += CF_FRAME_TAG_LEN;
		h.flags = CF_FF_MAC;
	}
	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), body, len);
	if (keyed)
		CHECK(cf_frame_seal(&r->tx, out, h.len) == 0, "seal");
	return h.len;
}

static void rs_send_bytes(struct raw_sess *r, const uint8_t *buf, size_t len)
{
	CHECK(send(r->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len, "raw send: %s", strerror(errno));
}

/*
 * Read one whole frame into buf (cap bytes) within timeout_ms; its MAC is
 * checked when keyed. Returns its length, 0 at EOF, -ETIMEDOUT.
 */
static ssize_t rs_recv(struct raw_sess *r, uint8_t *buf, size_t cap, int keyed, int timeout_ms)
{
	struct pollfd p = {.fd = r->fd, .events = POLLIN};
	struct cf_frame_hdr h;
	size_t got = 0, want = sizeof(h);
	ssize_t n;

	while (got < want) {
		if (poll(&p, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		n = recv(r->fd, buf + got, want - got, 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		CHECK(n > 0, "raw recv: %s", strerror(errno));
		got += (size_t)n;
		if (got == sizeof(h)) {
			memcpy(&h, buf, sizeof(h));
			CHECK(cf_frame_check(&h) == 0 && h.len <= cap, "bad frame from the CF (len %u op %u)", h.len, h.op);
			want = h.len;
		}
	}
	if (keyed) {
		CHECK(h.flags & CF_FF_MAC, "frame from the CF without a MAC");
		CHECK(cf_frame_open(&r->rx, buf, h.len) == 0, "frame from the CF with a bad MAC");
	}
	return (ssize_t)h.len;
}

/* The type of the control message in frame buf. */
static uint16_t rs_ctrl_type(const uint8_t *buf)
{
	struct cf_ctrl_hdr ch;

	memcpy(&ch, buf + sizeof(struct cf_frame_hdr), sizeof(ch));
	return ch.type;
}

/* Connect and authenticate as role by hand; returns with WELCOME read and the keys set. */
static void rs_open(struct raw_sess *r, uint32_t role)
{
	struct cf_hello hello = {.magic = CF_HELLO_MAGIC, .version_min = CF_PROTO_VERSION_MIN,
				 .version_max = CF_PROTO_VERSION_MAX, .role = role};
	uint8_t buf[CF_FRAME_MAX], msg[CF_CTRL_MAX], mac[CF_MAC_LEN], c2s[CF_KEY_LEN], s2c[CF_KEY_LEN];
	struct cf_challenge ch;
	struct cf_auth_terms terms;
	struct cf_auth au;
	size_t len;

	memset(r, 0, sizeof(*r));
	r->fd = raw_connect();
	cf_auth_nonce(hello.client_nonce);
	len = cf_ctrl_build(msg, CF_CTRL_HELLO, &hello, sizeof(hello));
	len = rs_frame(r, buf, CF_OP_CTRL, msg, len, 0);
	rs_send_bytes(r, buf, len);
	CHECK(rs_recv(r, buf, sizeof(buf), 0, 5000) > 0 && rs_ctrl_type(buf) == CF_CTRL_CHALLENGE, "no CHALLENGE");
	memcpy(&ch, buf + sizeof(struct cf_frame_hdr) + sizeof(struct cf_ctrl_hdr), sizeof(ch));
	terms = cf_auth_terms_of(&hello, ch.version);
	cf_auth_mac_server(key, hello.client_nonce, ch.server_nonce, &terms, mac);
	CHECK(cf_auth_verify(mac, ch.mac) == 0, "the CF does not know the key");
	cf_auth_mac_client(key, ch.server_nonce, hello.client_nonce, &terms, au.mac);
	len = cf_ctrl_build(msg, CF_CTRL_AUTH, &au, sizeof(au));
	len = rs_frame(r, buf, CF_OP_CTRL, msg, len, 0);
	rs_send_bytes(r, buf, len);
	cf_auth_frame_keys(key, hello.client_nonce, ch.server_nonce, role, c2s, s2c);
	cf_frame_mac_init(&r->tx, c2s);
	cf_frame_mac_init(&r->rx, s2c);
	CHECK(rs_recv(r, buf, sizeof(buf), 1, 5000) > 0 && rs_ctrl_type(buf) == CF_CTRL_WELCOME, "no WELCOME");
}

/* Send a control message (sealed) and read its reply into reply (body after the ctrl header). */
static void rs_rpc(struct raw_sess *r, uint16_t type, const void *body, size_t blen, uint16_t rtype, void *reply,
		   size_t rlen)
{
	uint8_t buf[CF_FRAME_MAX], msg[CF_CTRL_MAX];
	size_t len = cf_ctrl_build(msg, type, body, blen);
	ssize_t n;

	len = rs_frame(r, buf, CF_OP_CTRL, msg, len, 1);
	rs_send_bytes(r, buf, len);
	n = rs_recv(r, buf, sizeof(buf), 1, 5000);
	CHECK(n > 0 && rs_ctrl_type(buf) == rtype, "no %s (got %s)", cf_ctrl_type_str(rtype),
	      n > 0 ? cf_ctrl_type_str(rs_ctrl_type(buf)) : "EOF");
	memcpy(reply, buf + sizeof(struct cf_frame_hdr) + sizeof(struct cf_ctrl_hdr), rlen);
}

/* A raw system connection: handshake, JOIN as name; fills the JOINED reply. */
static void rs_join(struct raw_sess *r, const char *name, struct cf_joined *jd)
{
	struct cf_join j;

	rs_open(r, CF_ROLE_SYSTEM);
	memset(&j, 0, sizeof(j));
	snprintf(j.name, sizeof(j.name), "%s", name);
	snprintf(j.host, sizeof(j.host), "localhost");
	j.pid = (uint64_t)getpid();
	rs_rpc(r, CF_CTRL_JOIN, &j, sizeof(j), CF_CTRL_JOINED, jd, sizeof(*jd));
	CHECK(jd->status == 0, "raw JOIN %s: %d", name, jd->status);
}

static const struct cf_grant *joined_grant(const struct cf_joined *jd, uint32_t region)
{
	for (uint32_t i = 0; i < jd->grants.count && i < CF_MAX_GRANTS; i++)
		if (jd->grants.g[i].region == region)
			return &jd->grants.g[i];
	FAIL("no grant for region %u", region);
}

static int cmd_noauth(int argc, char **argv)
{
	struct cf_session s;
	struct cf_req_rw rw = {.addr = 0, .rkey = 1, .len = 8};
	struct cf_hello hello = {.magic = CF_HELLO_MAGIC, .version_min = CF_PROTO_VERSION_MIN,
				  .version_max = CF_PROTO_VERSION_MAX, .role = CF_ROLE_SYSTEM};
	struct cf_auth au;
	struct cf_frame_hdr h;
	struct cf_resp resp;
	uint8_t wrong[CF_KEY_LEN], buf[8192], msg[CF_CTRL_MAX];
	ssize_t n;
	size_t len;
	int fd, r;

	if (strcmp(transport, "tcp"))
		goto session_only; /* the raw frame checks are tcp's */
	/* 1: one-sided ops before the handshake: refused, no data */
	fd = raw_connect();
	for (uint32_t rk = 0; rk < 64; rk++) {
		rw.rkey = rk;
		raw_send(fd, CF_OP_READ, 100 + rk, &rw, sizeof(rw), 0);
	}
	for (uint32_t rk = 0; rk < 64; rk++) {
		n = recv(fd, buf, sizeof(h) + sizeof(resp), MSG_WAITALL);
		CHECK(n == (ssize_t)(sizeof(h) + sizeof(resp)), "response to unauthenticated READ: %zd", n);
		memcpy(&h, buf, sizeof(h));
		memcpy(&resp, buf + sizeof(h), sizeof(resp));
		CHECK(h.op == CF_OP_RESP && h.len == sizeof(h) + sizeof(resp) && resp.status == -EACCES,
		      "unauthenticated READ got op %u len %u status %d", h.op, h.len, resp.status);
	}
	/* 2: a wrong MAC: ERROR "authentication failed", then the server closes */
	len = cf_ctrl_build(msg, CF_CTRL_HELLO, &hello, sizeof(hello));
	raw_send(fd, CF_OP_CTRL, 1, msg, len, 0);
	memset(&au, 0x5a, sizeof(au));
	len = cf_ctrl_build(msg, CF_CTRL_AUTH, &au, sizeof(au));
	raw_send(fd, CF_OP_CTRL, 2, msg, len, 0);
	rw.rkey = 1;
	raw_send(fd, CF_OP_READ, 3, &rw, sizeof(rw), 0);
	n = raw_read_to_eof(fd, buf, sizeof(buf), 5000);
	CHECK(n > 0, "no answer before close: %zd", n);
	{
		/* frames: CHALLENGE, then ERROR; nothing else (the READ after it is never executed) */
		size_t pos = 0;
		int saw_error = 0;
		while (pos + sizeof(h) <= (size_t)n) {
			memcpy(&h, buf + pos, sizeof(h));
			CHECK(h.op == CF_OP_CTRL, "unexpected frame op %u after a bad AUTH", h.op);
			struct cf_ctrl_hdr ch;
			memcpy(&ch, buf + pos + sizeof(h), sizeof(ch));
			if (ch.type == CF_CTRL_ERROR) {
				struct cf_status st;
				memcpy(&st, buf + pos + sizeof(h) + sizeof(ch), sizeof(st));
				CHECK(strstr(st.msg, "authentication failed"), "error message: %s", st.msg);
				saw_error = 1;
			} else {
				CHECK(ch.type == CF_CTRL_CHALLENGE, "unexpected %s", cf_ctrl_type_str(ch.type));
			}
			pos += h.len;
		}
		CHECK(saw_error, "no ERROR frame");
	}
	close(fd);
	/* 2b: a HELLO for protocol versions this server does not speak: ERROR naming both ranges */
	fd = raw_connect();
	hello.version_min = CF_PROTO_VERSION_MAX + 1;
	hello.version_max = CF_PROTO_VERSION_MAX + 2;
	len = cf_ctrl_build(msg, CF_CTRL_HELLO, &hello, sizeof(hello));
	raw_send(fd, CF_OP_CTRL, 1, msg, len, 0);
	n = raw_read_to_eof(fd, buf, sizeof(buf), 5000);
	{
		struct cf_ctrl_hdr ch;
		struct cf_status st;
		char want[64];
		CHECK(n >= (ssize_t)(sizeof(h) + sizeof(ch) + sizeof(st)), "no ERROR for a version mismatch: %zd", n);
		memcpy(&ch, buf + sizeof(h), sizeof(ch));
		memcpy(&st, buf + sizeof(h) + sizeof(ch), sizeof(st));
		st.msg[sizeof(st.msg) - 1] = 0;
		snprintf(want, sizeof(want), "client speaks %u..%u, server %u..%u", CF_PROTO_VERSION_MAX + 1,
			 CF_PROTO_VERSION_MAX + 2, CF_PROTO_VERSION_MIN, CF_PROTO_VERSION_MAX);
		CHECK(ch.type == CF_CTRL_ERROR && strstr(st.msg, want), "version mismatch answer: %s", st.msg);
	}
	close(fd);
session_only:
	/* 3: the session API with a wrong key: -EPERM (the server fails to prove the key) */
	memcpy(wrong, key, sizeof(wrong));
	wrong[0] ^= 1;
	r = cf_session_open(&s, transport, addr, wrong, CF_ROLE_SYSTEM, connect_ms());
	CHECK(r == -EPERM, "wrong key: %d", r);
	/* 3b: a refusal at HELLO (here an unknown role): -EPROTO, and the CF's reason is kept */
	r = cf_session_open(&s, transport, addr, key, (enum cf_role)99, connect_ms());
	CHECK(r == -EPROTO, "unknown role: %d", r);
	CHECK(cf_session_error_msg(&s) && strstr(cf_session_error_msg(&s), "unknown role"), "reason kept: %s",
	      cf_session_error_msg(&s) ? cf_session_error_msg(&s) : "(none)");
	/* 4: the right key still works */
	open_sys(&s, "AUTHOK");
	CHECK(!cf_session_error_msg(&s), "a stale reason after a good open");
	CHECK(cf_session_goodbye(&s) == 0, "goodbye");
	cf_session_close(&s);
	printf("OK noauth\n");
	return 0;
}

/* ---------------- frame integrity (tcp) ---------------- */

/* An FAA of add on the lock word at image offset off, through the LOCKS grant of jd. */
static size_t faa_frame(struct raw_sess *r, uint8_t *out, const struct cf_joined *jd, uint64_t off, int keyed)
{
	const struct cf_grant *lg = joined_grant(jd, CF_RGN_LOCKS);
	struct cf_req_atomic at = {.addr = lg->addr + (off - lg->image_off), .rkey = lg->rkey, .compare = 1};

	return rs_frame(r, out, CF_OP_FAA, &at, sizeof(at), keyed);
}

/* A thread that sends len bytes on fd, however slowly the CF takes them. */
struct slow_send {
	int fd;
	uint8_t *buf;
	size_t len;
};

static void *slow_send_main(void *p)
{
	struct slow_send *ss = p;

	for (size_t off = 0; off < ss->len;) {
		ssize_t n = send(ss->fd, ss->buf + off, ss->len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	return NULL;
}

/* After an attack on r: the CF closed r at once and sent nothing (no answer, no ERROR). */
static void expect_silent_close(struct raw_sess *r, const char *what)
{
	uint8_t buf[CF_FRAME_MAX];
	ssize_t n = rs_recv(r, buf, sizeof(buf), 0, 5000);

	CHECK(n == 0, "%s: %s", what, n == -ETIMEDOUT ? "connection still open" : "the CF answered it");
	close(r->fd);
	r->fd = -1;
}

static uint64_t word(struct cf_session *s, uint64_t off)
{
	uint64_t v = 0;
	int r = cf_session_read(s, off, &v, 8);

	CHECK(r == 0, "read: %s", strerror(-r));
	return v;
}

/*
 * frame-mac PREFIX: frame integrity after the handshake (cf_auth.h, "Frame
 * integrity"). Each attack runs on a raw system connection of its own that
 * completed the handshake and JOIN, and aims an FAA (or a control frame) at
 * the CF: a bad tag, a frame without a tag, a replayed frame, two frames
 * swapped, a frame of the CF's own sent back to it, a frame sealed for another
 * connection. Each must close that connection at once with nothing executed
 * (the lock word does not move) and nothing answered, while an honest session
 * opened before keeps working. And a version-1 client gets a clear refusal.
 */
static int cmd_frame_mac(int argc, char **argv)
{
	const char *p = argc > 0 ? argv[0] : "FM";
	struct raw_sess a, b;
	struct cf_joined ja, jb;
	struct cf_session good;
	uint8_t f[256], g[256], buf[CF_FRAME_MAX], msg[CF_CTRL_MAX];
	char name[CF_NAME_MAX];
	uint64_t off, v0, old;
	size_t len, glen;
	ssize_t n;

	CHECK(!strcmp(transport, "tcp"), "tcp only: verbs has no frames of its own");
#define NAME(x) (snprintf(name, sizeof(name), "%s%s", p, x), name)
	open_sys(&good, NAME("GOOD"));
	off = cf_lock_off(&good.map, 40);
	v0 = word(&good, off);

	/* 0: the raw path itself is honest: a sealed FAA executes and is answered */
	rs_join(&a, NAME("0"), &ja);
	len = faa_frame(&a, f, &ja, off, 1);
	rs_send_bytes(&a, f, len);
	n = rs_recv(&a, buf, sizeof(buf), 1, 5000);
	CHECK(n > 0 && ((struct cf_frame_hdr *)(void *)buf)->op == CF_OP_RESP, "honest raw FAA not answered");
	CHECK(word(&good, off) == v0 + 1, "honest raw FAA did not execute");
	v0++;
	/* 1: replayed: the same bytes again (a valid tag, for the frame before) */
	rs_send_bytes(&a, f, len);
	expect_silent_close(&a, "replayed FAA");
	CHECK(word(&good, off) == v0, "the replayed FAA executed");
	printf("refused: replayed frame\n");

	/* 2: a bad tag (one bit of it) */
	rs_join(&a, NAME("1"), &ja);
	len = faa_frame(&a, f, &ja, off, 1);
	f[len - 1] ^= 0x01;
	rs_send_bytes(&a, f, len);
	expect_silent_close(&a, "FAA with a bad MAC");
	CHECK(word(&good, off) == v0, "an FAA with a bad MAC executed");
	printf("refused: bad MAC\n");

	/* 3: a changed body under a good tag (the addend: 1 -> 2) */
	rs_join(&a, NAME("2"), &ja);
	len = faa_frame(&a, f, &ja, off, 1);
	f[sizeof(struct cf_frame_hdr) + offsetof(struct cf_req_atomic, compare)] = 2;
	rs_send_bytes(&a, f, len);
	expect_silent_close(&a, "changed FAA");
	CHECK(word(&good, off) == v0, "a changed FAA executed");
	printf("refused: changed body\n");

	/* 4: no tag at all after the handshake */
	rs_join(&a, NAME("3"), &ja);
	len = faa_frame(&a, f, &ja, off, 0);
	rs_send_bytes(&a, f, len);
	expect_silent_close(&a, "FAA without a MAC");
	CHECK(word(&good, off) == v0, "an FAA without a MAC executed");
	printf("refused: no MAC\n");

	/* 5: reordered: the second frame first (also what a dropped frame looks like) */
	rs_join(&a, NAME("4"), &ja);
	len = faa_frame(&a, f, &ja, off, 1);
	glen = faa_frame(&a, g, &ja, off, 1);
	rs_send_bytes(&a, g, glen);
	rs_send_bytes(&a, f, len);
	expect_silent_close(&a, "reordered FAAs");
	CHECK(word(&good, off) == v0, "a reordered FAA executed");
	printf("refused: reordered frames\n");

	/*
	 * 6: reflected: the CF's JOINED frame, sent back at once, carries a good
	 * tag for the very number the CF expects next, in the other direction.
	 * Executed, it would be answered (an ERROR: JOINED is no request).
	 */
	{
		struct cf_join j;
		memset(&j, 0, sizeof(j));
		snprintf(j.name, sizeof(j.name), "%s", NAME("5"));
		snprintf(j.host, sizeof(j.host), "localhost");
		j.pid = (uint64_t)getpid();
		rs_open(&a, CF_ROLE_SYSTEM);
		len = cf_ctrl_build(msg, CF_CTRL_JOIN, &j, sizeof(j));
		len = rs_frame(&a, f, CF_OP_CTRL, msg, len, 1);
		rs_send_bytes(&a, f, len);
		n = rs_recv(&a, buf, sizeof(buf), 1, 5000);
		CHECK(n > 0 && rs_ctrl_type(buf) == CF_CTRL_JOINED, "no JOINED");
		rs_send_bytes(&a, buf, (size_t)n);
		expect_silent_close(&a, "reflected JOINED");
	}
	printf("refused: reflected frame\n");

	/* 7: a frame sealed for another connection (same number, other keys) */
	rs_join(&a, NAME("6"), &ja);
	rs_join(&b, NAME("7"), &jb);
	len = faa_frame(&a, f, &jb, off, 1); /* b's grant, a's keys: a.tx.seq == b's next */
	rs_send_bytes(&b, f, len);
	expect_silent_close(&b, "another connection's FAA");
	CHECK(word(&good, off) == v0, "another connection's FAA executed");
	close(a.fd);
	printf("refused: frame of another connection\n");

	/* 8: a version-1 client (no frame MACs): an ERROR naming both ranges, then close */
	{
		struct cf_hello hello = {.magic = CF_HELLO_MAGIC, .version_min = 1, .version_max = 1,
					 .role = CF_ROLE_SYSTEM};
		struct cf_status st;
		memset(&a, 0, sizeof(a));
		a.fd = raw_connect();
		cf_auth_nonce(hello.client_nonce);
		len = cf_ctrl_build(msg, CF_CTRL_HELLO, &hello, sizeof(hello));
		len = rs_frame(&a, f, CF_OP_CTRL, msg, len, 0);
		rs_send_bytes(&a, f, len);
		n = rs_recv(&a, buf, sizeof(buf), 0, 5000);
		CHECK(n > 0 && rs_ctrl_type(buf) == CF_CTRL_ERROR, "a version-1 HELLO was not refused");
		memcpy(&st, buf + sizeof(struct cf_frame_hdr) + sizeof(struct cf_ctrl_hdr), sizeof(st));
		st.msg[sizeof(st.msg) - 1] = 0;
		snprintf((char *)msg, sizeof(msg), "client speaks 1..1, server %u..%u", CF_PROTO_VERSION_MIN,
			 CF_PROTO_VERSION_MAX);
		CHECK(strstr(st.msg, (char *)msg), "refusal of a version-1 client: %s", st.msg);
		close(a.fd);
		printf("refused: version-1 client (%s)\n", st.msg);
	}

	/*
	 * 9: an honest reader that is slow: 100000 FAAs pipelined by a thread
	 * while nobody reads, then every answer read: the CF's output is sent in
	 * parts and its buffer compacted between appends, and every answer's tag
	 * must check (a tag written at a stale offset once corrupted the CF's heap).
	 */
	{
		enum { N = 100000 };
		struct slow_send ss;
		pthread_t th;
		size_t fl, pos = 0;
		uint64_t before = word(&good, off);
		rs_join(&a, NAME("8"), &ja);
		fl = faa_frame(&a, f, &ja, off, 0) + CF_FRAME_TAG_LEN;
		a.id--;
		ss.fd = a.fd;
		ss.len = N * fl;
		ss.buf = malloc(ss.len);
		CHECK(ss.buf, "malloc");
		for (int i = 0; i < N; i++)
			pos += faa_frame(&a, ss.buf + pos, &ja, off, 1);
		CHECK(pos == ss.len, "frame sizes");
		CHECK(pthread_create(&th, NULL, slow_send_main, &ss) == 0, "thread");
		usleep(300000);
		for (int i = 0; i < N; i++) {
			n = rs_recv(&a, buf, sizeof(buf), 1, 10000); /* checks the tag */
			CHECK(n > 0 && ((struct cf_frame_hdr *)(void *)buf)->op == CF_OP_RESP, "answer %d of %d: %zd", i, N, n);
		}
		pthread_join(th, NULL);
		free(ss.buf);
		close(a.fd);
		v0 = before + N;
		CHECK(word(&good, off) == v0, "the slow reader's FAAs");
		printf("accepted: %d answers to a slow reader, every tag good\n", N);
	}

	/* the honest session was not disturbed */
	CHECK(cf_session_faa(&good, off, 1, &old) == 0 && old == v0, "honest FAA after the attacks");
	CHECK(cf_session_goodbye(&good) == 0, "goodbye");
	cf_session_close(&good);
#undef NAME
	printf("OK frame-mac\n");
	return 0;
}

/*
 * A man in the middle for frame-mac-client: relays one client connection to
 * the CF; while `corrupt` is set, the next chunk from the CF to the client has
 * one bit of byte 24 changed (in an answer frame: the low byte of a CAS/FAA's
 * old value, what a forger would change).
 */
struct mitm {
	int lfd, sfd; /* listening for the client; connected to the CF */
	int corrupt; /* atomically */
	int corrupted;
};

static void *mitm_main(void *p)
{
	struct mitm *m = p;
	uint8_t buf[65536];
	int cfd = accept(m->lfd, NULL, NULL), sfd = m->sfd;

	CHECK(cfd >= 0, "mitm accept");
	for (;;) {
		struct pollfd pf[2] = {{.fd = cfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
		if (poll(pf, 2, 20000) <= 0)
			break;
		for (int i = 0; i < 2; i++) {
			ssize_t n;
			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = recv(pf[i].fd, buf, sizeof(buf), 0);
			if (n <= 0)
				goto out;
			if (i == 1 && n > 24 && __atomic_exchange_n(&m->corrupt, 0, __ATOMIC_SEQ_CST)) {
				buf[24] ^= 0x01;
				m->corrupted = 1;
			}
			if (send(i ? cfd : sfd, buf, (size_t)n, MSG_NOSIGNAL) != n)
				goto out;
		}
	}
out:
	close(cfd);
	close(sfd);
	return NULL;
}

/*
 * frame-mac-client NAME: the client's side of frame integrity. Through a relay
 * that changes one bit of an FAA's answer (the old value), the session must
 * fail with -EBADMSG instead of returning a forged value.
 */
static int cmd_frame_mac_client(int argc, char **argv)
{
	static struct mitm m;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	char paddr[64];
	const char *real = addr;
	struct cf_session s;
	pthread_t th;
	uint64_t old, off;
	int r;

	CHECK(!strcmp(transport, "tcp"), "tcp only");
	m.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(m.lfd >= 0 && bind(m.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(m.lfd, 1) == 0 &&
		      getsockname(m.lfd, (struct sockaddr *)&sa, &sl) == 0,
	      "mitm listen");
	snprintf(paddr, sizeof(paddr), "127.0.0.1:%u", ntohs(sa.sin_port));
	m.sfd = raw_connect(); /* to the CF, before addr names the relay */
	CHECK(pthread_create(&th, NULL, mitm_main, &m) == 0, "thread");
	addr = paddr;
	open_sys(&s, argc > 0 ? argv[0] : "FMC");
	addr = real;
	off = lock_off(&s, 7);
	CHECK(cf_session_faa(&s, off, 1, &old) == 0, "FAA through the relay, untouched");
	__atomic_store_n(&m.corrupt, 1, __ATOMIC_SEQ_CST);
	r = cf_session_faa(&s, off, 1, &old);
	CHECK(m.corrupted, "the relay changed nothing");
	CHECK(r == -EBADMSG, "an answer with a changed old value: r=%d (%s), old %" PRIu64, r, strerror(-r), old);
	printf("refused by the client: changed answer (%s)\n", strerror(-r));
	cf_session_close(&s);
	close(m.lfd);
	pthread_join(th, NULL);
	printf("OK frame-mac-client\n");
	return 0;
}

/* ---------------- the handshake budget ---------------- */

/*
 * silent N SECONDS [churn]: open N connections that never speak, print READY,
 * hold them SECONDS, then print how many the CF closed.
 * churn: reopen each one the CF closes, at once, for as long (a flood that
 * keeps pushing), and print how many were reopened.
 */
static int cmd_silent(int argc, char **argv)
{
	int n = argc > 0 ? atoi(argv[0]) : 300, secs = argc > 1 ? atoi(argv[1]) : 10, closed = 0;
	int churn = argc > 2 && !strcmp(argv[2], "churn");
	int *fds = calloc((size_t)n, sizeof(*fds));
	uint64_t end, reopened = 0;
	char c;

	CHECK(fds && n > 0, "usage: silent N SECONDS [churn]");
	for (int i = 0; i < n; i++)
		fds[i] = raw_connect();
	printf("READY %d\n", n);
	fflush(stdout);
	end = cf_mono_ns() + (uint64_t)secs * 1000000000ull;
	while (cf_mono_ns() < end) {
		if (!churn) {
			usleep(50000);
			continue;
		}
		for (int i = 0; i < n; i++) {
			ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
				close(fds[i]);
				fds[i] = raw_connect();
				reopened++;
			}
		}
		usleep(1000);
	}
	if (churn)
		printf("REOPENED %" PRIu64 "\n", reopened);
	for (int i = 0; i < n; i++) {
		ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT);
		closed += r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
		close(fds[i]);
	}
	printf("CLOSED %d of %d\n", closed, n);
	free(fds);
	return 0;
}

/*
 * unknown-ctrl: a control message of a type the CF does not know, from an
 * authenticated system and console: a STATUS -ENOSYS, and the connection
 * goes on serving.
 */
static int cmd_unknown_ctrl(int argc, char **argv)
{
	struct cf_session s, con;
	struct cf_status st;
	struct cf_empty e = {0};
	uint64_t old;
	int r;

	open_sys(&s, argc > 0 ? argv[0] : "UNK1");
	open_console(&con);
	for (int k = 0; k < 2; k++) {
		struct cf_session *x = k ? &con : &s;
		memset(&st, 0, sizeof(st));
		r = cf_session_rpc(x, 999, &e, sizeof(e), CF_CTRL_STATUS, &st, sizeof(st), 5000);
		st.msg[sizeof(st.msg) - 1] = 0;
		CHECK(r == -ENOSYS || (r == 0 && st.status == -ENOSYS), "%s: unknown type 999: r=%d status=%d (%s)",
		      k ? "console" : "system", r, st.status, st.msg);
		printf("%s: %s\n", k ? "console" : "system", st.msg);
	}
	CHECK(cf_session_faa(&s, lock_off(&s, 5), 1, &old) == 0, "the system connection after ENOSYS");
	CHECK(word(&con, lock_off(&con, 5)) == old + 1, "the console connection after ENOSYS");
	CHECK(cf_session_goodbye(&s) == 0, "goodbye");
	cf_session_close(&s);
	cf_session_close(&con);
	printf("OK unknown-ctrl\n");
	return 0;
}

/*
 * longname: an INST_OPEN whose name fills its 16-byte field with no NUL is
 * refused (-EINVAL), not cut to the 15 characters of another name; the same
 * for a RECOVER from the console.
 */
static int cmd_longname(int argc, char **argv)
{
	struct cf_session s, con;
	struct cf_inst_name n;
	struct cf_inst_info info;
	struct cf_recover rq;
	struct cf_recover_r rr;
	int r;

	open_sys(&s, argc > 0 ? argv[0] : "LONG1");
	memset(&n, 'A', sizeof(n)); /* 16 x 'A', unterminated */
	memset(&info, 0, sizeof(info));
	r = cf_session_rpc(&s, CF_CTRL_INST_OPEN, &n, sizeof(n), CF_CTRL_INST_INFO, &info, sizeof(info), 5000);
	CHECK(r == -EINVAL || (r == 0 && info.status == -EINVAL), "unterminated INST_OPEN name: r=%d status=%d", r,
	      info.status);
	r = cf_session_inst_open(&s, "AAAAAAAAAAAAAAA", &info); /* the 15-character cut must not exist */
	CHECK(r == 0 && info.reg == cf_reg_clean(0), "the 15-character name: r=%d", r);
	open_console(&con);
	memset(&rq, 0, sizeof(rq));
	memset(rq.inst, 'A', sizeof(rq.inst));
	memset(&rr, 0, sizeof(rr));
	r = cf_session_rpc(&con, CF_CTRL_RECOVER, &rq, sizeof(rq), CF_CTRL_RECOVER_R, &rr, sizeof(rr), 5000);
	rr.msg[sizeof(rr.msg) - 1] = 0;
	CHECK(r == 0 && rr.status == -EINVAL, "unterminated RECOVER name: r=%d status=%d (%s)", r, rr.status, rr.msg);
	CHECK(cf_session_goodbye(&s) == 0, "goodbye");
	cf_session_close(&s);
	cf_session_close(&con);
	printf("OK longname\n");
	return 0;
}

/* ---------------- malformed frames ---------------- */

static void expect_closed(const char *what, uint16_t op, const void *body, size_t len, uint32_t lenfield)
{
	uint8_t buf[65536];
	int fd = raw_connect();
	ssize_t n;

	raw_send(fd, op, 7, body, len, lenfield);
	n = raw_read_to_eof(fd, buf, sizeof(buf), 5000);
	CHECK(n >= 0, "%s: connection not closed (%zd)", what, n);
	close(fd);
}

static int cmd_malformed(int argc, char **argv)
{
	struct cf_session s;
	uint8_t body[64] = {0};
	struct cf_ctrl_hdr ch = {.type = 999, .len = 16};
	uint64_t old;
	int r;

	open_sys(&s, "MAL1");
	CHECK(cf_session_faa(&s, lock_off(&s, 3), 1, &old) == 0, "faa before");
	expect_closed("unknown op", 99, body, 16, 0);
	expect_closed("frame shorter than its header", CF_OP_READ, body, 0, 5);
	expect_closed("oversized frame", CF_OP_WRITE, body, 16, CF_FRAME_MAX + 1);
	expect_closed("READ with a wrong length", CF_OP_READ, body, 24, 0);
	expect_closed("RESP from a client", CF_OP_RESP, body, 16, 0);
	memcpy(body, &ch, sizeof(ch));
	expect_closed("unknown control message", CF_OP_CTRL, body, 16, 0);
	{
		/* a WRITE whose request length disagrees with its frame */
		struct cf_req_rw rw = {.addr = 0, .rkey = 1, .len = 40};
		memcpy(body, &rw, sizeof(rw));
		expect_closed("WRITE length mismatch", CF_OP_WRITE, body, 24, 0);
	}
	/* the good connection was not disturbed */
	r = cf_session_faa(&s, lock_off(&s, 3), 1, &old);
	CHECK(r == 0 && old == 1, "faa after malformed peers: r=%d old=%" PRIu64, r, old);
	CHECK(cf_session_goodbye(&s) == 0, "goodbye");
	cf_session_close(&s);
	printf("OK malformed\n");
	return 0;
}

/* ---------------- failure detection helpers ---------------- */

struct hb_arg {
	struct cf_session s;
	int interval_ms;
	int stop; /* set (atomically) to fall silent: the CF then fails the system after T */
};

static void *hb_thread(void *p)
{
	struct hb_arg *a = p;
	struct cf_hb_slot slot;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)a->interval_ms * 1000000L};

	/* like cfnode's heartbeat thread: real-time when allowed (cfserver may be too) */
	struct sched_param sp = {.sched_priority = 10};
	pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	memset(&slot, 0, sizeof(slot));
	slot.epoch = a->s.epoch;
	while (!__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) {
		slot.hb++;
		if (cf_session_write(&a->s, cf_hb_off(&a->s.map, a->s.sys), &slot, sizeof(slot)) < 0)
			return NULL;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* hold NAME INST [HB_MS]: join, register INST, (heartbeat), print READY, wait to be killed */
static int cmd_hold(int argc, char **argv)
{
	static struct hb_arg hb;
	struct cf_session s;
	pthread_t th;
	int r;

	CHECK(argc >= 2, "usage: hold NAME INST [HB_MS]");
	open_sys(&s, argv[0]);
	take_inst(&s, argv[1], 1);
	if (argc > 2) {
		hb.interval_ms = atoi(argv[2]);
		r = cf_session_open(&hb.s, transport, addr, key, CF_ROLE_SYSTEM, connect_ms());
		CHECK(r == 0, "hb open");
		r = cf_session_attach(&hb.s, s.sys, s.epoch, s.token);
		CHECK(r == 0, "hb attach: %s", strerror(-r));
		CHECK(pthread_create(&th, NULL, hb_thread, &hb) == 0, "thread");
	}
	printf("READY %u %u %" PRIu64 "\n", s.sys, s.epoch, s.token);
	fflush(stdout);
	/* bounded: the test kills us long before */
	for (int i = 0; i < 600; i++) {
		struct cf_event ev;
		r = cf_session_next_event(&s, &ev, 100);
		if (r < 0 && r != -ETIMEDOUT) {
			printf("DEAD %s\n", strerror(-r));
			fflush(stdout);
			cf_session_close(&s);
			return 2;
		}
		if (r == 0) {
			printf("EVENT %s sys %u epoch %u inst %u reg %s/%u policy %" PRIu64 " cause %u\n",
			       cf_event_type_str(ev.type), ev.sys, ev.epoch, ev.inst,
			       cf_reg_state_str(cf_reg_state(ev.reg)), cf_reg_incident(ev.reg), ev.policy, ev.cause);
			fflush(stdout);
		}
	}
	return 0;
}

/*
 * resume SYS EPOCH TOKEN [HB_MS]: CONN_ATTACH of a further connection of
 * incarnation (SYS, EPOCH) with TOKEN, as a system kept at a duplexed takeover
 * resumes (cf_member.c resume_kept). Prints "RESUMED" (then beats every HB_MS
 * on that connection, bounded, if given) or "REFUSED errno msg" and exits 1.
 */
static int cmd_resume(int argc, char **argv)
{
	struct cf_session s;
	struct cf_hb_slot hb;
	int r;

	CHECK(argc >= 3, "usage: resume SYS EPOCH TOKEN [HB_MS]");
	r = cf_session_open(&s, transport, addr, key, CF_ROLE_SYSTEM, connect_ms());
	CHECK(r == 0, "open: %s", strerror(-r));
	r = cf_session_attach(&s, (uint32_t)strtoul(argv[0], NULL, 10), (uint32_t)strtoul(argv[1], NULL, 10),
			      strtoull(argv[2], NULL, 10));
	if (r) {
		printf("REFUSED %d %s\n", r, cf_session_error_msg(&s) ? cf_session_error_msg(&s) : strerror(-r));
		cf_session_close(&s);
		return 1;
	}
	printf("RESUMED\n");
	fflush(stdout);
	memset(&hb, 0, sizeof(hb));
	hb.epoch = s.epoch;
	/* bounded (the test stops it long before): 120 s at 5 ms */
	for (int i = 0; argc > 3 && i < 24000; i++) {
		hb.hb++;
		r = cf_session_write(&s, cf_hb_off(&s.map, s.sys), &hb, sizeof(hb));
		CHECK(r == 0, "beat: %s", strerror(-r));
		usleep((useconds_t)atoi(argv[3]) * 1000u);
	}
	cf_session_close(&s);
	return 0;
}

/*
 * suspect NAME TARGET [self|stale]: join as system NAME and report TARGET's
 * heartbeat silent (CF_CTRL_SUSPECT), as a buggy or lying member would:
 * prints "STATUS MESSAGE" of the CF's answer. self: name ourselves instead;
 * stale: an epoch TARGET does not have.
 */
static int cmd_suspect(int argc, char **argv)
{
	struct cf_session s;
	struct cf_sys_slot slot;
	struct cf_suspect m = {0};
	struct cf_status st;
	int r, found = -1;

	CHECK(argc >= 2, "usage: suspect NAME TARGET [self|stale]");
	open_sys(&s, argv[0]);
	for (uint32_t i = 0; i < s.map.geo.max_systems; i++) {
		r = cf_session_read(&s, cf_sys_off(&s.map, i), &slot, sizeof(slot));
		CHECK(r == 0, "read: %s", strerror(-r));
		slot.name[CF_NAME_MAX - 1] = 0;
		if (!strcmp(slot.name, argv[1])) {
			found = (int)i;
			m.sys = i;
			m.epoch = cf_sysword_epoch(slot.state);
		}
	}
	CHECK(found >= 0, "no system %s", argv[1]);
	if (argc > 2 && !strcmp(argv[2], "self"))
		m.sys = s.sys;
	if (argc > 2 && !strcmp(argv[2], "stale"))
		m.epoch = (m.epoch + 1) & CF_EPOCH_MASK;
	m.silent_ms = 999999;
	r = cf_session_rpc(&s, CF_CTRL_SUSPECT, &m, sizeof(m), CF_CTRL_STATUS, &st, sizeof(st), 5000);
	CHECK(r == 0, "SUSPECT: %s", strerror(-r));
	st.msg[sizeof(st.msg) - 1] = 0;
	printf("%d %s\n", st.status, st.msg);
	cf_session_goodbye(&s);
	cf_session_close(&s);
	return 0;
}

/* ---------------- nvram ---------------- */

/* fill SEED: write a pattern into the recovery-info region and lock words, then leave cleanly */
static int cmd_fill(int argc, char **argv)
{
	struct cf_session s;
	uint64_t seed = argc > 0 ? strtoull(argv[0], NULL, 0) : 1, x = seed, old;
	uint8_t buf[4096];
	int r;

	open_sys(&s, "FILL");
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(x >> 56);
	}
	r = cf_session_write(&s, s.map.off_rinfo, buf, sizeof(struct cf_rinfo_slot) * s.map.geo.max_instances);
	CHECK(r == 0, "write: %s", strerror(-r));
	/* durable (and in a duplexed pair's copy) once PERSISTed, over either transport */
	r = cf_session_persist(&s, s.map.off_rinfo, sizeof(struct cf_rinfo_slot) * s.map.geo.max_instances);
	CHECK(r == 0, "persist: %s", strerror(-r));
	for (uint32_t k = 0; k < 256; k++) {
		r = cf_session_cas(&s, lock_off(&s, k), 0, seed * 1000 + k, &old);
		CHECK(r == 0, "cas: %s", strerror(-r));
	}
	CHECK(cf_session_goodbye(&s) == 0, "goodbye");
	cf_session_close(&s);
	printf("OK fill\n");
	return 0;
}

/*
 * dump FILE [durable]: the console-visible image with the generation (and the
 * duplex words, cf_layout.h) zeroed;
 * prints the generation. "durable": only up to the lock table, which a
 * restart clears (docs/design.md, "Durability").
 */
static int cmd_dump(int argc, char **argv)
{
	struct cf_session s;
	static uint8_t chunk[CF_FRAME_MAX_PAYLOAD];
	uint64_t off, end, gen = 0;
	FILE *f;
	int r;

	CHECK(argc >= 1, "usage: dump FILE [durable]");
	open_console(&s);
	end = argc > 1 && !strcmp(argv[1], "durable") ? s.map.off_locks : s.map.off_logs;
	f = fopen(argv[0], "w");
	CHECK(f, "open %s", argv[0]);
	for (off = 0; off < end; off += sizeof(chunk)) {
		uint32_t n = (uint32_t)(end - off < sizeof(chunk) ? end - off : sizeof(chunk));
		r = cf_session_read(&s, off, chunk, n);
		CHECK(r == 0, "read at %" PRIu64 ": %s", off, strerror(-r));
		if (off == 0) {
			memcpy(&gen, chunk + offsetof(struct cf_header, generation), 8);
			memset(chunk + offsetof(struct cf_header, generation), 0, 8);
			/* the duplex words: a primary marks its secondary in sync, a takeover counts a term */
			memset(chunk + offsetof(struct cf_header, reserved) + CF_HDR_DUPLEX * 8, 0, 8);
			memset(chunk + offsetof(struct cf_header, reserved) + CF_HDR_TERM * 8, 0, 8);
		}
		CHECK(fwrite(chunk, 1, n, f) == n, "fwrite");
	}
	fclose(f);
	cf_session_close(&s);
	printf("%" PRIu64 "\n", gen);
	return 0;
}

/* dxwords: the header's duplex words as "insync|alone TERM" (cf_layout.h CF_HDR_DUPLEX, CF_HDR_TERM) */
static int cmd_dxwords(int argc, char **argv)
{
	struct cf_session s;
	uint64_t w[2];
	int r;

	open_console(&s);
	r = cf_session_read(&s, offsetof(struct cf_header, reserved) + CF_HDR_DUPLEX * 8, w, sizeof(w));
	CHECK(r == 0, "read: %s", strerror(-r));
	cf_session_close(&s);
	printf("%s %" PRIu64 "\n", w[0] == CF_DUPLEX_INSYNC ? "insync" : "alone", w[1]);
	return 0;
}

/* policy auto|operator: console POLICY_SET, then the header word */
static int cmd_policy(int argc, char **argv)
{
	struct cf_session s;
	struct cf_policy_msg m = {0};
	struct cf_status st;
	uint64_t w;
	int r;

	CHECK(argc >= 1, "usage: policy auto|operator|NUMBER");
	m.policy = !strcmp(argv[0], "auto") ? CF_POLICY_AUTO
		   : !strcmp(argv[0], "operator") ? CF_POLICY_OPERATOR : (uint32_t)atoi(argv[0]);
	open_console(&s);
	r = cf_session_rpc(&s, CF_CTRL_POLICY_SET, &m, sizeof(m), CF_CTRL_STATUS, &st, sizeof(st), 5000);
	CHECK(r == 0, "rpc: %s", strerror(-r));
	r = cf_session_read(&s, offsetof(struct cf_header, policy), &w, 8);
	CHECK(r == 0, "read");
	printf("%d %s policy=%" PRIu64 "\n", st.status, st.msg, w);
	cf_session_close(&s);
	return 0;
}

/* recover INST [ON]: console RECOVER; prints "STATUS SYS MSG" */
static int cmd_recover(int argc, char **argv)
{
	struct cf_session s;
	struct cf_recover m;
	struct cf_recover_r rr;
	int r;

	CHECK(argc >= 1, "usage: recover INST [ON]");
	memset(&m, 0, sizeof(m));
	memset(&rr, 0, sizeof(rr));
	strncpy(m.inst, argv[0], CF_NAME_MAX - 1);
	if (argc > 1)
		strncpy(m.on, argv[1], CF_NAME_MAX - 1);
	open_console(&s);
	r = cf_session_rpc(&s, CF_CTRL_RECOVER, &m, sizeof(m), CF_CTRL_RECOVER_R, &rr, sizeof(rr), 5000);
	CHECK(r == 0, "rpc: %s", strerror(-r));
	rr.msg[sizeof(rr.msg) - 1] = 0;
	printf("%d %u %s\n", rr.status, rr.sys, rr.msg);
	cf_session_close(&s);
	return 0;
}

/* orphan NAME INST: register INST under a wrong (future) epoch of our own system, then leave */
static int cmd_orphan(int argc, char **argv)
{
	struct cf_session s;
	struct cf_inst_info info;
	uint64_t w, old;
	int r;

	CHECK(argc >= 2, "usage: orphan NAME INST");
	open_sys(&s, argv[0]);
	r = cf_session_inst_open(&s, argv[1], &info);
	CHECK(r == 0, "inst open");
	CHECK(cf_session_read(&s, cf_inst_off(&s.map, info.index), &w, 8) == 0, "read");
	r = cf_session_cas(&s, cf_inst_off(&s.map, info.index), w,
			   cf_reg_active(s.sys, s.epoch + 7, cf_reg_incident(w)), &old);
	CHECK(r == 0 && old == w, "cas");
	CHECK(cf_session_goodbye(&s) == 0, "goodbye");
	cf_session_close(&s);
	printf("OK orphan\n");
	return 0;
}

/* readmit NAME: a second JOIN of the same name fences the first incarnation */
static int cmd_readmit(int argc, char **argv)
{
	struct cf_session a, b;
	uint64_t old;
	int r;

	CHECK(argc >= 1, "usage: readmit NAME");
	open_sys(&a, argv[0]);
	CHECK(cf_session_faa(&a, lock_off(&a, 20), 1, &old) == 0, "faa a");
	open_sys(&b, argv[0]);
	CHECK(b.sys == a.sys && b.epoch == a.epoch + 1, "new incarnation: sys %u/%u epoch %u/%u", a.sys, b.sys,
	      a.epoch, b.epoch);
	r = cf_session_faa(&a, lock_off(&a, 20), 1, &old);
	CHECK(r < 0, "the old incarnation can still operate (%d)", r);
	CHECK(a.dead < 0, "old session not marked dead");
	r = cf_session_faa(&b, lock_off(&b, 20), 1, &old);
	CHECK(r == 0 && old == 1, "new incarnation: r=%d old=%" PRIu64, r, old);
	CHECK(cf_session_goodbye(&b) == 0, "goodbye");
	cf_session_close(&a);
	cf_session_close(&b);
	printf("OK readmit %u -> %u\n", a.epoch, b.epoch);
	return 0;
}

/* The state word and failure cause of system sys, read by a console. */
static void sys_state(struct cf_session *con, uint32_t sys, uint32_t *state, uint32_t *cause)
{
	struct cf_sys_slot slot;
	int r = cf_session_read(con, cf_sys_off(&con->map, sys), &slot, sizeof(slot));

	CHECK(r == 0, "read system %u: %s", sys, strerror(-r));
	*state = cf_sysword_state(slot.state);
	*cause = slot.fail_cause;
}

/* Wait (bounded) for system sys to be FAILED; its cause. */
static uint32_t wait_sys_failed(struct cf_session *con, uint32_t sys)
{
	uint32_t st = 0, cause = 0;

	for (int i = 0; i < 500; i++) {
		sys_state(con, sys, &st, &cause);
		if (st == CF_SYS_FAILED)
			return cause;
		usleep(10000);
	}
	FAIL("system %u not FAILED after 5 s (state %u)", sys, st);
}

static void open_sentinel(struct cf_session *sn)
{
	int r = cf_session_open(sn, transport, addr, key, CF_ROLE_SYSTEM, connect_ms());

	CHECK(r == 0, "sentinel open: %s", strerror(-r));
}

/*
 * sentinel NAME1 NAME2: the sentinel's protocol (node/cf_sentinel.h).
 *   - SENTINEL needs the live incarnation's token and epoch (-EPERM);
 *   - DIED on a connection that is not a sentinel is refused, nobody fails;
 *   - a sentinel that closes is no failure;
 *   - a sentinel's DIED fails its system at once, cause "process exiting";
 *   - a sentinel that asks for anything else is a protocol violation of its system.
 */
static int cmd_sentinel(int argc, char **argv)
{
	struct cf_session a, b, sn, con;
	struct cf_status st;
	struct cf_empty e = {0};
	struct cf_inst_info info;
	uint32_t state, cause;
	uint64_t old;
	int r;

	CHECK(argc >= 2, "usage: sentinel NAME1 NAME2");
	open_sys(&a, argv[0]);
	open_console(&con);

	open_sentinel(&sn);
	r = cf_session_sentinel(&sn, a.sys, a.epoch, a.token ^ 1);
	CHECK(r == -EPERM, "SENTINEL with another token: %d, not -EPERM", r);
	r = cf_session_sentinel(&sn, a.sys, a.epoch + 1, a.token);
	CHECK(r == -EPERM, "SENTINEL of another epoch: %d, not -EPERM", r);
	r = cf_session_sentinel(&sn, a.sys, a.epoch, a.token);
	CHECK(r == 0, "SENTINEL: %s", strerror(-r));

	r = cf_session_rpc(&a, CF_CTRL_DIED, &e, sizeof(e), CF_CTRL_STATUS, &st, sizeof(st), 5000);
	CHECK(r == 0 && st.status == -EPERM, "DIED on the JOIN connection: r=%d status=%d, not -EPERM", r, st.status);
	CHECK(cf_session_faa(&a, lock_off(&a, 21), 1, &old) == 0, "the system after a refused DIED");
	sys_state(&con, a.sys, &state, &cause);
	CHECK(state == CF_SYS_ACTIVE, "a refused DIED failed the system (state %u)", state);

	/* no wait for a non-event: a close taken for a failure would make the CF log SYSA's failure as
	 * "connection lost", not the "process exiting" below (test_sentinel_proto.sh checks which) */
	cf_session_close(&sn);
	CHECK(cf_session_faa(&a, lock_off(&a, 21), 1, &old) == 0, "the system after its sentinel closed");
	sys_state(&con, a.sys, &state, &cause);
	CHECK(state == CF_SYS_ACTIVE, "a sentinel's close failed its system (state %u, cause %u)", state, cause);

	open_sentinel(&sn);
	CHECK(cf_session_sentinel(&sn, a.sys, a.epoch, a.token) == 0, "second SENTINEL");
	r = cf_session_died(&sn, 5000);
	CHECK(r == 0 || cf_conn_lost(r), "DIED: %s", strerror(-r));
	cause = wait_sys_failed(&con, a.sys);
	CHECK(cause == CF_FAIL_EXITING, "cause %u (%s), not process exiting", cause, cf_fail_cause_str(cause));
	r = cf_session_faa(&a, lock_off(&a, 21), 1, &old);
	CHECK(r < 0, "the system still operates after its sentinel's DIED");
	cf_session_close(&sn);
	cf_session_close(&a);

	open_sys(&b, argv[1]);
	open_sentinel(&sn);
	CHECK(cf_session_sentinel(&sn, b.sys, b.epoch, b.token) == 0, "SENTINEL of %s", argv[1]);
	r = cf_session_inst_open(&sn, "NTSX", &info);
	CHECK(r < 0, "a sentinel opened an instance");
	cause = wait_sys_failed(&con, b.sys);
	CHECK(cause == CF_FAIL_PROTOCOL, "cause %u (%s), not a protocol violation", cause, cf_fail_cause_str(cause));
	cf_session_close(&sn);
	cf_session_close(&b);
	cf_session_close(&con);
	printf("OK sentinel\n");
	return 0;
}

/* goodbye-active NAME INST: a GOODBYE while owning an ACTIVE instance is a failure */
static int cmd_goodbye_active(int argc, char **argv)
{
	struct cf_session s;
	int r;

	CHECK(argc >= 2, "usage: goodbye-active NAME INST");
	open_sys(&s, argv[0]);
	take_inst(&s, argv[1], 1);
	r = cf_session_goodbye(&s);
	CHECK(r < 0, "goodbye with an ACTIVE instance accepted");
	cf_session_close(&s);
	printf("OK goodbye-active (%s)\n", strerror(-r));
	return 0;
}

/* the instance slot of INDEX, read through a console */
static struct cf_inst_slot inst_slot_of(uint32_t index)
{
	struct cf_session con;
	struct cf_inst_slot slot;
	int r;

	open_console(&con);
	r = cf_session_read(&con, cf_inst_off(&con.map, index), &slot, sizeof(slot));
	CHECK(r == 0, "read instance slot: %s", strerror(-r));
	cf_session_close(&con);
	return slot;
}

/* a system fails by saying GOODBYE while it owns an ACTIVE instance */
static void fail_by_goodbye(struct cf_session *s)
{
	CHECK(cf_session_goodbye(s) < 0, "goodbye with an ACTIVE instance accepted");
	cf_session_close(s);
}

/*
 * fail-chain P INST: whom the next counterpart must fence (cf_layout.h,
 * fail_open). P1 owns INST and fails: the record names P1, open. P2 registers
 * as counterpart: its unregister before any attach is refused; it fails
 * before attaching: the record still names P1 (carried to the new incident).
 * P3 registers and attaches (its fence holds): the record closes; P3 fails:
 * now the record names P3. P4 attaches and unregisters.
 */
static int cmd_fail_chain(int argc, char **argv)
{
	struct cf_session a, b, c, d;
	struct cf_inst_slot is;
	char n[4][CF_NAME_MAX], msg[160];
	uint32_t inst, sys_a, sys_c;
	int r;

	CHECK(argc >= 2, "usage: fail-chain PREFIX INST");
	for (int k = 0; k < 4; k++)
		snprintf(n[k], sizeof(n[k]), "%.10s%d", argv[0], k + 1);
	open_sys(&a, n[0]);
	sys_a = a.sys;
	inst = take_inst(&a, argv[1], 1);
	fail_by_goodbye(&a);
	is = inst_slot_of(inst);
	CHECK(cf_reg_state(is.reg) == CF_REG_FAILED && cf_reg_incident(is.reg) == 1, "after %s failed: %#" PRIx64,
	      n[0], is.reg);
	CHECK(is.fail_sys == sys_a && is.fail_incident == 1 && is.fail_open == 1,
	      "record after %s failed: sys %u incident %" PRIu64 " open %u", n[0], is.fail_sys, is.fail_incident,
	      is.fail_open);

	open_sys(&b, n[1]);
	take_inst(&b, argv[1], 0);
	r = cf_session_inst_unreg(&b, inst, msg, sizeof(msg));
	CHECK(r == -EBUSY, "unregister before any attach: %d (%s), not refused", r, msg);
	fail_by_goodbye(&b);
	is = inst_slot_of(inst);
	CHECK(cf_reg_state(is.reg) == CF_REG_FAILED && cf_reg_incident(is.reg) == 2, "after %s failed: %#" PRIx64,
	      n[1], is.reg);
	CHECK(is.fail_sys == sys_a && is.fail_incident == 2 && is.fail_open == 1,
	      "a counterpart died before its attach: the record names sys %u (incident %" PRIu64
	      ", open %u), not %s (sys %u)",
	      is.fail_sys, is.fail_incident, is.fail_open, n[0], sys_a);

	open_sys(&c, n[2]);
	sys_c = c.sys;
	take_inst(&c, argv[1], 1);
	is = inst_slot_of(inst);
	CHECK(is.fail_open == 0 && is.fail_sys == sys_a, "after %s attached: sys %u open %u", n[2], is.fail_sys,
	      is.fail_open);
	fail_by_goodbye(&c);
	is = inst_slot_of(inst);
	CHECK(is.fail_sys == sys_c && is.fail_incident == 3 && is.fail_open == 1,
	      "a counterpart died after its attach: the record names sys %u (incident %" PRIu64 ", open %u), not %s",
	      is.fail_sys, is.fail_incident, is.fail_open, n[2]);

	open_sys(&d, n[3]);
	take_inst(&d, argv[1], 1);
	r = cf_session_inst_unreg(&d, inst, msg, sizeof(msg));
	CHECK(r == 0, "unregister after attach: %s (%s)", strerror(-r), msg);
	CHECK(cf_session_goodbye(&d) == 0, "goodbye");
	cf_session_close(&d);
	printf("OK fail-chain\n");
	return 0;
}

/*
 * fence-barrier NAME: incarnation A floods FAA requests it never reads the
 * answers of (so the server holds many of them unread); a re-admission of
 * NAME fences A. Once B's JOIN is answered, the word must not move again:
 * the fence dropped everything A had queued.
 */
struct flood {
	int fd;
	uint8_t *buf;
	size_t len;
};

static void *flood_main(void *p)
{
	struct flood *f = p;
	size_t off = 0;

	while (off < f->len) {
		struct pollfd pfd = {.fd = f->fd, .events = POLLOUT};
		ssize_t n = send(f->fd, f->buf + off, f->len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			break; /* fenced */
		if (poll(&pfd, 1, 10000) <= 0)
			break;
	}
	return NULL;
}

static int cmd_fence_barrier(int argc, char **argv)
{
	static struct flood f;
	static struct raw_sess a;
	struct cf_session b;
	struct cf_joined ja;
	uint64_t v = 0, v1, v2, t0, off;
	const size_t n = 400000,
		     fl = sizeof(struct cf_frame_hdr) + sizeof(struct cf_req_atomic) + CF_FRAME_TAG_LEN;
	pthread_t th;
	int r;

	CHECK(argc >= 1, "usage: fence-barrier NAME");
	CHECK(!strcmp(transport, "tcp"), "tcp only");
	/* A speaks raw frames (sealed by hand, cf_auth.h "Frame integrity"), so it can flood */
	rs_join(&a, argv[0], &ja);
	f.fd = a.fd;
	f.len = n * fl;
	f.buf = malloc(f.len);
	CHECK(f.buf, "malloc");
	{
		struct cf_session m;
		open_console(&m);
		off = cf_lock_off(&m.map, 30);
		cf_session_close(&m);
	}
	for (size_t i = 0; i < n; i++)
		CHECK(faa_frame(&a, f.buf + i * fl, &ja, off, 1) == fl, "frame size");
	CHECK(pthread_create(&th, NULL, flood_main, &f) == 0, "thread");
	open_console(&b);
	t0 = cf_mono_ns();
	do {
		CHECK(cf_session_read(&b, off, &v, 8) == 0, "read");
		CHECK(cf_mono_ns() - t0 < 10000000000ull, "flood never executed");
	} while (v < 1000);
	cf_session_close(&b);
	open_sys(&b, argv[0]); /* re-admission: A is fenced before this returns */
	CHECK(b.epoch == ja.epoch + 1, "epoch");
	r = cf_session_read(&b, off, &v1, 8);
	CHECK(r == 0, "read v1");
	usleep(300000);
	r = cf_session_read(&b, off, &v2, 8);
	CHECK(r == 0, "read v2");
	CHECK(v1 == v2, "the fenced incarnation's queued requests still executed: %" PRIu64 " -> %" PRIu64, v1, v2);
	CHECK(v1 < n, "vacuous: all %zu requests executed before the fence", n);
	pthread_join(th, NULL);
	CHECK(cf_session_goodbye(&b) == 0, "goodbye");
	cf_session_close(&b);
	close(a.fd);
	free(f.buf);
	printf("OK fence-barrier: %" PRIu64 " of %zu executed before the fence, none after\n", v1, n);
	return 0;
}

/*
 * fence-stream FLOODER CHECKER silence|readmit: the fence as a barrier end to
 * end, through the session API, over either transport (tcp or verbs).
 *
 * FLOODER joins, registers and attaches an instance, opens a second (attached)
 * connection and a heartbeat connection, and keeps a stream of one-sided ops
 * in flight on both of its workload connections: FAAs on one shared lock word,
 * a chain of CASes on a word per connection, WRITEs (awaited and unsignaled)
 * to a block of the recovery-info region, READs of all of these. CHECKER is
 * another live system. Then the CF fences FLOODER:
 *   silence  its heartbeat stops and the CF's sweep declares it failed after T;
 *   readmit  a second JOIN of its name (cf_member.c fails the old incarnation
 *            before it answers the JOIN).
 * Once the fence has completed (the system word reads FAILED, or the JOIN was
 * answered), CHECKER puts a sentinel into every word and block the stream
 * touches, the FAA and CAS words with a CAS from the value it just read (so a
 * word that moved in between is caught too). Nothing the fenced incarnation
 * posted may land from then on:
 *   - the stream ends with a connection error on both workload connections,
 *     and none of its answers shows a sentinel (a READ, FAA or CAS that
 *     executed after the fence would return one);
 *   - ops posted after the fence fail and change nothing: a CAS on every old
 *     connection, and the old rkeys used from fresh connections (on verbs that
 *     is what proves the grants were invalidated: an MR's rkey is valid on any
 *     queue pair of the CF's protection domain); a CONN_ATTACH with the old
 *     token is refused;
 *   - a console then reads every sentinel unchanged.
 * Not seen: an op landing between the fence and the sentinels; the transport
 * races that instant itself in cf_verbs_smoke (the word read inside the loop
 * right after fence()). Exits 1 with the first violation.
 */
#define FS_CONNS 2u		      /* workload connections that stream */
#define FS_SENT_F 0x5e47000000000000ull /* FAA word sentinel: far above any count the stream reaches */
#define FS_SENT_C 0x5e4c000000000000ull /* CAS chain sentinel */
#define FS_SENT_W 0x5e57000000000000ull /* WRITE block sentinel (every word) */
#define FS_BLOCK 512u		      /* bytes of a WRITE block */
#define FS_UNSIG 16u		      /* unsignaled 8-byte WRITEs posted ahead of each batch */
#define FS_ROUNDS 8u		      /* per batch: this many FAAs, chained CASes and 8-byte READs */

/* one batch: the rounds, 2 block WRITEs, 2 block READs, the READ of the CAS word */
_Static_assert(3 * FS_ROUNDS + 5 <= CF_BATCH_DEPTH, "a stream batch is posted at once");

struct fs_stream {
	struct cf_session *s;
	unsigned idx;
	uint64_t lf, lc, blk; /* image offsets: FAA word, CAS word, WRITE block */
	uint64_t deadline_ns;
	uint64_t chain;	      /* the CAS chain's value */
	uint64_t batches, faa_posted, faa_done, ops_done, lost;
	uint64_t end_ns;
	int err;	      /* the error that ended the stream (0: the deadline) */
	char bad[200];	      /* a violation seen from this side */
	int done;
};

static void fs_violation(struct fs_stream *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fs_violation(struct fs_stream *st, const char *fmt, ...)
{
	va_list ap;

	if (st->bad[0])
		return;
	va_start(ap, fmt);
	vsnprintf(st->bad, sizeof(st->bad), fmt, ap);
	va_end(ap);
}

/* One completed op of the stream: its answer must predate every sentinel. */
static void fs_check_op(struct fs_stream *st, const struct cf_batch_op *o)
{
	uint64_t v = o->op == CF_OP_READ && o->len == 8 ? *(const uint64_t *)o->buf : o->value;
	const uint64_t *b = o->buf;

	st->ops_done++;
	switch (o->op) {
	case CF_OP_FAA:
		st->faa_done++;
		if (v >= FS_SENT_F)
			fs_violation(st, "an FAA executed after the fence: it found %#" PRIx64, v);
		return;
	case CF_OP_CAS:
		if (v >= FS_SENT_C)
			fs_violation(st, "a CAS executed after the fence: it found %#" PRIx64, v);
		else if (v != o->compare)
			fs_violation(st, "CAS chain broken: expected %" PRIu64 ", found %" PRIu64, o->compare, v);
		return;
	case CF_OP_READ:
		if (o->len == 8 && v >= FS_SENT_F) /* both words' sentinels are above FS_SENT_F */
			fs_violation(st, "a READ executed after the fence: it returned %#" PRIx64, v);
		for (unsigned k = 0; o->len == FS_BLOCK && k < FS_BLOCK / 8; k++)
			if (b[k] == FS_SENT_W) {
				fs_violation(st, "a READ of the block executed after the fence: word %u is the sentinel",
					     k);
				break;
			}
		return;
	}
}

static void *fs_stream_main(void *p)
{
	struct fs_stream *st = p;
	static _Thread_local uint64_t wblk[FS_BLOCK / 8], rblk[2][FS_BLOCK / 8];
	struct cf_batch_op ops[CF_BATCH_DEPTH];
	uint64_t rv[FS_ROUNDS + 1], seq = 0;
	int r = 0;

	while (cf_mono_ns() < st->deadline_ns) {
		size_t n = 0;

		seq++;
		/* ahead of the batch: unsignaled WRITEs, retired by the batch's completions (RC order) */
		for (unsigned i = 0; i < FS_UNSIG && r >= 0; i++) {
			uint64_t v = seq << 8 | i;
			r = cf_session_post_write(st->s, st->blk + 8, &v, 8, CF_POST_UNSIGNALED);
		}
		if (r < 0)
			break;
		for (unsigned i = 0; i < FS_BLOCK / 8; i++)
			wblk[i] = seq << 8 | st->idx;
		/* one batch: the kinds interleaved, so every kind is in flight at any moment */
		for (unsigned i = 0; i < FS_ROUNDS; i++) {
			ops[n++] = (struct cf_batch_op){.op = CF_OP_FAA, .off = st->lf, .compare = 1};
			ops[n++] = (struct cf_batch_op){.op = CF_OP_CAS, .off = st->lc, .compare = st->chain + i,
							.swap = st->chain + i + 1};
			ops[n++] = (struct cf_batch_op){.op = CF_OP_READ, .off = st->lf, .buf = &rv[i], .len = 8};
			if (i == 2 || i == 5)
				ops[n++] = (struct cf_batch_op){.op = CF_OP_WRITE, .off = st->blk, .buf = wblk,
								.len = FS_BLOCK};
			if (i == 3 || i == 6)
				ops[n++] = (struct cf_batch_op){.op = CF_OP_READ, .off = st->blk,
								.buf = rblk[i == 6], .len = FS_BLOCK};
		}
		ops[n++] = (struct cf_batch_op){.op = CF_OP_READ, .off = st->lc, .buf = &rv[FS_ROUNDS], .len = 8};
		st->faa_posted += FS_ROUNDS;
		r = cf_session_batch(st->s, ops, n);
		for (size_t i = 0; i < n; i++) {
			if (ops[i].status == 1)
				st->lost++; /* posted, no completion: the connection died under it */
			else if (ops[i].status < 0 && !r)
				r = ops[i].status;
			else if (ops[i].status == 0)
				fs_check_op(st, &ops[i]);
		}
		if (r < 0 || st->bad[0])
			break;
		st->chain += FS_ROUNDS;
		__atomic_store_n(&st->batches, st->batches + 1, __ATOMIC_RELEASE);
	}
	st->err = r < 0 ? r : 0;
	st->end_ns = cf_mono_ns();
	__atomic_store_n(&st->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* The sys word of system `sys`, read by session s. */
static uint64_t fs_sysword(struct cf_session *s, uint32_t sys)
{
	uint64_t w;
	int r = cf_session_read(s, cf_sys_off(&s->map, sys), &w, 8);

	CHECK(r == 0, "read system word: %s", strerror(-r));
	return w;
}

/*
 * One op with a fenced connection's grant, on conn c (the fenced connection
 * itself, or a fresh one). Returns 1 if it executed (a successful completion),
 * else 0; *how says what happened.
 */
static int fs_probe(struct cf_session *c, int op, const struct cf_grant *g, uint64_t off, uint64_t arg,
		    uint64_t *val, char *how, size_t howlen)
{
	static uint8_t buf[64];
	uint64_t a = g->addr + (off - g->image_off), id = 0xfe9ce000 + (uint64_t)op;
	struct cf_wc wc;
	int r = 0, n;

	memcpy(buf, &arg, 8);
	switch (op) {
	case CF_OP_READ: r = c->ops->post_read(c->conn, buf, 8, a, g->rkey, id, 0); break;
	case CF_OP_WRITE: r = c->ops->post_write(c->conn, buf, 8, a, g->rkey, id, 0); break;
	case CF_OP_CAS: r = c->ops->post_cas(c->conn, a, g->rkey, FS_SENT_F, arg, id, 0); break;
	}
	if (r < 0) {
		snprintf(how, howlen, "refused at post (%s)", strerror(-r));
		return 0;
	}
	/* bounded: a verbs connection whose peer is gone may take its retries to report */
	n = c->ops->poll(c->conn, &wc, 1, 30000);
	if (n < 0) {
		snprintf(how, howlen, "connection dead (%s)", strerror(-n));
		return 0;
	}
	if (n == 0) {
		snprintf(how, howlen, "no completion within 30 s");
		return 0;
	}
	if (wc.status < 0) {
		snprintf(how, howlen, "failed (%s)", strerror(-wc.status));
		return 0;
	}
	if (val)
		*val = wc.value;
	snprintf(how, howlen, "EXECUTED (value %#" PRIx64 ")", wc.value);
	return 1;
}

static void fs_open_raw(struct cf_session *s)
{
	int r = cf_session_open(s, transport, addr, key, CF_ROLE_SYSTEM, connect_ms());

	CHECK(r == 0, "open a fresh connection: %s", strerror(-r));
}

static int cmd_fence_stream(int argc, char **argv)
{
	static struct hb_arg chb, fhb;
	static struct cf_session fa, fb, fnew, con;
	static struct fs_stream st[FS_CONNS];
	static uint64_t blk[FS_BLOCK / 8];
	struct cf_session chk, *streams[FS_CONNS] = {&fa, &fb}, *old[3] = {&fa, &fb, &fhb.s};
	const char *mode;
	char iname[CF_NAME_MAX], how[96];
	uint64_t lf, lc[FS_CONNS], bbase, v1, old_v, w, t0, t_trigger, t_fenced, bound_ns, faa_posted = 0, faa_done = 0;
	uint32_t fsys, fepoch, hb_ms;
	pthread_t cth, fth, sth[FS_CONNS];
	int readmit, r;

	CHECK(argc >= 3, "usage: fence-stream FLOODER CHECKER silence|readmit");
	mode = argv[2];
	CHECK(!strcmp(mode, "silence") || !strcmp(mode, "readmit"), "mode: silence or readmit");
	readmit = !strcmp(mode, "readmit");
	CHECK(strlen(argv[0]) + 2 < CF_NAME_MAX, "flooder name too long");
	snprintf(iname, sizeof(iname), "%s-I", argv[0]);

	/* CHECKER: a live system with its own heartbeat connection */
	open_sys(&chk, argv[1]);
	hb_ms = (uint32_t)(chk.welcome.hb_interval_ns / 1000000u);
	chb.interval_ms = hb_ms ? (int)hb_ms : 1;
	r = cf_session_open(&chb.s, transport, addr, key, CF_ROLE_SYSTEM, connect_ms());
	CHECK(r == 0, "checker hb open: %s", strerror(-r));
	r = cf_session_attach(&chb.s, chk.sys, chk.epoch, chk.token);
	CHECK(r == 0, "checker hb attach: %s", strerror(-r));
	CHECK(pthread_create(&cth, NULL, hb_thread, &chb) == 0, "thread");

	/* FLOODER: an instance of its own, a second connection, a heartbeat connection */
	open_sys(&fa, argv[0]);
	fsys = fa.sys;
	fepoch = fa.epoch;
	take_inst(&fa, iname, 1);
	r = cf_session_open(&fb, transport, addr, key, CF_ROLE_SYSTEM, connect_ms());
	CHECK(r == 0, "flooder second connection: %s", strerror(-r));
	r = cf_session_attach(&fb, fsys, fepoch, fa.token);
	CHECK(r == 0, "flooder attach: %s", strerror(-r));
	fhb.interval_ms = chb.interval_ms;
	r = cf_session_open(&fhb.s, transport, addr, key, CF_ROLE_SYSTEM, connect_ms());
	CHECK(r == 0, "flooder hb open: %s", strerror(-r));
	r = cf_session_attach(&fhb.s, fsys, fepoch, fa.token);
	CHECK(r == 0, "flooder hb attach: %s", strerror(-r));
	CHECK(pthread_create(&fth, NULL, hb_thread, &fhb) == 0, "thread");

	/* the words: separate classes and blocks per mode, so both modes can share one CF */
	lf = cf_lock_off(&fa.map, readmit ? 50 : 40);
	bbase = fa.map.off_rinfo + (readmit ? 3072 : 2048); /* clear of the slots of registered instances */
	CHECK(bbase + FS_CONNS * FS_BLOCK <= fa.map.off_rinfo + (uint64_t)fa.map.geo.max_instances * 128u,
	      "recovery-info region too small (max-instances %u)", fa.map.geo.max_instances);
	bound_ns = cf_mono_ns() + 4 * fa.welcome.hb_timeout_ns + 120000000000ull;
	for (unsigned i = 0; i < FS_CONNS; i++) {
		uint64_t c0;
		lc[i] = cf_lock_off(&fa.map, (readmit ? 51 : 41) + i);
		CHECK(cf_session_read(&chk, lc[i], &c0, 8) == 0, "read the CAS word");
		st[i] = (struct fs_stream){.s = streams[i], .idx = i, .lf = lf, .lc = lc[i],
					   .blk = bbase + i * FS_BLOCK, .deadline_ns = bound_ns, .chain = c0};
		CHECK(pthread_create(&sth[i], NULL, fs_stream_main, &st[i]) == 0, "thread");
	}

	/* the stream lands: the FAA word moves and every connection completes batches */
	t0 = cf_mono_ns();
	for (;;) {
		int ready = 1;
		CHECK(cf_session_read(&chk, lf, &v1, 8) == 0, "read");
		for (unsigned i = 0; i < FS_CONNS; i++) {
			CHECK(!__atomic_load_n(&st[i].done, __ATOMIC_ACQUIRE), "stream %u ended before the fence: %s%s",
			      i, st[i].err ? strerror(-st[i].err) : "deadline", st[i].bad);
			ready &= __atomic_load_n(&st[i].batches, __ATOMIC_ACQUIRE) >= 20;
		}
		if (ready && v1 >= 2000)
			break;
		CHECK(cf_mono_ns() - t0 < 120000000000ull, "the stream does not land: FAA word %" PRIu64, v1);
		usleep(10000);
	}
	fprintf(stderr, "stream running: FAA word %" PRIu64 ", batches %" PRIu64 "/%" PRIu64 "; fencing (%s)\n", v1,
		st[0].batches, st[1].batches, mode);

	/* the fence */
	w = fs_sysword(&chk, fsys);
	CHECK(cf_sysword_state(w) == CF_SYS_ACTIVE && cf_sysword_epoch(w) == fepoch,
	      "flooder failed before the trigger (heartbeat starved?): %s epoch %u",
	      cf_sys_state_str(cf_sysword_state(w)), cf_sysword_epoch(w));
	t_trigger = cf_mono_ns();
	if (readmit) {
		open_sys(&fnew, argv[0]); /* the CF fails (and fences) the old incarnation before it answers */
		CHECK(fnew.sys == fsys && fnew.epoch == fepoch + 1, "re-admission: sys %u epoch %u", fnew.sys,
		      fnew.epoch);
	} else {
		__atomic_store_n(&fhb.stop, 1, __ATOMIC_RELEASE);
		for (;;) {
			/* FAILED is written (step 2) only after every connection was fenced (step 1) */
			w = fs_sysword(&chk, fsys);
			if (cf_sysword_state(w) == CF_SYS_FAILED)
				break;
			CHECK(cf_sysword_state(w) == CF_SYS_ACTIVE && cf_sysword_epoch(w) == fepoch,
			      "flooder's system word: %s epoch %u", cf_sys_state_str(cf_sysword_state(w)),
			      cf_sysword_epoch(w));
			CHECK(cf_mono_ns() < bound_ns, "the silent flooder was never declared failed");
			usleep(1000);
		}
	}
	t_fenced = cf_mono_ns();

	/* sentinels, at once: a CAS from the value just read, so a move in between is caught */
	CHECK(cf_session_read(&chk, lf, &v1, 8) == 0, "read");
	r = cf_session_cas(&chk, lf, v1, FS_SENT_F, &old_v);
	CHECK(r == 0, "sentinel CAS: %s", strerror(-r));
	CHECK(old_v == v1, "VIOLATION: the FAA word moved after the fence completed: %" PRIu64 " -> %" PRIu64, v1,
	      old_v);
	for (unsigned i = 0; i < FS_CONNS; i++) {
		uint64_t c1;
		CHECK(cf_session_read(&chk, lc[i], &c1, 8) == 0, "read");
		r = cf_session_cas(&chk, lc[i], c1, FS_SENT_C, &old_v);
		CHECK(r == 0, "sentinel CAS: %s", strerror(-r));
		CHECK(old_v == c1, "VIOLATION: CAS word %u moved after the fence completed: %" PRIu64 " -> %" PRIu64, i,
		      c1, old_v);
		for (unsigned k = 0; k < FS_BLOCK / 8; k++)
			blk[k] = FS_SENT_W;
		r = cf_session_write(&chk, st[i].blk, blk, FS_BLOCK);
		CHECK(r == 0, "sentinel WRITE: %s", strerror(-r));
	}

	/* the stream must end by the fence (bounded: a broken fence lets it run on into the sentinels) */
	for (unsigned i = 0; i < FS_CONNS; i++) {
		while (!__atomic_load_n(&st[i].done, __ATOMIC_ACQUIRE)) {
			CHECK(cf_mono_ns() < bound_ns, "stream %u still runs %.1f s after the fence: its connection "
						       "was not fenced",
			      i, (cf_mono_ns() - t_fenced) / 1e9);
			usleep(10000);
		}
		pthread_join(sth[i], NULL);
		CHECK(!st[i].bad[0], "VIOLATION on stream %u: %s", i, st[i].bad);
		CHECK(st[i].err, "stream %u ran into its deadline instead of the fence", i);
		CHECK(st[i].end_ns >= t_trigger, "stream %u ended before the fence was triggered: %s", i,
		      strerror(-st[i].err));
		CHECK(streams[i]->dead, "stream %u ended by an op error (%s), its connection alive", i,
		      strerror(-st[i].err));
		faa_posted += st[i].faa_posted;
		faa_done += st[i].faa_done;
	}
	/* the flooder's heartbeat thread is done with its connection (silent, or fenced) before it is probed */
	__atomic_store_n(&fhb.stop, 1, __ATOMIC_RELEASE);
	pthread_join(fth, NULL);
	/* what landed before the fence is bounded by what was posted and what completed */
	CHECK(faa_done <= v1 && v1 <= faa_posted,
	      "FAA word %" PRIu64 " outside [completed %" PRIu64 ", posted %" PRIu64 "]", v1, faa_done, faa_posted);

	/* ops posted after the fence: on each old connection ... */
	for (unsigned i = 0; i < 3; i++) {
		const struct cf_grant *lg = grant_of(old[i], CF_RGN_LOCKS);
		int ex = fs_probe(old[i], CF_OP_CAS, lg, lf, 1, NULL, how, sizeof(how));
		fprintf(stderr, "CAS on fenced connection %u: %s\n", i, how);
		CHECK(!ex, "VIOLATION: a CAS posted on fenced connection %u after the fence executed: %s", i, how);
	}
	/* ... and with the old rkeys from fresh connections (each probe its own: on verbs a refusal ends it) */
	{
		struct {
			struct cf_session *from;
			uint32_t region;
			int op;
			uint64_t off;
		} pr[] = {
			{&fa, CF_RGN_LOCKS, CF_OP_CAS, lf},		 {&fb, CF_RGN_LOCKS, CF_OP_CAS, lf},
			{&fhb.s, CF_RGN_LOCKS, CF_OP_CAS, lf},	 {&fa, CF_RGN_RINFO, CF_OP_WRITE, st[0].blk},
			{&fb, CF_RGN_RINFO, CF_OP_WRITE, st[1].blk}, {&fa, CF_RGN_RINFO, CF_OP_READ, st[0].blk},
		};
		struct cf_session fresh;

		fs_open_raw(&fresh);
		r = cf_session_attach(&fresh, fsys, fepoch, fa.token);
		CHECK(r < 0, "VIOLATION: CONN_ATTACH with the fenced incarnation's token accepted");
		fprintf(stderr, "CONN_ATTACH with the old token: refused (%s)\n", strerror(-r));
		cf_session_close(&fresh);
		for (size_t i = 0; i < CF_ARRAY_SIZE(pr); i++) {
			uint64_t val = 0;
			int ex;
			fs_open_raw(&fresh);
			ex = fs_probe(&fresh, pr[i].op, grant_of(pr[i].from, pr[i].region), pr[i].off, 2, &val, how,
				      sizeof(how));
			fprintf(stderr, "%s with an old rkey from a fresh connection: %s\n",
				pr[i].op == CF_OP_CAS ? "CAS" : pr[i].op == CF_OP_WRITE ? "WRITE" : "READ", how);
			CHECK(!ex, "VIOLATION: the fenced incarnation's rkey still works: %s %s",
			      pr[i].op == CF_OP_CAS ? "CAS" : pr[i].op == CF_OP_WRITE ? "WRITE" : "READ", how);
			cf_session_close(&fresh);
		}
	}

	/* the CF's image: every sentinel unchanged */
	open_console(&con);
	CHECK(cf_session_read(&con, lf, &w, 8) == 0, "console read");
	CHECK(w == FS_SENT_F, "VIOLATION: the FAA word is %#" PRIx64 " after the fence, not the sentinel", w);
	for (unsigned i = 0; i < FS_CONNS; i++) {
		CHECK(cf_session_read(&con, lc[i], &w, 8) == 0, "console read");
		CHECK(w == FS_SENT_C, "VIOLATION: CAS word %u is %#" PRIx64 " after the fence, not the sentinel", i, w);
		CHECK(cf_session_read(&con, st[i].blk, blk, FS_BLOCK) == 0, "console read");
		for (unsigned k = 0; k < FS_BLOCK / 8; k++)
			CHECK(blk[k] == FS_SENT_W, "VIOLATION: block %u word %u is %#" PRIx64 " after the fence", i, k,
			      blk[k]);
	}
	w = fs_sysword(&con, fsys);
	if (readmit)
		CHECK(cf_sysword_state(w) == CF_SYS_ACTIVE && cf_sysword_epoch(w) == fepoch + 1,
		      "flooder's system word %s epoch %u", cf_sys_state_str(cf_sysword_state(w)), cf_sysword_epoch(w));
	else
		CHECK(cf_sysword_state(w) == CF_SYS_FAILED && cf_sysword_epoch(w) == fepoch,
		      "flooder's system word %s epoch %u", cf_sys_state_str(cf_sysword_state(w)), cf_sysword_epoch(w));
	cf_session_close(&con);

	printf("OK fence-stream %s: %" PRIu64 " FAAs landed before the fence (%" PRIu64 " completed, %" PRIu64
	       " posted); fence seen %.0f ms after the trigger",
	       mode, v1, faa_done, faa_posted, (t_fenced - t_trigger) / 1e6);
	for (unsigned i = 0; i < FS_CONNS; i++)
		printf("; stream %u: %" PRIu64 " batches, %" PRIu64 " ops done, %" PRIu64
		       " in flight lost, ended by %s",
		       i, st[i].batches, st[i].ops_done, st[i].lost, strerror(-st[i].err));
	printf("\n");
	if (readmit) {
		CHECK(cf_session_goodbye(&fnew) == 0, "goodbye");
		cf_session_close(&fnew);
	}
	CHECK(cf_session_goodbye(&chk) == 0, "goodbye checker");
	pthread_join(cth, NULL);
	cf_session_close(&chk);
	for (unsigned i = 0; i < 3; i++)
		cf_session_close(old[i]);
	return 0;
}

/* ---------------- persist ---------------- */

static char persist_msg[120];

/* One raw PERSIST request (whatever the transport): the CF's status, its words in persist_msg. */
static int persist_raw(struct cf_session *s, uint64_t off, uint64_t len)
{
	struct cf_persist_msg p = {.offset = off, .length = len};
	struct cf_status st;
	int r;

	memset(&st, 0, sizeof(st));
	r = cf_session_rpc(s, CF_CTRL_PERSIST, &p, sizeof(p), CF_CTRL_STATUS, &st, sizeof(st), 5000);
	st.msg[sizeof(st.msg) - 1] = 0;
	snprintf(persist_msg, sizeof(persist_msg), "%s", st.msg);
	return r < 0 ? r : st.status;
}

/*
 * persist NAME durable|volatile: the JOINED flag says what the CF is; a
 * PERSIST inside the LOG grant is accepted; every range outside this
 * connection's write grants, empty, or wrapping is refused with -EINVAL and
 * the connection keeps serving; after unregister the log range is refused.
 * Prints "OK persist N" with N the accepted requests (the CF counts them).
 */
static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int cmd_persist(int argc, char **argv)
{
	struct cf_session s, other;
	uint64_t lo, ll, v;
	uint32_t inst, inst2;
	char msg[128];
	int r, ok = 0;

	CHECK(argc >= 2, "usage: persist NAME durable|volatile");
	open_sys(&s, argv[0]);
	CHECK(!!(s.cf_flags & CF_JOINED_DURABLE) == !strcmp(argv[1], "durable"), "JOINED flags %#x, expected %s",
	      s.cf_flags, argv[1]);
	CHECK(cf_session_persist_needed(&s) == !strcmp(argv[1], "durable"),
	      "persist_needed wrong for %s over %s", argv[1], transport);
	inst = take_inst(&s, "PSINST", 1);
	lo = cf_log_off(&s.map, inst);
	ll = s.map.geo.log_size;
	/* inside the write grant: accepted (the whole log, one record, the last byte) */
	r = persist_raw(&s, lo, ll);
	CHECK(r == 0, "whole log: %s", strerror(-r));
	r = persist_raw(&s, lo + 64, 128);
	CHECK(r == 0, "one record: %s", strerror(-r));
	r = persist_raw(&s, lo + ll - 1, 1);
	CHECK(r == 0, "last byte: %s", strerror(-r));
	ok += 3;
	{
		/*
		 * Round trip of an accepted PERSIST (for the record: tcp and verbs
		 * alike), its spread, and a one-sided READ of the same log on the
		 * same connection for comparison.
		 */
		uint64_t t0 = cf_mono_ns(), t[100], rd[100], tot;
		uint8_t b8[8];
		for (int i = 0; i < 100; i++) {
			uint64_t t1 = cf_mono_ns();
			CHECK(persist_raw(&s, lo + 64, 128) == 0, "timed persist");
			t[i] = cf_mono_ns() - t1;
		}
		tot = cf_mono_ns() - t0;
		for (int i = 0; i < 100; i++) {
			uint64_t t1 = cf_mono_ns();
			CHECK(cf_session_read(&s, lo, b8, sizeof(b8)) == 0, "timed read");
			rd[i] = cf_mono_ns() - t1;
		}
		qsort(t, 100, sizeof(t[0]), cmp_u64);
		qsort(rd, 100, sizeof(rd[0]), cmp_u64);
		printf("persist round trip: %.1f us average over 100 (min %.1f, p50 %.1f, p90 %.1f, max %.1f us); "
		       "READ 8 bytes: p50 %.1f us\n",
		       (double)tot / 100e3, t[0] / 1e3, t[50] / 1e3, t[90] / 1e3, t[99] / 1e3, rd[50] / 1e3);
		ok += 100;
	}
	r = cf_session_persist(&s, lo, 16); /* the node's own entry point: one PERSIST (durable CF) */
	CHECK(r == 0, "cf_session_persist: %s", strerror(-r));
	ok += cf_session_persist_needed(&s);
	/* another system's instance: its log is not ours */
	open_sys(&other, "PSOTHER");
	inst2 = take_inst(&other, "PSINST2", 1);
	struct {
		const char *what;
		uint64_t off, len;
	} bad[] = {
		{"empty", lo, 0},
		{"one past the log grant", lo + ll - 1, 2},
		{"before the log grant", lo - 1, 2},
		{"header (read-only grant)", 0, 64},
		{"lock table (read+atomic, no write)", s.map.off_locks, 64},
		{"instance table (read+atomic)", s.map.off_instances, 8},
		{"another system's log", cf_log_off(&s.map, inst2), 64},
		{"offset wraps", UINT64_MAX - 10, 100},
		{"length wraps", lo, UINT64_MAX},
		{"length wraps from the end", lo + 8, UINT64_MAX - 7},
		{"past the image", s.map.image_size, 1},
		{"far past the image", 1ull << 62, 4096},
	};
	for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
		r = persist_raw(&s, bad[i].off, bad[i].len);
		CHECK(r == -EINVAL, "%s [%" PRIu64 ", +%" PRIu64 "): %d (%s), expected -EINVAL", bad[i].what, bad[i].off,
		      bad[i].len, r, r ? strerror(-r) : "accepted");
		CHECK(persist_msg[0], "%s: no reason given", bad[i].what);
		printf("%s: %s\n", bad[i].what, persist_msg);
	}
	/* still serving this connection */
	r = cf_session_read(&s, lo, &v, 8);
	CHECK(r == 0, "read after refusals: %s", strerror(-r));
	/* after unregister the log grant is gone: refused */
	r = cf_session_inst_unreg(&s, inst, msg, sizeof(msg));
	CHECK(r == 0, "unreg: %s (%s)", strerror(-r), msg);
	r = persist_raw(&s, lo, 64);
	CHECK(r == -EINVAL, "log range after unregister: %d", r);
	r = cf_session_inst_unreg(&other, inst2, msg, sizeof(msg));
	CHECK(r == 0, "unreg other: %s (%s)", strerror(-r), msg);
	CHECK(cf_session_goodbye(&other) == 0, "goodbye other");
	cf_session_close(&other);
	CHECK(cf_session_goodbye(&s) == 0, "goodbye");
	cf_session_close(&s);
	printf("OK persist %d\n", ok);
	return 0;
}

/* ---------------- takeover: registrations are the CF's record, not the word ---------------- */

static uint64_t reg_of(struct cf_session *s, uint32_t inst)
{
	uint64_t w = 0;
	int r = cf_session_read(s, cf_inst_off(&s->map, inst), &w, 8);

	CHECK(r == 0, "read reg: %s", strerror(-r));
	return w;
}

/* Poll (bounded, 10 s) until instance inst's word is INACTIVE_FAILED. */
static uint64_t wait_failed(struct cf_session *s, uint32_t inst)
{
	uint64_t w = 0;

	for (int i = 0; i < 1000; i++) {
		w = reg_of(s, inst);
		if (cf_reg_state(w) == CF_REG_FAILED)
			return w;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 10000000L};
		nanosleep(&ts, NULL);
	}
	return w;
}

/*
 * takeover PREFIX [CHECKS]: an authenticated member A against a victim V (docs/design.md
 * §7, "Registrations: what the CF checks"). Every member may CAS any
 * registration word; what it must not get is another's log grants, or the
 * power to free or hide another's registration. Each check prints "ok N".
 * V holds instance I as the counterpart of its failed home H: from the
 * INACTIVE_FAILED word any live system may register, so in checks 1, 2, 3 and
 * 5 only the CF's record of who attached stands in A's way.
 *  1 A CASes V's ACTIVE word to ACTIVE(A) and sends INST_ATTACH: refused, no
 *    grant, the word is put back to ACTIVE(V).
 *  2 A CASes the word to ACTIVE(A) and sends INST_UNREG: refused; V keeps
 *    its registration and its grants (its log still readable).
 *  3 A CASes to ACTIVE(A), tries to attach, CASes the word back to ACTIVE(V)
 *    itself: A never held a grant on the log (read and write refused).
 *  4 A takes V's INACTIVE_CLEAN instance over (legal: nobody holds it) and
 *    attaches it; V's INST_ATTACH and INST_UNREG are then refused (A holds
 *    it); after A unregisters, V registers and attaches it.
 *  5 A changes V's word to ACTIVE(A), V dies: the instance still becomes
 *    INACTIVE_FAILED, the failure record names V, and a counterpart
 *    recovers it (registers, attaches, reads V's log, unregisters).
 *  6 W holds its home J; A makes J's word look INACTIVE_CLEAN; W's GOODBYE
 *    is still a failure (W holds J by the CF's record): J becomes
 *    INACTIVE_FAILED, recorded as W's.
 */
static int cmd_takeover(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : "123456"; /* which checks (to see one fail alone) */
	struct cf_session h, v, a, r3, x;
	char hn[CF_NAME_MAX], vn[CF_NAME_MAX], an[CF_NAME_MAX], rn[CF_NAME_MAX], in[CF_NAME_MAX], cn[CF_NAME_MAX],
		msg[160];
	uint64_t w, wa, old, mark = 0x5345435245470001ull, got = 0;
	uint32_t inst, cinst, sys_v;
	struct cf_inst_info info;
	struct cf_inst_slot is;
	uint64_t logp;
	int r;

	CHECK(argc >= 1, "usage: takeover PREFIX [CHECKS, e.g. 135]");
	snprintf(hn, sizeof(hn), "%.10sH", argv[0]);
	snprintf(vn, sizeof(vn), "%.10sV", argv[0]);
	snprintf(an, sizeof(an), "%.10sA", argv[0]);
	snprintf(rn, sizeof(rn), "%.10sR", argv[0]);
	snprintf(in, sizeof(in), "%.10sI", argv[0]);
	snprintf(cn, sizeof(cn), "%.10sC", argv[0]);
	open_sys(&h, hn);
	open_sys(&a, an);
	inst = take_inst(&h, in, 1);
	cf_session_close(&h); /* H dies: I becomes INACTIVE_FAILED(1) */
	w = wait_failed(&a, inst);
	CHECK(cf_reg_state(w) == CF_REG_FAILED, "%s after its home died: %#" PRIx64, in, w);
	open_sys(&v, vn);
	sys_v = v.sys;
	take_inst(&v, in, 1); /* V: its counterpart, attached */
	logp = cf_log_off(&v.map, inst) + 4096; /* inside the ring: opaque to the CF */
	r = cf_session_write(&v, logp, &mark, 8);
	CHECK(r == 0, "victim writes its log: %s", strerror(-r));
	w = reg_of(&a, inst);
	CHECK(cf_reg_state(w) == CF_REG_ACTIVE && cf_reg_owner(w) == v.sys, "victim's word: %#" PRIx64, w);
	wa = cf_reg_active(a.sys, a.epoch, cf_reg_incident(w));

	/* 1 */
	if (!strchr(only, '1'))
		goto skip1;
	r = cf_session_cas(&a, cf_inst_off(&a.map, inst), w, wa, &old);
	CHECK(r == 0 && old == w, "1: the attacker's CAS on the victim's word: r=%d old=%#" PRIx64, r, old);
	r = cf_session_inst_attach(&a, inst);
	CHECK(r == -EACCES, "1: INST_ATTACH after the CAS of another's ACTIVE word: %d (%s), expected -EACCES", r,
	      r ? strerror(-r) : "granted");
	r = cf_session_read(&a, logp, &got, 8);
	CHECK(r == -EACCES, "1: the attacker reads the victim's log: %d", r);
	CHECK(reg_of(&a, inst) == w, "1: the word was not put back to ACTIVE(victim): %#" PRIx64, reg_of(&a, inst));
	printf("ok 1 CAS of another's ACTIVE word then INST_ATTACH: refused, word restored\n");
skip1:
	/* 2 */
	if (!strchr(only, '2'))
		goto skip2;
	r = cf_session_cas(&a, cf_inst_off(&a.map, inst), w, wa, &old);
	CHECK(r == 0 && old == w, "2: CAS: r=%d old=%#" PRIx64, r, old);
	r = cf_session_inst_unreg(&a, inst, msg, sizeof(msg));
	CHECK(r == -EACCES, "2: INST_UNREG of another's instance: %d (%s), expected -EACCES", r, msg);
	got = 0;
	r = cf_session_read(&v, logp, &got, 8);
	CHECK(r == 0 && got == mark, "2: the victim lost its log: r=%d got=%#" PRIx64, r, got);
	CHECK(reg_of(&v, inst) == w, "2: the victim's word: %#" PRIx64, reg_of(&v, inst));
	printf("ok 2 INST_UNREG of another's instance: refused, the victim keeps its grants\n");
skip2:
	/* 3 */
	if (!strchr(only, '3'))
		goto skip3;
	r = cf_session_cas(&a, cf_inst_off(&a.map, inst), w, wa, &old);
	CHECK(r == 0 && old == w, "3: CAS: r=%d old=%#" PRIx64, r, old);
	r = cf_session_inst_attach(&a, inst); /* checked by what it left behind */
	printf("3: the attacker's INST_ATTACH: %s\n", r ? strerror(-r) : "granted");
	r = cf_session_cas(&a, cf_inst_off(&a.map, inst), wa, w, &old); /* the CF may have restored it already */
	CHECK(r == 0 && (old == wa || old == w), "3: the attacker's restoring CAS: r=%d old=%#" PRIx64, r, old);
	CHECK(reg_of(&a, inst) == w, "3: word %#" PRIx64, reg_of(&a, inst));
	r = cf_session_read(&a, logp, &got, 8);
	CHECK(r == -EACCES, "3: the attacker kept a read grant on the victim's log: %d", r);
	r = cf_session_write(&a, logp, &got, 8);
	CHECK(r == -EACCES, "3: the attacker kept a write grant on the victim's log: %d", r);
	got = 0;
	r = cf_session_read(&v, logp, &got, 8);
	CHECK(r == 0 && got == mark, "3: the victim's log: r=%d got=%#" PRIx64, r, got);
	printf("ok 3 CAS, attach, CAS back: the attacker never got grants\n");
skip3:
	/* 4 */
	if (!strchr(only, '4'))
		goto skip4;
	r = cf_session_inst_open(&v, cn, &info);
	CHECK(r == 0, "4: open %s: %s", cn, strerror(-r));
	cinst = info.index;
	w = reg_of(&a, cinst);
	CHECK(cf_reg_state(w) == CF_REG_CLEAN && info.home_sys == v.sys, "4: %s: %#" PRIx64 " home %u", cn, w,
	      info.home_sys);
	r = cf_session_cas(&a, cf_inst_off(&a.map, cinst), w, cf_reg_active(a.sys, a.epoch, cf_reg_incident(w)),
			   &old);
	CHECK(r == 0 && old == w, "4: the CAS of INACTIVE_CLEAN by another system: r=%d old=%#" PRIx64, r, old);
	r = cf_session_inst_attach(&a, cinst);
	CHECK(r == 0, "4: INST_ATTACH of an INACTIVE_CLEAN instance taken over: %s", strerror(-r));
	r = cf_session_inst_attach(&v, cinst);
	CHECK(r == -EACCES, "4: the home attached an instance another system holds: %d (%s)", r,
	      r ? strerror(-r) : "granted");
	r = cf_session_inst_unreg(&v, cinst, msg, sizeof(msg));
	CHECK(r == -EACCES, "4: the home unregistered an instance another system holds: %d (%s)", r, msg);
	CHECK(cf_reg_state(reg_of(&a, cinst)) == CF_REG_ACTIVE && cf_reg_owner(reg_of(&a, cinst)) == a.sys,
	      "4: the holder's word changed: %#" PRIx64, reg_of(&a, cinst));
	r = cf_session_inst_unreg(&a, cinst, msg, sizeof(msg));
	CHECK(r == 0, "4: the holder's unregister: %s (%s)", strerror(-r), msg);
	take_inst(&v, cn, 1);
	r = cf_session_inst_unreg(&v, cinst, msg, sizeof(msg));
	CHECK(r == 0, "4: the home's unregister: %s (%s)", strerror(-r), msg);
	printf("ok 4 INACTIVE_CLEAN taken over by another system: it holds it, the home is refused until it leaves\n");
skip4:
	/* 5 */
	if (!strchr(only, '5'))
		goto skip5;
	w = reg_of(&a, inst);
	r = cf_session_cas(&a, cf_inst_off(&a.map, inst), w, wa, &old);
	CHECK(r == 0 && old == w, "5: CAS: r=%d old=%#" PRIx64, r, old);
	cf_session_close(&v); /* dies: connection lost without goodbye */
	w = wait_failed(&a, inst);
	CHECK(cf_reg_state(w) == CF_REG_FAILED, "5: after the victim died its instance is %s (%#" PRIx64 "), not failed",
	      cf_reg_state_str(cf_reg_state(w)), w);
	is = inst_slot_of(inst);
	CHECK(is.fail_sys == sys_v && is.fail_incident == cf_reg_incident(w),
	      "5: the failure record names sys %u incident %" PRIu64 ", not the victim %u", is.fail_sys,
	      is.fail_incident, sys_v);
	open_sys(&r3, rn);
	take_inst(&r3, in, 1);
	got = 0;
	r = cf_session_read(&r3, logp, &got, 8);
	CHECK(r == 0 && got == mark, "5: the counterpart reads the victim's log: r=%d got=%#" PRIx64, r, got);
	r = cf_session_inst_unreg(&r3, inst, msg, sizeof(msg));
	CHECK(r == 0, "5: the counterpart's unregister: %s (%s)", strerror(-r), msg);
	printf("ok 5 the victim dies after the attacker changed its word: INACTIVE_FAILED, recovered\n");
	CHECK(cf_session_goodbye(&r3) == 0, "goodbye counterpart");
	cf_session_close(&r3);
skip5:

	/* 6 */
	if (!strchr(only, '6'))
		goto skip6;
	snprintf(hn, sizeof(hn), "%.10sW", argv[0]);
	snprintf(cn, sizeof(cn), "%.10sJ", argv[0]);
	open_sys(&x, hn);
	cinst = take_inst(&x, cn, 1);
	sys_v = x.sys;
	w = reg_of(&a, cinst);
	r = cf_session_cas(&a, cf_inst_off(&a.map, cinst), w, cf_reg_clean(cf_reg_incident(w)), &old);
	CHECK(r == 0 && old == w, "6: CAS to INACTIVE_CLEAN: r=%d old=%#" PRIx64, r, old);
	r = cf_session_goodbye(&x);
	CHECK(r < 0, "6: GOODBYE of a system that holds an instance whose word was made INACTIVE_CLEAN: accepted");
	cf_session_close(&x);
	w = wait_failed(&a, cinst);
	CHECK(cf_reg_state(w) == CF_REG_FAILED, "6: %s is %#" PRIx64 " after its holder left, not failed", cn, w);
	is = inst_slot_of(cinst);
	CHECK(is.fail_sys == sys_v && is.fail_incident == cf_reg_incident(w), "6: the failure record names sys %u, not %u",
	      is.fail_sys, sys_v);
	printf("ok 6 a GOODBYE while holding an instance whose word was changed: failure processing\n");
skip6:
	CHECK(cf_session_goodbye(&a) == 0, "goodbye attacker");
	cf_session_close(&a);
	printf("OK takeover\n");
	return 0;
}

/* ---------------- locks and the monitor role ---------------- */

/*
 * lock SYS INST RECORD X|S [TIMEOUT_MS]: join as SYS, take INST, acquire
 * RECORD through cf_lock (record-list entry written before the CAS, as a
 * node does). Prints ACQUIRING before and, after,
 * "LOCKED RECORD entry E queued Q handed H polls P" (the lock hand-off
 * counters of that acquire: queued at the CF, granted by it, lock-word
 * re-reads), or "TIMEDOUT" (exit 3) when TIMEOUT_MS passed first. Then it
 * holds the lock until killed; SIGUSR1 releases it ("RELEASED", and the
 * process stays joined). A second one on the same RECORD waits inside
 * cf_lock_acquire: its entry is in its record list while the word names the
 * first.
 */
static volatile sig_atomic_t lock_release_asked;

static void on_usr1(int sig)
{
	(void)sig;
	lock_release_asked = 1;
}

static int cmd_lock(int argc, char **argv)
{
	struct cf_lock_table t;
	struct cf_session s;
	uint64_t holder = 0;
	uint32_t inst, entry = 0;
	bool held;
	int r;

	CHECK(argc >= 4, "usage: lock SYS INST RECORD X|S [TIMEOUT_MS]");
	signal(SIGUSR1, on_usr1);
	open_sys(&s, argv[0]);
	inst = take_inst(&s, argv[1], 1);
	r = cf_lock_table_init(&t, &s, inst, s.epoch);
	CHECK(r == 0, "lock table: %s", strerror(-r));
	printf("ACQUIRING %s\n", argv[2]);
	fflush(stdout);
	r = cf_lock_acquire(&t, argv[2], !strcmp(argv[3], "S") ? CF_LOCK_S : CF_LOCK_X, 1,
			    argc > 4 ? atoi(argv[4]) : 60000, &entry, &holder);
	if (r == -ETIMEDOUT) {
		printf("TIMEDOUT %s queued %llu polls %llu\n", argv[2], (unsigned long long)t.st.queued,
		       (unsigned long long)t.st.polls);
		fflush(stdout);
		return 3;
	}
	CHECK(r == 0, "acquire %s: %s", argv[2], strerror(-r));
	printf("LOCKED %s entry %u queued %llu handed %llu polls %llu\n", argv[2], entry,
	       (unsigned long long)t.st.queued, (unsigned long long)t.st.handed, (unsigned long long)t.st.polls);
	fflush(stdout);
	held = true;
	for (int i = 0; i < 600; i++) { /* bounded: the test kills us long before */
		struct cf_event ev;
		if (held && lock_release_asked) {
			r = cf_lock_release(&t, entry);
			CHECK(r == 0, "release %s: %s", argv[2], strerror(-r));
			held = false;
			printf("RELEASED %s kicks %llu\n", argv[2], (unsigned long long)t.st.kicks);
			fflush(stdout);
		}
		r = cf_session_next_event(&s, &ev, 100);
		CHECK(r == 0 || r == -ETIMEDOUT, "session: %s", strerror(-r));
	}
	return 0;
}

/*
 * lock-wait-as SYS INST CLASS: join as SYS and ask the CF to queue a lock
 * wait in the name of INST, which SYS does not hold (a member forging
 * another's wait). Prints "REFUSED <errno name>" or "QUEUED"/"GRANTED".
 */
static int cmd_lock_wait_as(int argc, char **argv)
{
	struct cf_session s;
	struct cf_inst_info info;
	struct cf_lock_wait w = {.mode = CF_LOCK_X, .ticket = 1};
	uint64_t word = 0;
	int r;

	CHECK(argc >= 3, "usage: lock-wait-as SYS INST CLASS");
	open_sys(&s, argv[0]);
	r = cf_session_inst_open(&s, argv[1], &info);
	CHECK(r == 0, "inst open %s: %s", argv[1], strerror(-r));
	w.inst = info.index;
	w.epoch = s.epoch;
	w.klass = (uint32_t)strtoul(argv[2], NULL, 10);
	r = cf_session_lock_wait(&s, &w, &word);
	if (r < 0)
		printf("REFUSED %s\n", strerrorname_np(-r));
	else
		printf("%s\n", r ? "GRANTED" : "QUEUED");
	cf_session_close(&s);
	return 0;
}

/*
 * release-failed PEER INST: join as PEER and do what a counterpart's release
 * phase does to a failed INST: register it (FAILED(k) → ACTIVE(PEER, k)),
 * attach, and release every hold its record list names
 * (cf_lock_release_instance, which tells the CF of a queued class it
 * released); prints "RELEASED-INSTANCE N" (lock classes), then unregisters.
 */
static int cmd_release_failed(int argc, char **argv)
{
	struct cf_session s;
	uint32_t idx, rel = 0;
	char msg[120];
	int r;

	CHECK(argc >= 2, "usage: release-failed PEER INST");
	open_sys(&s, argv[0]);
	idx = take_inst(&s, argv[1], 1);
	r = cf_lock_release_instance(&s, idx, 0 /* the holds' epoch is a guess: a miss costs one more CAS */, NULL,
				     0, &rel);
	CHECK(r == 0, "release %s: %s", argv[1], strerror(-r));
	printf("RELEASED-INSTANCE %u\n", rel);
	fflush(stdout);
	r = cf_session_inst_unreg(&s, idx, msg, sizeof(msg));
	CHECK(r == 0, "unregister %s: %s %s", argv[1], strerror(-r), msg);
	CHECK(cf_session_goodbye(&s) == 0, "goodbye");
	cf_session_close(&s);
	return 0;
}

/*
 * monitor OP: authenticate with the monitor key ($CF_MONITOR_KEYFILE) and try
 * OP, which the CF must refuse: join, attach (CONN_ATTACH), inst-open,
 * inst-attach, policy, recover, restart-info (a console's read), goodbye, or
 * read (a one-sided READ with a grant a console got: the CF checks grants by
 * connection). Prints "REFUSED <status> <the CF's message>" and, for a
 * control request, "CLOSED" once the CF closed the connection. "metrics":
 * one chunk, printed as "METRICS <total>".
 */
static int cmd_monitor(int argc, char **argv)
{
	const char *kf = getenv("CF_MONITOR_KEYFILE");
	uint8_t mkey[CF_KEY_LEN];
	struct cf_session m, con;
	struct cf_status st;
	uint16_t type = 0;
	union {
		struct cf_join join;
		struct cf_conn_attach att;
		struct cf_inst_name name;
		struct cf_inst_ref ref;
		struct cf_policy_msg pol;
		struct cf_recover rec;
		struct cf_empty empty;
		struct cf_metrics_req mq;
	} b;
	static struct cf_metrics_r mr;
	size_t len = 0;
	int r;

	CHECK(argc >= 1 && kf, "usage: CF_MONITOR_KEYFILE=F monitor OP");
	r = cf_key_load(kf, mkey);
	CHECK(r == 0, "monitor key: %s", strerror(-r));
	r = cf_session_open(&m, transport, addr, mkey, CF_ROLE_MONITOR, connect_ms());
	CHECK(r == 0, "monitor open: %s (%s)", strerror(-r), cf_session_error_msg(&m) ? cf_session_error_msg(&m) : "");
	CHECK(m.ngrants == 0, "a monitor session got %u grants", m.ngrants);
	memset(&b, 0, sizeof(b));
	if (!strcmp(argv[0], "metrics")) {
		r = cf_session_rpc(&m, CF_CTRL_METRICS, &b.mq, sizeof(b.mq), CF_CTRL_METRICS_R, &mr, sizeof(mr), 5000);
		CHECK(r == 0 && mr.status == 0 && mr.total > 0, "metrics: r=%d status=%d", r, mr.status);
		printf("METRICS %u\n", mr.total);
		cf_session_close(&m);
		return 0;
	}
	if (!strcmp(argv[0], "read")) {
		uint64_t v = 0;
		open_console(&con);
		CHECK(con.ngrants == 1, "console grants: %u", con.ngrants);
		m.grants[m.ngrants++] = con.grants[0]; /* a stolen grant: rkey and address of the console's */
		r = cf_session_read(&m, 0, &v, 8);
		CHECK(r < 0, "a monitor READ with a console's grant succeeded (%#" PRIx64 ")", v);
		printf("REFUSED %d %s\n", r, strerror(-r));
		cf_session_close(&con);
		cf_session_close(&m);
		return 0;
	}
	if (!strcmp(argv[0], "join")) {
		type = CF_CTRL_JOIN;
		cf_name_put(b.join.name, "MONJOIN");
		len = sizeof(b.join);
	} else if (!strcmp(argv[0], "attach")) {
		type = CF_CTRL_CONN_ATTACH;
		len = sizeof(b.att);
	} else if (!strcmp(argv[0], "inst-open")) {
		type = CF_CTRL_INST_OPEN;
		cf_name_put(b.name.name, "MONINST");
		len = sizeof(b.name);
	} else if (!strcmp(argv[0], "inst-attach")) {
		type = CF_CTRL_INST_ATTACH;
		len = sizeof(b.ref);
	} else if (!strcmp(argv[0], "policy")) {
		type = CF_CTRL_POLICY_SET;
		b.pol.policy = CF_POLICY_OPERATOR;
		len = sizeof(b.pol);
	} else if (!strcmp(argv[0], "recover")) {
		type = CF_CTRL_RECOVER;
		cf_name_put(b.rec.inst, argc > 1 ? argv[1] : "MONINST");
		len = sizeof(b.rec);
	} else if (!strcmp(argv[0], "restart-info")) {
		type = CF_CTRL_RESTART_INFO;
		len = sizeof(b.empty);
	} else if (!strcmp(argv[0], "goodbye")) {
		type = CF_CTRL_GOODBYE;
		len = sizeof(b.empty);
	} else {
		FAIL("unknown monitor OP %s", argv[0]);
	}
	memset(&st, 0, sizeof(st));
	r = cf_session_rpc(&m, type, &b, len, CF_CTRL_STATUS, &st, sizeof(st), 5000);
	st.msg[sizeof(st.msg) - 1] = 0;
	CHECK(r == 0 && st.status < 0, "monitor %s: not refused (r=%d status=%d %s)", argv[0], r, st.status, st.msg);
	printf("REFUSED %d %s\n", st.status, st.msg);
	/* the CF closed it: the next request (even METRICS) fails */
	memset(&b, 0, sizeof(b));
	r = cf_session_rpc(&m, CF_CTRL_METRICS, &b.mq, sizeof(b.mq), CF_CTRL_METRICS_R, &mr, sizeof(mr), 5000);
	CHECK(r < 0, "monitor connection still open after a refused %s", argv[0]);
	printf("CLOSED\n");
	cf_session_close(&m);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int, char **);
} cmds[] = {
	{"lock", cmd_lock}, {"release-failed", cmd_release_failed}, {"lock-wait-as", cmd_lock_wait_as}, {"monitor", cmd_monitor},
	{"roundtrip", cmd_roundtrip}, {"faa", cmd_faa}, {"persist-loop", cmd_persist_loop},     {"cas-race", cmd_cas_race}, {"verify-race", cmd_verify_race},
	{"read-word", cmd_read_word}, {"claim", cmd_claim}, {"grants", cmd_grants}, {"persist", cmd_persist}, {"noauth", cmd_noauth},   {"malformed", cmd_malformed},
	{"hold", cmd_hold},           {"resume", cmd_resume}, {"fill", cmd_fill},
	{"dump", cmd_dump},           {"dxwords", cmd_dxwords},     {"policy", cmd_policy}, {"recover", cmd_recover}, {"orphan", cmd_orphan},
	{"readmit", cmd_readmit},     {"goodbye-active", cmd_goodbye_active}, {"fence-barrier", cmd_fence_barrier},
	{"suspect", cmd_suspect},       {"fail-chain", cmd_fail_chain}, {"sentinel", cmd_sentinel},
	{"fence-stream", cmd_fence_stream}, {"takeover", cmd_takeover}, {"frame-mac", cmd_frame_mac},
	{"silent", cmd_silent}, {"unknown-ctrl", cmd_unknown_ctrl}, {"longname", cmd_longname}, {"frame-mac-client", cmd_frame_mac_client},
};

int main(int argc, char **argv)
{
	const char *kf = getenv("CF_KEYFILE");
	int r;

	addr = getenv("CF_ADDR");
	transport = getenv("CF_TRANSPORT") ? getenv("CF_TRANSPORT") : "tcp";
	if (argc < 2 || !addr || !kf) {
		fprintf(stderr, "usage: CF_ADDR=host:port CF_KEYFILE=file cf_tclient CMD [ARGS]\n");
		return 2;
	}
	r = cf_key_load(kf, key);
	if (r) {
		char why[512];
		CHECK(0, "%s", cf_key_explain(kf, r, why, sizeof(why)));
	}
	for (size_t i = 0; i < CF_ARRAY_SIZE(cmds); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 2, argv + 2);
	fprintf(stderr, "unknown command %s\n", argv[1]);
	return 2;
}
