// Measures this machine's peak: FP32 FMA throughput per ISA (portable, AVX2, AVX-512) and memory
// bandwidth (STREAM-style triad a = b + s*c over arrays far larger than the caches). Benchmarks report
// kernels as a percentage of these numbers, measured in the same run.
#include <chrono>
#include <vector>

#if MM_HAVE_X86 || defined(__x86_64__)
#include <immintrin.h>
#endif

#include "mm.h"
#include "peak.h"

namespace mm::cpu {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Each loop keeps 12 independent FMA chains (enough to cover FMA latency x ports on current cores).
// Returns flops done.
constexpr int64_t kIters = 1 << 20;

#if MM_HAVE_X86
MM_TARGET_AVX2 double fma_loop_avx2(float seed) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed + i);
  const __m256 m = _mm256_set1_ps(0.9999f), a = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < kIters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  __m256 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm256_add_ps(s, acc[i]);
  volatile float sink = _mm256_cvtss_f32(s);
  (void)sink;
  return 2.0 * 8 * 12 * kIters;
}

__attribute__((target("avx512f"))) double fma_loop_avx512(float seed) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(seed + i);
  const __m512 m = _mm512_set1_ps(0.9999f), a = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < kIters; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, acc[i]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return 2.0 * 16 * 12 * kIters;
}
#endif

double fma_loop_portable(float seed) {
  float acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = seed + i;
  for (int64_t it = 0; it < kIters / 8; ++it)
    for (int i = 0; i < 12; ++i) acc[i] = acc[i] * 0.9999f + 1e-7f;
  float s = 0;
  for (int i = 0; i < 12; ++i) s += acc[i];
  volatile float sink = s;
  (void)sink;
  return 2.0 * 12 * (kIters / 8);
}

// Best of `reps` runs, all threads at once.
double measure_gflops(double (*loop)(float), int reps) {
  int nt = num_threads();
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<double> flops(nt, 0);
    double t0 = now();
    parallel_tasks(nt, [&](int t) { flops[t] = loop(1.0f + t); });
    double dt = now() - t0;
    double total = 0;
    for (double f : flops) total += f;
    best = std::max(best, total / dt / 1e9);
  }
  return best;
}

}  // namespace

PeakInfo measure_peak(int64_t bandwidth_bytes) {
  PeakInfo p;
  p.gflops_portable = measure_gflops(fma_loop_portable, 3);
#if MM_HAVE_X86
  if (use_avx2()) p.gflops_avx2 = measure_gflops(fma_loop_avx2, 3);
  if (cpu_features().avx512f) p.gflops_avx512 = measure_gflops(fma_loop_avx512, 3);
#endif
  // Triad over three arrays of bandwidth_bytes/3 each; bytes moved = 3 * n * 4 (read b, c; write a).
  int64_t n = bandwidth_bytes / 12;
  std::vector<float> a(n), b(n, 1.0f), c(n, 2.0f);
  float* pa = a.data();
  const float* pb = b.data();
  const float* pc = c.data();
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    double t0 = now();
    parallel_for(n, 1 << 16, [=](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) pa[i] = pb[i] + 3.0f * pc[i];
    });
    double dt = now() - t0;
    if (r > 0) best = std::max(best, 12.0 * n / dt / 1e9);  // the first pass also faults the pages in
  }
  p.bandwidth_gbps = best;
  return p;
}

}  // namespace mm::cpu
