// Token embedding lookup and its deterministic backward.
//   forward:  out[n, :] = table[ids[n], :]            (an id outside [0, V) gives a zero row)
//   backward: dtable[ids[n], :] += dout[n, :] for every n, in token order
// Shapes: ids [N] int32; table [V, C] bf16; out, dout [N, C] bf16; dtable [V, C] fp32.
// The backward gives every thread one column and walks the tokens in order, so two tokens with the same id
// never race and the sum's order is fixed: bit-identical results on every run, without atomics.
#include "../common.cuh"

namespace mm::kernels {
namespace {

constexpr int kThreads = 256;

__global__ void embedding_forward_kernel(bf16* out, const int* ids, const bf16* table, int64_t N, int C, int V) {
  const int64_t total = N * C;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int id = ids[i / C];
    out[i] = id >= 0 && id < V ? table[int64_t(id) * C + i % C] : __float2bfloat16(0.f);
  }
}

__global__ void embedding_backward_kernel(float* dtable, const int* ids, const bf16* dout, int64_t N, int C, int V) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  for (int64_t n = 0; n < N; ++n) {
    const int id = ids[n];
    if (id >= 0 && id < V) dtable[int64_t(id) * C + c] += __bfloat162float(dout[n * C + c]);
  }
}

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::embedding_forward(uint16_t* out, const int32_t* ids, const uint16_t* table, int64_t N, int C, int V) {
  if (N <= 0) return 0;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>(blocks_for(N * C, kThreads), 4096));
  MM_LAUNCH(embedding_forward_kernel, grid, kThreads, 0, 0)(as_bf16(out), ids, as_bf16(table), N, C, V);
  return launch_status("embedding_forward");
}

int MM_BACKEND::embedding_backward(float* dtable, const int32_t* ids, const uint16_t* dout, int64_t N, int C, int V) {
  if (N <= 0) return 0;
  MM_LAUNCH(embedding_backward_kernel, blocks_for(C, 64), 64, 0, 0)(dtable, ids, as_bf16(dout), N, C, V);
  return launch_status("embedding_backward");
}

}  // namespace mm
