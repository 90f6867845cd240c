// Rotary position embedding (RoPE) on queries or keys, bf16 storage, fp32 math.
// Each pair (a, b) of a head at position p = pos0 + t is rotated by the angle of frequency i:
//   forward:  (a, b) -> (a cos - b sin, a sin + b cos)
//   backward: the transpose, accumulated: (da, db) += (ga cos + gb sin, -ga sin + gb cos)
// Two pairings: kHalf (MiniMind / Llama "rotate_half": a = x[i], b = x[i + HD/2]) and kInterleaved
// (a = x[2i], b = x[2i + 1]). Shapes: x, out [B, T, NH, HD]; cos, sin [max_T, HD/2] fp32 tables.
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kThreads = 256;

__global__ void rope_kernel(bf16* out, const bf16* in, const float* cos_table, const float* sin_table, int64_t pairs,
                            int T, int NH, int HD, int pos0, int interleaved, int backward) {
  const int half = HD / 2;
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < pairs; p += int64_t(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(p % half);              // frequency index
    const int64_t head = p / half;                          // (b, t, h) flattened
    const int t = static_cast<int>(head / NH % T);
    const int64_t base = head * HD;
    const int64_t ia = base + (interleaved ? 2 * i : i), ib = base + (interleaved ? 2 * i + 1 : i + half);
    const float c = cos_table[int64_t(pos0 + t) * half + i], s = sin_table[int64_t(pos0 + t) * half + i];
    const float a = __bfloat162float(in[ia]), b = __bfloat162float(in[ib]);
    if (backward) {
      out[ia] = __float2bfloat16(__bfloat162float(out[ia]) + a * c + b * s);
      out[ib] = __float2bfloat16(__bfloat162float(out[ib]) - a * s + b * c);
    } else {
      out[ia] = __float2bfloat16(a * c - b * s);
      out[ib] = __float2bfloat16(a * s + b * c);
    }
  }
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::rope(uint16_t* out, const uint16_t* in, const float* cos_table, const float* sin_table, int B, int T,
                     int NH, int HD, int pos0, int interleaved, int backward) {
  if (HD % 2 != 0) return fail("rope: the head dimension must be even");
  const int64_t pairs = int64_t(B) * T * NH * (HD / 2);
  if (pairs <= 0) return 0;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(blocks_for(pairs, kThreads), 4096));
  MM_LAUNCH(rope_kernel, grid, kThreads, 0, 0)(as_bf16(out), as_bf16(in), cos_table, sin_table, pairs, T, NH, HD,
                                               pos0, interleaved, backward);
  return launch_status("rope");
}

}  // namespace mm
