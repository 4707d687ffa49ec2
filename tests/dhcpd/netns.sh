# shellcheck shell=bash
# Network namespaces for DHCP tests, benchmarks and the demo. Source this file; it defines
# functions only and changes nothing until one of them is called.
#
#   netns_require_root                 0 if we may create namespaces; otherwise non-zero and a
#                                      message on stderr, so callers can skip cleanly
#   netns_unique_prefix NAME           prints NAME-PID-N, unused by any namespace; first removes
#                                      pairs named NAME-PID-N whose creator PID is gone
#   netns_pair_create PREFIX           namespaces PREFIX-srv and PREFIX-cli joined by a veth pair;
#                                      lo and both veth ends up; 10.77.0.1/16 on the server side,
#                                      the client side unaddressed (real DHCP clients configure
#                                      it). Exports NS_SRV NS_CLI IF_SRV IF_CLI SRV_ADDR.
#   netns_client_addr ADDR/LEN         an address on the client side of the last pair created
#                                      (perfdhcp acts as a relay and needs one: 10.77.0.2/16)
#   netns_pair_destroy PREFIX          kills what still runs inside, removes both namespaces;
#                                      idempotent, and safe on a half-created pair
#   netns_srv CMD...  netns_cli CMD... run CMD inside the server / client namespace
#
# The pair has no link to the namespace it was created from and no route out: everything it
# carries stays between the two ends of the veth.

NETNS_SRV_ADDR=10.77.0.1
NETNS_SRV_PREFIXLEN=16

netns__err() { printf 'netns: %s\n' "$*" >&2; }

# A prefix becomes part of namespace and interface names: keep it to characters that are valid
# in both and cannot be mistaken for options or paths.
netns__check_prefix() {
  if [[ ! $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]]; then
    netns__err "bad prefix '$1': use letters, digits, '_', '.', '-' (not leading)"
    return 1
  fi
}

# Interface names are limited to 15 bytes (IFNAMSIZ - 1). Short prefixes give readable names,
# PREFIX-s and PREFIX-c; longer ones keep their first 6 characters and add a 32-bit hash of the
# whole prefix, so two prefixes that differ anywhere get different names. The two forms cannot
# collide: only the readable one has '-' before the final letter.
netns__ifnames() {
  local prefix=$1
  if ((${#prefix} + 2 <= 15)); then
    printf '%s %s\n' "$prefix-s" "$prefix-c"
  else
    local hash
    hash=$(printf '%s' "$prefix" | cksum | awk '{ printf "%08x", $1 }')
    printf '%s %s\n' "${prefix:0:6}${hash}s" "${prefix:0:6}${hash}c"
  fi
}

netns_require_root() {
  if [[ $(id -u) != 0 ]]; then
    netns__err "needs root (network namespaces and veth pairs); running as uid $(id -u)"
    return 1
  fi
  if ! command -v ip >/dev/null 2>&1; then
    netns__err "the 'ip' command (iproute2) is not installed"
    return 1
  fi
  # Root in a container may still lack CAP_SYS_ADMIN / CAP_NET_ADMIN: try the real operation.
  local probe="gsprobe-$$-$RANDOM"
  if ! ip netns add "$probe" 2>/dev/null; then
    netns__err "'ip netns add' is not permitted here (no CAP_SYS_ADMIN, or /run/netns not writable)"
    return 1
  fi
  ip netns del "$probe" 2>/dev/null
  return 0
}

netns__exists() { [[ -e /run/netns/$1 ]]; }

netns_unique_prefix() {
  local name=${1:-}
  if [[ -z $name ]]; then
    netns__err "usage: netns_unique_prefix NAME"
    return 1
  fi
  netns__check_prefix "$name" || return 1
  # Stale pairs: a run that was killed before its trap could clean up. The creator's PID is in
  # the name; if that process is gone, nobody uses the pair any more.
  local ns rest pid n
  for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
    [[ $ns == "$name"-* ]] || continue
    rest=${ns#"$name"-}
    [[ $rest =~ ^([0-9]+)-([0-9]+)-(srv|cli)$ ]] || continue
    pid=${BASH_REMATCH[1]}
    n=${BASH_REMATCH[2]}
    if ! kill -0 "$pid" 2>/dev/null; then
      netns_pair_destroy "$name-$pid-$n"
    fi
  done
  # $$ rather than $BASHPID: this usually runs in a $(...) subshell that exits at once, while
  # the shell that will own the pair lives on.
  n=0
  while netns__exists "$name-$$-$n-srv" || netns__exists "$name-$$-$n-cli"; do
    n=$((n + 1))
  done
  printf '%s\n' "$name-$$-$n"
}

netns_pair_create() {
  local prefix=${1:-}
  if [[ -z $prefix ]]; then
    netns__err "usage: netns_pair_create PREFIX"
    return 1
  fi
  netns__check_prefix "$prefix" || return 1
  local srv="$prefix-srv" cli="$prefix-cli" if_srv if_cli
  read -r if_srv if_cli < <(netns__ifnames "$prefix")
  if netns__exists "$srv" || netns__exists "$cli"; then
    netns__err "namespace $srv or $cli already exists; pick another prefix (netns_unique_prefix)"
    return 1
  fi
  # The veth ends are created directly inside their namespaces, so they never appear (and never
  # clash with an interface name) in the namespace we run in.
  if ! { ip netns add "$srv" &&
    ip netns add "$cli" &&
    ip link add name "$if_srv" netns "$srv" type veth peer name "$if_cli" netns "$cli" &&
    ip -n "$srv" link set lo up &&
    ip -n "$cli" link set lo up &&
    ip -n "$srv" addr add "$NETNS_SRV_ADDR/$NETNS_SRV_PREFIXLEN" dev "$if_srv" &&
    ip -n "$srv" link set "$if_srv" up &&
    ip -n "$cli" link set "$if_cli" up; }; then
    netns__err "could not create the pair $prefix; removing what was made"
    netns_pair_destroy "$prefix"
    return 1
  fi
  export NS_SRV=$srv NS_CLI=$cli IF_SRV=$if_srv IF_CLI=$if_cli SRV_ADDR=$NETNS_SRV_ADDR
}

netns_client_addr() {
  local addr=${1:-}
  if [[ ! $addr =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$ ]]; then
    netns__err "usage: netns_client_addr ADDR/LEN (e.g. 10.77.0.2/16), got '$addr'"
    return 1
  fi
  if [[ -z ${NS_CLI:-} || -z ${IF_CLI:-} ]]; then
    netns__err "netns_client_addr: no pair created yet (NS_CLI/IF_CLI unset)"
    return 1
  fi
  ip -n "$NS_CLI" addr add "$addr" dev "$IF_CLI"
}

netns_srv() { ip netns exec "$NS_SRV" "$@"; }
netns_cli() { ip netns exec "$NS_CLI" "$@"; }

# Sends SIGTERM to every process inside namespace $1, waits up to 2 s for them to go, then
# SIGKILLs the rest. Processes are addressed by PID only.
netns__kill_inside() {
  local ns=$1 pids tries
  netns__exists "$ns" || return 0
  pids=$(ip netns pids "$ns" 2>/dev/null)
  [[ -z $pids ]] && return 0
  # shellcheck disable=SC2086 # one PID per word
  kill -TERM $pids 2>/dev/null
  for ((tries = 0; tries < 20; tries++)); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [[ -z $pids ]] && return 0
    sleep 0.1
  done
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null
  for ((tries = 0; tries < 20; tries++)); do
    [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && return 0
    sleep 0.1
  done
  netns__err "processes still inside $ns after SIGKILL: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
  return 1
}

netns_pair_destroy() {
  local prefix=${1:-}
  if [[ -z $prefix ]]; then
    netns__err "usage: netns_pair_destroy PREFIX"
    return 1
  fi
  netns__check_prefix "$prefix" || return 1
  local ns rc=0
  for ns in "$prefix-srv" "$prefix-cli"; do
    netns__kill_inside "$ns" || rc=1
    if netns__exists "$ns"; then
      # Deleting a namespace destroys the veth end inside it, and with it the peer.
      ip netns del "$ns" || rc=1
    fi
  done
  return $rc
}
