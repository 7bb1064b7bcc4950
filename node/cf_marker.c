/* SPDX-License-Identifier: MIT */
/* cf_marker.c - data-directory markers (format and rules in cf_marker.h). */
#include "cf_marker.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_util.h"

#define MAGIC_LINE "cfplex-marker 1\n"

const char *cf_marker_state_str(enum cf_marker_state st)
{
	switch (st) {
	case CF_MARKER_CLEAN: return "clean";
	case CF_MARKER_INUSE: return "in-use";
	}
	return "?";
}

void cf_marker_image_str(const uint64_t image[2], char *buf, size_t cap)
{
	snprintf(buf, cap, "%016" PRIx64 "%016" PRIx64, image[1], image[0]);
}

/* A host name as a marker holds it: 1..CF_HOST_MAX-1 printable, no blanks. */
static int host_check(const char *s)
{
	size_t n = strnlen(s, CF_HOST_MAX);

	if (n == 0 || n >= CF_HOST_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return -EINVAL;
	return 0;
}

int cf_marker_format(const struct cf_marker *m, char *buf, size_t cap)
{
	char img[40];
	int n, k;

	if (cf_name_check(m->instance) || cf_name_check(m->system) || host_check(m->host) ||
	    (m->state != CF_MARKER_CLEAN && m->state != CF_MARKER_INUSE))
		return -EINVAL;
	cf_marker_image_str(m->image, img, sizeof(img));
	n = snprintf(buf, cap,
		     MAGIC_LINE "instance %s\nstate %s\nimage %s\nsystem %s\nhost %s\npid %" PRIu64
				"\nstarttime %" PRIu64 "\ntime %" PRIu64 "\n",
		     m->instance, cf_marker_state_str(m->state), img, m->system, m->host, m->pid, m->starttime,
		     m->time_ns);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	k = snprintf(buf + n, cap - (size_t)n, "crc %08x\n", cf_crc32(0, buf, (size_t)n));
	if (k < 0 || (size_t)(n + k) >= cap || (size_t)(n + k) >= CF_MARKER_MAX)
		return -ENOSPC;
	return n + k;
}

static int bad(char *why, size_t whylen, const char *fmt, const char *arg) __attribute__((format(printf, 3, 0)));
static int bad(char *why, size_t whylen, const char *fmt, const char *arg)
{
	if (why && whylen) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		snprintf(why, whylen, fmt, arg);
#pragma GCC diagnostic pop
	}
	return CF_CORRUPT();
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -EINVAL : 0;
}

static int parse_hex(const char *s, size_t digits, uint64_t *out)
{
	uint64_t v = 0;

	if (strlen(s) != digits)
		return -EINVAL;
	for (size_t i = 0; i < digits; i++) {
		int c = s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

enum { F_INSTANCE, F_STATE, F_IMAGE, F_SYSTEM, F_HOST, F_PID, F_START, F_TIME, F_CRC, F_N };
static const char *const field_names[F_N] = { "instance", "state", "image", "system", "host",
					      "pid", "starttime", "time", "crc" };

int cf_marker_parse(const char *buf, size_t len, struct cf_marker *m, char *why, size_t whylen)
{
	char text[CF_MARKER_MAX + 1], *line, *next;
	unsigned seen = 0;
	size_t crc_at = 0;
	uint64_t crc = 0;

	memset(m, 0, sizeof(*m));
	if (len == 0)
		return bad(why, whylen, "empty marker (torn at creation?)%s", "");
	if (len > CF_MARKER_MAX)
		return bad(why, whylen, "marker longer than %s bytes", CF_STR(CF_MARKER_MAX));
	if (memchr(buf, 0, len))
		return bad(why, whylen, "marker holds a NUL byte (torn or not a marker)%s", "");
	memcpy(text, buf, len);
	text[len] = 0;
	if (strncmp(text, MAGIC_LINE, strlen(MAGIC_LINE)))
		return bad(why, whylen, "not a cfplex marker (first line is not '%s')", "cfplex-marker 1");
	if (text[len - 1] != '\n')
		return bad(why, whylen, "marker does not end with a newline (torn write?)%s", "");
	for (line = text + strlen(MAGIC_LINE); *line; line = next) {
		char *sp, *val;
		int f;
		next = strchr(line, '\n');
		*next++ = 0;
		sp = strchr(line, ' ');
		if (!sp)
			return bad(why, whylen, "line '%.40s' has no value", line);
		*sp = 0;
		val = sp + 1;
		if (seen & (1u << F_CRC))
			return bad(why, whylen, "'%.20s' after the crc (trailing bytes)", line);
		for (f = 0; f < F_N; f++)
			if (!strcmp(line, field_names[f]))
				break;
		if (f == F_N)
			return bad(why, whylen, "unknown field '%.20s'", line);
		if (seen & (1u << f))
			return bad(why, whylen, "field '%s' given twice", field_names[f]);
		seen |= 1u << f;
		switch (f) {
		case F_INSTANCE:
		case F_SYSTEM:
			if (cf_name_check(val))
				return bad(why, whylen, "bad name '%.20s'", val);
			cf_name_put(f == F_INSTANCE ? m->instance : m->system, val);
			break;
		case F_STATE:
			if (!strcmp(val, "in-use"))
				m->state = CF_MARKER_INUSE;
			else if (!strcmp(val, "clean"))
				m->state = CF_MARKER_CLEAN;
			else
				return bad(why, whylen, "bad state '%.20s' (in-use or clean)", val);
			break;
		case F_IMAGE:
			if (strlen(val) != 32 || parse_hex(val + 16, 16, &m->image[0]))
				return bad(why, whylen, "bad image id '%.40s' (32 hex digits)", val);
			val[16] = 0;
			if (parse_hex(val, 16, &m->image[1]))
				return bad(why, whylen, "bad image id '%.40s' (32 hex digits)", val);
			break;
		case F_HOST:
			if (host_check(val))
				return bad(why, whylen, "bad host '%.40s'", val);
			snprintf(m->host, sizeof(m->host), "%s", val);
			break;
		case F_PID:
		case F_START:
		case F_TIME: {
			uint64_t v;
			if (parse_u64(val, &v))
				return bad(why, whylen, "bad number in field '%s'", field_names[f]);
			*(f == F_PID ? &m->pid : f == F_START ? &m->starttime : &m->time_ns) = v;
			break;
		}
		case F_CRC:
			crc_at = (size_t)(line - text);
			if (parse_hex(val, 8, &crc))
				return bad(why, whylen, "bad crc '%.20s' (8 hex digits)", val);
			break;
		}
	}
	for (int f = 0; f < F_N; f++)
		if (!(seen & (1u << f)))
			return bad(why, whylen, "field '%s' missing (torn write?)", field_names[f]);
	if (cf_crc32(0, buf, crc_at) != (uint32_t)crc)
		return bad(why, whylen, "crc mismatch (%s)", "the marker was damaged or torn");
	return 0;
}

static int marker_path(const char *datadir, const char *instance, char *buf, size_t cap)
{
	int n;

	if (cf_name_check(instance))
		return -EINVAL;
	n = snprintf(buf, cap, "%s/" CF_MARKER_DIR "/%s", datadir, instance);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int cf_marker_read(const char *datadir, const char *instance, struct cf_marker *m, char *why, size_t whylen)
{
	char path[4096], buf[CF_MARKER_MAX + 1];
	ssize_t n;
	int fd, r;

	if (why && whylen)
		why[0] = 0;
	r = marker_path(datadir, instance, path, sizeof(path));
	if (r)
		return r;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC); /* a symlink planted in the shared directory is refused */
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, sizeof(buf), 0);
	r = n < 0 ? -errno : 0;
	close(fd);
	if (r)
		return r;
	r = cf_marker_parse(buf, (size_t)n, m, why, whylen);
	if (!r && strcmp(m->instance, instance))
		r = bad(why, whylen, "the marker names another instance (%s)", m->instance);
	return r;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		r = -errno;
	close(fd);
	return r;
}

int cf_marker_write(const char *datadir, const struct cf_marker *m)
{
	char path[4096], tmp[4096], dir[4096], buf[CF_MARKER_MAX];
	int fd, n, r;

	n = cf_marker_format(m, buf, sizeof(buf));
	if (n < 0)
		return n;
	r = marker_path(datadir, m->instance, path, sizeof(path));
	if (r)
		return r;
	if (snprintf(dir, sizeof(dir), "%s/" CF_MARKER_DIR, datadir) >= (int)sizeof(dir) ||
	    snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-%ld", dir, m->instance, (long)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if (mkdir(dir, 0755) == 0) {
		r = fsync_dir(datadir); /* the new directory's entry is durable */
		if (r)
			return r;
	} else if (errno != EEXIST) {
		return -errno;
	}
	/*
	 * A new file written whole and synced, then renamed over the old one and
	 * the directory synced: a reader sees the old marker or the new one,
	 * never a mixture (names starting with '.' are not markers).
	 */
	/* never through a symlink someone planted at the temporary name: O_EXCL after clearing our own leftover */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, buf, (size_t)n) != n) {
		r = errno ? -errno : -EIO;
		goto err_unlink;
	}
	if (fdatasync(fd) < 0) {
		r = -errno;
		goto err_unlink;
	}
	close(fd);
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto err_unlink;
	}
	return fsync_dir(dir);
err_unlink:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return r;
}

int cf_marker_set(const char *datadir, const char *instance, enum cf_marker_state st, const uint64_t image[2],
		  const char *system, const char *host, uint64_t pid, uint64_t starttime)
{
	struct cf_marker m;

	memset(&m, 0, sizeof(m));
	if (cf_name_check(instance) || cf_name_check(system) || host_check(host))
		return -EINVAL;
	cf_name_put(m.instance, instance);
	cf_name_put(m.system, system);
	snprintf(m.host, sizeof(m.host), "%s", host);
	m.state = st;
	m.image[0] = image[0];
	m.image[1] = image[1];
	m.pid = pid;
	m.starttime = starttime;
	m.time_ns = cf_real_ns();
	return cf_marker_write(datadir, &m);
}

int cf_marker_list(const char *datadir, char (*names)[CF_NAME_MAX], size_t cap, size_t *n)
{
	char dir[4096];
	struct dirent *de;
	DIR *d;

	*n = 0;
	if (snprintf(dir, sizeof(dir), "%s/" CF_MARKER_DIR, datadir) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || cf_name_check(de->d_name))
			continue;
		if (*n == cap) {
			closedir(d);
			return -E2BIG;
		}
		cf_name_put(names[(*n)++], de->d_name);
	}
	closedir(d);
	return 0;
}
