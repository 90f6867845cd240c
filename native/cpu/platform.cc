// CPU feature detection (for runtime dispatch between AVX2/FMA and portable kernels) and aligned memory.
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

void* aligned_alloc_zeroed(size_t bytes) {
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  if (rounded == 0) rounded = kAlign;
  void* p = std::aligned_alloc(kAlign, rounded);
  if (!p) throw std::bad_alloc();
  std::memset(p, 0, rounded);
  return p;
}

void aligned_free(void* p) { std::free(p); }

}  // namespace mm
