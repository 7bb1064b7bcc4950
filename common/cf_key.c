/* SPDX-License-Identifier: MIT */
#include "cf_key.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cf_key_load(const char *path, uint8_t key[CF_KEY_LEN])
{
	char buf[256];
	struct stat st;
	ssize_t n;
	int fd, r;

	/* O_NONBLOCK: a FIFO must be refused, not waited on; it is no-op on a regular file */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -ENODEV;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf));
	r = n < 0 ? -errno : cf_key_parse(buf, (size_t)n, key);
	close(fd);
	sodium_memzero(buf, sizeof(buf));
	return r;
}

const char *cf_key_explain_as(const char *what, const char *path, int err, char *buf, size_t cap)
{
	struct stat st;

	switch (err) {
	case -EINVAL:
		snprintf(buf, cap, "%s %s is malformed: expected 64 hex digits or 32 raw bytes", what, path);
		break;
	case -EPERM:
		snprintf(buf, cap, "%s %s is accessible by group or others (mode %04o): it is a secret; "
			 "chmod 600 %s", what, path, lstat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0u, path);
		break;
	case -ELOOP:
		snprintf(buf, cap, "%s %s is a symbolic link: give the key file itself (it is opened "
			 "without following links)", what, path);
		break;
	case -EISDIR:
		snprintf(buf, cap, "%s %s is a directory, not a key file", what, path);
		break;
	case -ENODEV:
		snprintf(buf, cap, "%s %s is not a regular file (a FIFO, device or socket)", what, path);
		break;
	default:
		snprintf(buf, cap, "cannot read %s %s: %s", what, path, strerror(-err));
		break;
	}
	return buf;
}

const char *cf_key_explain(const char *path, int err, char *buf, size_t cap)
{
	return cf_key_explain_as("cluster key", path, err, buf, cap);
}
