#!/usr/bin/env bash
# The emulator's own checks, without the addon: builds the self-test and the racy kernel with g++, plain and with
# ThreadSanitizer, then
#   1. runs the self-test under forward, reverse and two random fiber orders (all must pass);
#   2. shows the racy kernel giving wrong results under some order (shared memory is poisoned);
#   3. runs the self-test under TSan (no reports allowed) and the racy kernel under TSan (the race must be
#      reported, naming the write and the read lines of race.cu);
#   4. runs every production kernel (native/cuda/kernels/*.cu) once under TSan: no reports allowed.
# Usage: native/cuda/emu/test/check.sh [build-dir]. Prints one line per check; exits non-zero on a failure.
# Binaries newer than every source they depend on are reused, so a second run takes a few seconds.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
out="${1:-${TMPDIR:-/tmp}/cuemu-check}"
mkdir -p "$out"
cxx="${CXX:-g++}"
flags=(-std=c++20 -O1 -g -pthread -Wall -Wno-unknown-pragmas -I"$root/native/include")
pool="$root/native/cpu/threadpool.cc"

build() {  # build <name> <sources and flags...>; skipped while newer than everything under native/cuda, native/include
  local name="$1"; shift
  if [ -f "$out/$name" ] && [ -z "$(find "$root/native/cuda" "$root/native/include" "$pool" "$0" -newer "$out/$name" -print -quit)" ]; then
    return 0
  fi
  "$cxx" "${flags[@]}" "$@" -x none "$pool" -o "$out/$name" 2>"$out/$name.log" ||
    { echo "FAIL build $name:"; cat "$out/$name.log"; exit 1; }
}
build selftest -x c++ "$here/selftest.cu" &
build race -x c++ "$here/race.cu" &
build selftest_tsan -fsanitize=thread -x c++ "$here/selftest.cu" &
build race_tsan -fsanitize=thread -x c++ "$here/race.cu" &
# The production kernels with the emulated device, each its own translation unit (as in the addon).
build kernels_tsan -fsanitize=thread -I"$root/native" -I"$root/native/cuda" -x c++ "$here/kernels_tsan.cc" \
  "$root/native/cuda/emu/device.cc" "$root"/native/cuda/kernels/*.cu &
wait

passed=0 failed=0
result() {  # result <ok?> <what>
  if [ "$1" = 0 ]; then echo "ok   $2"; passed=$((passed + 1)); else echo "FAIL $2"; failed=$((failed + 1)); fi
}

for schedule in fwd rev rand:1 rand:2; do
  "$out/selftest" "$schedule" >"$out/selftest.$schedule.log" 2>&1
  rc=$?; [ $rc = 0 ] || cat "$out/selftest.$schedule.log"
  result $rc "self-test under schedule $schedule ($(grep -c '^ok' "$out/selftest.$schedule.log") checks)"
done

wrong_somewhere=1
for schedule in fwd rev rand:1; do
  line="$("$out/race" "$schedule")"
  echo "     racy kernel, $line"
  case "$line" in *": 0 of"*) ;; *) wrong_somewhere=0 ;; esac
done
result $wrong_somewhere "the missing __syncthreads gives wrong results under some schedule"

for schedule in fwd rand:1; do
  TSAN_OPTIONS="halt_on_error=0" "$out/selftest_tsan" "$schedule" >"$out/tsan.$schedule.log" 2>&1
  rc=$?; [ $rc = 0 ] || head -40 "$out/tsan.$schedule.log"
  result $rc "self-test under ThreadSanitizer, schedule $schedule: no reports"
done

"$out/race_tsan" fwd >"$out/race_tsan.log" 2>&1
rc=$?
grep -q "ThreadSanitizer: data race" "$out/race_tsan.log" && grep -q "race.cu:14" "$out/race_tsan.log" &&
  grep -q "race.cu:16" "$out/race_tsan.log" && [ $rc = 66 ]
result $? "ThreadSanitizer reports the racy kernel (exit $rc; write at race.cu:14, read at race.cu:16)"
grep -m2 -E "^  (Write|Previous read|Read).*|#0 rotate_missing_sync" "$out/race_tsan.log" | sed 's/^/     /'

TSAN_OPTIONS="halt_on_error=0" "$out/kernels_tsan" >"$out/kernels_tsan.log" 2>&1
rc=$?; [ $rc = 0 ] || head -60 "$out/kernels_tsan.log"
result $rc "every kernel of native/cuda/kernels/ once under ThreadSanitizer: no reports"

echo "cuemu check: $passed passed, $failed failed"
[ $failed = 0 ]
