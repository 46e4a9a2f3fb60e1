# Shared by scripts/demo.sh and scripts/test.sh: Debian packages and the build.
# shellcheck shell=bash

VMR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What building and testing vmr needs from Debian 12.
VMR_BUILD_PACKAGES=(
  meson ninja-build pkg-config g++ git dpkg-dev
  liburing-dev libuv1-dev libcpp-httplib-dev libsimdjson-dev libssh2-1-dev
  libtomlplusplus-dev libzstd-dev libisofs-dev libspdlog-dev catch2 libssl-dev
)
# What the tests need besides: a real sshd on loopback (SSH client tests) and cloud-init's
# schema validator (generated user-data), isoinfo (the seed ISO read back).
VMR_TEST_PACKAGES=(openssh-server cloud-init genisoimage)
# What running VMs needs (the tests boot real QEMU under TCG); ssh for `vmrctl ssh`.
VMR_RUN_PACKAGES=(qemu-system-x86 qemu-utils ovmf openssh-client)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Install the Debian packages that are missing (as root, or through sudo).
vmr_install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "Installing missing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# vmr_build DIR [meson options...]: configure once, then build.
vmr_build() {
  local dir=$1
  shift
  if [ ! -f "$VMR_ROOT/$dir/build.ninja" ]; then
    say "Configuring $dir"
    meson setup "$VMR_ROOT/$dir" "$VMR_ROOT" --wrap-mode=nodownload "$@" >/dev/null
  elif [ $# -gt 0 ]; then
    # A folder from an earlier run gets today's options too.
    meson configure "$VMR_ROOT/$dir" "$@" >/dev/null
  fi
  say "Building $dir"
  ninja -C "$VMR_ROOT/$dir"
}
