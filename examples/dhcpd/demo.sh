#!/usr/bin/env bash
# The life of gracefulstop-dhcpd with real clients, in two network namespaces joined by a veth
# pair that this script creates and removes (nothing touches the host's network or files):
#
#   1. serve     ISC dhclient and busybox udhcpc get leases
#   2. reload    SIGHUP with a new DNS server; a client renews and gets it
#   3. restart   SIGTERM in the middle of perfdhcp load, and a restart at once
#   4. check     every ACKed lease is in the database, --check-leases and ISC dhcpd -T agree
#
# Run as root on Debian bookworm: sudo examples/dhcpd/demo.sh   (about 20 s after the build)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) != 0 ]]; then
  echo "demo.sh: run as root (it installs packages and creates network namespaces)" >&2
  exit 1
fi
started=$SECONDS

say() { printf '\n== %s\n' "$*"; }
die() {
  echo "demo.sh: $*" >&2
  exit 1
}

say "dependencies (.ci/install-deps) and the build"
"$root/.ci/install-deps" || die "installing dependencies failed"
build=$root/build-demo
mkdir -p "$build"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRACEFULSTOP_BUILD_TESTS=OFF \
  >"$build/demo-build.log" 2>&1 &&
  cmake --build "$build" --target gracefulstop-dhcpd -j2 >>"$build/demo-build.log" 2>&1 ||
  die "build failed; see $build/demo-build.log"
export GSDHCPD_BINARY=$build/examples/dhcpd/gracefulstop-dhcpd
echo "built $GSDHCPD_BINARY"

# shellcheck source=../../tests/dhcpd/peers_lib.sh
. "$root/tests/dhcpd/peers_lib.sh"
peers_setup demo # namespaces, work directory, and a trap that removes them on every exit
peers_client_scripts
peers_write_config 10.77.0.1 20
echo "namespaces $NS_SRV ($SRV_ADDR on $IF_SRV) and $NS_CLI ($IF_CLI); leases in $PEERS_LEASES"
echo "config:"
sed 's/^/  /' "$PEERS_CONF"

show_log() { # the daemon's log lines since line $1
  tail -n +"$1" "$PEERS_LOG" | grep -vE '^event=(signal|stage-start|installed|uninstalled)' |
    sed 's/^/  daemon: /'
}
mark() { wc -l <"$PEERS_LOG" | awk '{ print $1 + 1 }'; }

say "1. serve: the daemon starts; dhclient and udhcpc ask for leases"
daemon_start || die "the daemon did not start"
show_log 1
dh=(ip netns exec "$NS_CLI" dhclient -4 -lf "$PEERS_WORK/dhclient.leases"
  -pf "$PEERS_WORK/dhclient.pid" -sf "$PEERS_WORK/dhclient-script")
timeout 30 "${dh[@]}" -1 "$IF_CLI" >/dev/null 2>&1
client_event 10 "dhclient BOUND" || die "dhclient got no lease"
echo "  $CLIENT_EVENT"
dhclient_addr=$(value ip)
timeout 30 "${dh[@]}" -r "$IF_CLI" >/dev/null 2>&1 # give the interface to udhcpc
client_event 10 "dhclient RELEASE" && echo "  $CLIENT_EVENT (released, for udhcpc's turn)"
ip netns exec "$NS_CLI" busybox udhcpc -i "$IF_CLI" -f -t 5 -s "$PEERS_WORK/udhcpc-script" \
  >"$PEERS_WORK/udhcpc.out" 2>&1 &
udhcpc=$!
client_event 15 "udhcpc bound" || die "udhcpc got no lease"
echo "  $CLIENT_EVENT"
udhcpc_addr=$(value ip)
ip netns exec "$NS_CLI" busybox ping -c 1 -W 2 "$SRV_ADDR" >/dev/null &&
  echo "  the client reaches the server from $udhcpc_addr"

say "2. reload: DNS 10.77.0.1 -> 10.77.0.53, then SIGHUP; udhcpc renews"
from=$(mark)
peers_write_config 10.77.0.53 20
kill -HUP "$DAEMON_PID"
peers__wait_event 10 "event=reload" || die "no reload reported"
show_log "$from"
kill -USR1 "$udhcpc" # udhcpc: renew now
client_event 10 "udhcpc renew" || die "udhcpc did not renew"
echo "  $CLIENT_EVENT"
renewed_dns=$(value dns)
kill -TERM "$udhcpc" 2>/dev/null
wait "$udhcpc" 2>/dev/null

say "3. restart under load: perfdhcp (a relay, 400 exchanges/s), SIGTERM after 1.5 s, restart"
netns_client_addr 10.77.0.2/16 || die "cannot address the relay"
peers_write_config 10.77.0.53 3600
kill -HUP "$DAEMON_PID" && peers__wait_event 10 "event=reload" # long leases for the load
perfdhcp_start "$PEERS_WORK/perf.out" 400 4 1000
sleep 1.5 # let the load run
from=$(mark)
stop_started=$SECONDS
kill -TERM "$DAEMON_PID"
daemon_wait_exit 15 || die "the daemon did not stop"
term_status=$DAEMON_STATUS
show_log "$from"
daemon_start || die "the restart failed"
echo "  restarted: $(grep 'event=ready' "$PEERS_LOG" | tail -n 1 | grep -o 'leases=[0-9]*') loaded" \
  "$((SECONDS - stop_started)) s after the SIGTERM"
perfdhcp_wait
kill -TERM "$DAEMON_PID"
daemon_wait_exit 15
final_status=$DAEMON_STATUS

say "4. check: every address perfdhcp got a DHCPACK for, and the files themselves"
perfdhcp_acks "$PEERS_WORK/perf.out" >"$PEERS_WORK/acks"
acked=$(wc -l <"$PEERS_WORK/acks")
lost=$(lease_db_missing "$PEERS_WORK/acks")
check_out=$("$GSDHCPD_BINARY" --check-leases "$PEERS_LEASES" 2>&1)
check_rc=$?
echo "  --check-leases: $check_out (exit $check_rc)"
if isc_accepts_snapshot; then isc="accepted (${ISC_VERDICT:-not installed})"; else isc="REJECTED"; fi
echo "  ISC dhcpd -T: $isc"
echo "  --dump-leases (first 3):"
"$GSDHCPD_BINARY" --dump-leases "$PEERS_LEASES" | head -n 3 | sed 's/^/    /'

ok=1
[[ $term_status == 0 && $final_status == 0 && $lost == 0 && $check_rc == 0 && $isc != REJECTED &&
  $renewed_dns == 10.77.0.53 ]] || ok=0
say "summary"
cat <<EOF
  leases served:        dhclient $dhclient_addr, udhcpc $udhcpc_addr
  reload (SIGHUP):      renewal got DNS $renewed_dns
  SIGTERM under load:   exit $term_status, then restarted; final stop exit $final_status
  perfdhcp:             $(perfdhcp_stat "$PEERS_WORK/perf.out" REQUEST-ACK "received packets") ACKs received
  ACKed leases checked: $acked, lost: $lost
  --check-leases:       exit $check_rc; ISC dhcpd -T: $isc
  result:               $( ((ok)) && echo "OK" || echo "FAILED") in $((SECONDS - started)) s (namespaces removed on exit)
EOF
((ok))
