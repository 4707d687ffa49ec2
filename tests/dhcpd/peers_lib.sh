# shellcheck shell=bash
# Shared by the peer tests (peers_*.sh) and examples/dhcpd/demo.sh: gracefulstop-dhcpd in one
# network namespace, real DHCP clients (ISC dhclient, busybox udhcpc, Kea's perfdhcp) in the
# other, joined by a veth pair from netns.sh. Source it, then call peers_setup.
#
#   peers_setup NAME             root + tools check (exit 77 = skipped, with the reason), a work
#                                directory, a namespace pair, cleanup on every exit path
#   peers_write_config DNS LEASE_TIME     the daemon's config file ($PEERS_CONF)
#   daemon_start [ARGS...]       starts the daemon in the server namespace, waits for
#                                event=ready; DAEMON_PID (daemon_spawn: without waiting)
#   daemon_wait_exit SECONDS     waits for the daemon to end; DAEMON_STATUS
#   daemon_kill_hard             SIGKILL and reap
#   perfdhcp_start OUT RATE SECONDS CLIENTS [ARGS...]   perfdhcp as a relay, in the background
#   perfdhcp_acks OUT            "ADDRESS MAC" for each address perfdhcp got a DHCPACK for
#   lease_db_missing ACKS        how many "ADDRESS MAC" lines are not bound leases in the DB
#   isc_accepts_snapshot         ISC dhcpd -T reads the snapshot without complaint
#   peers_client_scripts         dhclient/udhcpc scripts that only touch the namespace's interface;
#                                client_event SECONDS PREFIX waits for what they report
#   check DESCRIPTION CMD...     one assertion; peers_finish reports and sets the exit status
#
# Everything the scripts wait for is read from a descriptor with a timeout (the daemon's log
# comes through a FIFO), never guessed with a sleep.

peers__here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=netns.sh
. "$peers__here/netns.sh"

PEERS_FAILURES=0
DAEMON_PID=""
PERFDHCP_PIDS=()

check() {
  local what=$1
  shift
  if "$@"; then
    echo "ok: $what"
  else
    echo "FAIL: $what" >&2
    PEERS_FAILURES=$((PEERS_FAILURES + 1))
  fi
}

peers_finish() {
  if ((PEERS_FAILURES)); then
    echo "$PEERS_FAILURES check(s) failed; daemon log: " >&2
    sed 's/^/  | /' "$PEERS_LOG" >&2
    exit 1
  fi
  echo "all checks passed"
  exit 0
}

peers_skip() {
  echo "SKIPPED: $*"
  exit 77
}

peers__cleanup() {
  local pid
  for pid in "${PERFDHCP_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  [[ -n $DAEMON_PID ]] && kill -KILL "$DAEMON_PID" 2>/dev/null
  [[ -n ${PEERS_PREFIX:-} ]] && netns_pair_destroy "$PEERS_PREFIX"
  exec 3>&- 4>&-
  [[ -n ${PEERS_WORK:-} && -d $PEERS_WORK ]] && rm -rf "$PEERS_WORK"
  return 0
}

peers_setup() {
  local name=$1
  : "${GSDHCPD_BINARY:?set GSDHCPD_BINARY to the gracefulstop-dhcpd executable}"
  [[ -x $GSDHCPD_BINARY ]] || peers_skip "$GSDHCPD_BINARY is not built"
  netns_require_root 2>&1 || peers_skip "network namespaces need root (and CAP_SYS_ADMIN)"
  local tool
  for tool in dhclient busybox perfdhcp; do
    command -v "$tool" >/dev/null || peers_skip "$tool is not installed (.ci/install-deps installs it)"
  done
  PEERS_WORK=$(mktemp -d "/tmp/gsdhcpd-$name-XXXXXX")
  PEERS_PREFIX=$(netns_unique_prefix "gsd$name") || exit 1
  trap peers__cleanup EXIT
  trap 'exit 1' INT TERM HUP
  netns_pair_create "$PEERS_PREFIX" || exit 1
  PEERS_LEASES=$PEERS_WORK/leases
  PEERS_CONF=$PEERS_WORK/dhcpd.conf
  PEERS_LOG=$PEERS_WORK/daemon.log
  mkdir -p "$PEERS_LEASES"
  : >"$PEERS_LOG"
  # The daemon's log reaches us through this FIFO, held open read-write so that opening it never
  # blocks and a read can time out.
  mkfifo "$PEERS_WORK/events"
  exec 3<>"$PEERS_WORK/events"
}

# The server side has 10.77.0.1/16; clients get addresses from 10.77.1.1 up.
peers_write_config() {
  local dns=$1 lease_time=$2
  cat >"$PEERS_CONF" <<EOF
# gracefulstop-dhcpd on the server side of the veth pair
interface = $IF_SRV
subnet = 10.77.0.0/16
pool = 10.77.1.1-10.77.8.254
router = 10.77.0.1
dns = $dns
lease-time = $lease_time
lease-dir = $PEERS_LEASES
EOF
}

# Waits up to $1 seconds for a line on the events FIFO starting with $2; the line in $EVENT.
peers__wait_event() {
  local timeout=$1 prefix=$2 end=$((SECONDS + $1))
  while ((SECONDS <= end)); do
    IFS= read -r -t "$timeout" -u 3 EVENT || return 1
    [[ $EVENT == "$prefix"* ]] && return 0
  done
  return 1
}

daemon_start() {
  daemon_spawn "$@"
  daemon_wait_ready
}

daemon_wait_ready() {
  if ! peers__wait_event 10 "event=ready"; then
    echo "daemon did not become ready: $(tail -n 3 "$PEERS_LOG")" >&2
    return 1
  fi
}

# Starts the daemon without waiting for it to be ready.
daemon_spawn() {
  # The log copier: every line to the log file; ready and end-of-output to the FIFO.
  ip netns exec "$NS_SRV" "$GSDHCPD_BINARY" --config "$PEERS_CONF" "$@" \
    2> >(
      while IFS= read -r line; do
        printf '%s\n' "$line" >>"$PEERS_LOG"
        [[ $line == event=ready* || $line == event=exit* || $line == event=reload* ]] && printf '%s\n' "$line" >&3
      done
      printf 'eof\n' >&3
    ) 3>&- &
  DAEMON_PID=$!
}

daemon_wait_exit() {
  local timeout=$1
  if ! peers__wait_event "$timeout" "eof"; then
    echo "daemon still running after ${timeout}s" >&2
    DAEMON_STATUS=timeout
    return 1
  fi
  wait "$DAEMON_PID"
  DAEMON_STATUS=$?
  DAEMON_PID=""
}

daemon_kill_hard() {
  kill -KILL "$DAEMON_PID"
  daemon_wait_exit 10
}

# perfdhcp acts as a relay agent: it needs an address on the client side (netns_client_addr).
perfdhcp_start() {
  local out=$1 rate=$2 seconds=$3 clients=$4
  shift 4
  ip netns exec "$NS_CLI" perfdhcp -4 -l "$IF_CLI" -r "$rate" -p "$seconds" -R "$clients" \
    -x l "$@" "$SRV_ADDR" >"$out" 2>&1 &
  PERFDHCP_PIDS+=($!)
  PERFDHCP_PID=$!
}

perfdhcp_wait() {
  wait "$PERFDHCP_PID"
  # 0, or 3 when some exchanges got no answer (the server was down for part of the run).
}

# "client_id,address," lines after "Leases for REQUEST-ACK"; client_id is 01 + the MAC.
perfdhcp_acks() {
  awk -F, '
    /^\*\*\*Leases for REQUEST-ACK/ { on = 1; next }
    on && /^\*\*\*/ { on = 0 }
    on && $1 ~ /^01[0-9a-f]+$/ && $2 != "" {
      mac = ""
      for (i = 3; i <= length($1); i += 2) mac = mac (mac == "" ? "" : ":") substr($1, i, 2)
      print $2, mac
    }' "$1" | sort -u
}

# "sent packets" / "received packets" / "drops" of one exchange ("DISCOVER-OFFER" or
# "REQUEST-ACK") in perfdhcp's final statistics.
perfdhcp_stat() {
  local out=$1 exchange=$2 what=$3
  awk -v ex="$exchange" -v what="$what" '
    $0 ~ "^\\*\\*\\*Statistics for: " ex { on = 1; next }
    on && index($0, what ": ") == 1 { sub(what ": ", ""); print $1; exit }' "$out"
}

lease_db_missing() {
  local acks=$1 dump
  dump=$("$GSDHCPD_BINARY" --dump-leases "$PEERS_LEASES") || {
    echo "dump failed" >&2
    wc -l <"$acks"
    return
  }
  awk 'NR == FNR { bound[$1] = $2; next } !($1 in bound) || bound[$1] != $2 { n++; print "lost: " $0 > "/dev/stderr" } END { print n + 0 }' \
    <(printf '%s\n' "$dump") "$acks"
}

isc_accepts_snapshot() {
  local conf=$PEERS_WORK/isc.conf copy=$PEERS_WORK/isc.leases out
  [[ -x /usr/sbin/dhcpd ]] || {
    echo "note: /usr/sbin/dhcpd (isc-dhcp-server) not installed; -T not run"
    return 0
  }
  printf 'authoritative;\nsubnet 10.77.0.0 netmask 255.255.0.0 {\n  range 10.77.1.1 10.77.8.254;\n}\n' >"$conf"
  # -T rewrites the file it tests; give it a copy.
  cp "$PEERS_LEASES/leases.snapshot" "$copy"
  out=$(/usr/sbin/dhcpd -4 -T -cf "$conf" -lf "$copy" 2>&1)
  # dhcpd -T exits 0 even for a corrupt file: the verdict is in what it says.
  if [[ $out == *"Wrote "*" leases to leases file."* && $out != *orrupt* ]]; then
    ISC_VERDICT=$(grep -o 'Wrote [0-9]* leases to leases file.' <<<"$out")
    return 0
  fi
  printf '%s\n' "$out" >&2
  return 1
}

log_has() { grep -q -- "$1" "$PEERS_LOG"; }

# Client scripts for dhclient (-sf) and udhcpc (-s) in $PEERS_WORK that touch nothing but the
# client namespace's interface (never the host's resolv.conf), and report each event on a FIFO
# (fd 4): client_event SECONDS PREFIX waits for one, value KEY reads a field of it.
peers_client_scripts() {
  mkfifo "$PEERS_WORK/client-events"
  exec 4<>"$PEERS_WORK/client-events"
  cat >"$PEERS_WORK/dhclient-script" <<SCRIPT
#!/bin/sh
echo "dhclient \$reason ip=\$new_ip_address dns=\$new_domain_name_servers" >"$PEERS_WORK/client-events"
case "\$reason" in
  BOUND|RENEW|REBIND|REBOOT) ip addr flush dev "\$interface"; ip addr add "\$new_ip_address/\$new_subnet_mask" dev "\$interface" ;;
  EXPIRE|FAIL|RELEASE|STOP) ip addr flush dev "\$interface" ;;
esac
exit 0
SCRIPT
  cat >"$PEERS_WORK/udhcpc-script" <<SCRIPT
#!/bin/sh
echo "udhcpc \$1 ip=\$ip dns=\$dns" >"$PEERS_WORK/client-events"
case "\$1" in
  bound|renew) ip addr flush dev "\$interface"; ip addr add "\$ip/\$mask" dev "\$interface" ;;
  deconfig) ip addr flush dev "\$interface" ;;
esac
exit 0
SCRIPT
  chmod +x "$PEERS_WORK/dhclient-script" "$PEERS_WORK/udhcpc-script"
}

# Waits up to $1 s for a client event starting with $2; the line in $CLIENT_EVENT.
client_event() {
  local end=$((SECONDS + $1))
  while ((SECONDS <= end)); do
    IFS= read -r -t "$1" -u 4 CLIENT_EVENT || return 1
    [[ $CLIENT_EVENT == "$2"* ]] && return 0
  done
  return 1
}
value() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$CLIENT_EVENT"; }
