#!/usr/bin/env bash
# Installs the Debian packages the tests use (as root), only those that are missing. Idempotent and quick when
# everything is there. The VM lab installs its own, larger set (scripts/lab/).
set -euo pipefail
packages=(iproute2 libnl-3-200 libnl-genl-3-200 tcpdump netcat-openbsd)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages ${missing[*]}; not root, so not installing them (tests that need them will say so)" >&2
  exit 0
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq "${missing[@]}" >&2
