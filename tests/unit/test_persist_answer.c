/* SPDX-License-Identifier: MIT */
/*
 * test_persist_answer - cfserver's answer to the PERSIST control request
 * (cfserver/cf_persist_req.c over cf_persist): the control plane is compiled
 * into this test (its internals through cf_core_int.h) with a fake transport (a table of server ops that records what is sent) and
 * an --nvram image in a temporary file whose persist function is a stub that
 * records each call. Connections are put in state SYSTEM with a write grant
 * by hand (no handshake).
 *
 *   1. five PERSISTs of three connections in one loop iteration: nothing is
 *      persisted or answered before the loop's commit point, then ONE persist
 *      (page granularity: the span) and five answers, in arrival order, none
 *      sent before the persist;
 *   2. reply order: a connection with a waiting PERSIST sends another request:
 *      the PERSIST is committed and answered before that request is handled;
 *   3. a closing connection's waiting PERSIST is dropped unanswered; the
 *      others of the group are answered;
 *   4. refusals (outside a write grant, empty) are answered at once with
 *      -EINVAL and counted, nothing is persisted;
 *   5. a DRAM CF (no group commit) answers at once;
 *   6. a file image persists in cf_persist's thread: a PERSIST that comes
 *      while a batch is with the thread is not answered by that batch's
 *      completion but after the next persist.
 */
#include "cf_core_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_image.h"

static int failures;
#define CHECK(x)                                                                            \
	do {                                                                                \
		if (!(x)) {                                                                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #x); \
			failures++;                                                         \
		}                                                                           \
	} while (0)

#define NSC 3
#define MAXSENT 64

struct cf_sconn {
	void *data;
	int open;
};
struct cf_tserver {
	int dummy;
};

static struct cf_sconn scs[NSC];
static struct cf_tserver the_ts;
static struct cf_server_cbs the_cbs;
static unsigned npersist;
static uint64_t persist_lo[MAXSENT], persist_len[MAXSENT];
static struct {
	struct cf_sconn *sc;
	uint64_t id;
	int status;
	unsigned persists_before; /* persist calls made when it was sent */
} sent[MAXSENT];
static unsigned nsent;
static uint8_t *img_base;

/* case 6: with gate_on, the persister thread's call i waits until gate_allowed > i (bounded) */
static _Atomic int gate_on, gate_allowed;

static void stub_persist(const void *ptr, size_t size)
{
	usleep(1000); /* a disk's msync: slow enough that cf_core's group commit keeps the thread */
	for (int k = 0; k < 5000 && atomic_load(&gate_on) && atomic_load(&gate_allowed) <= (int)npersist; k++)
		usleep(1000);
	persist_lo[npersist] = (uint64_t)((const uint8_t *)ptr - img_base);
	persist_len[npersist] = size;
	npersist++;
}

static int f_listen(struct ev_loop *loop, const char *addr, void *image, uint64_t size,
		    const struct cf_server_cbs *cbs, struct cf_tserver **out)
{
	the_cbs = *cbs;
	*out = &the_ts;
	return 0;
}
static void f_destroy(struct cf_tserver *t)
{
	for (int i = 0; i < NSC; i++)
		if (scs[i].open) {
			scs[i].open = 0;
			the_cbs.on_close(the_cbs.arg, &scs[i], 0);
		}
}
static int f_port(struct cf_tserver *t)
{
	return 1;
}
static int f_send_ctrl(struct cf_sconn *sc, uint64_t id, const void *msg, size_t len)
{
	const struct cf_ctrl_hdr *h = msg;
	const struct cf_status *st = (const void *)(h + 1);

	if (nsent < MAXSENT && h->type == CF_CTRL_STATUS) {
		sent[nsent].sc = sc;
		sent[nsent].id = id;
		sent[nsent].status = st->status;
		sent[nsent].persists_before = npersist;
		nsent++;
	}
	return 0;
}
static int f_fence(struct cf_sconn *sc)
{
	return 0;
}
static void f_close(struct cf_sconn *sc)
{
}
static int f_local_cas(struct cf_tserver *t, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old)
{
	*old = __sync_val_compare_and_swap((uint64_t *)(img_base + off), compare, swap);
	return 0;
}
static void f_set_data(struct cf_sconn *sc, void *data)
{
	sc->data = data;
}
static void *f_get_data(struct cf_sconn *sc)
{
	return sc->data;
}
static const char *f_peer(struct cf_sconn *sc)
{
	return "fake";
}

static const struct cf_server_ops fake_ops = {
	.name = "fake", .listen = f_listen, .destroy = f_destroy, .port = f_port, .send_ctrl = f_send_ctrl,
	.fence = f_fence, .close = f_close, .local_cas = f_local_cas, .set_data = f_set_data,
	.get_data = f_get_data, .peer = f_peer,
};

/* A connection in state SYSTEM with a write grant on [off, off+len). */
static struct core_conn *conn(int i, uint64_t off, uint64_t len)
{
	struct core_conn *cc;

	scs[i].open = 1;
	the_cbs.on_accept(the_cbs.arg, &scs[i]);
	cc = scs[i].data;
	cc->state = CS_SYSTEM;
	cc->grants[0] = (struct cgrant){.rights = CF_R_WRITE, .off = off, .len = len};
	cc->ngrants = 1;
	return cc;
}

static void req(int i, uint64_t id, uint16_t type, uint64_t off, uint64_t len)
{
	uint8_t buf[CF_CTRL_MAX];
	struct cf_persist_msg p = {off, len};
	size_t n = cf_ctrl_build(buf, type, &p, type == CF_CTRL_PERSIST ? sizeof(p) : 0);

	the_cbs.on_ctrl(the_cbs.arg, &scs[i], id, buf, n);
}

static void close_conn(int i)
{
	struct core_conn *cc = scs[i].data;

	cc->state = CS_CLOSING; /* as refuse() leaves it: no failure processing here */
	scs[i].open = 0;
	the_cbs.on_close(the_cbs.arg, &scs[i], 0);
}

static void reset(void)
{
	npersist = nsent = 0;
}

/*
 * The loop's commit point, then (a file image persists in cf_persist's
 * thread) the loop until that batch is persisted and answered.
 */
static void settle(struct ev_loop *loop, struct cf_core *c)
{
	ev_run(loop, EVRUN_NOWAIT);
	for (int i = 0; i < 1000 && cf_persist_pending(c->gc); i++)
		ev_run(loop, EVRUN_ONCE);
}

static void test_durable(const char *path)
{
	struct cf_geometry geo = {CF_DEFAULT_MAX_SYSTEMS, CF_DEFAULT_MAX_INSTANCES, 1024, 256, 64 * 1024};
	struct cf_core_cfg cfg = {.hb_interval_ns = 100000000ull, .hb_timeout_ns = 1000000000ull, .max_conns = 8};
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct cf_image im;
	struct cf_core *c = NULL;
	uint64_t base;
	int r;

	memset(&im, 0, sizeof(im));
	r = cf_image_open(&im, path, &geo, 0);
	CHECK(r == 0);
	if (r < 0) {
		fprintf(stderr, "image: %s\n", im.why);
		return;
	}
	CHECK(cf_image_persist_gran(&im) == CF_PAGE);
	img_base = im.base;
	im.persist_fn = stub_persist;
	CHECK(cf_core_new(loop, &fake_ops, &im, &cfg, &c) == 0);
	CHECK(cf_core_listen(c, "fake") == 0);
	CHECK(c->gc != NULL);
	base = im.map.off_instances; /* any range inside the image */
	for (int i = 0; i < NSC; i++)
		conn(i, base, 1u << 16);

	/* 1. one iteration: five PERSISTs of three connections, one persist, then the answers */
	reset();
	req(0, 11, CF_CTRL_PERSIST, base + 4096, 128);
	req(1, 21, CF_CTRL_PERSIST, base + 4096 + 128, 64);
	req(2, 31, CF_CTRL_PERSIST, base + 8192, 4096);
	CHECK(npersist == 0 && nsent == 0); /* nothing before the commit point */
	settle(loop, c);
	CHECK(npersist == 1);
	CHECK(persist_lo[0] == base + 4096 && persist_len[0] == 8192);
	CHECK(nsent == 3);
	for (unsigned k = 0; k < nsent; k++)
		CHECK(sent[k].status == 0 && sent[k].persists_before == 1);
	CHECK(sent[0].id == 11 && sent[1].id == 21 && sent[2].id == 31); /* arrival order */
	settle(loop, c); /* nothing waiting: nothing persisted */
	CHECK(npersist == 1 && nsent == 3);

	/* 2. reply order: a later request of the connection commits its waiting PERSIST first */
	reset();
	req(0, 12, CF_CTRL_PERSIST, base, 8);
	req(1, 22, CF_CTRL_PERSIST, base + 64, 8);
	req(0, 13, CF_CTRL_PERSIST, base + 128, 8);
	CHECK(npersist == 1 && nsent == 2);
	CHECK(sent[0].id == 12 && sent[1].id == 22 && sent[0].persists_before == 1);
	settle(loop, c);
	CHECK(npersist == 2 && nsent == 3 && sent[2].id == 13 && sent[2].persists_before == 2);

	/* 3. a closing connection's waiting PERSIST is dropped unanswered */
	reset();
	req(0, 14, CF_CTRL_PERSIST, base, 8);
	req(1, 23, CF_CTRL_PERSIST, base + 8, 8);
	close_conn(0);
	settle(loop, c);
	CHECK(npersist == 1 && nsent == 1 && sent[0].id == 23 && sent[0].sc == &scs[1]);

	/* 4. refusals: at once, -EINVAL, nothing persisted */
	reset();
	req(1, 24, CF_CTRL_PERSIST, base + (1u << 16), 8); /* past the grant */
	req(1, 25, CF_CTRL_PERSIST, base, 0);             /* empty */
	CHECK(nsent == 2 && sent[0].status == -EINVAL && sent[1].status == -EINVAL);
	settle(loop, c);
	CHECK(npersist == 0 && nsent == 2);
	CHECK(c->pw.requests == 8 && c->pw.refused == 2);
	CHECK(c->pw.groups == 4 && c->pw.max_group == 3);

	/* 6. a PERSIST that comes while a batch is with the thread waits for the next batch */
	reset();
	atomic_store(&gate_on, 1);
	atomic_store(&gate_allowed, 0);
	req(1, 41, CF_CTRL_PERSIST, base, 8); /* (connection 0 was closed in 3) */
	ev_run(loop, EVRUN_NOWAIT); /* batch 1 to the thread, held at the gate */
	req(2, 51, CF_CTRL_PERSIST, base + 64, 8);
	ev_run(loop, EVRUN_NOWAIT);
	CHECK(nsent == 0);
	atomic_store(&gate_allowed, 1);
	for (int k = 0; k < 2000 && nsent < 1; k++)
		ev_run(loop, EVRUN_NOWAIT), usleep(1000);
	CHECK(nsent == 1 && sent[0].id == 41 && sent[0].persists_before == 1);
	for (int k = 0; k < 20; k++)
		ev_run(loop, EVRUN_NOWAIT), usleep(1000);
	CHECK(nsent == 1); /* 51 is in batch 2, still at the gate */
	atomic_store(&gate_allowed, 2);
	settle(loop, c);
	CHECK(nsent == 2 && sent[1].id == 51 && sent[1].persists_before == 2);
	atomic_store(&gate_on, 0);

	cf_core_free(c);
	cf_image_close(&im);
	ev_loop_destroy(loop);
}

static void test_volatile(void)
{
	struct cf_geometry geo = {CF_DEFAULT_MAX_SYSTEMS, CF_DEFAULT_MAX_INSTANCES, 1024, 256, 64 * 1024};
	struct cf_core_cfg cfg = {.hb_interval_ns = 100000000ull, .hb_timeout_ns = 1000000000ull, .max_conns = 8};
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct cf_image im;
	struct cf_core *c = NULL;

	memset(&im, 0, sizeof(im));
	CHECK(cf_image_open(&im, NULL, &geo, 0) == 0);
	img_base = im.base;
	CHECK(cf_core_new(loop, &fake_ops, &im, &cfg, &c) == 0);
	CHECK(cf_core_listen(c, "fake") == 0);
	CHECK(c->gc == NULL);
	conn(0, im.map.off_instances, 4096);
	reset();
	req(0, 41, CF_CTRL_PERSIST, im.map.off_instances, 8);
	CHECK(nsent == 1 && sent[0].id == 41 && sent[0].status == 0);
	CHECK(c->pw.requests == 0);
	cf_core_free(c);
	cf_image_close(&im);
	ev_loop_destroy(loop);
}

int main(void)
{
	char path[] = "/tmp/test_persist_answer.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	test_durable(path);
	unlink(path);
	test_volatile();
	if (failures) {
		fprintf(stderr, "test_persist_answer: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_persist_answer: ok\n");
	return 0;
}
