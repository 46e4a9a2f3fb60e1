#!/bin/bash
# Boots the test guest under QEMU TCG with a seed made by the seed library (write-seed),
# then logs in over SSH with the generated key while checking the host key against the
# generated known_hosts, as vmrd and `vmrctl ssh` do.
#
#   guest_seed_test.sh WRITE-SEED
#
# Needs VMR_TEST_GUEST: the output folder of tests/guest/build.sh (scripts/test.sh sets
# it). The seed is attached as QEMU's vm layer attaches it: a read-only virtio-blk disk.
set -euo pipefail

PREFIX=guest-seed
. "$(dirname "${BASH_SOURCE[0]}")/guest_lib.sh"

[ $# -eq 1 ] || die "usage: $0 WRITE-SEED"
WRITE_SEED=$1
G=${VMR_TEST_GUEST:-}
[ -n "$G" ] || die "VMR_TEST_GUEST is not set: build the guest with 'tests/guest/build.sh DIR' and set VMR_TEST_GUEST=DIR (scripts/test.sh does both)"
for f in vmlinux initramfs.cpio.gz; do
	[ -s "$G/$f" ] || die "$G/$f is missing: run tests/guest/build.sh $G"
done
need_tools qemu-system-x86_64:qemu-system-x86 ssh:openssh-client ssh-keygen:openssh-client python3:python3

# wait_ready WHAT: waits up to 90 s for the ready line on $SERIAL while $QPID runs.
wait_ready() {
	local _
	for _ in $(seq 1 180); do
		tr -d '\r' < "$SERIAL" | grep -qx VMR-GUEST-READY && return 0
		kill -0 "$QPID" 2> /dev/null || die "QEMU ($1) exited before the guest was ready (serial log: $SERIAL)"
		sleep 0.5
	done
	die "no VMR-GUEST-READY ($1) within 90 s (serial log: $SERIAL)"
}

NAME="seeded-$RANDOM"
boot_seeded "$WRITE_SEED" "$NAME" -accel tcg -m 256 \
	-kernel "$G/vmlinux" -initrd "$G/initramfs.cpio.gz" -append console=ttyS0
wait_ready "with the seed"

# The seed line comes before the ready line and says what was applied.
lines=$(tr -d '\r' < "$SERIAL" | grep -E '^VMR-(SEED-APPLIED|GUEST-READY)')
want="VMR-SEED-APPLIED hostname=$NAME users=vm hostkey=yes root=disabled
VMR-GUEST-READY"
[ "$lines" = "$want" ] || die "serial lines were:
$lines
expected:
$want"
say "ok   $(echo "$lines" | head -n 1)"

got=""
for _ in 1 2 3 4 5; do
	got=$("${SSH[@]}" vm@127.0.0.1 'echo "$(id -un) $(hostname)"' 2> "$T/ssh.err") && break
	sleep 1
done
[ "$got" = "vm $NAME" ] || die "ssh as vm with the host key checked gave '$got': $(cat "$T/ssh.err")"
say "ok   ssh vm@127.0.0.1 with StrictHostKeyChecking=yes and the generated known_hosts: $got"

# root login is disabled by the generated cloud-config.
if "${SSH[@]}" root@127.0.0.1 true 2> /dev/null; then
	die "ssh as root was accepted, but the seed says disable_root"
fi
say "ok   ssh as root refused"

# The check is real: a known_hosts naming another key for this host makes ssh refuse.
ssh-keygen -q -t ed25519 -N '' -f "$T/other" > /dev/null
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$T/other.pub")" > "$T/known_hosts.wrong"
if ssh -i "$T/id_ed25519_generated" -o UserKnownHostsFile="$T/known_hosts.wrong" -o StrictHostKeyChecking=yes \
	-o GlobalKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=5 -p "$PORT" vm@127.0.0.1 true \
	2> "$T/ssh-wrong.err"; then
	die "ssh accepted the guest with a known_hosts naming another host key"
fi
grep -q "HOST IDENTIFICATION HAS CHANGED\|Host key verification failed" "$T/ssh-wrong.err" ||
	die "ssh with the wrong known_hosts failed for another reason: $(cat "$T/ssh-wrong.err")"
say "ok   a wrong known_hosts is refused (host key verification failed)"

# The key the guest offers is the generated host key, by the fingerprint ssh reports.
"${SSH[@]}" -o FingerprintHash=sha256 -v vm@127.0.0.1 true > "$T/ssh-v.log" 2>&1 || true
fp=$(tr -d '\r' < "$T/ssh-v.log" | sed -n 's/.*Server host key: ssh-ed25519 \(SHA256:[^ ]*\).*/\1/p' | head -n 1)
[ "$fp" = "$FP" ] || die "the guest's host key is '$fp', not the seed's (see $T/ssh-v.log)"
say "ok   the guest's host key fingerprint is the seed's: $fp"
stop_qemu

# Without a seed the guest boots as before: the ready line, no seed line.
SERIAL="$T/serial-noseed.log"
: > "$SERIAL"
qemu-system-x86_64 -accel tcg -machine q35 -cpu max -m 256 -display none -monitor none \
	-serial "file:$SERIAL" -kernel "$G/vmlinux" -initrd "$G/initramfs.cpio.gz" -append console=ttyS0 \
	-nic user,model=virtio-net-pci < /dev/null > "$T/qemu-noseed.log" 2>&1 &
QPID=$!
wait_ready "without a seed"
! tr -d '\r' < "$SERIAL" | grep -q '^VMR-SEED-APPLIED' || die "a VMR-SEED-APPLIED line without a seed"
grep -q 'seed: none' "$SERIAL" || die "the guest did not report 'seed: none'"
say "ok   without a seed: VMR-GUEST-READY and no seed line"

ok=1
say "all checks passed"
