#!/usr/bin/env bash
# Guest-side test cases of the VM lab. Each writes OUT/cases/NAME/: facts (key=value), snapshots of session
# tables, kernel stats and daemon stats, and the daemons' logs. The host parses them (scripts/lab/results.ts).
# Every case starts from fresh instances and leaves the topology as it found it (routes via A, links up).

SYNC_WAIT=${SYNC_WAIT:-12}
N_FLOWS=${N_FLOWS:-5}

case_dir() { echo "$OUT/cases/$1"; }

# fresh_instances INSTANCE...: remove and re-add the named instances on A and B (resets sessions and stats).
fresh_instances() {
  local r i
  for r in A B; do
    for i in "$@"; do
      nsx "$r" jool instance remove "$i" >/dev/null 2>&1
      instance_add "$r" "$i" || return 1
    done
  done
}

collect_logs() {
  local dir=$1 d
  for d in /tmp/d-*; do
    [ -d "$d" ] || continue
    cp "$d/log" "$dir/$(basename "$d").log" 2>/dev/null
    cp "$d/stop" "$dir/$(basename "$d").stop" 2>/dev/null
    cp "$d/exit" "$dir/$(basename "$d").exit" 2>/dev/null
    cp "$d/netsocket.json" "$dir/$(basename "$d").netsocket.json" 2>/dev/null
  done
}

cleanup_case() {
  local d
  for d in /tmp/d-*; do
    [ -d "$d" ] || continue
    local b=${d#/tmp/d-}
    daemon_stop "${b%%-*}" "${b#*-}"
  done
  for d in /tmp/tcp-*; do [ -d "$d" ] && tcp_close "${d#/tmp/tcp-}"; done
  router_links A up
  router_links B up
  via A
}

# sync_case NAME DAEMON_A DAEMON_B FAMILY [QUICK]
#   Sessions (TCP, UDP, ICMP) through A must reach B; a TCP connection opened through A must survive failover to
#   B; sessions through B must reach A. QUICK=1 (negative control) waits less.
sync_case() {
  local name=$1 da=$2 db=$3 fam=$4 quick=${5:-0} dir t0 wait=$SYNC_WAIT
  dir=$(case_dir "$name")
  [ "$quick" = 1 ] && wait=8
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: A=$da B=$db IPv$fam"
  fact "$dir" kind sync
  fact "$dir" daemon_a "$da"
  fact "$dir" daemon_b "$db"
  fact "$dir" family "$fam"
  fresh_instances default || {
    fact "$dir" setup fail
    return
  }
  capture_start "$dir"
  daemon_start A "$da" "$fam" default 45678
  daemon_start B "$db" "$fam" default 45678
  daemon_wait_ready A default 45678 && fact "$dir" ready_a yes || fact "$dir" ready_a no
  daemon_wait_ready B default 45678 && fact "$dir" ready_b yes || fact "$dir" ready_b no
  log "  $name: daemons up"
  via A
  tcp_open t1 && fact "$dir" tcp_open yes || fact "$dir" tcp_open no
  traffic 10000 "$N_FLOWS"
  wait_mirror A B default "$wait" && fact "$dir" a_to_b yes || fact "$dir" a_to_b no
  log "  $name: traffic through A, A→B $(tail -1 "$dir/facts")"
  snapshot "$dir/through-a" A default 45678
  snapshot "$dir/through-a" B default 45678
  # failover: A's client and server links go down, routes move to B; the connection must still echo.
  router_links A down
  via B
  tcp_echo t1 failover && fact "$dir" failover_echo yes || fact "$dir" failover_echo no
  log "  $name: failover $(tail -1 "$dir/facts")"
  # reverse: new flows through B must reach A (A's sync link is still up).
  traffic 20000 "$N_FLOWS"
  wait_mirror B A default "$wait" && fact "$dir" b_to_a yes || fact "$dir" b_to_a no
  log "  $name: traffic through B, $(tail -1 "$dir/facts")"
  sleep 1
  snapshot "$dir/through-b" A default 45678
  snapshot "$dir/through-b" B default 45678
  capture_stop
  cleanup_case
  collect_logs "$dir"
  rm -rf /tmp/d-*
  fact "$dir" seconds $(($(date +%s) - t0))
  log "case $name done in $(($(date +%s) - t0))s"
}

# advertise_case NAME DAEMON FAMILY: sessions made through A while B has no daemon; B's daemon starts late and
# an advertise on A must fill B (`jool session advertise` ≥4.1.13, `jool joold advertise` on 4.1.9).
advertise_case() {
  local name=$1 d=$2 fam=$3 dir t0
  dir=$(case_dir "$name")
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: advertise, daemons $d, IPv$fam"
  fact "$dir" kind advertise
  fact "$dir" daemon_a "$d"
  fact "$dir" daemon_b "$d"
  fact "$dir" family "$fam"
  fresh_instances default || return
  daemon_start A "$d" "$fam" default 45678
  daemon_wait_ready A default 45678 && fact "$dir" ready_a yes || fact "$dir" ready_a no
  via A
  tcp_open t1 && fact "$dir" tcp_open yes || fact "$dir" tcp_open no
  traffic 10000 "$N_FLOWS"
  sleep 3
  snapshot "$dir/before" B default
  fact "$dir" b_sessions_before "$(($(session_count B default tcp) + $(session_count B default udp) + $(session_count B default icmp)))"
  daemon_start B "$d" "$fam" default 45678
  daemon_wait_ready B default 45678 && fact "$dir" ready_b yes || fact "$dir" ready_b no
  if is_4113; then
    nsx A jool -i default session advertise >"$dir/advertise.out" 2>&1 && fact "$dir" advertise_cmd ok ||
      fact "$dir" advertise_cmd fail
  else
    nsx A jool -i default joold advertise >"$dir/advertise.out" 2>&1 && fact "$dir" advertise_cmd ok ||
      fact "$dir" advertise_cmd fail
  fi
  wait_mirror A B default "$SYNC_WAIT" && fact "$dir" a_to_b yes || fact "$dir" a_to_b no
  snapshot "$dir/after" A default 45678
  snapshot "$dir/after" B default 45678
  cleanup_case
  collect_logs "$dir"
  rm -rf /tmp/d-*
  fact "$dir" seconds $(($(date +%s) - t0))
}

# two_instances_case NAME DAEMON: a second instance on each router (iptables framework: one netfilter instance
# per namespace) with its own daemon and group; traffic through A's first instance must not leak into the
# second instance of either router, nor reach the second daemons.
two_instances_case() {
  local name=$1 d=$2 dir t0
  dir=$(case_dir "$name")
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: two instances, daemons $d"
  fact "$dir" kind two-instances
  fact "$dir" daemon_a "$d"
  fact "$dir" daemon_b "$d"
  fact "$dir" family 6
  fresh_instances default || return
  local r ok=yes fw
  # One netfilter instance per namespace: the second uses the iptables framework (`instance add --iptables`;
  # trixie's 4.1.13 tools are built without it, so try atomic configuration as well).
  for r in A B; do
    nsx "$r" jool instance remove second >/dev/null 2>&1
    fw=iptables
    if ! nsx "$r" jool instance add second --iptables --pool6 64:ff9b::/96 >>"$dir/second.out" 2>&1; then
      fw=iptables-atomic
      printf '{ "instance": "second", "framework": "iptables", "global": { "pool6": "64:ff9b::/96" } }\n' \
        >/tmp/second.json
      nsx "$r" jool file handle /tmp/second.json >>"$dir/second.out" 2>&1 || ok=no
    fi
    nsx "$r" jool -i second global update ss-enabled true >>"$dir/second.out" 2>&1 || ok=no
  done
  fact "$dir" second_instance "$ok"
  fact "$dir" second_framework "$fw"
  capture_start "$dir"
  daemon_start A "$d" 6 default 45678
  daemon_start B "$d" 6 default 45678
  daemon_start A "$d" 6 second 45679 ff08::db8:64:65
  daemon_start B "$d" 6 second 45679 ff08::db8:64:65
  daemon_wait_ready A default 45678 && daemon_wait_ready B default 45678 && fact "$dir" ready_a yes ||
    fact "$dir" ready_a no
  daemon_wait_ready A second 45679 && daemon_wait_ready B second 45679 && fact "$dir" ready_b yes ||
    fact "$dir" ready_b no
  via A
  tcp_open t1 && fact "$dir" tcp_open yes || fact "$dir" tcp_open no
  traffic 10000 "$N_FLOWS"
  wait_mirror A B default "$SYNC_WAIT" && fact "$dir" a_to_b yes || fact "$dir" a_to_b no
  sleep 2
  for r in A B; do
    snapshot "$dir/end" "$r" default 45678
    [ "$ok" = yes ] && snapshot "$dir/end" "$r" second 45679
  done
  capture_stop
  cleanup_case
  for r in A B; do nsx "$r" jool instance remove second >/dev/null 2>&1; done
  collect_logs "$dir"
  rm -rf /tmp/d-*
  fact "$dir" seconds $(($(date +%s) - t0))
}

# instance_gone_case NAME: A's instance is removed under A's running daemon (ours); sessions through B keep
# arriving at A's daemon. Expect one error line, a live or cleanly exited daemon, and no storm of kernel
# messages (counters in the stats, log line count).
instance_gone_case() {
  local name=$1 dir t0
  dir=$(case_dir "$name")
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: instance removed under a running daemon"
  fact "$dir" kind instance-gone
  fact "$dir" daemon_a ours
  fact "$dir" daemon_b ours
  fact "$dir" family 6
  fresh_instances default || return
  daemon_start A ours 6 default 45678
  daemon_start B ours 6 default 45678
  daemon_wait_ready A default 45678 && fact "$dir" ready_a yes || fact "$dir" ready_a no
  daemon_wait_ready B default 45678 && fact "$dir" ready_b yes || fact "$dir" ready_b no
  via A
  traffic 10000 2
  wait_mirror A B default "$SYNC_WAIT" && fact "$dir" a_to_b yes || fact "$dir" a_to_b no
  snapshot "$dir/before" A default 45678
  cp /tmp/d-A-default/log "$dir/log-before-removal" 2>/dev/null
  nsx A jool instance remove default && fact "$dir" removed yes || fact "$dir" removed no
  via B
  traffic 20000 "$N_FLOWS"
  sleep 3
  traffic 30000 "$N_FLOWS"
  sleep 5
  kill -0 "$(cat /tmp/d-A-default/pid)" 2>/dev/null && fact "$dir" alive_after yes || fact "$dir" alive_after no
  stats_json A 45678 >"$dir/A.after.stats.json"
  snapshot "$dir/end" B default 45678
  cleanup_case
  collect_logs "$dir"
  rm -rf /tmp/d-*
  fact "$dir" seconds $(($(date +%s) - t0))
}

# sched_trace_start / sched_trace_stop DIR: the guest kernel's scheduler and softirq events during a burst
# (`--sched-trace`), written to DIR/sched.trace: which task held each vCPU while an ACK waited.
sched_trace_start() {
  local t=/sys/kernel/tracing
  [ -e $t/trace ] || mount -t tracefs tracefs $t 2>/dev/null || return 0
  echo 0 >$t/tracing_on
  echo 16384 >$t/buffer_size_kb
  echo >$t/trace
  echo 'sched:sched_switch sched:sched_wakeup sched:sched_waking irq:softirq_entry irq:softirq_exit irq:irq_handler_entry irq:irq_handler_exit' >$t/set_event 2>/dev/null
  # Where a real-time task (the kernel thread) goes to sleep: its kernel stack, so a wait on a futex, a page fault
  # (the memory-map lock) or poll() can be told apart.
  echo 'stacktrace if prev_prio < 100' >$t/events/sched/sched_switch/trigger 2>/dev/null
  echo 1 >$t/tracing_on
}
sched_trace_stop() {
  local t=/sys/kernel/tracing
  [ -e $t/trace ] || return 0
  sleep 0.3
  echo 0 >$t/tracing_on
  cat $t/trace >"$1/sched.trace"
  echo >$t/set_event
  echo '!stacktrace if prev_prio < 100' >$t/events/sched/sched_switch/trigger 2>/dev/null
}

# burst_case NAME DAEMON N: N new UDP flows through A in one burst (daemons DAEMON on A and B); how many of A's
# sessions never reach B (facts: a_udp, missing, waited).
burst_case() {
  local name=$1 d=$2 n=$3 dir t0 w0
  dir=$(case_dir "$name")
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: burst of $n UDP flows, daemons $d"
  fact "$dir" kind burst
  fact "$dir" daemon_a "$d"
  fact "$dir" daemon_b "$d"
  fact "$dir" burst "$n"
  fresh_instances default || return
  capture_start "$dir"
  nlmon_start "$dir" A && fact "$dir" nlmon yes || fact "$dir" nlmon no
  if [ "${LAB_NLMON_B:-0}" = 1 ]; then
    nlmon_start "$dir" B genl-b.pcap && fact "$dir" nlmon_b yes || fact "$dir" nlmon_b no
  fi
  daemon_start A "$d" 6 default 45678
  daemon_start B "$d" 6 default 45678
  daemon_wait_ready A default 45678 && fact "$dir" ready_a yes || fact "$dir" ready_a no
  daemon_wait_ready B default 45678 && fact "$dir" ready_b yes || fact "$dir" ready_b no
  sleep 1
  fact "$dir" rss_idle_a "$(daemon_rss A default | tr ' ' /)"
  fact "$dir" rss_idle_b "$(daemon_rss B default | tr ' ' /)"
  via A
  if [ "${LAB_STEADY_SECONDS:-0}" -gt 0 ]; then
    # Routers meet bursts after a while of steady sync too: ten new flows a second first, then the burst.
    fact "$dir" steady_seconds "$LAB_STEADY_SECONDS"
    nsx c6 bash -c "for i in \$(seq 1 $((LAB_STEADY_SECONDS * 10))); do echo x >/dev/udp/$SERVER6/\$((30000 + i)); sleep 0.1; done" 2>/dev/null
    wait_mirror A B default "$SYNC_WAIT" && fact "$dir" steady_synced yes || fact "$dir" steady_synced no
  fi
  w0=$(date +%s)
  local m0
  m0=$(uptime_ms)
  # The capture's clock (wall time, µs): where the burst starts in genl.pcap and genl-b.pcap.
  fact "$dir" burst_start_us "${EPOCHREALTIME/./}"
  [ "${LAB_SCHED_TRACE:-0}" = 1 ] && sched_trace_start
  nsx c6 bash -c "for i in \$(seq 1 $n); do echo x >/dev/udp/$SERVER6/\$((40000 + i)); done" 2>/dev/null
  fact "$dir" burst_ms $(($(uptime_ms) - m0))
  [ "${LAB_SCHED_TRACE:-0}" = 1 ] && sched_trace_stop "$dir"
  wait_mirror A B default "$SYNC_WAIT" && fact "$dir" a_to_b yes || fact "$dir" a_to_b no
  fact "$dir" waited $(($(date +%s) - w0))
  fact "$dir" waited_ms $(($(uptime_ms) - m0))
  fact "$dir" rss_after_a "$(daemon_rss A default | tr ' ' /)"
  fact "$dir" rss_after_b "$(daemon_rss B default | tr ' ' /)"
  session_keys A default udp >/tmp/keys.a
  session_keys B default udp >/tmp/keys.b
  fact "$dir" a_udp "$(grep -c . /tmp/keys.a)"
  if [ -s /tmp/keys.b ]; then
    fact "$dir" missing "$(grep -cvxFf /tmp/keys.b /tmp/keys.a)"
  else
    fact "$dir" missing "$(grep -c . /tmp/keys.a)"
  fi
  snapshot "$dir/end" A default 45678
  snapshot "$dir/end" B default 45678
  nlmon_stop
  capture_stop
  cleanup_case
  collect_logs "$dir"
  rm -rf /tmp/d-*
  fact "$dir" seconds $(($(date +%s) - t0))
}

# burst_stop_case NAME N: our daemons on A and B; SIGTERM to A's daemon while a burst of N new UDP flows goes
# through A (facts in d-A-default.stop / .exit: how long it took, and its exit status).
burst_stop_case() {
  local name=$1 n=$2 dir t0 burster
  dir=$(case_dir "$name")
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: SIGTERM to A's daemon during a burst of $n UDP flows"
  fact "$dir" kind burst-stop
  fresh_instances default || return
  daemon_start A ours 6 default 45678
  daemon_start B ours 6 default 45678
  daemon_wait_ready A default 45678 && fact "$dir" ready_a yes || fact "$dir" ready_a no
  daemon_wait_ready B default 45678 && fact "$dir" ready_b yes || fact "$dir" ready_b no
  via A
  nsx c6 bash -c "for i in \$(seq 1 $n); do echo x >/dev/udp/$SERVER6/\$((40000 + i)); done" 2>/dev/null &
  burster=$!
  sleep 0.3
  kill -0 "$burster" 2>/dev/null && fact "$dir" burst_running yes || fact "$dir" burst_running no
  daemon_stop A default
  wait "$burster"
  cleanup_case
  collect_logs "$dir"
  rm -rf /tmp/d-*
  fact "$dir" seconds $(($(date +%s) - t0))
}

# attacker_up: the namespace X, a host on the sync link (brss) with 2001:db8:ff08::99, for the cases that send
# forged or hostile datagrams to the group. The case removes it with `ip netns del X`.
attacker_up() {
  ip netns add X 2>/dev/null
  nsx X ip link set lo up
  ip link show X-brss >/dev/null 2>&1 || attach X eth0 brss
  nsx X ip -6 addr replace 2001:db8:ff08::99/64 dev eth0 nodad
}

# kernel_log_since_before DIR FILE: the kernel log lines written since DIR/dmesg-before, into DIR/FILE (and the
# whole log into DIR/dmesg-after).
kernel_log_since_before() {
  dmesg >"$1/dmesg-after"
  tail -n +"$(($(grep -c '' "$1/dmesg-before") + 1))" "$1/dmesg-after" >"$1/$2"
}

# hostile_case NAME: an attacker namespace X on the sync link (brss) sends the datagrams of scripts/lab/hostile.ts
# (random, truncated, foreign-format, bogus-field, oversize, empty, the #404 probe) to the group, in the format of
# this boot's kernel; our daemons on A and B. B must inject nothing, log nothing in the kernel, stay up, count
# every datagram under its reason (hostile.json has the counts sent), then still sync fresh traffic from A.
hostile_case() {
  local name=$1 dir t0 fmt=C
  is_4113 || fmt=A
  dir=$(case_dir "$name")
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: hostile datagrams (format $fmt) from an attacker on the sync link"
  fact "$dir" kind hostile
  fact "$dir" format "$fmt"
  fresh_instances default || {
    fact "$dir" setup fail
    return
  }
  attacker_up
  capture_start "$dir"
  daemon_start A ours 6 default 45678
  daemon_start B ours 6 default 45678
  daemon_wait_ready A default 45678 && fact "$dir" ready_a yes || fact "$dir" ready_a no
  daemon_wait_ready B default 45678 && fact "$dir" ready_b yes || fact "$dir" ready_b no
  sleep 1
  snapshot "$dir/before" A default 45678
  snapshot "$dir/before" B default 45678
  dmesg >"$dir/dmesg-before"
  nsx X "$DENO" run --unstable-net --allow-net --allow-read --allow-write "$LAB/hostile.ts" "$fmt" "$GROUP6" \
    "$SYNC_PORT" "$dir/hostile.json" >"$dir/hostile.out" 2>&1 && fact "$dir" sent yes || fact "$dir" sent no
  log "  $name: $(tail -1 "$dir/hostile.out")"
  sleep 3
  kernel_log_since_before "$dir" dmesg-hostile
  kill -0 "$(cat /tmp/d-B-default/pid)" 2>/dev/null && fact "$dir" alive_b yes || fact "$dir" alive_b no
  kill -0 "$(cat /tmp/d-A-default/pid)" 2>/dev/null && fact "$dir" alive_a yes || fact "$dir" alive_a no
  snapshot "$dir/after" A default 45678
  snapshot "$dir/after" B default 45678
  via A
  traffic 10000 "$N_FLOWS"
  wait_mirror A B default "$SYNC_WAIT" && fact "$dir" a_to_b yes || fact "$dir" a_to_b no
  log "  $name: fresh traffic through A, A→B $(tail -1 "$dir/facts")"
  snapshot "$dir/end" A default 45678
  snapshot "$dir/end" B default 45678
  capture_stop
  cleanup_case
  collect_logs "$dir"
  rm -rf /tmp/d-*
  ip netns del X
  fact "$dir" seconds $(($(date +%s) - t0))
}

# hostile_auth_case NAME: A and B share a "key file" (upstream mode: authenticated DATA frames). An attacker X on
# the sync link without the key sends the plain hostile set, plausible forged sessions (plain, framed, sealed with
# its own key; scripts/lab/forge_auth.ts), then captures one of A's authentic frames and sends it again. Nothing
# may reach either kernel, every datagram is counted under its reason, and B still syncs from A.
hostile_auth_case() {
  local name=$1 dir t0 fmt=C ifindex replayer i
  is_4113 || fmt=A
  dir=$(case_dir "$name")
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: an attacker without the routers' key on the sync link (format $fmt)"
  fact "$dir" kind hostile-auth
  fact "$dir" format "$fmt"
  fresh_instances default || {
    fact "$dir" setup fail
    return
  }
  attacker_up
  head -c 32 /dev/urandom >/tmp/lab-sync.key
  chmod 600 /tmp/lab-sync.key
  capture_start "$dir"
  NETSOCKET_EXTRA=', "key file": "/tmp/lab-sync.key"' daemon_start A ours 6 default 45678
  NETSOCKET_EXTRA=', "key file": "/tmp/lab-sync.key"' daemon_start B ours 6 default 45678
  # 60 s: run alone (LAB_CASES=hostile-auth), A is the boot's first Deno start, which TCG makes slow.
  daemon_wait_ready A default 45678 120 && fact "$dir" ready_a yes || fact "$dir" ready_a no
  daemon_wait_ready B default 45678 120 && fact "$dir" ready_b yes || fact "$dir" ready_b no
  sleep 1
  snapshot "$dir/before" A default 45678
  snapshot "$dir/before" B default 45678
  dmesg >"$dir/dmesg-before"
  nsx X "$DENO" run --unstable-net --allow-net --allow-read --allow-write "$LAB/forge_auth.ts" forge "$fmt" \
    "$GROUP6" "$SYNC_PORT" "$dir/forged.json" >"$dir/forged.out" 2>&1 && fact "$dir" sent yes || fact "$dir" sent no
  log "  $name: $(tail -1 "$dir/forged.out")"
  sleep 3
  snapshot "$dir/after" A default 45678
  snapshot "$dir/after" B default 45678
  # The replay: X listens on the group, A's fresh traffic gives it an authentic frame to send again.
  ifindex=$(nsx X cat /sys/class/net/eth0/ifindex)
  nsx X "$DENO" run --unstable-net --allow-net --allow-read --allow-write "$LAB/forge_auth.ts" replay "$GROUP6" \
    "$SYNC_PORT" "$ifindex" 1 "$dir/replayed.json" >"$dir/replayed.out" 2>&1 &
  replayer=$!
  for i in $(seq 1 120); do
    [ -f "$dir/replayed.json.ready" ] && break
    sleep 0.5
  done
  via A
  traffic 10000 "$N_FLOWS"
  wait "$replayer" && fact "$dir" replayed yes || fact "$dir" replayed no
  log "  $name: $(tail -1 "$dir/replayed.out")"
  wait_mirror A B default "$SYNC_WAIT" && fact "$dir" a_to_b yes || fact "$dir" a_to_b no
  sleep 2
  kernel_log_since_before "$dir" dmesg-hostile
  kill -0 "$(cat /tmp/d-B-default/pid)" 2>/dev/null && fact "$dir" alive_b yes || fact "$dir" alive_b no
  kill -0 "$(cat /tmp/d-A-default/pid)" 2>/dev/null && fact "$dir" alive_a yes || fact "$dir" alive_a no
  snapshot "$dir/end" A default 45678
  snapshot "$dir/end" B default 45678
  capture_stop
  cleanup_case
  collect_logs "$dir"
  rm -rf /tmp/d-* /tmp/lab-sync.key
  ip netns del X
  fact "$dir" seconds $(($(date +%s) - t0))
}

# fault_phase DIR PHASE BASE: fresh traffic through A (UDP ports BASE+1…), then A's sessions must all be in B
# within SYNC_WAIT (or $4) seconds, with no command; facts synced_PHASE and waited_PHASE, snapshot DIR/PHASE.
fault_phase() {
  local dir=$1 phase=$2 base=$3 max=${4:-$SYNC_WAIT} w0
  via A
  traffic "$base" "$N_FLOWS"
  w0=$(date +%s)
  wait_mirror A B default "$max" && fact "$dir" "synced_$phase" yes || fact "$dir" "synced_$phase" no
  fact "$dir" "waited_$phase" $(($(date +%s) - w0))
  snapshot "$dir/$phase" A default 45678
  snapshot "$dir/$phase" B default 45678
  log "  fault $phase: $(grep "^synced_$phase=" "$dir/facts")"
}

# starts NS: how many times the supervised daemon of NS has been started.
starts() { grep -c . "/tmp/d-$1-default/starts" 2>/dev/null; }

# stats_flood_start NS PORT / stats_flood_stop: two loops sending `json` requests to NS's stats port as fast as
# bash can; the number sent goes to /tmp/flood-NS.N.
stats_flood_start() {
  local i
  rm -f /tmp/flood-stop
  for i in 1 2; do
    nsx "$1" bash -c "n=0; while [ ! -f /tmp/flood-stop ]; do echo json >/dev/udp/127.0.0.1/$2; n=\$((n + 1)); done; echo \$n >/tmp/flood-$1.$i" 2>/dev/null &
    FLOOD_PIDS+=($!)
  done
}
stats_flood_stop() {
  touch /tmp/flood-stop
  wait "${FLOOD_PIDS[@]}" 2>/dev/null
  FLOOD_PIDS=()
}

# faults_case NAME: our daemons on A and B under the systemd stand-in (daemon_supervised), then, in turn: both
# instances removed and re-added; the sync interface down and up on both; A's daemon (B's peer) SIGKILLed; B's
# daemon SIGKILLed; both stats ports flooded during a burst of 200 flows; the jool modules unloaded and reloaded
# (instances re-added, as an operator's boot script would). After each, fresh traffic through A must reach B
# with no command to any daemon.
faults_case() {
  local name=$1 dir t0 n r ko
  dir=$(case_dir "$name")
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: faults on a live pair"
  fact "$dir" kind faults
  fresh_instances default || {
    fact "$dir" setup fail
    return
  }
  capture_start "$dir"
  daemon_supervised A 6 default 45678
  daemon_supervised B 6 default 45678
  daemon_wait_back A default 45678 0 20 && fact "$dir" ready_a yes || fact "$dir" ready_a no
  daemon_wait_back B default 45678 0 20 && fact "$dir" ready_b yes || fact "$dir" ready_b no
  fault_phase "$dir" base 10000

  # 1. The instance removed and re-added under the running daemons (they stay up: see the README).
  n="$(starts A) $(starts B)"
  for r in A B; do instance_remove "$r" default; done
  sleep 2
  for r in A B; do instance_add "$r" default || fact "$dir" readd_failed "$r"; done
  fault_phase "$dir" instance 11000
  fact "$dir" restarts_instance "$n → $(starts A) $(starts B)"

  # 2. The sync interface down and up on both routers.
  for r in A B; do nsx "$r" ip link set ss down; done
  sleep 3
  for r in A B; do nsx "$r" ip link set ss up; done
  fault_phase "$dir" iface 12000
  fact "$dir" restarts_iface "$n → $(starts A) $(starts B)"

  # 3. The peer's daemon (A's, the sender) SIGKILLed; the supervisor restarts it.
  n=$(starts A)
  kill -KILL "$(cat /tmp/d-A-default/pid)"
  daemon_wait_back A default 45678 "$n" 30 && fact "$dir" back_peer yes || fact "$dir" back_peer no
  fault_phase "$dir" peer-kill 13000

  # 4. Our own daemon (B's, the receiver) SIGKILLed; restarted the same way.
  n=$(starts B)
  kill -KILL "$(cat /tmp/d-B-default/pid)"
  daemon_wait_back B default 45678 "$n" 30 && fact "$dir" back_own yes || fact "$dir" back_own no
  fault_phase "$dir" own-kill 14000

  # 5. Both stats ports flooded with `json` requests while a burst of 200 new flows goes through A.
  n="$(starts A) $(starts B)"
  FLOOD_PIDS=()
  snapshot "$dir/flood-before" A default 45678
  snapshot "$dir/flood-before" B default 45678
  stats_flood_start A 45678
  stats_flood_start B 45678
  sleep 1
  nsx c6 bash -c "for i in \$(seq 1 200); do echo x >/dev/udp/$SERVER6/\$((40000 + i)); done" 2>/dev/null
  local w0
  w0=$(date +%s)
  wait_mirror A B default 45 && fact "$dir" synced_flood yes || fact "$dir" synced_flood no
  fact "$dir" waited_flood $(($(date +%s) - w0))
  stats_flood_stop
  fact "$dir" flood_requests "$(cat /tmp/flood-A.* /tmp/flood-B.* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')"
  # The flood's backlog is read (beyond the answer budget, unanswered) before a new request: up to three tries,
  # a second apart, as a scraper on UDP would; the tries taken are a fact of their own.
  local tries=0 answered=no
  while [ "$tries" -lt 3 ] && [ "$answered" = no ]; do
    tries=$((tries + 1))
    [ -n "$(stats_text A 45678)" ] && [ -n "$(stats_text B 45678)" ] && answered=yes || sleep 1
  done
  fact "$dir" stats_after_flood "$answered"
  fact "$dir" stats_after_flood_tries "$tries"
  snapshot "$dir/flood" A default 45678
  snapshot "$dir/flood" B default 45678
  fact "$dir" restarts_flood "$n → $(starts A) $(starts B)"
  log "  fault flood: $(grep '^synced_flood=' "$dir/facts"), $(tail -3 "$dir/facts" | head -1)"

  # 6. The jool modules unloaded and reloaded (every instance goes with them; re-added as a boot script would).
  n="$(starts A) $(starts B)"
  local na nb
  na=$(starts A) nb=$(starts B)
  # jool_common registers the Generic Netlink family "Jool"; jool (NAT64) and jool_siit depend on it.
  local rm=ok m
  fact "$dir" rmmod_ms "$(uptime_ms)"
  for m in jool_siit jool jool_common; do
    grep -q "^$m " /proc/modules || continue
    rmmod "$m" 2>>"$dir/rmmod.err" || rm=fail
  done
  fact "$dir" rmmod "$rm"
  sleep 2
  while read -r ko; do
    case "$ko" in *jool*) insmod "$ko" 2>>"$dir/rmmod.err" ;; esac
  done </etc/lab/modules
  for r in A B; do instance_add "$r" default || fact "$dir" readd_module_failed "$r"; done
  daemon_wait_back A default 45678 "$na" 40 && fact "$dir" back_module_a yes || fact "$dir" back_module_a no
  daemon_wait_back B default 45678 "$nb" 40 && fact "$dir" back_module_b yes || fact "$dir" back_module_b no
  fault_phase "$dir" module 15000
  fact "$dir" restarts_module "$n → $(starts A) $(starts B)"

  capture_stop
  cleanup_case
  for r in A B; do cp "/tmp/d-$r-default/exits" "$dir/d-$r-default.exits" 2>/dev/null; done
  collect_logs "$dir"
  rm -rf /tmp/d-*
  fact "$dir" seconds $(($(date +%s) - t0))
}

# pool4_case NAME: a forger namespace X on the sync link sends well-formed datagrams (scripts/lab/forge_pool4.ts)
# with one session inside the routers' pool4 (198.51.100.1) and one outside it (198.51.100.2). A runs our daemon
# without the check (the control: both get in), B with "check pool4": 1 (only the inside one may). Then B's pool4
# gains 198.51.100.2 and, once B's daemon has re-read it (every 10 s), a second round must get in whole.
pool4_case() {
  local name=$1 dir t0 fmt=C
  is_4113 || fmt=A
  dir=$(case_dir "$name")
  mkdir -p "$dir"
  t0=$(date +%s)
  log "case $name: forged sessions inside and outside pool4 (format $fmt); B checks pool4"
  fact "$dir" kind pool4
  fact "$dir" format "$fmt"
  fresh_instances default || {
    fact "$dir" setup fail
    return
  }
  attacker_up
  capture_start "$dir"
  daemon_start A ours 6 default 45678
  # B: our daemon as daemon_start runs it, with "check pool4": 1 added to its netsocket.json.
  local bdir=/tmp/d-B-default
  rm -rf "$bdir"
  mkdir -p "$bdir"
  daemon_config B 6 default "$bdir"
  { echo '{'; echo '  "check pool4": 1,'; tail -n +2 "$bdir/netsocket.json"; } >"$bdir/netsocket.tmp"
  mv "$bdir/netsocket.tmp" "$bdir/netsocket.json"
  # shellcheck disable=SC2086 # DAEMON_FLAGS is a list of words
  (cd "$bdir" && exec ip netns exec B "$DENO" run $DAEMON_FLAGS "$DAEMON_PROJ/$DAEMON_ENTRY" \
    netsocket.json modsocket.json 45678 >"$bdir/log" 2>&1) &
  echo $! >"$bdir/pid"
  echo ours >"$bdir/kind"
  daemon_wait_ready A default 45678 && fact "$dir" ready_a yes || fact "$dir" ready_a no
  daemon_wait_ready B default 45678 && fact "$dir" ready_b yes || fact "$dir" ready_b no
  sleep 1
  snapshot "$dir/before" A default 45678
  snapshot "$dir/before" B default 45678
  dmesg >"$dir/dmesg-before"
  nsx X "$DENO" run --unstable-net --allow-net --allow-read "$LAB/forge_pool4.ts" "$fmt" "$GROUP6" "$SYNC_PORT" 1 \
    >"$dir/forge1.out" 2>&1 && fact "$dir" sent1 yes || fact "$dir" sent1 no
  log "  $name: round 1 $(tail -1 "$dir/forge1.out")"
  sleep 3
  snapshot "$dir/after" A default 45678
  snapshot "$dir/after" B default 45678
  # B's pool4 grows; its daemon sees it at its next re-read (≤ 10 s).
  nsx B jool -i default pool4 add --udp 198.51.100.2 61001-65535 && fact "$dir" pool4_added yes ||
    fact "$dir" pool4_added no
  sleep 12
  nsx X "$DENO" run --unstable-net --allow-net --allow-read "$LAB/forge_pool4.ts" "$fmt" "$GROUP6" "$SYNC_PORT" 2 \
    >"$dir/forge2.out" 2>&1 && fact "$dir" sent2 yes || fact "$dir" sent2 no
  log "  $name: round 2 $(tail -1 "$dir/forge2.out")"
  sleep 3
  kernel_log_since_before "$dir" dmesg-pool4
  kill -0 "$(cat /tmp/d-B-default/pid)" 2>/dev/null && fact "$dir" alive_b yes || fact "$dir" alive_b no
  snapshot "$dir/grown" A default 45678
  snapshot "$dir/grown" B default 45678
  capture_stop
  cleanup_case
  collect_logs "$dir"
  rm -rf /tmp/d-*
  ip netns del X
  fact "$dir" seconds $(($(date +%s) - t0))
}
