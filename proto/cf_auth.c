/* SPDX-License-Identifier: MIT */
#include "cf_auth.h"

#include <errno.h>
#include <stdio.h>
#include <sodium.h>
#include <string.h>

int cf_auth_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

void cf_auth_nonce(uint8_t nonce[CF_NONCE_LEN])
{
	randombytes_buf(nonce, CF_NONCE_LEN);
}

static void mac3(const uint8_t key[CF_KEY_LEN], const char tag[3], const uint8_t *a, const uint8_t *b,
		 const struct cf_auth_terms *t, uint8_t mac[CF_MAC_LEN])
{
	crypto_auth_hmacsha512256_state st;
	uint8_t w[10];

	_Static_assert(CF_MAC_LEN == crypto_auth_hmacsha512256_BYTES, "mac len");
	_Static_assert(CF_KEY_LEN == crypto_auth_hmacsha512256_KEYBYTES, "key len");
	w[0] = (uint8_t)t->version_min;
	w[1] = (uint8_t)(t->version_min >> 8);
	w[2] = (uint8_t)t->version_max;
	w[3] = (uint8_t)(t->version_max >> 8);
	w[4] = (uint8_t)t->version;
	w[5] = (uint8_t)(t->version >> 8);
	for (int k = 0; k < 4; k++)
		w[6 + k] = (uint8_t)(t->role >> (8 * k));
	crypto_auth_hmacsha512256_init(&st, key, CF_KEY_LEN);
	crypto_auth_hmacsha512256_update(&st, (const unsigned char *)tag, 3);
	crypto_auth_hmacsha512256_update(&st, a, CF_NONCE_LEN);
	crypto_auth_hmacsha512256_update(&st, b, CF_NONCE_LEN);
	crypto_auth_hmacsha512256_update(&st, w, sizeof(w));
	crypto_auth_hmacsha512256_final(&st, mac);
	sodium_memzero(&st, sizeof(st));
}

void cf_auth_mac_server(const uint8_t key[CF_KEY_LEN], const uint8_t cnonce[CF_NONCE_LEN],
			const uint8_t snonce[CF_NONCE_LEN], const struct cf_auth_terms *t, uint8_t mac[CF_MAC_LEN])
{
	mac3(key, "srv", cnonce, snonce, t, mac);
}

void cf_auth_mac_client(const uint8_t key[CF_KEY_LEN], const uint8_t snonce[CF_NONCE_LEN],
			const uint8_t cnonce[CF_NONCE_LEN], const struct cf_auth_terms *t, uint8_t mac[CF_MAC_LEN])
{
	mac3(key, "cli", snonce, cnonce, t, mac);
}

void cf_auth_frame_keys(const uint8_t key[CF_KEY_LEN], const uint8_t cnonce[CF_NONCE_LEN],
			const uint8_t snonce[CF_NONCE_LEN], uint32_t role, uint8_t c2s[CF_KEY_LEN],
			uint8_t s2c[CF_KEY_LEN])
{
	static const char label[] = "cfplex frame v2";
	crypto_generichash_state st;
	uint8_t session[CF_KEY_LEN], r[4] = {(uint8_t)role, (uint8_t)(role >> 8), (uint8_t)(role >> 16),
					       (uint8_t)(role >> 24)};

	_Static_assert(CF_KEY_LEN == crypto_kdf_KEYBYTES, "kdf key len");
	_Static_assert(CF_KEY_LEN >= crypto_generichash_KEYBYTES_MIN && CF_KEY_LEN <= crypto_generichash_KEYBYTES_MAX,
		       "generichash key len");
	crypto_generichash_init(&st, key, CF_KEY_LEN, sizeof(session));
	crypto_generichash_update(&st, (const unsigned char *)label, sizeof(label) - 1);
	crypto_generichash_update(&st, cnonce, CF_NONCE_LEN);
	crypto_generichash_update(&st, snonce, CF_NONCE_LEN);
	crypto_generichash_update(&st, r, sizeof(r));
	crypto_generichash_final(&st, session, sizeof(session));
	crypto_kdf_derive_from_key(c2s, CF_KEY_LEN, 1, "cfplxfrm", session);
	crypto_kdf_derive_from_key(s2c, CF_KEY_LEN, 2, "cfplxfrm", session);
	sodium_memzero(session, sizeof(session));
	sodium_memzero(&st, sizeof(st));
}

void cf_frame_mac_init(struct cf_frame_mac *m, const uint8_t key[CF_KEY_LEN])
{
	memcpy(m->key, key, CF_KEY_LEN);
	m->seq = 0;
}

void cf_frame_mac_wipe(struct cf_frame_mac *m)
{
	if (m)
		sodium_memzero(m, sizeof(*m));
}

/* The one-time Poly1305 key of frame seq: ChaCha20(key, nonce = seq LE) bytes 0..31. */
static void frame_otk(const struct cf_frame_mac *m, uint8_t otk[crypto_onetimeauth_KEYBYTES])
{
	uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};

	for (unsigned i = 0; i < 8; i++)
		nonce[i] = (uint8_t)(m->seq >> (8 * i));
	crypto_stream_chacha20_ietf(otk, crypto_onetimeauth_KEYBYTES, nonce, m->key);
}

/* Poly1305 under frame seq's one-time key over a | b: both parts of one frame. */
static void frame_tag(const struct cf_frame_mac *m, const void *a, size_t alen, const void *b, size_t blen,
		      uint8_t tag[CF_FRAME_TAG_LEN])
{
	uint8_t otk[crypto_onetimeauth_KEYBYTES];
	crypto_onetimeauth_state st;

	_Static_assert(CF_FRAME_TAG_LEN == crypto_onetimeauth_BYTES, "tag len");
	_Static_assert(CF_KEY_LEN == crypto_stream_chacha20_ietf_KEYBYTES, "stream key len");
	frame_otk(m, otk);
	crypto_onetimeauth_init(&st, otk);
	crypto_onetimeauth_update(&st, a, alen);
	if (blen)
		crypto_onetimeauth_update(&st, b, blen);
	crypto_onetimeauth_final(&st, tag);
	sodium_memzero(otk, sizeof(otk));
	sodium_memzero(&st, sizeof(st));
}

int cf_frame_seal2(struct cf_frame_mac *m, const void *a, size_t alen, const void *b, size_t blen,
		   uint8_t tag[CF_FRAME_TAG_LEN])
{
	if (m->seq == UINT64_MAX)
		return -EOVERFLOW;
	frame_tag(m, a, alen, b, blen, tag);
	m->seq++;
	return 0;
}

int cf_frame_open2(struct cf_frame_mac *m, const void *a, size_t alen, const void *b, size_t blen,
		   const uint8_t tag[CF_FRAME_TAG_LEN])
{
	uint8_t want[CF_FRAME_TAG_LEN];
	int r;

	if (m->seq == UINT64_MAX)
		return -EBADMSG;
	frame_tag(m, a, alen, b, blen, want);
	r = crypto_verify_16(want, tag);
	sodium_memzero(want, sizeof(want));
	if (r != 0)
		return -EBADMSG;
	m->seq++;
	return 0;
}

int cf_frame_seal(struct cf_frame_mac *m, uint8_t *frame, size_t len)
{
	if (len < CF_FRAME_TAG_LEN)
		return -EINVAL;
	return cf_frame_seal2(m, frame, len - CF_FRAME_TAG_LEN, NULL, 0, frame + len - CF_FRAME_TAG_LEN);
}

int cf_frame_open(struct cf_frame_mac *m, const uint8_t *frame, size_t len)
{
	if (len < CF_FRAME_TAG_LEN)
		return -EBADMSG;
	return cf_frame_open2(m, frame, len - CF_FRAME_TAG_LEN, NULL, 0, frame + len - CF_FRAME_TAG_LEN);
}

int cf_auth_verify(const uint8_t a[CF_MAC_LEN], const uint8_t b[CF_MAC_LEN])
{
	return sodium_memcmp(a, b, CF_MAC_LEN) == 0 ? 0 : -EPERM;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cf_key_parse(const void *buf, size_t len, uint8_t key[CF_KEY_LEN])
{
	const char *s = buf;
	size_t b = 0, e = len;

	while (b < e && (s[b] == ' ' || s[b] == '\n' || s[b] == '\t' || s[b] == '\r'))
		b++;
	while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\n' || s[e - 1] == '\t' || s[e - 1] == '\r'))
		e--;
	if (e - b == 2 * CF_KEY_LEN) {
		for (size_t i = 0; i < CF_KEY_LEN; i++) {
			int hi = hexval(s[b + 2 * i]), lo = hexval(s[b + 2 * i + 1]);
			if (hi < 0 || lo < 0)
				goto raw;
			key[i] = (uint8_t)(hi << 4 | lo);
		}
		return 0;
	}
raw:
	if (len == CF_KEY_LEN) {
		/*
		 * 32 hex digits are a 128-bit key written as text (openssl rand
		 * -hex 16), not 32 random bytes: taken raw, the same key with a
		 * trailing newline on another node would be refused there.
		 */
		size_t nhex = 0;
		for (size_t i = 0; i < CF_KEY_LEN; i++)
			nhex += hexval(s[i]) >= 0;
		if (nhex == CF_KEY_LEN)
			return -EINVAL;
		memcpy(key, buf, CF_KEY_LEN);
		return 0;
	}
	return -EINVAL;
}
