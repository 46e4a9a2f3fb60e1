#!/bin/bash
# Developer check of the vmr test guest: builds it if needed (tests/guest/build.sh), boots
# it once under QEMU TCG with a NoCloud seed ISO, waits for VMR-GUEST-READY, logs in
# over ssh with the seed's key, checks what the seed set (hostname, users, host key) and
# the data disk, then presses the ACPI power button over QMP and checks that QEMU exits
# by itself. Prints the timings. Exit 0 only if everything worked.
#
#   tests/guest/boot-smoke.sh OUTDIR [--ssh-poweroff]
#
# --ssh-poweroff  boot a second time and power off with "poweroff" run over ssh.
# Environment: VMR_SMOKE_APPEND (kernel command line, default "console=ttyS0"),
# VMR_SMOKE_KEEP=1 keeps the work folder (logs, keys) even on success.
set -euo pipefail

die() { echo "boot-smoke: $*" >&2; exit 1; }
say() { echo "boot-smoke: $*"; }

OUT=""
SSH_POWEROFF=0
for a in "$@"; do
	case "$a" in
	--ssh-poweroff) SSH_POWEROFF=1 ;;
	-*) die "unknown option $a" ;;
	*) [ -z "$OUT" ] || die "usage: $0 OUTDIR [--ssh-poweroff]"; OUT=$a ;;
	esac
done
[ -n "$OUT" ] || { echo "usage: $0 OUTDIR [--ssh-poweroff]" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(realpath -m "$OUT")
APPEND=${VMR_SMOKE_APPEND:-console=ttyS0}

bash "$HERE/build.sh" "$OUT"

# tools
declare -A TOOL_PKG=(
	[qemu-system-x86_64]=qemu-system-x86 [qemu-img]=qemu-utils [ssh]=openssh-client
	[ssh-keygen]=openssh-client [ssh-keyscan]=openssh-client [python3]=python3
)
missing=()
for t in "${!TOOL_PKG[@]}"; do
	command -v "$t" > /dev/null 2>&1 || missing+=("${TOOL_PKG[$t]}")
done
command -v genisoimage > /dev/null 2>&1 || command -v xorriso > /dev/null 2>&1 || missing+=(genisoimage)
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing ${missing[*]}: run as root to install them"
	say "installing ${missing[*]}"
	apt-get update -qq
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" > /dev/null
fi

T=$(mktemp -d /tmp/vmr-guest-smoke.XXXXXX)
QPID=""
PASSED=0
FAILED=0
READY_S="?" SSH_S="?" OFF_S="?"
cleanup() {
	if [ -n "$QPID" ]; then
		kill "$QPID" 2> /dev/null || true
		wait "$QPID" 2> /dev/null || true
	fi
	if [ $FAILED -gt 0 ] || [ "${VMR_SMOKE_KEEP:-0}" = 1 ]; then
		say "logs kept in $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT

pass() { PASSED=$((PASSED + 1)); say "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); say "FAIL $*"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# ---- the seed: a test client key, a host key, a hostname, an extra user ------------
ssh-keygen -q -t ed25519 -N '' -C vmr-smoke -f "$T/id_test"
ssh-keygen -q -t ed25519 -N '' -C vmr-smoke-host -f "$T/host_key"
HOSTNAME_WANTED="vmr-smoke-$RANDOM"
mkdir "$T/seed"
{
	echo "#cloud-config"
	echo "hostname: $HOSTNAME_WANTED"
	echo "users:"
	echo "  - default"
	echo "  - name: tester"
	echo "    shell: /bin/sh"
	echo "    ssh_authorized_keys:"
	echo "      - $(cat "$T/id_test.pub")"
	echo "ssh_authorized_keys:"
	echo "  - $(cat "$T/id_test.pub")"
	echo "ssh_keys:"
	echo "  ed25519_private: |"
	sed 's/^/    /' "$T/host_key"
	echo "  ed25519_public: $(cat "$T/host_key.pub")"
} > "$T/seed/user-data"
printf 'instance-id: vmr-smoke\nlocal-hostname: meta-data-name\n' > "$T/seed/meta-data"
if command -v genisoimage > /dev/null 2>&1; then
	genisoimage -quiet -output "$T/seed.iso" -volid cidata -joliet -rock \
		"$T/seed/user-data" "$T/seed/meta-data"
else
	xorriso -as mkisofs -quiet -output "$T/seed.iso" -volid cidata -joliet -rock \
		"$T/seed/user-data" "$T/seed/meta-data" 2> /dev/null
fi

SSH_OPTS=(-i "$T/id_test" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=2)

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# boot N: starts QEMU (QPID, PORT, SERIAL, QMP) and waits for the ready line and ssh
boot() {
	local n=$1 _
	SERIAL="$T/serial$n.log"
	QMP="$T/qmp$n.sock"
	qemu-img create -q -f qcow2 -b "$OUT/disk.qcow2" -F qcow2 "$T/disk$n.qcow2"
	for _ in 1 2 3; do
		PORT=$(free_port)
		: > "$SERIAL"
		T0=$(now)
		qemu-system-x86_64 -accel tcg -machine q35 -cpu max -m 256 -nographic \
			-monitor none -serial "file:$SERIAL" -qmp "unix:$QMP,server=on,wait=off" \
			-kernel "$OUT/vmlinux" -initrd "$OUT/initramfs.cpio.gz" -append "$APPEND" \
			-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$PORT-:22" \
			-drive "file=$T/seed.iso,if=virtio,format=raw,readonly=on" \
			-drive "file=$T/disk$n.qcow2,if=virtio,format=qcow2" \
			< /dev/null > "$T/qemu$n.log" 2>&1 &
		QPID=$!
		sleep 0.5
		if kill -0 "$QPID" 2> /dev/null; then
			break
		fi
		wait "$QPID" || true
		QPID=""
		# most likely the port was taken in between: try another one
		grep -q hostfwd "$T/qemu$n.log" || break
	done
	[ -n "$QPID" ] || { cat "$T/qemu$n.log" >&2; die "QEMU did not start"; }
	say "boot $n: QEMU pid $QPID, ssh port $PORT, cmdline '$APPEND'"

	local deadline ready=0
	deadline=$(awk -v t="$T0" 'BEGIN { printf "%.3f", t + 60 }')
	while awk -v d="$deadline" -v n="$(now)" 'BEGIN { exit !(n < d) }'; do
		if tr -d '\r' < "$SERIAL" | grep -qx VMR-GUEST-READY; then
			ready=1
			break
		fi
		kill -0 "$QPID" 2> /dev/null || break
		sleep 0.1
	done
	READY_S=$(since "$T0")
	if [ $ready = 1 ]; then
		pass "boot $n: VMR-GUEST-READY after $READY_S s"
		local seedline want
		seedline=$(tr -d '\r' < "$SERIAL" | grep '^VMR-SEED-APPLIED' || true)
		want="VMR-SEED-APPLIED hostname=$HOSTNAME_WANTED users=tester hostkey=yes root=allowed"
		[ "$seedline" = "$want" ] && pass "boot $n: $seedline" ||
			fail "boot $n: seed line '$seedline', expected '$want'"
	else
		fail "boot $n: no VMR-GUEST-READY within 60 s (serial log: $SERIAL)"
		tail -n 30 "$SERIAL" >&2 || true
		return 1
	fi

	for _ in $(seq 1 20); do
		if ssh "${SSH_OPTS[@]}" -p "$PORT" root@127.0.0.1 true 2> /dev/null; then
			SSH_S=$(since "$T0")
			pass "boot $n: ssh as root after $SSH_S s"
			return 0
		fi
		sleep 0.5
	done
	fail "boot $n: no ssh login as root"
	return 1
}

# wait_exit SECONDS: waits for QEMU to exit by itself; 0 if it did in time
wait_exit() {
	local sp done_pid=""
	sleep "$1" &
	sp=$!
	wait -n -p done_pid "$QPID" "$sp" || true
	if [ "$done_pid" = "$QPID" ]; then
		kill "$sp" 2> /dev/null || true
		wait "$sp" 2> /dev/null || true
		QPID=""
		return 0
	fi
	return 1
}

guest() { ssh "${SSH_OPTS[@]}" -p "$PORT" "$@"; }

# ---- boot 1: checks, then the ACPI power button --------------------------------------
if boot 1; then
	UNAME=$(guest root@127.0.0.1 uname -a) && pass "uname -a: $UNAME" || fail "uname -a over ssh"
	got=$(guest root@127.0.0.1 hostname || true)
	[ "$got" = "$HOSTNAME_WANTED" ] && pass "hostname from the seed: $got" ||
		fail "hostname is '$got', the seed says '$HOSTNAME_WANTED'"
	got=$(guest vm@127.0.0.1 'id -un; echo "$HOME"' | paste -sd' ' || true)
	[ "$got" = "vm /home/vm" ] && pass "ssh as vm: $got" || fail "ssh as vm: '$got'"
	got=$(guest tester@127.0.0.1 'id -un' || true)
	[ "$got" = tester ] && pass "ssh as the seed's user tester" || fail "ssh as tester: '$got'"
	got=$(ssh-keyscan -T 5 -t ed25519 -p "$PORT" 127.0.0.1 2> /dev/null | awk '{ print $2, $3 }')
	[ "$got" = "$(cut -d' ' -f1,2 "$T/host_key.pub")" ] && pass "ssh host key is the seed's ed25519_private" ||
		fail "ssh host key '$got' is not the seed's"
	got=$(guest root@127.0.0.1 'grep -q " /mnt/disk ext4 rw" /proc/mounts && cat /mnt/disk/etc/vmr-guest-release | head -n 1' || true)
	[ -n "$got" ] && pass "data disk mounted on /mnt/disk ($got)" || fail "data disk not mounted on /mnt/disk"

	T1=$(now)
	if python3 "$HERE/qmp.py" "$QMP" system_powerdown > /dev/null; then
		if wait_exit 15; then
			OFF_S=$(since "$T1")
			pass "system_powerdown: QEMU exited by itself after $OFF_S s"
		else
			fail "system_powerdown: QEMU still running after 15 s"
		fi
	else
		fail "system_powerdown over QMP failed"
	fi
	[ $SSH_POWEROFF = 1 ] || say "timings: ready line $READY_S s, ssh $SSH_S s, powerdown $OFF_S s (TCG, cmdline '$APPEND')"
fi
if [ -n "$QPID" ]; then
	kill "$QPID" 2> /dev/null || true
	wait "$QPID" 2> /dev/null || true
	QPID=""
fi

# ---- boot 2 (optional): poweroff over ssh -------------------------------------------
if [ $SSH_POWEROFF = 1 ] && [ $FAILED = 0 ]; then
	R1=$READY_S S1=$SSH_S
	if boot 2; then
		T1=$(now)
		guest root@127.0.0.1 poweroff 2> /dev/null || true
		if wait_exit 15; then
			pass "poweroff over ssh: QEMU exited by itself after $(since "$T1") s"
		else
			fail "poweroff over ssh: QEMU still running after 15 s"
		fi
	fi
	say "timings: ready line $R1 / $READY_S s, ssh $S1 / $SSH_S s, powerdown ${OFF_S:-?} s"
fi
if [ -n "$QPID" ]; then
	kill "$QPID" 2> /dev/null || true
	wait "$QPID" 2> /dev/null || true
	QPID=""
fi

echo "boot-smoke: $PASSED passed, $FAILED failed"
[ $FAILED = 0 ]
