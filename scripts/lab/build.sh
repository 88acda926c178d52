#!/usr/bin/env bash
# Builds the VM lab for one Jool version from Debian packages: Jool's kernel modules (from jool-dkms, extracted,
# never installed) against the /boot kernel's headers, and an initramfs holding busybox, that version's jool
# tools, ip/ss/bash/tcpdump and the libraries a dynamically linked deno needs.
#
# usage: build.sh JOOL_VERSION CACHE_DIR      (JOOL_VERSION: 4.1.9 or 4.1.13; run as root)
# Prints the initramfs path on the last line of stdout. Outputs are cached in CACHE_DIR/KVER/jool-VERSION/.
set -euo pipefail

JOOL_VERSION=${1:?usage: build.sh JOOL_VERSION CACHE_DIR}
CACHE=${2:?usage: build.sh JOOL_VERSION CACHE_DIR}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
LAB_DIR=$(cd "$(dirname "$0")" && pwd)
START=$(date +%s)
STEP="start"

say() { echo "[lab build +$(($(date +%s) - START))s] $*" >&2; }
fail() {
  echo "[lab build] FAILED at step '$STEP': $*" >&2
  exit 1
}
trap 'fail "command failed (line $LINENO); see the output above"' ERR

case "$JOOL_VERSION" in
4.1.9) SUITE_KIND=system ;;
4.1.13) SUITE_KIND=trixie ;;
*) fail "unsupported Jool version '$JOOL_VERSION'; use 4.1.9 or 4.1.13" ;;
esac
[ "$(id -u)" = 0 ] || fail "the lab needs root (apt-get, depmod, cpio with device nodes); rerun as root"

# apt_install PKG...: apt-get install, refreshing the package lists once if the first attempt fails.
apt_install() {
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 && return 0
  say "apt-get install failed; running apt-get update and retrying"
  apt-get update >&2 || fail "apt-get update failed; check the network and /etc/apt sources"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2 ||
    fail "apt-get install $* failed; install them by hand and rerun"
}

# --- step: kernel --------------------------------------------------------------------------------------------
STEP="pick kernel"
KVER=""
for img in /boot/vmlinuz-*; do
  [ -e "$img" ] || continue
  k=${img#/boot/vmlinuz-}
  if [ -d "/lib/modules/$k/kernel" ]; then KVER=$k; fi
done
if [ -z "$KVER" ]; then
  say "no /boot kernel: installing linux-image-amd64 linux-headers-amd64"
  apt_install linux-image-amd64 linux-headers-amd64
  for img in /boot/vmlinuz-*; do
    [ -e "$img" ] || continue
    k=${img#/boot/vmlinuz-}
    if [ -d "/lib/modules/$k/kernel" ]; then KVER=$k; fi
  done
fi
[ -n "$KVER" ] || fail "no /boot/vmlinuz-KVER with /lib/modules/KVER; install linux-image-amd64"
say "kernel $KVER"

# --- step: packages ------------------------------------------------------------------------------------------
STEP="apt packages"
NEED=(qemu-system-x86 "linux-headers-$KVER" build-essential kmod cpio gzip busybox-static iproute2 jool-tools
  libnl-3-200 libnl-genl-3-200 tcpdump netcat-openbsd bash)
MISSING=()
for p in "${NEED[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || MISSING+=("$p")
done
if [ ${#MISSING[@]} -gt 0 ]; then
  say "installing missing packages: ${MISSING[*]}"
  apt_install "${MISSING[@]}"
fi

OUT="$CACHE/$KVER/jool-$JOOL_VERSION"
INITRD="$OUT/initramfs.cpio.gz"
STAMP_KEY="$KVER $JOOL_VERSION $(sha256sum "$LAB_DIR/build.sh" "$LAB_DIR/init.sh" | sha256sum | cut -c1-16)"
if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$STAMP_KEY" ] && [ -f "$INITRD" ]; then
  say "cached: $INITRD"
  echo "$INITRD"
  exit 0
fi
mkdir -p "$OUT"

# --- step: Jool packages -------------------------------------------------------------------------------------
DEBS="$CACHE/debs/$JOOL_VERSION"
mkdir -p "$DEBS"
if [ "$SUITE_KIND" = system ]; then
  STEP="download jool-dkms $JOOL_VERSION (system suite)"
  if ! ls "$DEBS"/jool-dkms_"$JOOL_VERSION"-*.deb >/dev/null 2>&1; then
    say "apt-get download jool-dkms"
    (cd "$DEBS" && apt-get -o APT::Sandbox::User=root download "jool-dkms=$JOOL_VERSION-*" >&2) ||
      fail "apt-get download jool-dkms=$JOOL_VERSION-* failed; run apt-get update (the system suite must carry $JOOL_VERSION)"
  fi
  [ "$(dpkg-query -W -f '${Version}' jool-tools)" = "$JOOL_VERSION-1" ] ||
    say "warning: installed jool-tools is $(dpkg-query -W -f '${Version}' jool-tools), not $JOOL_VERSION-1"
else
  STEP="download Jool $JOOL_VERSION from trixie (private apt config)"
  PKGS=(jool-dkms jool-tools libc6 libnl-3-200 libnl-genl-3-200 libgcc-s1 libxtables12)
  if ! ls "$DEBS"/jool-tools_"$JOOL_VERSION"-*.deb >/dev/null 2>&1; then
    APT="$CACHE/apt-trixie"
    mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
    # Reuse the system's Debian mirror (first deb.sources / sources.list URI serving a non-security suite).
    MIRROR=$(
      {
        cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" {print $2}' || true
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" {print $2}' || true
      } 2>/dev/null | grep -v -e security -e '^\[' | grep -i debian | head -1 || true
    )
    [ -n "$MIRROR" ] || fail "no Debian mirror found in /etc/apt sources; add one to /etc/apt/sources.list"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR trixie main" >"$APT/sources.list"
    OPTS=(-o "Dir::Etc::SourceList=$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o Dir::Etc::Preferences=/dev/null
      -o Dir::Etc::PreferencesParts=/dev/null -o APT::Sandbox::User=root)
    say "apt-get update (private trixie lists from $MIRROR)"
    apt-get "${OPTS[@]}" update >&2 || fail "private apt-get update of trixie failed; check the mirror $MIRROR"
    say "apt-get download ${PKGS[*]}"
    (cd "$DEBS" && apt-get "${OPTS[@]}" download "${PKGS[@]}" >&2) || fail "apt-get download from trixie failed"
  fi
  ls "$DEBS"/jool-tools_"$JOOL_VERSION"-*.deb >/dev/null 2>&1 ||
    fail "trixie no longer carries jool-tools $JOOL_VERSION (got: $(ls "$DEBS")); update the lab's version list"
fi

# --- step: modules -------------------------------------------------------------------------------------------
STEP="build Jool $JOOL_VERSION modules for $KVER"
SRC="$CACHE/src/$JOOL_VERSION"
rm -rf "$SRC"
mkdir -p "$SRC"
dpkg-deb -x "$(ls "$DEBS"/jool-dkms_"$JOOL_VERSION"-*.deb | head -1)" "$SRC"
MOD=$(dirname "$(ls -d "$SRC"/usr/src/*/dkms.conf | head -1)")/src/mod
[ -d "$MOD/common" ] || fail "jool-dkms package has no src/mod/common"
HDR="/usr/src/linux-headers-$KVER"
say "make modules (takes ~30 s)"
J=$(nproc)
# ≥4.1.11 builds the iptables framework only with -DNETFILTER_XTABLES (Debian's module has none). The lab turns
# it on so a second instance can share a router namespace with the netfilter one (the two-instances case).
KCF=""
[ "$SUITE_KIND" = system ] || KCF="-DNETFILTER_XTABLES"
{
  make -j"$J" -C "$HDR" M="$MOD/common" KCFLAGS="$KCF" modules
  make -j"$J" -C "$HDR" M="$MOD/nat64" KCFLAGS="$KCF" KBUILD_EXTRA_SYMBOLS="$MOD/common/Module.symvers" modules
  make -j"$J" -C "$HDR" M="$MOD/siit" KCFLAGS="$KCF" KBUILD_EXTRA_SYMBOLS="$MOD/common/Module.symvers" modules
} >"$OUT/modules-build.log" 2>&1 || fail "kernel module build failed; see $OUT/modules-build.log"
say "modules built"

# --- step: initramfs -----------------------------------------------------------------------------------------
STEP="initramfs"
ROOT="$OUT/root"
rm -rf "$ROOT"
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,lib64,proc,sys,dev,tmp,run,mnt/proj,mnt/deno,mnt/out,etc/lab,root,var}
ln -s ../run "$ROOT/var/run"
cp /bin/busybox "$ROOT/bin/busybox"
for a in $(/bin/busybox --list); do
  [ -e "$ROOT/bin/$a" ] || ln -s busybox "$ROOT/bin/$a"
done

copy_file() { # copy a host file (following symlinks) to the same path in the initramfs
  local f=$1
  mkdir -p "$ROOT$(dirname "$f")"
  cp -L "$f" "$ROOT$f"
}
copy_with_libs() {
  local f
  for f in "$@"; do
    copy_file "$f"
    ldd "$f" 2>/dev/null | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | while read -r lib; do
      [ -n "$lib" ] && [ -e "$lib" ] && copy_file "$lib"
    done
  done
}

DENO_BIN="$LAB_DIR/../../node_modules/@deno/linux-x64-glibc/deno"
HOST_BINS=(/usr/bin/bash /usr/sbin/ip /usr/bin/ss /usr/bin/tcpdump /bin/nc.openbsd)
[ "$SUITE_KIND" = system ] && HOST_BINS+=(/usr/bin/jool /usr/bin/jool_siit /usr/bin/joold)
copy_with_libs "${HOST_BINS[@]}"
# deno's own libraries plus what it dlopens (libnl) and glibc's name-service modules.
[ -x "$DENO_BIN" ] && copy_with_libs "$DENO_BIN" && rm -f "$ROOT$DENO_BIN"
for l in libnl-3.so.200 libnl-genl-3.so.200 libnss_files.so.2 libnss_dns.so.2 libresolv.so.2 libdl.so.2 \
  librt.so.1 libpthread.so.0 libm.so.6 libgcc_s.so.1; do
  [ -e "/lib/x86_64-linux-gnu/$l" ] && copy_with_libs "/lib/x86_64-linux-gnu/$l"
done
# Debian is merged-/usr: make /usr/lib and /lib the same in the guest too.
if [ -d "$ROOT/usr/lib" ]; then
  cp -a "$ROOT/usr/lib/." "$ROOT/lib/" 2>/dev/null || true
  rm -rf "$ROOT/usr/lib"
fi
ln -sfn ../lib "$ROOT/usr/lib"
[ -e "$ROOT/lib64/ld-linux-x86-64.so.2" ] || cp -L /lib64/ld-linux-x86-64.so.2 "$ROOT/lib64/"
ln -sf bash "$ROOT/usr/bin/sh.bash"

if [ "$SUITE_KIND" = trixie ]; then
  # trixie's tools need trixie's glibc: own prefix, run through its loader from wrappers on PATH.
  PFX="/opt/jool-$JOOL_VERSION"
  mkdir -p "$ROOT$PFX"
  for d in "$DEBS"/*.deb; do
    case "$d" in */jool-dkms_*) ;; *) dpkg-deb -x "$d" "$ROOT$PFX" ;; esac
  done
  rm -rf "$ROOT$PFX/usr/src" "$ROOT$PFX/usr/share"
  LD=$(cd "$ROOT$PFX" && find . -name 'ld-linux-x86-64.so.2' | head -1)
  [ -n "$LD" ] || fail "trixie libc6 has no ld-linux-x86-64.so.2"
  LIBPATH="$PFX/usr/lib/x86_64-linux-gnu:$PFX/lib/x86_64-linux-gnu"
  for t in jool jool_siit joold; do
    bin=$(cd "$ROOT$PFX" && find . -path "*bin/$t" | head -1)
    [ -n "$bin" ] || fail "trixie jool-tools has no $t"
    printf '#!/bin/sh\nexec %s --library-path %s %s "$@"\n' "$PFX/${LD#./}" "$LIBPATH" "$PFX/${bin#./}" \
      >"$ROOT/usr/bin/$t"
    chmod +x "$ROOT/usr/bin/$t"
  done
fi

# kernel modules, in dependency order, loaded by /init with insmod
# nlmon: a netlink tap device, to capture a namespace's Generic Netlink traffic (the kernel↔daemon channel).
KMODS=(veth bridge 9p 9pnet_virtio virtio_pci virtio_rng x_tables nf_defrag_ipv4 nf_defrag_ipv6 dummy nlmon)
for ko in "$MOD/common/jool_common.ko" "$MOD/nat64/jool.ko" "$MOD/siit/jool_siit.ko"; do
  [ -f "$ko" ] || fail "missing $ko after the build"
  for d in $(modinfo -F depends "$ko" | tr ',' ' '); do
    case "$d" in jool_common) ;; *) KMODS+=("$d") ;; esac
  done
done
: >"$ROOT/etc/lab/modules"
for m in "${KMODS[@]}"; do
  modprobe -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}' | while read -r ko; do
    if ! grep -qxF "$ko" "$ROOT/etc/lab/modules"; then
      copy_file "$ko"
      echo "$ko" >>"$ROOT/etc/lab/modules"
    fi
  done
done
mkdir -p "$ROOT/lib/modules/$KVER/extra"
for ko in "$MOD/common/jool_common.ko" "$MOD/nat64/jool.ko" "$MOD/siit/jool_siit.ko"; do
  cp "$ko" "$ROOT/lib/modules/$KVER/extra/"
  echo "/lib/modules/$KVER/extra/$(basename "$ko")" >>"$ROOT/etc/lab/modules"
done

cp "$LAB_DIR/init.sh" "$ROOT/init"
chmod +x "$ROOT/init"
echo "$JOOL_VERSION" >"$ROOT/etc/lab/jool-version"
echo "$KVER" >"$ROOT/etc/lab/kernel"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\n' >"$ROOT/etc/group"
printf 'hosts: files\n' >"$ROOT/etc/nsswitch.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$ROOT/etc/hosts"
(cd "$ROOT" && find . | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp"
mv "$INITRD.tmp" "$INITRD"
echo "$STAMP_KEY" >"$OUT/stamp"
echo "/boot/vmlinuz-$KVER" >"$OUT/kernel"
say "initramfs $(du -h "$INITRD" | cut -f1) at $INITRD"
echo "$INITRD"
