/* SPDX-License-Identifier: MIT */
/*
 * test_auth.c - unit tests of proto/cf_auth: the challenge-response MACs and
 * the cluster key parser. "N passed, M failed" at the end; exit 1 on failure.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_auth.h"
#include "cf_key.h"
#include "cf_util.h"

static unsigned long n_pass, n_fail;

#define CHECK(cond) CHECKF(cond, "%s", "")
#define CHECKF(cond, fmt, ...)                                                                    \
	do {                                                                                      \
		if (cond) {                                                                       \
			n_pass++;                                                                 \
		} else {                                                                          \
			if (n_fail++ < 40)                                                        \
				fprintf(stderr, "%s:%d: FAIL %s " fmt "\n", __FILE__, __LINE__, #cond, \
					__VA_ARGS__);                                             \
		}                                                                                 \
	} while (0)

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
}

/* The terms of a HELLO of this build's range and the given role, answered with its newest version. */
static const struct cf_auth_terms *tp(uint32_t role)
{
	static struct cf_auth_terms t;

	t = (struct cf_auth_terms){ CF_PROTO_VERSION_MIN, CF_PROTO_VERSION_MAX, CF_PROTO_VERSION_MAX, role };
	return &t;
}

/*
 * Both MACs bind what the handshake agreed: a HELLO whose range was narrowed
 * or a CHALLENGE whose version was changed on the way (a downgrade) makes the
 * other side's MAC differ, as does another role.
 */
static void test_terms_bound(void)
{
	uint8_t key[CF_KEY_LEN], cn[CF_NONCE_LEN], sn[CF_NONCE_LEN];
	uint8_t s0[CF_MAC_LEN], c0[CF_MAC_LEN], s1[CF_MAC_LEN], c1[CF_MAC_LEN];
	const struct cf_auth_terms base = { 3, 5, 5, CF_ROLE_SYSTEM };
	struct cf_auth_terms t;

	fill(key, sizeof(key), 4);
	fill(cn, sizeof(cn), 5);
	fill(sn, sizeof(sn), 6);
	cf_auth_mac_server(key, cn, sn, &base, s0);
	cf_auth_mac_client(key, sn, cn, &base, c0);
	for (int field = 0; field < 4; field++) {
		for (uint32_t bit = 0; bit < (field == 3 ? 32u : 16u); bit++) {
			t = base;
			switch (field) {
			case 0: t.version_min ^= (uint16_t)(1u << bit); break;
			case 1: t.version_max ^= (uint16_t)(1u << bit); break;
			case 2: t.version ^= (uint16_t)(1u << bit); break;
			default: t.role ^= 1u << bit; break;
			}
			cf_auth_mac_server(key, cn, sn, &t, s1);
			cf_auth_mac_client(key, sn, cn, &t, c1);
			CHECKF(cf_auth_verify(s0, s1) == -EPERM, "server MAC, field %d bit %u", field, bit);
			CHECKF(cf_auth_verify(c0, c1) == -EPERM, "client MAC, field %d bit %u", field, bit);
		}
	}
	/* the same terms built from a HELLO and a choice */
	{
		struct cf_hello h = { .magic = CF_HELLO_MAGIC, .version_min = 3, .version_max = 5, .role = CF_ROLE_SYSTEM };
		t = cf_auth_terms_of(&h, 5);
		cf_auth_mac_server(key, cn, sn, &t, s1);
		CHECK(cf_auth_verify(s0, s1) == 0);
		h.version_max = 4; /* narrowed on the way: the server MACs what it read */
		t = cf_auth_terms_of(&h, 4);
		cf_auth_mac_server(key, cn, sn, &t, s1);
		CHECK(cf_auth_verify(s0, s1) == -EPERM);
	}
}

static void test_macs(void)
{
	uint8_t key[CF_KEY_LEN], key2[CF_KEY_LEN], cn[CF_NONCE_LEN], sn[CF_NONCE_LEN];
	uint8_t m1[CF_MAC_LEN], m2[CF_MAC_LEN], ms[CF_MAC_LEN], mc[CF_MAC_LEN];

	fill(key, sizeof(key), 1);
	fill(key2, sizeof(key2), 1);
	key2[CF_KEY_LEN - 1] ^= 1;
	fill(cn, sizeof(cn), 2);
	fill(sn, sizeof(sn), 3);

	/* deterministic */
	cf_auth_mac_server(key, cn, sn, tp(CF_ROLE_SYSTEM), m1);
	cf_auth_mac_server(key, cn, sn, tp(CF_ROLE_SYSTEM), m2);
	CHECK(memcmp(m1, m2, CF_MAC_LEN) == 0 && cf_auth_verify(m1, m2) == 0);
	cf_auth_mac_client(key, sn, cn, tp(CF_ROLE_SYSTEM), m1);
	cf_auth_mac_client(key, sn, cn, tp(CF_ROLE_SYSTEM), m2);
	CHECK(memcmp(m1, m2, CF_MAC_LEN) == 0 && cf_auth_verify(m1, m2) == 0);

	/* server and client MACs differ for the same nonces (a reflected MAC is useless) */
	cf_auth_mac_server(key, cn, sn, tp(CF_ROLE_SYSTEM), ms);
	cf_auth_mac_client(key, sn, cn, tp(CF_ROLE_SYSTEM), mc);
	CHECK(cf_auth_verify(ms, mc) == -EPERM);
	cf_auth_mac_client(key, cn, sn, tp(CF_ROLE_SYSTEM), mc); /* even with the nonces in server order */
	CHECK(cf_auth_verify(ms, mc) == -EPERM);

	/* role is bound into the client MAC */
	cf_auth_mac_client(key, sn, cn, tp(CF_ROLE_SYSTEM), m1);
	cf_auth_mac_client(key, sn, cn, tp(CF_ROLE_CONSOLE), m2);
	CHECK(cf_auth_verify(m1, m2) == -EPERM);
	for (uint32_t role = 0; role < 64; role++) {
		cf_auth_mac_client(key, sn, cn, tp(role), m2);
		CHECKF((cf_auth_verify(m1, m2) == 0) == (role == CF_ROLE_SYSTEM), "role=%u", role);
	}

	/* key, each nonce, and nonce order all matter */
	cf_auth_mac_server(key2, cn, sn, tp(CF_ROLE_SYSTEM), m2);
	CHECK(cf_auth_verify(ms, m2) == -EPERM);
	cf_auth_mac_server(key, sn, cn, tp(CF_ROLE_SYSTEM), m2);
	CHECK(cf_auth_verify(ms, m2) == -EPERM);
	cf_auth_mac_client(key2, sn, cn, tp(CF_ROLE_SYSTEM), m2);
	CHECK(cf_auth_verify(m1, m2) == -EPERM);
	for (size_t i = 0; i < CF_NONCE_LEN; i++) {
		cn[i] ^= 0x10;
		cf_auth_mac_server(key, cn, sn, tp(CF_ROLE_SYSTEM), m2);
		CHECKF(cf_auth_verify(ms, m2) == -EPERM, "cnonce byte %zu", i);
		cf_auth_mac_client(key, sn, cn, tp(CF_ROLE_SYSTEM), m2);
		CHECKF(cf_auth_verify(m1, m2) == -EPERM, "cnonce byte %zu", i);
		cn[i] ^= 0x10;
		sn[i] ^= 0x01;
		cf_auth_mac_server(key, cn, sn, tp(CF_ROLE_SYSTEM), m2);
		CHECKF(cf_auth_verify(ms, m2) == -EPERM, "snonce byte %zu", i);
		sn[i] ^= 0x01;
	}

	/* verify rejects every single flipped bit */
	memcpy(m2, ms, CF_MAC_LEN);
	CHECK(cf_auth_verify(ms, m2) == 0);
	for (size_t bit = 0; bit < CF_MAC_LEN * 8; bit++) {
		m2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CHECKF(cf_auth_verify(ms, m2) == -EPERM, "bit %zu", bit);
		m2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK(cf_auth_verify(ms, m2) == 0);

	/* MACs do not look degenerate */
	{
		static const uint8_t zero[CF_MAC_LEN];
		CHECK(memcmp(ms, zero, CF_MAC_LEN) != 0 && memcmp(mc, zero, CF_MAC_LEN) != 0);
	}

	/* nonces are fresh */
	cf_auth_nonce(cn);
	cf_auth_nonce(sn);
	CHECK(memcmp(cn, sn, CF_NONCE_LEN) != 0);
}

static int key_parse_str(const char *s, uint8_t key[CF_KEY_LEN])
{
	return cf_key_parse(s, strlen(s), key);
}

static const char HEX64[] = "00112233445566778899aabbccddeeff0123456789abcdefFEDCBA9876543210";
static const uint8_t HEXKEY[CF_KEY_LEN] = {
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
};

static void test_key_parse(void)
{
	uint8_t key[CF_KEY_LEN], raw[CF_KEY_LEN];
	char buf[256];

	/* hex, mixed case */
	memset(key, 0, sizeof(key));
	CHECK(key_parse_str(HEX64, key) == 0 && memcmp(key, HEXKEY, CF_KEY_LEN) == 0);
	/* all upper, all lower */
	for (int up = 0; up < 2; up++) {
		for (size_t i = 0; i < 64; i++)
			buf[i] = up ? (char)(HEX64[i] >= 'a' ? HEX64[i] - 32 : HEX64[i])
				    : (char)(HEX64[i] >= 'A' && HEX64[i] <= 'F' ? HEX64[i] + 32 : HEX64[i]);
		buf[64] = 0;
		memset(key, 0, sizeof(key));
		CHECKF(key_parse_str(buf, key) == 0 && memcmp(key, HEXKEY, CF_KEY_LEN) == 0, "up=%d", up);
	}
	/* whitespace around (the usual trailing newline of a key file) */
	{
		static const char *wrap[][2] = {{"", "\n"}, {"  ", "  "}, {"\t", "\r\n"}, {"\n\n", "\n \t"}, {" ", ""}};
		for (size_t i = 0; i < sizeof(wrap) / sizeof(wrap[0]); i++) {
			snprintf(buf, sizeof(buf), "%s%s%s", wrap[i][0], HEX64, wrap[i][1]);
			memset(key, 0, sizeof(key));
			CHECKF(key_parse_str(buf, key) == 0 && memcmp(key, HEXKEY, CF_KEY_LEN) == 0, "wrap %zu", i);
		}
	}
	/* raw 32 bytes, including bytes that are not text at all */
	for (size_t i = 0; i < CF_KEY_LEN; i++)
		raw[i] = (uint8_t)(0xf0 ^ (i * 37u));
	raw[3] = 0;
	raw[4] = '\n';
	memset(key, 0, sizeof(key));
	CHECK(cf_key_parse(raw, CF_KEY_LEN, key) == 0 && memcmp(key, raw, CF_KEY_LEN) == 0);
	memset(raw, ' ', sizeof(raw)); /* raw bytes are taken as they are, whitespace included */
	CHECK(cf_key_parse(raw, CF_KEY_LEN, key) == 0 && memcmp(key, raw, CF_KEY_LEN) == 0);

	/* 32 hex digits are a 128-bit key as text: refused, not taken as 32 raw bytes */
	CHECK(cf_key_parse(HEX64, CF_KEY_LEN, key) == -EINVAL);
	CHECK(key_parse_str("0123456789abcdef0123456789ABCDEF\n", key) == -EINVAL);
	memcpy(raw, HEX64, CF_KEY_LEN);
	raw[31] = 'g'; /* one byte that is not a hex digit: raw again */
	CHECK(cf_key_parse(raw, CF_KEY_LEN, key) == 0 && memcmp(key, raw, CF_KEY_LEN) == 0);

	/* wrong lengths */
	for (size_t n = 0; n <= 66; n++) {
		if (n == CF_KEY_LEN || n == 64)
			continue;
		memcpy(buf, HEX64, 64);
		memcpy(buf + 64, "00", 2);
		CHECKF(cf_key_parse(buf, n, key) == -EINVAL, "n=%zu", n);
	}
	CHECK(cf_key_parse(NULL, 0, key) == -EINVAL);
	CHECK(key_parse_str("\n", key) == -EINVAL);
	/* a non-hex digit anywhere in 64 chars */
	for (size_t i = 0; i < 64; i++) {
		static const char badc[] = {'g', 'G', 'x', ' ', ':', '\0', '/', '@', '`', 'z'};
		for (size_t c = 0; c < sizeof(badc); c++) {
			memcpy(buf, HEX64, 64);
			buf[i] = badc[c];
			CHECKF(cf_key_parse(buf, 64, key) == -EINVAL, "i=%zu c=%d", i, badc[c]);
		}
	}
	/* whitespace inside, or a 0x prefix, is not a key */
	snprintf(buf, sizeof(buf), "%.32s %.32s", HEX64, HEX64 + 32);
	CHECK(key_parse_str(buf, key) == -EINVAL);
	snprintf(buf, sizeof(buf), "0x%s", HEX64);
	CHECK(key_parse_str(buf, key) == -EINVAL);
	/* 64 hex digits with a second line of junk */
	snprintf(buf, sizeof(buf), "%s\nextra\n", HEX64);
	CHECK(key_parse_str(buf, key) == -EINVAL);
}

static int write_file(const char *path, const void *buf, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	if (n && fwrite(buf, 1, n, f) != n) {
		fclose(f);
		return -EIO;
	}
	if (fclose(f))
		return -errno;
	return chmod(path, 0600) ? -errno : 0; /* a key file is a secret: cf_key_load wants 0600 */
}

static void test_key_load(void)
{
	char dir[] = "/tmp/cfplex-test-auth-XXXXXX", path[128], buf[512];
	uint8_t key[CF_KEY_LEN];

	if (!mkdtemp(dir)) {
		CHECKF(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/key", dir);
	snprintf(buf, sizeof(buf), "%s\n", HEX64);
	CHECK(write_file(path, buf, strlen(buf)) == 0);
	memset(key, 0, sizeof(key));
	CHECK(cf_key_load(path, key) == 0 && memcmp(key, HEXKEY, CF_KEY_LEN) == 0);
	CHECK(write_file(path, HEXKEY, CF_KEY_LEN) == 0);
	memset(key, 0, sizeof(key));
	CHECK(cf_key_load(path, key) == 0 && memcmp(key, HEXKEY, CF_KEY_LEN) == 0);
	CHECK(write_file(path, "short\n", 6) == 0);
	CHECK(cf_key_load(path, key) == -EINVAL);
	CHECK(write_file(path, "", 0) == 0);
	CHECK(cf_key_load(path, key) == -EINVAL);
	memset(buf, 'a', sizeof(buf)); /* longer than any key file */
	CHECK(write_file(path, buf, sizeof(buf)) == 0);
	CHECK(cf_key_load(path, key) == -EINVAL);
	/* a secret: not through a link, only a regular file, no access for group or others */
	{
		char link[160], fifo[160], msg[512];
		snprintf(buf, sizeof(buf), "%s\n", HEX64);
		CHECK(write_file(path, buf, strlen(buf)) == 0);
		for (unsigned bit = 1; bit <= 040; bit <<= 1) {
			CHECK(chmod(path, 0600 | bit) == 0);
			CHECKF(cf_key_load(path, key) == -EPERM, "mode 0%o accepted", 0600 | bit);
		}
		CHECK(chmod(path, 0400) == 0);
		CHECK(cf_key_load(path, key) == 0 && memcmp(key, HEXKEY, CF_KEY_LEN) == 0);
		CHECK(chmod(path, 0644) == 0);
		cf_key_explain(path, -EPERM, msg, sizeof(msg));
		CHECKF(strstr(msg, path) && strstr(msg, "chmod 600") && strstr(msg, "0644"), "%s", msg);
		CHECK(chmod(path, 0600) == 0);
		snprintf(link, sizeof(link), "%s/link", dir);
		CHECK(symlink(path, link) == 0);
		CHECK(cf_key_load(link, key) == -ELOOP);
		unlink(link);
		snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
		CHECK(mkfifo(fifo, 0600) == 0);
		CHECK(cf_key_load(fifo, key) == -ENODEV); /* refused, not waited on */
		unlink(fifo);
	}
	unlink(path);
	CHECK(cf_key_load(path, key) == -ENOENT);
	CHECK(cf_key_load(dir, key) == -EISDIR);
	rmdir(dir);
}

/* The handshake of cf_auth.h end to end, both ends computing with their own key. */
static void test_handshake(void)
{
	uint8_t ks[CF_KEY_LEN], kc[CF_KEY_LEN], cn[CF_NONCE_LEN], sn[CF_NONCE_LEN];
	uint8_t mac_s[CF_MAC_LEN], mac_c[CF_MAC_LEN], want[CF_MAC_LEN];

	for (int wrong = 0; wrong < 2; wrong++) {
		fill(ks, sizeof(ks), 9);
		memcpy(kc, ks, sizeof(kc));
		if (wrong)
			kc[5] ^= 0x40;
		cf_auth_nonce(cn);                       /* client: HELLO */
		cf_auth_nonce(sn);                       /* server: CHALLENGE */
		cf_auth_mac_server(ks, cn, sn, tp(CF_ROLE_SYSTEM), mac_s);
		cf_auth_mac_server(kc, cn, sn, tp(CF_ROLE_SYSTEM), want);    /* client checks the server */
		CHECKF((cf_auth_verify(mac_s, want) == 0) == !wrong, "wrong=%d", wrong);
		cf_auth_mac_client(kc, sn, cn, tp(CF_ROLE_CONSOLE), mac_c); /* client: AUTH */
		cf_auth_mac_client(ks, sn, cn, tp(CF_ROLE_CONSOLE), want);  /* server checks the client */
		CHECKF((cf_auth_verify(mac_c, want) == 0) == !wrong, "wrong=%d", wrong);
		/* a replay against a fresh server nonce fails */
		cf_auth_nonce(sn);
		cf_auth_mac_client(ks, sn, cn, tp(CF_ROLE_CONSOLE), want);
		CHECK(cf_auth_verify(mac_c, want) == -EPERM);
	}
}

/* A sealed frame of n bytes (header + body + tag room) with a recognisable body. */
static size_t mkframe(uint8_t *f, uint16_t op, uint64_t id, size_t body)
{
	struct cf_frame_hdr h = {.len = (uint32_t)(sizeof(h) + body + CF_FRAME_TAG_LEN), .op = op,
				 .flags = CF_FF_MAC, .id = id};

	memcpy(f, &h, sizeof(h));
	fill(f + sizeof(h), body, (uint8_t)id);
	return h.len;
}

/*
 * Frame integrity (cf_auth.h): each direction's tags check only in that
 * direction, in that order, once, on that connection, with every byte intact.
 */
static void test_frame_macs(void)
{
	uint8_t key[CF_KEY_LEN], cn[CF_NONCE_LEN], sn[CF_NONCE_LEN], c2s[CF_KEY_LEN], s2c[CF_KEY_LEN];
	uint8_t c2s_b[CF_KEY_LEN], s2c_b[CF_KEY_LEN], f[8][128], g[128];
	struct cf_frame_mac ctx, srx, stx, crx, other;
	size_t len[8];
	unsigned bad = 0;

	fill(key, sizeof(key), 1);
	fill(cn, sizeof(cn), 2);
	fill(sn, sizeof(sn), 3);
	cf_auth_frame_keys(key, cn, sn, CF_ROLE_SYSTEM, c2s, s2c);
	CHECK(memcmp(c2s, s2c, CF_KEY_LEN) != 0);
	/* deterministic; another role, nonce or key gives other keys */
	cf_auth_frame_keys(key, cn, sn, CF_ROLE_SYSTEM, c2s_b, s2c_b);
	CHECK(!memcmp(c2s, c2s_b, CF_KEY_LEN) && !memcmp(s2c, s2c_b, CF_KEY_LEN));
	cf_auth_frame_keys(key, cn, sn, CF_ROLE_CONSOLE, c2s_b, s2c_b);
	CHECK(memcmp(c2s, c2s_b, CF_KEY_LEN) && memcmp(s2c, s2c_b, CF_KEY_LEN));
	cf_auth_frame_keys(key, sn, cn, CF_ROLE_SYSTEM, c2s_b, s2c_b); /* nonces swapped */
	CHECK(memcmp(c2s, c2s_b, CF_KEY_LEN) && memcmp(s2c, s2c_b, CF_KEY_LEN));
	key[0] ^= 1;
	cf_auth_frame_keys(key, cn, sn, CF_ROLE_SYSTEM, c2s_b, s2c_b);
	CHECK(memcmp(c2s, c2s_b, CF_KEY_LEN) && memcmp(s2c, s2c_b, CF_KEY_LEN));
	key[0] ^= 1;

	cf_frame_mac_init(&ctx, c2s);
	cf_frame_mac_init(&srx, c2s);
	cf_frame_mac_init(&stx, s2c);
	cf_frame_mac_init(&crx, s2c);
	for (unsigned i = 0; i < 8; i++) {
		len[i] = mkframe(f[i], CF_OP_CAS, 100 + i, 32);
		CHECK(cf_frame_seal(&ctx, f[i], len[i]) == 0);
	}
	CHECK(ctx.seq == 8);
	/* in order: accepted */
	CHECK(cf_frame_open(&srx, f[0], len[0]) == 0 && srx.seq == 1);
	/* replayed: refused, and a refusal counts nothing */
	CHECK(cf_frame_open(&srx, f[0], len[0]) == -EBADMSG && srx.seq == 1);
	/* reordered, or one dropped: refused */
	CHECK(cf_frame_open(&srx, f[2], len[2]) == -EBADMSG && srx.seq == 1);
	CHECK(cf_frame_open(&srx, f[1], len[1]) == 0 && srx.seq == 2);
	/* any one byte changed, header, body or tag: refused */
	for (size_t b = 0; b < len[2]; b++) {
		memcpy(g, f[2], len[2]);
		g[b] ^= 0x10;
		bad += cf_frame_open(&srx, g, len[2]) != -EBADMSG;
	}
	CHECKF(bad == 0, "%u changed frames accepted", bad);
	/* truncated: refused */
	CHECK(cf_frame_open(&srx, f[2], len[2] - 1) == -EBADMSG && cf_frame_open(&srx, f[2], 3) == -EBADMSG);
	CHECK(cf_frame_open(&srx, f[2], len[2]) == 0);
	/* reflected: the server's own frame sent back to it is checked with the client's key */
	len[7] = mkframe(g, CF_OP_CTRL, 0, 40);
	CHECK(cf_frame_seal(&stx, g, len[7]) == 0);
	CHECK(cf_frame_open(&srx, g, len[7]) == -EBADMSG);
	CHECK(cf_frame_open(&crx, g, len[7]) == 0); /* where it was meant to go it is fine */
	/* another connection (other nonces): its keys refuse this connection's frames */
	cn[5] ^= 1;
	cf_auth_frame_keys(key, cn, sn, CF_ROLE_SYSTEM, c2s_b, s2c_b);
	cf_frame_mac_init(&other, c2s_b);
	other.seq = srx.seq;
	CHECK(cf_frame_open(&other, f[3], len[3]) == -EBADMSG);
	/* the end of the sequence: nothing is sealed or accepted with a wrapped number */
	ctx.seq = UINT64_MAX;
	CHECK(cf_frame_seal(&ctx, f[4], len[4]) == -EOVERFLOW);
	srx.seq = UINT64_MAX;
	CHECK(cf_frame_open(&srx, f[3], len[3]) == -EBADMSG);
	cf_frame_mac_wipe(&ctx);
	CHECK(ctx.seq == 0 && ctx.key[0] == 0 && ctx.key[CF_KEY_LEN - 1] == 0);
	cf_frame_mac_wipe(NULL);
}

/*
 * The two-part form (the duplex link: header, then a body from elsewhere,
 * then the tag): the same tag as over the whole frame, at every split point
 * and with an empty body; a changed byte of either part, a swapped part or
 * a replay is refused.
 */
static void test_frame_macs_two_parts(void)
{
	uint8_t key[CF_KEY_LEN], f[200], tag[CF_FRAME_TAG_LEN], tag2[CF_FRAME_TAG_LEN];
	struct cf_frame_mac tx, rx, whole;
	unsigned bad = 0;

	fill(key, sizeof(key), 7);
	fill(f, sizeof(f), 9);
	for (size_t cut = 0; cut <= 184; cut += 23) {
		cf_frame_mac_init(&tx, key);
		cf_frame_mac_init(&whole, key);
		uint8_t g[200];
		memcpy(g, f, 184);
		CHECK(cf_frame_seal2(&tx, f, cut, f + cut, 184 - cut, tag) == 0 && tx.seq == 1);
		CHECK(cf_frame_seal(&whole, g, 184 + CF_FRAME_TAG_LEN) == 0);
		bad += memcmp(tag, g + 184, CF_FRAME_TAG_LEN) != 0;
	}
	CHECKF(bad == 0, "%u splits gave another tag than the whole frame", bad);
	cf_frame_mac_init(&tx, key);
	cf_frame_mac_init(&rx, key);
	CHECK(cf_frame_seal2(&tx, f, 16, NULL, 0, tag) == 0); /* a header alone (PING) */
	CHECK(cf_frame_open2(&rx, f, 16, NULL, 0, tag) == 0 && rx.seq == 1);
	CHECK(cf_frame_seal2(&tx, f, 16, f + 16, 100, tag) == 0);
	for (size_t b = 0; b < 116; b++) {
		uint8_t g[116];
		memcpy(g, f, 116);
		g[b] ^= 0x04;
		bad += cf_frame_open2(&rx, g, 16, g + 16, 100, tag) != -EBADMSG;
	}
	CHECKF(bad == 0, "%u changed two-part frames accepted", bad);
	memcpy(tag2, tag, sizeof(tag));
	tag2[15] ^= 1;
	CHECK(cf_frame_open2(&rx, f, 16, f + 16, 100, tag2) == -EBADMSG && rx.seq == 1);
	CHECK(cf_frame_open2(&rx, f + 16, 100, f, 16, tag) == -EBADMSG); /* parts swapped */
	CHECK(cf_frame_open2(&rx, f, 16, f + 16, 100, tag) == 0 && rx.seq == 2);
	CHECK(cf_frame_open2(&rx, f, 16, f + 16, 100, tag) == -EBADMSG); /* replayed */
	cf_frame_mac_wipe(&tx);
	cf_frame_mac_wipe(&rx);
}

int main(void)
{
	if (cf_auth_init() < 0) {
		fprintf(stderr, "libsodium failed to start\n");
		return 1;
	}
	test_macs();
	test_key_parse();
	test_key_load();
	test_handshake();
	test_terms_bound();
	test_frame_macs();
	test_frame_macs_two_parts();
	printf("%lu passed, %lu failed\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}
