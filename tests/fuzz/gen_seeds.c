/* SPDX-License-Identifier: MIT */
/*
 * gen_seeds - write the seed corpora of the fuzz targets:
 *   gen_seeds DIR   → DIR/{frame,ctrl,logrec,logscan,header,image,key}/NAME
 * Every seed is a valid input built with proto/'s own encoders (plus a few
 * near misses), so the fuzzers start from deep inside each parser. The
 * generated files are checked in under tests/fuzz/corpus/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cf_auth.h"
#include "cf_layout.h"
#include "cf_logrec.h"
#include "cf_wire.h"
#include "cf_words.h"

static const char *outdir;

static int put(const char *target, const char *name, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	f = fopen(path, "wb");
	if (!f)
		return -errno;
	if (len && fwrite(buf, 1, len, f) != len) {
		fclose(f);
		return -EIO;
	}
	return fclose(f) ? -errno : 0;
}

/* A growable byte buffer. */
struct buf {
	uint8_t b[1 << 18];
	size_t n;
};

static void add(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > sizeof(b->b))
		abort();
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static struct cf_geometry geo_default(void)
{
	struct cf_geometry g = {CF_DEFAULT_MAX_SYSTEMS, CF_DEFAULT_MAX_INSTANCES, CF_DEFAULT_LOCK_ENTRIES,
				CF_DEFAULT_RECORD_ENTRIES, CF_DEFAULT_LOG_SIZE};
	return g;
}

/* ---- control messages: one valid body per type ---- */

static size_t ctrl_msg(uint16_t type, uint8_t *out)
{
	union {
		struct cf_hello hello;
		struct cf_challenge challenge;
		struct cf_auth auth;
		struct cf_welcome welcome;
		struct cf_join join;
		struct cf_joined joined;
		struct cf_conn_attach attach;
		struct cf_inst_name inst_name;
		struct cf_inst_info inst_info;
		struct cf_inst_ref inst_ref;
		struct cf_status status;
		struct cf_policy_msg policy;
		struct cf_recover recover;
		struct cf_recover_r recover_r;
		struct cf_event event;
		struct cf_grants grants;
		struct cf_inst_grants inst_grants;
		struct cf_empty empty;
		struct cf_persist_msg persist;
		struct cf_fence_confirm fence_confirm;
		struct cf_watchdog_msg watchdog;
		struct cf_restart_info restart_info;
		struct cf_suspect suspect;
		struct cf_metrics_req metrics_req;
		struct cf_metrics_r metrics_r;
	} u;
	struct cf_image_map m;
	struct cf_geometry g = geo_default();

	cf_image_map(&g, &m);
	memset(&u, 0, sizeof(u));
	switch (type) {
	case CF_CTRL_HELLO:
		u.hello.magic = CF_HELLO_MAGIC;
		u.hello.version_min = CF_PROTO_VERSION_MIN;
		u.hello.version_max = CF_PROTO_VERSION_MAX;
		u.hello.role = CF_ROLE_SYSTEM;
		memset(u.hello.client_nonce, 0x11, CF_NONCE_LEN);
		break;
	case CF_CTRL_CHALLENGE:
		u.challenge.version = 1;
		memset(u.challenge.server_nonce, 0x22, CF_NONCE_LEN);
		break;
	case CF_CTRL_WELCOME:
		u.welcome.geo = g;
		u.welcome.generation = 3;
		u.welcome.hb_interval_ns = 100000000;
		u.welcome.hb_timeout_ns = 1000000000;
		u.welcome.image_size = m.image_size;
		break;
	case CF_CTRL_JOIN:
		cf_name_put(u.join.name, "SYS1");
		strcpy(u.join.host, "localhost");
		u.join.pid = 1234;
		u.join.starttime = 5678;
		break;
	case CF_CTRL_JOINED:
		u.joined.sys = 1;
		u.joined.epoch = 2;
		u.joined.token = 0x1234567890abcdefull;
		u.joined.grants.count = 3;
		u.joined.grants.g[0] = (struct cf_grant){CF_RGN_HEADER, 0, 0, 0x7f0000000000ull, CF_PAGE, 11, CF_R_READ};
		u.joined.grants.g[1] = (struct cf_grant){CF_RGN_INSTANCES, 0, m.off_instances,
							 0x7f0000000000ull + m.off_instances, 4096, 12,
							 CF_R_READ | CF_R_ATOMIC};
		u.joined.grants.g[2] = (struct cf_grant){CF_RGN_LOCKS, 0, m.off_locks, 0x7f0000000000ull + m.off_locks,
							 (uint64_t)g.lock_entries * 8, 13, CF_R_READ | CF_R_ATOMIC};
		break;
	case CF_CTRL_CONN_ATTACH:
	case CF_CTRL_SENTINEL:
		u.attach.sys = 1;
		u.attach.epoch = 2;
		u.attach.token = 0x1234567890abcdefull;
		break;
	case CF_CTRL_PERSIST:
		u.persist.offset = cf_log_off(&m, 0) + sizeof(struct cf_log_hdr);
		u.persist.length = 4096;
		break;
	case CF_CTRL_INST_OPEN:
		cf_name_put(u.inst_name.name, "NTS001");
		break;
	case CF_CTRL_INST_ATTACH:
	case CF_CTRL_INST_UNREG:
		u.inst_ref.index = 3;
		break;
	case CF_CTRL_POLICY_SET:
		u.policy.policy = CF_POLICY_OPERATOR;
		break;
	case CF_CTRL_RECOVER:
		cf_name_put(u.recover.inst, "NTS001");
		cf_name_put(u.recover.on, "SYS2");
		break;
	case CF_CTRL_RECOVER_RETRY:
		cf_name_put(u.recover.inst, "NTS001");
		break;
	case CF_CTRL_FENCE_CONFIRM:
		cf_name_put(u.fence_confirm.sys, "SYS2");
		break;
	case CF_CTRL_WATCHDOG:
		u.watchdog.timeout_ms = 2000;
		break;
	case CF_CTRL_SUSPECT:
		u.suspect.sys = 2;
		u.suspect.epoch = 3;
		u.suspect.hb = 1234;
		u.suspect.silent_ms = 60;
		break;
	case CF_CTRL_METRICS:
		u.metrics_req.snapshot = 2;
		u.metrics_req.offset = 3968;
		break;
	case CF_CTRL_METRICS_R:
		u.metrics_r.total = 5000;
		u.metrics_r.snapshot = 2;
		u.metrics_r.offset = 3968;
		u.metrics_r.len = 1032;
		memcpy(u.metrics_r.text, "# TYPE cfplex_joins counter\ncfplex_joins_total 3\n# EOF\n", 54);
		break;
	case CF_CTRL_RESTART_INFO_R:
		u.restart_info.state = CF_RESTART_RECOVERY;
		u.restart_info.left = 2;
		u.restart_info.pending = 0x5;
		u.restart_info.since_ns = 1700000000000000000ull;
		break;
	case CF_CTRL_STATUS:
	case CF_CTRL_ERROR:
		u.status.status = -EPERM;
		strcpy(u.status.msg, "cluster key refused");
		break;
	case CF_CTRL_GRANTS:
		u.grants.count = 2;
		u.grants.g[0] = (struct cf_grant){CF_RGN_LOG, 3, m.off_logs + 3 * g.log_size,
						  0x7f0000000000ull + m.off_logs + 3 * g.log_size, g.log_size, 21,
						  CF_R_READ | CF_R_WRITE};
		u.grants.g[1] = (struct cf_grant){CF_RGN_RECORDS, 3, m.off_records + 3 * m.records_size,
						  0x7f0000000000ull + m.off_records + 3 * m.records_size,
						  m.records_size, 22, CF_R_READ | CF_R_WRITE};
		break;
	case CF_CTRL_INST_GRANTS:
		u.inst_grants.grants.count = 2;
		u.inst_grants.grants.g[0] = (struct cf_grant){CF_RGN_LOG, 3, m.off_logs + 3 * g.log_size,
							      0x7f0000000000ull + m.off_logs + 3 * g.log_size, g.log_size,
							      21, CF_R_READ | CF_R_WRITE};
		u.inst_grants.grants.g[1] = (struct cf_grant){CF_RGN_RECORDS, 3, m.off_records + 3 * m.records_size,
							      0x7f0000000000ull + m.off_records + 3 * m.records_size,
							      m.records_size, 22, CF_R_READ | CF_R_WRITE};
		u.inst_grants.log.head = 4096;
		u.inst_grants.log.head_lsn = 17;
		break;
	case CF_CTRL_INST_INFO:
		u.inst_info.index = 3;
		u.inst_info.home_sys = 1;
		u.inst_info.reg = cf_reg_active(1, 2, 7);
		break;
	case CF_CTRL_RECOVER_R:
		u.recover_r.sys = 2;
		strcpy(u.recover_r.msg, "SYS2 recovers NTS001");
		break;
	case CF_CTRL_EVENT:
		u.event.type = CF_EV_INST_FAILED;
		u.event.sys = 1;
		u.event.epoch = 2;
		u.event.inst = 3;
		u.event.reg = cf_reg_failed(8);
		u.event.cause = CF_FAIL_CONN_LOST;
		u.event.fence_us = 120;
		break;
	default:
		break;
	}
	return cf_ctrl_build(out, type, &u, cf_ctrl_body_size(type));
}

static const uint16_t ctrl_types[] = {
	CF_CTRL_HELLO, CF_CTRL_CHALLENGE, CF_CTRL_AUTH, CF_CTRL_WELCOME, CF_CTRL_JOIN, CF_CTRL_JOINED,
	CF_CTRL_CONN_ATTACH, CF_CTRL_GOODBYE, CF_CTRL_PERSIST, CF_CTRL_INST_OPEN, CF_CTRL_INST_ATTACH, CF_CTRL_INST_UNREG,
	CF_CTRL_POLICY_SET, CF_CTRL_RECOVER, CF_CTRL_STATUS, CF_CTRL_GRANTS, CF_CTRL_INST_INFO,
	CF_CTRL_RECOVER_R, CF_CTRL_EVENT, CF_CTRL_ERROR, CF_CTRL_FENCE_CONFIRM, CF_CTRL_RECOVER_RETRY,
	CF_CTRL_WATCHDOG, CF_CTRL_RESTART_INFO, CF_CTRL_RESTART_INFO_R, CF_CTRL_SUSPECT,
	CF_CTRL_METRICS, CF_CTRL_METRICS_R, CF_CTRL_SENTINEL, CF_CTRL_DIED, CF_CTRL_INST_GRANTS,
};

static int seeds_ctrl(void)
{
	static struct buf s;
	uint8_t msg[CF_CTRL_MAX];
	char name[64];
	int r = 0;

	for (size_t i = 0; i < sizeof(ctrl_types) / sizeof(ctrl_types[0]); i++) {
		size_t n = ctrl_msg(ctrl_types[i], msg);
		snprintf(name, sizeof(name), "msg-%s", cf_ctrl_type_str(ctrl_types[i]));
		r |= put("ctrl", name, msg, n);
	}
	/* handshake streams: HELLO then AUTH (server side), CHALLENGE then WELCOME, GRANTS (client side) */
	s.n = 0;
	add(&s, msg, ctrl_msg(CF_CTRL_HELLO, msg));
	add(&s, msg, ctrl_msg(CF_CTRL_AUTH, msg));
	add(&s, msg, ctrl_msg(CF_CTRL_JOIN, msg));
	r |= put("ctrl", "stream-server", s.b, s.n);
	s.n = 0;
	add(&s, msg, ctrl_msg(CF_CTRL_CHALLENGE, msg));
	add(&s, msg, ctrl_msg(CF_CTRL_WELCOME, msg));
	add(&s, msg, ctrl_msg(CF_CTRL_JOINED, msg));
	add(&s, msg, ctrl_msg(CF_CTRL_EVENT, msg));
	r |= put("ctrl", "stream-client", s.b, s.n);
	return r;
}

/* ---- frames ---- */

static void frame(struct buf *b, uint16_t op, uint16_t flags, uint64_t id, const void *body, size_t blen)
{
	struct cf_frame_hdr h = {.len = (uint32_t)(sizeof(h) + blen), .op = op, .flags = flags, .id = id};
	add(b, &h, sizeof(h));
	add(b, body, blen);
}

static int seeds_frame(void)
{
	static struct buf s;
	uint8_t body[CF_FRAME_MAX], msg[CF_CTRL_MAX];
	struct cf_req_rw rw;
	struct cf_req_atomic at;
	struct cf_resp resp;
	const uint64_t base = 0x7f0000000000ull;
	uint8_t side;
	int r = 0;

	/* server side: a client's requests (grants as in fuzz_frame.c) */
	s.n = 0;
	side = 0;
	add(&s, &side, 1);
	rw = (struct cf_req_rw){base + 64, 11, 128};
	frame(&s, CF_OP_READ, 0, 1, &rw, sizeof(rw));
	rw = (struct cf_req_rw){base + 16384 + 40, 13, 24};
	memcpy(body, &rw, sizeof(rw));
	memset(body + sizeof(rw), 0xab, 24);
	frame(&s, CF_OP_WRITE, CF_FF_NO_RESP, 2, body, sizeof(rw) + 24);
	at = (struct cf_req_atomic){base + 4096 + 8, 12, 0, 0, 42};
	frame(&s, CF_OP_CAS, 0, 3, &at, sizeof(at));
	at = (struct cf_req_atomic){base + 65536 - 8, 14, 0, 1, 0};
	frame(&s, CF_OP_FAA, 0, 4, &at, sizeof(at));
	frame(&s, CF_OP_CTRL, 0, 5, msg, ctrl_msg(CF_CTRL_INST_OPEN, msg));
	frame(&s, CF_OP_CTRL, 0, 6, msg, ctrl_msg(CF_CTRL_INST_ATTACH, msg));
	rw = (struct cf_req_rw){base + 16384, 13, 4096}; /* a large write */
	memcpy(body, &rw, sizeof(rw));
	memset(body + sizeof(rw), 0x5c, 4096);
	frame(&s, CF_OP_WRITE, 0, 7, body, sizeof(rw) + 4096);
	r |= put("frame", "server-requests", s.b, s.n);
	/* server side: refusals (out of grant, misaligned, unknown rkey, oversized read) */
	s.n = 0;
	add(&s, &side, 1);
	rw = (struct cf_req_rw){base + 4000, 11, 200};
	frame(&s, CF_OP_READ, 0, 1, &rw, sizeof(rw));
	at = (struct cf_req_atomic){base + 4096 + 4, 12, 0, 0, 1};
	frame(&s, CF_OP_CAS, 0, 2, &at, sizeof(at));
	rw = (struct cf_req_rw){base, 99, 8};
	frame(&s, CF_OP_READ, 0, 3, &rw, sizeof(rw));
	rw = (struct cf_req_rw){base, 11, CF_FRAME_MAX_PAYLOAD + 1};
	frame(&s, CF_OP_READ, 0, 4, &rw, sizeof(rw));
	r |= put("frame", "server-refusals", s.b, s.n);

	/* client side: responses in order, an event in between */
	s.n = 0;
	side = 1;
	add(&s, &side, 1);
	resp = (struct cf_resp){0, 0, 0};
	memcpy(body, &resp, sizeof(resp));
	memset(body + sizeof(resp), 0x33, 64);
	frame(&s, CF_OP_RESP, 0, 1, body, sizeof(resp) + 64);
	resp = (struct cf_resp){0, 0, 42};
	frame(&s, CF_OP_RESP, 0, 2, &resp, sizeof(resp));
	frame(&s, CF_OP_CTRL, 0, 0, msg, ctrl_msg(CF_CTRL_EVENT, msg));
	resp = (struct cf_resp){-EACCES, 0, 0};
	frame(&s, CF_OP_RESP, 0, 3, &resp, sizeof(resp));
	resp = (struct cf_resp){0, 0, 0};
	memcpy(body, &resp, sizeof(resp));
	memset(body + sizeof(resp), 0x44, 4096);
	frame(&s, CF_OP_RESP, 0, 4, body, sizeof(resp) + 4096);
	resp = (struct cf_resp){0, 0, 7};
	frame(&s, CF_OP_RESP, 0, 5, &resp, sizeof(resp));
	frame(&s, CF_OP_CTRL, 0, 6, msg, ctrl_msg(CF_CTRL_GRANTS, msg));
	r |= put("frame", "client-responses", s.b, s.n);

	/* near misses: a truncated frame, an unknown op */
	s.n = 0;
	side = 0;
	add(&s, &side, 1);
	rw = (struct cf_req_rw){base, 11, 8};
	frame(&s, CF_OP_READ, 0, 1, &rw, sizeof(rw));
	s.n -= 3;
	r |= put("frame", "server-truncated", s.b, s.n);
	s.n = 0;
	add(&s, &side, 1);
	frame(&s, 9, 0, 1, &rw, sizeof(rw));
	r |= put("frame", "server-unknown-op", s.b, s.n);
	return r;
}

/* ---- log records and regions ---- */

static int seeds_logrec(void)
{
	static uint8_t rec[CF_LOGREC_MAX_IMAGE + 64], img[CF_LOGREC_MAX_IMAGE], region[64 + 4096];
	struct cf_log_hdr lh;
	uint64_t lsn = 100, pos;
	int n, r = 0;
	char name[64];

	for (size_t i = 0; i < sizeof(img); i++)
		img[i] = (uint8_t)(i * 13);
	for (int t = CF_LR_BEGIN; t <= CF_LR_END; t++) {
		uint32_t len = t == CF_LR_UPDATE ? 37 : 0;
		n = cf_logrec_encode(rec, sizeof(rec), (enum cf_logrec_type)t, 7, 3, 1, 4096, len ? img : NULL, len);
		snprintf(name, sizeof(name), "rec-%s", cf_logrec_type_str((enum cf_logrec_type)t));
		r |= n < 0 ? n : put("logrec", name, rec, (size_t)n);
	}
	n = cf_logrec_encode(rec, sizeof(rec), CF_LR_UPDATE, 8, 3, 2, 0, img, CF_LOGREC_MAX_IMAGE);
	r |= n < 0 ? n : put("logrec", "rec-UPDATE-max", rec, (size_t)n);
	n = cf_logrec_encode_pad(rec, 96, 9);
	r |= n < 0 ? n : put("logrec", "rec-PAD", rec, (size_t)n);

	/*
	 * A region (header + 4096-byte ring) as the writer leaves it: head in the
	 * second lap, a transaction, a PAD at the ring end, records continuing at 0.
	 */
	memset(region, 0, sizeof(region));
	pos = 4096 + 3600; /* logical head: ring offset 3600 */
	memset(&lh, 0, sizeof(lh));
	lh.head = pos;
	lh.head_lsn = lsn;
	memcpy(region, &lh, sizeof(lh));
#define PUT_REC(expr)                                                               \
	do {                                                                        \
		n = (expr);                                                         \
		if (n < 0)                                                          \
			return n;                                                   \
		pos += (uint64_t)n;                                                 \
		lsn++;                                                              \
	} while (0)
	PUT_REC(cf_logrec_encode(region + 64 + pos % 4096, 4096 - pos % 4096, CF_LR_BEGIN, lsn, 77, 0, 0, NULL, 0));
	PUT_REC(cf_logrec_encode(region + 64 + pos % 4096, 4096 - pos % 4096, CF_LR_UPDATE, lsn, 77, 1, 512, img, 200));
	/* 4096 - 3896 = 200 left: an UPDATE of 200 does not fit → PAD to the end */
	PUT_REC(cf_logrec_encode_pad(region + 64 + pos % 4096, 4096 - pos % 4096, lsn));
	PUT_REC(cf_logrec_encode(region + 64 + pos % 4096, 4096 - pos % 4096, CF_LR_UPDATE, lsn, 77, 1, 712, img, 200));
	PUT_REC(cf_logrec_encode(region + 64 + pos % 4096, 4096 - pos % 4096, CF_LR_COMMIT, lsn, 77, 0, 0, NULL, 0));
	PUT_REC(cf_logrec_encode(region + 64 + pos % 4096, 4096 - pos % 4096, CF_LR_END, lsn, 77, 0, 0, NULL, 0));
	PUT_REC(cf_logrec_encode(region + 64 + pos % 4096, 4096 - pos % 4096, CF_LR_BEGIN, lsn, 78, 0, 0, NULL, 0));
	PUT_REC(cf_logrec_encode(region + 64 + pos % 4096, 4096 - pos % 4096, CF_LR_UPDATE, lsn, 78, 2, 0, img, 64));
#undef PUT_REC
	r |= put("logrec", "region-wrapped", region, sizeof(region));
	r |= put("logscan", "region-wrapped", region, sizeof(region));
	/* the same region with a torn tail: last record's image half written */
	region[64 + (pos - 30) % 4096] ^= 0xff;
	r |= put("logrec", "region-torn-tail", region, sizeof(region));
	r |= put("logscan", "region-torn-tail", region, sizeof(region));
	/* an empty log: head 0, zero ring */
	memset(region, 0, sizeof(region));
	r |= put("logscan", "region-empty", region, sizeof(region));
	return r;
}

/* ---- headers ---- */

static int seeds_header(void)
{
	static uint8_t buf[8 + CF_PAGE];
	struct cf_geometry gs[3] = {
		geo_default(),
		{1, 1, CF_LOCK_ENTRIES_MIN, CF_RECORD_ENTRIES_MIN, CF_LOG_SIZE_MIN},
		{CF_MAX_SYSTEMS_LIMIT, CF_MAX_INSTANCES_LIMIT, CF_LOCK_ENTRIES_LIMIT, CF_RECORD_ENTRIES_LIMIT,
		 CF_LOG_SIZE_LIMIT},
	};
	static const char *names[3] = {"hdr-default", "hdr-min", "hdr-max"};
	int r = 0;

	for (int i = 0; i < 3; i++) {
		struct cf_header h;
		uint64_t avail;
		char name[64];

		cf_header_init(&h, &gs[i], 1700000000000000000ull);
		h.generation = 4;
		avail = h.image_size;
		memset(buf, 0, sizeof(buf));
		memcpy(buf, &avail, 8);
		memcpy(buf + 8, &h, sizeof(h));
		r |= put("header", names[i], buf, 8 + sizeof(h));
		avail = h.image_size - 1; /* truncated file */
		memcpy(buf, &avail, 8);
		snprintf(name, sizeof(name), "%s-truncated", names[i]);
		r |= put("header", name, buf, 8 + sizeof(h));
	}
	return r;
}

/* ---- image files: mask byte, 32-bit file size, the file's first bytes ---- */

static int seeds_image(void)
{
	static uint8_t buf[5 + CF_PAGE];
	struct cf_geometry g = {1, 1, CF_LOCK_ENTRIES_MIN, CF_RECORD_ENTRIES_MIN, CF_LOG_SIZE_MIN};
	struct cf_header h;
	uint32_t fsize;
	int r = 0;

	cf_header_init(&h, &g, 1700000000000000000ull);
	memset(buf, 0, sizeof(buf));
	buf[0] = 0x1f; /* every geometry option given */
	fsize = (uint32_t)h.image_size;
	memcpy(buf + 1, &fsize, 4);
	memcpy(buf + 5, &h, sizeof(h));
	r |= put("image", "valid-min", buf, 5 + sizeof(h));
	fsize = (uint32_t)h.image_size - CF_PAGE;
	memcpy(buf + 1, &fsize, 4);
	r |= put("image", "truncated", buf, 5 + sizeof(h));
	fsize = (uint32_t)h.image_size;
	memcpy(buf + 1, &fsize, 4);
	h.geo.max_systems = 2; /* valid image of another geometry: mismatch when given */
	h.crc = cf_header_crc(&h);
	memcpy(buf + 5, &h, sizeof(h));
	r |= put("image", "other-geometry", buf, 5 + sizeof(h));
	buf[5 + 20] ^= 1; /* crc mismatch */
	r |= put("image", "bad-crc", buf, 5 + sizeof(h));
	memset(buf + 5, 0, sizeof(h)); /* zero header: formatted */
	fsize = 3 * CF_PAGE;
	memcpy(buf + 1, &fsize, 4);
	r |= put("image", "zero-header", buf, 5 + 64);
	return r;
}

static int seeds_key(void)
{
	static const char hex[] = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF\n";
	uint8_t raw[CF_KEY_LEN];
	int r = 0;

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(i * 7 + 3);
	r |= put("key", "hex", hex, sizeof(hex) - 1);
	r |= put("key", "raw", raw, sizeof(raw));
	r |= put("key", "short", hex, 20);
	return r;
}

int main(int argc, char **argv)
{
	int r;

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	if (mkdir(outdir, 0755) < 0 && errno != EEXIST) {
		perror(outdir);
		return 1;
	}
	r = seeds_ctrl() | seeds_frame() | seeds_logrec() | seeds_header() | seeds_image() | seeds_key();
	if (r) {
		fprintf(stderr, "gen_seeds: writing seeds failed\n");
		return 1;
	}
	return 0;
}
