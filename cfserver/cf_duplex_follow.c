/* SPDX-License-Identifier: MIT */
/* cf_duplex_follow.c - a duplexed CF's secondary: follows the primary, takes over; see cf_duplex.h. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../node/cf_fence.h"
#include "cf_duplex_int.h"
#include "cf_notify.h"
#include "cf_slog.h"
#include "cf_util.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

static int follow_stop; /* set by the signal handler of this (the only) thread */
#define STOPPED() __atomic_load_n(&follow_stop, __ATOMIC_RELAXED)

static void on_stop(int sig)
{
	(void)sig;
	__atomic_store_n(&follow_stop, 1, __ATOMIC_RELAXED);
}

void dx_catch_stop(struct sigaction old[2])
{
	struct sigaction sa = {.sa_handler = on_stop};

	__atomic_store_n(&follow_stop, 0, __ATOMIC_RELAXED);
	sigaction(SIGTERM, &sa, &old[0]);
	sigaction(SIGINT, &sa, &old[1]);
}

void dx_release_stop(const struct sigaction old[2])
{
	sigaction(SIGTERM, &old[0], NULL);
	sigaction(SIGINT, &old[1], NULL);
}

bool dx_stopped(void)
{
	return STOPPED();
}

/*
 * The secondary's PINGs come from a thread of their own: the follow loop may
 * spend a while inside one frame (a 1 MiB chunk arriving slowly from a busy
 * primary) and must not fall silent meanwhile. Every write on the link goes
 * through mu: ACKs and PINGs are whole frames.
 */
struct pinger {
	struct dx_link *l;
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
		int r = dx_send_frame(pg->l, DX_PING, 0, NULL, 0, (int)(pg->period_ns / 1000000u) + 1);
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
	uint64_t st = cf_proc_starttime(p->pid);
	/* reused only if a start time was read and differs: unreadable proves nothing (the pidfd below decides) */
	if (p->starttime && st && st != p->starttime) {
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
	struct sigaction old[2];
	struct dx_ident peer;
	struct dx_state_msg st;
	struct cf_header h;
	struct dx_link l;
	unsigned attempts = 0;
	int fd, r;

	dx_catch_stop(old);
	/* the primary may start after us, or be a pair member still deciding: keep trying, say so now and then */
	for (;;) {
		fd = dx_dial(primary_addr, 1000, why, whylen);
		r = fd;
		if (fd >= 0) {
			dx_link_init(&l, fd);
			r = dx_follow_handshake(&l, cfg, &peer, &h, &st, why, whylen);
			if (r == 0)
				break;
			dx_link_close(&l);
			if (r == DX_HS_STATE)
				snprintf(why, whylen, "the CF at %s (%s, pid %llu on %s) is not serving: %s", primary_addr,
					 st.id.name, (unsigned long long)st.id.pid, st.id.host, dx_role_str(st.role));
		}
		/* no route (yet): an ARP that failed during a network cut, a link still down: keep trying */
		if (r == -EINVAL || r == -ENXIO || r == -EPERM || r == -EPROTO)
			goto out;
		if (attempts++ % 50 == 0)
		{
			cf_slog_info("duplex: waiting for the primary: %s", why);
			cf_notify_status(0, "secondary: waiting for the primary: %s", why);
		}
		if (STOPPED()) {
			r = -EINTR;
			goto out;
		}
		usleep(100000);
	}
	r = dx_follow_link(&l, &peer, &h, primary_addr, nvram, cfg, im, why, whylen);
out:
	dx_release_stop(old);
	return r;
}

/*
 * Follow a primary on link l (handshake done: its identity and header) until
 * it is lost and fenced: 0 when this CF must serve im (the restart path), or
 * -errno with why. Closes the link.
 */
int dx_follow_link(struct dx_link *l, const struct dx_ident *peerp, const struct cf_header *hp, const char *primary_addr,
		 const char *nvram, const struct cf_duplex_cfg *cfg, struct cf_image *im, char *why, size_t whylen)
{
	struct dx_ident peer = *peerp;
	struct cf_header h = *hp;
	const char *hwhy = NULL, *lost = "timeout";
	bool synced = false, opened = false;
	uint64_t last_rx, applied = 0;
	struct pinger pg;
	bool pinging = false;
	int r, period = (int)(cfg->hb_interval_ns / 1000000ull);

	if (period < 1)
		period = 1;
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
	/* incomplete until SYNCED: a restart must never serve this image (main.c, cf_duplex_pair.c) */
	dx_mark(im, CF_DUPLEX_COPYING);
	if (im->map.image_size != h.image_size) {
		snprintf(why, whylen, "image size %llu differs from the primary's %llu",
			 (unsigned long long)im->map.image_size, (unsigned long long)h.image_size);
		r = -EPROTO;
		goto out;
	}
	cf_slog_info("duplex: following the primary %s (pid %llu on %s) at %s; copying its image (%llu bytes)", peer.name,
		 (unsigned long long)peer.pid, peer.host, primary_addr, (unsigned long long)h.image_size);
	last_rx = cf_mono_ns();
	pg.l = l;
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
		struct pollfd pfd = {.fd = l->fd, .events = POLLIN};
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
			r = dx_recv_frame(l, &f, &b, 1000);
			if (r < 0) {
				lost = dx_link_err(r);
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
				/* the primary's header came with the batch: this copy is still incomplete */
				if (!synced && cf_image_header(im)->reserved[CF_HDR_DUPLEX] != CF_DUPLEX_COPYING)
					dx_mark(im, CF_DUPLEX_COPYING);
				if (f.seq) { /* the last part of a batch: acknowledge the whole batch */
					pthread_mutex_lock(&pg.mu);
					r = dx_send_frame(l, DX_ACK, f.seq, NULL, 0, 1000);
					pthread_mutex_unlock(&pg.mu);
					if (r < 0) {
						lost = dx_link_err(r);
						free(b);
						break;
					}
				}
			} else if (f.type == DX_SYNCED) {
				synced = true;
				/* complete, and in a pair: the primary may go on without us, so never serve alone */
				dx_mark(im, CF_DUPLEX_INSYNC);
				cf_slog_info("duplex: in sync with the primary after %llu batches: ready to take over",
					 (unsigned long long)applied);
				/* a secondary in sync is a started service (systemd): it serves by taking over */
				cf_notify_status(1, "secondary of %s (pid %llu on %s): in sync, takes over if it dies", peer.name,
						 (unsigned long long)peer.pid, peer.host);
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
	/*
	 * Said before the link closes: a primary fences a lost secondary at once,
	 * so once it sees the close this process may be SIGKILLed at any moment
	 * (the unmap of a resident image on the way out took long enough for that
	 * to lose the reason, in test_duplex_mac under ASan).
	 */
	cf_slog_err("duplex: lost the primary %s (pid %llu on %s): %s", peer.name, (unsigned long long)peer.pid, peer.host,
		lost);
	stop_pinger(&pg, &pinging);
	dx_link_close(l);
	if (!synced) {
		snprintf(why, whylen, "lost the primary before the copy was complete: this CF cannot take over");
		r = -ENOTCONN;
		goto out;
	}
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
		r = dx_fence_peer(cfg, &peer, "primary", &follow_stop);
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
	{
		/* one more takeover behind this image; it has no secondary (yet) */
		struct cf_header *ih = cf_image_header(im);
		uint64_t term = __atomic_load_n(&ih->reserved[CF_HDR_TERM], __ATOMIC_ACQUIRE) + 1;
		__atomic_store_n(&ih->reserved[CF_HDR_TERM], term, __ATOMIC_RELEASE);
		dx_mark(im, 0);
		im->took_over = 1;
		cf_slog_info("duplex: taking over as the primary CF (term %llu)", (unsigned long long)term);
	}
	r = 0;
out:
	stop_pinger(&pg, &pinging);
	dx_link_close(l);
	if (r < 0 && opened)
		cf_image_close(im);
	return r;
}
