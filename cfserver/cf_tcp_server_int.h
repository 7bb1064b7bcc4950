/* SPDX-License-Identifier: MIT */
/*
 * cf_tcp_server_int.h - what the two files of the tcp server backend share
 * (not installed): cf_tcp_server.c (connections, group commit, one-sided
 * execution, the ops) and cf_tcp_server_out.c (the output side: frames out,
 * sealed, with their back-pressure). The design is in cf_tcp_server.c's
 * opening comment.
 */
#ifndef CF_TCP_SERVER_INT_H
#define CF_TCP_SERVER_INT_H

#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cf_slog.h"
#include "cf_addr.h"
#include "cf_auth.h"
#include "cf_transport.h"
#include "cf_util.h"

#define IN_CAP (2u * CF_FRAME_MAX)
#define OUT_INIT (2u * CF_FRAME_MAX + 4096u) /* a 64 KiB READ batch's answers, without a realloc */
#define OUT_HIGH (1u << 20)  /* stop executing a peer's requests above this */
#define OUT_HARD (16u << 20) /* a peer that lets this much pile up is closed */
#define CONNS_HARD 4096u     /* the core enforces --max-conns below this */
#define GRANTS_MAX 256u      /* per connection */
#define CLOSE_LINGER 1.0     /* seconds a gracefully closing connection may take */

struct tgrant {
	uint64_t off, len;
	uint32_t rkey, rights;
};

struct cf_sconn {
	struct cf_tserver *t;
	struct cf_sconn *prev, *next; /* live list, or the dead list */
	int fd;
	ev_io rio, wio;
	ev_timer linger;
	char peer[96];
	uint8_t *in;
	size_t in_len;
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	struct tgrant grants[GRANTS_MAX];
	uint32_t ngrants;
	int fenced;  /* no frame of this connection executes any more */
	int closing; /* graceful close: flush replies, execute nothing */
	int paused;  /* reading stopped for back-pressure */
	int dead;    /* on the dead list, waiting for on_close */
	int dead_err;
	int macs;                     /* frame keys set: every frame in and out has a MAC */
	struct cf_frame_mac tx, rx;
	void *data;
};

struct cf_tserver {
	struct ev_loop *loop;
	int lfd, port;
	ev_io lio;
	ev_timer accept_retry; /* out of fds: stop accepting for a moment */
	ev_prepare reaper;
	ev_idle kick; /* ts_kick: poll without blocking once (fed events, the reaper) */
	uint8_t *image;
	uint64_t size;
	struct cf_server_cbs cbs;
	uint32_t next_rkey;
	struct cf_sconn *live, *dead;
	unsigned nconns;
};

/* the live and dead lists of connections */
static inline void list_add(struct cf_sconn **head, struct cf_sconn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head)
		(*head)->prev = c;
	*head = c;
}

static inline void list_del(struct cf_sconn **head, struct cf_sconn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* cf_tcp_server.c */
void ts_rio_cb(struct ev_loop *loop, ev_io *w, int revents);

/* cf_tcp_server_out.c */
/* The connection is finished: close the socket, report it from the reaper (on_close). */
void ts_conn_dead(struct cf_sconn *c, int err);
/* Poll without blocking once: a reaper started or an event fed outside a callback runs now. */
void ts_kick(struct cf_tserver *t);
size_t ts_out_pending(const struct cf_sconn *c);
void ts_wio_cb(struct ev_loop *loop, ev_io *w, int revents);
/* Write what is queued (as much as the socket takes; the rest when it is writable again). */
void ts_conn_flush(struct cf_sconn *c);
/* Queue one frame (header, a, b; sealed when the connection has frame keys): 0 or -errno (closed). */
int ts_conn_put(struct cf_sconn *c, uint16_t op, uint64_t id, const void *a, size_t alen, const void *b, size_t blen);
void ts_put_resp(struct cf_sconn *c, uint64_t id, int status, uint64_t value, const void *data, size_t len);

#endif
