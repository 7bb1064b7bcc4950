/* SPDX-License-Identifier: MIT */
/* cfserver - the coupling-facility server: options, image, one libev loop, signals. */
#include <errno.h>
#include <sched.h>
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stddef.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "cf_addr.h"
#include "cf_auth.h"
#include "cf_key.h"
#include "cf_cli.h"
#include "cf_core.h"
#include "cf_duplex.h"
#include "cf_image.h"
#include "cf_slog.h"
#include "cf_notify.h"
#include "cf_proc.h"
#include "cf_util.h"
#include "../node/cf_fence.h"

/* exit codes: cf_cli.h, one per cause in every program */
enum {
	EXIT_OK = CF_EX_OK,
	EXIT_OTHER = CF_EX_FAIL,
	EXIT_USAGE = CF_EX_USAGE,
	EXIT_IMAGE = CF_EX_IMAGE,
	EXIT_LISTEN = CF_EX_LISTEN,
	EXIT_KEY = CF_EX_KEY,
	EXIT_DUPLEX = CF_EX_DUPLEX,
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: cfserver --cluster-key FILE [options]\n"
		"The cfplex coupling facility: owns the CF structures and serves them to cfnode\n"
		"systems and cfctl consoles over tcp or RDMA verbs.\n"
		"\n"
		"  --listen ADDR:PORT     where to listen (default 127.0.0.1:7410; port 0 = any)\n"
		"  --port-file FILE       write the bound port to FILE once listening\n"
		"  --transport tcp|verbs  transport backend (default tcp)\n"
		"  --nvram PATH           keep the CF image in PATH: a regular file (created if\n"
		"                         missing), a block device (/dev/pmem0, a loop device) or\n"
		"                         a device-DAX device (/dev/daxX.Y); not a symlink.\n"
		"                         Default: DRAM, lost at exit\n"
		"  --max-systems N        system table size (default %u, max %u)\n"
		"  --max-instances N      instance table size (default %u, max %u)\n"
		"  --lock-entries N       lock table classes, power of two (default %u)\n"
		"  --record-entries N     lock record list entries per instance (default %u)\n"
		"  --log-size SIZE        undo log bytes per instance, K/M/G suffixes (default 4M)\n"
		"  --cluster-key FILE     the cluster key: 64 hex digits or 32 raw bytes, mode 0600 (required)\n"
		"  --monitor-key FILE     a second key, same format, for the MONITOR role: it may read the\n"
		"                         metrics (cfctl metrics --key FILE) and nothing else\n"
		"  --hb-interval MS       heartbeat interval h the nodes use (default 5; at most an hour)\n"
		"  --hb-timeout MS        heartbeat silence T that fails a system (default 50; at most an hour)\n"
		"  --sweep-interval MS    how often cfserver checks the heartbeats itself (default h/2);\n"
		"                         systems also watch each other and report silence (SUSPECT)\n"
		"  --max-conns N          connections at once (default 256, 1..4096)\n"
		"\n"
		"A duplexed CF (a primary and a secondary; give systems both as --cf A,B):\n"
		"  --duplex-listen ADDR:PORT  accept a secondary on this link address; every durable\n"
		"                         write is then acknowledged only once the secondary has it\n"
		"  --duplex-with ADDR:PORT    start as the secondary of the primary whose link\n"
		"                         address this is: copy its image, follow it, and take over\n"
		"                         (serve on --listen) when it is lost and fenced\n"
		"  --duplex-pair ADDR:PORT  one of a pair started alike (with --duplex-listen): the\n"
		"                         partner's link address. At start the two decide which serves:\n"
		"                         a serving partner is followed, a newer image wins, and a CF\n"
		"                         never serves while its partner may (restart either with the\n"
		"                         same command line)\n"
		"  --duplex-alone         serve an image that was in sync with a secondary when this CF\n"
		"                         last ran (refused otherwise, exit 6: the secondary may have\n"
		"                         taken over since): only when that secondary's copy is lost\n"
		"  --cf-fence auto|local|none|PATH  how to fence the other CF: SIGKILL through a\n"
		"                         pidfd on this host (auto, local), an external fence agent\n"
		"                         (PATH, fence-agents convention), or not at all (none:\n"
		"                         unsafe). Default auto\n"
		"  --duplex-timeout MS    link silence that loses the other CF (default 4 T)\n"
		"  --duplex-fence-delay MS  a secondary waits this long before fencing a primary\n"
		"                         that may be alive (default 1000): the primary fences first\n"
		"  --duplex-resume MS     after a takeover, how long each system the primary had\n"
		"                         has to come back before it is failed and recovered by its\n"
		"                         peers (default max(4 T, 2000))\n"
		"  --log-level LEVEL      err|warn|info|debug (default info)\n"
		"  -v, --verbose          same as --log-level debug\n"
		"  --log-prefix           a syslog priority <N> before every log line (automatic when\n"
		"                         stderr is the journal: JOURNAL_STREAM)\n"
		"  -h, --help             this help\n"
		"      --version          print the version\n"
		"\n"
		"Geometry options must match an existing --nvram image; give none to use the image's.\n"
		"\n"
		"Exit status: 0 clean shutdown (SIGTERM/SIGINT), 1 other error, 2 usage error,\n"
		"3 CF image refused (corrupt, foreign, mismatched, no space or device too small,\n"
		"--nvram of a kind that cannot hold it, a symlink, or a device in use), 4 cannot\n"
		"listen, 77 cluster key problem (missing key file option: 2), 6 a secondary that cannot follow or must not\n"
		"take over (lost the primary before its copy was complete, fence not confirmed,\n"
		"bad link, primary's key or geometry refused).\n",
		CF_DEFAULT_MAX_SYSTEMS, CF_MAX_SYSTEMS_LIMIT, CF_DEFAULT_MAX_INSTANCES, CF_MAX_INSTANCES_LIMIT,
		CF_DEFAULT_LOCK_ENTRIES, CF_DEFAULT_RECORD_ENTRIES);
}

/* Limits of the numeric options (ms unless said): beyond them a value is a typo, or overflows in ns. */
#define MS_MAX 3600000ull /* an hour */

/*
 * Is --listen usable as an address, before anything is allocated (the image
 * can be hundreds of MB)? 0, or -EINVAL with why filled in. Binding can
 * still fail later (address in use, not local): that is cf_core_listen's.
 */
static int listen_check(const char *addr, char *why, size_t cap)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	char host[CF_ADDR_HOST_MAX];
	const char *colon = strrchr(addr, ':');
	uint16_t port;
	int r;

	r = cf_addr_split(addr, host, sizeof(host), &port);
	if (r == -ENAMETOOLONG) {
		snprintf(why, cap, "the host part is longer than %u characters", CF_ADDR_HOST_MAX - 1);
		return -EINVAL;
	}
	if (r < 0) {
		char *end;
		unsigned long v;
		if (colon && colon[1]) {
			errno = 0;
			v = strtoul(colon + 1, &end, 10);
			if (!*end && colon[1] != '-' && (errno || v > 65535)) {
				snprintf(why, cap, "port %s is out of range: 1..65535, or 0 for any free port", colon + 1);
				return -EINVAL;
			}
		}
		snprintf(why, cap, "expected HOST:PORT or [IPV6]:PORT, PORT a number 0..65535 (0: any free port)");
		return -EINVAL;
	}
	r = getaddrinfo(host, NULL, &hints, &ai);
	if (r) {
		snprintf(why, cap, "host '%.64s' does not resolve: %s", host,
			 r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
		return -EINVAL;
	}
	freeaddrinfo(ai);
	return 0;
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	cf_slog_info("signal %d: shutting down", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", port);
	if (fclose(f) != 0)
		return -errno;
	/* rename: a reader never sees a half-written port */
	return rename(tmp, path) < 0 ? -errno : 0;
}

int main(int argc, char **argv)
{
	enum {
		O_LISTEN = 256, O_PORTFILE, O_TRANSPORT, O_NVRAM, O_MAXSYS, O_MAXINST, O_LOCKS, O_RECORDS, O_LOGSIZE,
		O_KEY, O_HBI, O_HBT, O_SWEEP, O_MAXCONNS, O_LOGLEVEL, O_VERSION, O_DXLISTEN, O_DXWITH, O_CFFENCE,
		O_DXTIMEOUT, O_DXDELAY, O_DXRESUME, O_MONKEY, O_LOGPREFIX, O_DXPAIR, O_DXALONE,
	};
	static const struct option opts[] = {
		{"listen", required_argument, NULL, O_LISTEN},
		{"port-file", required_argument, NULL, O_PORTFILE},
		{"transport", required_argument, NULL, O_TRANSPORT},
		{"nvram", required_argument, NULL, O_NVRAM},
		{"max-systems", required_argument, NULL, O_MAXSYS},
		{"max-instances", required_argument, NULL, O_MAXINST},
		{"lock-entries", required_argument, NULL, O_LOCKS},
		{"record-entries", required_argument, NULL, O_RECORDS},
		{"log-size", required_argument, NULL, O_LOGSIZE},
		{"cluster-key", required_argument, NULL, O_KEY},
		{"monitor-key", required_argument, NULL, O_MONKEY},
		{"hb-interval", required_argument, NULL, O_HBI},
		{"hb-timeout", required_argument, NULL, O_HBT},
		{"sweep-interval", required_argument, NULL, O_SWEEP},
		{"max-conns", required_argument, NULL, O_MAXCONNS},
		{"log-level", required_argument, NULL, O_LOGLEVEL},
		{"log-prefix", no_argument, NULL, O_LOGPREFIX},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, O_VERSION},
		{"duplex-listen", required_argument, NULL, O_DXLISTEN},
		{"duplex-with", required_argument, NULL, O_DXWITH},
		{"duplex-pair", required_argument, NULL, O_DXPAIR},
		{"duplex-alone", no_argument, NULL, O_DXALONE},
		{"cf-fence", required_argument, NULL, O_CFFENCE},
		{"duplex-timeout", required_argument, NULL, O_DXTIMEOUT},
		{"duplex-fence-delay", required_argument, NULL, O_DXDELAY},
		{"duplex-resume", required_argument, NULL, O_DXRESUME},
		{NULL, 0, NULL, 0},
	};
	struct cf_geometry geo = {CF_DEFAULT_MAX_SYSTEMS, CF_DEFAULT_MAX_INSTANCES, CF_DEFAULT_LOCK_ENTRIES,
				  CF_DEFAULT_RECORD_ENTRIES, CF_DEFAULT_LOG_SIZE};
	const char *listen_addr = "127.0.0.1:7410", *port_file = NULL, *transport = "tcp", *nvram = NULL;
	const char *key_file = NULL, *monitor_key_file = NULL, *dx_listen = NULL, *dx_with = NULL, *cf_fence = "auto";
	const char *dx_pair = NULL;
	bool dx_alone = false;
	struct cf_duplex_pair *pair = NULL;
	uint64_t hbi_ms = 5, hbt_ms = 50, sweep_ms = 0, dx_timeout_ms = 0, dx_delay_ms = 1000, dx_resume_ms = 0;
	struct cf_duplex_cfg dcfg;
	struct cf_duplex *dx = NULL;
	uint32_t max_conns = 256;
	unsigned explicit_geo = 0;
	const struct cf_server_ops *ops;
	struct cf_core_cfg cfg;
	struct cf_image im;
	struct cf_core *core = NULL;
	struct ev_loop *loop;
	ev_signal sigterm, sigint;
	int o, r, rc = EXIT_OTHER;

	memset(&cfg, 0, sizeof(cfg));
	cf_slog_init("cfserver");
	cf_malloc_keep(0); /* the answers of a failover meet no fresh pages (cf_proc.h) */
	opterr = 0; /* cf_cli_bad_option says it in one line */
	while ((o = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		r = 0;
		switch (o) {
		case O_LISTEN: listen_addr = optarg; break;
		case O_PORTFILE: port_file = optarg; break;
		case O_TRANSPORT: transport = optarg; break;
		case O_NVRAM: nvram = optarg; break;
		case O_MAXSYS: r = cf_cli_parse_u32(optarg, 0, UINT32_MAX, &geo.max_systems), explicit_geo |= CF_GEO_SYSTEMS; break;
		case O_MAXINST: r = cf_cli_parse_u32(optarg, 0, UINT32_MAX, &geo.max_instances), explicit_geo |= CF_GEO_INSTANCES; break;
		case O_LOCKS: r = cf_cli_parse_u32(optarg, 0, UINT32_MAX, &geo.lock_entries), explicit_geo |= CF_GEO_LOCKS; break;
		case O_RECORDS: r = cf_cli_parse_u32(optarg, 0, UINT32_MAX, &geo.record_entries), explicit_geo |= CF_GEO_RECORDS; break;
		case O_LOGSIZE: r = cf_cli_parse_u64(optarg, 1, 0, UINT64_MAX, &geo.log_size), explicit_geo |= CF_GEO_LOGSIZE; break;
		case O_KEY: key_file = optarg; break;
		case O_MONKEY: monitor_key_file = optarg; break;
		case O_HBI: r = cf_cli_parse_u64(optarg, 0, 1, MS_MAX, &hbi_ms); break;
		case O_HBT: r = cf_cli_parse_u64(optarg, 0, 1, MS_MAX, &hbt_ms); break;
		case O_SWEEP: r = cf_cli_parse_u64(optarg, 0, 1, 600000, &sweep_ms); break;
		case O_MAXCONNS: r = cf_cli_parse_u32(optarg, 1, 4096, &max_conns); break;
		case O_LOGLEVEL: r = cf_slog_level_parse(optarg, &cf_slog_level); break;
		case O_LOGPREFIX: cf_slog_force_prefix(); break;
		case O_DXLISTEN: dx_listen = optarg; break;
		case O_DXWITH: dx_with = optarg; break;
		case O_DXPAIR: dx_pair = optarg; break;
		case O_DXALONE: dx_alone = true; break;
		case O_CFFENCE: cf_fence = optarg; break;
		case O_DXTIMEOUT: r = cf_cli_parse_u64(optarg, 0, 1, 600000, &dx_timeout_ms); break;
		case O_DXDELAY: r = cf_cli_parse_u64(optarg, 0, 0, 600000, &dx_delay_ms); break;
		case O_DXRESUME: r = cf_cli_parse_u64(optarg, 0, 1, 600000, &dx_resume_ms); break;
		case 'v': cf_slog_level = CF_SLOG_DEBUG; break;
		case 'h': usage(stdout); return EXIT_OK;
		case O_VERSION: return cf_cli_version("cfserver") ? EXIT_OTHER : EXIT_OK;
		default: return cf_cli_bad_option("cfserver", o, argv, EXIT_USAGE);
		}
		if (r < 0) {
			const char *oname = "?";
			for (size_t i = 0; opts[i].name; i++)
				if (opts[i].val == o)
					oname = opts[i].name;
			cf_slog_usage("invalid value '%s' for --%s%s", optarg, oname,
				      r == -ERANGE ? ": out of range (cfserver --help)" : ": not a decimal number");
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cf_slog_usage("unexpected argument '%s' (try --help)", argv[optind]);
		return EXIT_USAGE;
	}
	if (!strcmp(transport, "tcp")) {
		ops = &cf_tcp_server;
	} else if (!strcmp(transport, "verbs")) {
		ops = &cf_verbs_server;
	} else {
		cf_slog_usage("--transport must be tcp or verbs, not '%s'", transport);
		return EXIT_USAGE;
	}
	if (hbt_ms <= hbi_ms) {
		cf_slog_usage("--hb-timeout (%llu ms) must exceed --hb-interval (%llu ms)",
			(unsigned long long)hbt_ms, (unsigned long long)hbi_ms);
		return EXIT_USAGE;
	}
	{
		const char *why = NULL;
		if (cf_geometry_check(&geo, &why) < 0) {
			cf_slog_usage("invalid geometry: %s", why);
			return EXIT_USAGE;
		}
	}
	{
		char why[160];
		if (listen_check(listen_addr, why, sizeof(why)) < 0) {
			cf_slog_err("cannot listen on --listen %s: %s", listen_addr, why);
			return EXIT_LISTEN;
		}
	}
	{
		char why[160];
		struct cf_fence_cfg fc;
		memset(&fc, 0, sizeof(fc));
		if (dx_listen && listen_check(dx_listen, why, sizeof(why)) < 0) {
			cf_slog_err("cannot listen on --duplex-listen %s: %s", dx_listen, why);
			return EXIT_LISTEN;
		}
		if (dx_with && listen_check(dx_with, why, sizeof(why)) < 0) {
			cf_slog_usage("--duplex-with %s is not a usable address: %s", dx_with, why);
			return EXIT_USAGE;
		}
		if (dx_pair && listen_check(dx_pair, why, sizeof(why)) < 0) {
			cf_slog_usage("--duplex-pair %s is not a usable address: %s", dx_pair, why);
			return EXIT_USAGE;
		}
		if (dx_pair && (!dx_listen || dx_with)) {
			cf_slog_usage("--duplex-pair needs --duplex-listen (this CF's own link address) and excludes "
				      "--duplex-with (a pair member decides its role itself)");
			return EXIT_USAGE;
		}
		if (dx_alone && (dx_with || dx_pair)) {
			cf_slog_usage("--duplex-alone serves this CF's own image: not with --duplex-with or --duplex-pair");
			return EXIT_USAGE;
		}
		if (cf_fence_parse(&fc, cf_fence) < 0) {
			cf_slog_usage("--cf-fence must be auto, local, none or an agent's path, not '%s'",
				cf_fence);
			return EXIT_USAGE;
		}
		cf_fence_map_free(&fc);
		if (dx_timeout_ms && dx_timeout_ms <= hbi_ms) {
			cf_slog_usage("--duplex-timeout (%llu ms) must exceed --hb-interval (%llu ms)",
				(unsigned long long)dx_timeout_ms, (unsigned long long)hbi_ms);
			return EXIT_USAGE;
		}
	}
	if (!key_file) { /* a required option, as in cfnode and cfctl */
		cf_slog_usage("--cluster-key FILE is required (64 hex digits, e.g. from "
			      "'cfctl keygen --out FILE', mode 0600)");
		return EXIT_USAGE;
	}
	r = cf_auth_init();
	if (r < 0) {
		cf_slog_err("libsodium failed to initialise");
		return EXIT_OTHER;
	}
	r = cf_key_load(key_file, cfg.key);
	if (r < 0) {
		char why[512];
		cf_slog_err("%s", cf_key_explain(key_file, r, why, sizeof(why)));
		return EXIT_KEY;
	}
	if (monitor_key_file) {
		r = cf_key_load(monitor_key_file, cfg.monitor_key);
		if (r < 0) {
			char why[512];
			cf_slog_err("%s", cf_key_explain_as("monitor key", monitor_key_file, r, why, sizeof(why)));
			return EXIT_KEY;
		}
		/* the same key would make every monitor a full member */
		if (!sodium_memcmp(cfg.monitor_key, cfg.key, CF_KEY_LEN)) {
			cf_slog_err("--monitor-key %s is the cluster key: give the monitors a key of their "
					"own (cfctl keygen --out FILE)", monitor_key_file);
			return EXIT_KEY;
		}
		cfg.has_monitor_key = 1;
	}
	cfg.hb_interval_ns = hbi_ms * 1000000ull;
	cfg.hb_timeout_ns = hbt_ms * 1000000ull;
	cfg.sweep_ns = sweep_ms * 1000000ull;
	cfg.max_conns = max_conns;
	if (!dx_resume_ms)
		dx_resume_ms = 4 * hbt_ms > 2000 ? 4 * hbt_ms : 2000;
	cfg.resume_ns = dx_resume_ms * 1000000ull;

	{
		/*
		 * The CF is a dedicated processor (claim 13): its loop executes every
		 * one-sided request on tcp and sweeps heartbeats, so it must not wait
		 * for the CPU behind busy nodes; nor may a secondary's link fall
		 * silent behind them. Real-time priority (inherited by the threads),
		 * best effort.
		 */
		struct sched_param sp = {.sched_priority = 5};
		if (sched_setscheduler(0, SCHED_RR, &sp) == 0)
			cf_slog_info("running with real-time priority (SCHED_RR %d)", sp.sched_priority);
		else
			cf_slog_info("no real-time priority (%s): heartbeat sweeps may run late under load", strerror(errno));
	}
	memset(&dcfg, 0, sizeof(dcfg));
	memcpy(dcfg.key, cfg.key, sizeof(dcfg.key));
	dcfg.fence = cf_fence;
	dcfg.hb_interval_ns = hbi_ms * 1000000ull;
	dcfg.link_timeout_ns = (dx_timeout_ms ? dx_timeout_ms : 4 * hbt_ms) * 1000000ull;
	dcfg.fence_delay_ns = dx_delay_ms * 1000000ull;
	dcfg.name = listen_addr;
	if (dx_with) {
		char why[512] = "";
		if (explicit_geo)
			cf_slog_warn("duplex: geometry options are ignored by a secondary: it takes the primary's");
		/* blocks until this CF must serve: the primary lost and fenced, the copy complete */
		r = cf_duplex_follow(dx_with, nvram, &dcfg, &im, why, sizeof(why));
		if (r == -EINTR) {
			cf_slog_info("duplex: %s", why);
			return EXIT_OK;
		}
		if (r < 0) {
			cf_slog_err("duplex: %s", why[0] ? why : strerror(-r));
			return EXIT_DUPLEX;
		}
	} else {
		r = cf_image_open(&im, nvram, &geo, explicit_geo);
	}
	if (r == 0 && !dx_with && !im.formatted && cf_image_header(&im)->reserved[CF_HDR_DUPLEX] == CF_DUPLEX_COPYING &&
	    !dx_pair) {
		cf_slog_err("CF image refused: %s is a duplex secondary's copy that was never completed: it holds parts of "
			    "two states and must not be served. Start this CF as a secondary (--duplex-with, or "
			    "--duplex-pair) to copy again, or move the image away. Nothing changed",
			    nvram ? nvram : "DRAM");
		cf_image_close(&im);
		return EXIT_IMAGE;
	}
	if (r == 0 && !dx_with && !dx_alone && !dx_pair && !im.formatted &&
	    cf_image_header(&im)->reserved[CF_HDR_DUPLEX] == CF_DUPLEX_INSYNC) {
		/* the guard against a second primary (docs/design.md, "Roles at start") */
		cf_slog_err("duplex: this image (%s) was in sync with a secondary when this CF last ran: that secondary "
			    "may have taken over since and served newer state, so this CF must not serve it alone. Start "
			    "it as the secondary of the CF now serving (--duplex-with ITS_LINK), or as a pair member "
			    "(--duplex-listen OWN_LINK --duplex-pair ITS_LINK); if that secondary's copy is lost for "
			    "good, --duplex-alone serves this image. Nothing changed",
			    nvram ? nvram : "DRAM");
		cf_image_close(&im);
		return EXIT_DUPLEX;
	}
	if (r == 0 && dx_pair) {
		char why[512] = "";
		r = cf_duplex_pair_open(dx_listen, &dcfg, &pair, why, sizeof(why));
		if (r < 0) {
			cf_slog_err("cannot listen on --duplex-listen %s: %s", dx_listen, why);
			cf_image_close(&im);
			return EXIT_LISTEN;
		}
		/* blocks until this CF must serve: its own image, or the copy of a partner it followed */
		r = cf_duplex_pair_start(pair, dx_pair, nvram, &im, why, sizeof(why));
		if (r == -EINTR || r < 0) {
			if (r == -EINTR)
				cf_slog_info("duplex: %s", why);
			else
				cf_slog_err("duplex: %s", why[0] ? why : strerror(-r));
			cf_duplex_pair_free(pair);
			return r == -EINTR ? EXIT_OK : EXIT_DUPLEX;
		}
	}
	if (r < 0) {
		cf_slog_err("CF image refused: %s", im.why[0] ? im.why : strerror(-r));
		if (r == -EBADMSG && im.kind == CF_IMAGE_BLOCK)
			cf_slog_err("refusing to start rather than overwrite it; zero its first 4 KiB page to start "
				"afresh on this device");
		else if (r == -EBADMSG)
			cf_slog_err("refusing to start rather than overwrite it; move it away to start afresh");
		cf_image_close(&im);
		switch (r) {
		case -EBADMSG: case -EINVAL: case -ENOSPC: case -ENODEV: case -ELOOP: case -EBUSY:
			return EXIT_IMAGE;
		default:
			return EXIT_OTHER;
		}
	}
	cf_slog_info("CF image: %s (%s, %s), %llu bytes of %llu (%u systems, %u instances, %u lock classes, "
		 "%u records, log %llu)%s, resident in %.1f ms",
		 nvram ? nvram : "DRAM", cf_image_kind_str(im.kind), cf_image_persist_str(&im),
		 (unsigned long long)im.map.image_size, (unsigned long long)im.size, im.map.geo.max_systems,
		 im.map.geo.max_instances, im.map.geo.lock_entries, im.map.geo.record_entries,
		 (unsigned long long)im.map.geo.log_size, im.formatted ? ", freshly formatted" : ", loaded",
		 im.resident_ns / 1e6);
	if (im.body.bad_node)
		cf_slog_warn("CF image: %llu word(s) that nodes write do not decode (first: %s); nodes treat them as "
			 "unusable: a lock class that cannot be taken, an instance that cannot be registered",
			 (unsigned long long)im.body.bad_node, im.body.first_node);

	loop = ev_default_loop(EVFLAG_AUTO);
	if (!loop) {
		cf_slog_err("cannot create the event loop");
		goto err_image;
	}
	signal(SIGPIPE, SIG_IGN);
	cfg.keep_systems = im.took_over;
	r = cf_core_new(loop, ops, &im, &cfg, &core);
	if (r < 0) {
		cf_slog_err("core: %s", strerror(-r));
		goto err_image;
	}
	if (dx_listen) {
		char why[256] = "";
		r = cf_duplex_listen(loop, &im, dx_listen, pair ? cf_duplex_pair_take_fd(pair) : -1, &dcfg, &dx, why,
				     sizeof(why));
		if (r < 0) {
			cf_slog_err("cannot listen for a secondary on --duplex-listen %s: %s", dx_listen, why);
			rc = EXIT_LISTEN;
			goto err_core;
		}
		cf_core_set_duplex(core, dx);
		cf_slog_info("duplex: accepting a secondary on %s (port %d); running alone until one is in sync",
			 dx_listen, cf_duplex_port(dx));
	}
	r = cf_core_listen(core, listen_addr);
	if (r < 0) {
		cf_slog_err("cannot listen on %s (%s): %s", listen_addr, transport, strerror(-r));
		rc = EXIT_LISTEN;
		goto err_core;
	}
	cf_slog_info("listening on %s, port %d (%s), h = %llu ms, T = %llu ms, max-conns %u", listen_addr,
		 cf_core_port(core), transport, (unsigned long long)hbi_ms, (unsigned long long)hbt_ms, max_conns);
	if (port_file) {
		r = write_port_file(port_file, cf_core_port(core));
		if (r < 0) {
			cf_slog_err("cannot write port file %s: %s", port_file, strerror(-r));
			goto err_core;
		}
	}
	ev_signal_init(&sigterm, stop_cb, SIGTERM);
	ev_signal_init(&sigint, stop_cb, SIGINT);
	ev_signal_start(loop, &sigterm);
	ev_signal_start(loop, &sigint);
	/* listening, port file written: nodes can join */
	cf_notify_status(1, "serving on %s (%s)%s", listen_addr, transport,
			 dx ? ", duplexed primary" : "");
	ev_run(loop, 0);
	rc = EXIT_OK;
err_core:
	cf_core_free(core); /* its group commit ships what is pending before dx goes */
	cf_duplex_free(dx);
	cf_duplex_pair_free(pair);
err_image:
	cf_image_close(&im); /* persists the whole image under --nvram */
	if (im.persist_errors) {
		cf_slog_err("%llu persist(s) of the image failed (msync or write on %s): it may not hold the latest state",
			(unsigned long long)im.persist_errors, nvram);
		rc = EXIT_OTHER;
	} else if (rc == EXIT_OK) {
		cf_slog_info("image persisted, bye");
	}
	return rc;
}
