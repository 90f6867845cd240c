// Device memory on the GPU (mm::CudaDevice): cudaMalloc and friends, plus the backend's error text.
// Compiled only by nvcc. Static cudart dlopen()s the driver at the first call, so the addon loads without one.
#include <cuda_runtime.h>

#include <cstdio>

#include "mm_cuda.h"

namespace mm {
namespace {

thread_local char last_error[512];

int check(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return 0;
  std::snprintf(last_error, sizeof last_error, "%s: %s", what, cudaGetErrorString(error));
  cudaGetLastError();  // clear a non-sticky error so later calls start clean
  return 1;
}

__global__ void fill_f32_kernel(float* p, int64_t count, float value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
    p[i] = value;
}

}  // namespace

const char* CudaDevice::error_text() { return last_error; }
int CudaDevice::fail(const char* text) {
  std::snprintf(last_error, sizeof last_error, "%s", text);
  return 1;
}

int CudaDevice::alloc(void** out, size_t bytes) { return check(cudaMalloc(out, bytes), "cudaMalloc"); }
int CudaDevice::free(void* p) { return check(cudaFree(p), "cudaFree"); }
int CudaDevice::upload(void* dst, const void* host_src, size_t bytes) {
  return check(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice), "upload (cudaMemcpy)");
}
int CudaDevice::download(void* host_dst, const void* src, size_t bytes) {
  return check(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost), "download (cudaMemcpy)");
}
int CudaDevice::copy(void* dst, const void* src, size_t bytes) {
  return check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "copy (cudaMemcpy)");
}
int CudaDevice::zero(void* p, size_t bytes) { return check(cudaMemset(p, 0, bytes), "zero (cudaMemset)"); }
int CudaDevice::fill_f32(float* p, int64_t count, float value) {
  if (count <= 0) return 0;
  const unsigned blocks = static_cast<unsigned>(count / 256 + 1 < 4096 ? count / 256 + 1 : 4096);
  fill_f32_kernel<<<blocks, 256>>>(p, count, value);
  return check(cudaGetLastError(), "fill_f32");
}
int CudaDevice::synchronize() { return check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

}  // namespace mm
