#!/usr/bin/env bash
# The emulator's own checks, without the addon: builds the self-test and the racy kernel with g++, plain and with
# ThreadSanitizer, then
#   1. runs the self-test under forward, reverse and two random fiber orders (all must pass);
#   2. shows the racy kernel giving wrong results under some order (shared memory is poisoned);
#   3. runs the self-test under TSan (no reports allowed) and the racy kernel under TSan (the race must be
#      reported, naming the write and the read lines of race.cu).
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

build() {  # build <name> <source> [extra flags...]
  local name="$1" src="$2"; shift 2
  local dep fresh=1
  for dep in "$src" "$here/../cuemu.h" "$pool" "$root/native/include/mm.h" "$0"; do
    [ "$out/$name" -nt "$dep" ] || fresh=0
  done
  [ $fresh = 1 ] && return 0
  "$cxx" "${flags[@]}" "$@" -x c++ "$src" -x none "$pool" -o "$out/$name" 2>"$out/$name.log" ||
    { echo "FAIL build $name:"; cat "$out/$name.log"; exit 1; }
}
build selftest "$here/selftest.cu" &
build race "$here/race.cu" &
build selftest_tsan "$here/selftest.cu" -fsanitize=thread &
build race_tsan "$here/race.cu" -fsanitize=thread &
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

echo "cuemu check: $passed passed, $failed failed"
[ $failed = 0 ]
