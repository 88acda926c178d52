#!/usr/bin/env bash
# Long-lived TCP client: connects to HOST PORT, then for each CTL/req.N file sends its line and writes the echoed
# line to CTL/rep.N; ends when CTL/stop appears. Run inside the client namespace by lib.sh's tcp_open.
host=$1 port=$2 ctl=$3
exec 3<>"/dev/tcp/$host/$port" || {
  echo "connect failed" >"$ctl/error"
  exit 1
}
n=1
while [ ! -e "$ctl/stop" ]; do
  if [ -f "$ctl/req.$n" ]; then
    echo "$(cat "$ctl/req.$n")" >&3
    if read -r -t 10 line <&3; then echo "$line" >"$ctl/rep.$n"; else echo "TIMEOUT" >"$ctl/rep.$n"; fi
    n=$((n + 1))
  else
    sleep 0.1
  fi
done
