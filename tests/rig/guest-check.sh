#!/bin/bash
# tests/rig/guest-check.sh - the rig's self-check, run INSIDE the guest
# (tests/rig/rig.sh with no command). Shows the device, runs perftest's
# latency tests over rdma_cm (the reference numbers for cfplex's own), and
# cf_verbs_probe / cf_verbs_smoke if a build dir is given in CF_RIG_BUILD.
set -u
fails=0
ip=${CF_HOST:?CF_HOST not set: run this through tests/rig/rig.sh}
echo "== $(uname -r), $(nproc) vCPU, rxe0 on ${CF_RIG_NETDEV:-?} at $ip"
rdma link show | grep -q rxe0 || { echo "FAIL: no rxe0"; exit 1; }
ibv_devinfo -d rxe0 | grep -E 'state|active_mtu|link_layer' | sed 's/^\s*/  /'

# perftest pair: server in the background (killed by PID), client against it.
pt() {
	local name=$1; shift
	local ok=0
	for _ in 1 2 3; do # a client that raced the server's startup can "succeed" with inf: run the pair again
		timeout 60 "$@" -R -d rxe0 -n 1000 > /tmp/pt-srv.log 2>&1 &
		local spid=$!
		ok=0
		for _ in $(seq 1 50); do # until the server listens (bounded)
			timeout 60 "$@" -R -d rxe0 -n 1000 "$ip" > /tmp/pt-cli.log 2>&1 && { ok=1; break; }
			kill -0 $spid 2>/dev/null || break
		done
		kill $spid 2>/dev/null; wait $spid 2>/dev/null
		grep -q inf /tmp/pt-cli.log || break
		ok=0
	done
	if [ $ok = 1 ]; then
		echo "PASS $name: $(awk '/^ *[0-9]+ +[0-9]+/ {print "t_min " $3 " us, t_typical " $5 " us, t_99% " $8 " us"}' /tmp/pt-cli.log)"
	else
		echo "FAIL $name"; tail -5 /tmp/pt-cli.log; fails=$((fails + 1))
	fi
}
pt "ib_atomic_lat CAS" ib_atomic_lat -A CMP_AND_SWAP
pt "ib_atomic_lat FAA" ib_atomic_lat -A FETCH_AND_ADD
pt "ib_read_lat" ib_read_lat
pt "ib_write_lat" ib_write_lat
if [ -n "${CF_RIG_BUILD:-}" ]; then
	for t in cf_verbs_probe cf_verbs_smoke; do
		if [ -x "$CF_RIG_BUILD/tests/verbs/$t" ]; then
			timeout 180 "$CF_RIG_BUILD/tests/verbs/$t" || { echo "FAIL $t"; fails=$((fails + 1)); }
		fi
	done
fi
echo "== rig self-check: $fails failure(s)"
exit $fails
