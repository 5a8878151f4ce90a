#!/bin/busybox sh
# PID 1 of the real-kernel test guest (hack/real-kernel/build-guest.sh puts it
# into the initramfs as /init). It loads the modules the build listed in
# /modules/order, makes the guest's root a copy-on-write view of the host's /
# (the host shares / read-only over 9p; a tmpfs takes every write, so nothing
# the guest does reaches the host), sets up the management NIC (the virtio-net
# with MAC 52:54:00:d5:00:01, QEMU user networking: the host is 10.0.2.2) and
# becomes the test agent: `dra.node=<node binary> dra.agent=<agent script>` on
# the kernel command line.
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
  echo "guest-init: $*" >/dev/console
  poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in $(cat /modules/order); do
  insmod "/modules/${module}" || fail "insmod ${module} failed"
done

arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }
NODE="$(arg dra.node)"
AGENT="$(arg dra.agent)"
[ -n "${NODE}" ] && [ -n "${AGENT}" ] || fail "dra.node= and dra.agent= must be on the kernel command line"

mkdir -p /lower /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,cache=loose,msize=524288,ro hostroot /lower || fail "cannot mount the host's / (9p tag hostroot)"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "overlay over the host's / failed"
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm

mgmt=""
for dev in /newroot/sys/class/net/*; do
  [ "$(cat "${dev}/address")" = "52:54:00:d5:00:01" ] && mgmt="$(basename "${dev}")"
done
[ -n "${mgmt}" ] || fail "no management NIC (virtio-net 52:54:00:d5:00:01)"
ip link set lo up
ip link set "${mgmt}" up
ip addr add 10.0.2.15/24 dev "${mgmt}"
ip route add default via 10.0.2.2
echo "dra-sriov-guest" >/newroot/proc/sys/kernel/hostname
printf '127.0.0.1 localhost\n10.0.2.2 kubernetes\n' >/newroot/etc/hosts
echo "guest-init: management NIC ${mgmt}, starting ${AGENT}" >/dev/console
exec switch_root /newroot "${NODE}" "${AGENT}"
