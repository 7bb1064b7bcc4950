/* SPDX-License-Identifier: MIT */
/*
 * cf_key.h - a cluster or monitor key file, read as a secret (the parse and
 * every use of the key are proto/cf_auth.h's; this is the file I/O).
 */
#ifndef CF_KEY_H
#define CF_KEY_H

#include "cf_auth.h"

/*
 * Read and parse a key file, as a secret: opened O_NOFOLLOW, a regular file
 * with no permission for group or others (as ssh treats a private key).
 * 0; -EINVAL malformed; -ELOOP a symbolic link; -EISDIR a directory; -ENODEV
 * another kind of non-regular file (FIFO, device, socket); -EPERM group or
 * others may access it; or -errno from open/read (-ENOENT, -EACCES).
 */
int cf_key_load(const char *path, uint8_t key[CF_KEY_LEN]);
/*
 * The operator's sentence for a cf_key_load() error on path, naming the file
 * and what to do (chmod 600 for -EPERM). Returns buf.
 */
const char *cf_key_explain(const char *path, int err, char *buf, size_t cap);
/* Same, naming the key as what ("monitor key"). */
const char *cf_key_explain_as(const char *what, const char *path, int err, char *buf, size_t cap);

#endif
