/* SPDX-License-Identifier: MIT */
/*
 * cf_duplex_pair.c - a pair member (--duplex-pair): two cfservers started with
 * the same kind of command line decide at start which one serves, so that a
 * supervisor can restart either with its one command line and a repaired CF
 * never becomes a second primary beside the one serving (docs/design.md,
 * "A duplexed CF", "Roles at start").
 *
 * Each member listens on its link address from its first moment and answers
 * every probe that proves the cluster key: a serving primary with INFO (the
 * prober follows it), any other member with its state (DX_STATE: standby,
 * claiming, following, primary starting; its image's mark and term). To serve,
 * a member
 *   (1) says CLAIMING, then
 *   (2) probes its partner, and serves only if the partner
 *       - does not listen (connection refused: it is not running; a member
 *         listens before it does anything else), and this image cannot have
 *         been overtaken (fresh, or not marked in sync: cf_layout.h); or
 *       - is STANDBY and its image is not newer (higher term; a fresh image is
 *         never newer than a loaded one).
 *   It follows a serving primary; it steps back to STANDBY and tries again
 *   after a random pause when the partner is CLAIMING too; it waits while
 *   the partner follows, starts, or cannot be reached (a timeout proves
 *   nothing: the partner may serve behind a cut).
 * Why at most one serves: a member serves only after reading its partner as
 * not claiming *after* its own CLAIMING was visible. If both served, each read
 * the other before the other claimed: A claims < A reads B < B claims < B reads
 * A < A claims, a cycle. (A refused connection is a read before the partner's
 * listener, hence before its claim.)
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cf_addr.h"
#include "cf_duplex_int.h"
#include "cf_notify.h"
#include "cf_slog.h"
#include "cf_util.h"

struct cf_duplex_pair {
	struct cf_duplex_cfg cfg;
	int lfd, port;
	int quit_pipe[2];
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t mu; /* guards st */
	struct dx_state_msg st;
};

static void set_role(struct cf_duplex_pair *p, uint32_t role)
{
	pthread_mutex_lock(&p->mu);
	p->st.role = role;
	pthread_mutex_unlock(&p->mu);
}

/* Answer probes until told to stop (responder thread). */
static void *answer_main(void *arg)
{
	struct cf_duplex_pair *p = arg;

	for (;;) {
		struct pollfd pfd[2] = {{.fd = p->lfd, .events = POLLIN}, {.fd = p->quit_pipe[0], .events = POLLIN}};
		struct dx_state_msg st;
		struct dx_link l;
		int fd, r;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		dx_tune(fd);
		dx_link_init(&l, fd);
		r = dx_accept_auth(&l, p->cfg.key);
		if (r == 0) {
			/* read at the moment of the answer: the order the argument above needs */
			pthread_mutex_lock(&p->mu);
			st = p->st;
			pthread_mutex_unlock(&p->mu);
			(void)dx_send_frame(&l, DX_STATE, 0, &st, sizeof(st), DX_HANDSHAKE_MS);
		} else {
			cf_slog_warn("duplex: a probe on the link port was refused: %s",
				     r == -EPERM ? "it did not prove the cluster key" : dx_link_err(r));
		}
		dx_link_close(&l);
	}
	return NULL;
}

int cf_duplex_pair_open(const char *listen_addr, const struct cf_duplex_cfg *cfg, struct cf_duplex_pair **out,
			char *why, size_t whylen)
{
	struct cf_duplex_pair *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->cfg = *cfg;
	p->quit_pipe[0] = p->quit_pipe[1] = -1;
	pthread_mutex_init(&p->mu, NULL);
	p->st.role = DX_ROLE_STANDBY;
	dx_self_ident(&p->st.id, cfg->name);
	p->lfd = cf_addr_listen(listen_addr, SOCK_CLOEXEC, 4, &p->port);
	if (p->lfd < 0) {
		r = p->lfd;
		snprintf(why, whylen, "%s",
			 r == -EINVAL ? "not HOST:PORT" : r == -EADDRNOTAVAIL ? "the host does not resolve" : strerror(-r));
		goto err;
	}
	if (pipe2(p->quit_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		snprintf(why, whylen, "%s", strerror(errno));
		goto err;
	}
	*out = p;
	return 0;
err:
	cf_duplex_pair_free(p);
	return r;
}

int cf_duplex_pair_port(const struct cf_duplex_pair *p)
{
	return p->port;
}

/* Is the partner's image the one to serve rather than ours? (an incomplete copy never is) */
static bool partner_newer(const struct dx_state_msg *me, const struct dx_state_msg *st)
{
	if (st->fresh || st->mark == CF_DUPLEX_COPYING)
		return false;
	return me->fresh || me->mark == CF_DUPLEX_COPYING || st->term > me->term;
}

/* May this image be served at all? Not an incomplete copy of a partner's. */
static bool servable(const struct dx_state_msg *me)
{
	return me->mark != CF_DUPLEX_COPYING;
}

/* Sleep ms, waking early on a stop; true when stopped. */
static bool pause_ms(unsigned ms)
{
	while (ms && !dx_stopped()) {
		unsigned step = ms > 10 ? 10 : ms;
		usleep(step * 1000u);
		ms -= step;
	}
	return dx_stopped();
}

int cf_duplex_pair_start(struct cf_duplex_pair *p, const char *partner_addr, const char *nvram, struct cf_image *im,
			 char *why, size_t whylen)
{
	struct cf_header *ih = cf_image_header(im);
	struct sigaction old[2];
	uint64_t last_said = 0;
	char last_why[600] = "";
	struct dx_state_msg me;
	int r;

	pthread_mutex_lock(&p->mu);
	p->st.fresh = im->formatted ? 1 : 0;
	p->st.mark = __atomic_load_n(&ih->reserved[CF_HDR_DUPLEX], __ATOMIC_ACQUIRE);
	p->st.term = __atomic_load_n(&ih->reserved[CF_HDR_TERM], __ATOMIC_ACQUIRE);
	me = p->st;
	pthread_mutex_unlock(&p->mu);
	r = -pthread_create(&p->thr, NULL, answer_main, p);
	if (r) {
		snprintf(why, whylen, "cannot start the link thread: %s", strerror(-r));
		return r;
	}
	p->thr_started = true;
	cf_slog_info("duplex: pair member on link port %d, image %s (term %llu%s): deciding the role with %s", p->port,
		     me.fresh ? "fresh" : "loaded", (unsigned long long)me.term,
		     me.mark == CF_DUPLEX_INSYNC ? ", was in sync with a secondary" : "", partner_addr);
#ifdef CF_FAULT_INJECTION
	/* CF_DUPLEX_CLAIM_DELAY_MS (fault-injection builds, tests): a pause between the claim and the probe */
	const char *cd = getenv("CF_DUPLEX_CLAIM_DELAY_MS");
	unsigned claim_delay_ms = cd ? (unsigned)strtoul(cd, NULL, 10) % 10000u : 0;
#endif
	dx_catch_stop(old);
	for (;;) {
		struct dx_state_msg st;
		struct dx_ident peer;
		struct cf_header h;
		char w[600] = "";
		unsigned wait_ms = 100;
		struct dx_link l;
		int fd;

		if (dx_stopped()) {
			snprintf(why, whylen, "stopped by a signal before serving");
			r = -EINTR;
			break;
		}
		set_role(p, DX_ROLE_CLAIMING); /* (1), before the read of (2) */
#ifdef CF_FAULT_INJECTION
		if (claim_delay_ms)
			usleep(claim_delay_ms * 1000u); /* tests: both members claim at once */
#endif
		fd = dx_dial(partner_addr, 1000, w, sizeof(w));
		r = fd;
		if (fd >= 0) {
			dx_link_init(&l, fd);
			r = dx_follow_handshake(&l, &p->cfg, &peer, &h, &st, w, sizeof(w));
			if (r == 0) {
				set_role(p, DX_ROLE_FOLLOWING);
				cf_slog_info("duplex: the partner %s serves: following it as its secondary", partner_addr);
				cf_image_close(im);
				r = dx_follow_link(&l, &peer, &h, partner_addr, nvram, &p->cfg, im, why, whylen);
				if (r == 0)
					set_role(p, DX_ROLE_PRIMARY);
				break;
			}
			dx_link_close(&l);
		}
		/* -EHOSTUNREACH (no route yet, an ARP that failed during a cut) waits as a timeout does */
		if (r == -EPERM || r == -EPROTO || r == -EINVAL || r == -ENXIO) {
			snprintf(why, whylen, "partner %s: %s", partner_addr, w);
			break;
		}
		if (r == -ECONNREFUSED) {
			if (servable(&me) && (me.fresh || me.mark != CF_DUPLEX_INSYNC)) {
				set_role(p, DX_ROLE_PRIMARY);
				cf_slog_info("duplex: the partner %s is not running: serving as the primary (image %s)",
					     partner_addr, me.fresh ? "fresh" : "not overtaken: it had no secondary in sync");
				r = 0;
				break;
			}
			if (!servable(&me))
				snprintf(w, sizeof(w),
					 "the partner %s is not running, and this image is an incomplete copy of it: waiting "
					 "for it to serve, to copy again",
					 partner_addr);
			else
			snprintf(w, sizeof(w),
				 "the partner %s is not running, and this image was in sync with a secondary when this CF "
				 "last ran: the partner may have taken over since and hold newer state; waiting for it "
				 "(if its image is lost for good, start this CF without --duplex-pair and with --duplex-alone)",
				 partner_addr);
		} else if (r == DX_HS_STATE && st.role == DX_ROLE_STANDBY && servable(&me) && !partner_newer(&me, &st)) {
			set_role(p, DX_ROLE_PRIMARY);
			cf_slog_info("duplex: the partner %s (pid %llu on %s) is standing by with an image no newer (term "
				     "%llu%s): serving as the primary",
				     partner_addr, (unsigned long long)st.id.pid, st.id.host, (unsigned long long)st.term,
				     st.fresh ? ", fresh" : "");
			r = 0;
			break;
		} else if (r == DX_HS_STATE && st.role == DX_ROLE_STANDBY) {
			if (!servable(&me))
				snprintf(w, sizeof(w), "the partner %s stands by, and this image is an incomplete copy: "
					 "waiting for the partner to serve, to copy again", partner_addr);
			else
				snprintf(w, sizeof(w),
					 "the partner %s holds the newer image (term %llu against %llu): letting it serve",
					 partner_addr, (unsigned long long)st.term, (unsigned long long)me.term);
		} else if (r == DX_HS_STATE) {
			if (st.role == DX_ROLE_CLAIMING)
				wait_ms = 20 + (unsigned)((cf_mono_ns() / 1000u ^ (uint64_t)getpid() * 2654435761u) % 200u); /* both claimed: a random pause */
			snprintf(w, sizeof(w), "the partner %s is %s", partner_addr, dx_role_str(st.role));
		} else {
			char e[400];
			snprintf(e, sizeof(e), "%.399s", w);
			snprintf(w, sizeof(w), "cannot tell whether the partner serves (%s): not serving until it answers",
				 e);
		}
		set_role(p, DX_ROLE_STANDBY);
		if (strcmp(w, last_why) || cf_mono_ns() - last_said > 5000000000ull) {
			cf_slog_info("duplex: %s", w);
			cf_notify_status(0, "pair member, not serving: %s", w);
			snprintf(last_why, sizeof(last_why), "%s", w);
			last_said = cf_mono_ns();
		}
		if (pause_ms(wait_ms)) {
			snprintf(why, whylen, "stopped by a signal before serving");
			r = -EINTR;
			break;
		}
	}
	dx_release_stop(old);
	return r;
}

int cf_duplex_pair_take_fd(struct cf_duplex_pair *p)
{
	int fd;

	if (p->thr_started) {
		if (write(p->quit_pipe[1], "q", 1) < 0) {
			/* cannot happen with an open pipe; the join below would then wait */
		}
		pthread_join(p->thr, NULL);
		p->thr_started = false;
	}
	fd = p->lfd;
	p->lfd = -1;
	return fd;
}

void cf_duplex_pair_free(struct cf_duplex_pair *p)
{
	if (!p)
		return;
	if (p->thr_started)
		(void)cf_duplex_pair_take_fd(p);
	if (p->lfd >= 0)
		close(p->lfd);
	if (p->quit_pipe[0] >= 0)
		close(p->quit_pipe[0]), close(p->quit_pipe[1]);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
