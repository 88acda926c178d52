#!/bin/busybox sh
# /init of the lab guest (baked into the initramfs): mount, load modules, mount the 9p shares, then run the
# scenario named in /mnt/out/job.env from the project share, so scenario changes need no rebuild.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
echo "[guest] userspace up after $(cut -d' ' -f1 /proc/uptime)s, Jool $(cat /etc/lab/jool-version)"
while read -r ko; do
  insmod "$ko" 2>/tmp/insmod.err || { grep -q 'File exists' /tmp/insmod.err || cat /tmp/insmod.err; }
done </etc/lab/modules
for tag in proj deno out; do
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "$tag" "/mnt/$tag" || echo "[guest] cannot mount 9p share $tag"
done
ip link set lo up
echo "[guest] modules and shares ready after $(cut -d' ' -f1 /proc/uptime)s"
if [ -f /mnt/out/job.env ]; then
  . /mnt/out/job.env
  /usr/bin/bash "/mnt/proj/scripts/lab/guest/$LAB_SCENARIO.sh" >"/mnt/out/guest.log" 2>&1
  echo "$?" >/mnt/out/exit-status
  echo "[guest] scenario $LAB_SCENARIO exited $(cat /mnt/out/exit-status) after $(cut -d' ' -f1 /proc/uptime)s"
else
  echo "[guest] no /mnt/out/job.env; nothing to run"
fi
sync
poweroff -f
