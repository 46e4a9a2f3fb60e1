# Sourced by build.sh and build-cloud.sh (they define die and note).
# shellcheck shell=bash

# install_tools TOOL=PACKAGE...: installs with apt-get the packages of the tools that are
# not on PATH. Sets apt_updated=1 when it ran `apt-get update`.
apt_updated=0
install_tools() {
	local missing=() tp
	for tp in "$@"; do
		command -v "${tp%%=*}" > /dev/null 2>&1 || missing+=("${tp#*=}")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	note "installing ${missing[*]}"
	apt-get update -qq || die "apt-get update failed"
	apt_updated=1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" > /dev/null || die "apt-get install ${missing[*]} failed"
}

# extract_vmlinux VMLINUZ OUT: writes the uncompressed kernel ELF inside a Debian bzImage
# (its first xz stream) to OUT. That ELF has the PVH entry point, so `qemu -kernel OUT`
# skips the ~3 s bzImage decompression under TCG.
extract_vmlinux() {
	local off
	off=$(grep -obUaP '\xfd7zXZ\x00' "$1" | head -n 1 | cut -d: -f1)
	[ -n "$off" ] || die "no xz stream in $1"
	xz -dc --single-stream < <(tail -c +$((off + 1)) "$1") > "$2" ||
		die "cannot decompress the kernel in $1"
	[ "$(head -c 4 "$2" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
		die "the kernel in $1 is not an ELF file"
}
