/* SPDX-License-Identifier: MIT */
/* cf_duplex.c - a duplexed CF: the primary ships its durable batches, the secondary follows; see cf_duplex.h. */
#include "cf_duplex.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../node/cf_fence.h"
#include "cf_addr.h"
#include "cf_auth.h"
#include "cf_fault.h"
#include "cf_persist.h"
#include "cf_slog.h"
#include "cf_util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* ---------------- the link's frames ---------------- */

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

static int send_frame(int fd, uint32_t type, uint64_t seq, const void *body, uint32_t len, int timeout_ms)
{
	struct dx_frame f = {type, len, seq};
	int r = wr_all(fd, &f, sizeof(f), timeout_ms);

	return r < 0 || !len ? r : wr_all(fd, body, len, timeout_ms);
}

/* Receive one frame's header and body (malloc'd into *body when len > 0). */
static int recv_frame(int fd, struct dx_frame *f, void **body, int timeout_ms)
{
	int r = rd_all(fd, f, sizeof(*f), timeout_ms);

	*body = NULL;
	if (r < 0)
		return r;
	if (f->len > DX_MAX_FRAME)
		return -EPROTO;
	if (!f->len)
		return 0;
	*body = malloc(f->len);
	if (!*body)
		return -ENOMEM;
	r = rd_all(fd, *body, f->len, timeout_ms < 0 ? -1 : (timeout_ms > DX_HANDSHAKE_MS ? timeout_ms : DX_HANDSHAKE_MS));
	if (r < 0) {
		free(*body);
		*body = NULL;
	}
	return r;
}

static void self_ident(struct dx_ident *id, const char *name)
{
	memset(id, 0, sizeof(*id));
	id->pid = (uint64_t)getpid();
	id->starttime = cf_proc_starttime(id->pid);
	gethostname(id->host, sizeof(id->host) - 1);
	snprintf(id->name, sizeof(id->name), "%s", name ? name : "cfserver");
}

static void tune(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Fence the other CF with the configured agent until it is confirmed (or stop is set). */
static int fence_peer(const struct cf_duplex_cfg *cfg, const struct dx_ident *peer, const char *who,
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

/* ---------------- primary ---------------- */

enum dx_state { DX_NONE = 0, DX_SYNCING = 1, DX_INSYNC = 2, DX_FENCING = 3 };

/*
 * One batch's copy: one or more BATCH frames, each at most dx_part bytes of
 * image (a batch may be large: every log appended to while the previous
 * batch was on the wire, or a sync chunk). Only the last frame carries the
 * batch's sequence number, which the secondary acknowledges; the others go
 * with seq 0. buf holds the frames as [u32 body length][body]...
 */
struct dx_job {
	uint64_t gen, seq;
	size_t nparts, used;
	uint8_t *buf;
};

struct cf_duplex {
	struct ev_loop *loop;
	struct cf_image *im;
	struct cf_duplex_cfg cfg;
	struct cf_persist *gc;
	int lfd, port;
	int quit_pipe[2];
	pthread_t thr;
	bool thr_started;
	ev_async start_w; /* link thread -> loop: a secondary attached, start the sync */
	/* wmu serialises writes on sfd; mu guards the state below. Order: wmu, then mu. */
	pthread_mutex_t wmu, mu;
	pthread_cond_t cv;
	int sfd;
	enum dx_state state;
	uint64_t gen;               /* bumped at every attach */
	uint64_t seq_sent, seq_acked;
	uint64_t synced_bytes;
	struct dx_ident peer;
	struct dx_job failed; /* the job of a batch that could not be copied (copy_failed) */
	/* the sync (loop thread) */
	uint64_t sync_gen, sync_off;
	int quit; /* atomic: set by cf_duplex_free */
};

#define DX_PART_DEFAULT (8u << 20)
/* CF_DUPLEX_PART (tests): a smaller part size, so that the tests split every batch */
static uint64_t dx_part = DX_PART_DEFAULT;

/*
 * The batch could not be copied (out of memory; fault point dx.copy:fail):
 * acknowledging it uncopied would break the pair's promise, so the secondary
 * is dropped instead. dx_send shuts the link, the link thread fences the
 * secondary, and the batch waits for that fence like any batch of a lost
 * link; then this CF runs alone. One batch is copied at a time (cf_persist:
 * a synchronous commit first waits for the thread's batch), so one job
 * object, in struct cf_duplex, serves every failed copy.
 */
static void *copy_failed(struct cf_duplex *d, struct cf_persist_range *pc, struct dx_job *j)
{
	free(pc);
	if (j)
		free(j->buf);
	free(j);
	memset(&d->failed, 0, sizeof(d->failed));
	return &d->failed;
}

static void *dx_snap(void *arg, const struct cf_persist_range *r, size_t n)
{
	struct cf_duplex *d = arg;
	struct cf_persist_range *pc;
	uint64_t bytes = 0, npc = 0;
	struct dx_job *j;
	uint8_t *p;

	if (!r || CF_FAULT_FAILS("dx.copy"))
		return copy_failed(d, NULL, NULL);
	for (size_t k = 0; k < n; k++) {
		bytes += r[k].len;
		npc += (r[k].len + dx_part - 1) / dx_part;
	}
	/* the pieces: every range cut into pieces of at most dx_part bytes */
	pc = malloc((npc ? npc : 1) * sizeof(*pc));
	j = calloc(1, sizeof(*j));
	if (!pc || !j)
		return copy_failed(d, pc, j);
	npc = 0;
	for (size_t k = 0; k < n; k++)
		for (uint64_t o = 0; o < r[k].len; o += dx_part)
			pc[npc++] = (struct cf_persist_range){r[k].off + o,
							      r[k].len - o < dx_part ? r[k].len - o : dx_part};
	/* every piece costs a 16-byte entry, every part (at most one per piece) a length and a count */
	j->buf = malloc(bytes + npc * (16 + 12) + 12);
	if (!j->buf)
		return copy_failed(d, pc, j);
	p = j->buf;
	for (uint64_t k = 0; k < npc;) {
		/* one part: the next pieces while they fit in dx_part bytes of image (at least one) */
		uint64_t e = k, pb = 0;
		while (e < npc && (e == k || pb + pc[e].len <= dx_part))
			pb += pc[e++].len;
		uint64_t np = e - k;
		uint32_t blen = (uint32_t)(8 + np * 16 + pb);
		memcpy(p, &blen, 4), p += 4;
		memcpy(p, &np, 8), p += 8;
		for (uint64_t x = k; x < e; x++) {
			memcpy(p, &pc[x].off, 8), p += 8;
			memcpy(p, &pc[x].len, 8), p += 8;
		}
		for (uint64_t x = k; x < e; x++) {
			memcpy(p, (const uint8_t *)d->im->base + pc[x].off, pc[x].len);
			p += pc[x].len;
		}
		j->nparts++;
		k = e;
	}
	free(pc);
	j->used = (size_t)(p - j->buf);
	return j;
}

static void dx_send(void *arg, void *job)
{
	struct cf_duplex *d = arg;
	struct dx_job *j = job;
	int fd = -1;

	if (!j)
		return;
	pthread_mutex_lock(&d->wmu);
	pthread_mutex_lock(&d->mu);
	if (j == &d->failed) {
		/* no copy: drop the secondary; the batch waits for its fence (or goes if there is none) */
		if (d->state != DX_NONE) {
			cf_slog_err("duplex: a batch could not be copied for the secondary %s (out of memory): dropping "
				    "it; the batch waits until it is fenced", d->peer.name);
			if (d->sfd >= 0)
				shutdown(d->sfd, SHUT_RDWR);
			j->gen = d->gen;
			j->seq = UINT64_MAX;
		}
	} else if (d->state == DX_SYNCING || d->state == DX_INSYNC) {
		j->gen = d->gen;
		j->seq = ++d->seq_sent;
		fd = d->sfd;
	} else if (d->state == DX_FENCING) {
		/*
		 * The secondary is lost but not yet fenced: it may still take over
		 * without this batch. Nothing to send; the batch waits for the
		 * fence (an ACK that never comes).
		 */
		j->gen = d->gen;
		j->seq = UINT64_MAX;
	}
	pthread_mutex_unlock(&d->mu);
	/* a stalled secondary blocks here until the link thread fences it (shutdown wakes us) */
	if (fd >= 0) {
		const uint8_t *q = j->buf;
		for (size_t k = 0; k < j->nparts; k++) {
			uint32_t blen;
			memcpy(&blen, q, 4);
			if (send_frame(fd, DX_BATCH, k + 1 == j->nparts ? j->seq : 0, q + 4, blen, -1) < 0) {
				cf_slog_debug("duplex: batch %llu not sent: the link is going", (unsigned long long)j->seq);
				break;
			}
			q += 4 + blen;
		}
	}
	pthread_mutex_unlock(&d->wmu);
}

static void dx_wait(void *arg, void *job)
{
	struct cf_duplex *d = arg;
	struct dx_job *j = job;

	if (!j)
		return;
	pthread_mutex_lock(&d->mu);
	while (j->gen && j->gen == d->gen && d->seq_acked < j->seq && d->state != DX_NONE)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);
	if (j != &d->failed) {
		free(j->buf);
		free(j);
	}
}

static void sync_step(struct cf_duplex *d);

static void sync_done(void *arg)
{
	sync_step(arg);
}

/* Loop thread: ship the next chunk of the image, or say SYNCED after the last one was acknowledged. */
static void sync_step(struct cf_duplex *d)
{
	uint64_t size = d->im->map.image_size, len;

	pthread_mutex_lock(&d->wmu);
	pthread_mutex_lock(&d->mu);
	if (d->gen != d->sync_gen || d->state != DX_SYNCING) {
		pthread_mutex_unlock(&d->mu);
		pthread_mutex_unlock(&d->wmu);
		return; /* that secondary is gone */
	}
	d->synced_bytes = d->sync_off;
	if (d->sync_off >= size) {
		int fd = d->sfd;
		d->state = DX_INSYNC;
		pthread_mutex_unlock(&d->mu);
		/* after the last chunk's ACK, and before any later batch: the stream's order */
		send_frame(fd, DX_SYNCED, 0, NULL, 0, -1);
		pthread_mutex_unlock(&d->wmu);
		cf_slog_info("duplex: secondary %s (pid %llu on %s) is in sync (%llu bytes): every durable write is now "
			 "acknowledged by both CFs", d->peer.name, (unsigned long long)d->peer.pid, d->peer.host,
			 (unsigned long long)size);
		return;
	}
	pthread_mutex_unlock(&d->mu);
	pthread_mutex_unlock(&d->wmu);
	len = size - d->sync_off < DX_CHUNK ? size - d->sync_off : DX_CHUNK;
	cf_persist_add(d->gc, d->sync_off, len);
	d->sync_off += len;
	if (cf_persist_after(d->gc, sync_done, d) < 0) {
		cf_persist_commit(d->gc);
		sync_step(d);
	}
}

static void start_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct cf_duplex *d = w->data;

	char name[sizeof(d->peer.name)];

	pthread_mutex_lock(&d->mu);
	bool go = d->state == DX_SYNCING && d->sync_gen != d->gen;
	d->sync_gen = d->gen;
	memcpy(name, d->peer.name, sizeof(name));
	pthread_mutex_unlock(&d->mu);
	if (!go || !d->gc)
		return;
	d->sync_off = 0;
	cf_slog_info("duplex: copying the image (%llu bytes) to secondary %s while serving",
		 (unsigned long long)d->im->map.image_size, name);
	sync_step(d);
}

/* Handshake of a connecting secondary (link thread): 0 with its identity, or -errno. */
static int accept_handshake(struct cf_duplex *d, int fd, struct dx_ident *peer)
{
	struct dx_frame f;
	struct dx_challenge ch;
	struct dx_ident me;
	uint8_t mac[CF_MAC_LEN];
	void *b = NULL;
	int r;

	r = recv_frame(fd, &f, &b, DX_HANDSHAKE_MS);
	if (r < 0)
		return r;
	if (f.type != DX_HELLO || f.len != sizeof(struct dx_hello)) {
		free(b);
		return -EPROTO;
	}
	cf_auth_nonce(ch.nonce);
	cf_auth_mac_server(d->cfg.key, ((struct dx_hello *)b)->nonce, ch.nonce, ch.mac);
	uint8_t cn[CF_NONCE_LEN];
	memcpy(cn, ((struct dx_hello *)b)->nonce, sizeof(cn));
	free(b);
	r = send_frame(fd, DX_CHALLENGE, 0, &ch, sizeof(ch), DX_HANDSHAKE_MS);
	if (r < 0)
		return r;
	r = recv_frame(fd, &f, &b, DX_HANDSHAKE_MS);
	if (r < 0)
		return r;
	if (f.type != DX_AUTH || f.len != sizeof(struct dx_auth)) {
		free(b);
		return -EPROTO;
	}
	cf_auth_mac_client(d->cfg.key, ch.nonce, cn, DX_ROLE, mac);
	r = cf_auth_verify(mac, ((struct dx_auth *)b)->mac);
	free(b);
	if (r < 0)
		return -EPERM;
	/* identity, then the header: the secondary builds an image of the same geometry */
	{
		size_t hl = sizeof(struct cf_header);
		uint8_t *info = malloc(sizeof(me) + hl);
		if (!info)
			return -ENOMEM;
		self_ident(&me, d->cfg.name);
		memcpy(info, &me, sizeof(me));
		memcpy(info + sizeof(me), d->im->base, hl);
		r = send_frame(fd, DX_INFO, 0, info, (uint32_t)(sizeof(me) + hl), DX_HANDSHAKE_MS);
		free(info);
		if (r < 0)
			return r;
	}
	r = recv_frame(fd, &f, &b, DX_HANDSHAKE_MS);
	if (r < 0)
		return r;
	if (f.type != DX_INFO_R || f.len != sizeof(*peer)) {
		free(b);
		return -EPROTO;
	}
	memcpy(peer, b, sizeof(*peer));
	peer->host[sizeof(peer->host) - 1] = 0;
	peer->name[sizeof(peer->name) - 1] = 0;
	free(b);
	return 0;
}

/* Serve an attached secondary until the link is lost (link thread). */
static void serve_link(struct cf_duplex *d, int fd)
{
	uint64_t last_rx = cf_mono_ns(), last_tx = 0;
	int period = (int)(d->cfg.hb_interval_ns / 1000000ull);
	const char *why = "timeout";
	int r;

	if (period < 1)
		period = 1;
	for (;;) {
		struct pollfd pfd[2] = {{.fd = fd, .events = POLLIN}, {.fd = d->quit_pipe[0], .events = POLLIN}};
		uint64_t now;
		r = poll(pfd, 2, period);
		if (__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE))
			return;
		now = cf_mono_ns();
		if (r > 0 && (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			struct dx_frame f;
			void *b;
			r = recv_frame(fd, &f, &b, 1000);
			free(b);
			if (r < 0) {
				why = r == -ECONNRESET ? "connection closed" : strerror(-r);
				break;
			}
			last_rx = now;
			if (f.type == DX_ACK) {
				pthread_mutex_lock(&d->mu);
				if (f.seq > d->seq_acked && f.seq <= d->seq_sent)
					d->seq_acked = f.seq;
				pthread_cond_broadcast(&d->cv);
				pthread_mutex_unlock(&d->mu);
			} else if (f.type != DX_PING) {
				why = "protocol error";
				break;
			}
		}
		if (now - last_rx > d->cfg.link_timeout_ns) {
			why = "silent beyond the link timeout";
			break;
		}
		/*
		 * While a batch is being written (wmu held) the batch is our sign of
		 * life; else a PING, whole or not at all (a part of one would break
		 * the stream), waiting at most a period for room.
		 */
		if (now - last_tx >= d->cfg.hb_interval_ns && pthread_mutex_trylock(&d->wmu) == 0) {
			r = send_frame(fd, DX_PING, 0, NULL, 0, period);
			pthread_mutex_unlock(&d->wmu);
			if (r == 0)
				last_tx = now;
			else if (r != -ETIMEDOUT) {
				why = strerror(-r);
				break;
			}
		}
	}
	cf_slog_err("duplex: lost the secondary %s (pid %llu on %s): %s; durable acknowledgements wait until it is "
		"fenced", d->peer.name, (unsigned long long)d->peer.pid, d->peer.host, why);
}

static void *link_main(void *arg)
{
	struct cf_duplex *d = arg;

	while (!__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd[2] = {{.fd = d->lfd, .events = POLLIN}, {.fd = d->quit_pipe[0], .events = POLLIN}};
		struct dx_ident peer;
		int fd, r;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE))
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(d->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		tune(fd);
		r = accept_handshake(d, fd, &peer);
		if (r < 0) {
			cf_slog_warn("duplex: a connection to the link port was refused: %s",
				 r == -EPERM ? "it did not prove the cluster key" : strerror(-r));
			close(fd);
			continue;
		}
		pthread_mutex_lock(&d->wmu);
		pthread_mutex_lock(&d->mu);
		d->sfd = fd;
		d->peer = peer;
		d->gen++;
		d->seq_sent = d->seq_acked = 0;
		d->synced_bytes = 0;
		d->state = DX_SYNCING;
		pthread_mutex_unlock(&d->mu);
		pthread_mutex_unlock(&d->wmu);
		cf_slog_info("duplex: secondary %s (pid %llu on %s) attached", peer.name, (unsigned long long)peer.pid,
			 peer.host);
		ev_async_send(d->loop, &d->start_w);
		serve_link(d, fd);
		if (__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE))
			break;
		/* lost: unblock a writer stuck on it, fence, and only then release the waiting batches */
		shutdown(fd, SHUT_RDWR);
		pthread_mutex_lock(&d->mu);
		d->state = DX_FENCING;
		pthread_mutex_unlock(&d->mu);
		fence_peer(&d->cfg, &peer, "secondary", &d->quit);
		pthread_mutex_lock(&d->wmu);
		pthread_mutex_lock(&d->mu);
		close(fd);
		d->sfd = -1;
		d->state = DX_NONE;
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
		pthread_mutex_unlock(&d->wmu);
		cf_slog_err("duplex: running ALONE: no secondary; a death of this CF now ends every system's "
			"incarnation%s", d->im->persist_fn ? "" : " and loses the undo logs (DRAM)");
	}
	return NULL;
}

int cf_duplex_listen(struct ev_loop *loop, struct cf_image *im, const char *addr, const struct cf_duplex_cfg *cfg,
		     struct cf_duplex **out, char *why, size_t whylen)
{
	struct cf_duplex *d;
	int r;

	{
		const char *e = getenv("CF_DUPLEX_PART");
		unsigned long long v = e ? strtoull(e, NULL, 10) : 0;
		if (v >= 64 && v <= DX_PART_DEFAULT)
			dx_part = v;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->loop = loop;
	d->im = im;
	d->cfg = *cfg;
	d->sfd = -1;
	d->lfd = -1;
	d->quit_pipe[0] = d->quit_pipe[1] = -1;
	pthread_mutex_init(&d->wmu, NULL);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->lfd = cf_addr_listen(addr, SOCK_CLOEXEC, 4, &d->port);
	if (d->lfd < 0) {
		r = d->lfd;
		snprintf(why, whylen, "%s", r == -EINVAL ? "not HOST:PORT" : r == -EADDRNOTAVAIL ? "the host does not resolve" : strerror(-r));
		goto err;
	}
	if (pipe2(d->quit_pipe, O_CLOEXEC) < 0)
		goto err_errno;
	ev_async_init(&d->start_w, start_cb);
	d->start_w.data = d;
	ev_async_start(loop, &d->start_w);
	r = -pthread_create(&d->thr, NULL, link_main, d);
	if (r) {
		ev_async_stop(loop, &d->start_w);
		snprintf(why, whylen, "cannot start the link thread: %s", strerror(-r));
		goto err;
	}
	d->thr_started = true;
	*out = d;
	return 0;
err_errno:
	r = -errno;
	snprintf(why, whylen, "%s", strerror(errno));
err:
	if (d->lfd >= 0)
		close(d->lfd);
	if (d->quit_pipe[0] >= 0)
		close(d->quit_pipe[0]), close(d->quit_pipe[1]);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->wmu);
	free(d);
	return r;
}

void cf_duplex_attach_persist(struct cf_duplex *d, struct cf_persist *p)
{
	struct cf_persist_replica rep = {.arg = d, .snap = dx_snap, .send = dx_send, .wait = dx_wait};

	d->gc = p;
	cf_persist_set_replica(p, &rep);
}

int cf_duplex_port(const struct cf_duplex *d)
{
	return d->port;
}

int cf_duplex_state(const struct cf_duplex *d, char *peer, size_t peercap, uint64_t *synced_bytes)
{
	struct cf_duplex *m = (struct cf_duplex *)d;
	int st;

	pthread_mutex_lock(&m->mu);
	st = (int)m->state;
	if (peer)
		snprintf(peer, peercap, "%s pid %llu on %s", m->peer.name, (unsigned long long)m->peer.pid,
			 m->peer.host);
	if (synced_bytes)
		*synced_bytes = m->state == DX_INSYNC ? m->im->map.image_size : m->synced_bytes;
	pthread_mutex_unlock(&m->mu);
	return st;
}

void cf_duplex_free(struct cf_duplex *d)
{
	if (!d)
		return;
	if (d->gc)
		cf_persist_cancel(d->gc, sync_done, d);
	__atomic_store_n(&d->quit, 1, __ATOMIC_RELEASE);
	if (write(d->quit_pipe[1], "q", 1) < 0) {
		/* the thread also polls quit every h */
	}
	pthread_mutex_lock(&d->mu);
	if (d->sfd >= 0)
		shutdown(d->sfd, SHUT_RDWR);
	d->state = DX_NONE;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	if (d->thr_started)
		pthread_join(d->thr, NULL);
	ev_async_stop(d->loop, &d->start_w);
	if (d->sfd >= 0)
		close(d->sfd);
	close(d->lfd);
	close(d->quit_pipe[0]);
	close(d->quit_pipe[1]);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->wmu);
	free(d);
}

/* ---------------- secondary ---------------- */

static int follow_stop; /* set by the signal handler of this (the only) thread */
#define STOPPED() __atomic_load_n(&follow_stop, __ATOMIC_RELAXED)

static void on_stop(int sig)
{
	__atomic_store_n(&follow_stop, 1, __ATOMIC_RELAXED);
}

static int dial(const char *addr, char *why, size_t whylen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char host[CF_ADDR_HOST_MAX], port[8];
	uint16_t pnum;
	int fd, r;

	r = cf_addr_split(addr, host, sizeof(host), &pnum);
	if (r < 0) {
		snprintf(why, whylen, "--duplex-with '%s' is not HOST:PORT", addr);
		return -EINVAL;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)pnum);
	r = getaddrinfo(host, port, &hints, &res);
	if (r) {
		snprintf(why, whylen, "cannot resolve '%s'", host);
		return -EHOSTUNREACH;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		freeaddrinfo(res);
		return r;
	}
	if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		r = -errno;
		snprintf(why, whylen, "connect to the primary's link %s: %s", addr, strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	tune(fd);
	return fd;
}

/* Handshake with the primary; fills its identity and header copy. */
static int follow_handshake(int fd, const struct cf_duplex_cfg *cfg, struct dx_ident *peer, struct cf_header *h,
			    char *why, size_t whylen)
{
	struct dx_hello hello;
	struct dx_auth au;
	struct dx_frame f;
	uint8_t mac[CF_MAC_LEN];
	struct dx_ident me;
	void *b;
	int r;

	cf_auth_nonce(hello.nonce);
	r = send_frame(fd, DX_HELLO, 0, &hello, sizeof(hello), DX_HANDSHAKE_MS);
	if (r < 0)
		goto io;
	r = recv_frame(fd, &f, &b, DX_HANDSHAKE_MS);
	if (r < 0)
		goto io;
	if (f.type != DX_CHALLENGE || f.len != sizeof(struct dx_challenge)) {
		free(b);
		snprintf(why, whylen, "the primary's link answered with frame type %u, not a challenge", f.type);
		return -EPROTO;
	}
	cf_auth_mac_server(cfg->key, hello.nonce, ((struct dx_challenge *)b)->nonce, mac);
	if (cf_auth_verify(mac, ((struct dx_challenge *)b)->mac) < 0) {
		free(b);
		snprintf(why, whylen, "the primary did not prove the cluster key (a different --cluster-key?)");
		return -EPERM;
	}
	cf_auth_mac_client(cfg->key, ((struct dx_challenge *)b)->nonce, hello.nonce, DX_ROLE, au.mac);
	free(b);
	r = send_frame(fd, DX_AUTH, 0, &au, sizeof(au), DX_HANDSHAKE_MS);
	if (r < 0)
		goto io;
	r = recv_frame(fd, &f, &b, DX_HANDSHAKE_MS);
	if (r < 0) {
		if (r == -ECONNRESET) {
			snprintf(why, whylen, "the primary closed the link after our proof (cluster key refused?)");
			return -EPERM;
		}
		goto io;
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
	self_ident(&me, cfg->name);
	r = send_frame(fd, DX_INFO_R, 0, &me, sizeof(me), DX_HANDSHAKE_MS);
	if (r < 0)
		goto io;
	return 0;
io:
	snprintf(why, whylen, "link handshake: %s", strerror(-r));
	return r;
}

/*
 * The secondary's PINGs come from a thread of their own: the follow loop may
 * spend a while inside one frame (a 1 MiB chunk arriving slowly from a busy
 * primary) and must not fall silent meanwhile. Every write on the link goes
 * through mu: ACKs and PINGs are whole frames.
 */
struct pinger {
	int fd;
	uint64_t period_ns;
	pthread_mutex_t mu;
	int stop; /* atomic */
	pthread_t thr;
};

static void *pinger_main(void *arg)
{
	struct pinger *pg = arg;

	while (!__atomic_load_n(&pg->stop, __ATOMIC_ACQUIRE)) {
		usleep((useconds_t)(pg->period_ns / 1000u));
		pthread_mutex_lock(&pg->mu);
		int r = send_frame(pg->fd, DX_PING, 0, NULL, 0, (int)(pg->period_ns / 1000000u) + 1);
		pthread_mutex_unlock(&pg->mu);
		if (r < 0 && r != -ETIMEDOUT)
			break; /* the follow loop sees the broken link itself */
	}
	return NULL;
}

static void stop_pinger(struct pinger *pg, bool *running)
{
	if (!*running)
		return;
	__atomic_store_n(&pg->stop, 1, __ATOMIC_RELEASE);
	pthread_join(pg->thr, NULL);
	pthread_mutex_destroy(&pg->mu);
	*running = false;
}

/* Apply one BATCH to the image; -EPROTO when it does not fit the geometry. */
static int apply_batch(struct cf_image *im, const uint8_t *b, uint32_t len)
{
	uint64_t n, off, rl, need;
	const uint8_t *ranges, *bytes;

	if (len < 8)
		return -EPROTO;
	memcpy(&n, b, 8);
	if (n > (len - 8) / 16)
		return -EPROTO;
	ranges = b + 8;
	bytes = ranges + n * 16;
	need = 8 + n * 16;
	for (uint64_t i = 0; i < n; i++) {
		memcpy(&off, ranges + i * 16, 8);
		memcpy(&rl, ranges + i * 16 + 8, 8);
		if (off > im->map.image_size || rl > im->map.image_size - off || rl > len)
			return -EPROTO;
		need += rl;
	}
	if (need != len)
		return -EPROTO;
	for (uint64_t i = 0; i < n; i++) {
		memcpy(&off, ranges + i * 16, 8);
		memcpy(&rl, ranges + i * 16 + 8, 8);
		memcpy((uint8_t *)im->base + off, bytes, rl);
		cf_image_persist(im, off, rl);
		bytes += rl;
	}
	return 0;
}

/* Is the primary, on this host, certainly gone? (waits up to wait_ms for an exit in progress) */
static bool peer_gone_locally(const struct dx_ident *p, int wait_ms)
{
	char host[CF_HOST_MAX] = "";
	struct pollfd pfd;
	int fd, r;

	gethostname(host, sizeof(host) - 1);
	if (strcmp(host, p->host) || p->pid <= 1 || p->pid > INT32_MAX)
		return false;
	fd = (int)syscall(SYS_pidfd_open, (pid_t)p->pid, 0);
	if (fd < 0)
		return errno == ESRCH;
	if (p->starttime && cf_proc_starttime(p->pid) != p->starttime) {
		close(fd);
		return true; /* the pid was reused */
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	do
		r = poll(&pfd, 1, wait_ms);
	while (r < 0 && errno == EINTR);
	close(fd);
	return r == 1;
}

int cf_duplex_follow(const char *primary_addr, const char *nvram, const struct cf_duplex_cfg *cfg,
		     struct cf_image *im, char *why, size_t whylen)
{
	struct sigaction sa = {.sa_handler = on_stop}, old_term, old_int;
	struct dx_ident peer;
	struct cf_header h;
	const char *hwhy = NULL, *lost = "timeout";
	bool synced = false, opened = false;
	uint64_t last_rx, applied = 0;
	struct pinger pg;
	bool pinging = false;
	unsigned attempts = 0;
	int fd = -1, r, period = (int)(cfg->hb_interval_ns / 1000000ull);

	if (period < 1)
		period = 1;
	__atomic_store_n(&follow_stop, 0, __ATOMIC_RELAXED);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	/* the primary may start after us: keep trying, and say so now and then */
	while (fd < 0) {
		fd = dial(primary_addr, why, whylen);
		if (fd >= 0)
			break;
		if (fd == -EINVAL || fd == -EHOSTUNREACH) {
			r = fd;
			goto out;
		}
		if (attempts++ % 50 == 0)
			cf_slog_info("duplex: waiting for the primary: %s", why);
		if (STOPPED()) {
			r = -EINTR;
			goto out;
		}
		usleep(100000);
	}
	r = follow_handshake(fd, cfg, &peer, &h, why, whylen);
	if (r < 0)
		goto out;
	if (cf_header_check(&h, h.image_size, &hwhy) < 0) {
		snprintf(why, whylen, "the primary's header does not check out: %s", hwhy ? hwhy : "?");
		r = -EPROTO;
		goto out;
	}
	r = cf_image_open(im, nvram, &h.geo, CF_GEO_SYSTEMS | CF_GEO_INSTANCES | CF_GEO_LOCKS | CF_GEO_RECORDS |
						      CF_GEO_LOGSIZE);
	if (r < 0) {
		snprintf(why, whylen, "cannot build this CF's image with the primary's geometry: %s",
			 im->why[0] ? im->why : strerror(-r));
		goto out;
	}
	opened = true;
	if (im->map.image_size != h.image_size) {
		snprintf(why, whylen, "image size %llu differs from the primary's %llu",
			 (unsigned long long)im->map.image_size, (unsigned long long)h.image_size);
		r = -EPROTO;
		goto out;
	}
	cf_slog_info("duplex: following the primary %s (pid %llu on %s) at %s; copying its image (%llu bytes)", peer.name,
		 (unsigned long long)peer.pid, peer.host, primary_addr, (unsigned long long)h.image_size);
	last_rx = cf_mono_ns();
	pg.fd = fd;
	pg.period_ns = cfg->hb_interval_ns ? cfg->hb_interval_ns : 5000000ull;
	pthread_mutex_init(&pg.mu, NULL);
	pg.stop = 0;
	if (pthread_create(&pg.thr, NULL, pinger_main, &pg) != 0) {
		pthread_mutex_destroy(&pg.mu);
		snprintf(why, whylen, "cannot start the link's ping thread");
		r = -EAGAIN;
		goto out;
	}
	pinging = true;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		uint64_t now;
		r = poll(&pfd, 1, period);
		if (STOPPED()) {
			snprintf(why, whylen, "stopped by a signal while following the primary (no takeover)");
			r = -EINTR;
			goto out;
		}
		now = cf_mono_ns();
		if (r > 0) {
			struct dx_frame f;
			void *b;
			r = recv_frame(fd, &f, &b, 1000);
			if (r < 0) {
				lost = r == -ECONNRESET ? "connection closed" : strerror(-r);
				free(b);
				break;
			}
			last_rx = now;
			if (f.type == DX_BATCH) {
				if (apply_batch(im, b, f.len) < 0) {
					free(b);
					snprintf(why, whylen, "the primary sent a batch that does not fit the image: refusing "
							      "to follow or take over from it");
					r = -EPROTO;
					goto out;
				}
				applied++;
				if (f.seq) { /* the last part of a batch: acknowledge the whole batch */
					pthread_mutex_lock(&pg.mu);
					r = send_frame(fd, DX_ACK, f.seq, NULL, 0, 1000);
					pthread_mutex_unlock(&pg.mu);
					if (r < 0) {
						lost = strerror(-r);
						free(b);
						break;
					}
				}
			} else if (f.type == DX_SYNCED) {
				synced = true;
				cf_slog_info("duplex: in sync with the primary after %llu batches: ready to take over",
					 (unsigned long long)applied);
			} else if (f.type != DX_PING) {
				free(b);
				snprintf(why, whylen, "the primary sent frame type %u on the link", f.type);
				r = -EPROTO;
				goto out;
			}
			free(b);
		}
		if (now - last_rx > cfg->link_timeout_ns) {
			lost = "silent beyond the link timeout";
			break;
		}
	}
	stop_pinger(&pg, &pinging);
	close(fd);
	fd = -1;
	if (!synced) {
		snprintf(why, whylen, "lost the primary (%s) before the copy was complete: this CF cannot take over",
			 lost);
		r = -ENOTCONN;
		goto out;
	}
	cf_slog_err("duplex: lost the primary %s (pid %llu on %s): %s", peer.name, (unsigned long long)peer.pid, peer.host,
		lost);
	if (peer_gone_locally(&peer, 100)) {
		cf_slog_info("duplex: the primary's process is gone: fenced");
	} else {
		uint64_t delay = cfg->fence_delay_ns;
		cf_slog_info("duplex: waiting %llu ms before fencing the primary (it fences a lost secondary at once)",
			 (unsigned long long)(delay / 1000000ull));
		while (delay && !STOPPED()) {
			uint64_t step = delay > 10000000ull ? 10000000ull : delay;
			usleep((useconds_t)(step / 1000u));
			delay -= step;
		}
		if (STOPPED()) {
			snprintf(why, whylen, "stopped by a signal before taking over");
			r = -EINTR;
			goto out;
		}
		r = fence_peer(cfg, &peer, "primary", &follow_stop);
		if (r < 0) {
			snprintf(why, whylen, "the primary was not fenced: no takeover");
			goto out;
		}
	}
	/* the copy is the primary's durable state; check it as a restart checks an --nvram image */
	if (cf_header_check(cf_image_header(im), im->size, &hwhy) < 0) {
		snprintf(why, whylen, "the copied image's header does not check out: %s", hwhy ? hwhy : "?");
		r = -EBADMSG;
		goto out;
	}
	if (cf_image_body_check(im->base, &im->map, &im->body) < 0) {
		snprintf(why, whylen, "the copied image does not check out: %s", im->body.first_server);
		r = -EBADMSG;
		goto out;
	}
	im->formatted = 0;
	cf_slog_info("duplex: taking over as the primary CF");
	r = 0;
out:
	stop_pinger(&pg, &pinging);
	if (fd >= 0)
		close(fd);
	if (r < 0 && opened)
		cf_image_close(im);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
	return r;
}
