// minimind-native: what every CPU kernel file shares.
//   - a persistent thread pool (parallel_for over index ranges), sized by --threads / MINIMIND_THREADS;
//   - CPU feature detection for runtime dispatch (AVX2+FMA fast paths, portable fallbacks);
//   - small helpers for aligned memory.
// Kernels take raw pointers and sizes; tensors and shapes live in TypeScript.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace mm {

// ---- threads -------------------------------------------------------------------------------------
int num_threads();
void set_num_threads(int n);  // n <= 0: all hardware threads

// Runs fn(begin, end) over [0, n) split into chunks of at least `grain` items, on the pool.
// The calling thread takes part. Nested calls from inside a worker run serially.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// Runs fn(t) once for every t in [0, num_tasks) (one task a thread), for kernels that partition work themselves.
void parallel_tasks(int num_tasks, const std::function<void(int)>& fn);

// ---- CPU features ---------------------------------------------------------------------------------
struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
};
const CpuFeatures& cpu_features();
inline bool use_avx2() { return cpu_features().avx2 && cpu_features().fma; }

// ---- memory ---------------------------------------------------------------------------------------
constexpr size_t kAlign = 64;
void* aligned_alloc_zeroed(size_t bytes);
void aligned_free(void* p);

}  // namespace mm

// Compile one function for AVX2+FMA while the rest of the file stays portable (runtime dispatch).
#if defined(__x86_64__) || defined(__i386__)
#define MM_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define MM_HAVE_X86 1
#else
#define MM_TARGET_AVX2
#define MM_HAVE_X86 0
#endif
