#!/bin/bash
# cfnode --rate N: a bank begins at most N transactions a second. 11 transactions
# at 10 a second span at least the 10 intervals between their begins (1 s: cfnode
# sleeps at least that long on any machine, so only a floor is checked). The harness gives every
# bank without a rate of its own CF_TEST_BANK_RATE (the rig sets it): checked the
# same way. Out-of-range rates are usage errors.
. "$(dirname "$0")/node_lib.sh"

# elapsed_of JSON-LINES: the bank report's elapsed_s
elapsed_of() { "$CF_PYTHON" -c '
import json, sys
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{") and "elapsed_s" in line:
        print(json.loads(line)["elapsed_s"]); break
' ; }
paced() { # LABEL CFNODE-ARGS...: 11 transactions, at least 1 s
	local label=$1 out el
	shift
	out=$(run_node SYS1 NTS001 --workload bank --txns 11 --json "$@" 2>&1) || fail "$label: cfnode exited $?: $out"
	el=$(elapsed_of <<<"$out")
	[ -n "$el" ] || fail "$label: no elapsed_s in the report: $out"
	"$CF_PYTHON" -c "import sys; sys.exit(0 if $el >= 0.95 else 1)" ||
		fail "$label: 11 transactions at 10 a second took ${el} s, under the 1 s their pacing needs"
	log "$label: 11 transactions in $el s"
}

for bad in 0 1000001 -5 ten; do
	out=$(bounded 20 "$CFNODE" --cf 127.0.0.1:1 --cluster-key "$CF_KEYFILE" --system S --instance I \
		--data "$DATA" --workload bank --rate "$bad" 2>&1)
	rc=$?
	[ "$rc" -eq 2 ] || fail "--rate $bad exited $rc, expected 2: $out"
	grep -q -- "--rate must be" <<<"$out" || fail "--rate $bad: message lacks why: $out"
done

start_cf
mkdata 16 100
CF_TEST_BANK_RATE= paced "--rate 10" --rate 10
CF_TEST_BANK_RATE=10 paced "CF_TEST_BANK_RATE=10"
verify_data
pass "a bank paced by --rate and by CF_TEST_BANK_RATE; bad rates refused"
