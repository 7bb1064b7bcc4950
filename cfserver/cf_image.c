/* SPDX-License-Identifier: MIT */
#include "cf_image.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <libpmem2.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cf_util.h"

/* A new random image id (cf_layout.h, reserved[0..1]); never all zero. */
static void new_image_id(struct cf_header *h)
{
	uint64_t id[2] = { 0, 0 };

	while (!id[0] && !id[1]) {
		if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
			/* no entropy source: the clock and pid still differ between starts */
			id[0] = cf_real_ns();
			id[1] = cf_mono_ns() ^ ((uint64_t)getpid() << 32);
		}
	}
	h->reserved[CF_HDR_IMAGE_ID0] = id[0];
	h->reserved[CF_HDR_IMAGE_ID1] = id[1];
}

/* known_zero: the memory is fresh zero pages (anonymous map, new sparse file). */
static void format(struct cf_image *im, const struct cf_geometry *geo, int known_zero)
{
	struct cf_header *h = cf_image_header(im);

	/*
	 * Plain stores: nobody can reach the image yet. Every word the protocol
	 * CASes starts at 0, which is FREE for system and instance words and
	 * free for lock words. Fresh pages are zero already: touching them all
	 * would only commit memory.
	 */
	if (!known_zero)
		memset(im->base, 0, im->map.image_size);
	cf_header_init(h, geo, cf_real_ns());
	new_image_id(h);
	h->reserved[CF_HDR_DURABILITY] = im->fd < 0 ? CF_IMAGE_VOLATILE : CF_IMAGE_DURABLE;
	im->formatted = 1;
}

static int page_is_zero(const void *p)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < CF_PAGE / 8; i++)
		if (w[i])
			return 0;
	return 1;
}

static int geo_compare(struct cf_image *im, const struct cf_geometry *have, const struct cf_geometry *want,
		       unsigned mask)
{
	const char *field = NULL;
	unsigned long long a = 0, b = 0;

	if ((mask & CF_GEO_SYSTEMS) && have->max_systems != want->max_systems)
		field = "max-systems", a = have->max_systems, b = want->max_systems;
	else if ((mask & CF_GEO_INSTANCES) && have->max_instances != want->max_instances)
		field = "max-instances", a = have->max_instances, b = want->max_instances;
	else if ((mask & CF_GEO_LOCKS) && have->lock_entries != want->lock_entries)
		field = "lock-entries", a = have->lock_entries, b = want->lock_entries;
	else if ((mask & CF_GEO_RECORDS) && have->record_entries != want->record_entries)
		field = "record-entries", a = have->record_entries, b = want->record_entries;
	else if ((mask & CF_GEO_LOGSIZE) && have->log_size != want->log_size)
		field = "log-size", a = have->log_size, b = want->log_size;
	if (!field)
		return 0;
	snprintf(im->why, sizeof(im->why), "geometry mismatch: image has %s %llu, option says %llu", field, a, b);
	return -EINVAL;
}

static int open_dram(struct cf_image *im, const struct cf_geometry *geo)
{
	void *p = mmap(NULL, im->map.image_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		snprintf(im->why, sizeof(im->why), "mmap %llu bytes: %s",
			 (unsigned long long)im->map.image_size, strerror(errno));
		return -errno;
	}
	im->base = p;
	im->size = im->map.image_size;
	format(im, geo, 1);
	return 0;
}

static int map_pmem(struct cf_image *im)
{
	struct pmem2_config *cfg = NULL;
	struct pmem2_source *src = NULL;
	int r;

	r = pmem2_config_new(&cfg);
	if (r)
		goto err;
	r = pmem2_config_set_required_store_granularity(cfg, PMEM2_GRANULARITY_PAGE);
	if (r)
		goto err_cfg;
	r = pmem2_source_from_fd(&src, im->fd);
	if (r)
		goto err_cfg;
	r = pmem2_map_new(&im->pmap, cfg, src);
	if (r)
		goto err_src;
	im->base = pmem2_map_get_address(im->pmap);
	im->size = pmem2_map_get_size(im->pmap);
	im->persist_fn = pmem2_get_persist_fn(im->pmap);
	/* PAGE: libpmem2 persists with msync; BYTE / CACHE_LINE: CPU flushes */
	im->cpu_flush = pmem2_map_get_store_granularity(im->pmap) != PMEM2_GRANULARITY_PAGE;
err_src:
	pmem2_source_delete(&src);
err_cfg:
	pmem2_config_delete(&cfg);
err:
	if (r) {
		snprintf(im->why, sizeof(im->why), "libpmem2: %s", pmem2_errormsg());
		return r < 0 && r > -4096 ? r : -EIO;
	}
	return 0;
}

/*
 * A block device's mapping persists through the page cache: msync of the
 * pages the range touches. The signature is persist_fn's, so that callers
 * that only test persist_fn for "does this image persist" see every kind;
 * failures are counted by cf_image_persist, which is the one caller.
 */
static int msync_range(const void *ptr, size_t size)
{
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)ptr & ~(pg - 1), e = (uintptr_t)ptr + size;

	return msync((void *)a, e - a, MS_SYNC) < 0 ? -errno : 0;
}

static void block_persist(const void *ptr, size_t size)
{
	(void)msync_range(ptr, size);
}

int cf_image_classify(unsigned mode, int is_devdax, const char **what)
{
	const char *w = NULL;
	int r;

	switch (mode & S_IFMT) {
	case S_IFREG: return CF_IMAGE_FILE;
	case S_IFBLK: return CF_IMAGE_BLOCK;
	case S_IFCHR:
		if (is_devdax)
			return CF_IMAGE_DEVDAX;
		w = "a character device that is not a device-DAX (/dev/daxX.Y) device";
		r = -ENODEV;
		break;
	case S_IFLNK:
		w = "a symbolic link (refused: give the target, e.g. --nvram \"$(readlink -f PATH)\")";
		r = -ELOOP;
		break;
	case S_IFIFO: w = "a FIFO", r = -ENODEV; break;
	case S_IFSOCK: w = "a socket", r = -ENODEV; break;
	case S_IFDIR: w = "a directory", r = -ENODEV; break;
	default: w = "of an unknown file type", r = -ENODEV; break;
	}
	if (what)
		*what = w;
	return r;
}

const char *cf_image_kind_str(enum cf_image_kind k)
{
	switch (k) {
	case CF_IMAGE_DRAM: return "DRAM";
	case CF_IMAGE_FILE: return "regular file";
	case CF_IMAGE_BLOCK: return "block device";
	case CF_IMAGE_DEVDAX: return "device-DAX";
	}
	return "?";
}

const char *cf_image_persist_str(const struct cf_image *im)
{
	switch (im->kind) {
	case CF_IMAGE_DRAM: return "volatile, lost at exit";
	case CF_IMAGE_BLOCK: return "persisted by msync of the page range";
	default: break;
	}
	if (im->emulated)
		return "POWER-LOSS EMULATION (a test aid: only persisted ranges reach the file)";
	return im->cpu_flush ? "persisted by CPU cache flushes (libpmem2, DAX)" : "persisted by msync (libpmem2, page cache)";
}

/* Is character device rdev a device-DAX one? Its sysfs subsystem is "dax" (bus or class). */
static int chr_is_devdax(dev_t rdev)
{
	char link[128], target[4096];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/dev/char/%u:%u/subsystem", major(rdev), minor(rdev));
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	return !strcmp(basename(target), "dax");
}

static int map_block(struct cf_image *im, const char *path)
{
	uint64_t bytes = 0;
	void *p;
	int r;

	if (ioctl(im->fd, BLKGETSIZE64, &bytes) < 0) {
		r = -errno;
		snprintf(im->why, sizeof(im->why), "%s: BLKGETSIZE64: %s", path, strerror(-r));
		return r;
	}
	if (bytes < CF_PAGE) {
		snprintf(im->why, sizeof(im->why), "%s: block device has %llu bytes, geometry needs %llu", path,
			 (unsigned long long)bytes, (unsigned long long)im->map.image_size);
		return -ENOSPC;
	}
	/*
	 * The whole device: a loaded image's own geometry (which may differ
	 * from the options' defaults) must fit it, and cf_header_check says so.
	 */
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, im->fd, 0);
	if (p == MAP_FAILED) {
		r = -errno;
		snprintf(im->why, sizeof(im->why), "%s: mmap %llu bytes: %s", path, (unsigned long long)bytes,
			 strerror(-r));
		return r;
	}
	im->base = p;
	im->size = bytes;
	im->persist_fn = block_persist;
	return 0;
}

/*
 * Open PATH for the kind it is, without following a symbolic link and without
 * side effects on what it is not: look first (O_PATH opens nothing), decide,
 * then open for real and check it is still the same inode.
 */
static int open_path(struct cf_image *im, const char *path, int *created)
{
	struct stat st, st2;
	const char *what = NULL;
	int pfd, flags = O_RDWR | O_NOFOLLOW | O_CLOEXEC, r;

	*created = 0;
	pfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0 && errno == ENOENT) {
		/* a new image file; O_EXCL: never through a symlink planted meanwhile */
		im->fd = open(path, flags | O_CREAT | O_EXCL, 0600);
		if (im->fd < 0) {
			r = -errno;
			snprintf(im->why, sizeof(im->why), "create %s: %s", path, strerror(errno));
			return r;
		}
		*created = 1;
		im->kind = CF_IMAGE_FILE;
		return 0;
	}
	if (pfd < 0 || fstat(pfd, &st) < 0) {
		r = -errno;
		snprintf(im->why, sizeof(im->why), "%s: %s", path, strerror(errno));
		goto err_close_path;
	}
	r = cf_image_classify(st.st_mode, S_ISCHR(st.st_mode) && chr_is_devdax(st.st_rdev), &what);
	if (r < 0) {
		snprintf(im->why, sizeof(im->why), "%s is %s; --nvram takes a regular file, a block device "
			 "or a device-DAX device", path, what);
		goto err_close_path;
	}
	im->kind = (enum cf_image_kind)r;
	if (im->kind == CF_IMAGE_BLOCK)
		flags |= O_EXCL; /* a block device: fails EBUSY while mounted or held exclusively */
	im->fd = open(path, flags);
	if (im->fd < 0) {
		r = -errno;
		if (errno == EBUSY)
			snprintf(im->why, sizeof(im->why), "%s: block device in use (mounted, or open exclusively "
				 "by another process such as another cfserver)", path);
		else
			snprintf(im->why, sizeof(im->why), "open %s: %s", path, strerror(errno));
		goto err_close_path;
	}
	if (fstat(im->fd, &st2) < 0) {
		r = -errno;
		snprintf(im->why, sizeof(im->why), "%s: %s", path, strerror(errno));
		goto err_close_path;
	}
	if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino || st2.st_rdev != st.st_rdev) {
		snprintf(im->why, sizeof(im->why), "%s was replaced while it was being opened", path);
		r = -EAGAIN;
		goto err_close_path;
	}
	r = 0;
err_close_path:
	close(pfd);
	return r;
}

#ifdef CF_FAULT_INJECTION
/*
 * Power-loss emulation (fault-injection builds only; CF_FAULT_POWERLOSS=1 in
 * cfserver's environment, a regular file): the file is mapped MAP_PRIVATE, so
 * a store reaches the file only when it is persisted, by pwrite of exactly
 * the persisted range. A kill -9 then leaves in the file what a power failure
 * would leave on a medium that keeps exactly what was flushed (cache-line
 * granularity: cf_image_persist_gran says 64), which is stricter than any
 * real --nvram medium: an msync writes back whole pages, a CPU cache may
 * evict a line before its flush. tests/fault/scenarios.sh cf_powerloss.
 */
/* Write image bytes [off, off+len) to the file: the emulation's persist. */
static int emu_write(struct cf_image *im, uint64_t off, uint64_t len)
{
	const char *p = (const char *)im->base + off;

	while (len) {
		ssize_t n = pwrite(im->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n, off += (uint64_t)n, len -= (uint64_t)n;
	}
	return 0;
}

/* A marker that the image persists (cf_image.h); cf_image_persist does the work. */
static void emu_persist(const void *ptr, size_t size)
{
	(void)ptr;
	(void)size;
}

static int powerloss_emulated(void)
{
	const char *e = getenv("CF_FAULT_POWERLOSS");

	return e && !strcmp(e, "1");
}

static int map_private(struct cf_image *im, const char *path)
{
	struct stat st;
	void *p;

	if (fstat(im->fd, &st) < 0)
		return -errno;
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, im->fd, 0);
	if (p == MAP_FAILED) {
		int r = -errno;
		snprintf(im->why, sizeof(im->why), "%s: mmap (power-loss emulation): %s", path, strerror(-r));
		return r;
	}
	im->base = p;
	im->size = (uint64_t)st.st_size;
	im->persist_fn = emu_persist;
	im->emulated = 1;
	return 0;
}
#else
static int powerloss_emulated(void)
{
	return 0;
}

static int emu_write(struct cf_image *im, uint64_t off, uint64_t len)
{
	return -ENOTSUP;
}

static int map_private(struct cf_image *im, const char *path)
{
	return -ENOTSUP;
}
#endif

/* Map the image at im->fd by its kind (a regular file: libpmem2, or the emulation). */
static int map_image(struct cf_image *im, const char *path)
{
	if (im->kind == CF_IMAGE_BLOCK)
		return map_block(im, path);
	if (im->kind == CF_IMAGE_FILE && powerloss_emulated())
		return map_private(im, path);
	return map_pmem(im);
}

static void unmap_image(struct cf_image *im)
{
	if (im->pmap)
		pmem2_map_delete(&im->pmap);
	else if (im->base)
		munmap(im->base, im->size);
	im->base = NULL;
}

static int open_nvram(struct cf_image *im, const char *path, const struct cf_geometry *geo, unsigned mask)
{
	struct cf_header *h;
	const char *why = NULL;
	struct stat st;
	int r, regular, created, fresh = 0;

	r = open_path(im, path, &created);
	if (r < 0)
		return r;
	if (fstat(im->fd, &st) < 0)
		goto err_errno;
	regular = im->kind == CF_IMAGE_FILE;
	if (regular && st.st_size == 0) {
		/*
		 * Allocate every block now: a sparse file on a full filesystem
		 * would map fine and then kill the server with SIGBUS at the
		 * first store to an unbacked page.
		 */
		r = posix_fallocate(im->fd, 0, (off_t)im->map.image_size);
		if (r) {
			snprintf(im->why, sizeof(im->why), "%s: cannot allocate %llu bytes for the image: %s", path,
				 (unsigned long long)im->map.image_size, strerror(r));
			if (created) /* leave nothing behind */
				unlink(path);
			else if (ftruncate(im->fd, 0) < 0) /* leave an empty file, as found */
				r = errno;
			return -r;
		}
		fresh = 1; /* fresh blocks read as zeros */
	} else if (regular && st.st_size < (off_t)CF_PAGE) {
		snprintf(im->why, sizeof(im->why), "%s: %lld bytes, smaller than a CF image header page", path,
			 (long long)st.st_size);
		return CF_CORRUPT();
	}
	r = map_image(im, path);
	if (r < 0)
		return r;
	h = cf_image_header(im);
	if (page_is_zero(h)) {
		/* new or never formatted: size it for the geometry, format, persist */
		if (im->size < im->map.image_size) {
			if (!regular) {
				/* a device is never resized: it holds the geometry or is refused */
				snprintf(im->why, sizeof(im->why), "%s: %s has %llu bytes, geometry needs %llu "
					 "(smaller --log-size / --max-instances, or a larger device)", path,
					 cf_image_kind_str(im->kind), (unsigned long long)im->size,
					 (unsigned long long)im->map.image_size);
				return -ENOSPC;
			}
			unmap_image(im);
			r = posix_fallocate(im->fd, 0, (off_t)im->map.image_size);
			if (r) {
				snprintf(im->why, sizeof(im->why), "%s: cannot allocate %llu bytes for the image: %s",
					 path, (unsigned long long)im->map.image_size, strerror(r));
				return -r;
			}
			r = map_image(im, path);
			if (r < 0)
				return r;
			h = cf_image_header(im);
		}
		format(im, geo, fresh);
		cf_image_persist(im, 0, im->map.image_size);
		if (im->persist_errors) {
			snprintf(im->why, sizeof(im->why), "%s: the freshly formatted image could not be persisted "
				 "(msync failed)", path);
			return -EIO;
		}
		return 0;
	}
	if (cf_header_check(h, im->size, &why) < 0) {
		snprintf(im->why, sizeof(im->why), "%s: %s", path, why ? why : "invalid header");
		return -EBADMSG;
	}
	r = geo_compare(im, &h->geo, geo, mask);
	if (r < 0)
		return r;
	cf_image_map(&h->geo, &im->map);
	/* a header that checks out says nothing about the words behind it */
	if (cf_image_body_check(im->base, &im->map, &im->body) < 0) {
		snprintf(im->why, sizeof(im->why), "%s: %s", path, im->body.first_server);
		return -EBADMSG;
	}
	/*
	 * Nothing is written here: an existing image is never rewritten by open.
	 * One formatted before the image id existed has zeros there; nodes then
	 * take its creation time and header crc as the id (cf_layout.h).
	 */
	return 0;
err_errno:
	r = -errno;
	snprintf(im->why, sizeof(im->why), "%s: %s", path, strerror(errno));
	return r;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif

/*
 * Every page of the image in memory before the first connection, as ibv_reg_mr
 * pins it for verbs: otherwise the first touch of each page (10 us on the VMs
 * the benchmarks run on) lands on a request's path, a WRITE into a log's
 * first lap or a READ of a failed system's log during its failover (57 such
 * faults in cfserver in five failovers, bench/RESULTS.md), and a DRAM image
 * larger than the memory left would map fine and kill the server at some
 * later store. DRAM: written (its zero pages allocated), or the server
 * refuses to start. An image on a file or device: read in, best effort (a
 * write fault on a shared file page dirties it, and a persist would then
 * write the whole image); only the geometry's bytes, not the whole device.
 */
static int make_resident(struct cf_image *im)
{
	uint64_t len = im->map.image_size < im->size ? im->map.image_size : im->size, t0 = cf_mono_ns();
	int r = 0;

	if (im->fd < 0) {
		if (madvise(im->base, len, MADV_POPULATE_WRITE) < 0) {
			r = -errno;
			if (r == -EINVAL) { /* a kernel before 5.14: touch each page */
				for (uint64_t off = 0; off < len; off += CF_PAGE)
					((volatile uint8_t *)im->base)[off] = ((volatile uint8_t *)im->base)[off];
				r = 0;
			} else {
				snprintf(im->why, sizeof(im->why), "cannot make the %llu-byte DRAM image resident: %s",
					 (unsigned long long)len, strerror(-r));
			}
		}
	} else {
		(void)madvise(im->base, len, MADV_POPULATE_READ);
	}
	im->resident_ns = cf_mono_ns() - t0;
	return r;
}

int cf_image_open(struct cf_image *im, const char *path, const struct cf_geometry *geo, unsigned explicit_mask)
{
	const char *why = NULL;
	int r;

	memset(im, 0, sizeof(*im));
	im->fd = -1;
	if (cf_geometry_check(geo, &why) < 0) {
		snprintf(im->why, sizeof(im->why), "%s", why);
		return -EINVAL;
	}
	cf_image_map(geo, &im->map);
	r = path ? open_nvram(im, path, geo, explicit_mask) : open_dram(im, geo);
	if (r == 0 && (r = make_resident(im)) < 0)
		cf_image_close(im); /* a DRAM image only: nothing to persist, the mapping goes; why stays */
	return r;
}

void cf_image_persist(struct cf_image *im, uint64_t off, uint64_t len)
{
	if (!im->persist_fn || off >= im->size)
		return;
	if (len > im->size - off)
		len = im->size - off;
	if (im->kind == CF_IMAGE_BLOCK || im->emulated) {
		int r = im->emulated ? emu_write(im, off, len) : msync_range((char *)im->base + off, len);
		if (r < 0) /* also from the persister thread */
			__atomic_fetch_add(&im->persist_errors, 1, __ATOMIC_RELAXED);
		return;
	}
	im->persist_fn((char *)im->base + off, len);
}

uint64_t cf_image_persist_gran(const struct cf_image *im)
{
	if (im->kind == CF_IMAGE_BLOCK)
		return im->persist_fn ? CF_PAGE : 0; /* msync of the page range */
	if (im->emulated)
		return 64u; /* exact ranges, as on DAX */
	if (!im->pmap || !im->persist_fn)
		return 0;
	return pmem2_map_get_store_granularity(im->pmap) == PMEM2_GRANULARITY_PAGE ? CF_PAGE : 64u;
}

void cf_image_close(struct cf_image *im)
{
	if (!im)
		return;
	if (im->pmap) {
		cf_image_persist(im, 0, im->map.image_size);
		pmem2_map_delete(&im->pmap);
	} else if (im->base && (im->kind == CF_IMAGE_BLOCK || im->emulated)) {
		cf_image_persist(im, 0, im->map.image_size);
		munmap(im->base, im->size);
	} else if (im->base) {
		munmap(im->base, im->size);
	}
	im->base = NULL;
	if (im->fd >= 0)
		close(im->fd);
	im->fd = -1;
}
