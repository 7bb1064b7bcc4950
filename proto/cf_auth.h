/* SPDX-License-Identifier: MIT */
/*
 * cf_auth.h - cluster-key challenge-response (libsodium HMAC-SHA512-256).
 *
 * Handshake (both transports, control messages of cf_wire.h):
 *   c→s HELLO{version_min, version_max, role, client_nonce}
 *   s→c CHALLENGE{version, server_nonce,
 *                 mac_s = HMAC(key, "srv" | client_nonce | server_nonce | terms)}
 *   c→s AUTH{mac_c = HMAC(key, "cli" | server_nonce | client_nonce | terms)}
 *   s→c WELCOME | ERROR
 * Both ends prove the key; nonces are fresh per connection, so a recorded
 * exchange cannot be replayed. The key never crosses the wire. terms
 * (struct cf_auth_terms, protocol 3) is what the handshake agreed: the
 * HELLO's version range and role as the server read them and the version
 * the CHALLENGE chose, so a peer on the path that narrows the client's
 * range or changes the choice (a downgrade, once two versions exist) or the
 * role fails the proof of the side that did not see the change.
 *
 * Frame integrity (tcp, protocol 2; docs/design.md §7, "Frame integrity").
 * Both ends derive a session key from the key both MACs used, both nonces and
 * the role, then one key per direction (cf_auth_frame_keys):
 *   session = BLAKE2b-256(key = cluster key, "cfplex frame v2" | cnonce | snonce | role)
 *   c2s, s2c = crypto_kdf_derive_from_key(session, id 1 / 2, "cfplxfrm")
 * Every frame after AUTH (client) and from WELCOME on (server) carries a
 * 16-byte tag as its last bytes (flag CF_FF_MAC):
 *   otk = first 32 bytes of ChaCha20(direction key, nonce = seq, 64-bit LE)
 *   tag = Poly1305(otk, the frame's bytes before the tag, header included)
 * seq counts the frames of that direction from 0 and is never sent: both
 * ends count. So a frame replayed, reordered, dropped (the next one is
 * checked against the wrong number), reflected (checked with the other
 * direction's key) or taken from another connection (other nonces, other
 * keys) is refused, as is any change to one byte. Why Poly1305 with a
 * one-time key per frame rather than HMAC: it is the construction of
 * secretbox and of RFC 8439's AEAD (the one-time key is what makes a
 * Poly1305 tag unforgeable, and seq makes it unique per key); it costs one
 * ChaCha20 block and ~1 cycle per byte, where HMAC-SHA512-256 costs at least
 * four SHA-512 blocks per frame; 16 bytes of tag suffice for a MAC checked
 * online (one forgery attempt per connection: a refused tag closes it).
 * Nothing is encrypted: frame integrity, not confidentiality.
 */
#ifndef CF_AUTH_H
#define CF_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "cf_wire.h"

/* 0 on success (libsodium ready), -EIO if it cannot start. */
int cf_auth_init(void);
void cf_auth_nonce(uint8_t nonce[CF_NONCE_LEN]);

/* What both MACs bind (above); MACed as 10 bytes, little-endian, in this order. */
struct cf_auth_terms {
	uint16_t version_min, version_max; /* the HELLO's */
	uint16_t version;                  /* the CHALLENGE's */
	uint32_t role;                     /* the HELLO's */
};

static inline struct cf_auth_terms cf_auth_terms_of(const struct cf_hello *h, uint16_t chosen)
{
	return (struct cf_auth_terms){ .version_min = h->version_min, .version_max = h->version_max,
				       .version = chosen, .role = h->role };
}

void cf_auth_mac_server(const uint8_t key[CF_KEY_LEN], const uint8_t cnonce[CF_NONCE_LEN],
			const uint8_t snonce[CF_NONCE_LEN], const struct cf_auth_terms *t, uint8_t mac[CF_MAC_LEN]);
void cf_auth_mac_client(const uint8_t key[CF_KEY_LEN], const uint8_t snonce[CF_NONCE_LEN],
			const uint8_t cnonce[CF_NONCE_LEN], const struct cf_auth_terms *t, uint8_t mac[CF_MAC_LEN]);
/*
 * The two frame keys of a connection (see "Frame integrity" above), from the
 * key the handshake's MACs used. The client sends with c2s and receives with
 * s2c; the server the other way round. Callers wipe them after use.
 */
void cf_auth_frame_keys(const uint8_t key[CF_KEY_LEN], const uint8_t cnonce[CF_NONCE_LEN],
			const uint8_t snonce[CF_NONCE_LEN], uint32_t role, uint8_t c2s[CF_KEY_LEN],
			uint8_t s2c[CF_KEY_LEN]);

/* One direction of a connection: its key and the number of its next frame. */
struct cf_frame_mac {
	uint8_t key[CF_KEY_LEN];
	uint64_t seq;
};
void cf_frame_mac_init(struct cf_frame_mac *m, const uint8_t key[CF_KEY_LEN]);
/* Wipe the key (accepts NULL). */
void cf_frame_mac_wipe(struct cf_frame_mac *m);
/*
 * frame: a whole frame of len bytes (header with CF_FF_MAC and the final len)
 * whose last CF_FRAME_TAG_LEN bytes are room for the tag: writes the tag and
 * counts the frame. -EOVERFLOW once 2^64 - 1 frames went (never in practice:
 * the connection must close).
 */
int cf_frame_seal(struct cf_frame_mac *m, uint8_t *frame, size_t len);
/*
 * Check the tag of a received whole frame (len bytes, tag included) as the
 * next frame of this direction: 0 and counts it, or -EBADMSG (wrong tag:
 * forged, replayed, reordered, reflected, or a frame dropped before it).
 */
int cf_frame_open(struct cf_frame_mac *m, const uint8_t *frame, size_t len);

/*
 * The same tag over a frame in two parts (a then b, e.g. a header and a body
 * that are not contiguous), written to or checked against tag, which is not
 * part of the bytes covered. cf_frame_seal/open are these with b empty.
 */
int cf_frame_seal2(struct cf_frame_mac *m, const void *a, size_t alen, const void *b, size_t blen,
		   uint8_t tag[CF_FRAME_TAG_LEN]);
int cf_frame_open2(struct cf_frame_mac *m, const void *a, size_t alen, const void *b, size_t blen,
		   const uint8_t tag[CF_FRAME_TAG_LEN]);
/* Constant-time compare: 0 when equal, -EPERM otherwise. */
int cf_auth_verify(const uint8_t a[CF_MAC_LEN], const uint8_t b[CF_MAC_LEN]);
/*
 * Parse a cluster key file's contents: 64 hex digits (whitespace around them
 * allowed) or exactly 32 raw bytes, unless those are all hex digits (a
 * 128-bit key as text is refused, not taken raw). 0 or -EINVAL.
 */
int cf_key_parse(const void *buf, size_t len, uint8_t key[CF_KEY_LEN]);
/* Reading a key file (I/O): common/cf_key.h. */

#endif
