/* SPDX-License-Identifier: MIT */
/*
 * test_marker - data-directory markers (node/cf_marker.c): format and parse
 * round trip; every kind of damage (torn, truncated, a flipped byte, a field
 * missing, repeated or unknown, bad values, trailing bytes) is -EBADMSG with a
 * reason, never a crash and never a marker; write/read/list in a directory;
 * release semantics (a rewrite replaces the whole marker).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_marker.h"
#include "cf_util.h"

#include "unit_check.h"

static void sample(struct cf_marker *m)
{
	memset(m, 0, sizeof(*m));
	cf_name_put(m->instance, "NTS001");
	cf_name_put(m->system, "SYS1");
	snprintf(m->host, sizeof(m->host), "host-a.example");
	m->state = CF_MARKER_INUSE;
	m->image[0] = 0x0123456789abcdefull;
	m->image[1] = 0xfedcba9876543210ull;
	m->pid = 4242;
	m->starttime = 99;
	m->time_ns = 1700000000123456789ull;
}

static int parse_str(const char *s, struct cf_marker *m, char *why, size_t whylen)
{
	return cf_marker_parse(s, strlen(s), m, why, whylen);
}

static void test_roundtrip(void)
{
	struct cf_marker m, p;
	char buf[CF_MARKER_MAX], why[160];
	int n;

	sample(&m);
	n = cf_marker_format(&m, buf, sizeof(buf));
	CHECK(n > 0 && (size_t)n < CF_MARKER_MAX);
	CHECK(cf_marker_parse(buf, (size_t)n, &p, why, sizeof(why)) == 0);
	CHECK(!strcmp(p.instance, "NTS001") && !strcmp(p.system, "SYS1") && !strcmp(p.host, "host-a.example"));
	CHECK(p.state == CF_MARKER_INUSE && cf_marker_same_image(&p, m.image));
	CHECK(p.pid == 4242 && p.starttime == 99 && p.time_ns == m.time_ns);
	m.state = CF_MARKER_CLEAN;
	n = cf_marker_format(&m, buf, sizeof(buf));
	CHECK(n > 0 && cf_marker_parse(buf, (size_t)n, &p, why, sizeof(why)) == 0 && p.state == CF_MARKER_CLEAN);
	/* bad names are refused at format, not written */
	cf_name_put(m.system, "");
	CHECK(cf_marker_format(&m, buf, sizeof(buf)) == -EINVAL);
	sample(&m);
	snprintf(m.host, sizeof(m.host), "two words");
	CHECK(cf_marker_format(&m, buf, sizeof(buf)) == -EINVAL);
}

/* Every prefix and every single-byte change of a good marker: -EBADMSG with a reason, or (rarely) a valid parse. */
static void test_damage(void)
{
	struct cf_marker m, p;
	char buf[CF_MARKER_MAX], bad[CF_MARKER_MAX + 8], why[160];
	int n;

	sample(&m);
	n = cf_marker_format(&m, buf, sizeof(buf));
	for (int len = 0; len < n; len++) {
		why[0] = 0;
		CHECK(cf_marker_parse(buf, (size_t)len, &p, why, sizeof(why)) == -EBADMSG);
		CHECK(why[0] != 0);
	}
	for (int i = 0; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int r;
			memcpy(bad, buf, (size_t)n);
			bad[i] ^= (char)(1 << bit);
			why[0] = 0;
			r = cf_marker_parse(bad, (size_t)n, &p, why, sizeof(why));
			/* the crc covers everything but its own line; a flip there must not match either */
			CHECK(r == -EBADMSG);
			CHECK(why[0] != 0);
		}
	}
	/* trailing bytes after the crc line */
	memcpy(bad, buf, (size_t)n);
	memcpy(bad + n, "x 1\n", 4);
	CHECK(cf_marker_parse(bad, (size_t)n + 4, &p, why, sizeof(why)) == -EBADMSG && strstr(why, "after the crc"));
	/* NUL bytes, oversize */
	memset(bad, 0, sizeof(bad));
	CHECK(cf_marker_parse(bad, 40, &p, why, sizeof(why)) == -EBADMSG);
	CHECK(cf_marker_parse(bad, sizeof(bad), &p, why, sizeof(why)) == -EBADMSG);
	/* a NULL reason buffer is fine */
	CHECK(cf_marker_parse("junk\n", 5, &p, NULL, 0) == -EBADMSG);
}

static void test_fields(void)
{
	struct cf_marker p;
	char why[160];
	const char *cases[][2] = {
		{ "cfplex-marker 2\ninstance NTS001\n", "not a cfplex marker" },
		{ "cfplex-marker 1\ninstance NTS001\ninstance NTS001\n", "twice" },
		{ "cfplex-marker 1\ncolour blue\n", "unknown field" },
		{ "cfplex-marker 1\nstate maybe\n", "bad state" },
		{ "cfplex-marker 1\nimage 12345\n", "bad image" },
		{ "cfplex-marker 1\nimage 0123456789abcdef0123456789abcdeX\n", "bad image" },
		{ "cfplex-marker 1\npid -3\n", "bad number" },
		{ "cfplex-marker 1\npid 99999999999999999999999\n", "bad number" },
		{ "cfplex-marker 1\ninstance a/b\n", "bad name" },
		{ "cfplex-marker 1\nlonely\n", "no value" },
		{ "cfplex-marker 1\ninstance NTS001\n", "missing" },
		{ "cfplex-marker 1\ncrc zz\n", "bad crc" },
	};

	for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
		why[0] = 0;
		CHECK(parse_str(cases[i][0], &p, why, sizeof(why)) == -EBADMSG);
		if (!strstr(why, cases[i][1])) {
			fprintf(stderr, "case %zu: reason '%s' does not say '%s'\n", i, why, cases[i][1]);
			failures++;
		}
	}
}

static void test_dir(void)
{
	char tmpl[] = "/tmp/cfplex-marker.XXXXXX", path[256], why[160];
	char names[4][CF_NAME_MAX];
	struct cf_marker m, p;
	size_t n = 0;
	FILE *f;
	char *dir = mkdtemp(tmpl);

	CHECK(dir != NULL);
	if (!dir)
		return;
	CHECK(cf_marker_list(dir, names, 4, &n) == -ENOENT);
	CHECK(cf_marker_read(dir, "NTS001", &p, why, sizeof(why)) == -ENOENT);
	sample(&m);
	CHECK(cf_marker_write(dir, &m) == 0);
	CHECK(cf_marker_read(dir, "NTS001", &p, why, sizeof(why)) == 0 && p.state == CF_MARKER_INUSE);
	CHECK(cf_marker_set(dir, "NTS001", CF_MARKER_CLEAN, m.image, "SYS2", "h", 1, 2) == 0);
	CHECK(cf_marker_read(dir, "NTS001", &p, why, sizeof(why)) == 0 && p.state == CF_MARKER_CLEAN &&
	      !strcmp(p.system, "SYS2"));
	CHECK(cf_marker_set(dir, "NTS002", CF_MARKER_INUSE, m.image, "SYS2", "h", 1, 2) == 0);
	CHECK(cf_marker_list(dir, names, 4, &n) == 0 && n == 2);
	CHECK(cf_marker_list(dir, names, 1, &n) == -E2BIG);
	/* a marker file that names another instance, and a corrupt one */
	snprintf(path, sizeof(path), "%s/" CF_MARKER_DIR "/NTS003", dir);
	CHECK(rename(strcat(strcpy(why, dir), "/" CF_MARKER_DIR "/NTS002"), path) == 0);
	CHECK(cf_marker_read(dir, "NTS003", &p, why, sizeof(why)) == -EBADMSG && strstr(why, "another instance"));
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs("cfplex-marker 1\ninstance NTS003\nstate in-", f); /* torn */
		fclose(f);
	}
	CHECK(cf_marker_read(dir, "NTS003", &p, why, sizeof(why)) == -EBADMSG);
	CHECK(cf_marker_read(dir, "../x", &p, why, sizeof(why)) == -EINVAL);
	unlink(path);
	{
		/*
		 * The data directory is shared by every member: a symlink planted at a
		 * marker's name, or at the name of this process's temporary file, is
		 * never followed (read refused, the write replaces the link, its
		 * target untouched).
		 */
		char victim[300], tmp[300];
		snprintf(victim, sizeof(victim), "%s/victim", dir);
		f = fopen(victim, "w");
		CHECK(f != NULL);
		if (f) {
			fputs("precious\n", f);
			fclose(f);
		}
		CHECK(symlink(victim, path) == 0);
		CHECK(cf_marker_read(dir, "NTS003", &p, why, sizeof(why)) == -ELOOP);
		unlink(path);
		snprintf(tmp, sizeof(tmp), "%s/" CF_MARKER_DIR "/.tmp-NTS003-%ld", dir, (long)getpid());
		CHECK(symlink(victim, tmp) == 0);
		m.instance[0] = 0;
		strcpy(m.instance, "NTS003");
		CHECK(cf_marker_write(dir, &m) == 0);
		f = fopen(victim, "r");
		CHECK(f != NULL && fgets(why, sizeof(why), f) && !strcmp(why, "precious\n"));
		if (f)
			fclose(f);
		CHECK(cf_marker_read(dir, "NTS003", &p, why, sizeof(why)) == 0);
		unlink(path);
		unlink(victim);
	}
	snprintf(path, sizeof(path), "%s/" CF_MARKER_DIR "/NTS001", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/" CF_MARKER_DIR, dir);
	rmdir(path);
	rmdir(dir);
}

int main(void)
{
	test_roundtrip();
	test_damage();
	test_fields();
	test_dir();
	if (failures) {
		fprintf(stderr, "test_marker: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_marker: ok\n");
	return 0;
}
