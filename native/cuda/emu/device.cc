// The emulated CUDA device (mm::CudaEmulated): "device" memory is host memory, so tensors on it can be read
// directly in tests; kernels run through the emulator (see cuemu.h). Also the emulator's settings.
// Allocations have their exact size (no rounding), so AddressSanitizer builds catch off-by-one kernels.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "emu/cuemu.h"
#include "mm_cuda.h"

namespace mm {
namespace {
thread_local char last_error[512];
}

const char* CudaEmulated::error_text() { return last_error; }
int CudaEmulated::fail(const char* text) {
  std::snprintf(last_error, sizeof last_error, "%s", text);
  return 1;
}

int CudaEmulated::alloc(void** out, size_t bytes) {
  *out = std::malloc(bytes > 0 ? bytes : 1);
  if (!*out) return fail("emulated alloc: out of host memory");
  std::memset(*out, 0xcd, bytes);  // like fresh device memory, not zero: kernels must not rely on it
  return 0;
}
int CudaEmulated::free(void* p) {
  std::free(p);
  return 0;
}
int CudaEmulated::upload(void* dst, const void* host_src, size_t bytes) {
  std::memcpy(dst, host_src, bytes);
  return 0;
}
int CudaEmulated::download(void* host_dst, const void* src, size_t bytes) {
  std::memcpy(host_dst, src, bytes);
  return 0;
}
int CudaEmulated::copy(void* dst, const void* src, size_t bytes) {
  std::memmove(dst, src, bytes);
  return 0;
}
int CudaEmulated::zero(void* p, size_t bytes) {
  std::memset(p, 0, bytes);
  return 0;
}
int CudaEmulated::fill_f32(float* p, int64_t count, float value) {
  for (int64_t i = 0; i < count; ++i) p[i] = value;
  return 0;
}
int CudaEmulated::synchronize() { return 0; }  // launches are synchronous

// The emulated device has no cuBLAS: GEMM is always the WMMA kernel.
int CudaEmulated::gemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                       int64_t lda, int64_t strideA, const uint16_t* B, int64_t ldb, int64_t strideB, float beta,
                       void* C, bool c_bf16, int64_t ldc, int64_t strideC, int64_t batch) {
  return gemm_tiled(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, c_bf16, ldc, strideC,
                    batch);
}

void emu_configure(EmuSchedule schedule, uint64_t seed, bool poison) {
  cuemu::set_schedule(schedule == EmuSchedule::Reverse  ? cuemu::Schedule::Reverse
                      : schedule == EmuSchedule::Random ? cuemu::Schedule::Random
                                                        : cuemu::Schedule::Forward,
                      seed);
  cuemu::set_poison(poison);
}

}  // namespace mm
