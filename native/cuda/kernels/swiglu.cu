// SwiGLU, the gate of MiniMind's feed-forward block: out = silu(gate) * up, silu(g) = g * sigmoid(g).
//   backward: dgate += dout * up * silu'(g), silu'(g) = s * (1 + g * (1 - s)) with s = sigmoid(g);
//             dup   += dout * silu(g)
// Shapes: gate, up, out and their gradients [N, H] bf16 (H = the FFN's hidden size), fp32 math. Memory-bound.
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kThreads = 256;

__device__ inline float sigmoid(float x) { return 1.f / (1.f + __expf(-x)); }

__global__ void swiglu_forward_kernel(bf16* out, const bf16* gate, const bf16* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = __bfloat162float(gate[i]);
    out[i] = __float2bfloat16(g * sigmoid(g) * __bfloat162float(up[i]));
  }
}

__global__ void swiglu_backward_kernel(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up,
                                       int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = __bfloat162float(gate[i]), u = __bfloat162float(up[i]), d = __bfloat162float(dout[i]);
    const float s = sigmoid(g);
    dgate[i] = __float2bfloat16(__bfloat162float(dgate[i]) + d * u * s * (1.f + g * (1.f - s)));
    dup[i] = __float2bfloat16(__bfloat162float(dup[i]) + d * g * s);
  }
}

unsigned grid_for(int64_t n) { return static_cast<unsigned>(std::min<int64_t>(blocks_for(n, kThreads), 4096)); }

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::swiglu_forward(uint16_t* out, const uint16_t* gate, const uint16_t* up, int64_t n) {
  if (n <= 0) return 0;
  MM_LAUNCH(swiglu_forward_kernel, grid_for(n), kThreads, 0, 0)(as_bf16(out), as_bf16(gate), as_bf16(up), n);
  return launch_status("swiglu_forward");
}

int MM_BACKEND::swiglu_backward(uint16_t* dgate, uint16_t* dup, const uint16_t* dout, const uint16_t* gate,
                                const uint16_t* up, int64_t n) {
  if (n <= 0) return 0;
  MM_LAUNCH(swiglu_backward_kernel, grid_for(n), kThreads, 0, 0)(as_bf16(dgate), as_bf16(dup), as_bf16(dout),
                                                                  as_bf16(gate), as_bf16(up), n);
  return launch_status("swiglu_backward");
}

}  // namespace mm
