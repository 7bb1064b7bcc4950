# Thin wrapper over meson. The two commands of the README:
#   make demo   - install missing packages, build, run the failover demo (tcp on loopback)
#   make test   - install missing packages, build, run the whole test suite
#   make install - a separate release build (RELEASE_BUILD), installed under PREFIX
# BUILD is the development and test build: it has the named fault points compiled in
# (-Dfault-injection=true), which the fault suite and the recovery tests fire through CF_FAULT.
# A binary with them dies when CF_FAULT names one, so nothing is ever installed from BUILD:
# RELEASE_BUILD is buildtype release without fault injection (the meson default).
BUILD ?= build
MESON_OPTS ?=
RELEASE_BUILD ?= build-release
PREFIX ?= /usr/local
# make bench PEERS=postgres,etcd: also measure (and apt-get install if missing) the peers.
PEERS ?=

.PHONY: all deps build release install demo demo-verbs test test-soak test-verbs bench fuzz sanitize clean

all: build

deps:
	@bash scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dfault-injection=true $(MESON_OPTS)

# A BUILD configured by hand (plain meson setup) has no fault points: turn them on.
build: deps $(BUILD)/build.ninja
	@grep -q -- -DCF_FAULT_INJECTION $(BUILD)/build.ninja || meson configure $(BUILD) -Dfault-injection=true
	ninja -C $(BUILD)

$(RELEASE_BUILD)/build.ninja:
	meson setup $(RELEASE_BUILD) --buildtype=release --prefix=$(PREFIX) -Dfault-injection=false -Dtests=false $(MESON_OPTS)

# The installed build, checked before it is installed: no fault point compiled in, CF_FAULT ignored.
release: deps $(RELEASE_BUILD)/build.ninja
	@! grep -q -- -DCF_FAULT_INJECTION $(RELEASE_BUILD)/build.ninja || meson configure $(RELEASE_BUILD) -Dfault-injection=false
	ninja -C $(RELEASE_BUILD)
	bash tests/release/check_release.sh $(RELEASE_BUILD)

install: release
	meson install -C $(RELEASE_BUILD)

demo: build
	bash scripts/demo.sh $(BUILD)

# TEST_ARGS: more meson test options. CI passes --no-suite soak-short: the shorter runs of the
# soak tests, which its soak stage runs in full (tests/fault/meson.build).
TEST_ARGS ?=
test: build
	meson test -C $(BUILD) --suite unit --suite integration --suite security --suite fault --suite multihost --print-errorlogs --num-processes 2 $(TEST_ARGS)

# The long and random schedules: crash at every fault point, 80 random rounds, the
# registration storm, kill -9 of the CF under load in both modes, rounds of whole-host
# failures across namespace-hosts. CI runs it as a stage of its own.
test-soak: build
	meson test -C $(BUILD) --suite soak --print-errorlogs --num-processes 1

# The verbs suite needs an RDMA device: on a host without one, run it in the soft-RoCE rig.
# Under CPU emulation every test runs 5-30x slower than on the host, and its time varies with
# the host's load (claim24 took 74 s in one CI run, 117 s of its 120 in the next): the
# timeouts, which are bounds for hangs, get a multiplier of 3 there.
# --nvdimm: the guest has an emulated NVDIMM, so the suite also runs cfserver --nvram /dev/pmem0.
test-verbs: build
	bash tests/rig/rig.sh --nvdimm --share "$(CURDIR)" -- meson test -C $(CURDIR)/$(BUILD) --suite verbs --no-rebuild --print-errorlogs --num-processes 2 --timeout-multiplier 3

# The demo over verbs in the soft-RoCE rig; T and h scaled for CPU emulation.
demo-verbs: build
	bash tests/rig/rig.sh --share "$(CURDIR)" -- env DEMO_T_MS=3000 DEMO_H_MS=30 DEMO_INFLIGHT=16 \
		bash scripts/demo.sh $(CURDIR)/$(BUILD)

# The peers (PostgreSQL, etcd) only when asked: make bench PEERS=postgres,etcd
bench: build
	bash bench/failover.sh --build $(BUILD) --peers '$(PEERS)'

fuzz:
	@bash scripts/deps.sh --fuzz
	bash scripts/fuzz.sh

sanitize:
	bash scripts/ci-sanitize.sh

clean:
	rm -rf $(BUILD) $(RELEASE_BUILD)
