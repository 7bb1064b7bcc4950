/* SPDX-License-Identifier: MIT */
/* cf_data.c - record files of the data directory (format in cf_data.h). */
#include "cf_data.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_util.h"

static uint32_t fhdr_crc(const struct cf_data_fhdr *h)
{
	return cf_crc32(0, h, offsetof(struct cf_data_fhdr, crc));
}

static uint32_t slot_crc(uint64_t idx, const void *payload, uint32_t len)
{
	uint8_t le[8];

	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)(idx >> (8 * i));
	return cf_crc32(cf_crc32(0, le, sizeof(le)), payload, len);
}

static void file_name(char *buf, size_t cap, uint32_t id)
{
	snprintf(buf, cap, "f%u.cfd", id);
}

static enum cf_data_io data_io = CF_DATA_IO_BUFFERED;

void cf_data_set_io(enum cf_data_io io) { data_io = io; }
enum cf_data_io cf_data_get_io(void) { return data_io; }

const char *cf_data_io_str(enum cf_data_io io)
{
	switch (io) {
	case CF_DATA_IO_BUFFERED: return "buffered";
	case CF_DATA_IO_DIRECT: return "direct";
	}
	return "?";
}

int cf_data_open(struct cf_data *d, const char *dir)
{
	memset(d, 0, sizeof(*d));
	d->dirfd = -1;
	d->io = data_io;
	for (uint32_t i = 0; i < CF_DATA_MAX_FILES; i++)
		d->files[i].fd = -1;
	if (strlen(dir) >= sizeof(d->dir))
		return -ENAMETOOLONG;
	strcpy(d->dir, dir);
	d->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0)
		return -errno;
	return 0;
}

void cf_data_close(struct cf_data *d)
{
	if (!d)
		return;
	for (uint32_t i = 0; i < CF_DATA_MAX_FILES; i++) {
		if (d->files[i].fd >= 0)
			close(d->files[i].fd);
		d->files[i].fd = -1;
	}
	if (d->dirfd >= 0)
		close(d->dirfd);
	d->dirfd = -1;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off)
{
	const char *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return CF_CORRUPT(); /* short file */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int cf_data_create(const char *dir, uint32_t id, uint32_t rec_size, uint64_t count, int64_t initial_total,
		   void (*fill)(void *arg, uint64_t idx, void *payload), void *arg, bool replace)
{
	struct cf_data_fhdr h;
	struct cf_data_file f = { .rec_size = rec_size, .rec_count = count };
	char name[32], path[512];
	uint8_t *chunk = NULL;
	const uint64_t per = 1024;
	uint32_t slot = CF_DATA_SLOT_HDR + rec_size;
	int fd, r;

	if (id >= CF_DATA_MAX_FILES || rec_size == 0 || rec_size > CF_DATA_MAX_REC_SIZE || rec_size % 8 ||
	    count == 0 || count > CF_DATA_MAX_RECORDS)
		return -EINVAL;
	file_name(name, sizeof(name), id);
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | (replace ? O_TRUNC : O_EXCL) | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, CF_DATA_MAGIC, 8);
	h.version = CF_DATA_VERSION;
	h.rec_size = rec_size;
	h.rec_count = count;
	h.file_id = id;
	h.initial_total = initial_total;
	h.created = cf_real_ns();
	h.crc = fhdr_crc(&h);
	r = write_all(fd, &h, sizeof(h), 0);
	if (r)
		goto err_close;
	chunk = calloc(per, slot);
	if (!chunk) {
		r = -ENOMEM;
		goto err_close;
	}
	for (uint64_t i = 0; i < count; i += per) {
		uint64_t n = count - i < per ? count - i : per;
		uint8_t payload[CF_DATA_MAX_REC_SIZE];
		for (uint64_t j = 0; j < n; j++) {
			memset(payload, 0, rec_size);
			if (fill)
				fill(arg, i + j, payload);
			cf_data_make_slot(&f, i + j, payload, chunk + j * slot);
		}
		r = write_all(fd, chunk, n * slot, cf_data_slot_off(&f, i));
		if (r)
			goto err_free;
	}
	if (fdatasync(fd) < 0) {
		r = -errno;
		goto err_free;
	}
	free(chunk);
	close(fd);
	return 0;
err_free:
	free(chunk);
err_close:
	close(fd);
	unlink(path);
	return r;
}

int cf_data_file(struct cf_data *d, uint32_t id, struct cf_data_file **out)
{
	struct cf_data_file *f;
	struct cf_data_fhdr h;
	struct stat st;
	char name[32];
	int fd, r;

	if (id >= CF_DATA_MAX_FILES)
		return -EINVAL;
	f = &d->files[id];
	if (f->fd >= 0) {
		*out = f;
		return 0;
	}
	file_name(name, sizeof(name), id);
	/*
	 * O_DIRECT: reads come from the storage, not from a page this host
	 * cached before another host wrote the slot. The I/O keeps the slots'
	 * sizes and offsets (16 bytes in a bank file): NFS has no alignment
	 * rule for O_DIRECT, a block-based local filesystem answers EINVAL.
	 */
	fd = openat(d->dirfd, name, O_RDWR | O_CLOEXEC | (d->io == CF_DATA_IO_DIRECT ? O_DIRECT : 0));
	if (fd < 0)
		return -errno;
	r = read_all(fd, &h, sizeof(h), 0);
	if (r == -EINVAL && d->io == CF_DATA_IO_DIRECT) {
		snprintf(d->corrupt_msg, sizeof(d->corrupt_msg),
			 "file %s: this filesystem refuses O_DIRECT I/O of single records (--data-io direct is for NFS)",
			 name);
		goto err_close;
	}
	if (r) {
		snprintf(d->corrupt_msg, sizeof(d->corrupt_msg), "file %s: short header", name);
		goto err_close;
	}
	if (memcmp(h.magic, CF_DATA_MAGIC, 8) || h.version != CF_DATA_VERSION || h.crc != fhdr_crc(&h) ||
	    h.file_id != id || h.rec_size == 0 || h.rec_size > CF_DATA_MAX_REC_SIZE || h.rec_size % 8 ||
	    h.rec_count == 0 || h.rec_count > CF_DATA_MAX_RECORDS) {
		snprintf(d->corrupt_msg, sizeof(d->corrupt_msg), "file %s: bad header (magic, version, crc or geometry)",
			 name);
		r = CF_CORRUPT();
		goto err_close;
	}
	f->rec_size = h.rec_size;
	f->rec_count = h.rec_count;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto err_close;
	}
	if ((uint64_t)st.st_size < cf_data_slot_off(f, h.rec_count)) {
		snprintf(d->corrupt_msg, sizeof(d->corrupt_msg), "file %s: truncated (%lld bytes, %llu records)", name,
			 (long long)st.st_size, (unsigned long long)h.rec_count);
		r = CF_CORRUPT();
		goto err_close;
	}
	f->fd = fd;
	f->id = id;
	f->initial_total = h.initial_total;
	f->dirty = 0;
	*out = f;
	return 0;
err_close:
	close(fd);
	return r;
}

int cf_data_read_slot(struct cf_data *d, struct cf_data_file *f, uint64_t idx, void *buf)
{
	(void)d;
	if (idx >= f->rec_count)
		return -ERANGE;
	return read_all(f->fd, buf, cf_data_slot_size(f), cf_data_slot_off(f, idx));
}

void cf_data_make_slot(const struct cf_data_file *f, uint64_t idx, const void *payload, void *slot)
{
	uint32_t crc = slot_crc(idx, payload, f->rec_size), flags = CF_DATA_SLOT_VALID;

	memcpy(slot, &crc, 4);
	memcpy((char *)slot + 4, &flags, 4);
	memcpy((char *)slot + CF_DATA_SLOT_HDR, payload, f->rec_size);
}

int cf_data_check_slot(const struct cf_data_file *f, uint64_t idx, const void *slot)
{
	uint32_t crc, flags;

	memcpy(&crc, slot, 4);
	memcpy(&flags, (const char *)slot + 4, 4);
	if (flags != CF_DATA_SLOT_VALID || crc != slot_crc(idx, (const char *)slot + CF_DATA_SLOT_HDR, f->rec_size))
		return CF_CORRUPT();
	return 0;
}

int cf_data_read(struct cf_data *d, struct cf_data_file *f, uint64_t idx, void *payload)
{
	uint8_t slot[CF_DATA_SLOT_HDR + CF_DATA_MAX_REC_SIZE];
	int r = cf_data_read_slot(d, f, idx, slot);

	if (r == -EBADMSG)
		snprintf(d->corrupt_msg, sizeof(d->corrupt_msg), "file f%u.cfd record %llu: short read", f->id,
			 (unsigned long long)idx);
	if (r)
		return r;
	r = cf_data_check_slot(f, idx, slot);
	if (r) {
		snprintf(d->corrupt_msg, sizeof(d->corrupt_msg), "file f%u.cfd record %llu: bad crc or flags", f->id,
			 (unsigned long long)idx);
		return r;
	}
	memcpy(payload, slot + CF_DATA_SLOT_HDR, f->rec_size);
	return 0;
}

int cf_data_pwrite(struct cf_data *d, uint32_t file, uint64_t off, const void *buf, uint32_t len)
{
	struct cf_data_file *f;
	uint64_t base = sizeof(struct cf_data_fhdr), slot;
	int r = cf_data_file(d, file, &f);

	if (r)
		return r;
	slot = cf_data_slot_size(f);
	if (off < base || (off - base) % slot || len == 0 || len % slot ||
	    off + len > cf_data_slot_off(f, f->rec_count))
		return -EINVAL;
	r = write_all(f->fd, buf, len, off);
	if (r)
		return r;
	f->dirty = 1;
	return 0;
}

int cf_data_sync(struct cf_data *d, struct cf_data_file *f)
{
	(void)d;
	if (f->fd < 0 || !f->dirty)
		return 0;
	if (fdatasync(f->fd) < 0)
		return -errno;
	f->dirty = 0;
	return 0;
}

int cf_data_sync_all(struct cf_data *d)
{
	for (uint32_t i = 0; i < CF_DATA_MAX_FILES; i++) {
		int r = cf_data_sync(d, &d->files[i]);
		if (r)
			return r;
	}
	return 0;
}

const char *cf_data_corrupt_msg(const struct cf_data *d)
{
	return d->corrupt_msg[0] ? d->corrupt_msg : "no corruption recorded";
}
