/* SPDX-License-Identifier: MIT */
/*
 * cfn_api - the return conventions of cfnode.h that kvstore does not reach,
 * against a running cfserver (test_example_kv.sh runs it):
 *   CF_TRANSPORT=tcp|verbs cfn_api CF_ADDR KEYFILE DATA_DIR SYSTEM INSTANCE
 * Uses the public header only. Prints "ok" and exits 0, or names the first
 * check that failed and exits 1.
 */
#include <cfnode.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_ID 2
#define REC 32

static int failed;

#define CHECK(cond, ...)                                      \
	do {                                                  \
		if (!(cond)) {                                \
			fprintf(stderr, "cfn_api: " __VA_ARGS__); \
			fputc('\n', stderr);                  \
			failed = 1;                           \
			goto out;                             \
		}                                             \
	} while (0)

static void log_cb(void *arg, int level, const char *msg)
{
	if (level <= CFN_LOG_WARN)
		fprintf(stderr, "cfn_api log: %s\n", msg);
}

int main(int argc, char **argv)
{
	struct cfn_config cfg = { .log = log_cb };
	struct cfn *h = NULL;
	struct cfn_txn *t = NULL, *t2 = NULL;
	unsigned char a[REC], b[REC];
	unsigned rs;
	uint64_t n;
	int r;

	if (argc != 6) {
		fprintf(stderr, "usage: cfn_api CF_ADDR KEYFILE DATA_DIR SYSTEM INSTANCE\n");
		return 2;
	}
	cfg.cf_addr = argv[1];
	cfg.key_file = argv[2];
	cfg.data_dir = argv[3];
	cfg.system = argv[4];
	cfg.instance = argv[5];
	cfg.lock_timeout_ms = 200;
	cfg.transport = getenv("CF_TRANSPORT");

	/* configuration and setup errors, before any CF */
	{
		struct cfn_config bad = cfg;
		bad.system = "not a name!";
		CHECK(cfn_open(&bad, &h) == -EINVAL && !h, "a bad system name is not -EINVAL");
		bad = cfg;
		bad.transport = "carrier-pigeon";
		CHECK(cfn_open(&bad, &h) == -EINVAL, "a bad transport is not -EINVAL");
		bad = cfg;
		bad.key_file = "/nonexistent/key";
		CHECK(cfn_open(&bad, &h) == -ENOENT, "a missing key file is not -ENOENT");
	}
	CHECK(cfn_create_file(cfg.data_dir, FILE_ID, 0, 10) == -EINVAL, "rec_size 0 accepted");
	CHECK(cfn_create_file(cfg.data_dir, 64, REC, 10) == -EINVAL, "file 64 accepted");
	CHECK(cfn_create_file(cfg.data_dir, FILE_ID, REC, 10) == 0, "cfn_create_file");
	CHECK(cfn_create_file(cfg.data_dir, FILE_ID, REC, 10) == -EEXIST, "a second create is not -EEXIST");
	CHECK(strcmp(cfn_strerror(-ECONNABORTED), cfn_strerror(-EIO)) && cfn_strerror(12345), "cfn_strerror");

	r = cfn_open(&cfg, &h);
	CHECK(r == 0, "cfn_open: %s", cfn_strerror(r));
	CHECK(cfn_status(h) == 0, "cfn_status of a member is not 0");
	CHECK(cfn_file_info(h, FILE_ID, &rs, &n) == 0 && rs == REC && n == 10, "cfn_file_info");
	CHECK(cfn_file_info(h, 7, &rs, &n) == -ENOENT, "cfn_file_info of a missing file is not -ENOENT");

	/* a committed value */
	memset(a, 'A', sizeof(a));
	CHECK(cfn_begin(h, &t) == 0, "cfn_begin");
	CHECK(cfn_update(t, FILE_ID, 3, a, sizeof(a)) == 0, "cfn_update");
	CHECK(cfn_update(t, FILE_ID, 10, a, sizeof(a)) == -EINVAL, "a record past the end is not -EINVAL");
	CHECK(cfn_update(t, FILE_ID, 3, a, sizeof(a) - 1) == -EINVAL, "a short record is not -EINVAL");
	CHECK(cfn_commit(t) == 0, "cfn_commit");
	t = NULL;

	/* two transactions of one handle on one record: -EALREADY, not a wait */
	CHECK(cfn_begin(h, &t) == 0 && cfn_begin(h, &t2) == 0, "two cfn_begin");
	CHECK(cfn_lock(t, FILE_ID, 3, CFN_LOCK_X, -1) == 0, "cfn_lock X");
	r = cfn_lock(t2, FILE_ID, 3, CFN_LOCK_X, 0);
	CHECK(r == -EALREADY, "a record held by another transaction of the handle: %s", cfn_strerror(r));
	CHECK(cfn_lock(t, FILE_ID, 3, 7, -1) == -EINVAL, "a bad lock mode is not -EINVAL");
	CHECK(cfn_abort(t2) == 0, "cfn_abort of a transaction that did nothing");
	t2 = NULL;

	/* an aborted update leaves the committed value */
	memset(b, 'B', sizeof(b));
	CHECK(cfn_update(t, FILE_ID, 3, b, sizeof(b)) == 0, "cfn_update B");
	CHECK(cfn_read(t, FILE_ID, 3, a, sizeof(a)) == 0 && a[0] == 'B', "a transaction reads its own update");
	CHECK(cfn_abort(t) == 0, "cfn_abort");
	t = NULL;
	CHECK(cfn_begin(h, &t) == 0, "cfn_begin");
	CHECK(cfn_read(t, FILE_ID, 3, a, sizeof(a)) == 0 && a[0] == 'A', "the abort did not restore A");

	/* and one left open at cfn_close is aborted there: a clean leave */
	CHECK(cfn_update(t, FILE_ID, 3, b, sizeof(b)) == 0, "cfn_update B again");
	r = cfn_close(h);
	h = NULL;
	t = NULL;
	CHECK(r == 0, "cfn_close with a transaction open: %s", cfn_strerror(r));
	r = cfn_open(&cfg, &h);
	CHECK(r == 0, "cfn_open again: %s", cfn_strerror(r));
	CHECK(cfn_begin(h, &t) == 0, "cfn_begin");
	CHECK(cfn_read(t, FILE_ID, 3, a, sizeof(a)) == 0 && a[0] == 'A', "cfn_close did not back out B");
	CHECK(cfn_commit(t) == 0, "cfn_commit of a read");
	t = NULL;
	r = cfn_close(h);
	h = NULL;
	CHECK(r == 0, "cfn_close: %s", cfn_strerror(r));
	CHECK(cfn_close(NULL) == 0, "cfn_close(NULL)");
	printf("ok\n");
out:
	if (t2)
		cfn_abort(t2);
	if (t)
		cfn_abort(t);
	cfn_close(h);
	return failed;
}
