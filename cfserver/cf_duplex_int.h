/* SPDX-License-Identifier: MIT */
/*
 * cf_duplex_int.h - what the parts of a duplexed CF share (not installed):
 * the link's frames and handshake (cf_duplex_link.c), used by the primary
 * (cf_duplex.c), the secondary (cf_duplex_follow.c) and a pair member
 * deciding its role at start (cf_duplex_pair.c).
 */
#ifndef CF_DUPLEX_INT_H
#define CF_DUPLEX_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_auth.h"
#include "cf_duplex.h"
#include "cf_layout.h"

enum dx_type {
	DX_HELLO = 1,     /* s->p: nonce */
	DX_CHALLENGE = 2, /* p->s: nonce, mac */
	DX_AUTH = 3,      /* s->p: mac */
	DX_INFO = 4,      /* p->s: identity, then the header (the geometry) */
	DX_INFO_R = 5,    /* s->p: identity */
	DX_BATCH = 6,     /* p->s: seq; n, then n x {off, len}, then the bytes */
	DX_ACK = 7,       /* s->p: seq applied (and persisted under --nvram) */
	DX_PING = 8,
	DX_SYNCED = 9,    /* p->s: every byte of the image has been shipped */
	DX_REFUSE = 10,   /* p->s: a text, then close */
	DX_STATE = 11,    /* a pair member that is not serving, instead of INFO: struct dx_state_msg, then close */
};

struct dx_frame {
	uint32_t type;
	uint32_t len; /* bytes after this header */
	uint64_t seq;
};

/* MACs over the link bind this role, so a node handshake can never be replayed here. */
#define DX_ROLE 0x44585031u /* "DXP1" */
#define DX_MAX_FRAME (64u << 20) /* a BATCH part is at most dx_part (8 MiB) of image */
#define DX_CHUNK (1u << 20) /* the sync ships the image 1 MiB per batch */
#define DX_HANDSHAKE_MS 3000

struct dx_ident {
	uint64_t pid, starttime;
	char host[CF_HOST_MAX];
	char name[CF_HOST_MAX];
};

struct dx_hello {
	uint8_t nonce[CF_NONCE_LEN];
};
struct dx_challenge {
	uint8_t nonce[CF_NONCE_LEN];
	uint8_t mac[CF_MAC_LEN];
};
struct dx_auth {
	uint8_t mac[CF_MAC_LEN];
};


/*
 * A pair member that does not serve answers a probe with its role and its
 * image's duplex mark and term (cf_layout.h CF_HDR_DUPLEX, CF_HDR_TERM), then
 * closes: cf_duplex_pair.c.
 */
enum dx_role { DX_ROLE_STANDBY = 1, DX_ROLE_CLAIMING = 2, DX_ROLE_FOLLOWING = 3, DX_ROLE_PRIMARY = 4 };
struct dx_state_msg {
	uint32_t role;  /* enum dx_role */
	uint32_t fresh; /* 1: its image was formatted at this start (nothing to lose) */
	uint64_t mark;  /* its image's CF_HDR_DUPLEX word */
	uint64_t term;  /* its image's CF_HDR_TERM word */
	struct dx_ident id;
};
const char *dx_role_str(uint32_t role);

/*
 * One end of the link: its socket and, once the key proof is done, a frame
 * MAC per direction (cf_auth.h "Frame integrity", keys bound to DX_ROLE and
 * both nonces). A sealed frame is the header, the body, then a 16-byte tag
 * over both; a frame whose tag fails (forged, changed, replayed, reordered,
 * dropped before it) ends the link with -EBADMSG. tx is used under the
 * sender's lock, rx by the one reading thread.
 */
struct dx_link {
	int fd; /* -1: none */
	bool sealed;
	struct cf_frame_mac tx, rx;
};
void dx_link_init(struct dx_link *l, int fd);
/* Close the socket (if any) and wipe the keys; the link is then empty (fd -1). */
void dx_link_close(struct dx_link *l);

int dx_send_frame(struct dx_link *l, uint32_t type, uint64_t seq, const void *body, uint32_t len, int timeout_ms);
/* Receive one frame's header and body (malloc'd into *body when len > 0); -EBADMSG: its MAC failed. */
int dx_recv_frame(struct dx_link *l, struct dx_frame *f, void **body, int timeout_ms);
/* Words for a link error in a log line (a failed MAC named as such). */
const char *dx_link_err(int r);
void dx_self_ident(struct dx_ident *id, const char *name);
void dx_tune(int fd);
/* Fence the other CF with the configured agent until it is confirmed (or *stop is set). */
int dx_fence_peer(const struct cf_duplex_cfg *cfg, const struct dx_ident *peer, const char *who, const int *stop);
/* Connect to a link address within timeout_ms; the fd or -errno (-ECONNREFUSED: nobody listens there). */
int dx_dial(const char *addr, int timeout_ms, char *why, size_t whylen);
/* Receive one frame that must be of this type and exactly len bytes (into buf); -EPROTO if not. */
int dx_recv_expect(struct dx_link *l, uint32_t type, void *buf, uint32_t len);
/* The listening side of the key proof; 0 once the peer proved the cluster key (the link is then sealed), -EPERM if not. */
int dx_accept_auth(struct dx_link *l, const uint8_t key[CF_KEY_LEN]);
/*
 * The connecting side: prove the key, check the listener's proof, then read
 * its answer: 0 with a serving primary's identity and header (INFO, answered
 * with our identity), DX_HS_STATE with a pair member's state (st), or -errno.
 */
#define DX_HS_STATE 1
int dx_follow_handshake(struct dx_link *l, const struct cf_duplex_cfg *cfg, struct dx_ident *peer, struct cf_header *h,
			struct dx_state_msg *st, char *why, size_t whylen);

/* The secondary's part once connected and handshaken (cf_duplex_follow.c); closes the link. */
int dx_follow_link(struct dx_link *l, const struct dx_ident *peer, const struct cf_header *h, const char *primary_addr,
		 const char *nvram, const struct cf_duplex_cfg *cfg, struct cf_image *im, char *why, size_t whylen);

/* SIGTERM/SIGINT while following or deciding: caught (dx_stopped), restored by dx_release_stop. */
void dx_catch_stop(struct sigaction old[2]);
void dx_release_stop(const struct sigaction old[2]);
bool dx_stopped(void);

/* The image's duplex words (header, mutable part): set, persisted. */
void dx_mark(struct cf_image *im, uint64_t mark);

#endif
