// The CPU kernels' C++ entry points (one section per op family, defined in native/cpu/<family>.cc).
// Shapes: B batch, T sequence, C model dim, NH heads, NKV key/value heads, HD head dim, V vocabulary.
// All tensors are contiguous row-major f32 unless stated. Bindings in native/addon/ call these; kernels in
// other files may too (e.g. attention uses the GEMM micro-kernels).
#pragma once
#include <cstdint>

namespace mm::cpu {

// ---- elementwise.cc -------------------------------------------------------------------------------
void add(float* out, const float* a, const float* b, int64_t n);
void mul(float* out, const float* a, const float* b, int64_t n);
void scale(float* out, const float* x, float alpha, int64_t n);
void axpy(float* y, const float* x, float alpha, int64_t n);

}  // namespace mm::cpu

namespace mm::cpu {

// ---- peak.cc: machine peak for benchmarks ------------------------------------------------------------
struct PeakInfo {
  double gflops_portable = 0, gflops_avx2 = 0, gflops_avx512 = 0;  // FP32, all threads
  double bandwidth_gbps = 0;                                          // triad, all threads
};
PeakInfo measure_peak(int64_t bandwidth_bytes);

}  // namespace mm::cpu
