// Elementwise kernels and dtype casts: f32 <-> bf16 (round to nearest even), n elements. Memory-bound.
// axpy (y += alpha * x) takes each of x and y as f32 or bf16, with fp32 math: the "+=" of every backward
// (bf16 activation gradients, f32 parameter gradients), residual adds (a copy then +=) and in-place scaling.
// mul (out = a * b, elementwise) takes each of out, a and b as f32 or bf16 likewise, with fp32 math.
#include "../common.cuh"

namespace mm::kernels {
namespace {

__global__ void cast_f32_to_bf16_kernel(bf16* out, const float* in, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16(in[i]);
}

__global__ void cast_bf16_to_f32_kernel(float* out, const bf16* in, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __bfloat162float(in[i]);
}

// A value of an f32 or bf16 buffer, as fp32.
__device__ inline float load_value(const void* p, bool is_bf16, int64_t i) {
  return is_bf16 ? __bfloat162float(static_cast<const bf16*>(p)[i]) : static_cast<const float*>(p)[i];
}

__global__ void axpy_kernel(void* y, bool y_bf16, const void* x, bool x_bf16, float alpha, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float xi = load_value(x, x_bf16, i);
    if (y_bf16) {
      bf16* yb = static_cast<bf16*>(y);
      yb[i] = __float2bfloat16(__bfloat162float(yb[i]) + alpha * xi);
    } else {
      static_cast<float*>(y)[i] += alpha * xi;
    }
  }
}

__global__ void mul_kernel(void* out, bool out_bf16, const void* a, bool a_bf16, const void* b, bool b_bf16,
                           int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float product = load_value(a, a_bf16, i) * load_value(b, b_bf16, i);
    if (out_bf16) static_cast<bf16*>(out)[i] = __float2bfloat16(product);
    else static_cast<float*>(out)[i] = product;
  }
}

// Grid-stride loops: enough blocks to fill the GPU, capped so huge tensors reuse threads.
constexpr int kThreads = 256;
unsigned grid_for(int64_t n) { return static_cast<unsigned>(std::min<int64_t>(blocks_for(n, kThreads), 4096)); }

}  // namespace
}  // namespace mm::kernels

namespace mm {
using namespace mm::kernels;

int MM_BACKEND::cast_f32_to_bf16(uint16_t* out, const float* in, int64_t n) {
  if (n <= 0) return 0;
  MM_LAUNCH(cast_f32_to_bf16_kernel, grid_for(n), kThreads, 0, 0)(as_bf16(out), in, n);
  return launch_status("cast_f32_to_bf16");
}

int MM_BACKEND::cast_bf16_to_f32(float* out, const uint16_t* in, int64_t n) {
  if (n <= 0) return 0;
  MM_LAUNCH(cast_bf16_to_f32_kernel, grid_for(n), kThreads, 0, 0)(out, as_bf16(in), n);
  return launch_status("cast_bf16_to_f32");
}

int MM_BACKEND::axpy(void* y, bool y_bf16, const void* x, bool x_bf16, float alpha, int64_t n) {
  if (n <= 0) return 0;
  MM_LAUNCH(axpy_kernel, grid_for(n), kThreads, 0, 0)(y, y_bf16, x, x_bf16, alpha, n);
  return launch_status("axpy");
}

int MM_BACKEND::mul(void* out, bool out_bf16, const void* a, bool a_bf16, const void* b, bool b_bf16, int64_t n) {
  if (n <= 0) return 0;
  MM_LAUNCH(mul_kernel, grid_for(n), kThreads, 0, 0)(out, out_bf16, a, a_bf16, b, b_bf16, n);
  return launch_status("mul");
}

}  // namespace mm
