#!/bin/bash
# Builds a Debian 12 guest with the real cloud-init package, for the slow test that checks
# cloud-init applies vmr's seed (user, key, hostname, host key). See docs/test-guest.md.
#
#   tests/guest/build-cloud.sh OUTDIR
#
# OUTDIR then holds disk.qcow2 (ext4 labelled rootfs, 2 GiB, from debootstrap), vmlinux
# (PVH kernel ELF), initrd.img (Debian's own) and a manifest. Cached: nothing is done when
# OUTDIR/manifest names the same script hash and the outputs exist. Needs root
# (debootstrap) and the Debian mirror apt uses. Takes a few minutes.
set -euo pipefail

die() { echo "build-cloud.sh: $*" >&2; exit 1; }
note() { echo "build-cloud.sh: $*"; }

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root (debootstrap needs it)"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/common.sh"
OUT=$(realpath -m "$1")
export LC_ALL=C

install_tools debootstrap=debootstrap mke2fs=e2fsprogs qemu-img=qemu-utils xz=xz-utils flock=util-linux

mkdir -p "$OUT"
exec 9> "$OUT/.lock"
flock 9

SCRIPT_SHA=$(cat "$HERE/build-cloud.sh" "$HERE/common.sh" | sha256sum | cut -d' ' -f1)
OUTPUTS=(vmlinux initrd.img disk.qcow2)
uptodate=1
grep -qx "script-sha256 $SCRIPT_SHA" "$OUT/manifest" 2> /dev/null || uptodate=0
for f in "${OUTPUTS[@]}"; do [ -s "$OUT/$f" ] || uptodate=0; done
if [ $uptodate = 1 ]; then
	note "$OUT is up to date (script $SCRIPT_SHA)"
	exit 0
fi

# The Debian mirror apt already uses (deb822 sources first, then sources.list).
MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2> /dev/null |
	awk '$1 == "URIs:" && $2 ~ /\/debian\/?$/ { print $2; exit }')
if [ -z "$MIRROR" ]; then
	MIRROR=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list 2> /dev/null || true)
fi
[ -n "$MIRROR" ] || die "no bookworm Debian mirror in the apt sources"

note "building the cloud-init guest in $OUT from $MIRROR"
start=$(date +%s)
rm -f "$OUT/manifest"
W="$OUT/.work"
rm -rf "$W"
mkdir -p "$W"
trap 'rm -rf "$W"' EXIT
R="$W/root"

# python3-cffi-backend must be named, or cloud-init stays unconfigured (GUESTS.md).
debootstrap --variant=minbase \
	--include=cloud-init,python3-cffi-backend,openssh-server,systemd-sysv,udev,kmod,ifupdown,isc-dhcp-client,iproute2,linux-image-amd64,sudo,e2fsprogs \
	bookworm "$R" "$MIRROR" > "$W/debootstrap.log" 2>&1 ||
	die "debootstrap failed: $(tail -n 20 "$W/debootstrap.log")"

# Fix-ups: a fresh identity on first boot, cloud-init from NoCloud only, quick boots.
: > "$R/etc/machine-id"
echo localhost > "$R/etc/hostname"
rm -f "$R/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$R/etc/hosts"
echo 'LABEL=rootfs / ext4 rw 0 1' > "$R/etc/fstab"
rm -f "$R"/etc/ssh/ssh_host_*
cat > "$R/etc/cloud/cloud.cfg.d/90-vmr.cfg" << 'EOF'
# vmr test guest: the seed ISO only; ed25519 only when the seed brings no host key.
datasource_list: [ NoCloud, None ]
ssh_genkeytypes: [ed25519]
locale: C.UTF-8
manage_etc_hosts: true
EOF
for u in e2scrub_all.timer e2scrub_reap.service fstrim.timer apt-daily.timer apt-daily-upgrade.timer \
	systemd-pstore.service proc-sys-fs-binfmt_misc.automount sys-kernel-debug.mount \
	sys-kernel-tracing.mount getty@tty1.service; do
	ln -sf /dev/null "$R/etc/systemd/system/$u"
done
apt_clean() { rm -rf "$R"/var/cache/apt/archives/*.deb "$R"/var/lib/apt/lists/*; }
apt_clean

KVERS=("$R"/boot/vmlinuz-*)
[ ${#KVERS[@]} = 1 ] && [ -f "${KVERS[0]}" ] || die "the rootfs has no single /boot/vmlinuz-*"
KVER=${KVERS[0]##*/vmlinuz-}
[ -f "$R/boot/initrd.img-$KVER" ] || die "the rootfs has no initrd.img-$KVER"
extract_vmlinux "$R/boot/vmlinuz-$KVER" "$W/vmlinux"
cp "$R/boot/initrd.img-$KVER" "$W/initrd.img"

mke2fs -q -F -t ext4 -L rootfs -d "$R" "$W/disk.raw" 2G > /dev/null
qemu-img convert -f raw -O qcow2 "$W/disk.raw" "$W/disk.qcow2"
CLOUD_INIT_VERSION=$(sed -n 's/^Version: //p' < <(awk '/^Package: cloud-init$/,/^$/' "$R/var/lib/dpkg/status"))

for f in "${OUTPUTS[@]}"; do mv -f "$W/$f" "$OUT/$f"; done
{
	echo "# vmr cloud-init test guest, made by tests/guest/build-cloud.sh; see docs/test-guest.md"
	echo "script-sha256 $SCRIPT_SHA"
	echo "kernel $KVER"
	echo "cloud-init $CLOUD_INIT_VERSION"
	for f in "${OUTPUTS[@]}"; do
		echo "output $f $(stat -c %s "$OUT/$f") $(sha256sum < "$OUT/$f" | cut -d' ' -f1)"
	done
} > "$OUT/manifest.tmp"
mv -f "$OUT/manifest.tmp" "$OUT/manifest"
note "built in $(($(date +%s) - start)) s: kernel $KVER, cloud-init $CLOUD_INIT_VERSION"
