/* SPDX-License-Identifier: MIT */
/*
 * fuzz_frame - a tcp connection's byte stream.
 *
 * The first input byte picks the end: even → the server reading a client's
 * requests, odd → a client reading the server's responses and events. The
 * rest is the stream, split into frames as the real reader does: header,
 * cf_frame_check, wait for the whole frame, then per-op body parsing. Each
 * frame is copied into an exact-size buffer, so a body parser that reads past
 * its frame is caught by ASan. One-sided requests execute against a small
 * fake image with one connection's grants, with the checks a server must
 * make (grant, rights, range without overflow, alignment, payload limits);
 * the resulting accesses stay inside the image (ASan watches that too).
 */
#include <errno.h>
#include <string.h>

#include "cf_util.h"
#include "cf_wire.h"
#include "fuzz.h"
#include "fuzz_ctrl_interp.h"

#define IMG_BASE 0x7f0000000000ull
#define IMG_SIZE (64u * 1024u)

static uint64_t *img; /* IMG_SIZE bytes, heap so ASan sees its bounds */

struct fgrant {
	uint32_t rkey, rights;
	uint64_t off, len;
};

/* One connection's grants: read-only header, an atomic table, a writable log. */
static const struct fgrant grants[] = {
	{11, CF_R_READ, 0, 4096},
	{12, CF_R_READ | CF_R_ATOMIC, 4096, 8192},
	{13, CF_R_READ | CF_R_WRITE, 16384, 32768},
	{14, CF_R_READ | CF_R_WRITE | CF_R_ATOMIC, IMG_SIZE - 4096, 4096},
};

/* 0 and the image offset, or the error a server answers with. */
static int grant_check(uint32_t rkey, uint64_t addr, uint64_t len, uint32_t right, uint64_t *off)
{
	for (size_t i = 0; i < CF_ARRAY_SIZE(grants); i++) {
		const struct fgrant *g = &grants[i];
		uint64_t start = IMG_BASE + g->off, rel;

		if (g->rkey != rkey)
			continue;
		if (!(g->rights & right))
			return -EACCES;
		if (addr < start)
			return -ERANGE;
		rel = addr - start;
		if (rel > g->len || len > g->len - rel)
			return -ERANGE;
		*off = g->off + rel;
		FUZZ_ASSERT(*off + len <= IMG_SIZE);
		return 0;
	}
	return -EACCES;
}

/* Build and check the response the server would send. */
static void respond(uint64_t id, int status, uint64_t value, const void *payload, uint32_t plen)
{
	struct cf_frame_hdr h = {.len = (uint32_t)(sizeof(h) + sizeof(struct cf_resp) + plen),
				 .op = CF_OP_RESP, .flags = 0, .id = id};
	struct cf_resp r = {.status = status, .pad = 0, .value = value};
	uint8_t *out = malloc(h.len);

	FUZZ_ASSERT(out != NULL);
	FUZZ_ASSERT(plen <= CF_FRAME_MAX_PAYLOAD);
	memcpy(out, &h, sizeof(h));
	memcpy(out + sizeof(h), &r, sizeof(r));
	if (plen)
		memcpy(out + sizeof(h) + sizeof(r), payload, plen);
	FUZZ_ASSERT(cf_frame_check((const struct cf_frame_hdr *)(const void *)out) == 0);
	free(out);
}

/* Server side: 0 to go on, -EBADMSG to close the connection. */
static int serve_frame(const struct cf_frame_hdr *h, const uint8_t *body, uint32_t blen)
{
	struct cf_req_rw rw;
	struct cf_req_atomic at;
	uint64_t off = 0, old;
	int r;

	switch (h->op) {
	case CF_OP_READ:
		FUZZ_ASSERT(blen == sizeof(rw));
		memcpy(&rw, body, sizeof(rw));
		if (rw.len > CF_FRAME_MAX_PAYLOAD) {
			respond(h->id, -EMSGSIZE, 0, NULL, 0);
			return 0;
		}
		r = grant_check(rw.rkey, rw.addr, rw.len, CF_R_READ, &off);
		respond(h->id, r, 0, r ? NULL : (const uint8_t *)img + off, r ? 0 : rw.len);
		return 0;
	case CF_OP_WRITE:
		FUZZ_ASSERT(blen >= sizeof(rw));
		memcpy(&rw, body, sizeof(rw));
		if (rw.len != blen - sizeof(rw))
			return -EBADMSG; /* the frame and its request disagree */
		if (rw.len > CF_FRAME_MAX_PAYLOAD) {
			r = -EMSGSIZE;
		} else {
			r = grant_check(rw.rkey, rw.addr, rw.len, CF_R_WRITE, &off);
			if (r == 0 && rw.len)
				memcpy((uint8_t *)img + off, body + sizeof(rw), rw.len);
		}
		if (!(h->flags & CF_FF_NO_RESP) || r)
			respond(h->id, r, 0, NULL, 0);
		return 0;
	case CF_OP_CAS:
	case CF_OP_FAA:
		FUZZ_ASSERT(blen == sizeof(at));
		memcpy(&at, body, sizeof(at));
		if (at.addr % 8) {
			respond(h->id, -EINVAL, 0, NULL, 0);
			return 0;
		}
		r = grant_check(at.rkey, at.addr, 8, CF_R_ATOMIC, &off);
		if (r) {
			respond(h->id, r, 0, NULL, 0);
			return 0;
		}
		FUZZ_ASSERT(off % 8 == 0);
		old = img[off / 8];
		if (h->op == CF_OP_CAS) {
			if (old == at.compare)
				img[off / 8] = at.swap;
		} else {
			img[off / 8] = old + at.compare;
		}
		respond(h->id, 0, old, NULL, 0);
		return 0;
	case CF_OP_CTRL:
		FUZZ_ASSERT(blen >= sizeof(struct cf_ctrl_hdr) && blen <= CF_CTRL_MAX);
		if (cf_ctrl_check(body, blen) < 0)
			return -EBADMSG;
		if (fz_ctrl_interpret(body, blen) < 0)
			return -EBADMSG;
		return 0;
	case CF_OP_RESP:
		return -EBADMSG; /* a client never sends responses */
	}
	FUZZ_ASSERT(0); /* cf_frame_check let an unknown op through */
	return -EBADMSG;
}

/* Client side: pending requests answered in order, events with id 0. */
struct pending {
	uint64_t id;
	uint16_t op;
	uint32_t len; /* READ: bytes asked for */
};
static const struct pending pend[] = {
	{1, CF_OP_READ, 64}, {2, CF_OP_CAS, 0}, {3, CF_OP_WRITE, 0}, {4, CF_OP_READ, 4096},
	{5, CF_OP_FAA, 0}, {6, CF_OP_CTRL, 0}, {7, CF_OP_READ, 0}, {8, CF_OP_READ, CF_FRAME_MAX_PAYLOAD},
};

static int client_frame(const struct cf_frame_hdr *h, const uint8_t *body, uint32_t blen, size_t *next)
{
	struct cf_resp resp;
	const struct pending *p;

	if (h->op == CF_OP_CTRL) {
		if (cf_ctrl_check(body, blen) < 0 || fz_ctrl_interpret(body, blen) < 0)
			return -EBADMSG;
		if (h->id == 0)
			return 0; /* event */
		/* a ctrl reply must answer the oldest pending request, a CTRL one */
		if (*next >= CF_ARRAY_SIZE(pend) || pend[*next].id != h->id || pend[*next].op != CF_OP_CTRL)
			return -EBADMSG;
		(*next)++;
		return 0;
	}
	if (h->op != CF_OP_RESP)
		return -EBADMSG; /* a server never sends requests */
	FUZZ_ASSERT(blen >= sizeof(resp));
	memcpy(&resp, body, sizeof(resp));
	if (*next >= CF_ARRAY_SIZE(pend) || pend[*next].id != h->id)
		return -EBADMSG; /* out of order or unsolicited */
	p = &pend[(*next)++];
	if (resp.status > 0)
		return -EBADMSG;
	if (p->op == CF_OP_READ && resp.status == 0) {
		if (blen - sizeof(resp) != p->len)
			return -EBADMSG;
		memcpy(img, body + sizeof(resp), p->len < IMG_SIZE ? p->len : IMG_SIZE);
	} else if (blen != sizeof(resp)) {
		return -EBADMSG;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 1, next = 0;
	int server;

	if (!img) {
		img = calloc(1, IMG_SIZE);
		FUZZ_ASSERT(img != NULL);
	}
	if (size < 1)
		return 0;
	server = !(data[0] & 1);
	while (size - off >= sizeof(struct cf_frame_hdr)) {
		struct cf_frame_hdr h;
		uint8_t *frame;
		uint32_t flen;
		int r;

		memcpy(&h, data + off, sizeof(h));
		r = cf_frame_check(&h);
		if (r < 0) {
			FUZZ_ASSERT(r == -EBADMSG);
			break; /* malformed: that connection is closed */
		}
		FUZZ_ASSERT(h.len >= sizeof(h) && h.len <= CF_FRAME_MAX);
		FUZZ_ASSERT(h.op >= CF_OP_READ && h.op <= CF_OP_RESP && !(h.flags & ~(CF_FF_NO_RESP | CF_FF_MAC)));
		if (h.len > size - off)
			break; /* incomplete: the reader waits for more */
		flen = h.len;
		if (h.flags & CF_FF_MAC) {
			/*
			 * A tagged frame: the real readers check the MAC first (no
			 * fuzz input forges one); parse what an authenticated peer
			 * could send behind a good tag: the frame without it.
			 */
			FUZZ_ASSERT(h.len >= sizeof(h) + CF_FRAME_TAG_LEN);
			h.len -= CF_FRAME_TAG_LEN;
			h.flags &= (uint16_t)~CF_FF_MAC;
		}
		frame = malloc(h.len);
		FUZZ_ASSERT(frame != NULL);
		memcpy(frame, data + off, h.len);
		if (server)
			r = serve_frame(&h, frame + sizeof(h), h.len - (uint32_t)sizeof(h));
		else
			r = client_frame(&h, frame + sizeof(h), h.len - (uint32_t)sizeof(h), &next);
		free(frame);
		if (r < 0)
			break;
		off += flen;
	}
	return 0;
}
