#!/usr/bin/env bash
# SIGKILL at random moments, many times, under perfdhcp load: no stage runs, nothing is flushed
# on the way out, and yet every restart succeeds and every address perfdhcp got a DHCPACK for is
# a bound lease of the same client afterwards, because the journal record of each lease is
# written (and fdatasync'ed) before its ACK is sent. Some kills hit the daemon during start-up.
# GSDHCPD_KILL_ROUNDS (default 30, at least 20 run) and GSDHCPD_KILL_SEED make a run repeatable.
# Exit 77 (skipped) without root.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=peers_lib.sh
. "$here/peers_lib.sh"
peers_setup kill
netns_client_addr 10.77.0.2/16 || exit 1
peers_write_config 10.77.0.1 3600

max_rounds=${GSDHCPD_KILL_ROUNDS:-30}
seed=${GSDHCPD_KILL_SEED:-$$}
RANDOM=$seed
echo "seed=$seed rounds=$max_rounds"

daemon_start || exit 1
perfdhcp_start "$PEERS_WORK/perf.out" 300 10 2000
kills=0 restarts=0 failed_restarts=0 early_kills=0 torn_tails=0
# Kills the running daemon, checks the files as a restart would find them.
kill_and_check() {
  kill -KILL "$DAEMON_PID"
  daemon_wait_exit 10 || return 1
  kills=$((kills + 1))
  local out
  out=$("$GSDHCPD_BINARY" --check-leases "$PEERS_LEASES" 2>&1)
  check "round $round: $1 (status $DAEMON_STATUS); check-leases: $out" test $? = 0
  [[ $out == *torn_tail_bytes* ]] && torn_tails=$((torn_tails + 1))
  return 0
}
for ((round = 1; round <= max_rounds; round++)); do
  sleep "0.$((RANDOM % 5))$((RANDOM % 10))" # the random moment: 0-0.49 s of serving
  kill_and_check "killed while serving" || break
  if ((round % 5 == 0)); then
    # And one during start-up: the next instance is killed before it is ready (or just after).
    daemon_spawn
    sleep "0.0$((RANDOM % 10))"
    early_kills=$((early_kills + 1))
    kill_and_check "killed during start-up" || break
  fi
  if daemon_start; then
    restarts=$((restarts + 1))
  else
    failed_restarts=$((failed_restarts + 1))
    check "round $round: restart after SIGKILL" false
    break
  fi
done
perfdhcp_wait
kill -TERM "$DAEMON_PID"
daemon_wait_exit 15
check "final SIGTERM exits 0" test "$DAEMON_STATUS" = 0
check "at least 20 kills ($kills), every restart ready ($restarts)" test "$kills" -ge 20 -a "$failed_restarts" = 0

perfdhcp_acks "$PEERS_WORK/perf.out" >"$PEERS_WORK/acks"
acked=$(wc -l <"$PEERS_WORK/acks")
lost=$(lease_db_missing "$PEERS_WORK/acks")
check "every ACKed lease survived: $acked checked, $lost lost" test "$lost" = 0 -a "$acked" -gt 200
check "--check-leases accepts the files" "$GSDHCPD_BINARY" --check-leases "$PEERS_LEASES"
check "ISC dhcpd -T accepts the snapshot" isc_accepts_snapshot
acks_received=$(perfdhcp_stat "$PEERS_WORK/perf.out" REQUEST-ACK "received packets")
echo "figures: kills=$kills (during start-up: $early_kills) restarts=$restarts failed_restarts=$failed_restarts torn_tails_seen=$torn_tails acks_received=$acks_received leases_checked=$acked leases_lost=$lost seed=$seed"
peers_finish
