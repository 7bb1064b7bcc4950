/* SPDX-License-Identifier: MIT */
/*
 * cf_fault_tool - the fault suite's actors that no operator command plays
 * (tests/fault), linking libcfnode. The suite reads the CF's state through
 * cfctl, as an operator does (tests/lib/harness.sh).
 *
 *   cf_fault_tool storm --cf H:P --cluster-key F --systems N --rounds R [--transport T]
 *       the registration storm: N systems (one session and one thread each)
 *       race the CAS INACTIVE_FAILED(k) -> ACTIVE(me, k) on the same instance,
 *       R times; a victim system owns the instance before each round and
 *       dies (its connection closes without GOODBYE: the CF's failure
 *       processing marks the instance INACTIVE_FAILED). Exactly one CAS must
 *       win each round; the winner unregisters through the CF.
 *
 * Exit: 0 ok, 1 check failed, 2 usage, 3 setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "cf_auth.h"
#include "cf_key.h"
#include "cf_bank.h"
#include "cf_layout.h"
#include "cf_session.h"
#include "cf_words.h"

#define TIMEOUT_MS 5000

struct conn_opts {
	const char *cf, *key_file, *transport;
	uint8_t key[CF_KEY_LEN];
	uint32_t systems;
	uint64_t rounds;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_conn(int argc, char **argv, struct conn_opts *o)
{
	o->transport = getenv("CF_TRANSPORT") ? getenv("CF_TRANSPORT") : "tcp";
	o->systems = 3;
	o->rounds = 500;
	for (int i = 0; i < argc; i += 2) { /* OPTION VALUE pairs */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return -EINVAL;
		if (!strcmp(a, "--cf"))
			o->cf = v;
		else if (!strcmp(a, "--cluster-key"))
			o->key_file = v;
		else if (!strcmp(a, "--transport"))
			o->transport = v;
		else if (!strcmp(a, "--systems"))
			o->systems = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(a, "--rounds"))
			o->rounds = strtoull(v, NULL, 10);
		else
			return -EINVAL;
	}
	if (!o->cf || !o->key_file || o->systems < 2 || o->systems > 60 || !o->rounds)
		return -EINVAL;
	if (cf_auth_init())
		return -EIO;
	return cf_key_load(o->key_file, o->key);
}

/* ---- registration storm ---- */

struct racer {
	struct cf_session s;
	pthread_t thr;
	uint32_t idx;
	int won;
	int err;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t round;     /* bumped to start a round */
	uint32_t done;      /* racers finished this round */
	uint64_t failed_reg; /* the word to CAS from */
	uint32_t inst;
	atomic_int go;      /* spin barrier: racers CAS as close together as possible */
	atomic_uint ready;
	bool quit;
} st = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *racer_main(void *arg)
{
	struct racer *rc = arg;
	uint64_t seen = 0;

	for (;;) {
		pthread_mutex_lock(&st.mu);
		while (st.round == seen && !st.quit)
			pthread_cond_wait(&st.cv, &st.mu);
		if (st.quit) {
			pthread_mutex_unlock(&st.mu);
			return NULL;
		}
		seen = st.round;
		uint64_t failed = st.failed_reg;
		uint32_t inst = st.inst;
		pthread_mutex_unlock(&st.mu);

		atomic_fetch_add(&st.ready, 1);
		while (!atomic_load(&st.go))
			sched_yield();
		uint64_t mine = cf_reg_active(rc->s.sys, rc->s.epoch, cf_reg_incident(failed)), old = 0;
		int r = cf_session_cas(&rc->s, cf_inst_off(&rc->s.map, inst), failed, mine, &old);
		rc->err = r;
		rc->won = !r && old == failed;

		pthread_mutex_lock(&st.mu);
		st.done++;
		pthread_cond_broadcast(&st.cv);
		pthread_mutex_unlock(&st.mu);
	}
}

static int read_reg(struct cf_session *s, uint32_t inst, uint64_t *reg)
{
	return cf_session_read(s, cf_inst_off(&s->map, inst), reg, sizeof(*reg));
}

static int cmd_storm(struct conn_opts *o)
{
	struct racer *rs = calloc(o->systems, sizeof(*rs));
	struct cf_session victim, console;
	struct cf_inst_info info;
	uint64_t wins_total = 0, t0 = now_ns();
	int rc = 3, r;
	uint32_t started = 0;
	char name[CF_NAME_MAX];

	memset(&victim, 0, sizeof(victim));
	memset(&console, 0, sizeof(console));
	if (!rs)
		return 3;
	r = cf_session_open(&console, o->transport, o->cf, o->key, CF_ROLE_CONSOLE, TIMEOUT_MS);
	if (r) {
		fprintf(stderr, "storm: console connect: %s\n", strerror(-r));
		goto out;
	}
	for (uint32_t i = 0; i < o->systems; i++) {
		rs[i].idx = i;
		snprintf(name, sizeof(name), "RACE%u", i);
		r = cf_session_open(&rs[i].s, o->transport, o->cf, o->key, CF_ROLE_SYSTEM, TIMEOUT_MS);
		if (!r)
			r = cf_session_join(&rs[i].s, name, "localhost", (uint64_t)getpid(), 0);
		if (r) {
			fprintf(stderr, "storm: join %s: %s\n", name, strerror(-r));
			goto out;
		}
	}
	for (uint32_t i = 0; i < o->systems; i++) {
		if (pthread_create(&rs[i].thr, NULL, racer_main, &rs[i])) {
			fprintf(stderr, "storm: pthread_create failed\n");
			goto out_threads;
		}
		started++;
	}
	for (uint64_t round = 1; round <= o->rounds; round++) {
		uint64_t reg, deadline;

		/* the victim: a new incarnation each round, owns STORM, dies */
		r = cf_session_open(&victim, o->transport, o->cf, o->key, CF_ROLE_SYSTEM, TIMEOUT_MS);
		if (!r)
			r = cf_session_join(&victim, "VICTIM", "localhost", (uint64_t)getpid(), 0);
		if (!r)
			r = cf_session_inst_open(&victim, "STORM", &info);
		if (!r)
			r = read_reg(&victim, info.index, &reg);
		if (r) {
			fprintf(stderr, "storm: round %" PRIu64 ": victim setup: %s\n", round, strerror(-r));
			goto out_threads;
		}
		/* wait until the previous round's unregister is visible, then take it */
		deadline = now_ns() + 5000000000ull;
		while (cf_reg_state(reg) != CF_REG_CLEAN && now_ns() < deadline) {
			usleep(200);
			if ((r = read_reg(&victim, info.index, &reg)))
				break;
		}
		if (r || cf_reg_state(reg) != CF_REG_CLEAN) {
			fprintf(stderr, "storm: round %" PRIu64 ": STORM not INACTIVE_CLEAN (%s): %s\n", round,
				cf_reg_state_str(cf_reg_state(reg)), strerror(r ? -r : EBUSY));
			rc = 1;
			goto out_threads;
		}
		uint64_t mine = cf_reg_active(victim.sys, victim.epoch, cf_reg_incident(reg)), old;
		r = cf_session_cas(&victim, cf_inst_off(&victim.map, info.index), reg, mine, &old);
		if (r || old != reg) {
			fprintf(stderr, "storm: round %" PRIu64 ": victim claim failed (%s, old %#" PRIx64 ")\n", round,
				strerror(r ? -r : EBUSY), old);
			rc = 1;
			goto out_threads;
		}
		/* die: the connection closes without GOODBYE */
		cf_session_close(&victim);
		memset(&victim, 0, sizeof(victim));
		deadline = now_ns() + 5000000000ull;
		do {
			if ((r = read_reg(&console, info.index, &reg)))
				break;
			if (cf_reg_state(reg) == CF_REG_FAILED)
				break;
			usleep(100);
		} while (now_ns() < deadline);
		if (r || cf_reg_state(reg) != CF_REG_FAILED) {
			fprintf(stderr, "storm: round %" PRIu64 ": STORM not marked INACTIVE_FAILED after the victim died (%s)\n",
				round, cf_reg_state_str(cf_reg_state(reg)));
			rc = 1;
			goto out_threads;
		}
		/* the race */
		atomic_store(&st.go, 0);
		atomic_store(&st.ready, 0);
		pthread_mutex_lock(&st.mu);
		st.failed_reg = reg;
		st.inst = info.index;
		st.done = 0;
		st.round = round;
		pthread_cond_broadcast(&st.cv);
		pthread_mutex_unlock(&st.mu);
		while (atomic_load(&st.ready) < o->systems)
			sched_yield();
		atomic_store(&st.go, 1);
		pthread_mutex_lock(&st.mu);
		while (st.done < o->systems)
			pthread_cond_wait(&st.cv, &st.mu);
		pthread_mutex_unlock(&st.mu);

		uint32_t wins = 0, winner = 0;
		for (uint32_t i = 0; i < o->systems; i++) {
			if (rs[i].err) {
				fprintf(stderr, "storm: round %" PRIu64 ": RACE%u CAS error %s\n", round, i,
					strerror(-rs[i].err));
				rc = 3;
				goto out_threads;
			}
			if (rs[i].won) {
				wins++;
				winner = i;
			}
		}
		if (wins != 1) {
			fprintf(stderr, "storm: round %" PRIu64 ": %u counterparts won the registration (expected exactly 1)\n",
				round, wins);
			rc = 1;
			goto out_threads;
		}
		wins_total++;
		/* the word must name the winner */
		if ((r = read_reg(&console, info.index, &reg)) || cf_reg_state(reg) != CF_REG_ACTIVE ||
		    cf_reg_owner(reg) != rs[winner].s.sys) {
			fprintf(stderr, "storm: round %" PRIu64 ": word %#" PRIx64 " does not name the winner RACE%u\n", round,
				reg, winner);
			rc = 1;
			goto out_threads;
		}
		char msg[128] = "";
		/* as a counterpart does: attach (its fence held: there is no disk here), then unregister */
		r = cf_session_inst_attach(&rs[winner].s, info.index);
		if (r) {
			fprintf(stderr, "storm: round %" PRIu64 ": attach by RACE%u: %s\n", round, winner, strerror(-r));
			rc = 1;
			goto out_threads;
		}
		r = cf_session_inst_unreg(&rs[winner].s, info.index, msg, sizeof(msg));
		if (r) {
			fprintf(stderr, "storm: round %" PRIu64 ": unregister by RACE%u: %s %s\n", round, winner,
				strerror(-r), msg);
			rc = 1;
			goto out_threads;
		}
		cf_session_forget_inst(&rs[winner].s, info.index);
		if (round % 100 == 0)
			fprintf(stderr, "storm: %" PRIu64 " rounds, exactly one counterpart each\n", round);
	}
	printf("storm: %" PRIu64 " races among %u systems, exactly one counterpart each time (%.1f races/s)\n",
	       wins_total, o->systems, (double)wins_total * 1e9 / (double)(now_ns() - t0));
	rc = 0;
out_threads:
	pthread_mutex_lock(&st.mu);
	st.quit = true;
	pthread_cond_broadcast(&st.cv);
	pthread_mutex_unlock(&st.mu);
	atomic_store(&st.go, 1);
	for (uint32_t i = 0; i < started; i++)
		pthread_join(rs[i].thr, NULL);
out:
	cf_session_close(&victim);
	for (uint32_t i = 0; i < o->systems; i++) {
		if (rs[i].s.conn)
			(void)cf_session_goodbye(&rs[i].s);
		cf_session_close(&rs[i].s);
	}
	cf_session_close(&console);
	free(rs);
	return rc;
}

/*
 * stale-locks IMAGE N: what a power loss can leave in the unpersisted lock
 * table and record lists of an --nvram image (cfserver must be down): for each
 * instance in use, N lock words X-held by it that its record list does not
 * name (a release whose persist never happened, or a hold whose entry was
 * lost) and N record-list entries that name classes it does not hold (or that
 * another instance holds). Every word stays well formed (the image body check
 * must pass). Prints how many words it wrote.
 */
static int cmd_stale_locks(const char *path, uint32_t n)
{
	struct cf_header h;
	struct cf_image_map m;
	const char *why = NULL;
	uint32_t ninst = 0, idx[CF_MAX_INSTANCES_LIMIT], nw = 0;
	uint8_t *base;
	int fd, rc = 3;

	fd = open(path, O_RDWR);
	if (fd < 0 || pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || cf_header_check(&h, UINT64_MAX, &why)) {
		fprintf(stderr, "stale-locks %s: not a CF image (%s)\n", path, why ? why : strerror(errno));
		if (fd >= 0)
			close(fd);
		return 3;
	}
	cf_image_map(&h.geo, &m);
	base = mmap(NULL, m.image_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		fprintf(stderr, "stale-locks %s: mmap: %s\n", path, strerror(errno));
		close(fd);
		return 3;
	}
	for (uint32_t i = 0; i < m.geo.max_instances; i++) {
		const struct cf_inst_slot *is = (const void *)(base + cf_inst_off(&m, i));
		if (is->reg && ninst < CF_MAX_INSTANCES_LIMIT)
			idx[ninst++] = i;
	}
	srand((unsigned)time(NULL));
	for (uint32_t k = 0; k < ninst; k++) {
		uint32_t i = idx[k];
		struct cf_rec_entry *re = (void *)(base + cf_rec_off(&m, i));
		for (uint32_t j = 0; j < n; j++) {
			uint32_t kl = (uint32_t)rand() & (m.geo.lock_entries - 1u);
			uint64_t *w = (uint64_t *)(base + m.off_locks + (uint64_t)kl * 8u);
			*w = j % 3 == 2 ? (CF_LOCK_SBIT | (1ull << i)) : cf_lock_x(i, (uint32_t)rand() & 0xffffu);
			nw++;
		}
		for (uint32_t j = 0; j < n && j < m.geo.record_entries; j++) {
			uint32_t e = m.geo.record_entries - 1u - j; /* from the end: not where the workload writes */
			uint32_t kl = (uint32_t)rand() & (m.geo.lock_entries - 1u);
			uint64_t *w = (uint64_t *)(base + m.off_locks + (uint64_t)kl * 8u);
			memset(&re[e], 0, sizeof(re[e]));
			re[e].used = 1u + CF_LOCK_X;
			re[e].klass = kl;
			snprintf(re[e].name, sizeof(re[e].name), "stale-%u", j);
			if (j % 2 && ninst > 1) /* held by another instance: the release must leave it alone */
				*w = cf_lock_x(idx[(k + 1) % ninst], 1);
			nw++;
		}
	}
	if (msync(base, m.image_size, MS_SYNC) == 0)
		rc = 0;
	else
		fprintf(stderr, "stale-locks %s: msync: %s\n", path, strerror(errno));
	munmap(base, m.image_size);
	close(fd);
	printf("stale-locks: %u word(s) or entries written for %u instance(s)\n", nw, ninst);
	return rc;
}

static void usage(void)
{
	fprintf(stderr, "usage: cf_fault_tool storm --cf H:P --cluster-key F --systems N --rounds R [--transport T] |\n"
			"       stale-locks IMAGE N\n");
}

int main(int argc, char **argv)
{
	struct conn_opts o;

	memset(&o, 0, sizeof(o));
	if (argc < 2) {
		usage();
		return 2;
	}
	if (!strcmp(argv[1], "stale-locks") && argc == 4)
		return cmd_stale_locks(argv[2], (uint32_t)strtoul(argv[3], NULL, 10));
	if (!strcmp(argv[1], "storm")) {
		int r = parse_conn(argc - 2, argv + 2, &o);
		if (r) {
			if (r == -EINVAL)
				usage();
			else
				fprintf(stderr, "cf_fault_tool: %s\n", strerror(-r));
			return 2;
		}
		return cmd_storm(&o);
	}
	usage();
	return 2;
}
