#!/bin/bash
# Builds the vmr test guest from Debian packages only (no root filesystem, no loop
# devices): a kernel (vmlinux for PVH boot, vmlinuz), a busybox + dropbear initramfs
# whose /init is tests/guest/rootfs/init, an ext4 disk image holding the same tree, and
# a manifest of the package versions. See docs/test-guest.md.
#
#   tests/guest/build.sh OUTDIR
#
# Cached: the inputs are the candidate versions apt offers for the packages plus a hash
# of this script and tests/guest/rootfs/; when they match OUTDIR/manifest, nothing is
# done. Downloads are kept in OUTDIR/cache. Needs root: it installs the tools it lacks
# with apt-get and makes a device node in the tree.
# Environment: VMR_GUEST_KERNEL=linux-image-X-amd64 picks another kernel package than
# the one linux-image-amd64 depends on.
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }
note() { echo "build.sh: $*"; }

[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root (it installs missing tools with apt-get and makes /dev/console in the tree)"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$HERE/common.sh"
OUT=$(realpath -m "$1")
export LC_ALL=C

# Tools, and the packages that bring them on Debian 12.
install_tools cpio=cpio xz=xz-utils gzip=gzip mke2fs=e2fsprogs qemu-img=qemu-utils flock=util-linux \
	sha256sum=coreutils dpkg-deb=dpkg grep=grep chroot=coreutils awk=mawk apt-cache=apt
apt_update() {
	if [ $apt_updated = 0 ]; then
		apt-get update -qq || die "apt-get update failed"
		apt_updated=1
	fi
}

mkdir -p "$OUT/cache"
exec 9> "$OUT/.lock"
flock 9

# ---- inputs: package versions and the script hash ---------------------------------
candidate() {
	apt-cache policy "$1" 2> /dev/null | awk '$1 == "Candidate:" { print $2; exit }'
}
if [ -z "$(candidate busybox-static)" ] || [ "$(candidate busybox-static)" = "(none)" ]; then
	apt_update
fi
KPKG=${VMR_GUEST_KERNEL:-$(apt-cache depends linux-image-amd64 2> /dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)}
[ -n "$KPKG" ] || die "apt offers no linux-image-amd64 (is the apt source for bookworm set up?)"
# dropbear-bin and its Depends, recursively (the libraries it links with; only the ones
# it really loads go into the image)
mapfile -t DROPBEAR_CLOSURE < <(apt-cache depends --recurse --no-recommends --no-suggests \
	--no-conflicts --no-breaks --no-replaces --no-enhances dropbear-bin | grep -v '^[ <]')
# openssh-sftp-server: only its sftp-server binary (libc alone), so that file uploads over
# SFTP (provisioning) work against dropbear, which runs /usr/lib/sftp-server.
PKGS=("$KPKG" busybox-static "${DROPBEAR_CLOSURE[@]}" openssh-sftp-server)
declare -A VER=()
while read -r p v; do
	VER[$p]=$v
done < <(apt-cache policy "${PKGS[@]}" 2> /dev/null |
	awk '/^[^ ].*:$/ { sub(/:$/, ""); p = $0 } $1 == "Candidate:" { print p, $2 }')
for p in "${PKGS[@]}"; do
	v=${VER[$p]:-}
	[ -n "$v" ] && [ "$v" != "(none)" ] || die "apt has no candidate version of $p"
done

SCRIPT_SHA=$(cd "$HERE" && find build.sh common.sh rootfs \( -type f -o -type l \) | sort | while read -r f; do
	if [ -L "$f" ]; then
		echo "link $f $(readlink "$f")"
	else
		echo "file $f $([ -x "$f" ] && echo x || echo -) $(sha256sum < "$f" | cut -d' ' -f1)"
	fi
done | sha256sum | cut -d' ' -f1)
INPUTS=$({
	for p in "${PKGS[@]}"; do echo "package $p ${VER[$p]}"; done
	echo "script $SCRIPT_SHA"
} | sha256sum | cut -d' ' -f1)

OUTPUTS=(vmlinux vmlinuz initramfs.cpio.gz disk.qcow2)
uptodate=1
grep -qx "inputs-sha256 $INPUTS" "$OUT/manifest" 2> /dev/null || uptodate=0
for f in "${OUTPUTS[@]}"; do [ -s "$OUT/$f" ] || uptodate=0; done
if [ $uptodate = 1 ]; then
	note "$OUT is up to date ($KPKG ${VER[$KPKG]}, inputs $INPUTS)"
	exit 0
fi

# ---- build --------------------------------------------------------------------------
note "building the test guest in $OUT ($KPKG ${VER[$KPKG]})"
start=$(date +%s)
rm -f "$OUT/manifest"
W="$OUT/.work"
rm -rf "$W"
mkdir -p "$W/x"
trap 'rm -rf "$W"' EXIT

declare -A DEB=()
for p in "${PKGS[@]}"; do
	venc=${VER[$p]//:/%3a}
	debs=("$OUT/cache/${p}_${venc}"_*.deb)
	if [ ! -f "${debs[0]}" ]; then
		# drop other versions of the same package first (the kernel is 70 MB)
		rm -f "$OUT/cache/${p}"_*.deb
		note "downloading $p ${VER[$p]}"
		(cd "$OUT/cache" && apt-get -qq -o APT::Sandbox::User=root download "$p=${VER[$p]}") ||
			die "apt-get download $p=${VER[$p]} failed"
		debs=("$OUT/cache/${p}_${venc}"_*.deb)
		[ -f "${debs[0]}" ] || die "apt-get download left no ${p}_${venc}_*.deb"
	fi
	DEB[$p]=${debs[0]}
	dpkg-deb -x "${DEB[$p]}" "$W/x/$p"
done

K="$W/x/$KPKG"
KVERS=("$K"/lib/modules/*)
[ ${#KVERS[@]} = 1 ] && [ -d "${KVERS[0]}" ] || die "$KPKG holds no single /lib/modules/VERSION"
KVER=$(basename "${KVERS[0]}")
BB="$W/x/busybox-static/bin/busybox"
[ -x "$BB" ] || die "busybox-static has no /bin/busybox"

R="$W/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,lib/x86_64-linux-gnu,lib64,etc/dropbear,root,home/vm}
mkdir -p "$R"/{proc,sys,dev,run,tmp,mnt,var/log}
ln -s ../run "$R/var/run"
ln -s /proc/mounts "$R/etc/mtab"
mknod -m 600 "$R/dev/console" c 5 1

# busybox and its applet links (sh, init, modprobe, udhcpc, acpid, ...)
cp "$BB" "$R/bin/busybox"
"$BB" --list-full | while read -r a; do
	case "$a" in linuxrc | bin/busybox) continue ;; esac
	[ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"
done

# dropbear and the shared libraries it loads, found with the packages' own ld.so
cp "$W/x/dropbear-bin/usr/sbin/dropbear" "$R/usr/sbin/"
cp "$W/x/dropbear-bin/usr/bin/dropbearkey" "$W/x/dropbear-bin/usr/bin/dropbearconvert" "$R/usr/bin/"
mkdir -p "$R/usr/lib"
cp "$W/x/openssh-sftp-server/usr/lib/openssh/sftp-server" "$R/usr/lib/sftp-server"
LDSO=$(find "$W/x/libc6" -name ld-linux-x86-64.so.2 -type f | head -n 1)
[ -n "$LDSO" ] || die "libc6 has no ld-linux-x86-64.so.2"
LIBPATH=$(find "$W/x" -path "$K" -prune -o -name '*.so*' -printf '%h\n' | sort -u | paste -sd:)
for b in "$R/usr/sbin/dropbear" "$R/usr/bin/dropbearkey" "$R/usr/bin/dropbearconvert" "$R/usr/lib/sftp-server"; do
	"$LDSO" --library-path "$LIBPATH" --list "$b" > "$W/ldd.out" || die "ld.so --list $b failed"
	while read -r soname arrow path _; do
		[ "$arrow" = "=>" ] || continue
		[ "$path" != "not" ] || die "$(basename "$b") needs $soname, which no package provides"
		case "$path" in "$W/x/"*) ;; *) die "$(basename "$b") needs $soname, found only on the host ($path): add its package" ;; esac
		case "$soname" in
		*/ld-linux-x86-64.so.2) cp -L "$path" "$R/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ;;
		*) cp -L "$path" "$R/lib/x86_64-linux-gnu/$soname" ;;
		esac
	done < "$W/ldd.out"
done
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$R/lib64/ld-linux-x86-64.so.2"
chroot "$R" /usr/sbin/dropbear -V > "$W/dropbear-version" 2>&1 ||
	die "dropbear does not run in the guest tree: $(cat "$W/dropbear-version")"

# kernel modules: what /init loads, with their dependencies from a busybox depmod of
# the whole kernel package, then a modules.dep for the small set
WANTED="virtio_pci virtio_net virtio_blk cdrom isofs evdev button crc32c_generic ext4 ahci ata_piix sr_mod"
"$BB" depmod -b "$K" "$KVER"
MODS=$(awk -v wanted="$WANTED" '
	function name(p) { sub(/.*\//, "", p); sub(/\.ko(\.[a-z]+)?$/, "", p); gsub(/-/, "_", p); return p }
	{
		sub(/:$/, "", $1)
		path[name($1)] = $1
		deps[name($1)] = ""
		for (i = 2; i <= NF; i++) deps[name($1)] = deps[name($1)] " " name($i)
	}
	END {
		n = split(wanted, todo, " ")
		while (n > 0) {
			m = todo[n--]
			if (m in seen) continue
			if (!(m in path)) { print "MISSING " m; continue }
			seen[m] = 1
			print path[m]
			k = split(deps[m], d, " ")
			for (i = 1; i <= k; i++) todo[++n] = d[i]
		}
	}' "$K/lib/modules/$KVER/modules.dep" | sort)
if echo "$MODS" | grep -q '^MISSING'; then
	die "$KPKG lacks modules: $(echo "$MODS" | sed -n 's/^MISSING //p' | paste -sd' ')"
fi
for m in $MODS; do
	mkdir -p "$R/lib/modules/$KVER/$(dirname "$m")"
	cp "$K/lib/modules/$KVER/$m" "$R/lib/modules/$KVER/$m"
done
cp "$K/lib/modules/$KVER/modules.builtin" "$R/lib/modules/$KVER/"
"$BB" depmod -b "$R" "$KVER"

# the guest's own files: /init, /etc, the udhcpc script, the acpid action
cp -a "$HERE/rootfs/." "$R/"
chown -R 0:0 "$R"
chmod 755 "$R/init"
chmod 600 "$R/etc/shadow"
chmod 700 "$R/root" "$R/etc/dropbear"
chmod 1777 "$R/tmp"
chown 1000:1000 "$R/home/vm"
{
	echo "VMR_GUEST_KERNEL=$KVER"
	echo "VMR_GUEST_INPUTS=$INPUTS"
	for p in "${PKGS[@]}"; do echo "VMR_GUEST_PACKAGE=$p ${VER[$p]}"; done
} > "$R/etc/vmr-guest-release"
# fixed times, so equal inputs give an identical initramfs
find "$R" -exec touch -h -d @1 {} +

# initramfs
(cd "$R" && find . -mindepth 1 | sort | cpio -o -H newc --reproducible --quiet) |
	gzip -9 -n > "$W/initramfs.cpio.gz"

# disk: ext4 labelled vmrdisk with the same tree, made without a loop device
UUID=$(echo "$INPUTS" | sed 's/^\(.\{8\}\)\(.\{4\}\)\(.\{4\}\)\(.\{4\}\)\(.\{12\}\).*/\1-\2-\3-\4-\5/')
E2FSPROGS_FAKE_TIME=1 mke2fs -q -F -t ext4 -L vmrdisk -U "$UUID" \
	-E "root_owner=0:0,hash_seed=$UUID" -d "$R" "$W/disk.raw" 64M > /dev/null
qemu-img convert -f raw -O qcow2 "$W/disk.raw" "$W/disk.qcow2"

# kernel: vmlinuz as shipped, and the uncompressed ELF inside it (PVH entry point), the
# first xz stream after the bzImage header
cp "$K/boot/vmlinuz-$KVER" "$W/vmlinuz"
extract_vmlinux "$W/vmlinuz" "$W/vmlinux"

for f in "${OUTPUTS[@]}"; do mv -f "$W/$f" "$OUT/$f"; done
# other versions' downloads are of no more use
for d in "$OUT"/cache/*.deb; do
	keep=0
	for p in "${PKGS[@]}"; do [ "$d" = "${DEB[$p]}" ] && keep=1; done
	[ $keep = 1 ] || rm -f "$d"
done
{
	echo "# vmr test guest, made by tests/guest/build.sh; see docs/test-guest.md"
	echo "inputs-sha256 $INPUTS"
	echo "script-sha256 $SCRIPT_SHA"
	echo "kernel $KVER"
	for p in "${PKGS[@]}"; do echo "package $p ${VER[$p]}"; done
	for f in "${OUTPUTS[@]}"; do
		echo "output $f $(stat -c %s "$OUT/$f") $(sha256sum < "$OUT/$f" | cut -d' ' -f1)"
	done
} > "$OUT/manifest.tmp"
mv -f "$OUT/manifest.tmp" "$OUT/manifest"
note "built in $(($(date +%s) - start)) s: kernel $KVER"
for f in "${OUTPUTS[@]}" manifest; do
	note "  $OUT/$f ($(du -h --apparent-size "$OUT/$f" | cut -f1))"
done
