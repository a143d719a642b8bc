#!/bin/busybox sh
# /init of the kernel-matrix initramfs (PID 1; run by busybox's ash).
#
# Serial ports (the host turns each into a file):
#   ttyS0  the console: kernel messages and this script's own notes
#   ttyS1  the guest script's stdout and stderr, as written (raw)
#   ttyS2  status lines for the host: "KM-<WORD> ..." (see below)
#   ttyS3  a gzipped tar of $KM_OUT, written once the guest script has ended (raw)
# Status lines: KM-INIT <uptime>, KM-FACT <key> <value>, KM-START <uptime>,
# KM-END <uptime>, KM-EXIT <status>, KM-OUT <bytes> <sha256>, KM-ERROR <text>.
# The kernel is booted with panic=-1 and QEMU with -no-reboot: if this script
# dies, the kernel panics, the VM "reboots" and QEMU exits; the host sees no
# KM-EXIT line and fails the run.

/bin/busybox mkdir -p /bin /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp /run /mnt
/bin/busybox --install -s
export PATH=/km/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb
mkdir -p /root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null || mdev -s
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug
# tracefs is also reachable as /sys/kernel/debug/tracing (automounted).
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true
mkdir -p /sys/fs/bpf
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
ln -sf /proc/self/fd /dev/fd 2>/dev/null || true
hostname kernel-matrix
ip link set lo up

for t in /dev/ttyS1 /dev/ttyS2 /dev/ttyS3; do
  stty -F "$t" raw -echo 2>/dev/null || echo "kernel-matrix init: stty $t failed" >/dev/console
done
# fd 7: status channel, kept open until the end (closing a tty waits for its
# output to drain, so every line is out before the power-off).
exec 7>/dev/ttyS2
up() { cut -d' ' -f1 /proc/uptime; }
status() { echo "KM-$*" >&7; }
status INIT "$(up)"

[ -f /km/env ] && . /km/env
export KM_OUT=/km/out
mkdir -p "$KM_OUT"

status FACT uname_r "$(uname -r)"
status FACT uname_v "$(uname -v | tr ' ' _)"
if [ -e /sys/kernel/btf/vmlinux ]; then
  status FACT btf_vmlinux "$(stat -c %s /sys/kernel/btf/vmlinux)"
else
  status FACT btf_vmlinux missing
fi
status FACT nproc "$(nproc)"
status FACT mem_kb "$(awk '/^MemTotal/ {print $2}' /proc/meminfo)"

# Before hiding the kernel's BTF, copy it where the test can use it.
if [ -n "${KM_BTF_COPY:-}" ]; then
  mkdir -p "$(dirname "$KM_BTF_COPY")"
  if cp /sys/kernel/btf/vmlinux "$KM_BTF_COPY" 2>/dev/null; then
    status FACT btf_copy "$KM_BTF_COPY $(stat -c %s "$KM_BTF_COPY")"
  else
    status ERROR "cannot copy /sys/kernel/btf/vmlinux to $KM_BTF_COPY"
  fi
fi
if [ "${KM_HIDE_BTF:-0}" = 1 ]; then
  if mount -t tmpfs -o ro,mode=0555 tmpfs /sys/kernel/btf; then
    status FACT btf_hidden "$(ls /sys/kernel/btf | wc -l)_entries_left"
  else
    status ERROR "cannot mount a tmpfs over /sys/kernel/btf"
  fi
fi

echo "kernel-matrix init: $(uname -r), running /km/run" >/dev/console
status START "$(up)"
( cd /km && exec /km/run </dev/null >/dev/ttyS1 2>&1 )
rc=$?
status END "$(up)"
status EXIT "$rc"
echo "kernel-matrix init: /km/run exited with $rc" >/dev/console

# The files the script left in $KM_OUT go to the host as one tar.
tar -C "$KM_OUT" -czf /tmp/km-out.tar . 2>/dev/null || tar -czf /tmp/km-out.tar -T /dev/null
cat /tmp/km-out.tar >/dev/ttyS3
status OUT "$(stat -c %s /tmp/km-out.tar) $(sha256sum /tmp/km-out.tar | cut -d' ' -f1)"
status DONE "$(up)"
exec 7>&-
sync
poweroff -f
