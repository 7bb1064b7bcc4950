/* SPDX-License-Identifier: MIT */
/*
 * cf_verbs_server_int.h - what the two files of the verbs server backend
 * share (not installed): cf_verbs_server.c (connections, their control
 * messages, grants, fence and close) and cf_verbs_server_dev.c (the device:
 * listen and destroy, protection domains and the image MRs, the loopback QP
 * pair of local_cas, the probes). The design is in cf_verbs_server.c's
 * opening comment.
 */
#ifndef CF_VERBS_SERVER_INT_H
#define CF_VERBS_SERVER_INT_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include "cf_addr.h"
#include "cf_slog.h"
#include "cf_transport.h"
#include "cf_util.h"
#include "../node/cf_verbs_err.h"

#define SV_RECV_DEPTH 16u     /* ctrl RECVs posted per connection (client sends request/reply) */
#define SV_SEND_DEPTH 32u     /* SENDs + BIND_MW + LOCAL_INV in flight per connection */
#define SV_MAX_GRANTS 64u     /* grants one connection may hold (a peer's requests drive this) */
#define SV_MAX_CONNS 1024u    /* connections; further CONNECT_REQUESTs are rejected */
#define SV_SYNC_WAIT_NS (5ull * 1000000000ull) /* bound for a bind/invalidate/CAS completion */
#define SV_CM_TIMEOUT_MS 5000 /* loopback QP setup */
#define SV_CLOSE_LINGER_NS (1000000000ull) /* a graceful close waits this long for replies to go out */

/* the transport logs only what it alone sees (per-connection events, the device) */
#define vlog(...) cf_slog(CF_SLOG_WARN, "verbs: " __VA_ARGS__)
#define vlog_info(...) cf_slog_info("verbs: " __VA_ARGS__)

enum sc_state {
	SC_LIVE,    /* accepted; ctrl delivered */
	SC_CLOSING, /* close()/fence()/error: no more deliveries; reaper will call on_close */
	SC_FREED,   /* on the zombie list, on_close done (never observed by the core) */
};

struct sgrant {
	uint32_t rkey;
	struct ibv_mw *mw; /* type-2 window bound on this connection's QP, or */
	struct ibv_mr *mr; /* the fallback: an MR over exactly the range */
};

struct cf_sconn {
	struct cf_tserver *t;
	struct rdma_cm_id *id;
	struct ibv_pd *pd; /* the connection's own PD (MR grants), or the clients' PD (windows) */
	bool own_pd;
	struct ibv_cq *rcq, *scq;
	struct ibv_mr *bufmr;
	uint8_t *bufs; /* SV_RECV_DEPTH recv slots, then SV_SEND_DEPTH send slots, CF_CTRL_MAX each */
	uint64_t send_seq, send_done; /* signaled WRs posted / completed (completions arrive in order) */
	int send_status;              /* status of the WR being waited for */
	uint64_t next_id;
	struct sgrant g[SV_MAX_GRANTS];
	unsigned ngrants;
	enum sc_state state;
	int close_err;
	bool qp_dead; /* QP destroyed or in error: nothing more is posted */
	ev_timer linger_w;      /* v_close with replies in flight: look for their completions */
	uint64_t linger_end_ns; /* and close anyway from then on */
	void *data;
	char peer[INET6_ADDRSTRLEN + 8];
	struct cf_sconn *next, *prev; /* t->conns */
	struct cf_sconn *znext;       /* t->zombies */
};

/* A connected RC QP pair on our own device: cli (requester) -> srv (responder). */
struct lbqp {
	struct rdma_event_channel *ech;
	struct rdma_cm_id *lid, *cli, *srv;
	struct ibv_cq *cq, *scq;
	struct ibv_mr *mr;
	uint64_t *buf;
	bool broken;
};

struct cf_tserver {
	struct ev_loop *loop;
	struct cf_server_cbs cbs;
	uint8_t *image;
	uint64_t size;
	struct rdma_event_channel *ech;
	struct rdma_cm_id *lid;
	struct ibv_context *verbs;
	struct ibv_pd *pd;   /* the server's own: loopback QPs and mr; never a client QP */
	struct ibv_mr *mr;   /* the whole image, remote rights (local_cas, the window probe) */
	struct ibv_pd *cpd;  /* windows only: the client QPs, their buffers and windows */
	struct ibv_mr *cmr;  /* windows only: the image in cpd, LOCAL_WRITE | MW_BIND, no remote right */
	struct ibv_comp_channel *cch;
	struct ibv_device_attr attr;
	bool use_mw;
	uint32_t max_inline;
	ev_io cm_w, cq_w;
	ev_prepare reap_w;
	struct cf_sconn *conns, *zombies;
	unsigned nconns;
	int port;
	struct lbqp lb; /* loopback QP pair for local_cas */
};

/*
 * Pause between two polls of a CQ we wait on synchronously. Spin for the
 * first few (a bind or an atomic completes in microseconds on hardware),
 * then sleep 20 us per poll: cfserver may run with real-time priority, and
 * soft-RoCE (rxe) does its work in softirq/ksoftirqd and kernel workers of
 * normal priority on the same CPU - a real-time thread spinning for the
 * completion would starve the very code that produces it.
 */
static inline void sv_sync_pause(unsigned *spins)
{
	if (++*spins < 64)
		return;
	struct timespec ts = {.tv_sec = 0, .tv_nsec = 20000};
	nanosleep(&ts, NULL);
}

/* cf_verbs_server_dev.c */
int sv_set_nonblock(int fd);
int sv_listen(struct ev_loop *loop, const char *addr, void *image, uint64_t size, const struct cf_server_cbs *cbs,
	      struct cf_tserver **out);
void sv_destroy(struct cf_tserver *t);
int sv_local_cas(struct cf_tserver *t, uint64_t off, uint64_t compare, uint64_t swap, uint64_t *old);

/* cf_verbs_server.c */
/* sc is over: barrier-teardown now, on_close from the reaper. */
void sv_conn_kill(struct cf_sconn *sc, int err);
/* the loop's watchers: CM events, receive completions, the reaper of closed connections */
void sv_cm_cb(struct ev_loop *loop, ev_io *w, int revents);
void sv_cq_cb(struct ev_loop *loop, ev_io *w, int revents);
void sv_reap_cb(struct ev_loop *loop, ev_prepare *w, int revents);
/* the per-connection operations of struct cf_server_ops */
int sv_port(struct cf_tserver *t);
int sv_send_ctrl(struct cf_sconn *sc, uint64_t id, const void *msg, size_t len);
int sv_grant(struct cf_sconn *sc, uint32_t region, uint32_t inst, uint64_t off, uint64_t len, uint32_t rights,
	     struct cf_grant *g);
int sv_revoke(struct cf_sconn *sc, uint32_t rkey);
int sv_fence(struct cf_sconn *sc);
void sv_close(struct cf_sconn *sc);
void sv_set_data(struct cf_sconn *sc, void *data);
void *sv_get_data(struct cf_sconn *sc);
const char *sv_peer(struct cf_sconn *sc);

#endif
