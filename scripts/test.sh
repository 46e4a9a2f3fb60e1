#!/usr/bin/env bash
# The test command: installs what is missing, builds the test guest, builds vmr twice
# (gcc, then with AddressSanitizer + UndefinedBehaviorSanitizer) and runs the whole
# default suite in both; the first is built as a Debian package would be (dpkg-buildflags), and a
# release build (-O3) comes last. Warnings are errors in every one.
# Extra arguments go to `meson test` (e.g. --suite rpc).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

vmr_install_packages "${VMR_BUILD_PACKAGES[@]}" "${VMR_RUN_PACKAGES[@]}" "${VMR_TEST_PACKAGES[@]}"
cd "$VMR_ROOT"

# The test guest (kernel + busybox/dropbear initramfs from Debian packages), cached.
say "Building the test guest"
tests/guest/build.sh build-guest
export VMR_TEST_GUEST="$VMR_ROOT/build-guest"

total_ok=0
total_fail=0
total_skip=0
run_suite() {
  local dir=$1
  shift
  say "Testing $dir"
  local rc=0
  meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" || rc=$?
  # Count from meson's machine-readable log.
  local counts
  counts=$(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys
ok = fail = skip = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("result") in ("OK", "EXPECTEDFAIL"):
        ok += 1
    elif r.get("result") == "SKIP":
        skip += 1
    else:
        fail += 1
print(ok, fail, skip)
PY
)
  local ok fail skip
  read -r ok fail skip <<<"$counts"
  total_ok=$((total_ok + ok))
  total_fail=$((total_fail + fail))
  total_skip=$((total_skip + skip))
  return $rc
}

status=0
# The main build is the one a Debian package makes: dpkg-buildflags' flags (-O2, fortify, the
# stack protector, relro), without their -g (debug info is a third of the compile time and
# changes no diagnostic).
say "Debian-style build (dpkg-buildflags), warnings as errors, and the whole suite"
CXXFLAGS="$(dpkg-buildflags --get CXXFLAGS) $(dpkg-buildflags --get CPPFLAGS) -g0" \
  LDFLAGS="$(dpkg-buildflags --get LDFLAGS)" \
  vmr_build build -Dwerror=true -Dbuildtype=plain -Dcrash_points=true
run_suite build "$@" || status=1

export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
vmr_build build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false -Dbuildtype=debug \
  -Dcrash_points=true
run_suite build-asan "$@" || status=1

# What `meson setup -Dbuildtype=release` users build (-O3: GCC's optimiser warns differently);
# the code only, the suite above covers it.
say "Release build, warnings as errors"
vmr_build build-release -Dwerror=true -Dbuildtype=release -Dtests=false -Dbench=false || status=1

echo "tests: $total_ok passed, $total_fail failed, $total_skip skipped"
exit $status
