// Rotary position embeddings: the table and the rotation (shapes and conventions in rope.h).
// Memory-bound: one pass over x, threaded over the B*T positions; the inner loops vectorise as written.
#include "rope.h"

#include <cmath>

#include "mm.h"

namespace mm::cpu {

void rope_table(float* cos_table, float* sin_table, int64_t max_t, int64_t head_dim, float theta) {
  const int64_t half = head_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    // Every step rounds to float32 as torch does: 2i/HD, theta^that, its reciprocal, p * frequency.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float base = static_cast<float>(std::pow(static_cast<double>(theta), static_cast<double>(exponent)));
    const float frequency = 1.0f / base;
    for (int64_t p = 0; p < max_t; ++p) {
      const double angle = static_cast<float>(p) * frequency;
      cos_table[p * half + i] = static_cast<float>(std::cos(angle));
      sin_table[p * half + i] = static_cast<float>(std::sin(angle));
    }
  }
}

void rope(float* out, const float* x, const float* cos_table, const float* sin_table, int64_t B, int64_t T,
          int64_t H, int64_t HD, int64_t offset, RopeStyle style, bool inverse) {
  const int64_t half = HD / 2, row = H * HD;
  const float sign = inverse ? -1.0f : 1.0f;
  // A pair (a, b) at frequency i becomes (a cos - b sin, a sin + b cos); the pairs differ only in where a and b sit.
  const int64_t pair_step = style == RopeStyle::kInterleaved ? 2 : 1;   // a of pair i at i * pair_step
  const int64_t partner = style == RopeStyle::kInterleaved ? 1 : half;  // b sits this far after a
  parallel_for(B * T, 16, [=](int64_t begin, int64_t end) {
    for (int64_t bt = begin; bt < end; ++bt) {
      const int64_t pos = offset + bt % T;
      const float* c = cos_table + pos * half;
      const float* s = sin_table + pos * half;
      for (int64_t h = 0; h < H; ++h) {
        const float* xh = x + bt * row + h * HD;
        float* oh = out + bt * row + h * HD;
        for (int64_t i = 0; i < half; ++i) {
          const float a = xh[i * pair_step], b = xh[i * pair_step + partner], sn = sign * s[i];
          oh[i * pair_step] = a * c[i] - b * sn;
          oh[i * pair_step + partner] = a * sn + b * c[i];
        }
      }
    }
  });
}

}  // namespace mm::cpu
