/* SPDX-License-Identifier: MIT */
/*
 * cf_watchdog.h - a watchdog this system pets only while its lease holds
 * (sbd's watchdog self-fencing, for fencing across hosts).
 *
 * The heartbeat thread pets after every beat if the lease (last completed
 * beat issued less than T/2 ago) holds. A system that freezes, loses the CF
 * or whose heartbeat stalls stops petting; the watchdog then fires within its
 * timeout and the host (a real device) or the guarded processes (the test
 * stand-in) stop. So a counterpart that waits T/2 + timeout (+ margin) after
 * it learned of the failure knows this system can no longer write.
 *
 *   character device: the Linux watchdog API: open, WDIOC_SETTIMEOUT
 *                     (whole seconds, read back with WDIOC_GETTIMEOUT), a
 *                     write per pet, magic close ('V') to disarm.
 *   FIFO:             the test stand-in: one byte '.' per pet, 'V' then
 *                     close to disarm; the timeout is the one given here
 *                     (the stand-in must be started with the same).
 */
#ifndef CF_WATCHDOG_H
#define CF_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

#include "cf_wire.h" /* CF_WD_TIMEOUT_MAX_MS */

enum cf_wd_state { CF_WD_CLOSED = 0, CF_WD_ARMED = 1, CF_WD_DISARMED = 2 };

struct cf_watchdog {
	enum cf_wd_state state;
	int fd;
	bool chardev;
	uint32_t timeout_ms; /* in force (a device rounds to whole seconds) */
	uint64_t pets, pet_errors;
};

#define CF_WD_TIMEOUT_MIN_MS 100u

/*
 * Open and arm the watchdog at path with timeout_ms. 0; -EINVAL (timeout
 * out of range, or path neither a character device nor a FIFO); -ENXIO (a
 * FIFO nobody reads: no stand-in running); or the open/ioctl error.
 */
int cf_watchdog_open(struct cf_watchdog *w, const char *path, uint32_t timeout_ms);
/* One pet (non-blocking): 0 or -errno (counted; the next pet tries again). */
int cf_watchdog_pet(struct cf_watchdog *w);
/* Magic close: disarm and close. Only when this process will write no more. */
int cf_watchdog_disarm(struct cf_watchdog *w);
const char *cf_wd_state_str(enum cf_wd_state s);

#endif
