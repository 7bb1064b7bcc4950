/* SPDX-License-Identifier: MIT */
/*
 * cf_auth.h - cluster-key challenge-response (libsodium HMAC-SHA512-256).
 *
 * Handshake (both transports, control messages of cf_wire.h):
 *   c→s HELLO{role, client_nonce}
 *   s→c CHALLENGE{server_nonce, mac_s = HMAC(key, "srv" | client_nonce | server_nonce)}
 *   c→s AUTH{mac_c = HMAC(key, "cli" | server_nonce | client_nonce | role)}
 *   s→c WELCOME | ERROR
 * Both ends prove the key; nonces are fresh per connection, so a recorded
 * exchange cannot be replayed. The key never crosses the wire.
 */
#ifndef CF_AUTH_H
#define CF_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "cf_wire.h"

/* 0 on success (libsodium ready), -EIO if it cannot start. */
int cf_auth_init(void);
void cf_auth_nonce(uint8_t nonce[CF_NONCE_LEN]);
void cf_auth_mac_server(const uint8_t key[CF_KEY_LEN], const uint8_t cnonce[CF_NONCE_LEN],
			const uint8_t snonce[CF_NONCE_LEN], uint8_t mac[CF_MAC_LEN]);
void cf_auth_mac_client(const uint8_t key[CF_KEY_LEN], const uint8_t snonce[CF_NONCE_LEN],
			const uint8_t cnonce[CF_NONCE_LEN], uint32_t role, uint8_t mac[CF_MAC_LEN]);
/* Constant-time compare: 0 when equal, -EPERM otherwise. */
int cf_auth_verify(const uint8_t a[CF_MAC_LEN], const uint8_t b[CF_MAC_LEN]);
/*
 * Parse a cluster key file's contents: 64 hex digits (whitespace around them
 * allowed) or exactly 32 raw bytes, unless those are all hex digits (a
 * 128-bit key as text is refused, not taken raw). 0 or -EINVAL.
 */
int cf_key_parse(const void *buf, size_t len, uint8_t key[CF_KEY_LEN]);
/*
 * Read and parse a key file, as a secret: opened O_NOFOLLOW, a regular file
 * with no permission for group or others (as ssh treats a private key).
 * 0; -EINVAL malformed; -ELOOP a symbolic link; -EISDIR a directory; -ENODEV
 * another kind of non-regular file (FIFO, device, socket); -EPERM group or
 * others may access it; or -errno from open/read (-ENOENT, -EACCES).
 */
int cf_key_load(const char *path, uint8_t key[CF_KEY_LEN]);
/*
 * The operator's sentence for a cf_key_load() error on path, naming the file
 * and what to do (chmod 600 for -EPERM). Returns buf.
 */
const char *cf_key_explain(const char *path, int err, char *buf, size_t cap);
/* Same, naming the key as what ("monitor key"). */
const char *cf_key_explain_as(const char *what, const char *path, int err, char *buf, size_t cap);

#endif
