/* SPDX-License-Identifier: MIT */
/*
 * test_gcommit - group commit of the tcp backend under --nvram (cf_persist).
 *
 * The real cf_tcp_server and cf_persist in one process, with loopback client
 * sockets driven by hand and a stub persist function that records each call
 * and, at that moment, peeks at every client socket: no response that waits
 * for this persist may have arrived yet.
 *
 *   1. three connections each send a durable WRITE and a CAS before the loop
 *      runs: one loop iteration executes all six, its end commits them with
 *      ONE persist call at page granularity (one commit either way), and no
 *      response is readable before it;
 *   2. a connection with nothing durable pending gets its (volatile) WRITE
 *      answered with no persist at all; a volatile WRITE queued behind a
 *      durable one on the same connection waits for the persist (order); a
 *      peer that half-closes after a durable write gets its answer, then EOF;
 *   3. cf_persist alone: exact ranges sorted and merged (overlapping,
 *      touching, contained, sharing a cache line) at 64-byte granularity, one
 *      span at page granularity, callbacks after the persist, cancel, an empty
 *      commit is none. (The PERSIST answers on top of it: test_persist_answer.)
 *   4. the persister thread (CF_PERSIST_THREAD): the commit point hands the
 *      span over and returns while the thread is still persisting (the loop
 *      is not held by a slow flush); a callback runs only after its persist
 *      returned; what is added while a batch is in flight waits and goes out
 *      as ONE next batch; a synchronous commit waits for the batch in flight;
 *      cancel reaches a batch in flight;
 *   4b. CF_PERSIST_ADAPTIVE: fast persists (a tmpfs msync) move back into the
 *      loop after the first, slow ones (a disk's) stay with the thread;
 *   5. the tcp backend over the thread, with a persist that completes only
 *      when the test lets it: while a connection's batch is in flight, another
 *      connection's volatile READ is answered (the loop is free), and the same
 *      connection's next durable WRITE joins the NEXT batch - the first
 *      batch's completion releases the first answer only; the second answer
 *      comes after the second persist.
 */
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cf_persist.h"
#include "cf_util.h"
#include "cf_transport.h"

extern const struct cf_server_ops cf_tcp_server;

#define IMG (64u * 1024u)
#define VOL_LO 8192u /* [VOL_LO, VOL_HI) stands for the heartbeat slots: not durable */
#define VOL_HI 12288u
#define NCL 4

static int failures;
#define CHECK(c)                                                                     \
	do {                                                                         \
		if (!(c)) {                                                          \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			failures++;                                                  \
		}                                                                    \
	} while (0)

static uint8_t image[IMG];
static struct ev_loop *loop;
static struct cf_tserver *ts;
static struct cf_persist *gc;
static struct cf_sconn *sconn[NCL];
static uint32_t rkey[NCL];
static int naccepted;
static int cfd[NCL];
static int persist_calls, early_responses;
static uint64_t persisted_lo[64], persisted_len[64];

static void on_accept(void *arg, struct cf_sconn *sc)
{
	struct cf_grant g;

	if (naccepted >= NCL)
		return;
	if (cf_tcp_server.grant(sc, 0, 0, 0, IMG, CF_R_READ | CF_R_WRITE | CF_R_ATOMIC, &g) == 0)
		rkey[naccepted] = g.rkey;
	sconn[naccepted++] = sc;
}

static void on_ctrl(void *arg, struct cf_sconn *sc, uint64_t id, const void *msg, size_t len)
{
}

static void on_close(void *arg, struct cf_sconn *sc, int err)
{
}

static int durable(void *arg, uint64_t off, uint64_t len)
{
	return !(off >= VOL_LO && off + len <= VOL_HI);
}

/* The stub persist: counts, and checks no client has a byte of response yet. */
static void stub_persist(void *arg, uint64_t off, uint64_t len)
{
	char b;

	if (persist_calls < 64) {
		persisted_lo[persist_calls] = off;
		persisted_len[persist_calls] = len;
	}
	persist_calls++;
	for (int i = 0; i < NCL; i++) {
		if (cfd[i] < 0)
			continue;
		if (recv(cfd[i], &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) {
			fprintf(stderr, "client %d has a response before the persist that covers it\n", i);
			early_responses++;
		}
	}
}

static void send_write(int fd, uint64_t id, uint32_t rk, uint64_t addr, uint32_t len)
{
	uint8_t buf[sizeof(struct cf_frame_hdr) + sizeof(struct cf_req_rw) + 64];
	struct cf_frame_hdr h = {.len = (uint32_t)(sizeof(h) + sizeof(struct cf_req_rw) + len), .op = CF_OP_WRITE,
				 .id = id};
	struct cf_req_rw rw = {.addr = addr, .rkey = rk, .len = len};

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &rw, sizeof(rw));
	memset(buf + sizeof(h) + sizeof(rw), 0x5a, len);
	CHECK(send(fd, buf, h.len, 0) == (ssize_t)h.len);
}

static void send_cas(int fd, uint64_t id, uint32_t rk, uint64_t addr, uint64_t cmp, uint64_t swp)
{
	uint8_t buf[sizeof(struct cf_frame_hdr) + sizeof(struct cf_req_atomic)];
	struct cf_frame_hdr h = {.len = sizeof(buf), .op = CF_OP_CAS, .id = id};
	struct cf_req_atomic at = {.addr = addr, .rkey = rk, .compare = cmp, .swap = swp};

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &at, sizeof(at));
	CHECK(send(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
}

/* Read n responses from fd (bounded wait); returns how many arrived. Ids must come in order. */
static int read_resps(int fd, int n, uint64_t first_id)
{
	uint8_t buf[sizeof(struct cf_frame_hdr) + sizeof(struct cf_resp)];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int got = 0;
	size_t have = 0;
	ssize_t k;

	while (got < n) {
		/* the server runs in this thread: let it iterate without blocking */
		ev_run(loop, EVRUN_NOWAIT);
		if (poll(&p, 1, 10) <= 0)
			continue;
		k = recv(fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);
		if (k <= 0)
			return got;
		have += (size_t)k;
		if (have < sizeof(buf))
			continue;
		struct cf_frame_hdr h;
		struct cf_resp r;
		memcpy(&h, buf, sizeof(h));
		memcpy(&r, buf + sizeof(h), sizeof(r));
		CHECK(h.op == CF_OP_RESP);
		CHECK(h.id == first_id + (uint64_t)got);
		CHECK(r.status == 0);
		have = 0;
		got++;
	}
	return got;
}

static int connect_to(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* The tcp server over gc, with n loopback clients connected and accepted. */
static void server_up(int n)
{
	struct cf_server_cbs cbs = {.on_accept = on_accept, .on_ctrl = on_ctrl, .on_close = on_close,
				    .durable = durable, .gc = gc};
	int r = cf_tcp_server.listen(loop, "127.0.0.1:0", image, IMG, &cbs, &ts);

	CHECK(r == 0);
	if (r)
		exit(1);
	for (int i = 0; i < n; i++)
		cfd[i] = connect_to(cf_tcp_server.port(ts));
	for (int k = 0; k < 500 && naccepted < n; k++)
		ev_run(loop, EVRUN_NOWAIT), usleep(1000);
	CHECK(naccepted == n);
}

static void test_server(uint64_t gran)
{
	struct cf_persist_stats st;
	int r;

	memset(image, 0, sizeof(image));
	naccepted = 0;
	persist_calls = early_responses = 0;
	for (int i = 0; i < NCL; i++)
		cfd[i] = -1;
	r = cf_persist_new(loop, gran, 0, stub_persist, NULL, &gc);
	CHECK(r == 0);
	server_up(NCL);

	/* 1: three connections' durable writes, all queued before one iteration */
	for (int i = 0; i < 3; i++) {
		send_write(cfd[i], 1, rkey[i], 16384u + (uint64_t)i * 4096u, 48); /* a log record */
		send_cas(cfd[i], 2, rkey[i], 64u * (uint64_t)i, 0, 7);         /* a lock word */
	}
	usleep(20000); /* loopback: the bytes are in the server's socket buffers */
	ev_run(loop, EVRUN_NOWAIT); /* one iteration: all six execute, nothing is committed yet */
	cf_persist_get_stats(gc, &st);
	CHECK(st.ranges == 6);
	CHECK(st.commits == 0 && persist_calls == 0);
	ev_run(loop, EVRUN_NOWAIT); /* its end (the prepare watcher): one commit for the three */
	cf_persist_get_stats(gc, &st);
	CHECK(st.commits == 1);
	/* page granularity: one msync; cache lines: the three lock words (adjacent lines) + three records */
	CHECK(persist_calls == (gran >= 4096 ? 1 : 4));
	for (int i = 0; i < 3; i++)
		CHECK(read_resps(cfd[i], 2, 1) == 2);
	CHECK(early_responses == 0);
	cf_persist_get_stats(gc, &st);
	CHECK(st.commits == 1);
	fprintf(stderr, "gran %llu: 3 connections, 6 durable ops: %llu commit(s), %d persist call(s), "
		"%d early responses\n", (unsigned long long)gran, (unsigned long long)st.commits, persist_calls,
		early_responses);

	/* 2a: a volatile write on an idle connection is answered with no persist */
	send_write(cfd[3], 5, rkey[3], VOL_LO, 64);
	CHECK(read_resps(cfd[3], 1, 5) == 1);
	CHECK(persist_calls == (gran >= 4096 ? 1 : 4));
	/* 2b: behind a durable write on the same connection, it waits (per-connection order) */
	send_write(cfd[3], 6, rkey[3], 20480u, 8);
	send_write(cfd[3], 7, rkey[3], VOL_LO + 64u, 64);
	usleep(20000);
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(read_resps(cfd[3], 2, 6) == 2);
	CHECK(early_responses == 0);
	CHECK(persist_calls == (gran >= 4096 ? 2 : 5));
	/* 2c: a peer that half-closes right after a durable write still gets its answer, after the persist */
	send_write(cfd[2], 8, rkey[2], 24576u, 8);
	shutdown(cfd[2], SHUT_WR);
	usleep(20000);
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(read_resps(cfd[2], 1, 8) == 1);
	CHECK(early_responses == 0);
	CHECK(persist_calls == (gran >= 4096 ? 3 : 6));
	{
		char b;
		for (int k = 0; k < 200 && recv(cfd[2], &b, 1, MSG_DONTWAIT) < 0; k++)
			ev_run(loop, EVRUN_NOWAIT), usleep(1000);
		CHECK(recv(cfd[2], &b, 1, MSG_DONTWAIT) == 0); /* then the server closes */
	}

	for (int i = 0; i < NCL; i++)
		close(cfd[i]), cfd[i] = -1;
	cf_tcp_server.destroy(ts);
	cf_persist_free(gc);
}

/* ---------------- cf_persist alone ---------------- */

static int order[8], norder;
static void cb_mark(void *arg)
{
	/* a callback runs after the persist of everything added before it */
	order[norder++] = (int)(intptr_t)arg * 10 + persist_calls;
}

static void test_persist_alone(void)
{
	struct cf_persist *p;

	persist_calls = 0;
	norder = 0;
	for (int i = 0; i < NCL; i++)
		cfd[i] = -1;
	CHECK(cf_persist_new(NULL, 64, 0, stub_persist, NULL, &p) == 0);
	cf_persist_add(p, 1000, 8);   /* line 960..1024 */
	cf_persist_add(p, 1016, 8);   /* same line: merged */
	cf_persist_add(p, 4096, 16);  /* far away: its own call */
	cf_persist_add(p, 130, 4);    /* out of order: sorted */
	CHECK(cf_persist_after(p, cb_mark, (void *)1) == 0);
	CHECK(cf_persist_after(p, cb_mark, (void *)2) == 0);
	CHECK(cf_persist_cancel(p, cb_mark, (void *)2) == 0);
	CHECK(persist_calls == 0);
	cf_persist_commit(p);
	CHECK(persist_calls == 3);
	CHECK(persisted_lo[0] == 130 && persisted_len[0] == 4);
	CHECK(persisted_lo[1] == 1000 && persisted_len[1] == 24);
	CHECK(persisted_lo[2] == 4096 && persisted_len[2] == 16);
	CHECK(norder == 1 && order[0] == 13);
	cf_persist_free(p);

	/* overlapping, touching and swallowed ranges, given out of order (the PERSIST case) */
	persist_calls = 0;
	CHECK(cf_persist_new(NULL, 64, 0, stub_persist, NULL, &p) == 0);
	cf_persist_add(p, 1000, 100);
	cf_persist_add(p, 4096, 1);
	cf_persist_add(p, 40, 20);
	cf_persist_add(p, 0, 50);
	cf_persist_add(p, 1050, 2); /* inside [1000, 1100) */
	cf_persist_add(p, 60, 5);   /* touches [40, 60) */
	cf_persist_commit(p);
	CHECK(persist_calls == 3);
	CHECK(persisted_lo[0] == 0 && persisted_len[0] == 65);
	CHECK(persisted_lo[1] == 1000 && persisted_len[1] == 100);
	CHECK(persisted_lo[2] == 4096 && persisted_len[2] == 1);
	cf_persist_commit(p); /* nothing pending: no call, no commit */
	{
		struct cf_persist_stats st;
		cf_persist_get_stats(p, &st);
		CHECK(persist_calls == 3 && st.commits == 1 && st.ranges == 6);
	}
	cf_persist_free(p);

	persist_calls = 0;
	CHECK(cf_persist_new(NULL, 4096, 0, stub_persist, NULL, &p) == 0);
	cf_persist_add(p, 100, 8);
	cf_persist_add(p, 1u << 20, 8);
	cf_persist_commit(p);
	CHECK(persist_calls == 1 && persisted_lo[0] == 100 && persisted_len[0] == (1u << 20) + 8 - 100);
	cf_persist_free(p);
}

/* 4. the persister thread: a slow stub, a flag the callbacks read */
static _Atomic int slow_calls, slow_done;
static uint64_t slow_lo[8], slow_len[8];
static int cb_seen[8], cb_n;

static void slow_persist(void *arg, uint64_t off, uint64_t len)
{
	int i = atomic_fetch_add(&slow_calls, 1);

	if (i < 8)
		slow_lo[i] = off, slow_len[i] = len;
	usleep(50000); /* a device flush */
	atomic_fetch_add(&slow_done, 1);
}

static void cb_done_count(void *arg)
{
	if (cb_n < 8)
		cb_seen[cb_n++] = (int)(intptr_t)arg * 100 + atomic_load(&slow_done);
}

static void run_until(struct cf_persist *p, int done)
{
	for (int i = 0; i < 400 && (atomic_load(&slow_done) < done || cf_persist_pending(p)); i++)
		ev_run(loop, EVRUN_ONCE);
}

static void test_persist_thread(void)
{
	struct cf_persist *p;
	struct cf_persist_stats st;
	uint64_t t0;

	CHECK(cf_persist_new(NULL, 4096, CF_PERSIST_THREAD, slow_persist, NULL, &p) == -EINVAL); /* needs a loop */
	CHECK(cf_persist_new(loop, 64, CF_PERSIST_THREAD, slow_persist, NULL, &p) == -EINVAL);   /* msync only */
	CHECK(cf_persist_new(loop, 4096, CF_PERSIST_THREAD, slow_persist, NULL, &p) == 0);
	cf_persist_add(p, 100, 8);
	CHECK(cf_persist_after(p, cb_done_count, (void *)1) == 0);
	t0 = cf_mono_ns();
	ev_run(loop, EVRUN_NOWAIT); /* the commit point: handed over, not waited for */
	CHECK(cf_mono_ns() - t0 < 40000000ull);
	CHECK(cb_n == 0 && cf_persist_pending(p));
	/* meanwhile: two more ranges and callbacks, and one to cancel in flight */
	cf_persist_add(p, 8192, 8);
	cf_persist_add(p, 1u << 20, 8);
	CHECK(cf_persist_after(p, cb_done_count, (void *)2) == 0);
	CHECK(cf_persist_after(p, cb_done_count, (void *)3) == 0);
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(atomic_load(&slow_calls) <= atomic_load(&slow_done) + 1); /* one batch at a time */
	run_until(p, 2);
	CHECK(atomic_load(&slow_calls) == 2); /* what waited went out as one batch */
	CHECK(slow_lo[0] == 100 && slow_len[0] == 8);
	CHECK(slow_lo[1] == 8192 && slow_len[1] == (1u << 20) + 8 - 8192);
	/* each callback after its own persist returned: 1 after the first, 2 and 3 after the second */
	CHECK(cb_n == 3 && cb_seen[0] == 101 && cb_seen[1] == 202 && cb_seen[2] == 302);

	/* cancel in flight; a synchronous commit waits for the batch, then commits the rest itself */
	cb_n = 0;
	cf_persist_add(p, 300, 8);
	CHECK(cf_persist_after(p, cb_done_count, (void *)4) == 0);
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(cf_persist_cancel(p, cb_done_count, (void *)4) == 0);
	cf_persist_add(p, 400, 8);
	CHECK(cf_persist_after(p, cb_done_count, (void *)5) == 0);
	cf_persist_commit(p);
	CHECK(atomic_load(&slow_done) == 4 && !cf_persist_pending(p));
	CHECK(cb_n == 1 && cb_seen[0] == 504);
	cf_persist_get_stats(p, &st);
	CHECK(st.calls == 4 && st.callbacks == 4);
	cf_persist_free(p);
}

/* 4b: adaptive */
static _Atomic int quick_calls;
static pthread_t quick_thr[16];

static void quick_persist(void *arg, uint64_t off, uint64_t len)
{
	int i = atomic_fetch_add(&quick_calls, 1);

	if (i < 16)
		quick_thr[i] = pthread_self();
	if (arg)
		usleep(2000); /* a disk */
}

static void test_persist_adaptive(void)
{
	for (int slow = 0; slow < 2; slow++) {
		struct cf_persist *p;
		int inloop = 0;
		atomic_store(&quick_calls, 0);
		CHECK(cf_persist_new(loop, 4096, CF_PERSIST_THREAD | CF_PERSIST_ADAPTIVE, quick_persist,
				     slow ? (void *)1 : NULL, &p) == 0);
		for (int b = 0; b < 6; b++) {
			cf_persist_add(p, 4096u * (uint64_t)b, 8);
			ev_run(loop, EVRUN_NOWAIT);
			for (int k = 0; k < 2000 && cf_persist_pending(p); k++)
				ev_run(loop, EVRUN_NOWAIT), usleep(100);
		}
		CHECK(atomic_load(&quick_calls) == 6);
		for (int i = 0; i < 6; i++)
			inloop += pthread_equal(quick_thr[i], pthread_self()) != 0;
		/* fast: the first in the thread (it starts there), then in the loop; slow: all in the thread */
		CHECK(slow ? inloop == 0 : (inloop == 5 && !pthread_equal(quick_thr[0], pthread_self())));
		cf_persist_free(p);
	}
}

/* 5: a persist the test opens one call at a time */
static _Atomic int gate_allowed, gate_calls;

static void gate_persist(void *arg, uint64_t off, uint64_t len)
{
	int i = atomic_fetch_add(&gate_calls, 1);

	for (int k = 0; k < 5000 && atomic_load(&gate_allowed) <= i; k++)
		usleep(1000);
}

static void send_read(int fd, uint64_t id, uint32_t rk, uint64_t addr, uint32_t len)
{
	uint8_t buf[sizeof(struct cf_frame_hdr) + sizeof(struct cf_req_rw)];
	struct cf_frame_hdr h = {.len = sizeof(buf), .op = CF_OP_READ, .id = id};
	struct cf_req_rw rw = {.addr = addr, .rkey = rk, .len = len};

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &rw, sizeof(rw));
	CHECK(send(fd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf));
}

/* Bytes readable on fd after letting the server iterate (no blocking), without consuming them. */
static ssize_t pending_bytes(int fd)
{
	char b[4096];

	for (int k = 0; k < 20; k++)
		ev_run(loop, EVRUN_NOWAIT), usleep(1000);
	return recv(fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
}

static void drain_fd(int fd, size_t n)
{
	char b[4096];

	while (n) {
		ssize_t k = recv(fd, b, n < sizeof(b) ? n : sizeof(b), 0);
		if (k <= 0)
			break;
		n -= (size_t)k;
	}
}

static void test_server_thread(void)
{
	const ssize_t resp = (ssize_t)(sizeof(struct cf_frame_hdr) + sizeof(struct cf_resp));
	int r;

	memset(image, 0, sizeof(image));
	naccepted = 0;
	atomic_store(&gate_allowed, 0);
	atomic_store(&gate_calls, 0);
	r = cf_persist_new(loop, 4096, CF_PERSIST_THREAD, gate_persist, NULL, &gc);
	CHECK(r == 0);
	server_up(2);

	send_write(cfd[0], 1, rkey[0], 16384u, 48); /* batch 1, with the thread until let go */
	usleep(20000);
	CHECK(pending_bytes(cfd[0]) < 0 && atomic_load(&gate_calls) == 1);
	send_write(cfd[0], 2, rkey[0], 20480u, 48); /* same connection: the next batch */
	send_read(cfd[1], 3, rkey[1], 0, 64);       /* another connection: answered meanwhile */
	usleep(20000);
	CHECK(pending_bytes(cfd[1]) > 0);
	CHECK(pending_bytes(cfd[0]) < 0);
	atomic_store(&gate_allowed, 1); /* batch 1 durable */
	for (int k = 0; k < 200 && atomic_load(&gate_calls) < 2; k++)
		ev_run(loop, EVRUN_NOWAIT), usleep(1000);
	CHECK(atomic_load(&gate_calls) == 2);  /* batch 2 with the thread now */
	CHECK(pending_bytes(cfd[0]) == resp); /* the first answer only */
	drain_fd(cfd[0], (size_t)resp);
	CHECK(pending_bytes(cfd[0]) < 0);
	atomic_store(&gate_allowed, 2);
	CHECK(read_resps(cfd[0], 1, 2) == 1);

	for (int i = 0; i < 2; i++)
		close(cfd[i]), cfd[i] = -1;
	cf_tcp_server.destroy(ts);
	cf_persist_free(gc);
}

int main(void)
{
	loop = ev_default_loop(0);
	test_persist_alone();
	test_persist_thread();
	test_persist_adaptive();
	test_server_thread();
	test_server(4096);
	test_server(64);
	if (failures)
		fprintf(stderr, "test_gcommit: %d check(s) failed\n", failures);
	else
		fprintf(stderr, "test_gcommit: ok\n");
	return failures ? 1 : 0;
}
