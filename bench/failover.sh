#!/usr/bin/env bash
# One command for the failover benchmark report: cfplex (and, only when asked with
# --peers postgres,etcd, PostgreSQL and etcd), both crash modes, per-phase breakdown, floor
# ratio, JSON and gnuplot PNGs.
#   bench/failover.sh [--quick] [--peers postgres,etcd] [--json FILE] [--out DIR] [--transport tcp|verbs] [--build DIR] ...
# bench/failover.py --help lists every option.  Every process it starts is killed by PID
# on exit (the driver's cleanup handler); everything runs on loopback.
#   --hosts netns: also the failover across namespace-hosts (root): the hosts are those of
# tests/lib/hosts.sh, set up here (one per system, the CF on their bridge) and removed by
# name on exit; failover.py runs each system on its host with the default fence and a
# watchdog stand-in per host.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null || { echo "failover.sh: python3 is required" >&2; exit 2; }
hosts=local systems=3 prev=
for arg in "$@"; do
	case $prev in --hosts) hosts=$arg ;; --systems) systems=$arg ;; esac
	case $arg in --hosts=*) hosts=${arg#--hosts=} ;; --systems=*) systems=${arg#--systems=} ;; esac
	prev=$arg
done
[ "$hosts" = netns ] || exec python3 "$HERE/failover.py" "$@"

# the namespace-hosts: tests/lib/hosts.sh through the test harness (its EXIT trap kills
# every host's processes and removes namespaces, veths and bridge by name)
set +eu +o pipefail
export CF_HOSTS=netns HOSTS_FENCE=watchdog
. "$HERE/../tests/lib/harness.sh"
hosts_up "$systems" "$CF_WORK/store"
export FAILOVER_HOSTS_ID=$HOSTS_ID
for h in "${!HOSTS_HOLDER[@]}"; do export "FAILOVER_HOLDER_$h=${HOSTS_HOLDER[$h]}"; done
python3 "$HERE/failover.py" "$@" --host "$HOSTS_CF_IP"
exit $?
