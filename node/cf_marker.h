/* SPDX-License-Identifier: MIT */
/*
 * cf_marker.h - data-directory markers: which CF image an instance's data
 * writes were logged at (docs/design.md §6, "A volatile CF").
 *
 * One small text file per instance, DATA/.cfplex/<instance>:
 *
 *   cfplex-marker 1
 *   instance NTS001
 *   state in-use | clean
 *   image <32 hex digits: the CF image id>
 *   system SYS1
 *   host <hostname>
 *   pid <pid>
 *   starttime <start time of pid, /proc/PID/stat field 22>
 *   time <CLOCK_REALTIME ns>
 *   crc <8 hex digits: cf_crc32 of every byte before this line>
 *
 * in-use under image X: the instance may have uncommitted updates in the data
 * whose before-images exist only in X's undo log (and in its owner's memory).
 * Written whole to a temporary file, fdatasync, renamed over the marker, the
 * directory fsynced (a reader sees the old marker or the new one) BEFORE the instance's first data write
 * of an incarnation; set clean after a self-backout, a clean leave, or by the
 * counterpart once the instance's backout is synced. A marker that does not
 * parse is -EBADMSG with the reason, never guessed at.
 */
#ifndef CF_MARKER_H
#define CF_MARKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_layout.h"

#define CF_MARKER_DIR ".cfplex"
#define CF_MARKER_MAX 512u /* bytes of a marker file */
#define CF_MARKER_MAX_LIST 256u

enum cf_marker_state { CF_MARKER_CLEAN = 0, CF_MARKER_INUSE = 1 };
const char *cf_marker_state_str(enum cf_marker_state st);

struct cf_marker {
	char instance[CF_NAME_MAX];
	enum cf_marker_state state;
	uint64_t image[2];
	char system[CF_NAME_MAX];
	char host[CF_HOST_MAX];
	uint64_t pid, starttime, time_ns;
};

/* The image id as 32 hex digits (buf >= 33 bytes). */
void cf_marker_image_str(const uint64_t image[2], char *buf, size_t cap);

/* Text form (NUL-terminated, < CF_MARKER_MAX bytes): length, or -EINVAL (bad names), -ENOSPC. */
int cf_marker_format(const struct cf_marker *m, char *buf, size_t cap);
/*
 * Parse a marker file's bytes. 0, or -EBADMSG with a reason in why (magic,
 * a missing or repeated field, a bad value, a crc mismatch, a torn file).
 */
int cf_marker_parse(const char *buf, size_t len, struct cf_marker *m, char *why, size_t whylen);

/* Read DATA/.cfplex/<instance>: 0, -ENOENT (none), -EBADMSG (why says what), -errno. */
int cf_marker_read(const char *datadir, const char *instance, struct cf_marker *m, char *why, size_t whylen);
/* Write it durably (see above); creates DATA/.cfplex when missing. */
int cf_marker_write(const char *datadir, const struct cf_marker *m);
/* Fill a marker (time: now) and write it. */
int cf_marker_set(const char *datadir, const char *instance, enum cf_marker_state st, const uint64_t image[2],
		  const char *system, const char *host, uint64_t pid, uint64_t starttime);
/*
 * The instance names that have a marker file (valid names only; other files
 * in .cfplex are ignored). *n: how many (at most cap). -ENOENT: no .cfplex.
 */
int cf_marker_list(const char *datadir, char (*names)[CF_NAME_MAX], size_t cap, size_t *n);

static inline bool cf_marker_same_image(const struct cf_marker *m, const uint64_t image[2])
{
	return m->image[0] == image[0] && m->image[1] == image[1];
}

#endif
