#!/usr/bin/env bash
# gracefulstop-dhcpd under perfdhcp load (perfdhcp as a relay agent across a veth pair):
#  - SIGHUP reloads in the middle of the load drop no request (perfdhcp counts no drops);
#  - SIGTERM in the middle of the load, three times, each followed by a restart: every stop exits
#    0 with its drain done, and every address perfdhcp got a DHCPACK for is, with its client's
#    MAC, a bound lease in the database; --check-leases and ISC dhcpd -T accept the files.
# Exit 77 (skipped) without root.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=peers_lib.sh
. "$here/peers_lib.sh"
peers_setup restart
netns_client_addr 10.77.0.2/16 || exit 1 # perfdhcp is a relay agent: it needs an address
peers_write_config 10.77.0.1 3600
daemon_start || exit 1

# --- SIGHUP under load ------------------------------------------------------------------------
# -W: after the last request, wait 1 s for late answers, so that an answer that comes late is
# not counted as a drop.
perfdhcp_start "$PEERS_WORK/hup.out" 300 4 400 -W 1000000
for dns in 10.77.0.53 10.77.0.54 10.77.0.55; do
  sleep 0.8 # pacing: some load between reloads (nothing to wait for)
  peers_write_config "$dns" 3600
  kill -HUP "$DAEMON_PID"
  peers__wait_event 10 "event=reload"
  check "reload to DNS $dns under load: $EVENT" grep -qxE 'event=reload signal=SIGHUP sender_pid=[0-9]+ sender_uid=[0-9]+ ok=true' <<<"$EVENT"
done
perfdhcp_wait
reloads=$(grep -cE 'event=reload signal=SIGHUP sender_pid=[0-9]+ sender_uid=[0-9]+ ok=true' "$PEERS_LOG")
check "three reloads, all ok ($reloads)" test "$reloads" = 3
for exchange in DISCOVER-OFFER REQUEST-ACK; do
  sent=$(perfdhcp_stat "$PEERS_WORK/hup.out" "$exchange" "sent packets")
  received=$(perfdhcp_stat "$PEERS_WORK/hup.out" "$exchange" "received packets")
  drops=$(perfdhcp_stat "$PEERS_WORK/hup.out" "$exchange" "drops")
  check "$exchange during reloads: $sent sent, $received answered, drops=$drops" test "${drops:-x}" = 0 -a "${sent:-0}" -gt 500
done
perfdhcp_acks "$PEERS_WORK/hup.out" >"$PEERS_WORK/acks"
check "perfdhcp lists its ACKs ($(wc -l <"$PEERS_WORK/acks"))" test "$(wc -l <"$PEERS_WORK/acks")" -gt 100

# --- SIGTERM under load, then restart, three times --------------------------------------------
perfdhcp_start "$PEERS_WORK/term.out" 400 6 1500
restarts=0
for round in 1 2 3; do
  sleep 1 # pacing: a second of load before the stop (nothing to wait for)
  kill -TERM "$DAEMON_PID"
  daemon_wait_exit 15
  check "round $round: SIGTERM under load exits 0 (was $DAEMON_STATUS)" test "$DAEMON_STATUS" = 0
  drained=$(grep 'event=served' "$PEERS_LOG" | tail -n 1 | sed -n 's/.* drained=\([0-9]*\).*/\1/p')
  check "round $round: drain done (answered $drained waiting requests)" \
    bash -c "grep 'event=stage stage=drain' '$PEERS_LOG' | tail -n 1 | grep -q 'outcome=done'"
  check "round $round: check-leases between runs" "$GSDHCPD_BINARY" --check-leases "$PEERS_LEASES"
  daemon_start && restarts=$((restarts + 1))
done
perfdhcp_wait
kill -TERM "$DAEMON_PID"
daemon_wait_exit 15
check "final SIGTERM exits 0" test "$DAEMON_STATUS" = 0

perfdhcp_acks "$PEERS_WORK/term.out" >>"$PEERS_WORK/acks"
sort -u -o "$PEERS_WORK/acks" "$PEERS_WORK/acks"
acked=$(wc -l <"$PEERS_WORK/acks")
lost=$(lease_db_missing "$PEERS_WORK/acks")
check "every ACKed lease is in the database: $acked checked, $lost lost" test "$lost" = 0 -a "$acked" -gt 500
check "--check-leases accepts the files" "$GSDHCPD_BINARY" --check-leases "$PEERS_LEASES"
check "ISC dhcpd -T accepts the snapshot" isc_accepts_snapshot
served=$(grep -o 'event=served received=[0-9]*' "$PEERS_LOG" | awk -F= '{ n += $3 } END { print n + 0 }')
echo "figures: requests_served=$served restarts=$restarts sigterm_stops=4 reloads=$reloads leases_checked=$acked leases_lost=$lost ${ISC_VERDICT:-}"
peers_finish
