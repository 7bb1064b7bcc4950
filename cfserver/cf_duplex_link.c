/* SPDX-License-Identifier: MIT */
/* cf_duplex_link.c - the duplex link's frames, key proof, dialling and fencing (cf_duplex_int.h). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../node/cf_fence.h"
#include "cf_addr.h"
#include "cf_duplex_int.h"
#include "cf_slog.h"
#include "cf_util.h"

/* Write all of buf, waiting at most timeout_ms for the socket to take each part (-1: forever). */
static int wr_all(int fd, const void *buf, size_t len, int timeout_ms)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			p += n, len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int r = poll(&pfd, 1, timeout_ms);
			if (r == 0)
				return -ETIMEDOUT;
			if (r < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		return n < 0 ? -errno : -EPIPE;
	}
	return 0;
}

/* Read exactly len bytes within timeout_ms (-1: forever); -ECONNRESET at EOF. */
static int rd_all(int fd, void *buf, size_t len, int timeout_ms)
{
	char *p = buf;
	uint64_t end = timeout_ms < 0 ? 0 : cf_mono_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (len) {
		ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
		if (n > 0) {
			p += n, len -= (size_t)n;
			continue;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int wait = -1;
		if (timeout_ms >= 0) {
			uint64_t now = cf_mono_ns();
			if (now >= end)
				return -ETIMEDOUT;
			wait = (int)((end - now) / 1000000ull) + 1;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int r = poll(&pfd, 1, wait);
		if (r < 0 && errno != EINTR)
			return -errno;
	}
	return 0;
}

void dx_link_init(struct dx_link *l, int fd)
{
	memset(l, 0, sizeof(*l));
	l->fd = fd;
}

void dx_link_close(struct dx_link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	cf_frame_mac_wipe(&l->tx);
	cf_frame_mac_wipe(&l->rx);
	dx_link_init(l, -1);
}

/* The key proof is done: from the next frame on, each direction is sealed with its own key. */
static void link_seal(struct dx_link *l, const uint8_t key[CF_KEY_LEN], const uint8_t cnonce[CF_NONCE_LEN],
		      const uint8_t snonce[CF_NONCE_LEN], bool dialler)
{
	uint8_t c2s[CF_KEY_LEN], s2c[CF_KEY_LEN];

	cf_auth_frame_keys(key, cnonce, snonce, DX_ROLE, c2s, s2c);
	cf_frame_mac_init(&l->tx, dialler ? c2s : s2c);
	cf_frame_mac_init(&l->rx, dialler ? s2c : c2s);
	sodium_memzero(c2s, sizeof(c2s));
	sodium_memzero(s2c, sizeof(s2c));
	l->sealed = true;
}

#define DX_SMALL_FRAME 512u /* bodies up to this go out in one write with their header and tag */

int dx_send_frame(struct dx_link *l, uint32_t type, uint64_t seq, const void *body, uint32_t len, int timeout_ms)
{
	struct dx_frame f = {type, len, seq};
	uint8_t tag[CF_FRAME_TAG_LEN];
	int r;

	if (l->sealed) {
		r = cf_frame_seal2(&l->tx, &f, sizeof(f), body, len, tag);
		if (r < 0)
			return r;
	}
	if (len <= DX_SMALL_FRAME) {
		/*
		 * One write for a small frame (PING, ACK, the handshake's): a PING
		 * that times out waiting for room must not leave part of a frame
		 * in the stream, and one send of a few bytes is taken whole or not
		 * at all far more often than three.
		 */
		uint8_t one[sizeof(f) + DX_SMALL_FRAME + CF_FRAME_TAG_LEN];
		size_t n = sizeof(f);
		memcpy(one, &f, sizeof(f));
		if (len)
			memcpy(one + n, body, len), n += len;
		if (l->sealed)
			memcpy(one + n, tag, sizeof(tag)), n += sizeof(tag);
		return wr_all(l->fd, one, n, timeout_ms);
	}
	r = wr_all(l->fd, &f, sizeof(f), timeout_ms);
	if (r == 0 && len)
		r = wr_all(l->fd, body, len, timeout_ms);
	if (r == 0 && l->sealed)
		r = wr_all(l->fd, tag, sizeof(tag), timeout_ms);
	return r;
}

/* Receive one frame's header and body (malloc'd into *body when len > 0); -EBADMSG: its MAC failed. */
int dx_recv_frame(struct dx_link *l, struct dx_frame *f, void **body, int timeout_ms)
{
	uint8_t tag[CF_FRAME_TAG_LEN];
	int r = rd_all(l->fd, f, sizeof(*f), timeout_ms), rest;

	*body = NULL;
	if (r < 0)
		return r;
	if (f->len > DX_MAX_FRAME)
		return -EPROTO;
	rest = timeout_ms < 0 ? -1 : (timeout_ms > DX_HANDSHAKE_MS ? timeout_ms : DX_HANDSHAKE_MS);
	if (f->len) {
		*body = malloc(f->len);
		if (!*body)
			return -ENOMEM;
		r = rd_all(l->fd, *body, f->len, rest);
	}
	if (r == 0 && l->sealed) {
		r = rd_all(l->fd, tag, sizeof(tag), rest);
		if (r == 0)
			r = cf_frame_open2(&l->rx, f, sizeof(*f), *body, f->len, tag);
	}
	if (r < 0) {
		free(*body);
		*body = NULL;
	}
	return r;
}

const char *dx_link_err(int r)
{
	switch (r) {
	case -ECONNRESET: return "connection closed";
	case -EBADMSG: return "a frame failed its MAC check (changed or injected on the path)";
	case -EPROTO: return "protocol error";
	default: return strerror(r < 0 ? -r : r);
	}
}

void dx_self_ident(struct dx_ident *id, const char *name)
{
	memset(id, 0, sizeof(*id));
	id->pid = (uint64_t)getpid();
	id->starttime = cf_proc_starttime(id->pid);
	gethostname(id->host, sizeof(id->host) - 1);
	snprintf(id->name, sizeof(id->name), "%s", name ? name : "cfserver");
}

void dx_tune(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Fence the other CF with the configured agent until it is confirmed (or stop is set). */
int dx_fence_peer(const struct cf_duplex_cfg *cfg, const struct dx_ident *peer, const char *who,
		      const int *stop)
{
	struct cf_fence_cfg fc;
	struct cf_fence_target t;
	char msg[512];
	unsigned tries = 0;
	int r;

	memset(&fc, 0, sizeof(fc));
	r = cf_fence_parse(&fc, cfg->fence ? cfg->fence : "auto");
	if (r < 0)
		return r;
	if (fc.kind == CF_FENCE_NONE) {
		cf_slog_warn("duplex: --cf-fence none: NOT fencing the %s %s (pid %llu on %s); two CFs may grant at once",
			 who, peer->name, (unsigned long long)peer->pid, peer->host);
		return 0;
	}
	memset(&t, 0, sizeof(t));
	memcpy(t.name, peer->name, sizeof(t.name) - 1); /* a fence agent's plug= : the CF's name, cut to fit */
	memcpy(t.host, peer->host, sizeof(t.host) - 1);
	t.pid = peer->pid;
	t.starttime = peer->starttime;
	for (;;) {
		r = cf_fence_run(&fc, &t, msg, sizeof(msg));
		if (r == 0) {
			cf_slog_info("duplex: %s fenced: %s", who, msg);
			return 0;
		}
		if (tries++ % 10 == 0)
			cf_slog_err("duplex: cannot fence the %s %s (pid %llu on %s): %s; retrying every second%s", who,
				peer->name, (unsigned long long)peer->pid, peer->host, msg,
				r == -EHOSTUNREACH ? " (another host: give --cf-fence an external fence agent)" : "");
		if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
			return -EINTR;
		sleep(1);
	}
}


int dx_dial(const char *addr, int timeout_ms, char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char host[CF_ADDR_HOST_MAX], port[8];
	uint16_t pnum;
	int fd, r;

	r = cf_addr_split(addr, host, sizeof(host), &pnum);
	if (r < 0) {
		snprintf(why, whylen, "'%s' is not HOST:PORT", addr);
		return -EINVAL;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)pnum);
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		/* a name that does not resolve is the command line's error: -ENXIO, which callers give up on */
		snprintf(why, whylen, "cannot resolve '%s'", host);
		return -ENXIO;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		freeaddrinfo(res);
		return r;
	}
	r = connect(fd, res->ai_addr, res->ai_addrlen) < 0 ? -errno : 0;
	freeaddrinfo(res);
	if (r == -EINPROGRESS) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t el = sizeof(err);
		do
			r = poll(&pfd, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r == 0)
			r = -ETIMEDOUT;
		else if (r < 0)
			r = -errno;
		else
			r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 ? -errno : -err;
	}
	if (r < 0) {
		snprintf(why, whylen, "connect to the link %s: %s", addr, strerror(-r));
		close(fd);
		return r;
	}
	/* the frame functions wait with poll themselves: the socket stays non-blocking */
	dx_tune(fd);
	return fd;
}

/* The listening side of the key proof (HELLO, CHALLENGE, AUTH). */
int dx_recv_expect(struct dx_link *l, uint32_t type, void *buf, uint32_t len)
{
	struct dx_frame f;
	void *b = NULL;
	int r = dx_recv_frame(l, &f, &b, DX_HANDSHAKE_MS);

	if (r < 0)
		return r;
	if (f.type != type || f.len != len) {
		free(b);
		return -EPROTO;
	}
	memcpy(buf, b, len);
	free(b);
	return 0;
}

/* The link has no version range of its own (both ends are one build's pair); its role is bound. */
static const struct cf_auth_terms dx_terms = { .role = DX_ROLE };

int dx_accept_auth(struct dx_link *l, const uint8_t key[CF_KEY_LEN])
{
	struct dx_hello hello;
	struct dx_challenge ch;
	struct dx_auth au;
	uint8_t mac[CF_MAC_LEN];
	int r;

	r = dx_recv_expect(l, DX_HELLO, &hello, sizeof(hello));
	if (r < 0)
		return r;
	cf_auth_nonce(ch.nonce);
	cf_auth_mac_server(key, hello.nonce, ch.nonce, &dx_terms, ch.mac);
	r = dx_send_frame(l, DX_CHALLENGE, 0, &ch, sizeof(ch), DX_HANDSHAKE_MS);
	if (r < 0)
		return r;
	r = dx_recv_expect(l, DX_AUTH, &au, sizeof(au));
	if (r < 0)
		return r;
	cf_auth_mac_client(key, ch.nonce, hello.nonce, &dx_terms, mac);
	if (cf_auth_verify(mac, au.mac) < 0)
		return -EPERM;
	link_seal(l, key, hello.nonce, ch.nonce, false);
	return 0;
}

const char *dx_role_str(uint32_t role)
{
	switch (role) {
	case DX_ROLE_STANDBY: return "standby";
	case DX_ROLE_CLAIMING: return "claiming the primary role";
	case DX_ROLE_FOLLOWING: return "following a primary";
	case DX_ROLE_PRIMARY: return "primary, starting";
	default: return "?";
	}
}

int dx_follow_handshake(struct dx_link *l, const struct cf_duplex_cfg *cfg, struct dx_ident *peer, struct cf_header *h,
			struct dx_state_msg *st, char *why, size_t whylen)
{
	struct dx_hello hello;
	struct dx_auth au;
	struct dx_frame f;
	uint8_t mac[CF_MAC_LEN];
	struct dx_ident me;
	void *b;
	int r;

	cf_auth_nonce(hello.nonce);
	r = dx_send_frame(l, DX_HELLO, 0, &hello, sizeof(hello), DX_HANDSHAKE_MS);
	if (r < 0)
		goto io;
	r = dx_recv_frame(l, &f, &b, DX_HANDSHAKE_MS);
	if (r < 0)
		goto io;
	if (f.type != DX_CHALLENGE || f.len != sizeof(struct dx_challenge)) {
		free(b);
		snprintf(why, whylen, "the primary's link answered with frame type %u, not a challenge", f.type);
		return -EPROTO;
	}
	cf_auth_mac_server(cfg->key, hello.nonce, ((struct dx_challenge *)b)->nonce, &dx_terms, mac);
	if (cf_auth_verify(mac, ((struct dx_challenge *)b)->mac) < 0) {
		free(b);
		snprintf(why, whylen, "the primary did not prove the cluster key (a different --cluster-key?)");
		return -EPERM;
	}
	cf_auth_mac_client(cfg->key, ((struct dx_challenge *)b)->nonce, hello.nonce, &dx_terms, au.mac);
	r = dx_send_frame(l, DX_AUTH, 0, &au, sizeof(au), DX_HANDSHAKE_MS);
	if (r == 0)
		link_seal(l, cfg->key, hello.nonce, ((struct dx_challenge *)b)->nonce, true);
	free(b);
	if (r < 0)
		goto io;
	r = dx_recv_frame(l, &f, &b, DX_HANDSHAKE_MS);
	if (r < 0) {
		if (r == -ECONNRESET) {
			snprintf(why, whylen, "the primary closed the link after our proof (cluster key refused?)");
			return -EPERM;
		}
		goto io;
	}
	if (f.type == DX_STATE && f.len == sizeof(*st) && st) {
		memcpy(st, b, sizeof(*st));
		st->id.host[sizeof(st->id.host) - 1] = 0;
		st->id.name[sizeof(st->id.name) - 1] = 0;
		free(b);
		return DX_HS_STATE;
	}
	if (f.type != DX_INFO || f.len != sizeof(*peer) + sizeof(*h)) {
		free(b);
		snprintf(why, whylen, "the primary's link sent frame type %u (%u bytes), not its identity", f.type, f.len);
		return -EPROTO;
	}
	memcpy(peer, b, sizeof(*peer));
	peer->host[sizeof(peer->host) - 1] = 0;
	peer->name[sizeof(peer->name) - 1] = 0;
	memcpy(h, (uint8_t *)b + sizeof(*peer), sizeof(*h));
	free(b);
	dx_self_ident(&me, cfg->name);
	r = dx_send_frame(l, DX_INFO_R, 0, &me, sizeof(me), DX_HANDSHAKE_MS);
	if (r < 0)
		goto io;
	return 0;
io:
	snprintf(why, whylen, "link handshake: %s", strerror(-r));
	return r;
}

