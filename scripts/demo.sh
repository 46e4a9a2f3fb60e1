#!/usr/bin/env bash
# The main job: installs what is missing, builds vmr, starts a user-mode vmrd (through
# vmrctl's autostart) and shows vmrctl talking to it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

vmr_install_packages "${VMR_BUILD_PACKAGES[@]}"
vmr_build build
cd "$VMR_ROOT"
ctl=build/vmrctl

say "vmrctl version   (starts a user-mode vmrd when none answers)"
$ctl version
say "vmrctl list"
$ctl list
say "vmrctl rpc vmr.methods"
$ctl rpc vmr.methods
say "vmrctl events    (while vmrd reloads its configuration on SIGHUP)"
pid=$($ctl --json version | sed -n 's/.*"pid":\([0-9]*\).*/\1/p')
( sleep 0.5; kill -HUP "$pid" ) &
timeout 2 $ctl events || true
wait

cat <<MSG

vmrd is running in user mode as pid $pid.
Try next:
  $ctl status NAME            # details of one VM
  $ctl --json list            # machine-readable output
  $ctl events                 # follow daemon events (Ctrl-C to stop)
  $ctl rpc vmr.ping           # any JSON-RPC method, raw
Stop the daemon with: kill $pid
MSG
