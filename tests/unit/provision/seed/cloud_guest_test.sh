#!/bin/bash
# Slow test: boots a Debian 12 guest with the real cloud-init package (built by
# tests/guest/build-cloud.sh) with a seed made by write-seed, and checks that cloud-init
# applied it: the user with bash and passwordless sudo, its key, the hostname, the host
# key (ssh checks it against the generated known_hosts), root login disabled.
#
#   cloud_guest_test.sh WRITE-SEED
#
# Needs VMR_TEST_CLOUD_GUEST: the output folder of tests/guest/build-cloud.sh.
set -euo pipefail

PREFIX=cloud-guest
. "$(dirname "${BASH_SOURCE[0]}")/guest_lib.sh"

[ $# -eq 1 ] || die "usage: $0 WRITE-SEED"
WRITE_SEED=$1
G=${VMR_TEST_CLOUD_GUEST:-}
[ -n "$G" ] || die "VMR_TEST_CLOUD_GUEST is not set: build the guest with 'sudo tests/guest/build-cloud.sh DIR' and set VMR_TEST_CLOUD_GUEST=DIR"
for f in vmlinux initrd.img disk.qcow2; do
	[ -s "$G/$f" ] || die "$G/$f is missing: run tests/guest/build-cloud.sh $G"
done
need_tools qemu-system-x86_64:qemu-system-x86 qemu-img:qemu-utils ssh:openssh-client python3:python3

NAME="cloud-$RANDOM"
qemu-img create -q -f qcow2 -b "$G/disk.qcow2" -F qcow2 "$T/disk.qcow2"
boot_seeded "$WRITE_SEED" "$NAME" -accel tcg,tb-size=256 -m 512 \
	-kernel "$G/vmlinux" -initrd "$G/initrd.img" -append "root=LABEL=rootfs rw console=ttyS0" \
	-drive "if=none,id=disk0,file=$T/disk.qcow2,format=qcow2" -device virtio-blk-pci,drive=disk0

# Only the seed's host key can satisfy this ssh: StrictHostKeyChecking=yes with the
# generated known_hosts, from the first attempt on.
T0=$(date +%s)
got=""
while [ $(($(date +%s) - T0)) -lt 480 ]; do
	kill -0 "$QPID" 2> /dev/null || die "QEMU exited (serial log: $SERIAL)"
	if got=$("${SSH[@]}" vm@127.0.0.1 'echo "$(id -un) $(hostname)"' 2> "$T/ssh.err"); then
		break
	fi
	got=""
	sleep 2
done
[ -n "$got" ] || die "no ssh login as vm within 480 s: $(cat "$T/ssh.err") (serial log: $SERIAL)"
say "ok   ssh vm@127.0.0.1 with the host key checked after $(($(date +%s) - T0)) s: $got"
[ "$got" = "vm $NAME" ] || die "user and hostname are '$got', expected 'vm $NAME'"

status=$("${SSH[@]}" vm@127.0.0.1 'cloud-init status --wait' 2>&1 | tail -n 1 || true)
[ "$status" = "status: done" ] || die "cloud-init status: '$status'"
say "ok   cloud-init $status"

got=$("${SSH[@]}" vm@127.0.0.1 'getent passwd vm | cut -d: -f7; sudo -n id -u')
[ "$got" = "/bin/bash
0" ] || die "shell and passwordless sudo: '$got'"
say "ok   vm has /bin/bash and passwordless sudo"

got=$("${SSH[@]}" vm@127.0.0.1 'sudo -n cut -d" " -f1,2 /etc/ssh/ssh_host_ed25519_key.pub; sudo -n ls /etc/ssh | grep -c "^ssh_host_.*_key$"')
[ "$got" = "$(cut -d' ' -f1,2 "$T/ssh_host_ed25519_key.pub")
1" ] || die "the guest's host keys are not just the seed's: '$got'"
say "ok   the only host key is the seed's ($FP)"

if "${SSH[@]}" root@127.0.0.1 true 2> /dev/null; then
	die "ssh as root succeeded, but the seed says disable_root"
fi
say "ok   ssh as root refused"

ok=1
say "all checks passed"
