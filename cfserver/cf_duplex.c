/* SPDX-License-Identifier: MIT */
/* cf_duplex.c - a duplexed CF's primary: ships its durable batches to the secondary; see cf_duplex.h. */
#include "cf_duplex.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cf_addr.h"
#include "cf_duplex_int.h"
#include "cf_fault.h"
#include "cf_persist.h"
#include "cf_slog.h"
#include "cf_util.h"

void dx_mark(struct cf_image *im, uint64_t mark)
{
	struct cf_header *h = cf_image_header(im);

	__atomic_store_n(&h->reserved[CF_HDR_DUPLEX], mark, __ATOMIC_RELEASE);
	cf_image_persist(im, offsetof(struct cf_header, reserved) + CF_HDR_DUPLEX * sizeof(uint64_t),
			 sizeof(uint64_t));
}

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
	/* wmu serialises writes on link (its tx MAC too); mu guards the state below. Order: wmu, then mu. */
	pthread_mutex_t wmu, mu;
	pthread_cond_t cv;
	struct dx_link link; /* the secondary's; rx is the link thread's alone */
	enum dx_state state;
	uint64_t gen;               /* bumped at every attach */
	uint64_t seq_sent, seq_acked;
	uint64_t synced_bytes;
	struct dx_ident peer;
	struct dx_job failed; /* the job of a batch that could not be copied (copy_failed) */
	/* the sync (loop thread) */
	uint64_t sync_gen, sync_off;
	int quit; /* atomic: set by cf_duplex_free */
	const struct cf_duplex_cluster *cluster; /* the core's view of its systems (NULL: none given) */
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
	bool send = false;

	if (!j)
		return;
	pthread_mutex_lock(&d->wmu);
	pthread_mutex_lock(&d->mu);
	if (j == &d->failed) {
		/* no copy: drop the secondary; the batch waits for its fence (or goes if there is none) */
		if (d->state != DX_NONE) {
			cf_slog_err("duplex: a batch could not be copied for the secondary %s (out of memory): dropping "
				    "it; the batch waits until it is fenced", d->peer.name);
			if (d->link.fd >= 0)
				shutdown(d->link.fd, SHUT_RDWR);
			j->gen = d->gen;
			j->seq = UINT64_MAX;
		}
	} else if (d->state == DX_SYNCING || d->state == DX_INSYNC) {
		j->gen = d->gen;
		j->seq = ++d->seq_sent;
		send = d->link.fd >= 0;
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
	if (send) {
		const uint8_t *q = j->buf;
		for (size_t k = 0; k < j->nparts; k++) {
			uint32_t blen;
			memcpy(&blen, q, 4);
			if (dx_send_frame(&d->link, DX_BATCH, k + 1 == j->nparts ? j->seq : 0, q + 4, blen, -1) < 0) {
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
		d->state = DX_INSYNC;
		pthread_mutex_unlock(&d->mu);
		/*
		 * From now on the secondary may take over: this image must say so
		 * (durably) before the secondary is told, so that a restart of this
		 * CF never serves it alone (main.c, cf_duplex_pair.c).
		 */
		dx_mark(d->im, CF_DUPLEX_INSYNC);
		/* after the last chunk's ACK, and before any later batch: the stream's order */
		dx_send_frame(&d->link, DX_SYNCED, 0, NULL, 0, -1);
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
static int accept_handshake(struct cf_duplex *d, struct dx_link *l, struct dx_ident *peer)
{
	struct dx_ident me;
	int r;

	r = dx_accept_auth(l, d->cfg.key);
	if (r < 0)
		return r;
	/* identity, then the header: the secondary builds an image of the same geometry */
	{
		size_t hl = sizeof(struct cf_header);
		uint8_t *info = malloc(sizeof(me) + hl);
		if (!info)
			return -ENOMEM;
		dx_self_ident(&me, d->cfg.name);
		memcpy(info, &me, sizeof(me));
		memcpy(info + sizeof(me), d->im->base, hl);
		r = dx_send_frame(l, DX_INFO, 0, info, (uint32_t)(sizeof(me) + hl), DX_HANDSHAKE_MS);
		free(info);
		if (r < 0)
			return r;
	}
	r = dx_recv_expect(l, DX_INFO_R, peer, sizeof(*peer));
	if (r < 0)
		return r;
	peer->host[sizeof(peer->host) - 1] = 0;
	peer->name[sizeof(peer->name) - 1] = 0;
	return 0;
}

/* Serve an attached secondary until the link is lost (link thread). */
static void serve_link(struct cf_duplex *d)
{
	int fd = d->link.fd;
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
			r = dx_recv_frame(&d->link, &f, &b, 1000);
			free(b);
			if (r < 0) {
				why = dx_link_err(r);
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
			r = dx_send_frame(&d->link, DX_PING, 0, NULL, 0, period);
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

void cf_duplex_set_cluster(struct cf_duplex *d, const struct cf_duplex_cluster *cl)
{
	d->cluster = cl;
}

/*
 * The tie-breaker of a lost link (docs/design.md, "A network cut between the
 * CFs"). Its loss looks the same from both ends, and each would fence the
 * other: the primary at once, the secondary after --duplex-fence-delay. If
 * the primary's own host was cut off, its immediate fence would win, and it
 * would go on alone where no system can reach it: the cluster stalls. So the
 * primary fences a lost secondary only while it still hears its systems (a
 * heartbeat moved within T/2), or when nothing tells the sides apart: no system
 * is live and none fell silent lately (an idle cluster, or every system left).
 * A primary cut off hears nobody, and its sweep has failed its systems for
 * silence before the link's longer timeout: it waits, holding every durable
 * acknowledgement as in any fencing, until a system is heard again (then it
 * fences) or the secondary, which then takes over, fences it.
 */
static void wait_for_cluster(struct cf_duplex *d)
{
	const struct cf_duplex_cluster *cl = d->cluster;
	uint64_t loss = cf_mono_ns(), sil, T;
	bool said = false;

	if (!cl || !(T = cl->hb_timeout_ns))
		return;
	sil = atomic_load(&cl->silenced_ns);
	if (!atomic_load(&cl->members) && (!sil || loss - sil > d->cfg.link_timeout_ns + T))
		return; /* nobody to hear, nobody lost to silence: nothing to tell the sides apart by */
	for (;;) {
		/*
		 * Heard within T/2 of the last sweep: a loop blocked on this very link
		 * sweeps no more, and the sweep that blocks (failing the first system
		 * gone silent, its persist waiting on the lost secondary) follows one
		 * that saw them silent for almost T; systems beat every h <= T/2.
		 */
		uint64_t h = atomic_load(&cl->heard_ns), w = atomic_load(&cl->swept_ns), now = cf_mono_ns();
		if (h && w >= h && w - h <= T / 2) {
			if (said)
				cf_slog_info("duplex: a system is heard again after %llu ms: fencing the secondary",
					     (unsigned long long)((now - loss) / 1000000u));
			return;
		}
		if (__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE))
			return;
		if (!said) {
			cf_slog_err("duplex: no system heard for %llu ms: this CF may be the one cut off; not fencing the "
				    "secondary %s (it fences this CF after its --duplex-fence-delay if it lives); durable "
				    "acknowledgements wait",
				    (unsigned long long)(h && now > h ? (now - h) / 1000000u : 0), d->peer.name);
			said = true;
		}
		usleep(10000);
	}
}

static void *link_main(void *arg)
{
	struct cf_duplex *d = arg;

	while (!__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd[2] = {{.fd = d->lfd, .events = POLLIN}, {.fd = d->quit_pipe[0], .events = POLLIN}};
		struct dx_ident peer;
		struct dx_link l;
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
		dx_tune(fd);
		dx_link_init(&l, fd);
		r = accept_handshake(d, &l, &peer);
		if (r < 0) {
			cf_slog_warn("duplex: a connection to the link port was refused: %s",
				 r == -EPERM ? "it did not prove the cluster key" : dx_link_err(r));
			dx_link_close(&l);
			continue;
		}
		pthread_mutex_lock(&d->wmu);
		pthread_mutex_lock(&d->mu);
		d->link = l; /* from here on only d->link is used: its MAC counters are the link's */
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
		serve_link(d);
		if (__atomic_load_n(&d->quit, __ATOMIC_ACQUIRE))
			break;
		/* lost: unblock a writer stuck on it, fence, and only then release the waiting batches */
		shutdown(fd, SHUT_RDWR);
		pthread_mutex_lock(&d->mu);
		d->state = DX_FENCING;
		pthread_mutex_unlock(&d->mu);
		wait_for_cluster(d);
		dx_fence_peer(&d->cfg, &peer, "secondary", &d->quit);
		pthread_mutex_lock(&d->wmu);
		pthread_mutex_lock(&d->mu);
		dx_link_close(&d->link);
		d->state = DX_NONE;
		dx_mark(d->im, 0); /* fenced: no takeover can overtake this image any more */
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
		pthread_mutex_unlock(&d->wmu);
		cf_slog_err("duplex: running ALONE: no secondary; a death of this CF now ends every system's "
			"incarnation%s", d->im->persist_fn ? "" : " and loses the undo logs (DRAM)");
	}
	return NULL;
}

int cf_duplex_listen(struct ev_loop *loop, struct cf_image *im, const char *addr, int lfd,
		     const struct cf_duplex_cfg *cfg, struct cf_duplex **out, char *why, size_t whylen)
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
	dx_link_init(&d->link, -1);
	d->lfd = -1;
	d->quit_pipe[0] = d->quit_pipe[1] = -1;
	pthread_mutex_init(&d->wmu, NULL);
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	dx_mark(im, 0); /* serving, no secondary yet: nothing can overtake this image */
	if (lfd >= 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		d->lfd = lfd;
		if (getsockname(lfd, (struct sockaddr *)&ss, &sl) == 0)
			d->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
								 : ((struct sockaddr_in *)&ss)->sin_port);
	} else {
		d->lfd = cf_addr_listen(addr, SOCK_CLOEXEC, 4, &d->port);
	}
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

void cf_duplex_detach_persist(struct cf_duplex *d)
{
	if (!d || !d->gc)
		return;
	cf_persist_cancel(d->gc, sync_done, d);
	d->gc = NULL;
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
	cf_duplex_detach_persist(d);
	__atomic_store_n(&d->quit, 1, __ATOMIC_RELEASE);
	if (write(d->quit_pipe[1], "q", 1) < 0) {
		/* the thread also polls quit every h */
	}
	pthread_mutex_lock(&d->mu);
	if (d->link.fd >= 0)
		shutdown(d->link.fd, SHUT_RDWR);
	d->state = DX_NONE;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	if (d->thr_started)
		pthread_join(d->thr, NULL);
	ev_async_stop(d->loop, &d->start_w);
	dx_link_close(&d->link);
	close(d->lfd);
	close(d->quit_pipe[0]);
	close(d->quit_pipe[1]);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	pthread_mutex_destroy(&d->wmu);
	free(d);
}