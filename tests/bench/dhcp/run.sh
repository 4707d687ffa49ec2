#!/usr/bin/env bash
# DHCP benchmarks: gracefulstop-dhcpd side by side with ISC dhcpd and Kea, in a pair of network
# namespaces joined by a veth (tests/dhcpd/netns.sh). Needs root.
#
#   tests/bench/dhcp/run.sh [--quick] [--out DIR] [--build DIR]
#                           [--dhcpd PATH] [--probe PATH] [--leasegen PATH] [--workdir DIR]
#                           [--tests throughput,restart,sigterm] [--servers ours,isc,kea]
#                           [--rates 1000,4000,8000,16000]
#
#   --build DIR   a CMake build directory of this tree: the three programs below are found in it
#   --dhcpd       gracefulstop-dhcpd; without it (and without --build) only the peers are measured
#   --probe       gsdhcp_bench_probe, --leasegen gsdhcp_bench_leases (tests/bench/dhcp)
#   --workdir     where lease files are written (default: a new directory under $TMPDIR or /tmp).
#                 It must be a disk file system for the fsync figures to mean anything.
#   --quick       a smoke pass of a few seconds: tiny lease counts, one short run each
#   --tests, --servers  a subset of the measurements or of the servers (default: all)
#   --rates       the offered rates of the throughput runs (default 1000,4000,8000,16000;
#                 quick: 1000)
#
# Writes DIR/dhcp.md (tables, ratios to the best peer of the same run) and DIR/dhcp.csv.
# Measurements:
#   1. throughput: DORA exchanges per second answered, perfdhcp acting as a relay from the
#      client namespace, at each offered rate, median of 3 runs, each with empty lease files;
#   2. restart: with N leases on disk, a probe runs DORA after DORA; the server gets SIGTERM and
#      is started again at once; downtime = first ACK after the restart - last ACK before SIGTERM;
#   3. SIGTERM under perfdhcp load: time to exit, then every lease perfdhcp saw ACKed is looked
#      up in the server's lease store, and the store is checked by the server's own tool.
# Exit status: 0 when every measurement was taken and gracefulstop-dhcpd lost no ACKed lease;
# 77 when not root or namespaces are unavailable (a skip for ctest); 1 otherwise.
set -uo pipefail
export LC_ALL=C # $EPOCHREALTIME with a '.', and sort/awk without surprises

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../../dhcpd/netns.sh
. "$here/../../dhcpd/netns.sh"

# ---- arguments ---------------------------------------------------------------------------------
# The command as given, for the report; paths inside the source tree relative to its top.
root=$(cd "$here/../../.." && pwd)
command_line="tests/bench/dhcp/run.sh"
for arg in "$@"; do command_line+=" ${arg#"$root"/}"; done
quick=0 out="" build="" dhcpd="" probe="" leasegen="" workdir="" tests=throughput,restart,sigterm
servers_wanted=ours,isc,kea rates_wanted=""
usage() {
  sed -n '2,/^set -uo/p' "$0" | sed -e '/^set -uo/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}
while (($#)); do
  case $1 in
  --quick) quick=1 ;;
  --out | --build | --dhcpd | --probe | --leasegen | --workdir | --tests | --servers | --rates)
    (($# >= 2)) || {
      echo "run.sh: $1 needs a value" >&2
      usage
    }
    case $1 in
    --servers) servers_wanted=$2 ;;
    --rates) rates_wanted=$2 ;;
    *) declare "${1#--}=$2" ;;
    esac
    shift
    ;;
  -h | --help) usage ;;
  *)
    echo "run.sh: unknown argument '$1'" >&2
    usage
    ;;
  esac
  shift
done
[[ -n $out ]] || out=$PWD/bench-out/dhcp
find_built() { # NAME: the first executable of that name under $build
  [[ -n $build ]] || return 0
  find "$build" -type f -name "$1" -perm -u+x 2>/dev/null | head -n 1
}
[[ -n $dhcpd ]] || dhcpd=$(find_built gracefulstop-dhcpd)
[[ -n $probe ]] || probe=$(find_built gsdhcp_bench_probe)
[[ -n $leasegen ]] || leasegen=$(find_built gsdhcp_bench_leases)
for tool in probe leasegen; do
  if [[ -z ${!tool} || ! -x ${!tool} ]]; then
    echo "run.sh: --$tool: no executable ('${!tool}'); build tests/bench/dhcp or pass --build DIR" >&2
    exit 1
  fi
done
if [[ -n $dhcpd && ! -x $dhcpd ]]; then
  echo "run.sh: --dhcpd: '$dhcpd' is not an executable" >&2
  exit 1
fi

netns_require_root || exit 77
command -v perfdhcp >/dev/null || {
  echo "run.sh: perfdhcp (Debian package kea-admin) is needed to drive the servers" >&2
  exit 1
}

# ---- parameters ---------------------------------------------------------------------------------
if ((quick)); then
  rates=(1000) runs=1 period=1 restart_leases=1000 restart_runs=1 load_rate=500 load_before=0.5
else
  rates=(1000 4000 8000 16000) runs=3 period=5 restart_leases=100000 restart_runs=3 load_rate=1000 load_before=2
fi
if [[ -n $rates_wanted ]]; then
  read -r -a rates <<<"${rates_wanted//,/ }"
  for rate in "${rates[@]}"; do
    [[ $rate =~ ^[1-9][0-9]{0,5}$ ]] || {
      echo "run.sh: --rates: '$rate' is not a rate per second (1-999999)" >&2
      exit 2
    }
  done
fi
lease_time=3600
# Throughput: an empty /16 with 25,600 addresses, room for every client of a run (4,000/s for 5 s)
# without a pool size at which ISC dhcpd slows down (see dhcp.md).
tp_subnet=10.77.0.0/16 tp_first=10.77.1.0 tp_last=10.77.100.255 tp_pool_size=25600
# A run is cut short at high rates so that it never needs more addresses than the pool has.
period_for() { # RATE -> seconds
  local p=$((tp_pool_size / $1))
  ((p > period)) && p=$period
  ((p < 1)) && p=1
  echo "$p"
}
# Restart and SIGTERM: 100,000 leases need more than a /16. A /14 around the server's /16, with a
# pool of 131,053 addresses in its upper half (clear of the server's and the relays' addresses),
# holds them with 31,000 to spare. The leases on disk take the start of the pool.
big_subnet=10.76.0.0/14 big_first=10.78.0.10 big_last=10.79.255.250
relay_perfdhcp=10.77.0.2 relay_probe=10.77.0.3

for t in ${tests//,/ }; do
  [[ $t == throughput || $t == restart || $t == sigterm ]] || {
    echo "run.sh: --tests: unknown measurement '$t' (throughput, restart, sigterm)" >&2
    exit 2
  }
done
for k in ${servers_wanted//,/ }; do
  [[ $k == ours || $k == isc || $k == kea ]] || {
    echo "run.sh: --servers: unknown server '$k' (ours, isc, kea)" >&2
    exit 2
  }
done
wanted() { [[ ,$1, == *,$2,* ]]; } # wanted LIST ITEM

servers=()
declare -A server_name=([ours]="gracefulstop-dhcpd" [isc]="ISC dhcpd" [kea]="Kea")
declare -A missing=()
if ! wanted "$servers_wanted" ours; then missing[ours]="not selected"
elif [[ -n $dhcpd ]]; then servers+=(ours); else missing[ours]="no --dhcpd/--build given"; fi
if ! wanted "$servers_wanted" isc; then missing[isc]="not selected"
elif command -v dhcpd >/dev/null; then servers+=(isc); else missing[isc]="dhcpd not installed (isc-dhcp-server)"; fi
if ! wanted "$servers_wanted" kea; then missing[kea]="not selected"
elif command -v kea-dhcp4 >/dev/null; then servers+=(kea); else missing[kea]="kea-dhcp4 not installed (kea-dhcp4-server)"; fi

mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
if [[ -z $workdir ]]; then
  workdir=$(mktemp -d "${TMPDIR:-/tmp}/gsdhcp-bench.XXXXXX") || exit 1
  remove_workdir=1
else
  mkdir -p "$workdir" || exit 1
  remove_workdir=0
fi
logs=$out/logs
rm -rf "$logs"
mkdir -p "$logs"

# ---- processes and cleanup ------------------------------------------------------------------------
# Every process started here is remembered by PID and ended by PID, on every way out.
started_pids=()
prefix=""
cleanup() {
  local pid
  for pid in "${started_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${started_pids[@]}"; do
    wait "$pid" 2>/dev/null
  done
  [[ -n $prefix ]] && netns_pair_destroy "$prefix"
  ((remove_workdir)) && rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

now_us() { echo "${EPOCHREALTIME/./}"; }
log() { printf '%s\n' "$*" >&2; }
failures=()
fail() {
  log "FAILED: $*"
  failures+=("$*")
}

prefix=$(netns_unique_prefix gsdb) || exit 1
netns_pair_create "$prefix" || exit 1
netns_client_addr "$relay_perfdhcp/16" || exit 1
netns_client_addr "$relay_probe/16" || exit 1

# ---- the servers ------------------------------------------------------------------------------------
# write_config KIND DIR SUBNET FIRST LAST: each server's configuration for the same service.
write_config() {
  local kind=$1 dir=$2 subnet=$3 first=$4 last=$5
  local network=${subnet%/*} len=${subnet#*/}
  case $kind in
  ours)
    mkdir -p "$dir/leases"
    ;;
  isc)
    local mask
    mask=$(awk -v l="$len" 'BEGIN { m = 0; for (i = 0; i < 32; i++) m = m * 2 + (i < l);
      printf "%d.%d.%d.%d", int(m / 16777216) % 256, int(m / 65536) % 256, int(m / 256) % 256, m % 256 }')
    # ping-check off: it delays every OFFER by a second's ping, which no other server does.
    cat >"$dir/dhcpd.conf" <<EOF
authoritative;
ping-check false;
ddns-update-style none;
default-lease-time $lease_time;
max-lease-time $lease_time;
subnet $network netmask $mask {
  range $first $last;
  option routers $SRV_ADDR;
}
EOF
    touch "$dir/dhcpd.leases"
    ;;
  kea)
    # memfile with persist=true is Kea's lease file; lfc-interval 0: no background compaction
    # during a run. Kea writes each lease with write() and no fsync. The per-lease INFO lines
    # are off (kea-dhcp4.leases at WARN), Kea's fastest setting; DHCP4_STARTED still shows.
    cat >"$dir/kea.json" <<EOF
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "$IF_SRV" ], "dhcp-socket-type": "udp" },
  "lease-database": { "type": "memfile", "persist": true, "lfc-interval": 0,
                      "name": "$dir/kea-leases4.csv" },
  "valid-lifetime": $lease_time,
  "subnet4": [ { "id": 1, "subnet": "$subnet", "pools": [ { "pool": "$first - $last" } ],
                 "option-data": [ { "name": "routers", "data": "$SRV_ADDR" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "severity": "INFO",
                 "output_options": [ { "output": "stdout", "flush": true } ] },
               { "name": "kea-dhcp4.leases", "severity": "WARN",
                 "output_options": [ { "output": "stdout", "flush": true } ] } ]
} }
EOF
    ;;
  esac
  echo "$subnet $first $last" >"$dir/service"
}

# start_server KIND DIR LOG: starts the server in the server namespace and returns once it has
# said it is ready, reading its output through a FIFO (no polling). Sets server_pid, t_spawn_us,
# t_ready_us. The rest of its output is copied to LOG by a cat that ends when the server does.
server_pid="" server_log_pid="" t_spawn_us=0 t_ready_us=0
start_server() {
  local kind=$1 dir=$2 log=$3 ready fifo=$2/output.fifo
  local subnet first last
  read -r subnet first last <"$dir/service"
  rm -f "$fifo"
  mkfifo "$fifo" || return 1
  t_spawn_us=$(now_us)
  case $kind in
  ours)
    ip netns exec "$NS_SRV" "$dhcpd" --interface "$IF_SRV" --subnet "$subnet" \
      --pool "$first-$last" --router "$SRV_ADDR" --lease-time "$lease_time" \
      --lease-dir "$dir/leases" >"$fifo" 2>&1 &
    ready='event=ready'
    ;;
  isc)
    ip netns exec "$NS_SRV" dhcpd -4 -f -d -cf "$dir/dhcpd.conf" -lf "$dir/dhcpd.leases" \
      -pf "$dir/dhcpd.pid" "$IF_SRV" >"$fifo" 2>&1 &
    ready='Server starting service'
    ;;
  kea)
    KEA_PIDFILE_DIR=$dir KEA_LOCKFILE_DIR=$dir ip netns exec "$NS_SRV" kea-dhcp4 -c "$dir/kea.json" \
      >"$fifo" 2>&1 &
    ready='DHCP4_STARTED'
    ;;
  esac
  server_pid=$!
  started_pids+=("$server_pid")
  local fd line deadline=$((SECONDS + 60))
  exec {fd}<"$fifo"
  while :; do
    if ! IFS= read -r -t 60 -u "$fd" line; then
      exec {fd}<&-
      fail "$kind did not become ready (see $log)"
      return 1
    fi
    printf '%s\n' "$line" >>"$log"
    if [[ $line == *"$ready"* ]]; then
      t_ready_us=$(now_us)
      break
    fi
    ((SECONDS < deadline)) || {
      exec {fd}<&-
      fail "$kind did not become ready within 60 s (see $log)"
      return 1
    }
  done
  # Keep draining its output so that it never blocks on a full pipe.
  cat <&"$fd" >>"$log" &
  server_log_pid=$!
  started_pids+=("$server_log_pid")
  exec {fd}<&-
  rm -f "$fifo"
}

# stop_server: SIGTERM, then wait for the exit. Sets t_term_us, t_exit_us, server_status.
t_term_us=0 t_exit_us=0 server_status=0
# A server that has not exited 30 s after SIGTERM is killed, and the run counts as failed.
stop_server() {
  local timer finished status
  t_term_us=$(now_us)
  kill -TERM "$server_pid"
  sleep 30 &
  timer=$!
  wait -n -p finished "$server_pid" "$timer"
  status=$?
  if [[ $finished == "$server_pid" ]]; then
    server_status=$status
    t_exit_us=$(now_us)
    kill "$timer" 2>/dev/null
    wait "$timer" 2>/dev/null
  else
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_status=$?
    t_exit_us=$(now_us)
    fail "the server ($server_pid) ignored SIGTERM for 30 s and was killed"
  fi
  wait "$server_log_pid" 2>/dev/null
}

# ---- small helpers -----------------------------------------------------------------------------------
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.1f", us / 1000 }'; }
# ACKs perfdhcp received: "received packets" of its REQUEST-ACK statistics.
perfdhcp_acks() { awk '/Statistics for: REQUEST-ACK/ { f = 1 } f && /received packets:/ { print $3; exit }' "$1"; }

csv=$out/dhcp.csv
echo "test,server,parameter,value,unit,samples" >"$csv"
record() { # test server parameter value unit samples...
  local test=$1 server=$2 parameter=$3 value=$4 unit=$5
  shift 5
  local IFS=';'
  echo "$test,$server,$parameter,$value,$unit,$*" >>"$csv"
}
declare -A result=() # "test/server/parameter" -> value

# ---- 1. throughput ------------------------------------------------------------------------------------
# The run functions set globals rather than print, so that they run in this shell: the PIDs they
# start must be known to the cleanup trap, and their failures recorded.
tp_value=""
throughput_run() { # KIND RATE RUN -> tp_value (DORA/s)
  local kind=$1 rate=$2 run=$3 dir=$workdir/tp-$1-$2-$3 pd
  rm -rf "$dir"
  mkdir -p "$dir"
  write_config "$kind" "$dir" "$tp_subnet" "$tp_first" "$tp_last"
  start_server "$kind" "$dir" "$logs/tp-$kind-$rate-$run.log" || return 1
  pd=$logs/tp-$kind-$rate-$run.perfdhcp
  # -R: as many simulated clients as there can be exchanges, so every ACK is a new lease written.
  local seconds
  seconds=$(period_for "$rate")
  ip netns exec "$NS_CLI" perfdhcp -4 -l "$IF_CLI" -r "$rate" -p "$seconds" -R 1000000 "$SRV_ADDR" \
    >"$pd" 2>&1
  stop_server
  rm -rf "$dir"
  local acks
  acks=$(perfdhcp_acks "$pd")
  if [[ -z $acks || $acks -eq 0 ]]; then
    fail "throughput $kind at $rate/s: no ACK (see $pd)"
    return 1
  fi
  tp_value=$(awk -v a="$acks" -v p="$seconds" 'BEGIN { printf "%.0f", a / p }')
}

wanted "$tests" throughput || rates=()
# Runs are interleaved (run 1 of each server, then run 2, ...), so that a change in the machine's
# load falls on every server alike.
declare -A tp_samples=()
for rate in "${rates[@]}"; do
  for ((run = 1; run <= runs; run++)); do
    for kind in "${servers[@]}"; do
      if throughput_run "$kind" "$rate" "$run"; then
        tp_samples[$kind/$rate]+="$tp_value "
        log "throughput $kind offered $rate/s run $run: $tp_value DORA/s"
      fi
    done
  done
  for kind in "${servers[@]}"; do
    read -r -a samples <<<"${tp_samples[$kind/$rate]:-}"
    ((${#samples[@]})) || continue
    m=$(median "${samples[@]}")
    result[throughput/$kind/$rate]=$m
    record throughput "$kind" "offered_$rate" "$m" "DORA/s" "${samples[@]}"
  done
done

# ---- 2. restart downtime ------------------------------------------------------------------------------
# populate KIND DIR COUNT: the leases in the server's own format.
populate() {
  local kind=$1 dir=$2 count=$3
  case $kind in
  ours) "$leasegen" --count "$count" --first "$big_first" --lease-time "$lease_time" --ours "$dir/leases" ;;
  isc) "$leasegen" --count "$count" --first "$big_first" --lease-time "$lease_time" --isc "$dir/dhcpd.leases" ;;
  kea) "$leasegen" --count "$count" --first "$big_first" --lease-time "$lease_time" --kea "$dir/kea-leases4.csv" ;;
  esac
}

# A fresh lease directory for KIND in DIR holding $restart_leases leases in the big subnet, and
# the server started on it (log: $logs/TAG.log). The restart and SIGTERM runs both begin so.
start_with_leases() { # KIND DIR TAG
  local kind=$1 dir=$2 tag=$3
  rm -rf "$dir"
  mkdir -p "$dir"
  write_config "$kind" "$dir" "$big_subnet" "$big_first" "$big_last"
  populate "$kind" "$dir" "$restart_leases" || {
    fail "$tag: could not write the leases"
    return 1
  }
  start_server "$kind" "$dir" "$logs/$tag.log"
}

rs_values=""
restart_run() { # KIND RUN -> rs_values="downtime_us stop_us ready_us first_ack_us exit_status"
  local kind=$1 run=$2 dir=$workdir/restart-$1-$2
  local tag=restart-$kind-$run
  start_with_leases "$kind" "$dir" "$tag" || return 1

  # The probe: its ACK lines go to a file (never a pipe that could stall it), its stderr through
  # a FIFO until it reports a steady stream of ACKs.
  local acks=$logs/$tag.acks fifo=$dir/probe.fifo fd line probe_pid probe_log_pid
  rm -f "$fifo"
  mkfifo "$fifo"
  ip netns exec "$NS_CLI" "$probe" --server "$SRV_ADDR" --relay "$relay_probe" --clients 4 \
    --retransmit-ms 2 --gap-ms 1 --ready-after 50 --max-wait-s 60 >"$acks" 2>"$fifo" &
  probe_pid=$!
  started_pids+=("$probe_pid")
  exec {fd}<"$fifo"
  while IFS= read -r -t 30 -u "$fd" line; do
    printf '%s\n' "$line" >>"$logs/$tag.probe.log"
    [[ $line == *event=steady* ]] && break
  done
  if [[ $line != *event=steady* ]]; then
    exec {fd}<&-
    fail "$tag: the probe got no steady ACKs (see $logs/$tag.probe.log)"
    stop_server
    return 1
  fi
  cat <&"$fd" >>"$logs/$tag.probe.log" &
  probe_log_pid=$!
  started_pids+=("$probe_log_pid")
  exec {fd}<&-

  stop_server
  local term=$t_term_us exit_at=$t_exit_us status=$server_status
  # The old server is gone: the probe ends at the next ACK, which only the new one can send.
  kill -USR1 "$probe_pid"
  start_server "$kind" "$dir" "$logs/$tag.log" || return 1
  local spawn=$t_spawn_us ready=$t_ready_us
  wait "$probe_pid"
  local probe_status=$?
  wait "$probe_log_pid" 2>/dev/null
  stop_server
  rm -rf "$dir"
  if ((probe_status != 0)); then
    fail "$tag: no ACK after the restart (probe status $probe_status; see $logs/$tag.probe.log)"
    return 1
  fi
  # Last ACK before the SIGTERM and first ACK after the new process was started.
  rs_values=$(awk -v term="$term" -v spawn="$spawn" -v exit_at="$exit_at" -v ready="$ready" -v st="$status" '
    { sub(/^t_us=/, "", $2); t = $2 + 0 }
    t < term { last = t }
    t > spawn && !first { first = t }
    END {
      if (!last || !first) exit 1
      printf "%d %d %d %d %d\n", first - last, exit_at - term, ready - spawn, first - spawn, st
    }' "$acks") || {
    fail "$tag: ACKs missing before the SIGTERM or after the restart (see $acks)"
    return 1
  }
}

wanted "$tests" restart || restart_runs=0
declare -A rs_samples=() # "kind/name" -> microseconds, space-separated
for ((run = 1; run <= restart_runs; run++)); do
  for kind in "${servers[@]}"; do
    if restart_run "$kind" "$run"; then
      read -r downtime stop ready first status <<<"$rs_values"
      rs_samples[$kind/d]+="$downtime " rs_samples[$kind/s]+="$stop "
      rs_samples[$kind/r]+="$ready " rs_samples[$kind/f]+="$first "
      log "restart $kind run $run: downtime $(ms "$downtime") ms (stop $(ms "$stop"), start $(ms "$ready"), first ACK $(ms "$first") ms after spawn; exit status $status)"
    fi
  done
done
for kind in "${servers[@]}"; do
  read -r -a d <<<"${rs_samples[$kind/d]:-}"
  read -r -a s <<<"${rs_samples[$kind/s]:-}"
  read -r -a r <<<"${rs_samples[$kind/r]:-}"
  read -r -a f <<<"${rs_samples[$kind/f]:-}"
  ((${#d[@]})) || continue
  for pair in downtime:d stop:s ready:r first_ack:f; do
    name=${pair%%:*}
    declare -n arr=${pair#*:}
    m=$(median "${arr[@]}")
    result[restart/$kind/$name]=$m
    samples=()
    for v in "${arr[@]}"; do samples+=("$(ms "$v")"); done
    record restart "$kind" "${name}_leases_$restart_leases" "$(ms "$m")" ms "${samples[@]}"
    unset -n arr
  done
done

# gracefulstop-dhcpd reports how long each stop stage took; the first stop in each restart log is
# the one measured.
declare -A stage_ms=()
if [[ " ${servers[*]} " == *" ours "* ]] && ((restart_runs > 0)); then
  for stage in drain flush close; do
    samples=()
    for f in "$logs"/restart-ours-*.log; do
      [[ -f $f ]] || continue
      v=$(grep -m 1 "^event=stage stage=$stage " "$f" | sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p')
      [[ -n $v ]] && samples+=("$v")
    done
    ((${#samples[@]})) && stage_ms[$stage]=$(median "${samples[@]}")
  done
fi

# ---- 3. SIGTERM under load ------------------------------------------------------------------------------
# acked_addresses PERFDHCP_OUTPUT: every address in perfdhcp's "Leases for REQUEST-ACK" list.
acked_addresses() {
  awk '/Leases for REQUEST-ACK/ { f = 1; next } f && /^\*\*\*/ { f = 0 }
       f && /^[0-9a-f]*,[0-9.]+,/ { split($0, c, ","); print c[2] }' "$1" | sort -u
}
# stored_addresses KIND DIR: addresses bound in the server's lease store, read with its own tool
# (ours) or from its file (last record of an address wins, as when the server loads it).
stored_addresses() {
  local kind=$1 dir=$2
  case $kind in
  ours) "$dhcpd" --dump-leases "$dir/leases" | awk '{ print $1 }' ;;
  isc) awk '/^lease / { a = $2 } /binding state/ && !/next|rewind/ { s[a] = $3 }
            END { for (a in s) if (s[a] == "active;") print a }' "$dir/dhcpd.leases" ;;
  kea) awk -F, -v now="$(date +%s)" 'NR > 1 { e[$1] = $5; s[$1] = $10 }
            END { for (a in e) if (s[a] == 0 && e[a] > now) print a }' "$dir/kea-leases4.csv" ;;
  esac | sort -u
}
# check_store KIND DIR: the server's own verdict on its lease file, or "n/a".
check_store() {
  local kind=$1 dir=$2
  case $kind in
  ours) "$dhcpd" --check-leases "$dir/leases" 2>&1 | tr '\n' ' ' ;;
  isc)
    if dhcpd -4 -T -cf "$dir/dhcpd.conf" -lf "$dir/dhcpd.leases" >"$dir/check.log" 2>&1; then
      echo "dhcpd -T ok"
    else
      echo "dhcpd -T FAILED: $(grep -iE 'error|corrupt' "$dir/check.log" | head -n 1)"
    fi
    ;;
  kea) echo "n/a (no offline checker)" ;;
  esac
}

st_values=""
sigterm_run() { # KIND -> st_values="exit_us status acked lost check..."
  local kind=$1 dir=$workdir/sigterm-$1 tag=sigterm-$1 pd pd_pid
  start_with_leases "$kind" "$dir" "$tag" || return 1
  pd=$logs/$tag.perfdhcp
  # Load for load_before seconds, then SIGTERM while perfdhcp keeps sending for a while longer.
  local load_period
  load_period=$(awk -v b="$load_before" 'BEGIN { printf "%d", b + 2 }')
  ip netns exec "$NS_CLI" perfdhcp -4 -l "$IF_CLI" -r "$load_rate" -p "$load_period" -R 1000000 \
    -x l "$SRV_ADDR" >"$pd" 2>&1 &
  pd_pid=$!
  started_pids+=("$pd_pid")
  sleep "$load_before" # the length of the load before the stop; nothing is waited for here
  stop_server
  wait "$pd_pid"
  local acked lost check
  acked=$(acked_addresses "$pd" | tee "$dir/acked" | wc -l)
  stored_addresses "$kind" "$dir" >"$dir/stored"
  lost=$(comm -23 "$dir/acked" "$dir/stored" | wc -l)
  comm -23 "$dir/acked" "$dir/stored" | head -n 20 >"$logs/$tag.lost"
  check=$(check_store "$kind" "$dir")
  rm -rf "$dir"
  st_values="$((t_exit_us - t_term_us)) $server_status $acked $lost $check"
}

for kind in "${servers[@]}"; do
  wanted "$tests" sigterm || break
  if sigterm_run "$kind"; then
    read -r exit_us status acked lost check <<<"$st_values"
    result[sigterm/$kind/exit]=$exit_us
    result[sigterm/$kind/status]=$status
    result[sigterm/$kind/acked]=$acked
    result[sigterm/$kind/lost]=$lost
    result[sigterm/$kind/check]=$check
    record sigterm "$kind" "exit_after_sigterm_at_${load_rate}_per_s" "$(ms "$exit_us")" ms
    record sigterm "$kind" "exit_status" "$status" status
    record sigterm "$kind" "acked_during_run" "$acked" leases
    record sigterm "$kind" "acked_missing_from_store" "$lost" leases
    log "sigterm $kind: exit after $(ms "$exit_us") ms, status $status; $acked ACKed, $lost missing; $check"
    if [[ $kind == ours && $lost -ne 0 ]]; then
      fail "gracefulstop-dhcpd lost $lost ACKed leases (see $logs/$tag.lost)"
    fi
    if [[ $kind == ours && $check != leases=* ]]; then
      fail "gracefulstop-dhcpd's lease check failed after SIGTERM: $check"
    fi
    if ((acked == 0)); then fail "sigterm $kind: perfdhcp saw no ACK before the stop"; fi
  else
    fail "sigterm $kind: the run failed"
  fi
done

# ---- report -------------------------------------------------------------------------------------------
peers=()
for kind in isc kea; do [[ " ${servers[*]} " == *" $kind "* ]] && peers+=("$kind"); done
cell() { [[ -n ${result[$1]:-} ]] && echo "${result[$1]}" || echo "–"; }
best_of() { # MODE(max|min) KEY_PREFIX KEY_SUFFIX -> value and server of the best peer
  local mode=$1 pre=$2 suf=$3 best="" who="" kind v
  for kind in "${peers[@]}"; do
    v=${result[$pre/$kind/$suf]:-}
    [[ -n $v ]] || continue
    if [[ -z $best ]] || awk -v a="$v" -v b="$best" -v m="$mode" 'BEGIN { exit !(m == "max" ? a > b : a < b) }'; then
      best=$v who=$kind
    fi
  done
  echo "$best $who"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "–"; else printf "%.2f", a / b }'; }

md=$out/dhcp.md
{
  echo "# DHCP servers side by side"
  echo
  echo "Command (as root, from the top of the source tree): \`$command_line\`"
  ((quick)) && echo "(smoke pass: tiny lease counts, one short run each; the figures mean little)."
  echo "The build it names: \`cmake -S . -B BUILD -DGRACEFULSTOP_BENCH=ON -DCMAKE_BUILD_TYPE=Release\`, then"
  echo "\`cmake --build BUILD --target gracefulstop-dhcpd gsdhcp_bench_probe gsdhcp_bench_leases\`."
  echo
  echo "Machine: $(nproc) CPUs, Linux $(uname -r); lease files on $(findmnt -n -o FSTYPE -T "$workdir" 2>/dev/null || stat -f -c %T "$workdir"); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Servers: gracefulstop-dhcpd$([[ -n ${missing[ours]:-} ]] && echo " (not measured: ${missing[ours]})"), $(dhcpd --version 2>&1 | head -n 1 || echo "ISC dhcpd: ${missing[isc]:-}"), Kea $(kea-dhcp4 -v 2>/dev/null || echo "${missing[kea]:-}"), perfdhcp $(perfdhcp -v 2>&1 | awk '/VERSION/ { print $2 }')."
  if [[ -n $build && -f $build/CMakeCache.txt ]]; then
    echo "gracefulstop-dhcpd built with CMAKE_BUILD_TYPE=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")."
  fi
  echo
  echo "All three run in one network namespace, their clients in another, joined by a veth pair;"
  echo "perfdhcp and the probe act as relay agents. Ratios compare with the best peer of this run."
  echo
  echo "| lease written before the ACK | gracefulstop-dhcpd | ISC dhcpd | Kea memfile |"
  echo "|---|---|---|---|"
  echo "| durability | journal \`write\` + one \`fdatasync\` per batch (group commit) | \`write\` + \`fsync\` per lease | \`write\` per lease, **no fsync**: not durable before the ACK |"
  echo
  echo "## 1. DORA exchanges per second, leases written before the ACK"
  echo
  echo "perfdhcp \`-4 -l IF -r RATE -p SECONDS -R 1000000\` (every exchange a new client, so every ACK"
  echo "writes a lease); ACKs received / SECONDS; SECONDS = $period, less where the pool could not hold"
  echo "RATE × $period clients; median of $runs run(s), interleaved, each with empty lease files;"
  echo "subnet $tp_subnet, pool $tp_first-$tp_last."
  echo
  echo "| offered /s | seconds | gracefulstop-dhcpd | ISC dhcpd | Kea (no fsync) | ours / best peer | ours / ISC (durable peer) |"
  echo "|---|---|---|---|---|---|---|"
  for rate in "${rates[@]}"; do
    read -r best _ < <(best_of max throughput "$rate")
    ours=${result[throughput/ours/$rate]:-}
    isc=${result[throughput/isc/$rate]:-}
    r1="–" r2="–"
    [[ -n $ours && -n $best ]] && r1=$(ratio "$ours" "$best")
    [[ -n $ours && -n $isc ]] && r2=$(ratio "$ours" "$isc")
    echo "| $rate | $(period_for "$rate") | $(cell "throughput/ours/$rate") | $(cell "throughput/isc/$rate") | $(cell "throughput/kea/$rate") | $r1 | $r2 |"
  done
  echo
  echo "## 2. Restart with $restart_leases leases on disk"
  echo
  echo "A probe (relay $relay_probe) runs one DORA after another for 4 clients, 1 ms apart, resending"
  echo "an unanswered message every 2 ms, and timestamps every ACK. The server gets SIGTERM; once it"
  echo "has exited it is started again at once with the same files. **Downtime** = first ACK after the"
  echo "restart − last ACK before the SIGTERM. Median of $restart_runs run(s); milliseconds."
  echo
  echo "| ms | gracefulstop-dhcpd | ISC dhcpd | Kea | ours / best peer |"
  echo "|---|---|---|---|---|"
  for row in "downtime:downtime (last ACK → first ACK)" "stop:SIGTERM → exit" "ready:start → ready line (as read by the script)" "first_ack:start → first ACK"; do
    key=${row%%:*} label=${row#*:}
    read -r best _ < <(best_of min restart "$key")
    line="| $label |"
    for kind in ours isc kea; do
      v=${result[restart/$kind/$key]:-}
      line+=" $([[ -n $v ]] && ms "$v" || echo "–") |"
    done
    ours=${result[restart/ours/$key]:-}
    line+=" $([[ -n $ours && -n $best ]] && ratio "$ours" "$best" || echo "–") |"
    echo "$line"
  done
  if ((${#stage_ms[@]})); then
    echo
    echo "gracefulstop-dhcpd's stop by stage (its own \`event=stage\` lines, median): drain ${stage_ms[drain]:-?} ms,"
    echo "flush ${stage_ms[flush]:-?} ms (a snapshot of all leases, fsynced), close ${stage_ms[close]:-?} ms (freeing the lease tables)."
  fi
  echo
  echo "## 3. SIGTERM under load"
  echo
  echo "$restart_leases leases on disk; perfdhcp offers $load_rate DORA/s (\`-x l\` lists every ACKed"
  echo "address); SIGTERM after $load_before s. Then every ACKed address is looked up in the lease"
  echo "store, and the store is checked by the server's own tool."
  echo
  echo "| | gracefulstop-dhcpd | ISC dhcpd | Kea |"
  echo "|---|---|---|---|"
  line="| SIGTERM → exit (ms) |"
  for kind in ours isc kea; do v=${result[sigterm/$kind/exit]:-}; line+=" $([[ -n $v ]] && ms "$v" || echo "–") |"; done
  echo "$line"
  for row in "status:exit status" "acked:ACKs perfdhcp received" "lost:ACKed leases missing from the store" "check:lease store check"; do
    key=${row%%:*} label=${row#*:}
    echo "| $label | $(cell "sigterm/ours/$key") | $(cell "sigterm/isc/$key") | $(cell "sigterm/kea/$key") |"
  done
  echo
  echo "## How to read these figures"
  echo
  echo "- Kea's memfile writes each lease with \`write()\` and never flushes it: its lease survives the"
  echo "  process being killed (the page cache keeps it), not a power loss. It is listed with the others"
  echo "  but is not \"durable before the ACK\"; ISC dhcpd is the one peer that is."
  echo "- ISC dhcpd runs as \`dhcpd -4 -f -d\`, which logs every message (to a file here); Kea logs its"
  echo "  start-up but not each lease; gracefulstop-dhcpd logs events, not requests."
  echo "- ISC dhcpd's time per new client grows with the number of free addresses in its pool. In trial"
  echo "  runs on this machine (offered 1,000/s, empty pools, a busier machine) it answered 340-730"
  echo "  DORA/s with 2,000 to 25,600 free addresses, 27-75/s with 65,000 and 3/s with 131,000. So the"
  echo "  throughput runs use a 25,600-address pool. In table 3 it has $((131053 - restart_leases)) free addresses, and"
  echo "  its ACK count is lower than the others'. The probe's clients in table 2 already hold leases,"
  echo "  which ISC dhcpd answers at once."
  echo "- ISC dhcpd has no SIGTERM handler: it dies at once (exit status 143), in the middle of whatever"
  echo "  it was doing; requests it had read are dropped and clients must retransmit. It flushes every"
  echo "  lease before its ACK, so no ACKed lease is lost (table 3). Killed between two writes of one"
  echo "  lease statement, its file would end in a partial statement; \`dhcpd -T\` found it intact here."
  echo "- Absolute figures move with the machine's load; compare within one run."
  echo
  echo "## Targets"
  echo
  for rate in "${rates[@]}"; do
    read -r best who < <(best_of max throughput "$rate")
    ours=${result[throughput/ours/$rate]:-}
    if [[ -n $ours && -n $best ]]; then
      # Both answering (nearly) everything offered is a tie, whichever lost the last exchange.
      verdict=$(awk -v a="$ours" -v b="$best" -v r="$rate" 'BEGIN {
        if (a >= 0.99 * r && b >= 0.99 * r) { printf "met: both answered what was offered"; exit }
        printf (a >= b ? "met" : "missed"); printf " (%+.1f%%)", (a / b - 1) * 100 }')
      echo "- Throughput at $rate/s ≥ best peer (${server_name[$who]}, $best/s): **$verdict**, $ours/s."
    fi
  done
  read -r best who < <(best_of min restart downtime)
  ours=${result[restart/ours/downtime]:-}
  if [[ -n $ours && -n $best ]]; then
    verdict=$(awk -v a="$ours" -v b="$best" 'BEGIN { t = b / 10; printf (a <= t ? "met" : "missed"); printf " (%.1f ms against a target of %.1f ms: %.2f× the target)", a / 1000, t / 1000, a / t }')
    echo "- Restart downtime ≤ 1/10 of the best peer (${server_name[$who]}, $(ms "$best") ms): **$verdict**."
  fi
  for kind in ours isc kea; do
    [[ -n ${missing[$kind]:-} ]] && echo "- ${server_name[$kind]}: not measured (${missing[$kind]})."
  done
  ((${#failures[@]})) && printf -- '- FAILED: %s\n' "${failures[@]}"
} >"$md"

log "wrote $md and $csv"
((${#failures[@]} == 0))
