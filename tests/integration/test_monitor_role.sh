#!/bin/bash
# SPDX-License-Identifier: MIT
# The monitor role: a connection authenticated with the monitor key
# gets no grants and may request METRICS only. JOIN, CONN_ATTACH, INST_OPEN,
# INST_ATTACH, POLICY_SET, RECOVER, RESTART_INFO and GOODBYE are each refused
# with a STATUS that says why, and the CF closes the connection; a one-sided
# READ with a console's grant is refused (grants are checked per connection);
# the monitor key does not open a console or system session (cfctl status,
# policy, recover: "refused the cluster key"). Nothing changes meanwhile: the
# system, its instance and the policy are as they were, and the CF counts the
# refusals.
. "$(dirname "$0")/../lib/harness.sh"
require_transport
require_bin CFSERVER CF_TCLIENT CFCTL
TC=$CF_TCLIENT
MKEY=$CF_WORK/monitor.key
"$CFCTL" keygen --out "$MKEY" || fail "keygen"
export CF_MONITOR_KEYFILE=$MKEY
start_cfserver --hb-timeout 600000 --monitor-key "$MKEY" || fail "cfserver did not start"
start_bg a "$TC" hold SYSA NTSA
wait_for 10 grep -q READY "$CF_WORK/a.log" || fail "SYSA not ready"
before=$(cf_inst_state NTSA) || fail "status of NTSA"
ops=(join attach inst-open inst-attach policy recover restart-info goodbye)
for op in "${ops[@]}"; do
	out=$(bounded 10 "$TC" monitor "$op" 2>&1) || fail "monitor $op: $out"
	case "$out" in
	"REFUSED -1 "*"refused: a monitor connection may only request metrics; closing"*CLOSED) ;;
	*) fail "monitor $op: $out" ;;
	esac
	log "monitor $op: $(head -1 <<<"$out")"
done
out=$(bounded 10 "$TC" monitor read 2>&1)
rc=$?
# a console's rkey, used from the monitor connection, is refused: over tcp the CF checks every
# READ against the sender's grants; over verbs the grant's MR is in a protection domain of the
# console's connection alone, so the monitor's QP cannot use it (docs/verbs.md, "Server")
[ $rc = 0 ] || fail "monitor read: $out"
case "$out" in "REFUSED -13 "*) ;; *) fail "monitor read: $out" ;; esac
log "monitor read: $out"
# the monitor key opens no other role: the CF proves the cluster key, which the monitor cannot check
ctl() { bounded 20 "$CFCTL" --cf "$CF_ADDR" --transport "$CF_TRANSPORT" --cluster-key "$MKEY" "$@" 2>&1; }
for args in "status" "policy operator" "recover NTSA"; do
	# shellcheck disable=SC2086
	out=$(ctl $args)
	rc=$?
	[ "$rc" = 77 ] && [[ $out == *"refused the cluster key"* ]] || fail "cfctl $args with the monitor key: rc $rc: $out"
done
out=$(bounded 10 "$TC" monitor metrics) || fail "monitor metrics: $out"
# nothing changed: the instance, the policy, the system
after=$(cf_inst_state NTSA) || fail "status of NTSA"
[ "$before" = "$after" ] || fail "NTSA changed: $before -> $after"
kill -0 "$BG_PID" || fail "SYSA died"
pol=$(cf_status_field cf policy) || fail "status"
[ "$pol" = auto ] || fail "the policy changed: $pol"
! grep -q "EVENT" "$CF_WORK/a.log" || fail "SYSA got an event: $(grep EVENT "$CF_WORK/a.log")"
m=$(bounded 20 "$CFCTL" metrics --cf "$CF_ADDR" --transport "$CF_TRANSPORT" --key "$MKEY") || fail "cfctl metrics"
grep -q '^cfplex_monitor_refused_total 8$' <<<"$m" || fail "refusals not counted: $(grep monitor_refused <<<"$m")"
grep -q '^cfplex_systems{state="active"} 1$' <<<"$m" || fail "systems: $(grep cfplex_systems <<<"$m")"
grep -q '^cfplex_joins_total 1$' <<<"$m" || fail "a monitor JOIN was counted"
[ "$(grep -c 'monitor sent .*: refused, closing' "$CF_WORK/cfserver.log")" = 8 ] || fail "cfserver did not log the refusals"
pass "the monitor key reads the metrics and nothing else"
