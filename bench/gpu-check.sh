#!/usr/bin/env bash
# One script for a short slot on a real GPU machine (sized for ~15 minutes): builds the addon with CUDA, shows
# the device, runs the tests with the GPU backend enabled (`npm run test:gpu`: every CUDA kernel test also runs
# on the GPU against the same references as the emulator) and the kernel benchmarks. Prints everything; each
# step is timed and may fail without stopping the others. Exit status: the number of failed steps.
# Usage: bench/gpu-check.sh [--cuda-only]   (--cuda-only: only test/cuda*, when the slot is short)
set -u
cd "$(dirname "$0")/.."
failed=0
step() {  # step <title> <command...>
  local title="$1"; shift
  echo; echo "=== $title: $*"
  local start=$SECONDS
  "$@"
  local rc=$?
  echo "=== $title: exit $rc after $((SECONDS - start)) s"
  [ $rc = 0 ] || failed=$((failed + 1))
  return $rc
}

# cmake only finds nvcc on PATH or through CUDACXX.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDACXX=/usr/local/cuda/bin/nvcc; fi

step "GPU" nvidia-smi
step "nvcc" "${CUDACXX:-nvcc}" --version
step "build with CUDA (sm_80 + sm_90)" npx cmake-js rebuild --log-level warn
step "build TypeScript" npm run build:ts
step "CUDA backend" node -e "
  const a = require('./build/Release/minimind.node');
  const info = a.cpu.cudaInfo();
  console.log(JSON.stringify(info, null, 2));
  console.log('kernels on the GPU table:', Object.keys(a.cuda).join(' '));
  if (!info.compiled || info.deviceCount < 1) process.exit(1);"
if [ "${1:-}" = "--cuda-only" ]; then
  step "tests on the GPU (CUDA only)" npm run test:gpu -- test/cuda
else
  step "tests on the GPU" npm run test:gpu
fi
step "kernel benchmarks" npm run bench -- kernels

echo; echo "gpu-check: $failed step(s) failed"
exit $failed
