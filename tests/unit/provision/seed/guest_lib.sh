# Sourced by the guest tests of the seed library (guest_seed_test.sh, cloud_guest_test.sh).
# Set PREFIX before sourcing. Provides say/die, a work folder $T removed on success,
# and boot_seeded, which starts QEMU on a seed made by write-seed.
# shellcheck shell=bash

say() { echo "$PREFIX: $*"; }
die() { echo "$PREFIX: FAIL $*" >&2; exit 1; }

# need_tools TOOL:PACKAGE...: fails naming the Debian package of the first missing tool.
need_tools() {
	local t
	for t in "$@"; do
		command -v "${t%%:*}" > /dev/null || die "${t%%:*} is missing: install the Debian package ${t#*:}"
	done
}

T=$(mktemp -d "${TMPDIR:-/tmp}/vmr-$PREFIX-XXXXXX")
QPID=""
ok=0
stop_qemu() {
	if [ -n "$QPID" ]; then
		kill "$QPID" 2> /dev/null || true
		wait "$QPID" 2> /dev/null || true
		QPID=""
	fi
}
cleanup() {
	stop_qemu
	if [ $ok = 1 ] || rmdir "$T" 2> /dev/null; then rm -rf "$T"; else say "work folder kept: $T"; fi
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# boot_seeded WRITE-SEED NAME QEMU-ARGS...: writes keys, seed.iso and known_hosts for
# hostname NAME into $T and starts QEMU (QPID) with the seed as a read-only virtio disk,
# as vmr's QEMU layer attaches it, the serial console in $SERIAL and the guest's port 22
# forwarded from 127.0.0.1:$PORT. A port taken in between gets another try.
boot_seeded() {
	local ws=$1 name=$2 _
	shift 2
	SERIAL="$T/serial.log"
	for _ in 1 2 3; do
		PORT=$(free_port)
		"$ws" "$T" --hostname "$name" --port "$PORT" > "$T/write-seed.out" ||
			die "write-seed failed: $(cat "$T/write-seed.out")"
		: > "$SERIAL"
		qemu-system-x86_64 -machine q35 -cpu max -display none -monitor none -serial "file:$SERIAL" \
			-nic "user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:$PORT-:22" \
			-drive "if=none,id=seed0,file=$T/seed.iso,format=raw,readonly=on" \
			-device virtio-blk-pci,drive=seed0 "$@" < /dev/null > "$T/qemu.log" 2>&1 &
		QPID=$!
		sleep 0.5
		kill -0 "$QPID" 2> /dev/null && break
		wait "$QPID" || true
		QPID=""
		grep -q hostfwd "$T/qemu.log" || break # not a port taken in between
	done
	[ -n "$QPID" ] || die "QEMU did not start: $(cat "$T/qemu.log")"
	FP=$(cut -d' ' -f2 "$T/write-seed.out")
	say "QEMU pid $QPID, ssh port $PORT, hostname $name, host key $FP"
	# ssh as vmrd does it: the generated key, and only the seed's host key accepted
	SSH=(ssh -i "$T/id_ed25519_generated" -o UserKnownHostsFile="$T/known_hosts" -o StrictHostKeyChecking=yes
		-o GlobalKnownHostsFile=/dev/null -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR -p "$PORT")
}
