// A kernel with a missing __syncthreads, to prove the emulator's tests catch it.
// Each thread stores its value in shared memory, then reads its right neighbour's slot. Without the barrier
// between the two, a thread can read the slot before the neighbour wrote it. Plain build: prints how many
// outputs came out wrong under the given schedule. ThreadSanitizer build: TSan reports the data race.
#include <cstdio>
#include <string>
#include <vector>

#include "../cuemu.h"

__global__ void rotate_missing_sync(const float* in, float* out) {
  MM_SHARED(float, slots, [128]);
  const int t = threadIdx.x;
  slots[t] = in[blockIdx.x * blockDim.x + t];
  // BUG (deliberate): a __syncthreads() belongs here.
  out[blockIdx.x * blockDim.x + t] = slots[(t + 1) % blockDim.x];
}

int main(int argc, char** argv) {
  const std::string schedule = argc > 1 ? argv[1] : "fwd";
  if (schedule == "rev") cuemu::set_schedule(cuemu::Schedule::Reverse);
  else if (schedule.rfind("rand:", 0) == 0) cuemu::set_schedule(cuemu::Schedule::Random, std::stoull(schedule.substr(5)));
  const int blocks = 4, threads = 128;
  std::vector<float> in(blocks * threads), out(blocks * threads);
  for (int i = 0; i < blocks * threads; ++i) in[i] = float(i);
  MM_LAUNCH(rotate_missing_sync, blocks, threads, 0, 0)(in.data(), out.data());
  int wrong = 0;
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < threads; ++t) wrong += out[b * threads + t] != in[b * threads + (t + 1) % threads];
  std::printf("%s: %d of %d outputs wrong\n", schedule.c_str(), wrong, blocks * threads);
  return 0;
}
