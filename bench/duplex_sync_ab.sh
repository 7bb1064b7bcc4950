#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/duplex_sync_ab.sh BUILD: milliseconds from the secondary's "following the primary" to
# its "in sync" for the default geometry (143 MB image), DRAM, tcp on loopback, nothing else
# running: the initial image copy over the duplex link. Run it for two builds, interleaved, to
# compare (bench/RESULTS.md, "Frame integrity").
set -u
[ $# = 1 ] && [ -x "$1/cfserver/cfserver" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
B=$1; W=$(mktemp -d); head -c 32 /dev/urandom > $W/key; chmod 600 $W/key
$B/cfserver/cfserver --listen 127.0.0.1:0 --cluster-key $W/key --duplex-listen 127.0.0.1:0 --hb-timeout 600000 > $W/p.log 2>&1 &
P=$!; sleep 0.5
LP=$(sed -n 's/.*duplex: accepting a secondary on .* (port \([0-9]*\)).*/\1/p' $W/p.log)
$B/cfserver/cfserver --listen 127.0.0.1:0 --cluster-key $W/key --duplex-with 127.0.0.1:$LP --hb-timeout 600000 > $W/s.log 2>&1 &
S=$!
for i in $(seq 100); do grep -q "in sync with the primary" $W/s.log && break; sleep 0.1; done
python3 - $W/s.log <<'PY'
import sys,datetime
t={}
for l in open(sys.argv[1]):
    ts=datetime.datetime.fromisoformat(l.split()[0].rstrip('Z'))
    if 'following the primary' in l: t['a']=ts
    if 'in sync with the primary' in l: t['b']=ts
print(round((t['b']-t['a']).total_seconds()*1000))
PY
kill $S $P; wait 2>/dev/null; rm -rf $W
