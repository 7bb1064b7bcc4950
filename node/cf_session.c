/* SPDX-License-Identifier: MIT */
/*
 * cf_session.c - one authenticated connection to cfserver with its grants
 * (cf_session.h). Library code: returns -errno, never logs.
 */
#include "cf_session_int.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_auth.h"
#include "cf_util.h"

const struct cf_client_ops *cf_transport_by_name(const char *name)
{
	if (!name || !strcmp(name, "tcp"))
		return &cf_tcp_client;
	if (!strcmp(name, "verbs"))
		return &cf_verbs_client;
	return NULL;
}



static void evq_push(struct cf_session *s, const struct cf_event *ev)
{
	if (s->evq_len == CF_SESSION_EVQ) {
		/* full: the oldest goes; the instance table is the fallback */
		s->evq_head = (s->evq_head + 1) % CF_SESSION_EVQ;
		s->evq_len--;
		s->ev_dropped++;
	}
	s->evq[(s->evq_head + s->evq_len) % CF_SESSION_EVQ] = *ev;
	s->evq_len++;
}

static int send_msg(struct cf_session *s, uint16_t type, const void *body, size_t len)
{
	uint8_t buf[CF_CTRL_MAX];
	int r;

	if (len + sizeof(struct cf_ctrl_hdr) > sizeof(buf))
		return -EMSGSIZE;
	r = s->ops->send_ctrl(s->conn, buf, cf_ctrl_build(buf, type, body, len));
	return r < 0 ? kill_session(s, r) : 0;
}

void cf_session_abort(struct cf_session *s, int err)
{
	atomic_store(&s->abort_err, err < 0 ? err : -ECONNABORTED);
}

/*
 * Receive the next non-event control message (events are queued), checked.
 * Returns its length with the message in buf, or -errno.
 */
static int recv_msg(struct cf_session *s, uint8_t *buf, size_t cap, int timeout_ms, bool event_ends);

static int recv_reply(struct cf_session *s, uint8_t *buf, size_t cap, int timeout_ms)
{
	return recv_msg(s, buf, cap, timeout_ms, false);
}

/*
 * event_ends: return -EAGAIN as soon as an event was queued (a caller that
 * waits for events: cf_session_next_event), instead of reading on until a
 * reply or the timeout.
 */
static int recv_msg(struct cf_session *s, uint8_t *buf, size_t cap, int timeout_ms, bool event_ends)
{
	uint64_t t0 = cf_mono_ns();
	struct cf_ctrl_hdr h;
	struct cf_event ev;
	int n, left;

	for (;;) {
		left = timeout_ms < 0 ? -1 : timeout_ms - (int)((cf_mono_ns() - t0) / 1000000u);
		if (timeout_ms >= 0 && left < 0)
			left = 0;
		if ((n = aborted(s)))
			return n;
		n = s->ops->recv_ctrl(s->conn, buf, cap, slice_ms(left));
		if (n == -ETIMEDOUT) {
			if (left >= 0 && left <= ABORT_SLICE_MS)
				return n;
			continue;
		}
		if (n < 0)
			return kill_session(s, n);
		if (cf_ctrl_check(buf, (size_t)n) < 0)
			return kill_session(s, -EPROTO);
		memcpy(&h, buf, sizeof(h));
		if (h.type != CF_CTRL_EVENT)
			return n;
		memcpy(&ev, buf + sizeof(h), sizeof(ev));
		if (ev.type == CF_EV_LOCK_GRANTED) {
			/* the grant of this session's pending wait; any other is stale (its wait ended) */
			if (s->lk_ticket && ev.policy == s->lk_ticket) {
				s->lk_granted = true;
				s->lk_word = ev.reg;
			}
		} else
			evq_push(s, &ev);
		if (event_ends)
			return -EAGAIN;
	}
}

/* Keep the reason a STATUS/ERROR body gives for a refusal. */
static void keep_reason(struct cf_session *s, const uint8_t *body, size_t blen)
{
	struct cf_status st;

	if (blen < sizeof(st))
		return;
	memcpy(&st, body, sizeof(st));
	st.msg[sizeof(st.msg) - 1] = 0;
	if (st.msg[0])
		snprintf(s->err_msg, sizeof(s->err_msg), "the CF says: %s", st.msg);
}

/*
 * The next handshake reply, which must be of type want: its length, or
 * -errno: refused (an ERROR, whose reason is kept) or -EPROTO (another type).
 */
static int expect_reply(struct cf_session *s, uint8_t *buf, size_t cap, int timeout_ms, uint16_t want, int refused)
{
	struct cf_ctrl_hdr h;
	int n = recv_reply(s, buf, cap, timeout_ms);

	if (n < 0)
		return n;
	memcpy(&h, buf, sizeof(h));
	if (h.type == want)
		return n;
	if (h.type != CF_CTRL_ERROR)
		return -EPROTO;
	keep_reason(s, buf + sizeof(h), (size_t)n - sizeof(h));
	return refused;
}

const char *cf_session_error_msg(const struct cf_session *s)
{
	return s && s->err_msg[0] ? s->err_msg : NULL;
}

static void add_grants(struct cf_session *s, const struct cf_grants *gs)
{
	for (uint32_t i = 0; i < gs->count && i < CF_MAX_GRANTS && s->ngrants < CF_SESSION_MAX_GRANTS; i++)
		s->grants[s->ngrants++] = gs->g[i];
}

/*
 * cf_session_rpc, answered by reply_type or, when alt_type is not 0, by
 * alt_type (*got: which one came).
 */
static int rpc2(struct cf_session *s, uint16_t type, const void *body, size_t body_len, uint16_t reply_type,
		uint16_t alt_type, uint16_t *got, void *reply, size_t reply_len, int timeout_ms)
{
	uint8_t buf[CF_CTRL_MAX];
	struct cf_ctrl_hdr h;
	struct cf_status st;
	size_t blen;
	int n;

	if (s->dead)
		return s->dead;
	n = send_msg(s, type, body, body_len);
	if (n < 0)
		return n;
	n = recv_reply(s, buf, sizeof(buf), timeout_ms);
	if (n == -ETIMEDOUT)
		return kill_session(s, n); /* no answer: we cannot know what happened */
	if (n < 0)
		return n;
	memcpy(&h, buf, sizeof(h));
	blen = (size_t)n - sizeof(h);
	if (h.type == reply_type || (alt_type && h.type == alt_type)) {
		memcpy(reply, buf + sizeof(h), blen < reply_len ? blen : reply_len);
		if (got)
			*got = h.type;
		return 0;
	}
	if (h.type == CF_CTRL_STATUS || h.type == CF_CTRL_ERROR) {
		memcpy(&st, buf + sizeof(h), sizeof(st));
		if (st.status < 0 || h.type == CF_CTRL_ERROR)
			keep_reason(s, buf + sizeof(h), blen);
		if (reply && reply_len >= sizeof(st) && reply_type == CF_CTRL_STATUS)
			memcpy(reply, &st, sizeof(st));
		if (h.type == CF_CTRL_ERROR)
			kill_session(s, -EPROTO); /* the server closes after an ERROR */
		return st.status < 0 ? st.status : -EPROTO;
	}
	return kill_session(s, -EPROTO);
}

int cf_session_rpc(struct cf_session *s, uint16_t type, const void *body, size_t body_len, uint16_t reply_type,
		   void *reply, size_t reply_len, int timeout_ms)
{
	return rpc2(s, type, body, body_len, reply_type, 0, NULL, reply, reply_len, timeout_ms);
}

int cf_session_connect_timeout(int timeout_ms)
{
	const char *e = getenv("CF_CONNECT_TIMEOUT_MS");
	char *end;
	long v;

	if (timeout_ms > 0)
		return timeout_ms;
	if (e && *e) {
		errno = 0;
		v = strtol(e, &end, 10);
		if (!errno && !*end && v >= 1 && v <= 600000)
			return (int)v;
	}
	return 3000;
}

/* The transport asks while a post waits for room (cf_client_ops.set_stop). */
static int conn_stop(void *arg)
{
	return stop_reason(arg);
}

static int open_one(struct cf_session *s, const char *transport, const char *addr, const uint8_t key[CF_KEY_LEN],
		    enum cf_role role, int timeout_ms)
{
	uint8_t buf[CF_CTRL_MAX], mac[CF_MAC_LEN];
	struct cf_hello hello;
	struct cf_challenge ch;
	struct cf_auth_terms terms;
	struct cf_auth au;
	struct cf_ctrl_hdr h;
	struct cf_grants gs;
	const char *why;
	int n, r;

	memset(s, 0, sizeof(*s));
	s->role = role;
	s->ops = cf_transport_by_name(transport);
	if (!s->ops)
		return -EINVAL;
	if (cf_auth_init() < 0)
		return -EIO;
	timeout_ms = cf_session_connect_timeout(timeout_ms);
	r = s->ops->connect(addr, timeout_ms, &s->conn);
	if (r < 0) {
		s->conn = NULL;
		return r;
	}
	if (s->ops->set_stop)
		s->ops->set_stop(s->conn, conn_stop, s);
	memset(&hello, 0, sizeof(hello));
	hello.magic = CF_HELLO_MAGIC;
	hello.version_min = CF_PROTO_VERSION_MIN;
	hello.version_max = CF_PROTO_VERSION_MAX;
	hello.role = role;
	cf_auth_nonce(hello.client_nonce);
	r = send_msg(s, CF_CTRL_HELLO, &hello, sizeof(hello));
	if (r < 0)
		goto err;
	n = expect_reply(s, buf, sizeof(buf), timeout_ms, CF_CTRL_CHALLENGE, -EPROTO /* version or role refused */);
	if (n < 0) {
		r = n;
		goto err;
	}
	memcpy(&h, buf, sizeof(h));
	memcpy(&ch, buf + sizeof(h), sizeof(ch));
	terms = cf_auth_terms_of(&hello, ch.version);
	cf_auth_mac_server(key, hello.client_nonce, ch.server_nonce, &terms, mac);
	if (cf_auth_verify(mac, ch.mac) < 0) {
		r = -EPERM; /* the server does not know the key, or the HELLO or the choice changed on the way */
		goto err;
	}
	if (ch.version < CF_PROTO_VERSION_MIN || ch.version > CF_PROTO_VERSION_MAX) {
		snprintf(s->err_msg, sizeof(s->err_msg), "the CF chose protocol version %u, outside this client's %u..%u",
			 ch.version, CF_PROTO_VERSION_MIN, CF_PROTO_VERSION_MAX);
		r = -EPROTO;
		goto err;
	}
	cf_auth_mac_client(key, ch.server_nonce, hello.client_nonce, &terms, au.mac);
	r = send_msg(s, CF_CTRL_AUTH, &au, sizeof(au));
	sodium_memzero(&au, sizeof(au));
	if (r < 0)
		goto err;
	if (s->ops->set_frame_keys) {
		/* every frame after AUTH carries a MAC, both ways (cf_auth.h, "Frame integrity") */
		uint8_t c2s[CF_KEY_LEN], s2c[CF_KEY_LEN];
		cf_auth_frame_keys(key, hello.client_nonce, ch.server_nonce, role, c2s, s2c);
		r = s->ops->set_frame_keys(s->conn, c2s, s2c);
		sodium_memzero(c2s, sizeof(c2s));
		sodium_memzero(s2c, sizeof(s2c));
		if (r < 0)
			goto err;
	}
	n = expect_reply(s, buf, sizeof(buf), timeout_ms, CF_CTRL_WELCOME, -EPERM /* the key refused */);
	if (n < 0) {
		r = n;
		goto err;
	}
	memcpy(&h, buf, sizeof(h));
	memcpy(&s->welcome, buf + sizeof(h), sizeof(s->welcome));
	if (cf_geometry_check(&s->welcome.geo, &why) < 0) {
		r = -EPROTO;
		goto err;
	}
	cf_image_map(&s->welcome.geo, &s->map);
	if (role == CF_ROLE_CONSOLE) {
		/* the server follows WELCOME with the console's read grant */
		n = recv_reply(s, buf, sizeof(buf), timeout_ms);
		if (n < 0) {
			r = n;
			goto err;
		}
		memcpy(&h, buf, sizeof(h));
		if (h.type != CF_CTRL_GRANTS) {
			r = -EPROTO;
			goto err;
		}
		memcpy(&gs, buf + sizeof(h), sizeof(gs));
		if (gs.status < 0) {
			r = gs.status;
			goto err;
		}
		add_grants(s, &gs);
	}
	return 0;
err:
	s->ops->close(s->conn);
	s->conn = NULL;
	s->dead = r;
	return r;
}

/* An error after which another CF of the list may answer (unreachable, not yet listening, gone mid-handshake). */
static int try_next(int r)
{
	return r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EHOSTUNREACH || r == -ENETUNREACH || cf_conn_lost(r) ||
	       r == -EADDRNOTAVAIL;
}

int cf_session_open(struct cf_session *s, const char *transport, const char *addr, const uint8_t key[CF_KEY_LEN],
		    enum cf_role role, int timeout_ms)
{
	char list[sizeof(s->addr) * 4], *save = NULL, *a;
	uint64_t end;
	int r = -EINVAL;

	if (!addr || !strchr(addr, ','))
		goto one;
	/*
	 * A duplexed CF (docs/design.md, "A duplexed CF"): "A,B" names both
	 * CFs. Only the primary listens for systems; a secondary starts to
	 * listen when it takes over. Try each in turn, round after round, until
	 * one answers or the connect bound passes.
	 */
	if (strlen(addr) >= sizeof(list))
		return -ENAMETOOLONG;
	timeout_ms = cf_session_connect_timeout(timeout_ms);
	end = cf_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (;;) {
		snprintf(list, sizeof(list), "%s", addr);
		for (a = strtok_r(list, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
			uint64_t now = cf_mono_ns();
			int left = now >= end ? 1 : (int)((end - now) / 1000000ull) + 1;
			r = open_one(s, transport, a, key, role, left);
			if (r == 0) {
				snprintf(s->addr, sizeof(s->addr), "%s", a);
				return 0;
			}
			if (!try_next(r))
				return r;
		}
		if (cf_mono_ns() >= end)
			return r;
		usleep(50000);
	}
one:
	r = open_one(s, transport, addr, key, role, timeout_ms);
	if (r == 0 && addr)
		snprintf(s->addr, sizeof(s->addr), "%s", addr);
	return r;
}

void cf_session_close(struct cf_session *s)
{
	if (!s)
		return;
	/*
	 * Posted (unsignaled) ops may still sit in the transport's send queue:
	 * make them land before the connection goes, or a clean close would drop
	 * e.g. the last record-list clear. (A dead session has nothing to save.)
	 */
	if (s->ops && s->conn && !s->dead && s->ngrants)
		(void)cf_session_drain(s);
	if (s->ops && s->conn)
		s->ops->close(s->conn);
	s->conn = NULL;
	if (!s->dead)
		s->dead = -ENOTCONN;
}

static int joined(struct cf_session *s, const struct cf_joined *jd)
{
	if (jd->status < 0)
		return jd->status;
	s->sys = jd->sys;
	s->epoch = jd->epoch;
	s->token = jd->token;
	s->cf_flags = jd->flags;
	/*
	 * Benchmarks only (bench/persist: the cost of durability over verbs):
	 * treat a durable CF as volatile, i.e. commits that a power failure at
	 * the CF can lose. Never set it in production.
	 */
	if (getenv("CF_BENCH_NO_PERSIST") && !strcmp(getenv("CF_BENCH_NO_PERSIST"), "1"))
		s->cf_flags &= ~CF_JOINED_DURABLE;
	add_grants(s, &jd->grants);
	return 0;
}

int cf_session_persist(struct cf_session *s, uint64_t off, uint64_t len)
{
	struct cf_persist_msg p = {.offset = off, .length = len};
	struct cf_status st;
	int r;

	if (!cf_session_persist_needed(s))
		return 0;
	s->persist_reqs++;
	r = cf_session_rpc(s, CF_CTRL_PERSIST, &p, sizeof(p), CF_CTRL_STATUS, &st, sizeof(st),
			   CF_SESSION_OP_TIMEOUT_MS);
	if (r < 0)
		return r;
	if (st.status < 0)
		keep_reason(s, (const uint8_t *)&st, sizeof(st));
	return st.status;
}

int cf_session_join(struct cf_session *s, const char *name, const char *host, uint64_t pid, uint64_t starttime)
{
	struct cf_join j;
	struct cf_joined jd;
	int r;

	if (cf_name_check(name) < 0)
		return -EINVAL;
	memset(&j, 0, sizeof(j));
	cf_name_put(j.name, name);
	if (host)
		strncpy(j.host, host, CF_HOST_MAX - 1);
	j.pid = pid;
	j.starttime = starttime;
	r = cf_session_rpc(s, CF_CTRL_JOIN, &j, sizeof(j), CF_CTRL_JOINED, &jd, sizeof(jd), CF_SESSION_OP_TIMEOUT_MS);
	return r < 0 ? r : joined(s, &jd);
}

int cf_session_attach(struct cf_session *s, uint32_t sys, uint32_t epoch, uint64_t token)
{
	struct cf_conn_attach a = {.sys = sys, .epoch = epoch, .token = token};
	struct cf_joined jd;
	int r;

	r = cf_session_rpc(s, CF_CTRL_CONN_ATTACH, &a, sizeof(a), CF_CTRL_JOINED, &jd, sizeof(jd),
			   CF_SESSION_OP_TIMEOUT_MS);
	return r < 0 ? r : joined(s, &jd);
}

int cf_session_sentinel(struct cf_session *s, uint32_t sys, uint32_t epoch, uint64_t token)
{
	struct cf_conn_attach a = {.sys = sys, .epoch = epoch, .token = token};
	struct cf_status st;
	int r;

	r = cf_session_rpc(s, CF_CTRL_SENTINEL, &a, sizeof(a), CF_CTRL_STATUS, &st, sizeof(st),
			   CF_SESSION_OP_TIMEOUT_MS);
	if (r < 0 || st.status < 0)
		return r < 0 ? r : st.status;
	s->sys = sys;
	s->epoch = epoch;
	s->token = token;
	return 0;
}

int cf_session_died(struct cf_session *s, int timeout_ms)
{
	struct cf_empty e = {0};
	struct cf_status st;
	int r;

	r = cf_session_rpc(s, CF_CTRL_DIED, &e, sizeof(e), CF_CTRL_STATUS, &st, sizeof(st), timeout_ms);
	return r < 0 ? r : st.status;
}

int cf_session_goodbye(struct cf_session *s)
{
	struct cf_empty e = {0};
	struct cf_status st;
	int r;

	r = cf_session_rpc(s, CF_CTRL_GOODBYE, &e, sizeof(e), CF_CTRL_STATUS, &st, sizeof(st),
			   CF_SESSION_OP_TIMEOUT_MS);
	return r < 0 ? r : st.status;
}

int cf_session_inst_open(struct cf_session *s, const char *name, struct cf_inst_info *out)
{
	struct cf_inst_name n;
	int r;

	if (cf_name_check(name) < 0)
		return -EINVAL;
	cf_name_put(n.name, name);
	r = cf_session_rpc(s, CF_CTRL_INST_OPEN, &n, sizeof(n), CF_CTRL_INST_INFO, out, sizeof(*out),
			   CF_SESSION_OP_TIMEOUT_MS);
	return r < 0 ? r : out->status;
}

void cf_session_forget_inst(struct cf_session *s, uint32_t inst)
{
	for (uint32_t i = 0; i < s->ngrants;) {
		const struct cf_grant *g = &s->grants[i];
		if ((g->region == CF_RGN_LOG || g->region == CF_RGN_RECORDS) && g->inst == inst)
			s->grants[i] = s->grants[--s->ngrants];
		else
			i++;
	}
}

int cf_session_inst_attach_log(struct cf_session *s, uint32_t inst, struct cf_log_hdr *hdr)
{
	struct cf_inst_ref ref = {.index = inst, .flags = hdr ? CF_ATTACH_LOG_HDR : 0};
	struct cf_inst_grants ig;
	uint16_t got = 0;
	int r;

	memset(&ig, 0, sizeof(ig));
	r = rpc2(s, CF_CTRL_INST_ATTACH, &ref, sizeof(ref), CF_CTRL_GRANTS, hdr ? CF_CTRL_INST_GRANTS : 0, &got, &ig,
		 sizeof(ig), CF_SESSION_OP_TIMEOUT_MS);
	if (r < 0)
		return r;
	if (ig.grants.status < 0)
		return ig.grants.status;
	cf_session_forget_inst(s, inst);
	add_grants(s, &ig.grants);
	if (got != CF_CTRL_INST_GRANTS)
		return 0; /* a CF older than CF_ATTACH_LOG_HDR */
	*hdr = ig.log;
	return 1;
}

int cf_session_inst_attach(struct cf_session *s, uint32_t inst)
{
	return cf_session_inst_attach_log(s, inst, NULL);
}

int cf_session_inst_unreg(struct cf_session *s, uint32_t inst, char *msg, size_t msglen)
{
	struct cf_inst_ref ref = {.index = inst};
	struct cf_status st;
	int r;

	memset(&st, 0, sizeof(st));
	r = cf_session_rpc(s, CF_CTRL_INST_UNREG, &ref, sizeof(ref), CF_CTRL_STATUS, &st, sizeof(st),
			   CF_SESSION_OP_TIMEOUT_MS);
	if (msg && msglen) {
		st.msg[sizeof(st.msg) - 1] = 0;
		snprintf(msg, msglen, "%s", st.msg);
	}
	if (r < 0)
		return r;
	if (st.status == 0)
		cf_session_forget_inst(s, inst);
	return st.status;
}

int cf_session_next_event(struct cf_session *s, struct cf_event *ev, int timeout_ms)
{
	uint8_t buf[CF_CTRL_MAX];
	uint64_t t0 = cf_mono_ns();
	struct cf_ctrl_hdr h;
	int n, left;

	for (;;) {
		if (s->evq_len) {
			*ev = s->evq[s->evq_head];
			s->evq_head = (s->evq_head + 1) % CF_SESSION_EVQ;
			s->evq_len--;
			return 0;
		}
		if (s->dead)
			return s->dead;
		left = timeout_ms < 0 ? -1 : timeout_ms - (int)((cf_mono_ns() - t0) / 1000000u);
		if (timeout_ms >= 0 && left < 0)
			return -ETIMEDOUT;
		n = recv_msg(s, buf, sizeof(buf), left, true);
		/*
		 * An event was queued (-EAGAIN): it is returned above at once. (Read
		 * on to the timeout, it waited up to the whole of it: a CF's restart
		 * recovery that ended was seen by a waiting attach only when its
		 * 50 ms wait was over.) A timeout may have queued one too.
		 */
		if ((n == -EAGAIN || n == -ETIMEDOUT) && s->evq_len)
			continue;
		if (n == -EAGAIN)
			continue; /* an event kept out of the queue (a lock grant): read on */
		if (n < 0)
			return n;
		memcpy(&h, buf, sizeof(h));
		if (h.type == CF_CTRL_ERROR)
			return kill_session(s, -EPROTO);
		/* a stray reply (its RPC timed out): dropped */
	}
}

int cf_session_fd(struct cf_session *s)
{
	return s->conn ? s->ops->ctrl_fd(s->conn) : -1;
}

int cf_session_event_pending(struct cf_session *s)
{
	return s->evq_len > 0 || (s->conn && s->ops->ctrl_pending(s->conn));
}

/* ---------------- lock hand-off ---------------- */

#define LOCK_RPC_MS 5000

int cf_session_lock_wait(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word)
{
	struct cf_lock_wait_r rr = {0};
	int r;

	s->lk_ticket = w->ticket;
	s->lk_granted = false;
	r = cf_session_rpc(s, CF_CTRL_LOCK_WAIT, w, sizeof(*w), CF_CTRL_LOCK_WAIT_R, &rr, sizeof(rr), LOCK_RPC_MS);
	if (r == 0 && rr.status < 0)
		r = rr.status;
	if (r < 0 || rr.granted) {
		s->lk_ticket = 0;
		if (r == 0)
			*word = rr.word;
		return r < 0 ? r : 1;
	}
	return 0;
}

int cf_session_lock_granted(struct cf_session *s, int timeout_ms, uint64_t *word)
{
	uint8_t buf[CF_CTRL_MAX];
	uint64_t t0 = cf_mono_ns();
	int n, left;

	for (;;) {
		if (s->lk_granted) {
			*word = s->lk_word;
			s->lk_ticket = 0;
			s->lk_granted = false;
			return 0;
		}
		if (s->dead)
			return s->dead;
		left = timeout_ms < 0 ? -1 : timeout_ms - (int)((cf_mono_ns() - t0) / 1000000u);
		if (timeout_ms >= 0 && left <= 0)
			return -ETIMEDOUT;
		n = recv_msg(s, buf, sizeof(buf), left, true);
		if (n == -EAGAIN || n == -ETIMEDOUT)
			continue; /* an event (ours, or one queued for the agent), or the time is up */
		if (n < 0)
			return n;
		return kill_session(s, -EPROTO); /* a reply to nothing we asked */
	}
}

int cf_session_lock_cancel(struct cf_session *s, const struct cf_lock_wait *w, uint64_t *word)
{
	struct cf_lock_wait_r rr = {0};
	int r;

	if (!s->lk_ticket || s->lk_ticket != w->ticket)
		return -EINVAL;
	r = cf_session_rpc(s, CF_CTRL_LOCK_CANCEL, w, sizeof(*w), CF_CTRL_LOCK_WAIT_R, &rr, sizeof(rr), LOCK_RPC_MS);
	if (r == 0 && rr.status == -ENOENT && s->lk_granted) {
		/* the grant went first: its event came before this reply (connection order) */
		*word = s->lk_word;
		r = 1;
	} else if (r == 0)
		r = rr.status == -ENOENT ? 0 : rr.status; /* not queued, never granted: the CF dropped it */
	s->lk_ticket = 0;
	s->lk_granted = false;
	return r;
}

int cf_session_lock_kick(struct cf_session *s, uint32_t klass)
{
	struct cf_lock_kick k = {.klass = klass};

	if (s->dead)
		return s->dead;
	return send_msg(s, CF_CTRL_LOCK_KICK, &k, sizeof(k));
}
