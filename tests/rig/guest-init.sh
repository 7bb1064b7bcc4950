#!/bin/busybox sh
# tests/rig/guest-init.sh - /init of the rig's initramfs (busybox, PID 1).
# Loads the modules rig.sh packed (in dependency order), mounts the host's /
# read-only and the shares read-write over virtio-9p, chroots into the host
# root, sources the run's env.sh (rxe0 setup, CF_HOST) and runs cmd.sh.
# Writes the command's exit status to the run directory, then powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
while read -r ko; do insmod "/ko/$ko" 2>/dev/null || echo "rig-guest: insmod $ko failed"; done < /ko/order
P9="-t 9p -o trans=virtio,version=9p2000.L,msize=262144"
R=/root
if ! mount $P9,ro,cache=loose cfroot $R; then echo "rig-guest: cannot mount the host root"; poweroff -f; fi
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs shm $R/dev/shm
for d in tmp run var/tmp root; do mount -t tmpfs -o mode=1777 tmpfs $R/$d; done
mkdir -p $R/run/cfrig
mount $P9 cfrun $R/run/cfrig || { echo "rig-guest: cannot mount the run dir"; poweroff -f; }
while read -r tag dir; do
	mkdir -p "$R$dir" 2>/dev/null # under a guest tmpfs (/tmp, /var/tmp) it must be made
	mount $P9 "$tag" "$R$dir" || echo "rig-guest: cannot mount share $dir"
done < $R/run/cfrig/shares
hostname cfrig
ip link set lo up
echo "rig-guest: up after $(cut -d' ' -f1 /proc/uptime)s"
CLEANENV="/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8"
if [ -f $R/run/cfrig/interactive ]; then
	setsid cttyhack chroot $R $CLEANENV TERM=linux /bin/bash -c '. /run/cfrig/env.sh; exec /bin/bash -i'
else
	chroot $R $CLEANENV TERM=dumb /bin/bash -c '. /run/cfrig/env.sh; . /run/cfrig/cmd.sh' < /dev/console
fi
echo $? > $R/run/cfrig/rc
sync
poweroff -f
