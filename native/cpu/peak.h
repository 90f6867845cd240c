// This machine's peak FP32 FMA throughput per ISA and its memory bandwidth (native/cpu/peak.cc).
#pragma once
#include <cstdint>

namespace mm::cpu {

struct PeakInfo {
  double gflops_portable = 0, gflops_avx2 = 0, gflops_avx512 = 0;  // FP32, all threads
  double bandwidth_gbps = 0;                                          // triad, all threads
};
PeakInfo measure_peak(int64_t bandwidth_bytes);

}  // namespace mm::cpu
