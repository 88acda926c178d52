#!/usr/bin/env bash
# Guest-side helpers of the VM lab: topology, Jool instances, daemons, traffic, observation.
# Sourced by the scenario scripts; runs inside the QEMU guest as root (see scripts/lab/init.sh).
#
# Topology (documentation addresses only; the guest has no network):
#   c6 (2001:db8:6::10) --br6-- A (::1) / B (::2) --br4-- h4 (192.0.2.10); A .1, B .2
#   A and B also share brss (sync link "ss": 2001:db8:ff08::1/::2, 203.0.113.1/.2).

OUT=${OUT:-/mnt/out}
PROJ=/mnt/proj
DENO=/mnt/deno/deno
LAB=$PROJ/scripts/lab
# The daemon's source tree: the project share, or a snapshot of one commit (`main.ts --daemon-rev`, under /mnt/out).
DAEMON_PROJ=${DAEMON_PROJ:-$PROJ}
# Our daemon's entry file under DAEMON_PROJ: main.ts, or the one-file bundle (`main.ts --bundle`).
DAEMON_ENTRY=${DAEMON_ENTRY:-main.ts}
export DENO_DIR=/tmp/deno-dir DENO_NO_UPDATE_CHECK=1 NO_COLOR=1
JOOL_VERSION=${JOOL_VERSION:-$(cat /etc/lab/jool-version)}
SERVER6=64:ff9b::192.0.2.10
DAEMON_FLAGS="--unstable-net --allow-net --allow-ffi --allow-read --v8-flags=--max-semi-space-size=1"
GROUP6=ff08::db8:64:64
GROUP4=233.252.0.64
SYNC_PORT=6464

uptime_s() { cut -d' ' -f1 /proc/uptime; }
uptime_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }
# Progress line on the console (the host prints it) and in guest.log.
log() {
  local m
  m="[guest +$(uptime_s)s] $*"
  echo "$m"
  echo "$m" >/dev/console
}
nsx() { ip netns exec "$@"; }
is_4113() { [ "$JOOL_VERSION" != 4.1.9 ]; }

# attach NS IFNAME BRIDGE: a veth from bridge BRIDGE into namespace NS, named IFNAME there.
attach() {
  local host="$1-$3"
  ip link add "$host" type veth peer name "$2" netns "$1"
  ip link set "$host" master "$3" up
  nsx "$1" ip link set "$2" up
}

topology_up() {
  local n
  for n in c6 A B h4; do
    ip netns add "$n"
    nsx "$n" ip link set lo up
  done
  for n in br6 br4 brss; do
    ip link add "$n" type bridge mcast_snooping 0
    ip link set "$n" up
  done
  attach c6 eth0 br6
  attach h4 eth0 br4
  for n in A B; do
    attach "$n" a6 br6
    attach "$n" a4 br4
    attach "$n" ss brss
    nsx "$n" sysctl -qw net.ipv6.conf.all.forwarding=1 net.ipv4.ip_forward=1 net.ipv6.conf.all.keep_addr_on_down=1
    nsx "$n" sysctl -qw net.ipv6.conf.default.keep_addr_on_down=1
  done
  nsx A ip -6 addr add 2001:db8:6::1/64 dev a6 nodad
  nsx B ip -6 addr add 2001:db8:6::2/64 dev a6 nodad
  nsx A ip addr add 192.0.2.1/24 dev a4
  nsx B ip addr add 192.0.2.2/24 dev a4
  nsx A ip -6 addr add 2001:db8:ff08::1/64 dev ss nodad
  nsx B ip -6 addr add 2001:db8:ff08::2/64 dev ss nodad
  nsx A ip addr add 203.0.113.1/24 dev ss
  nsx B ip addr add 203.0.113.2/24 dev ss
  nsx c6 ip -6 addr add 2001:db8:6::10/64 dev eth0 nodad
  nsx h4 ip addr add 192.0.2.10/24 dev eth0
  via A
  # TCP echo server on h4 (persistent, one cat per connection).
  nsx h4 nc -ll -p 7 -e cat &
  log "topology up"
}

# via A|B: route the client's and the server's traffic through router A or B.
via() {
  local last=1
  [ "$1" = B ] && last=2
  nsx c6 ip -6 route replace default via "2001:db8:6::$last"
  nsx h4 ip route replace 198.51.100.0/24 via "192.0.2.$last"
}

# router_links NS up|down: the router's client- and server-side links.
router_links() {
  nsx "$1" ip link set a6 "$2"
  nsx "$1" ip link set a4 "$2"
}

# instance_add NS NAME: a NAT64 instance with session sync enabled and long UDP/ICMP timeouts.
instance_add() {
  local ns=$1 name=$2 p
  nsx "$ns" jool instance add "$name" --netfilter --pool6 64:ff9b::/96 || return 1
  for p in --tcp --udp --icmp; do
    nsx "$ns" jool -i "$name" pool4 add "$p" 198.51.100.1 61001-65535 || return 1
  done
  nsx "$ns" jool -i "$name" global update ss-enabled true || return 1
  nsx "$ns" jool -i "$name" global update udp-timeout 00:30:00 || return 1
  nsx "$ns" jool -i "$name" global update icmp-timeout 00:30:00 || return 1
}
instance_remove() { nsx "$1" jool instance remove "$2"; }

# daemon_config NS FAMILY INSTANCE DIR [GROUP6 GROUP4]: the daemon's netsocket.json and modsocket.json in DIR.
# NETSOCKET_EXTRA, when set, is appended to netsocket.json's keys as is (",\n  \"mode\": ..."; see reliable.sh).
daemon_config() {
  local ns=$1 fam=$2 inst=$3 dir=$4 g6=${5:-$GROUP6} g4=${6:-$GROUP4} addr ifc
  if [ "$fam" = 6 ]; then
    addr=$g6 ifc=ss
  else
    addr=$g4 ifc=203.0.113.1
    [ "$ns" = B ] && ifc=203.0.113.2
  fi
  printf '{\n  "multicast address": "%s",\n  "multicast port": "%s",\n  "in interface": "%s",\n  "out interface": "%s",\n  "reuseaddr": 1,\n  "ttl": 3%s\n}\n' \
    "$addr" "$SYNC_PORT" "$ifc" "$ifc" "${NETSOCKET_EXTRA:-}" >"$dir/netsocket.json"
  printf '{ "instance": "%s" }\n' "$inst" >"$dir/modsocket.json"
}

# daemon_start NS KIND FAMILY INSTANCE STATS_PORT [GROUP6 GROUP4]
#   KIND: ours | upstream | sleep; FAMILY: 6 | 4. Working dir /tmp/d-NS-INSTANCE holds the config and log.
daemon_start() {
  local ns=$1 kind=$2 fam=$3 inst=$4 port=$5
  local dir=/tmp/d-$ns-$inst
  rm -rf "$dir"
  mkdir -p "$dir"
  daemon_config "$ns" "$fam" "$inst" "$dir" "${6:-$GROUP6}" "${7:-$GROUP4}"
  case "$kind" in
  ours)
    # The flags operators run with (tests/helpers/daemon_process.ts DAEMON_FLAGS; tests/unit checks this line);
    # shellcheck disable=SC2086 # DAEMON_FLAGS is a list of words
    (cd "$dir" && exec ip netns exec "$ns" "$DENO" run $DAEMON_FLAGS "$DAEMON_PROJ/$DAEMON_ENTRY" \
      netsocket.json modsocket.json "$port" >"$dir/log" 2>&1) &
    ;;
  upstream)
    if is_4113; then
      (cd "$dir" && exec ip netns exec "$ns" joold netsocket.json modsocket.json "$port" >"$dir/log" 2>&1) &
    else
      (cd "$dir" && exec ip netns exec "$ns" joold netsocket.json modsocket.json >"$dir/log" 2>&1) &
    fi
    ;;
  sleep) (exec ip netns exec "$ns" sleep 100000 >"$dir/log" 2>&1) & ;;
  *)
    log "unknown daemon kind $kind"
    return 1
    ;;
  esac
  echo $! >"$dir/pid"
  echo "$kind" >"$dir/kind"
}

# daemon_wait_ready NS INSTANCE STATS_PORT [TRIES]: wait (TRIES × 0.5 s, default 20 s) until the daemon answers its stats port (ours,
# upstream ≥4.1.13) or has run for 2 s (4.1.9 upstream, sleep). Prints the seconds waited.
daemon_wait_ready() {
  local ns=$1 inst=$2 port=$3 tries=${4:-40} dir=/tmp/d-$1-$2 i kind
  kind=$(cat "$dir/kind")
  if [ "$kind" = sleep ] || { [ "$kind" = upstream ] && ! is_4113; }; then
    sleep 2
    return 0
  fi
  for i in $(seq 1 "$tries"); do
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      log "daemon $kind in $ns ($inst) died: $(tail -3 "$dir/log" | tr '\n' ' ')"
      return 1
    fi
    if [ -n "$(stats_text "$ns" "$port")" ]; then return 0; fi
    sleep 0.5
  done
  log "daemon $kind in $ns ($inst) never answered on stats port $port"
  return 1
}

# daemon_supervised NS FAMILY INSTANCE STATS_PORT: our daemon under a stand-in for systemd (the guest has none)
# doing what scripts/systemd/joold@.service asks: Restart=on-failure, RestartSec=2s, RestartPreventExitStatus=2 3.
# The daemon dir gets "pid" (the current daemon), "supervisor" (the loop's pid), "exits" (one line per exit:
# status and uptime in ms) and "starts" (one line per start); the log is appended across restarts.
daemon_supervised() {
  local ns=$1 fam=$2 inst=$3 port=$4 dir=/tmp/d-$1-$3
  rm -rf "$dir"
  mkdir -p "$dir"
  daemon_config "$ns" "$fam" "$inst" "$dir"
  echo ours >"$dir/kind"
  (
    while [ ! -f "$dir/unsupervise" ]; do
      # shellcheck disable=SC2086 # DAEMON_FLAGS is a list of words
      (cd "$dir" && exec ip netns exec "$ns" "$DENO" run $DAEMON_FLAGS "$DAEMON_PROJ/$DAEMON_ENTRY" \
        netsocket.json modsocket.json "$port" >>"$dir/log" 2>&1) &
      echo $! >"$dir/pid"
      uptime_ms >>"$dir/starts"
      wait $!
      st=$?
      echo "$st $(uptime_ms)" >>"$dir/exits"
      [ -f "$dir/unsupervise" ] && break
      case $st in 0 | 2 | 3) break ;; esac
      sleep 2
    done
  ) &
  echo $! >"$dir/supervisor"
}

# daemon_wait_back NS INSTANCE STATS_PORT STARTS SECONDS: wait until the daemon has been started more than STARTS
# times and answers its stats port. Returns 1 on timeout.
daemon_wait_back() {
  local dir=/tmp/d-$1-$2 i
  for i in $(seq 1 $(($5 * 2))); do
    if [ "$(grep -c . "$dir/starts" 2>/dev/null)" -gt "$4" ] && [ -n "$(stats_text "$1" "$3")" ]; then return 0; fi
    sleep 0.5
  done
  return 1
}

# daemon_stop NS INSTANCE: SIGTERM by PID; writes "stop_ms=N" (or "stop_ms=killed") to the daemon dir's
# "stop", and the daemon's exit status to its "exit". A supervised daemon is not restarted.
daemon_stop() {
  local dir=/tmp/d-$1-$2 pid t0 i
  [ -f "$dir/supervisor" ] && touch "$dir/unsupervise"
  [ -f "$dir/pid" ] || return 0
  pid=$(cat "$dir/pid")
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "stop_ms=not-running" >"$dir/stop"
    rm -f "$dir/pid"
    return 0
  fi
  t0=$(uptime_ms)
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    echo "stop_ms=killed" >"$dir/stop"
  else
    echo "stop_ms=$(($(uptime_ms) - t0))" >"$dir/stop"
  fi
  wait "$pid" 2>/dev/null
  echo "$?" >"$dir/exit"
  if [ -f "$dir/supervisor" ]; then
    wait "$(cat "$dir/supervisor")" 2>/dev/null
    tail -1 "$dir/exits" 2>/dev/null | cut -d' ' -f1 >"$dir/exit"
  fi
  rm -f "$dir/pid"
}

stats_text() { echo | nsx "$1" nc.openbsd -u -W 1 -w 2 127.0.0.1 "$2" 2>/dev/null; }
stats_json() { echo -n json | nsx "$1" nc.openbsd -u -W 1 -w 2 127.0.0.1 "$2" 2>/dev/null; }

# session_keys NS INSTANCE PROTO: the session table without the expiry column, sorted (for quick waits).
# CSV columns: Protocol, IPv6 remote addr/port, IPv6 local addr/port, IPv4 local addr/port, IPv4 remote
# addr/port, Expires in, State.
session_keys() {
  nsx "$1" jool -i "$2" session display "--$3" --numeric --csv 2>/dev/null | grep -v '^Protocol' |
    awk -F, '{ $10 = ""; print }' | sort
}
session_count() { session_keys "$@" | grep -c .; }

# wait_mirror SRC DST INSTANCE SECONDS: wait until DST holds every session of SRC (all protocols).
# Returns 0 when mirrored, 1 on timeout. Prints the seconds waited.
wait_mirror() {
  local src=$1 dst=$2 inst=$3 max=$4 t0 p missing
  t0=$(date +%s)
  while :; do
    missing=0
    for p in tcp udp icmp; do
      session_keys "$src" "$inst" "$p" >/tmp/keys.src
      session_keys "$dst" "$inst" "$p" >/tmp/keys.dst
      # (busybox grep -f with an empty pattern file matches everything: test emptiness first)
      if [ -s /tmp/keys.src ] && { [ ! -s /tmp/keys.dst ] || grep -qvxFf /tmp/keys.dst /tmp/keys.src; }; then
        missing=1
      fi
    done
    [ $missing = 0 ] && return 0
    [ $(($(date +%s) - t0)) -ge "$max" ] && return 1
    sleep 1
  done
}

# traffic TAG N_UDP: N ICMP pings, N UDP flows (dst ports 10000+base) from c6 to the server through the
# currently selected router. Each ping and each /dev/udp redirection is a new session.
traffic() {
  local base=$1 n=$2 i pids=()
  for i in $(seq 1 "$n"); do
    nsx c6 ping -c 1 -W 2 "$SERVER6" >/dev/null 2>&1 &
    pids+=($!)
  done
  nsx c6 bash -c "for i in \$(seq 1 $n); do echo x >/dev/udp/$SERVER6/\$(($base + i)); done" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  return 0
}

# tcp_open NAME: a long-lived TCP connection c6 → server port 7, driven through files in /tmp/tcp-NAME.
tcp_open() {
  local ctl=/tmp/tcp-$1
  rm -rf "$ctl"
  mkdir -p "$ctl"
  nsx c6 bash "$LAB/guest/tcp-client.sh" "$SERVER6" 7 "$ctl" >"$ctl/log" 2>&1 &
  echo $! >"$ctl/pid"
  tcp_echo "$1" hello
}
# tcp_echo NAME WORD: send WORD over the connection; succeeds when it comes back within 10 s.
tcp_echo() {
  local ctl=/tmp/tcp-$1 n i
  n=$(($(ls "$ctl" | grep -c '^req\.') + 1))
  echo "$2" >"$ctl/req.tmp"
  mv "$ctl/req.tmp" "$ctl/req.$n"
  for i in $(seq 1 100); do
    if [ -f "$ctl/rep.$n" ]; then
      [ "$(cat "$ctl/rep.$n")" = "$2" ]
      return
    fi
    sleep 0.1
  done
  return 1
}
tcp_close() {
  local ctl=/tmp/tcp-$1
  touch "$ctl/stop"
  kill "$(cat "$ctl/pid")" 2>/dev/null
}

# snapshot DIR NS INSTANCE [STATS_PORT]: session tables, kernel stats and daemon stats into DIR.
snapshot() {
  local dir=$1 ns=$2 inst=$3 port=${4:-} p
  mkdir -p "$dir"
  for p in tcp udp icmp; do
    nsx "$ns" jool -i "$inst" session display "--$p" --numeric --csv >"$dir/$ns.$inst.$p.csv" 2>&1
  done
  if is_4113; then nsx "$ns" jool -i "$inst" stats display --all >"$dir/$ns.$inst.jstat.txt" 2>&1; fi
  if [ -n "$port" ]; then
    stats_json "$ns" "$port" >"$dir/$ns.$inst.stats.json"
    stats_text "$ns" "$port" >"$dir/$ns.$inst.stats.txt"
  fi
}

# capture_start DIR / capture_stop: the sync link's traffic as seen by router A (DIR/sync.pcap), for debugging.
capture_start() {
  tcpdump -Z root -ni A-brss -U -w "$1/sync.pcap" udp >"$1/tcpdump.log" 2>&1 &
  CAPTURE_PID=$!
}
capture_stop() {
  [ -n "${CAPTURE_PID:-}" ] || return 0
  kill "$CAPTURE_PID" 2>/dev/null
  wait "$CAPTURE_PID" 2>/dev/null
  CAPTURE_PID=""
}

# nlmon_start DIR NS [FILE] / nlmon_stop: NS's netlink traffic (kernel↔daemon: multicasts, ACKs, JOOLD_ADDs, also
# `jool` queries) through a netlink tap device, headers only (snaplen 160), into DIR/FILE (default genl.pcap).
# Needs the nlmon module. Several namespaces may be captured at once; nlmon_stop ends every capture.
NLMON_PIDS=()
NLMON_NSS=()
nlmon_start() {
  nsx "$2" ip link add nlmon0 type nlmon 2>>"$1/nlmon.log" && nsx "$2" ip link set nlmon0 up || return 1
  nsx "$2" tcpdump -Z root -ni nlmon0 -s 160 -U -w "$1/${3:-genl.pcap}" >>"$1/nlmon.log" 2>&1 &
  NLMON_PIDS+=($!)
  NLMON_NSS+=("$2")
  sleep 1
}
nlmon_stop() {
  local ns
  [ ${#NLMON_PIDS[@]} -gt 0 ] || return 0
  sleep 0.5
  kill "${NLMON_PIDS[@]}" 2>/dev/null
  wait "${NLMON_PIDS[@]}" 2>/dev/null
  for ns in "${NLMON_NSS[@]}"; do nsx "$ns" ip link del nlmon0 2>/dev/null; done
  NLMON_PIDS=()
  NLMON_NSS=()
}

# daemon_rss NS INSTANCE: "VmRSS_kB VmHWM_kB NAME" of the largest process among the daemon's pid (from its pid
# file) and that pid's descendants (a wrapper may fork or exec the daemon).
daemon_rss() {
  local pid p pids best=""
  pid=$(cat "/tmp/d-$1-$2/pid" 2>/dev/null) || return 0
  pids=" $pid "
  for _ in 1 2 3 4; do
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      case "$pids" in *" $p "*) continue ;; esac
      case "$pids" in *" $(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null) "*) pids="$pids$p " ;; esac
    done
  done
  for p in $pids; do
    awk '$1 == "Name:" { n = $2 } $1 == "VmRSS:" { r = $2 } $1 == "VmHWM:" { h = $2 } END { if (r) print r, h, n }' \
      "/proc/$p/status" 2>/dev/null
  done | sort -n | tail -1
}

# result DIR KEY VALUE: one line in DIR/facts (key=value), read by the host.
fact() {
  mkdir -p "$1"
  echo "$2=$3" >>"$1/facts"
}
