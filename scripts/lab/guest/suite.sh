#!/usr/bin/env bash
# Runs the cases listed in LAB_CASES (space-separated KIND:NAME[:ARGS...], see cases.sh) in one boot:
#   sync:NAME:DAEMON_A:DAEMON_B:FAMILY[:quick]   advertise:NAME:DAEMON:FAMILY
#   two-instances:NAME:DAEMON                    instance-gone:NAME
#   burst:NAME:DAEMON:FLOWS                      burst-stop:NAME:FLOWS
#   hostile:NAME                                 faults:NAME
#   pool4:NAME                                   hostile-auth:NAME
#   reliable:NAME:DAEMON (ours: reliable mode; upstream: reference)
source /mnt/proj/scripts/lab/guest/lib.sh
source /mnt/proj/scripts/lab/guest/cases.sh
source /mnt/proj/scripts/lab/guest/reliable.sh
mkdir -p "$OUT/cases"
log "Jool $JOOL_VERSION: $(jool --version 2>&1 | head -1); cases: $LAB_CASES"
topology_up
for spec in $LAB_CASES; do
  IFS=: read -r kind name a1 a2 a3 a4 <<<"$spec"
  case "$kind" in
  sync) sync_case "$name" "$a1" "$a2" "$a3" "${a4:-0}" ;;
  advertise) advertise_case "$name" "$a1" "$a2" ;;
  two-instances) two_instances_case "$name" "$a1" ;;
  instance-gone) instance_gone_case "$name" ;;
  burst) burst_case "$name" "$a1" "$a2" ;;
  burst-stop) burst_stop_case "$name" "$a1" ;;
  hostile) hostile_case "$name" ;;
  hostile-auth) hostile_auth_case "$name" ;;
  faults) faults_case "$name" ;;
  pool4) pool4_case "$name" ;;
  reliable) reliable_case "$name" "$a1" ;;
  *) log "unknown case kind '$kind' in '$spec'" ;;
  esac
  echo "$name" >>"$OUT/cases-done"
done
log "all cases done"
