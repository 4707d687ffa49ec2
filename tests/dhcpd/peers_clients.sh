#!/usr/bin/env bash
# Real DHCP clients that nobody here wrote, across a veth pair: ISC dhclient and busybox udhcpc
# obtain, renew and release leases from gracefulstop-dhcpd; a SIGHUP reload (new DNS server) is
# seen by the next renewal; the daemon stops on SIGTERM with exit 0 and leaves lease files that
# --check-leases and ISC dhcpd -T accept. Exit 77 (skipped) without root.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=peers_lib.sh
. "$here/peers_lib.sh"
peers_setup clients

# Lease time 10 s: dhclient renews at T1 = 5 s, so a real RENEWING exchange fits in the test.
peers_write_config 10.77.0.1 10
daemon_start || exit 1
mac=$(ip -n "$NS_CLI" -o link show dev "$IF_CLI" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)

peers_client_scripts
bound_in_db() { "$GSDHCPD_BINARY" --dump-leases "$PEERS_LEASES" | grep -q "^$1 $2 "; }
not_bound_in_db() { ! bound_in_db "$@"; }
configured() { ip -n "$NS_CLI" -4 -o addr show dev "$IF_CLI" | grep -q " $1/16 "; }
reaches_server() { ip netns exec "$NS_CLI" busybox ping -c 1 -W 2 "$SRV_ADDR" >/dev/null; }
reload_dns() {
  peers_write_config "$1" 10
  kill -HUP "$DAEMON_PID"
  peers__wait_event 10 "event=reload" && [[ $EVENT == *"ok=true"* ]]
}

dh=(ip netns exec "$NS_CLI" dhclient -4 -v -lf "$PEERS_WORK/dhclient.leases"
  -pf "$PEERS_WORK/dhclient.pid" -sf "$PEERS_WORK/dhclient-script")

# --- ISC dhclient: obtain, renew (after a reload), release -------------------------------------
check "dhclient obtains a lease" bash -c '"$@" >'"$PEERS_WORK"'/dhclient.out 2>&1' _ timeout 30 "${dh[@]}" -1 "$IF_CLI"
check "dhclient reported BOUND" client_event 10 "dhclient BOUND"
addr=$(value ip)
check "dhclient got DNS 10.77.0.1 ($CLIENT_EVENT)" test "$(value dns)" = 10.77.0.1
check "dhclient's address $addr is on its interface" configured "$addr"
check "client reaches the server from $addr" reaches_server
check "the lease $addr $mac is in the database" bound_in_db "$addr" "$mac"
check "SIGHUP reload (DNS 10.77.0.53) ok" reload_dns 10.77.0.53
# dhclient stays in the background and renews by itself at T1 (unicast DHCPREQUEST).
check "dhclient renewed at T1" client_event 15 "dhclient RENEW"
check "the renewal kept $addr" test "$(value ip)" = "$addr"
check "the renewal carries the reloaded DNS ($CLIENT_EVENT)" test "$(value dns)" = 10.77.0.53
check "dhclient releases" bash -c '"$@" >>'"$PEERS_WORK"'/dhclient.out 2>&1' _ timeout 30 "${dh[@]}" -r "$IF_CLI"
check "dhclient reported RELEASE" client_event 10 "dhclient RELEASE"
check "the released lease is no longer bound in the database" not_bound_in_db "$addr" "$mac"

# --- busybox udhcpc: obtain, renew (after another reload), release ------------------------------
ip netns exec "$NS_CLI" busybox udhcpc -i "$IF_CLI" -f -t 5 -s "$PEERS_WORK/udhcpc-script" \
  >"$PEERS_WORK/udhcpc.out" 2>&1 &
udhcpc_pid=$!
check "udhcpc obtains a lease" client_event 15 "udhcpc bound"
addr=$(value ip)
check "udhcpc got DNS 10.77.0.53" test "$(value dns)" = 10.77.0.53
check "udhcpc's address $addr is on its interface" configured "$addr"
check "client reaches the server from $addr" reaches_server
check "the lease $addr $mac is in the database" bound_in_db "$addr" "$mac"
check "SIGHUP reload (DNS 10.77.0.1,10.77.0.54) ok" reload_dns 10.77.0.1,10.77.0.54
kill -USR1 "$udhcpc_pid" # udhcpc: renew now
check "udhcpc renewed" client_event 10 "udhcpc renew"
check "the renewal kept $addr" test "$(value ip)" = "$addr"
check "the renewal carries the reloaded DNS ($CLIENT_EVENT)" test "$(value dns)" = 10.77.0.1
check "... both servers" bash -c '[[ "$1" == *"dns=10.77.0.1 10.77.0.54"* ]]' _ "$CLIENT_EVENT"
kill -USR2 "$udhcpc_pid" # udhcpc: release
check "udhcpc released" client_event 10 "udhcpc deconfig"
# The release reaches the server after the deconfig; the database says when it has.
released() {
  local end=$((SECONDS + 5))
  while ((SECONDS <= end)); do
    not_bound_in_db "$addr" "$mac" && return 0
    sleep 0.05 # no descriptor says when the server has read the datagram: poll, bounded
  done
  return 1
}
check "the released lease is no longer bound in the database" released
kill -TERM "$udhcpc_pid" 2>/dev/null
wait "$udhcpc_pid" 2>/dev/null

# --- SIGTERM: clean exit, files that check ----------------------------------------------------
kill -TERM "$DAEMON_PID"
daemon_wait_exit 15
check "SIGTERM: exit 0 (was $DAEMON_STATUS)" test "$DAEMON_STATUS" = 0
check "drain stage done" log_has "event=stage stage=drain elapsed_ms=[0-9]* outcome=done"
check "two reloads logged" test "$(grep -cE 'event=reload signal=SIGHUP sender_pid=[0-9]+ sender_uid=[0-9]+ ok=true' "$PEERS_LOG")" = 2
check "--check-leases accepts the files" "$GSDHCPD_BINARY" --check-leases "$PEERS_LEASES"
check "ISC dhcpd -T accepts the snapshot" isc_accepts_snapshot
echo "figures: clients=2 (dhclient, udhcpc) leases=2 renewals=2 releases=2 reloads=2"
peers_finish
