#!/bin/bash
# tests/rig/rig.sh - run a command on a soft-RoCE (rdma_rxe) device, on a host
# whose own kernel has no RDMA.
#
# How: Debian's stock kernel package is downloaded and unpacked (never
# installed) under $CF_RIG_CACHE (default /var/tmp/cfplex-rig), a busybox
# initramfs is built with the rxe/uverbs/rdma_cm/9p modules, and qemu boots it
# (TCG by default). The guest mounts this host's / read-only over virtio-9p and
# chroots into it, so it runs the host's own rdma-core, meson and build output.
# Before the command runs, the guest has rxe0 on a dummy netdev with an
# address: librdmacm cannot use lo (route resolution to 127.0.0.1 fails with
# ENODEV), and a dummy netdev needs no network at all.
#
# usage: tests/rig/rig.sh [options] [--] [command args...]
#   no command        run tests/rig/guest-check.sh (device, perftest, cf_verbs_probe)
#   --share DIR       DIR is read-write at the same path in the guest (repeatable);
#                     everything else is read-only, /tmp /run /var/tmp /root are tmpfs
#   --shell           interactive shell in the guest (Ctrl-A x kills qemu)
#   --timeout SEC     kill the guest after SEC seconds (default 1800); rc 124
#   --kvm             use KVM (default TCG: the hosts here have no usable KVM)
#   --mem MB --smp N  guest size (default 1024 MB, 2 vCPU)
#   --nvdimm [MB]     an emulated NVDIMM (default 256 MB, a sparse file in the
#                     run dir, gone after the run): the guest has /dev/pmem0 (a
#                     raw-mode namespace, nd_pmem) before the command runs, and
#                     CF_RIG_NVDIMM=/dev/pmem0. Off by default: it costs the
#                     namespace probe (a few seconds under TCG)
#   --nvdimm-devdax [MB] the same NVDIMM with a label area, made a device-DAX
#                     namespace with ndctl (host package ndctl, taken over 9p)
#                     before the command: CF_RIG_NVDIMM=/dev/dax0.0
# In the guest: CF_HOST=<rxe0's address>, CF_TRANSPORT=verbs, CF_RIG=1,
# CF_TEST_T_MS=5000, CF_CONNECT_TIMEOUT_MS=30000 and CF_TEST_BANK_RATE=200 unless
# set (heartbeat and connect timeouts for tests, and their banks paced: emulation
# is slow; CF_TEST_BANK_RATE= , empty, paces nothing); the command runs as root under bash in your cwd (if shared) and its
# exit status is rig.sh's. CF_* and MESON_* variables of the caller pass through.
#
#   tests/rig/rig.sh --share "$PWD" -- meson test -C build --suite verbs
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RIGDIR=$ROOT/tests/rig
CACHE=${CF_RIG_CACHE:-/var/tmp/cfplex-rig}
NETDEV=cfrig0
GUEST_IP=10.77.0.1
ACCEL=tcg MEM=1024 SMP=2 SHELL_MODE=0 TIMEOUT=1800 NVDIMM_MB=0 NVDIMM_DEVDAX=0
SHARES=()

die() { echo "rig: $*" >&2; exit 2; }
T0=$(date +%s%N)
say() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '[rig %d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--share) [ $# -ge 2 ] || die "--share needs a directory"; SHARES+=("$(cd "$2" && pwd)"); shift ;;
	--shell) SHELL_MODE=1 ;;
	--timeout) TIMEOUT=$2; shift ;;
	--kvm) ACCEL=kvm ;;
	--mem) MEM=$2; shift ;;
	--smp) SMP=$2; shift ;;
	--nvdimm|--nvdimm-devdax)
		NVDIMM_MB=256
		[ "$1" = --nvdimm-devdax ] && NVDIMM_DEVDAX=1
		if [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]]; then NVDIMM_MB=$2; shift; fi ;;
	-h|--help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	--) shift; break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
	shift
done
[ $# -gt 0 ] || [ $SHELL_MODE = 1 ] || set -- "$RIGDIR/guest-check.sh"

# ---- 1. host packages (userspace only; the host kernel is not touched) ----
PKGS="qemu-system-x86 busybox-static kmod iproute2 xz-utils zstd cpio ibverbs-providers ibverbs-utils rdmacm-utils perftest libibverbs-dev librdmacm-dev"
[ "$NVDIMM_DEVDAX" = 1 ] && PKGS="$PKGS ndctl" # the guest runs the host's ndctl
need=()
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
	say "installing ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
		{ apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; }
fi

# ---- 2. kernel (cached) ----
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # two rigs may boot at once; building the cache is serialised
if [ ! -s "$CACHE/vmlinuz" ] || [ ! -d "$CACHE/kernel/lib/modules" ]; then
	kpkg=${CF_RIG_KERNEL_PKG:-$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1)}
	[ -n "$kpkg" ] || die "cannot find the kernel package behind linux-image-amd64 (apt-get update?)"
	say "downloading $kpkg"
	rm -rf "$CACHE/dl" "$CACHE/kernel"; mkdir -p "$CACHE/dl" "$CACHE/kernel"
	(cd "$CACHE/dl" && apt-get download "$kpkg" >&2)
	dpkg-deb -x "$CACHE"/dl/*.deb "$CACHE/kernel"
	rm -rf "$CACHE/dl"
	cp "$CACHE"/kernel/boot/vmlinuz-* "$CACHE/vmlinuz.new" && mv "$CACHE/vmlinuz.new" "$CACHE/vmlinuz"
	rm -f "$CACHE/initrd.img"
fi
KVER=$(ls "$CACHE/kernel/lib/modules" | head -1)

# ---- 3. initramfs (cached, named after what is in it: rigs of other checkouts may share the cache) ----
# rdma_rxe needs a "crc32" shash provider (else 'rdma link add' fails ENOENT).
# nfit, nd_pmem, dax_pmem, device_dax: the emulated NVDIMM of --nvdimm
# (/dev/pmem0, or /dev/daxX.Y for a devdax namespace); loop: loop devices.
# Harmless without an NVDIMM.
WANT="crc32_generic rdma_rxe ib_uverbs rdma_ucm dummy 9p 9pnet_virtio virtio_pci nfit nd_pmem dax_pmem device_dax loop"
IRHASH=$( { echo "$KVER $WANT"; cat "$RIGDIR/guest-init.sh"; } | sha1sum | cut -c1-12)
INITRD=$CACHE/initrd-$IRHASH.img
if [ ! -s "$INITRD" ]; then
	say "building the initramfs for $KVER"
	IR=$CACHE/initramfs-$IRHASH
	rm -rf "$IR"; mkdir -p "$IR"/{bin,dev,proc,sys,root,ko}
	cp /bin/busybox "$IR/bin/busybox"
	depmod -b "$CACHE/kernel" "$KVER"
	: > "$IR/ko/order"
	for m in $WANT; do modprobe -d "$CACHE/kernel" -S "$KVER" --show-depends "$m"; done |
		awk '$1 == "insmod" && !seen[$2]++ { print $2 }' |
		while read -r ko; do
			base=$(basename "$ko")
			case $base in
			*.ko.xz) xz -dc "$ko" > "$IR/ko/${base%.xz}"; base=${base%.xz} ;;
			*.ko.zst) zstd -qdc "$ko" > "$IR/ko/${base%.zst}"; base=${base%.zst} ;;
			*) cp "$ko" "$IR/ko/$base" ;;
			esac
			echo "$base" >> "$IR/ko/order"
		done
	cp "$RIGDIR/guest-init.sh" "$IR/init"; chmod 755 "$IR/init"
	(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.new"
	mv "$INITRD.new" "$INITRD"
	rm -rf "$IR"
fi
flock -u 9

# ---- 4. this run: the command, its environment, the shares ----
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
QPID=
cleanup() { [ -n "$QPID" ] && kill "$QPID" 2>/dev/null; rm -rf "$RUN"; }
trap cleanup EXIT
{
	echo "export CF_RIG=1 CF_TRANSPORT=verbs CF_RIG_NETDEV=$NETDEV"
	# emulation is 20-50x slower than the host: tests that honour CF_TEST_T_MS
	# get a heartbeat timeout T that survives connection setup under TCG
	echo "export CF_TEST_T_MS=${CF_TEST_T_MS:-5000}"
	# and rdma_cm connection setup takes seconds when two tests share the vCPUs
	echo "export CF_CONNECT_TIMEOUT_MS=${CF_CONNECT_TIMEOUT_MS:-30000}"
	# three banks in a closed loop take 96 % of the two emulated CPUs (600 txn/s each),
	# leaving the test's own steps (cfctl, checks) to wait for CPU: 200 a second each
	# took 44 %
	echo "export CF_TEST_BANK_RATE=${CF_TEST_BANK_RATE-200}" # set empty: no pacing
	for v in $(compgen -e | grep -E '^(CF_|MESON_)' | grep -v -E '^CF_(HOST|RIG|RIG_NVDIMM|TRANSPORT|TEST_T_MS|CONNECT_TIMEOUT_MS|TEST_BANK_RATE)$' || true); do
		printf 'export %s=%q\n' "$v" "${!v}"
	done
	cat <<EOF
ip link add $NETDEV type dummy && ip addr add $GUEST_IP/24 dev $NETDEV && ip link set $NETDEV up ||
	echo "rig: cannot set up $NETDEV" >&2
rdma link add rxe0 type rxe netdev $NETDEV || echo "rig: rdma link add rxe0 failed" >&2
export CF_HOST=$GUEST_IP
EOF
	if [ "$NVDIMM_DEVDAX" = 1 ]; then
		# a labelled NVDIMM starts with no namespace: make one in devdax mode
		cat <<'EOF'
for _ in $(seq 1 300); do [ -e /sys/bus/nd/devices/region0 ] && break; sleep 0.1; done
command -v ndctl >/dev/null || echo "rig: --nvdimm-devdax needs ndctl on the host (apt-get install ndctl)" >&2
ndctl create-namespace -f -r region0 -m devdax >/run/cfrig-ndctl.log 2>&1 ||
	{ ndctl disable-region region0 && ndctl init-labels -f nmem0 && ndctl enable-region region0 &&
	  ndctl create-namespace -f -r region0 -m devdax; } >>/run/cfrig-ndctl.log 2>&1
for _ in $(seq 1 300); do [ -c /dev/dax0.0 ] && break; sleep 0.1; done
if [ -c /dev/dax0.0 ]; then
	export CF_RIG_NVDIMM=/dev/dax0.0
	echo "rig: NVDIMM /dev/dax0.0 (devdax, align $(cat /sys/bus/dax/devices/dax0.0/align 2>/dev/null || echo ?)), after $(cut -d' ' -f1 /proc/uptime)s" >&2
else
	echo "rig: --nvdimm-devdax but no /dev/dax0.0: $(tail -n 5 /run/cfrig-ndctl.log | tr '\n' ' ')" >&2
fi
EOF
	elif [ "$NVDIMM_MB" -gt 0 ]; then
		# the namespace shows up asynchronously (nfit probe, then nd_pmem): wait, bounded
		cat <<'EOF'
for _ in $(seq 1 300); do [ -b /dev/pmem0 ] && break; sleep 0.1; done
if [ -b /dev/pmem0 ]; then
	export CF_RIG_NVDIMM=/dev/pmem0
	echo "rig: NVDIMM /dev/pmem0, $(($(cat /sys/block/pmem0/size) / 2048)) MiB, after $(cut -d' ' -f1 /proc/uptime)s" >&2
else
	echo "rig: --nvdimm but no /dev/pmem0 after 30 s: $(ls /sys/bus/nd/devices 2>&1 | tr '\n' ' ')" >&2
fi
EOF
	fi
	cat <<EOF
cd $(printf %q "$PWD") 2>/dev/null || { echo "rig: $PWD is not shared (use --share); running in /" >&2; cd /; }
EOF
} > "$RUN/env.sh"
printf '%q ' "$@" > "$RUN/cmd.sh"; echo >> "$RUN/cmd.sh"
[ $SHELL_MODE = 1 ] && touch "$RUN/interactive"
FS=(-virtfs "local,path=/,mount_tag=cfroot,security_model=none,readonly=on,multidevs=remap"
	-virtfs "local,path=$RUN,mount_tag=cfrun,security_model=none")
: > "$RUN/shares"
i=0
for s in "${SHARES[@]}"; do
	FS+=(-virtfs "local,path=$s,mount_tag=cfshare$i,security_model=none,multidevs=remap")
	echo "cfshare$i $s" >> "$RUN/shares"; i=$((i + 1))
done
if [ $ACCEL = kvm ]; then ACC=(-accel kvm -cpu host); else ACC=(-accel tcg,thread=multi -cpu max); fi
MACH=(-m "$MEM") NVOPT= NVSAY=
[ "$NVDIMM_DEVDAX" = 1 ] && NVOPT=,label-size=128K # a label area: namespaces can be configured
[ "$NVDIMM_MB" -gt 0 ] && NVSAY=", NVDIMM ${NVDIMM_MB} MB"
if [ "$NVDIMM_MB" -gt 0 ]; then
	# a sparse file of the run dir backs the NVDIMM; share=on: the guest's stores reach it
	truncate -s "${NVDIMM_MB}M" "$RUN/nvdimm.img"
	MACH=(-machine pc,nvdimm=on -m "$MEM,slots=2,maxmem=4G"
		-object "memory-backend-file,id=nv1,share=on,mem-path=$RUN/nvdimm.img,size=${NVDIMM_MB}M"
		-device "nvdimm,id=nvd1,memdev=nv1$NVOPT")
fi
QEMU=(qemu-system-x86_64 "${ACC[@]}" "${MACH[@]}" -smp "$SMP" -nodefaults -no-user-config -nographic
	-serial mon:stdio -no-reboot -nic none "${FS[@]}" -kernel "$CACHE/vmlinuz" -initrd "$INITRD"
	-append "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off rdinit=/init")

say "booting $KVER ($ACCEL, ${MEM} MB, $SMP vCPU$NVSAY)"
set +e
if [ $SHELL_MODE = 1 ]; then
	"${QEMU[@]}"
else
	# qemu in the background so the trap can kill it by PID on timeout/^C
	"${QEMU[@]}" < /dev/null > "$RUN/console" 2>&1 &
	QPID=$!
	( tail -n +1 -f --pid=$QPID "$RUN/console" | tr -d '\r' |
		sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1bc//g' |
		grep --line-buffered -v -E 'SeaBIOS|Booting from ROM|reboot: Power down|^$' ) &
	TPID=$!
	deadline=$(( $(date +%s) + TIMEOUT ))
	while kill -0 "$QPID" 2>/dev/null; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			say "timeout after ${TIMEOUT}s: killing the guest"
			kill "$QPID"; wait "$QPID" 2>/dev/null; QPID=
			wait "$TPID" 2>/dev/null
			exit 124
		fi
		sleep 0.2 # polling the qemu process; the guest does the work
	done
	wait "$QPID" 2>/dev/null; QPID=
	wait "$TPID" 2>/dev/null
fi
set -e
rc=$(cat "$RUN/rc" 2>/dev/null || echo 255)
say "guest command exited with $rc"
exit "$rc"
