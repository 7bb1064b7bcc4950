/* SPDX-License-Identifier: MIT */
/*
 * cf_layout.h - the coupling-facility image: one mappable block of memory that
 * cfserver owns and nodes touch with one-sided operations.
 *
 * Byte order: cfplex runs on little-endian hosts only; every multi-byte field
 * of the image and of the wire is little-endian (checked at compile time).
 * Every word that is the target of a CAS or FAA is a naturally aligned 64-bit
 * word, asserted below.
 *
 * Image layout (every section starts on a 4096-byte boundary, so that the
 * verbs backend can register or window each one separately):
 *
 *   header        struct cf_header            (one page)
 *   systems       struct cf_sys_slot[max_systems]        server-written
 *   heartbeats    struct cf_hb_slot[max_systems]         each system writes its own
 *   instances     struct cf_inst_slot[max_instances]     registration words (CAS)
 *   recovery info struct cf_rinfo_slot[max_instances]    written by the counterpart
 *   lock table    uint64_t[lock_entries]                  lock words (CAS)
 *   record lists  struct cf_rec_entry[record_entries] per instance
 *   undo logs     log_size bytes per instance: struct cf_log_hdr + ring
 */
#ifndef CF_LAYOUT_H
#define CF_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cfplex's CF image and wire format are little-endian; big-endian hosts are not supported"
#endif

#define CF_MAGIC          0x3130584c50464343ULL /* "CCFPLX01" little-endian */
#define CF_LAYOUT_VERSION 1u
#define CF_PAGE           4096u
#define CF_NAME_MAX       16u /* system and instance names, NUL-padded, at most 15 chars */
#define CF_HOST_MAX       64u
#define CF_RES_NAME_MAX   48u /* lock resource names */

/* Hard limits, enforced on every geometry (options and loaded images). */
#define CF_MAX_SYSTEMS_LIMIT   64u
#define CF_MAX_INSTANCES_LIMIT 56u /* shared-lock holder bitmap width, see cf_words.h */
#define CF_LOCK_ENTRIES_MIN    64u
#define CF_LOCK_ENTRIES_LIMIT  (1u << 24)
#define CF_RECORD_ENTRIES_MIN  16u
#define CF_RECORD_ENTRIES_LIMIT 65536u
#define CF_LOG_SIZE_MIN        (64u * 1024u)
#define CF_LOG_SIZE_LIMIT      (1ull << 30)

#define CF_ASSERT_WORD(type, field)                                                   \
	_Static_assert(offsetof(type, field) % 8 == 0, #type "." #field " not 8-aligned"); \
	_Static_assert(sizeof(((type *)0)->field) == 8, #type "." #field " not 64-bit")

struct cf_geometry {
	uint32_t max_systems;
	uint32_t max_instances;
	uint32_t lock_entries;   /* hash classes in the lock table; power of two */
	uint32_t record_entries; /* lock record list entries per instance */
	uint64_t log_size;       /* bytes per instance log region, incl. its header; multiple of 4096 */
};

/* Defaults used by cfserver when no option is given. */
#define CF_DEFAULT_MAX_SYSTEMS    16u
#define CF_DEFAULT_MAX_INSTANCES  32u
#define CF_DEFAULT_LOCK_ENTRIES   65536u
#define CF_DEFAULT_RECORD_ENTRIES 4096u
#define CF_DEFAULT_LOG_SIZE       (4u * 1024u * 1024u)

/* Header: static part covered by crc, then words that change while running. */
struct cf_header {
	uint64_t magic;
	uint32_t layout_version;
	uint32_t header_size; /* sizeof(struct cf_header) */
	struct cf_geometry geo;
	uint64_t image_size;
	uint64_t off_systems, off_heartbeats, off_instances, off_rinfo;
	uint64_t off_locks, off_records, off_logs;
	uint64_t created_ns; /* CLOCK_REALTIME at format */
	uint32_t crc;        /* cf_crc32 over bytes [0, offsetof(crc)) */
	uint32_t pad0;
	/* ---- mutable part, not covered by crc ---- */
	uint64_t generation; /* bumped at every cfserver start; tells nodes the CF restarted */
	uint64_t policy;     /* cluster recovery policy: enum cf_policy */
	uint64_t reserved[7]; /* [0..2]: image id and durability; [3..4]: duplexing; below. [5..6] free */
};
/*
 * Which image this is (docs/design.md, "A volatile CF"): reserved[0], [1] a
 * random 128-bit image id drawn at format (an --nvram image keeps it across
 * cfserver restarts; a DRAM image is formatted, so gets a new one, at every
 * start); reserved[2] says whether the image outlives the cfserver process.
 * Set by cfserver before the listener opens; read-only for everyone else.
 * A durability word that is neither value (an --nvram image formatted before
 * this field) is treated as durable, and a zero id as {created_ns, crc}:
 * cfserver never rewrites an existing image at open.
 */
#define CF_HDR_IMAGE_ID0 0
#define CF_HDR_IMAGE_ID1 1
#define CF_HDR_DURABILITY 2
#define CF_IMAGE_VOLATILE 0x454c4954414c4f56ull /* "VOLATILE" */
#define CF_IMAGE_DURABLE 0x454c424152554440ull  /* "@DURABLE" */
/*
 * Duplexing (docs/design.md, "A duplexed CF"), written by cfserver only:
 * reserved[3] is CF_DUPLEX_INSYNC from the moment a secondary is in sync with
 * this image's CF (set and persisted before the secondary is told so) until
 * that secondary is fenced: an image that says it may have been overtaken by
 * a takeover elsewhere, so a restart must not serve it alone. reserved[4] is
 * the term: the number of takeovers behind this image (a secondary's copy
 * takes its primary's, + 1 when it takes over), so a pair member can tell
 * the newer of two images.
 */
#define CF_HDR_DUPLEX 3
#define CF_HDR_TERM 4
#define CF_DUPLEX_INSYNC 0x434e595358444e49ull /* "INDXSYNC" */
/* a secondary's copy before it was complete: never served (cfserver refuses it, exit 3) */
#define CF_DUPLEX_COPYING 0x474e59504f435844ull /* "DXCOPYNG" */
_Static_assert(sizeof(struct cf_header) == 192, "cf_header size");
/*
 * The rest of the header page is the CF's own: no member is granted any byte
 * of it (the header grant is sizeof(struct cf_header)). At CF_TOKEN_PROOF_OFF,
 * one CF_TOKEN_PROOF_LEN-byte proof per system slot: a hash of the token the
 * CF gave that system's current incarnation at JOIN (cf_member.c). It is
 * persisted, so it reaches a duplexed secondary's copy: after a takeover, a
 * kept incarnation proves itself with its token (CONN_ATTACH) to a CF that
 * never saw the JOIN (docs/design.md, "Incarnations kept across a switch").
 * A hash, not the token: a console may read the header page.
 */
#define CF_TOKEN_PROOF_OFF 1024u
#define CF_TOKEN_PROOF_LEN 16u
_Static_assert(sizeof(struct cf_header) <= CF_TOKEN_PROOF_OFF, "token proofs after the header");
_Static_assert(CF_TOKEN_PROOF_OFF + CF_MAX_SYSTEMS_LIMIT * CF_TOKEN_PROOF_LEN <= CF_PAGE, "token proofs in the header page");
CF_ASSERT_WORD(struct cf_header, generation);
CF_ASSERT_WORD(struct cf_header, policy);

enum cf_policy { CF_POLICY_AUTO = 0, CF_POLICY_OPERATOR = 1 };

/*
 * System slot: written only by cfserver (through its own atomic path, never a
 * plain store while nodes can reach the word: see cf_words.h).
 */
struct cf_sys_slot {
	uint64_t state;      /* cf_sysword: FREE | ACTIVE | FAILED, epoch */
	uint64_t pid;        /* the cfnode process, for the local fence agent */
	uint64_t starttime;  /* /proc/PID/stat field 22, guards against pid reuse */
	uint64_t join_ns;    /* CLOCK_REALTIME at join */
	uint64_t fail_ns;    /* CLOCK_REALTIME when declared failed (0 if never) */
	uint32_t fail_cause; /* enum cf_fail_cause (was a 64-bit field: little-endian, so old images read the same) */
	uint32_t wd_timeout_ms; /* watchdog the system announced (CF_CTRL_WATCHDOG), 0: none */
	char name[CF_NAME_MAX];
	char host[CF_HOST_MAX];
};
_Static_assert(sizeof(struct cf_sys_slot) == 128, "cf_sys_slot size");
CF_ASSERT_WORD(struct cf_sys_slot, state);

enum cf_fail_cause {
	CF_FAIL_NONE = 0,
	CF_FAIL_CONN_LOST = 1,  /* connection closed without a goodbye */
	CF_FAIL_HB_TIMEOUT = 2, /* heartbeat silence for T */
	CF_FAIL_READMIT = 3,    /* joined again while its old incarnation was still ACTIVE */
	CF_FAIL_PROTOCOL = 4,   /* malformed frame or refused operation storm */
	CF_FAIL_CF_RESTART = 5, /* the CF restarted: every system ACTIVE in the image */
	CF_FAIL_NO_RESUME = 6,  /* kept at a duplexed takeover, it did not come back to the new primary in time */
	CF_FAIL_EXITING = 7,    /* its sentinel saw its process start to exit (CF_CTRL_DIED) */
};

/* One wording of a failure cause for every log and status line. */
static inline const char *cf_fail_cause_str(uint32_t cause)
{
	switch (cause) {
	case CF_FAIL_NONE: return "none";
	case CF_FAIL_CONN_LOST: return "connection lost";
	case CF_FAIL_HB_TIMEOUT: return "heartbeat silence";
	case CF_FAIL_READMIT: return "re-admission of a new incarnation";
	case CF_FAIL_PROTOCOL: return "protocol violation";
	case CF_FAIL_CF_RESTART: return "CF restart";
	case CF_FAIL_NO_RESUME: return "no resume after a CF takeover";
	case CF_FAIL_EXITING: return "process exiting";
	default: return "unknown";
	}
}

/*
 * Heartbeat slot: the owning system WRITEs the whole slot every h (one 64-byte
 * WRITE); cfserver watches hb for change. The rest is status that rides along
 * for free and that cfctl status shows; no decision is taken on it.
 */
struct cf_hb_slot {
	uint64_t hb;         /* a counter the node bumps at every beat */
	uint64_t epoch;      /* the writer's epoch, so a stale writer is visible */
	uint64_t home_inst;  /* home instance index + 1 (0: none yet) */
	uint64_t log_used;   /* bytes of the home instance's log in use */
	uint64_t locks_held; /* lock record list entries in use */
	uint64_t commits;
	uint64_t aborts;
	uint64_t inflight;   /* open transactions */
};
_Static_assert(sizeof(struct cf_hb_slot) == 64, "cf_hb_slot size");
CF_ASSERT_WORD(struct cf_hb_slot, hb);

/*
 * Instance slot: the registration word, a static description, and who failed.
 *
 * fail_*: written by cfserver (plain stores: none of these is a CAS target)
 * BEFORE it CASes reg ACTIVE(s,e,k) → INACTIVE_FAILED(k+1), and only then.
 * They name the incarnation that owned the instance when it failed — the
 * home system, or a counterpart that died mid-recovery — so that the next
 * counterpart can disk-fence exactly that process (its pid and start time
 * survive the system rejoining under the same name). fail_incident = k+1 ties
 * them to the word; a reader that sees another incident in reg ignores them.
 *
 * fail_open: the incarnation named here may still write the data files. Set
 * with the record; cleared by the CF when the counterpart of fail_incident
 * attaches the log (an honest counterpart attaches only once its disk fence
 * holds) or unregisters. A counterpart that dies between its registration and
 * its attach never had the log, so it wrote no before-image: the CF then
 * carries the record forward to incident k+1 instead of naming the dead
 * counterpart, and the next counterpart fences the original owner. Naming the
 * counterpart instead would leave a frozen original owner unfenced while its
 * log is backed out under it (docs/design.md §5, "A chain of counterparts").
 */
struct cf_inst_slot {
	uint64_t reg;      /* cf_regword: the word the whole protocol turns on */
	uint32_t home_sys; /* index of the home system */
	uint32_t index;
	char name[CF_NAME_MAX];
	uint32_t fail_sys;   /* system index of the failed owner (CF_NO_SYS: unknown) */
	uint32_t fail_epoch; /* its epoch */
	uint64_t fail_incident;
	uint64_t fail_pid;
	uint64_t fail_starttime;
	uint64_t fail_ns;    /* CLOCK_REALTIME at the CF when declared */
	uint16_t fail_cause; /* enum cf_fail_cause (was 32 bits: little-endian, old images read the same) */
	uint16_t fail_open;  /* 1: no counterpart has attached at fail_incident yet (see above) */
	uint32_t fail_wd_ms; /* the failed incarnation's announced watchdog timeout, 0: none */
	char fail_host[CF_HOST_MAX - 16];
};
_Static_assert(sizeof(struct cf_inst_slot) == 128, "cf_inst_slot size");
CF_ASSERT_WORD(struct cf_inst_slot, reg);

/* Recovery phases, in order; used for the timed breakdown. */
enum cf_phase {
	CF_PHASE_NONE = 0,
	CF_PHASE_DETECT,     /* failure → counterpart learns of it */
	CF_PHASE_CF_FENCE,   /* cfserver fence (reported by the server) */
	CF_PHASE_REGISTER,   /* CAS INACTIVE_FAILED → ACTIVE(me) */
	CF_PHASE_DISK_FENCE, /* fence agent (and, while it cannot confirm, the visible wait for it) */
	CF_PHASE_WD_WAIT,    /* the failed system's watchdog has certainly fired: lease + watchdog timeout */
	CF_PHASE_ATTACH,     /* authorised attach of log and record list */
	CF_PHASE_READ_LOG,
	CF_PHASE_BACKOUT,
	CF_PHASE_SYNC,
	CF_PHASE_RELEASE,
	CF_PHASE_UNREGISTER,
	CF_PHASE_DONE,
	CF_PHASE_COUNT
};

/* One name per phase for every log, status line and metric label. */
static inline const char *cf_phase_str(enum cf_phase p)
{
	static const char *const n[CF_PHASE_COUNT] = {
		[CF_PHASE_NONE] = "none",         [CF_PHASE_DETECT] = "detect",
		[CF_PHASE_CF_FENCE] = "cf-fence", [CF_PHASE_REGISTER] = "register",
		[CF_PHASE_DISK_FENCE] = "disk-fence", [CF_PHASE_WD_WAIT] = "watchdog-wait",
		[CF_PHASE_ATTACH] = "attach",
		[CF_PHASE_READ_LOG] = "read-log", [CF_PHASE_BACKOUT] = "backout",
		[CF_PHASE_SYNC] = "sync",         [CF_PHASE_RELEASE] = "release",
		[CF_PHASE_UNREGISTER] = "unregister", [CF_PHASE_DONE] = "done",
	};
	return (unsigned)p < CF_PHASE_COUNT ? n[p] : "?";
}

/*
 * Why a recovery waits in phase disk-fence / watchdog-wait (rinfo.wait).
 * cfctl builds the human reason from it, wait_err and the instance slot's
 * fail_* (who, which host), so the slot stays 128 bytes.
 */
enum cf_fence_wait {
	CF_FWAIT_NONE = 0,
	CF_FWAIT_AGENT = 1,    /* the fence agent refused or failed; retried at intervals */
	CF_FWAIT_WATCHDOG = 2, /* waiting out the failed system's watchdog (wait_left_ms) */
	CF_FWAIT_OPERATOR = 3, /* no agent can fence it: only `cfctl fence-confirm` (or an agent retry) ends it */
	CF_FWAIT_CONFIRMED = 4, /* the operator confirmed the fence (cfctl fence-confirm) */
	CF_FWAIT_FENCED = 5,   /* the agent confirmed (after waiting) */
	CF_FWAIT_WD_EXPIRED = 6, /* the watchdog wait ran out: the failed system cannot write */
};

static inline const char *cf_fence_wait_str(enum cf_fence_wait w)
{
	switch (w) {
	case CF_FWAIT_NONE: return "none";
	case CF_FWAIT_AGENT: return "agent";
	case CF_FWAIT_WATCHDOG: return "watchdog";
	case CF_FWAIT_OPERATOR: return "operator";
	case CF_FWAIT_CONFIRMED: return "confirmed";
	case CF_FWAIT_FENCED: return "fenced";
	case CF_FWAIT_WD_EXPIRED: return "watchdog-expired";
	}
	return "?";
}

/*
 * Recovery info: written by the counterpart with plain WRITEs (informational:
 * cfctl status and the benchmarks read it; no decision is ever taken on it,
 * except that cfserver refuses `cfctl fence-confirm` when no slot says that a
 * recovery waits on a fence of that system).
 */
struct cf_rinfo_slot {
	uint64_t phase;       /* enum cf_phase currently running (CF_PHASE_DONE when finished) */
	uint64_t counterpart; /* system index + 1 (0: none) */
	uint64_t incident;
	uint64_t start_ns;    /* CLOCK_REALTIME when the failure was declared */
	uint64_t end_ns;      /* CLOCK_REALTIME at unregister (0 while running) */
	uint64_t txns_backed_out;
	uint64_t locks_released;
	uint32_t wait;        /* enum cf_fence_wait */
	int32_t wait_err;     /* -errno of the last fence attempt (0: none) */
	uint32_t phase_us[CF_PHASE_COUNT]; /* duration of each phase, microseconds */
	uint32_t wait_tries;  /* fence attempts so far */
	uint32_t wait_left_ms; /* CF_FWAIT_WATCHDOG: time left */
	uint32_t pad1[16 - CF_PHASE_COUNT - 2];
};
_Static_assert(CF_PHASE_COUNT <= 14, "phase array");
_Static_assert(sizeof(struct cf_rinfo_slot) == 128, "cf_rinfo_slot size");

/* Lock record list entry: what an instance holds (or is about to take). */
struct cf_rec_entry {
	uint64_t used;  /* 0 free, else 1 + mode (CF_LOCK_S / CF_LOCK_X) */
	uint64_t klass; /* lock table index (hash class) */
	char name[CF_RES_NAME_MAX];
};
_Static_assert(sizeof(struct cf_rec_entry) == 64, "cf_rec_entry size");
CF_ASSERT_WORD(struct cf_rec_entry, used);

/*
 * Undo-log region header. head is the logical byte offset (monotonic, the
 * ring position is head % ring size) of the oldest record recovery needs;
 * head_lsn is that record's LSN. Written only by the owner (or counterpart),
 * before it reuses ring space.
 *
 * rec_span bounds the instance's record list: no entry at or beyond its
 * index is in use. The owner's lock table takes entries lowest index first
 * and WRITEs a larger span before the first entry beyond the old one (same
 * connection: RC order lands it first), so a counterpart READs the used
 * prefix, not the whole list (cf_log_rec_span). Tagged: a zero or foreign
 * word means "unknown", and the whole list is read.
 */
struct cf_log_hdr {
	uint64_t head;
	uint64_t head_lsn;
	uint64_t rec_span; /* CF_REC_SPAN_TAG << 32 | entries, or anything else: unknown */
	uint64_t pad[5];
};
_Static_assert(sizeof(struct cf_log_hdr) == 64, "cf_log_hdr size");
CF_ASSERT_WORD(struct cf_log_hdr, rec_span);

#define CF_REC_SPAN_TAG 0x5350414eull /* "SPAN" */
static inline uint64_t cf_log_rec_span_word(uint32_t entries)
{
	return CF_REC_SPAN_TAG << 32 | entries;
}
/* How many leading record-list entries to read, of record_entries in all. */
static inline uint32_t cf_log_rec_span(const struct cf_log_hdr *h, uint32_t record_entries)
{
	uint32_t n = (uint32_t)h->rec_span;

	return h->rec_span >> 32 == CF_REC_SPAN_TAG && n <= record_entries ? n : record_entries;
}

/* Section offsets and sizes for a geometry. */
struct cf_image_map {
	struct cf_geometry geo;
	uint64_t off_systems, off_heartbeats, off_instances, off_rinfo;
	uint64_t off_locks, off_records, off_logs;
	uint64_t records_size; /* bytes per instance record list */
	uint64_t image_size;
};

/* 0 or -EINVAL with *why set to a static message naming the bad field. */
int cf_geometry_check(const struct cf_geometry *g, const char **why);
/* Computes the map; the geometry must have passed cf_geometry_check. */
void cf_image_map(const struct cf_geometry *g, struct cf_image_map *m);

static inline uint64_t cf_sys_off(const struct cf_image_map *m, uint32_t s)
{
	return m->off_systems + (uint64_t)s * sizeof(struct cf_sys_slot);
}
static inline uint64_t cf_hb_off(const struct cf_image_map *m, uint32_t s)
{
	return m->off_heartbeats + (uint64_t)s * sizeof(struct cf_hb_slot);
}
static inline uint64_t cf_inst_off(const struct cf_image_map *m, uint32_t i)
{
	return m->off_instances + (uint64_t)i * sizeof(struct cf_inst_slot);
}
static inline uint64_t cf_rinfo_off(const struct cf_image_map *m, uint32_t i)
{
	return m->off_rinfo + (uint64_t)i * sizeof(struct cf_rinfo_slot);
}
static inline uint64_t cf_lock_off(const struct cf_image_map *m, uint32_t klass)
{
	return m->off_locks + (uint64_t)klass * 8u;
}
static inline uint64_t cf_rec_off(const struct cf_image_map *m, uint32_t i)
{
	return m->off_records + (uint64_t)i * m->records_size;
}
static inline uint64_t cf_log_off(const struct cf_image_map *m, uint32_t i)
{
	return m->off_logs + (uint64_t)i * m->geo.log_size;
}
static inline uint64_t cf_log_ring_size(const struct cf_geometry *g)
{
	return g->log_size - sizeof(struct cf_log_hdr);
}

/* Format a fresh header (crc included) for a geometry into *h. */
void cf_header_init(struct cf_header *h, const struct cf_geometry *g, uint64_t created_ns);
/*
 * Validate a loaded header against the size of the image that holds it:
 * 0, or -EBADMSG with *why naming the problem (magic, version, geometry,
 * offsets, image size, crc).
 */
int cf_header_check(const struct cf_header *h, uint64_t avail, const char **why);
uint32_t cf_header_crc(const struct cf_header *h);
/*
 * Structural check of an image's body, for an image loaded from NVRAM whose
 * header passed: every system, registration and lock word decodes; every
 * system, instance and lock class it names is inside the geometry; names are
 * well formed; record-list entries name a mode and a class. (Logs are checked
 * record by record, with their CRCs, when an instance is attached.) Pure, no
 * I/O. Two classes of problem:
 *  - in cfserver's own words (header policy, system slots), which nodes can
 *    only read: the image is damaged. -EBADMSG.
 *  - in words nodes may CAS or WRITE (instance slots, lock words, record
 *    lists: grants are by region): a running CF accepts such values from a
 *    buggy node too, and both sides handle them defensively. Counted, 0.
 * The first problem of each class is described.
 */
struct cf_body_report {
	uint64_t bad_server, bad_node;
	char first_server[160], first_node[160];
};
int cf_image_body_check(const void *image, const struct cf_image_map *m, struct cf_body_report *rep);

/* Names: 1..15 chars of [A-Za-z0-9_.-]; 0 or -EINVAL. */
int cf_name_check(const char *s);
/* Copy a checked name into a NUL-padded field. */
void cf_name_put(char dst[CF_NAME_MAX], const char *s);

#endif
