/* SPDX-License-Identifier: MIT */
/*
 * cfctl_field.c - --field QUERY: fields of the JSON document that status or
 * locks prints, a line per query, for scripts that would otherwise need a
 * JSON reader of their own (the tests poll the CF's state this way: a
 * python start per poll cost more than cfctl itself under CPU emulation).
 *
 * QUERY is one argument, words separated by spaces:
 *   cf KEY...          the document's own fields (status: generation,
 *                      restart.state; locks: words, held_by.INST)
 *   sys NAME KEY...    status: the system called NAME
 *   inst NAME KEY...   status: the instance called NAME
 *   systems [KEY...]   status: every system listed, a line each: its name,
 *                      then its fields
 *   instances [KEY...] status: every instance listed, the same way
 * KEY a.b is field b of object a. A field that is absent prints "-" (every
 * field, when NAME is not listed); strings print bare, booleans true/false,
 * numbers as cfctl printed them, lists and objects as their JSON text.
 *
 * The reader knows JSON's values (RFC 8259; it does not refuse every
 * number the RFC does, leading zeros), but only ever reads what
 * cfctl_status.c and cfctl_locks.c wrote in this same process; a document
 * it cannot read is a bug, said as one (exit 1), never a guess.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfctl.h"
#include "cf_slog.h"

#define DEPTH_MAX 32
#define WORDS_MAX 64
#define KEY_MAX 256

struct span {
	const char *p, *e; /* a value's text: [p, e) */
};

static const char *ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int hex4(const char *p, const char *e, unsigned *v)
{
	*v = 0;
	if (e - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		char c = p[i];
		*v <<= 4;
		if (c >= '0' && c <= '9')
			*v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * The string at p (at its opening quote): decoded into out (NUL-terminated,
 * cut at cap - 1 bytes; *cut says so) when out is not NULL. Returns the end
 * of its text, or NULL when it is not a string.
 */
static const char *str(const char *p, const char *e, char *out, size_t cap, int *cut)
{
	size_t n = 0;
	char u[4];

	if (cut)
		*cut = 0;
	if (p >= e || *p++ != '"')
		return NULL;
	while (p < e && *p != '"') {
		size_t k = 1;
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p != '\\') {
			u[0] = *p++;
		} else {
			if (++p >= e)
				return NULL;
			switch (*p++) {
			case '"': u[0] = '"'; break;
			case '\\': u[0] = '\\'; break;
			case '/': u[0] = '/'; break;
			case 'b': u[0] = '\b'; break;
			case 'f': u[0] = '\f'; break;
			case 'n': u[0] = '\n'; break;
			case 'r': u[0] = '\r'; break;
			case 't': u[0] = '\t'; break;
			case 'u': {
				unsigned cp, lo;
				if (hex4(p, e, &cp))
					return NULL;
				p += 4;
				if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
					if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, e, &lo) || lo < 0xdc00 ||
					    lo >= 0xe000)
						return NULL;
					p += 6;
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				} else if (cp >= 0xdc00 && cp < 0xe000) {
					return NULL;
				}
				k = put_utf8(u, cp);
				break;
			}
			default: return NULL;
			}
		}
		if (out) {
			if (n + k < cap) {
				memcpy(out + n, u, k);
				n += k;
			} else if (cut) {
				*cut = 1;
			}
		}
	}
	if (p >= e)
		return NULL;
	if (out && cap)
		out[n] = 0;
	return p + 1;
}

/* The end of the value at p, or NULL when there is none to read. */
static const char *value(const char *p, const char *e, int depth)
{
	p = ws(p, e);
	if (p >= e || depth > DEPTH_MAX)
		return NULL;
	if (*p == '"')
		return str(p, e, NULL, 0, NULL);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		p = ws(p + 1, e);
		if (p < e && *p == close)
			return p + 1;
		for (;;) {
			if (close == '}') {
				p = str(ws(p, e), e, NULL, 0, NULL);
				if (!p || (p = ws(p, e)) >= e || *p++ != ':')
					return NULL;
			}
			p = value(p, e, depth + 1);
			if (!p || (p = ws(p, e)) >= e)
				return NULL;
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (e - p >= 4 && (!memcmp(p, "true", 4) || !memcmp(p, "null", 4)))
		return p + 4;
	if (e - p >= 5 && !memcmp(p, "false", 5))
		return p + 5;
	{
		/* a number: -?int frac? exp? */
		const char *q = p;
		if (q < e && *q == '-')
			q++;
		if (q >= e || *q < '0' || *q > '9')
			return NULL;
		while (q < e && *q >= '0' && *q <= '9')
			q++;
		if (q < e && *q == '.') {
			if (++q >= e || *q < '0' || *q > '9')
				return NULL;
			while (q < e && *q >= '0' && *q <= '9')
				q++;
		}
		if (q < e && (*q == 'e' || *q == 'E')) {
			if (++q < e && (*q == '+' || *q == '-'))
				q++;
			if (q >= e || *q < '0' || *q > '9')
				return NULL;
			while (q < e && *q >= '0' && *q <= '9')
				q++;
		}
		return q;
	}
}

/* The member key of object v, or an empty span. v has been read whole before (value). */
static struct span member(struct span v, const char *key)
{
	const char *p = ws(v.p, v.e), *q;
	char k[KEY_MAX];
	int cut;

	if (p >= v.e || *p != '{')
		return (struct span){ NULL, NULL };
	p = ws(p + 1, v.e);
	while (p < v.e && *p == '"') {
		p = str(p, v.e, k, sizeof(k), &cut);
		p = ws(p, v.e) + 1; /* the ':' */
		p = ws(p, v.e);
		q = value(p, v.e, 0);
		if (!cut && !strcmp(k, key))
			return (struct span){ p, q };
		p = ws(q, v.e);
		if (p < v.e && *p == ',')
			p = ws(p + 1, v.e);
	}
	return (struct span){ NULL, NULL };
}

/* The field at path a.b.c of object v. */
static struct span path(struct span v, const char *dotted)
{
	char k[KEY_MAX];
	const char *s = dotted;

	while (v.p) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);
		if (n >= sizeof(k))
			return (struct span){ NULL, NULL };
		memcpy(k, s, n);
		k[n] = 0;
		v = member(v, k);
		if (!dot)
			return v;
		s = dot + 1;
	}
	return v;
}

/* The element after *it of array a (*it = NULL: the first); false at the end. */
static bool element(struct span a, struct span *it)
{
	const char *p = it->p ? ws(it->e, a.e) : ws(a.p, a.e);

	if (p >= a.e)
		return false;
	if (!it->p) {
		if (*p != '[')
			return false;
		p = ws(p + 1, a.e);
		if (p < a.e && *p == ']')
			return false;
	} else {
		if (*p != ',')
			return false;
		p = ws(p + 1, a.e);
	}
	it->p = p;
	it->e = value(p, a.e, 0);
	return it->e != NULL;
}

/* A field as a line shows it: 0, or -ENOMEM. */
static int put(FILE *out, struct span v)
{
	if (!v.p) {
		fputc('-', out);
	} else if (*v.p == '"') {
		/* decoded, a string is never longer than its JSON text: no field is cut */
		char *buf = malloc((size_t)(v.e - v.p) + 1);
		int cut;
		if (!buf)
			return -ENOMEM;
		str(v.p, v.e, buf, (size_t)(v.e - v.p) + 1, &cut);
		fputs(buf, out);
		free(buf);
	} else {
		fwrite(v.p, 1, (size_t)(v.e - v.p), out);
	}
	return 0;
}

static int put_fields(FILE *out, struct span obj, char *const *key, int nkeys, bool lead_name)
{
	int r = 0;

	if (lead_name)
		r = put(out, member(obj, "name"));
	for (int i = 0; !r && i < nkeys; i++) {
		if (lead_name || i)
			fputc(' ', out);
		r = put(out, obj.p ? path(obj, key[i]) : obj);
	}
	fputc('\n', out);
	return r;
}

/* Split q into words (in buf): their count, or -1 when there are too many or none. */
static int words(const char *q, char *buf, size_t cap, char **w)
{
	int n = 0;
	char *save = NULL, *t;

	if (strlen(q) >= cap)
		return -1;
	strcpy(buf, q);
	for (t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == WORDS_MAX)
			return -1;
		w[n++] = t;
	}
	return n ? n : -1;
}

int cfctl_fields_check(const char *cmd, const char *const *q, uint32_t n)
{
	char buf[1024], *w[WORDS_MAX];
	bool status = !strcmp(cmd, "status");

	for (uint32_t i = 0; i < n; i++) {
		int k = words(q[i], buf, sizeof(buf), w);
		const char *why = NULL;

		if (k < 0)
			why = "it is empty, longer than 1023 characters or more than 64 words";
		else if (!strcmp(w[0], "cf"))
			why = k < 2 ? "cf needs a KEY" : NULL;
		else if (!status)
			why = "locks has only 'cf KEY...' (words, waiting, held_by.INSTANCE, lock_entries)";
		else if (!strcmp(w[0], "sys") || !strcmp(w[0], "inst"))
			why = k < 3 ? "sys and inst need a NAME and a KEY" : NULL;
		else if (strcmp(w[0], "systems") && strcmp(w[0], "instances"))
			why = "it must begin with cf, sys, inst, systems or instances";
		for (int j = 1; !why && j < k; j++)
			if (strlen(w[j]) >= KEY_MAX)
				why = "a word is longer than 255 characters";
		if (why) {
			cf_slog_usage("--field '%s': %s (see --help)", q[i], why);
			return EX_USAGE_;
		}
	}
	return 0;
}

static int answer(const char *doc, size_t len, const char *const *q, uint32_t n, FILE *out)
{
	struct span d = { doc, doc + len };
	const char *end = value(doc, doc + len, 0);
	char buf[1024], *w[WORDS_MAX];
	int r = 0;

	if (!end || ws(end, d.e) != d.e || *ws(doc, d.e) != '{') {
		cf_slog_err("--field: cannot read the JSON document this cfctl wrote (a bug: please report it)");
		return EX_FAIL;
	}
	for (uint32_t i = 0; !r && i < n; i++) {
		int k = words(q[i], buf, sizeof(buf), w);
		struct span it = { NULL, NULL };

		if (!strcmp(w[0], "cf")) {
			r = put_fields(out, d, w + 1, k - 1, false);
		} else if (!strcmp(w[0], "systems") || !strcmp(w[0], "instances")) {
			struct span a = member(d, w[0]);
			while (!r && a.p && element(a, &it))
				r = put_fields(out, it, w + 1, k - 1, true);
		} else {
			struct span a = member(d, !strcmp(w[0], "sys") ? "systems" : "instances"), found = { NULL, NULL };
			char name[KEY_MAX];
			while (a.p && !found.p && element(a, &it)) {
				struct span nm = member(it, "name");
				int cut;
				if (nm.p && *nm.p == '"' && str(nm.p, nm.e, name, sizeof(name), &cut) && !cut &&
				    !strcmp(name, w[1]))
					found = it;
			}
			r = put_fields(out, found, w + 2, k - 2, false);
		}
	}
	if (r)
		cf_slog_err("--field: out of memory");
	return r ? EX_FAIL : 0;
}

int cfctl_with_fields(const struct cfctl_opts *o, const char *arg,
		      int (*print)(const struct cfctl_opts *o, const char *arg, FILE *out))
{
	struct cfctl_opts j;
	char *doc = NULL;
	size_t len = 0;
	FILE *ms;
	int rc;

	if (!o->nfields)
		return print(o, arg, stdout);
	ms = open_memstream(&doc, &len);
	if (!ms) {
		cf_slog_err("out of memory");
		return EX_FAIL;
	}
	j = *o;
	j.json = true;
	rc = print(&j, arg, ms);
	if (fclose(ms) && !rc) {
		cf_slog_err("out of memory");
		rc = EX_FAIL;
	}
	if (!rc)
		rc = answer(doc, len, o->fields, o->nfields, stdout);
	free(doc);
	if (!rc && (fflush(stdout) || ferror(stdout))) {
		cf_slog_err("writing the fields: %s", strerror(errno));
		rc = EX_FAIL;
	}
	return rc;
}
