/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ctrl - control messages and the handshake.
 *
 * 1. The whole input as one received control message (a verbs RECV payload):
 *    cf_ctrl_check, then every field interpreted (fuzz_ctrl_interp.h).
 * 2. The input as a stream of control messages, each delimited by its own
 *    header length, fed to both ends of the handshake of cf_auth.h: a server
 *    (HELLO → CHALLENGE, AUTH → WELCOME, then requests) and a client (CHALLENGE
 *    → verify the server's MAC, then WELCOME and replies). Anything out of
 *    order or malformed closes the connection, as the real ends do.
 */
#include <errno.h>
#include <string.h>

#include "cf_auth.h"
#include "cf_util.h"
#include "cf_wire.h"
#include "fuzz.h"
#include "fuzz_ctrl_interp.h"

/* Fixed key and nonces: the fuzzer plays the peer without knowing the key. */
static const uint8_t fz_key[CF_KEY_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
					   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t fz_nonce[CF_NONCE_LEN] = {0x5a};

enum hs_state { HS_WANT_HELLO, HS_WANT_AUTH, HS_READY, HS_CLOSED };

struct hs_server {
	enum hs_state st;
	struct cf_auth_terms terms;
	uint8_t cnonce[CF_NONCE_LEN];
};

static void server_msg(struct hs_server *s, const void *msg, size_t len)
{
	struct cf_ctrl_hdr h;
	uint8_t out[CF_CTRL_MAX];

	if (cf_ctrl_check(msg, len) < 0 || fz_ctrl_interpret(msg, len) < 0) {
		s->st = HS_CLOSED;
		return;
	}
	memcpy(&h, msg, sizeof(h));
	switch (s->st) {
	case HS_WANT_HELLO: {
		struct cf_hello hello;
		struct cf_challenge ch;
		if (h.type != CF_CTRL_HELLO) {
			s->st = HS_CLOSED;
			return;
		}
		memcpy(&hello, (const char *)msg + sizeof(h), sizeof(hello));
		memcpy(s->cnonce, hello.client_nonce, CF_NONCE_LEN);
		memset(&ch, 0, sizeof(ch));
		ch.version = CF_PROTO_VERSION_MAX;
		memcpy(ch.server_nonce, fz_nonce, CF_NONCE_LEN);
		s->terms = cf_auth_terms_of(&hello, ch.version);
		cf_auth_mac_server(fz_key, s->cnonce, fz_nonce, &s->terms, ch.mac);
		FUZZ_ASSERT(cf_ctrl_check(out, cf_ctrl_build(out, CF_CTRL_CHALLENGE, &ch, sizeof(ch))) == 0);
		s->st = HS_WANT_AUTH;
		return;
	}
	case HS_WANT_AUTH: {
		struct cf_auth a;
		uint8_t want[CF_MAC_LEN];
		if (h.type != CF_CTRL_AUTH) {
			s->st = HS_CLOSED;
			return;
		}
		memcpy(&a, (const char *)msg + sizeof(h), sizeof(a));
		cf_auth_mac_client(fz_key, fz_nonce, s->cnonce, &s->terms, want);
		s->st = cf_auth_verify(a.mac, want) == 0 ? HS_READY : HS_CLOSED;
		return;
	}
	case HS_READY:
		/* requests only; replies and events from a client are a protocol error */
		if (h.type == CF_CTRL_HELLO || h.type == CF_CTRL_AUTH || h.type >= CF_CTRL_STATUS ||
		    h.type == CF_CTRL_CHALLENGE || h.type == CF_CTRL_WELCOME || h.type == CF_CTRL_JOINED)
			s->st = HS_CLOSED;
		return;
	case HS_CLOSED:
		return;
	}
}

struct hs_client {
	enum hs_state st; /* HS_WANT_HELLO here means: waiting for CHALLENGE */
	int welcomed;
};

static void client_msg(struct hs_client *c, const void *msg, size_t len)
{
	struct cf_ctrl_hdr h;

	if (cf_ctrl_check(msg, len) < 0 || fz_ctrl_interpret(msg, len) < 0) {
		c->st = HS_CLOSED;
		return;
	}
	memcpy(&h, msg, sizeof(h));
	switch (c->st) {
	case HS_WANT_HELLO: {
		struct cf_challenge ch;
		struct cf_auth_terms terms;
		uint8_t want[CF_MAC_LEN];
		if (h.type != CF_CTRL_CHALLENGE) {
			c->st = HS_CLOSED;
			return;
		}
		memcpy(&ch, (const char *)msg + sizeof(h), sizeof(ch));
		/* the HELLO this client would have sent: its range, role SYSTEM */
		terms = (struct cf_auth_terms){ CF_PROTO_VERSION_MIN, CF_PROTO_VERSION_MAX, ch.version, CF_ROLE_SYSTEM };
		cf_auth_mac_server(fz_key, fz_nonce, ch.server_nonce, &terms, want);
		/* a server that cannot prove the key gets no AUTH */
		c->st = cf_auth_verify(ch.mac, want) == 0 ? HS_WANT_AUTH : HS_CLOSED;
		return;
	}
	case HS_WANT_AUTH:
		if (h.type == CF_CTRL_WELCOME) {
			c->welcomed = 1;
			c->st = HS_READY;
		} else {
			c->st = HS_CLOSED; /* ERROR, or anything else */
		}
		return;
	case HS_READY:
		if (h.type < CF_CTRL_STATUS && h.type != CF_CTRL_JOINED)
			c->st = HS_CLOSED; /* a request from the server */
		return;
	case HS_CLOSED:
		return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hs_server srv = {.st = HS_WANT_HELLO};
	struct hs_client cli = {HS_WANT_HELLO, 0};
	static int ready;
	size_t off = 0;
	int r;

	if (!ready) {
		FUZZ_ASSERT(cf_auth_init() == 0);
		ready = 1;
	}
	/* 1: one message */
	r = cf_ctrl_check(data, size);
	if (r == 0) {
		(void)fz_ctrl_interpret(data, size);
	} else {
		FUZZ_ASSERT(r == -EBADMSG);
		FUZZ_ASSERT(cf_corrupt_where() != NULL);
	}

	/* 2: a stream, to both ends of the handshake */
	while (size - off >= sizeof(struct cf_ctrl_hdr) && (srv.st != HS_CLOSED || cli.st != HS_CLOSED)) {
		struct cf_ctrl_hdr h;
		uint8_t *msg;

		memcpy(&h, data + off, sizeof(h));
		if (h.len < sizeof(h) || h.len > CF_CTRL_MAX || h.len > size - off)
			break; /* a stream reader refuses before allocating */
		/* exact-size copy: any over-read is caught by ASan */
		msg = malloc(h.len);
		FUZZ_ASSERT(msg != NULL);
		memcpy(msg, data + off, h.len);
		if (srv.st != HS_CLOSED)
			server_msg(&srv, msg, h.len);
		if (cli.st != HS_CLOSED)
			client_msg(&cli, msg, h.len);
		free(msg);
		off += h.len;
	}
	return 0;
}
