// CPU feature detection (for runtime dispatch between AVX2/FMA and portable kernels) and aligned memory.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "mm.h"

namespace mm {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if MM_HAVE_X86
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.avx512f = __builtin_cpu_supports("avx512f");
#endif
    // MINIMIND_CPU=portable forces the portable kernels (tests compare both paths).
    const char* force = std::getenv("MINIMIND_CPU");
    if (force && std::strcmp(force, "portable") == 0) c = CpuFeatures{};
    return c;
  }();
  return f;
}

// calloc rather than aligned_alloc + memset: large blocks come straight from mmap, already zero, and their
// pages are only touched (and counted in RSS) when used. The block starts kAlign bytes early so that the
// aligned address has room before it for calloc's own pointer, which aligned_free reads back.
void* aligned_alloc_zeroed(size_t bytes) {
  void* raw = std::calloc(1, bytes + 2 * kAlign);
  if (!raw) throw std::bad_alloc();
  uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw) + 2 * kAlign - 1) / kAlign * kAlign;
  reinterpret_cast<void**>(aligned)[-1] = raw;
  return reinterpret_cast<void*>(aligned);
}

void aligned_free(void* p) {
  if (p) std::free(static_cast<void**>(p)[-1]);
}

}  // namespace mm
