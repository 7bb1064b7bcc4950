# SPDX-License-Identifier: MIT
# kv_lib.sh - kvstore (examples/kvstore) processes serving commands, for the tests of the
# application API (test_example_kv.sh, test_example_kv_switch.sh). Sourced after
# tests/lib/harness.sh, with KVSTORE, DATA and CF_ADDR set.
kvargs() { # SYS INST
	echo --cf "$CF_ADDR" --cluster-key "$CF_KEYFILE" --transport "$CF_TRANSPORT" --system "$1" --instance "$2" \
		--data "$DATA" --fence-agent local
}
# serve SYS INST CMD...: a kvstore serving commands from the FIFO $CF_WORK/SYS.in
# (write end kept open here as FD_SYS); answers in SYS.out, log in SYS.log.
serve() {
	local sys=$1 inst=$2 fd
	shift 2
	mkfifo "$CF_WORK/$sys.in"
	# shellcheck disable=SC2046 # kvargs is words without blanks
	"$@" $(kvargs "$sys" "$inst") serve <"$CF_WORK/$sys.in" >"$CF_WORK/$sys.out" 2>"$CF_WORK/$sys.log" &
	eval "PID_$sys=$!"
	track_pid "$!"
	exec {fd}>"$CF_WORK/$sys.in"
	eval "FD_$sys=$fd"
	wait_for 30 grep -q READY "$CF_WORK/$sys.out" || fail "$sys did not start: $(tail -n 5 "$CF_WORK/$sys.log")"
}
answered() { [ "$(wc -l <"$1")" -gt "$2" ]; }
ask() { # SYS COMMAND... → its answer line
	local sys=$1 fdv="FD_$1" n
	shift
	n=$(wc -l <"$CF_WORK/$sys.out")
	echo "$*" >&"${!fdv}"
	wait_for 60 answered "$CF_WORK/$sys.out" "$n" || fail "$sys did not answer '$*'"
	sed -n "$((n + 1))p" "$CF_WORK/$sys.out"
}
expect() { # SYS COMMAND... = ANSWER
	local sys=$1 want=${*: -1} got
	got=$(ask "${@:1:$#-2}")
	[ "$got" = "$want" ] || fail "$sys: '${*:2:$#-3}' answered '$got', expected '$want'"
}
# quit_kv SYS: it leaves the cluster cleanly and exits 0
quit_kv() {
	local sys=$1 fdv="FD_$1" pidv="PID_$1"
	echo quit >&"${!fdv}"
	wait_for 30 sh -c "! kill -0 ${!pidv} 2>/dev/null" || fail "$sys did not quit"
	wait "${!pidv}" || fail "$sys exited $?: $(tail -n 5 "$CF_WORK/$sys.log")"
	grep -q "left the cluster cleanly" "$CF_WORK/$sys.log" || fail "$sys did not leave cleanly"
}
