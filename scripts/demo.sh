#!/usr/bin/env bash
# The main job: installs what is missing, builds vmr and the tiny test guest, starts a
# user-mode vmrd (through vmrctl's autostart) and brings up a demo VM under it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

vmr_install_packages "${VMR_BUILD_PACKAGES[@]}" "${VMR_RUN_PACKAGES[@]}"
vmr_build build
cd "$VMR_ROOT"
say "Building the demo guest (kernel + busybox/dropbear initramfs from Debian packages)"
tests/guest/build.sh build-guest
ctl=build/vmrctl
guest=$VMR_ROOT/build-guest

say "vmrctl version   (starts a user-mode vmrd when none answers)"
$ctl version

if $ctl status demo >/dev/null 2>&1; then
  say "The demo VM exists already; starting it if it is not running"
  state=$($ctl status demo | sed -n 's/^state: *//p')
  case $state in
    running) ;;
    paused) $ctl resume demo >/dev/null ;;
    *) $ctl start demo >/dev/null ;;
  esac
else
  say "vmrctl create --name demo ... --start   (a qcow2 overlay on the guest's disk image)"
  $ctl create --name demo --image "$guest/disk.qcow2" --kernel "$guest/vmlinux" \
    --initrd "$guest/initramfs.cpio.gz" --cmdline "console=ttyS0" --memory 256 --start >/dev/null
fi

say "Waiting for the guest to boot (TCG: a few seconds)"
state_dir=$($ctl --json version | sed -n 's/.*"state_dir":"\([^"]*\)".*/\1/p')
log="$state_dir/vms/demo/console.log"
for _ in $(seq 1 120); do
  grep -q VMR-GUEST-READY "$log" 2>/dev/null && break
  sleep 0.5
done
grep -q VMR-GUEST-READY "$log" && echo "The guest is up: its console printed VMR-GUEST-READY ($log)"

say "vmrctl ssh demo -- uname -a   (as the seed's user, checking the guest's pinned host key)"
$ctl ssh demo -- uname -a || echo "(ssh did not answer; see $ctl log demo --console)"

say "vmrctl list"
$ctl list
say "vmrctl status demo"
$ctl status demo

pid=$($ctl --json version | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
cat <<MSG

vmrd (pid $pid) runs the VM "demo" in user mode; QEMU runs under TCG here unless KVM can
boot guests. The VM keeps running if vmrd stops, and vmrd re-adopts it when it starts again.
Try next:
  $ctl ssh demo                        # a shell on the guest (user "vm", host key pinned)
  $ctl console demo                    # its serial console (detach with Ctrl-])
  $ctl provision demo --shell 'uname -a; uptime'
  $ctl suspend demo; $ctl resume demo
  $ctl events                          # follow vm.state events (Ctrl-C to stop)
  $ctl stop demo                       # ACPI power-off, then SIGTERM/SIGKILL after 30 s
  $ctl destroy demo                    # stop it and delete it with its overlay
  tail -f $log
MSG
